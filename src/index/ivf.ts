import { checkPositiveInt, QuiverError } from '../errors.js';
import { chooseSetting, type Calibration } from './calibration.js';
import type { Metric } from '../collection/validate.js';
import type { Kernels } from '../kernels/types.js';
import type { Quantizer, QueryScorer } from '../quant/types.js';
import { rankCandidates, writeHits } from './finish.js';
import { candidatesFor, checkRerankRule, Reranker, toScoreInterval, type RerankRule } from '../query/rerank.js';
import { bitsetWords, popcount32 } from '../util/bitset.js';
import { maskDeleted } from './flat.js';
import { searchGathered } from './gathered.js';
import type { ExactScorer, IndexSearchParams, SearchResultBatch, SegmentQuery, VectorIndex } from './types.js';

/**
 * The inverted-file (IVF) index of a sealed segment: a coarse quantizer (nlist centroids from
 * k-means) splits the rows into lists; a search scores the query against every centroid, scans
 * the rows of the `nprobe` closest lists and keeps the best.
 *
 * Rows are stored by *position*: list l holds positions [starts[l], starts[l + 1]), and
 * `ords[p]` is the segment ordinal at position p (ascending within a list). What a position holds:
 * - no quantizer ('IVF256'): the full f32 vector (and its inverse norm for cosine), scored with
 *   the dotMany / l2Many kernels, so results are exact within the probed lists;
 * - a quantizer ('IVF256,SQ8', 'IVF1024,RaBitQ1,Rerank', ...): the code of the raw vector (unit for
 *   cosine; not a residual), each list packed separately in the quantizer's scan layout (a list
 *   starts on a block boundary, so fast-scan PQ and RaBitQ keep their block layouts).
 *
 * A search makes one kernel call per probed list (never one per row): the list's scores go to a
 * scratch block, excluded ordinals are masked to NaN (which topkPush never admits), and the block
 * is pushed into the query's top-k heap with the topkPush kernel; heap ids are positions, mapped
 * to ordinals at the end. Lists are scanned in ascending list order, so heap ids arrive in
 * increasing order as topkPush's tie rule wants. When the probed lists hold fewer than k eligible
 * rows (a heavy exclusion mask, or k near the segment size), further lists are scanned, closest
 * centroid first, until k are found or every list was scanned: an IVF never returns fewer hits
 * than a flat scan would.
 *
 * Under a filter (params.eligible set by the planner), the probe has two phases (none of their
 * rules tuned on queries):
 * 1. the nprobe nearest lists, every row scored: exactly the unfiltered probe, so a mask spread
 *    evenly over the space costs what an unfiltered search does. The r-th best eligible score
 *    (r = the candidate heap's depth: k * rerank factor, or k pessimistic scores under the bound
 *    rule) is compared with a rank of the scores of
 *    all the rows scanned: where the r-th eligible row would fall if the eligible rows were a
 *    uniform sample of a fraction f of the rows (negative binomial: mean r / f, and one standard
 *    deviation, sqrt(r (1 - f)) / f, allowed). The difference is the shortfall: near zero under a
 *    mask independent of the vectors, large when the filter empties the query's neighbourhood and
 *    its eligible neighbours lie farther away;
 * 2. then lists holding an eligible row are probed, best first by their centroid score plus
 *    lambda * ln(list's eligible fraction / f), while that is at least the nprobe-th centroid
 *    score minus the shortfall: the probe is deepened by as much as the filter pushed the
 *    neighbours away, re-measured after every list (it stops once the rows found catch up). A list
 *    with a larger share of eligible rows holds proportionally more eligible neighbours per row
 *    scanned; lambda = (best - nprobe-th centroid score) / ln(nprobe) is the score change over
 *    which the neighbours a list holds fall by a factor e, if they fall as 1 / rank across the
 *    nprobe nearest lists.
 * A mask whose eligible rows are spread over the lists as a mask independent of the vectors would
 * spread them (UNIFORM_SIGMAS) and that leaves at least WIDE_FILTER of the rows stops after phase
 * 1: there a shortfall can only be chance, and the unfiltered probe is what the filter should cost.
 * A mask's per-list view (eligible rows per list, and the exclusion bits by position, so that a
 * list is masked a word of 32 rows at a time) is built in one pass over the rows and cached per
 * index for the last MASK_VIEWS masks, recognised by their bits (the planner's bitset is a new
 * array every search): a repeated filter pays it once.
 *
 * Compressed lists are reranked like FlatQuantizedIndex: oversampling keeps factor*k candidates
 * and scores them exactly; the bound-driven rule (bounded quantizers with a bare 'Rerank') keeps
 * candidates by optimistic score and stops reranking when no remaining one can enter the top-k.
 */

/**
 * Default lists probed per query: round(sqrt(nlist)), at least 1 (a common a-priori rule, not
 * tuned on any query set). The fraction of lists scanned, 1 / sqrt(nlist), shrinks as segments
 * (and nlist ~ 4 sqrt(rows)) grow while the number of lists probed grows, which keeps recall
 * roughly level: on SIFT10K, recall@10 of exact scoring in the probed lists is 0.98 both at
 * nlist 64 (8 probed, 13% of rows scanned) and at nlist 312 (18 probed, 7%).
 */
