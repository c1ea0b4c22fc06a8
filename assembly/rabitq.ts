// WASM SIMD kernels for RaBitQ (bit-plane inner products, extended codes). Raw-pointer style, as dense.ts.
// Each export has a JS twin of the same name in src/kernels/rabitq.ts.
import { fastScanTotals } from './fast-scan';

@inline function hsumU32(v: v128): u64 {
  return <u64><u32>i32x4.extract_lane(v, 0) + <u64><u32>i32x4.extract_lane(v, 1) + <u64><u32>i32x4.extract_lane(v, 2) + <u64><u32>i32x4.extract_lane(v, 3);
}

/** Widens 16 byte counts to four u32 lanes. */
@inline function widen(c: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(c));
}

/** sum_j 2^j * (byte popcounts of c AND q_j, pairwise summed into u16 lanes), for j < bits (<= 8). */
@inline function weightedPlane(c: v128, q0: v128, q1: v128, q2: v128, q3: v128, q4: v128, q5: v128, q6: v128, q7: v128, bits: i32): v128 {
  // per u16 lane at most 16 * (2^bits - 1) <= 4080: no overflow
  let t = i16x8.extadd_pairwise_i8x16_u(i8x16.popcnt(v128.and(c, q0)));
  if (bits > 1) t = i16x8.add(t, i16x8.shl(i16x8.extadd_pairwise_i8x16_u(i8x16.popcnt(v128.and(c, q1))), 1));
  if (bits > 2) t = i16x8.add(t, i16x8.shl(i16x8.extadd_pairwise_i8x16_u(i8x16.popcnt(v128.and(c, q2))), 2));
  if (bits > 3) t = i16x8.add(t, i16x8.shl(i16x8.extadd_pairwise_i8x16_u(i8x16.popcnt(v128.and(c, q3))), 3));
  if (bits > 4) t = i16x8.add(t, i16x8.shl(i16x8.extadd_pairwise_i8x16_u(i8x16.popcnt(v128.and(c, q4))), 4));
  if (bits > 5) t = i16x8.add(t, i16x8.shl(i16x8.extadd_pairwise_i8x16_u(i8x16.popcnt(v128.and(c, q5))), 5));
  if (bits > 6) t = i16x8.add(t, i16x8.shl(i16x8.extadd_pairwise_i8x16_u(i8x16.popcnt(v128.and(c, q6))), 6));
  if (bits > 7) t = i16x8.add(t, i16x8.shl(i16x8.extadd_pairwise_i8x16_u(i8x16.popcnt(v128.and(c, q7))), 7));
  return t;
}

/**
 * RaBitQ estimated scores (and error bounds) of n codes against one bit-plane query.
 *
 * codes: u8[n * codeSize]; row i = codeBits bit planes of planeBytes bytes each (plane k holds bit k
 *   of every dimension's code u, dimension t at byte t>>3, bit t&7), then padding, then the last
 *   16 bytes hold f32 factors: add, rescale, errScale, oneMinusA2.
 * query: u8[queryBits * planeBytes], bit planes of the quantized query q̄ in the same bit order
 *   (queryBits <= 8).
 * params: f32[8] = delta, low, constTerm, outScale, outBias, boundVar, quantVar, boundScale.
 * With ip = <u, q̄> = sum_{k,j} 2^(k+j) popcount(plane_k AND qplane_j) and sumU = sum_t u_t:
 *   out[i]    = outBias + add + outScale * rescale * (delta * ip + low * sumU + constTerm)   (f32[n])
 *   bounds[i] = boundScale * errScale * sqrt(oneMinusA2 * boundVar + quantVar)               (f32[n], if bounds != 0)
 * Per 16-byte chunk (128 dimensions) the query planes sit in registers and each code plane is
 * loaded once; its weighted sum over the query planes stays in u16 lanes before widening.
 */
