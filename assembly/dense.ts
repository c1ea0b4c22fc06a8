// Dense numeric kernels, raw-pointer style: every argument is a byte offset into linear memory
// or a count. No GC objects, no allocation: memory is managed from JS (src/kernels/memory.ts).
// Each kernel has a plain JS twin in src/kernels/js.ts; test/kernels.test.ts checks they agree.

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
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let j = 0;
    for (; j + 16 <= d; j += 16) {
      const qp = q + (<usize>j << 2), rp = row + (<usize>j << 2);
      a0 = f32x4.add(a0, f32x4.mul(v128.load(qp), v128.load(rp)));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(qp, 16), v128.load(rp, 16)));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(qp, 32), v128.load(rp, 32)));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(qp, 48), v128.load(rp, 48)));
    }
    for (; j + 4 <= d; j += 4) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load(q + (<usize>j << 2)), v128.load(row + (<usize>j << 2))));
    }
    let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
    for (; j < d; j++) s += load<f32>(q + (<usize>j << 2)) * load<f32>(row + (<usize>j << 2));
    store<f32>(out + (<usize>i << 2), s);
    row += rowBytes;
  }
}

/** out[i] = ||q - base[i]||^2 (squared L2 distance). Shapes as dotMany. */
export function l2Many(q: usize, base: usize, n: i32, d: i32, out: usize): void {
  const rowBytes = <usize>d << 2;
  let row = base;
  for (let i = 0; i < n; i++) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let j = 0;
    for (; j + 16 <= d; j += 16) {
      const qp = q + (<usize>j << 2), rp = row + (<usize>j << 2);
      const d0 = f32x4.sub(v128.load(qp), v128.load(rp));
      const d1 = f32x4.sub(v128.load(qp, 16), v128.load(rp, 16));
      const d2 = f32x4.sub(v128.load(qp, 32), v128.load(rp, 32));
      const d3 = f32x4.sub(v128.load(qp, 48), v128.load(rp, 48));
      a0 = f32x4.add(a0, f32x4.mul(d0, d0));
      a1 = f32x4.add(a1, f32x4.mul(d1, d1));
      a2 = f32x4.add(a2, f32x4.mul(d2, d2));
      a3 = f32x4.add(a3, f32x4.mul(d3, d3));
    }
    for (; j + 4 <= d; j += 4) {
      const dd = f32x4.sub(v128.load(q + (<usize>j << 2)), v128.load(row + (<usize>j << 2)));
      a0 = f32x4.add(a0, f32x4.mul(dd, dd));
    }
    let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
    for (; j < d; j++) {
      const t = load<f32>(q + (<usize>j << 2)) - load<f32>(row + (<usize>j << 2));
      s += t * t;
    }
    store<f32>(out + (<usize>i << 2), s);
    row += rowBytes;
  }
}

// IEEE half -> single. Shifting the 15 low bits into f32 position and multiplying by 2^112
// re-biases the exponent and handles subnormals in one step; Inf/NaN (exponent 31) are patched.
const F16_SCALE: f32 = 5.192296858534828e33; // 2^112

@inline function f16x4ToF32(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const em = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const scaled = f32x4.mul(em, f32x4.splat(F16_SCALE));
  const infNan = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  const special = v128.or(em, i32x4.splat(0x7f800000));
  return v128.or(v128.bitselect(special, scaled, infNan), sign);
}

@inline function f16ToF32Scalar(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const em = (h & 0x7fff) << 13;
  let bits: u32;
  if ((h & 0x7c00) == 0x7c00) bits = em | 0x7f800000;
  else bits = reinterpret<u32>(reinterpret<f32>(em) * F16_SCALE);
  return reinterpret<f32>(bits | sign);
}

/** dst[i] = float(src[i]) for i < n. src: u16[n] IEEE half bits; dst: f32[n]. */
export function f16ToF32(src: usize, n: i32, dst: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    v128.store(dst + (<usize>i << 2), f16x4ToF32(v128.load16x4_u(src + (<usize>i << 1))));
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), f16ToF32Scalar(load<u16>(src + (<usize>i << 1))));
}

/** out[i] = <q, base[i]> with base stored as f16. q: f32[d]; base: u16[n*d]; out: f32[n]. */
export function dotManyF16(q: usize, base: usize, n: i32, d: i32, out: usize): void {
  const rowBytes = <usize>d << 1;
  let row = base;
  for (let i = 0; i < n; i++) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    let j = 0;
    for (; j + 8 <= d; j += 8) {
      const qp = q + (<usize>j << 2), rp = row + (<usize>j << 1);
      a0 = f32x4.add(a0, f32x4.mul(v128.load(qp), f16x4ToF32(v128.load16x4_u(rp))));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(qp, 16), f16x4ToF32(v128.load16x4_u(rp, 8))));
    }
    for (; j + 4 <= d; j += 4) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load(q + (<usize>j << 2)), f16x4ToF32(v128.load16x4_u(row + (<usize>j << 1)))));
    }
    let s = hsum(f32x4.add(a0, a1));
    for (; j < d; j++) s += load<f32>(q + (<usize>j << 2)) * f16ToF32Scalar(load<u16>(row + (<usize>j << 1)));
    store<f32>(out + (<usize>i << 2), s);
    row += rowBytes;
  }
}

/** out[i] = ||q - base[i]||^2 with base stored as f16. Shapes as dotManyF16. */
export function l2ManyF16(q: usize, base: usize, n: i32, d: i32, out: usize): void {
  const rowBytes = <usize>d << 1;
  let row = base;
  for (let i = 0; i < n; i++) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    let j = 0;
    for (; j + 8 <= d; j += 8) {
      const qp = q + (<usize>j << 2), rp = row + (<usize>j << 1);
      const d0 = f32x4.sub(v128.load(qp), f16x4ToF32(v128.load16x4_u(rp)));
      const d1 = f32x4.sub(v128.load(qp, 16), f16x4ToF32(v128.load16x4_u(rp, 8)));
      a0 = f32x4.add(a0, f32x4.mul(d0, d0));
      a1 = f32x4.add(a1, f32x4.mul(d1, d1));
    }
    for (; j + 4 <= d; j += 4) {
      const dd = f32x4.sub(v128.load(q + (<usize>j << 2)), f16x4ToF32(v128.load16x4_u(row + (<usize>j << 1))));
      a0 = f32x4.add(a0, f32x4.mul(dd, dd));
    }
    let s = hsum(f32x4.add(a0, a1));
    for (; j < d; j++) {
      const t = load<f32>(q + (<usize>j << 2)) - f16ToF32Scalar(load<u16>(row + (<usize>j << 1)));
      s += t * t;
    }
    store<f32>(out + (<usize>i << 2), s);
    row += rowBytes;
  }
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