export function defaultNprobe(nlist: number): number {
  return Math.min(nlist, Math.max(1, Math.round(Math.sqrt(nlist))));
}

/** The coarse partition: centroids and the rows of each list. */
export interface IvfLists {
  readonly nlist: number;
  /** f32[nlist * dimension]: row c is centroid c (unit length for cosine). */
  readonly centroids: Float32Array;
  /** u32[nlist + 1]: list l holds positions [starts[l], starts[l + 1]); starts[nlist] = count. */
  readonly starts: Uint32Array;
  /** u32[count]: the segment ordinal at each position (ascending within a list). */
  readonly ords: Uint32Array;
}

/** Masks whose per-list view (eligible rows per list, exclusion bits by position) an index keeps, least recently used dropped first. */
export const MASK_VIEWS = 8;

/** A filter's mask as the lists see it (IvfIndex.maskView). */
interface MaskView {
  /** A copy of the exclusion bitset's words over the index's rows (the cache key). */
  readonly words: Int32Array;
  /** Exclusion bits by position (bit p set = the row at position p is excluded). */
  readonly posBits: Uint32Array;
  /** Eligible rows per list, u32[nlist]. */
  readonly eligible: Uint32Array;
  /** Eligible rows in all. */
  readonly total: number;
  /** ln(eligible fraction of list l / eligible fraction of the segment); -Infinity for a list without an eligible row. */
  readonly lnRel: Float32Array;
  /** The eligible rows are spread over the lists as a mask independent of the vectors would spread them (UNIFORM_SIGMAS). */
  readonly uniform: boolean;
}

/**
 * A mask counts as independent of the vectors when the dispersion of its eligible rows over the
 * lists (Pearson's chi^2 / degrees of freedom) is within this many standard deviations of 1, its
 * value under independence. A priori (3 sigma: a random mask is taken for an aligned one about
 * once in 700; the other way round costs only the second phase).
 */
export const UNIFORM_SIGMAS = 3;

/**
 * A mask independent of the vectors (MaskView.uniform) leaving at least this fraction of the rows
 * takes the unfiltered probe, masked, and no second phase: its eligible top k lie among the
 * unfiltered top k / 0.3, which the calibrated nprobe covers about as well as the top k, and the
 * second phase would only chase chance shortfalls (a priori).
 */
export const WIDE_FILTER = 0.3;

/**
 * The filter planner's exact path for IVF (searchRows: the matching rows' codes copied from their
 * positions and scored) is taken while the matching rows are at most this share of the rows an
 * unfiltered probe would scan (exactRowLimit). Chosen on GloVe-100 (340,479 rows, IVF2334,SQ8,
 * Rerank, `recall: 0.95`: 128 lists, 34,114 rows scanned) with held-out words 500-699, a split no
 * reported figure uses, under masks of random rows: searchRows costs about 0.065 us a row (1.13 ms
 * at 17,058 rows, 1.51 ms at 23,616), 3.5 times a row of an unfiltered list scan, while the masked
 * probe costs 1.07-3.0 ms with its second phase and reaches recall@10 0.948 at 17,058 rows, 0.952
 * at 23,616 and 0.964 at 34,019: the exact path is as fast up to about half the probe's rows and
 * the only one sure of the target up to about 0.6 of them; 0.6 takes the recall. A mask aligned
 * with the vectors costs the probe more and the exact path the same. Command and table:
 * bench/README-filter.md, "IVF's exact path" (bench/ivf-rows.ts). Since then the rows are gathered
 * by one gatherRows kernel call per block instead of a JS copy per row: searchRows costs about
 * 0.033 us a row (0.555 ms at 17,058 rows) and is as fast as the probe up to about 1.2 times its
 * rows. The share stays 0.6 (it still errs towards speed only where recall is sure) until it is
 * chosen again on the tuning split and the filter tables measured again with it.
 */
export const IVF_EXACT_SHARE = 0.6;

/** Default of the bound-driven rule: most candidates the scan keeps by optimistic score. */
function boundCandidates(k: number): number {
  return Math.max(2000, 200 * k);
}

