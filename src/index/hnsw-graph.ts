import { QuiverError } from '../errors.js';
import { GRAPH_HEADER_BYTES, GRAPH_HEAP_CAP, GRAPH_WORDS, NO_NODE, SCORER_BYTES, SCORE_KIND, writeScorer, type RowScoring } from '../kernels/graph.js';
import type { Kernels } from '../kernels/types.js';
import type { GraphBuildThreads } from './build-threads.js';
import { Rng } from '../math/rng.js';

/**
 * An HNSW graph in kernel memory (layout: src/kernels/graph.ts): built by insertion with the
 * hnswInsert kernel over f32 rows, searched with hnswSearch, one kernel call per query.
 *
 * Levels are drawn up front (seeded, hnswlib's rule: floor(-ln U / ln M), at most MAX_LEVEL),
 * so the sparse upper-level pool is sized once and insertion never allocates.
 */
export const MAX_LEVEL = 16;

/** Persistent graph arrays as stored (GRAPH section, hnsw-section.ts) and held for search. */
export interface GraphArrays {
  m: number;
  count: number;
  entry: number;
  maxLevel: number;
  /** u8[count] top level per node. */
  levels: Uint8Array;
  /** u32[count] word offset into `upper` (0 for level-0 nodes). */
  upperOff: Uint32Array;
  /** Words in the upper pool. */
  upperWords: number;
}

export class HnswGraph {
  readonly m: number;
  readonly m0: number;
  readonly cap: number;
  private readonly g: number;
  private readonly blocks: number[] = [];
  private persistentBytes = 0;
  private released = false;
  /** Which nodes are in the graph (built lazily by insertNodes; a restored or seeded graph holds 0..count-1). */
  private inserted: Uint8Array | null = null;
  /**
   * Level 0 packed (restored from a GRAPH section of version 2): each node's list takes
   * degree + 1 words instead of 2M + 1, at a per-node offset. Read-only: no more inserts.
   */
  readonly packed: boolean;
  /** Words of level 0: cap * (2m + 1) fixed, or the packed pool's. */
  private readonly level0Words: number;

  /** level0Words: null for the fixed layout (cap * (2m + 1) words), else the packed pool's words. */
  private constructor(readonly kernels: Kernels, cap: number, m: number, levels: Uint8Array, upperOff: Uint32Array, upperWords: number, level0Words: number | null = null) {
    this.m = m;
    this.m0 = 2 * m;
    this.cap = cap;
    this.packed = level0Words !== null;
    this.level0Words = level0Words ?? cap * (2 * m + 1);
    const mem = kernels.memory;
    const alloc = (bytes: number, persistent: boolean) => {
      const p = mem.alloc(bytes);
      this.blocks.push(p);
      if (persistent) this.persistentBytes += bytes;
      return p;
    };
    try {
      this.g = alloc(GRAPH_HEADER_BYTES, false);
      const level0 = alloc(Math.max(4, (level0Words ?? cap * (this.m0 + 1)) * 4), true);
      const level0Offsets = level0Words !== null ? alloc(Math.max(4, cap * 4), true) : 0;
      const lv = alloc(Math.max(4, cap), true);
      const uo = alloc(Math.max(4, cap * 4), true);
      const upper = alloc(Math.max(4, upperWords * 4), true);
      const visited = alloc(Math.max(4, cap * 2), false);
      const list = (n: number) => alloc(n * 4, false);
      const hc = this.heapCap;
      const ck = list(hc), ci = list(hc), rk = list(hc), ri = list(hc), tk = list(hc), ti = list(hc);
      const sk = list(this.m0 + 2), si = list(this.m0 + 2), nbuf = list((this.m0 + 1) * (this.m0 + 1));
      mem.u8(lv, levels.length).set(levels);
      mem.u32(uo, upperOff.length).set(upperOff);
      const W = GRAPH_WORDS;
      const h = mem.u32(this.g, GRAPH_HEADER_BYTES / 4);
      h[W.COUNT] = 0; h[W.CAP] = cap; h[W.M] = m; h[W.M0] = this.m0; h[W.ENTRY] = NO_NODE; h[W.MAXLEVEL] = 0;
      h[W.LEVEL0] = level0; h[W.LEVELS] = lv; h[W.UPPEROFF] = uo; h[W.UPPER] = upper; h[W.VISITED] = visited; h[W.EPOCH] = 0;
      h[W.CKEYS] = ck; h[W.CIDS] = ci; h[W.RKEYS] = rk; h[W.RIDS] = ri; h[W.TKEYS] = tk; h[W.TIDS] = ti; h[W.SKEYS] = sk; h[W.SIDS] = si; h[W.NBUF] = nbuf; h[W.HEAPCAP] = hc;
      h[W.L0OFF] = level0Offsets;
    } catch (e) {
      for (const p of this.blocks) mem.release(p);
      throw e;
    }
  }

