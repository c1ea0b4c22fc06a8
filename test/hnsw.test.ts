import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readSync, rmSync, writeSync, closeSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Collection } from '../src/node.js';
import { readGraphSection } from '../src/index/hnsw-section.js';
import { createKernels } from '../src/kernels/index.js';
import { parseFvecs } from '../src/io/vecs.js';
import { MemoryDirectory } from '../src/storage/directory.js';
import { SECTION, SegmentFile, SegmentWriter } from '../src/storage/segment-file.js';
import { FsDirectory } from '../src/node/fs-directory.js';
import { readData } from './helpers/data.js';

// HNSW indexes through the collection: built at seal, stored in GRAPH sections, restored at
// open without a rebuild, searched with ef; deletes after the seal; damaged sections.

const root = mkdtempSync(join(tmpdir(), 'quiver-hnsw-'));
after(() => rmSync(root, { recursive: true, force: true }));
const sift = parseFvecs(readData('sift10k', 'base.fvecs'));
const siftQ = parseFvecs(readData('sift10k', 'query.fvecs'));
const D = sift.dimension, N = 5000, NQ = 40;
const records = Array.from({ length: N }, (_, i) => ({ id: `v${i}`, vector: sift.data.subarray(i * D, (i + 1) * D), metadata: { i } }));
const queries = Array.from({ length: NQ }, (_, q) => siftQ.data.subarray(q * D, (q + 1) * D));

async function truthOf(skip: Set<string> = new Set()): Promise<Set<string>[]> {
  const exact = Collection.create({ dimension: D, metric: 'l2' });
  await exact.upsert(records.filter((r) => !skip.has(r.id)));
  const res = await exact.search(queries, { k: 10 });
  await exact.close();
  return res.map((hits) => new Set(hits.map((h) => h.id)));
}

function recall(hits: { id: string }[][], truth: Set<string>[]): number {
  let found = 0;
  hits.forEach((h, q) => { for (const x of h) if (truth[q].has(x.id)) found++; });
  return found / (truth.length * 10);
}

let dirCount = 0;
async function built(index: string): Promise<{ dir: string; col: Collection }> {
  const dir = join(root, `c${dirCount++}`);
  const col = await Collection.open(dir, { schema: { dimension: D, metric: 'l2', index } });
  await col.upsert(records);
  await col.flush();
  return { dir, col };
}