export class IvfIndex implements VectorIndex {
  readonly description: string;
  readonly count: number;
  readonly nlist: number;
  readonly dimension: number;
  /** The default of params.nprobe (defaultNprobe(nlist)). */
  readonly defaultNprobe: number;
  private readonly starts: Uint32Array;
  private readonly ords: Uint32Array;
  /**
   * VectorIndex.searchRows, for the filter planner's exact path: present for full vectors and for
   * quantizers scanned row by row (scanLayout.blockRows 1: SQ, F16, LVQ, RaBitQ), whose code of a
   * row can be read at its position; absent for fast-scan layouts (PQ...x4fs), whose rows are
   * interleaved in blocks of 32, so the segment's full vectors serve that path.
   */
  readonly searchRows?: (query: SegmentQuery, ords: Uint32Array, n: number) => SearchResultBatch;
  /** Codes: the first scan block of each list, u32[nlist + 1]; null for full vectors. */
  private readonly blockStarts: Uint32Array | null;
  private readonly maxList: number;
  /**
   * Rows of a probed list, expected: sum of squared list sizes / rows. Queries fall where the rows
   * are, so a list is probed about in proportion to its size and the lists a probe scans are
   * larger than the mean list (GloVe, IVF2334: 146 rows on average, 266 per probed list measured,
   * 294 by this estimate).
   */
  private readonly probedListRows: number;
  /** Kernel memory: centroids f32[nlist * d]; vectors f32[count * d] or codes; inverse norms f32[count] (cosine vectors). */
  private centroidsPtr = 0;
  private dataPtr = 0;
  private invNormsPtr = 0;
  /** Kernel memory: u32[count], the position of each ordinal. */
  private posOfPtr = 0;
  private readonly dataBytes: number;
  private released = false;
  private rerank: { rule: RerankRule | null; exact: ExactScorer | null } = { rule: null, exact: null };

  /**
   * An index over `lists` whose rows are filled afterwards (setVectorRow / setCodeRows) by the
   * loader. quantizer: trained, on `kernels` (null = full vectors). Allocates the index's kernel
   * memory on `kernels` (released by release()).
   */
  constructor(readonly kernels: Kernels, dimension: number, readonly metric: Metric, lists: IvfLists, readonly quantizer: Quantizer | null) {
    const { nlist, centroids, starts, ords } = lists;
    const count = ords.length;
    if (starts.length !== nlist + 1 || centroids.length !== nlist * dimension || starts[0] !== 0 || starts[nlist] !== count) {
      throw new QuiverError('INVALID_ARGUMENT', `IVF lists do not fit ${nlist} lists of ${count} rows in dimension ${dimension}`, {
        expected: { starts: nlist + 1, centroids: nlist * dimension, last: count }, received: { starts: starts.length, centroids: centroids.length, last: starts[nlist] },
      });
    }
    this.dimension = dimension;
    this.nlist = nlist;
    this.count = count;
    this.starts = starts;
    this.ords = ords;
    if (!quantizer || quantizer.scanLayout.blockRows === 1) this.searchRows = (query, rows, n) => this.scoreRows(query, rows, n);
    this.defaultNprobe = defaultNprobe(nlist);
    let maxList = 0, squares = 0;
    for (let l = 0; l < nlist; l++) {
      const size = starts[l + 1] - starts[l];
      maxList = Math.max(maxList, size);
      squares += size * size;
    }
    this.maxList = maxList;
    this.probedListRows = count > 0 ? squares / count : 0;
    this.description = quantizer ? `IVF${nlist},${quantizer.spec}` : `IVF${nlist}`;
    if (quantizer) {
      const br = quantizer.scanLayout.blockRows;
      const bs = new Uint32Array(nlist + 1);
      for (let l = 0; l < nlist; l++) bs[l + 1] = bs[l] + Math.ceil((starts[l + 1] - starts[l]) / br);
      this.blockStarts = bs;
      this.dataBytes = bs[nlist] * quantizer.scanLayout.blockBytes;
    } else {
      this.blockStarts = null;
      this.dataBytes = count * dimension * 4;
    }
    const mem = kernels.memory;
    try {
      this.centroidsPtr = mem.alloc(nlist * dimension * 4);
      mem.f32(this.centroidsPtr, nlist * dimension).set(centroids);
      this.dataPtr = mem.alloc(this.dataBytes);
      if (!quantizer && metric === 'cosine') this.invNormsPtr = mem.alloc(count * 4);
      // the position of each ordinal (the inverse of `ords`), where searchRows finds a row: the map of its gatherRows calls
      this.posOfPtr = mem.alloc(Math.max(4, count * 4));
      const posOf = mem.u32(this.posOfPtr, count);
      for (let p = 0; p < count; p++) posOf[ords[p]] = p;
    } catch (e) {
      this.release();
      throw e;
    }
  }

  /** Bytes held for search: kernel memory (centroids, vectors or codes, inverse norms) and the JS position tables. */
  get memoryBytes(): number {
    return this.nlist * this.dimension * 4 + this.dataBytes + (this.invNormsPtr ? this.count * 4 : 0)
      + this.ords.byteLength + this.count * 4 + this.starts.byteLength + (this.blockStarts?.byteLength ?? 0);
  }

  /** The centroids, f32[nlist * dimension] (a copy). */
  centroids(): Float32Array {
    this.checkLive();
    return this.kernels.memory.f32(this.centroidsPtr, this.nlist * this.dimension).slice();
  }

  /** Rows per list, u32[nlist]. */
  listSizes(): Uint32Array {
    const out = new Uint32Array(this.nlist);
    for (let l = 0; l < this.nlist; l++) out[l] = this.starts[l + 1] - this.starts[l];
    return out;
  }

