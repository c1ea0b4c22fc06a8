import { QuiverError } from '../errors.js';
import type { ExactScorer } from '../index/types.js';
import type { Kernels } from '../kernels/types.js';

/**
 * Reranking with full vectors: candidates found on compressed codes are scored exactly through
 * an ExactScorer and the exact top-k is returned, with the number of exact scores computed.
 *
 * Two rules:
 * - **Oversampling** (`{ factor }`): the scan keeps the factor*k best candidates by estimated
 *   score; all of them are scored exactly.
 * - **Bound-driven** (`{ bounds: true }`, bounded quantizers only): the scan keeps candidates by
 *   optimistic score (estimate + error bound). They are visited best-optimistic first and the
 *   visit stops as soon as the next optimistic score cannot beat the current k-th exact score:
 *   a candidate whose bound says it cannot enter the top-k is never reranked. The result is
 *   exact whenever the bounds hold (RaBitQ: with its stated confidence).
 */
export type RerankRule = { readonly factor: number } | { readonly bounds: true };

/** The default oversampling factor of a bare 'Rerank' on an unbounded quantizer. */
export const DEFAULT_RERANK_FACTOR = 4;

/** Candidates of one query, best first by `keys` (estimates, or optimistic scores for bound-driven). */
export interface RerankCandidates {
  /** u32[count] ordinals. */
  readonly ords: Uint32Array;
  /** f32[count], non-increasing. */
  readonly keys: Float32Array;
  readonly count: number;
}

export interface RerankResult {
  /** u32[count] ordinals, best first (exact scores, ties by smaller ordinal). */
  ords: Uint32Array;
  /** f32[count] exact scores. */
  scores: Float32Array;
  count: number;
  /** Vectors scored exactly for this query. */
  reranked: number;
}

/** Checks a rerank rule; INVALID_ARGUMENT naming what is wrong. */
export function checkRerankRule(rule: unknown): RerankRule {
  if (rule !== null && typeof rule === 'object') {
    const r = rule as Record<string, unknown>;
    if ('bounds' in r && r.bounds === true && !('factor' in r)) return { bounds: true };
    if ('factor' in r && !('bounds' in r)) {
      const f = r.factor;
      if (typeof f === 'number' && Number.isFinite(f) && f >= 1 && f <= 1000) return { factor: f };
    }
  }
  throw new QuiverError('INVALID_ARGUMENT', 'rerank must be { factor: number in [1, 1000] } or { bounds: true }', {
    name: 'rerank', expected: ['{ factor: 1..1000 }', '{ bounds: true }'], received: rule,
  });
}

/**
 * For the bound-driven rule: turns a block's estimates and error half-widths (f32[n] each at
 * `scores` and `bounds` in kernel memory) in place into the optimistic scores (estimate + bound, at
 * `scores`) and the pessimistic ones (estimate - bound, at `bounds`): three kernel calls, no loop.
 */
export function toScoreInterval(kern: Kernels, scores: number, bounds: number, n: number): void {
  kern.addScaledInPlace(scores, bounds, n, 1);
  kern.affineInPlace(bounds, n, -2, 0);
  kern.addScaledInPlace(bounds, scores, n, 1);
}

/** Candidates to keep from the scan for `rule`: ceil(factor * k), or `boundCandidates` for the bound rule. */
export function candidatesFor(rule: RerankRule, k: number, boundCandidates: number): number {
  return 'factor' in rule ? Math.ceil(rule.factor * k) : Math.max(k, boundCandidates);
}

/** Reusable buffers of one reranking pass (grown on demand; no per-candidate objects). */
export class Reranker {
  private batchOrds = new Uint32Array(64);
  private batchScores = new Float32Array(64);
  private topScores = new Float32Array(16);
  private topOrds = new Uint32Array(16);

  constructor(private readonly exact: ExactScorer) {}

  /**
   * Oversampling: scores every candidate exactly and returns the exact top-k.
   * query: f32[dimension] as prepared for search (unit for cosine).
   */
  rerankAll(query: Float32Array, cands: RerankCandidates, k: number): RerankResult {
    return this.run(query, cands, k, false);
  }

  /**
   * Bound-driven: cands.keys are optimistic scores (estimate + bound), best first; stops when the
   * next optimistic score is not above the current k-th exact score.
   */
  rerankByBounds(query: Float32Array, cands: RerankCandidates, k: number): RerankResult {
    return this.run(query, cands, k, true);
  }

  private run(query: Float32Array, cands: RerankCandidates, k: number, stopOnKeys: boolean): RerankResult {
    if (this.topScores.length < k) { this.topScores = new Float32Array(k); this.topOrds = new Uint32Array(k); }
    const topS = this.topScores, topO = this.topOrds;
    let size = 0; // exact top-k so far, sorted best first (insertion; k is small)
    let reranked = 0;
    let i = 0;
    const total = cands.count;
    while (i < total) {
      if (stopOnKeys && size === k && !(cands.keys[i] > topS[k - 1])) break;
      // score a small batch: the first k must all be scored anyway, then a few at a time so
      // that the stop rule is checked often without crossing into the scorer per vector
      let batch = stopOnKeys ? (size < k ? k - size : 8) : total - i;
      batch = Math.min(batch, total - i);
      if (this.batchOrds.length < batch) { this.batchOrds = new Uint32Array(batch); this.batchScores = new Float32Array(batch); }
      const bo = this.batchOrds, bs = this.batchScores;
      bo.set(cands.ords.subarray(i, i + batch));
      this.exact.scoreOrdinals(query, bo, batch, bs);
      reranked += batch;
      for (let b = 0; b < batch; b++) {
        const s = bs[b], o = bo[b];
        if (s !== s) continue; // NaN never enters
        if (size === k && !better(s, o, topS[k - 1], topO[k - 1])) continue;
        let pos = size < k ? size++ : k - 1;
        while (pos > 0 && better(s, o, topS[pos - 1], topO[pos - 1])) {
          topS[pos] = topS[pos - 1]; topO[pos] = topO[pos - 1]; pos--;
        }
        topS[pos] = s; topO[pos] = o;
      }
      i += batch;
    }
    return { ords: topO.slice(0, size), scores: topS.slice(0, size), count: size, reranked };
  }
}

function better(s: number, o: number, ts: number, to: number): boolean {
  return s > ts || (s === ts && o < to);
}
