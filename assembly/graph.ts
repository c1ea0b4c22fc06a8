// Proximity-graph (HNSW) kernels: building by insertion and the whole search of one query, each
// in one call. Raw-pointer style like the other kernels: the graph, its scratch and the scorer
// are structs of 32-bit words in linear memory, laid out by src/kernels/graph.ts (GRAPH_WORDS,
// SCORER_WORDS), which also holds the plain JS twin of both kernels.
import { dotManyF16, l2ManyF16 } from './dense';
import { dotRow, l2Row } from './rows';
import { lvqScore, sqDotU8, sqDotU4, sqL2U8, sqL2U4 } from './scalar';
import { rabitqScan, rabitqScanDirect } from './rabitq';

// graph header: byte offsets of its u32 words
const G_COUNT: usize = 0; // nodes inserted so far
const G_CAP: usize = 4; // nodes the arrays hold
const G_M: usize = 8; // links per node on upper levels
const G_M0: usize = 12; // links per node on level 0
const G_ENTRY: usize = 16; // entry node (0xFFFFFFFF = empty graph)
const G_MAXLEVEL: usize = 20;
const G_LEVEL0: usize = 24; // u32[cap * (M0 + 1)]: per node [degree, ids...]; packed: lists back to back (G_L0OFF)
const G_LEVELS: usize = 28; // u8[cap]: top level of each node
const G_UPPEROFF: usize = 32; // u32[cap]: word index into the upper pool (levels >= 1)
const G_UPPER: usize = 36; // u32 pool: level l of node i at UPPEROFF[i] + (l - 1) * (M + 1)
const G_VISITED: usize = 40; // u16[cap] epoch tags
const G_EPOCH: usize = 44;
const G_CKEYS: usize = 48; // candidate heap: f32[cap + 1] keys (negated scores), u32 ids
const G_CIDS: usize = 52;
const G_RKEYS: usize = 56; // result heap: f32[cap + 1] scores (min at the root), u32 ids
const G_RIDS: usize = 60;
const G_TKEYS: usize = 64; // sorted work lists: f32[cap + 1], u32
const G_TIDS: usize = 68;
const G_SKEYS: usize = 72; // selected neighbours: f32[M0 + 2], u32
const G_SIDS: usize = 76;
const G_SCORED: usize = 80; // codes scored by the last call (a statistic)
const G_NBUF: usize = 84; // u32[(M0 + 1) * (M0 + 1)]: a node's unvisited neighbours (two-hop: theirs too), gathered before scoring
const G_HEAPCAP: usize = 88; // entries of each heap and work list (ef is kept below it)
const G_TWOHOP: usize = 92; // 1: a level-0 search with a mask expands masked neighbours to their neighbours (ACORN-1)
const G_LOCKS: usize = 96; // u32[cap] per-node spin locks of a concurrent build on shared memory (0 = one thread, no locking)
const G_L0OFF: usize = 100; // u32[cap] word offsets of the lists of a packed (read-only) level 0; 0 = fixed degree

// scorer: byte offsets of its words
const S_KIND: usize = 0;
const S_D: usize = 4;
const S_STRIDE: usize = 8; // bytes per row of codes
const S_SCALE: usize = 12; // f32
const S_BIAS: usize = 16; // f32
const S_P0: usize = 20; // query (or query-side table)
const S_P1: usize = 24; // second query-side array (weights of the L2 SQ kernels)
const S_CODES: usize = 28; // row 0 of the codes (or f32 vectors)
const S_OUT: usize = 32; // pointer to an f32 scratch of 1 (the struct's own word 10)
const S_AUX: usize = 36; // f32: LVQ: sum of the query values
const S_BITS: usize = 44; // u32: LVQ: bits1 | bits2 << 8; RaBitQ planes: codeBits | queryBits << 8; RaBitQ direct: 4 or 8

const NONE: u32 = 0xffffffff;
/** Where the early loads of searchLayer land (kept so that the optimizer keeps them). */
let sink: u32 = 0;