  /** The position of every ordinal, u32[count] (the inverse of the ordinals by position; a copy). */
  positions(): Uint32Array {
    this.checkLive();
    return this.kernels.memory.u32(this.posOfPtr, this.count).slice();
  }

  /** Loader: the full vector at position `pos` (row: its raw f32 bytes, u8[dimension * 4]) and its L2 norm. */
  setVectorRow(pos: number, row: Uint8Array, norm: number): void {
    const d = this.dimension, mem = this.kernels.memory;
    mem.views().u8.set(row.subarray(0, d * 4), this.dataPtr + pos * d * 4);
    if (this.invNormsPtr) mem.views().f32[(this.invNormsPtr >> 2) + pos] = norm > 0 ? 1 / norm : 0;
  }

  /**
   * Loader: row codes of positions [firstPos, firstPos + n) (u8[n * codeSize]), which must cover
   * whole lists (each list is packed into its scan blocks on its own).
   */
  setCodeRows(rows: Uint8Array, firstPos: number, n: number): void {
    const q = this.quantizer!, cs = q.codeSize, layout = q.scanLayout;
    const mem = this.kernels.memory;
    // the first list starting at or after firstPos (binary search over starts)
    let l = 0, hi = this.nlist;
    while (l < hi) { const mid = (l + hi) >> 1; if (this.starts[mid] < firstPos) l = mid + 1; else hi = mid; }
    if (this.starts[l] !== firstPos) throw new Error(`IVF codes must be set by whole lists (position ${firstPos} is inside a list)`);
    for (; l < this.nlist && this.starts[l] < firstPos + n; l++) {
      const a = this.starts[l], m = this.starts[l + 1] - a;
      if (a + m > firstPos + n) throw new Error(`IVF codes must be set by whole lists (list ${l} ends past ${firstPos + n})`);
      if (m === 0) continue;
      const at = this.dataPtr + this.blockStarts![l] * layout.blockBytes;
      const src = rows.subarray((a - firstPos) * cs, (a - firstPos + m) * cs);
      if (layout.blockRows === 1) mem.u8(at, m * cs).set(src);
      else {
        const packed = new Uint8Array(Math.ceil(m / layout.blockRows) * layout.blockBytes);
        layout.pack(src, m, packed);
        mem.u8(at, packed.length).set(packed);
      }
    }
  }

  /**
   * How search reranks compressed candidates: `rule` (null = return estimates) with full vectors
   * from `exact`. A query's params.rerankFactor overrides the rule. Ignored without a quantizer.
   */
  setRerank(rule: RerankRule | null, exact: ExactScorer | null): void {
    if (rule && !exact) throw new QuiverError('INVALID_ARGUMENT', 'reranking needs an ExactScorer', { name: 'exact', expected: 'ExactScorer' });
    if (rule && 'bounds' in rule && !this.quantizer?.bounded) {
      throw new QuiverError('INVALID_ARGUMENT', `bound-driven reranking needs a bounded quantizer; ${this.quantizer?.spec ?? 'full vectors'} reports no error bounds`, { expected: 'bounded quantizer', received: this.quantizer?.spec ?? null });
    }
    this.rerank = { rule: rule ? checkRerankRule(rule) : null, exact };
  }

  /** The recall this index measured on its own rows when built (calibration.ts); null = none. */
  calibration: Calibration | null = null;

  /**
   * Search parameters: explicit nprobe / rerankFactor win; a recall target fills the rest from
   * the calibration; without one (a segment too small to sample), every list is probed.
   */
  private settingFor(params: IndexSearchParams, k: number): IndexSearchParams {
    if (params.recall === undefined) return params;
    const chosen = this.calibration ? chooseSetting(this.calibration, params.recall, k) : { nprobe: this.nlist };
    return { ...chosen, ...(params.nprobe !== undefined ? { nprobe: params.nprobe } : {}), ...(params.rerankFactor !== undefined ? { rerankFactor: params.rerankFactor } : {}) };
  }

  private maskViews: MaskView[] = [];

