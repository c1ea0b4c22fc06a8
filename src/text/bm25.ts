import { NO_MORE_DOCS, type FieldPostings, type PostingCursor } from './postings.js';

/**
 * BM25 top-k over the postings of a snapshot's segments, with collection-wide statistics and
 * block-max MaxScore pruning.
 *
 * Scoring is Lucene's BM25Similarity (what Anserini's regressions use):
 *   score(d) = sum over query terms t of  w_t * tf / (tf + k1 * (1 - b + b * len(d) / avglen))
 *   w_t = boost(field) * count of t in the query * ln(1 + (N - df_t + 0.5) / (df_t + 0.5))
 * with N, avglen and df summed over every segment searched (deleted rows included, as Lucene
 * counts them until a merge drops them), so a document scores the same whatever segment holds it.
 *
 * Pruning (Turtle & Flood's MaxScore with per-block bounds, as Lucene's MaxScoreBulkScorer):
 * clauses are ordered by their list's best possible score; the cheapest prefix whose bounds sum
 * to at most the current k-th score is "non-essential": a document must contain an essential
 * clause to enter the top k, so only the essential lists are walked. Windows of rows where
 * even the essential lists' block bounds cannot beat the k-th score are skipped without decoding;
 * a candidate's non-essential clauses are checked from the largest bound down and abandoned as
 * soon as what is left cannot lift it over the threshold. Every document that survives is scored
 * in full, summing its clauses in query order, so pruned and exhaustive search return the same
 * scores bit for bit, and the same hits (ties: older segment, then lower ordinal).
 */
export interface Bm25Params {
  k1: number;
  b: number;
}

/** Anserini's defaults for BM25 (tuned on MS MARCO and Robust04, not on any set we report). */
export const DEFAULT_BM25: Readonly<Bm25Params> = Object.freeze({ k1: 0.9, b: 0.4 });

/**
 * The length BM25 sees: Lucene stores a text's length in one byte (SmallFloat.intToByte4: exact
 * below 24, then four significant bits) and scores with the decoded value; we keep exact lengths
 * and decode the same way, so scores match Lucene's (and Anserini's published figures: on CACM
 * this is worth 0.0013 MAP against exact lengths). Monotone, so block impacts stay bounds.
 */
export function scoredLength(len: number): number {
  return len < LENGTH_TABLE.length ? LENGTH_TABLE[len] : decodeLength(len);
}

function decodeLength(len: number): number {
  if (len < 24) return len;
  const i = len - 24;
  // longToInt4: keep the 4 most significant bits (the top one implicit), and the shift
  const bits = 32 - Math.clz32(i);
  if (bits < 4) return 24 + i;
  const shift = bits - 4;
  return 24 + (((i >>> shift) & 0x07) | 0x08) * 2 ** shift;
}

/** scoredLength of the lengths most texts have, looked up rather than computed per posting. */
const LENGTH_TABLE = new Uint32Array(1 << 14).map((_, i) => decodeLength(i));

/** Lucene's BM25 idf: never negative, however common the term. */
export function bm25Idf(docCount: number, df: number): number {
  return Math.log(1 + (docCount - df + 0.5) / (df + 0.5));
}

/** One query term in one field, weighted with collection-wide statistics. */
export interface TextClause {
  field: string;
  term: string;
  /** boost * query term count * idf. */
  weight: number;
  /** The field's average length over the segments searched. */
  avgLength: number;
}

/** A segment as text search sees it. */
export interface TextSegment {
  /** The postings of a text field, or null when the segment has none for it. */
  textPostings(field: string): FieldPostings | null;
  readonly count: number;
}

/** Counters of one text search (summed over segments). */
export interface TextSearchCounters {
  /** Documents scored in full. */
  scored: number;
  /** Row windows skipped on block bounds without decoding. */
  windowsSkipped: number;
}

/** The top-k kept across segments: worst entry at the root (lowest score, then latest position). */
export class TopHits {
  readonly scores: number[] = [];
  readonly segs: number[] = [];
  readonly ords: number[] = [];
  constructor(readonly k: number) {}

  get size(): number { return this.scores.length; }
  /** The score to beat once full, else -Infinity. */
  get threshold(): number { return this.scores.length < this.k ? -Infinity : this.scores[0]; }

  /** `true` when (a, position) is worse than (b, position). */
  private worse(i: number, j: number): boolean {
    const s = this.scores;
    return s[i] < s[j] || (s[i] === s[j] && (this.segs[i] > this.segs[j] || (this.segs[i] === this.segs[j] && this.ords[i] > this.ords[j])));
  }

