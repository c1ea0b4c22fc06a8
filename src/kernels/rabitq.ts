import type { KernelMemory } from './memory.js';

/**
 * Kernels for RaBitQ (bit-plane inner products, extended codes): the interface and its plain JS twin, side by side.
 * The WASM SIMD implementation lives in assembly/rabitq.ts with the same export names;
 * test/kernels-rabitq.test.ts checks the two agree on random data.
 * Pointers are byte offsets into the kernel memory; see types.ts for conventions.
 */
export interface RabitqKernels {
  /**
   * RaBitQ estimated scores (and error bounds) of n codes against one bit-plane query.
   *
   * codes: u8[n * codeSize]; row i = codeBits bit planes of planeBytes bytes (plane k holds bit k
   *   of every dimension's code u_t, dimension t at byte t >> 3, bit t & 7), padding, and in its
   *   last 16 bytes the f32 factors add, rescale, errScale, oneMinusA2 (codeSize multiple of 4).
   * query: u8[queryBits * planeBytes], the quantized query q̄ as bit planes in the same order.
   * params: f32[8] = delta, low, constTerm, outScale, outBias, boundVar, quantVar, boundScale.
   * With ip = <u, q̄> = sum over planes k, j of 2^(k+j) popcount(plane_k AND qplane_j), sumU = sum_t u_t:
   *   out[i]    = outBias + add + outScale * rescale * (delta * ip + low * sumU + constTerm)   out: f32[n]
   *   bounds[i] = boundScale * errScale * sqrt(oneMinusA2 * boundVar + quantVar)               bounds: f32[n], skipped when 0
   * The per-vector combination runs in float64 in both implementations.
   */
  rabitqScan(codes: number, n: number, codeSize: number, codeBits: number, planeBytes: number, query: number, queryBits: number, params: number, out: number, bounds: number): void;
  /**
   * RaBitQ scores for codes stored one value per dimension: bits = 4 (dimension t in the low
   * nibble of byte t >> 1 when t is even, the high nibble when odd; ceil(dim / 2) bytes) or
   * bits = 8 (one byte per dimension). Rows end with the same 16 bytes of factors as rabitqScan.
   * query: i16[dim], the signed quantized query q̄ (small enough that no i32 lane of the SIMD sum
   * overflows: ceil(dim / 4) * (2^bits - 1) * max|q̄| < 2^31). params: f32[8] as rabitqScan
   * (params[1], low, unused). With ip = sum_t u_t q̄_t (an exact integer):
   *   out[i]    = outBias + add + outScale * rescale * (delta * ip + constTerm)   out: f32[n]
   *   bounds[i] = boundScale * errScale * sqrt(oneMinusA2 * boundVar + quantVar)  bounds: f32[n], skipped when 0
   */
  rabitqScanDirect(codes: number, n: number, codeSize: number, dim: number, bits: number, query: number, params: number, out: number, bounds: number): void;
  /**
   * 1-bit RaBitQ by 4-bit fast-scan (`RaBitQ1fs`): scores (and error bounds) of n vectors stored
   * in ceil(n / 32) blocks of m * 16 + 512 bytes: the nibble codes as pqFastScan reads them (nibble
   * s of a vector = its sign bits of dimensions 4s..4s+3, dimension 4s + b at bit b), then the f32
   * factors of the block's 32 vectors as four arrays add[32], rescale[32], errScale[32], oneMinusA2[32].
   * lut: u8[m * 16], each group's quantized partial inner products. params: f32[8] = scale,
   * constTerm, outScale, outBias, boundVar, quantVar, boundScale, unused. With S = sum_s
   * lut[s * 16 + code_s(i)], every step rounded to float32 in this order:
   *   out[i]    = (outBias + add) + outScale * (rescale * (scale * S + constTerm))    out: f32[n]
   *   bounds[i] = boundScale * (errScale * sqrt(oneMinusA2 * boundVar + quantVar))   bounds: f32[n], skipped when 0
   */
  rabitqFastScan(blocks: number, n: number, m: number, lut: number, params: number, out: number, bounds: number): void;
}

const POPCOUNT8 = (() => {
  const t = new Uint8Array(256);
  for (let i = 1; i < 256; i++) t[i] = (i & 1) + t[i >> 1];
  return t;
})();

