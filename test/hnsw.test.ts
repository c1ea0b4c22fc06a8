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

  it('merges rebuild the graph over the live rows (compact)', async () => {
    const dir = join(root, `c${dirCount++}`);
    const col = await Collection.open(dir, { schema: { dimension: D, metric: 'l2', index: 'HNSW16,SQ8,Rerank' }, autoMerge: false });
    for (let s = 0; s < N; s += 1250) { await col.upsert(records.slice(s, s + 1250)); await col.flush(); }
    assert.equal(col.info().segmentList.filter((s) => s.state === 'sealed').length, 4);
    await col.delete(['v1', 'v2', 'v3']);
    await col.compact();
    const sealed = col.info().segmentList.filter((s) => s.state === 'sealed');
    assert.deepEqual(sealed.map((s) => [s.rows, s.index]), [[N - 3, 'HNSW16,SQ8']]);
    const r = recall(await col.search(queries, { k: 10, ef: 128 }), await truthOf(new Set(['v1', 'v2', 'v3'])));
    assert.ok(r >= 0.95, `recall after compact: ${r}`);
    await col.close();
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
    for (const [version, count, want] of [[2, 4, 'UNSUPPORTED_FORMAT'], [1, 5, 'CORRUPT_FILE']] as const) {
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
    for (const spec of ['HNSW2', 'HNSW', 'HNSW16,RaBitQ4', 'HNSW16,PQ16x4fs,Rerank', 'HNSWx']) {
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
