import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isQuiverError } from '../src/errors.js';
import { FlatQuantizedIndex } from '../src/index/flat-quantized.js';
import type { ExactScorer } from '../src/index/types.js';
import { npyToFloat32, parseNpy } from '../src/io/npy.js';
import { parseFvecs, parseIvecs } from '../src/io/vecs.js';
import { createKernels, createWasmKernels, type Kernels } from '../src/kernels/index.js';
import { Rng } from '../src/math/rng.js';
import { ExtendedCodeSearch, RABITQ_EPS0, RaBitQuantizer } from '../src/quant/rabitq.js';
import { createQuantizer } from '../src/quant/registry.js';
import type { QuantMetric, Quantizer } from '../src/quant/types.js';
import { DATA_DIR, readData, recallAt } from './helpers/data.js';

// RaBitQ: the code search, the estimator and its bound, and recall floors on real data.
// The shared life-cycle suite (test/quant.test.ts) covers serialization, bad input and the
// kernel twins for RaBitQ1, RaBitQ3fast, RaBitQ4 and RaBitQ8.

const wasm = createWasmKernels();

function unitGaussian(rng: Rng, d: number): Float64Array {
  const a = new Float64Array(d);
  let s = 0;
  for (let i = 0; i < d; i++) { a[i] = rng.normal(); s += a[i] * a[i]; }
  for (let i = 0; i < d; i++) a[i] = Math.abs(a[i]) / Math.sqrt(s);
  return a;
}

function cosineOf(absO: Float64Array, levels: Int32Array): number {
  let ip = 0, n2 = 0;
  for (let i = 0; i < absO.length; i++) { const m = levels[i] + 0.5; ip += m * absO[i]; n2 += m * m; }
  return ip / Math.sqrt(n2);
}

/** Scores every code of `q` for one query: f32[n] estimates and bounds. */
function scoreAll(q: Quantizer, codes: Uint8Array, n: number, query: Float32Array): { est: Float32Array; bound: Float32Array } {
  const mem = q.kernels.memory;
  const layout = q.scanLayout;
  let packed = codes;
  if (layout.blockRows > 1) {
    packed = new Uint8Array(Math.ceil(n / layout.blockRows) * layout.blockBytes);
    layout.pack(codes, n, packed);
  }
  const cp = mem.alloc(packed.length), op = mem.alloc(n * 4), bp = mem.alloc(n * 4);
  mem.u8(cp, packed.length).set(packed);
  const s = q.prepare(query);
  s.scoreBlock(cp, n, op, bp);
  const res = { est: Float32Array.from(mem.f32(op, n)), bound: Float32Array.from(mem.f32(bp, n)) };
  s.release();
  for (const p of [cp, op, bp]) mem.release(p);
  return res;
}

describe('extended RaBitQ code search', () => {
  it('exact() finds the best grid point: brute force over every code in small dimensions', () => {
    const rng = new Rng(5);
    for (const [D, B] of [[3, 2], [4, 3], [5, 3], [4, 4], [3, 5]] as const) {
      const search = new ExtendedCodeSearch(D, B);
      const K = search.maxLevel;
      for (let trial = 0; trial < 20; trial++) {
        const a = unitGaussian(rng, D);
        if (trial === 0) { a.fill(0); a[1] = 1; } // one-hot: the optimum is a single saturated level
        if (trial === 1) { a[0] = 0; let s = 0; for (const v of a) s += v * v; for (let i = 0; i < D; i++) a[i] /= Math.sqrt(s); }
        const levels = new Int32Array(D);
        const got = search.exact(a, levels);
        assert.ok(Math.abs(got - cosineOf(a, levels)) < 1e-12, 'returned cosine matches the levels');
        let best = 0;
        const k = new Int32Array(D);
        for (let code = 0; code < (K + 1) ** D; code++) {
          let c = code;
          for (let i = 0; i < D; i++) { k[i] = c % (K + 1); c = Math.floor(c / (K + 1)); }
          best = Math.max(best, cosineOf(a, k));
        }
        assert.ok(got >= best - 1e-12, `D=${D} B=${B} trial ${trial}: exact ${got} < brute force ${best}`);
      }
    }
  });

  it('exact() (K-way merge) equals the textbook heap sweep, and fast rounding comes close', () => {
    const rng = new Rng(6);
    for (const B of [2, 3, 4, 5, 6, 8]) {
      for (const D of [64, 200]) {
        const search = new ExtendedCodeSearch(D, B);
        const l1 = new Int32Array(D), l2 = new Int32Array(D), l3 = new Int32Array(D);
        let exactSum = 0, fastSum = 0;
        const ts: number[] = [];
        for (let trial = 0; trial < 12; trial++) {
          const a = unitGaussian(rng, D);
          if (trial === 0) for (let i = 0; i < D; i += 3) a[i] = 0; // zeros never leave level 0
          const c1 = search.exact(a, l1);
          ts.push(search.lastBestT);
          const c2 = search.sweep(a, l2);
          assert.ok(Math.abs(c1 - c2) < 1e-12, `B=${B} D=${D}: merge ${c1} vs sweep ${c2}`);
          assert.ok(Math.abs(cosineOf(a, l1) - c1) < 1e-12);
          // the reported rescaling factor reproduces the optimum by plain rounding
          assert.ok(Math.abs(search.rounded(a, search.lastBestT, l3) - c1) < 1e-9, `B=${B} D=${D}: rounding at lastBestT`);
          exactSum += c1;
        }
        ts.sort((x, y) => x - y);
        for (let trial = 0; trial < 12; trial++) fastSum += search.rounded(unitGaussian(new Rng(1000 + trial), D), ts[6], l3);
        assert.ok(fastSum / 12 > 0.995 * (exactSum / 12), `B=${B} D=${D}: fast mean cosine ${fastSum / 12} vs exact ${exactSum / 12}`);
      }
    }
  });
});

