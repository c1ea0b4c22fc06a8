import { QuiverError } from '../errors.js';
import type { Metric } from '../collection/validate.js';
import { SCORE_KIND, type RowScoring } from '../kernels/graph.js';
import type { Kernels } from '../kernels/types.js';
import type { Quantizer, QueryScorer } from '../quant/types.js';
import { DEFAULT_RERANK_FACTOR, Reranker, toScoreInterval, type RerankRule } from '../query/rerank.js';
import { drainHeaps, maskDeleted } from './flat.js';
import { rankCandidates, writeHits } from './finish.js';
import type { HnswGraph } from './hnsw-graph.js';
import { chooseSetting, type Calibration } from './calibration.js';
import type { ExactScorer, IndexSearchParams, QueryCounters, SearchResultBatch, SegmentQuery, VectorIndex } from './types.js';

/**
 * A filter leaving fewer than this fraction of the rows walks the graph ACORN-1 style (masked
 * neighbours expanded to their eligible neighbours, never scored); above it, masked rows are
 * scored and walked through as hnswlib does (cheap when most rows are eligible). A priori.
 */
export const TWO_HOP_BELOW = 0.3;

/** Beam width of a search when neither the query nor a recall target sets one (usearch's default; chosen a priori). */
export const DEFAULT_EF_SEARCH = 64;

export interface HnswIndexOptions {
  metric: Metric;
  dimension: number;
  /** The quantizer whose codes are the rows (F16/SQ8/SQ4/LVQ/RaBitQ, with transforms); null = f32 rows. */
  quantizer: Quantizer | null;
  /**
   * Reranking with full vectors: `{ factor }` (the factor * k best estimates of the walk), or
   * `{ bounds: true }` for bounded quantizers (RaBitQ: every candidate of the beam, reranked by its
   * error bounds); null = estimates only.
   */
  rerank: RerankRule | null;
  exact: ExactScorer | null;
  defaultEf?: number;
  /** Measured recall per setting (calibration.ts), for searches with a recall target; null = none. */
  calibration?: Calibration | null;
  /** Whether release() frees `rows` (false when they belong to someone else). */
  ownsRows?: boolean;
  /** Whether release() frees the graph (false when it is borrowed, e.g. while calibrating). */
  ownsGraph?: boolean;
}

/**
 * A segment's HNSW index: the graph (hnsw-graph.ts) and the rows it is traversed on, both in the
 * segment's kernel memory: codes of a graph quantizer, or f32 vectors (unit for cosine). One
 * hnswSearch kernel call runs the whole search of one query (descent, beam search, visited set);
 * excluded rows (deletes, filters) are passed through, never returned. With reranking, the
 * factor*k best by code score are scored exactly (from the segment file) and the k best returned;
 * under the bound-driven rule (a bounded quantizer with a bare 'Rerank') the beam's ef candidates
 * are scored again as one block with their error bounds (their codes gathered, one scoreBlock
 * call) and reranked best-optimistic first until no remaining candidate can enter the top k, as
 * IVF and flat scans do: no fixed depth that caps recall (the segment asks for it with 1-bit
 * RaBitQ codes only, hnsw-segment.ts graphRerankRule).
 */
export class HnswIndex implements VectorIndex {
  readonly description: string;
  private released = false;

  /** rows: pointer to count rows of `rowBytes` each in kernels' memory, owned (freed) by the index. */
  constructor(readonly graph: HnswGraph, private readonly rows: number, readonly rowBytes: number, private readonly o: HnswIndexOptions) {
    if (o.rerank && 'bounds' in o.rerank && !o.quantizer?.bounded) {
      throw new QuiverError('INVALID_ARGUMENT', `bound-driven reranking needs a bounded quantizer; ${o.quantizer?.spec ?? 'f32 rows'} reports no error bounds`, { expected: 'bounded quantizer', received: o.quantizer?.spec ?? null });
    }
    if (o.rerank && !o.exact) throw new QuiverError('INVALID_ARGUMENT', 'reranking needs an ExactScorer', { name: 'exact', expected: 'ExactScorer' });
    this.description = `HNSW${graph.m}${o.quantizer ? `,${o.quantizer.spec}` : ''}`;
  }