  /** An empty graph for `cap` nodes with degree m (level 0: 2m); levels drawn from `seed`. */
  static create(kernels: Kernels, cap: number, m: number, seed: number): HnswGraph {
    const levels = drawLevels(cap, m, seed);
    const upperOff = new Uint32Array(cap);
    let words = 0;
    for (let i = 0; i < cap; i++) {
      if (levels[i] > 0) { upperOff[i] = words; words += levels[i] * (m + 1); }
    }
    return new HnswGraph(kernels, cap, m, levels, upperOff, words);
  }

  /**
   * A graph restored from stored arrays; `fill(level0, upper)` copies the adjacency into the
   * kernel memory views it is given (u32[count * (2m + 1)] and u32[upperWords]).
   */
  static restore(kernels: Kernels, a: GraphArrays, fill: (level0: () => Uint32Array, upper: () => Uint32Array) => void): HnswGraph {
    const graph = new HnswGraph(kernels, a.count, a.m, a.levels, a.upperOff, a.upperWords);
    try {
      const mem = kernels.memory, W = GRAPH_WORDS;
      const h = () => mem.u32(graph.g, GRAPH_HEADER_BYTES / 4);
      fill(() => mem.u32(h()[W.LEVEL0], a.count * (graph.m0 + 1)), () => mem.u32(h()[W.UPPER], a.upperWords));
      const hh = h();
      hh[W.COUNT] = a.count; hh[W.ENTRY] = a.count === 0 ? NO_NODE : a.entry; hh[W.MAXLEVEL] = a.maxLevel;
      graph.checkLinks();
      return graph;
    } catch (e) {
      graph.release();
      throw e;
    }
  }

  /**
   * A read-only graph with a packed level 0, restored from stored arrays: `fill(offsets, level0,
   * upper)` copies into the kernel memory views it is given: u32[count] word offsets of each
   * node's level-0 list in the pool, u32[level0Words] the lists [degree, ids...], and
   * u32[upperWords]. CORRUPT_FILE unless every list lies inside the pool with valid links.
   */
  static restorePacked(kernels: Kernels, a: GraphArrays, level0Words: number, fill: (offsets: () => Uint32Array, level0: () => Uint32Array, upper: () => Uint32Array) => void): HnswGraph {
    const graph = new HnswGraph(kernels, a.count, a.m, a.levels, a.upperOff, a.upperWords, level0Words);
    try {
      const mem = kernels.memory, W = GRAPH_WORDS;
      const h = () => mem.u32(graph.g, GRAPH_HEADER_BYTES / 4);
      fill(() => mem.u32(h()[W.L0OFF], a.count), () => mem.u32(h()[W.LEVEL0], level0Words), () => mem.u32(h()[W.UPPER], a.upperWords));
      const hh = h();
      hh[W.COUNT] = a.count; hh[W.ENTRY] = a.count === 0 ? NO_NODE : a.entry; hh[W.MAXLEVEL] = a.maxLevel;
      graph.checkLinks(level0Words);
      return graph;
    } catch (e) {
      graph.release();
      throw e;
    }
  }

