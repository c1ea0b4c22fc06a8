import { checkPositiveInt, QuiverError } from '../errors.js';
import { chooseSetting, type Calibration } from './calibration.js';
import type { Metric } from '../collection/validate.js';
import type { Kernels } from '../kernels/types.js';
import type { Quantizer } from '../quant/types.js';
import { candidatesFor, checkRerankRule, Reranker, type RerankRule } from '../query/rerank.js';
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

/** A filter leaving fewer than this fraction of the rows probes by a budget of eligible rows (search()): every filter. */
export const BUDGET_BELOW = 1;

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
  /** Codes: the first scan block of each list, u32[nlist + 1]; null for full vectors. */
  private readonly blockStarts: Uint32Array | null;
  private readonly maxList: number;
  /** Kernel memory: centroids f32[nlist * d]; vectors f32[count * d] or codes; inverse norms f32[count] (cosine vectors). */
  private centroidsPtr = 0;
  private dataPtr = 0;
  private invNormsPtr = 0;
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
    this.defaultNprobe = defaultNprobe(nlist);
    let maxList = 0;
    for (let l = 0; l < nlist; l++) maxList = Math.max(maxList, starts[l + 1] - starts[l]);
    this.maxList = maxList;
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
    } catch (e) {
      this.release();
      throw e;
    }
  }

  /** Bytes held for search: kernel memory (centroids, vectors or codes, inverse norms) and the JS position tables. */
  get memoryBytes(): number {
    return this.nlist * this.dimension * 4 + this.dataBytes + (this.invNormsPtr ? this.count * 4 : 0)
      + this.ords.byteLength + this.starts.byteLength + (this.blockStarts?.byteLength ?? 0);
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

  /** The position of every ordinal, u32[count] (the inverse of the ordinals by position). */
  positions(): Uint32Array {
    const out = new Uint32Array(this.count);
    for (let p = 0; p < this.count; p++) out[this.ords[p]] = p;
    return out;
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

  /** Rows of list l whose bit is not set in the `excluded` bitset. */
  private eligibleIn(l: number, excluded: Uint32Array): number {
    let e = 0;
    for (let p = this.starts[l], end = this.starts[l + 1]; p < end; p++) {
      const o = this.ords[p];
      e += 1 - ((excluded[o >>> 5] >>> (o & 31)) & 1);
    }
    return e;
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
    // a filter leaving a fraction f of the rows: the budget is eligible rows, not lists. The probe
    // goes on, nearest list first, until it has scanned f times the rows the nprobe nearest lists
    // hold: about those lists when the mask is spread evenly, farther when it empties whole regions
    // of the space (lists without an eligible row are skipped).
    const eligible = sq.params.eligible;
    const byBudget = excluded !== undefined && eligible !== undefined && eligible > 0 && eligible < BUDGET_BELOW;
    const q = this.quantizer;
    let rule: RerankRule | null = null;
    const exact = this.rerank.exact;
    if (q) {
      rule = this.rerank.rule;
      if (params.rerankFactor !== undefined && exact) rule = checkRerankRule({ factor: params.rerankFactor });
    }
    const byBounds = rule !== null && 'bounds' in rule;
    const cap = Math.max(1, Math.min(this.count, rule ? candidatesFor(rule, k, boundCandidates(k)) : k));
    const out = { k, ords: new Uint32Array(nq * k), scores: new Float32Array(nq * k), counts: new Uint32Array(nq) };
    if (this.count === 0) return out;

    const kern = this.kernels, mem = kern.memory;
    const ptrs: number[] = [];
    const alloc = (bytes: number): number => { const p = mem.alloc(bytes); ptrs.push(p); return p; };
    const reranker = rule ? new Reranker(exact!) : null;
    try {
      const qPtr = alloc(d * 4);
      const cScores = alloc(this.nlist * 4);
      const probeKeys = alloc(nprobe * 4), probeIds = alloc(nprobe * 4);
      // the next lists past the nprobe nearest (filters, or too few eligible rows): once per search
      const wide = Math.min(this.nlist, 4 * nprobe);
      const more = alloc(wide * 4), moreIds = alloc(wide * 4);
      const scratch = alloc(Math.max(1, this.maxList) * 4);
      const boundsBuf = byBounds ? alloc(Math.max(1, this.maxList) * 4) : 0;
      const heapKeys = alloc(cap * 4), heapIds = alloc(cap * 4);
      const lowKeys = byBounds ? alloc(k * 4) : 0, lowIds = byBounds ? alloc(k * 4) : 0;
      // vectors: l2Many gives distances (keys = -distance); code estimates are already scores
      const sign = !q && this.metric === 'l2' ? -1 : 1;
      const centroidSign = this.metric === 'l2' ? -1 : 1;
      const probed = new Uint8Array(this.nlist);
      for (let qi = 0; qi < nq; qi++) {
        const query = queries.subarray(qi * d, (qi + 1) * d);
        mem.f32(qPtr, d).set(query);
        const scorer = q ? q.prepare(query) : null;
        let size = 0, lowSize = 0, scanned = 0;
        try {
          const scanList = (l: number): void => {
            const a = this.starts[l], n = this.starts[l + 1] - a;
            if (n === 0) return;
            if (scorer) {
              scorer.scoreBlock(this.dataPtr + this.blockStarts![l] * q!.scanLayout.blockBytes, n, scratch, boundsBuf);
              if (byBounds) {
                // scratch <- estimate + bound (optimistic); boundsBuf <- estimate - bound (pessimistic)
                kern.addScaledInPlace(scratch, boundsBuf, n, 1);
                kern.affineInPlace(boundsBuf, n, -2, 0);
                kern.addScaledInPlace(boundsBuf, scratch, n, 1);
              }
            } else {
              const rows = this.dataPtr + a * d * 4;
              if (this.metric === 'l2') kern.l2Many(qPtr, rows, n, d, scratch);
              else kern.dotMany(qPtr, rows, n, d, scratch);
              if (this.invNormsPtr) kern.mulInPlace(scratch, this.invNormsPtr + a * 4, n);
            }
            if (excluded) maskExcluded(mem.views().f32, excluded, this.ords, a, n, scratch >> 2, boundsBuf >> 2);
            size = kern.topkPush(scratch, n, a, sign, heapKeys, heapIds, cap, size);
            if (byBounds) lowSize = kern.topkPush(boundsBuf, n, a, 1, lowKeys, lowIds, k, lowSize);
            scanned += n;
          };
          // probe: the nprobe best centroids (one kernel call for all of them), scanned in list order
          if (this.metric === 'l2') kern.l2Many(qPtr, this.centroidsPtr, this.nlist, d, cScores);
          else kern.dotMany(qPtr, this.centroidsPtr, this.nlist, d, cScores);
          const got = kern.topkPush(cScores, this.nlist, 0, centroidSign, probeKeys, probeIds, nprobe, 0);
          const lists = mem.u32(probeIds, got).slice().sort();
          probed.fill(0);
          // under a filter: as many eligible rows as the nprobe nearest lists hold, and as many
          // lists holding an eligible row as nprobe (a mask dense in a few regions fills the row
          // budget in a few lists that are not all the ones holding the nearest eligible rows)
          let budget = 0, spent = 0, counted = 0;
          if (byBudget) {
            for (const l of lists) budget += this.starts[l + 1] - this.starts[l];
            budget *= eligible!;
          }
          // one list of the probe: skipped under a filter when it holds no eligible row
          const probe = (l: number): void => {
            probed[l] = 1;
            if (byBudget) {
              const e = this.eligibleIn(l, excluded!);
              if (e === 0) return;
              spent += e;
              counted++;
            }
            scanList(l);
          };
          for (const l of lists) probe(l);
          if ((size < k || (byBudget && (spent < budget || counted < nprobe))) && got < this.nlist) {
            // too few eligible rows in the probed lists (or, under a filter's budget, too few
            // eligible rows scanned): go on with the next closest lists, nearest first. The next
            // 3 * nprobe come from one more top-k kernel call; only beyond them are all lists sorted.
            const cs = mem.f32(cScores, this.nlist).slice();
            const byScore = (x: number, y: number) => centroidSign * (cs[y] - cs[x]) || x - y;
            const gotMore = kern.topkPush(cScores, this.nlist, 0, centroidSign, more, moreIds, wide, 0);
            const stages = [Array.from(mem.u32(moreIds, gotMore)).filter((l) => !probed[l]).sort(byScore)];
            const go = () => size < k || (byBudget && (spent < budget || counted < nprobe));
            for (let st = 0; st < 2 && go(); st++) {
              if (st === 1) {
                if (gotMore >= this.nlist) break;
                const rest: number[] = [];
                for (let l = 0; l < this.nlist; l++) if (!probed[l]) rest.push(l);
                stages.push(rest.sort(byScore));
              }
              for (const l of stages[st]) {
                if (!go()) break;
                probe(l);
              }
            }
          }
        } finally {
          scorer?.release();
        }
        counters.scanned[qi] += scanned;
        // candidates best first, as ordinals (ties by the smaller ordinal)
        const keys = mem.f32(heapKeys, size), pos = mem.u32(heapIds, size);
        let order: number[] = [];
        if (byBounds && lowSize === k) {
          // a candidate whose optimistic score is below the k-th best pessimistic score cannot
          // enter the top-k: dropped before sorting (most of the bound rule's candidates are)
          const floor = mem.f32(lowKeys, 1)[0];
          for (let i = 0; i < size; i++) if (keys[i] >= floor) order.push(i);
          if (order.length < Math.min(k, size)) order = [];
        }
        if (order.length === 0) for (let i = 0; i < size; i++) order.push(i);
        const count = order.length;
        const ords = new Uint32Array(size);
        for (const i of order) ords[i] = this.ords[pos[i]];
        order.sort((x, y) => keys[y] - keys[x] || ords[x] - ords[y]);
        const sOrds = new Uint32Array(count), sKeys = new Float32Array(count);
        for (let i = 0; i < count; i++) { sOrds[i] = ords[order[i]]; sKeys[i] = keys[order[i]]; }
        if (!reranker) {
          const m = Math.min(k, count);
          out.ords.set(sOrds.subarray(0, m), qi * k);
          out.scores.set(sKeys.subarray(0, m), qi * k);
          out.counts[qi] = m;
          continue;
        }
        const list = { ords: sOrds, keys: sKeys, count };
        const res = byBounds ? reranker.rerankByBounds(query, list, k) : reranker.rerankAll(query, list, k);
        out.ords.set(res.ords, qi * k);
        out.scores.set(res.scores, qi * k);
        out.counts[qi] = res.count;
        counters.reranked[qi] += res.reranked;
      }
      return out;
    } finally {
      for (const p of ptrs) mem.release(p);
    }
  }

  /** Frees the index's kernel memory; it cannot be used afterwards. */
  release(): void {
    if (this.released) return;
    this.released = true;
    const mem = this.kernels.memory;
    for (const p of [this.centroidsPtr, this.dataPtr, this.invNormsPtr]) if (p) mem.release(p);
    this.centroidsPtr = this.dataPtr = this.invNormsPtr = 0;
  }

  private checkLive(): void {
    if (this.released) throw new QuiverError('CLOSED', 'this IvfIndex was released', { reason: 'released' });
  }
}

/**
 * Sets f32[at + i] (and f32[boundsAt + i] when boundsAt > 0) to NaN for every i < n whose row,
 * ordinal ords[first + i], is set in the `excluded` bitset. The flat scans use maskDeleted over a
 * contiguous ordinal range; a list's ordinals are scattered, so each is looked up (one word test).
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