  get kernels(): Kernels { return this.graph.kernels; }
  get count(): number { return this.graph.count; }
  /** The recall this index measured on its own rows at build time, per setting (null: none). */
  get calibration(): Calibration | null { return this.o.calibration ?? null; }
  get memoryBytes(): number { return this.graph.bytes + this.graph.scratchBytes + this.graph.count * this.rowBytes; }
  /** Bytes of the rows the graph is traversed on (codes or vectors). */
  get rowsBytes(): number { return this.graph.count * this.rowBytes; }

  search(q: SegmentQuery): SearchResultBatch {
    if (this.released) throw new QuiverError('CLOSED', 'this HNSW index was released', { reason: 'released' });
    const { nq, k } = q;
    const d = this.o.dimension;
    const p = this.settingFor(q.params, k);
    const rule: RerankRule | null = p.rerankFactor !== undefined && this.o.exact ? { factor: p.rerankFactor } : this.o.rerank;
    const byBounds = rule !== null && 'bounds' in rule;
    const factor = rule && 'factor' in rule ? rule.factor : null;
    const beam = Math.max(p.ef ?? this.o.defaultEf ?? DEFAULT_EF_SEARCH, k);
    // the bound rule takes every candidate of the beam; oversampling the factor*k best
    const cands = Math.max(1, Math.min(this.count, byBounds ? beam : factor === null ? k : factor * k));
    const ef = Math.max(beam, cands);
    // a beam over half the graph costs more than scoring every row, and a scan reaches rows the
    // graph may not (HNSW pruning can leave a few nodes unreachable): scan instead
    const scan = ef * 2 >= this.count || cands >= this.graph.heapCap - 1;
    const twoHop = q.excluded !== undefined && (q.params.eligible ?? 1) < TWO_HOP_BELOW;
    const mem = this.kernels.memory;
    const out = { k, ords: new Uint32Array(nq * k), scores: new Float32Array(nq * k), counts: new Uint32Array(nq) };
    const ptrs: number[] = [];
    const alloc = (bytes: number) => { const p = mem.alloc(bytes); ptrs.push(p); return p; };
    const reranker = rule !== null ? new Reranker(this.o.exact!) : null;
    try {
      const ids = alloc(cands * 4), scores = alloc(cands * 4);
      // the bound rule: the candidates' codes gathered, their estimates and bounds
      const gathered = byBounds ? alloc(cands * this.rowBytes) : 0, bounds = byBounds ? alloc(cands * 4) : 0;
      const all = scan ? alloc(this.count * 4) : 0;
      let excluded = 0;
      if (q.excluded && !scan) {
        const words = Math.ceil(this.count / 32);
        excluded = alloc(words * 4);
        mem.u32(excluded, words).set(q.excluded.subarray(0, words));
      }
      const qbuf = this.o.quantizer ? 0 : alloc(d * 4);
      for (let qi = 0; qi < nq; qi++) {
        const query = q.queries.subarray(qi * d, (qi + 1) * d);
        let scorer: QueryScorer | null = null;
        try {
          let scoring: RowScoring;
          if (this.o.quantizer) {
            scorer = this.o.quantizer.prepare(query);
            if (!scorer.rowScoring) throw new QuiverError('UNKNOWN_SPEC', `${this.o.quantizer.spec} codes cannot be traversed by a graph`, { received: this.o.quantizer.spec });
            scoring = scorer.rowScoring;
          } else {
            mem.f32(qbuf, d).set(query);
            scoring = { kind: this.o.metric === 'l2' ? SCORE_KIND.F32_L2 : SCORE_KIND.F32_DOT, d, stride: d * 4, scale: 0, bias: 0, p0: qbuf, p1: 0 };
          }
          let n: number;
          if (scan) {
            n = this.scanAll(scorer, qbuf, all, cands, q.excluded, ids, scores);
            q.counters.scanned[qi] += this.count;
          } else {
            n = this.graph.search(scoring, this.rows, cands, ef, excluded, ids, scores, twoHop);
            q.counters.scanned[qi] += this.graph.lastScored;
            if (twoHop && n < cands) {
              // the eligible rows near the query were not reachable in two hops (a mask aligned
              // with regions of the space, where ACORN-1 is known to fail): walk through the masked rows
              n = this.graph.search(scoring, this.rows, cands, ef, excluded, ids, scores, false);
              q.counters.scanned[qi] += this.graph.lastScored;
            }
          }
          if (byBounds) this.finishByBounds(out, qi, query, scorer!, ids, n, gathered, scores, bounds, reranker!, q.counters);
          else writeHits(out, qi, query, { ords: mem.u32(ids, n).slice(), keys: mem.f32(scores, n).slice(), count: n }, reranker, false, q.counters);
        } finally {
          scorer?.release();
        }
      }
      return out;
    } finally {
      for (const p of ptrs) mem.release(p);
    }
  }

