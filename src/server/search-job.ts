import type { Collection, Hit, RequestStats, SearchOptions, SearchRequest } from '../node.js';

/**
 * What one search route call asks of a collection, in a form that crosses to a search thread
 * (structured clone): a list of requests (one request is a list of one), or a batch of vectors
 * sharing options, which the engine scores in one pass. The same function runs it on a search
 * thread (search-worker.ts) and, with searchThreads 0, on the main thread.
 */
export type SearchJob =
  | { kind: 'requests'; requests: SearchRequest[] }
  | { kind: 'vectors'; vectors: number[][]; options: SearchOptions };

/** One request's (or one vector's) hits and what its search did. */
export interface SearchAnswer {
  hits: Hit[];
  stats: RequestStats;
}

/** Runs `job`; rejects with the engine's QuiverError (INVALID_ARGUMENT, DIMENSION_MISMATCH, ...). */
export async function runSearchJob(col: Collection, job: SearchJob): Promise<SearchAnswer[]> {
  if (job.kind === 'requests') {
    const answers: SearchAnswer[] = [];
    // stats are always gathered (they cost counters only); the route drops them unless asked
    for (const r of job.requests) answers.push(await col.search({ ...r, withStats: true }));
    return answers;
  }
  const { hits, stats } = await col.search(job.vectors, { ...job.options, withStats: true });
  // the shape a one-retriever request answers with, so that every search answers alike
  return hits.map((list, q) => ({
    hits: list.map((h, i) => ({ ...h, ranks: { vector: i + 1 }, scores: { vector: h.score } })),
    stats: { retrievers: ['vector'], vector: { ...stats[q], candidates: list.length, embedded: false } },
  }));
}
