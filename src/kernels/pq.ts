import type { KernelMemory } from './memory.js';

/**
 * Kernels for product quantization (lookup-table scans, 4-bit fast-scan): the interface and its plain JS twin, side by side.
 * The WASM SIMD implementation lives in assembly/pq.ts with the same export names;
 * test/kernels-pq.test.ts checks the two agree on random data.
 * Pointers are byte offsets into the kernel memory; see types.ts for conventions.
 */
export interface PqKernels {
  /**
   * Nearest centroid (L2) of each of n points, for k-means and PQ encoding.
   * points: f32[n * d]; centroidsT: f32[d * k], centroids transposed (centroidsT[j * k + c] is
   * coordinate j of centroid c); halfNorms: f32[k] = ||c||^2 / 2.
   * outIds: u32[n], the centroid maximising <x, c> - ||c||^2 / 2 (the smallest index on ties);
   * outDists: f32[n], its squared distance ||x||^2 - 2 (<x, c> - ||c||^2 / 2), clamped at 0.
   * Float32 arithmetic in a fixed order in both implementations, so ids agree exactly.
   */
  nearestCentroids(points: number, n: number, d: number, centroidsT: number, k: number, halfNorms: number, outIds: number, outDists: number): void;
  /**
   * 8-bit PQ scan: out[i] = sum_s lut[s * 256 + codes[i * m + s]].
   * lut: f32[m * 256]; codes: u8[n * m]; out: f32[n].
   */
  pqScan8(lut: number, codes: number, n: number, m: number, out: number): void;
  /**
   * 4-bit PQ scan over rows of ceil(m / 2) bytes (subspace 2t in the low nibble of byte t, 2t + 1
   * in the high nibble): out[i] = sum_s lut[s * 16 + code_s(i)]. lut: f32[m * 16]; out: f32[n].
   */
  pqScan4(lut: number, codes: number, n: number, m: number, out: number): void;
  /**
   * 4-bit fast-scan over ceil(n / 32) blocks of m * 16 bytes: in a block, subspace s holds 16 bytes
   * at s * 16 whose byte j is the code of vector j (low nibble) and of vector j + 16 (high nibble).
   * lut: u8[m * 16] quantized tables; params: f32[2] = bias, scale.
   * out[i] = bias + scale * sum_s lut[s * 16 + code_s(i)]: f32[n] (only n values are written).
   */
  pqFastScan(blocks: number, n: number, m: number, lut: number, params: number, out: number): void;
}

const f = Math.fround;

/** The JS twin of every PqKernels method, over `memory` (use memory.views() inside each call). */
export function pqTwin(memory: KernelMemory): PqKernels {
  return {
    nearestCentroids(points, n, d, centroidsT, k, halfNorms, outIds, outDists) {
      const { f32: F, u32: U } = memory.views();
      const p0 = points >> 2, ct = centroidsT >> 2, hn = halfNorms >> 2;
      for (let i = 0; i < n; i++) {
        const x = p0 + i * d;
        let norm = 0;
        for (let j = 0; j < d; j++) norm = f(norm + f(F[x + j] * F[x + j]));
        let best = -Infinity, bestId = 0;
        for (let c = 0; c < k; c++) {
          // same order as the SIMD lanes: a running f32 sum over j, then minus ||c||^2 / 2
          let s = 0;
          for (let j = 0; j < d; j++) s = f(s + f(F[x + j] * F[ct + j * k + c]));
          s = f(s - F[hn + c]);
          if (s > best) { best = s; bestId = c; }
        }
        U[(outIds >> 2) + i] = bestId;
        const dist = f(norm - f(2 * best));
        F[(outDists >> 2) + i] = dist > 0 ? dist : 0;
      }
    },

    pqScan8(lut, codes, n, m, out) {
      const { f32: F, u8: B } = memory.views();
      const l0 = lut >> 2;
      for (let i = 0, row = codes; i < n; i++, row += m) {
        // four f32 accumulators over subspaces s = 0, 1, 2, 3 (mod 4), as the WASM kernel
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0, s = 0;
        for (; s + 4 <= m; s += 4) {
          a0 = f(a0 + F[l0 + s * 256 + B[row + s]]);
          a1 = f(a1 + F[l0 + (s + 1) * 256 + B[row + s + 1]]);
          a2 = f(a2 + F[l0 + (s + 2) * 256 + B[row + s + 2]]);
          a3 = f(a3 + F[l0 + (s + 3) * 256 + B[row + s + 3]]);
        }
        for (; s < m; s++) a0 = f(a0 + F[l0 + s * 256 + B[row + s]]);
        F[(out >> 2) + i] = f(f(a0 + a1) + f(a2 + a3));
      }
    },

    pqScan4(lut, codes, n, m, out) {
      const { f32: F, u8: B } = memory.views();
      const l0 = lut >> 2, rowBytes = (m + 1) >> 1;
      for (let i = 0, row = codes; i < n; i++, row += rowBytes) {
        let a0 = 0, a1 = 0, s = 0;
        for (; s + 2 <= m; s += 2) {
          const b = B[row + (s >> 1)];
          a0 = f(a0 + F[l0 + s * 16 + (b & 15)]);
          a1 = f(a1 + F[l0 + (s + 1) * 16 + (b >> 4)]);
        }
        if (s < m) a0 = f(a0 + F[l0 + s * 16 + (B[row + (s >> 1)] & 15)]);
        F[(out >> 2) + i] = f(a0 + a1);
      }
    },

    pqFastScan(blocks, n, m, lut, params, out) {
      const { f32: F, u8: B } = memory.views();
      const bias = F[params >> 2], scale = F[(params >> 2) + 1];
      const blockBytes = m * 16;
      for (let first = 0, block = blocks; first < n; first += 32, block += blockBytes) {
        const count = Math.min(32, n - first);
        for (let v = 0; v < count; v++) {
          const byte = v & 15, shift = v < 16 ? 0 : 4;
          let acc = 0;
          for (let s = 0; s < m; s++) acc += B[lut + s * 16 + ((B[block + s * 16 + byte] >> shift) & 15)];
          F[(out >> 2) + first + v] = f(bias + f(scale * f(acc)));
        }
      }
    },
  };
}
