import { QuiverError } from '../errors.js';

/**
 * Fusing ranked lists from several retrievers (BM25, dense, sparse) into one ranking.
 *
 * - 'weighted' (the default): each list's scores normalised, then score(d) = sum_r w_r * norm_r(d).
 *   'zscore' (the default) subtracts the list's mean and divides by its standard deviation;
 *   'minmax' maps a list onto [0, 1] (a list of equal scores maps to 1). A document a list
 *   misses gets that list's lowest normalised score (it ranked below everything the list returned).
 * - 'rrf' (reciprocal rank fusion, Cormack et al. 2009): score(d) = sum_r w_r / (k + rank_r(d)),
 *   ranks from 1; a list that misses d adds nothing. k = 60 by default (the paper's constant).
 * Weights default to 1 per retriever.
 *
 * Why z-scored weighted sums by default: among RRF, min-max and z-score with equal weights, it
 * had the best nDCG@10 on the selection half of CACM's judged queries (odd query ids; the even
 * half is reported separately in bench/README-text.md): rank fusion gives a weak retriever the
 * same say as a strong one, while scores carry how sure each retriever is (Bruch et al. 2023
 * find convex combinations of normalised scores ahead of RRF as well).
 */
export type FusionSpec =
  | { method: 'rrf'; k?: number; weights?: Partial<Record<RetrieverName, number>> }
  | { method: 'weighted'; normalize?: 'minmax' | 'zscore'; weights?: Partial<Record<RetrieverName, number>> };

export type RetrieverName = 'text' | 'vector' | 'sparse';
export const RETRIEVERS: readonly RetrieverName[] = ['text', 'vector', 'sparse'];

export const DEFAULT_RRF_K = 60;
export const DEFAULT_FUSION: FusionSpec = Object.freeze({ method: 'weighted', normalize: 'zscore' }) as FusionSpec;

/** One retriever's ranked list: keys (documents) best first with their scores. */
export interface RankedList {
  name: RetrieverName;
  keys: readonly string[];
  scores: readonly number[];
}

export interface FusedEntry {
  key: string;
  score: number;
  /** Rank (from 1) and raw score in each list that holds the document. */
  ranks: Partial<Record<RetrieverName, number>>;
  scores: Partial<Record<RetrieverName, number>>;
}

/** Checks a user's fusion option; INVALID_ARGUMENT naming the part otherwise. */
export function checkFusion(f: unknown): FusionSpec {
  if (f === undefined) return DEFAULT_FUSION;
  const bad = (why: string, received: unknown = f): never => {
    throw new QuiverError('INVALID_ARGUMENT', `fusion ${why}`, { field: 'fusion', expected: "{ method: 'rrf', k? , weights? } or { method: 'weighted', normalize?: 'minmax' | 'zscore', weights? }", received: typeof received === 'object' ? JSON.stringify(received) : String(received) });
  };
  if (typeof f !== 'object' || f === null || Array.isArray(f)) return bad(`must be an object, got ${typeof f}`);
  const o = f as Record<string, unknown>;
  const allowed = o.method === 'rrf' ? ['method', 'k', 'weights'] : o.method === 'weighted' ? ['method', 'normalize', 'weights'] : null;
  if (!allowed) return bad(`method must be 'rrf' or 'weighted', got ${String(o.method)}`, o.method);
  for (const key of Object.keys(o)) if (!allowed.includes(key)) bad(`has unknown option "${key}" (allowed: ${allowed.join(', ')})`, key);
  let weights: Partial<Record<RetrieverName, number>> | undefined;
  if (o.weights !== undefined) {
    if (typeof o.weights !== 'object' || o.weights === null || Array.isArray(o.weights)) bad('weights must be an object { text?, vector?, sparse? }', o.weights);
    weights = {};
    for (const [name, w] of Object.entries(o.weights as object)) {
      if (!(RETRIEVERS as readonly string[]).includes(name)) bad(`weights name unknown retriever "${name}" (retrievers: ${RETRIEVERS.join(', ')})`, name);
      if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) bad(`weight of ${name} must be a finite number >= 0`, w);
      weights[name as RetrieverName] = w as number;
    }
  }
  if (o.method === 'rrf') {
    if (o.k !== undefined && (typeof o.k !== 'number' || !Number.isFinite(o.k) || o.k < 0)) bad('k must be a finite number >= 0', o.k);
    return { method: 'rrf', k: (o.k as number | undefined) ?? DEFAULT_RRF_K, ...(weights ? { weights } : {}) };
  }
  if (o.normalize !== undefined && o.normalize !== 'minmax' && o.normalize !== 'zscore') bad(`normalize must be 'minmax' or 'zscore'`, o.normalize);
  return { method: 'weighted', normalize: (o.normalize as 'minmax' | 'zscore' | undefined) ?? 'zscore', ...(weights ? { weights } : {}) };
}

/** Fuses `lists` into the best `k` entries, best first; ties by first appearance (list order, then rank). */
export function fuse(lists: readonly RankedList[], spec: FusionSpec, k: number): FusedEntry[] {
  const byKey = new Map<string, FusedEntry & { order: number }>();
  let order = 0;
  for (const l of lists) {
    l.keys.forEach((key, i) => {
      let e = byKey.get(key);
      if (!e) { e = { key, score: 0, ranks: {}, scores: {}, order: order++ }; byKey.set(key, e); }
      e.ranks[l.name] = i + 1;
      e.scores[l.name] = l.scores[i];
    });
  }
  const weight = (n: RetrieverName) => spec.weights?.[n] ?? 1;
  if (spec.method === 'rrf') {
    const c = spec.k ?? DEFAULT_RRF_K;
    for (const e of byKey.values()) {
      for (const l of lists) { const r = e.ranks[l.name]; if (r !== undefined) e.score += weight(l.name) / (c + r); }
    }
  } else {
    for (const l of lists) {
      const norm = normalizer(l.scores, spec.normalize ?? 'zscore');
      const floor = l.scores.length ? Math.min(...l.scores.map(norm)) : 0;
      for (const e of byKey.values()) {
        const s = e.scores[l.name];
        e.score += weight(l.name) * (s === undefined ? floor : norm(s));
      }
    }
  }
  const all = [...byKey.values()];
  all.sort((a, b) => b.score - a.score || a.order - b.order);
  return all.slice(0, k).map(({ key, score, ranks, scores }) => ({ key, score, ranks, scores }));
}

function normalizer(scores: readonly number[], how: 'minmax' | 'zscore'): (s: number) => number {
  if (scores.length === 0) return () => 0;
  if (how === 'minmax') {
    let lo = Infinity, hi = -Infinity;
    for (const s of scores) { if (s < lo) lo = s; if (s > hi) hi = s; }
    return hi > lo ? (s) => (s - lo) / (hi - lo) : () => 1;
  }
  let mean = 0;
  for (const s of scores) mean += s;
  mean /= scores.length;
  let v = 0;
  for (const s of scores) v += (s - mean) * (s - mean);
  const sd = Math.sqrt(v / scores.length);
  return sd > 0 ? (s) => (s - mean) / sd : () => 0;
}
