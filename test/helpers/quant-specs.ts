import type { QuantMetric, TrainOptions } from '../../src/quant/types.js';
import { rng } from './random.js';

/**
 * The quantizer specs that the shared suite (test/quant.test.ts) runs against. Each family adds
 * its specs here (one entry per spec), with the tolerances that its own error model promises.
 */
export interface QuantSuiteCase {
  /** Spec text for createQuantizer (may carry transforms: 'ROT,SQ4'). */
  spec: string;
  /** Dimension of the suite's synthetic data (must suit the spec, e.g. divisible by PQ's m). */
  dimension: number;
  metrics: QuantMetric[];
  /**
   * Upper bound of the relative reconstruction error sum ||x - decode(encode(x))||^2 / sum ||x - mean||^2
   * on the suite's data (anisotropic Gaussian; rows unit-normalised for 'dot').
   */
  maxReconstructionError: number;
  /**
   * |scoreBlock estimate - exact score of the decoded vector| <= scoreTolerance * (1 + |exact|).
   * Quantizers that score the decoded vector exactly use ~1e-4 (float rounding); estimators that
   * differ from the decoded vector (RaBitQ) state their own.
   */
  scoreTolerance: number;
  /** Training vectors (default 512; must be >= the quantizer's minTrainingVectors). */
  trainVectors?: number;
  trainOptions?: TrainOptions;
}

/** Sample queries for LeanVec's out-of-distribution fitting: 200 x 37, unit, skewed to a few dimensions. */
function oodQueries(): Float32Array {
  const d = 37, n = 200;
  const r = rng(77);
  const q = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let j = 0; j < d; j++) { const v = (r() * 2 - 1) * (j % 5 === 0 ? 3 : 0.3); q[i * d + j] = v; norm += v * v; }
    for (let j = 0; j < d; j++) q[i * d + j] /= Math.sqrt(norm);
  }
  return q;
}

