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

/**
 * Per-query counters a search adds to (each u32[nq]); what `search(..., { withStats })` reports.
 */
export interface QueryCounters {
  /** Vectors or codes scored by the index (a full scan: the segment's rows). */
  readonly scanned: Uint32Array;
  /** Full-precision vectors scored exactly after a compressed scan. */
  readonly reranked: Uint32Array;
}

/** Per-index search parameters; an index ignores those it has no use for. */
export interface IndexSearchParams {
  /**
   * Oversampling factor for reranking compressed candidates (candidates = factor * k), overriding
   * the spec's rule; undefined = the spec's rule.
   */
  readonly rerankFactor?: number;
  /** Graph indexes: beam width (candidates kept during the search); undefined = the index's default. */
  readonly ef?: number;
  /** IVF indexes: lists scanned per query; undefined = the index's default. */
  readonly nprobe?: number;
  /**
   * Target recall@k in (0, 1]: approximate indexes choose ef / nprobe / rerank depth from their
   * calibration (calibration.ts); explicit ef, nprobe or rerankFactor still win.
   */
  readonly recall?: number;
  /**
   * Fraction of the segment's live rows a filter leaves eligible (set by the filter planner when
   * it masks rows): an HNSW index walks two hops at a time below 30%; an IVF index compares the
   * eligible rows its nearest lists held with this fraction and probes further by the shortfall.
   */
  readonly eligible?: number;
  /** Score every eligible row exactly instead of searching the index (the planner's 'exact' path, forced). */
  readonly exact?: boolean;
}

/**
 * One search of one segment's index, for a block of queries (DESIGN.md "SegmentQuery").
 * Results are ordinals of the segment, larger score = closer, best first.
 */
export interface SegmentQuery {
  /** f32[nq * dimension], prepared (unit length for cosine). */
  readonly queries: Float32Array;
  readonly nq: number;
  /** Results wanted per query (>= 1). */
  readonly k: number;
  /**
   * Rows that must not be returned, as a bitset (bit i set = ordinal i excluded): the segment's
   * deletes, and (with filters) the rows a filter rejects. Undefined = every row is eligible.
   */
  readonly excluded?: Uint32Array;
  readonly params: IndexSearchParams;
  /** Counters out: the index adds what it did for each query. */
  readonly counters: QueryCounters;
}

/**
 * A segment's vector index (DESIGN.md "VectorIndex"): built when the segment is written, stored
 * in the segment's own sections, loaded at open, searched with SegmentQuery. Implementations:
 * FlatIndex (exact scan of full vectors in kernel memory) and FlatQuantizedIndex (scan of codes,
 * rerank from the segment file). The VectorIndex suite (test/vector-index.test.ts) runs on all.
 */
export interface VectorIndex {
  /** What the index is, for info(): 'Flat', or the quantizer spec for a compressed scan. */
  readonly description: string;
  /** Rows indexed (deleted ones included: deletion is a mask given per search). */
  readonly count: number;
  /** Bytes of kernel and JS memory the index holds for search. */
  readonly memoryBytes: number;
  search(query: SegmentQuery): SearchResultBatch;
  /**
   * Optional: the k best of the listed rows only (ords: u32[n], increasing), scored on what the
   * index holds in memory (codes), reranked as its searches are: the filter planner's path for
   * few matching rows, much cheaper than reading each row's full vector from the file. Indexes
   * without it leave that path to the segment (full vectors).
   */
  searchRows?(query: SegmentQuery, ords: Uint32Array, n: number): SearchResultBatch;
  /**
   * Optional, with searchRows: the most matching rows for which searchRows is expected to cost
   * no more than search() with the other rows masked, for k results at `params`. The filter
   * planner (src/filter/plan.ts) takes the exact path up to it.
   */
  exactRowLimit?(k: number, params: IndexSearchParams): number;
  /** Frees its memory; the index cannot be used afterwards. */
  release(): void;
}

/** Fresh zeroed counters for nq queries. */
export function newCounters(nq: number): QueryCounters {
  return { scanned: new Uint32Array(nq), reranked: new Uint32Array(nq) };
}
