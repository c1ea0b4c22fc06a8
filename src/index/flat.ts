import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import type { Metric } from '../collection/validate.js';
import type { SearchResultBatch, SegmentQuery, VectorIndex } from './types.js';
import type { VectorStore } from './vector-store.js';

/**
 * The exact index of a segment: full-precision vectors in kernel memory (a VectorStore), every
 * row scored for every query (flatSearch). `scanned` counts every row of the segment.
 */
export class FlatIndex implements VectorIndex {
  readonly description = 'Flat';
  private released = false;
  constructor(readonly store: VectorStore, readonly metric: Metric) {}
  get count(): number { return this.store.count; }
  get memoryBytes(): number { return this.store.bytes; }
  search(q: SegmentQuery): SearchResultBatch {
    if (this.released) throw new QuiverError('CLOSED', 'this FlatIndex was released', { reason: 'released' });
    const res = flatSearch(this.store, this.metric, q.queries, q.nq, q.k, q.excluded);
    const n = this.store.count;
    for (let i = 0; i < q.nq; i++) q.counters.scanned[i] += n;
    return res;
  }
  release(): void {
    this.released = true;
    this.store.clear();
  }
}

/**
 * Exact (brute-force) search over a VectorStore with the block kernels.
 * Scores: cosine = <q/|q|, x/|x|>; dot = <q, x>; l2 = -||q - x||^2 (larger is closer).
 * Queries must already be normalised for cosine. Ordinals whose bit is set in `deleted`
 * (a bitset, see src/util/bitset.ts) never appear in the results.
 *
 * Batches are tiled: a tile of base rows (~256 KiB) is scored against every query before the
 * next tile, so the tile is read from cache rather than memory for all but the first query.
 */
export function flatSearch(store: VectorStore, metric: Metric, queries: Float32Array, nq: number, k: number, deleted?: Uint32Array): SearchResultBatch {
  const kern: Kernels = store.kernels;
  const mem = kern.memory;
  const d = store.dimension;
  const tileRows = nq === 1 ? store.chunkRows : Math.max(16, Math.min(store.chunkRows, Math.floor((256 << 10) / (d * 4))));
  const qPtr = mem.alloc(nq * d * 4);
  const scratch = mem.alloc(tileRows * 4);
  const heapKeys = mem.alloc(nq * k * 4);
  const heapIds = mem.alloc(nq * k * 4);
  try {
    mem.f32(qPtr, nq * d).set(queries.subarray(0, nq * d));
    const sizes = new Int32Array(nq);
    const l2 = metric === 'l2';
    const sign = metric === 'l2' ? -1 : 1;
    for (let c = 0; c < store.chunkCount; c++) {
      const rows = store.rowsIn(c);
      const base = store.chunkPtr(c);
      for (let t = 0; t < rows; t += tileRows) {
        const m = Math.min(tileRows, rows - t);
        const tile = base + t * d * 4;
        const firstOrd = c * store.chunkRows + t;
        for (let q = 0; q < nq; q++) {
          if (l2) kern.l2Many(qPtr + q * d * 4, tile, m, d, scratch);
          else kern.dotMany(qPtr + q * d * 4, tile, m, d, scratch);
          if (metric === 'cosine') kern.mulInPlace(scratch, store.invNormPtr(c) + t * 4, m);
          if (deleted) maskDeleted(mem.views().f32, scratch >> 2, deleted, firstOrd, m);
          sizes[q] = kern.topkPush(scratch, m, firstOrd, sign, heapKeys + q * k * 4, heapIds + q * k * 4, k, sizes[q]);
        }
      }
    }
    return drainHeaps(mem.f32(heapKeys, nq * k), mem.u32(heapIds, nq * k), sizes, nq, k);
  } finally {
    mem.release(qPtr); mem.release(scratch); mem.release(heapKeys); mem.release(heapIds);
  }
}

/**
 * Sets f32[at + i - firstOrd] to NaN (which topkPush never admits) for every deleted ordinal i in
 * [firstOrd, firstOrd + n). f32: a whole-memory view (KernelMemory.views().f32); at: the scores'
 * float index (pointer >> 2). Words without a set bit cost one comparison.
 */
export function maskDeleted(f32: Float32Array, at: number, deleted: Uint32Array, firstOrd: number, n: number): void {
  if (n <= 0) return;
  const end = firstOrd + n, base = at - firstOrd;
  const last = Math.min((end - 1) >>> 5, deleted.length - 1);
  for (let w = firstOrd >>> 5; w <= last; w++) {
    let word = deleted[w] | 0; // as int32: a full word is -1
    if (word === 0) continue;
    const w0 = w << 5;
    if (w0 < firstOrd) word &= -1 << (firstOrd - w0); // clip to [firstOrd, end)
    if (end - w0 < 32) word &= (1 << (end - w0)) - 1;
    if (word === -1) {
      // filters make dense masks (most rows excluded): a full word is one fill
      f32.fill(NaN, base + w0, base + w0 + 32);
      continue;
    }
    while (word !== 0) {
      const t = word & -word;
      f32[base + w0 + 31 - Math.clz32(t)] = NaN;
      word ^= t;
    }
  }
}

/** Sorts each query's heap best-first (ties by ordinal); the heap keys are the scores (larger = closer). */
export function drainHeaps(keys: Float32Array, ids: Uint32Array, sizes: Int32Array, nq: number, k: number): SearchResultBatch {
  const ords = new Uint32Array(nq * k), scores = new Float32Array(nq * k), counts = new Uint32Array(nq);
  const order: number[] = [];
  for (let q = 0; q < nq; q++) {
    const size = sizes[q], o = q * k;
    order.length = 0;
    for (let i = 0; i < size; i++) order.push(i);
    order.sort((a, b) => keys[o + b] - keys[o + a] || ids[o + a] - ids[o + b]);
    for (let i = 0; i < size; i++) { ords[o + i] = ids[o + order[i]]; scores[o + i] = keys[o + order[i]]; }
    counts[q] = size;
  }
  return { k, ords, scores, counts };
}
