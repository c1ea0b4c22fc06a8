// WASM SIMD kernels for scalar quantization codes (SQ8/SQ4, LVQ, binary asymmetric). Raw-pointer style, as dense.ts.
// Each export has a JS twin of the same name in src/kernels/scalar.ts (the reference for the
// exact contract of every argument); test/kernels-scalar.test.ts checks the two agree.
//
// 4-bit codes: dimension 2t sits in the low nibble of byte t, dimension 2t+1 in the high nibble.
// Kernels take the query "split" as [2 * nb] (nb = ceil(d / 2)): q[0], q[2], q[4], ... then
// q[1], q[3], ... (zero past d), so a 16-byte load of codes meets two contiguous query runs.
// Dot-product kernels over codes take the query quantized to i16 with a scale (quantizeQueryI16
// in the twin file): integer products with i32x4.dot_i16x8_s run ~3x faster than converting
// codes to f32, and 13+ bits of query precision add far less error than the codes themselves.

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

@inline function hsumI32(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

// Sixteen u8 lanes -> four f32x4 (lanes 0-3, 4-7, 8-11, 12-15).
@inline function u8ToF32_0(c: v128): v128 { return f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(c))); }
@inline function u8ToF32_1(c: v128): v128 { return f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(i16x8.extend_low_i8x16_u(c))); }
@inline function u8ToF32_2(c: v128): v128 { return f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(i16x8.extend_high_i8x16_u(c))); }
@inline function u8ToF32_3(c: v128): v128 { return f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(i16x8.extend_high_i8x16_u(c))); }

/**
 * sum_j q[j] * row[j] over d u8 codes, q: i16[d]. Integer products, two i32x4 accumulators (each
 * lane sums d/8 products: the caller bounds |q| so that no lane overflows); lanes are summed in
 * f32 because the total may exceed i32.
 */
@inline function dotU8Row(q: usize, row: usize, d: i32): f32 {
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0);
  let j = 0;
  for (; j + 16 <= d; j += 16) {
    const c = v128.load(row + <usize>j);
    const qp = q + (<usize>j << 1);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(qp), i16x8.extend_low_i8x16_u(c)));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(qp, 16), i16x8.extend_high_i8x16_u(c)));
  }
  const s = hsum(f32x4.add(f32x4.convert_i32x4_s(a0), f32x4.convert_i32x4_s(a1)));
  let tail: i32 = 0;
  for (; j < d; j++) tail += <i32>load<i16>(q + (<usize>j << 1)) * <i32>load<u8>(row + <usize>j);
  return s + <f32>tail;
}

/** sum_t qLo[t] * lo(row[t]) + qHi[t] * hi(row[t]) over nb bytes of nibble pairs; qs: i16[2 * nb], qHi = qs + nb. */
@inline function dotU4Row(qs: usize, row: usize, nb: i32): f32 {
  const qHi = qs + (<usize>nb << 1);
  const mask = i8x16.splat(0x0f);
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0);
  let t = 0;
  for (; t + 16 <= nb; t += 16) {
    const c = v128.load(row + <usize>t);
    const lo = v128.and(c, mask);
    const hi = i8x16.shr_u(c, 4);
    const pl = qs + (<usize>t << 1), ph = qHi + (<usize>t << 1);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(pl), i16x8.extend_low_i8x16_u(lo)));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(pl, 16), i16x8.extend_high_i8x16_u(lo)));
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(ph), i16x8.extend_low_i8x16_u(hi)));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(ph, 16), i16x8.extend_high_i8x16_u(hi)));
  }
  const s = hsum(f32x4.add(f32x4.convert_i32x4_s(a0), f32x4.convert_i32x4_s(a1)));
  let tail: i32 = 0;
  for (; t < nb; t++) {
    const b = <i32>load<u8>(row + <usize>t);
    tail += <i32>load<i16>(qs + (<usize>t << 1)) * (b & 15) + <i32>load<i16>(qHi + (<usize>t << 1)) * (b >> 4);
  }
  return s + <f32>tail;
}

