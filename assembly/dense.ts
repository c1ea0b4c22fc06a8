// Dense numeric kernels, raw-pointer style: every argument is a byte offset into linear memory
// or a count. No GC objects, no allocation: memory is managed from JS (src/kernels/memory.ts).
// Each kernel has a plain JS twin in src/kernels/js.ts; test/kernels.test.ts checks they agree.
import { dotRow, l2Row } from './rows';

/** First byte free for the JS-side allocator (after static data and the shadow stack). */
export function heapBase(): usize {
  return __heap_base;
}

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

@inline function hsumI32(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

/** out[i] = <q, base[i]> for i < n. q: f32[d]; base: f32[n*d] row-major; out: f32[n]. */
export function dotMany(q: usize, base: usize, n: i32, d: i32, out: usize): void {
  const rowBytes = <usize>d << 2;
  let row = base;
  for (let i = 0; i < n; i++) {
    store<f32>(out + (<usize>i << 2), dotRow(q, row, d));
    row += rowBytes;
  }
}

/** out[i] = ||q - base[i]||^2 (squared L2 distance). Shapes as dotMany. */
export function l2Many(q: usize, base: usize, n: i32, d: i32, out: usize): void {
  const rowBytes = <usize>d << 2;
  let row = base;
  for (let i = 0; i < n; i++) {
    store<f32>(out + (<usize>i << 2), l2Row(q, row, d));
    row += rowBytes;
  }
}

// ---- half floats -------------------------------------------------------------------------
// IEEE half -> single, exactly for all 65536 bit patterns, two ways:
//
// f16ToF32 (decoding a buffer): shift the 15 low bits into f32 position and multiply by 2^112,
// which re-biases the exponent and turns subnormals into normals in one step; Inf/NaN (exponent
// 31) are patched.
//
// dotManyF16 / l2ManyF16 (the scans) avoid that multiply: a half subnormal is an f32 denormal
// before it, and x86 takes a microcode assist (hundreds of cycles) for every multiply with a
// denormal input, so one subnormal in ~2,000 values (typical of unit-norm embeddings) slowed the
// whole scan severalfold. The scans instead build the f32 bits with integer ops on eight halves
// at a time, adding the exponent bias 112 (exact for every exponent 1..30, no float op), and
// repair the rare lanes with exponent 0 (zero, subnormal) or 31 (Inf, NaN) afterwards; see scanF16.
const F16_SCALE: f32 = 5.192296858534828e33; // 2^112
const TWO_POW_M24: f32 = 5.9604644775390625e-8; // 2^-24, the spacing of half subnormals

@inline function f16x4ToF32(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const em = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const scaled = f32x4.mul(em, f32x4.splat(F16_SCALE));
  const infNan = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  const special = v128.or(em, i32x4.splat(0x7f800000));
  return v128.or(v128.bitselect(special, scaled, infNan), sign);
}

/** Exact half -> single without any float op on a denormal (subnormals via int -> float * 2^-24). */
@inline function f16ToF32Scalar(h: u32): f32 {
  const a = h & 0x7fff;
  let f: f32;
  if (a < 0x400) f = <f32>a * TWO_POW_M24;
  else if (a >= 0x7c00) f = reinterpret<f32>((a << 13) | 0x7f800000);
  else f = reinterpret<f32>((a << 13) + 0x38000000);
  return (h & 0x8000) ? -f : f;
}

/** dst[i] = float(src[i]) for i < n. src: u16[n] IEEE half bits; dst: f32[n]. */
export function f16ToF32(src: usize, n: i32, dst: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    v128.store(dst + (<usize>i << 2), f16x4ToF32(v128.load16x4_u(src + (<usize>i << 1))));
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), f16ToF32Scalar(load<u16>(src + (<usize>i << 1))));
}

