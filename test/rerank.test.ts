import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QuiverError, type QuiverErrorCode } from '../src/errors.js';
import { FlatQuantizedIndex } from '../src/index/flat-quantized.js';
import type { ExactScorer } from '../src/index/types.js';
import { createWasmKernels, JsKernels, type Kernels } from '../src/kernels/index.js';
import { createQuantizer } from '../src/quant/registry.js';
import type { Quantizer, QueryScorer, ScanLayout } from '../src/quant/types.js';
import { Reranker } from '../src/query/rerank.js';
import { rng } from './helpers/random.js';

// Reranking and the flat compressed index, on seeded synthetic data with brute-force truth.

const D = 24;

function unitRows(n: number, d: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) { const v = (r() * 2 - 1) * (1 + (j % 3)); x[i * d + j] = v; s += v * v; }
    for (let j = 0; j < d; j++) x[i * d + j] /= Math.sqrt(s);
  }
  return x;
}

/** Exact inner products over rows held in JS, counting how many were asked for. */
class CountingExact implements ExactScorer {
  calls = 0;
  scored = 0;
  constructor(private readonly base: Float32Array, private readonly d: number) {}
  scoreOrdinals(query: Float32Array, ords: Uint32Array, n: number, out: Float32Array): void {
    this.calls++;
    this.scored += n;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < this.d; j++) s += query[j] * this.base[ords[i] * this.d + j];
      out[i] = s;
    }
  }
}

/** Exact top-k by brute force (ties by smaller ordinal), skipping `skip`. */
function bruteTopK(base: Float32Array, n: number, query: Float32Array, k: number, skip: Set<number> = new Set()): number[] {
  const scores: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    if (skip.has(i)) continue;
    let s = 0;
    for (let j = 0; j < D; j++) s += query[j] * base[i * D + j];
    scores.push([Math.fround(s), i]);
  }
  scores.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  return scores.slice(0, k).map((p) => p[1]);
}

function throwsCode(fn: () => unknown, code: QuiverErrorCode): void {
  assert.throws(fn, (e: unknown) => e instanceof QuiverError && e.code === code, code);
}

/**
 * A bounded quantizer for testing the bound-driven rule: SQ4 estimates with a bound equal to the
 * largest estimate error measured on the data (so the bounds hold for every pair by construction).
 */
class BoundedSq4 implements Quantizer {
  readonly bounded = true;
  readonly spec: string;
  readonly dimension: number;
  readonly metric = 'dot' as const;
  readonly kernels: Kernels;
  readonly codeSize: number;
  readonly minTrainingVectors: number;
  constructor(private readonly inner: Quantizer, private readonly halfWidth: number) {
    this.spec = inner.spec;
    this.dimension = inner.dimension;
    this.kernels = inner.kernels;
    this.codeSize = inner.codeSize;
    this.minTrainingVectors = inner.minTrainingVectors;
  }
  get scanLayout(): ScanLayout { return this.inner.scanLayout; }
  get trained(): boolean { return this.inner.trained; }
  get fingerprint(): number { return this.inner.fingerprint; }
  train(): void { throw new Error('not used'); }
  encode(v: Float32Array, n: number, out: Uint8Array): void { this.inner.encode(v, n, out); }
  decode(c: Uint8Array, n: number, out: Float32Array): void { this.inner.decode(c, n, out); }
  serialize(): Uint8Array { return this.inner.serialize(); }
  prepare(query: Float32Array): QueryScorer {
    const s = this.inner.prepare(query), k = this.kernels, h = this.halfWidth;
    return {
      scoreBlock(codes: number, n: number, out: number, bounds?: number): void {
        s.scoreBlock(codes, n, out);
        if (bounds) { k.affineInPlace(bounds, n, 0, h); }
      },
      release(): void { s.release(); },
    };
  }
}

