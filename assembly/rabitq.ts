// WASM SIMD kernels for RaBitQ (bit-plane inner products, extended codes). Raw-pointer style, as dense.ts.
// Each export has a JS twin of the same name in src/kernels/rabitq.ts.

@inline function hsumU32(v: v128): u64 {
  return <u64>i32x4.extract_lane(v, 0) + <u64>i32x4.extract_lane(v, 1) + <u64>i32x4.extract_lane(v, 2) + <u64>i32x4.extract_lane(v, 3);
}

/** popcount(a AND b) over nbytes bytes. */
@inline function popcountAnd(a: usize, b: usize, nbytes: i32): u64 {
  let acc = i32x4.splat(0);
  let j = 0;
  for (; j + 16 <= nbytes; j += 16) {
    const c = i8x16.popcnt(v128.and(v128.load(a + <usize>j), v128.load(b + <usize>j)));
    acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(c)));
  }
  let s = hsumU32(acc);
  for (; j + 8 <= nbytes; j += 8) s += popcnt<u64>(load<u64>(a + <usize>j) & load<u64>(b + <usize>j));
  for (; j < nbytes; j++) s += <u64>popcnt<u32>(<u32>(load<u8>(a + <usize>j) & load<u8>(b + <usize>j)));
  return s;
}

/** popcount over nbytes bytes. */
@inline function popcountBytes(a: usize, nbytes: i32): u64 {
  let acc = i32x4.splat(0);
  let j = 0;
  for (; j + 16 <= nbytes; j += 16) {
    const c = i8x16.popcnt(v128.load(a + <usize>j));
    acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(c)));
  }
  let s = hsumU32(acc);
  for (; j + 8 <= nbytes; j += 8) s += popcnt<u64>(load<u64>(a + <usize>j));
  for (; j < nbytes; j++) s += <u64>popcnt<u32>(<u32>load<u8>(a + <usize>j));
  return s;
}

/**
 * RaBitQ estimated scores (and error bounds) of n codes against one bit-plane query.
 *
 * codes: u8[n * codeSize]; row i = codeBits bit planes of planeBytes bytes each (plane k holds bit k
 *   of every dimension's code u, dimension t at byte t>>3, bit t&7), then padding, then the last
 *   16 bytes hold f32 factors: add, rescale, errScale, oneMinusA2.
 * query: u8[queryBits * planeBytes], bit planes of the quantized query q̄ in the same bit order.
 * params: f32[8] = delta, low, constTerm, outScale, outBias, boundVar, quantVar, boundScale.
 * With ip = <u, q̄> = sum_{k,j} 2^(k+j) popcount(plane_k AND qplane_j) and sumU = sum_t u_t:
 *   out[i]    = outBias + add + outScale * rescale * (delta * ip + low * sumU + constTerm)   (f32[n])
 *   bounds[i] = boundScale * errScale * sqrt(oneMinusA2 * boundVar + quantVar)               (f32[n], if bounds != 0)
 */
export function rabitqScan(codes: usize, n: i32, codeSize: i32, codeBits: i32, planeBytes: i32, query: usize, queryBits: i32, params: usize, out: usize, bounds: usize): void {
  const delta = <f64>load<f32>(params), low = <f64>load<f32>(params, 4), constTerm = <f64>load<f32>(params, 8);
  const outScale = <f64>load<f32>(params, 12), outBias = <f64>load<f32>(params, 16);
  const boundVar = <f64>load<f32>(params, 20), quantVar = <f64>load<f32>(params, 24), boundScale = <f64>load<f32>(params, 28);
  let row = codes;
  const factors = <usize>(codeSize - 16);
  for (let i = 0; i < n; i++) {
    let ip: u64 = 0, sumU: u64 = 0;
    for (let k = 0; k < codeBits; k++) {
      const plane = row + <usize>(k * planeBytes);
      sumU += popcountBytes(plane, planeBytes) << <u64>k;
      for (let j = 0; j < queryBits; j++) {
        ip += popcountAnd(plane, query + <usize>(j * planeBytes), planeBytes) << <u64>(k + j);
      }
    }
    const f = row + factors;
    const add = <f64>load<f32>(f), rescale = <f64>load<f32>(f, 4);
    const raw = delta * <f64>ip + low * <f64>sumU + constTerm;
    store<f32>(out + (<usize>i << 2), <f32>(outBias + add + outScale * rescale * raw));
    if (bounds != 0) {
      const errScale = <f64>load<f32>(f, 8), oneMinusA2 = <f64>load<f32>(f, 12);
      store<f32>(bounds + (<usize>i << 2), <f32>(boundScale * errScale * Math.sqrt(oneMinusA2 * boundVar + quantVar)));
    }
    row += <usize>codeSize;
  }
}
