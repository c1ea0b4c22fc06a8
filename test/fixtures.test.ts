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
  it('lists at least the v1 and v2 fixtures', () => {
    assert.ok(readdirSync(fixtures).includes('format-v1'));
    assert.ok(readdirSync(fixtures).includes('format-v2'));
    assert.ok(readdirSync(fixtures).includes('format-v2-hnsw'));
    assert.ok(readdirSync(fixtures).includes('format-v2-hnsw-graph2'));
    assert.ok(readdirSync(fixtures).includes('format-v2-ivf'));
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

  const vec6 = (i: number) => Array.from([Math.cos(i), Math.sin(i), i / 10, 1, Math.cos(2 * i), Math.sin(3 * i)], (x) => Math.fround(x));

  it('format-v2: a compressed segment (CODES + SQ8 quantizer), declared-field columns, a field added later, v2 WAL records', async () => {
    for (const readOnly of [true, false]) {
      const dir = join(tmp, `v2-${readOnly}`);
      cpSync(join(fixtures, 'format-v2'), dir, { recursive: true });
      const col = await Collection.open(dir, { readOnly });
      assert.deepEqual(col.schema, { dimension: 6, metric: 'cosine', index: 'Flat,SQ8,Rerank', fields: { group: 'keyword', i: 'number', even: 'boolean', tags: 'keyword[]', rank: 'number' } });
      assert.equal(col.size, 40 - 2 + 8 - 1 + 1);
      assert.equal(col.has('a3'), false);
      assert.equal(col.has('b7'), false);
      // segment 1 predates the rank field: its value is read from the JSON
      assert.deepEqual(col.get('a1'), { id: 'a1', vector: Float32Array.from(vec6(1)), metadata: { group: 'a', i: 1, even: false, tags: ['x', 'ü'], rank: 1 } });
      assert.deepEqual(col.get('a6').metadata, { group: 'a', i: 6, even: true, tags: [], rank: 1 });
      assert.deepEqual(col.get('b2').metadata, { group: 'b', i: 2, rank: 2, note: 'plain' });
      assert.deepEqual(col.get('a0'), { id: 'a0', vector: Float32Array.from([9, 9, 9, 9, 9, 9]), metadata: { group: 'a', replaced: true } });
      assert.deepEqual(col.get('a5'), { id: 'a5', vector: Float32Array.from(vec6(5)), metadata: { group: 'a', i: 5, even: true, tags: ['y'], rank: 0 } });
      assert.equal(col.get('c0').metadata, undefined);
      const info = col.info();
      assert.deepEqual(info.segmentList.filter((s) => s.state === 'sealed').map((s) => [s.number, s.rows, s.deleted, s.index]), [[1, 40, 4, 'SQ8'], [2, 8, 1, 'Flat']]);
      assert.equal(info.recovery.walRecords, 3);
      const hits = await col.search(vec6(7), { k: 3, withStats: true });
      assert.equal(hits.hits[0].id, 'a7');
      assert.ok(Math.abs(hits.hits[0].score - 1) < 1e-6);
      assert.ok(hits.stats.reranked > 0, 'the compressed segment reranks');
      assert.deepEqual((await col.verify()).problems, []);
      if (!readOnly) {
        // rewriting segment 1 moves rank into a column; reads are unchanged
        await col.compact();
        assert.deepEqual(col.get('a1').metadata, { group: 'a', i: 1, even: false, tags: ['x', 'ü'], rank: 1 });
        assert.equal(col.info().segmentList.filter((s) => s.state === 'sealed').length, 1);
      }
      await col.close();
    }
  });

  // format-v2-hnsw: GRAPH section version 1 (fixed-degree level 0); -graph2: version 2 (packed)
  for (const [name, index, description] of [['format-v2-hnsw', 'HNSW8,SQ8,Rerank', 'HNSW8,SQ8'], ['format-v2-hnsw-graph2', 'HNSW8,SQ8,Rerank', 'HNSW8,SQ8'], ['format-v2-ivf', 'IVF,SQ8,Rerank', 'IVF28,SQ8']]) {
    it(`${name}: the ${description} segment (its index and calibration sections) opens without a rebuild and searches as recorded`, async () => {
      const v = (i: number) => [Math.cos(i), Math.sin(i), Math.cos(i / 7), Math.sin(i / 11), (i % 13) / 13, 1];
      for (const readOnly of [true, false]) {
        const dir = join(tmp, `${name}-${readOnly}`);
        cpSync(join(fixtures, name), dir, { recursive: true });
        const col = await Collection.open(dir, { readOnly });
        assert.equal(col.schema.index, index);
        assert.equal(col.size, 900 - 1 + 1);
        const sealed = col.info().segmentList.filter((s) => s.state === 'sealed');
        assert.deepEqual(sealed.map((s) => [s.rows, s.deleted, s.index]), [[900, 1, description]]);
        // the exact top 5 of the stored vectors, through the index, at a recall target
        for (const q of [5, 77, 450, 899]) {
          const exact = (await col.search(v(q + 0.3), { k: 5, exact: true })).map((h) => h.id);
          const got = await col.search(v(q + 0.3), { k: 5, recall: 0.99, withStats: true });
          assert.deepEqual(got.hits.map((h) => h.id), exact, `query ${q}`);
          assert.ok(got.stats.scanned < 900, 'the index, not a scan');
        }
        assert.equal((await col.search(v(0), { k: 1 }))[0].id !== 'r0', true, 'the delete holds');
        assert.equal(col.get('w0').metadata?.i, 1000);
        assert.deepEqual((await col.verify()).problems, []);
        await col.close();
      }
    });
  }
});
