import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Collection, MemoryDirectory, QuiverError, type CollectionSchema } from '../src/index.js';
import { randomF32, rng } from './helpers/random.js';

// The Collection API beyond upsert/search (issue 7, item 13): declared fields, metadata updates,
// getMany, scroll, count, batch search and stats; on every implementation: in memory, durable
// (sealing every 40 rows, merging), durable under a compressed spec.

interface Impl {
  name: string;
  make(schema: CollectionSchema): Promise<Collection>;
  reopen?(col: Collection, schema?: CollectionSchema): Promise<Collection>;
}

function durable(name: string, index?: string): Impl {
  const dirs = new WeakMap<Collection, MemoryDirectory>();
  const opts = { sealRows: 40, minQuantizedRows: 16, mergePolicy: { segmentsPerTier: 3 } };
  return {
    name,
    make: async (schema) => {
      const dir = new MemoryDirectory();
      const col = await Collection.open(dir, { ...opts, schema: index ? { ...schema, index } : schema });
      dirs.set(col, dir);
      return col;
    },
    reopen: async (col, schema) => {
      const dir = dirs.get(col)!;
      await col.close();
      const again = await Collection.open(dir, { ...opts, ...(schema ? { schema: index ? { ...schema, index } : schema } : {}) });
      dirs.set(again, dir);
      return again;
    },
  };
}

const IMPLS: Impl[] = [
  { name: 'in memory', make: async (schema) => Collection.create(schema) },
  durable('durable'),
  durable('durable, Flat,SQ8,Rerank10', 'Flat,SQ8,Rerank10'),
];

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try { await (typeof p === 'function' ? p() : p); } catch (e) { assert.ok(e instanceof QuiverError, String(e)); return e.code; }
  assert.fail('expected an error');
}

const FIELDS = { color: 'keyword', price: 'number', stock: 'boolean', tags: 'keyword[]' } as const;

