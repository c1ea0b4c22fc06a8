import type { KernelMemory } from './memory.js';

/**
 * Kernels for scalar quantization codes (SQ8/SQ4, LVQ, binary asymmetric): the interface and its plain JS twin, side by side.
 * The WASM SIMD implementation lives in assembly/scalar.ts with the same export names;
 * test/kernels-scalar.test.ts checks the two agree on random data.
 * Pointers are byte offsets into the kernel memory; see types.ts for conventions.
 *
 * Code rows are `stride` bytes apart (stride >= the code bytes; rows with an f32 header need a
 * stride that is a multiple of 4). 4-bit codes put dimension 2t in the low nibble of byte t and
 * 2t+1 in the high nibble; the kernels that read them take the query "split" (see splitQuery):
 * f32[2 * ceil(d/2)] holding q[0], q[2], q[4], ... then q[1], q[3], ..., zero past d.
 */
export interface ScalarKernels {
  /** out[i] = bias + qscale * sum_j q[j] * codes[i*stride + j]. q: i16[d] (see quantizeQueryI16); codes: u8 rows; out: f32[n]. */
  sqDotU8(q: number, qscale: number, codes: number, n: number, d: number, stride: number, bias: number, out: number): void;
  /** out[i] = bias + qscale * sum_j q[j] * nibble_j(row i). qs: split i16 query [2 * ceil(d/2)]; out: f32[n]. */
  sqDotU4(qs: number, qscale: number, codes: number, n: number, d: number, stride: number, bias: number, out: number): void;
  /** out[i] = bias - sum_j w[j] * (q[j] - codes[i*stride + j])^2. q, w: f32[d]; out: f32[n]. */
  sqL2U8(q: number, w: number, codes: number, n: number, d: number, stride: number, bias: number, out: number): void;
  /** As sqL2U8 over nibble codes; qs, ws: split f32[2 * ceil(d/2)]. */
  sqL2U4(qs: number, ws: number, codes: number, n: number, d: number, stride: number, bias: number, out: number): void;
  /**
   * LVQ rows: f32 scale, f32 offset, [f32 squared norm when l2 != 0], level-1 codes (bits1 8: d
   * bytes, 4: ceil(d/2) nibble bytes), then level-2 codes (bits2 0, 4 or 8). With
   * inner = offset*qsum + scale*(dot1 + dot2 / (2^bits2 - 1) - qsum/2) (the last two terms
   * only when bits2 > 0: level 2 codes the level-1 residual in [-scale/2, scale/2]); then
   * out[i] = bias + inner (l2 = 0) or bias + 2*inner - sqnorm (l2 = 1).
   * dot1, dot2 = qscale * (integer code dots) with q: i16[d] for 8-bit levels and qs: the split
   * i16 query for 4-bit levels (quantizeQueryI16); qsum is the float sum of the query; out: f32[n].
   */
  lvqScore(q: number, qs: number, qscale: number, qsum: number, codes: number, n: number, d: number, stride: number, bits1: number, bits2: number, l2: number, bias: number, out: number): void;
  /**
   * Binary rows: f32 alpha, f32 gamma, then ceil(d/8) bytes of sign bits (dimension j at byte
   * j>>3, bit j&7). lut: f32[ceil(d/8) * 32], 16 entries per group of 4 dimensions (low nibble
   * of byte t = group 2t, high nibble = group 2t+1): entry m = sum_b (bit b of m ? q : -q).
   * out[i] = bias + gamma + ipMul * alpha * S, S = the signed sum of q over the row's bits.
   */
  binDot(lut: number, codes: number, n: number, d: number, stride: number, ipMul: number, bias: number, out: number): void;
  /** Binary rows as binDot; qbits: u8[ceil(d/8)]. out[i] = bias + gamma + alpha * qscale * (d - 2 * popcount(qbits ^ bits)). */
  binHamming(qbits: number, codes: number, n: number, d: number, stride: number, qscale: number, bias: number, out: number): void;
  /** a[i] = a[i] * mul + add. a: f32[n]. */
  affineInPlace(a: number, n: number, mul: number, add: number): void;
  /** a[i] += scale * b[i]. a, b: f32[n] (e.g. optimistic scores = estimates + bounds). */
  addScaledInPlace(a: number, b: number, n: number, scale: number): void;
}

/** Writes the split form of q: [d] into out: [2 * ceil(d/2)] (see ScalarKernels). */
export function splitQuery(q: ArrayLike<number>, d: number, out: Float32Array | Int16Array): void {
  const nb = (d + 1) >> 1;
  for (let t = 0; t < nb; t++) {
    out[t] = q[2 * t];
    out[nb + t] = 2 * t + 1 < d ? q[2 * t + 1] : 0;
  }
}

/**
 * Quantizes q: [d] to i16 for the integer code-dot kernels: out[j] = round(q[j] / scale), returns
 * scale (0 for an all-zero q). |out| stays within i16 and within the bound that keeps every i32
 * accumulator lane of the WASM kernels from overflowing for codes up to maxCode (255 for bytes,
 * 15 for nibbles): lane sums hold at most ceil(d/8) + 16 products. For d <= 1024 and bytes that
 * is the full 15 bits; the relative error per query value is at most 1 / (2 * limit).
 */
export function quantizeQueryI16(q: ArrayLike<number>, d: number, maxCode: number, out: Int16Array): number {
  const limit = Math.min(32767, Math.floor(2147483647 / (maxCode * (Math.ceil(d / 8) + 16))));
  let max = 0;
  for (let j = 0; j < d; j++) max = Math.max(max, Math.abs(q[j]));
  if (max === 0) { out.fill(0, 0, d); return 0; }
  const scale = max / limit;
  for (let j = 0; j < d; j++) out[j] = Math.round(q[j] / scale);
  return scale;
}

