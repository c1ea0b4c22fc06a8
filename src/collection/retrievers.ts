import { compileFilter } from '../filter/compile.js';
import type { ParsedFilter } from '../filter/types.js';
import type { SparseValue } from '../fields/types.js';
import type { SparseSearchParams } from '../sparse/types.js';
import { exhaustiveTextSegment, searchTextSegment, TopHits, weighClauses, type Bm25Params, type TextSearchCounters } from '../text/bm25.js';
import { bitsetWords } from '../util/bitset.js';
import type { Snapshot, SnapshotHit } from './searcher.js';
import type { Segment } from './segment.js';

/**
 * The lexical and learned-sparse retrievers over a snapshot: each segment searched with its
 * exclusion mask (deletes, and the rows a filter rejects), results merged best first with ties
 * to the older segment, then the lower ordinal (as dense search does).
 */

/** What a segment must skip: its tombstones, or with a filter every row the filter does not match. */
function exclusionOf(s: Segment, filter: ParsedFilter | undefined): { excluded: Uint32Array | undefined; matched: number } {
  if (!filter) return { excluded: s.deleted > 0 ? s.tombstones : undefined, matched: s.live };
  const { bits, matched } = compileFilter(filter, s);
  const out = new Uint32Array(bitsetWords(s.count));
  for (let w = 0; w < out.length; w++) out[w] = ~bits[w];
  return { excluded: out, matched };
}

export interface TextQuery {
  /** Analysed query terms per text field (duplicates count). */
  terms: ReadonlyMap<string, readonly string[]>;
  /** Per-field boosts. */
  boosts: ReadonlyMap<string, number>;
  params: Bm25Params;
  /** Score every matching row instead of pruning (the reference; slower). */
  exhaustive: boolean;
}

export interface RetrieverResult {
  hits: SnapshotHit[];
  /** Text: documents scored in full; sparse: rows scored. */
  scored: number;
  /** Text: row windows skipped on block bounds; sparse: blocks skipped on summaries. */
  skipped: number;
}

/** BM25 top-k over the snapshot with statistics summed over its segments. */
export function searchText(snap: Snapshot, q: TextQuery, k: number, filter?: ParsedFilter): RetrieverResult {
  const segs = snap.segments.filter((s) => s.live > 0);
  // statistics over every segment of the snapshot (deleted rows included, as documented in bm25.ts)
  const clauses = weighClauses(snap.segments, q.terms, q.boosts);
  const top = new TopHits(k);
  const counters: TextSearchCounters = { scored: 0, windowsSkipped: 0 };
  if (clauses.length) {
    segs.forEach((s, i) => {
      const { excluded, matched } = exclusionOf(s, filter);
      if (matched === 0) return;
      (q.exhaustive ? exhaustiveTextSegment : searchTextSegment)(s, clauses, q.params, top, i, excluded, counters);
    });
  }
  return { hits: top.sorted().map((h) => ({ segment: segs[h.seg], ord: h.ord, score: h.score })), scored: counters.scored, skipped: counters.windowsSkipped };
}

/** Inner-product top-k over a sparse field. */
export function searchSparse(snap: Snapshot, field: string, query: SparseValue, k: number, params: SparseSearchParams, filter?: ParsedFilter): RetrieverResult {
  const segs = snap.segments.filter((s) => s.live > 0);
  const all: (SnapshotHit & { si: number })[] = [];
  let scored = 0, skipped = 0;
  segs.forEach((s, si) => {
    const index = s.sparseSearcher(field);
    if (!index) return;
    const { excluded, matched } = exclusionOf(s, filter);
    if (matched === 0) return;
    const r = index.search(query, k, excluded, params);
    scored += r.docsScored;
    skipped += r.blocksSkipped;
    for (let i = 0; i < r.count; i++) all.push({ segment: s, ord: r.ords[i], score: r.scores[i], si });
  });
  all.sort((a, b) => b.score - a.score || a.si - b.si || a.ord - b.ord);
  return { hits: all.slice(0, k).map(({ segment, ord, score }) => ({ segment, ord, score })), scored, skipped };
}
