import type { KernelMemory } from './memory.js';
import type { DenseKernels } from './types.js';
import type { RabitqKernels } from './rabitq.js';
import type { ScalarKernels } from './scalar.js';

/**
 * Proximity-graph (HNSW) kernels: the interface, the memory layout of their structs, and the
 * plain JS twin. The WASM implementation is assembly/graph.ts with the same export names;
 * test/kernels-graph.test.ts checks the twins agree.
 *
 * A graph is a header of u32 words (GRAPH_WORDS) pointing at flat arrays in kernel memory:
 *   level 0: u32[cap * (M0 + 1)], per node [degree, ids...] (fixed degree, contiguous), or,
 *            packed (a sealed graph, read-only: L0OFF != 0), the lists [degree, ids...] back to
 *            back with node i's at word L0OFF[i] of the pool (about 3/4 of the fixed size);
 *   levels:  u8[cap], the top level of each node (drawn before insertion, seeded);
 *   upper:   sparse: UPPEROFF[i] (word index into the pool) for nodes with a level >= 1; level l
 *            of node i is the list at pool word UPPEROFF[i] + (l - 1) * (M + 1);
 *   scratch: u16[cap] visited epoch tags, heaps and work lists of cap + 1 entries.
 * A scorer (SCORER_WORDS, SCORER_BYTES: 12 words) says how to score a node for one query: its
 * kind (below), the query side (pointers into kernel memory, an f32 AUX and the code widths in
 * BITS), the rows of codes or f32 vectors, one per node, and a one-f32 scratch the kernel of the
 * kind writes its score to.
 */

/** How a node's row is scored; each kind calls the family kernel of that code on one row. */
export const SCORE_KIND = {
  /** <q, x> over f32 rows (+ bias). */
  F32_DOT: 1,
  /** bias - ||q - x||^2 over f32 rows. */
  F32_L2: 2,
  F16_DOT: 3,
  F16_L2: 4,
  /** sqDotU8(p0, scale, row, 1, d, stride, bias). */
  SQ8_DOT: 5,
  /** sqL2U8(p0, p1, row, 1, d, stride, bias). */
  SQ8_L2: 6,
  SQ4_DOT: 7,
  SQ4_L2: 8,
  /** lvqScore(p0, p1, scale, aux, row, 1, d, stride, bits & 0xff, bits >> 8, 0, bias): LVQ rows, dot. */
  LVQ_DOT: 9,
  /** As LVQ_DOT with the l2 flag set (rows carry their squared norm). */
  LVQ_L2: 10,
  /** rabitqScan(row, 1, stride, bits & 0xff, d / 8, p0, bits >> 8, p1) + bias: RaBitQ bit planes (d = rotated D). */
  RABITQ_PLANES: 11,
  /** rabitqScanDirect(row, 1, stride, d, bits, p0, p1) + bias: RaBitQ nibbles (bits 4) or bytes (bits 8). */
  RABITQ_DIRECT: 12,
} as const;
export type ScoreKind = (typeof SCORE_KIND)[keyof typeof SCORE_KIND];

/** What a query scorer tells a graph search about scoring one row (QueryScorer.rowScoring). */
export interface RowScoring {
  readonly kind: ScoreKind;
  /** Dimension the kernel reads (RaBitQ: the rotated, padded dimension D). */
  readonly d: number;
  /** Bytes per row. */
  readonly stride: number;
  readonly scale: number;
  /** Added to every score (a transform's shift lands here). */
  readonly bias: number;
  /** Query-side pointers into the scorer's kernel memory (RaBitQ: p0 the quantized query, p1 its f32[8] params). */
  readonly p0: number;
  readonly p1: number;
  /** An extra f32 of the query side (LVQ: the sum of the query values); 0 when absent. */
  readonly aux?: number;
  /**
   * Code widths (u32; 0 when absent): LVQ bits1 | bits2 << 8; RaBitQ planes codeBits |
   * queryBits << 8; RaBitQ direct 4 (nibbles) or 8 (bytes).
   */
  readonly bits?: number;
}