describe('RaBitQ quantizer', () => {
  it('spec grammar: B in 1..8, fast only for B >= 2, fs only for B = 1; bad parameters are INVALID_ARGUMENT', () => {
    const ctx = { dimension: 16, metric: 'dot' as const, kernels: wasm };
    for (const spec of ['RaBitQ1', 'RaBitQ4', 'RaBitQ8', 'RaBitQ2fast', 'RaBitQ7fast', 'RaBitQ1fs']) assert.equal(createQuantizer(spec, ctx).spec, spec);
    for (const spec of ['RaBitQ0', 'RaBitQ9', 'RaBitQ12', 'RaBitQ1fast', 'RaBitQ4fs', 'RaBitQ2fs']) {
      assert.throws(() => createQuantizer(spec, ctx), (e) => isQuiverError(e, 'INVALID_ARGUMENT') && (e.details as { spec: string }).spec === spec, spec);
    }
    for (const spec of ['RaBitQ', 'RaBitQ4slow', 'rabitq4', 'RaBitQ1fsfast']) assert.throws(() => createQuantizer(spec, ctx), (e) => isQuiverError(e, 'UNKNOWN_SPEC'), spec);
  });

  it('code size: B bit planes of the rotated dimension (a multiple of 64) plus 16 bytes of factors', () => {
    for (const [d, B, D] of [[1, 1, 64], [100, 1, 128], [512, 4, 512], [768, 2, 768], [1536, 8, 1536]] as const) {
      const q = createQuantizer(`RaBitQ${B}`, { dimension: d, metric: 'dot', kernels: wasm }) as RaBitQuantizer;
      assert.equal(q.rotatedDimension, D);
      assert.equal(q.codeSize, (B * D) / 8 + 16);
      assert.equal(q.bounded, true);
    }
  });

  it('the most significant bit plane of an extended (plane-layout) code is the 1-bit code (same rotation and centre)', () => {
    const d = 90, n = 50;
    const rng = new Rng(8);
    const x = Float32Array.from({ length: n * d }, () => rng.normal());
    const one = createQuantizer('RaBitQ1', { dimension: d, metric: 'l2', kernels: wasm });
    const three = createQuantizer('RaBitQ3', { dimension: d, metric: 'l2', kernels: wasm });
    const four = createQuantizer('RaBitQ4', { dimension: d, metric: 'l2', kernels: wasm });
    one.train(x, n, { seed: 11 });
    three.train(x, n, { seed: 11 });
    four.train(x, n, { seed: 11 });
    const c1 = new Uint8Array(n * one.codeSize), c3 = new Uint8Array(n * three.codeSize), c4 = new Uint8Array(n * four.codeSize);
    one.encode(x, n, c1);
    three.encode(x, n, c3);
    four.encode(x, n, c4);
    const planeBytes = 128 / 8;
    for (let i = 0; i < n; i++) {
      const signs = c1.subarray(i * one.codeSize, i * one.codeSize + planeBytes);
      assert.deepEqual(c3.subarray(i * three.codeSize + 2 * planeBytes, i * three.codeSize + 3 * planeBytes), signs, `row ${i}`);
      // RaBitQ4 stores nibbles: bit 3 of dimension t's nibble is the sign bit
      for (let t = 0; t < 128; t++) {
        const nibble = (c4[i * four.codeSize + (t >> 1)] >> ((t & 1) * 4)) & 15;
        assert.equal(nibble >> 3, (signs[t >> 3] >> (t & 7)) & 1, `row ${i} dimension ${t}`);
      }
    }
  });

  it('RaBitQ1fs: the rows of RaBitQ1, packed in blocks of 32; estimates within the bounds of the unquantized query, on odd counts and dimensions', () => {
    for (const [d, n] of [[37, 2], [90, 33], [100, 70], [200, 64]] as const) for (const metric of ['dot', 'l2'] as QuantMetric[]) {
      const rng = new Rng(d + n);
      const x = Float32Array.from({ length: n * d }, () => rng.normal() + 0.2);
      const fs = createQuantizer('RaBitQ1fs', { dimension: d, metric, kernels: wasm }) as RaBitQuantizer;
      const one = createQuantizer('RaBitQ1', { dimension: d, metric, kernels: wasm }) as RaBitQuantizer;
      fs.train(x, n, { seed: 5 });
      one.train(x, n, { seed: 5 });
      assert.equal(fs.codeSize, one.codeSize);
      assert.deepEqual({ blockRows: fs.scanLayout.blockRows, blockBytes: fs.scanLayout.blockBytes }, { blockRows: 32, blockBytes: 4 * fs.rotatedDimension + 512 });
      const rows = new Uint8Array(n * fs.codeSize), rowsOne = new Uint8Array(n * one.codeSize);
      fs.encode(x, n, rows);
      one.encode(x, n, rowsOne);
      assert.deepEqual(rows, rowsOne, 'same rows as RaBitQ1');
      const query = Float32Array.from({ length: d }, () => rng.normal());
      const a = scoreAll(fs, rows, n, query), b = scoreAll(one, rowsOne, n, query);
      // both estimate the same unquantized estimator; fast-scan's table rounding is the smaller
      for (let i = 0; i < n; i++) {
        assert.ok(Math.abs(a.est[i] - b.est[i]) <= 0.5 * (a.bound[i] + b.bound[i]), `d=${d} ${metric} row ${i}: fs ${a.est[i]} vs planes ${b.est[i]}`);
        assert.ok(a.bound[i] > 0 && a.bound[i] <= b.bound[i] * 1.0001, `d=${d} ${metric} row ${i}: fs bound ${a.bound[i]} vs planes ${b.bound[i]}`);
      }
      assert.equal(fs.prepare(query).rowScoring, undefined, 'graphs cannot score fast-scan blocks row by row');
    }
  });

  it('the estimator is unbiased over random rotations, for dot and l2', () => {
    const d = 48, n = 30;
    const rng = new Rng(9);
    const x = Float32Array.from({ length: n * d }, () => rng.normal() + 0.3);
    const query = Float32Array.from({ length: d }, () => rng.normal());
    for (const metric of ['dot', 'l2'] as QuantMetric[]) {
      const truth = new Float64Array(n);
      for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) truth[i] += metric === 'dot' ? query[j] * x[i * d + j] : -((query[j] - x[i * d + j]) ** 2);
      const seeds = 120;
      const err = new Float64Array(n), err2 = new Float64Array(n);
      for (let s = 0; s < seeds; s++) {
        const q = createQuantizer('RaBitQ1', { dimension: d, metric, kernels: wasm });
        q.train(x, n, { seed: 1000 + s });
        const codes = new Uint8Array(n * q.codeSize);
        q.encode(x, n, codes);
        const { est } = scoreAll(q, codes, n, query);
        for (let i = 0; i < n; i++) { const e = est[i] - truth[i]; err[i] += e; err2[i] += e * e; }
      }
      // mean error of each pair within 4 standard errors of 0
      let outliers = 0;
      for (let i = 0; i < n; i++) {
        const mean = err[i] / seeds, sd = Math.sqrt(Math.max(0, err2[i] / seeds - mean * mean));
        if (Math.abs(mean) > 4 * sd / Math.sqrt(seeds) + 1e-3) outliers++;
      }
      assert.ok(outliers <= 1, `${metric}: ${outliers}/${n} pairs with a biased mean error`);
    }
  });
});

