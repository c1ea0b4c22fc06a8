import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashId, IdMap } from '../src/collection/id-map.js';
import type { Segment } from '../src/collection/segment.js';
import { rng } from './helpers/random.js';

// The id map is a hash table without strings: it must agree with a plain Map through inserts,
// replacements, deletes, growth, tombstone clean-ups, segment replacement, and a lazy build.

function fakeSegment(ids: string[], deleted = new Set<number>()): Segment {
  return {
    get count() { return ids.length; },
    get live() { return ids.length - deleted.size; },
    idAt: (ord: number) => ids[ord],
    isDeleted: (ord: number) => deleted.has(ord),
  } as unknown as Segment;
}

describe('IdMap', () => {
  it('agrees with a Map over 60,000 random operations (growth, deletes, tombstone rehash)', () => {
    const ids: string[] = [];
    const seg = fakeSegment(ids);
    const map = new IdMap(() => [seg]);
    map.addSegment(seg);
    const model = new Map<string, number>();
    const r = rng(11);
    for (let step = 0; step < 60000; step++) {
      const id = `k${Math.floor(r() * 5000)}${r() < 0.1 ? 'ü😀' : ''}`;
      if (r() < 0.65) {
        ids.push(id);
        map.set(id, seg, ids.length - 1);
        model.set(id, ids.length - 1);
      } else {
        assert.equal(map.delete(id), model.delete(id), `delete ${id} at step ${step}`);
      }
      if (step % 997 === 0) {
        assert.equal(map.size, model.size);
        for (const [k, ord] of model) assert.equal(map.get(k)?.ord, ord, k);
      }
    }
    for (const [k, ord] of model) assert.equal(map.get(k)?.ord, ord);
    assert.equal(map.has('absent'), false);
    assert.equal(map.size, model.size);
  });

  it('builds lazily from the live rows of its segments, and follows segments handed over or removed', () => {
    const a = fakeSegment(['x', 'y', 'z'], new Set([1]));
    const b = fakeSegment(['y', 'w']);
    const map = new IdMap(() => [a, b]);
    map.addSegment(a);
    map.addSegment(b);
    assert.equal(map.size, 4, 'size before the build is the live row count');
    assert.equal(map.get('y')?.segment, b);
    assert.equal(map.get('x')?.segment, a);
    assert.equal(map.size, 4);
    const a2 = fakeSegment(['x', 'y', 'z'], new Set([1]));
    map.replaceSegment(a, a2);
    assert.equal(map.get('z')?.segment, a2);
    const c = fakeSegment(['z', 'x']);
    map.addSegment(c);
    map.setIfBuilt('z', c, 0);
    map.setIfBuilt('x', c, 1);
    map.removeSegment(a2);
    assert.deepEqual([map.get('z')?.ord, map.get('x')?.ord, map.get('x')?.segment === c], [0, 1, true]);
    map.clear();
    const d = new IdMap(() => [a2]);
    d.addSegment(a2);
    d.setIfBuilt('q', a2, 0); // not built: ignored
    assert.equal(d.has('q'), false);
  });

  it('hashes code units (distinct strings with surrogates hash apart)', () => {
    assert.notEqual(hashId('😀'), hashId('😁'));
    assert.equal(hashId('abc'), hashId('abc'));
  });
});