  /**
   * A graph for `cap` nodes whose first nodes are `donor`'s live nodes, links and levels kept
   * (Lucene's merge habit: the largest input's graph is reused, the other rows inserted after).
   * `map[i]` is donor node i's new ordinal, or -1 for a row the merge drops; live donor nodes
   * must map, in order, onto 0..L-1. Links to dropped nodes are removed; if the entry node was
   * dropped, a live node of the highest remaining level becomes the entry. Nodes L..cap-1 get
   * fresh levels from `seed` and are inserted by insert(). m = the donor's.
   */
  static seeded(kernels: Kernels, cap: number, donor: HnswGraph, map: Int32Array, seed: number): HnswGraph {
    const a = donor.arrays();
    const m = a.m, m0 = 2 * m;
    let live = 0;
    for (let i = 0; i < a.count; i++) {
      if (map[i] === -1) continue;
      if (map[i] !== live) throw new QuiverError('INVALID_ARGUMENT', `graph reuse: donor node ${i} maps to ${map[i]}, expected ${live}`, { expected: live, received: map[i] });
      live++;
    }
    if (live > cap) throw new QuiverError('INVALID_ARGUMENT', `graph reuse: ${live} donor nodes exceed the capacity ${cap}`, { expected: `<= ${cap}`, received: live });
    const fresh = drawLevels(cap, m, seed);
    const levels = new Uint8Array(cap);
    for (let i = 0; i < a.count; i++) if (map[i] !== -1) levels[map[i]] = a.levels[i];
    levels.set(fresh.subarray(live), live);
    const upperOff = new Uint32Array(cap);
    let words = 0;
    for (let i = 0; i < cap; i++) if (levels[i] > 0) { upperOff[i] = words; words += levels[i] * (m + 1); }
    const graph = new HnswGraph(kernels, cap, m, levels, upperOff, words);
    try {
      const mem = kernels.memory, W = GRAPH_WORDS;
      const h = graph.header();
      const l0 = mem.u32(h[W.LEVEL0], cap * (m0 + 1)), up = mem.u32(h[W.UPPER], words);
      const copyList = (src: Uint32Array, from: number, dst: Uint32Array, to: number) => {
        let kept = 0;
        for (let t = 1; t <= src[from]; t++) {
          const n = map[src[from + t]];
          if (n !== -1) dst[to + 1 + kept++] = n;
        }
        dst[to] = kept;
      };
      let entry = -1, top = -1;
      for (let i = 0; i < a.count; i++) {
        const n = map[i];
        if (n === -1) continue;
        copyList(a.level0, i * (m0 + 1), l0, n * (m0 + 1));
        for (let l = 1; l <= a.levels[i]; l++) copyList(a.upper, a.upperOff[i] + (l - 1) * (m + 1), up, upperOff[n] + (l - 1) * (m + 1));
        if (a.levels[i] > top) { top = a.levels[i]; entry = n; }
      }
      const hh = graph.header();
      hh[W.COUNT] = live;
      if (live > 0) {
        const kept = map[a.entry];
        hh[W.ENTRY] = kept !== -1 && kept !== undefined ? kept : entry;
        hh[W.MAXLEVEL] = kept !== -1 && kept !== undefined ? a.maxLevel : top;
      }
      return graph;
    } catch (e) {
      graph.release();
      throw e;
    }
  }

  private header(): Uint32Array { return this.kernels.memory.u32(this.g, GRAPH_HEADER_BYTES / 4); }

  /** Nodes inserted so far. */
  get count(): number { return this.header()[GRAPH_WORDS.COUNT]; }
  get entry(): number { return this.header()[GRAPH_WORDS.ENTRY]; }
  get maxLevel(): number { return this.header()[GRAPH_WORDS.MAXLEVEL]; }
  /** Codes scored by the last search or insert. */
  get lastScored(): number { return this.header()[GRAPH_WORDS.SCORED]; }
  /** Bytes of the adjacency (what the segment stores); scratch for searches is extra (scratchBytes). */
  get bytes(): number { return this.persistentBytes; }
  /** Bytes of search scratch: visited tags, heaps and work lists. */
  get scratchBytes(): number { return this.cap * 2 + 6 * this.heapCap * 4 + (2 * (this.m0 + 2) + (this.m0 + 1) * (this.m0 + 1)) * 4 + GRAPH_HEADER_BYTES; }
  /** Entries of each search heap: ef is kept below it (GRAPH_HEAP_CAP, or every node of a small graph). */
  get heapCap(): number { return Math.min(this.cap + 1, GRAPH_HEAP_CAP); }

