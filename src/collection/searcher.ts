import type { IndexSearchParams, SearchResultBatch } from '../index/types.js';
import { newCounters, type QueryCounters } from '../index/types.js';
import type { Segment } from './segment.js';

/**
 * A consistent view of the collection for one search: the segments in search order, each
 * retained until release(). Seals and merges may install new segments meanwhile; a retired
 * segment's memory and file stay valid until every snapshot holding it is released, so a search
 * may run asynchronously (or, later, in a worker) without reading freed memory.
 */
export class Snapshot {
  private released = false;
  constructor(readonly segments: readonly Segment[]) {
    for (const s of segments) s.retain();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const s of this.segments) s.release();
  }
}

export interface SnapshotHit { segment: Segment; ord: number; score: number }

export interface SnapshotSearchResult {
  hits: SnapshotHit[][];
  /** Per query: rows or codes scored, vectors reranked. */
  counters: QueryCounters;
  /** Segments searched (those with live rows). */
  segmentsSearched: number;
}

/**
 * The k best live rows for each prepared query (f32[nq * dimension]) across the snapshot's
 * segments, each searched through its VectorIndex with its tombstones as the exclusion mask,
 * merged best first. Ties order by segment age, then ordinal (older first).
 */
export function searchSnapshot(snap: Snapshot, queries: Float32Array, nq: number, k: number, params: IndexSearchParams): SnapshotSearchResult {
  const segs = snap.segments.filter((s) => s.live > 0);
  const counters = newCounters(nq);
  const per: SearchResultBatch[] = segs.map((s) => s.index.search({
    queries, nq, k: Math.min(k, s.live), excluded: s.deleted > 0 ? s.tombstones : undefined, params, counters,
  }));
  const hits: SnapshotHit[][] = [];
  for (let q = 0; q < nq; q++) {
    const list: (SnapshotHit & { si: number })[] = [];
    per.forEach((r, si) => {
      // + 0: an L2 distance of 0 negated is -0
      for (let i = 0; i < r.counts[q]; i++) list.push({ segment: segs[si], ord: r.ords[q * r.k + i], score: r.scores[q * r.k + i] + 0, si });
    });
    if (per.length > 1) list.sort((a, b) => b.score - a.score || a.si - b.si || a.ord - b.ord);
    hits.push(list.slice(0, k).map(({ segment, ord, score }) => ({ segment, ord, score })));
  }
  return { hits, counters, segmentsSearched: segs.length };
}
