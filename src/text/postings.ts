import { QuiverError } from '../errors.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { readStringColumn } from '../storage/segment-file.js';

/**
 * BM25 postings of one text field in one segment: what the POSTINGS section holds, what the
 * mutable segment builds as rows arrive, and the cursors top-k search walks.
 *
 * A posting list holds, for one term, the rows (ordinals, increasing) whose text contains it and
 * how often (tf). Lists are cut into blocks of BLOCK_SIZE postings; each block records its last
 * row and its *impacts*: the (tf, length) pairs no other posting of the block beats on both
 * counts (larger tf, shorter text). BM25 grows with tf and falls with length for any k1, b and
 * average length, so the best score of a block is the best score of its impacts: an exact
 * upper bound computed at query time with collection-wide statistics (which change as segments
 * come and go), the way Lucene keeps "competitive impacts" per block.
 */
export const BLOCK_SIZE = 128;
export const POSTINGS_VERSION = 1;
/** Cursor position past the last posting. */
export const NO_MORE_DOCS = 0x7fffffff;

/** Collection-wide statistics of one field (sums over the segments searched). */
export interface FieldStats {
  /** Rows holding the field (deleted rows included, as Lucene counts them until a merge drops them). */
  docCount: number;
  /** Sum of their lengths (terms after analysis). */
  totalLength: number;
}

/** A cursor over one term's postings in one segment (ordinals increasing). */
export interface PostingCursor {
  /** Current row, or NO_MORE_DOCS. */
  doc: number;
  /** tf at the current row. */
  freq: number;
  /** Moves to the next posting. */
  next(): void;
  /** Moves to the first posting at or after `target` (never backwards). */
  advance(target: number): void;
  /**
   * Without decoding, positions the block pointer on the block that would hold `target` (the
   * first block whose last row is >= target); returns that block's last row, or NO_MORE_DOCS
   * when no block does.
   */
  shallowAdvance(target: number): number;
  /** The first row the shallow block can hold (the previous block's last row + 1). */
  shallowBlockStart(): number;
  /** Impacts of the shallow block: [tf0, len0, tf1, len1, ...]. */
  shallowImpacts(): Uint32Array;
  /** Impacts of the whole list. */
  readonly listImpacts: Uint32Array;
}

/** One text field's postings in one segment. */
export interface FieldPostings {
  /** Rows of the segment (lengths are indexed by ordinal). */
  readonly count: number;
  readonly docCount: number;
  readonly totalLength: number;
  /** Rows containing `term` (deleted rows included), 0 when none. */
  docFreq(term: string): number;
  cursor(term: string): PostingCursor | null;
  /** Text lengths (terms after analysis) by ordinal, 0 for rows without the field. */
  readonly lengths: Uint32Array;
  /** Bytes held in memory. */
  readonly bytes: number;
}

const TF_LIMIT = 2 ** 24;
const LEN_LIMIT = 2 ** 28;

/**
 * The Pareto front of (tf, length) pairs: sorted by tf descending, each kept pair strictly
 * shorter than every pair with a larger tf. `pairs` is [tf, len, ...].
 */
export function paretoImpacts(tfs: ArrayLike<number>, lens: ArrayLike<number>, from: number, to: number, lengthOf: (i: number) => number = (i) => lens[i]): number[] {
  // sort (tf, length) pairs packed exactly into one double: tf descending, then length ascending
  // (a text holds at most 2^20 characters, so tf < 2^24 and length < 2^28: the key stays below 2^52)
  const n = to - from;
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = (TF_LIMIT - tfs[from + i]) * LEN_LIMIT + lengthOf(from + i);
  keys.sort();
  const out: number[] = [];
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const len = keys[i] % LEN_LIMIT;
    if (len < best) { out.push(TF_LIMIT - Math.floor(keys[i] / LEN_LIMIT), len); best = len; }
  }
  return out;
}

// ---- building and encoding a segment's section ----

/** Postings gathered in memory: term -> rows and tfs (rows increasing). */
export interface PostingLists {
  terms: Map<string, { docs: number[]; tfs: number[] }>;
  lengths: Uint32Array;
  docCount: number;
  totalLength: number;
}

