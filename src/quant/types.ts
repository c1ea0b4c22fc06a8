import type { RowScoring } from '../kernels/graph.js';
import type { Kernels } from '../kernels/types.js';

/**
 * The seam between vector compression and the indexes that scan it (DESIGN.md, "Quantizer").
 *
 * Conventions shared by every implementation:
 * - Scores follow the engine rule, larger is closer: `dot` estimates <q, x>; `l2` estimates
 *   -||q - x||^2. Cosine collections normalise vectors and queries and use `dot`.
 * - Canonical codes are rows: vector i owns bytes [i*codeSize, (i+1)*codeSize), including its
 *   per-vector correction factors (norms, scales). Segments store and address codes by ordinal in
 *   this form. A quantizer whose scan kernel wants another grouping (PQ 4-bit fast-scan: blocks of
 *   32 vectors) declares it in `scanLayout` and packs rows into it; rows remain the stored truth.
 * - Codes and lookup tables are scanned in kernel memory (`Kernels`), one call per block of vectors.
 */
export type QuantMetric = 'dot' | 'l2';

export interface TrainOptions {
  /** Seed for every random choice (rotations, k-means init, subsampling). */
  seed?: number;
  /** Called with the fraction done in [0, 1] during long training (k-means, code search). */
  onProgress?: (fractionDone: number) => void;
  /**
   * Sample queries, row-major f32[nq * dimension], for query-aware training (LeanVec's
   * out-of-distribution projection). Ignored by quantizers that do not use them.
   */
  queries?: Float32Array;
}

/** How codes are grouped for scanning. `blockRows` = 1 means rows are scanned as stored. */
export interface ScanLayout {
  /** Vectors per scan block (1, or e.g. 32 for fast-scan). */
  readonly blockRows: number;
  /** Bytes of one block (= codeSize when blockRows is 1). */
  readonly blockBytes: number;
  /**
   * Packs n row codes (rows: u8[n * codeSize]) into ceil(n / blockRows) blocks in `out`
   * (u8[ceil(n / blockRows) * blockBytes]); rows past n in the last block are zero codes.
   */
  pack(rows: Uint8Array, n: number, out: Uint8Array): void;
}

/** A query prepared against one quantizer: lookup tables, quantized query, constants. */
export interface QueryScorer {
  /**
   * Estimated scores of n vectors whose codes sit at `codesPtr` in kernel memory, in the
   * quantizer's scan layout (ceil(n / blockRows) blocks; n need not be a block multiple).
   * out: f32[n] at `outPtr`. When `boundsPtr` is non-zero and the quantizer is bounded, also
   * writes f32[n] error half-widths there: the true score lies in [est - b, est + b] with the
   * quantizer's stated confidence.
   */
  scoreBlock(codesPtr: number, n: number, outPtr: number, boundsPtr?: number): void;
  /** Frees this scorer's kernel memory; it must not be used afterwards. */
  release(): void;
  /**
   * How to score one row of codes inside a graph search kernel (src/kernels/graph.ts), when
   * this quantizer's codes can be scored there (F16, SQ8, SQ4, LVQ, RaBitQ); absent otherwise. Its pointers
   * live in this scorer's memory.
   */
  readonly rowScoring?: RowScoring;
}

export interface Quantizer {
  /** Canonical spec text, e.g. 'SQ8', 'PQ16x4fs', 'RaBitQ4'; parses back to the same quantizer kind. */
  readonly spec: string;
  /** Input vector dimension. */
  readonly dimension: number;
  readonly metric: QuantMetric;
  readonly kernels: Kernels;
  /** Bytes per vector in row form, including per-vector correction factors. */
  readonly codeSize: number;
  readonly scanLayout: ScanLayout;
  /** Whether scorers report error bounds (RaBitQ), enabling bound-driven reranking. */
  readonly bounded: boolean;
  readonly trained: boolean;
  /** Fewest training vectors accepted (TRAINING_FAILED below it). */
  readonly minTrainingVectors: number;
  /**
   * A 32-bit fingerprint of the trained parameters. Stored beside codes so that codes are never
   * scored by a different quantizer (INCOMPATIBLE_CODES).
   */
  readonly fingerprint: number;
  /** Learns parameters from sample: f32[n * dimension]. TRAINING_FAILED with a reason on bad input. */
  train(sample: Float32Array, n: number, options?: TrainOptions): void;
  /**
   * train(), awaiting `pause()` between slices of its work (of some tens of milliseconds), so
   * that training while a collection serves (a segment's seal) leaves the event loop turns. Same
   * result as train(). Optional: quantizers whose training is short (or that do not derive from
   * QuantizerBase) only have train(); trainQuantizer() picks.
   */
  trainAsync?(sample: Float32Array, n: number, options: TrainOptions & { pause: () => Promise<void> }): Promise<void>;
  /** Encodes vectors: f32[n * dimension] into row codes out: u8[n * codeSize]. */
  encode(vectors: Float32Array, n: number, out: Uint8Array): void;
  /** Reconstructs row codes: u8[n * codeSize] into out: f32[n * dimension]. */
  decode(codes: Uint8Array, n: number, out: Float32Array): void;
  /** Prepares one query (f32[dimension], already normalised for cosine). */
  prepare(query: Float32Array): QueryScorer;
  /** Trained parameters as bytes (with magic, version, spec and checksum); see deserializeQuantizer. */
  serialize(): Uint8Array;
}

/** Trains `q` with trainAsync (pausing between slices) when it has one, else with train(). */
export async function trainQuantizer(q: Quantizer, sample: Float32Array, n: number, options: TrainOptions, pause: () => Promise<void>): Promise<void> {
  if (q.trainAsync) await q.trainAsync(sample, n, { ...options, pause });
  else q.train(sample, n, options);
}