describe('HNSW through the collection', () => {
  const truth = truthOf();

  for (const spec of ['HNSW16', 'HNSW16,SQ8,Rerank', 'HNSW16,SQ4,Rerank']) {
    it(`${spec}: built at seal, searched with ef, reopened without a rebuild with identical results`, async () => {
      const { dir, col } = await built(spec);
      const seg = col.info().segmentList.find((s) => s.state === 'sealed')!;
      assert.equal(seg.index, spec.replace(/,Rerank.*$/, ''));
      const low = await col.search(queries, { k: 10, ef: 16, withStats: true });
      const high = await col.search(queries, { k: 10, ef: 200, withStats: true });
      const t = await truth;
      const rLow = recall(low.hits, t), rHigh = recall(high.hits, t);
      assert.ok(rHigh >= 0.97, `recall at ef 200: ${rHigh}`);
      assert.ok(rHigh >= rLow, `a wider beam does not lose recall: ${rLow} -> ${rHigh}`);
      const visitedLow = low.stats.reduce((a, s) => a + s.scanned, 0), visitedHigh = high.stats.reduce((a, s) => a + s.scanned, 0);
      assert.ok(visitedLow < visitedHigh && visitedHigh < NQ * N, `codes scored: ${visitedLow} at ef 16, ${visitedHigh} at ef 200 (of ${NQ * N})`);
      if (spec.includes('Rerank')) assert.ok(high.stats.every((s) => s.reranked > 0));
      const before = await col.search(queries, { k: 10 });
      await col.close();
      const again = await Collection.open(dir);
      const t0 = performance.now();
      const after = await again.search(queries, { k: 10 });
      assert.deepEqual(after.map((h) => h.map((x) => x.id)), before.map((h) => h.map((x) => x.id)));
      assert.equal(again.info().segmentList.find((s) => s.state === 'sealed')!.index, seg.index);
      assert.ok(performance.now() - t0 < 5000);
      await again.close();
    });
  }

  it('exact: true scores every live row exactly instead of searching the graph', async () => {
    const { col } = await built('HNSW16,SQ8');
    await col.delete(['v0', 'v1']);
    const res = await col.search(queries, { k: 10, exact: true, withStats: true });
    const t = await truthOf(new Set(['v0', 'v1']));
    assert.equal(recall(res.hits, t), 1);
    assert.ok(res.stats.every((s) => s.scanned === N - 2 && s.filter === undefined), JSON.stringify(res.stats[0]));
    await col.close();
  });

  it('a selective filter scores the matching rows\' codes in memory and reranks them; exact: true reads full vectors', async () => {
    const dir = join(root, `c${dirCount++}`);
    const col = await Collection.open(dir, { schema: { dimension: D, metric: 'l2', index: 'HNSW16,SQ8,Rerank', fields: { i: 'number' } } });
    await col.upsert(records);
    await col.flush();
    const filter = { i: { $lt: 100 } }; // 2% of the rows: the planner's exact path
    const keep = new Set(records.filter((r) => r.metadata.i >= 100).map((r) => r.id));
    const t = await truthOf(keep);
    const planned = await col.search(queries, { k: 10, filter, withStats: true });
    assert.ok(planned.stats.every((s) => s.filter!.paths.exact === 1 && s.scanned === 100 && s.reranked > 0), JSON.stringify(planned.stats[0]));
    assert.ok(recall(planned.hits, t) >= 0.95, `recall ${recall(planned.hits, t)}`);
    const exact = await col.search(queries, { k: 10, filter, exact: true, withStats: true });
    assert.equal(recall(exact.hits, t), 1);
    assert.ok(exact.stats.every((s) => s.reranked === 0));
    await col.close();
  });

  it('a filter leaving a quarter of the rows walks the graph two hops at a time; regions of the space fall back to a plain walk', async () => {
    const dir = join(root, `c${dirCount++}`);
    const n = 10000;
    const all = Array.from({ length: n }, (_, i) => ({ id: `v${i}`, vector: sift.data.subarray(i * D, (i + 1) * D) }));
    // `r`: random quarter; `x`: rank of the first coordinate, so x < 0.25 is a region of the space
    const order = all.map((r, i) => [r.vector[0], i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const rank = new Float64Array(n);
    order.forEach(([, i], p) => { rank[i] = p / n; });
    const col = await Collection.open(dir, { schema: { dimension: D, metric: 'l2', index: 'HNSW16,SQ8,Rerank', fields: { r: 'number', x: 'number' } } });
    await col.upsert(all.map((r, i) => ({ ...r, metadata: { r: (i * 7919) % 4, x: rank[i] } })));
    await col.flush();
    for (const [filter, eligible] of [[{ r: 1 }, (i: number) => (i * 7919) % 4 === 1], [{ x: { $lt: 0.25 } }, (i: number) => rank[i] < 0.25]] as const) {
      const exact = Collection.create({ dimension: D, metric: 'l2' });
      await exact.upsert(all.filter((_, i) => eligible(i)));
      const t = (await exact.search(queries, { k: 10 })).map((h) => new Set(h.map((x) => x.id)));
      const res = await col.search(queries, { k: 10, filter, recall: 0.95, withStats: true });
      assert.ok(res.stats.every((s) => s.filter!.paths.index === 1), JSON.stringify(res.stats[0].filter));
      for (const hits of res.hits) for (const h of hits) assert.ok(eligible(Number(h.id.slice(1))), `${h.id} does not match`);
      const r = recall(res.hits, t);
      assert.ok(r >= 0.95, `${JSON.stringify(filter)}: recall ${r}`);
    }
    await col.close();
  });

  it('deletes after the seal are passed through, never returned; recall holds on what remains', async () => {
    const { col } = await built('HNSW16,SQ8,Rerank');
    const gone = new Set<string>();
    for (let i = 0; i < N; i += 3) gone.add(`v${i}`);
    await col.delete([...gone]);
    const res = await col.search(queries, { k: 10, ef: 128 });
    for (const hits of res) for (const h of hits) assert.ok(!gone.has(h.id), `deleted ${h.id} returned`);
    const r = recall(res, await truthOf(gone));
    assert.ok(r >= 0.95, `recall with a third deleted: ${r}`);
    await col.close();
  });

  it('a merge starts from its largest input\'s graph and inserts the other rows (compact)', async () => {
    const dir = join(root, `c${dirCount++}`);
    const merged: { graphFrom?: number; from: number[] }[] = [];
    const col = await Collection.open(dir, {
      schema: { dimension: D, metric: 'l2', index: 'HNSW16,SQ8,Rerank' }, autoMerge: false,
      onEvent: (e) => { if (e.type === 'merged') merged.push(e); },
    });
    for (let s = 0; s < N; s += 1250) { await col.upsert(records.slice(s, s + 1250)); await col.flush(); }
    assert.equal(col.info().segmentList.filter((s) => s.state === 'sealed').length, 4);
    await col.delete(['v1', 'v2', 'v3']);
    await col.compact();
    const sealed = col.info().segmentList.filter((s) => s.state === 'sealed');
    assert.deepEqual(sealed.map((s) => [s.rows, s.index]), [[N - 3, 'HNSW16,SQ8']]);
    // the first segment lost 3 rows: a full one (the largest) lends its graph
    assert.equal(merged.length, 1);
    assert.ok(merged[0].graphFrom !== undefined && merged[0].from.includes(merged[0].graphFrom) && merged[0].graphFrom !== merged[0].from[0], JSON.stringify(merged));
    const r = recall(await col.search(queries, { k: 10, ef: 128 }), await truthOf(new Set(['v1', 'v2', 'v3'])));
    assert.ok(r >= 0.95, `recall after compact: ${r}`);
    await col.close();
  });

  it('HNSW<M>:<efConstruction> builds with that beam width and records it in the GRAPH section', async () => {
    for (const [spec, want] of [['HNSW8:40,SQ8,Rerank', 40], ['HNSW8,SQ8,Rerank', 200]] as const) {
      const { dir, col } = await built(spec);
      assert.equal(col.schema.index, spec);
      const r = recall(await col.search(queries, { k: 10, ef: 128 }), await truth);
      assert.ok(r >= 0.9, `${spec}: recall at ef 128 ${r}`);
      await col.close();
      const name = readdirSync(dir).find((f) => f.endsWith('.qseg'))!;
      const seg = await SegmentFile.open(await FsDirectory.open(dir), name);
      const { graph, efConstruction } = readGraphSection(seg, name, seg.header.count, createKernels('js'));
      graph.release();
      await seg.close();
      assert.equal(efConstruction, want, spec);
    }
  });

  it('a damaged GRAPH section is CORRUPT_FILE naming the file', async () => {
    const { dir, col } = await built('HNSW16,SQ8');
    await col.close();
    const name = readdirSync(dir).find((f) => f.endsWith('.qseg'))!;
    const seg = await SegmentFile.open(await FsDirectory.open(dir), name);
    const sec = seg.section(SECTION.GRAPH);
    await seg.close();
    const fd = openSync(join(dir, name), 'r+');
    const b = Buffer.alloc(1);
    const at = sec.offset + Math.floor(sec.length / 2);
    readSync(fd, b, 0, 1, at);
    b[0] ^= 0x10;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
    await assert.rejects(Collection.open(dir), (e: Error & { code?: string }) => e.code === 'CORRUPT_FILE' && e.message.includes(name));
  });

  it('a GRAPH section of an unknown version is UNSUPPORTED_FORMAT; inconsistent sizes CORRUPT_FILE', async () => {
    for (const [version, count, want] of [[3, 4, 'UNSUPPORTED_FORMAT'], [1, 5, 'CORRUPT_FILE'], [2, 5, 'CORRUPT_FILE'], [2, 4, 'CORRUPT_FILE']] as const) {
      const dir = new MemoryDirectory();
      const w = await SegmentWriter.create(dir, 'seg-00000009.qseg', { number: 9, dimension: 2, metric: 'l2', count: 4, minSeq: 1, maxSeq: 1 });
      await w.section(SECTION.VECTORS, [new Uint8Array(4 * 2 * 4)]);
      const head = new Uint32Array([version, 4, 200, count, 0, 0, 0, 0]);
      await w.section(SECTION.GRAPH, [new Uint8Array(head.buffer), new Uint8Array(4 + 16 + 4 * 4 * 9)]);
      await w.finish();
      const file = await SegmentFile.open(dir, 'seg-00000009.qseg');
      assert.throws(() => readGraphSection(file, 'seg-00000009.qseg', 4, createKernels('js')), (e: Error & { code?: string }) => e.code === want, `version ${version}, count ${count}`);
      await file.close();
    }
  });

  it('specs and options: bad M, graph-incompatible quantizers and a bad ef are clear errors', async () => {
    for (const spec of ['HNSW2', 'HNSW', 'HNSW16,BIN', 'HNSW16,PQ16x4fs,Rerank', 'HNSWx']) {
      assert.throws(() => Collection.create({ dimension: D, index: spec }), (e: Error & { code?: string }) => e.code === 'UNKNOWN_SPEC', spec);
    }
    const col = Collection.create({ dimension: 4, index: 'HNSW16,SQ8' });
    await col.upsert([{ id: 'a', vector: [1, 2, 3, 4] }]);
    for (const ef of [0, -1, 1.5, 'x']) {
      await assert.rejects(col.search([1, 2, 3, 4], { ef: ef as number }), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT', String(ef));
    }
    await col.close();
  });
});

describe('HnswGraph.seeded: a donor graph reused with dropped rows', () => {
  it('keeps the donor links among live nodes, drops links to dropped ones, and inserts the rest', async () => {
    const { HnswGraph } = await import('../src/index/hnsw-graph.js');
    const { SCORE_KIND } = await import('../src/kernels/graph.js');
    const k = createKernels('wasm');
    const n = 3000, d = D;
    const rows = k.memory.alloc(n * d * 4);
    k.memory.f32(rows, n * d).set(sift.data.subarray(0, n * d));
    const donor = HnswGraph.create(k, 2000, 12, 3);
    donor.insert(rows, d, 'l2', 0, 2000, 100);
    // drop every 10th donor row; the merged rows: donor's live rows first, then 1,200 others
    const map = new Int32Array(2000).fill(-1);
    let live = 0;
    for (let i = 0; i < 2000; i++) if (i % 10 !== 0) map[i] = live++;
    const merged = k.memory.alloc((live + 1000) * d * 4);
    const mv = () => k.memory.f32(merged, (live + 1000) * d);
    for (let i = 0; i < 2000; i++) if (map[i] !== -1) mv().set(sift.data.subarray(i * d, (i + 1) * d), map[i] * d);
    mv().set(sift.data.subarray(2000 * d, 3000 * d), live * d);
    const g = HnswGraph.seeded(k, live + 1000, donor, map, 9);
    assert.equal(g.count, live);
    const a = donor.arrays(), b = g.arrays();
    for (let i = 1; i < 2000; i += 37) {
      if (map[i] === -1) continue;
      const want = [...a.level0.subarray(i * 25 + 1, i * 25 + 1 + a.level0[i * 25])].filter((x) => map[x] !== -1).map((x) => map[x]);
      const got = [...b.level0.subarray(map[i] * 25 + 1, map[i] * 25 + 1 + b.level0[map[i] * 25])];
      assert.deepEqual(got, want, `node ${i}`);
    }
    g.insert(merged, d, 'l2', live, live + 1000, 100);
    assert.equal(g.count, live + 1000);
    const ids = k.memory.alloc(40), sc = k.memory.alloc(40), qp = k.memory.alloc(d * 4);
    let found = 0;
    for (let q = 0; q < 20; q++) {
      const query = siftQ.data.subarray(q * d, (q + 1) * d);
      k.memory.f32(qp, d).set(query);
      const c = g.search({ kind: SCORE_KIND.F32_L2, d, stride: d * 4, scale: 0, bias: 0, p0: qp, p1: 0 }, merged, 10, 64, 0, ids, sc);
      const got = new Set(k.memory.u32(ids, c));
      const all = mv();
      const best = Array.from({ length: live + 1000 }, (_, i) => { let s = 0; for (let j = 0; j < d; j++) s += (query[j] - all[i * d + j]) ** 2; return [s, i]; }).sort((x, y) => x[0] - y[0]).slice(0, 10);
      for (const [, i] of best) if (got.has(i)) found++;
    }
    assert.ok(found / 200 >= 0.95, `recall ${found / 200}`);
  });
});

describe('packed level 0 (GRAPH section version 2)', () => {
  it('a written and restored graph keeps level 0 packed: smaller, the same searches in both kernels, read-only, unpacked for reuse', async () => {
    const { HnswGraph } = await import('../src/index/hnsw-graph.js');
    const { SCORE_KIND } = await import('../src/kernels/graph.js');
    const { writeGraphSection } = await import('../src/index/hnsw-section.js');
    for (const kind of ['wasm', 'js'] as const) {
      const k = createKernels(kind);
      const n = 2000, d = D;
      const rows = k.memory.alloc(n * d * 4);
      k.memory.f32(rows, n * d).set(sift.data.subarray(0, n * d));
      const fixed = HnswGraph.create(k, n, 12, 5);
      fixed.insert(rows, d, 'l2', 0, n, 100);
      const dir = new MemoryDirectory();
      const w = await SegmentWriter.create(dir, 'seg-00000001.qseg', { number: 1, dimension: d, metric: 'l2', count: n, minSeq: 1, maxSeq: 1 });
      await w.section(SECTION.VECTORS, [new Uint8Array(sift.data.buffer, sift.data.byteOffset, n * d * 4)]);
      await writeGraphSection(w, fixed, 100);
      await w.finish();
      const file = await SegmentFile.open(dir, 'seg-00000001.qseg');
      const { graph: packed } = readGraphSection(file, 'seg-00000001.qseg', n, k);
      assert.equal(packed.packed, true);
      assert.equal(fixed.packed, false);
      const a = fixed.arrays();
      let links = 0;
      for (let i = 0; i < n; i++) links += a.level0[i * 25];
      // level 0: sum of (degree + 1) words and one offset a node, against 25 words a node
      assert.equal(fixed.bytes - packed.bytes, (n * 25 - (links + n) - n) * 4);
      // slots past a node's degree are unused (the fixed layout may hold stale ids there)
      const lists = (l0: Uint32Array) => Array.from({ length: n }, (_, i) => [...l0.subarray(i * 25, i * 25 + 1 + l0[i * 25])]);
      const b = packed.arrays();
      assert.deepEqual(lists(b.level0), lists(a.level0), 'unpacks to the stored level 0');
      assert.deepEqual({ ...b, level0: null }, { ...a, level0: null });
      const ids = k.memory.alloc(40), sc = k.memory.alloc(40), ids2 = k.memory.alloc(40), sc2 = k.memory.alloc(40), qp = k.memory.alloc(d * 4);
      for (let q = 0; q < 20; q++) {
        k.memory.f32(qp, d).set(siftQ.data.subarray(q * d, (q + 1) * d));
        const scoring = { kind: SCORE_KIND.F32_L2, d, stride: d * 4, scale: 0, bias: 0, p0: qp, p1: 0 };
        const c1 = fixed.search(scoring, rows, 10, 48, 0, ids, sc);
        const c2 = packed.search(scoring, rows, 10, 48, 0, ids2, sc2);
        assert.equal(fixed.lastScored, packed.lastScored, `${kind} query ${q}: the same walk`);
        assert.deepEqual([...k.memory.u32(ids2, c2)], [...k.memory.u32(ids, c1)], `${kind} query ${q}`);
        assert.deepEqual([...k.memory.f32(sc2, c2)], [...k.memory.f32(sc, c1)]);
      }
      assert.throws(() => packed.insert(rows, d, 'l2', 0, 1, 100), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT');
      // a merge reuses a packed graph as its donor
      const map = Int32Array.from({ length: n }, (_, i) => i);
      const seeded = HnswGraph.seeded(k, n, packed, map, 9);
      assert.deepEqual(lists(seeded.arrays().level0), lists(a.level0));
      seeded.release(); packed.release(); fixed.release();
      await file.close();
    }
  });

  it('a packed level 0 whose offsets or degrees run past its pool is CORRUPT_FILE', async () => {
    const { HnswGraph } = await import('../src/index/hnsw-graph.js');
    const k = createKernels('js');
    const arrays = { m: 4, count: 3, entry: 0, maxLevel: 0, levels: new Uint8Array(3), upperOff: new Uint32Array(3), upperWords: 0 };
    const pool = [1, 1, 1, 0, 1, 1]; // node 0 -> 1, node 1 -> 0, node 2 -> 1
    for (const [offsets, words, ok] of [[[0, 2, 4], pool, true], [[0, 2, 9], pool, false], [[0, 2, 5], pool, false], [[0, 2, 4], [1, 1, 1, 0, 1, 7], false]] as const) {
      const restore = () => HnswGraph.restorePacked(k, arrays, words.length, (o, l0) => { o().set(offsets); l0().set(words); }).release();
      if (ok) restore();
      else assert.throws(restore, (e: Error & { code?: string }) => e.code === 'CORRUPT_FILE', JSON.stringify([offsets, words]));
    }
  });
});