/** Builds posting lists from analysed rows (`termsOf(ord)`: the row's terms in order, or null when it has no text). */
export function gatherPostings(count: number, termsOf: (ord: number) => readonly string[] | null): PostingLists {
  const terms = new Map<string, { docs: number[]; tfs: number[] }>();
  const lengths = new Uint32Array(count);
  let docCount = 0, totalLength = 0;
  const tf = new Map<string, number>();
  for (let ord = 0; ord < count; ord++) {
    const list = termsOf(ord);
    if (list === null) continue;
    docCount++;
    lengths[ord] = list.length;
    totalLength += list.length;
    tf.clear();
    for (const t of list) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const [t, f] of tf) {
      let p = terms.get(t);
      if (!p) { p = { docs: [], tfs: [] }; terms.set(t, p); }
      p.docs.push(ord);
      p.tfs.push(f);
    }
  }
  return { terms, lengths, docCount, totalLength };
}

/**
 * Encodes a POSTINGS section. Byte layout (little-endian):
 *   0   u32  version (1)
 *   4   u32  n: rows of the segment
 *   8   u32  docCount: rows holding the field
 *   12  u32  T: distinct terms
 *   16  f64  totalLength: sum of lengths
 *   24  u32[n]       lengths (terms after analysis; 0 = no text)
 *   .   terms        string column: u32[T + 1] offsets, UTF-8 blob (sorted by UTF-16 code units), padded to 4
 *   .   u32[T]       df per term
 *   .   u32[T + 1]   first block of each term (term t's blocks: [first[t], first[t+1]))
 *   .   u32 B, then B blocks of 4 u32: last row, data byte offset, first impact pair, (postings | impact pairs << 16)
 *   .   u32 P, u32[2P]  impact pairs (tf, length), each block's pairs contiguous
 *   .   u32 D, u8[D]    block data: per block, varint row deltas (the first from the previous
 *                      block's last row + 1, or from 0), then varint tfs
 */
