import { checkPositiveInt, QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { testBit } from '../util/bitset.js';
import { checkSparseVector, type SparseIndex, type SparseInput, type SparseSearchParams, type SparseSearchResult } from './types.js';

/**
 * The per-segment learned-sparse index (one class, two ways to search):
 *
 * - a term dictionary (sorted strings; term id = position), a forward index (CSR: per row its
 *   term ids, ascending, and f32 weights) and the full posting lists (the forward index
 *   transposed at load: per term, rows ascending with their weights, and the term's max weight);
 * - optionally the Seismic structures (Bruch et al., SIGIR 2024): per term its `lambda` heaviest
 *   postings, clustered into blocks, each block with a summary (per-term max weight over the
 *   block's rows, pruned to `summaryMass` of its mass, quantized to u8 with a per-block scale).
 *
 * The forward index and the summaries live in kernel memory: the two hot loops (score a list of
 * rows against the query's dense weight table; score a run of summaries) are one kernel call per
 * block (src/kernels/sparse.ts, assembly/sparse.ts).
 */

/** Build settings recorded with the index (see build.ts for how they are used). */
export interface SparseBuildParams {
  /** Postings kept per term in the approximate lists (the heaviest ones). */
  lambda: number;
  /** Blocks per term list = ceil(list length * centroidFraction). */
  centroidFraction: number;
  /** Share of a block summary's mass (sum of its max weights) kept, heaviest entries first. */
  summaryMass: number;
  /** Largest block: bigger clusters are split by the term's weight. */
  maxBlockSize: number;
}

/** The Seismic structures: blocks of the pruned posting lists and their summaries. */
export interface SparseApproxData {
  /** u32[nTerms + 1]: term t's blocks are termBlockStart[t]..termBlockStart[t+1]. */
  termBlockStart: Uint32Array;
  /** u32[nBlocks + 1]: block b's rows are blockDocs[blockDocStart[b]..blockDocStart[b+1]]. */
  blockDocStart: Uint32Array;
  /** u32[nPruned]: row ordinals, ascending within a block. */
  blockDocs: Uint32Array;
  /** u32[nBlocks + 1]: block b's summary entries are sumStart[b]..sumStart[b+1]. */
  sumStart: Uint32Array;
  /** f32[nBlocks]: value of summary entry j of block b = sumScale[b] * sumCodes[j]. */
  sumScale: Float32Array;
  /** u32[nSummary]: term ids, ascending within a block. */
  sumTerms: Uint32Array;
  sumCodes: Uint8Array;
}

/** Everything an index is made of (what build.ts produces and section.ts encodes). */
export interface SparseIndexData {
  count: number;
  /** The dictionary, strictly ascending (JS string order); term id = index. */
  terms: readonly string[];
  /** Bitset of rows that have a value (an empty vector counts as a value). */
  present: Uint32Array;
  /** u32[count + 1]: row r's entries are rowStart[r]..rowStart[r+1] (empty for rows without a value). */
  rowStart: Uint32Array;
  /** u32[nnz]: term ids, strictly ascending within a row. */
  fwdTerms: Uint32Array;
  /** f32[nnz]: finite weights > 0. */
  fwdWeights: Float32Array;
  build: SparseBuildParams;
  approx: SparseApproxData | null;
}

/** Search defaults, chosen on a tuning split of queries separate from the reported ones (bench/README-sparse.md). */
export const DEFAULT_SEARCH: Readonly<Required<Omit<SparseSearchParams, 'mode'>>> = { queryTerms: 8, heapFactor: 1.1 };

/** Rows scored per kernel call by the exact paths (MaxScore candidates, brute force). */
const BATCH = 256;
/** Relative slack on upper bounds, covering the rounding of f64 bound sums against f32 scores. */
const EPS = 1e-6;

class TopK {
  readonly s: Float32Array;
  readonly o: Uint32Array;
  size = 0;
  constructor(readonly k: number) {
    this.s = new Float32Array(k);
    this.o = new Uint32Array(k);
  }
  /** The k-th best score once full, -Infinity before. */
  get threshold(): number { return this.size === this.k ? this.s[0] : -Infinity; }
  /** Root = the worst entry: lowest score, and of equal scores the highest ordinal. */
  push(score: number, ord: number): void {
    const s = this.s, o = this.o, k = this.k;
    if (this.size < k) {
      let pos = this.size++;
      while (pos > 0) {
        const p = (pos - 1) >> 1;
        if (!(score < s[p] || (score === s[p] && ord > o[p]))) break;
        s[pos] = s[p]; o[pos] = o[p]; pos = p;
      }
      s[pos] = score; o[pos] = ord;
      return;
    }
    if (!(score > s[0] || (score === s[0] && ord < o[0]))) return;
    let pos = 0;
    const n = this.size;
    for (;;) {
      let c = 2 * pos + 1;
      if (c >= n) break;
      if (c + 1 < n && (s[c + 1] < s[c] || (s[c + 1] === s[c] && o[c + 1] > o[c]))) c++;
      if (!(s[c] < score || (s[c] === score && o[c] > ord))) break;
      s[pos] = s[c]; o[pos] = o[c]; pos = c;
    }
    s[pos] = score; o[pos] = ord;
  }
  result(counters: { postingsScored: number; docsScored: number; blocksSkipped: number }): SparseSearchResult {
    const n = this.size;
    const idx = Array.from({ length: n }, (_, i) => i);
    idx.sort((a, b) => this.s[b] - this.s[a] || this.o[a] - this.o[b]);
    const ords = new Uint32Array(n), scores = new Float32Array(n);
    for (let i = 0; i < n; i++) { ords[i] = this.o[idx[i]]; scores[i] = this.s[idx[i]]; }
    return { ords, scores, count: n, ...counters };
  }
}

/** A validated query mapped onto this segment's term ids (unknown terms dropped). */
interface PreparedQuery {
  ids: Uint32Array;
  weights: Float64Array;
  n: number;
}

export class SeismicSparseIndex implements SparseIndex {
  readonly count: number;
  readonly hasApprox: boolean;
  readonly build: SparseBuildParams;
  private readonly kernels: Kernels;
  private readonly terms: readonly string[];
  private readonly dict: Map<string, number>;
  private readonly present: Uint32Array;
  private readonly nnz: number;
  // kernel memory
  private readonly pTable: number;
  private readonly pRowStart: number;
  /** u32[2 * nnz]: (term id, f32 weight bits) per forward-index entry. */
  private readonly pEntries: number;
  private readonly pSumStart: number;
  private readonly pSumTerms: number;
  private readonly pSumCodes: number;
  private readonly pSumScale: number;
  private readonly pRows: number;
  private readonly pOut: number;
  private readonly scratchRows: number;
  private readonly nSummary: number;
  private readonly nBlocks: number;
  private readonly kernelBytes: number;
  private readonly allocs: number[] = [];
  // full posting lists (exact mode) and term maxima
  private readonly postStart: Uint32Array;
  private readonly postDocs: Uint32Array;
  private readonly postWeights: Float32Array;
  private readonly termMax: Float32Array;
  // approx lists (JS side: the query walks them to gather rows)
  private readonly termBlockStart: Uint32Array | null;
  private readonly blockDocStart: Uint32Array | null;
  private readonly blockDocs: Uint32Array | null;
  private readonly visited: Uint32Array;
  private readonly blockOrder: Uint32Array;
  private readonly blockKeys: Float64Array;
  private readonly summaryScores: Float32Array;
  private epoch = 0;
  private released = false;

  /** Takes over `data` (its forward index and summaries move into kernel memory). */
  constructor(data: SparseIndexData, kernels: Kernels) {
    this.kernels = kernels;
    this.count = data.count;
    this.build = data.build;
    this.terms = data.terms;
    this.present = data.present;
    this.nnz = data.fwdTerms.length;
    const nTerms = data.terms.length;
    this.dict = new Map();
    for (let t = 0; t < nTerms; t++) this.dict.set(data.terms[t], t);

    // the full posting lists: the forward index transposed (rows ascending within a term)
    const postStart = new Uint32Array(nTerms + 1);
    for (let j = 0; j < this.nnz; j++) postStart[data.fwdTerms[j] + 1]++;
    for (let t = 0; t < nTerms; t++) postStart[t + 1] += postStart[t];
    const fill = postStart.slice(0, nTerms);
    const postDocs = new Uint32Array(this.nnz), postWeights = new Float32Array(this.nnz), termMax = new Float32Array(nTerms);
    for (let r = 0; r < this.count; r++) {
      for (let j = data.rowStart[r], e = data.rowStart[r + 1]; j < e; j++) {
        const t = data.fwdTerms[j], w = data.fwdWeights[j];
        const p = fill[t]++;
        postDocs[p] = r; postWeights[p] = w;
        if (w > termMax[t]) termMax[t] = w;
      }
    }
    this.postStart = postStart; this.postDocs = postDocs; this.postWeights = postWeights; this.termMax = termMax;

    const a = data.approx;
    this.hasApprox = a !== null;
    this.termBlockStart = a?.termBlockStart ?? null;
    this.blockDocStart = a?.blockDocStart ?? null;
    this.blockDocs = a?.blockDocs ?? null;
    this.nBlocks = a ? a.sumScale.length : 0;
    this.nSummary = a ? a.sumTerms.length : 0;
    let maxBlock = 0, maxBlocksPerTerm = 0;
    if (a) {
      for (let b = 0; b < this.nBlocks; b++) maxBlock = Math.max(maxBlock, a.blockDocStart[b + 1] - a.blockDocStart[b]);
      for (let t = 0; t < nTerms; t++) maxBlocksPerTerm = Math.max(maxBlocksPerTerm, a.termBlockStart[t + 1] - a.termBlockStart[t]);
    }
    this.scratchRows = Math.max(BATCH, maxBlock, maxBlocksPerTerm);

    const mem = kernels.memory;
    let bytes = 0;
    const alloc = (n: number): number => { const p = mem.alloc(n); this.allocs.push(p); bytes += Math.max(16, (n + 15) & ~15); return p; };
    try {
      this.pTable = alloc(4 * Math.max(1, nTerms));
      this.pRowStart = alloc(4 * (this.count + 1));
      this.pEntries = alloc(8 * this.nnz);
      this.pSumStart = a ? alloc(4 * (this.nBlocks + 1)) : 0;
      this.pSumTerms = a ? alloc(4 * this.nSummary) : 0;
      this.pSumCodes = a ? alloc(this.nSummary) : 0;
      this.pSumScale = a ? alloc(4 * this.nBlocks) : 0;
      this.pRows = alloc(4 * this.scratchRows);
      this.pOut = alloc(4 * this.scratchRows);
    } catch (e) {
      for (const p of this.allocs) mem.release(p);
      throw e;
    }
    this.kernelBytes = bytes;
    mem.u32(this.pRowStart, this.count + 1).set(data.rowStart);
    {
      const { u32, f32 } = mem.views();
      const e0 = this.pEntries >> 2;
      for (let j = 0; j < this.nnz; j++) { u32[e0 + 2 * j] = data.fwdTerms[j]; f32[e0 + 2 * j + 1] = data.fwdWeights[j]; }
    }
    if (a) {
      mem.u32(this.pSumStart, this.nBlocks + 1).set(a.sumStart);
      mem.u32(this.pSumTerms, this.nSummary).set(a.sumTerms);
      mem.u8(this.pSumCodes, this.nSummary).set(a.sumCodes);
      mem.f32(this.pSumScale, this.nBlocks).set(a.sumScale);
    }
    this.visited = new Uint32Array(this.count);
    this.blockOrder = new Uint32Array(this.scratchRows);
    this.blockKeys = new Float64Array(this.scratchRows);
    this.summaryScores = new Float32Array(this.scratchRows);
  }

  get memoryBytes(): number {
    let dictBytes = 0;
    for (const t of this.terms) dictBytes += 2 * t.length + 80; // string + Map entry, roughly
    const js = this.present.byteLength + this.postStart.byteLength + this.postDocs.byteLength + this.postWeights.byteLength
      + this.termMax.byteLength + this.visited.byteLength
      + (this.termBlockStart?.byteLength ?? 0) + (this.blockDocStart?.byteLength ?? 0) + (this.blockDocs?.byteLength ?? 0);
    return this.kernelBytes + js + dictBytes;
  }

  /** Number of distinct terms in the dictionary. */
  get termCount(): number { return this.terms.length; }

  termUpperBound(term: string): number {
    const t = this.dict.get(term);
    return t === undefined ? 0 : this.termMax[t];
  }

  vectorAt(ord: number): SparseInput | undefined {
    this.live();
    if (!Number.isInteger(ord) || ord < 0 || ord >= this.count) {
      throw new QuiverError('INVALID_ARGUMENT', `row ${ord} is outside 0..${this.count - 1}`, { expected: `integer in [0, ${this.count})`, received: ord });
    }
    if (!testBit(this.present, ord)) return undefined;
    const { u32, f32 } = this.kernels.memory.views();
    const rs = this.pRowStart >> 2, e0 = this.pEntries >> 2;
    const out: Record<string, number> = Object.create(null) as Record<string, number>;
    for (let j = u32[rs + ord], e = u32[rs + ord + 1]; j < e; j++) out[this.terms[u32[e0 + 2 * j]]] = f32[e0 + 2 * j + 1];
    return out;
  }

  /** A copy of everything the index is made of (for section.ts and merges). */
  exportData(): SparseIndexData {
    this.live();
    const mem = this.kernels.memory;
    const entries = mem.u32(this.pEntries, 2 * this.nnz), weights = mem.f32(this.pEntries, 2 * this.nnz);
    const approx: SparseApproxData | null = this.hasApprox ? {
      termBlockStart: this.termBlockStart!.slice(),
      blockDocStart: this.blockDocStart!.slice(),
      blockDocs: this.blockDocs!.slice(),
      sumStart: mem.u32(this.pSumStart, this.nBlocks + 1).slice(),
      sumScale: mem.f32(this.pSumScale, this.nBlocks).slice(),
      sumTerms: mem.u32(this.pSumTerms, this.nSummary).slice(),
      sumCodes: mem.u8(this.pSumCodes, this.nSummary).slice(),
    } : null;
    return {
      count: this.count, terms: this.terms, present: this.present.slice(), build: { ...this.build },
      rowStart: mem.u32(this.pRowStart, this.count + 1).slice(),
      fwdTerms: Uint32Array.from({ length: this.nnz }, (_, j) => entries[2 * j]),
      fwdWeights: Float32Array.from({ length: this.nnz }, (_, j) => weights[2 * j + 1]),
      approx,
    };
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const p of this.allocs) this.kernels.memory.release(p);
    this.allocs.length = 0;
  }

  private live(): void {
    if (this.released) throw new QuiverError('CLOSED', 'this sparse index was released');
  }

  /** Validates the query, maps its terms to ids and writes its weights into the table. */
  private prepare(query: SparseInput): PreparedQuery {
    const q = checkSparseVector(query, 'sparse query');
    const keys = Object.keys(q);
    const ids = new Uint32Array(keys.length), weights = new Float64Array(keys.length);
    let n = 0;
    const { f32 } = this.kernels.memory.views();
    const t0 = this.pTable >> 2;
    for (const key of keys) {
      const t = this.dict.get(key);
      if (t === undefined) continue;
      const w = Math.fround(q[key]);
      if (!(w > 0)) continue;
      ids[n] = t; weights[n] = w; n++;
      f32[t0 + t] = w;
    }
    return { ids, weights, n };
  }

  private clearTable(q: PreparedQuery): void {
    const { f32 } = this.kernels.memory.views();
    const t0 = this.pTable >> 2;
    for (let i = 0; i < q.n; i++) f32[t0 + q.ids[i]] = 0;
  }

  /** Scores the n rows in the row scratch (one kernel call) and pushes the positive ones. */
  private scoreRows(rows: Uint32Array, n: number, heap: TopK): void {
    if (n === 0) return;
    const { u32, f32 } = this.kernels.memory.views();
    const r0 = this.pRows >> 2;
    for (let i = 0; i < n; i++) u32[r0 + i] = rows[i];
    this.kernels.sparseScoreRows(this.pTable, this.pRowStart, this.pEntries, this.pRows, n, this.pOut);
    const o0 = this.pOut >> 2;
    for (let i = 0; i < n; i++) {
      const s = f32[o0 + i];
      if (s > 0) heap.push(s, rows[i]);
    }
  }

  search(query: SparseInput, k: number, excluded?: Uint32Array, params: SparseSearchParams = {}): SparseSearchResult {
    this.live();
    checkPositiveInt(k, 'k');
    if (excluded !== undefined && !(excluded instanceof Uint32Array)) {
      throw new QuiverError('INVALID_ARGUMENT', 'excluded must be a Uint32Array bitset', { expected: 'Uint32Array', received: typeof excluded });
    }
    const mode = params.mode ?? (this.hasApprox ? 'approx' : 'exact');
    if (mode !== 'approx' && mode !== 'exact') {
      throw new QuiverError('INVALID_ARGUMENT', `mode must be "approx" or "exact", got ${String(mode)}`, { expected: ['approx', 'exact'], received: mode });
    }
    const queryTerms = params.queryTerms ?? DEFAULT_SEARCH.queryTerms;
    checkPositiveInt(queryTerms, 'queryTerms');
    const heapFactor = params.heapFactor ?? DEFAULT_SEARCH.heapFactor;
    if (typeof heapFactor !== 'number' || !(heapFactor > 0) || !Number.isFinite(heapFactor)) {
      throw new QuiverError('INVALID_ARGUMENT', `heapFactor must be a finite number > 0, got ${String(heapFactor)}`, { expected: 'finite number > 0', received: heapFactor });
    }
    const q = this.prepare(query);
    const heap = new TopK(Math.min(k, Math.max(1, this.count)));
    const counters = { postingsScored: 0, docsScored: 0, blocksSkipped: 0 };
    try {
      if (q.n > 0 && this.count > 0) {
        if (mode === 'approx' && this.hasApprox) this.approx(q, heap, excluded, queryTerms, heapFactor, counters);
        else this.maxScore(q, heap, excluded, counters);
      }
    } finally {
      this.clearTable(q);
    }
    return heap.result(counters);
  }

  /**
   * Exact top-k by scoring every row with a value through the forward index (BATCH rows per
   * kernel call): the brute-force reference for tests and benchmarks.
   */
  searchBruteForce(query: SparseInput, k: number, excluded?: Uint32Array): SparseSearchResult {
    this.live();
    checkPositiveInt(k, 'k');
    const q = this.prepare(query);
    const heap = new TopK(Math.min(k, Math.max(1, this.count)));
    const rows = new Uint32Array(BATCH);
    let n = 0, docs = 0;
    try {
      if (q.n > 0) {
        for (let r = 0; r < this.count; r++) {
          if (excluded && testBit(excluded, r)) continue;
          rows[n++] = r;
          if (n === BATCH) { this.scoreRows(rows, n, heap); docs += n; n = 0; }
        }
        this.scoreRows(rows, n, heap); docs += n;
      }
    } finally {
      this.clearTable(q);
    }
    return heap.result({ postingsScored: 0, docsScored: docs, blocksSkipped: 0 });
  }

  /**
   * MaxScore over the full posting lists. Query terms are sorted by upper bound (query weight x
   * the term's max weight); the longest prefix whose bounds sum below the k-th best score is
   * non-essential: a row appearing only in those lists cannot enter the top-k. Rows are taken in
   * order from the essential lists; a row whose essential partial score plus the non-essential
   * bounds falls below the threshold is dropped, the others are scored in full through the forward
   * index (BATCH per kernel call; a threshold that lags by a batch is only conservative).
   */
  private maxScore(q: PreparedQuery, heap: TopK, excluded: Uint32Array | undefined, c: { postingsScored: number; docsScored: number }): void {
    const m = q.n;
    const order = Array.from({ length: m }, (_, i) => i);
    const ub = new Float64Array(m);
    for (let i = 0; i < m; i++) ub[i] = q.weights[i] * this.termMax[q.ids[i]];
    order.sort((a, b) => ub[a] - ub[b] || q.ids[a] - q.ids[b]);
    const w = new Float64Array(m), pos = new Uint32Array(m), end = new Uint32Array(m), prefix = new Float64Array(m);
    let acc = 0;
    for (let i = 0; i < m; i++) {
      const j = order[i], t = q.ids[j];
      w[i] = q.weights[j]; pos[i] = this.postStart[t]; end[i] = this.postStart[t + 1];
      acc += ub[j]; prefix[i] = acc;
    }
    const docs = this.postDocs, pw = this.postWeights;
    const rows = new Uint32Array(BATCH);
    let n = 0, first = 0, threshold = -Infinity, nonEssential = 0;
    const flush = (): void => {
      this.scoreRows(rows, n, heap);
      c.docsScored += n; n = 0;
      threshold = heap.threshold;
      while (first < m && prefix[first] * (1 + EPS) < threshold) first++;
      nonEssential = first > 0 ? prefix[first - 1] : 0;
    };
    for (;;) {
      let d = 0xffffffff;
      for (let i = first; i < m; i++) if (pos[i] < end[i] && docs[pos[i]] < d) d = docs[pos[i]];
      if (d === 0xffffffff) break;
      let partial = 0;
      for (let i = first; i < m; i++) {
        const p = pos[i];
        if (p < end[i] && docs[p] === d) { partial += w[i] * pw[p]; pos[i] = p + 1; c.postingsScored++; }
      }
      if (excluded !== undefined && (excluded[d >>> 5] & (1 << (d & 31))) !== 0) continue;
      if ((partial + nonEssential) * (1 + EPS) < threshold) continue;
      rows[n++] = d;
      if (n === BATCH) flush();
    }
    flush();
  }

  /**
   * Seismic's query: the heaviest `queryTerms` query terms, each list's blocks scored by their
   * summaries in one kernel call and visited best summary first; a block is scored in full (one
   * kernel call for its rows not yet seen) while its summary reaches threshold / heapFactor, and the
   * rest of that list is skipped once one does not (the order makes every later one lower too).
   * Nothing is allocated in kernel memory during the query, so its views stay valid throughout.
   */
  private approx(q: PreparedQuery, heap: TopK, excluded: Uint32Array | undefined, queryTerms: number, heapFactor: number,
    c: { postingsScored: number; docsScored: number; blocksSkipped: number }): void {
    const tbs = this.termBlockStart!, bds = this.blockDocStart!, bdocs = this.blockDocs!;
    // the heaviest terms first (ties: lower term id)
    const order = Array.from({ length: q.n }, (_, i) => i);
    order.sort((a, b) => q.weights[b] - q.weights[a] || q.ids[a] - q.ids[b]);
    const cut = Math.min(queryTerms, q.n);
    if (++this.epoch === 0xffffffff) { this.visited.fill(0); this.epoch = 1; }
    const epoch = this.epoch, visited = this.visited;
    const blocks = this.blockOrder, keys = this.blockKeys;
    const { u32: U32, f32: F32 } = this.kernels.memory.views();
    const rows0 = this.pRows >> 2, out0 = this.pOut >> 2;
    const summaries = this.summaryScores;
    let postings = 0, docs = 0, skipped = 0;
    for (let i = 0; i < cut; i++) {
      const t = q.ids[order[i]];
      const b0 = tbs[t], nb = tbs[t + 1] - b0;
      if (nb === 0) continue;
      this.kernels.sparseScoreSummaries(this.pTable, this.pSumStart, this.pSumTerms, this.pSumCodes, this.pSumScale, b0, nb, this.pOut);
      // the blocks that reach the bar now (it only rises while the list is walked), best summary
      // first (ties: earlier block), sorted as packed keys: summaries are >= 0, so their f32 bits
      // order like the values; key = bits * 2^21 + (2^21 - 1 - block) < 2^52 is an exact double
      const bar = heap.threshold / heapFactor;
      let m = 0;
      for (let j = 0; j < nb; j++) {
        const sc = F32[out0 + j];
        if (sc >= bar) keys[m++] = U32[out0 + j] * 2097152 + (2097151 - j);
      }
      const sorted = keys.subarray(0, m).sort();
      for (let j = 0; j < m; j++) {
        const key = sorted[m - 1 - j];
        const bits = Math.floor(key / 2097152);
        blocks[j] = 2097151 - (key - bits * 2097152);
        summaries[j] = F32[out0 + blocks[j]];
      }
      skipped += nb - m;
      for (let j = 0; j < m; j++) {
        if (summaries[j] < heap.threshold / heapFactor) { skipped += m - j; break; }
        const b = b0 + blocks[j];
        let n = 0;
        const e = bds[b + 1];
        postings += e - bds[b];
        for (let p = bds[b]; p < e; p++) {
          const d = bdocs[p];
          if (visited[d] === epoch) continue;
          visited[d] = epoch;
          if (excluded !== undefined && (excluded[d >>> 5] & (1 << (d & 31))) !== 0) continue;
          U32[rows0 + n++] = d;
        }
        if (n === 0) continue;
        docs += n;
        this.kernels.sparseScoreRows(this.pTable, this.pRowStart, this.pEntries, this.pRows, n, this.pOut);
        for (let p = 0; p < n; p++) {
          const sc = F32[out0 + p];
          if (sc > 0) heap.push(sc, U32[rows0 + p]);
        }
      }
    }
    c.postingsScored += postings; c.docsScored += docs; c.blocksSkipped += skipped;
  }
}
