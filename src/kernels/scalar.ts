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
  /** out[i] = bias + sum_j q[j] * codes[i*stride + j]. q: f32[d]; codes: u8 rows; out: f32[n]. */
  sqDotU8(q: number, codes: number, n: number, d: number, stride: number, bias: number, out: number): void;
  /** out[i] = bias + sum_j q[j] * nibble_j(row i). qs: split query f32[2 * ceil(d/2)]; out: f32[n]. */
  sqDotU4(qs: number, codes: number, n: number, d: number, stride: number, bias: number, out: number): void;
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
   * q: f32[d] for 8-bit levels; qs: split query for 4-bit levels; out: f32[n].
   */
  lvqScore(q: number, qs: number, qsum: number, codes: number, n: number, d: number, stride: number, bits1: number, bits2: number, l2: number, bias: number, out: number): void;
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

/** Writes the split form of q: f32[d] into out: f32[2 * ceil(d/2)] (see ScalarKernels). */
export function splitQuery(q: ArrayLike<number>, d: number, out: Float32Array): void {
  const nb = (d + 1) >> 1;
  for (let t = 0; t < nb; t++) {
    out[t] = q[2 * t];
    out[nb + t] = 2 * t + 1 < d ? q[2 * t + 1] : 0;
  }
}

const POPCOUNT8 = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) t[i] = (i & 1) + t[i >> 1];
  return t;
})();

/** The JS twin of every ScalarKernels method, over `memory` (use memory.views() inside each call). */
export function scalarTwin(memory: KernelMemory): ScalarKernels {
  function dotU8Row(F: Float32Array, B: Uint8Array, q: number, row: number, d: number): number {
    let s = 0;
    const qi = q >> 2;
    for (let j = 0; j < d; j++) s += F[qi + j] * B[row + j];
    return s;
  }
  function dotU4Row(F: Float32Array, B: Uint8Array, qs: number, row: number, nb: number): number {
    let s = 0;
    const lo = qs >> 2, hi = lo + nb;
    for (let t = 0; t < nb; t++) {
      const b = B[row + t];
      s += F[lo + t] * (b & 15) + F[hi + t] * (b >> 4);
    }
    return s;
  }
  return {
    sqDotU8(q, codes, n, d, stride, bias, out) {
      const { f32: F, u8: B } = memory.views();
      for (let i = 0; i < n; i++) F[(out >> 2) + i] = bias + dotU8Row(F, B, q, codes + i * stride, d);
    },
    sqDotU4(qs, codes, n, d, stride, bias, out) {
      const { f32: F, u8: B } = memory.views();
      const nb = (d + 1) >> 1;
      for (let i = 0; i < n; i++) F[(out >> 2) + i] = bias + dotU4Row(F, B, qs, codes + i * stride, nb);
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
    lvqScore(q, qs, qsum, codes, n, d, stride, bits1, bits2, l2, bias, out) {
      const { f32: F, u8: B } = memory.views();
      const header = l2 ? 12 : 8;
      const nb = (d + 1) >> 1;
      const len1 = bits1 === 8 ? d : nb;
      const r2 = bits2 === 0 ? 0 : 1 / ((1 << bits2) - 1);
      for (let i = 0; i < n; i++) {
        const row = codes + i * stride;
        const c1 = row + header;
        const dot1 = bits1 === 8 ? dotU8Row(F, B, q, c1, d) : dotU4Row(F, B, qs, c1, nb);
        const dot2 = bits2 === 8 ? dotU8Row(F, B, q, c1 + len1, d) : bits2 === 4 ? dotU4Row(F, B, qs, c1 + len1, nb) : 0;
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
