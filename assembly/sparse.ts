// WASM kernels for learned-sparse retrieval (src/sparse/). Raw-pointer style, as dense.ts.
// Each export has a JS twin of the same name in src/kernels/sparse.ts (the reference for the
// exact contract of every argument); test/sparse-kernels.test.ts checks the two agree.
//
// Sparse scoring is a gather (table[term] for each stored entry), which WASM SIMD has no
// instruction for, so these loops are scalar; they accumulate in f64 in stored order and round
// once, exactly as the twin does, so both give bit-identical scores.

/**
 * out[i] = sum_{j in rowStart[r]..rowStart[r+1]} table[entries[2j]] * f32(entries[2j+1]), r = rows[i].
 * table: f32[nTerms]; rowStart: u32[count+1]; entries: u32[2*nnz] (term id, f32 weight bits),
 * interleaved so a row is one contiguous run (rows are visited in random order: one miss stream);
 * rows: u32[n]; out: f32[n].
 */
export function sparseScoreRows(table: usize, rowStart: usize, entries: usize, rows: usize, n: i32, out: usize): void {
  for (let i = 0; i < n; i++) {
    const r = <usize>load<u32>(rows + (<usize>i << 2));
    const p = rowStart + (r << 2);
    let e = entries + (<usize>load<u32>(p) << 3);
    const end = entries + (<usize>load<u32>(p, 4) << 3);
    let s: f64 = 0;
    // two entries per step (independent loads), the sum kept in stored order
    for (; e + 16 <= end; e += 16) {
      const a = <f64>load<f32>(table + (<usize>load<u32>(e) << 2)) * <f64>load<f32>(e, 4);
      const b = <f64>load<f32>(table + (<usize>load<u32>(e, 8) << 2)) * <f64>load<f32>(e, 12);
      s += a;
      s += b;
    }
    if (e < end) s += <f64>load<f32>(table + (<usize>load<u32>(e) << 2)) * <f64>load<f32>(e, 4);
    store<f32>(out + (<usize>i << 2), <f32>s);
  }
}

/**
 * out[i] = scale[b] * sum_{j in sumStart[b]..sumStart[b+1]} table[sumTerms[j]] * codes[j], b = first + i.
 * table: f32[nTerms]; sumStart: u32[nBlocks+1]; sumTerms: u32[]; codes: u8[]; scale: f32[nBlocks]; out: f32[n].
 */
export function sparseScoreSummaries(table: usize, sumStart: usize, sumTerms: usize, codes: usize, scale: usize, first: i32, n: i32, out: usize): void {
  for (let i = 0; i < n; i++) {
    const b = <usize>(first + i);
    const p = sumStart + (b << 2);
    let j = <usize>load<u32>(p);
    const end = <usize>load<u32>(p, 4);
    let s: f64 = 0;
    for (; j < end; j++) {
      s += <f64>load<f32>(table + (<usize>load<u32>(sumTerms + (j << 2)) << 2)) * <f64>load<u8>(codes + j);
    }
    store<f32>(out + (<usize>i << 2), <f32>(<f64>load<f32>(scale + (b << 2)) * s));
  }
}
