import { columnMeans } from '../math/linalg.js';
import { QuiverError } from '../errors.js';
import { SCORE_KIND } from '../kernels/graph.js';
import { quantizeQueryI16, splitQuery } from '../kernels/scalar.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { checkPayloadVersion, QuantizerBase, ScorerMemory } from './common.js';
import type { QuantizerContext, QuantizerFamily } from './registry.js';
import { scorer } from './scalar.js';
import type { QueryScorer, TrainOptions } from './types.js';

/**
 * Locally-adaptive vector quantization (LVQ, "Similarity search in the blink of an eye with
 * compressed indices"): centre every vector on the global training mean, then quantize it on its
 * OWN uniform grid: r = x - mean, lo = min_j r_j, scale = (max_j r_j - lo) / (2^B1 - 1),
 * c1_j = round((r_j - lo) / scale), r ~ lo + scale * c1.
 *
 * Two-level LVQ{B1}x{B2} adds a residual level: the level-1 error lies in [-scale/2, scale/2]
 * and is quantized uniformly with B2 bits there: c2_j = round((e_j + scale/2) / (scale / (2^B2 - 1))),
 * so r ~ lo + scale * (c1 + c2 / (2^B2 - 1) - 1/2). Level 1 alone is a complete (coarser) code:
 * a graph index can traverse on it and read level 2 only for candidates. Here scoreBlock scores
 * both levels (the full-precision estimate of the code), and so does a graph search (rowScoring:
 * the same kernel on one row).
 *
 * Specs: LVQ4, LVQ8 (one level), LVQ4x4, LVQ4x8, LVQ8x4, LVQ8x8; levels are 4 or 8 bits (nibbles
 * or bytes, which the kernels read directly).
 *
 * Row layout (codeSize rounded up to a multiple of 4):
 *   f32 scale, f32 lo, [f32 ||r^||^2 for metric l2], level-1 codes (8 bits: d bytes; 4 bits:
 *   ceil(d/2) bytes, dimension 2t in the low nibble of byte t), level-2 codes (same packing).
 * Scores (kernel lvqScore; q' = q for dot, q - mean for l2, rounded to i16 with a per-query scale
 * for the integer code dots, qsum = sum(q') kept in float):
 *   dot: <q, mean> + <q, r^>;  l2: -||q - mean||^2 + 2 <q', r^> - ||r^||^2,
 *   with <q', r^> = lo * sum(q') + scale * (<q', c1> + <q', c2> / (2^B2 - 1) - sum(q') / 2).
 */

const PAYLOAD_VERSION = 1;

export class LvqQuantizer extends QuantizerBase {
  readonly spec: string;
  readonly codeSize: number;
  readonly minTrainingVectors = 2;
  /** Bytes of the per-vector header: scale, lo, and for l2 the squared norm. */
  private readonly header: number;
  private readonly len1: number;
  private readonly len2: number;
  private mean: Float32Array;

  constructor(ctx: QuantizerContext, readonly bits1: 4 | 8, readonly bits2: 0 | 4 | 8) {
    super(ctx);
    this.spec = bits2 ? `LVQ${bits1}x${bits2}` : `LVQ${bits1}`;
    const d = this.dimension, nb = (d + 1) >> 1;
    this.header = this.metric === 'l2' ? 12 : 8;
    this.len1 = bits1 === 8 ? d : nb;
    this.len2 = bits2 === 8 ? d : bits2 === 4 ? nb : 0;
    this.codeSize = (this.header + this.len1 + this.len2 + 3) & ~3;
    this.mean = new Float32Array(d);
  }

  protected fit(sample: Float32Array, n: number, _options: TrainOptions): void {
    this.mean = Float32Array.from(columnMeans(sample, n, this.dimension));
  }

