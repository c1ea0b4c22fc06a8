import { QuiverError } from '../errors.js';
import { SCORE_KIND, type RowScoring } from '../kernels/graph.js';
import { F16_TABLE } from '../kernels/js.js';
import { quantizeQueryI16, splitQuery } from '../kernels/scalar.js';
import { Rng } from '../math/rng.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { checkPayloadVersion, checkScoreArgs, QuantizerBase, ScorerMemory } from './common.js';
import type { QuantizerContext, QuantizerFamily } from './registry.js';
import type { QueryScorer, TrainOptions } from './types.js';

/**
 * Scalar quantizers: F16 (half floats, no parameters) and SQ8 / SQ4 (per-dimension uniform grids).
 *
 * SQ{b}: dimension j keeps a range [lo_j, lo_j + L*step_j] with L = 2^b - 1 levels above lo_j;
 * a value becomes c = clamp(round((x - lo_j) / step_j), 0, L) and decodes to lo_j + c*step_j.
 * The range is trained on a sample: among symmetric quantile clips (none, 0.01% .. 3% per tail)
 * each dimension keeps the one with the least squared error on the sample, so a few outliers do
 * not stretch the grid (this matters most at 4 bits, where 16 levels must cover the bulk); then
 * a few Lloyd-style rounds refit (lo, step) by least squares on the assigned codes.
 *
 * Rows are pure codes, no per-vector factors: SQ8 = d bytes, SQ4 = ceil(d/2) bytes (dimension 2t
 * in the low nibble of byte t). Scores are those of the decoded vector:
 *   dot: <q, x^> = sum_j q_j lo_j + sum_j (q_j step_j) c_j      (kernels sqDotU8 / sqDotU4; the
 *        weights q_j step_j are rounded to i16 with a per-query scale, relative error <= 2e-5)
 *   l2: -||q - x^||^2 = -sum_j step_j^2 ((q_j - lo_j)/step_j - c_j)^2   (sqL2U8 / sqL2U4)
 */

const PAYLOAD_VERSION = 1;
/** Candidate fractions clipped from each tail when choosing a dimension's range. */
const CLIP_FRACTIONS = [0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2];
/** Training uses at most this many sample vectors (a seeded subsample beyond it). */
const MAX_TRAINING_VECTORS = 65536;
/** Refinement rounds of each dimension's grid after the quantile search. */
const LLOYD_ITERATIONS = 8;

export class ScalarQuantizer extends QuantizerBase {
  readonly spec: string;
  readonly bits: 4 | 8;
  readonly codeSize: number;
  readonly minTrainingVectors = 16;
  private lo: Float32Array;
  private step: Float32Array;

  constructor(ctx: QuantizerContext, bits: 4 | 8) {
    super(ctx);
    this.bits = bits;
    this.spec = `SQ${bits}`;
    this.codeSize = bits === 8 ? this.dimension : (this.dimension + 1) >> 1;
    this.lo = new Float32Array(this.dimension);
    this.step = new Float32Array(this.dimension);
  }

  /** Per-dimension grid origins: f32[d] (a copy). */
  get lows(): Float32Array { return this.lo.slice(); }
  /** Per-dimension grid steps: f32[d] (a copy; 0 for a constant dimension). */
  get steps(): Float32Array { return this.step.slice(); }

  protected fit(sample: Float32Array, n: number, options: TrainOptions): void {
    const d = this.dimension;
    const levels = (1 << this.bits) - 1;
    let rows: Uint32Array | null = null;
    let m = n;
    if (n > MAX_TRAINING_VECTORS) {
      rows = new Rng(options.seed ?? 1).sample(n, MAX_TRAINING_VECTORS);
      m = rows.length;
    }
    const values = new Float32Array(m);
    for (let j = 0; j < d; j++) {
      for (let i = 0; i < m; i++) values[i] = sample[(rows ? rows[i] : i) * d + j];
      values.sort();
      let bestErr = Infinity, bestLo = values[0], bestStep = 0;
      for (const p of CLIP_FRACTIONS) {
        const lo = values[Math.floor(p * (m - 1))];
        const hi = values[Math.ceil((1 - p) * (m - 1))];
        const step = (hi - lo) / levels;
        const err = gridError(values, m, lo, step, levels);
        if (err < bestErr) { bestErr = err; bestLo = lo; bestStep = step; }
      }
      // refine (lo, step) Lloyd-style: with codes fixed, the best grid is a least-squares line fit
      // of the values on their codes; then re-assign codes. Never accepted unless the error drops.
      for (let iter = 0; iter < LLOYD_ITERATIONS && bestStep > 0; iter++) {
        const fitted = refitGrid(values, m, bestLo, bestStep, levels);
        if (!fitted) break;
        const err = gridError(values, m, fitted.lo, fitted.step, levels);
        if (!(err < bestErr * (1 - 1e-6))) break;
        bestErr = err; bestLo = fitted.lo; bestStep = fitted.step;
      }
      options.onProgress?.((j + 1) / d);
      this.lo[j] = bestLo;
      this.step[j] = bestStep;
    }
  }