/** Score (larger = closer) of node `node` for the scorer's query. */
@inline function scoreNode(s: usize, node: u32): f32 {
  const kind = load<i32>(s + S_KIND);
  const d = load<i32>(s + S_D);
  const stride = load<i32>(s + S_STRIDE);
  const row = <usize>load<u32>(s + S_CODES) + <usize>node * <usize>stride;
  const out = <usize>load<u32>(s + S_OUT);
  const p0 = <usize>load<u32>(s + S_P0);
  const bias = load<f32>(s + S_BIAS);
  if (kind == 1) return dotRow(p0, row, d) + bias;
  if (kind == 2) return bias - l2Row(p0, row, d);
  if (kind == 3) { dotManyF16(p0, row, 1, d, out); return load<f32>(out) + bias; }
  if (kind == 4) { l2ManyF16(p0, row, 1, d, out); return bias - load<f32>(out); }
  const scale = load<f32>(s + S_SCALE);
  const p1 = <usize>load<u32>(s + S_P1);
  if (kind == 5) sqDotU8(p0, scale, row, 1, d, stride, bias, out);
  else if (kind == 6) sqL2U8(p0, p1, row, 1, d, stride, bias, out);
  else if (kind == 7) sqDotU4(p0, scale, row, 1, d, stride, bias, out);
  else if (kind == 8) sqL2U4(p0, p1, row, 1, d, stride, bias, out);
  else {
    const bits = load<u32>(s + S_BITS);
    // LVQ: p0 = i16 query, p1 = split i16 query; the kernel adds the bias
    if (kind <= 10) lvqScore(p0, p1, scale, load<f32>(s + S_AUX), row, 1, d, stride, <i32>(bits & 0xff), <i32>(bits >> 8), kind - 9, bias, out);
    // RaBitQ: p0 = quantized query, p1 = its f32[8] params (outBias included); d = the rotated D
    else {
      if (kind == 11) rabitqScan(row, 1, stride, <i32>(bits & 0xff), d >> 3, p0, <i32>(bits >> 8), p1, out, 0);
      else rabitqScanDirect(row, 1, stride, d, <i32>bits, p0, p1, out, 0);
      return load<f32>(out) + bias;
    }
  }
  return load<f32>(out);
}

@inline function g32(g: usize, at: usize): u32 { return load<u32>(g + at); }
@inline function gptr(g: usize, at: usize): usize { return <usize>load<u32>(g + at); }

/** Pointer to node's list on `level`: u32 degree, then ids. */
@inline function linksOf(g: usize, node: u32, level: i32): usize {
  if (level == 0) {
    const packed = gptr(g, G_L0OFF);
    if (packed != 0) return gptr(g, G_LEVEL0) + (<usize>load<u32>(packed + (<usize>node << 2)) << 2);
    return gptr(g, G_LEVEL0) + ((<usize>node * (<usize>g32(g, G_M0) + 1)) << 2);
  }
  const off = <usize>load<u32>(gptr(g, G_UPPEROFF) + (<usize>node << 2));
  return gptr(g, G_UPPER) + ((off + <usize>(level - 1) * (<usize>g32(g, G_M) + 1)) << 2);
}

// Concurrent builds (several threads calling hnswInsert on one shared memory, each with its own
// header copy and scratch) lock a node while writing its lists; searches read lists without
// locks: a list read during a rewrite mixes old and new ids, all of them valid nodes (hnswlib
// locks reads too; the torn read only costs a slightly different candidate set).
@inline function lockNode(g: usize, node: u32): void {
  const locks = gptr(g, G_LOCKS);
  if (locks == 0) return;
  const p = locks + (<usize>node << 2);
  while (atomic.cmpxchg<u32>(p, 0, 1) != 0) {}
}

@inline function unlockNode(g: usize, node: u32): void {
  const locks = gptr(g, G_LOCKS);
  if (locks == 0) return;
  atomic.store<u32>(locks + (<usize>node << 2), 0);
}

@inline function isExcluded(bits: usize, id: u32): bool {
  return bits != 0 && ((load<u32>(bits + (<usize>(id >> 5) << 2)) >> (id & 31)) & 1) != 0;
}