for (const impl of IMPLS) {
  describe(`Collection API (${impl.name})`, () => {
    it('declared fields: typed values checked, returned inside metadata, kept through seals, merges and reopen', async () => {
      let col = await impl.make({ dimension: 6, metric: 'l2', fields: { ...FIELDS } });
      assert.deepEqual(col.schema.fields, FIELDS);
      const meta = (i: number) => ({ color: ['red', 'green', 'blue'][i % 3], price: i * 1.5, stock: i % 2 === 0, tags: i % 4 ? ['a', `t${i % 5}`] : [], note: { free: `text ${i}` } });
      const n = 150;
      for (let s = 0; s < n; s += 37) await col.upsert(Array.from({ length: Math.min(37, n - s) }, (_, j) => ({ id: `r${s + j}`, vector: randomF32(6, s + j + 1), metadata: meta(s + j) })));
      await col.upsert([{ id: 'partial', vector: randomF32(6, 999), metadata: { price: 3, color: null } }, { id: 'none', vector: randomF32(6, 998) }]);
      const check = async (c: Collection) => {
        for (const i of [0, 1, 39, 40, 77, 149]) assert.deepEqual(c.get(`r${i}`).metadata, meta(i), `r${i}`);
        assert.deepEqual(c.get('partial').metadata, { price: 3 }, 'null counts as absent');
        assert.equal(c.get('none').metadata, undefined);
        const hit = (await c.search(randomF32(6, 77), { k: 1 }))[0];
        assert.deepEqual(hit.metadata, hit.id === 'partial' ? { price: 3 } : hit.id === 'none' ? undefined : meta(Number(hit.id.slice(1))));
      };
      await check(col);
      // wrong types are rejected, naming the field, and change nothing
      for (const [bad, expected] of [[{ price: '3' }, 'number'], [{ stock: 1 }, 'boolean'], [{ color: 5 }, 'keyword'], [{ tags: 'a' }, 'keyword[]'], [{ tags: ['a', 2] }, 'keyword[]']] as const) {
        try {
          await col.upsert([{ id: 'bad', vector: randomF32(6, 1), metadata: bad as Record<string, unknown> }]);
          assert.fail('accepted');
        } catch (e) {
          assert.equal((e as QuiverError).code, 'INVALID_ARGUMENT');
          assert.equal((e as QuiverError).details.expected, expected);
          assert.equal((e as QuiverError).details.field, Object.keys(bad)[0]);
        }
      }
      assert.equal(col.has('bad'), false);
      if (impl.reopen) {
        await col.compact();
        await check(col);
        col = await impl.reopen(col);
        await check(col);
        assert.deepEqual(col.schema.fields, FIELDS);
      }
      await col.close();
    });

    it('fields added later: old rows read the same, adopt their values when rewritten; type changes are SCHEMA_MISMATCH', async () => {
      let col = await impl.make({ dimension: 4, metric: 'dot' });
      await col.upsert(Array.from({ length: 60 }, (_, i) => ({ id: `o${i}`, vector: randomF32(4, i + 1), metadata: { size: i % 7 === 0 ? 'big' : i, kind: 'old' } })));
      await col.addFields({ size: 'number' });
      assert.deepEqual(col.schema.fields, { size: 'number' });
      await col.upsert([{ id: 'new', vector: randomF32(4, 100), metadata: { size: 5, kind: 'new' } }]);
      assert.equal(await code(col.upsert([{ id: 'x', vector: randomF32(4, 1), metadata: { size: 'big' } }])), 'INVALID_ARGUMENT');
      assert.equal(await code(col.addFields({ size: 'keyword' })), 'SCHEMA_MISMATCH');
      await col.addFields({ size: { type: 'number' } }); // the same again: nothing to do
      const want = (i: number) => ({ size: i % 7 === 0 ? 'big' : i, kind: 'old' });
      for (const i of [0, 1, 7, 59]) assert.deepEqual(col.get(`o${i}`).metadata, want(i));
      if (impl.reopen) {
        await col.compact();
        col = await impl.reopen(col, { dimension: 4, metric: 'dot', fields: { size: 'number', kind: 'keyword' } }); // opening with a schema adds fields too
        assert.deepEqual(col.schema.fields, { size: 'number', kind: 'keyword' });
        for (const i of [0, 1, 7, 59]) assert.deepEqual(col.get(`o${i}`).metadata, want(i));
        assert.deepEqual(col.get('new').metadata, { size: 5, kind: 'new' });
        assert.equal(await code(impl.reopen(col, { dimension: 4, metric: 'dot', fields: { size: 'boolean' } })), 'SCHEMA_MISMATCH');
        col = await impl.reopen(col);
      }
      await col.close();
    });

    it('update replaces or merges metadata and keeps the vector; missing ids are counted out', async () => {
      let col = await impl.make({ dimension: 5, metric: 'cosine', fields: { color: 'keyword', price: 'number' } });
      const v = (i: number) => randomF32(5, 300 + i);
      await col.upsert(Array.from({ length: 90 }, (_, i) => ({ id: `u${i}`, vector: v(i), metadata: { color: 'red', price: i, extra: { i } } })));
      assert.equal(await col.update([{ id: 'u1', metadata: { price: 100 } }, { id: 'nope', metadata: {} }]), 1);
      assert.deepEqual(col.get('u1').metadata, { price: 100 });
      assert.equal(await col.update([{ id: 'u2', metadata: { price: 200, more: true } }, { id: 'u80', metadata: { color: 'blue' } }], { merge: true }), 2);
      assert.deepEqual(col.get('u2').metadata, { color: 'red', price: 200, extra: { i: 2 }, more: true });
      assert.deepEqual(col.get('u80').metadata, { color: 'blue', price: 80, extra: { i: 80 } });
      assert.deepEqual(Array.from(col.get('u80').vector), Array.from(v(80)), 'vector kept');
      assert.equal(await code(col.update([{ id: 'u3', metadata: { price: 'x' } }])), 'INVALID_ARGUMENT');
      assert.equal(await code(col.update([{ id: 'u3' } as never])), 'INVALID_ARGUMENT');
      assert.equal(col.count(), 90);
      // the updated record is found by its (unchanged) vector
      assert.equal((await col.search(v(80), { k: 1 }))[0].id, 'u80');
      if (impl.reopen) {
        col = await impl.reopen(col);
        assert.deepEqual(col.get('u2').metadata, { color: 'red', price: 200, extra: { i: 2 }, more: true });
        assert.deepEqual(Array.from(col.get('u80').vector), Array.from(v(80)));
        await col.compact();
        assert.deepEqual(col.get('u80').metadata, { color: 'blue', price: 80, extra: { i: 80 } });
      }
      await col.close();
    });

    it('update: the same id twice in one batch merges cumulatively; a non-boolean merge option is INVALID_ARGUMENT', async () => {
      let col = await impl.make({ dimension: 3, metric: 'l2', fields: { n: 'number' } });
      await col.upsert([{ id: 'x', vector: [1, 2, 3], metadata: { n: 1, a: 'keep' } }]);
      assert.equal(await col.update([{ id: 'x', metadata: { n: 2 } }, { id: 'x', metadata: { b: true } }], { merge: true }), 1);
      assert.deepEqual(col.get('x').metadata, { n: 2, a: 'keep', b: true });
      assert.equal(await code(col.update([{ id: 'x', metadata: {} }], { merge: 'yes' } as never)), 'INVALID_ARGUMENT');
      if (impl.reopen) col = await impl.reopen(col);
      assert.deepEqual(col.get('x'), { id: 'x', vector: Float32Array.from([1, 2, 3]), metadata: { n: 2, a: 'keep', b: true } });
      await col.close();
    });

    it('getMany, count, scroll pages and records() see every live record once, in id order', async () => {
      const col = await impl.make({ dimension: 3, metric: 'l2' });
      const r = rng(4);
      const live = new Set<string>();
      for (let step = 0; step < 12; step++) {
        const batch = Array.from({ length: 30 }, () => `id${Math.floor(r() * 400).toString().padStart(3, '0')}`);
        await col.upsert(batch.map((id) => ({ id, vector: [r(), r(), r()], metadata: { id } })));
        batch.forEach((id) => live.add(id));
        const del = Array.from({ length: 8 }, () => `id${Math.floor(r() * 400).toString().padStart(3, '0')}`);
        await col.delete(del);
        del.forEach((id) => live.delete(id));
      }
      const sorted = [...live].sort();
      assert.equal(col.count(), live.size);
      const many = col.getMany([sorted[0], 'missing', sorted[5]], { includeVector: false });
      assert.deepEqual(many.map((x) => x && x.id), [sorted[0], null, sorted[5]]);
      assert.equal(many[0]!.vector, undefined);
      assert.deepEqual(many[0]!.metadata, { id: sorted[0] });
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      for (;;) {
        const page = col.scroll({ limit: 17, after, includeVector: false });
        pages++;
        seen.push(...page.records.map((x) => x.id));
        if (!page.next) break;
        assert.equal(page.records.length, 17);
        after = page.next;
      }
      assert.deepEqual(seen, sorted);
      assert.equal(pages, Math.ceil(sorted.length / 17) + (sorted.length % 17 === 0 ? 1 : 0));
      const all: string[] = [];
      for await (const rec of col.records({ limit: 50 })) { all.push(rec.id); assert.equal(rec.vector.length, 3); }
      assert.deepEqual(all, sorted);
      assert.deepEqual(col.scroll({ after: sorted[sorted.length - 1] }), { records: [], next: null });
      assert.equal(await code(() => col.scroll({ limit: 0 })), 'INVALID_ARGUMENT');
      assert.equal(await code(() => col.scroll({ cursor: 'x' } as never)), 'INVALID_ARGUMENT');
      await col.close();
    });

    it('search takes one query or a batch; withStats reports what each query did', async () => {
      const col = await impl.make({ dimension: 8, metric: 'dot' });
      const base = Array.from({ length: 200 }, (_, i) => randomF32(8, 40 + i));
      await col.upsert(base.map((v, i) => ({ id: `s${i}`, vector: v })));
      const qs = [randomF32(8, 1), Array.from(randomF32(8, 2)), Float64Array.from(randomF32(8, 3))];
      const batch = await col.search(qs, { k: 5 });
      assert.equal(batch.length, 3);
      for (let q = 0; q < 3; q++) assert.deepEqual(batch[q], await col.search(qs[q], { k: 5 }));
      assert.deepEqual(await col.search([], { k: 5 }), [], 'an empty batch');
      const one = await col.search(qs[0], { k: 5, withStats: true });
      assert.deepEqual(one.hits, batch[0]);
      assert.ok(one.stats.segments >= 1);
      assert.ok(one.stats.scanned >= 200, `scanned ${one.stats.scanned}`);
      const many = await col.search(qs, { k: 5, withStats: true });
      assert.equal(many.stats.length, 3);
      assert.equal(await code(col.search([[1, 2]], { k: 5 })), 'DIMENSION_MISMATCH');
      assert.equal(await code(col.search(qs[0], { k: 5, rerank: 0 })), 'INVALID_ARGUMENT');
      await col.close();
    });
  });
}

