/**
 * Results of a batch search: for query q, its hits are rows q*k .. q*k+counts[q]-1 of
 * `ords` (dense ordinals of the store) and `scores` (larger = closer), best first.
 */
export interface SearchResultBatch {
  readonly k: number;
  readonly ords: Uint32Array; // [nq * k]
  readonly scores: Float32Array; // [nq * k]
  readonly counts: Uint32Array; // [nq]
}