  /**
   * The per-list view of an exclusion mask: taken from the cache when a mask with the same bits
   * was seen (the planner builds a new bitset per search, so masks are compared by content, most
   * recently used first; a different mask usually differs in its first words), built otherwise
   * (one pass over the rows in position order). At most MASK_VIEWS views are kept, each about
   * count / 4 bytes plus 8 bytes a list.
   */
  private maskView(excluded: Uint32Array): MaskView {
    const w = bitsetWords(this.count);
    const views = this.maskViews;
    for (let i = views.length - 1; i >= 0; i--) {
      const v = views[i];
      if (!sameWords(v.words, excluded)) continue;
      if (i !== views.length - 1) { views.splice(i, 1); views.push(v); }
      return v;
    }
    const words = new Int32Array(w);
    for (let i = 0; i < w; i++) words[i] = excluded[i] | 0;
    const posBits = new Uint32Array(w), eligible = new Uint32Array(this.nlist);
    const ords = this.ords, starts = this.starts, count = this.count;
    // one pass in position order, 32 positions to a word; then each list's excluded rows are the
    // set bits of its range of positions
    for (let p0 = 0; p0 < count; p0 += 32) {
      let acc = 0;
      for (let p = p0, end = Math.min(count, p0 + 32); p < end; p++) {
        const o = ords[p];
        acc |= ((words[o >>> 5] >>> (o & 31)) & 1) << (p - p0);
      }
      posBits[p0 >>> 5] = acc;
    }
    let total = 0;
    for (let l = 0; l < this.nlist; l++) {
      eligible[l] = starts[l + 1] - starts[l] - countRange(posBits, starts[l], starts[l + 1]);
      total += eligible[l];
    }
    const lnRel = new Float32Array(this.nlist);
    const f = total / Math.max(1, count);
    // Pearson's dispersion of the eligible counts over the lists: chi^2 / (lists - 1) has mean 1
    // and standard deviation about sqrt(2 / (lists - 1)) when every row is eligible with the same
    // chance f (a mask independent of the vectors); alignment with regions makes it large
    let chi = 0, lists = 0;
    for (let l = 0; l < this.nlist; l++) {
      const n = starts[l + 1] - starts[l];
      lnRel[l] = eligible[l] > 0 ? Math.log(eligible[l] / n / f) : -Infinity;
      if (n === 0) continue;
      chi += (eligible[l] - f * n) ** 2 / (f * (1 - f) * n);
      lists++;
    }
    const uniform = lists > 1 && f < 1 && chi / (lists - 1) <= 1 + UNIFORM_SIGMAS * Math.sqrt(2 / (lists - 1));
    const view: MaskView = { words, posBits, eligible, total, lnRel, uniform };
    views.push(view);
    if (views.length > MASK_VIEWS) views.shift();
    return view;
  }