/** The JS twin of every RabitqKernels method, over `memory` (use memory.views() inside each call). */
export function rabitqTwin(memory: KernelMemory): RabitqKernels {
  return {
    rabitqScan(codes, n, codeSize, codeBits, planeBytes, query, queryBits, params, out, bounds) {
      const { u8: U8, f32: F32 } = memory.views();
      const p = params >> 2;
      const delta = F32[p], low = F32[p + 1], constTerm = F32[p + 2], outScale = F32[p + 3], outBias = F32[p + 4];
      const boundVar = F32[p + 5], quantVar = F32[p + 6], boundScale = F32[p + 7];
      for (let i = 0, row = codes; i < n; i++, row += codeSize) {
        let ip = 0, sumU = 0;
        for (let k = 0; k < codeBits; k++) {
          const plane = row + k * planeBytes;
          let ones = 0;
          for (let b = 0; b < planeBytes; b++) ones += POPCOUNT8[U8[plane + b]];
          sumU += ones * 2 ** k;
          for (let j = 0; j < queryBits; j++) {
            const qp = query + j * planeBytes;
            let c = 0;
            for (let b = 0; b < planeBytes; b++) c += POPCOUNT8[U8[plane + b] & U8[qp + b]];
            ip += c * 2 ** (k + j);
          }
        }
        const f = (row + codeSize - 16) >> 2;
        const raw = delta * ip + low * sumU + constTerm;
        F32[(out >> 2) + i] = outBias + F32[f] + outScale * F32[f + 1] * raw;
        if (bounds !== 0) F32[(bounds >> 2) + i] = boundScale * F32[f + 2] * Math.sqrt(F32[f + 3] * boundVar + quantVar);
      }
    },

    rabitqScanDirect(codes, n, codeSize, dim, bits, query, params, out, bounds) {
      const { u8: U8, i16: I16, f32: F32 } = memory.views();
      const p = params >> 2, q0 = query >> 1;
      const delta = F32[p], constTerm = F32[p + 2], outScale = F32[p + 3], outBias = F32[p + 4];
      const boundVar = F32[p + 5], quantVar = F32[p + 6], boundScale = F32[p + 7];
      for (let i = 0, row = codes; i < n; i++, row += codeSize) {
        let ip = 0;
        if (bits === 4) for (let t = 0; t < dim; t++) ip += ((U8[row + (t >> 1)] >> ((t & 1) << 2)) & 15) * I16[q0 + t];
        else for (let t = 0; t < dim; t++) ip += U8[row + t] * I16[q0 + t];
        const f = (row + codeSize - 16) >> 2;
        F32[(out >> 2) + i] = outBias + F32[f] + outScale * F32[f + 1] * (delta * ip + constTerm);
        if (bounds !== 0) F32[(bounds >> 2) + i] = boundScale * F32[f + 2] * Math.sqrt(F32[f + 3] * boundVar + quantVar);
      }
    },

    rabitqFastScan(blocks, n, m, lut, params, out, bounds) {
      const { u8: U8, f32: F32 } = memory.views();
      const f = Math.fround, p = params >> 2;
      const scale = F32[p], constTerm = F32[p + 1], outScale = F32[p + 2], outBias = F32[p + 3];
      const boundVar = F32[p + 4], quantVar = F32[p + 5], boundScale = F32[p + 6];
      const codeBytes = m * 16, blockBytes = codeBytes + 512;
      for (let first = 0, block = blocks; first < n; first += 32, block += blockBytes) {
        const count = Math.min(32, n - first), fw = (block + codeBytes) >> 2;
        for (let v = 0; v < count; v++) {
          const byte = v & 15, shift = v < 16 ? 0 : 4;
          let total = 0;
          for (let s = 0; s < m; s++) total += U8[lut + s * 16 + ((U8[block + s * 16 + byte] >> shift) & 15)];
          const est = f(f(scale * total) + constTerm);
          F32[(out >> 2) + first + v] = f(f(outBias + F32[fw + v]) + f(outScale * f(F32[fw + 32 + v] * est)));
          if (bounds !== 0) F32[(bounds >> 2) + first + v] = f(boundScale * f(F32[fw + 64 + v] * f(Math.sqrt(f(f(F32[fw + 96 + v] * boundVar) + quantVar)))));
        }
      }
    },
  };
}