// Fast conversion of eight halves (one v128 of u16) to two f32x4, as the bits
// sign | (exponent + 112) | mantissa << 13: the top 16 bits of each f32 come from an arithmetic
// shift right by 3 (sign smeared over bits 12..15, masked back to bit 15) plus the bias, the low
// 16 bits are the 3 low mantissa bits shifted up. Exact for exponents 1..30; lanes with exponent 0
// give sign * (2^-15 + |x| / 2) and exponent 31 gives a finite value: scanF16 corrects both.
@inline function f16Hi16(v: v128): v128 {
  return i16x8.add(v128.and(i16x8.shr_s(v, 3), i16x8.splat(<i16>0x8fff)), i16x8.splat(0x3800));
}
@inline function f16Lo16(v: v128): v128 { return i16x8.shl(v, 13); }
@inline function f32Low4(lo: v128, hi: v128): v128 { return i16x8.shuffle(lo, hi, 0, 8, 1, 9, 2, 10, 3, 11); }
@inline function f32High4(lo: v128, hi: v128): v128 { return i16x8.shuffle(lo, hi, 4, 12, 5, 13, 6, 14, 7, 15); }
/** The first four halves of v converted (the scalar twin of the fast path is f16FastScalar). */
@inline function f16x4Fast(v: v128): v128 { return f32Low4(f16Lo16(v), f16Hi16(v)); }
/** What the fast path makes of half h (exact unless its exponent is 0 or 31). */
@inline function f16FastScalar(h: u32): f32 {
  return reinterpret<f32>((((h & 0x7fff) << 13) + 0x38000000) | ((h & 0x8000) << 16));
}

/** Lanes of v whose exponent is 0 or 31 (all ones), exactly. */
@inline function f16Unusual(v: v128): v128 {
  const y = i16x8.add(v, v); // drop the sign: exponent 0 <=> y < 0x0800, exponent 31 <=> y >= 0xf800
  return v128.or(i16x8.lt_u(y, i16x8.splat(0x0800)), i16x8.ge_u(y, i16x8.splat(<i16>0xf800)));
}
/** |2h| per lane: <= 2048 for every lane f16Unusual flags (and for h = +-2^-14, a harmless false alarm). */
@inline function f16Suspect(v: v128): v128 { return i16x8.abs(i16x8.add(v, v)); }
@inline function anySuspect(minSuspect: v128): bool { return v128.any_true(i16x8.sub_sat_u(i16x8.splat(2049), minSuspect)); }

/** Rows per stream step of scanF16 (about 4 KiB of codes per stream) and its correction buffer. */
const F16_STEP_BYTES: usize = 4096;
const F16_MAX_STEP_ROWS = 1024;
const F16_CORR = memory.data(4 * F16_MAX_STEP_ROWS * 4, 16);

/**
 * Adds to corr[r] the correction of every lane with exponent 0 or 31 among halves g0..g0+len of a
 * block of rows (flat index g = r*d + j): q_j*(x - fast) for dot, (q_j - x)^2 - (q_j - fast)^2
 * for l2. Lanes j >= d & ~3 are skipped: the row tails are converted exactly by f16ToF32Scalar.
 * Inf/NaN lanes turn the row's result into Inf/NaN, as the exact sum would be.
 */
function f16Correct(q: usize, blk: usize, g0: i32, len: i32, d: i32, corr: usize, l2: bool): void {
  const d4 = d & ~3;
  for (let k = 0; k < len; k += 8) {
    const g = g0 + k;
    let bits: i32 = 0;
    if (len - k >= 8) bits = i16x8.bitmask(f16Unusual(v128.load(blk + (<usize>g << 1))));
    else {
      for (let t = 0; t < len - k; t++) {
        const e = load<u16>(blk + (<usize>(g + t) << 1)) & 0x7c00;
        if (e == 0 || e == 0x7c00) bits |= 1 << t;
      }
    }
    while (bits) {
      const gg = g + ctz(bits);
      bits &= bits - 1;
      const r = gg / d, j = gg - r * d;
      if (j >= d4) continue;
      const h = <u32>load<u16>(blk + (<usize>gg << 1));
      const qj = load<f32>(q + (<usize>j << 2));
      const x = f16ToF32Scalar(h), fast = f16FastScalar(h);
      let c: f32;
      if (l2) { const a = qj - x, b = qj - fast; c = a * a - b * b; }
      else c = qj * (x - fast);
      const p = corr + (<usize>r << 2);
      store<f32>(p, load<f32>(p) + c);
    }
  }
}

/** Pass A over one block of `total` halves: a cheap test per 16 halves, corrections when it fires. */
function f16CheckBlock(q: usize, blk: usize, total: i32, d: i32, corr: usize, l2: bool): void {
  let g = 0;
  for (; g + 16 <= total; g += 16) {
    const p = blk + (<usize>g << 1);
    if (anySuspect(i16x8.min_u(f16Suspect(v128.load(p)), f16Suspect(v128.load(p, 16))))) f16Correct(q, blk, g, 16, d, corr, l2);
  }
  if (g < total) f16Correct(q, blk, g, total - g, d, corr, l2);
}