  search(sq: SegmentQuery): SearchResultBatch {
    this.checkLive();
    const { nq, queries, excluded, counters } = sq;
    const k = checkPositiveInt(sq.k, 'k', 1 << 20);
    const d = this.dimension;
    if (!(queries instanceof Float32Array) || queries.length < nq * d) {
      throw new QuiverError('DIMENSION_MISMATCH', `search: ${nq} queries of dimension ${d} need ${nq * d} floats`, { expected: nq * d, received: queries instanceof Float32Array ? queries.length : typeof queries });
    }
    const params = this.settingFor(sq.params, k);
    const nprobe = params.nprobe === undefined ? this.defaultNprobe : Math.min(this.nlist, checkPositiveInt(params.nprobe, 'nprobe', 1 << 20));
    const q = this.quantizer;
    const rule = this.ruleFor(params);
    const exact = this.rerank.exact;
    const byBounds = rule !== null && 'bounds' in rule;
    const cap = Math.max(1, Math.min(this.count, rule ? candidatesFor(rule, k, boundCandidates(k)) : k));
    const out = { k, ords: new Uint32Array(nq * k), scores: new Float32Array(nq * k), counts: new Uint32Array(nq) };
    if (this.count === 0) return out;
    // a filter (the planner says which fraction of the rows it leaves): the two-phase probe of the
    // class comment, on the mask's per-list view; otherwise (no mask, or deletes only) the nprobe
    // nearest lists with the mask applied row by row
    const eligible = sq.params.eligible;
    const view = excluded !== undefined && eligible !== undefined && eligible > 0 && eligible < 1 ? this.maskView(excluded) : null;
    if (view && view.total === 0) return out;
    const f = view ? view.total / this.count : 1;
    // the eligible rows' shortfall is measured at the depth of the candidate heap (k pessimistic
    // scores under the bound rule): its depth-th best eligible score against what a mask
    // independent of the vectors would give, the uniformRank-th best of all the rows phase 1
    // scans. Under such a mask the rank of the depth-th eligible row is negative binomial, mean
    // depth / f and standard deviation sqrt(depth (1 - f)) / f: one standard deviation is allowed,
    // so that chance alone seldom deepens the probe.
    const depth = byBounds ? k : cap;
    const deepen = view !== null && !(view.uniform && f >= WIDE_FILTER);
    const uniformRank = deepen ? Math.min(this.count, Math.ceil((depth + Math.sqrt(depth * (1 - f))) / f)) : 0;

    const kern = this.kernels, mem = kern.memory;
    const ptrs: number[] = [];
    const alloc = (bytes: number): number => { const p = mem.alloc(bytes); ptrs.push(p); return p; };
    const reranker = rule ? new Reranker(exact!) : null;
    try {
      const qPtr = alloc(d * 4);
      const cScores = alloc(this.nlist * 4);
      const probeKeys = alloc(nprobe * 4), probeIds = alloc(nprobe * 4);
      const scratch = alloc(Math.max(1, this.maxList) * 4);
      const boundsBuf = byBounds ? alloc(Math.max(1, this.maxList) * 4) : 0;
      const heapKeys = alloc(cap * 4), heapIds = alloc(cap * 4);
      const lowKeys = byBounds ? alloc(k * 4) : 0, lowIds = byBounds ? alloc(k * 4) : 0;
      const allKeys = deepen ? alloc(uniformRank * 4) : 0, allIds = deepen ? alloc(uniformRank * 4) : 0;
      // vectors: l2Many gives distances (keys = -distance); code estimates are already scores
      const sign = !q && this.metric === 'l2' ? -1 : 1;
      const centroidSign = this.metric === 'l2' ? -1 : 1;
      const probed = new Uint8Array(this.nlist);
      const adj = deepen ? new Float64Array(this.nlist) : null, cand: number[] = [];
      for (let qi = 0; qi < nq; qi++) {
        const query = queries.subarray(qi * d, (qi + 1) * d);
        mem.f32(qPtr, d).set(query);
        const scorer = q ? q.prepare(query) : null;
        let size = 0, lowSize = 0, allSize = 0, scanned = 0;
        try {
          /** Scores list l into the heaps; `all`: its rows also go to the heap of every row scanned (phase 1). */
          const scanList = (l: number, all: boolean): void => {
            probed[l] = 1;
            const a = this.starts[l], n = this.starts[l + 1] - a;
            if (n === 0) return;
            if (scorer) {
              scorer.scoreBlock(this.dataPtr + this.blockStarts![l] * q!.scanLayout.blockBytes, n, scratch, boundsBuf);
              if (byBounds) {
                // scratch <- estimate + bound (optimistic); boundsBuf <- estimate - bound (pessimistic)
                toScoreInterval(kern, scratch, boundsBuf, n);
              }
            } else {
              const rows = this.dataPtr + a * d * 4;
              if (this.metric === 'l2') kern.l2Many(qPtr, rows, n, d, scratch);
              else kern.dotMany(qPtr, rows, n, d, scratch);
              if (this.invNormsPtr) kern.mulInPlace(scratch, this.invNormsPtr + a * 4, n);
            }
            scanned += n;
            if (view) {
              // all the rows' scores before the mask (pessimistic under the bound rule, as lowKeys holds)
              if (all && deepen) allSize = kern.topkPush(byBounds ? boundsBuf : scratch, n, a, sign, allKeys, allIds, uniformRank, allSize);
              const e = view.eligible[l];
              if (e === 0) return;
              if (e < n) {
                const f32 = mem.views().f32;
                maskDeleted(f32, scratch >> 2, view.posBits, a, n);
                if (byBounds) maskDeleted(f32, boundsBuf >> 2, view.posBits, a, n);
              }
            } else if (excluded) maskExcluded(mem.views().f32, excluded, this.ords, a, n, scratch >> 2, boundsBuf >> 2);
            size = kern.topkPush(scratch, n, a, sign, heapKeys, heapIds, cap, size);
            if (byBounds) lowSize = kern.topkPush(boundsBuf, n, a, 1, lowKeys, lowIds, k, lowSize);
          };
          /** The depth-th best eligible key found so far (-Infinity before depth are found). */
          const deepestEligible = (): number => {
            if (byBounds) return lowSize >= k ? mem.f32(lowKeys, 1)[0] : -Infinity;
            return size >= cap ? mem.f32(heapKeys, 1)[0] : -Infinity;
          };
          // the nprobe best centroids (one kernel call for all of them), scanned in list order
          if (this.metric === 'l2') kern.l2Many(qPtr, this.centroidsPtr, this.nlist, d, cScores);
          else kern.dotMany(qPtr, this.centroidsPtr, this.nlist, d, cScores);
          const got = kern.topkPush(cScores, this.nlist, 0, centroidSign, probeKeys, probeIds, nprobe, 0);
          const lists = mem.u32(probeIds, got).slice().sort();
          probed.fill(0);
          for (const l of lists) scanList(l, true);
          if (deepen) {
            // phase 2: lists by centroid key + lambda ln(relative eligible fraction), while that is
            // at least the nprobe-th centroid key minus the eligible rows' shortfall (re-measured
            // after every list)
            const pk = mem.f32(probeKeys, got);
            let best = -Infinity;
            for (let i = 0; i < got; i++) best = Math.max(best, pk[i]);
            const last = pk[0]; // the heap's root: the got-th best key
            const lambda = got >= 2 && best > last ? (best - last) / Math.log(got) : 0;
            const uniform = allSize > 0 ? mem.f32(allKeys, 1)[0] : -Infinity;
            const threshold = (): number => { const e = deepestEligible(); return e === -Infinity ? -Infinity : last - Math.max(0, uniform - e); };
            let t = threshold();
            const cs = mem.f32(cScores, this.nlist), el = view!.eligible, lnRel = view!.lnRel, ad = adj!;
            cand.length = 0;
            for (let l = 0; l < this.nlist; l++) {
              if (probed[l] || el[l] === 0) continue;
              const a = centroidSign * cs[l] + lambda * lnRel[l];
              if (a >= t) { ad[l] = a; cand.push(l); }
            }
            cand.sort((x, y) => ad[y] - ad[x] || x - y);
            for (const l of cand) {
              if (ad[l] < t) break;
              scanList(l, false);
              t = threshold();
            }
          } else if (size < k && got < this.nlist) {
            // too few eligible rows in the probed lists: the next closest lists, nearest first
            const cs = mem.f32(cScores, this.nlist).slice();
            const rest: number[] = [];
            for (let l = 0; l < this.nlist; l++) if (!probed[l]) rest.push(l);
            rest.sort((x, y) => centroidSign * (cs[y] - cs[x]) || x - y);
            for (const l of rest) {
              if (size >= k) break;
              if (view && view.eligible[l] === 0) continue;
              scanList(l, false);
            }
          }
        } finally {
          scorer?.release();
        }
        counters.scanned[qi] += scanned;
        const ords = new Uint32Array(size), pos = mem.u32(heapIds, size);
        for (let i = 0; i < size; i++) ords[i] = this.ords[pos[i]];
        const floor = byBounds && lowSize === k ? mem.f32(lowKeys, 1)[0] : null;
        writeHits(out, qi, query, rankCandidates(mem.f32(heapKeys, size).slice(), ords, k, floor), reranker, byBounds, counters);
      }
      return out;
    } finally {
      for (const p of ptrs) mem.release(p);
    }
  }