/** out[i] = bias + qscale * sum_j q[j] * codes[i*stride + j]. q: i16[d]; codes: rows of `stride` bytes (u8 codes first); out: f32[n]. */
export function sqDotU8(q: usize, qscale: f32, codes: usize, n: i32, d: i32, stride: i32, bias: f32, out: usize): void {
  let row = codes;
  for (let i = 0; i < n; i++) {
    store<f32>(out + (<usize>i << 2), bias + qscale * dotU8Row(q, row, d));
    row += <usize>stride;
  }
}

/** out[i] = bias + qscale * sum over the nibble codes of row i times the split query qs: i16[2 * ceil(d/2)]. */
export function sqDotU4(qs: usize, qscale: f32, codes: usize, n: i32, d: i32, stride: i32, bias: f32, out: usize): void {
  const nb = (d + 1) >> 1;
  let row = codes;
  for (let i = 0; i < n; i++) {
    store<f32>(out + (<usize>i << 2), bias + qscale * dotU4Row(qs, row, nb));
    row += <usize>stride;
  }
}

/** out[i] = bias - sum_j w[j] * (q[j] - codes[i*stride + j])^2. q, w: f32[d]; out: f32[n]. */
export function sqL2U8(q: usize, w: usize, codes: usize, n: i32, d: i32, stride: i32, bias: f32, out: usize): void {
  let row = codes;
  for (let i = 0; i < n; i++) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let j = 0;
    for (; j + 16 <= d; j += 16) {
      const c = v128.load(row + <usize>j);
      const qp = q + (<usize>j << 2), wp = w + (<usize>j << 2);
      const d0 = f32x4.sub(v128.load(qp), u8ToF32_0(c));
      const d1 = f32x4.sub(v128.load(qp, 16), u8ToF32_1(c));
      const d2 = f32x4.sub(v128.load(qp, 32), u8ToF32_2(c));
      const d3 = f32x4.sub(v128.load(qp, 48), u8ToF32_3(c));
      a0 = f32x4.add(a0, f32x4.mul(v128.load(wp), f32x4.mul(d0, d0)));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(wp, 16), f32x4.mul(d1, d1)));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(wp, 32), f32x4.mul(d2, d2)));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(wp, 48), f32x4.mul(d3, d3)));
    }
    let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
    for (; j < d; j++) {
      const t = load<f32>(q + (<usize>j << 2)) - <f32>load<u8>(row + <usize>j);
      s += load<f32>(w + (<usize>j << 2)) * t * t;
    }
    store<f32>(out + (<usize>i << 2), bias - s);
    row += <usize>stride;
  }
}