// ---- real data -------------------------------------------------------------------------

interface Msmarco { base: Float32Array; n: number; d: number; queries: Float32Array; nq: number; gt: Int32Array; gtStride: number }
let msmarcoCache: Msmarco | undefined;
function msmarco(): Msmarco {
  if (!msmarcoCache) {
    const base = npyToFloat32(parseNpy(readData('msmarco-use512', 'base.f16.npy')));
    const q = parseFvecs(readData('msmarco-use512', 'query.fvecs'));
    const gt = parseIvecs(readData('msmarco-use512', 'groundtruth.cosine.ivecs'));
    const nq = 200;
    msmarcoCache = { base, n: base.length / 512, d: 512, queries: q.data.subarray(0, nq * 512), nq, gt: gt.data, gtStride: gt.dimension };
  }
  return msmarcoCache;
}

/** Exact inner products from the full vectors (the reranker's source). */
function exactScorer(base: Float32Array, d: number): ExactScorer {
  return {
    scoreOrdinals(query, ords, n, out) {
      for (let i = 0; i < n; i++) {
        let s = 0;
        const o = ords[i] * d;
        for (let j = 0; j < d; j++) s += query[j] * base[o + j];
        out[i] = s;
      }
    },
  };
}

function trainedOn(spec: string, m: Msmarco, kernels: Kernels): Quantizer {
  const q = createQuantizer(spec, { dimension: m.d, metric: 'dot', kernels });
  const sample = 10000; // the base is in random order (split by seed): its head is a fair sample
  q.train(m.base.subarray(0, sample * m.d), sample, { seed: 42 });
  return q;
}