// Binary min-heap of (f32 key, u32 id): ties are broken by the larger id at the root, so that
// equal scores order deterministically in both twins.
@inline function less(ka: f32, ia: u32, kb: f32, ib: u32): bool {
  return ka < kb || (ka == kb && ia > ib);
}

function heapPush(keys: usize, ids: usize, size: i32, key: f32, id: u32): i32 {
  let i = size;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const pk = load<f32>(keys + (<usize>parent << 2));
    const pi = load<u32>(ids + (<usize>parent << 2));
    if (!less(key, id, pk, pi)) break;
    store<f32>(keys + (<usize>i << 2), pk);
    store<u32>(ids + (<usize>i << 2), pi);
    i = parent;
  }
  store<f32>(keys + (<usize>i << 2), key);
  store<u32>(ids + (<usize>i << 2), id);
  return size + 1;
}

/** Removes the root; returns the new size. */
function heapPop(keys: usize, ids: usize, size: i32): i32 {
  const n = size - 1;
  if (n <= 0) return 0;
  const key = load<f32>(keys + (<usize>n << 2));
  const id = load<u32>(ids + (<usize>n << 2));
  let i = 0;
  while (true) {
    let c = 2 * i + 1;
    if (c >= n) break;
    let ck = load<f32>(keys + (<usize>c << 2));
    let ci = load<u32>(ids + (<usize>c << 2));
    if (c + 1 < n) {
      const rk = load<f32>(keys + (<usize>(c + 1) << 2));
      const ri = load<u32>(ids + (<usize>(c + 1) << 2));
      if (less(rk, ri, ck, ci)) { c++; ck = rk; ci = ri; }
    }
    if (!less(ck, ci, key, id)) break;
    store<f32>(keys + (<usize>i << 2), ck);
    store<u32>(ids + (<usize>i << 2), ci);
    i = c;
  }
  store<f32>(keys + (<usize>i << 2), key);
  store<u32>(ids + (<usize>i << 2), id);
  return n;
}

/** Moves to the best-scoring neighbour on `level` until none is better; returns the node, score in S_OUT-free slot. */
function greedy(g: usize, s: usize, start: u32, startScore: f32, level: i32): u64 {
  let cur = start, curScore = startScore;
  let scored = g32(g, G_SCORED);
  let changed = true;
  while (changed) {
    changed = false;
    const list = linksOf(g, cur, level);
    const deg = load<u32>(list);
    for (let t: u32 = 0; t < deg; t++) {
      const nb = load<u32>(list + 4 + (<usize>t << 2));
      const sc = scoreNode(s, nb);
      scored++;
      if (sc > curScore) { curScore = sc; cur = nb; changed = true; }
    }
  }
  store<u32>(g + G_SCORED, scored);
  return (<u64>reinterpret<u32>(curScore) << 32) | <u64>cur;
}

/**
 * Beam search on one level from (ep, epScore) keeping the `ef` best non-excluded nodes in the
 * result heap (min at the root). Excluded nodes are traversed but never enter the results.
 * Returns the result count.
 */
