import { columnMeans } from '../math/linalg.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { checkPayloadVersion, QuantizerBase, ScorerMemory } from './common.js';
import type { QuantizerContext, QuantizerFamily } from './registry.js';
import { scorer } from './scalar.js';
import type { QueryScorer, TrainOptions } from './types.js';

/**
 * Binary quantization: one sign bit per dimension after centring on the training mean.
 *
 * A vector x becomes s = sign(x - mean) in {-1, +1}^d and a per-vector scale
 * alpha = mean_j |x_j - mean_j| (the alpha minimising ||(x - mean) - alpha s||), so that
 * x ~ mean + alpha s. Centring matters: embeddings share a large common component, and the
 * signs of the raw coordinates would mostly encode it.
 *
 * Two scorings of the same codes (two specs):
 * - 'BIN': symmetric. The query is binarised the same way (s_q, alpha_q) and
 *   <q - mean, s> ~ alpha_q (d - 2 * hamming(s_q, s)): XOR + popcount (kernel binHamming).
 * - 'BINf': asymmetric, float query: <q - mean, s> computed exactly from the bits through
 *   16-entry lookup tables per 4 dimensions (kernel binDot). Slower than Hamming, more accurate.
 * With m = <q - mean, s> (exact for BINf, alpha_q (d - 2 hamming) for BIN), the scores are
 *   dot: <q, mean> + alpha m + alpha <mean, s>      (= <q, mean + alpha s> exactly for BINf)
 *   l2:  -||q - mean||^2 + 2 alpha m - d alpha^2    (= -||q - (mean + alpha s)||^2 for BINf)
 *
 * Row layout (codeSize = 8 + ceil(d/8), rounded up to a multiple of 4):
 *   f32 alpha, f32 gamma (alpha <mean, s> for dot, -d alpha^2 for l2), sign bits (dimension j at
 *   byte j>>3, bit j&7, 1 = positive), zero padding.
 */

const PAYLOAD_VERSION = 1;

export class BinaryQuantizer extends QuantizerBase {
  readonly spec: string;
  readonly codeSize: number;
  readonly minTrainingVectors = 2;
  private mean: Float32Array;

  constructor(ctx: QuantizerContext, readonly asymmetric: boolean) {
    super(ctx);
    this.spec = asymmetric ? 'BINf' : 'BIN';
    this.codeSize = (8 + ((this.dimension + 7) >> 3) + 3) & ~3;
    this.mean = new Float32Array(this.dimension);
  }

  protected fit(sample: Float32Array, n: number, _options: TrainOptions): void {
    this.mean = Float32Array.from(columnMeans(sample, n, this.dimension));
  }

