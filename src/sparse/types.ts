import { QuiverError } from '../errors.js';
import { checkWellFormed } from '../util/strings.js';

/**
 * A learned-sparse vector (SPLADE-style): term -> weight. Weights are finite and >= 0; zero
 * weights carry nothing and are dropped by checkSparseVector.
 */
export type SparseInput = Readonly<Record<string, number>>;

/** At most this many (non-zero) terms in one sparse vector. */
export const SPARSE_MAX_TERMS = 4096;
/** At most this many UTF-16 code units in one term. */
export const SPARSE_MAX_TERM_LENGTH = 256;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * Validates a sparse vector and returns it normalised: a fresh null-prototype object holding only
 * the non-zero weights (as numbers), so callers may keep it. Indexes store weights as float32
 * (a weight below its range becomes 0 and is dropped there). INVALID_ARGUMENT, with `field`,
 * `expected` and `received` in the details, for: a non-object (null, array, primitive), a weight
 * that is not a finite number >= 0 that stays finite as a float32, an empty term, a term over 256 characters or not well-formed
 * UTF-16 (a lone surrogate: stored as UTF-8 it would merge with another term), or more than
 * 4,096 non-zero terms. `where` names the value in messages (e.g. `record "a" field "sparse"`).
 */
export function checkSparseVector(value: unknown, where: string): SparseInput {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw new QuiverError('INVALID_ARGUMENT', `${where}: a sparse vector must be an object of term -> weight, got ${describe(value)}`, {
      field: where, expected: 'object of term -> finite weight >= 0', received: describe(value),
    });
  }
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  let n = 0;
  for (const term of Object.keys(value)) {
    const w = (value as Record<string, unknown>)[term];
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0 || Math.fround(w) === Infinity) {
      throw new QuiverError('INVALID_ARGUMENT', `${where}: weight of term "${term.slice(0, 64)}" must be a finite number >= 0 (within float32 range), got ${typeof w === 'number' ? String(w) : describe(w)}`, {
        field: where, term, expected: 'finite number >= 0', received: typeof w === 'number' ? String(w) : describe(w),
      });
    }
    if (term.length === 0) {
      throw new QuiverError('INVALID_ARGUMENT', `${where}: a sparse vector term must not be empty`, { field: where, expected: 'non-empty term', received: '' });
    }
    if (term.length > SPARSE_MAX_TERM_LENGTH) {
      throw new QuiverError('INVALID_ARGUMENT', `${where}: term "${term.slice(0, 32)}..." has ${term.length} characters, more than ${SPARSE_MAX_TERM_LENGTH}`, {
        field: where, expected: `term of at most ${SPARSE_MAX_TERM_LENGTH} characters`, received: term.length,
      });
    }
    checkWellFormed(term, `${where}: term`, { field: where });
    if (w === 0) continue;
    if (++n > SPARSE_MAX_TERMS) {
      throw new QuiverError('INVALID_ARGUMENT', `${where}: a sparse vector holds at most ${SPARSE_MAX_TERMS} non-zero terms`, {
        field: where, expected: `at most ${SPARSE_MAX_TERMS} terms`, received: Object.keys(value).length,
      });
    }
    out[term] = w;
  }
  return out;
}

/** Search settings; every knob has a default (DEFAULT_SEARCH in src/sparse/sparse-index.ts). */
export interface SparseSearchParams {
  /**
   * 'approx' (default when the index has its approximate structures, i.e. at least
   * `approxMinRows` rows at build) walks the pruned, blocked posting lists; 'exact' runs MaxScore
   * over the full lists and returns exactly the brute-force top-k. An index without the
   * approximate structures searches exactly in either mode.
   */
  mode?: 'approx' | 'exact';
  /** Approx: the query's heaviest terms whose lists are walked (the full query scores the rows). Default: DEFAULT_SEARCH. */
  queryTerms?: number;
  /**
   * Approx: a block's rows are scored only when its summary score reaches threshold / heapFactor
   * (threshold = the k-th best score so far), as in Seismic. Summaries are max vectors (over the
   * block's rows, so they overestimate) pruned to a share of their mass and quantized (so they can
   * underestimate): below 1 skips more blocks, above 1 scores more. Default: DEFAULT_SEARCH.
   */
  heapFactor?: number;
}

export interface SparseSearchResult {
  /** Row ordinals, best first (ties by lower ordinal). */
  ords: Uint32Array;
  scores: Float32Array;
  count: number;
  /** Posting entries read: doc ids of the lists (exact) or of the blocks (approx) walked. */
  postingsScored: number;
  /** Rows scored in full through the forward index. */
  docsScored: number;
  /** Approx: blocks whose summary fell below the bar (0 in exact mode). */
  blocksSkipped: number;
}

/** What search needs of a segment's sparse field (the sealed index, or the mutable segment's exact postings). */
export interface SparseSearcher {
  search(query: SparseInput, k: number, excluded?: Uint32Array, params?: SparseSearchParams): SparseSearchResult;
}

export interface SparseIndex {
  /** Rows (ordinals 0..count-1; rows without a value are allowed). */
  readonly count: number;
  /** Bytes held by the index (typed arrays, kernel memory, dictionary estimate). */
  readonly memoryBytes: number;
  /** Whether the approximate (Seismic) structures were built. */
  readonly hasApprox: boolean;
  /**
   * Top-k rows by inner product with the query; excluded: optional bitset (bit i = skip row i,
   * like deletes/filters: see src/util/bitset.ts), never returned. Best first, ties by lower
   * ordinal. Rows scoring 0 (no shared term) are never returned. The query is validated
   * (checkSparseVector); terms unknown to the segment contribute nothing.
   */
  search(query: SparseInput, k: number, excluded?: Uint32Array, params?: SparseSearchParams): SparseSearchResult;
  /** The stored vector of a row (for merges and for returning values), or undefined. */
  vectorAt(ord: number): SparseInput | undefined;
  /**
   * Max possible score contribution of a term per unit of query weight: its largest weight in
   * this segment (0 when absent), for cross-segment thresholds.
   */
  termUpperBound(term: string): number;
  /** Frees the kernel memory the index holds; the index is unusable afterwards. */
  release(): void;
}