const POPCOUNT8 = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) t[i] = (i & 1) + t[i >> 1];
  return t;
})();

/** The JS twin of every ScalarKernels method, over `memory` (use memory.views() inside each call). */
export function scalarTwin(memory: KernelMemory): ScalarKernels {
  // integer code dots over an i16 query: exact in JS numbers (below 2^53)
  function dotU8Row(H: Int16Array, B: Uint8Array, q: number, row: number, d: number): number {
    let s = 0;
    const qi = q >> 1;
    for (let j = 0; j < d; j++) s += H[qi + j] * B[row + j];
    return s;
  }
  function dotU4Row(H: Int16Array, B: Uint8Array, qs: number, row: number, nb: number): number {
    let s = 0;
    const lo = qs >> 1, hi = lo + nb;
    for (let t = 0; t < nb; t++) {
      const b = B[row + t];
      s += H[lo + t] * (b & 15) + H[hi + t] * (b >> 4);
    }
    return s;
  }
  return {
    sqDotU8(q, qscale, codes, n, d, stride, bias, out) {
      const { f32: F, i16: H, u8: B } = memory.views();
      for (let i = 0; i < n; i++) F[(out >> 2) + i] = bias + qscale * dotU8Row(H, B, q, codes + i * stride, d);
    },
    sqDotU4(qs, qscale, codes, n, d, stride, bias, out) {
      const { f32: F, i16: H, u8: B } = memory.views();
      const nb = (d + 1) >> 1;
      for (let i = 0; i < n; i++) F[(out >> 2) + i] = bias + qscale * dotU4Row(H, B, qs, codes + i * stride, nb);
    },
    sqL2U8(q, w, codes, n, d, stride, bias, out) {
      const { f32: F, u8: B } = memory.views();
      const qi = q >> 2, wi = w >> 2;
      for (let i = 0; i < n; i++) {
        const row = codes + i * stride;
        let s = 0;
        for (let j = 0; j < d; j++) { const t = F[qi + j] - B[row + j]; s += F[wi + j] * t * t; }
        F[(out >> 2) + i] = bias - s;
      }
    },
    sqL2U4(qs, ws, codes, n, d, stride, bias, out) {
      const { f32: F, u8: B } = memory.views();
      const nb = (d + 1) >> 1;
      const ql = qs >> 2, qh = ql + nb, wl = ws >> 2, wh = wl + nb;
      for (let i = 0; i < n; i++) {
        const row = codes + i * stride;
        let s = 0;
        for (let t = 0; t < nb; t++) {
          const b = B[row + t];
          const dl = F[ql + t] - (b & 15), dh = F[qh + t] - (b >> 4);
          s += F[wl + t] * dl * dl + F[wh + t] * dh * dh;
        }
        F[(out >> 2) + i] = bias - s;
      }
    },
    lvqScore(q, qs, qscale, qsum, codes, n, d, stride, bits1, bits2, l2, bias, out) {
      const { f32: F, i16: H, u8: B } = memory.views();
      const header = l2 ? 12 : 8;
      const nb = (d + 1) >> 1;
      const len1 = bits1 === 8 ? d : nb;
      const r2 = bits2 === 0 ? 0 : 1 / ((1 << bits2) - 1);
      for (let i = 0; i < n; i++) {
        const row = codes + i * stride;
        const c1 = row + header;
        const dot1 = qscale * (bits1 === 8 ? dotU8Row(H, B, q, c1, d) : dotU4Row(H, B, qs, c1, nb));
        const dot2 = qscale * (bits2 === 8 ? dotU8Row(H, B, q, c1 + len1, d) : bits2 === 4 ? dotU4Row(H, B, qs, c1 + len1, nb) : 0);
        const shift = bits2 === 0 ? 0 : qsum * 0.5;
        const inner = F[(row >> 2) + 1] * qsum + F[row >> 2] * (dot1 + dot2 * r2 - shift);
        F[(out >> 2) + i] = l2 ? bias + 2 * inner - F[(row >> 2) + 2] : bias + inner;
      }
    },
    binDot(lut, codes, n, d, stride, ipMul, bias, out) {
      const { f32: F, u8: B } = memory.views();
      const nbytes = (d + 7) >> 3;
      const L = lut >> 2;
      for (let i = 0; i < n; i++) {
        const row = codes + i * stride;
        let s = 0;
        for (let t = 0; t < nbytes; t++) {
          const b = B[row + 8 + t];
          s += F[L + t * 32 + (b & 15)] + F[L + t * 32 + 16 + (b >> 4)];
        }
        F[(out >> 2) + i] = bias + F[(row >> 2) + 1] + ipMul * F[row >> 2] * s;
      }
    },
    binHamming(qbits, codes, n, d, stride, qscale, bias, out) {
      const { f32: F, u8: B } = memory.views();
      const nbytes = (d + 7) >> 3;
      for (let i = 0; i < n; i++) {
        const row = codes + i * stride;
        let h = 0;
        for (let t = 0; t < nbytes; t++) h += POPCOUNT8[B[qbits + t] ^ B[row + 8 + t]];
        F[(out >> 2) + i] = bias + F[(row >> 2) + 1] + F[row >> 2] * qscale * (d - 2 * h);
      }
    },
    affineInPlace(a, n, mul, add) {
      const { f32: F } = memory.views();
      const ai = a >> 2;
      for (let i = 0; i < n; i++) F[ai + i] = F[ai + i] * mul + add;
    },
    addScaledInPlace(a, b, n, scale) {
      const { f32: F } = memory.views();
      const ai = a >> 2, bi = b >> 2;
      for (let i = 0; i < n; i++) F[ai + i] = F[ai + i] + scale * F[bi + i];
    },
  };
}