describe('RaBitQ on MS MARCO USE-512 (47,794 x 512, cosine; first 200 queries)', () => {
  it('RaBitQ4: recall@10 >= 0.90 without reranking', () => {
    const m = msmarco();
    const kernels = createKernels();
    const index = new FlatQuantizedIndex(trainedOn('RaBitQ4', m, kernels));
    index.add(m.base, m.n);
    const res = index.searchBatch(m.queries, m.nq, 10);
    const found = Array.from({ length: m.nq }, (_, q) => res.ords.subarray(q * 10, q * 10 + res.counts[q]));
    const recall = recallAt(found, m.gt, m.gtStride, 10);
    assert.ok(recall >= 0.9, `RaBitQ4 recall@10 ${recall}`);
    index.release();
  });

  for (const spec of ['RaBitQ1', 'RaBitQ1fs']) it(`${spec} with bound-driven reranking: recall@10 >= 0.99, reranking a small fraction`, () => {
    const m = msmarco();
    const kernels = createKernels();
    const index = new FlatQuantizedIndex(trainedOn(spec, m, kernels));
    index.add(m.base, m.n);
    const res = index.searchBatch(m.queries, m.nq, 10, { rerank: { bounds: true }, exact: exactScorer(m.base, m.d) });
    const found = Array.from({ length: m.nq }, (_, q) => res.ords.subarray(q * 10, q * 10 + res.counts[q]));
    const recall = recallAt(found, m.gt, m.gtStride, 10);
    let reranked = 0;
    for (const r of res.reranked) reranked += r;
    const perQuery = reranked / m.nq;
    assert.ok(recall >= 0.99, `${spec} + bound rerank recall@10 ${recall} (reranked ${perQuery.toFixed(1)}/query)`);
    assert.ok(perQuery >= 10 && perQuery < 0.01 * m.n, `reranked ${perQuery} per query`);
    index.release();
  });

  it(`error bounds at eps0 = ${RABITQ_EPS0}: the normalised error behaves as the analysis says`, () => {
    // The bound is eps0 standard deviations of a (nearly Gaussian) error: about 94% of pairs
    // fall inside at eps0 = 1.9 (the paper's choice), and 99% once scaled to 2.6 deviations.
    const m = msmarco();
    const q = trainedOn('RaBitQ1', m, wasm);
    const n = 6000, codes = new Uint8Array(n * q.codeSize);
    q.encode(m.base, n, codes);
    let inside = 0, inside99 = 0, total = 0, z2 = 0;
    for (let qi = 0; qi < 20; qi++) {
      const query = m.queries.subarray(qi * m.d, (qi + 1) * m.d);
      const { est, bound } = scoreAll(q, codes, n, query);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < m.d; j++) s += query[j] * m.base[i * m.d + j];
        const err = Math.abs(est[i] - s);
        if (err <= bound[i]) inside++;
        if (err <= bound[i] * (2.6 / RABITQ_EPS0)) inside99++;
        z2 += (err / (bound[i] / RABITQ_EPS0)) ** 2;
        total++;
      }
    }
    const zStd = Math.sqrt(z2 / total);
    assert.ok(inside / total >= 0.93, `inside at eps0: ${inside / total}`);
    assert.ok(inside99 / total >= 0.99, `inside at 2.6 deviations: ${inside99 / total}`);
    assert.ok(zStd > 0.8 && zStd < 1.1, `normalised error std ${zStd} (1 = the analysis' variance)`);
  });
});