describe('Reranker', () => {
  const n = 300;
  const base = unitRows(n, D, 1);
  const query = unitRows(1, D, 2);
  const truth = bruteTopK(base, n, query, 10);

  it('oversampling scores every candidate and returns the exact top-k best first', () => {
    const exact = new CountingExact(base, D);
    const all = Uint32Array.from({ length: n }, (_, i) => n - 1 - i); // any order of keys
    const res = new Reranker(exact).rerankAll(query, { ords: all, keys: new Float32Array(n), count: n }, 10);
    assert.deepEqual(Array.from(res.ords), truth);
    assert.equal(res.reranked, n);
    assert.equal(exact.scored, n);
    for (let i = 1; i < res.count; i++) assert.ok(res.scores[i] <= res.scores[i - 1]);
  });

  it('bound-driven stops once no optimistic score can beat the k-th exact score', () => {
    // optimistic keys = exact + 0.05, sorted: the stop comes after the candidates within 0.05 of the k-th
    const exactScores = new Float32Array(n);
    new CountingExact(base, D).scoreOrdinals(query, Uint32Array.from({ length: n }, (_, i) => i), n, exactScores);
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => exactScores[b] - exactScores[a] || a - b);
    const ords = Uint32Array.from(order), keys = Float32Array.from(order, (i) => exactScores[i] + 0.05);
    const exact = new CountingExact(base, D);
    const res = new Reranker(exact).rerankByBounds(query, { ords, keys, count: n }, 10);
    assert.deepEqual(Array.from(res.ords), truth);
    const kth = exactScores[order[9]];
    const needed = order.filter((i) => exactScores[i] + 0.05 > kth).length;
    assert.ok(res.reranked >= needed && res.reranked <= needed + 8, `reranked ${res.reranked}, needed ${needed}`);
    assert.ok(res.reranked < n);
  });

  it('returns fewer than k when fewer candidates exist', () => {
    const res = new Reranker(new CountingExact(base, D)).rerankAll(query, { ords: Uint32Array.of(5, 7), keys: new Float32Array(2), count: 2 }, 10);
    assert.equal(res.count, 2);
    assert.deepEqual(new Set(res.ords), new Set([5, 7]));
  });
});

