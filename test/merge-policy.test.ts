import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pickMerge, type MergeCandidate } from '../src/collection/merge-policy.js';

// The merge picker is a pure function of segment sizes.

const seg = (live: number, deleted = 0): MergeCandidate & { name: string } => ({ count: live + deleted, live, deleted, name: `${live}/${deleted}` });
const policy = { segmentsPerTier: 4, maxDeletedRatio: 0.3, baseRows: 1000 };

describe('merge policy', () => {
  it('merges a tier once it holds segmentsPerTier segments, smallest tier first', () => {
    assert.deepEqual(pickMerge([seg(1000), seg(900), seg(1100)], policy, false), []);
    const four = [seg(1000), seg(900), seg(1100), seg(1000)];
    assert.deepEqual(pickMerge(four, policy, false), four);
    // tier 1 (4k..16k) full as well: tier 0 goes first
    const big = [seg(4000), seg(5000), seg(6000), seg(7000)];
    assert.deepEqual(pickMerge([...big, ...four], policy, false), four);
    assert.deepEqual(pickMerge(big, policy, false), big);
    // five in a tier: the first four
    const five = [...four, seg(950)];
    assert.deepEqual(pickMerge(five, policy, false), four);
    // tiny segments (fewer live rows than the base) count as tier 0
    assert.equal(pickMerge([seg(1), seg(2), seg(3), seg(0, 5)], { ...policy, maxDeletedRatio: 1 }, false).length, 4);
  });

  it('a tombstone-heavy segment is rewritten alone, before any tier', () => {
    const heavy = seg(600, 400);
    assert.deepEqual(pickMerge([seg(1000), heavy, seg(1000), seg(1000), seg(1000)], policy, false), [heavy]);
    assert.deepEqual(pickMerge([seg(700, 300)], policy, false), [], 'exactly at the ratio is not over it');
  });

  it('compaction takes everything when there is more than one segment or any delete', () => {
    assert.deepEqual(pickMerge([], policy, true), []);
    assert.deepEqual(pickMerge([seg(10)], policy, true), []);
    const one = seg(10, 1);
    assert.deepEqual(pickMerge([one], policy, true), [one]);
    const two = [seg(10), seg(20)];
    assert.deepEqual(pickMerge(two, policy, true), two);
  });
});