  /**
   * VectorIndex.exactRowLimit: IVF_EXACT_SHARE of the rows an unfiltered probe scans at `params`
   * (nprobe, or the recall target's calibrated nprobe, times probedListRows); 0 where there is
   * no searchRows (fast-scan layouts).
   */
  exactRowLimit(k: number, params: IndexSearchParams): number {
    if (!this.searchRows) return 0;
    const p = this.settingFor(params, k);
    const nprobe = Math.min(this.nlist, p.nprobe ?? this.defaultNprobe);
    return Math.floor(IVF_EXACT_SHARE * nprobe * this.probedListRows);
  }

  /** The rerank rule of a search: the index's, or the query's rerankFactor; null = estimates returned (or full vectors). */
  private ruleFor(params: IndexSearchParams): RerankRule | null {
    if (!this.quantizer) return null;
    if (params.rerankFactor !== undefined && this.rerank.exact) return checkRerankRule({ factor: params.rerankFactor });
    return this.rerank.rule;
  }

  /**
   * searchRows (see the field): the k best of the listed rows (ords u32[n], increasing) for each
   * query. Full vectors: gathered by position a block at a time and scored exactly, as a flat scan
   * scores them. Codes: each block of rows' codes is copied from its position into a scratch block
   * (one copy, then one scoreBlock kernel call per query and block), the candidates kept as search
   * keeps them, and reranked by the same rule: the cost is the matching rows, not the lists.
   * Counters: scanned += n; reranked += vectors rescored.
   */
  private scoreRows(sq: SegmentQuery, rows: Uint32Array, n: number): SearchResultBatch {
    this.checkLive();
    const { nq, queries, counters } = sq;
    const k = checkPositiveInt(sq.k, 'k', 1 << 20);
    const d = this.dimension, kern = this.kernels, mem = kern.memory;
    if (!(queries instanceof Float32Array) || queries.length < nq * d) {
      throw new QuiverError('DIMENSION_MISMATCH', `searchRows: ${nq} queries of dimension ${d} need ${nq * d} floats`, { expected: nq * d, received: queries instanceof Float32Array ? queries.length : typeof queries });
    }
    const q = this.quantizer;
    if (!q) {
      // the listed ordinals in kernel memory: each block's rows (and inverse norms) gathered by position in one kernel call
      const ids = mem.alloc(Math.max(4, n * 4));
      try {
        mem.u32(ids, n).set(rows.subarray(0, n));
        const res = searchGathered(kern, d, this.metric, queries, nq, k, rows, n, (vecPtr, invPtr, from, m) => {
          kern.gatherRows(this.dataPtr, d * 4, ids + from * 4, m, this.posOfPtr, vecPtr);
          if (invPtr) kern.gatherRows(this.invNormsPtr, 4, ids + from * 4, m, this.posOfPtr, invPtr);
        });
        for (let qi = 0; qi < nq; qi++) counters.scanned[qi] += n;
        return res;
      } finally {
        mem.release(ids);
      }
    }
    const rule = this.ruleFor(this.settingFor(sq.params, k));
    const byBounds = rule !== null && 'bounds' in rule;
    const cap = Math.max(1, Math.min(n, rule ? candidatesFor(rule, k, boundCandidates(k)) : k));
    const out = { k, ords: new Uint32Array(nq * k), scores: new Float32Array(nq * k), counts: new Uint32Array(nq) };
    if (n === 0) return out;
    // blockRows is 1 here, so the code of position p is at dataPtr + p * codeSize
    const cs = q.codeSize;
    const B = Math.max(1, Math.min(n, Math.floor((256 << 10) / cs)));
    const ptrs: number[] = [];
    const alloc = (bytes: number): number => { const p = mem.alloc(bytes); ptrs.push(p); return p; };
    const scorers: QueryScorer[] = [];
    const reranker = rule ? new Reranker(this.rerank.exact!) : null;
    try {
      const block = alloc(B * cs), scores = alloc(B * 4), bounds = byBounds ? alloc(B * 4) : 0;
      const ids = alloc(n * 4);
      mem.u32(ids, n).set(rows.subarray(0, n));
      const heapKeys = alloc(nq * cap * 4), heapIds = alloc(nq * cap * 4);
      const lowKeys = byBounds ? alloc(nq * k * 4) : 0, lowIds = byBounds ? alloc(nq * k * 4) : 0;
      for (let qi = 0; qi < nq; qi++) scorers.push(q.prepare(queries.subarray(qi * d, (qi + 1) * d)));
      const sizes = new Int32Array(nq), lowSizes = new Int32Array(nq);
      for (let from = 0; from < n; from += B) {
        const m = Math.min(B, n - from);
        kern.gatherRows(this.dataPtr, cs, ids + from * 4, m, this.posOfPtr, block);
        for (let qi = 0; qi < nq; qi++) {
          scorers[qi].scoreBlock(block, m, scores, bounds);
          if (byBounds) {
            // scores <- estimate + bound (optimistic); bounds <- estimate - bound (pessimistic)
            toScoreInterval(kern, scores, bounds, m);
            lowSizes[qi] = kern.topkPush(bounds, m, from, 1, lowKeys + qi * k * 4, lowIds + qi * k * 4, k, lowSizes[qi]);
          }
          // heap ids are positions in `rows` (increasing, as topkPush's tie rule wants)
          sizes[qi] = kern.topkPush(scores, m, from, 1, heapKeys + qi * cap * 4, heapIds + qi * cap * 4, cap, sizes[qi]);
        }
      }
      for (let qi = 0; qi < nq; qi++) {
        counters.scanned[qi] += n;
        const size = sizes[qi];
        const ids = mem.u32(heapIds + qi * cap * 4, size), ords = new Uint32Array(size);
        for (let i = 0; i < size; i++) ords[i] = rows[ids[i]];
        const floor = byBounds && lowSizes[qi] === k ? mem.f32(lowKeys + qi * k * 4, 1)[0] : null;
        writeHits(out, qi, queries.subarray(qi * d, (qi + 1) * d), rankCandidates(mem.f32(heapKeys + qi * cap * 4, size).slice(), ords, k, floor), reranker, byBounds, counters);
      }
      return out;
    } finally {
      for (const sc of scorers) sc.release();
      for (const p of ptrs) mem.release(p);
    }
  }

