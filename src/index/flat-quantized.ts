import { checkPositiveInt, QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { checkCodesFingerprint } from '../quant/checks.js';
import type { Quantizer, QueryScorer } from '../quant/types.js';
import { candidatesFor, checkRerankRule, Reranker, toScoreInterval, type RerankCandidates, type RerankRule } from '../query/rerank.js';
import { drainHeaps, maskDeleted } from './flat.js';
import type { ExactScorer, SearchResultBatch, SegmentQuery, VectorIndex } from './types.js';

/**
 * The flat compressed index: one trained quantizer and the codes of every vector, scanned in
 * full for each query, then optionally reranked with full vectors.
 *
 * Codes live in kernel memory in the quantizer's scan layout (ScanLayout: rows, or blocks of 32
 * for fast-scan), in chunks of about 4 MiB addressed by dense ordinals 0..count-1. Appending
 * never moves existing codes; a fast-scan index keeps a copy of its row codes (the stored form)
 * so that a partly filled last block can be re-packed and rowCodes() can return rows.
 *
 * A search scores whole tiles of codes with one scoreBlock call per tile and query, masks
 * deleted ordinals, keeps candidates with the topkPush kernel, then:
 * - no rerank: the k best estimates;
 * - `{ factor }`: the factor*k best estimates are scored exactly (ExactScorer), the exact top-k
 *   returned;
 * - `{ bounds: true }` (bounded quantizers): the scan keeps candidates by optimistic score
 *   (estimate + bound) and the k-th best pessimistic score; reranking visits candidates best
 *   optimistic first and stops when no remaining candidate can enter the top-k.
 * Every result reports how many vectors were scored exactly.
 */
export interface FlatQuantizedSearchOptions {
  /** Deleted ordinals as a bitset: bit i (word i >> 5, bit i & 31) set = ordinal i is skipped. */
  deleted?: Uint32Array;
  /** How to rerank with full vectors (needs `exact`); absent or null = estimates only. */
  rerank?: RerankRule | null;
  /** Exact scores of full vectors by ordinal, for reranking. */
  exact?: ExactScorer;
  /** Bound-driven rule: most candidates the scan keeps by optimistic score (default max(2000, 200 * k)). */
  boundCandidates?: number;
}

export interface QuantizedHits {
  /** u32[count] ordinals, best first. */
  ords: Uint32Array;
  /** f32[count] scores (exact after reranking, estimates otherwise), larger = closer. */
  scores: Float32Array;
  count: number;
  /** Vectors scored exactly for this query (0 without rerank). */
  reranked: number;
}

export interface QuantizedSearchBatch extends SearchResultBatch {
  /** u32[nq]: vectors scored exactly per query. */
  readonly reranked: Uint32Array;
}

/** Target bytes of codes per kernel-memory chunk. */
const CHUNK_BYTES = 4 << 20;
/** Target bytes of codes per tile when a batch of queries shares a scan (kept in cache). */
const BATCH_TILE_BYTES = 256 << 10;
/** Vectors encoded per batch in add() (bounds the temporary row buffer). */
const ENCODE_BATCH = 4096;

export class FlatQuantizedIndex implements VectorIndex {
  readonly quantizer: Quantizer;
  readonly kernels: Kernels;
  /** Vectors per chunk (a whole number of scan blocks). */
  readonly chunkRows: number;
  private readonly blockRows: number;
  private readonly blockBytes: number;
  private readonly chunkBytes: number;
  private readonly chunks: number[] = [];
  private n = 0;
  /** Row codes (the stored form) when the scan layout groups rows into blocks; null for row layouts. */
  private rows: Uint8Array | null;
  private released = false;
  /** How search(SegmentQuery) reranks (set when a segment loads the index); null = estimates only. */
  private segmentRerank: { rule: RerankRule | null; exact: ExactScorer | null } = { rule: null, exact: null };

  /**
   * quantizer: trained; its kernels hold the codes. `expectedRows`, when known (a sealed
   * segment), sizes the chunks so that a small index does not hold a 4 MiB chunk.
   */
  constructor(quantizer: Quantizer, expectedRows?: number) {
    if (!quantizer || typeof quantizer.prepare !== 'function') {
      throw new QuiverError('INVALID_ARGUMENT', 'FlatQuantizedIndex needs a Quantizer', { expected: 'Quantizer', received: typeof quantizer });
    }
    if (!quantizer.trained) {
      throw new QuiverError('INVALID_ARGUMENT', `FlatQuantizedIndex needs a trained quantizer; ${quantizer.spec} is not trained`, { spec: quantizer.spec, expected: 'trained', received: 'untrained' });
    }
    this.quantizer = quantizer;
    this.kernels = quantizer.kernels;
    const layout = quantizer.scanLayout;
    this.blockRows = layout.blockRows;
    this.blockBytes = layout.blockBytes;
    let chunkBlocks = Math.max(1, Math.floor(CHUNK_BYTES / this.blockBytes));
    if (expectedRows !== undefined && expectedRows > 0) chunkBlocks = Math.min(chunkBlocks, Math.ceil(expectedRows / this.blockRows));
    this.chunkRows = chunkBlocks * this.blockRows;
    this.chunkBytes = chunkBlocks * this.blockBytes;
    this.rows = this.blockRows > 1 ? new Uint8Array(0) : null;
  }

  /** Vectors held (deleted ones included: deletion is a mask given at search time). */
  get count(): number { return this.n; }

  /** VectorIndex: the quantizer's spec. */
  get description(): string { return this.quantizer.spec; }
  get memoryBytes(): number { return this.bytes; }

  /**
   * How search(SegmentQuery) reranks: `rule` (null = return estimates) with full vectors from
   * `exact` (e.g. the segment file). A query's `params.rerankFactor` overrides the rule.
   */
  setRerank(rule: RerankRule | null, exact: ExactScorer | null): void {
    if (rule && !exact) throw new QuiverError('INVALID_ARGUMENT', 'reranking needs an ExactScorer', { name: 'exact', expected: 'ExactScorer' });
    this.segmentRerank = { rule: rule ? checkRerankRule(rule) : null, exact };
  }

  /** VectorIndex search: a full scan of the codes, then reranking as set by setRerank(). */
  search(q: SegmentQuery): QuantizedSearchBatch {
    const { exact } = this.segmentRerank;
    let rule = this.segmentRerank.rule;
    if (q.params.rerankFactor !== undefined && exact) rule = { factor: q.params.rerankFactor };
    const res = this.searchBatch(q.queries, q.nq, q.k, { deleted: q.excluded, rerank: rule, exact: exact ?? undefined });
    for (let i = 0; i < q.nq; i++) {
      q.counters.scanned[i] += this.n;
      q.counters.reranked[i] += res.reranked[i];
    }
    return res;
  }

  /**
   * Scores the codes of a gathered list of ordinals (not a contiguous block) for one prepared
   * query: out[i] = estimate for ords[i], i < n (and bounds[i] when given and the quantizer is
   * bounded). The codes are gathered into scratch kernel memory in the scan layout, then scored
   * with one scoreBlock call, as a graph traversal scores a node's neighbours.
   */
  scoreOrdinals(scorer: QueryScorer, ords: Uint32Array, n: number, out: Float32Array, bounds?: Float32Array): void {
    this.checkLive();
    if (n === 0) return;
    const cs = this.quantizer.codeSize, br = this.blockRows;
    const mem = this.kernels.memory;
    const blocks = Math.ceil(n / br);
    const codes = mem.alloc(blocks * this.blockBytes);
    const scores = mem.alloc(n * 4);
    const bnd = bounds && this.quantizer.bounded ? mem.alloc(n * 4) : 0;
    try {
      for (let i = 0; i < n; i++) if (ords[i] >= this.n) throw new QuiverError('INVALID_ARGUMENT', `ordinal ${ords[i]} is outside [0, ${this.n})`, { expected: `< ${this.n}`, received: ords[i] });
      if (!this.rows) {
        const u8 = mem.views().u8;
        for (let i = 0; i < n; i++) {
          const o = ords[i], c = Math.floor(o / this.chunkRows), r = o - c * this.chunkRows;
          const from = this.chunks[c] + r * cs;
          u8.copyWithin(codes + i * cs, from, from + cs);
        }
      } else {
        const gathered = new Uint8Array(n * cs);
        for (let i = 0; i < n; i++) gathered.set(this.rows.subarray(ords[i] * cs, (ords[i] + 1) * cs), i * cs);
        const packed = new Uint8Array(blocks * this.blockBytes);
        this.quantizer.scanLayout.pack(gathered, n, packed);
        mem.u8(codes, packed.length).set(packed);
      }
      scorer.scoreBlock(codes, n, scores, bnd);
      out.set(mem.f32(scores, n));
      if (bnd) bounds!.set(mem.f32(bnd, n));
    } finally {
      mem.release(codes); mem.release(scores);
      if (bnd) mem.release(bnd);
    }
  }

  /** Bytes of kernel memory held by the codes (whole chunks), plus the JS row copy for block layouts. */
  get bytes(): number {
    return this.chunks.length * this.chunkBytes + (this.rows ? this.n * this.quantizer.codeSize : 0);
  }

  /** Encodes and appends n vectors: f32[n * dimension] (ordinals count .. count + n - 1). */
  add(vectors: Float32Array, n: number): void {
    this.checkLive();
    const q = this.quantizer, d = q.dimension;
    if (!(vectors instanceof Float32Array) || !Number.isInteger(n) || n < 0 || vectors.length < n * d) {
      throw new QuiverError('DIMENSION_MISMATCH', `add: ${n} vectors of dimension ${d} need ${n * d} floats, got ${vectors instanceof Float32Array ? vectors.length : typeof vectors}`, {
        expected: n * d, received: vectors instanceof Float32Array ? vectors.length : typeof vectors, dimension: d,
      });
    }
    const batch = Math.min(n, ENCODE_BATCH);
    const rows = new Uint8Array(batch * q.codeSize);
    for (let s = 0; s < n; s += batch) {
      const m = Math.min(batch, n - s);
      q.encode(vectors.subarray(s * d, (s + m) * d), m, rows);
      this.appendRows(rows, m);
    }
  }

  /**
   * Appends n row codes (u8[n * codeSize], e.g. read from a segment). `origin` is the spec and
   * fingerprint stored beside them: INCOMPATIBLE_CODES unless they match this index's quantizer.
   */
  addCodes(rows: Uint8Array, n: number, origin?: { spec: string; fingerprint: number }): void {
    this.checkLive();
    const q = this.quantizer;
    if (origin) checkCodesFingerprint(q, origin.spec, origin.fingerprint);
    if (!(rows instanceof Uint8Array) || !Number.isInteger(n) || n < 0 || rows.length < n * q.codeSize) {
      throw new QuiverError('INCOMPATIBLE_CODES', `addCodes: ${n} codes of ${q.codeSize} bytes (${q.spec}) need ${n * q.codeSize} bytes, got ${rows instanceof Uint8Array ? rows.length : typeof rows}`, {
        spec: q.spec, expected: n * q.codeSize, received: rows instanceof Uint8Array ? rows.length : typeof rows,
      });
    }
    this.appendRows(rows, n);
  }

  /** Row codes of ordinals [from, to): u8[(to - from) * codeSize], a copy (what a segment stores). */
  rowCodes(from = 0, to = this.n): Uint8Array {
    this.checkLive();
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > this.n || from > to) {
      throw new QuiverError('INVALID_ARGUMENT', `rowCodes: range [${from}, ${to}) is outside [0, ${this.n})`, { expected: `0 <= from <= to <= ${this.n}`, received: [from, to] });
    }
    const cs = this.quantizer.codeSize;
    if (this.rows) return this.rows.slice(from * cs, to * cs);
    const out = new Uint8Array((to - from) * cs);
    const mem = this.kernels.memory;
    for (let o = from; o < to;) {
      const c = Math.floor(o / this.chunkRows), r = o - c * this.chunkRows;
      const m = Math.min(to - o, this.chunkRows - r);
      out.set(mem.u8(this.chunks[c] + r * cs, m * cs), (o - from) * cs);
      o += m;
    }
    return out;
  }

  private appendRows(rows: Uint8Array, n: number): void {
    if (n === 0) return;
    const cs = this.quantizer.codeSize;
    const mem = this.kernels.memory;
    const start = this.n, end = start + n;
    while (this.chunks.length * this.chunkRows < end) this.chunks.push(mem.alloc(this.chunkBytes));
    if (!this.rows) {
      // row layout: codes go straight to their chunk positions
      for (let o = start; o < end;) {
        const c = Math.floor(o / this.chunkRows), r = o - c * this.chunkRows;
        const m = Math.min(end - o, this.chunkRows - r);
        mem.u8(this.chunks[c] + r * cs, m * cs).set(rows.subarray((o - start) * cs, (o - start + m) * cs));
        o += m;
      }
    } else {
      // block layout: keep rows, re-pack every block touched (the old partial last block included)
      if (this.rows.length < end * cs) {
        const grown = new Uint8Array(Math.max(end * cs, this.rows.length * 2));
        grown.set(this.rows.subarray(0, start * cs));
        this.rows = grown;
      }
      this.rows.set(rows.subarray(0, n * cs), start * cs);
      const layout = this.quantizer.scanLayout;
      const br = this.blockRows;
      for (let b = Math.floor(start / br); b * br < end;) {
        const c = Math.floor((b * br) / this.chunkRows);
        const firstBlockInChunk = (c * this.chunkRows) / br;
        const blocksLeftInChunk = this.chunkRows / br - (b - firstBlockInChunk);
        const blocks = Math.min(blocksLeftInChunk, Math.ceil((end - b * br) / br));
        const rowsIn = Math.min(blocks * br, end - b * br);
        const packed = new Uint8Array(blocks * this.blockBytes);
        layout.pack(this.rows.subarray(b * br * cs, (b * br + rowsIn) * cs), rowsIn, packed);
        mem.u8(this.chunks[c] + (b - firstBlockInChunk) * this.blockBytes, packed.length).set(packed);
        b += blocks;
      }
    }
    this.n = end;
  }

  /** Searches one query: f32[dimension] (unit for cosine collections). */
  searchOne(query: Float32Array, k: number, options: FlatQuantizedSearchOptions = {}): QuantizedHits {
    const d = this.quantizer.dimension;
    if (!(query instanceof Float32Array) || query.length !== d) {
      throw new QuiverError('DIMENSION_MISMATCH', `search: the query must be a Float32Array of dimension ${d}`, {
        expected: d, received: query instanceof Float32Array ? query.length : typeof query,
      });
    }
    const batch = this.searchBatch(query, 1, k, options);
    const count = batch.counts[0];
    return { ords: batch.ords.slice(0, count), scores: batch.scores.slice(0, count), count, reranked: batch.reranked[0] };
  }

  /**
   * Searches nq queries: f32[nq * dimension], with explicit options (the quantizer-level form used
   * by tools and benchmarks; segments call search(SegmentQuery)). Tiles of codes are scored against every query
   * before moving on, so a tile is read from cache for all but the first query.
   */
  searchBatch(queries: Float32Array, nq: number, k: number, options: FlatQuantizedSearchOptions = {}): QuantizedSearchBatch {
    this.checkLive();
    const q = this.quantizer, d = q.dimension;
    checkPositiveInt(k, 'k', 1 << 20);
    if (!Number.isInteger(nq) || nq < 0) throw new QuiverError('INVALID_ARGUMENT', `nq must be a non-negative integer, got ${nq}`, { name: 'nq', received: nq });
    if (!(queries instanceof Float32Array) || queries.length < nq * d) {
      throw new QuiverError('DIMENSION_MISMATCH', `searchBatch: ${nq} queries of dimension ${d} need ${nq * d} floats, got ${queries instanceof Float32Array ? queries.length : typeof queries}`, {
        expected: nq * d, received: queries instanceof Float32Array ? queries.length : typeof queries,
      });
    }
    const rule = options.rerank == null ? null : checkRerankRule(options.rerank);
    if (rule && !options.exact) throw new QuiverError('INVALID_ARGUMENT', 'reranking needs an ExactScorer (options.exact)', { name: 'exact', expected: 'ExactScorer' });
    if (rule && 'bounds' in rule && !q.bounded) {
      throw new QuiverError('INVALID_ARGUMENT', `bound-driven reranking needs a bounded quantizer; ${q.spec} reports no error bounds (use { factor })`, { spec: q.spec, expected: 'bounded quantizer' });
    }
    const deleted = options.deleted;
    if (deleted !== undefined && !(deleted instanceof Uint32Array)) {
      throw new QuiverError('INVALID_ARGUMENT', 'deleted must be a Uint32Array bitset', { name: 'deleted', expected: 'Uint32Array', received: typeof deleted });
    }
    const boundCandidates = options.boundCandidates ?? Math.max(2000, 200 * k);
    const byBounds = rule !== null && 'bounds' in rule;
    const cap = Math.max(1, Math.min(this.n, rule ? candidatesFor(rule, k, boundCandidates) : k));

    const scorers: QueryScorer[] = [];
    const mem = this.kernels.memory;
    const tileRows = this.tileRows(nq);
    const ptrs: number[] = [];
    const alloc = (bytes: number): number => { const p = mem.alloc(bytes); ptrs.push(p); return p; };
    try {
      for (let i = 0; i < nq; i++) scorers.push(q.prepare(queries.subarray(i * d, (i + 1) * d)));
      const scratch = alloc(tileRows * 4);
      const boundsBuf = byBounds ? alloc(tileRows * 4) : 0;
      const heapKeys = alloc(nq * cap * 4), heapIds = alloc(nq * cap * 4);
      const lowKeys = byBounds ? alloc(nq * k * 4) : 0, lowIds = byBounds ? alloc(nq * k * 4) : 0;
      const sizes = new Int32Array(nq), lowSizes = new Int32Array(nq);
      const kern = this.kernels;
      for (let c = 0; c < this.chunks.length; c++) {
        const rowsInChunk = Math.min(this.chunkRows, this.n - c * this.chunkRows);
        for (let t = 0; t < rowsInChunk; t += tileRows) {
          const m = Math.min(tileRows, rowsInChunk - t);
          const codes = this.chunks[c] + (t / this.blockRows) * this.blockBytes;
          const firstOrd = c * this.chunkRows + t;
          for (let qi = 0; qi < nq; qi++) {
            scorers[qi].scoreBlock(codes, m, scratch, boundsBuf);
            if (byBounds) {
              // scratch <- estimate + bound (optimistic); boundsBuf <- estimate - bound (pessimistic)
              toScoreInterval(kern, scratch, boundsBuf, m);
            }
            if (deleted) {
              const F = kern.memory.views().f32;
              maskDeleted(F, scratch >> 2, deleted, firstOrd, m);
              if (boundsBuf) maskDeleted(F, boundsBuf >> 2, deleted, firstOrd, m);
            }
            sizes[qi] = kern.topkPush(scratch, m, firstOrd, 1, heapKeys + qi * cap * 4, heapIds + qi * cap * 4, cap, sizes[qi]);
            if (byBounds) lowSizes[qi] = kern.topkPush(boundsBuf, m, firstOrd, 1, lowKeys + qi * k * 4, lowIds + qi * k * 4, k, lowSizes[qi]);
          }
        }
      }
      const cands = drainHeaps(mem.f32(heapKeys, nq * cap).slice(), mem.u32(heapIds, nq * cap).slice(), sizes, nq, cap);
      if (!rule) {
        return this.truncate(cands, nq, cap, k);
      }
      const reranker = new Reranker(options.exact!);
      const out = { k, ords: new Uint32Array(nq * k), scores: new Float32Array(nq * k), counts: new Uint32Array(nq), reranked: new Uint32Array(nq) };
      const lowRoots = byBounds ? mem.f32(lowKeys, nq * k).slice() : null;
      for (let qi = 0; qi < nq; qi++) {
        let count = cands.counts[qi];
        const ords = cands.ords.subarray(qi * cap, qi * cap + count);
        const keys = cands.scores.subarray(qi * cap, qi * cap + count);
        if (byBounds && lowSizes[qi] === k) {
          // a candidate whose optimistic score is below the k-th best pessimistic score cannot
          // enter the top-k: drop the tail of the (sorted) list before reranking
          const floor = lowRoots![qi * k]; // heap root = k-th best pessimistic score
          while (count > k && keys[count - 1] < floor) count--;
        }
        const list: RerankCandidates = { ords, keys, count };
        const query = queries.subarray(qi * d, (qi + 1) * d);
        const res = byBounds ? reranker.rerankByBounds(query, list, k) : reranker.rerankAll(query, list, k);
        out.ords.set(res.ords, qi * k);
        out.scores.set(res.scores, qi * k);
        out.counts[qi] = res.count;
        out.reranked[qi] = res.reranked;
      }
      return out;
    } finally {
      for (const s of scorers) s.release();
      for (const p of ptrs) mem.release(p);
    }
  }

  /** Frees the codes' kernel memory; the index cannot be used afterwards. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const p of this.chunks) this.kernels.memory.release(p);
    this.chunks.length = 0;
    this.rows = null;
    this.n = 0;
  }

  private tileRows(nq: number): number {
    if (nq <= 1) return this.chunkRows;
    const blocks = Math.max(1, Math.floor(BATCH_TILE_BYTES / this.blockBytes));
    return Math.min(this.chunkRows, blocks * this.blockRows);
  }

  private truncate(c: SearchResultBatch, nq: number, cap: number, k: number): QuantizedSearchBatch {
    if (cap === k) return { ...c, k, reranked: new Uint32Array(nq) };
    const ords = new Uint32Array(nq * k), scores = new Float32Array(nq * k), counts = new Uint32Array(nq);
    for (let qi = 0; qi < nq; qi++) {
      const m = Math.min(k, c.counts[qi]);
      ords.set(c.ords.subarray(qi * cap, qi * cap + m), qi * k);
      scores.set(c.scores.subarray(qi * cap, qi * cap + m), qi * k);
      counts[qi] = m;
    }
    return { k, ords, scores, counts, reranked: new Uint32Array(nq) };
  }

  private checkLive(): void {
    if (this.released) throw new QuiverError('CLOSED', 'this FlatQuantizedIndex was released', { reason: 'released' });
  }
}
