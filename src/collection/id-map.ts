import type { Segment } from './segment.js';

/**
 * Where each live id is: its segment and ordinal. An open-addressing hash table in typed arrays
 * that stores no strings: a slot holds the id's 32-bit hash and its packed location
 * (segment slot * 2^32 + ordinal); a lookup compares the id itself only on a hash match, reading
 * it from the segment (sealed segments keep ids as UTF-8 in their file's column). So the map costs
 * 12 bytes per slot (about 18 bytes per id at its load factor) instead of a JS Map entry plus a
 * retained string per id, which dominated the memory a process kept after a large import.
 *
 * Built on first need (a write, get, has), not at open: a collection opened only to search never
 * pays for hashing every id. Linear probing; deletions leave tombstones, cleared by rehashing
 * when they pile up.
 */
const EMPTY = -1;
const TOMBSTONE = -2;
const SLOT_SCALE = 4294967296;
const MAX_LOAD = 0.7;

export class IdMap {
  private hashes = new Uint32Array(0);
  private locs = new Float64Array(0);
  private mask = -1;
  private live = 0;
  private tombstones = 0;
  private built = false;
  private readonly slots: (Segment | null)[] = [];
  private readonly slotOf = new Map<Segment, number>();

  /** `segments`: the segments whose live rows make up the map, oldest first (for the lazy build). */
  constructor(private readonly segments: () => readonly Segment[]) {}

  private ensureBuilt(): void {
    if (this.built) return;
    this.built = true;
    let n = 0;
    for (const seg of this.segments()) n += seg.live;
    this.allocate(n);
    for (const seg of this.segments()) {
      const slot = this.slotOf.get(seg)!;
      for (let ord = 0; ord < seg.count; ord++) if (!seg.isDeleted(ord)) this.insertNew(hashId(seg.idAt(ord)), slot * SLOT_SCALE + ord);
    }
  }

  private allocate(n: number): void {
    let cap = 16;
    while (cap * MAX_LOAD < n + 1) cap *= 2;
    this.hashes = new Uint32Array(cap);
    this.locs = new Float64Array(cap).fill(EMPTY);
    this.mask = cap - 1;
    this.live = 0;
    this.tombstones = 0;
  }

  /** Inserts a location known not to be present (build and rehash). */
  private insertNew(h: number, loc: number): void {
    let i = h & this.mask;
    while (this.locs[i] >= 0) i = (i + 1) & this.mask;
    if (this.locs[i] === TOMBSTONE) this.tombstones--;
    this.hashes[i] = h;
    this.locs[i] = loc;
    this.live++;
  }

  /** The table index holding `id`, or -1. */
  private find(id: string, h: number): number {
    const { hashes, locs, mask } = this;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const loc = locs[i];
      if (loc === EMPTY) return -1;
      if (loc >= 0 && hashes[i] === h && this.idAt(loc) === id) return i;
    }
  }

  private idAt(loc: number): string {
    return this.slots[Math.floor(loc / SLOT_SCALE)]!.idAt(loc % SLOT_SCALE);
  }

  private rehash(minLive: number): void {
    const oldHashes = this.hashes, oldLocs = this.locs;
    this.allocate(Math.max(minLive, this.live));
    for (let i = 0; i < oldLocs.length; i++) if (oldLocs[i] >= 0) this.insertNew(oldHashes[i], oldLocs[i]);
  }

  /** Live ids, or the sum of live rows when the map is not built yet. */
  get size(): number {
    if (this.built) return this.live;
    return this.segments().reduce((a, s) => a + s.live, 0);
  }

  has(id: string): boolean {
    this.ensureBuilt();
    return this.find(id, hashId(id)) >= 0;
  }

  get(id: string): { segment: Segment; ord: number } | undefined {
    this.ensureBuilt();
    const i = this.find(id, hashId(id));
    if (i < 0) return undefined;
    const loc = this.locs[i];
    return { segment: this.slots[Math.floor(loc / SLOT_SCALE)]!, ord: loc % SLOT_SCALE };
  }

  /** Points `id` at (segment, ord), replacing where it was. The segment must be registered. */
  set(id: string, segment: Segment, ord: number): void {
    this.ensureBuilt();
    this.put(id, this.slotOf.get(segment)! * SLOT_SCALE + ord);
  }

  private put(id: string, loc: number): void {
    const h = hashId(id);
    const at = this.find(id, h);
    if (at >= 0) { this.locs[at] = loc; return; }
    // full: double the table (or just drop tombstones, when they are what fills it)
    if ((this.live + this.tombstones + 1) > this.locs.length * MAX_LOAD) this.rehash(this.live + 1 > this.locs.length * MAX_LOAD * 0.5 ? this.locs.length : this.live + 1);
    this.insertNew(h, loc);
  }

  /** Records the location only if the map is built (installing a rewritten segment). */
  setIfBuilt(id: string, segment: Segment, ord: number): void {
    if (this.built) this.put(id, this.slotOf.get(segment)! * SLOT_SCALE + ord);
  }

  delete(id: string): boolean {
    this.ensureBuilt();
    const i = this.find(id, hashId(id));
    if (i < 0) return false;
    this.locs[i] = TOMBSTONE;
    this.live--;
    this.tombstones++;
    // many tombstones lengthen probes: clean them up (shrinking when mostly empty)
    if (this.tombstones > this.locs.length / 4) this.rehash(this.live + 1);
    return true;
  }

  /** Registers a segment (before any of its ids are set). */
  addSegment(seg: Segment): void {
    let slot = this.slots.indexOf(null);
    if (slot < 0) { slot = this.slots.length; this.slots.push(seg); } else this.slots[slot] = seg;
    this.slotOf.set(seg, slot);
  }

  /** Hands `from`'s slot to `to`: same rows, same ordinals (a frozen segment becoming sealed). */
  replaceSegment(from: Segment, to: Segment): void {
    const slot = this.slotOf.get(from)!;
    this.slots[slot] = to;
    this.slotOf.delete(from);
    this.slotOf.set(to, slot);
  }

  /** Forgets a segment whose ids have all moved elsewhere or died. */
  removeSegment(seg: Segment): void {
    const slot = this.slotOf.get(seg);
    if (slot === undefined) return;
    this.slots[slot] = null;
    this.slotOf.delete(seg);
  }

  clear(): void {
    this.built = false;
    this.hashes = new Uint32Array(0);
    this.locs = new Float64Array(0);
    this.live = 0;
    this.tombstones = 0;
  }
}

/** 32-bit FNV-1a over UTF-16 code units, then a murmur finalizer (linear probing wants mixed low bits). */
export function hashId(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
