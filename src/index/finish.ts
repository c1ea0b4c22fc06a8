import type { Reranker, RerankCandidates } from '../query/rerank.js';
import type { QueryCounters, SearchResultBatch } from './types.js';

/**
 * The end of one query, shared by the approximate indexes (IVF lists and rows, HNSW walks).
 */

/**
 * Candidates into rerank order: keys f32[n] (estimates, or optimistic scores under the bound rule)
 * of the ordinals ords u32[n], in any order. Under the bound rule a candidate whose optimistic
 * score is below `floor` (the k-th best pessimistic score; null when fewer than k were seen)
 * cannot enter the top k and is dropped before sorting (most are; should fewer than k remain,
 * none is). Sorted best first, ties by the smaller ordinal.
 */
export function rankCandidates(keys: Float32Array, ords: Uint32Array, k: number, floor: number | null): RerankCandidates {
  const size = keys.length;
  let order: number[] = [];
  if (floor !== null) {
    for (let i = 0; i < size; i++) if (keys[i] >= floor) order.push(i);
    if (order.length < Math.min(k, size)) order = [];
  }
  if (order.length === 0) for (let i = 0; i < size; i++) order.push(i);
  order.sort((x, y) => keys[y] - keys[x] || ords[x] - ords[y]);
  const count = order.length;
  const sOrds = new Uint32Array(count), sKeys = new Float32Array(count);
  for (let i = 0; i < count; i++) { sOrds[i] = ords[order[i]]; sKeys[i] = keys[order[i]]; }
  return { ords: sOrds, keys: sKeys, count };
}

/**
 * Query qi's hits into row qi of `out` from its candidates, best first: reranked by the rule
 * (`byBounds`: best-optimistic first until none left can beat the k-th exact score; else every
 * candidate), counting the vectors rescored, or the first k when there is no reranker.
 */
export function writeHits(out: SearchResultBatch, qi: number, query: Float32Array, list: RerankCandidates, reranker: Reranker | null, byBounds: boolean, counters: QueryCounters): void {
  const k = out.k;
  if (!reranker) {
    const m = Math.min(k, list.count);
    out.ords.set(list.ords.subarray(0, m), qi * k);
    out.scores.set(list.keys.subarray(0, m), qi * k);
    out.counts[qi] = m;
    return;
  }
  const res = byBounds ? reranker.rerankByBounds(query, list, k) : reranker.rerankAll(query, list, k);
  out.ords.set(res.ords.subarray(0, res.count), qi * k);
  out.scores.set(res.scores.subarray(0, res.count), qi * k);
  out.counts[qi] = res.count;
  counters.reranked[qi] += res.reranked;
}
