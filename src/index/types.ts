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

/**
 * Exact scores from full-precision vectors, for reranking candidates found on codes.
 * Implementations read from kernel memory (in-memory segments) or from segment files by position.
 */
export interface ExactScorer {
  /**
   * out[i] = exact score (larger = closer: <q,x>, cosine, or -||q-x||^2) of the vector at
   * ordinal ords[i], for i < n. query: f32[dimension], prepared as for search (unit for cosine).
   */
  scoreOrdinals(query: Float32Array, ords: Uint32Array, n: number, out: Float32Array): void;
}