/** As sqL2U8 over nibble codes, with split query qs and split weights ws: f32[2 * ceil(d/2)]. */
export function sqL2U4(qs: usize, ws: usize, codes: usize, n: i32, d: i32, stride: i32, bias: f32, out: usize): void {
  const nb = (d + 1) >> 1;
  const qHi = qs + (<usize>nb << 2), wHi = ws + (<usize>nb << 2);
  const mask = i8x16.splat(0x0f);
  let row = codes;
  for (let i = 0; i < n; i++) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    let t = 0;
    for (; t + 16 <= nb; t += 16) {
      const c = v128.load(row + <usize>t);
      const lo = v128.and(c, mask);
      const hi = i8x16.shr_u(c, 4);
      const o = <usize>t << 2;
      const l0 = f32x4.sub(v128.load(qs + o), u8ToF32_0(lo));
      const l1 = f32x4.sub(v128.load(qs + o, 16), u8ToF32_1(lo));
      const l2 = f32x4.sub(v128.load(qs + o, 32), u8ToF32_2(lo));
      const l3 = f32x4.sub(v128.load(qs + o, 48), u8ToF32_3(lo));
      const h0 = f32x4.sub(v128.load(qHi + o), u8ToF32_0(hi));
      const h1 = f32x4.sub(v128.load(qHi + o, 16), u8ToF32_1(hi));
      const h2 = f32x4.sub(v128.load(qHi + o, 32), u8ToF32_2(hi));
      const h3 = f32x4.sub(v128.load(qHi + o, 48), u8ToF32_3(hi));
      a0 = f32x4.add(a0, f32x4.add(f32x4.mul(v128.load(ws + o), f32x4.mul(l0, l0)), f32x4.mul(v128.load(ws + o, 16), f32x4.mul(l1, l1))));
      a1 = f32x4.add(a1, f32x4.add(f32x4.mul(v128.load(ws + o, 32), f32x4.mul(l2, l2)), f32x4.mul(v128.load(ws + o, 48), f32x4.mul(l3, l3))));
      a0 = f32x4.add(a0, f32x4.add(f32x4.mul(v128.load(wHi + o), f32x4.mul(h0, h0)), f32x4.mul(v128.load(wHi + o, 16), f32x4.mul(h1, h1))));
      a1 = f32x4.add(a1, f32x4.add(f32x4.mul(v128.load(wHi + o, 32), f32x4.mul(h2, h2)), f32x4.mul(v128.load(wHi + o, 48), f32x4.mul(h3, h3))));
    }
    let s = hsum(f32x4.add(a0, a1));
    for (; t < nb; t++) {
      const b = <u32>load<u8>(row + <usize>t);
      const o = <usize>t << 2;
      const dl = load<f32>(qs + o) - <f32>(b & 15);
      const dh = load<f32>(qHi + o) - <f32>(b >> 4);
      s += load<f32>(ws + o) * dl * dl + load<f32>(wHi + o) * dh * dh;
    }
    store<f32>(out + (<usize>i << 2), bias - s);
    row += <usize>stride;
  }
}

/**
 * LVQ rows: f32 scale, f32 offset, [f32 squared norm if l2], level-1 codes (bits1 = 8: d bytes;
 * 4: ceil(d/2) nibble bytes), then level-2 codes (bits2 = 0, 4 or 8). With
 * inner = offset*qsum + scale*(dot1 + dot2 / (2^bits2 - 1) - qsum/2) (the last two terms only when bits2 > 0):
 * out[i] = bias + inner (dot), or bias + 2*inner - sqnorm (l2).
 * q: i16[d] (for 8-bit levels), qs: the split i16 query (for 4-bit levels); code dots are scaled by qscale.
 */
export function lvqScore(q: usize, qs: usize, qscale: f32, qsum: f32, codes: usize, n: i32, d: i32, stride: i32, bits1: i32, bits2: i32, l2: i32, bias: f32, out: usize): void {
  const header: usize = l2 != 0 ? 12 : 8;
  const nb = (d + 1) >> 1;
  const len1: usize = bits1 == 8 ? <usize>d : <usize>nb;
  const r2: f32 = bits2 == 0 ? 0 : <f32>1.0 / <f32>((1 << bits2) - 1);
  // level 2 codes the residual in [-scale/2, scale/2]: its origin shifts every level-1 value by -scale/2
  const shift: f32 = bits2 == 0 ? 0 : qsum * <f32>0.5;
  let row = codes;
  for (let i = 0; i < n; i++) {
    const c1 = row + header;
    const dot1 = qscale * (bits1 == 8 ? dotU8Row(q, c1, d) : dotU4Row(qs, c1, nb));
    let dot2: f32 = 0;
    if (bits2 == 8) dot2 = qscale * dotU8Row(q, c1 + len1, d);
    else if (bits2 == 4) dot2 = qscale * dotU4Row(qs, c1 + len1, nb);
    const inner = load<f32>(row, 4) * qsum + load<f32>(row) * (dot1 + dot2 * r2 - shift);
    const s = l2 != 0 ? bias + 2 * inner - load<f32>(row, 8) : bias + inner;
    store<f32>(out + (<usize>i << 2), s);
    row += <usize>stride;
  }
}