export function rabitqScan(codes: usize, n: i32, codeSize: i32, codeBits: i32, planeBytes: i32, query: usize, queryBits: i32, params: usize, out: usize, bounds: usize): void {
  const delta = <f64>load<f32>(params), low = <f64>load<f32>(params, 4), constTerm = <f64>load<f32>(params, 8);
  const outScale = <f64>load<f32>(params, 12), outBias = <f64>load<f32>(params, 16);
  const boundVar = <f64>load<f32>(params, 20), quantVar = <f64>load<f32>(params, 24), boundScale = <f64>load<f32>(params, 28);
  const pb = <usize>planeBytes;
  const zero = i32x4.splat(0);
  let row = codes;
  const factors = <usize>(codeSize - 16);
  for (let i = 0; i < n; i++) {
    let acc = zero, accU = zero;
    let b: usize = 0;
    for (; b + 16 <= pb; b += 16) {
      const qb = query + b;
      const q0 = v128.load(qb);
      const q1 = queryBits > 1 ? v128.load(qb + pb) : zero;
      const q2 = queryBits > 2 ? v128.load(qb + 2 * pb) : zero;
      const q3 = queryBits > 3 ? v128.load(qb + 3 * pb) : zero;
      const q4 = queryBits > 4 ? v128.load(qb + 4 * pb) : zero;
      const q5 = queryBits > 5 ? v128.load(qb + 5 * pb) : zero;
      const q6 = queryBits > 6 ? v128.load(qb + 6 * pb) : zero;
      const q7 = queryBits > 7 ? v128.load(qb + 7 * pb) : zero;
      for (let k = 0; k < codeBits; k++) {
        const c = v128.load(row + <usize>k * pb + b);
        accU = i32x4.add(accU, i32x4.shl(widen(i8x16.popcnt(c)), k));
        const t = weightedPlane(c, q0, q1, q2, q3, q4, q5, q6, q7, queryBits);
        acc = i32x4.add(acc, i32x4.shl(i32x4.extadd_pairwise_i16x8_u(t), k));
      }
    }
    let ip = hsumU32(acc), sumU = hsumU32(accU);
    // tails: 8-byte words, then bytes
    for (; b + 8 <= pb; b += 8) {
      for (let k = 0; k < codeBits; k++) {
        const c = load<u64>(row + <usize>k * pb + b);
        sumU += popcnt<u64>(c) << <u64>k;
        for (let j = 0; j < queryBits; j++) ip += popcnt<u64>(c & load<u64>(query + <usize>j * pb + b)) << <u64>(k + j);
      }
    }
    for (; b < pb; b++) {
      for (let k = 0; k < codeBits; k++) {
        const c = <u32>load<u8>(row + <usize>k * pb + b);
        sumU += <u64>popcnt<u32>(c) << <u64>k;
        for (let j = 0; j < queryBits; j++) ip += <u64>popcnt<u32>(c & <u32>load<u8>(query + <usize>j * pb + b)) << <u64>(k + j);
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

/**
 * RaBitQ scores for codes stored one value per dimension: bits = 4 (two dimensions per byte,
 * dimension t in the low nibble of byte t >> 1 when t is even, the high nibble when odd) or
 * bits = 8 (one byte per dimension). Row i = the code bytes (ceil(dim / 2) or dim), padding, and
 * in its last 16 bytes the f32 factors add, rescale, errScale, oneMinusA2 (as rabitqScan).
 * query: i16[dim], the signed quantized query q̄ (|q̄_t| small enough that a 4-lane i32 sum of
 * u_t q̄_t cannot overflow). params: f32[8] as rabitqScan (low, params[1], is unused here).
 * With ip = sum_t u_t q̄_t (exact integer):
 *   out[i]    = outBias + add + outScale * rescale * (delta * ip + constTerm)          (f32[n])
 *   bounds[i] = boundScale * errScale * sqrt(oneMinusA2 * boundVar + quantVar)         (f32[n], if bounds != 0)
 * Products run on i32x4.dot_i16x8_s: 8 multiply-adds per instruction.
 */
export function rabitqScanDirect(codes: usize, n: i32, codeSize: i32, dim: i32, bits: i32, query: usize, params: usize, out: usize, bounds: usize): void {
  const delta = <f64>load<f32>(params), constTerm = <f64>load<f32>(params, 8);
  const outScale = <f64>load<f32>(params, 12), outBias = <f64>load<f32>(params, 16);
  const boundVar = <f64>load<f32>(params, 20), quantVar = <f64>load<f32>(params, 24), boundScale = <f64>load<f32>(params, 28);
  const low = i8x16.splat(15);
  let row = codes;
  const factors = <usize>(codeSize - 16);
  for (let i = 0; i < n; i++) {
    let acc = i32x4.splat(0);
    let t = 0;
    if (bits == 4) {
      // 32 dimensions per 16 bytes: split nibbles, re-interleave into dimension order
      for (; t + 32 <= dim; t += 32) {
        const c = v128.load(row + <usize>(t >> 1));
        const even = v128.and(c, low), odd = i8x16.shr_u(c, 4);
        const first = i8x16.shuffle(even, odd, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const second = i8x16.shuffle(even, odd, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        const q = query + (<usize>t << 1);
        acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(first), v128.load(q)));
        acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(first), v128.load(q, 16)));
        acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(second), v128.load(q, 32)));
        acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(second), v128.load(q, 48)));
      }
    } else {
      for (; t + 16 <= dim; t += 16) {
        const c = v128.load(row + <usize>t);
        const q = query + (<usize>t << 1);
        acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(c), v128.load(q)));
        acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(c), v128.load(q, 16)));
      }
    }
    let ip = <i64>i32x4.extract_lane(acc, 0) + <i64>i32x4.extract_lane(acc, 1) + <i64>i32x4.extract_lane(acc, 2) + <i64>i32x4.extract_lane(acc, 3);
    for (; t < dim; t++) {
      const u = bits == 4 ? (<i32>load<u8>(row + <usize>(t >> 1)) >> ((t & 1) << 2)) & 15 : <i32>load<u8>(row + <usize>t);
      ip += <i64>(u * <i32>load<i16>(query + (<usize>t << 1)));
    }
    const f = row + factors;
    const add = <f64>load<f32>(f), rescale = <f64>load<f32>(f, 4);
    const raw = delta * <f64>ip + constTerm;
    store<f32>(out + (<usize>i << 2), <f32>(outBias + add + outScale * rescale * raw));
    if (bounds != 0) {
      const errScale = <f64>load<f32>(f, 8), oneMinusA2 = <f64>load<f32>(f, 12);
      store<f32>(bounds + (<usize>i << 2), <f32>(boundScale * errScale * Math.sqrt(oneMinusA2 * boundVar + quantVar)));
    }
    row += <usize>codeSize;
  }
}

