import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Collection } from '../src/node.js';

// Committed fixtures of each released file format (made by scripts/make-fixtures.mjs) must keep
// opening with the same contents. Opened from a copy: opening for writing may rewrite files.

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'quiver-fixtures-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const vec = (i: number) => Array.from([Math.cos(i), Math.sin(i), i / 10, 1], (x) => Math.fround(x));

describe('format fixtures still open', () => {
  it('lists at least the v1 fixture', () => {
    assert.ok(readdirSync(fixtures).includes('format-v1'));
  });

  it('format-v1: segments, tombstones and WAL replay give the recorded contents', async () => {
    for (const readOnly of [true, false]) {
      const dir = join(tmp, `v1-${readOnly}`);
      cpSync(join(fixtures, 'format-v1'), dir, { recursive: true });
      const col = await Collection.open(dir, { readOnly });
      assert.deepEqual(col.schema, { dimension: 4, metric: 'l2', index: 'Flat', fields: {} });
      assert.equal(col.size, 12 - 2 + 8 - 1 + 1);
      assert.equal(col.has('a3'), false);
      assert.equal(col.has('b7'), false);
      assert.deepEqual(col.get('a0'), { id: 'a0', vector: Float32Array.from([9, 9, 9, 9]), metadata: { group: 'a', replaced: true } });
      assert.deepEqual(col.get('b2'), { id: 'b2', vector: Float32Array.from(vec(102)), metadata: { group: 'b', i: 2, tags: ['x', 'ü'] } });
      assert.deepEqual(col.get('c0').metadata, undefined);
      const hits = await col.search(vec(5), { k: 3 });
      assert.equal(hits[0].id, 'a5');
      assert.equal(hits[0].score, 0);
      const info = col.info();
      assert.equal(info.segmentList.filter((s) => s.state === 'sealed').length, 2);
      assert.equal(info.recovery.walRecords, 2);
      assert.deepEqual((await col.verify()).problems, []);
      await col.close();
    }
  });
});