  protected encodeRows(vectors: Float32Array, n: number, out: Uint8Array): void {
    const d = this.dimension, lo = this.lo, levels = (1 << this.bits) - 1;
    const inv = this.step.map((s) => (s > 0 ? 1 / s : 0));
    if (this.bits === 8) {
      for (let i = 0; i < n; i++) {
        const o = i * d;
        for (let j = 0; j < d; j++) out[o + j] = quantize(vectors[o + j], lo[j], inv[j], levels);
      }
    } else {
      const cs = this.codeSize;
      for (let i = 0; i < n; i++) {
        const o = i * d, r = i * cs;
        for (let t = 0; t < cs; t++) {
          const j = 2 * t;
          const low = quantize(vectors[o + j], lo[j], inv[j], levels);
          const high = j + 1 < d ? quantize(vectors[o + j + 1], lo[j + 1], inv[j + 1], levels) : 0;
          out[r + t] = low | (high << 4);
        }
      }
    }
  }

  protected decodeRows(codes: Uint8Array, n: number, out: Float32Array): void {
    const d = this.dimension, lo = this.lo, step = this.step, cs = this.codeSize;
    for (let i = 0; i < n; i++) {
      const o = i * d, r = i * cs;
      for (let j = 0; j < d; j++) {
        const c = this.bits === 8 ? codes[r + j] : (codes[r + (j >> 1)] >> ((j & 1) << 2)) & 15;
        out[o + j] = lo[j] + c * step[j];
      }
    }
  }

  protected prepareQuery(query: Float32Array): QueryScorer {
    const d = this.dimension, lo = this.lo, step = this.step;
    const mem = new ScorerMemory(this.kernels, this.spec);
    const k = this.kernels;
    const stride = this.codeSize;
    if (this.metric === 'dot') {
      // <q, x^> = sum q lo + sum (q step) c; the weights q*step go to the kernel as i16
      let bias = 0;
      const qw = new Float32Array(d);
      for (let j = 0; j < d; j++) { bias += query[j] * lo[j]; qw[j] = query[j] * step[j]; }
      const qi = new Int16Array(this.bits === 8 ? d : 2 * stride);
      if (this.bits === 8) {
        const scale = quantizeQueryI16(qw, d, 255, qi);
        const qp = mem.i16(qi);
        return scorer(mem, (codes, n, out) => k.sqDotU8(qp, scale, codes, n, d, stride, bias, out),
          { kind: SCORE_KIND.SQ8_DOT, d, stride, scale, bias, p0: qp, p1: 0 });
      }
      const split = new Float32Array(2 * stride);
      splitQuery(qw, d, split);
      const scale = quantizeQueryI16(split, 2 * stride, 15, qi);
      const qp = mem.i16(qi);
      return scorer(mem, (codes, n, out) => k.sqDotU4(qp, scale, codes, n, d, stride, bias, out),
        { kind: SCORE_KIND.SQ4_DOT, d, stride, scale, bias, p0: qp, p1: 0 });
    }
    // -||q - x^||^2 = -sum step^2 ((q - lo)/step - c)^2; constant dimensions go to the bias
    let bias = 0;
    const qs = new Float32Array(d), w = new Float32Array(d);
    for (let j = 0; j < d; j++) {
      if (step[j] > 0) { qs[j] = (query[j] - lo[j]) / step[j]; w[j] = step[j] * step[j]; }
      else bias -= (query[j] - lo[j]) ** 2;
    }
    if (this.bits === 8) {
      const qp = mem.f32(qs), wp = mem.f32(w);
      return scorer(mem, (codes, n, out) => k.sqL2U8(qp, wp, codes, n, d, stride, bias, out),
        { kind: SCORE_KIND.SQ8_L2, d, stride, scale: 0, bias, p0: qp, p1: wp });
    }
    const qsplit = new Float32Array(2 * stride), wsplit = new Float32Array(2 * stride);
    splitQuery(qs, d, qsplit);
    splitQuery(w, d, wsplit);
    const qp = mem.f32(qsplit), wp = mem.f32(wsplit);
    return scorer(mem, (codes, n, out) => k.sqL2U4(qp, wp, codes, n, d, stride, bias, out),
      { kind: SCORE_KIND.SQ4_L2, d, stride, scale: 0, bias, p0: qp, p1: wp });
  }

