import { compileFilter } from '../filter/compile.js';
import { planSegment, type FilterPath } from '../filter/plan.js';
import type { ParsedFilter } from '../filter/types.js';
import type { IndexSearchParams, SearchResultBatch } from '../index/types.js';
import { newCounters, type QueryCounters } from '../index/types.js';
import { bitsetWords } from '../util/bitset.js';
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
  /** With a filter: what the planner saw and chose for each segment with live rows (the same for every query). */
  filter?: SegmentFilterReport[];
}

/** The planner's work on one segment. */
export interface SegmentFilterReport {
  segment: number;
  /** Live rows of the segment. */
  live: number;
  /** Live rows the filter matches (counted exactly on the compiled bitset). */
  matched: number;
  path: FilterPath;
}

/**
 * The k best live rows for each prepared query (f32[nq * dimension]) across the snapshot's
 * segments, each searched through its VectorIndex with its tombstones as the exclusion mask,
 * merged best first. Ties order by segment age, then ordinal (older first).
 *
 * With a filter (parsed once for the search), each segment compiles it to the bitset of its live
 * matching rows and the planner (src/filter/plan.ts) picks, per segment, an exact scan of those
 * rows or the index search with every other row masked.
 */
export function searchSnapshot(snap: Snapshot, queries: Float32Array, nq: number, k: number, params: IndexSearchParams, filter?: ParsedFilter): SnapshotSearchResult {
  const segs = snap.segments.filter((s) => s.live > 0);
  const counters = newCounters(nq);
  const per: { seg: Segment; res: SearchResultBatch }[] = [];
  const reports: SegmentFilterReport[] = [];
  for (const s of segs) {
    if (!filter && !params.exact) {
      per.push({ seg: s, res: s.index.search({ queries, nq, k: Math.min(k, s.live), excluded: s.deleted > 0 ? s.tombstones : undefined, params, counters }) });
      continue;
    }
    const { bits, matched } = filter ? compileFilter(filter, s) : liveRows(s);
    const path = matched === 0 ? 'none' : params.exact ? 'exact' : planSegment(s, matched, k, params);
    reports.push({ segment: s.number, live: s.live, matched, path });
    if (path === 'none') continue;
    const kk = Math.min(k, matched);
    if (path === 'exact') {
      const ords = setBits(bits, matched);
      if (!params.exact && s.index.searchRows) {
        // the index scores the matching rows' codes in memory (and reranks), instead of reading each one's vector
        per.push({ seg: s, res: s.index.searchRows({ queries, nq, k: kk, params, counters }, ords, matched) });
      } else {
        per.push({ seg: s, res: s.searchRows(queries, nq, kk, ords, matched) });
        for (let q = 0; q < nq; q++) counters.scanned[q] += matched;
      }
    } else {
      // every live row matches: only the deletes are masked
      const excluded = matched === s.live ? (s.deleted > 0 ? s.tombstones : undefined) : complement(bits, s.count);
      const filtered = matched < s.live ? { ...params, eligible: matched / s.live } : params;
      per.push({ seg: s, res: s.index.search({ queries, nq, k: kk, excluded, params: filtered, counters }) });
    }
  }
  const hits: SnapshotHit[][] = [];
  for (let q = 0; q < nq; q++) {
    const list: (SnapshotHit & { si: number })[] = [];
    per.forEach(({ seg, res: r }, si) => {
      // + 0: an L2 distance of 0 negated is -0
      for (let i = 0; i < r.counts[q]; i++) list.push({ segment: seg, ord: r.ords[q * r.k + i], score: r.scores[q * r.k + i] + 0, si });
    });
    if (per.length > 1) list.sort((a, b) => b.score - a.score || a.si - b.si || a.ord - b.ord);
    hits.push(list.slice(0, k).map(({ segment, ord, score }) => ({ segment, ord, score })));
  }
  return { hits, counters, segmentsSearched: segs.length, ...(filter ? { filter: reports } : {}) };
}

/** The set bits of a bitset in increasing order: u32[count]. */
function setBits(bits: Uint32Array, count: number): Uint32Array {
  const out = new Uint32Array(count);
  let at = 0;
  for (let w = 0; w < bits.length; w++) {
    let word = bits[w] | 0;
    while (word !== 0) {
      const t = word & -word;
      out[at++] = (w << 5) + 31 - Math.clz32(t);
      word ^= t;
    }
  }
  return out;
}

/** The rows a filtered index search must skip: NOT(matching) over n rows (tail bits set too). */
function complement(bits: Uint32Array, n: number): Uint32Array {
  const out = new Uint32Array(bitsetWords(n));
  for (let w = 0; w < out.length; w++) out[w] = ~bits[w];
  return out;
}

/** Every live row of `s` as a bitset (an exact search without a filter). */
function liveRows(s: Segment): { bits: Uint32Array; matched: number } {
  const words = Math.ceil(s.count / 32);
  const bits = new Uint32Array(words);
  for (let w = 0; w < words; w++) {
    const valid = w === words - 1 && s.count % 32 ? (1 << (s.count % 32)) - 1 : -1;
    bits[w] = ~(s.tombstones[w] ?? 0) & valid;
  }
  return { bits, matched: s.live };
}
