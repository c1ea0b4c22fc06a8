import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isQuiverError } from '../src/errors.js';
import { createWasmKernels, JsKernels } from '../src/kernels/index.js';
import { kmeans, kmeansAsync } from '../src/math/kmeans.js';
import { Rng } from '../src/math/rng.js';

const wasm = createWasmKernels();
const js = new JsKernels();

/** n points around `blobs` well-separated centres (spread 0.1, centres ~10 apart). */
function blobs(n: number, d: number, count: number, seed: number): { data: Float32Array; label: Uint32Array } {
  const rng = new Rng(seed);
  const centres = Float64Array.from({ length: count * d }, () => rng.normal() * 10);
  const data = new Float32Array(n * d), label = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const b = i % count;
    label[i] = b;
    for (let j = 0; j < d; j++) data[i * d + j] = centres[b * d + j] + rng.normal() * 0.1;
  }
  return { data, label };
}

describe('kmeans', () => {
  for (const init of ['kmeans++', 'random'] as const) {
    it(`recovers well-separated clusters (${init} init)`, () => {
      const d = 7, k = 6, n = 600;
      const { data, label } = blobs(n, d, k, 3);
      const res = kmeans(wasm, data, n, d, k, { seed: 5, init, maxIterations: 50 });
      // each true blob maps to exactly one cluster and vice versa (k-means++ seeding finds all
      // six; random seeding may merge two, which Lloyd cannot undo, so it is only checked loosely)
      const map = new Map<number, Set<number>>();
      for (let i = 0; i < n; i++) {
        const s = map.get(label[i]) ?? new Set<number>();
        s.add(res.assignments[i]);
        map.set(label[i], s);
      }
      const perBlob = [...map.values()].map((s) => s.size);
      if (init === 'kmeans++') {
        assert.deepEqual(perBlob, new Array(k).fill(1), 'each blob in one cluster');
        assert.equal(new Set(res.assignments).size, k, 'all clusters used');
        assert.ok(res.inertia < n * d * 0.01 * 1.5, `inertia ${res.inertia} near the noise floor ${n * d * 0.01}`);
      } else {
        // random seeding starts from k distinct data points (and may leave a blob without a centre)
        const seeds = kmeans(wasm, data, n, d, k, { seed: 5, init, maxIterations: 0 });
        const rows = new Set<string>();
        for (let c = 0; c < k; c++) {
          const row = Array.from(seeds.centroids.subarray(c * d, c * d + d));
          let isPoint = false;
          for (let i = 0; i < n && !isPoint; i++) isPoint = row.every((v, j) => v === data[i * d + j]);
          assert.ok(isPoint, `seed ${c} is a data point`);
          rows.add(row.join());
        }
        assert.equal(rows.size, k, 'distinct seeds');
        assert.ok(res.inertia < seeds.inertia, 'Lloyd iterations improve on the seeds');
      }
      if (init === 'random') return;
      // converged: centroids are the means of their points
      const sums = new Float64Array(k * d), counts = new Float64Array(k);
      for (let i = 0; i < n; i++) { counts[res.assignments[i]]++; for (let j = 0; j < d; j++) sums[res.assignments[i] * d + j] += data[i * d + j]; }
      for (let c = 0; c < k; c++) if (counts[c] > 0) for (let j = 0; j < d; j++) assert.ok(Math.abs(res.centroids[c * d + j] - sums[c * d + j] / counts[c]) < 1e-3);
    });
  }

  it('is deterministic for a seed and identical on the wasm and js kernels', () => {
    const rng = new Rng(4);
    const n = 500, d = 13, k = 16;
    const data = Float32Array.from({ length: n * d }, () => rng.normal());
    const a = kmeans(wasm, data, n, d, k, { seed: 9, maxIterations: 8 });
    const b = kmeans(wasm, data, n, d, k, { seed: 9, maxIterations: 8 });
    const c = kmeans(js, data, n, d, k, { seed: 9, maxIterations: 8 });
    assert.deepEqual(a.centroids, b.centroids);
    assert.deepEqual(a.assignments, c.assignments);
    assert.deepEqual(a.centroids, c.centroids);
    const other = kmeans(wasm, data, n, d, k, { seed: 10, maxIterations: 8 });
    assert.notDeepEqual(other.centroids, a.centroids);
  });

  it('never returns an empty cluster: emptied centres move to the worst-served points', () => {
    const d = 4, k = 8, n = 200;
    const { data } = blobs(n, d, 4, 6);
    // all eight start on one point, and far away: seven clusters are empty after the first step
    const start = new Float32Array(k * d);
    for (let c = 0; c < k; c++) start.set(data.subarray(0, d), c * d);
    const res = kmeans(wasm, data, n, d, k, { initialCentroids: start, maxIterations: 30 });
    assert.ok(res.emptyRepairs >= 7, `repairs ${res.emptyRepairs}`);
    const counts = new Uint32Array(k);
    for (const a of res.assignments) counts[a]++;
    assert.ok(counts.every((c) => c > 0), `cluster sizes ${Array.from(counts)}`);
    const stuck = kmeans(wasm, data, n, d, k, { initialCentroids: start, maxIterations: 0 });
    assert.ok(res.inertia < 0.01 * stuck.inertia, `inertia ${res.inertia} vs ${stuck.inertia} with every centre on one point`);
  });

  it('reports progress and stops early once converged', () => {
    const { data } = blobs(300, 5, 3, 7);
    const seen: number[] = [];
    const res = kmeans(wasm, data, 300, 5, 3, { seed: 2, maxIterations: 100, onProgress: (f) => seen.push(f) });
    assert.ok(res.iterations < 100, `iterations ${res.iterations}`);
    assert.equal(seen[seen.length - 1], 1);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1]);
  });

  it('bad input: too few points or NaN is TRAINING_FAILED; bad shapes and options are clear errors', () => {
    const before = wasm.memory.bytesInUse;
    const data = new Float32Array(40);
    assert.throws(() => kmeans(wasm, data, 10, 4, 16), (e) => isQuiverError(e, 'TRAINING_FAILED') && e.details.expected === 16 && e.details.received === 10);
    const nan = new Float32Array(40); nan[13] = NaN;
    assert.throws(() => kmeans(wasm, nan, 10, 4, 2), (e) => isQuiverError(e, 'TRAINING_FAILED') && e.details.row === 3);
    assert.throws(() => kmeans(wasm, data, 11, 4, 2), (e) => isQuiverError(e, 'DIMENSION_MISMATCH'));
    assert.throws(() => kmeans(wasm, data, 10, 4, 0), (e) => isQuiverError(e, 'INVALID_ARGUMENT'));
    assert.throws(() => kmeans(wasm, data, 10, 4, 2, { init: 'best' as 'random' }), (e) => isQuiverError(e, 'INVALID_ARGUMENT'));
    assert.throws(() => kmeans(wasm, data, 10, 4, 2, { initialCentroids: new Float32Array(3) }), (e) => isQuiverError(e, 'INVALID_ARGUMENT'));
    // a failed call leaves no kernel memory behind
    assert.equal(wasm.memory.bytesInUse, before);
  });

  it('kmeansAsync pauses between blocks of kernel work and gives the same clustering; an error in a pause frees its memory', async () => {
    // 9,000 points x 160 clusters x 100 dimensions: 1.44e8 multiply-adds an assignment, above the
    // 2^27 of one block, so every assignment and the k-means++ seeding pause at least once
    const n = 9000, d = 100, k = 160;
    const { data } = blobs(n, d, 40, 9);
    const sync = kmeans(wasm, data, n, d, k, { seed: 3, maxIterations: 3 });
    let pauses = 0;
    const res = await kmeansAsync(wasm, data, n, d, k, { seed: 3, maxIterations: 3, pause: async () => { pauses++; await new Promise((r) => setTimeout(r, 0)); } });
    assert.deepEqual(res.centroids, sync.centroids);
    assert.deepEqual(res.assignments, sync.assignments);
    assert.equal(res.inertia, sync.inertia);
    // seeding (at least 1) + one per assignment (iterations + the final one)
    assert.ok(pauses >= 1 + sync.iterations + 1, `paused ${pauses} times over ${sync.iterations} iterations`);
    const before = wasm.memory.bytesInUse;
    await assert.rejects(kmeansAsync(wasm, data, n, d, k, { seed: 3, maxIterations: 3, pause: async () => { throw new Error('stop'); } }), /stop/);
    assert.equal(wasm.memory.bytesInUse, before, 'kernel memory released after the failed pause');
  });

  it('releases its kernel memory', () => {
    const before = js.memory.bytesInUse;
    kmeans(js, new Rng(1).sample(1000, 100).reduce((a, v, i) => { a[i] = v; return a; }, new Float32Array(100)), 25, 4, 5, { maxIterations: 3 });
    assert.equal(js.memory.bytesInUse, before);
  });
});