  /**
   * The bound rule's end of a query: the n candidates at `ids` have their codes copied into
   * `gathered` (kernel memory, n * rowBytes) and scored in one scoreBlock call with error bounds,
   * turned into optimistic (at `est`) and pessimistic (at `bnd`) scores; a candidate whose
   * optimistic score is below the k-th best pessimistic one cannot enter the top k and is dropped;
   * the rest are reranked best-optimistic first until none left can beat the k-th exact score.
   */
  private finishByBounds(out: SearchResultBatch, qi: number, query: Float32Array, scorer: QueryScorer, ids: number, n: number, gathered: number, est: number, bnd: number, reranker: Reranker, counters: QueryCounters): void {
    const mem = this.kernels.memory, rb = this.rowBytes, k = out.k;
    const cand = mem.u32(ids, n).slice();
    this.kernels.gatherRows(this.rows, rb, ids, n, 0, gathered);
    scorer.scoreBlock(gathered, n, est, bnd);
    toScoreInterval(this.kernels, est, bnd, n);
    const high = mem.f32(est, n).slice();
    const floor = n > k ? mem.f32(bnd, n).slice().sort()[n - k] : null;
    writeHits(out, qi, query, rankCandidates(high, cand, k, floor), reranker, true, counters);
  }

  /**
   * VectorIndex.searchRows: the listed rows' codes (or vectors) scored in blocks, one block kernel
   * call per block and query, the best factor*k reranked with full vectors (as search does; under
   * the bound rule, the default oversampling factor).
   * Counters: scanned += n, reranked += vectors rescored.
   */
  searchRows(q: SegmentQuery, ords: Uint32Array, n: number): SearchResultBatch {
    if (this.released) throw new QuiverError('CLOSED', 'this HNSW index was released', { reason: 'released' });
    const { nq, k } = q;
    const d = this.o.dimension, rb = this.rowBytes;
    const p = this.settingFor(q.params, k);
    const factor = p.rerankFactor !== undefined && this.o.exact ? p.rerankFactor : this.o.rerank ? ('factor' in this.o.rerank ? this.o.rerank.factor : DEFAULT_RERANK_FACTOR) : null;
    const cands = Math.max(1, Math.min(n, factor === null ? k : factor * k));
    const out = { k, ords: new Uint32Array(nq * k), scores: new Float32Array(nq * k), counts: new Uint32Array(nq) };
    if (n === 0) return out;
    const kern = this.kernels, mem = kern.memory;
    const B = Math.max(1, Math.min(n, Math.floor((256 << 10) / rb)));
    const ptrs: number[] = [];
    const alloc = (bytes: number) => { const ptr = mem.alloc(bytes); ptrs.push(ptr); return ptr; };
    const scorers: (QueryScorer | null)[] = [];
    try {
      const block = alloc(B * rb), scores = alloc(B * 4), heapKeys = alloc(nq * cands * 4), heapIds = alloc(nq * cands * 4);
      const ids = alloc(n * 4);
      mem.u32(ids, n).set(ords.subarray(0, n));
      const qbuf = this.o.quantizer ? 0 : alloc(nq * d * 4);
      for (let qi = 0; qi < nq; qi++) {
        const query = q.queries.subarray(qi * d, (qi + 1) * d);
        if (this.o.quantizer) scorers.push(this.o.quantizer.prepare(query));
        else { mem.f32(qbuf + qi * d * 4, d).set(query); scorers.push(null); }
      }
      const sizes = new Int32Array(nq);
      for (let from = 0; from < n; from += B) {
        const m = Math.min(B, n - from);
        kern.gatherRows(this.rows, rb, ids + from * 4, m, 0, block);
        for (let qi = 0; qi < nq; qi++) {
          const sc = scorers[qi];
          if (sc) sc.scoreBlock(block, m, scores);
          else if (this.o.metric === 'l2') { kern.l2Many(qbuf + qi * d * 4, block, m, d, scores); kern.affineInPlace(scores, m, -1, 0); }
          else kern.dotMany(qbuf + qi * d * 4, block, m, d, scores);
          // heap ids are positions in `ords` (increasing, as topkPush needs); mapped back below
          sizes[qi] = kern.topkPush(scores, m, from, 1, heapKeys + qi * cands * 4, heapIds + qi * cands * 4, cands, sizes[qi]);
        }
      }
      const top = drainHeaps(mem.f32(heapKeys, nq * cands).slice(), mem.u32(heapIds, nq * cands).slice(), sizes, nq, cands);
      for (let i = 0; i < top.ords.length; i++) top.ords[i] = ords[top.ords[i]];
      const reranker = factor !== null ? new Reranker(this.o.exact!) : null;
      for (let qi = 0; qi < nq; qi++) {
        q.counters.scanned[qi] += n;
        const c = top.counts[qi];
        writeHits(out, qi, q.queries.subarray(qi * d, (qi + 1) * d), { ords: top.ords.subarray(qi * cands, qi * cands + c), keys: top.scores.subarray(qi * cands, qi * cands + c), count: c }, reranker, false, q.counters);
      }
      return out;
    } finally {
      for (const sc of scorers) sc?.release();
      for (const ptr of ptrs) mem.release(ptr);
    }
  }

