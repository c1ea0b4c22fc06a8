import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isQuiverError } from '../src/errors.js';
import { FlatQuantizedIndex } from '../src/index/flat-quantized.js';
import type { ExactScorer } from '../src/index/types.js';
import { npyToFloat32, parseNpy } from '../src/io/npy.js';
import { parseFvecs, parseIvecs } from '../src/io/vecs.js';
import { createKernels, createWasmKernels } from '../src/kernels/index.js';
import { Rng } from '../src/math/rng.js';
import { OptimizedProductQuantizer } from '../src/quant/opq.js';
import { fastScanLayout, ProductQuantizer, quantizeLookupTable } from '../src/quant/pq.js';
import { createQuantizer } from '../src/quant/registry.js';
import type { Quantizer } from '../src/quant/types.js';
import { readData, recallAt } from './helpers/data.js';

// Product quantization: spec grammar and bad input, codebooks on structured data, the fast-scan
// layout and table quantization, and the 32x-compression floor on MS MARCO. Life cycle,
// serialization and kernel twins are in the shared suite (test/quant.test.ts).

const wasm = createWasmKernels();

function codesOf(q: Quantizer, x: Float32Array, n: number): Uint8Array {
  const rows = new Uint8Array(n * q.codeSize);
  q.encode(x, n, rows);
  return rows;
}

/** Scores rows through the quantizer's scan layout in kernel memory. */
function scoreRows(q: Quantizer, query: Float32Array, rows: Uint8Array, n: number): Float32Array {
  const mem = q.kernels.memory, layout = q.scanLayout;
  const packed = new Uint8Array(Math.ceil(n / layout.blockRows) * layout.blockBytes);
  layout.pack(rows, n, packed);
  const cp = mem.alloc(packed.length), op = mem.alloc(n * 4);
  mem.u8(cp, packed.length).set(packed);
  const s = q.prepare(query);
  s.scoreBlock(cp, n, op);
  const out = Float32Array.from(mem.f32(op, n));
  s.release();
  mem.release(cp); mem.release(op);
  return out;
}

describe('PQ spec grammar and bad input', () => {
  const ctx = (dimension: number) => ({ dimension, metric: 'dot' as const, kernels: wasm });

  it('parses PQ{m}x8, PQ{m}x4 and PQ{m}x4fs with their code sizes and layouts', () => {
    const cases: Array<[string, number, number, number]> = [['PQ16x8', 16, 16, 1], ['PQ16x4', 16, 8, 1], ['PQ16x4fs', 16, 8, 32], ['PQ5x4', 5, 3, 1], ['PQ128x4fs', 128, 64, 32]];
    for (const [spec, m, codeSize, blockRows] of cases) {
      const q = createQuantizer(spec, ctx(640)) as ProductQuantizer;
      assert.equal(q.spec, spec);
      assert.equal(q.m, m);
      assert.equal(q.codeSize, codeSize);
      assert.equal(q.scanLayout.blockRows, blockRows);
      if (blockRows === 32) assert.equal(q.scanLayout.blockBytes, m * 16);
      assert.equal(q.minTrainingVectors, q.k);
      assert.equal(q.bounded, false);
    }
  });

  it('a dimension not divisible by m is INVALID_ARGUMENT naming d and m', () => {
    assert.throws(() => createQuantizer('PQ16x8', ctx(100)), (e) => isQuiverError(e, 'INVALID_ARGUMENT') && e.details.d === 100 && e.details.m === 16 && /100.*16/.test(e.message));
    assert.throws(() => createQuantizer('PQ3x4fs', ctx(100)), (e) => isQuiverError(e, 'INVALID_ARGUMENT') && e.details.m === 3);
  });

  it('bad bit widths and fast-scan on 8 bits are INVALID_ARGUMENT; other texts are UNKNOWN_SPEC', () => {
    for (const spec of ['PQ16x5', 'PQ16x16', 'PQ16x8fs', 'PQ0x8', 'PQ016x8']) {
      assert.throws(() => createQuantizer(spec, ctx(64)), (e) => isQuiverError(e, 'INVALID_ARGUMENT') && e.details.spec === spec, spec);
    }
    for (const spec of ['PQ', 'PQ16', 'PQ16x', 'pq16x8', 'PQ16x8f']) assert.throws(() => createQuantizer(spec, ctx(64)), (e) => isQuiverError(e, 'UNKNOWN_SPEC'), spec);
  });

  it('fewer training vectors than centroids per subspace is TRAINING_FAILED', () => {
    const rng = new Rng(1);
    const x = Float32Array.from({ length: 255 * 8 }, () => rng.normal());
    const q8 = createQuantizer('PQ4x8', ctx(8));
    assert.throws(() => q8.train(x, 255), (e) => isQuiverError(e, 'TRAINING_FAILED') && e.details.expected === 256 && e.details.received === 255);
    const q4 = createQuantizer('PQ4x4fs', ctx(8));
    assert.throws(() => q4.train(x, 15), (e) => isQuiverError(e, 'TRAINING_FAILED') && e.details.expected === 16);
    q4.train(x, 16); // exactly k vectors is enough
    assert.equal(q4.trained, true);
  });

  it('codes of another quantizer are refused by the index (INCOMPATIBLE_CODES)', () => {
    const rng = new Rng(2);
    const x = Float32Array.from({ length: 300 * 16 }, () => rng.normal());
    const a = createQuantizer('PQ4x4', ctx(16)), b = createQuantizer('PQ4x4', ctx(16));
    a.train(x, 300, { seed: 1 });
    b.train(x, 300, { seed: 2 });
    assert.notEqual(a.fingerprint, b.fingerprint);
    const index = new FlatQuantizedIndex(a);
    const rows = codesOf(b, x, 10);
    assert.throws(() => index.addCodes(rows, 10, { spec: b.spec, fingerprint: b.fingerprint }), (e) => isQuiverError(e, 'INCOMPATIBLE_CODES'));
    index.addCodes(codesOf(a, x, 10), 10, { spec: a.spec, fingerprint: a.fingerprint });
    assert.equal(index.count, 10);
    index.release();
  });
});

