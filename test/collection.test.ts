import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { Collection, MemoryDirectory, QuiverError, type CollectionSchema, type Metric } from '../src/node.js';
import { randomF32, rng } from './helpers/random.js';

// One suite, every implementation of the Collection contract: in memory (both kernel twins),
// durable on a MemoryDirectory, durable on the filesystem. The durable ones seal every 50 rows,
// so searches, deletes and replacements cross segments, seals and background merges.
const tmpRoot = mkdtempSync(join(tmpdir(), 'quiver-collection-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));
let dirCount = 0;

interface Impl {
  name: string;
  kernels: 'wasm' | 'js';
  make(schema: CollectionSchema): Promise<Collection>;
  /** Closes and reopens (durable implementations only). */
  reopen?(col: Collection): Promise<Collection>;
}

const IMPLS: Impl[] = [
  { name: 'in memory, wasm kernels', kernels: 'wasm', make: async (schema) => Collection.create(schema, { kernels: 'wasm' }) },
  { name: 'in memory, js kernels', kernels: 'js', make: async (schema) => Collection.create(schema, { kernels: 'js' }) },
  (() => {
    const dirs = new WeakMap<Collection, MemoryDirectory>();
    return {
      name: 'durable, memory directory', kernels: 'wasm' as const,
      make: async (schema: CollectionSchema) => {
        const dir = new MemoryDirectory();
        const col = await Collection.open(dir, { schema, sealRows: 50, kernels: 'wasm' });
        dirs.set(col, dir);
        return col;
      },
      reopen: async (col: Collection) => {
        const dir = dirs.get(col)!;
        await col.close();
        const again = await Collection.open(dir, { kernels: 'wasm', sealRows: 50 });
        dirs.set(again, dir);
        return again;
      },
    };
  })(),
  (() => {
    const paths = new WeakMap<Collection, string>();
    return {
      name: 'durable, filesystem', kernels: 'wasm' as const,
      make: async (schema: CollectionSchema) => {
        const path = join(tmpRoot, `c${dirCount++}`);
        const col = await Collection.open(path, { schema, sealRows: 50, kernels: 'wasm' });
        paths.set(col, path);
        return col;
      },
      reopen: async (col: Collection) => {
        const path = paths.get(col)!;
        await col.close();
        const again = await Collection.open(path, { kernels: 'wasm', sealRows: 50 });
        paths.set(again, path);
        return again;
      },
    };
  })(),
];

function code(fn: () => unknown): string {
  try { fn(); } catch (e) { assert.ok(e instanceof QuiverError, `expected QuiverError, got ${e}`); return e.code; }
  assert.fail('expected an error');
}
async function codeAsync(fn: () => Promise<unknown>): Promise<string> {
  try { await fn(); } catch (e) { assert.ok(e instanceof QuiverError, `expected QuiverError, got ${e}`); return e.code; }
  assert.fail('expected an error');
}

/** Brute-force reference in float64: the same ordering rule (larger score = closer). */
function reference(metric: Metric, base: Float32Array[], q: Float32Array, k: number): number[] {
  const score = (x: Float32Array) => {
    let dot = 0, nx = 0, nq = 0, l2 = 0;
    for (let j = 0; j < q.length; j++) { dot += q[j] * x[j]; nx += x[j] * x[j]; nq += q[j] * q[j]; l2 += (q[j] - x[j]) ** 2; }
    return metric === 'dot' ? dot : metric === 'l2' ? -l2 : dot / Math.sqrt(nx * nq);
  };
  return base.map((x, i) => ({ i, s: score(x) })).sort((a, b) => b.s - a.s || a.i - b.i).slice(0, k).map((h) => h.i);
}

for (const impl of IMPLS) {
  const kernels = impl.kernels;
  const make = impl.make;
  describe(`Collection (${impl.name})`, () => {
    for (const metric of ['cosine', 'dot', 'l2'] as const) {
      it(`exact search matches brute force: ${metric}, odd dimension, across chunk boundaries`, async () => {
        const d = 37, n = 700;
        const col = await make({ dimension: d, metric });
        const base = Array.from({ length: n }, (_, i) => randomF32(d, 1000 + i));
        // small batches so several upserts happen; the store's chunks are at least 256 rows
        for (let i = 0; i < n; i += 97) await col.upsert(base.slice(i, i + 97).map((v, j) => ({ id: `v${i + j}`, vector: v })));
        assert.equal(col.size, n);
        const queries = Array.from({ length: 12 }, (_, i) => randomF32(d, 9 + i));
        const batch = await col.search(queries, { k: 15 });
        for (let q = 0; q < queries.length; q++) {
          const want = reference(metric, base, queries[q], 15).map((i) => `v${i}`);
          const single = await col.search(queries[q], { k: 15 });
          assert.deepEqual(single.map((h) => h.id), want, `single query ${q}`);
          assert.deepEqual(batch[q].map((h) => h.id), want, `batch query ${q}`);
          for (let i = 1; i < single.length; i++) assert.ok(single[i - 1].score >= single[i].score, 'best first');
        }
        await col.close();
      });
    }

    it('upsert replaces, delete removes, get returns copies', async () => {
      let col = await make({ dimension: 3, metric: 'l2' });
      await col.upsert([
        { id: 'a', vector: [1, 0, 0], metadata: { tag: 'x', n: 1 } },
        { id: 'b', vector: [0, 1, 0] },
        { id: 'c', vector: new Float32Array([0, 0, 1]) },
      ]);
      assert.equal(col.size, 3);
      await col.upsert([{ id: 'a', vector: [0, 0, 5], metadata: { tag: 'y' } }]);
      assert.equal(col.size, 3);
      const a = col.get('a');
      assert.deepEqual(Array.from(a.vector), [0, 0, 5]);
      assert.deepEqual(a.metadata, { tag: 'y' });
      a.metadata!.tag = 'mutated';
      a.vector[0] = 99;
      assert.deepEqual(col.get('a').metadata, { tag: 'y' }, 'get returns a copy');
      assert.equal(col.get('a').vector[0], 0);
      const top = await col.search([0, 0, 4.9], { k: 1 });
      assert.equal(top[0].id, 'a');
      assert.ok(Math.abs(top[0].score - -(0.1 ** 2)) < 1e-5, 'l2 score is minus the squared distance');
      assert.equal(await col.delete(['a', 'nope']), 1);
      assert.equal(col.size, 2);
      assert.equal(code(() => col.get('a')), 'NOT_FOUND');
      assert.deepEqual((await col.search([0, 0, 1], { k: 5 })).map((h) => h.id), ['c', 'b']);
      // delete everything, then add again
      assert.equal(await col.delete(['b', 'c']), 2);
      assert.equal(col.size, 0);
      assert.deepEqual(await col.search([1, 2, 3]), []);
      await col.upsert([{ id: 'z', vector: [1, 1, 1] }]);
      assert.equal((await col.search([1, 1, 1]))[0].id, 'z');
      if (impl.reopen) {
        col = await impl.reopen(col);
        assert.equal(col.size, 1);
        assert.deepEqual(Array.from(col.get('z').vector), [1, 1, 1]);
      }
      await col.close();
    });

    it('random upserts and deletes keep ids, vectors and search consistent', async () => {
      const d = 8;
      let col = await make({ dimension: d, metric: 'dot' });
      const truth = new Map<string, Float32Array>();
      const r = rng(77);
      for (let step = 0; step < 60; step++) {
        if (r() < 0.65) {
          const batch = Array.from({ length: 1 + Math.floor(r() * 40) }, () => ({ id: `id${Math.floor(r() * 300)}`, vector: randomF32(d, Math.floor(r() * 1e9)) }));
          await col.upsert(batch);
          for (const b of batch) truth.set(b.id, b.vector);
        } else {
          const ids = Array.from({ length: Math.floor(r() * 30) }, () => `id${Math.floor(r() * 300)}`);
          const n = await col.delete(ids);
          const distinct = new Set(ids.filter((id) => truth.has(id)));
          assert.equal(n, distinct.size);
          for (const id of distinct) truth.delete(id);
        }
        assert.equal(col.size, truth.size);
      }
      for (const [id, v] of truth) assert.deepEqual(Array.from(col.get(id).vector), Array.from(v));
      const ids = [...truth.keys()], vecs = [...truth.values()];
      const q = randomF32(d, 5);
      const want = reference('dot', vecs, q, 20).map((i) => ids[i]);
      assert.deepEqual((await col.search(q, { k: 20 })).map((h) => h.id), want);
      if (impl.reopen) {
        // the same state after background seals and merges, after compaction, and after reopening
        await col.idle();
        col = await impl.reopen(col);
        assert.equal(col.size, truth.size);
        assert.deepEqual((await col.search(q, { k: 20 })).map((h) => h.id), want);
        await col.compact();
        assert.equal(col.stats().segments, 1);
        assert.deepEqual((await col.search(q, { k: 20 })).map((h) => h.id), want);
        col = await impl.reopen(col);
        for (const [id, v] of truth) assert.deepEqual(Array.from(col.get(id).vector), Array.from(v));
        assert.deepEqual((await col.search(q, { k: 20 })).map((h) => h.id), want);
        assert.deepEqual((await col.verify()).problems, []);
      }
      await col.close();
    });

    it('bad input gets clear, stable error codes and changes nothing', async () => {
      const col = await make({ dimension: 4 });
      await col.upsert([{ id: 'ok', vector: [1, 2, 3, 4] }]);
      assert.equal(await codeAsync(() => col.upsert([{ id: 'x', vector: [1, 2, 3] }])), 'DIMENSION_MISMATCH');
      try { await col.upsert([{ id: 'x', vector: [1, 2, 3] }]); } catch (e) {
        assert.deepEqual((e as QuiverError).details, { index: 0, id: 'x', expected: 4, received: 3 });
      }
      assert.equal(await codeAsync(() => col.upsert([{ id: 'x', vector: [1, NaN, 3, 4] }])), 'INVALID_VECTOR');
      assert.equal(await codeAsync(() => col.upsert([{ id: 'x', vector: [1, Infinity, 3, 4] }])), 'INVALID_VECTOR');
      assert.equal(await codeAsync(() => col.upsert([{ id: 'x', vector: [0, 0, 0, 0] }])), 'INVALID_VECTOR', 'zero vector under cosine');
      assert.equal(await codeAsync(() => col.upsert([{ id: 'x', vector: [1, 2, 3, 1e39] }])), 'INVALID_VECTOR', 'float32 overflow');
      assert.equal(await codeAsync(() => col.upsert([{ id: 'x', vector: 'abc' as never }])), 'INVALID_VECTOR');
      assert.equal(await codeAsync(() => col.upsert([{ id: '', vector: [1, 2, 3, 4] }])), 'INVALID_ARGUMENT');
      assert.equal(await codeAsync(() => col.upsert([{ id: 5 as never, vector: [1, 2, 3, 4] }])), 'INVALID_ARGUMENT');
      assert.equal(await codeAsync(() => col.upsert([{ id: 'x', vector: [1, 2, 3, 4], metadata: { f: () => 1 } as never }])), 'INVALID_ARGUMENT');
      assert.equal(await codeAsync(() => col.upsert([{ id: 'x', vector: [1, 2, 3, 4], metadata: [1] as never }])), 'INVALID_ARGUMENT');
      assert.equal(await codeAsync(() => col.upsert([{ id: 'x', vector: [1, 2, 3, 4], extra: 1 } as never])), 'INVALID_ARGUMENT');
      assert.equal(await codeAsync(() => col.upsert({} as never)), 'INVALID_ARGUMENT');
      // a batch whose last record is bad writes nothing
      assert.equal(await codeAsync(() => col.upsert([{ id: 'y', vector: [1, 1, 1, 1] }, { id: 'z', vector: [1] }])), 'DIMENSION_MISMATCH');
      assert.equal(col.size, 1);
      assert.equal(col.has('y'), false);
      assert.equal(await codeAsync(() => col.search([1, 2, 3])), 'DIMENSION_MISMATCH');
      assert.equal(await codeAsync(() => col.search([1, 2, 3, 4], { k: 0 })), 'INVALID_ARGUMENT');
      assert.equal(await codeAsync(() => col.search([1, 2, 3, 4], { k: 2.5 })), 'INVALID_ARGUMENT');
      assert.equal(await codeAsync(() => col.search([1, 2, 3, 4], { top: 3 } as never)), 'INVALID_ARGUMENT');
      assert.equal(await codeAsync(() => col.search([0, 0, 0, 0])), 'INVALID_VECTOR');
      assert.equal(await codeAsync(() => col.delete('ok' as never)), 'INVALID_ARGUMENT');
      assert.equal(code(() => Collection.create({ dimension: 0 })), 'INVALID_ARGUMENT');
      assert.equal(code(() => Collection.create({ dimension: 4, metric: 'hamming' as never })), 'INVALID_ARGUMENT');
      assert.equal(code(() => Collection.create({ dimension: 4, index: 'HNSW999' })), 'UNKNOWN_SPEC');
      assert.equal(code(() => Collection.create({ dimension: 4, dims: 3 } as never)), 'INVALID_ARGUMENT');
      void col.close();
      assert.equal(code(() => col.get('ok')), 'CLOSED');
    });

    it('empty batches are accepted and change nothing', async () => {
      const col = await make({ dimension: 2, metric: 'dot' });
      await col.upsert([]);
      assert.equal(await col.delete([]), 0);
      assert.equal(col.size, 0);
      assert.deepEqual(await col.search([1, 0]), []);
      await col.close();
    });

    it('k larger than the collection returns every record; ties break by insertion order', async () => {
      const col = await make({ dimension: 2, metric: 'dot' });
      await col.upsert([{ id: 'p', vector: [1, 0] }, { id: 'q', vector: [1, 0] }, { id: 'r', vector: [0, 1] }]);
      const hits = await col.search([1, 0], { k: 50 });
      assert.deepEqual(hits.map((h) => h.id), ['p', 'q', 'r']);
      assert.deepEqual(hits.map((h) => h.score), [1, 1, 0]);
      await col.close();
    });
  });
}