/** dense-hd rows {qid, vector} of every file matching `pattern`, first `limit`, unit-normalised. */
function denseHd(pattern: RegExp, limit: number): { x: Float32Array; n: number; d: number } {
  const dir = `${DATA_DIR}/dense-hd`;
  const rows: number[][] = [];
  for (const f of readdirSync(dir).filter((name) => pattern.test(name)).sort()) {
    for (const line of gunzipSync(readData('dense-hd', f)).toString('utf8').split('\n')) {
      if (line.trim() && rows.length < limit) rows.push((JSON.parse(line) as { vector: number[] }).vector);
    }
  }
  const d = rows[0].length, x = new Float32Array(rows.length * d);
  rows.forEach((r, i) => {
    const norm = Math.hypot(...r);
    for (let j = 0; j < d; j++) x[i * d + j] = r[j] / norm;
  });
  return { x, n: rows.length, d };
}

describe('extended RaBitQ error scale on dense-hd (published: relative error ~ 5.75 * 2^-B / sqrt(D))', () => {
  // Vectors serve as data and queries. Normalised error |est - <x,q>| / (||x - c|| ||q||) is the
  // error of estimating <o, q> for unit o and q, the quantity the published scale describes; its
  // 99.9th percentile lands at 0.8-1.6x the scale (measured: see the closing report).
  const sets = [
    { name: 'BGE-large 1024-d (BRIGHT)', pattern: /bge-large/, limit: 160 },
    { name: 'OpenAI ada-002 1536-d (DL19+DL20)', pattern: /openai-ada2/, limit: 130 },
  ];
  for (const set of sets) {
    it(`${set.name}: 99.9th percentile within 0.5x-2x of the scale for B = 2..8`, () => {
      const { x, n, d } = denseHd(set.pattern, set.limit);
      const mean = new Float64Array(d);
      for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
      const residual = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += (x[i * d + j] - Math.fround(mean[j])) ** 2;
        residual[i] = Math.sqrt(s);
      }
      const exact = new Float64Array(n * n);
      for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += x[a * d + j] * x[b * d + j];
        exact[a * n + b] = s;
      }
      for (let B = 2; B <= 8; B++) {
        const q = createQuantizer(`RaBitQ${B}`, { dimension: d, metric: 'dot', kernels: wasm }) as RaBitQuantizer;
        q.train(x, n, { seed: 3 });
        const codes = new Uint8Array(n * q.codeSize);
        q.encode(x, n, codes);
        const errs: number[] = [];
        for (let a = 0; a < n; a++) {
          const { est } = scoreAll(q, codes, n, x.subarray(a * d, (a + 1) * d));
          for (let b = 0; b < n; b++) if (b !== a) errs.push(Math.abs(est[b] - exact[a * n + b]) / residual[b]);
        }
        errs.sort((u, v) => u - v);
        const scale = (5.75 * 2 ** -B) / Math.sqrt(q.rotatedDimension);
        const p999 = errs[Math.floor(0.999 * errs.length)] / scale;
        assert.ok(p999 >= 0.5 && p999 <= 2, `${set.name} RaBitQ${B}: 99.9th percentile ${p999.toFixed(3)}x the published scale`);
      }
    });
  }
});
