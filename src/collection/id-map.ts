import type { Segment } from './segment.js';

/**
 * Where each live id is: its segment and ordinal. Locations are packed numbers
 * (slot * 2^32 + ordinal) in one Map, segments addressed by small slot numbers, so the map
 * holds no object per id.
 *
 * Built on first need (a write, get, has), not at open: a collection opened only to search
 * never pays for hashing every id. Until then, lookups fall back to nothing (the caller builds it).
 */
export class IdMap {
  private locs: Map<string, number> | null = null;
  private readonly slots: (Segment | null)[] = [];
  private readonly slotOf = new Map<Segment, number>();

  /** `segments`: the segments whose live rows make up the map, oldest first (for the lazy build). */
  constructor(private readonly segments: () => readonly Segment[]) {}

  private get map(): Map<string, number> {
    if (this.locs) return this.locs;
    const map = new Map<string, number>();
    for (const seg of this.segments()) {
      const slot = this.slotOf.get(seg)!;
      for (let ord = 0; ord < seg.count; ord++) if (!seg.isDeleted(ord)) map.set(seg.idAt(ord), slot * SLOT_SCALE + ord);
    }
    this.locs = map;
    return map;
  }

  /** Live ids, or the sum of live rows when the map is not built yet. */
  get size(): number {
    if (this.locs) return this.locs.size;
    return this.segments().reduce((a, s) => a + s.live, 0);
  }

  has(id: string): boolean { return this.map.has(id); }

  get(id: string): { segment: Segment; ord: number } | undefined {
    const loc = this.map.get(id);
    if (loc === undefined) return undefined;
    return { segment: this.slots[Math.floor(loc / SLOT_SCALE)]!, ord: loc % SLOT_SCALE };
  }

  set(id: string, segment: Segment, ord: number): void {
    this.map.set(id, this.slotOf.get(segment)! * SLOT_SCALE + ord);
  }

  /** Records the location only if the map is built (installing a rewritten segment). */
  setIfBuilt(id: string, segment: Segment, ord: number): void {
    if (this.locs) this.locs.set(id, this.slotOf.get(segment)! * SLOT_SCALE + ord);
  }

  delete(id: string): boolean { return this.map.delete(id); }

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

  clear(): void { this.locs = null; }
}

const SLOT_SCALE = 4294967296;