function searchLayer(g: usize, s: usize, ep: u32, epScore: f32, ef: i32, level: i32, excluded: usize): i32 {
  const cap = g32(g, G_CAP);
  const visited = gptr(g, G_VISITED);
  let epoch = g32(g, G_EPOCH) + 1;
  if (epoch > 0xffff) { memory.fill(visited, 0, <usize>cap << 1); epoch = 1; }
  store<u32>(g + G_EPOCH, epoch);
  const ck = gptr(g, G_CKEYS), ci = gptr(g, G_CIDS), rk = gptr(g, G_RKEYS), ri = gptr(g, G_RIDS);
  let cs = 0, rs = 0;
  let scored = g32(g, G_SCORED);
  const nbuf = gptr(g, G_NBUF);
  const rows = <usize>load<u32>(s + S_CODES), stride = <usize>load<u32>(s + S_STRIDE);
  let touch: u32 = 0;
  // a row's last 4 bytes: rows longer than a cache line need their second line fetched too
  const tail: usize = stride >= 8 ? stride - 4 : 0;
  const heapCap = <i32>g32(g, G_HEAPCAP);
  ef = min(ef, heapCap - 1);
  const twoHop = level == 0 && excluded != 0 && g32(g, G_TWOHOP) != 0;
  store<u16>(visited + (<usize>ep << 1), <u16>epoch);
  cs = heapPush(ck, ci, cs, -epScore, ep);
  if (!isExcluded(excluded, ep)) rs = heapPush(rk, ri, rs, epScore, ep);
  while (cs > 0) {
    const cScore = -load<f32>(ck);
    const c = load<u32>(ci);
    if (rs >= ef && cScore < load<f32>(rk)) break;
    cs = heapPop(ck, ci, cs);
    const list = linksOf(g, c, level);
    const deg = load<u32>(list);
    // start fetching the list of the next candidate too (often the one expanded next)
    if (cs > 0) touch ^= load<u32>(linksOf(g, load<u32>(ci), level));
    // gather the unvisited neighbours first, touching each one's row as it is found, then score
    // them: WASM has no prefetch, and loads whose values are folded into `touch` start every
    // row's fetch at once (the CPU overlaps the misses) instead of one miss per row scored
    let m: u32 = 0;
    for (let t: u32 = 0; t < deg; t++) {
      const nb = load<u32>(list + 4 + (<usize>t << 2));
      const vp = visited + (<usize>nb << 1);
      if (<u32>load<u16>(vp) == epoch) continue;
      store<u16>(vp, <u16>epoch);
      if (twoHop && isExcluded(excluded, nb)) {
        // ACORN-1: a masked neighbour is not scored; its eligible neighbours are, in its place
        const list2 = linksOf(g, nb, 0);
        const deg2 = load<u32>(list2);
        for (let t2: u32 = 0; t2 < deg2; t2++) {
          const nb2 = load<u32>(list2 + 4 + (<usize>t2 << 2));
          const vp2 = visited + (<usize>nb2 << 1);
          if (<u32>load<u16>(vp2) == epoch || isExcluded(excluded, nb2)) continue;
          store<u16>(vp2, <u16>epoch);
          store<u32>(nbuf + (<usize>m << 2), nb2);
          touch ^= load<u32>(rows + <usize>nb2 * stride) ^ load<u32>(rows + <usize>nb2 * stride + tail);
          m++;
        }
        continue;
      }
      store<u32>(nbuf + (<usize>m << 2), nb);
      touch ^= load<u32>(rows + <usize>nb * stride) ^ load<u32>(rows + <usize>nb * stride + tail);
      m++;
    }
    for (let t: u32 = 0; t < m; t++) {
      const nb = load<u32>(nbuf + (<usize>t << 2));
      const sc = scoreNode(s, nb);
      scored++;
      if (rs < ef || sc > load<f32>(rk)) {
        // a full candidate heap (only in walks through huge masked regions) drops the newcomer
        if (cs < heapCap) cs = heapPush(ck, ci, cs, -sc, nb);
        if (!isExcluded(excluded, nb)) {
          rs = heapPush(rk, ri, rs, sc, nb);
          if (rs > ef) rs = heapPop(rk, ri, rs);
        }
      }
    }
  }
  sink = touch;
  store<u32>(g + G_SCORED, scored);
  return rs;
}

/** Empties the result heap (rs entries) into the work lists, best first. */
function drainResults(g: usize, rs: i32, keys: usize, ids: usize): void {
  const rk = gptr(g, G_RKEYS), ri = gptr(g, G_RIDS);
  let n = rs;
  while (n > 0) {
    store<f32>(keys + (<usize>(n - 1) << 2), load<f32>(rk));
    store<u32>(ids + (<usize>(n - 1) << 2), load<u32>(ri));
    n = heapPop(rk, ri, n);
  }
}

/** Score of node b for node a's vector (build scorers only: rows are the vectors). */
@inline function pairScore(s: usize, a: u32, b: u32): f32 {
  const saved = load<u32>(s + S_P0);
  store<u32>(s + S_P0, load<u32>(s + S_CODES) + a * load<u32>(s + S_STRIDE));
  const sc = scoreNode(s, b);
  store<u32>(s + S_P0, saved);
  return sc;
}