describe('PQ codebooks and scoring', () => {
  it('recovers a product-structured set exactly: each subspace takes at most k distinct values', () => {
    const rng = new Rng(3);
    const m = 6, sd = 3, d = m * sd, n = 800;
    // per subspace 12 distinct points (fewer than the 16 or 256 centroids): k-means must put a
    // centroid on each, and every vector then decodes exactly
    const atoms = Float32Array.from({ length: m * 12 * sd }, () => rng.normal() * 5);
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let s = 0; s < m; s++) {
      const a = s * 12 + rng.int(12);
      x.set(atoms.subarray(a * sd, a * sd + sd), i * d + s * sd);
    }
    for (const spec of ['PQ6x4', 'PQ6x8', 'PQ6x4fs']) {
      const q = createQuantizer(spec, { dimension: d, metric: 'l2', kernels: wasm });
      q.train(x, n, { seed: 4 });
      const rows = codesOf(q, x, n);
      const back = new Float32Array(n * d);
      q.decode(rows, n, back);
      let err = 0;
      for (let i = 0; i < n * d; i++) err = Math.max(err, Math.abs(back[i] - x[i]));
      assert.ok(err < 1e-4, `${spec}: max reconstruction error ${err}`);
    }
  });

  it('x4 and x4fs share codes; fast-scan scores stay within m * scale / 2 of the float table', () => {
    const rng = new Rng(5);
    const d = 40, n = 333;
    const x = Float32Array.from({ length: n * d }, () => rng.normal());
    for (const metric of ['dot', 'l2'] as const) {
      const plain = createQuantizer('PQ10x4', { dimension: d, metric, kernels: wasm }) as ProductQuantizer;
      const fast = createQuantizer('PQ10x4fs', { dimension: d, metric, kernels: wasm }) as ProductQuantizer;
      plain.train(x, n, { seed: 6 });
      fast.train(x, n, { seed: 6 });
      const rows = codesOf(plain, x, n);
      assert.deepEqual(codesOf(fast, x, n), rows, 'same training, same codes');
      const query = Float32Array.from({ length: d }, () => rng.normal());
      const exact = scoreRows(plain, query, rows, n);
      const approx = scoreRows(fast, query, rows, n);
      const { scale } = quantizeLookupTable(fast.lookupTable(query), 10);
      for (let i = 0; i < n; i++) assert.ok(Math.abs(approx[i] - exact[i]) <= (10 * scale) / 2 + 1e-4 * (1 + Math.abs(exact[i])), `${metric} row ${i}: ${approx[i]} vs ${exact[i]}`);
    }
  });

  it('the fast-scan layout puts vector j and j + 16 of a block in one byte per subspace', () => {
    const m = 3, n = 40, rowBytes = 2;
    const rows = new Uint8Array(n * rowBytes);
    for (let i = 0; i < n; i++) { rows[i * 2] = (i % 16) | (((i + 1) % 16) << 4); rows[i * 2 + 1] = (i + 2) % 16; }
    const layout = fastScanLayout(m);
    const out = new Uint8Array(2 * layout.blockBytes).fill(0xee);
    layout.pack(rows, n, out);
    for (let i = 0; i < 64; i++) {
      const block = i >> 5, v = i & 31;
      for (let s = 0; s < m; s++) {
        const byte = out[block * m * 16 + s * 16 + (v & 15)];
        const code = v < 16 ? byte & 15 : byte >> 4;
        const want = i < n ? [(i % 16), ((i + 1) % 16), ((i + 2) % 16)][s] : 0; // rows past n: zero codes
        assert.equal(code, want, `vector ${i} subspace ${s}`);
      }
    }
  });

  it('quantizeLookupTable keeps each subspace within its own range and the sums within m * scale / 2', () => {
    const rng = new Rng(7);
    const m = 9;
    const lut = Float32Array.from({ length: m * 16 }, (_, i) => rng.normal() * (1 + (i >> 4)));
    const { table, bias, scale } = quantizeLookupTable(lut, m);
    for (let s = 0; s < m; s++) assert.ok(Math.min(...table.subarray(s * 16, s * 16 + 16)) === 0, 'each subspace starts at 0');
    for (let trial = 0; trial < 200; trial++) {
      let exact = 0, approx = 0;
      for (let s = 0; s < m; s++) { const c = rng.int(16); exact += lut[s * 16 + c]; approx += table[s * 16 + c]; }
      assert.ok(Math.abs(bias + scale * approx - exact) <= (m * scale) / 2 + 1e-9);
    }
  });
});

