// The inner loop shared by the 4-bit fast-scan kernels (pqFastScan in pq.ts, rabitqFastScan in
// rabitq.ts). Not a kernel: index.ts does not re-export this file, so it adds no WASM export.

/**
 * The u32 totals of one fast-scan block (32 vectors, m subspaces of 16 bytes: byte j holds the
 * code of vector j in its low nibble and of vector j + 16 in its high nibble) under the u8 tables
 * lut: u8[m * 16], stored to stage: u32[32] in vector order. The 16-entry tables are applied with
 * i8x16.swizzle; sums accumulate in u16 lanes (at most 255 * 256 per lane) and are widened to u32
 * every 256 subspaces. Shared by pqFastScan and rabitqFastScan.
 */
@inline export function fastScanTotals(block: usize, m: i32, lut: usize, stage: usize): void {
  const low = i8x16.splat(15);
  // u32 totals for vectors 0-3, 4-7, ..., 28-31
  let w0 = i32x4.splat(0), w1 = i32x4.splat(0), w2 = i32x4.splat(0), w3 = i32x4.splat(0);
  let w4 = i32x4.splat(0), w5 = i32x4.splat(0), w6 = i32x4.splat(0), w7 = i32x4.splat(0);
  for (let s0 = 0; s0 < m; s0 += 256) {
    const s1 = min(m, s0 + 256);
    // u16 partial sums: vectors 0-7, 8-15 (low nibbles), 16-23, 24-31 (high nibbles)
    let h0 = i16x8.splat(0), h1 = i16x8.splat(0), h2 = i16x8.splat(0), h3 = i16x8.splat(0);
    for (let s = s0; s < s1; s++) {
      const codes = v128.load(block + (<usize>s << 4));
      const table = v128.load(lut + (<usize>s << 4));
      const lo = i8x16.swizzle(table, v128.and(codes, low));
      const hi = i8x16.swizzle(table, i8x16.shr_u(codes, 4));
      h0 = i16x8.add(h0, i16x8.extend_low_i8x16_u(lo));
      h1 = i16x8.add(h1, i16x8.extend_high_i8x16_u(lo));
      h2 = i16x8.add(h2, i16x8.extend_low_i8x16_u(hi));
      h3 = i16x8.add(h3, i16x8.extend_high_i8x16_u(hi));
    }
    w0 = i32x4.add(w0, i32x4.extend_low_i16x8_u(h0));
    w1 = i32x4.add(w1, i32x4.extend_high_i16x8_u(h0));
    w2 = i32x4.add(w2, i32x4.extend_low_i16x8_u(h1));
    w3 = i32x4.add(w3, i32x4.extend_high_i16x8_u(h1));
    w4 = i32x4.add(w4, i32x4.extend_low_i16x8_u(h2));
    w5 = i32x4.add(w5, i32x4.extend_high_i16x8_u(h2));
    w6 = i32x4.add(w6, i32x4.extend_low_i16x8_u(h3));
    w7 = i32x4.add(w7, i32x4.extend_high_i16x8_u(h3));
  }
  v128.store(stage, w0);
  v128.store(stage, w1, 16);
  v128.store(stage, w2, 32);
  v128.store(stage, w3, 48);
  v128.store(stage, w4, 64);
  v128.store(stage, w5, 80);
  v128.store(stage, w6, 96);
  v128.store(stage, w7, 112);
}