/**
 * hnswlib's neighbour heuristic: from candidates sorted best first (keys = score to the base
 * node), keep a candidate unless it is closer to an already kept one than to the base node;
 * at most m kept, written to (outKeys, outIds). Returns the count kept.
 */
function selectNeighbours(s: usize, keys: usize, ids: usize, n: i32, m: i32, outKeys: usize, outIds: usize): i32 {
  let kept = 0;
  for (let i = 0; i < n && kept < m; i++) {
    const e = load<u32>(ids + (<usize>i << 2));
    const se = load<f32>(keys + (<usize>i << 2));
    let good = true;
    for (let j = 0; j < kept; j++) {
      if (pairScore(s, e, load<u32>(outIds + (<usize>j << 2))) > se) { good = false; break; }
    }
    if (good) {
      store<f32>(outKeys + (<usize>kept << 2), se);
      store<u32>(outIds + (<usize>kept << 2), e);
      kept++;
    }
  }
  return kept;
}

/** Adds `node` to nb's list on `level`, re-selecting nb's neighbours when the list is full. */
function addLink(g: usize, s: usize, nb: u32, node: u32, score: f32, level: i32): void {
  lockNode(g, nb);
  addLinkLocked(g, s, nb, node, score, level);
  unlockNode(g, nb);
}

function addLinkLocked(g: usize, s: usize, nb: u32, node: u32, score: f32, level: i32): void {
  const mmax = level == 0 ? <i32>g32(g, G_M0) : <i32>g32(g, G_M);
  const list = linksOf(g, nb, level);
  const deg = <i32>load<u32>(list);
  if (deg < mmax) {
    store<u32>(list + 4 + (<usize>deg << 2), node);
    store<u32>(list, deg + 1);
    return;
  }
  // candidates: the current links and node, scored against nb, sorted best first (insertion sort)
  const ck = gptr(g, G_RKEYS), ci = gptr(g, G_RIDS);
  let n = 0;
  for (let t = 0; t <= deg; t++) {
    const id = t < deg ? load<u32>(list + 4 + (<usize>t << 2)) : node;
    const key = t < deg ? pairScore(s, nb, id) : score;
    let i = n;
    while (i > 0 && (load<f32>(ck + (<usize>(i - 1) << 2)) < key || (load<f32>(ck + (<usize>(i - 1) << 2)) == key && load<u32>(ci + (<usize>(i - 1) << 2)) > id))) {
      store<f32>(ck + (<usize>i << 2), load<f32>(ck + (<usize>(i - 1) << 2)));
      store<u32>(ci + (<usize>i << 2), load<u32>(ci + (<usize>(i - 1) << 2)));
      i--;
    }
    store<f32>(ck + (<usize>i << 2), key);
    store<u32>(ci + (<usize>i << 2), id);
    n++;
  }
  const tk = gptr(g, G_TKEYS), ti = gptr(g, G_TIDS);
  const kept = selectNeighbours(s, ck, ci, n, mmax, tk, ti);
  for (let t = 0; t < kept; t++) store<u32>(list + 4 + (<usize>t << 2), load<u32>(ti + (<usize>t << 2)));
  store<u32>(list, kept);
}

/**
 * Inserts the n nodes listed at `nodes` (u32[n], in that order; not yet in the graph, their
 * levels and upper-level slots already set) into the graph g, using the build scorer s: kind 1
 * (dot) or 2 (L2) over the f32 rows at S_CODES, one row per node. Nodes not yet inserted have
 * empty lists and are never linked to. efConstruction = beam width of the insertion searches.
 * Concurrent calls on one shared memory (src/index/hnsw-graph.ts insertConcurrently) each get a
 * header copy with their own scratch and a LOCKS array, and must not change the entry node: the
 * caller inserts the highest-level node first, alone.
 */
