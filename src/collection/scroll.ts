import type { Segment } from './segment.js';

/**
 * Iteration over all live records in id order (UTF-16 code units, as `<` compares strings), a
 * page at a time, resumable from the last id of the previous page. Each segment keeps (lazily,
 * cached) its ordinals sorted by id; a page binary-searches every segment for the first id after
 * the cursor and merges their heads, skipping deleted rows. Ids are unique among live rows, so
 * the merge yields each record once. Cost per page: O(segments * log rows + limit * segments).
 * Writes between pages are seen by later pages (no snapshot across pages).
 */
const sortedCache = new WeakMap<Segment, { count: number; perm: Uint32Array }>();

/** Ordinals of `seg` sorted by id (all rows, deleted included; recomputed when rows were added). */
function sortedOrdinals(seg: Segment): Uint32Array {
  const hit = sortedCache.get(seg);
  if (hit && hit.count === seg.count) return hit.perm;
  const ids: string[] = new Array(seg.count);
  for (let i = 0; i < seg.count; i++) ids[i] = seg.idAt(i);
  const perm = Uint32Array.from({ length: seg.count }, (_, i) => i);
  perm.sort((a, b) => (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : a - b));
  sortedCache.set(seg, { count: seg.count, perm });
  return perm;
}

/** First position in `perm` whose id is > `after` (or 0 without a cursor). */
function firstAfter(seg: Segment, perm: Uint32Array, after: string | undefined): number {
  if (after === undefined) return 0;
  let lo = 0, hi = perm.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (seg.idAt(perm[mid]) <= after) lo = mid + 1; else hi = mid;
  }
  return lo;
}

export interface ScrollRow { segment: Segment; ord: number; id: string }

/** Up to `limit` live rows with id > `after`, in id order. */
export function scrollPage(segments: readonly Segment[], after: string | undefined, limit: number): ScrollRow[] {
  const heads = segments.filter((s) => s.live > 0).map((seg) => {
    const perm = sortedOrdinals(seg);
    return { seg, perm, pos: firstAfter(seg, perm, after) };
  });
  const advance = (h: (typeof heads)[number]) => { while (h.pos < h.perm.length && h.seg.isDeleted(h.perm[h.pos])) h.pos++; };
  heads.forEach(advance);
  const out: ScrollRow[] = [];
  while (out.length < limit) {
    let best: (typeof heads)[number] | null = null;
    let bestId = '';
    for (const h of heads) {
      if (h.pos >= h.perm.length) continue;
      const id = h.seg.idAt(h.perm[h.pos]);
      if (best === null || id < bestId) { best = h; bestId = id; }
    }
    if (!best) break;
    out.push({ segment: best.seg, ord: best.perm[best.pos], id: bestId });
    best.pos++;
    advance(best);
  }
  return out;
}