/** Pass A over four blocks of equal size read side by side (four memory streams keep more lines in flight). */
function f16CheckBlocks4(q: usize, b0: usize, b1: usize, b2: usize, b3: usize, total: i32, d: i32, corr: usize, stride: usize, l2: bool): void {
  let g = 0;
  for (; g + 16 <= total; g += 16) {
    const o = <usize>g << 1;
    const m0 = i16x8.min_u(f16Suspect(v128.load(b0 + o)), f16Suspect(v128.load(b0 + o, 16)));
    const m1 = i16x8.min_u(f16Suspect(v128.load(b1 + o)), f16Suspect(v128.load(b1 + o, 16)));
    const m2 = i16x8.min_u(f16Suspect(v128.load(b2 + o)), f16Suspect(v128.load(b2 + o, 16)));
    const m3 = i16x8.min_u(f16Suspect(v128.load(b3 + o)), f16Suspect(v128.load(b3 + o, 16)));
    if (anySuspect(i16x8.min_u(i16x8.min_u(m0, m1), i16x8.min_u(m2, m3)))) {
      f16Correct(q, b0, g, 16, d, corr, l2);
      f16Correct(q, b1, g, 16, d, corr + stride, l2);
      f16Correct(q, b2, g, 16, d, corr + 2 * stride, l2);
      f16Correct(q, b3, g, 16, d, corr + 3 * stride, l2);
    }
  }
  if (g < total) {
    f16Correct(q, b0, g, total - g, d, corr, l2);
    f16Correct(q, b1, g, total - g, d, corr + stride, l2);
    f16Correct(q, b2, g, total - g, d, corr + 2 * stride, l2);
    f16Correct(q, b3, g, total - g, d, corr + 3 * stride, l2);
  }
}

/** acc + the dot (or squared-distance) contribution of eight halves v against q0 (first four), q1. */
@inline function f16Step8(q0: v128, q1: v128, v: v128, acc: v128, l2: bool): v128 {
  const lo = f16Lo16(v), hi = f16Hi16(v);
  const x0 = f32Low4(lo, hi), x1 = f32High4(lo, hi);
  if (l2) {
    const d0 = f32x4.sub(q0, x0), d1 = f32x4.sub(q1, x1);
    return f32x4.add(acc, f32x4.add(f32x4.mul(d0, d0), f32x4.mul(d1, d1)));
  }
  return f32x4.add(acc, f32x4.add(f32x4.mul(q0, x0), f32x4.mul(q1, x1)));
}

/** Finishes one row from dimension j (d - j < 8): a group of four, then exact scalar lanes. */
@inline function f16RowTail(q: usize, row: usize, j: i32, d: i32, acc: v128, l2: bool): f32 {
  if (j + 4 <= d) {
    const x = f16x4Fast(v128.load64_zero(row + (<usize>j << 1)));
    const qv = v128.load(q + (<usize>j << 2));
    if (l2) { const t = f32x4.sub(qv, x); acc = f32x4.add(acc, f32x4.mul(t, t)); }
    else acc = f32x4.add(acc, f32x4.mul(qv, x));
    j += 4;
  }
  let s = hsum(acc);
  for (; j < d; j++) {
    const x = f16ToF32Scalar(load<u16>(row + (<usize>j << 1)));
    const qj = load<f32>(q + (<usize>j << 2));
    if (l2) { const t = qj - x; s += t * t; } else s += qj * x;
  }
  return s;
}