describe('PQ on MS MARCO USE-512 (47,794 x 512, cosine; first 200 queries)', () => {
  it('PQ128x4fs at 32x compression (64 bytes per vector): recall@10 >= 0.98 with x10 reranking', () => {
    const base = npyToFloat32(parseNpy(readData('msmarco-use512', 'base.f16.npy')));
    const queries = parseFvecs(readData('msmarco-use512', 'query.fvecs'));
    const gt = parseIvecs(readData('msmarco-use512', 'groundtruth.cosine.ivecs'));
    const d = 512, n = base.length / d, nq = 200;
    const kernels = createKernels();
    const q = createQuantizer('PQ128x4fs', { dimension: d, metric: 'dot', kernels });
    assert.equal(q.codeSize, (d * 4) / 32, '32x smaller than float32');
    q.train(base.subarray(0, 10000 * d), 10000, { seed: 42 });
    const index = new FlatQuantizedIndex(q);
    index.add(base, n);
    const exact: ExactScorer = {
      scoreOrdinals(query, ords, count, out) {
        for (let i = 0; i < count; i++) {
          let s = 0;
          for (let j = 0, o = ords[i] * d; j < d; j++) s += query[j] * base[o + j];
          out[i] = s;
        }
      },
    };
    const recall = (factor: number): number => {
      const res = index.searchBatch(queries.data.subarray(0, nq * d), nq, 10, factor ? { rerank: { factor }, exact } : {});
      const found = Array.from({ length: nq }, (_, qi) => res.ords.subarray(qi * 10, qi * 10 + res.counts[qi]));
      if (factor) for (const r of res.reranked) assert.equal(r, 10 * factor);
      return recallAt(found, gt.data, gt.dimension, 10);
    };
    const r10 = recall(10);
    assert.ok(r10 >= 0.98, `PQ128x4fs x10 rerank recall@10 ${r10}`);
    const r0 = recall(0);
    assert.ok(r0 >= 0.6 && r0 < r10, `without rerank ${r0}`);
    index.release();
  });
});

