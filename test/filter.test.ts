import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Segment } from '../src/collection/segment.js';
import { Collection, isQuiverError, MemoryDirectory, type FieldType, type Filter, type FilterPath, type Metric, type SearchStats } from '../src/node.js';
import { newCounters } from '../src/index/types.js';
import { parseFvecs } from '../src/io/vecs.js';
import { createKernels } from '../src/kernels/index.js';
import { kmeans } from '../src/math/kmeans.js';
import { bitsetWords, setBit } from '../src/util/bitset.js';
import { readData } from './helpers/data.js';
import { rng } from './helpers/random.js';

// Filtered search (src/filter): the language's semantics against a brute-force evaluation of the
// same filter, on every kind of segment (mutable, sealed, sealed before a field was declared,
// reopened, merged) and through both planner paths; validation errors; the exact gathered path
// against the masked index path; recall on SIFT10K at selectivities 0.1% .. 50% with attributes
// random and correlated with the vectors.

const tmpRoot = mkdtempSync(join(tmpdir(), 'quiver-filter-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));
let dirCount = 0;
const newDir = (): string => join(tmpRoot, `c${dirCount++}`);

type Meta = Record<string, unknown>;
type Types = Record<string, FieldType>;

/** The engine's snapshot, for tests that call segments directly. */
function snapshotOf(col: Collection): { segments: readonly Segment[]; release(): void } {
  return (col as unknown as { engine: { snapshot(): { segments: readonly Segment[]; release(): void } } }).engine.snapshot();
}

// ---- a brute-force evaluator of the documented semantics, written independently of src/filter ----

/** A record's value of a declared field: absent when missing, null, or of another type. */
function valueOf(meta: Meta | undefined, name: string, type: FieldType): unknown {
  if (!meta || !Object.prototype.hasOwnProperty.call(meta, name)) return undefined;
  const v = meta[name];
  switch (type) {
    case 'keyword': return typeof v === 'string' ? v : undefined;
    case 'number': return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
    case 'boolean': return typeof v === 'boolean' ? v : undefined;
    case 'keyword[]': return Array.isArray(v) && v.every((e) => typeof e === 'string') ? v : undefined;
  }
}

function bruteMatches(f: Filter, meta: Meta | undefined, types: Types): boolean {
  return Object.keys(f).every((key) => {
    const c = f[key];
    if (key === '$and') return (c as Filter[]).every((g) => bruteMatches(g, meta, types));
    if (key === '$or') return (c as Filter[]).some((g) => bruteMatches(g, meta, types));
    if (key === '$not') return !bruteMatches(c as Filter, meta, types);
    return condMatches(valueOf(meta, key, types[key]), c);
  });
}

function condMatches(v: unknown, c: unknown): boolean {
  if (c !== null && typeof c === 'object' && !Array.isArray(c)) return Object.entries(c).every(([op, x]) => opMatches(v, op, x));
  return opMatches(v, '$eq', c);
}

function opMatches(v: unknown, op: string, x: unknown): boolean {
  // a keyword[] value matches element by element; a missing value has no elements
  const elems: unknown[] = v === undefined ? [] : Array.isArray(v) ? v : [v];
  const xs = x as (string | number)[];
  const y = x as string | number;
  switch (op) {
    case '$eq': return elems.includes(x);
    case '$ne': return !elems.includes(x);
    case '$in': return elems.some((e) => xs.includes(e as string | number));
    case '$nin': return !elems.some((e) => xs.includes(e as string | number));
    case '$gt': return elems.some((e) => (e as string | number) > y);
    case '$gte': return elems.some((e) => (e as string | number) >= y);
    case '$lt': return elems.some((e) => (e as string | number) < y);
    case '$lte': return elems.some((e) => (e as string | number) <= y);
    case '$exists': return (v !== undefined) === x;
    case '$not': return !condMatches(v, x);
  }
  throw new Error(`operator ${op}`);
}

// ---- random records and filters ----

const KEYWORDS = ['a', 'b', 'c', 'd', 'B', 'ä', '', 'ab'];
const NUMBERS = [-3, -1, 0, 0.5, 1, 2, 3, 4.25, 5, 100];

function pick<T>(r: () => number, xs: readonly T[]): T { return xs[Math.floor(r() * xs.length)]; }

function randomValue(r: () => number, type: FieldType): unknown {
  switch (type) {
    case 'keyword': return pick(r, KEYWORDS);
    case 'number': return pick(r, NUMBERS);
    case 'boolean': return r() < 0.5;
    case 'keyword[]': return Array.from({ length: Math.floor(r() * 4) }, () => pick(r, KEYWORDS));
  }
}

/** Metadata: each declared field present 75% of the time (sometimes null); `undeclared` fields may hold any type. */
function randomMeta(r: () => number, types: Types, undeclared: Types): Meta {
  const m: Meta = {};
  for (const [name, type] of Object.entries(types)) {
    const roll = r();
    if (roll < 0.7) m[name] = randomValue(r, type);
    else if (roll < 0.75) m[name] = null;
  }
  for (const [name, type] of Object.entries(undeclared)) {
    const roll = r();
    if (roll < 0.6) m[name] = randomValue(r, type);
    else if (roll < 0.75) m[name] = type === 'number' ? 'not a number' : 42; // stays JSON once declared
  }
  if (r() < 0.3) m.note = { free: 'json' };
  return m;
}

function randomCondition(r: () => number, type: FieldType): unknown {
  const scalar = type === 'keyword[]' ? 'keyword' : type;
  const value = (): unknown => (type === 'keyword' || type === 'keyword[]') && r() < 0.1 ? 'zz' : randomValue(r, scalar);
  const list = (): unknown[] => Array.from({ length: Math.floor(r() * 4) }, value);
  const ops = type === 'boolean' ? ['plain', '$eq', '$ne', '$in', '$nin', '$exists', '$not'] : ['plain', '$eq', '$ne', '$in', '$nin', '$gt', '$gte', '$lt', '$lte', '$exists', '$not', 'between'];
  const op = pick(r, ops);
  switch (op) {
    case 'plain': return value();
    case '$in': case '$nin': return { [op]: list() };
    case '$exists': return { $exists: r() < 0.5 };
    case '$not': return { $not: randomCondition(r, type) };
    case 'between': return { $gte: value(), $lt: value() };
    default: return { [op]: value() };
  }
}

function randomFilter(r: () => number, types: Types, depth = 0): Filter {
  const names = Object.keys(types);
  const roll = r();
  const children = (): Filter[] => Array.from({ length: 1 + Math.floor(r() * 3) }, () => randomFilter(r, types, depth + 1));
  if (depth < 3 && roll < 0.12) return { $and: children() };
  if (depth < 3 && roll < 0.26) return { $or: children() };
  if (depth < 3 && roll < 0.32) return { $not: randomFilter(r, types, depth + 1) };
  const f: Filter = {};
  const keys = roll < 0.45 ? 2 : 1; // several keys in one object = AND
  for (let i = 0; i < keys; i++) {
    const name = pick(r, names);
    f[name] = randomCondition(r, types[name]) as Filter[string];
  }
  return f;
}

// ---- the property test ----

const PD = 8;
/** Integer coordinates: squared L2 distances are exact in f32 (< 2^24), so scores compare exactly. */
function intVector(r: () => number): number[] {
  return Array.from({ length: PD }, () => Math.floor(r() * 1001) - 500);
}
function dist2(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s;
}

interface Model { vector: number[]; meta: Meta }

/**
 * Runs `count` random filtered searches and compares each with brute force over `records`:
 * the same number of hits, the same distances in order, every hit a live matching record
 * (ids equal up to ties), and the exact matched count in the stats. Returns the paths used.
 */
async function compareRandom(col: Collection, records: Map<string, Model>, types: Types, r: () => number, count: number, label: string): Promise<Set<FilterPath>> {
  const paths = new Set<FilterPath>();
  for (let i = 0; i < count; i++) {
    const filter = randomFilter(r, types);
    const nq = r() < 0.2 ? 3 : 1;
    const queries = Array.from({ length: nq }, () => intVector(r));
    const k = r() < 0.2 ? 1000 : 1 + Math.floor(r() * 12);
    const res = await col.search(queries, { k, filter, withStats: true, includeMetadata: false });
    const matching = [...records].filter(([, rec]) => bruteMatches(filter, rec.meta, types));
    const where = `${label}: filter ${JSON.stringify(filter)} k=${k}`;
    for (let q = 0; q < nq; q++) {
      const hits = res.hits[q], stats = res.stats[q];
      assert.equal(stats.filter?.matched, matching.length, `${where}: matched`);
      const want = matching.map(([id, rec]) => ({ id, d: dist2(queries[q], rec.vector) })).sort((a, b) => a.d - b.d).slice(0, k);
      assert.equal(hits.length, want.length, `${where}: hit count`);
      const seen = new Set<string>();
      hits.forEach((h, j) => {
        const rec = records.get(h.id);
        assert.ok(rec && bruteMatches(filter, rec.meta, types), `${where}: hit ${h.id} does not match`);
        assert.ok(!seen.has(h.id), `${where}: ${h.id} twice`);
        seen.add(h.id);
        assert.equal(-h.score, dist2(queries[q], rec.vector), `${where}: score of ${h.id}`);
        assert.equal(-h.score, want[j].d, `${where}: rank ${j}`);
      });
      for (const s of stats.filter!.segments) paths.add(s.path);
    }
  }
  return paths;
}

describe('filtered search', () => {
  it('random filters equal brute force: mutable and sealed segments, deletes, updates, addFields on old segments, reopen, merge', async () => {
    const r = rng(20240601);
    const dir = newDir();
    const types: Types = { k: 'keyword', n: 'number', b: 'boolean', t: 'keyword[]' };
    const later: Types = { late: 'number', lateTags: 'keyword[]' };
    let col = await Collection.open(dir, { schema: { dimension: PD, metric: 'l2', fields: types }, sealRows: 64, autoMerge: false });
    const records = new Map<string, Model>();
    const upsert = async (n: number, undeclared: Types): Promise<void> => {
      for (let done = 0; done < n; done += 40) {
        const batch = Array.from({ length: Math.min(40, n - done) }, () => {
          const id = `r${records.size}-${Math.floor(r() * 1e9)}`;
          return { id, vector: intVector(r), metadata: randomMeta(r, types, undeclared) };
        });
        await col.upsert(batch);
        for (const b of batch) records.set(b.id, { vector: b.vector, meta: b.metadata });
        await col.idle(); // a seal starts once the mutable segment passes sealRows: ~80-row segments
      }
    };
    const paths = new Set<FilterPath>();
    const run = async (count: number, label: string): Promise<void> => {
      for (const p of await compareRandom(col, records, types, r, count, label)) paths.add(p);
    };

    // 'late' and 'lateTags' are written before they are declared (some of the wrong type)
    await upsert(330, later);
    await col.idle();
    assert.ok(col.info().segmentList.filter((s) => s.state === 'sealed').length >= 4, 'several sealed segments');
    await run(40, 'sealed + mutable');

    // deletes, replacements and metadata updates: tombstones in sealed and mutable segments
    const ids = [...records.keys()];
    const gone = ids.filter(() => r() < 0.15);
    await col.delete(gone);
    for (const id of gone) records.delete(id);
    const replaced = [...records.keys()].filter(() => r() < 0.1).map((id) => ({ id, vector: intVector(r), metadata: randomMeta(r, types, later) }));
    await col.upsert(replaced);
    for (const x of replaced) records.set(x.id, { vector: x.vector, meta: x.metadata });
    const patched = [...records.keys()].filter(() => r() < 0.1).map((id) => ({ id, metadata: { k: pick(r, KEYWORDS), n: pick(r, NUMBERS) } }));
    await col.update(patched, { merge: true });
    for (const p of patched) records.get(p.id)!.meta = { ...records.get(p.id)!.meta, ...p.metadata };
    await run(40, 'after deletes and updates');

    await assert.rejects(col.search(intVector(r), { filter: { late: 1 } }), (e) => isQuiverError(e, 'INVALID_ARGUMENT') && e.details.path === 'filter.late');
    // declared now: older segments have no column for them, their values come from the rows' JSON
    await col.addFields(later);
    Object.assign(types, later);
    await run(50, 'after addFields');
    await upsert(150, {});
    await col.idle();
    await run(40, 'new rows with the new fields');

    await col.close();
    col = await Collection.open(dir, { sealRows: 64, autoMerge: false });
    await run(40, 'after reopen');
    // a merge rewrites old segments with columns for the new fields
    await col.compact();
    await upsert(30, {});
    await run(40, 'after compact');
    await col.close();
    assert.deepEqual([...paths].sort(), ['exact', 'index', 'none'], 'both planner paths and empty segments were exercised');
  });

  it('in-memory collections (one growing mutable segment) filter the same way', async () => {
    const r = rng(77);
    const types: Types = { k: 'keyword', n: 'number', b: 'boolean', t: 'keyword[]' };
    const col = Collection.create({ dimension: PD, metric: 'l2', fields: types });
    const records = new Map<string, Model>();
    for (let round = 0; round < 4; round++) {
      const batch = Array.from({ length: 80 }, (_, i) => ({ id: `m${round}-${i}`, vector: intVector(r), metadata: randomMeta(r, types, {}) }));
      await col.upsert(batch);
      for (const b of batch) records.set(b.id, { vector: b.vector, meta: b.metadata });
      const gone = [...records.keys()].filter(() => r() < 0.1);
      await col.delete(gone);
      for (const id of gone) records.delete(id);
      // the column arrays built for earlier searches are extended with the new rows
      await compareRandom(col, records, types, r, 25, `round ${round}`);
    }
    await col.close();
  });

  it('documented semantics: missing values, keyword[] elements, code-unit order, $not', async () => {
    const col = Collection.create({ dimension: 2, metric: 'l2', fields: { k: 'keyword', n: 'number', b: 'boolean', t: 'keyword[]' } });
    await col.upsert([
      { id: 'full', vector: [0, 0], metadata: { k: 'a', n: 1, b: true, t: ['x', 'y'] } },
      { id: 'empty-list', vector: [1, 0], metadata: { k: 'B', n: -0, b: false, t: [] } },
      { id: 'nulls', vector: [2, 0], metadata: { k: null, n: null, t: null } },
      { id: 'bare', vector: [3, 0] },
      { id: 'umlaut', vector: [4, 0], metadata: { k: 'ä', n: 2.5, t: ['y'] } },
    ]);
    const ids = async (filter: Filter): Promise<string[]> => (await col.search([0, 0], { k: 10, filter, includeMetadata: false })).map((h) => h.id).sort();
    // rows without the field match $ne, $nin, $exists: false and negations
    assert.deepEqual(await ids({ k: { $ne: 'a' } }), ['bare', 'empty-list', 'nulls', 'umlaut']);
    assert.deepEqual(await ids({ n: { $nin: [1, 2.5] } }), ['bare', 'empty-list', 'nulls']);
    assert.deepEqual(await ids({ b: { $exists: false } }), ['bare', 'nulls', 'umlaut']);
    assert.deepEqual(await ids({ $not: { n: { $gt: 0 } } }), ['bare', 'empty-list', 'nulls']);
    assert.deepEqual(await ids({ n: { $not: { $gt: 0 } } }), ['bare', 'empty-list', 'nulls']);
    assert.deepEqual(await ids({ n: { $lte: 0 } }), ['empty-list'], 'ranges never match a missing value');
    assert.deepEqual(await ids({ n: 0 }), ['empty-list'], '-0 equals 0');
    // keyword[]: element by element; an empty list is present but contains nothing
    assert.deepEqual(await ids({ t: 'y' }), ['full', 'umlaut']);
    assert.deepEqual(await ids({ t: { $ne: 'y' } }), ['bare', 'empty-list', 'nulls']);
    assert.deepEqual(await ids({ t: { $in: ['x', 'q'] } }), ['full']);
    assert.deepEqual(await ids({ t: { $nin: ['x'] } }), ['bare', 'empty-list', 'nulls', 'umlaut']);
    assert.deepEqual(await ids({ t: { $exists: true } }), ['empty-list', 'full', 'umlaut']);
    assert.deepEqual(await ids({ t: { $gt: 'x' } }), ['full', 'umlaut'], 'some element in range');
    // keywords compare by UTF-16 code units: 'B' < 'a' < 'ä'
    assert.deepEqual(await ids({ k: { $lt: 'a' } }), ['empty-list']);
    assert.deepEqual(await ids({ k: { $gt: 'a' } }), ['umlaut']);
    assert.deepEqual(await ids({ k: { $gte: 'B', $lte: 'a' } }), ['empty-list', 'full']);
    // logical operators; several keys = AND; {} = everything; $in [] = nothing
    assert.deepEqual(await ids({ $or: [{ k: 'a' }, { n: 2.5 }] }), ['full', 'umlaut']);
    assert.deepEqual(await ids({ k: 'a', n: 2.5 }), []);
    assert.deepEqual(await ids({ $and: [{ b: { $in: [true, false] } }, { $not: { b: true } }] }), ['empty-list']);
    assert.deepEqual(await ids({}), ['bare', 'empty-list', 'full', 'nulls', 'umlaut']);
    assert.deepEqual(await ids({ k: { $in: [] } }), []);
    assert.deepEqual(await ids({ k: { $nin: [] } }), ['bare', 'empty-list', 'full', 'nulls', 'umlaut']);
    assert.deepEqual(await ids({ k: 'never written' }), []);
    await col.close();
  });

  it('rejects bad filters with INVALID_ARGUMENT naming the path', async () => {
    const col = Collection.create({ dimension: 2, fields: { k: 'keyword', n: 'number', b: 'boolean', t: 'keyword[]' } });
    await col.upsert([{ id: 'a', vector: [1, 0], metadata: { k: 'x', free: 1 } }]);
    const cases: [unknown, string, RegExp][] = [
      [{ free: 1 }, 'filter.free', /unknown field "free".*declared: k, n, b, t/],
      [{ 'no such': 1 }, 'filter.no such', /not a field name/],
      [{ n: 'x' }, 'filter.n', /number: expected a number, got string "x"/],
      [{ n: NaN }, 'filter.n', /NaN/],
      [{ n: { $in: [1, NaN] } }, 'filter.n.$in[1]', /NaN/],
      [{ k: 3 }, 'filter.k', /expected a string/],
      [{ k: null }, 'filter.k', /\$exists: false/],
      [{ k: undefined }, 'filter.k', /expected a string, got undefined/],
      [{ t: ['x'] }, 'filter.t', /element by element/],
      [{ b: 'true' }, 'filter.b', /expected a boolean/],
      [{ b: { $gt: false } }, 'filter.b.$gt', /range operators apply to number and keyword/],
      [{ n: { $foo: 1 } }, 'filter.n.$foo', /unknown operator "\$foo"/],
      [{ n: { gt: 1 } }, 'filter.n.gt', /not an operator/],
      [{ n: {} }, 'filter.n', /empty object/],
      [{ $nor: [{ k: 'x' }] }, 'filter.$nor', /unknown operator "\$nor"/],
      [{ $eq: 1 }, 'filter.$eq', /applies to a field/],
      [{ $and: [] }, 'filter.$and', /at least one/],
      [{ $or: [] }, 'filter.$or', /at least one/],
      [{ $or: { k: 'x' } }, 'filter.$or', /non-empty array/],
      [{ $and: [{ k: 'x' }, 5] }, 'filter.$and[1]', /expected an object/],
      [{ $not: [{ k: 'x' }] }, 'filter.$not', /expected an object/],
      [{ k: { $in: 'x' } }, 'filter.k.$in', /expected an array/],
      [{ k: { $exists: 1 } }, 'filter.k.$exists', /true or false/],
      [{ $or: [{ $and: [{ n: { $not: { $lt: '3' } } }] }] }, 'filter.$or[0].$and[0].n.$not.$lt', /expected a number/],
      [null, 'filter', /expected an object/],
      [[{ k: 'x' }], 'filter', /expected an object/],
      [new Map(), 'filter', /expected an object/],
    ];
    for (const [filter, path, message] of cases) {
      await assert.rejects(col.search([1, 0], { filter: filter as Filter }), (e) => {
        assert.ok(isQuiverError(e, 'INVALID_ARGUMENT'), `${JSON.stringify(filter)}: ${String(e)}`);
        assert.equal(e.details.path, path, JSON.stringify(filter));
        assert.match(e.message, message);
        assert.ok('expected' in e.details && 'received' in e.details);
        return true;
      });
    }
    let deep: Filter = { k: 'x' };
    for (let i = 0; i < 40; i++) deep = { $not: deep };
    await assert.rejects(col.search([1, 0], { filter: deep }), (e) => isQuiverError(e, 'INVALID_ARGUMENT') && /deeper than/.test(e.message));
    await col.close();
  });

  it('stats: matched, selectivity and the path per segment, for each query of a batch', async () => {
    const col = await Collection.open(new MemoryDirectory(), { schema: { dimension: 2, metric: 'l2', fields: { g: 'number' } }, sealRows: 100, autoMerge: false });
    for (let b = 0; b < 250; b += 100) {
      await col.upsert(Array.from({ length: Math.min(100, 250 - b) }, (_, j) => ({ id: `i${b + j}`, vector: [b + j, 0], metadata: { g: (b + j) % 10 } })));
      await col.idle();
    }
    const res = await col.search([[0, 0], [5, 0]], { k: 3, filter: { g: { $lt: 2 } }, withStats: true });
    assert.equal(res.stats.length, 2);
    for (const st of res.stats) {
      const f = st.filter!;
      assert.equal(f.matched, 50);
      assert.equal(f.live, 250);
      assert.equal(f.selectivity, 0.2);
      assert.equal(f.segments.length, 3);
      assert.deepEqual(f.segments.map((s) => [s.live, s.matched, s.path]), [[100, 20, 'exact'], [100, 20, 'exact'], [50, 10, 'exact']]);
      assert.deepEqual(f.paths, { exact: 3, index: 0, none: 0 });
      assert.equal(st.scanned, 50, 'the exact path scores only the matching rows');
    }
    assert.deepEqual(res.hits[0].map((h) => h.id), ['i0', 'i1', 'i10']);
    const wide = await col.search([0, 0], { k: 3, filter: { g: { $ne: 3 } }, withStats: true });
    assert.deepEqual(wide.stats.filter!.paths, { exact: 0, index: 3, none: 0 });
    assert.equal(wide.stats.scanned, 250, 'the index path scans the segment');
    const none = await col.search([0, 0], { k: 3, filter: { g: 42 }, withStats: true });
    assert.deepEqual(none.hits, []);
    assert.deepEqual(none.stats.filter!.paths, { exact: 0, index: 0, none: 3 });
    const plain: { stats: SearchStats } = await col.search([0, 0], { withStats: true });
    assert.equal(plain.stats.filter, undefined, 'no filter, no filter stats');
    await col.close();
  });

  for (const metric of ['l2', 'cosine', 'dot'] as Metric[]) {
    it(`${metric}: the exact gathered path equals the masked index path (mutable, sealed Flat) and the file's exact scores (sealed SQ8)`, async () => {
      const r = rng(metric.length);
      const d = 16;
      for (const index of ['Flat', 'Flat,SQ8']) {
        const col = await Collection.open(new MemoryDirectory(), { schema: { dimension: d, metric, index }, sealRows: 300, minQuantizedRows: 100, autoMerge: false });
        for (let b = 0; b < 700; b += 300) {
          await col.upsert(Array.from({ length: Math.min(300, 700 - b) }, (_, i) => ({ id: `v${b + i}`, vector: Array.from({ length: d }, () => r() * 2 - 1) })));
          await col.idle();
        }
        await col.delete(Array.from({ length: 60 }, (_, i) => `v${i * 11}`));
        const snap = snapshotOf(col);
        try {
          assert.equal(snap.segments.length, 3);
          const nq = 3, k = 7;
          const queries = Float32Array.from({ length: nq * d }, () => r() * 2 - 1);
          if (metric === 'cosine') {
            for (let q = 0; q < nq; q++) {
              const v = queries.subarray(q * d, (q + 1) * d);
              const nv = Math.hypot(...v);
              for (let j = 0; j < d; j++) v[j] /= nv;
            }
          }
          for (const seg of snap.segments) {
            const ords: number[] = [];
            const excluded = new Uint32Array(bitsetWords(seg.count));
            for (let i = 0; i < seg.count; i++) {
              if (!seg.isDeleted(i) && r() < 0.3) ords.push(i);
              else setBit(excluded, i);
            }
            const exact = seg.searchRows(queries, nq, k, Uint32Array.from(ords), ords.length);
            if (seg.index.description === 'Flat') {
              const masked = seg.index.search({ queries, nq, k, excluded, params: {}, counters: newCounters(nq) });
              assert.deepEqual([...exact.counts], [...masked.counts]);
              assert.deepEqual([...exact.ords], [...masked.ords], `${index} segment ${seg.number}: same rows in the same order`);
              assert.deepEqual([...exact.scores], [...masked.scores], 'same scores');
            } else {
              // compressed segment: the exact path reads full vectors from the file
              const sealed = seg as unknown as { scoreOrdinals(q: Float32Array, o: Uint32Array, n: number, out: Float32Array): void };
              for (let q = 0; q < nq; q++) {
                const all = new Float32Array(ords.length);
                sealed.scoreOrdinals(queries.subarray(q * d, (q + 1) * d), Uint32Array.from(ords), ords.length, all);
                const best = ords.map((o, i) => ({ o, s: all[i] })).sort((a, b) => b.s - a.s || a.o - b.o).slice(0, k);
                assert.deepEqual([...exact.ords.subarray(q * k, q * k + k)], best.map((b) => b.o), `${index}/${metric} query ${q}`);
                best.forEach((b, i) => assert.ok(Math.abs(exact.scores[q * k + i] - b.s) < 1e-4, 'exact scores'));
              }
            }
          }
        } finally {
          snap.release();
          await col.close();
        }
      }
    });
  }
});

// ---- recall on real data ----

interface RecallCase {
  spec: string;
  /** Least recall@10 at every selectivity, random and correlated attributes alike. */
  minRecall: number;
  /** Search options of the index (e.g. { ef } for a graph). */
  options?: { ef?: number; nprobe?: number; rerank?: number; recall?: number };
}

/** Table of index specs: flat scans, graphs and IVF, at a recall target where they take one. */
const RECALL_CASES: RecallCase[] = [
  { spec: 'Flat,SQ8,Rerank', minRecall: 0.95 },
  { spec: 'HNSW16,SQ8,Rerank', minRecall: 0.95, options: { recall: 0.97 } },
  { spec: 'IVF,SQ8,Rerank', minRecall: 0.95, options: { recall: 0.97 } },
];

const SELECTIVITIES = [0.001, 0.01, 0.1, 0.5];

describe('filtered search recall on SIFT10K', () => {
  const base = parseFvecs(readData('sift10k', 'base.fvecs'));
  const query = parseFvecs(readData('sift10k', 'query.fvecs'));
  const N = base.count, D = base.dimension, NQ = 100, K = 10;
  const r = rng(99);

  // random attributes: a uniform rank and a keyword bucket, independent of the vectors
  const perm = Array.from({ length: N }, (_, i) => i).sort(() => r() - 0.5);
  const rndRank = new Float64Array(N);
  perm.forEach((row, rank) => { rndRank[row] = rank / N; });
  // correlated attributes: rows ordered by their nearest of 16 k-means centroids (then by the
  // distance to it), so a range of the order is a region of the space
  const km = kmeans(createKernels('js'), base.data, N, D, 16, { seed: 5, maxIterations: 10 });
  const distTo = (i: number, c: number): number => {
    let s = 0;
    for (let j = 0; j < D; j++) s += (base.data[i * D + j] - km.centroids[c * D + j]) ** 2;
    return s;
  };
  const order = Array.from({ length: N }, (_, i) => i).sort((a, b) => km.assignments[a] - km.assignments[b] || distTo(a, km.assignments[a]) - distTo(b, km.assignments[b]));
  const posRank = new Float64Array(N);
  order.forEach((row, rank) => { posRank[row] = rank / N; });
  const meta = (i: number): Meta => ({
    rnd: rndRank[i], bucket: `b${Math.floor(rndRank[i] * 1000)}`,
    pos: posRank[i], cell: `p${Math.floor(posRank[i] * 1000)}`, cluster: `c${km.assignments[i]}`,
  });

  // exact distances of every query to every row, once (ground truth per filter is a selection)
  const dists = new Float64Array(NQ * N);
  for (let q = 0; q < NQ; q++) {
    for (let i = 0; i < N; i++) {
      let s = 0;
      for (let j = 0; j < D; j++) s += (query.data[q * D + j] - base.data[i * D + j]) ** 2;
      dists[q * N + i] = s;
    }
  }
  const queries = Array.from({ length: NQ }, (_, q) => query.data.subarray(q * D, (q + 1) * D));

  /** Filters for selectivity s: a range / a keyword list, over random and over correlated attributes. */
  const filtersFor = (s: number): { name: string; filter: Filter; rows: (i: number) => boolean }[] => {
    const buckets = Array.from({ length: Math.round(s * 1000) || 1 }, (_, i) => i);
    const start = 0.3; // a region inside the cluster order, away from its ends
    return [
      { name: 'random number range', filter: { rnd: { $lt: s } }, rows: (i) => rndRank[i] < s },
      { name: 'random keyword $in', filter: { bucket: { $in: buckets.map((b) => `b${b}`) } }, rows: (i) => Math.floor(rndRank[i] * 1000) < buckets.length },
      { name: 'correlated number range', filter: { pos: { $gte: start, $lt: start + s } }, rows: (i) => posRank[i] >= start && posRank[i] < start + s },
      { name: 'correlated keyword $in', filter: { cell: { $in: buckets.map((b) => `p${b + 300}`) } }, rows: (i) => { const c = Math.floor(posRank[i] * 1000) - 300; return c >= 0 && c < buckets.length; } },
    ];
  };

  for (const rc of RECALL_CASES) {
    it(`${rc.spec}: recall@10 >= ${rc.minRecall} at selectivities ${SELECTIVITIES.map((s) => `${s * 100}%`).join(', ')}, random and correlated`, async () => {
      const col = await Collection.open(newDir(), {
        schema: { dimension: D, metric: 'l2', index: rc.spec, fields: { rnd: 'number', bucket: 'keyword', pos: 'number', cell: 'keyword', cluster: 'keyword' } },
        sealRows: N + 1, autoMerge: false,
      });
      for (let s = 0; s < N; s += 2500) {
        await col.upsert(Array.from({ length: Math.min(2500, N - s) }, (_, j) => ({ id: String(s + j), vector: base.data.subarray((s + j) * D, (s + j + 1) * D), metadata: meta(s + j) })));
      }
      await col.flush();
      const sealed = col.info().segmentList.filter((x) => x.state === 'sealed');
      assert.equal(sealed.length, 1);
      assert.notEqual(sealed[0].index, 'Flat', 'the compressed index is built');
      const report: string[] = [];
      for (const s of SELECTIVITIES) {
        for (const f of filtersFor(s)) {
          const matchingRows: number[] = [];
          for (let i = 0; i < N; i++) if (f.rows(i)) matchingRows.push(i);
          const t0 = performance.now();
          const res = await col.search(queries, { ...rc.options, k: K, filter: f.filter, withStats: true, includeMetadata: false });
          const ms = (performance.now() - t0) / NQ;
          let hit = 0, want = 0;
          for (let q = 0; q < NQ; q++) {
            const truth = new Set(matchingRows.map((i) => ({ i, d: dists[q * N + i] })).sort((a, b) => a.d - b.d).slice(0, K).map((x) => String(x.i)));
            want += truth.size;
            for (const h of res.hits[q]) if (truth.has(h.id)) hit++;
          }
          const recall = hit / want;
          const st = res.stats[0].filter!;
          assert.equal(st.matched, matchingRows.length, `${f.name} at ${s}: matched`);
          report.push(`${f.name} ${(s * 100).toFixed(1)}%: matched ${st.matched}, path ${st.segments.map((x) => x.path).join('+')}, recall ${recall.toFixed(3)}, ${ms.toFixed(2)} ms/query`);
          assert.ok(recall >= rc.minRecall, `${rc.spec} ${f.name} at ${s * 100}%: recall ${recall}`);
        }
      }
      // cluster labels: natural selectivity of a label (about 1/16) and of half the labels
      for (const labels of [['c3'], ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7']]) {
        const res = await col.search(queries, { ...rc.options, k: K, filter: { cluster: { $in: labels } }, includeMetadata: false });
        const rows: number[] = [];
        for (let i = 0; i < N; i++) if (labels.includes(`c${km.assignments[i]}`)) rows.push(i);
        let hit = 0;
        for (let q = 0; q < NQ; q++) {
          const truth = new Set(rows.map((i) => ({ i, d: dists[q * N + i] })).sort((a, b) => a.d - b.d).slice(0, K).map((x) => String(x.i)));
          for (const h of res[q]) if (truth.has(h.id)) hit++;
        }
        assert.ok(hit / (NQ * K) >= rc.minRecall, `${rc.spec} cluster ${labels.join(',')}: recall ${hit / (NQ * K)}`);
      }
      if (process.env.QUIVER_FILTER_REPORT) console.log(report.join('\n'));
      await col.close();
    });
  }
});

describe('IVF index path: the mask as the lists see it is cached by its bits', () => {
  it('a filtered search after deletes, and under another filter, never returns a row its mask excludes', async () => {
    const sift = parseFvecs(readData('sift10k', 'base.fvecs'));
    const query = parseFvecs(readData('sift10k', 'query.fvecs'));
    const N = sift.count, D = sift.dimension, NQ = 20, K = 10;
    const col = await Collection.open(newDir(), {
      schema: { dimension: D, metric: 'l2', index: 'IVF,SQ8,Rerank', fields: { g: 'keyword' } }, sealRows: N + 1, autoMerge: false,
    });
    for (let s = 0; s < N; s += 2500) {
      await col.upsert(Array.from({ length: 2500 }, (_, j) => ({ id: String(s + j), vector: sift.data.subarray((s + j) * D, (s + j + 1) * D), metadata: { g: (s + j) % 2 ? 'odd' : 'even' } })));
    }
    await col.flush();
    const queries = Array.from({ length: NQ }, (_, q) => query.data.subarray(q * D, (q + 1) * D));
    const search = (g: string) => col.search(queries, { k: K, filter: { g }, recall: 0.95, withStats: true, includeMetadata: false });
    const first = await search('odd');
    assert.deepEqual(first.stats[0].filter!.segments.map((x) => x.path), ['index']);
    const deleted = new Set<string>();
    for (const hits of first.hits) for (const h of hits) { assert.equal(Number(h.id) % 2, 1); deleted.add(h.id); }
    await col.delete([...deleted]);
    for (const g of ['odd', 'even', 'odd']) {
      const res = await search(g);
      for (const hits of res.hits) {
        assert.equal(hits.length, K);
        for (const h of hits) {
          assert.equal(Number(h.id) % 2, g === 'odd' ? 1 : 0, `${g}: row ${h.id}`);
          assert.ok(!deleted.has(h.id), `deleted row ${h.id} returned`);
        }
      }
    }
    await col.close();
  });
});

describe('compiled filters are cached per segment', () => {
  it('a repeated filter gives the same results, and deletes, replacements and new rows show through', async () => {
    const col = Collection.create({ dimension: 2, fields: { g: 'keyword' } });
    await col.upsert(Array.from({ length: 50 }, (_, i) => ({ id: `r${i}`, vector: [1, i / 50], metadata: { g: i % 2 ? 'odd' : 'even' } })));
    const f = { filter: { g: 'odd' }, k: 100 };
    const ids = async () => (await col.search([1, 0], f)).map((h) => h.id).sort();
    const first = await ids();
    assert.equal(first.length, 25);
    assert.deepEqual(await ids(), first);
    await col.delete(['r1']);
    assert.ok(!(await ids()).includes('r1'));
    await col.upsert([{ id: 'r3', vector: [1, 0], metadata: { g: 'even' } }, { id: 'n1', vector: [1, 0], metadata: { g: 'odd' } }]);
    const after = await ids();
    assert.ok(!after.includes('r3') && after.includes('n1') && after.length === 24, JSON.stringify(after));
    await col.close();
  });
});
