import type { Segment } from '../collection/segment.js';
import { FlatQuantizedIndex } from '../index/flat-quantized.js';
import { FlatIndex } from '../index/flat.js';
import type { IndexSearchParams } from '../index/types.js';

/**
 * The planner of filtered search: per segment, once the filter is compiled and the number of
 * live matching rows is known exactly, how to find the k best of them.
 *
 * - 'exact': score exactly the matching rows and nothing else (Segment.searchRows: full vectors
 *   gathered from kernel memory or read from the file). Exact results, cost proportional to the
 *   matching rows, independent of the index.
 * - 'index': search the segment's index with the non-matching rows masked (SegmentQuery.excluded:
 *   flat scans skip them, a graph traversal will skip them while it walks). Cost of the index's own
 *   search; its recall is the index's.
 * - 'none': no live row matches; the segment is not searched.
 *
 * The threshold is fixed a priori per kind of index (no per-query measurement), from what each
 * path costs per row, measured on this project's shared 2-core machine (one sealed segment of
 * 100k random 128-d rows, l2, k = 10, one query at a time; see docs/ARCHITECTURE.md "Filters"):
 * - Flat (full vectors in kernel memory): the index path scans every row (~0.06 us a row), the
 *   exact path gathers the matching ones (~0.1 us a row): exact is faster below ~60% of the rows.
 *   Both are exact, so this choice is about speed only; the limit is 50%.
 * - Flat with a quantizer: the index path scans every code (~0.08 us a row for SQ8) and reranks;
 *   the exact path reads each matching vector from the file (~0.5 us a row with the file in the
 *   page cache; a read that misses the cache costs a disk access). With a warm cache exact wins
 *   below ~12% of the rows; the limit is 2% (or 8 rows per result wanted, about what reranking
 *   reads anyway), so that a cold file costs a bounded number of reads while a warm one still
 *   takes the cheaper path. The masked scan keeps the index's recall at any selectivity: this
 *   choice too is about speed.
 * - an index that says how many rows its own exact path pays off for (VectorIndex.exactRowLimit:
 *   IVF, whose searchRows scores the matching rows' codes in memory, measured against its masked
 *   probe in src/index/ivf.ts): that limit, and at least the one below.
 * - any other index (graphs): the index path is sublinear but its recall falls as the mask
 *   gets sparse (a graph walk meets few matching rows, a probed list holds few); below
 *   max(2% of the rows, 2,000 rows) the exact path is safe and cheap (2,000 rows: ~1 ms warm).
 */
export type FilterPath = 'exact' | 'index' | 'none';

/** Flat: exact path below this fraction of the segment's rows. */
export const FLAT_EXACT_FRACTION = 0.5;
/** Quantized flat scans: exact path below this fraction of the segment's rows... */
export const QUANTIZED_EXACT_FRACTION = 0.02;
/** ...or below this many rows per result wanted (what a reranking reads for k results, about). */
export const QUANTIZED_EXACT_PER_K = 8;
/** Other indexes (graphs, IVF): exact path below this fraction of the rows... */
export const OTHER_EXACT_FRACTION = 0.02;
/** ...or below this many rows. */
export const OTHER_EXACT_ROWS = 2000;

/** Most matching rows for which `seg` takes the exact path, for k results per query searched with `params`. */
export function exactRowLimit(seg: Segment, k: number, params: IndexSearchParams = {}): number {
  const index = seg.index;
  if (index instanceof FlatIndex) return Math.floor(FLAT_EXACT_FRACTION * seg.count);
  if (index instanceof FlatQuantizedIndex) return Math.max(Math.floor(QUANTIZED_EXACT_FRACTION * seg.count), QUANTIZED_EXACT_PER_K * k);
  const other = Math.max(Math.floor(OTHER_EXACT_FRACTION * seg.count), OTHER_EXACT_ROWS, QUANTIZED_EXACT_PER_K * k);
  return index.exactRowLimit ? Math.max(other, index.exactRowLimit(k, params)) : other;
}

/** The path for a segment whose live matching rows number `matched`, for k results per query searched with `params`. */
export function planSegment(seg: Segment, matched: number, k: number, params: IndexSearchParams = {}): FilterPath {
  if (matched === 0) return 'none';
  return matched <= exactRowLimit(seg, k, params) ? 'exact' : 'index';
}