  protected writePayload(): Uint8Array {
    return new ByteWriter(8 + 8 * this.dimension).u8(PAYLOAD_VERSION).u8(this.bits).typed(this.lo).typed(this.step).finish().slice();
  }

  /** Restores trained parameters from writePayload() bytes. */
  static fromPayload(ctx: QuantizerContext, bits: 4 | 8, payload: Uint8Array): ScalarQuantizer {
    const q = new ScalarQuantizer(ctx, bits);
    const r = new ByteReader(payload, `${q.spec} payload`);
    checkPayloadVersion(r.u8('version'), PAYLOAD_VERSION, q.spec);
    const b = r.u8('bits');
    if (b !== bits) r.fail(`payload holds ${b}-bit codes, spec says ${bits}`, { expected: bits, received: b });
    q.lo = r.f32Array(q.dimension, 'lo');
    q.step = r.f32Array(q.dimension, 'step');
    for (let j = 0; j < q.dimension; j++) {
      if (!Number.isFinite(q.lo[j]) || !(q.step[j] >= 0) || !Number.isFinite(q.step[j])) r.fail(`dimension ${j} has an invalid range`, { column: j });
    }
    if (r.remaining !== 0) r.fail(`${r.remaining} unexpected trailing bytes`);
    q.markTrained();
    return q;
  }
}

function quantize(x: number, lo: number, inv: number, levels: number): number {
  const c = Math.round((x - lo) * inv);
  return c < 0 ? 0 : c > levels ? levels : c;
}

/**
 * Least-squares (lo, step) for values assigned to codes c = quantize(x): minimises
 * sum (x - lo - c*step)^2 over the current assignment. Null when all codes are equal.
 */
function refitGrid(values: Float32Array, m: number, lo: number, step: number, levels: number): { lo: number; step: number } | null {
  const inv = 1 / step;
  let sc = 0, scc = 0, sx = 0, scx = 0;
  for (let i = 0; i < m; i++) {
    const x = values[i];
    const c = quantize(x, lo, inv, levels);
    sc += c; scc += c * c; sx += x; scx += c * x;
  }
  const det = m * scc - sc * sc;
  if (!(det > 0)) return null;
  const newStep = (m * scx - sc * sx) / det;
  if (!(newStep > 0)) return null;
  return { lo: (sx - newStep * sc) / m, step: newStep };
}

/** Sum of squared errors of quantizing sorted values onto lo + c*step, c in [0, levels]. */
function gridError(values: Float32Array, m: number, lo: number, step: number, levels: number): number {
  let err = 0;
  if (step === 0) {
    for (let i = 0; i < m; i++) err += (values[i] - lo) ** 2;
    return err;
  }
  const inv = 1 / step;
  for (let i = 0; i < m; i++) {
    const x = values[i];
    const c = quantize(x, lo, inv, levels);
    const e = x - (lo + c * step);
    err += e * e;
  }
  return err;
}

/** A QueryScorer over one kernel call per block; `run(codesPtr, n, outPtr)`; `rowScoring` for graph search. */
export function scorer(mem: ScorerMemory, run: (codes: number, n: number, out: number) => void, rowScoring?: RowScoring): QueryScorer {
  return {
    ...(rowScoring ? { rowScoring } : {}),
    scoreBlock(codesPtr: number, n: number, outPtr: number): void {
      mem.check();
      checkScoreArgs(n, 'scoreBlock');
      if (n > 0) run(codesPtr, n, outPtr);
    },
    release(): void { mem.release(); },
  };
}