export function encodePostings(p: PostingLists): Uint8Array[] {
  const n = p.lengths.length;
  const terms = [...p.terms.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const T = terms.length;
  const df = new Uint32Array(T);
  const first = new Uint32Array(T + 1);
  const blocks: number[] = [];
  const impacts: number[] = [];
  const data = new VarintWriter();
  let b = 0;
  terms.forEach((t, ti) => {
    const { docs, tfs } = p.terms.get(t)!;
    df[ti] = docs.length;
    first[ti] = b;
    for (let from = 0; from < docs.length; from += BLOCK_SIZE) {
      const to = Math.min(docs.length, from + BLOCK_SIZE);
      const pairs = paretoImpacts(tfs, docs, from, to, (i) => p.lengths[docs[i]]);
      blocks.push(docs[to - 1], data.length, impacts.length / 2, (to - from) | ((pairs.length / 2) << 16));
      for (const x of pairs) impacts.push(x);
      let prev = from === 0 ? 0 : docs[from - 1] + 1;
      for (let i = from; i < to; i++) { data.put(docs[i] - prev); prev = docs[i] + 1; }
      for (let i = from; i < to; i++) data.put(tfs[i]);
      b++;
    }
  });
  first[T] = b;
  // terms as a string column (offsets + blob), padded to 4 bytes
  const enc = new TextEncoder();
  const blobs = terms.map((t) => enc.encode(t));
  const offsets = new Uint32Array(T + 1);
  let total = 0;
  blobs.forEach((bl, i) => { offsets[i] = total; total += bl.length; });
  offsets[T] = total;
  const w = new ByteWriter(64 + n * 4 + (T + 1) * 4 + total + T * 8 + blocks.length * 4 + impacts.length * 4 + data.length);
  w.u32(POSTINGS_VERSION).u32(n).u32(p.docCount).u32(T).f64(p.totalLength);
  w.typed(p.lengths);
  w.typed(offsets);
  for (const bl of blobs) w.bytes(bl);
  w.align(4);
  w.typed(df).typed(first);
  w.u32(b).typed(Uint32Array.from(blocks));
  w.u32(impacts.length / 2).typed(Uint32Array.from(impacts));
  w.u32(data.length).bytes(data.finish());
  return [w.finish()];
}

class VarintWriter {
  private buf = new Uint8Array(1024);
  length = 0;
  put(v: number): void {
    if (this.length + 5 > this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    while (v >= 0x80) { this.buf[this.length++] = (v & 0x7f) | 0x80; v >>>= 7; }
    this.buf[this.length++] = v;
  }
  finish(): Uint8Array { return this.buf.subarray(0, this.length); }
}

/** Parses a POSTINGS section; CORRUPT_FILE naming `where` on any inconsistency. */
export function decodePostings(bytes: Uint8Array, count: number, where: string, field: string): FieldPostings {
  const r = new ByteReader(bytes, where);
  const version = r.u32('postings version');
  if (version !== POSTINGS_VERSION) {
    throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: postings of "${field}" have format version ${version} (read: ${POSTINGS_VERSION})`, { file: where, expected: POSTINGS_VERSION, received: version });
  }
  const n = r.u32('rows');
  if (n !== count) r.fail(`postings of "${field}" cover ${n} rows, the segment ${count}`);
  const docCount = r.u32('doc count');
  const T = r.u32('term count');
  const totalLength = r.f64('total length');
  const lengths = r.u32Array(n, 'lengths');
  const terms = readStringColumn(r, T, where, `terms of "${field}"`);
  r.align(4);
  const df = r.u32Array(T, 'document frequencies');
  const first = r.u32Array(T + 1, 'term blocks');
  const B = r.u32('block count');
  const blocks = r.u32Array(B * 4, 'blocks');
  const P = r.u32('impact count');
  const impacts = r.u32Array(P * 2, 'impacts');
  const D = r.u32('data length');
  const data = r.bytesView(D, 'block data').slice();
  if (r.remaining !== 0) r.fail(`postings of "${field}" have ${r.remaining} trailing bytes`);
  // structural checks, so a cursor can never read outside its arrays
  let docs = 0, sumLen = 0;
  for (let i = 0; i < n; i++) { if (lengths[i] > 0) docs++; sumLen += lengths[i]; }
  if (docs > docCount || sumLen !== totalLength) r.fail(`postings of "${field}": lengths disagree with the counts`);
  if (first[0] !== 0 || first[T] !== B) r.fail(`postings of "${field}": term blocks do not cover ${B} blocks`);
  for (let t = 0; t < T; t++) {
    if (first[t] > first[t + 1]) r.fail(`postings of "${field}": term ${t} blocks decrease`);
    const nb = first[t + 1] - first[t];
    if (df[t] === 0 || df[t] > n || Math.ceil(df[t] / BLOCK_SIZE) !== nb) r.fail(`postings of "${field}": term ${t} has df ${df[t]} and ${nb} blocks`);
  }
  for (let i = 0; i < B; i++) {
    const last = blocks[i * 4], off = blocks[i * 4 + 1], imp = blocks[i * 4 + 2], packed = blocks[i * 4 + 3];
    const size = packed & 0xffff, pairs = packed >>> 16;
    if (last >= n || off > D || size === 0 || size > BLOCK_SIZE || pairs === 0 || imp + pairs > P) r.fail(`postings of "${field}": block ${i} is malformed`);
  }
  // every term decodes (so lookups later cannot fail) and they are sorted (so binary search works)
  try {
    for (let i = 1; i < T; i++) if (!(terms.value(i - 1) < terms.value(i))) r.fail(`postings of "${field}": terms are not sorted at ${i}`);
    if (T === 1) terms.value(0);
  } catch (e) {
    if (e instanceof QuiverError) throw e;
    r.fail(`postings of "${field}": a term is not valid UTF-8`);
  }
  const lookup = (term: string): number => {
    let lo = 0, hi = T;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (terms.value(mid) < term) lo = mid + 1;
      else hi = mid;
    }
    return lo < T && terms.value(lo) === term ? lo : -1;
  };
  /** Each term's list front, computed on first use. */
  const fronts = new Map<number, Uint32Array>();
  const bytesHeld = lengths.byteLength + terms.bytes + df.byteLength + first.byteLength + blocks.byteLength + impacts.byteLength + data.byteLength;
  return {
    count: n, docCount, totalLength, lengths, bytes: bytesHeld,
    docFreq: (term) => { const t = lookup(term); return t < 0 ? 0 : df[t]; },
    cursor: (term) => {
      const t = lookup(term);
      if (t < 0) return null;
      let front = fronts.get(t);
      if (!front) {
        front = listFront(blocks, impacts, first[t], first[t + 1]);
        if (fronts.size > 65536) fronts.clear();
        fronts.set(t, front);
      }
      return new BlockCursor(blocks, impacts, data, first[t], first[t + 1], n, where, field, front);
    },
  };
}

/** A whole list's front, from its blocks' fronts. */
function listFront(blocks: Uint32Array, impacts: Uint32Array, firstBlock: number, endBlock: number): Uint32Array {
  const tfs: number[] = [], lens: number[] = [];
  for (let b = firstBlock; b < endBlock; b++) {
    const imp = blocks[b * 4 + 2], pairs = blocks[b * 4 + 3] >>> 16;
    for (let i = 0; i < pairs; i++) { tfs.push(impacts[(imp + i) * 2]); lens.push(impacts[(imp + i) * 2 + 1]); }
  }
  return Uint32Array.from(paretoImpacts(tfs, lens, 0, tfs.length));
}

/** Walks one term's blocks, decoding a block's rows and tfs only when a posting inside it is needed. */
class BlockCursor implements PostingCursor {
  doc = -1;
  freq = 0;
  readonly listImpacts: Uint32Array;
  /** Block decoded into docs/tfs (-1: none). */
  private decoded = -1;
  private readonly docs = new Uint32Array(BLOCK_SIZE);
  private readonly tfs = new Uint32Array(BLOCK_SIZE);
  private size = 0;
  private at = 0;
  /** The block shallowAdvance stopped on. */
  private shallow: number;

  constructor(private readonly blocks: Uint32Array, private readonly impacts: Uint32Array, private readonly data: Uint8Array,
    private readonly firstBlock: number, private readonly endBlock: number, private readonly rows: number,
    private readonly where: string, private readonly field: string, listImpacts: Uint32Array) {
    this.shallow = firstBlock;
    this.listImpacts = listImpacts;
    this.decode(firstBlock);
    this.doc = this.docs[0];
    this.freq = this.tfs[0];
  }

  private decode(b: number): void {
    const blocks = this.blocks, data = this.data, docs = this.docs, tfs = this.tfs;
    const size = blocks[b * 4 + 3] & 0xffff;
    const end = data.length;
    let p = blocks[b * 4 + 1];
    let prev = b === this.firstBlock ? 0 : blocks[(b - 1) * 4] + 1;
    // varints inline (a closure per block cost a third of a query): rows as deltas, then tfs
    for (let i = 0; i < 2 * size; i++) {
      let v = 0, scale = 1, byte = 0x80;
      while (byte & 0x80) {
        if (p >= end || scale > 2 ** 28) this.corrupt(b);
        byte = data[p++];
        v += (byte & 0x7f) * scale;
        scale *= 128;
      }
      if (i < size) { const d = prev + v; docs[i] = d; prev = d + 1; }
      else { if (v === 0) this.corrupt(b); tfs[i - size] = v; }
    }
    if (docs[size - 1] !== blocks[b * 4] || docs[size - 1] >= this.rows) this.corrupt(b);
    this.decoded = b;
    this.size = size;
    this.at = 0;
  }

  private corrupt(b: number): never {
    throw new QuiverError('CORRUPT_FILE', `${this.where}: postings of "${this.field}", block ${b} does not decode`, { file: this.where, block: b });
  }

  next(): void {
    if (++this.at < this.size) {
      this.doc = this.docs[this.at];
      this.freq = this.tfs[this.at];
      return;
    }
    const b = this.decoded + 1;
    if (b >= this.endBlock) { this.doc = NO_MORE_DOCS; return; }
    this.decode(b);
    this.doc = this.docs[0];
    this.freq = this.tfs[0];
  }

  advance(target: number): void {
    if (this.doc >= target) return;
    const blocks = this.blocks;
    if (blocks[this.decoded * 4] < target) {
      let b = this.decoded + 1;
      while (b < this.endBlock && blocks[b * 4] < target) b++;
      if (b >= this.endBlock) { this.doc = NO_MORE_DOCS; return; }
      this.decode(b);
    }
    const docs = this.docs;
    let i = this.at;
    while (docs[i] < target) i++;
    this.at = i;
    this.doc = docs[i];
    this.freq = this.tfs[i];
  }

  shallowAdvance(target: number): number {
    const blocks = this.blocks;
    let b = Math.max(this.shallow, this.decoded);
    while (b < this.endBlock && blocks[b * 4] < target) b++;
    this.shallow = b;
    return b < this.endBlock ? blocks[b * 4] : NO_MORE_DOCS;
  }

  shallowBlockStart(): number {
    const b = this.shallow;
    if (b >= this.endBlock) return NO_MORE_DOCS;
    return b === this.firstBlock ? 0 : this.blocks[(b - 1) * 4] + 1;
  }

  shallowImpacts(): Uint32Array {
    const b = this.shallow;
    const imp = this.blocks[b * 4 + 2], pairs = this.blocks[b * 4 + 3] >>> 16;
    return this.impacts.subarray(imp * 2, (imp + pairs) * 2);
  }
}