/** Word indexes of the graph header (u32 each; pointers are byte offsets). */
export const GRAPH_WORDS = {
  COUNT: 0, CAP: 1, M: 2, M0: 3, ENTRY: 4, MAXLEVEL: 5, LEVEL0: 6, LEVELS: 7, UPPEROFF: 8, UPPER: 9,
  VISITED: 10, EPOCH: 11, CKEYS: 12, CIDS: 13, RKEYS: 14, RIDS: 15, TKEYS: 16, TIDS: 17, SKEYS: 18, SIDS: 19, SCORED: 20,
  NBUF: 21, HEAPCAP: 22, TWOHOP: 23,
  /** u32[cap] per-node locks of a concurrent build on shared memory; 0 = one thread (the JS twin never locks). */
  LOCKS: 24,
  /** u32[cap] word offset of each node's level-0 list in a packed level 0; 0 = the fixed layout. */
  L0OFF: 25,
} as const;
export const GRAPH_HEADER_BYTES = 112;
/** Word indexes of a scorer struct. */
export const SCORER_WORDS = {
  KIND: 0, D: 1, STRIDE: 2, SCALE: 3, BIAS: 4, P0: 5, P1: 6, CODES: 7,
  /** Pointer to the f32 the family kernel writes its one score to: the struct's own SCRATCH word. */
  OUT: 8,
  /** f32: RowScoring.aux. */
  AUX: 9,
  SCRATCH: 10,
  /** u32: RowScoring.bits. */
  BITS: 11,
} as const;
export const SCORER_BYTES = 48;

/** Writes the scorer struct at s (SCORER_BYTES) for `r` over the rows at `rows`. */
export function writeScorer(memory: KernelMemory, s: number, r: RowScoring, rows: number): void {
  const u = memory.u32(s, SCORER_BYTES / 4), f = memory.f32(s, SCORER_BYTES / 4), S = SCORER_WORDS;
  u.fill(0);
  u[S.KIND] = r.kind; u[S.D] = r.d; u[S.STRIDE] = r.stride; f[S.SCALE] = r.scale; f[S.BIAS] = r.bias;
  u[S.P0] = r.p0; u[S.P1] = r.p1; u[S.CODES] = rows; u[S.OUT] = s + 4 * S.SCRATCH;
  f[S.AUX] = r.aux ?? 0; u[S.BITS] = r.bits ?? 0;
}
/** ENTRY of an empty graph. */
export const NO_NODE = 0xffffffff;
/** Most entries of a graph's search heaps and work lists: bounds ef and the scratch a graph holds. */
export const GRAPH_HEAP_CAP = 65536;

export interface GraphKernels {
  /**
   * Inserts the n nodes listed at `nodes` (u32[n], in order, none yet in the graph; levels and
   * upper slots set beforehand) into graph g with the build scorer s: kind F32_DOT or F32_L2 over
   * f32 rows, one per node. Nodes not yet inserted have empty lists and are never linked to.
   * efConstruction: beam width.
   */
  hnswInsert(g: number, s: number, nodes: number, n: number, efConstruction: number): void;
  /**
   * The whole search of one query: descent through the upper levels, beam search of width
   * max(ef, k) on level 0 with scorer s; nodes with their bit set in `excluded` (u32 bitset
   * pointer, 0 = none) are traversed, never returned. Writes up to k hits best first to
   * outIds: u32[k], outScores: f32[k]; returns the count. SCORED = codes scored.
   */
  hnswSearch(g: number, s: number, k: number, ef: number, excluded: number, outIds: number, outScores: number): number;
}

