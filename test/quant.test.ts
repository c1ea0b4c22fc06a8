import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QuiverError, type QuiverErrorCode } from '../src/errors.js';
import { createWasmKernels, JsKernels, type Kernels } from '../src/kernels/index.js';
import { checkCodesFingerprint } from '../src/quant/checks.js';
import { createQuantizer, deserializeQuantizer } from '../src/quant/registry.js';
import type { QuantMetric, Quantizer } from '../src/quant/types.js';
import { QUANT_SUITE_CASES, type QuantSuiteCase } from './helpers/quant-specs.js';
import { rng } from './helpers/random.js';

// ONE suite for every registered quantizer spec (list in test/helpers/quant-specs.ts): life cycle,
// round trip, serialization, scorer agreement with the decoded vectors, bad input, and the
// wasm/js kernel twins giving the same scores.

const wasm = createWasmKernels();
const js = new JsKernels();

function throwsCode(fn: () => unknown, code: QuiverErrorCode, what: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QuiverError, `${what}: expected QuiverError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    return true;
  }, what);
}

/**
 * Synthetic anisotropic data: a shared mean, per-dimension scales from 0.2 to 2, and three
 * strong random directions (so PCA and per-dimension ranges have something to find). Rows are
 * unit-normalised for 'dot' (the cosine use), raw for 'l2'.
 */
function makeData(n: number, d: number, metric: QuantMetric, seed: number): Float32Array {
  const r = rng(seed);
  const normal = (): number => {
    let u = 0;
    while (u === 0) u = r();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  };
  const dr = rng(1234); // same structure for every seed: train and test share a distribution
  const mean = Float64Array.from({ length: d }, () => dr() - 0.5);
  const scale = Float64Array.from({ length: d }, (_, j) => 0.2 + (1.8 * ((j * 7) % d)) / d);
  const dirs = Float64Array.from({ length: 3 * d }, () => dr() * 2 - 1);
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const z = [normal() * 3, normal() * 2, normal() * 1.5];
    let norm = 0;
    for (let j = 0; j < d; j++) {
      const v = mean[j] + scale[j] * normal() * 0.5 + z[0] * dirs[j] + z[1] * dirs[d + j] + z[2] * dirs[2 * d + j];
      out[i * d + j] = v;
      norm += v * v;
    }
    if (metric === 'dot') for (let j = 0; j < d; j++) out[i * d + j] /= Math.sqrt(norm);
  }
  return out;
}

function exactScore(q: Float32Array, x: Float32Array, off: number, d: number, metric: QuantMetric): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += metric === 'dot' ? q[j] * x[off + j] : -((q[j] - x[off + j]) ** 2);
  return s;
}

/** Scores n row codes with the quantizer's scorer: packs them into its scan layout in kernel memory, scans in odd-sized chunks. */
function scoreRows(q: Quantizer, query: Float32Array, rows: Uint8Array, n: number, withBounds = false): { scores: Float32Array; bounds: Float32Array | null } {
  const k = q.kernels, mem = k.memory, layout = q.scanLayout;
  const blocks = Math.ceil(n / layout.blockRows);
  const packed = new Uint8Array(blocks * layout.blockBytes);
  layout.pack(rows, n, packed);
  const codes = mem.alloc(packed.length);
  mem.u8(codes, packed.length).set(packed);
  const out = mem.alloc(n * 4), bounds = withBounds ? mem.alloc(n * 4) : 0;
  const scorer = q.prepare(query);
  try {
    const chunk = layout.blockRows === 1 ? 37 : layout.blockRows * 3; // odd block sizes, block-aligned starts
    for (let s = 0; s < n; s += chunk) {
      const m = Math.min(chunk, n - s);
      const blockOff = (s / layout.blockRows) * layout.blockBytes;
      scorer.scoreBlock(codes + blockOff, m, out + s * 4, withBounds ? bounds + s * 4 : 0);
    }
    return { scores: Float32Array.from(mem.f32(out, n)), bounds: withBounds ? Float32Array.from(mem.f32(bounds, n)) : null };
  } finally {
    scorer.release();
    mem.release(codes); mem.release(out);
    if (bounds) mem.release(bounds);
  }
}

function suite(c: QuantSuiteCase, metric: QuantMetric): void {
  const d = c.dimension;
  const nTrain = c.trainVectors ?? 512;
  const nTest = 150;
  const train = makeData(nTrain, d, metric, 1);
  const test = makeData(nTest, d, metric, 2);
  const queries = makeData(4, d, metric, 3);
  const make = (kernels: Kernels = wasm): Quantizer => createQuantizer(c.spec, { dimension: d, metric, kernels });
  let trainedCache: Quantizer | undefined;
  const trained = (): Quantizer => {
    if (!trainedCache) {
      trainedCache = make();
      trainedCache.train(train, nTrain, { seed: 7, ...c.trainOptions });
    }
    return trainedCache;
  };
  const encodeAll = (q: Quantizer, x: Float32Array, n: number): Uint8Array => {
    const rows = new Uint8Array(n * q.codeSize);
    q.encode(x, n, rows);
    return rows;
  };

  describe(`${c.spec} (${metric}, d=${d})`, () => {
    it('reports its spec, shape and an untrained state; every use before train() is INVALID_ARGUMENT', () => {
      const q = make();
      assert.equal(q.spec, c.spec);
      assert.equal(q.dimension, d);
      assert.equal(q.metric, metric);
      assert.equal(q.trained, false);
      assert.ok(q.codeSize > 0 && Number.isInteger(q.codeSize));
      assert.ok(q.minTrainingVectors >= 1);
      throwsCode(() => q.encode(test, 1, new Uint8Array(q.codeSize)), 'INVALID_ARGUMENT', 'encode untrained');
      throwsCode(() => q.decode(new Uint8Array(q.codeSize), 1, new Float32Array(d)), 'INVALID_ARGUMENT', 'decode untrained');
      throwsCode(() => q.prepare(queries.subarray(0, d)), 'INVALID_ARGUMENT', 'prepare untrained');
      throwsCode(() => q.serialize(), 'INVALID_ARGUMENT', 'serialize untrained');
    });

    it('rejects too few training vectors (TRAINING_FAILED) and non-finite training data', () => {
      const q = make();
      const few = q.minTrainingVectors - 1;
      throwsCode(() => q.train(train, few), 'TRAINING_FAILED', `train on ${few}`);
      const bad = train.slice();
      bad[5 * d + (d >> 1)] = NaN;
      throwsCode(() => q.train(bad, nTrain), 'TRAINING_FAILED', 'train with NaN');
      assert.equal(q.trained, false);
    });

    it('round trip: decode(encode(x)) is close to x, deterministically', () => {
      const q = trained();
      assert.equal(q.trained, true);
      const rows = encodeAll(q, test, nTest);
      assert.deepEqual(encodeAll(q, test, nTest), rows, 'encoding is deterministic');
      const back = new Float32Array(nTest * d);
      q.decode(rows, nTest, back);
      const mean = new Float64Array(d);
      for (let i = 0; i < nTest; i++) for (let j = 0; j < d; j++) mean[j] += test[i * d + j] / nTest;
      let err = 0, spread = 0;
      for (let i = 0; i < nTest * d; i++) {
        err += (test[i] - back[i]) ** 2;
        spread += (test[i] - mean[i % d]) ** 2;
      }
      const rel = err / spread;
      assert.ok(rel <= c.maxReconstructionError, `relative reconstruction error ${rel.toExponential(3)} > ${c.maxReconstructionError}`);
      // encoding a vector alone gives the same row as encoding it in a batch
      const one = encodeAll(q, test.subarray(3 * d, 4 * d), 1);
      assert.deepEqual(one, rows.subarray(3 * q.codeSize, 4 * q.codeSize));
    });

    it('scoreBlock agrees with the exact score of the decoded vectors', () => {
      const q = trained();
      const rows = encodeAll(q, test, nTest);
      const back = new Float32Array(nTest * d);
      q.decode(rows, nTest, back);
      for (let qi = 0; qi < 4; qi++) {
        const query = queries.slice(qi * d, (qi + 1) * d);
        const { scores } = scoreRows(q, query, rows, nTest);
        for (let i = 0; i < nTest; i++) {
          const want = exactScore(query, back, i * d, d, metric);
          assert.ok(Math.abs(scores[i] - want) <= c.scoreTolerance * (1 + Math.abs(want)), `query ${qi} row ${i}: estimate ${scores[i]} vs decoded ${want}`);
        }
      }
    });

    if (metric === 'dot') {
      it('bounded quantizers report error bounds that hold for the true scores', () => {
        const q = trained();
        const rows = encodeAll(q, test, nTest);
        const { scores, bounds } = scoreRows(q, queries.slice(0, d), rows, nTest, true);
        if (!q.bounded) return;
        let inside = 0;
        for (let i = 0; i < nTest; i++) {
          assert.ok(bounds![i] >= 0, 'bounds are non-negative');
          if (Math.abs(scores[i] - exactScore(queries, test, i * d, d, metric)) <= bounds![i] + 1e-6) inside++;
        }
        assert.ok(inside >= 0.95 * nTest, `only ${inside}/${nTest} true scores inside the bounds`);
      });
    }

    it('serialize -> deserialize gives the same codes and bit-identical scores; corruption is CORRUPT_FILE', () => {
      const q = trained();
      const bytes = q.serialize();
      const r = deserializeQuantizer(bytes, wasm);
      assert.equal(r.spec, q.spec);
      assert.equal(r.dimension, d);
      assert.equal(r.metric, metric);
      assert.equal(r.codeSize, q.codeSize);
      assert.equal(r.trained, true);
      assert.equal(r.fingerprint, q.fingerprint);
      const rows = encodeAll(q, test, nTest);
      assert.deepEqual(encodeAll(r, test, nTest), rows);
      const query = queries.slice(0, d);
      assert.deepEqual(scoreRows(r, query, rows, nTest).scores, scoreRows(q, query, rows, nTest).scores);
      assert.deepEqual(r.serialize(), bytes, 'serialization is stable');
      const bad = bytes.slice();
      bad[bad.length >> 1] ^= 0x5a;
      throwsCode(() => deserializeQuantizer(bad, wasm), 'CORRUPT_FILE', 'flipped byte');
      throwsCode(() => deserializeQuantizer(bytes.subarray(0, bytes.length - 9), wasm), 'CORRUPT_FILE', 'truncated');
    });

    it('the wasm and js kernels give the same scores', () => {
      const q = trained();
      const onJs = deserializeQuantizer(q.serialize(), js);
      assert.equal(onJs.kernels.name, 'js');
      const rows = encodeAll(q, test, nTest);
      assert.deepEqual(encodeAll(onJs, test, nTest), rows);
      for (let qi = 0; qi < 2; qi++) {
        const query = queries.slice(qi * d, (qi + 1) * d);
        const a = scoreRows(q, query, rows, nTest, q.bounded);
        const b = scoreRows(onJs, query, rows, nTest, q.bounded);
        for (let i = 0; i < nTest; i++) {
          assert.ok(Math.abs(a.scores[i] - b.scores[i]) <= 1e-4 * (1 + Math.abs(b.scores[i])), `row ${i}: wasm ${a.scores[i]} vs js ${b.scores[i]}`);
          if (a.bounds) assert.ok(Math.abs(a.bounds[i] - b.bounds![i]) <= 1e-4 * (1 + Math.abs(b.bounds![i])), `bound ${i}`);
        }
      }
    });

    it('wrong dimension is DIMENSION_MISMATCH; NaN is INVALID_VECTOR; short codes are INCOMPATIBLE_CODES', () => {
      const q = trained();
      throwsCode(() => q.prepare(new Float32Array(d + 1)), 'DIMENSION_MISMATCH', 'query d+1');
      throwsCode(() => q.prepare(new Float32Array(d - 1 || 2)), 'DIMENSION_MISMATCH', 'query d-1');
      throwsCode(() => q.encode(test.subarray(0, 3 * d - 1), 3, new Uint8Array(3 * q.codeSize)), 'DIMENSION_MISMATCH', 'encode short input');
      const nanQuery = queries.slice(0, d);
      nanQuery[d - 1] = NaN;
      throwsCode(() => q.prepare(nanQuery), 'INVALID_VECTOR', 'NaN query');
      const nanRows = test.slice(0, 3 * d);
      nanRows[2 * d] = Infinity;
      throwsCode(() => q.encode(nanRows, 3, new Uint8Array(3 * q.codeSize)), 'INVALID_VECTOR', 'encode Infinity');
      throwsCode(() => q.decode(new Uint8Array(2 * q.codeSize - 1), 2, new Float32Array(2 * d)), 'INCOMPATIBLE_CODES', 'decode short codes');
      throwsCode(() => createQuantizer(c.spec, { dimension: d, metric: 'cosine' as QuantMetric, kernels: wasm }), 'INVALID_ARGUMENT', 'unsupported metric');
    });

    it('codes of another quantizer are INCOMPATIBLE_CODES', () => {
      const q = trained();
      const other = make();
      other.train(makeData(nTrain, d, metric, 99), nTrain, { seed: 8, ...c.trainOptions });
      checkCodesFingerprint(q, q.spec, q.fingerprint);
      if (other.fingerprint === q.fingerprint) {
        // parameter-free quantizers (F16): equal fingerprints must mean equal parameters
        assert.deepEqual(other.serialize(), q.serialize(), 'equal fingerprints but different parameters');
      } else {
        throwsCode(() => checkCodesFingerprint(q, other.spec, other.fingerprint), 'INCOMPATIBLE_CODES', 'other fingerprint');
      }
      throwsCode(() => checkCodesFingerprint(q, 'NOT-' + q.spec, q.fingerprint), 'INCOMPATIBLE_CODES', 'other spec');
    });

    it('a released scorer refuses to score', () => {
      const q = trained();
      const s = q.prepare(queries.slice(0, d));
      s.release();
      assert.throws(() => s.scoreBlock(16, 1, 16));
    });
  });
}

describe('quantizer suite', () => {
  it('unknown specs are UNKNOWN_SPEC with the grammar', () => {
    for (const bad of ['', 'SQ3', 'XYZ', 'sq8 ', 'F16,']) {
      throwsCode(() => createQuantizer(bad, { dimension: 8, metric: 'dot', kernels: wasm }), 'UNKNOWN_SPEC', `spec "${bad}"`);
    }
  });
  for (const c of QUANT_SUITE_CASES) for (const metric of c.metrics) suite(c, metric);
});

describe('BIN (Hamming) scores follow their formula exactly', () => {
  // BIN binarises the query, so the shared suite can only bound its distance to the decoded
  // score; here the estimate is checked against the documented formula computed from the codes:
  // dot: <q, mean> + alpha * alpha_q * (d - 2 h) + gamma,  l2: -||q - mean||^2 + 2 alpha alpha_q (d - 2 h) + gamma
  for (const metric of ['dot', 'l2'] as const) {
    it(metric, () => {
      const d = 45, n = 300;
      const data = makeData(n, d, metric, 5);
      const q = createQuantizer('BIN', { dimension: d, metric, kernels: wasm });
      q.train(data, n, { seed: 1 });
      const rows = new Uint8Array(n * q.codeSize);
      q.encode(data, n, rows);
      const decoded = new Float32Array(n * d);
      q.decode(rows, n, decoded);
      const mean = Float64Array.from({ length: d }, (_, j) => { let s = 0; for (let i = 0; i < n; i++) s += data[i * d + j]; return s / n; });
      const query = makeData(1, d, metric, 6);
      const { scores } = scoreRows(q, query, rows, n);
      const view = new DataView(rows.buffer);
      let qAbs = 0, qMean = 0, qCentredSq = 0;
      const qBits: number[] = [];
      for (let j = 0; j < d; j++) {
        const c = query[j] - mean[j];
        qAbs += Math.abs(c); qMean += query[j] * mean[j]; qCentredSq += c * c;
        qBits.push(c > 0 ? 1 : 0);
      }
      const alphaQ = qAbs / d;
      for (let i = 0; i < n; i++) {
        const alpha = view.getFloat32(i * q.codeSize, true), gamma = view.getFloat32(i * q.codeSize + 4, true);
        let h = 0;
        for (let j = 0; j < d; j++) {
          const bit = (rows[i * q.codeSize + 8 + (j >> 3)] >> (j & 7)) & 1;
          // decoded vectors are mean +- alpha along the stored signs
          assert.ok(Math.abs(decoded[i * d + j] - (mean[j] + (bit ? alpha : -alpha))) < 1e-5);
          if (bit !== qBits[j]) h++;
        }
        const want = metric === 'dot' ? qMean + alpha * alphaQ * (d - 2 * h) + gamma : -qCentredSq + 2 * alpha * alphaQ * (d - 2 * h) + gamma;
        assert.ok(Math.abs(scores[i] - want) <= 1e-4 * (1 + Math.abs(want)), `row ${i}: ${scores[i]} vs ${want}`);
      }
    });
  }
});