describe('stable ordinals and snapshots', () => {
  it('the mutable segment never moves a row: deletes and replacements leave other ordinals alone', async () => {
    const col = Collection.create({ dimension: 2, metric: 'dot' });
    await col.upsert([{ id: 'a', vector: [1, 0] }, { id: 'b', vector: [0, 1] }, { id: 'c', vector: [1, 1] }, { id: 'd', vector: [2, 1] }]);
    const engine = (col as unknown as { engine: { locate(id: string): { segment: unknown; ord: number } } }).engine;
    const before = ['a', 'c', 'd'].map((id) => engine.locate(id)!.ord);
    await col.delete(['b']);
    await col.upsert([{ id: 'a', vector: [3, 3] }]);
    assert.deepEqual(['c', 'd'].map((id) => engine.locate(id)!.ord), before.slice(1));
    assert.equal(engine.locate('a')!.ord, 4, 'a replacement is a new row');
    assert.deepEqual((await col.search([1, 1], { k: 5 })).map((h) => h.id), ['a', 'd', 'c']);
    await col.close();
  });

  it('in-memory collections that never seal drop deleted rows once they are most of the segment', async () => {
    const col = Collection.create({ dimension: 4, metric: 'l2' });
    await col.upsert(Array.from({ length: 5000 }, (_, i) => ({ id: `m${i}`, vector: randomF32(4, i + 1) })));
    await col.delete(Array.from({ length: 4000 }, (_, i) => `m${i}`));
    const seg = col.info().segmentList.find((s) => s.state === 'mutable')!;
    assert.equal(seg.rows, 1000, 'vacuumed');
    assert.equal(col.count(), 1000);
    assert.deepEqual(Array.from(col.get('m4500').vector), Array.from(randomF32(4, 4501)));
    await col.close();
  });

  it('a snapshot keeps retired segments readable until it is released', async () => {
    const dir = new MemoryDirectory();
    const col = await Collection.open(dir, { schema: { dimension: 4, metric: 'l2', index: 'Flat,SQ8,Rerank' }, sealRows: 100, autoMerge: false, minQuantizedRows: 16 });
    for (let b = 0; b < 3; b++) { await col.upsert(Array.from({ length: 100 }, (_, i) => ({ id: `z${b * 100 + i}`, vector: randomF32(4, b * 100 + i + 1) }))); await col.flush(); }
    const engine = (col as unknown as { engine: import('../src/collection/engine.js').Engine }).engine;
    const q = randomF32(4, 5);
    const snap = engine.snapshot();
    const before = engine.search(snap, q, 1, 10).hits[0].map((h) => `${h.segment.idAt(h.ord)} ${h.score}`);
    await col.compact();
    assert.equal(col.stats().segments, 1);
    assert.ok(snap.segments.every((s) => s.alive), 'retired segments stay alive while the snapshot holds them');
    assert.deepEqual(engine.search(snap, q, 1, 10).hits[0].map((h) => `${h.segment.idAt(h.ord)} ${h.score}`), before);
    const retired = snap.segments.filter((s) => !engine.segments().includes(s));
    assert.ok(retired.length >= 3);
    snap.release();
    assert.ok(retired.every((s) => !s.alive), 'freed at release');
    assert.deepEqual((await col.search(q, { k: 10 })).map((h) => `${h.id} ${h.score}`), before);
    await col.close();
  });
});