export const QUANT_SUITE_CASES: QuantSuiteCase[] = [
  { spec: 'F16', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 1e-5, scoreTolerance: 1e-4 },
  { spec: 'SQ8', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 1e-3, scoreTolerance: 1e-4 },
  { spec: 'SQ4', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 0.03, scoreTolerance: 1e-4 },
  // binary: BINf scores the decoded vector exactly; BIN binarises the query too, so its estimate
  // differs from the decoded score by the query's own sign-quantization error (its exact formula
  // is checked in test/quant.test.ts)
  { spec: 'BINf', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 0.6, scoreTolerance: 1e-4 },
  { spec: 'BIN', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 0.6, scoreTolerance: 1 },
  // LVQ rounds the query to i16 for its integer code dots: on raw l2 data (|q - mean| up to ~10)
  // that adds ~1e-4 of the score, far below LVQ's own error
  { spec: 'LVQ8', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 1e-3, scoreTolerance: 5e-4 },
  { spec: 'LVQ4', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 0.05, scoreTolerance: 5e-4 },
  { spec: 'LVQ4x8', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 1e-3, scoreTolerance: 5e-4 },
  { spec: 'LVQ8x4', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 1e-3, scoreTolerance: 5e-4 },
  // transforms in front (exact scores of the decoded vectors; reduction loses the dropped variance)
  // ROT pads 37 -> 64 dimensions: for l2 the estimate also counts the quantization error that
  // lands in the padding, which decoding (back to 37 dimensions) drops
  { spec: 'ROT,SQ8', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 2e-3, scoreTolerance: 5e-3 },
  { spec: 'PCA16,SQ8', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 0.06, scoreTolerance: 1e-4 },
  { spec: 'LeanVec16,SQ8', dimension: 37, metrics: ['dot'], maxReconstructionError: 0.08, scoreTolerance: 1e-4, trainOptions: { queries: oodQueries() } },
  // RaBitQ (src/quant/rabitq.ts): decoding gives the vector whose inner products are the
  // estimator, so for 'dot' scores differ from the decoded vectors' only by the query's
  // quantization; for 'l2' the estimate uses the true residual norm ||x - c||^2 where the
  // decoded vector has ||x - c||^2 / <ō,o>^2, a gap that shrinks as bits grow.
  // (measured on this data: RaBitQ1 dot 0.039, l2 0.96; RaBitQ4 0.0023 / 0.049; RaBitQ3fast 0.0063 / 0.20; RaBitQ8 0.0013 / 0.010)
  { spec: 'RaBitQ1', dimension: 37, metrics: ['dot'], maxReconstructionError: 0.4, scoreTolerance: 0.06 },
  { spec: 'RaBitQ1', dimension: 37, metrics: ['l2'], maxReconstructionError: 0.4, scoreTolerance: 1.5 },
  // RaBitQ1fs: RaBitQ1's rows scanned by fast-scan (u8 tables of 4-dimension groups, finer than the planes' 4-bit query)
  { spec: 'RaBitQ1fs', dimension: 37, metrics: ['dot'], maxReconstructionError: 0.4, scoreTolerance: 0.06 },
  { spec: 'RaBitQ1fs', dimension: 37, metrics: ['l2'], maxReconstructionError: 0.4, scoreTolerance: 1.5 },
  { spec: 'RaBitQ4', dimension: 37, metrics: ['dot'], maxReconstructionError: 0.01, scoreTolerance: 0.005 },
  { spec: 'RaBitQ4', dimension: 37, metrics: ['l2'], maxReconstructionError: 0.01, scoreTolerance: 0.1 },
  { spec: 'RaBitQ3fast', dimension: 37, metrics: ['dot'], maxReconstructionError: 0.04, scoreTolerance: 0.01 },
  { spec: 'RaBitQ3fast', dimension: 37, metrics: ['l2'], maxReconstructionError: 0.04, scoreTolerance: 0.4 },
  { spec: 'RaBitQ8', dimension: 37, metrics: ['dot', 'l2'], maxReconstructionError: 1e-4, scoreTolerance: 0.03 },
  // PQ (src/quant/pq.ts): scores are exact for the decoded vectors, except fast-scan, whose u8
  // lookup tables cost up to m * Δ/2 (measured on this data: dot 0.0041, l2 0.043 relative)
  { spec: 'PQ12x8', dimension: 36, metrics: ['dot', 'l2'], maxReconstructionError: 0.06, scoreTolerance: 1e-4 },
  { spec: 'PQ9x4', dimension: 36, metrics: ['dot', 'l2'], maxReconstructionError: 0.3, scoreTolerance: 1e-4 },
  { spec: 'PQ12x4fs', dimension: 36, metrics: ['dot'], maxReconstructionError: 0.25, scoreTolerance: 0.01 },
  { spec: 'PQ9x4fs', dimension: 36, metrics: ['dot'], maxReconstructionError: 0.3, scoreTolerance: 0.01 },
  { spec: 'PQ9x4fs', dimension: 36, metrics: ['l2'], maxReconstructionError: 0.3, scoreTolerance: 0.1 },
  // OPQ (src/quant/opq.ts): PQ after a learned rotation; exact for decoded vectors except fast-scan
  { spec: 'OPQ12x8', dimension: 36, metrics: ['dot', 'l2'], maxReconstructionError: 0.06, scoreTolerance: 1e-4 },
  { spec: 'OPQ9x4', dimension: 36, metrics: ['dot', 'l2'], maxReconstructionError: 0.2, scoreTolerance: 1e-4 },
  { spec: 'OPQ12x4fs', dimension: 36, metrics: ['dot'], maxReconstructionError: 0.2, scoreTolerance: 0.01 },
  { spec: 'OPQ12x4fs', dimension: 36, metrics: ['l2'], maxReconstructionError: 0.2, scoreTolerance: 0.1 },
];
