/**
 * Which sealed segments to merge: a pure function of their sizes, so the policy is tested on its
 * own (test/merge-policy.test.ts).
 *
 * Tiered: segments fall into size tiers of width `segmentsPerTier` (tier t holds segments of
 * roughly baseRows * segmentsPerTier^t live rows); a tier holding `segmentsPerTier` segments is
 * merged, smallest tier first. A segment whose deleted fraction exceeds `maxDeletedRatio` is
 * rewritten alone first (dropping its deleted rows). `all` (compaction) merges every segment
 * into one when there are several, or rewrites a single one that has deletes.
 */
export interface MergeCandidate {
  readonly count: number;
  readonly live: number;
  readonly deleted: number;
}

export interface MergePolicy {
  /** Merge when this many segments share a size tier (>= 2). */
  segmentsPerTier: number;
  /** Rewrite a segment alone once more than this fraction of its rows is deleted, in (0, 1]. */
  maxDeletedRatio: number;
  /** Rows of a tier-0 segment (the seal size, capped). */
  baseRows: number;
}

/** The candidates to merge now (a subset of `segments`, in their order), or [] for none. */
export function pickMerge<T extends MergeCandidate>(segments: readonly T[], policy: MergePolicy, all: boolean): T[] {
  if (all) return segments.length > 1 || segments.some((s) => s.deleted > 0) ? [...segments] : [];
  const heavy = segments.find((s) => s.count > 0 && s.deleted / s.count > policy.maxDeletedRatio);
  if (heavy) return [heavy];
  const base = Math.max(1, Math.min(policy.baseRows, 1 << 20));
  const tiers = new Map<number, T[]>();
  for (const s of segments) {
    const tier = Math.max(0, Math.floor(Math.log(Math.max(1, s.live) / base) / Math.log(policy.segmentsPerTier)));
    let group = tiers.get(tier);
    if (!group) tiers.set(tier, (group = []));
    group.push(s);
  }
  for (const t of [...tiers.keys()].sort((a, b) => a - b)) {
    const group = tiers.get(t)!;
    if (group.length >= policy.segmentsPerTier) return group.slice(0, policy.segmentsPerTier);
  }
  return [];
}
