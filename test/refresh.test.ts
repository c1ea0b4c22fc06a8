import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Collection, type QuiverError } from '../src/node.js';
import { walFileName } from '../src/storage/wal.js';
import { randomF32, rng } from './helpers/random.js';

// A read-only opener follows the writer with refresh(): after each refresh it shows exactly the
// writer's durable state, across seals, merges, compaction, deletes and WAL generations.

const tmp = mkdtempSync(join(tmpdir(), 'quiver-refresh-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const D = 8;

async function assertSame(w: Collection, r: Collection, label: string): Promise<void> {
  assert.equal(r.count(), w.count(), `${label}: count`);
  assert.equal(r.appliedSeq, w.appliedSeq, `${label}: appliedSeq`);
  if (w.count() === 0) return;
  for (const seed of [11, 12]) {
    const q = randomF32(D, seed);
    const a = await w.search(q, { k: w.count(), exact: true });
    const b = await r.search(q, { k: w.count(), exact: true });
    assert.deepEqual(b, a, `${label}: exact results`);
    const a2 = await w.search(q, { k: 5 });
    const b2 = await r.search(q, { k: 5 });
    assert.deepEqual(b2, a2, `${label}: index results`);
  }
}

function code(e: unknown): string { return (e as QuiverError).code; }

describe('refresh (read-only collections follow the writer)', () => {
  it('shows exactly the writer state across upserts, deletes, updates, seals, merges and compaction', async () => {
    const dir = join(tmp, 'follow');
    const w = await Collection.open(dir, { schema: { dimension: D, metric: 'l2', fields: { tag: 'keyword' } }, sealRows: 50, mergePolicy: { segmentsPerTier: 2 } });
    // opened before the first write and the first seal
    const r = await Collection.open(dir, { readOnly: true });
    await assertSame(w, r, 'empty');
    const rand = rng(5);
    let next = 0;
    let sawSeal = false, sawDrop = false, sawWalChange = false;
    const walGen0 = r.info().walGeneration;
    for (let round = 0; round < 14; round++) {
      const batch = Array.from({ length: 15 + Math.floor(rand() * 30) }, () => {
        const replace = next > 0 && rand() < 0.3;
        const i = replace ? Math.floor(rand() * next) : next++;
        return { id: `r${i}`, vector: randomF32(D, 1000 * round + i + 1), metadata: { tag: `t${i % 3}`, round } };
      });
      await w.upsert(batch);
      if (next > 10) await w.delete(Array.from({ length: 5 }, () => `r${Math.floor(rand() * next)}`));
      if (round % 3 === 1) await w.update([{ id: 'r1', metadata: { tag: 'updated', round } }], { merge: true });
      if (round === 6) await w.flush();
      if (round === 9) await w.compact();
      if (round % 4 === 3) await w.idle(); // let background merges install
      const res = await r.refresh();
      if (res.segmentsLoaded > 0) sawSeal = true;
      if (res.segmentsDropped > 0) sawDrop = true;
      if (r.info().walGeneration !== walGen0) sawWalChange = true;
      assert.equal(res.appliedSeq, w.appliedSeq);
      await assertSame(w, r, `round ${round}`);
      const filtered = { filter: { tag: 't1' }, k: 100 };
      assert.deepEqual(await r.search(randomF32(D, 3), filtered), await w.search(randomF32(D, 3), filtered), `round ${round}: filtered`);
    }
    assert.ok(sawSeal && sawDrop && sawWalChange, `saw a seal ${sawSeal}, dropped segments ${sawDrop}, a new WAL generation ${sawWalChange}`);
    assert.ok(w.info().segmentList.filter((s) => s.state === 'sealed').length >= 1);
    await w.close();
    await r.close();
  });

  it('an unchanged collection costs no segment loading; WAL-only changes load nothing either', async () => {
    const dir = join(tmp, 'cost');
    // (l2: a cosine writer's own sealed rows can differ from a fresh open in the last bit of a score)
    const w = await Collection.open(dir, { schema: { dimension: D, metric: 'l2' }, sealRows: 40 });
    await w.upsert(Array.from({ length: 100 }, (_, i) => ({ id: `c${i}`, vector: randomF32(D, i + 1) })));
    await w.idle();
    const r = await Collection.open(dir, { readOnly: true });
    await assertSame(w, r, 'opened');
    const again = await r.refresh();
    assert.deepEqual({ ...again, walBytes: 0 }, { appliedSeq: w.appliedSeq, manifestChanged: false, segmentsLoaded: 0, segmentsDropped: 0, records: 0, walBytes: 0 });
    assert.equal(again.walBytes, 0, 'nothing new to read');
    await w.upsert([{ id: 'c5', vector: randomF32(D, 77) }]);
    await w.delete(['c6']);
    const tail = await r.refresh();
    assert.equal(tail.manifestChanged, false);
    assert.equal(tail.segmentsLoaded, 0);
    assert.equal(tail.records, 2);
    await assertSame(w, r, 'after WAL-only writes');
    await w.close();
    await r.close();
  });

  it('keeps searches in flight valid across a refresh that drops their segments', async () => {
    const dir = join(tmp, 'inflight');
    const w = await Collection.open(dir, { schema: { dimension: D, metric: 'l2' }, sealRows: 30, autoMerge: false });
    for (let b = 0; b < 3; b++) {
      await w.upsert(Array.from({ length: 30 }, (_, i) => ({ id: `f${b * 30 + i}`, vector: randomF32(D, b * 30 + i + 1) })));
      await w.flush();
    }
    const r = await Collection.open(dir, { readOnly: true });
    const engine = (r as unknown as { engine: { snapshot(): { segments: { alive: boolean }[]; release(): void }; search(s: unknown, q: Float32Array, nq: number, k: number): { hits: { segment: { idAt(o: number): string }; ord: number; score: number }[][] } } }).engine;
    const q = randomF32(D, 9);
    const snap = engine.snapshot();
    const before = engine.search(snap, q, 1, 20).hits[0].map((h) => [h.segment.idAt(h.ord), h.score]);
    await w.delete(['f0', 'f1']);
    await w.compact();
    const res = await r.refresh();
    assert.equal(res.segmentsDropped, 3);
    assert.equal(res.segmentsLoaded, 1);
    // the snapshot still holds the dropped segments: same answer as before, memory still valid
    assert.ok(snap.segments.every((s) => s.alive));
    assert.deepEqual(engine.search(snap, q, 1, 20).hits[0].map((h) => [h.segment.idAt(h.ord), h.score]), before);
    snap.release();
    assert.ok(snap.segments.some((s) => !s.alive), 'dropped segments are freed once the snapshot is released');
    await assertSame(w, r, 'after compaction');
    await w.close();
    await r.close();
  });

  it('upTo applies writes up to a sequence number and no further (read-your-writes)', async () => {
    const dir = join(tmp, 'upto');
    const w = await Collection.open(dir, { schema: { dimension: D, metric: 'l2' } });
    const r = await Collection.open(dir, { readOnly: true });
    await w.upsert([{ id: 'a', vector: randomF32(D, 1) }]);
    const first = w.appliedSeq;
    await w.upsert([{ id: 'b', vector: randomF32(D, 2) }]);
    await w.delete(['a']);
    const res = await r.refresh({ upTo: first });
    assert.equal(res.appliedSeq, first);
    assert.equal(r.count(), 1);
    assert.ok(r.has('a') && !r.has('b'));
    const rest = await r.refresh({ upTo: w.appliedSeq });
    assert.equal(rest.records, 2);
    assert.ok(!r.has('a') && r.has('b'));
    await assertSame(w, r, 'caught up');
    // after a seal the bound still yields a writer state (the manifest's committedSeq)
    await w.upsert([{ id: 'c', vector: randomF32(D, 3) }]);
    await w.flush();
    const sealed = await r.refresh({ upTo: 0 });
    assert.equal(sealed.manifestChanged, true);
    await assertSame(w, r, 'after a seal, bounded');
    await w.close();
    await r.close();
  });

  it('leaves a torn tail (a record being written) for the next refresh', async () => {
    const dir = join(tmp, 'torn');
    const w = await Collection.open(dir, { schema: { dimension: D, metric: 'l2' } });
    await w.upsert([{ id: 'x', vector: randomF32(D, 1) }]);
    const r = await Collection.open(dir, { readOnly: true });
    const at = r.info().walBytes; // where the reader stopped
    await w.upsert([{ id: 'y', vector: randomF32(D, 2) }]);
    await w.close();
    const wal = join(dir, walFileName(r.info().walGeneration!));
    const full = readFileSync(wal);
    const record = full.subarray(at);
    assert.ok(record.length > 16);
    truncateSync(wal, at + Math.floor(record.length / 2));
    const half = await r.refresh();
    assert.equal(half.records, 0);
    assert.equal(r.count(), 1);
    appendFileSync(wal, record.subarray(Math.floor(record.length / 2)));
    const whole = await r.refresh();
    assert.equal(whole.records, 1);
    assert.ok(r.has('y'));
    await r.close();
  });

  it('follows fields declared by the writer', async () => {
    const dir = join(tmp, 'fields');
    const w = await Collection.open(dir, { schema: { dimension: D, metric: 'l2' } });
    const r = await Collection.open(dir, { readOnly: true });
    await w.upsert([{ id: 'p', vector: randomF32(D, 1), metadata: { color: 'red' } }, { id: 'q', vector: randomF32(D, 2), metadata: { color: 'blue' } }]);
    await w.addFields({ color: 'keyword' });
    const res = await r.refresh();
    assert.equal(res.manifestChanged, true);
    assert.deepEqual(r.schema.fields, w.schema.fields);
    const f = { filter: { color: 'red' } };
    assert.deepEqual(await r.search(randomF32(D, 5), f), await w.search(randomF32(D, 5), f));
    await w.close();
    await r.close();
  });

  it('follows a compressed index and a writer that closes and reopens', async () => {
    const dir = join(tmp, 'sq8');
    const schema = { dimension: D, metric: 'l2' as const, index: 'Flat,SQ8,Rerank' };
    let w = await Collection.open(dir, { schema, sealRows: 300, minQuantizedRows: 64, mergePolicy: { segmentsPerTier: 2 } });
    const r = await Collection.open(dir, { readOnly: true });
    for (let b = 0; b < 4; b++) {
      await w.upsert(Array.from({ length: 200 }, (_, i) => ({ id: `q${(b * 200 + i) % 500}`, vector: randomF32(D, b * 1000 + i + 1) })));
      if (b === 1) {
        await w.close(); // a writer restart: the reader keeps following the same files
        w = await Collection.open(dir, { schema, sealRows: 300, minQuantizedRows: 64, mergePolicy: { segmentsPerTier: 2 } });
      }
      await w.idle();
      await r.refresh();
      await assertSame(w, r, `batch ${b}`);
    }
    assert.ok(r.info().segmentList.some((s) => s.index !== 'Flat'), 'a compressed segment was loaded by refresh');
    await w.close();
    await r.close();
  });

  it('refuses writers and closed collections', async () => {
    const dir = join(tmp, 'refuse');
    const w = await Collection.open(dir, { schema: { dimension: D, metric: 'l2' } });
    await assert.rejects(w.refresh(), (e) => code(e) === 'INVALID_ARGUMENT');
    await assert.rejects(Collection.create({ dimension: D, metric: 'l2' }).refresh(), (e) => code(e) === 'INVALID_ARGUMENT');
    const r = await Collection.open(dir, { readOnly: true });
    await assert.rejects(r.refresh({ upTo: -1 }), (e) => code(e) === 'INVALID_ARGUMENT');
    await assert.rejects(r.refresh({ until: 1 } as never), (e) => code(e) === 'INVALID_ARGUMENT');
    await r.close();
    await assert.rejects(r.refresh(), (e) => code(e) === 'CLOSED');
    await w.close();
  });

  it('concurrent refreshes during a stream of writes and seals always show a writer state', async () => {
    const dir = join(tmp, 'stream');
    const w = await Collection.open(dir, { schema: { dimension: D, metric: 'l2' }, sealRows: 25, mergePolicy: { segmentsPerTier: 2 } });
    const r = await Collection.open(dir, { readOnly: true });
    // the same 60 ids replaced over and over: every writer state has exactly 60 live records
    const n = 60;
    await w.upsert(Array.from({ length: n }, (_, i) => ({ id: `s${i}`, vector: randomF32(D, i + 1) })));
    let stop = false;
    const reader = (async () => {
      let refreshes = 0;
      while (!stop) {
        await r.refresh();
        const hits = await r.search(randomF32(D, 1), { k: 1000, includeMetadata: false });
        assert.equal(hits.length, n);
        assert.equal(new Set(hits.map((h) => h.id)).size, n);
        refreshes++;
      }
      return refreshes;
    })();
    const rand = rng(2);
    for (let round = 0; round < 30; round++) {
      await w.upsert(Array.from({ length: 10 }, () => { const i = Math.floor(rand() * n); return { id: `s${i}`, vector: randomF32(D, 100 * round + i) }; }));
      if (round % 10 === 9) await w.compact();
    }
    await w.idle();
    stop = true;
    assert.ok((await reader) > 0);
    await r.refresh();
    await assertSame(w, r, 'final');
    await w.close();
    await r.close();
  });
});