/** Pass B over m consecutive rows: four rows at a time share each load of the query. out[i] = score + corr[i]. */
@inline function f16Rows(q: usize, blk: usize, m: i32, d: i32, out: usize, corr: usize, l2: bool): void {
  const rowBytes = <usize>d << 1;
  let row = blk;
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const r1 = row + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let j = 0;
    for (; j + 8 <= d; j += 8) {
      const qp = q + (<usize>j << 2), o = <usize>j << 1;
      const q0 = v128.load(qp), q1 = v128.load(qp, 16);
      a0 = f16Step8(q0, q1, v128.load(row + o), a0, l2);
      a1 = f16Step8(q0, q1, v128.load(r1 + o), a1, l2);
      a2 = f16Step8(q0, q1, v128.load(r2 + o), a2, l2);
      a3 = f16Step8(q0, q1, v128.load(r3 + o), a3, l2);
    }
    if (j == d) {
      // transpose-add the four accumulators into the four row sums
      const s01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 1, 4, 5), v128.shuffle<f32>(a0, a1, 2, 3, 6, 7));
      const s23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 1, 4, 5), v128.shuffle<f32>(a2, a3, 2, 3, 6, 7));
      const s = f32x4.add(v128.shuffle<f32>(s01, s23, 0, 2, 4, 6), v128.shuffle<f32>(s01, s23, 1, 3, 5, 7));
      v128.store(out + (<usize>i << 2), f32x4.add(s, v128.load(corr + (<usize>i << 2))));
    } else {
      store<f32>(out + (<usize>i << 2), f16RowTail(q, row, j, d, a0, l2) + load<f32>(corr + (<usize>i << 2)));
      store<f32>(out + (<usize>(i + 1) << 2), f16RowTail(q, r1, j, d, a1, l2) + load<f32>(corr + (<usize>(i + 1) << 2)));
      store<f32>(out + (<usize>(i + 2) << 2), f16RowTail(q, r2, j, d, a2, l2) + load<f32>(corr + (<usize>(i + 2) << 2)));
      store<f32>(out + (<usize>(i + 3) << 2), f16RowTail(q, r3, j, d, a3, l2) + load<f32>(corr + (<usize>(i + 3) << 2)));
    }
    row = r3 + rowBytes;
  }
  for (; i < m; i++) {
    let a0 = f32x4.splat(0);
    let j = 0;
    for (; j + 8 <= d; j += 8) {
      const qp = q + (<usize>j << 2);
      a0 = f16Step8(v128.load(qp), v128.load(qp, 16), v128.load(row + (<usize>j << 1)), a0, l2);
    }
    store<f32>(out + (<usize>i << 2), f16RowTail(q, row, j, d, a0, l2) + load<f32>(corr + (<usize>i << 2)));
    row += rowBytes;
  }
}
function f16RowsDot(q: usize, blk: usize, m: i32, d: i32, out: usize, corr: usize): void { f16Rows(q, blk, m, d, out, corr, false); }
function f16RowsL2(q: usize, blk: usize, m: i32, d: i32, out: usize, corr: usize): void { f16Rows(q, blk, m, d, out, corr, true); }

/**
 * The f16 scans. The n rows are split into four streams (quarters) walked in steps of R rows
 * (about 4 KiB of codes each). Per step, pass A reads the four blocks side by side (a light loop
 * over four memory streams, so the hardware keeps many lines in flight) and computes, for the few
 * lanes with exponent 0 or 31, the correction of each row's fast-path score; pass B then scores
 * the blocks from cache with the integer-only conversion, four rows at a time, and adds the
 * corrections. Corrections cost one rounding each (an absolute error of a few ulp of
 * sum |q_j * 2^-15| over zero/subnormal lanes, far below the half-precision error of the codes).
 */
function scanF16(q: usize, base: usize, n: i32, d: i32, out: usize, l2: bool): void {
  if (n <= 0) return;
  if (d <= 0) { memory.fill(out, 0, <usize>n << 2); return; }
  const rowBytes = <usize>d << 1;
  let R = <i32>(F16_STEP_BYTES / rowBytes);
  if (R < 1) R = 1;
  if (R > F16_MAX_STEP_ROWS) R = F16_MAX_STEP_ROWS;
  const stride = <usize>R << 2; // bytes of F16_CORR per stream
  const steps = (n + 4 * R - 1) / (4 * R);
  const Q = steps * R; // rows per stream
  for (let t = 0; t < steps; t++) {
    const s0 = t * R, s1 = Q + s0, s2 = 2 * Q + s0, s3 = 3 * Q + s0;
    const m0 = min(R, n - s0), m1 = max(0, min(R, n - s1)), m2 = max(0, min(R, n - s2)), m3 = max(0, min(R, n - s3));
    const b0 = base + <usize>s0 * rowBytes, b1 = base + <usize>s1 * rowBytes, b2 = base + <usize>s2 * rowBytes, b3 = base + <usize>s3 * rowBytes;
    memory.fill(F16_CORR, 0, stride << 2);
    if (m3 == R) f16CheckBlocks4(q, b0, b1, b2, b3, R * d, d, F16_CORR, stride, l2);
    else {
      f16CheckBlock(q, b0, m0 * d, d, F16_CORR, l2);
      if (m1 > 0) f16CheckBlock(q, b1, m1 * d, d, F16_CORR + stride, l2);
      if (m2 > 0) f16CheckBlock(q, b2, m2 * d, d, F16_CORR + 2 * stride, l2);
      if (m3 > 0) f16CheckBlock(q, b3, m3 * d, d, F16_CORR + 3 * stride, l2);
    }
    if (l2) {
      f16RowsL2(q, b0, m0, d, out + (<usize>s0 << 2), F16_CORR);
      if (m1 > 0) f16RowsL2(q, b1, m1, d, out + (<usize>s1 << 2), F16_CORR + stride);
      if (m2 > 0) f16RowsL2(q, b2, m2, d, out + (<usize>s2 << 2), F16_CORR + 2 * stride);
      if (m3 > 0) f16RowsL2(q, b3, m3, d, out + (<usize>s3 << 2), F16_CORR + 3 * stride);
    } else {
      f16RowsDot(q, b0, m0, d, out + (<usize>s0 << 2), F16_CORR);
      if (m1 > 0) f16RowsDot(q, b1, m1, d, out + (<usize>s1 << 2), F16_CORR + stride);
      if (m2 > 0) f16RowsDot(q, b2, m2, d, out + (<usize>s2 << 2), F16_CORR + 2 * stride);
      if (m3 > 0) f16RowsDot(q, b3, m3, d, out + (<usize>s3 << 2), F16_CORR + 3 * stride);
    }
  }
}

