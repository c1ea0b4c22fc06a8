import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Collection } from '../src/index.js';
import { npyToFloat32, parseNpy } from '../src/io/npy.js';
import { parseFvecs, parseIvecs } from '../src/io/vecs.js';
import { readData, recallAt } from './helpers/data.js';

// Exact search must reproduce the published ground truth of real datasets.

async function ordinalsOf(col: Collection, queries: Float32Array, nq: number, k: number): Promise<Uint32Array[]> {
  const d = col.dimension;
  const hits = await col.search(Array.from({ length: nq }, (_, q) => queries.subarray(q * d, (q + 1) * d)), { k, includeMetadata: false });
  return hits.map((list) => Uint32Array.from(list, (h) => Number(h.id)));
}

async function load(dimension: number, metric: 'l2' | 'cosine', data: Float32Array, kernels: 'wasm' | 'js'): Promise<Collection> {
  const col = Collection.create({ dimension, metric }, { kernels });
  const n = data.length / dimension;
  const batch = [];
  for (let i = 0; i < n; i++) batch.push({ id: String(i), vector: data.subarray(i * dimension, (i + 1) * dimension) });
  await col.upsert(batch);
  return col;
}

describe('exact search reproduces ground truth', () => {
  it('SIFT10K (L2): recall@10 = 1.0 and recall@100 = 1.0, wasm and js kernels', async () => {
    const base = parseFvecs(readData('sift10k', 'base.fvecs'));
    const query = parseFvecs(readData('sift10k', 'query.fvecs'));
    const gt = parseIvecs(readData('sift10k', 'groundtruth.ivecs'));
    assert.equal(base.count, 10000);
    for (const kernels of ['wasm', 'js'] as const) {
      const col = await load(128, 'l2', base.data, kernels);
      const found = await ordinalsOf(col, query.data, query.count, 100);
      assert.equal(recallAt(found, gt.data, gt.dimension, 10), 1, `${kernels} recall@10`);
      assert.equal(recallAt(found, gt.data, gt.dimension, 100), 1, `${kernels} recall@100`);
      col.close();
    }
  });

  it('MS MARCO USE-512 (cosine, float16 base): recall@10 = 1.0, recall@100 >= 0.9999', async () => {
    const base = npyToFloat32(parseNpy(readData('msmarco-use512', 'base.f16.npy')));
    const query = parseFvecs(readData('msmarco-use512', 'query.fvecs'));
    const gt = parseIvecs(readData('msmarco-use512', 'groundtruth.cosine.ivecs'));
    assert.equal(base.length, 47794 * 512);
    const col = await load(512, 'cosine', base, 'wasm');
    const found = await ordinalsOf(col, query.data, query.count, 100);
    const r10 = recallAt(found, gt.data, gt.dimension, 10);
    const r100 = recallAt(found, gt.data, gt.dimension, 100);
    assert.equal(r10, 1, 'recall@10');
    assert.ok(r100 >= 0.9999, `recall@100 = ${r100}`);
    // the JS twin on a slice of the queries (it is ~8x slower)
    const colJs = await load(512, 'cosine', base, 'js');
    const foundJs = await ordinalsOf(colJs, query.data, 50, 10);
    assert.equal(recallAt(foundJs, gt.data, gt.dimension, 10), 1, 'js recall@10');
    col.close(); colJs.close();
  });
});