  private swap(i: number, j: number): void {
    const s = this.scores, g = this.segs, o = this.ords;
    [s[i], s[j]] = [s[j], s[i]]; [g[i], g[j]] = [g[j], g[i]]; [o[i], o[j]] = [o[j], o[i]];
  }

  /**
   * Offers a hit that comes after every hit offered before in (segment, ordinal) order: on a tie
   * with the current k-th it loses, so it enters only with a strictly larger score.
   */
  offer(score: number, seg: number, ord: number): void {
    const s = this.scores;
    if (s.length < this.k) {
      s.push(score); this.segs.push(seg); this.ords.push(ord);
      let i = s.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!this.worse(i, p)) break;
        this.swap(i, p);
        i = p;
      }
      return;
    }
    if (!(score > s[0])) return;
    s[0] = score; this.segs[0] = seg; this.ords[0] = ord;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < s.length && this.worse(l, m)) m = l;
      if (r < s.length && this.worse(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }

  /** Hits best first. */
  sorted(): { score: number; seg: number; ord: number }[] {
    const out = this.scores.map((score, i) => ({ score, seg: this.segs[i], ord: this.ords[i] }));
    out.sort((a, b) => b.score - a.score || a.seg - b.seg || a.ord - b.ord);
    return out;
  }
}

/**
 * Weights query terms with statistics summed over `segments`: `terms` are the analysed query
 * terms per field (duplicates count), `boosts` the per-field weights. Terms no segment holds
 * are dropped (they score nothing).
 */
export function weighClauses(segments: readonly TextSegment[], terms: ReadonlyMap<string, readonly string[]>, boosts: ReadonlyMap<string, number>): TextClause[] {
  const out: TextClause[] = [];
  for (const [field, list] of terms) {
    let docCount = 0, total = 0;
    const postings: FieldPostings[] = [];
    for (const s of segments) {
      const p = s.textPostings(field);
      if (!p) continue;
      postings.push(p);
      docCount += p.docCount;
      total += p.totalLength;
    }
    if (docCount === 0) continue;
    const avgLength = total / docCount;
    const counts = new Map<string, number>();
    for (const t of list) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [term, qtf] of counts) {
      let df = 0;
      for (const p of postings) df += p.docFreq(term);
      if (df === 0) continue;
      out.push({ field, term, weight: (boosts.get(field) ?? 1) * qtf * bm25Idf(docCount, df), avgLength });
    }
  }
  return out;
}

/** Per-clause scoring: w * tf / (tf + c0 + c1 * len). */
interface Scorer { w: number; c0: number; c1: number }

function scorerOf(c: TextClause, p: Bm25Params): Scorer {
  return { w: c.weight, c0: p.k1 * (1 - p.b), c1: (p.k1 * p.b) / c.avgLength };
}

function bound(sc: Scorer, impacts: Uint32Array): number {
  let best = 0;
  for (let i = 0; i < impacts.length; i += 2) {
    const tf = impacts[i];
    const s = (sc.w * tf) / (tf + sc.c0 + sc.c1 * scoredLength(impacts[i + 1]));
    if (s > best) best = s;
  }
  return best;
}

/** Relative slack on bounds compared with the threshold: partial sums round differently from full scores. */
const SLACK = 1 + 1e-9;

/**
 * Adds the best hits of one segment to `top`, skipping rows set in `excluded` (deletes and rows
 * a filter rejects). `seg`: the segment's position in search order (ties go to older ones).
 */