/** out[i] = <q, base[i]> with base stored as f16. q: f32[d]; base: u16[n*d]; out: f32[n]. */
export function dotManyF16(q: usize, base: usize, n: i32, d: i32, out: usize): void {
  scanF16(q, base, n, d, out, false);
}

/** out[i] = ||q - base[i]||^2 with base stored as f16. Shapes as dotManyF16. */
export function l2ManyF16(q: usize, base: usize, n: i32, d: i32, out: usize): void {
  scanF16(q, base, n, d, out, true);
}

/** out[i] = sum_j q[j]*base[i][j] over signed bytes. q: i8[d]; base: i8[n*d]; out: i32[n]. */
export function i8DotMany(q: usize, base: usize, n: i32, d: i32, out: usize): void {
  let row = base;
  for (let i = 0; i < n; i++) {
    let acc = i32x4.splat(0);
    let j = 0;
    for (; j + 16 <= d; j += 16) {
      const a = v128.load(q + <usize>j), b = v128.load(row + <usize>j);
      acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b)));
      acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b)));
    }
    let s = hsumI32(acc);
    for (; j < d; j++) s += <i32>load<i8>(q + <usize>j) * <i32>load<i8>(row + <usize>j);
    store<i32>(out + (<usize>i << 2), s);
    row += <usize>d;
  }
}

/** out[i] = popcount(q XOR base[i]) over packed bits. q: u8[nbytes]; base: u8[n*nbytes]; out: u32[n]. */
export function hammingMany(q: usize, base: usize, n: i32, nbytes: i32, out: usize): void {
  let row = base;
  for (let i = 0; i < n; i++) {
    let acc = i32x4.splat(0);
    let j = 0;
    for (; j + 16 <= nbytes; j += 16) {
      const c = i8x16.popcnt(v128.xor(v128.load(q + <usize>j), v128.load(row + <usize>j)));
      acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(c)));
    }
    let s = hsumI32(acc);
    for (; j + 8 <= nbytes; j += 8) s += <i32>popcnt<u64>(load<u64>(q + <usize>j) ^ load<u64>(row + <usize>j));
    for (; j < nbytes; j++) s += popcnt<u32>(<u32>(load<u8>(q + <usize>j) ^ load<u8>(row + <usize>j)));
    store<u32>(out + (<usize>i << 2), <u32>s);
    row += <usize>nbytes;
  }
}

/**
 * Gathers rows: for i < n, the rowBytes bytes of row r = map ? map[ids[i]] : ids[i] (u32s) at
 * src + r * rowBytes are copied to dst + i * rowBytes. What the filtered exact paths and the graph's
 * bound pass do before scoring a scattered set of rows as one block.
 */
export function gatherRows(src: usize, rowBytes: i32, ids: usize, n: i32, map: usize, dst: usize): void {
  const rb = <usize>rowBytes;
  for (let i = 0; i < n; i++) {
    let r = <usize>load<u32>(ids + (<usize>i << 2));
    if (map) r = <usize>load<u32>(map + (r << 2));
    memory.copy(dst + <usize>i * rb, src + r * rb, rb);
  }
}

/** a[i] *= b[i] for i < n (f32). Used to apply per-vector inverse norms for cosine. */
export function mulInPlace(a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = a + (<usize>i << 2);
    v128.store(p, f32x4.mul(v128.load(p), v128.load(b + (<usize>i << 2))));
  }
  for (; i < n; i++) {
    const p = a + (<usize>i << 2);
    store<f32>(p, load<f32>(p) * load<f32>(b + (<usize>i << 2)));
  }
}