  /** Frees the index's kernel memory; it cannot be used afterwards. */
  release(): void {
    if (this.released) return;
    this.released = true;
    const mem = this.kernels.memory;
    for (const p of [this.centroidsPtr, this.dataPtr, this.invNormsPtr, this.posOfPtr]) if (p) mem.release(p);
    this.centroidsPtr = this.dataPtr = this.invNormsPtr = this.posOfPtr = 0;
  }

  private checkLive(): void {
    if (this.released) throw new QuiverError('CLOSED', 'this IvfIndex was released', { reason: 'released' });
  }
}

/**
 * Sets f32[at + i] (and f32[boundsAt + i] when boundsAt > 0) to NaN for every i < n whose row,
 * ordinal ords[first + i], is set in the `excluded` bitset. The flat scans use maskDeleted over a
 * contiguous ordinal range; a list's ordinals are scattered, so each is looked up (one word test).
 * (A filter's mask goes by position instead, MaskView.posBits, where a list is a contiguous range.)
 */
function maskExcluded(f32: Float32Array, excluded: Uint32Array, ords: Uint32Array, first: number, n: number, at: number, boundsAt: number): void {
  for (let i = 0; i < n; i++) {
    const o = ords[first + i];
    if ((excluded[o >>> 5] >>> (o & 31)) & 1) {
      f32[at + i] = NaN;
      if (boundsAt) f32[boundsAt + i] = NaN;
    }
  }
}

/** Set bits of `b` in [from, to). */
function countRange(b: Uint32Array, from: number, to: number): number {
  if (from >= to) return 0;
  const w0 = from >>> 5, w1 = (to - 1) >>> 5;
  const head = -1 << (from & 31), tail = -1 >>> (31 - ((to - 1) & 31));
  if (w0 === w1) return popcount32(b[w0] & head & tail);
  let c = popcount32(b[w0] & head) + popcount32(b[w1] & tail);
  for (let w = w0 + 1; w < w1; w++) c += popcount32(b[w]);
  return c;
}

/** Whether b starts with the words of `words` (missing words of b read as 0). */
function sameWords(words: Int32Array, b: Uint32Array): boolean {
  const n = words.length, m = Math.min(n, b.length);
  const w = new Int32Array(b.buffer, b.byteOffset, m);
  for (let i = 0; i < m; i++) if (words[i] !== w[i]) return false;
  for (let i = m; i < n; i++) if (words[i] !== 0) return false;
  return true;
}
