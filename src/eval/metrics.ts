/**
 * Information-retrieval metrics with trec_eval's definitions, so figures compare with published
 * runs (Anserini, Pyserini, BEIR). Browser-safe.
 *
 * Conventions (trec_eval 9 with `-c`):
 * - A document is relevant when its grade is > 0; unjudged documents are not relevant.
 * - The queries evaluated are those of the qrels. A query of the qrels missing from the run scores 0
 *   on every metric (`-c`); a query of the run absent from the qrels is skipped. A query whose
 *   judgments are all non-relevant is evaluated too and scores 0 everywhere (trec_eval does the same).
 * - The run gives each query's documents best first; a document listed twice is an error (trec_eval
 *   would drop one, silently changing the ranks below it).
 *
 * Metric names: `map` (average precision over all relevant documents), `map@k` (trec_eval map_cut),
 * `P@k`, `recall@k`, `ndcg@k` (trec_eval ndcg_cut: gain = grade, discount log2(rank + 1), ideal
 * ranking from all judged relevant documents), `ndcg` (no cutoff), `mrr@k` (reciprocal rank of the
 * first relevant document within k, 0 if none; `mrr` without cutoff is trec_eval recip_rank).
 * Names are case-insensitive (`p@30` = `P@30`); results are keyed by the name as given.
 */
import { QuiverError } from '../errors.js';

/** Relevance judgments: query id -> document id -> grade (> 0 means relevant). */
export type Qrels = ReadonlyMap<string, ReadonlyMap<string, number>>;
/** A run: query id -> document ids, best first. */
export type Run = ReadonlyMap<string, readonly string[]>;

export interface Evaluation {
  /** The metric names evaluated, as given. */
  readonly metrics: readonly string[];
  /** Each evaluated query's values, keyed by metric name. */
  readonly perQuery: ReadonlyMap<string, Readonly<Record<string, number>>>;
  /** The mean over the evaluated queries of each metric (0 when no query was evaluated). */
  readonly mean: Readonly<Record<string, number>>;
  /** How many queries were evaluated (the qrels' queries). */
  readonly queries: number;
  /** Qrels queries the run does not contain (scored 0). */
  readonly missingFromRun: readonly string[];
}

export const DEFAULT_METRICS: readonly string[] = ['map', 'P@10', 'recall@100', 'ndcg@10', 'mrr@10'];

type MetricKind = 'map' | 'p' | 'recall' | 'ndcg' | 'mrr';
interface ParsedMetric { name: string; kind: MetricKind; cutoff: number /* Infinity: none */ }

const METRIC_NAME = /^(map|p|recall|ndcg|mrr)(?:@([1-9][0-9]*))?$/i;

function parseMetric(name: string): ParsedMetric {
  const match = typeof name === 'string' ? METRIC_NAME.exec(name) : null;
  if (match === null) {
    throw new QuiverError('UNKNOWN_SPEC', `unknown metric ${JSON.stringify(name)}; expected map, map@k, P@k, recall@k, ndcg, ndcg@k, mrr or mrr@k`, {
      received: name, expected: 'map | map@k | P@k | recall@k | ndcg | ndcg@k | mrr | mrr@k',
    });
  }
  const kind = match[1].toLowerCase() as MetricKind;
  const cutoff = match[2] === undefined ? Infinity : Number(match[2]);
  if ((kind === 'p' || kind === 'recall') && cutoff === Infinity) {
    throw new QuiverError('UNKNOWN_SPEC', `metric ${JSON.stringify(name)} needs a cutoff, e.g. ${kind === 'p' ? 'P@10' : 'recall@100'}`, { received: name });
  }
  return { name, kind, cutoff };
}

/** Everything the metrics need about one query's ranking, computed in one pass over it. */
interface RankedRelevance {
  /** Grade of the document at each rank (0 for non-relevant or unjudged), up to the deepest cutoff. */
  grades: Float64Array;
  /** Number of judged relevant documents of the query. */
  relevantCount: number;
  /** All relevant grades, best first (the ideal ranking for nDCG). */
  idealGrades: number[];
}