// ---- top-k selection -------------------------------------------------------------------
// A min-heap of (key, id) pairs kept in two parallel arrays; its root is the weakest kept
// candidate. key = score * sign, so sign = -1 turns distances into "larger is closer".
// Ties order by id (the larger id is weaker), so results equal a stable sort by (key desc, id asc).

@inline function weaker(ak: f32, ai: u32, bk: f32, bi: u32): bool {
  return ak < bk || (ak == bk && ai > bi);
}

@inline function siftDown(hs: usize, hi: usize, size: i32, pos: i32): void {
  const key = load<f32>(hs + (<usize>pos << 2));
  const id = load<u32>(hi + (<usize>pos << 2));
  while (true) {
    let c = 2 * pos + 1;
    if (c >= size) break;
    let ck = load<f32>(hs + (<usize>c << 2));
    let ci = load<u32>(hi + (<usize>c << 2));
    if (c + 1 < size) {
      const rk = load<f32>(hs + (<usize>(c + 1) << 2));
      const ri = load<u32>(hi + (<usize>(c + 1) << 2));
      if (weaker(rk, ri, ck, ci)) { c++; ck = rk; ci = ri; }
    }
    if (!weaker(ck, ci, key, id)) break;
    store<f32>(hs + (<usize>pos << 2), ck);
    store<u32>(hi + (<usize>pos << 2), load<u32>(hi + (<usize>c << 2)));
    pos = c;
  }
  store<f32>(hs + (<usize>pos << 2), key);
  store<u32>(hi + (<usize>pos << 2), id);
}

@inline function siftUp(hs: usize, hi: usize, pos: i32): void {
  const key = load<f32>(hs + (<usize>pos << 2));
  const id = load<u32>(hi + (<usize>pos << 2));
  while (pos > 0) {
    const p = (pos - 1) >> 1;
    const pk = load<f32>(hs + (<usize>p << 2));
    if (!weaker(key, id, pk, load<u32>(hi + (<usize>p << 2)))) break;
    store<f32>(hs + (<usize>pos << 2), pk);
    store<u32>(hi + (<usize>pos << 2), load<u32>(hi + (<usize>p << 2)));
    pos = p;
  }
  store<f32>(hs + (<usize>pos << 2), key);
  store<u32>(hi + (<usize>pos << 2), id);
}

/**
 * Pushes scores[0..n) with ids idBase+i into a bounded min-heap of capacity k.
 * heapKeys: f32[k], heapIds: u32[k], size: entries already in the heap. Returns the new size.
 * A score enters only if its key is strictly greater than the root, so among equal keys the
 * earlier id wins. NaN keys never enter.
 */
export function topkPush(scores: usize, n: i32, idBase: u32, sign: f32, heapKeys: usize, heapIds: usize, k: i32, size: i32): i32 {
  let i = 0;
  // Fill phase.
  for (; i < n && size < k; i++) {
    const key = load<f32>(scores + (<usize>i << 2)) * sign;
    if (key != key) continue;
    store<f32>(heapKeys + (<usize>size << 2), key);
    store<u32>(heapIds + (<usize>size << 2), idBase + <u32>i);
    siftUp(heapKeys, heapIds, size);
    size++;
  }
  if (size < k) return size;
  let root = load<f32>(heapKeys);
  const vsign = f32x4.splat(sign);
  // Most scores cannot enter: test four at a time against the root before touching the heap.
  for (; i + 4 <= n; i += 4) {
    const keys = f32x4.mul(v128.load(scores + (<usize>i << 2)), vsign);
    if (!v128.any_true(f32x4.gt(keys, f32x4.splat(root)))) continue;
    for (let t = 0; t < 4; t++) {
      const key = load<f32>(scores + (<usize>(i + t) << 2)) * sign;
      if (key > root) {
        store<f32>(heapKeys, key);
        store<u32>(heapIds, idBase + <u32>(i + t));
        siftDown(heapKeys, heapIds, size, 0);
        root = load<f32>(heapKeys);
      }
    }
  }
  for (; i < n; i++) {
    const key = load<f32>(scores + (<usize>i << 2)) * sign;
    if (key > root) {
      store<f32>(heapKeys, key);
      store<u32>(heapIds, idBase + <u32>i);
      siftDown(heapKeys, heapIds, size, 0);
      root = load<f32>(heapKeys);
    }
  }
  return size;
}