for (const kernels of [createWasmKernels(), new JsKernels()]) {
  describe(`FlatQuantizedIndex (${kernels.name})`, () => {
    const n = 1000;
    const base = unitRows(n, D, 11);
    const queries = unitRows(8, D, 12);
    const make = (spec = 'SQ4'): Quantizer => {
      const q = createQuantizer(spec, { dimension: D, metric: 'dot', kernels });
      q.train(base, n, { seed: 3 });
      return q;
    };

    it('without rerank returns the k best estimates (= brute force over the decoded vectors)', () => {
      const q = make();
      const index = new FlatQuantizedIndex(q);
      index.add(base, n);
      assert.equal(index.count, n);
      const decoded = new Float32Array(n * D);
      q.decode(index.rowCodes(), n, decoded);
      for (let qi = 0; qi < 4; qi++) {
        const query = queries.slice(qi * D, (qi + 1) * D);
        const hits = index.searchOne(query, 10);
        assert.equal(hits.count, 10);
        assert.equal(hits.reranked, 0);
        const want = bruteTopK(decoded, n, query, 10);
        // estimates and the f64 brute force may order near-ties differently: compare as sets with slack
        const overlap = hits.ords.filter((o) => want.includes(o)).length;
        assert.ok(overlap >= 9, `overlap ${overlap}`);
      }
      index.release();
    });

    it('oversampling rerank recovers the exact top-k and reports the reranked count', () => {
      const index = new FlatQuantizedIndex(make());
      index.add(base, n);
      const exact = new CountingExact(base, D);
      let exactHits = 0;
      for (let qi = 0; qi < 8; qi++) {
        const query = queries.slice(qi * D, (qi + 1) * D);
        const hits = index.searchOne(query, 10, { rerank: { factor: 10 }, exact });
        assert.equal(hits.reranked, 100);
        const want = bruteTopK(base, n, query, 10);
        exactHits += hits.ords.filter((o) => want.includes(o)).length;
        // reranked scores are exact
        const check = new Float32Array(hits.count);
        exact.scoreOrdinals(query, hits.ords, hits.count, check);
        assert.deepEqual(hits.scores, check);
      }
      assert.ok(exactHits >= 79, `recall ${exactHits / 80}`);
      // rerank over every vector is exact
      const all = index.searchOne(queries.slice(0, D), 10, { rerank: { factor: 100 }, exact });
      assert.deepEqual(Array.from(all.ords), bruteTopK(base, n, queries.slice(0, D), 10));
      assert.equal(all.reranked, n);
      index.release();
    });

    it('bound-driven rerank is exact when the bounds hold, and reranks fewer vectors than oversampling', () => {
      const sq4 = make();
      // the largest estimate error over these queries and vectors: bounds that hold by construction
      const probe = new FlatQuantizedIndex(sq4);
      probe.add(base, n);
      const decoded = new Float32Array(n * D);
      sq4.decode(probe.rowCodes(), n, decoded);
      let maxErr = 0;
      for (let qi = 0; qi < 8; qi++) for (let i = 0; i < n; i++) {
        let t = 0, e = 0;
        for (let j = 0; j < D; j++) { t += queries[qi * D + j] * base[i * D + j]; e += queries[qi * D + j] * decoded[i * D + j]; }
        maxErr = Math.max(maxErr, Math.abs(t - e));
      }
      probe.release();
      const index = new FlatQuantizedIndex(new BoundedSq4(sq4, maxErr * 1.01 + 1e-6));
      index.add(base, n);
      const exact = new CountingExact(base, D);
      let reranked = 0;
      for (let qi = 0; qi < 8; qi++) {
        const query = queries.slice(qi * D, (qi + 1) * D);
        const hits = index.searchOne(query, 10, { rerank: { bounds: true }, exact });
        assert.deepEqual(Array.from(hits.ords), bruteTopK(base, n, query, 10), `query ${qi}`);
        assert.ok(hits.reranked >= 10 && hits.reranked < n);
        reranked += hits.reranked;
      }
      assert.ok(reranked / 8 < n / 2, `mean reranked ${reranked / 8}`);
      throwsCode(() => new FlatQuantizedIndex(sq4).searchOne(queries.slice(0, D), 10, { rerank: { bounds: true }, exact }), 'INVALID_ARGUMENT');
      index.release();
    });

    it('skips deleted ordinals in every mode', () => {
      const index = new FlatQuantizedIndex(make());
      index.add(base, n);
      const query = queries.slice(0, D);
      const top = bruteTopK(base, n, query, 5);
      const deleted = new Uint32Array(Math.ceil(n / 32));
      const skip = new Set([...top, 999, 0, 31, 32, 500]);
      for (const o of skip) deleted[o >>> 5] |= 1 << (o & 31);
      const exact = new CountingExact(base, D);
      for (const opts of [{}, { rerank: { factor: 20 }, exact }]) {
        const hits = index.searchOne(query, 10, { ...opts, deleted });
        for (const o of hits.ords) assert.ok(!skip.has(o), `deleted ordinal ${o} returned`);
        assert.equal(hits.count, 10);
      }
      const reranked = index.searchOne(query, 10, { rerank: { factor: 100 }, exact, deleted });
      assert.deepEqual(Array.from(reranked.ords), bruteTopK(base, n, query, 10, skip));
      // a short bitset covers only its words
      const short = index.searchOne(query, 3, { deleted: Uint32Array.of(0xffffffff) });
      for (const o of short.ords) assert.ok(o >= 32);
      index.release();
    });

    it('searchBatch equals per-query search; k larger than count returns count hits', () => {
      const index = new FlatQuantizedIndex(make('SQ8'));
      index.add(base, n);
      const exact = new CountingExact(base, D);
      const batch = index.searchBatch(queries, 8, 7, { rerank: { factor: 3 }, exact });
      for (let qi = 0; qi < 8; qi++) {
        const one = index.searchOne(queries.slice(qi * D, (qi + 1) * D), 7, { rerank: { factor: 3 }, exact });
        assert.deepEqual(Array.from(batch.ords.subarray(qi * 7, qi * 7 + batch.counts[qi])), Array.from(one.ords));
        assert.equal(batch.reranked[qi], one.reranked);
      }
      const small = new FlatQuantizedIndex(make('SQ8'));
      small.add(base, 3);
      assert.equal(small.searchOne(queries.slice(0, D), 10).count, 3);
      assert.equal(small.searchOne(queries.slice(0, D), 10, { rerank: { factor: 4 }, exact }).count, 3);
      assert.equal(new FlatQuantizedIndex(make('SQ8')).searchOne(queries.slice(0, D), 5).count, 0);
      index.release(); small.release();
    });

    for (const spec of ['SQ4', 'PQ12x4fs']) {
      it(`appending in pieces, and codes round-tripped through rowCodes/addCodes, give identical results (${spec})`, () => {
        // PQ12x4fs scans blocks of 32 vectors: pieces of 333 leave partly filled blocks to re-pack
        const q = make(spec);
        const whole = new FlatQuantizedIndex(q);
        whole.add(base, n);
        const pieces = new FlatQuantizedIndex(q);
        for (let s = 0; s < n; s += 333) pieces.add(base.subarray(s * D, Math.min(n, s + 333) * D), Math.min(333, n - s));
        assert.deepEqual(pieces.rowCodes(), whole.rowCodes());
        assert.deepEqual(whole.rowCodes(100, 103), whole.rowCodes().subarray(100 * q.codeSize, 103 * q.codeSize));
        const restored = new FlatQuantizedIndex(q);
        restored.addCodes(whole.rowCodes(0, 500), 500, { spec: q.spec, fingerprint: q.fingerprint });
        restored.addCodes(whole.rowCodes(500, n), n - 500, { spec: q.spec, fingerprint: q.fingerprint });
        for (let qi = 0; qi < 3; qi++) {
          const query = queries.slice(qi * D, (qi + 1) * D);
          const want = whole.searchOne(query, 10);
          assert.deepEqual(restored.searchOne(query, 10), want);
          assert.deepEqual(pieces.searchOne(query, 10), want);
          // the estimates equal a direct scan of freshly packed codes
          const rows = whole.rowCodes();
          const layout = q.scanLayout;
          const packed = new Uint8Array(Math.ceil(n / layout.blockRows) * layout.blockBytes);
          layout.pack(rows, n, packed);
          const mem = kernels.memory, cp = mem.alloc(packed.length), out = mem.alloc(n * 4);
          mem.u8(cp, packed.length).set(packed);
          const scorer = q.prepare(query);
          scorer.scoreBlock(cp, n, out);
          const est = Float32Array.from(mem.f32(out, n));
          scorer.release(); mem.release(cp); mem.release(out);
          for (let i = 0; i < want.count; i++) assert.equal(want.scores[i], est[want.ords[i]]);
        }
        whole.release(); pieces.release(); restored.release();
      });
    }

    it('bad input: untrained quantizer, wrong dimension, foreign codes, bad k, use after release', () => {
      throwsCode(() => new FlatQuantizedIndex(createQuantizer('SQ8', { dimension: D, metric: 'dot', kernels })), 'INVALID_ARGUMENT');
      const q = make('SQ8');
      const index = new FlatQuantizedIndex(q);
      throwsCode(() => index.add(base.subarray(0, 5 * D - 1), 5), 'DIMENSION_MISMATCH');
      const other = make('SQ4');
      throwsCode(() => index.addCodes(new Uint8Array(10 * q.codeSize), 10, { spec: other.spec, fingerprint: other.fingerprint }), 'INCOMPATIBLE_CODES');
      const retrained = createQuantizer('SQ8', { dimension: D, metric: 'dot', kernels });
      retrained.train(unitRows(200, D, 77), 200, { seed: 3 });
      throwsCode(() => index.addCodes(new Uint8Array(10 * q.codeSize), 10, { spec: retrained.spec, fingerprint: retrained.fingerprint }), 'INCOMPATIBLE_CODES');
      throwsCode(() => index.addCodes(new Uint8Array(10 * q.codeSize - 1), 10), 'INCOMPATIBLE_CODES');
      index.add(base, 50);
      throwsCode(() => index.searchOne(new Float32Array(D + 1), 5), 'DIMENSION_MISMATCH');
      throwsCode(() => index.searchOne(queries.slice(0, D), 0), 'INVALID_ARGUMENT');
      throwsCode(() => index.searchOne(queries.slice(0, D), 5, { rerank: { factor: 2 } }), 'INVALID_ARGUMENT');
      throwsCode(() => index.searchOne(queries.slice(0, D), 5, { rerank: { factor: 0.5 }, exact: new CountingExact(base, D) }), 'INVALID_ARGUMENT');
      throwsCode(() => index.rowCodes(0, 51), 'INVALID_ARGUMENT');
      index.release();
      throwsCode(() => index.searchOne(queries.slice(0, D), 5), 'CLOSED');
      throwsCode(() => index.add(base, 1), 'CLOSED');
    });
  });
}