export function hnswInsert(g: usize, s: usize, nodes: usize, n: u32, efConstruction: i32): void {
  const m = <i32>g32(g, G_M);
  const tk = gptr(g, G_TKEYS), ti = gptr(g, G_TIDS), sk = gptr(g, G_SKEYS), si = gptr(g, G_SIDS);
  const levels = gptr(g, G_LEVELS);
  const codes = load<u32>(s + S_CODES), stride = load<u32>(s + S_STRIDE);
  for (let i: u32 = 0; i < n; i++) {
    const node = load<u32>(nodes + (<usize>i << 2));
    const level = <i32>load<u8>(levels + <usize>node);
    for (let l = 0; l <= level; l++) store<u32>(linksOf(g, node, l), 0);
    store<u32>(g + G_COUNT, g32(g, G_COUNT) + 1);
    const entry = g32(g, G_ENTRY);
    if (entry == NONE) {
      store<u32>(g + G_ENTRY, node);
      store<u32>(g + G_MAXLEVEL, level);
      continue;
    }
    store<u32>(s + S_P0, codes + node * stride);
    const maxLevel = <i32>g32(g, G_MAXLEVEL);
    let cur = entry;
    let curScore = scoreNode(s, cur);
    for (let l = maxLevel; l > level; l--) {
      const r = greedy(g, s, cur, curScore, l);
      cur = <u32>r;
      curScore = reinterpret<f32>(<u32>(r >> 32));
    }
    for (let l = min(level, maxLevel); l >= 0; l--) {
      const rs = searchLayer(g, s, cur, curScore, efConstruction, l, 0);
      drainResults(g, rs, tk, ti);
      cur = load<u32>(ti);
      curScore = load<f32>(tk);
      const kept = selectNeighbours(s, tk, ti, rs, m, sk, si);
      const list = linksOf(g, node, l);
      lockNode(g, node);
      for (let t = 0; t < kept; t++) store<u32>(list + 4 + (<usize>t << 2), load<u32>(si + (<usize>t << 2)));
      store<u32>(list, kept);
      unlockNode(g, node);
      for (let t = 0; t < kept; t++) {
        addLink(g, s, load<u32>(si + (<usize>t << 2)), node, load<f32>(sk + (<usize>t << 2)), l);
      }
      store<u32>(s + S_P0, codes + node * stride); // addLink's pair scores restore it; kept explicit
    }
    if (level > maxLevel) {
      store<u32>(g + G_ENTRY, node);
      store<u32>(g + G_MAXLEVEL, level);
    }
  }
}

/**
 * The whole search of one query: greedy descent through the upper levels, then a beam search of
 * width max(ef, k) on level 0 over the scorer s (codes or vectors; larger = closer). Nodes whose
 * bit is set in `excluded` (a bitset, 0 = none) are traversed but never returned. Writes up to k
 * results best first to outIds: u32[k], outScores: f32[k]; returns their count. The number of
 * codes scored is left in the graph's SCORED word.
 */
export function hnswSearch(g: usize, s: usize, k: i32, ef: i32, excluded: usize, outIds: usize, outScores: usize): i32 {
  store<u32>(g + G_SCORED, 0);
  const entry = g32(g, G_ENTRY);
  if (entry == NONE || k <= 0) return 0;
  let cur = entry;
  let curScore = scoreNode(s, cur);
  store<u32>(g + G_SCORED, 1);
  for (let l = <i32>g32(g, G_MAXLEVEL); l > 0; l--) {
    const r = greedy(g, s, cur, curScore, l);
    cur = <u32>r;
    curScore = reinterpret<f32>(<u32>(r >> 32));
  }
  const rs = searchLayer(g, s, cur, curScore, max(ef, k), 0, excluded);
  const tk = gptr(g, G_TKEYS), ti = gptr(g, G_TIDS);
  drainResults(g, rs, tk, ti);
  const n = min(k, rs);
  for (let i = 0; i < n; i++) {
    store<u32>(outIds + (<usize>i << 2), load<u32>(ti + (<usize>i << 2)));
    store<f32>(outScores + (<usize>i << 2), load<f32>(tk + (<usize>i << 2)));
  }
  return n;
}