  protected encodeRows(vectors: Float32Array, n: number, out: Uint8Array): void {
    const d = this.dimension, cs = this.codeSize, mean = this.mean;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let i = 0; i < n; i++) {
      const o = i * d, r = i * cs;
      out.fill(0, r, r + cs);
      let abs = 0, meanDotSigns = 0;
      for (let j = 0; j < d; j++) {
        const v = vectors[o + j] - mean[j];
        abs += Math.abs(v);
        if (v > 0) { out[r + 8 + (j >> 3)] |= 1 << (j & 7); meanDotSigns += mean[j]; } else meanDotSigns -= mean[j];
      }
      const alpha = Math.fround(abs / d);
      view.setFloat32(r, alpha, true);
      view.setFloat32(r + 4, this.metric === 'l2' ? -d * alpha * alpha : alpha * meanDotSigns, true);
    }
  }

  protected decodeRows(codes: Uint8Array, n: number, out: Float32Array): void {
    const d = this.dimension, cs = this.codeSize, mean = this.mean;
    const view = new DataView(codes.buffer, codes.byteOffset, codes.byteLength);
    for (let i = 0; i < n; i++) {
      const r = i * cs;
      const alpha = view.getFloat32(r, true);
      for (let j = 0; j < d; j++) out[i * d + j] = mean[j] + ((codes[r + 8 + (j >> 3)] >> (j & 7)) & 1 ? alpha : -alpha);
    }
  }

  protected prepareQuery(query: Float32Array): QueryScorer {
    const d = this.dimension, mean = this.mean, k = this.kernels, stride = this.codeSize;
    const mem = new ScorerMemory(k, this.spec);
    const l2 = this.metric === 'l2';
    // centred query and the score constants
    const centred = new Float64Array(d);
    let qMean = 0, qCentredSq = 0;
    for (let j = 0; j < d; j++) {
      centred[j] = query[j] - mean[j];
      qMean += query[j] * mean[j];
      qCentredSq += centred[j] * centred[j];
    }
    const bias = l2 ? -qCentredSq : qMean;
    const ipMul = l2 ? 2 : 1;
    const nbytes = (d + 7) >> 3;
    if (this.asymmetric) {
      // lut[g*16 + m] = sum over the 4 dimensions of group g of (bit b of m ? +c : -c)
      const lut = new Float32Array(nbytes * 32);
      for (let g = 0; g < 2 * nbytes; g++) {
        for (let m = 0; m < 16; m++) {
          let s = 0;
          for (let b = 0; b < 4; b++) {
            const j = 4 * g + b;
            if (j < d) s += (m >> b) & 1 ? centred[j] : -centred[j];
          }
          lut[g * 16 + m] = s;
        }
      }
      const lp = mem.f32(lut);
      return scorer(mem, (codes, n, out) => k.binDot(lp, codes, n, d, stride, ipMul, bias, out));
    }
    const qbits = new Uint8Array(nbytes);
    let qAbs = 0;
    for (let j = 0; j < d; j++) {
      qAbs += Math.abs(centred[j]);
      if (centred[j] > 0) qbits[j >> 3] |= 1 << (j & 7);
    }
    const qScale = ipMul * (qAbs / d);
    const qp = mem.u8(qbits);
    return scorer(mem, (codes, n, out) => k.binHamming(qp, codes, n, d, stride, qScale, bias, out));
  }

  protected writePayload(): Uint8Array {
    return new ByteWriter(8 + 4 * this.dimension).u8(PAYLOAD_VERSION).u8(this.asymmetric ? 1 : 0).typed(this.mean).finish().slice();
  }

  static fromPayload(ctx: QuantizerContext, asymmetric: boolean, payload: Uint8Array): BinaryQuantizer {
    const q = new BinaryQuantizer(ctx, asymmetric);
    const r = new ByteReader(payload, `${q.spec} payload`);
    checkPayloadVersion(r.u8('version'), PAYLOAD_VERSION, q.spec);
    const mode = r.u8('mode');
    if (mode !== (asymmetric ? 1 : 0)) r.fail(`payload mode ${mode} does not match ${q.spec}`, { expected: asymmetric ? 1 : 0, received: mode });
    q.mean = r.f32Array(q.dimension, 'mean');
    for (let j = 0; j < q.dimension; j++) if (!Number.isFinite(q.mean[j])) r.fail(`mean[${j}] is not finite`, { column: j });
    if (r.remaining !== 0) r.fail(`${r.remaining} unexpected trailing bytes`);
    q.markTrained();
    return q;
  }
}

/** Registry entry: 'BIN' (Hamming) and 'BINf' (float query). */
export const BINARY_FAMILY: QuantizerFamily = {
  grammar: 'BIN | BINf',
  parse(spec) {
    if (spec === 'BIN') return (ctx) => new BinaryQuantizer(ctx, false);
    if (spec === 'BINf') return (ctx) => new BinaryQuantizer(ctx, true);
    return null;
  },
  deserialize(spec, payload, ctx) {
    return BinaryQuantizer.fromPayload(ctx, spec === 'BINf', payload);
  },
};