function rankRelevance(queryId: string, judgments: ReadonlyMap<string, number>, ranking: readonly string[], depth: number): RankedRelevance {
  const length = Math.min(ranking.length, depth);
  const grades = new Float64Array(length);
  const seen = new Set<string>();
  for (let r = 0; r < ranking.length; r++) {
    const docId = ranking[r];
    if (seen.has(docId)) {
      throw new QuiverError('INVALID_ARGUMENT', `the run lists document ${JSON.stringify(docId)} twice for query ${JSON.stringify(queryId)}`, {
        queryId, docId, rank: r + 1,
      });
    }
    seen.add(docId);
    if (r < length) {
      const grade = judgments.get(docId);
      grades[r] = grade !== undefined && grade > 0 ? grade : 0;
    }
  }
  const idealGrades: number[] = [];
  for (const grade of judgments.values()) if (grade > 0) idealGrades.push(grade);
  idealGrades.sort((a, b) => b - a);
  return { grades, relevantCount: idealGrades.length, idealGrades };
}

function metricValue(metric: ParsedMetric, ranked: RankedRelevance): number {
  const { grades, relevantCount, idealGrades } = ranked;
  if (relevantCount === 0) return 0;
  const limit = Math.min(grades.length, metric.cutoff);
  switch (metric.kind) {
    case 'map': {
      let found = 0;
      let sumPrecision = 0;
      for (let r = 0; r < limit; r++) {
        if (grades[r] > 0) sumPrecision += ++found / (r + 1);
      }
      return sumPrecision / relevantCount;
    }
    case 'p':
    case 'recall': {
      let found = 0;
      for (let r = 0; r < limit; r++) if (grades[r] > 0) found++;
      // trec_eval divides by k even when fewer than k documents were retrieved.
      return metric.kind === 'p' ? found / metric.cutoff : found / relevantCount;
    }
    case 'ndcg': {
      let dcg = 0;
      for (let r = 0; r < limit; r++) if (grades[r] > 0) dcg += grades[r] / Math.log2(r + 2);
      let idealDcg = 0;
      const idealLimit = Math.min(idealGrades.length, metric.cutoff);
      for (let r = 0; r < idealLimit; r++) idealDcg += idealGrades[r] / Math.log2(r + 2);
      return dcg / idealDcg;
    }
    case 'mrr': {
      for (let r = 0; r < limit; r++) if (grades[r] > 0) return 1 / (r + 1);
      return 0;
    }
  }
}

/**
 * Evaluates `run` against `qrels` on `metrics` (default DEFAULT_METRICS) with trec_eval -c
 * semantics (see the file comment): per-query values and their means over the qrels' queries.
 */
export function evaluate(qrels: Qrels, run: Run, metrics: readonly string[] = DEFAULT_METRICS): Evaluation {
  if (!(qrels instanceof Map) || !(run instanceof Map)) {
    throw new QuiverError('INVALID_ARGUMENT', 'evaluate(qrels, run) takes two Maps keyed by query id', {});
  }
  if (!Array.isArray(metrics) || metrics.length === 0) {
    throw new QuiverError('INVALID_ARGUMENT', 'metrics must be a non-empty array of metric names', { received: metrics });
  }
  const parsed = metrics.map(parseMetric);
  const depth = Math.max(...parsed.map((m) => m.cutoff));
  const perQuery = new Map<string, Record<string, number>>();
  const sums = new Float64Array(parsed.length);
  const missingFromRun: string[] = [];
  for (const [queryId, judgments] of qrels) {
    let ranking = run.get(queryId);
    if (ranking === undefined) {
      missingFromRun.push(queryId);
      ranking = [];
    }
    const ranked = rankRelevance(queryId, judgments, ranking, depth);
    const values: Record<string, number> = {};
    parsed.forEach((metric, i) => {
      const value = metricValue(metric, ranked);
      values[metric.name] = value;
      sums[i] += value;
    });
    perQuery.set(queryId, values);
  }
  const mean: Record<string, number> = {};
  parsed.forEach((metric, i) => { mean[metric.name] = perQuery.size === 0 ? 0 : sums[i] / perQuery.size; });
  return { metrics: [...metrics], perQuery, mean, queries: perQuery.size, missingFromRun };
}
