import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rng } from './helpers/random.js';
import { Collection, MemoryDirectory, QuiverError } from '../src/index.js';

function randomSparse(r: () => number, vocab: number, terms: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < terms; i++) out[`t${Math.floor(r() ** 2 * vocab)}`] = Math.fround(0.1 + r() * 3);
  return out;
}

function dot(a: Record<string, number>, b: Record<string, number>): number {
  let s = 0;
  for (const t in a) if (b[t] !== undefined) s += a[t] * b[t];
  return s;
}

describe('sparse fields through the collection', () => {
  it('exact mode equals brute force over the stored vectors: mutable, sealed from files, after deletes, replay and merge', { timeout: 120_000 }, async () => {
    const r = rng(11);
    const dir = new MemoryDirectory();
    const schema = { dimension: 1, fields: { sp: 'sparse' as const, lang: 'keyword' as const } };
    let c = await Collection.open(dir, { schema, sealRows: 1500, autoMerge: false });
    const model = new Map<string, { sp: Record<string, number>; lang: string }>();
    for (let b = 0; b < 8; b++) {
      const batch = Array.from({ length: 500 }, (_, i) => ({ id: `d${b * 500 + i}`, vector: [1], metadata: { sp: randomSparse(r, 400, 5 + Math.floor(r() * 30)), lang: r() < 0.3 ? 'fr' : 'en' } }));
      await c.upsert(batch);
      for (const x of batch) model.set(x.id, x.metadata);
      if (b === 2 || b === 5) await c.flush();
    }
    const gone = [...model.keys()].filter((_, i) => i % 7 === 0);
    await c.delete(gone);
    for (const id of gone) model.delete(id);
    const check = async (label: string) => {
      for (let qn = 0; qn < 25; qn++) {
        const query = randomSparse(r, 400, 3 + Math.floor(r() * 20));
        const filter = qn % 3 === 0 ? { lang: 'fr' } : undefined;
        const want = [...model].filter(([, m]) => !filter || m.lang === 'fr').map(([id, m]) => ({ id, s: dot(query, m.sp) })).filter((x) => x.s > 0)
          .sort((a, b) => b.s - a.s).slice(0, 10);
        const got = await c.search({ sparse: query, k: 10, sparseMode: 'exact', filter, includeMetadata: false });
        assert.equal(got.length, want.length, `${label} q${qn}`);
        got.forEach((h, i) => assert.ok(Math.abs(h.score - want[i].s) <= 1e-4 * Math.max(1, want[i].s), `${label} q${qn} #${i}: ${h.score} vs ${want[i].s}`));
        // the same ids up to exact ties
        const tenth = want.length ? want[want.length - 1].s : 0;
        for (const h of got) assert.ok(model.has(h.id) && (want.some((w) => w.id === h.id) || Math.abs(h.score - tenth) < 1e-4), `${label} q${qn}: ${h.id}`);
        // the approximate default finds most of them
        const approx = await c.search({ sparse: query, k: 10, filter, includeMetadata: false });
        for (const h of approx) assert.ok(model.has(h.id), `${label} q${qn}: approx returned ${h.id}, deleted or unknown`);
      }
    };
    await c.idle();
    const sealed = c.info().segmentList.filter((s) => s.state === 'sealed').length;
    assert.ok(sealed >= 2, `sealed segments: ${sealed}`);
    await check('live');
    await c.close();
    c = await Collection.open(dir, { schema, sealRows: 1500, autoMerge: false });
    await check('reopened');
    assert.deepEqual(c.get('d1').metadata!.sp, model.get('d1')!.sp);
    await c.compact();
    await check('compacted');
    await c.close();
  });

  it('rejects bad sparse values and queries with INVALID_ARGUMENT', async () => {
    const c = Collection.create({ dimension: 1, fields: { sp: 'sparse', sp2: 'sparse' } });
    for (const bad of [[1, 2], { a: -1 }, { a: Number.NaN }, { a: 'x' }, 'text', { '': 1 }]) {
      await assert.rejects(c.upsert([{ id: 'x', vector: [1], metadata: { sp: bad } }]), (e: unknown) => e instanceof QuiverError && e.code === 'INVALID_ARGUMENT');
    }
    await assert.rejects(c.search({ sparse: { a: 1 } }), /sparseField/);
    await assert.rejects(c.search({ sparse: { a: -1 }, sparseField: 'sp' }), (e: unknown) => e instanceof QuiverError && e.code === 'INVALID_ARGUMENT');
    await assert.rejects(c.search({ sparse: { a: 1 }, sparseField: 'nope' }), /not a sparse field/);
    await assert.rejects(c.search({ vector: [1], filter: { sp: 'a' } }), /sparse field/);
    await c.upsert([{ id: 'x', vector: [1], metadata: { sp: { a: 2, zero: 0 } } }]);
    // zero weights are dropped: they never change an inner product
    assert.deepEqual(c.get('x').metadata!.sp, { a: 2 });
    assert.deepEqual((await c.search({ sparse: { a: 1.5 }, sparseField: 'sp' })).map((h) => [h.id, h.score]), [['x', 3]]);
  });
});
