import type { KernelMemory } from './memory.js';

/**
 * Kernels for learned-sparse retrieval (src/sparse/): the interface and its plain JS twin, side by
 * side. The WASM implementation lives in assembly/sparse.ts with the same export names;
 * test/sparse-kernels.test.ts checks the two agree on random data. Pointers are byte offsets into
 * the kernel memory; see types.ts for conventions.
 *
 * The query is a dense weight table over the segment's term ids (f32[nTerms], zero for terms
 * outside the query), so scoring a sparse row is a gather: sum over the row's entries of
 * table[term] * weight. Both kernels accumulate in float64 in the order of the stored entries
 * and round once to f32, so the two implementations give bit-identical results.
 */
export interface SparseKernels {
  /**
   * Scores n rows of a CSR forward index whose entries are (term id, weight) pairs, interleaved
   * so that a row is one contiguous run of memory: out[i] = sum_{j in rowStart[r]..rowStart[r+1]}
   * table[entries[2j]] * f32(entries[2j+1]), with r = rows[i].
   * table: f32[nTerms]; rowStart: u32[count + 1]; entries: u32[2 * nnz] (term, f32 weight bits);
   * rows: u32[n]; out: f32[n].
   */
  sparseScoreRows(table: number, rowStart: number, entries: number, rows: number, n: number, out: number): void;
  /**
   * Scores the n block summaries first..first+n-1 (u8 codes with a per-block scale):
   * out[i] = scale[b] * sum_{j in sumStart[b]..sumStart[b+1]} table[sumTerms[j]] * codes[j], b = first + i.
   * table: f32[nTerms]; sumStart: u32[nBlocks + 1]; sumTerms: u32[]; codes: u8[]; scale: f32[nBlocks]; out: f32[n].
   */
  sparseScoreSummaries(table: number, sumStart: number, sumTerms: number, codes: number, scale: number, first: number, n: number, out: number): void;
}

/** The JS twin of every SparseKernels method, over `memory` (use memory.views() inside each call). */
export function sparseTwin(memory: KernelMemory): SparseKernels {
  return {
    sparseScoreRows(table, rowStart, entries, rows, n, out) {
      const { u32: U32, f32: F32 } = memory.views();
      const t0 = table >> 2, rs = rowStart >> 2, e0 = entries >> 2, r0 = rows >> 2, o0 = out >> 2;
      for (let i = 0; i < n; i++) {
        const r = U32[r0 + i];
        const end = e0 + 2 * U32[rs + r + 1];
        let s = 0;
        for (let j = e0 + 2 * U32[rs + r]; j < end; j += 2) s += F32[t0 + U32[j]] * F32[j + 1];
        F32[o0 + i] = s;
      }
    },

    sparseScoreSummaries(table, sumStart, sumTerms, codes, scale, first, n, out) {
      const { u32: U32, f32: F32, u8: U8 } = memory.views();
      const t0 = table >> 2, ss = sumStart >> 2, st = sumTerms >> 2, sc = scale >> 2, o0 = out >> 2;
      for (let i = 0; i < n; i++) {
        const b = first + i;
        const end = U32[ss + b + 1];
        let s = 0;
        for (let j = U32[ss + b]; j < end; j++) s += F32[t0 + U32[st + j]] * U8[codes + j];
        F32[o0 + i] = F32[sc + b] * s;
      }
    },
  };
}