  /**
   * Inserts nodes [from, to) whose f32 rows (unit for cosine) sit at `rows` in kernel memory,
   * `d` floats each, scoring by `metric`. efConstruction: beam width of each insertion.
   */
  insert(rows: number, d: number, metric: 'dot' | 'l2', from: number, to: number, efConstruction: number): void {
    if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from <= to)) {
      throw new QuiverError('INVALID_ARGUMENT', `graph insert: [${from}, ${to}) is not a range of nodes`, { received: [from, to] });
    }
    const nodes = new Uint32Array(to - from);
    for (let i = 0; i < nodes.length; i++) nodes[i] = from + i;
    this.insertNodes(rows, d, metric, nodes, efConstruction);
  }

  /** Inserts the listed nodes, in order (each below the capacity and not yet inserted). */
  insertNodes(rows: number, d: number, metric: 'dot' | 'l2', nodes: Uint32Array, efConstruction: number): void {
    this.checkNew(nodes);
    const mem = this.kernels.memory;
    const list = mem.alloc(Math.max(4, nodes.length * 4));
    const s = this.scorer({ kind: metric === 'l2' ? SCORE_KIND.F32_L2 : SCORE_KIND.F32_DOT, d, stride: d * 4, scale: 0, bias: 0, p0: rows, p1: 0 }, rows);
    try {
      mem.u32(list, nodes.length).set(nodes);
      this.kernels.hnswInsert(this.g, s, list, nodes.length, efConstruction);
      for (const n of nodes) this.inserted![n] = 1;
    } finally {
      mem.release(s);
      mem.release(list);
    }
  }

  /**
   * insertNodes on `threads` (hnswlib's parallel build): every thread inserts nodes claimed in
   * order from a shared counter, locking a node while writing its lists. This graph and `rows`
   * must live in kernels from threads.createKernels(). The result depends on thread timing (the
   * links differ from run to run, the quality does not). The entry node must not change while
   * threads run, so the highest-level node goes in first, alone, when it would become the entry.
   * onProgress(done) reports nodes inserted.
   */
  async insertConcurrently(threads: GraphBuildThreads, rows: number, d: number, metric: 'dot' | 'l2', nodes: Uint32Array, efConstruction: number, onProgress?: (done: number) => void): Promise<void> {
    this.checkNew(nodes);
    const mem = this.kernels.memory, W = GRAPH_WORDS;
    let rest = nodes;
    if (nodes.length > 0) {
      const levels = mem.u8(this.header()[W.LEVELS], this.cap);
      let top = 0;
      for (let i = 1; i < nodes.length; i++) if (levels[nodes[i]] > levels[nodes[top]]) top = i;
      if (this.entry === NO_NODE || levels[nodes[top]] > this.maxLevel) {
        this.insertNodes(rows, d, metric, nodes.subarray(top, top + 1), efConstruction);
        rest = new Uint32Array(nodes.length - 1);
        rest.set(nodes.subarray(0, top));
        rest.set(nodes.subarray(top + 1), top);
        onProgress?.(1);
      }
    }
    if (rest.length === 0) return;
    const scorerOf: RowScoring = { kind: metric === 'l2' ? SCORE_KIND.F32_L2 : SCORE_KIND.F32_DOT, d, stride: d * 4, scale: 0, bias: 0, p0: rows, p1: 0 };
    const temp: number[] = [];
    const alloc = (bytes: number) => { const p = mem.alloc(Math.max(4, bytes)); temp.push(p); return p; };
    try {
      const locks = alloc(this.cap * 4);
      const list = alloc(rest.length * 4);
      const counter = alloc(8);
      const headers: number[] = [], scorers: number[] = [];
      const hc = this.heapCap, lists = (n: number) => alloc(n * 4);
      const n = Math.max(1, Math.min(threads.threads, Math.ceil(rest.length / 64)));
      for (let t = 0; t < n; t++) {
        // a header copy: the same graph arrays, its own visited tags, heaps and work lists
        const g = alloc(GRAPH_HEADER_BYTES);
        const visited = alloc(this.cap * 2), ck = lists(hc), ci = lists(hc), rk = lists(hc), ri = lists(hc), tk = lists(hc), ti = lists(hc);
        const sk = lists(this.m0 + 2), si = lists(this.m0 + 2), nbuf = lists((this.m0 + 1) * (this.m0 + 1));
        const h = mem.u32(g, GRAPH_HEADER_BYTES / 4);
        h.set(this.header());
        h[W.VISITED] = visited; h[W.EPOCH] = 0; h[W.CKEYS] = ck; h[W.CIDS] = ci; h[W.RKEYS] = rk; h[W.RIDS] = ri; h[W.TKEYS] = tk; h[W.TIDS] = ti;
        h[W.SKEYS] = sk; h[W.SIDS] = si; h[W.NBUF] = nbuf; h[W.TWOHOP] = 0; h[W.LOCKS] = locks;
        headers.push(g);
        const s = this.scorer(scorerOf, rows);
        temp.push(s);
        scorers.push(s);
      }
      mem.u32(list, rest.length).set(rest);
      const before = nodes.length - rest.length;
      await threads.run(this.kernels, { headers, scorers, nodes: list, count: rest.length, chunk: 16, efConstruction, counter }, onProgress && ((done) => onProgress(before + done)));
      const h = this.header();
      h[W.COUNT] += rest.length;
      for (const node of rest) this.inserted![node] = 1;
    } finally {
      for (const p of temp) mem.release(p);
    }
  }

  private checkNew(nodes: Uint32Array): void {
    this.checkLive();
    if (this.packed) throw new QuiverError('INVALID_ARGUMENT', 'graph insert: a packed (restored, read-only) graph takes no inserts; seed a new graph from it', { expected: 'a graph being built', received: 'packed graph' });
    if (!this.inserted) this.inserted = new Uint8Array(this.cap).fill(1, 0, this.count);
    const seen = new Set<number>();
    for (const n of nodes) {
      if (!(n < this.cap) || this.inserted[n] || seen.has(n)) {
        throw new QuiverError('INVALID_ARGUMENT', `graph insert: node ${n} is ${n < this.cap ? (seen.has(n) ? 'listed twice' : 'already in the graph') : `outside the capacity ${this.cap}`}`, { expected: `a new node < ${this.cap}`, received: n });
      }
      seen.add(n);
    }
  }

  /**
   * Searches one query: `scoring` (from a QueryScorer, or f32 rows for a full-precision graph)
   * over rows at `rows`. `excluded`: bitset pointer in kernel memory (0 = none). Writes up to k
   * hits best first at outIds (u32[k]) and outScores (f32[k]); returns the count. `twoHop`: with
   * a mask, level 0 expands a masked neighbour to its eligible neighbours instead of scoring it
   * (ACORN-1), so a walk through a sparse mask scores eligible rows only.
   */
  search(scoring: RowScoring, rows: number, k: number, ef: number, excluded: number, outIds: number, outScores: number, twoHop = false): number {
    this.checkLive();
    this.header()[GRAPH_WORDS.TWOHOP] = twoHop ? 1 : 0;
    const s = this.scorer(scoring, rows);
    try {
      return this.kernels.hnswSearch(this.g, s, k, ef, excluded, outIds, outScores);
    } finally {
      this.kernels.memory.release(s);
    }
  }

  private scorer(r: RowScoring, rows: number): number {
    const mem = this.kernels.memory;
    const s = mem.alloc(SCORER_BYTES);
    writeScorer(mem, s, r, rows);
    return s;
  }

  /** The stored form: header values, levels, upper offsets, and copies of the adjacency. */
  arrays(): GraphArrays & { level0: Uint32Array; upper: Uint32Array } {
    this.checkLive();
    // the stored form addresses nodes 0..count-1: they must be the ones inserted
    const n0 = this.count;
    if (this.inserted && this.inserted.subarray(0, n0).includes(0)) throw new QuiverError('INVALID_ARGUMENT', `graph arrays: the ${n0} nodes inserted are not nodes 0..${n0 - 1}`, { received: n0 });
    const h = this.header(), W = GRAPH_WORDS, mem = this.kernels.memory;
    const n = h[W.COUNT];
    const levels = mem.u8(h[W.LEVELS], n).slice();
    const upperOff = mem.u32(h[W.UPPEROFF], n).slice();
    let upperWords = 0;
    for (let i = 0; i < n; i++) if (levels[i] > 0) upperWords = Math.max(upperWords, upperOff[i] + levels[i] * (this.m + 1));
    return {
      m: this.m, count: n, entry: h[W.ENTRY], maxLevel: h[W.MAXLEVEL], levels, upperOff, upperWords,
      level0: this.fixedLevel0(n), upper: mem.u32(h[W.UPPER], upperWords).slice(),
    };
  }

  /** A copy of level 0 in the fixed layout: u32[n * (2m + 1)], per node [degree, ids..., zeros]. */
  private fixedLevel0(n: number): Uint32Array {
    const h = this.header(), W = GRAPH_WORDS, mem = this.kernels.memory, stride = this.m0 + 1;
    if (!this.packed) return mem.u32(h[W.LEVEL0], n * stride).slice();
    const offsets = mem.u32(h[W.L0OFF], n), pool = mem.u32(h[W.LEVEL0], this.level0Words);
    const out = new Uint32Array(n * stride);
    for (let i = 0; i < n; i++) out.set(pool.subarray(offsets[i], offsets[i] + 1 + pool[offsets[i]]), i * stride);
    return out;
  }

  /**
   * CORRUPT-style check of restored links: degrees within bounds, ids below count; a packed level
   * 0 (of `level0Words` words) also has every list inside its pool.
   */
  private checkLinks(level0Words: number | null = null): void {
    const h = this.header(), W = GRAPH_WORDS, mem = this.kernels.memory;
    const n = h[W.COUNT];
    const bad = (what: string) => { throw new QuiverError('CORRUPT_FILE', `graph: ${what}`, { reason: what }); };
    if (n > 0 && h[W.ENTRY] >= n) bad(`entry node ${h[W.ENTRY]} is outside [0, ${n})`);
    const l0 = mem.u32(h[W.LEVEL0], level0Words ?? n * (this.m0 + 1));
    const offsets = level0Words !== null ? mem.u32(h[W.L0OFF], n) : null;
    for (let i = 0; i < n; i++) {
      const at = offsets ? offsets[i] : i * (this.m0 + 1);
      if (at >= l0.length) bad(`node ${i}'s level-0 list starts at word ${at}, past the ${l0.length} words of level 0`);
      const deg = l0[at];
      if (at + 1 + deg > l0.length) bad(`node ${i}'s level-0 list runs past the ${l0.length} words of level 0`);
      if (deg > this.m0) bad(`node ${i} has ${deg} links on level 0 (at most ${this.m0})`);
      for (let t = 1; t <= deg; t++) if (l0[at + t] >= n) bad(`node ${i} links to ${l0[at + t]}, outside [0, ${n})`);
    }
    const levels = mem.u8(h[W.LEVELS], n), uo = mem.u32(h[W.UPPEROFF], n);
    const upperWords = this.upperWordsOf(levels, uo, n);
    const up = mem.u32(h[W.UPPER], upperWords);
    for (let i = 0; i < n; i++) {
      if (levels[i] > h[W.MAXLEVEL]) bad(`node ${i} has level ${levels[i]} above the top level ${h[W.MAXLEVEL]}`);
      for (let l = 1; l <= levels[i]; l++) {
        const at = uo[i] + (l - 1) * (this.m + 1), deg = up[at];
        if (deg > this.m) bad(`node ${i} has ${deg} links on level ${l} (at most ${this.m})`);
        for (let t = 1; t <= deg; t++) if (up[at + t] >= n || levels[up[at + t]] < l) bad(`node ${i} links on level ${l} to ${up[at + t]}, not a node of that level`);
      }
    }
  }

  private upperWordsOf(levels: Uint8Array, uo: Uint32Array, n: number): number {
    let w = 0;
    for (let i = 0; i < n; i++) if (levels[i] > 0) w = Math.max(w, uo[i] + levels[i] * (this.m + 1));
    return w;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const p of this.blocks) this.kernels.memory.release(p);
    this.blocks.length = 0;
  }

  private checkLive(): void {
    if (this.released) throw new QuiverError('CLOSED', 'this HNSW graph was released', { reason: 'released' });
  }
}

/** Levels of `n` nodes: floor(-ln U * mL), mL = 1 / ln m, capped at MAX_LEVEL (hnswlib's rule). */
export function drawLevels(n: number, m: number, seed: number): Uint8Array {
  const rng = new Rng(seed ^ 0x48a5f00d);
  const ml = 1 / Math.log(m);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(MAX_LEVEL, Math.floor(-Math.log(1 - rng.next()) * ml));
  return out;
}
