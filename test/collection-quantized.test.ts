import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Collection, MemoryDirectory, type Metric } from '../src/index.js';
import { randomF32 } from './helpers/random.js';

// Compressed indexes inside collections: sealed segments train a quantizer, keep codes in
// memory, rerank from the full vectors in their files, and survive reopen and merges.

function reference(metric: Metric, ids: string[], base: Float32Array[], q: Float32Array, k: number): string[] {
  const score = (x: Float32Array) => {
    let dot = 0, nx = 0, nq = 0, l2 = 0;
    for (let j = 0; j < q.length; j++) { dot += q[j] * x[j]; nx += x[j] * x[j]; nq += q[j] * q[j]; l2 += (q[j] - x[j]) ** 2; }
    return metric === 'dot' ? dot : metric === 'l2' ? -l2 : dot / Math.sqrt(nx * nq);
  };
  return base.map((x, i) => ({ i, s: score(x) })).sort((a, b) => b.s - a.s || a.i - b.i).slice(0, k).map((h) => ids[h.i]);
}

// recall floors: oversampling x10 finds the exact top 10 on this data; the bound-driven rule is
// probabilistic (eps0 = 1.9 covers ~99% of estimates), so an occasional rank-10 miss is allowed
const CASES: { index: string; metric: Metric; floor: number }[] = [
  { index: 'Flat,SQ8,Rerank10', metric: 'cosine', floor: 1 },
  { index: 'Flat,SQ4,Rerank10', metric: 'l2', floor: 1 },
  { index: 'Flat,RaBitQ1,Rerank', metric: 'cosine', floor: 0.97 },
  { index: 'Flat,RaBitQ4,Rerank', metric: 'dot', floor: 0.97 },
];

describe('collections with compressed indexes', () => {
  for (const { index, metric, floor } of CASES) {
    it(`${index} (${metric}): exact results after rerank, codes in memory, vectors on disk, reopen`, async () => {
      const d = 40, n = 3000;
      const dir = new MemoryDirectory();
      let col = await Collection.open(dir, { schema: { dimension: d, metric, index }, sealRows: 1000, mergePolicy: { segmentsPerTier: 2 } });
      assert.equal(col.index, index);
      const ids = Array.from({ length: n }, (_, i) => `v${i}`);
      const base = ids.map((_, i) => randomF32(d, 50_000 + i));
      for (let s = 0; s < n; s += 500) await col.upsert(ids.slice(s, s + 500).map((id, j) => ({ id, vector: base[s + j], metadata: { i: s + j } })));
      await col.flush();
      await col.idle();
      const sealed = col.info().segmentList.filter((s) => s.state === 'sealed');
      assert.ok(sealed.length >= 1);
      const stats = col.stats();
      assert.ok(stats.indexBytes < stats.vectorBytes, `codes (${stats.indexBytes} B) smaller than vectors (${stats.vectorBytes} B)`);
      const queries = Array.from({ length: 15 }, (_, i) => randomF32(d, 7 + i));
      const check = async (c: Collection, liveIds: string[], liveBase: Float32Array[]) => {
        const { hits, stats } = await c.search(queries, { k: 10, includeVector: true, withStats: true });
        const reranked = stats.map((s) => s.reranked);
        let found = 0;
        for (let q = 0; q < queries.length; q++) {
          const want = new Set(reference(metric, liveIds, liveBase, queries[q], 10));
          for (const h of hits[q]) if (want.has(h.id)) found++;
          assert.ok(reranked[q] >= 10, `query ${q} reranked ${reranked[q]}`);
          // reranked scores are exact scores of the stored vectors
          for (const h of hits[q]) {
            const x = h.vector!, qv = queries[q];
            let dot = 0, nx = 0, nq = 0, l2 = 0;
            for (let j = 0; j < d; j++) { dot += qv[j] * x[j]; nx += x[j] * x[j]; nq += qv[j] * qv[j]; l2 += (qv[j] - x[j]) ** 2; }
            const exact = metric === 'dot' ? dot : metric === 'l2' ? -l2 : dot / Math.sqrt(nx * nq);
            assert.ok(Math.abs(h.score - exact) <= 1e-4 * (1 + Math.abs(exact)), `score ${h.score} vs exact ${exact}`);
          }
        }
        const recall = found / (queries.length * 10);
        assert.ok(recall >= floor, `${index} recall@10 ${recall} < ${floor}`);
      };
      await check(col, ids, base);
      // get() reads the stored vector back from the segment file, exactly
      assert.deepEqual(col.get('v1234').vector, base[1234]);
      assert.deepEqual(col.get('v1234').metadata, { i: 1234 });
      // deletes mask codes; replacements move records to the mutable segment
      const gone = ids.filter((_, i) => i % 7 === 0);
      await col.delete(gone);
      await col.upsert([{ id: 'v1', vector: base[2] }]);
      const live = new Map(ids.map((id, i) => [id, base[i]]));
      for (const g of gone) live.delete(g);
      live.set('v1', base[2]);
      await check(col, [...live.keys()], [...live.values()]);
      col = await (async () => { await col.close(); return Collection.open(dir); })();
      await check(col, [...live.keys()], [...live.values()]);
      await col.compact();
      assert.equal(col.info().segmentList.filter((s) => s.state === 'sealed').length, 1);
      await check(col, [...live.keys()], [...live.values()]);
      assert.deepEqual((await col.verify()).problems, []);
      await col.close();
    });
  }

  it('in-memory collections with a compressed spec seal too', async () => {
    const col = Collection.create({ dimension: 16, metric: 'cosine', index: 'Flat,SQ8,Rerank' });
    const base = Array.from({ length: 600 }, (_, i) => randomF32(16, i + 1));
    await col.upsert(base.map((v, i) => ({ id: `m${i}`, vector: v })));
    await col.flush();
    assert.ok(col.stats().indexBytes < col.stats().vectorBytes);
    const q = randomF32(16, 99);
    assert.deepEqual((await col.search(q, { k: 5 })).map((h) => h.id), reference('cosine', base.map((_, i) => `m${i}`), base, q, 5));
    await col.close();
  });

  it('bad specs are UNKNOWN_SPEC naming the grammar', () => {
    for (const bad of ['Flat,Nope', 'HNSW2', 'HNSW32,PQ16x4fs', 'IVF,Rerank', 'Flat,Rerank', 'Flat,SQ8,Rerank0']) {
      assert.throws(() => Collection.create({ dimension: 8, index: bad }), (e: { code?: string; message?: string }) => e.code === 'UNKNOWN_SPEC' && /grammar/.test(e.message ?? ''), bad);
    }
  });
});
