import { BLOCK_SIZE, NO_MORE_DOCS, paretoImpacts, type FieldPostings, type PostingCursor, type PostingLists } from './postings.js';

/**
 * Postings of one text field in the mutable segment, grown as rows are appended. Rows only ever
 * arrive at the end (ordinals are stable, deletes are tombstones), so a list only grows at its
 * tail and a full block never changes: its impacts are computed once, when first asked for.
 * Cursors see the lists as they were when made (a search runs between two appends).
 */
export class MutableFieldPostings implements FieldPostings {
  private readonly lists = new Map<string, GrowingList>();
  private lens = new Uint32Array(256);
  count = 0;
  docCount = 0;
  totalLength = 0;

  get lengths(): Uint32Array { return this.lens; }

  get bytes(): number {
    let b = this.lens.byteLength;
    for (const [t, l] of this.lists) b += t.length * 2 + 48 + l.docs.byteLength * 2;
    return b;
  }

  /** Indexes row `ord` (the next row: ordinals arrive in order; rows without text pass null). */
  add(ord: number, terms: readonly string[] | null): void {
    if (ord >= this.lens.length) {
      const next = new Uint32Array(Math.max(ord + 1, this.lens.length * 2));
      next.set(this.lens);
      this.lens = next;
    }
    this.count = Math.max(this.count, ord + 1);
    if (terms === null) return;
    this.docCount++;
    this.totalLength += terms.length;
    this.lens[ord] = terms.length;
    const tf = new Map<string, number>();
    for (const t of terms) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const [t, f] of tf) {
      let l = this.lists.get(t);
      if (!l) { l = new GrowingList(); this.lists.set(t, l); }
      l.push(ord, f);
    }
  }

  docFreq(term: string): number { return this.lists.get(term)?.n ?? 0; }

  cursor(term: string): PostingCursor | null {
    const l = this.lists.get(term);
    return l && l.n > 0 ? new ArrayCursor(l, this.lens) : null;
  }

  /** The lists as a segment writer takes them (copies; rows increasing). */
  toLists(): PostingLists {
    const terms = new Map<string, { docs: number[]; tfs: number[] }>();
    for (const [t, l] of this.lists) terms.set(t, { docs: Array.from(l.docs.subarray(0, l.n)), tfs: Array.from(l.tfs.subarray(0, l.n)) });
    return { terms, lengths: this.lens.slice(0, this.count), docCount: this.docCount, totalLength: this.totalLength };
  }
}

class GrowingList {
  docs = new Uint32Array(4);
  tfs = new Uint32Array(4);
  n = 0;
  /** Impacts of full blocks, computed on first use. */
  readonly blockImpacts: (Uint32Array | undefined)[] = [];
  /** The last (partial) block's impacts and the list length they were computed at. */
  private tailImpacts: Uint32Array | null = null;
  private tailAt = -1;
  /** The whole list's front and the list length it was computed at. */
  private front: Uint32Array | null = null;
  private frontAt = -1;

  push(doc: number, tf: number): void {
    if (this.n === this.docs.length) {
      const d = new Uint32Array(this.n * 2), f = new Uint32Array(this.n * 2);
      d.set(this.docs); f.set(this.tfs);
      this.docs = d; this.tfs = f;
    }
    this.docs[this.n] = doc;
    this.tfs[this.n] = tf;
    this.n++;
  }

  impactsOf(b: number, n: number, lens: Uint32Array): Uint32Array {
    const from = b * BLOCK_SIZE, to = Math.min(n, from + BLOCK_SIZE);
    const full = to - from === BLOCK_SIZE;
    if (full && this.blockImpacts[b]) return this.blockImpacts[b]!;
    if (!full && this.tailAt === n && this.tailImpacts) return this.tailImpacts;
    const docs = this.docs;
    const out = Uint32Array.from(paretoImpacts(this.tfs, docs, from, to, (i) => lens[docs[i]]));
    if (full) this.blockImpacts[b] = out;
    else { this.tailImpacts = out; this.tailAt = n; }
    return out;
  }

  /** The front of the first `n` postings, from its blocks' fronts (cached per length). */
  listImpacts(n: number, lens: Uint32Array): Uint32Array {
    if (this.front && this.frontAt === n) return this.front;
    const tfs: number[] = [], ls: number[] = [];
    for (let b = 0; b * BLOCK_SIZE < n; b++) {
      const imp = this.impactsOf(b, n, lens);
      for (let i = 0; i < imp.length; i += 2) { tfs.push(imp[i]); ls.push(imp[i + 1]); }
    }
    this.front = Uint32Array.from(paretoImpacts(tfs, ls, 0, tfs.length));
    this.frontAt = n;
    return this.front;
  }
}

class ArrayCursor implements PostingCursor {
  doc: number;
  freq: number;
  private at = 0;
  private shallow = 0;
  private readonly n: number;
  private readonly blocks: number;

  constructor(private readonly list: GrowingList, private readonly lens: Uint32Array) {
    this.n = list.n;
    this.blocks = Math.ceil(this.n / BLOCK_SIZE);
    this.doc = list.docs[0];
    this.freq = list.tfs[0];
  }

  get listImpacts(): Uint32Array { return this.list.listImpacts(this.n, this.lens); }

  next(): void {
    if (++this.at < this.n) { this.doc = this.list.docs[this.at]; this.freq = this.list.tfs[this.at]; } else this.doc = NO_MORE_DOCS;
  }

  advance(target: number): void {
    if (this.doc >= target) return;
    const docs = this.list.docs;
    // gallop, then binary search: lists of frequent terms are long
    let lo = this.at, step = 1, hi = lo + 1;
    while (hi < this.n && docs[hi] < target) { lo = hi; step *= 2; hi = lo + step; }
    if (hi > this.n) hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (docs[mid] < target) lo = mid + 1; else hi = mid;
    }
    this.at = lo;
    if (lo < this.n) { this.doc = docs[lo]; this.freq = this.list.tfs[lo]; } else this.doc = NO_MORE_DOCS;
  }

  private lastOf(b: number): number { return this.list.docs[Math.min(this.n, (b + 1) * BLOCK_SIZE) - 1]; }

  shallowAdvance(target: number): number {
    let b = Math.max(this.shallow, Math.floor(this.at / BLOCK_SIZE));
    while (b < this.blocks && this.lastOf(b) < target) b++;
    this.shallow = b;
    return b < this.blocks ? this.lastOf(b) : NO_MORE_DOCS;
  }

  shallowBlockStart(): number {
    const b = this.shallow;
    if (b >= this.blocks) return NO_MORE_DOCS;
    return b === 0 ? 0 : this.lastOf(b - 1) + 1;
  }

  shallowImpacts(): Uint32Array { return this.list.impactsOf(this.shallow, this.n, this.lens); }
}