export function searchTextSegment(segment: TextSegment, clauses: readonly TextClause[], params: Bm25Params, top: TopHits, seg: number, excluded: Uint32Array | undefined, counters: TextSearchCounters): void {
  const items: { idx: number; cur: PostingCursor; sc: Scorer; ub: number; lens: Uint32Array }[] = [];
  clauses.forEach((c, idx) => {
    const p = segment.textPostings(c.field);
    const cur = p?.cursor(c.term);
    if (!p || !cur) return;
    const sc = scorerOf(c, params);
    items.push({ idx, cur, sc, ub: bound(sc, cur.listImpacts), lens: p.lengths });
  });
  const m = items.length;
  if (m === 0) return;
  items.sort((a, b) => a.ub - b.ub);
  const prefix = new Float64Array(m);
  for (let i = 0, s = 0; i < m; i++) { s += items[i].ub; prefix[i] = s; }
  const contrib = new Float64Array(clauses.length);
  // first essential clause: the bounds of those before it sum to at most the threshold
  let e = 0;
  const updateEssential = (): void => {
    const t = top.threshold;
    while (e < m && prefix[e] * SLACK <= t) e++;
  };
  updateEssential();
  // rows up to windowEnd may be candidates (their window passed the block-bound check)
  let windowEnd = -1;
  for (;;) {
    if (e >= m) return; // not even every clause together can beat the k-th score
    let doc = NO_MORE_DOCS;
    for (let j = e; j < m; j++) if (items[j].cur.doc < doc) doc = items[j].cur.doc;
    if (doc === NO_MORE_DOCS) return;
    let theta = top.threshold;
    if (doc > windowEnd && theta > -Infinity) {
      // a window [doc, end] where every essential list stays inside one block: its bound is
      // the non-essential bounds plus the essential lists' block bounds
      let end = NO_MORE_DOCS;
      for (let j = e; j < m; j++) { const last = items[j].cur.shallowAdvance(doc); if (last < end) end = last; }
      let windowBound = e > 0 ? prefix[e - 1] : 0;
      for (let j = e; j < m; j++) {
        const c = items[j].cur;
        if (c.shallowBlockStart() <= end) windowBound += bound(items[j].sc, c.shallowImpacts());
      }
      if (windowBound * SLACK <= theta) {
        counters.windowsSkipped++;
        if (end === NO_MORE_DOCS) return;
        for (let j = e; j < m; j++) items[j].cur.advance(end + 1);
        continue;
      }
      windowEnd = end;
    }
    const skip = excluded !== undefined && ((excluded[doc >>> 5] >>> (doc & 31)) & 1) === 1;
    let partial = 0;
    for (let j = e; j < m; j++) {
      const it = items[j], c = it.cur;
      if (c.doc !== doc) continue;
      if (!skip) {
        const tf = c.freq, sc = it.sc;
        const s = (sc.w * tf) / (tf + sc.c0 + sc.c1 * scoredLength(it.lens[doc]));
        contrib[it.idx] = s;
        partial += s;
      }
      c.next();
    }
    if (skip) continue;
    let pruned = false;
    theta = top.threshold;
    for (let i = e - 1; i >= 0; i--) {
      if ((partial + prefix[i]) * SLACK <= theta) { pruned = true; break; }
      const it = items[i], c = it.cur;
      if (c.doc < doc) {
        c.shallowAdvance(doc);
        if (c.shallowBlockStart() > doc) continue; // the list has no block that can hold doc
        if (theta > -Infinity && (partial + bound(it.sc, c.shallowImpacts()) + (i > 0 ? prefix[i - 1] : 0)) * SLACK <= theta) { pruned = true; break; }
        c.advance(doc);
      }
      if (c.doc === doc) {
        const tf = c.freq, sc = it.sc;
        const s = (sc.w * tf) / (tf + sc.c0 + sc.c1 * scoredLength(it.lens[doc]));
        contrib[it.idx] = s;
        partial += s;
      }
    }
    if (!pruned) {
      // the full score, summed in query order: the same number exhaustive scoring computes
      let score = 0;
      for (let q = 0; q < contrib.length; q++) score += contrib[q];
      counters.scored++;
      top.offer(score, seg, doc);
      if (top.threshold !== theta) updateEssential();
    }
    contrib.fill(0);
  }
}

/**
 * Scores every row holding a query term (no pruning): the reference the pruned search must
 * equal, clause by clause into per-clause arrays and summed in query order.
 */
export function exhaustiveTextSegment(segment: TextSegment, clauses: readonly TextClause[], params: Bm25Params, top: TopHits, seg: number, excluded: Uint32Array | undefined, counters: TextSearchCounters): void {
  const n = segment.count;
  const per: (Float64Array | null)[] = [];
  const hit = new Uint8Array(n);
  for (const c of clauses) {
    const p = segment.textPostings(c.field);
    const cur = p?.cursor(c.term);
    if (!p || !cur) { per.push(null); continue; }
    const sc = scorerOf(c, params);
    const arr = new Float64Array(n);
    for (; cur.doc !== NO_MORE_DOCS; cur.next()) {
      const tf = cur.freq;
      arr[cur.doc] = (sc.w * tf) / (tf + sc.c0 + sc.c1 * scoredLength(p.lengths[cur.doc]));
      hit[cur.doc] = 1;
    }
    per.push(arr);
  }
  for (let d = 0; d < n; d++) {
    if (!hit[d]) continue;
    if (excluded !== undefined && ((excluded[d >>> 5] >>> (d & 31)) & 1) === 1) continue;
    let score = 0;
    for (const arr of per) if (arr) score += arr[d];
    counters.scored++;
    top.offer(score, seg, d);
  }
}