/** The JS twin of the graph kernels, scoring rows with the twin kernels `k` on `memory`. */
export function graphTwin(memory: KernelMemory, k: () => DenseKernels & ScalarKernels & RabitqKernels): GraphKernels {
  const W = GRAPH_WORDS, S = SCORER_WORDS;
  let U32: Uint32Array, F32: Float32Array, U16: Uint16Array, U8: Uint8Array;
  const views = () => { const v = memory.views(); U32 = v.u32; F32 = v.f32; U16 = v.u16; U8 = v.u8; };

  function scoreNode(s: number, node: number): number {
    const w = s >> 2;
    const kind = U32[w + S.KIND], d = U32[w + S.D], stride = U32[w + S.STRIDE];
    const row = U32[w + S.CODES] + node * stride, out = U32[w + S.OUT], p0 = U32[w + S.P0], p1 = U32[w + S.P1];
    const bias = F32[w + S.BIAS], scale = F32[w + S.SCALE];
    const kern = k();
    let r: number;
    switch (kind) {
      case 1: kern.dotMany(p0, row, 1, d, out); r = Math.fround(F32[out >> 2] + bias); break;
      case 2: kern.l2Many(p0, row, 1, d, out); r = Math.fround(bias - F32[out >> 2]); break;
      case 3: kern.dotManyF16(p0, row, 1, d, out); r = Math.fround(F32[out >> 2] + bias); break;
      case 4: kern.l2ManyF16(p0, row, 1, d, out); r = Math.fround(bias - F32[out >> 2]); break;
      case 5: kern.sqDotU8(p0, scale, row, 1, d, stride, bias, out); r = F32[out >> 2]; break;
      case 6: kern.sqL2U8(p0, p1, row, 1, d, stride, bias, out); r = F32[out >> 2]; break;
      case 7: kern.sqDotU4(p0, scale, row, 1, d, stride, bias, out); r = F32[out >> 2]; break;
      case 8: kern.sqL2U4(p0, p1, row, 1, d, stride, bias, out); r = F32[out >> 2]; break;
      case 9: case 10: {
        const bits = U32[w + S.BITS];
        kern.lvqScore(p0, p1, scale, F32[w + S.AUX], row, 1, d, stride, bits & 0xff, bits >>> 8, kind - 9, bias, out);
        r = F32[out >> 2];
        break;
      }
      case 11: {
        const bits = U32[w + S.BITS];
        kern.rabitqScan(row, 1, stride, bits & 0xff, d >> 3, p0, bits >>> 8, p1, out, 0);
        r = Math.fround(F32[out >> 2] + bias);
        break;
      }
      default: kern.rabitqScanDirect(row, 1, stride, d, U32[w + S.BITS], p0, p1, out, 0); r = Math.fround(F32[out >> 2] + bias); break;
    }
    return r;
  }

  const gw = (g: number, i: number) => U32[(g >> 2) + i];
  function linksOf(g: number, node: number, level: number): number {
    if (level === 0) {
      const packed = gw(g, W.L0OFF);
      return gw(g, W.LEVEL0) + (packed !== 0 ? U32[(packed >> 2) + node] : node * (gw(g, W.M0) + 1)) * 4;
    }
    const off = U32[(gw(g, W.UPPEROFF) >> 2) + node];
    return gw(g, W.UPPER) + (off + (level - 1) * (gw(g, W.M) + 1)) * 4;
  }
  const isExcluded = (bits: number, id: number) => bits !== 0 && ((U32[(bits >> 2) + (id >>> 5)] >>> (id & 31)) & 1) !== 0;
  const less = (ka: number, ia: number, kb: number, ib: number) => ka < kb || (ka === kb && ia > ib);

  function heapPush(keys: number, ids: number, size: number, key: number, id: number): number {
    const K = keys >> 2, I = ids >> 2;
    let i = size;
    key = Math.fround(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(key, id, F32[K + parent], U32[I + parent])) break;
      F32[K + i] = F32[K + parent]; U32[I + i] = U32[I + parent];
      i = parent;
    }
    F32[K + i] = key; U32[I + i] = id;
    return size + 1;
  }
  function heapPop(keys: number, ids: number, size: number): number {
    const K = keys >> 2, I = ids >> 2;
    const n = size - 1;
    if (n <= 0) return 0;
    const key = F32[K + n], id = U32[I + n];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && less(F32[K + c + 1], U32[I + c + 1], F32[K + c], U32[I + c])) c++;
      if (!less(F32[K + c], U32[I + c], key, id)) break;
      F32[K + i] = F32[K + c]; U32[I + i] = U32[I + c];
      i = c;
    }
    F32[K + i] = key; U32[I + i] = id;
    return n;
  }

  function greedy(g: number, s: number, start: number, startScore: number, level: number): [number, number] {
    let cur = start, curScore = startScore, changed = true;
    while (changed) {
      changed = false;
      const list = linksOf(g, cur, level);
      const deg = U32[list >> 2];
      for (let t = 0; t < deg; t++) {
        const nb = U32[(list >> 2) + 1 + t];
        const sc = scoreNode(s, nb);
        U32[(g >> 2) + W.SCORED]++;
        if (sc > curScore) { curScore = sc; cur = nb; changed = true; }
      }
    }
    return [cur, curScore];
  }

  function searchLayer(g: number, s: number, ep: number, epScore: number, ef: number, level: number, excluded: number): number {
    const G = g >> 2;
    const cap = U32[G + W.CAP], visited = U32[G + W.VISITED] >> 1;
    let epoch = U32[G + W.EPOCH] + 1;
    if (epoch > 0xffff) { U16.fill(0, visited, visited + cap); epoch = 1; }
    U32[G + W.EPOCH] = epoch;
    const ck = U32[G + W.CKEYS], ci = U32[G + W.CIDS], rk = U32[G + W.RKEYS], ri = U32[G + W.RIDS];
    const heapCap = U32[G + W.HEAPCAP];
    ef = Math.min(ef, heapCap - 1);
    const twoHop = level === 0 && excluded !== 0 && U32[G + W.TWOHOP] !== 0;
    let cs = 0, rs = 0;
    U16[visited + ep] = epoch;
    cs = heapPush(ck, ci, cs, -epScore, ep);
    if (!isExcluded(excluded, ep)) rs = heapPush(rk, ri, rs, epScore, ep);
    while (cs > 0) {
      const cScore = -F32[ck >> 2], c = U32[ci >> 2];
      if (rs >= ef && cScore < F32[rk >> 2]) break;
      cs = heapPop(ck, ci, cs);
      const list = linksOf(g, c, level) >> 2;
      const deg = U32[list];
      const gathered: number[] = [];
      for (let t = 0; t < deg; t++) {
        const nb = U32[list + 1 + t];
        if (U16[visited + nb] === epoch) continue;
        U16[visited + nb] = epoch;
        if (twoHop && isExcluded(excluded, nb)) {
          const list2 = linksOf(g, nb, 0) >> 2;
          for (let t2 = 0; t2 < U32[list2]; t2++) {
            const nb2 = U32[list2 + 1 + t2];
            if (U16[visited + nb2] === epoch || isExcluded(excluded, nb2)) continue;
            U16[visited + nb2] = epoch;
            gathered.push(nb2);
          }
          continue;
        }
        gathered.push(nb);
      }
      for (const nb of gathered) {
        const sc = scoreNode(s, nb);
        U32[G + W.SCORED]++;
        if (rs < ef || sc > F32[rk >> 2]) {
          if (cs < heapCap) cs = heapPush(ck, ci, cs, -sc, nb);
          if (!isExcluded(excluded, nb)) {
            rs = heapPush(rk, ri, rs, sc, nb);
            if (rs > ef) rs = heapPop(rk, ri, rs);
          }
        }
      }
    }
    return rs;
  }

  function drainResults(g: number, rs: number, keys: number, ids: number): void {
    const rk = gw(g, W.RKEYS), ri = gw(g, W.RIDS);
    for (let n = rs; n > 0;) {
      F32[(keys >> 2) + n - 1] = F32[rk >> 2];
      U32[(ids >> 2) + n - 1] = U32[ri >> 2];
      n = heapPop(rk, ri, n);
    }
  }

  function pairScore(s: number, a: number, b: number): number {
    const w = s >> 2;
    const saved = U32[w + S.P0];
    U32[w + S.P0] = U32[w + S.CODES] + a * U32[w + S.STRIDE];
    const sc = scoreNode(s, b);
    U32[w + S.P0] = saved;
    return sc;
  }

  function selectNeighbours(s: number, keys: number, ids: number, n: number, m: number, outKeys: number, outIds: number): number {
    let kept = 0;
    for (let i = 0; i < n && kept < m; i++) {
      const e = U32[(ids >> 2) + i], se = F32[(keys >> 2) + i];
      let good = true;
      for (let j = 0; j < kept; j++) {
        if (pairScore(s, e, U32[(outIds >> 2) + j]) > se) { good = false; break; }
      }
      if (good) { F32[(outKeys >> 2) + kept] = se; U32[(outIds >> 2) + kept] = e; kept++; }
    }
    return kept;
  }

  function addLink(g: number, s: number, nb: number, node: number, score: number, level: number): void {
    const mmax = level === 0 ? gw(g, W.M0) : gw(g, W.M);
    const list = linksOf(g, nb, level) >> 2;
    const deg = U32[list];
    if (deg < mmax) { U32[list + 1 + deg] = node; U32[list] = deg + 1; return; }
    const ck = gw(g, W.RKEYS) >> 2, ci = gw(g, W.RIDS) >> 2;
    let n = 0;
    for (let t = 0; t <= deg; t++) {
      const id = t < deg ? U32[list + 1 + t] : node;
      const key = Math.fround(t < deg ? pairScore(s, nb, id) : score);
      let i = n;
      while (i > 0 && (F32[ck + i - 1] < key || (F32[ck + i - 1] === key && U32[ci + i - 1] > id))) {
        F32[ck + i] = F32[ck + i - 1]; U32[ci + i] = U32[ci + i - 1];
        i--;
      }
      F32[ck + i] = key; U32[ci + i] = id;
      n++;
    }
    const tk = gw(g, W.TKEYS), ti = gw(g, W.TIDS);
    const kept = selectNeighbours(s, ck << 2, ci << 2, n, mmax, tk, ti);
    for (let t = 0; t < kept; t++) U32[list + 1 + t] = U32[(ti >> 2) + t];
    U32[list] = kept;
  }

  return {
    hnswInsert(g, s, nodes, count, efConstruction) {
      views();
      const G = g >> 2, sw = s >> 2;
      const m = U32[G + W.M];
      const tk = U32[G + W.TKEYS], ti = U32[G + W.TIDS], sk = U32[G + W.SKEYS], si = U32[G + W.SIDS];
      const levels = U32[G + W.LEVELS];
      const codes = U32[sw + S.CODES], stride = U32[sw + S.STRIDE];
      for (let i = 0; i < count; i++) {
        const node = U32[(nodes >> 2) + i];
        const level = U8[levels + node];
        for (let l = 0; l <= level; l++) U32[linksOf(g, node, l) >> 2] = 0;
        U32[G + W.COUNT]++;
        const entry = U32[G + W.ENTRY];
        if (entry === NO_NODE) { U32[G + W.ENTRY] = node; U32[G + W.MAXLEVEL] = level; continue; }
        U32[sw + S.P0] = codes + node * stride;
        const maxLevel = U32[G + W.MAXLEVEL];
        let cur = entry, curScore = scoreNode(s, cur);
        for (let l = maxLevel; l > level; l--) [cur, curScore] = greedy(g, s, cur, curScore, l);
        for (let l = Math.min(level, maxLevel); l >= 0; l--) {
          const rs = searchLayer(g, s, cur, curScore, efConstruction, l, 0);
          drainResults(g, rs, tk, ti);
          cur = U32[ti >> 2]; curScore = F32[tk >> 2];
          const kept = selectNeighbours(s, tk, ti, rs, m, sk, si);
          const list = linksOf(g, node, l) >> 2;
          for (let t = 0; t < kept; t++) U32[list + 1 + t] = U32[(si >> 2) + t];
          U32[list] = kept;
          for (let t = 0; t < kept; t++) addLink(g, s, U32[(si >> 2) + t], node, F32[(sk >> 2) + t], l);
          U32[sw + S.P0] = codes + node * stride;
        }
        if (level > maxLevel) { U32[G + W.ENTRY] = node; U32[G + W.MAXLEVEL] = level; }
      }
    },
    hnswSearch(g, s, kk, ef, excluded, outIds, outScores) {
      views();
      const G = g >> 2;
      U32[G + W.SCORED] = 0;
      const entry = U32[G + W.ENTRY];
      if (entry === NO_NODE || kk <= 0) return 0;
      let cur = entry, curScore = scoreNode(s, cur);
      U32[G + W.SCORED] = 1;
      for (let l = U32[G + W.MAXLEVEL]; l > 0; l--) [cur, curScore] = greedy(g, s, cur, curScore, l);
      const rs = searchLayer(g, s, cur, curScore, Math.max(ef, kk), 0, excluded);
      const tk = U32[G + W.TKEYS], ti = U32[G + W.TIDS];
      drainResults(g, rs, tk, ti);
      const n = Math.min(kk, rs);
      for (let i = 0; i < n; i++) { U32[(outIds >> 2) + i] = U32[(ti >> 2) + i]; F32[(outScores >> 2) + i] = F32[(tk >> 2) + i]; }
      return n;
    },
  };
}