describe('OPQ: PQ after a learned rotation', () => {
  /** Correlated data: decaying variances mixed by a random rotation, so PQ subspaces share structure. */
  function correlated(n: number, d: number, seed: number): Float32Array {
    const rng = new Rng(seed), mixRng = new Rng(77); // one mixing matrix for every sample
    const mix = new Float64Array(d * d);
    for (let i = 0; i < d * d; i++) mix[i] = mixRng.normal() / Math.sqrt(d);
    const x = new Float32Array(n * d);
    const z = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) z[j] = rng.normal() * (j < 4 ? 4 : 1 / (1 + j));
      for (let a = 0; a < d; a++) { let s = 0; for (let b = 0; b < d; b++) s += mix[a * d + b] * z[b]; x[i * d + a] = s; }
    }
    return x;
  }

  function relativeError(q: Quantizer, x: Float32Array, n: number): number {
    const back = new Float32Array(x.length);
    q.decode(codesOf(q, x, n), n, back);
    let err = 0, tot = 0;
    for (let i = 0; i < x.length; i++) { err += (back[i] - x[i]) ** 2; tot += x[i] ** 2; }
    return err / tot;
  }

  it('learns an orthogonal rotation that lowers the quantization error of PQ on correlated data', () => {
    const d = 32, n = 2000;
    const train = correlated(n, d, 1), test = correlated(500, d, 2);
    const pq = createQuantizer('PQ8x4', { dimension: d, metric: 'l2', kernels: wasm });
    const opq = createQuantizer('OPQ8x4', { dimension: d, metric: 'l2', kernels: wasm }) as OptimizedProductQuantizer;
    pq.train(train, n, { seed: 3 });
    opq.train(train, n, { seed: 3 });
    const r = opq.rotationMatrix;
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += r[a * d + j] * r[b * d + j];
      assert.ok(Math.abs(s - (a === b ? 1 : 0)) < 1e-4, `R R^T [${a}][${b}] = ${s}`);
    }
    const ePq = relativeError(pq, test, 500), eOpq = relativeError(opq, test, 500);
    assert.ok(eOpq < 0.6 * ePq, `OPQ error ${eOpq} vs PQ ${ePq}`); // measured: 0.065 vs 0.188
  });

  it('spec errors: m must divide d; fast-scan only with 4 bits', () => {
    assert.throws(() => createQuantizer('OPQ16x8', { dimension: 100, metric: 'dot', kernels: wasm }), (e) => isQuiverError(e, 'INVALID_ARGUMENT') && e.details.d === 100 && e.details.m === 16);
    assert.throws(() => createQuantizer('OPQ8x8fs', { dimension: 64, metric: 'dot', kernels: wasm }), (e) => isQuiverError(e, 'INVALID_ARGUMENT'));
    const q = createQuantizer('OPQ8x4fs', { dimension: 64, metric: 'dot', kernels: wasm });
    assert.equal(q.spec, 'OPQ8x4fs');
    assert.equal(q.scanLayout.blockRows, 32);
    assert.equal(q.codeSize, 4);
  });
});

describe('PQ training in slices (trainAsync)', () => {
  it('gives the same codebooks as train(), pausing between slices; also through a transform and for OPQ; a failing pause leaves it untrained', async () => {
    const kernels = createWasmKernels();
    const d = 32, n = 8000;
    const rng = new Rng(21);
    const sample = Float32Array.from({ length: n * d }, () => rng.normal());
    for (const spec of ['PQ8x8', 'ROT,PQ8x8', 'OPQ8x8']) {
      const sync = createQuantizer(spec, { dimension: d, metric: 'l2', kernels });
      sync.train(sample, n, { seed: 4 });
      const sliced = createQuantizer(spec, { dimension: d, metric: 'l2', kernels });
      let pauses = 0;
      assert.ok(sliced.trainAsync, `${spec} trains in slices`);
      // 8 subspaces, each a k-means of 8,000 points x 256 centroids x 4 dimensions (8.2e6 multiply-adds an
      // assignment, less than a slice): the training pauses at least between subspaces
      await sliced.trainAsync!(sample, n, { seed: 4, pause: async () => { pauses++; } });
      assert.equal(sliced.fingerprint, sync.fingerprint, `${spec}: same parameters`);
      // OPQ: 4 alternation rounds + the final pass, each with 8 k-means and pauses around its Procrustes step
      assert.ok(pauses >= (spec === 'OPQ8x8' ? 5 * 7 + 4 * 3 : 7), `${spec}: paused ${pauses} times`);
      const failing = createQuantizer(spec, { dimension: d, metric: 'l2', kernels });
      await assert.rejects(failing.trainAsync!(sample, n, { seed: 4, pause: async () => { throw new Error('stop'); } }), /stop/);
      assert.equal(failing.trained, false);
    }
  });
});
