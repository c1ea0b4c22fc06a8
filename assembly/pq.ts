// WASM SIMD kernels for product quantization (lookup-table scans, 4-bit fast-scan). Raw-pointer style, as dense.ts.
// Each export has a JS twin of the same name in src/kernels/pq.ts.
import { fastScanTotals } from './fast-scan';

/**
 * Nearest centroid (L2) of each of n points. points: f32[n * d]; centroidsT: f32[d * k], the
 * centroids transposed (centroidsT[j * k + c] = coordinate j of centroid c), so that one SIMD lane
 * serves one centroid and no horizontal sums are needed; halfNorms: f32[k] = ||c||^2 / 2.
 * outIds: u32[n] the nearest centroid (smallest index on ties); outDists: f32[n] its squared
 * distance ||x||^2 - 2 max_c (<x, c> - ||c||^2 / 2), clamped at 0.
 */
export function nearestCentroids(points: usize, n: i32, d: i32, centroidsT: usize, k: i32, halfNorms: usize, outIds: usize, outDists: usize): void {
  const rowBytes = <usize>d << 2, colBytes = <usize>k << 2;
  let x = points;
  for (let i = 0; i < n; i++) {
    let norm: f32 = 0;
    for (let j = 0; j < d; j++) { const v = load<f32>(x + (<usize>j << 2)); norm += v * v; }
    let best: f32 = -Infinity;
    let bestId: i32 = 0;
    let c = 0;
    for (; c + 8 <= k; c += 8) {
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      let col = centroidsT + (<usize>c << 2);
      for (let j = 0; j < d; j++) {
        const xj = f32x4.splat(load<f32>(x + (<usize>j << 2)));
        a0 = f32x4.add(a0, f32x4.mul(xj, v128.load(col)));
        a1 = f32x4.add(a1, f32x4.mul(xj, v128.load(col, 16)));
        col += colBytes;
      }
      const hn = halfNorms + (<usize>c << 2);
      a0 = f32x4.sub(a0, v128.load(hn));
      a1 = f32x4.sub(a1, v128.load(hn, 16));
      // lanes in index order: a strict '>' keeps the smallest index among equal scores
      let v: f32 = f32x4.extract_lane(a0, 0); if (v > best) { best = v; bestId = c; }
      v = f32x4.extract_lane(a0, 1); if (v > best) { best = v; bestId = c + 1; }
      v = f32x4.extract_lane(a0, 2); if (v > best) { best = v; bestId = c + 2; }
      v = f32x4.extract_lane(a0, 3); if (v > best) { best = v; bestId = c + 3; }
      v = f32x4.extract_lane(a1, 0); if (v > best) { best = v; bestId = c + 4; }
      v = f32x4.extract_lane(a1, 1); if (v > best) { best = v; bestId = c + 5; }
      v = f32x4.extract_lane(a1, 2); if (v > best) { best = v; bestId = c + 6; }
      v = f32x4.extract_lane(a1, 3); if (v > best) { best = v; bestId = c + 7; }
    }
    for (; c < k; c++) {
      let s: f32 = 0;
      let p = centroidsT + (<usize>c << 2);
      for (let j = 0; j < d; j++) { s += load<f32>(x + (<usize>j << 2)) * load<f32>(p); p += colBytes; }
      s -= load<f32>(halfNorms + (<usize>c << 2));
      if (s > best) { best = s; bestId = c; }
    }
    store<u32>(outIds + (<usize>i << 2), <u32>bestId);
    const dist = norm - 2 * best;
    store<f32>(outDists + (<usize>i << 2), dist > 0 ? dist : 0);
    x += rowBytes;
  }
}

/**
 * out[i] = sum_s lut[s * 256 + codes[i * m + s]] for i < n: 8-bit PQ codes (one byte per
 * subspace) against a float lookup table. lut: f32[m * 256]; codes: u8[n * m]; out: f32[n].
 */
export function pqScan8(lut: usize, codes: usize, n: i32, m: i32, out: usize): void {
  let row = codes;
  for (let i = 0; i < n; i++) {
    let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0;
    let s = 0;
    let t = lut;
    for (; s + 4 <= m; s += 4) {
      a0 += load<f32>(t + (<usize>load<u8>(row + <usize>s) << 2));
      a1 += load<f32>(t + 1024 + (<usize>load<u8>(row + <usize>s + 1) << 2));
      a2 += load<f32>(t + 2048 + (<usize>load<u8>(row + <usize>s + 2) << 2));
      a3 += load<f32>(t + 3072 + (<usize>load<u8>(row + <usize>s + 3) << 2));
      t += 4096;
    }
    for (; s < m; s++) {
      a0 += load<f32>(t + (<usize>load<u8>(row + <usize>s) << 2));
      t += 1024;
    }
    store<f32>(out + (<usize>i << 2), (a0 + a1) + (a2 + a3));
    row += <usize>m;
  }
}

/**
 * out[i] = sum_s lut[s * 16 + code_s(i)] for i < n: 4-bit PQ codes, two per byte (subspace 2t in
 * the low nibble of byte t, 2t + 1 in the high nibble), rows of ceil(m / 2) bytes.
 * lut: f32[m * 16]; codes: u8[n * ceil(m / 2)]; out: f32[n].
 */
export function pqScan4(lut: usize, codes: usize, n: i32, m: i32, out: usize): void {
  const rowBytes = <usize>((m + 1) >> 1);
  let row = codes;
  for (let i = 0; i < n; i++) {
    let a0: f32 = 0, a1: f32 = 0;
    let t = lut;
    let s = 0;
    for (; s + 2 <= m; s += 2) {
      const b = <usize>load<u8>(row + <usize>(s >> 1));
      a0 += load<f32>(t + ((b & 15) << 2));
      a1 += load<f32>(t + 64 + ((b >> 4) << 2));
      t += 128;
    }
    if (s < m) a0 += load<f32>(t + ((<usize>load<u8>(row + <usize>(s >> 1)) & 15) << 2));
    store<f32>(out + (<usize>i << 2), a0 + a1);
    row += rowBytes;
  }
}

/**
 * 4-bit fast-scan: estimated scores of n vectors stored in blocks of 32 (ceil(n / 32) blocks of
 * m * 16 bytes, laid out as fastScanTotals reads them). lut: u8[m * 16], the quantized lookup
 * table of each subspace; params: f32[2] = bias, scale.
 * out[i] = bias + scale * sum_s lut[s * 16 + code_s(i)]: f32[n].
 */
export function pqFastScan(blocks: usize, n: i32, m: i32, lut: usize, params: usize, out: usize): void {
  const vb = f32x4.splat(load<f32>(params)), vs = f32x4.splat(load<f32>(params, 4));
  const blockBytes = <usize>m << 4;
  const totals = memory.data(128, 16), stage = memory.data(128, 16);
  let block = blocks;
  for (let first = 0; first < n; first += 32) {
    fastScanTotals(block, m, lut, totals);
    const rest = n - first;
    // a partial last block is staged and its first `rest` results copied
    const o = rest >= 32 ? out + (<usize>first << 2) : stage;
    for (let v: usize = 0; v < 128; v += 16) v128.store(o + v, f32x4.add(vb, f32x4.mul(vs, f32x4.convert_i32x4_u(v128.load(totals + v)))));
    if (rest < 32) for (let v = 0; v < rest; v++) store<f32>(out + (<usize>(first + v) << 2), load<f32>(stage + (<usize>v << 2)));
    block += blockBytes;
  }
}
