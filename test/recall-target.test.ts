import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Collection } from '../src/node.js';
import { chooseSetting, TARGET_MARGIN } from '../src/index/calibration.js';
import { parseFvecs } from '../src/io/vecs.js';
import { readData } from './helpers/data.js';

// Recall targets: each approximate segment measures itself when built (calibration.ts) and a
// search with { recall } takes the cheapest measured setting that reaches it. Checked on
// held-out queries (the SIFT10K query set, never seen by the calibration).

const root = mkdtempSync(join(tmpdir(), 'quiver-recall-'));
after(() => rmSync(root, { recursive: true, force: true }));
const sift = parseFvecs(readData('sift10k', 'base.fvecs'));
const siftQ = parseFvecs(readData('sift10k', 'query.fvecs'));
const D = sift.dimension, N = 10000, NQ = 100;
const records = Array.from({ length: N }, (_, i) => ({ id: `v${i}`, vector: sift.data.subarray(i * D, (i + 1) * D) }));
const queries = Array.from({ length: NQ }, (_, q) => siftQ.data.subarray(q * D, (q + 1) * D));

describe('recall targets', () => {
  const truth = (async () => {
    const exact = Collection.create({ dimension: D, metric: 'l2' });
    await exact.upsert(records);
    return (await exact.search(queries, { k: 10 })).map((h) => new Set(h.map((x) => x.id)));
  })();

  for (const spec of ['HNSW16,SQ8,Rerank', 'HNSW8,SQ8', 'IVF,SQ8,Rerank', 'IVF,RaBitQ4,Rerank']) {
    it(`${spec}: held-out queries reach each target within 0.01, and lower targets cost less`, async () => {
      const col = await Collection.open(join(root, spec.replace(/,/g, '_')), { schema: { dimension: D, metric: 'l2', index: spec } });
      await col.upsert(records);
      await col.flush();
      const t = await truth;
      let lastCost = -1;
      const achieved: Record<string, number> = {};
      // without reranking, code error caps recall below 0.99: such a target gets the best setting
      for (const target of spec.includes('Rerank') ? [0.8, 0.9, 0.95, 0.99] : [0.8, 0.9, 0.95]) {
        const res = await col.search(queries, { k: 10, recall: target, withStats: true });
        let found = 0, cost = 0;
        res.hits.forEach((h, q) => { for (const x of h) if (t[q].has(x.id)) found++; cost += res.stats[q].scanned + 16 * res.stats[q].reranked; });
        const recall = found / (NQ * 10);
        achieved[target] = recall;
        assert.ok(recall >= target - 0.01, `${spec}: target ${target}, reached ${recall} (${JSON.stringify(achieved)})`);
        assert.ok(cost >= lastCost, `${spec}: a higher target does not cost less (${cost} after ${lastCost})`);
        lastCost = cost;
      }
      // explicit knobs still win over the target
      const knob = await col.search(queries.slice(0, 3), { k: 10, recall: 0.99, withStats: true, ...(spec.startsWith('IVF') ? { nprobe: 1 } : { ef: 10 }) });
      const target = await col.search(queries.slice(0, 3), { k: 10, recall: 0.99, withStats: true });
      assert.ok(knob.stats[0].scanned < target.stats[0].scanned);
      await col.close();
    });
  }

  it('chooseSetting takes the cheapest point that clears the margin, else the best one; scales ef with k', () => {
    const cal = { k: 10, queries: 200, points: [
      { params: { ef: 16 }, recall: 0.9, cost: 100 }, { params: { ef: 32 }, recall: 0.96, cost: 200 },
      { params: { ef: 64 }, recall: 0.99, cost: 400 }, { params: { ef: 48, rerankFactor: 2 }, recall: 0.97, cost: 150 },
    ] };
    assert.equal(1 - (1 - 0.95) * (1 - TARGET_MARGIN), 0.96);
    assert.deepEqual(chooseSetting(cal, 0.95, 10), { ef: 48, rerankFactor: 2 });
    assert.deepEqual(chooseSetting(cal, 0.8, 10), { ef: 16 });
    assert.deepEqual(chooseSetting(cal, 0.999, 10), { ef: 64 });
    assert.deepEqual(chooseSetting(cal, 0.8, 25), { ef: 40 });
  });

  it('a bad recall is INVALID_ARGUMENT; exact collections ignore it', async () => {
    const col = Collection.create({ dimension: 2 });
    await col.upsert([{ id: 'a', vector: [1, 0] }]);
    for (const r of [0, -0.5, 1.5, Number.NaN, '0.9']) {
      await assert.rejects(col.search([1, 0], { recall: r as number }), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT', String(r));
    }
    assert.equal((await col.search([1, 0], { recall: 0.5 }))[0].id, 'a');
  });
});