/**
 * Binary rows: f32 alpha, f32 gamma, then sign bits (dimension j at byte j>>3, bit j&7).
 * lut: f32[nbytes * 32], 16 entries per group of 4 dimensions (low nibble of byte t = group 2t,
 * high nibble = group 2t+1) holding sum_b (bit b ? +q : -q). out[i] = bias + gamma + ipMul*alpha*S.
 */
export function binDot(lut: usize, codes: usize, n: i32, d: i32, stride: i32, ipMul: f32, bias: f32, out: usize): void {
  const nbytes = (d + 7) >> 3;
  let row = codes;
  for (let i = 0; i < n; i++) {
    const bits = row + 8;
    let s0: f32 = 0, s1: f32 = 0;
    let g = lut;
    for (let t = 0; t < nbytes; t++) {
      const b = <u32>load<u8>(bits + <usize>t);
      s0 += load<f32>(g + (<usize>(b & 15) << 2));
      s1 += load<f32>(g + 64 + (<usize>(b >> 4) << 2));
      g += 128;
    }
    store<f32>(out + (<usize>i << 2), bias + load<f32>(row, 4) + ipMul * load<f32>(row) * (s0 + s1));
    row += <usize>stride;
  }
}

/** Binary rows as binDot; qbits: u8[ceil(d/8)]. out[i] = bias + gamma + alpha * qscale * (d - 2 * popcount(qbits ^ bits)). */
export function binHamming(qbits: usize, codes: usize, n: i32, d: i32, stride: i32, qscale: f32, bias: f32, out: usize): void {
  const nbytes = (d + 7) >> 3;
  let row = codes;
  for (let i = 0; i < n; i++) {
    const bits = row + 8;
    let acc = i32x4.splat(0);
    let j = 0;
    for (; j + 16 <= nbytes; j += 16) {
      const c = i8x16.popcnt(v128.xor(v128.load(qbits + <usize>j), v128.load(bits + <usize>j)));
      acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(c)));
    }
    let h = hsumI32(acc);
    for (; j + 8 <= nbytes; j += 8) h += <i32>popcnt<u64>(load<u64>(qbits + <usize>j) ^ load<u64>(bits + <usize>j));
    for (; j < nbytes; j++) h += popcnt<i32>(<i32>(load<u8>(qbits + <usize>j) ^ load<u8>(bits + <usize>j)));
    const agree = <f32>(d - 2 * h);
    store<f32>(out + (<usize>i << 2), bias + load<f32>(row, 4) + load<f32>(row) * qscale * agree);
    row += <usize>stride;
  }
}

/** a[i] = a[i] * mul + add for i < n (f32). */
export function affineInPlace(a: usize, n: i32, mul: f32, add: f32): void {
  const vm = f32x4.splat(mul), va = f32x4.splat(add);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = a + (<usize>i << 2);
    v128.store(p, f32x4.add(f32x4.mul(v128.load(p), vm), va));
  }
  for (; i < n; i++) {
    const p = a + (<usize>i << 2);
    store<f32>(p, load<f32>(p) * mul + add);
  }
}

/** a[i] += scale * b[i] for i < n (f32): optimistic/pessimistic scores from estimates and bounds. */
export function addScaledInPlace(a: usize, b: usize, n: i32, scale: f32): void {
  const vs = f32x4.splat(scale);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = a + (<usize>i << 2);
    v128.store(p, f32x4.add(v128.load(p), f32x4.mul(vs, v128.load(b + (<usize>i << 2)))));
  }
  for (; i < n; i++) {
    const p = a + (<usize>i << 2);
    store<f32>(p, load<f32>(p) + scale * load<f32>(b + (<usize>i << 2)));
  }
}
