import type { Metric } from '../collection/validate.js';
import type { Kernels } from '../kernels/types.js';
import { drainHeaps } from './flat.js';
import type { SearchResultBatch } from './types.js';

/**
 * Writes rows ords[from .. from + n) into kernel memory: their f32 vectors at `vecPtr`
 * (f32[n * dimension], row-major) and, when `invPtr` is not 0 (cosine), their inverse norms at
 * `invPtr` (f32[n]). Must not allocate kernel memory (pointers and views stay valid).
 */
export type GatherRows = (vecPtr: number, invPtr: number, from: number, n: number) => void;

/** Rows gathered per block: about 256 KiB of vectors, so a block stays in cache across queries. */
function blockRows(d: number, n: number): number {
  return Math.max(1, Math.min(n, Math.max(16, Math.floor((256 << 10) / (d * 4)))));
}

/**
 * Exact top-k of each query among a gathered list of rows (what a filtered search does when few
 * rows match): rows are gathered a block at a time into scratch kernel memory by `gather`, then
 * scored with the same block kernels and top-k heap as a flat scan, so scores and tie order
 * (the smaller ordinal first) are those a full scan would give.
 *
 * queries: f32[nq * dimension], prepared (unit for cosine); ords: u32[n] distinct row ordinals in
 * increasing order; k >= 1. Returns ordinals of the segment (SearchResultBatch, k = min(k, n)).
 */
export function searchGathered(
  kern: Kernels, dimension: number, metric: Metric, queries: Float32Array, nq: number, k: number,
  ords: Uint32Array, n: number, gather: GatherRows,
): SearchResultBatch {
  const d = dimension, kk = Math.max(1, Math.min(k, n));
  if (n === 0) return { k: kk, ords: new Uint32Array(nq * kk), scores: new Float32Array(nq * kk), counts: new Uint32Array(nq) };
  const mem = kern.memory;
  const B = blockRows(d, n);
  const cosine = metric === 'cosine', l2 = metric === 'l2', sign = l2 ? -1 : 1;
  const qPtr = mem.alloc(nq * d * 4);
  const vecs = mem.alloc(B * d * 4);
  const inv = cosine ? mem.alloc(B * 4) : 0;
  const scratch = mem.alloc(B * 4);
  const heapKeys = mem.alloc(nq * kk * 4);
  const heapIds = mem.alloc(nq * kk * 4);
  try {
    mem.f32(qPtr, nq * d).set(queries.subarray(0, nq * d));
    const sizes = new Int32Array(nq);
    for (let from = 0; from < n; from += B) {
      const m = Math.min(B, n - from);
      gather(vecs, inv, from, m);
      for (let q = 0; q < nq; q++) {
        if (l2) kern.l2Many(qPtr + q * d * 4, vecs, m, d, scratch);
        else kern.dotMany(qPtr + q * d * 4, vecs, m, d, scratch);
        if (cosine) kern.mulInPlace(scratch, inv, m);
        // heap ids are positions in `ords` (increasing, as topkPush needs); mapped back below
        sizes[q] = kern.topkPush(scratch, m, from, sign, heapKeys + q * kk * 4, heapIds + q * kk * 4, kk, sizes[q]);
      }
    }
    const res = drainHeaps(mem.f32(heapKeys, nq * kk), mem.u32(heapIds, nq * kk), sizes, nq, kk);
    for (let i = 0; i < res.ords.length; i++) res.ords[i] = ords[res.ords[i]];
    return res;
  } finally {
    mem.release(qPtr); mem.release(vecs); if (inv) mem.release(inv); mem.release(scratch); mem.release(heapKeys); mem.release(heapIds);
  }
}