  /**
   * The parameters of a search: explicit ef / rerankFactor win; a recall target fills the rest
   * from the calibration; without a calibration (a segment too small to sample) a recall target
   * gets an exhaustive scan.
   */
  private settingFor(params: IndexSearchParams, k: number): IndexSearchParams {
    if (params.recall === undefined) return params;
    const chosen = this.o.calibration ? chooseSetting(this.o.calibration, params.recall, k) : { ef: this.count };
    return { ...chosen, ...(params.ef !== undefined ? { ef: params.ef } : {}), ...(params.rerankFactor !== undefined ? { rerankFactor: params.rerankFactor } : {}) };
  }

  /**
   * Scores every row (one block kernel call), masks excluded rows, keeps the `cands` best at
   * ids/scores (best first). Returns the count.
   */
  private scanAll(scorer: QueryScorer | null, qbuf: number, all: number, cands: number, excluded: Uint32Array | undefined, ids: number, scores: number): number {
    const kern = this.kernels, mem = kern.memory, n = this.count, d = this.o.dimension;
    if (scorer) scorer.scoreBlock(this.rows, n, all);
    else if (this.o.metric === 'l2') { kern.l2Many(qbuf, this.rows, n, d, all); kern.affineInPlace(all, n, -1, 0); }
    else kern.dotMany(qbuf, this.rows, n, d, all);
    if (excluded) maskDeleted(mem.views().f32, all >> 2, excluded, 0, n);
    const size = kern.topkPush(all, n, 0, 1, scores, ids, cands, 0);
    const sorted = drainHeaps(mem.f32(scores, size).slice(), mem.u32(ids, size).slice(), Int32Array.of(size), 1, size);
    mem.u32(ids, size).set(sorted.ords.subarray(0, sorted.counts[0]));
    mem.f32(scores, size).set(sorted.scores.subarray(0, sorted.counts[0]));
    return sorted.counts[0];
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.o.ownsGraph !== false) this.graph.release();
    if (this.o.ownsRows !== false) this.kernels.memory.release(this.rows);
  }
}