/**
 * 1-bit RaBitQ by 4-bit fast-scan: estimated scores (and error bounds) of n vectors stored in
 * blocks of 32. A block holds m * 16 bytes of nibble codes as pqFastScan reads them (nibble s of
 * a vector = its sign bits of dimensions 4s..4s+3, dimension 4s + b at bit b), then the f32
 * factors of its 32 vectors as four arrays: add[32], rescale[32], errScale[32], oneMinusA2[32]
 * (blockBytes = m * 16 + 512). lut: u8[m * 16], the quantized table of each group's partial inner
 * products. params: f32[8] = scale, constTerm, outScale, outBias, boundVar, quantVar, boundScale, unused.
 * With S = sum_s lut[s * 16 + code_s(i)] (an exact integer), in f32, in this order:
 *   out[i]    = (outBias + add) + outScale * (rescale * (scale * S + constTerm))     (f32[n])
 *   bounds[i] = boundScale * (errScale * sqrt(oneMinusA2 * boundVar + quantVar))    (f32[n], if bounds != 0)
 * Four vectors per SIMD lane group, so the JS twin's float32 rounding step by step is the same.
 */
export function rabitqFastScan(blocks: usize, n: i32, m: i32, lut: usize, params: usize, out: usize, bounds: usize): void {
  const scale = f32x4.splat(load<f32>(params)), constTerm = f32x4.splat(load<f32>(params, 4));
  const outScale = f32x4.splat(load<f32>(params, 8)), outBias = f32x4.splat(load<f32>(params, 12));
  const boundVar = f32x4.splat(load<f32>(params, 16)), quantVar = f32x4.splat(load<f32>(params, 20)), boundScale = f32x4.splat(load<f32>(params, 24));
  const codeBytes = <usize>m << 4, blockBytes = codeBytes + 512;
  const totals = memory.data(128, 16), stageOut = memory.data(128, 16), stageBounds = memory.data(128, 16);
  let block = blocks;
  for (let first = 0; first < n; first += 32) {
    fastScanTotals(block, m, lut, totals);
    const rest = n - first;
    const o = rest >= 32 ? out + (<usize>first << 2) : stageOut;
    const ob = rest >= 32 ? bounds + (<usize>first << 2) : stageBounds;
    const f = block + codeBytes;
    for (let v: usize = 0; v < 128; v += 16) {
      const est = f32x4.add(f32x4.mul(scale, f32x4.convert_i32x4_u(v128.load(totals + v))), constTerm);
      const scaled = f32x4.mul(outScale, f32x4.mul(v128.load(f + 128 + v), est));
      v128.store(o + v, f32x4.add(f32x4.add(outBias, v128.load(f + v)), scaled));
      if (bounds != 0) {
        const inner = f32x4.add(f32x4.mul(v128.load(f + 384 + v), boundVar), quantVar);
        v128.store(ob + v, f32x4.mul(boundScale, f32x4.mul(v128.load(f + 256 + v), f32x4.sqrt(inner))));
      }
    }
    if (rest < 32) {
      for (let v = 0; v < rest; v++) {
        store<f32>(out + (<usize>(first + v) << 2), load<f32>(stageOut + (<usize>v << 2)));
        if (bounds != 0) store<f32>(bounds + (<usize>(first + v) << 2), load<f32>(stageBounds + (<usize>v << 2)));
      }
    }
    block += blockBytes;
  }
}