// ---- F16 -------------------------------------------------------------------------------------

/** Largest magnitude that rounds to a finite half float. */
const F16_LIMIT = 65520;
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE 754 binary16 bits of x, rounded to nearest even (|x| >= 65520 gives infinity). */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // re-biased half exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // a carry rolls into the exponent, as it should
  return sign | half;
}

/** F16: each dimension as an IEEE half float (2 bytes), scored by the dense f16 kernels. */
export class F16Quantizer extends QuantizerBase {
  readonly spec = 'F16';
  readonly codeSize: number;
  readonly minTrainingVectors = 1;

  constructor(ctx: QuantizerContext) {
    super(ctx);
    this.codeSize = 2 * this.dimension;
  }

  protected fit(): void {
    // no parameters: training only validates the sample
  }

  protected encodeRows(vectors: Float32Array, n: number, out: Uint8Array): void {
    const total = n * this.dimension;
    for (let i = 0; i < total; i++) {
      if (!(Math.abs(vectors[i]) < F16_LIMIT)) {
        const row = Math.floor(i / this.dimension);
        throw new QuiverError('INVALID_VECTOR', `F16 encode: vector ${row} has ${vectors[i]} at dimension ${i - row * this.dimension}, outside the half-float range (|x| < 65520)`, {
          row, column: i - row * this.dimension, received: vectors[i], expected: '|x| < 65520',
        });
      }
    }
    for (let i = 0; i < total; i++) {
      const h = f32ToF16Bits(vectors[i]);
      out[2 * i] = h & 0xff;
      out[2 * i + 1] = h >>> 8;
    }
  }

  protected decodeRows(codes: Uint8Array, n: number, out: Float32Array): void {
    const total = n * this.dimension;
    for (let i = 0; i < total; i++) out[i] = F16_TABLE[codes[2 * i] | (codes[2 * i + 1] << 8)];
  }

  protected prepareQuery(query: Float32Array): QueryScorer {
    const mem = new ScorerMemory(this.kernels, this.spec);
    const qp = mem.f32(query);
    const k = this.kernels, d = this.dimension;
    if (this.metric === 'dot') return scorer(mem, (codes, n, out) => k.dotManyF16(qp, codes, n, d, out), { kind: SCORE_KIND.F16_DOT, d, stride: 2 * d, scale: 0, bias: 0, p0: qp, p1: 0 });
    return scorer(mem, (codes, n, out) => { k.l2ManyF16(qp, codes, n, d, out); k.affineInPlace(out, n, -1, 0); },
      { kind: SCORE_KIND.F16_L2, d, stride: 2 * d, scale: 0, bias: 0, p0: qp, p1: 0 });
  }

  protected writePayload(): Uint8Array {
    return Uint8Array.of(PAYLOAD_VERSION);
  }

  static fromPayload(ctx: QuantizerContext, payload: Uint8Array): F16Quantizer {
    const q = new F16Quantizer(ctx);
    const r = new ByteReader(payload, 'F16 payload');
    checkPayloadVersion(r.u8('version'), PAYLOAD_VERSION, 'F16');
    if (r.remaining !== 0) r.fail(`${r.remaining} unexpected trailing bytes`);
    q.markTrained();
    return q;
  }
}

/** Registry entry: 'F16', 'SQ8', 'SQ4'. */
export const SCALAR_FAMILY: QuantizerFamily = {
  grammar: 'F16 | SQ8 | SQ4',
  parse(spec) {
    if (spec === 'F16') return (ctx) => new F16Quantizer(ctx);
    if (spec === 'SQ8') return (ctx) => new ScalarQuantizer(ctx, 8);
    if (spec === 'SQ4') return (ctx) => new ScalarQuantizer(ctx, 4);
    return null;
  },
  deserialize(spec, payload, ctx) {
    if (spec === 'F16') return F16Quantizer.fromPayload(ctx, payload);
    return ScalarQuantizer.fromPayload(ctx, spec === 'SQ8' ? 8 : 4, payload);
  },
};