  protected encodeRows(vectors: Float32Array, n: number, out: Uint8Array): void {
    const d = this.dimension, cs = this.codeSize, mean = this.mean;
    const levels1 = (1 << this.bits1) - 1, levels2 = this.bits2 ? (1 << this.bits2) - 1 : 0;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const r = new Float64Array(d);
    const c1 = new Uint8Array(d), c2 = new Uint8Array(d);
    for (let i = 0; i < n; i++) {
      let lo = Infinity, hi = -Infinity;
      for (let j = 0; j < d; j++) {
        const v = vectors[i * d + j] - mean[j];
        r[j] = v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      // the stored (f32) grid is the one the codes are computed on, so decode and scores agree
      const scale = Math.fround((hi - lo) / levels1);
      const low = Math.fround(lo);
      const inv = scale > 0 ? 1 / scale : 0;
      let sq = 0;
      for (let j = 0; j < d; j++) {
        let c = Math.round((r[j] - low) * inv);
        c = c < 0 ? 0 : c > levels1 ? levels1 : c;
        c1[j] = c;
        let rec = low + scale * c;
        if (levels2) {
          const step2 = scale / levels2;
          let e = step2 > 0 ? Math.round((r[j] - rec + scale / 2) / step2) : 0;
          e = e < 0 ? 0 : e > levels2 ? levels2 : e;
          c2[j] = e;
          rec = low + scale * (c + e / levels2 - 0.5);
        }
        sq += rec * rec;
      }
      const o = i * cs;
      out.fill(0, o, o + cs);
      view.setFloat32(o, scale, true);
      view.setFloat32(o + 4, low, true);
      if (this.metric === 'l2') view.setFloat32(o + 8, sq, true);
      packLevel(c1, d, this.bits1, out, o + this.header);
      if (this.bits2) packLevel(c2, d, this.bits2, out, o + this.header + this.len1);
    }
  }

  protected decodeRows(codes: Uint8Array, n: number, out: Float32Array): void {
    const d = this.dimension, cs = this.codeSize, mean = this.mean;
    const levels2 = this.bits2 ? (1 << this.bits2) - 1 : 0;
    const view = new DataView(codes.buffer, codes.byteOffset, codes.byteLength);
    for (let i = 0; i < n; i++) {
      const o = i * cs;
      const scale = view.getFloat32(o, true), low = view.getFloat32(o + 4, true);
      const p1 = o + this.header, p2 = p1 + this.len1;
      for (let j = 0; j < d; j++) {
        const a = readLevel(codes, p1, j, this.bits1);
        const v = levels2 ? low + scale * (a + readLevel(codes, p2, j, this.bits2) / levels2 - 0.5) : low + scale * a;
        out[i * d + j] = mean[j] + v;
      }
    }
  }

  protected prepareQuery(query: Float32Array): QueryScorer {
    const d = this.dimension, mean = this.mean, k = this.kernels, stride = this.codeSize;
    const l2 = this.metric === 'l2';
    const q = new Float32Array(d);
    let bias = 0, qsum = 0;
    for (let j = 0; j < d; j++) {
      if (l2) { q[j] = query[j] - mean[j]; bias -= q[j] * q[j]; } else { q[j] = query[j]; bias += query[j] * mean[j]; }
      qsum += q[j];
    }
    const mem = new ScorerMemory(k, this.spec);
    const needsFull = this.bits1 === 8 || this.bits2 === 8, needsSplit = this.bits1 === 4 || this.bits2 === 4;
    // one quantization scale for both forms (the split form holds the same values), bounded for bytes
    const nb = (d + 1) >> 1;
    const qi = new Int16Array(d);
    const scale = quantizeQueryI16(q, d, 255, qi);
    const qp = needsFull ? mem.i16(qi) : 0;
    let sp = 0;
    if (needsSplit) {
      const split = new Int16Array(2 * nb);
      splitQuery(qi, d, split);
      sp = mem.i16(split);
    }
    const bits1 = this.bits1, bits2 = this.bits2, l2flag = l2 ? 1 : 0;
    return scorer(mem, (codes, n, out) => k.lvqScore(qp, sp, scale, qsum, codes, n, d, stride, bits1, bits2, l2flag, bias, out),
      { kind: l2 ? SCORE_KIND.LVQ_L2 : SCORE_KIND.LVQ_DOT, d, stride, scale, bias, p0: qp, p1: sp, aux: qsum, bits: bits1 | (bits2 << 8) });
  }

  protected writePayload(): Uint8Array {
    return new ByteWriter(8 + 4 * this.dimension).u8(PAYLOAD_VERSION).u8(this.bits1).u8(this.bits2).typed(this.mean).finish().slice();
  }

  static fromPayload(ctx: QuantizerContext, bits1: 4 | 8, bits2: 0 | 4 | 8, payload: Uint8Array): LvqQuantizer {
    const q = new LvqQuantizer(ctx, bits1, bits2);
    const r = new ByteReader(payload, `${q.spec} payload`);
    checkPayloadVersion(r.u8('version'), PAYLOAD_VERSION, q.spec);
    const b1 = r.u8('bits1'), b2 = r.u8('bits2');
    if (b1 !== bits1 || b2 !== bits2) r.fail(`payload holds LVQ${b1}x${b2}, the spec says ${q.spec}`, { expected: [bits1, bits2], received: [b1, b2] });
    q.mean = r.f32Array(q.dimension, 'mean');
    for (let j = 0; j < q.dimension; j++) if (!Number.isFinite(q.mean[j])) r.fail(`mean[${j}] is not finite`, { column: j });
    if (r.remaining !== 0) r.fail(`${r.remaining} unexpected trailing bytes`);
    q.markTrained();
    return q;
  }
}

function packLevel(codes: Uint8Array, d: number, bits: number, out: Uint8Array, at: number): void {
  if (bits === 8) {
    out.set(codes.subarray(0, d), at);
    return;
  }
  for (let j = 0; j < d; j += 2) out[at + (j >> 1)] = codes[j] | (j + 1 < d ? codes[j + 1] << 4 : 0);
}

function readLevel(codes: Uint8Array, at: number, j: number, bits: number): number {
  return bits === 8 ? codes[at + j] : (codes[at + (j >> 1)] >> ((j & 1) << 2)) & 15;
}

const LVQ_SPEC = /^LVQ([0-9]+)(?:x([0-9]+))?$/;

/** Registry entry: LVQ<b1> and LVQ<b1>x<b2> with levels of 4 or 8 bits. */
export const LVQ_FAMILY: QuantizerFamily = {
  grammar: 'LVQ4 | LVQ8 | LVQ<4|8>x<4|8>',
  parse(spec) {
    const m = LVQ_SPEC.exec(spec);
    if (!m) return null;
    const b1 = Number(m[1]), b2 = m[2] === undefined ? 0 : Number(m[2]);
    if ((b1 !== 4 && b1 !== 8) || (m[2] !== undefined && b2 !== 4 && b2 !== 8)) {
      throw new QuiverError('INVALID_ARGUMENT', `${spec}: LVQ levels are 4 or 8 bits (LVQ4, LVQ8, LVQ4x8, ...)`, { spec, expected: [4, 8], received: m[2] === undefined ? b1 : [b1, b2] });
    }
    return (ctx) => new LvqQuantizer(ctx, b1 as 4 | 8, b2 as 0 | 4 | 8);
  },
  deserialize(spec, payload, ctx) {
    const m = LVQ_SPEC.exec(spec)!;
    return LvqQuantizer.fromPayload(ctx, Number(m[1]) as 4 | 8, (m[2] === undefined ? 0 : Number(m[2])) as 0 | 4 | 8, payload);
  },
};
