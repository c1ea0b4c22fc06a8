import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isQuiverError, QuiverError } from '../src/errors.js';
import { JsKernels } from '../src/kernels/index.js';
import { buildSparseIndex } from '../src/sparse/build.js';
import { decodeSparseIndex, encodeSparseIndex } from '../src/sparse/section.js';
import type { SeismicSparseIndex } from '../src/sparse/sparse-index.js';
import { checkSparseVector, type SparseInput, type SparseSearchResult } from '../src/sparse/types.js';
import { crc32c } from '../src/util/crc32c.js';
import { DATA_DIR } from './helpers/data.js';
import { rng } from './helpers/random.js';

// The learned-sparse index (src/sparse/) on real SPLADE-v3 vectors (../shared/data/splade: a
// token repeated n times has weight n). The dev vectors are the documents; queries are dev
// vectors with their own row excluded (through the `excluded` bitset) plus the DL19 vectors
// (not among the documents). Ground truth is a brute-force scan written here in plain JS.

const DEV = join(DATA_DIR, 'splade', 'topics.msmarco-passage.dev-subset.splade-v3.tsv.gz');
const DL19 = join(DATA_DIR, 'splade', 'topics.dl19-passage.splade-v3.tsv.gz');
const HAVE_DATA = existsSync(DEV) && existsSync(DL19);
const SKIP = HAVE_DATA ? false : `../shared/data/splade is absent (${DEV})`;

function loadTsv(path: string): Record<string, number>[] {
  const rows: Record<string, number>[] = [];
  for (const line of gunzipSync(readFileSync(path)).toString('utf8').split('\n')) {
    if (!line) continue;
    const v: Record<string, number> = {};
    for (const t of line.slice(line.indexOf('\t') + 1).split(' ')) if (t) v[t] = (v[t] ?? 0) + 1;
    rows.push(v);
  }
  return rows;
}

const dev = HAVE_DATA ? loadTsv(DEV) : [];
const dl19 = HAVE_DATA ? loadTsv(DL19) : [];

function bitset(n: number, rows: Iterable<number>): Uint32Array {
  const b = new Uint32Array(Math.ceil(n / 32));
  for (const r of rows) b[r >>> 5] |= 1 << (r & 31);
  return b;
}

const keyCache = new WeakMap<object, string[]>();
function sortedKeys(d: SparseInput): string[] {
  let k = keyCache.get(d);
  if (!k) { k = Object.keys(d).sort(); keyCache.set(d, k); }
  return k;
}

/**
 * Top-k by inner product, best first, ties by lower row, positive scores only (plain JS). The
 * arithmetic is the index's documented one: weights as f32, products summed in f64 in dictionary
 * (JS string) order, rounded once to f32.
 */
function bruteForce(docs: (SparseInput | undefined)[], q: SparseInput, k: number, excluded?: Set<number>): { ords: number[]; scores: number[] } {
  const all: Array<[number, number]> = [];
  docs.forEach((d, i) => {
    if (!d || excluded?.has(i)) return;
    let s = 0;
    for (const t of sortedKeys(d)) if (q[t] !== undefined) s += Math.fround(q[t]) * Math.fround(d[t]);
    s = Math.fround(s);
    if (s > 0) all.push([i, s]);
  });
  all.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const top = all.slice(0, k);
  return { ords: top.map((x) => x[0]), scores: top.map((x) => x[1]) };
}

function assertSame(got: SparseSearchResult, want: { ords: number[]; scores: number[] }, what: string): void {
  assert.deepEqual(Array.from(got.ords), want.ords, `${what}: ords`);
  assert.deepEqual(Array.from(got.scores), want.scores, `${what}: scores`);
  assert.equal(got.count, want.ords.length, `${what}: count`);
}

function expectCode(fn: () => unknown, code: QuiverError['code'], what: string): QuiverError {
  try {
    fn();
  } catch (e) {
    assert.ok(isQuiverError(e, code), `${what}: expected ${code}, got ${(e as Error)?.stack ?? String(e)}`);
    return e as QuiverError;
  }
  assert.fail(`${what}: expected ${code}, nothing thrown`);
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}

/** A small synthetic collection: rows over a 60-term vocabulary, some rows without a value, one empty. */
function synthetic(n: number, seed: number): (SparseInput | undefined)[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    if (i % 17 === 5) return undefined;
    if (i === 3) return {};
    const v: Record<string, number> = {};
    const len = 1 + Math.floor(r() * 12);
    for (let j = 0; j < len; j++) v[`t${Math.floor(r() * r() * 60)}`] = Math.floor(r() * 5); // some zeros: dropped
    return v;
  });
}

describe('sparse vectors: validation', () => {
  it('accepts term -> weight objects, drops zero weights, returns a fresh object', () => {
    const input = { a: 1.5, b: 0, 'ü日本': 2 };
    const v = checkSparseVector(input, 'field "s"');
    assert.deepEqual({ ...v }, { a: 1.5, 'ü日本': 2 });
    assert.notEqual(v, input);
    assert.deepEqual({ ...checkSparseVector({}, 'x') }, {});
    assert.equal(Object.keys(checkSparseVector(Object.fromEntries(Array.from({ length: 4096 }, (_, i) => [`t${i}`, 1])), 'x')).length, 4096);
  });

  it('refuses non-objects, bad weights, bad terms and too many terms with INVALID_ARGUMENT details', () => {
    const cases: Array<[unknown, string]> = [
      [null, 'null'], [[1, 2], 'array'], [5, 'number'], ['a', 'string'], [new Float32Array(2), 'typed array'],
      [{ a: NaN }, 'NaN'], [{ a: Infinity }, 'Infinity'], [{ a: -1 }, 'negative'], [{ a: 1e39 }, 'beyond float32'], [{ a: '1' }, 'string weight'], [{ a: null }, 'null weight'],
      [{ '': 1 }, 'empty term'], [{ ['x'.repeat(257)]: 1 }, 'long term'], [{ ['a\uD800b']: 1 }, 'lone surrogate'],
      [Object.fromEntries(Array.from({ length: 4097 }, (_, i) => [`t${i}`, 1])), '4097 terms'],
    ];
    for (const [value, what] of cases) {
      const e = expectCode(() => checkSparseVector(value, 'field "s"'), 'INVALID_ARGUMENT', what);
      assert.equal(e.details.field, 'field "s"', what);
      assert.ok('expected' in e.details && 'received' in e.details, `${what}: details ${JSON.stringify(e.details)}`);
      assert.match(e.message, /field "s"/, what);
    }
    // the largest weight that rounds to a finite float32 is fine; a 256-character term and 4,096 terms with zeros beyond are fine
    assert.equal(checkSparseVector({ a: 3.4028235e38 }, 'x').a, 3.4028235e38);
    checkSparseVector({ ['x'.repeat(256)]: 1 }, 'x');
    checkSparseVector({ ...Object.fromEntries(Array.from({ length: 4096 }, (_, i) => [`t${i}`, 1])), z: 0 }, 'x');
  });

  it('build validates rows and search validates queries and arguments', () => {
    expectCode(() => buildSparseIndex((i) => (i === 1 ? { a: -1 } : { a: 1 }), 3), 'INVALID_ARGUMENT', 'bad row');
    const idx = buildSparseIndex((i) => ({ a: i + 1 }), 3);
    expectCode(() => idx.search({ a: NaN }, 1), 'INVALID_ARGUMENT', 'bad query');
    expectCode(() => idx.search({ a: 1 }, 0), 'INVALID_ARGUMENT', 'k = 0');
    expectCode(() => idx.search({ a: 1 }, 1, undefined, { heapFactor: 0 }), 'INVALID_ARGUMENT', 'heapFactor 0');
    expectCode(() => idx.search({ a: 1 }, 1, undefined, { queryTerms: 0 }), 'INVALID_ARGUMENT', 'queryTerms 0');
    expectCode(() => idx.search({ a: 1 }, 1, undefined, { mode: 'fast' as 'exact' }), 'INVALID_ARGUMENT', 'mode');
    expectCode(() => buildSparseIndex(() => undefined, 2, { lambda: 0 }), 'INVALID_ARGUMENT', 'lambda 0');
  });
});

describe('sparse index: small synthetic segments', () => {
  it('rows without values: counted, never returned, vectorAt undefined; an empty vector is a value', () => {
    const docs = synthetic(300, 1);
    const idx = buildSparseIndex((i) => docs[i], docs.length, { approxMinRows: 100 });
    assert.equal(idx.count, 300);
    assert.ok(idx.hasApprox);
    for (let i = 0; i < docs.length; i++) {
      const want = docs[i] === undefined ? undefined : Object.fromEntries(Object.entries(docs[i]!).filter(([, w]) => w > 0));
      assert.deepEqual(idx.vectorAt(i) && { ...idx.vectorAt(i) }, want, `row ${i}`);
    }
    assert.deepEqual({ ...idx.vectorAt(3) }, {});
    const r = rng(2);
    for (let qi = 0; qi < 40; qi++) {
      const q = { [`t${Math.floor(r() * 10)}`]: 1 + r(), [`t${Math.floor(r() * 60)}`]: r() };
      for (const mode of ['exact', 'approx'] as const) {
        const res = idx.search(q, 300, undefined, { mode });
        for (const o of res.ords) assert.ok(docs[o] !== undefined && o !== 3, `${mode}: row ${o} has no terms`);
      }
      assertSame(idx.search(q, 300, undefined, { mode: 'exact' }), bruteForce(docs, q, 300), `query ${qi} all rows`);
    }
    expectCode(() => idx.vectorAt(300), 'INVALID_ARGUMENT', 'vectorAt out of range');
    assert.equal(idx.termUpperBound('t0'), Math.max(...docs.map((d) => d?.t0 ?? 0)));
    assert.equal(idx.termUpperBound('nope'), 0);
    idx.release();
  });

  it('empty queries and queries of unknown terms return no hits', () => {
    const docs = synthetic(200, 3);
    const idx = buildSparseIndex((i) => docs[i], docs.length, { approxMinRows: 0 });
    for (const mode of ['exact', 'approx'] as const) {
      for (const q of [{}, { unknown: 3 }, { t1: 0 }] as SparseInput[]) {
        const res = idx.search(q, 10, undefined, { mode });
        assert.equal(res.count, 0);
        assert.equal(res.ords.length, 0);
      }
    }
    const empty = buildSparseIndex(() => undefined, 0);
    assert.equal(empty.search({ a: 1 }, 5).count, 0);
    assert.equal(buildSparseIndex(() => undefined, 10).search({ a: 1 }, 5).count, 0);
  });

  it('segments under approxMinRows have no approximate structures and search exactly', () => {
    const docs = synthetic(500, 4);
    const idx = buildSparseIndex((i) => docs[i], docs.length);
    assert.equal(idx.hasApprox, false);
    const q = { t1: 2, t2: 1, t30: 0.5 };
    assertSame(idx.search(q, 10, undefined, { mode: 'approx' }), bruteForce(docs, q, 10), 'approx falls back to exact');
  });

  it('the JS kernels give the same results as WASM', () => {
    const docs = synthetic(400, 5);
    const a = buildSparseIndex((i) => docs[i], docs.length, { approxMinRows: 0 });
    const b = buildSparseIndex((i) => docs[i], docs.length, { approxMinRows: 0, kernels: new JsKernels() });
    const r = rng(6);
    for (let qi = 0; qi < 30; qi++) {
      const q = { [`t${Math.floor(r() * 20)}`]: r() * 3, [`t${Math.floor(r() * 60)}`]: r() };
      for (const mode of ['exact', 'approx'] as const) {
        const x = a.search(q, 7, undefined, { mode }), y = b.search(q, 7, undefined, { mode });
        assert.deepEqual(Array.from(x.ords), Array.from(y.ords));
        assert.deepEqual(Array.from(x.scores), Array.from(y.scores));
      }
    }
  });
});

describe('sparse index: real SPLADE vectors', { skip: SKIP }, () => {
  const index = (HAVE_DATA ? buildSparseIndex((i) => dev[i], dev.length) : null) as SeismicSparseIndex;
  const r = rng(20240901);
  const queryRows = HAVE_DATA ? Array.from({ length: 150 }, () => Math.floor(r() * dev.length)) : [];

  it('builds the approximate structures for a segment of 6,980 rows', () => {
    assert.equal(index.count, dev.length);
    assert.ok(index.hasApprox);
    assert.ok(index.memoryBytes > 0);
    assert.deepEqual({ ...index.vectorAt(17) }, dev[17]);
  });

  it('exact mode returns exactly the brute-force top-k (ties by lower row), with exclusions', () => {
    let ties = 0;
    const queries: Array<[SparseInput, Set<number>]> = [
      ...dl19.map((q): [SparseInput, Set<number>] => [q, new Set()]),
      ...queryRows.slice(0, 60).map((i): [SparseInput, Set<number>] => [dev[i], new Set([i])]),
      // a third of the rows excluded at random (a filter)
      ...queryRows.slice(60, 80).map((i): [SparseInput, Set<number>] => [dev[i], new Set(Array.from({ length: dev.length }, (_, j) => j).filter((j) => (j * 2654435761) % 3 === 0))]),
    ];
    for (const [qi, [q, ex]] of queries.entries()) {
      const all = bruteForce(dev, q, 100, ex);
      for (const k of [1, 10, 100]) {
        const want = { ords: all.ords.slice(0, k), scores: all.scores.slice(0, k) };
        const got = index.search(q, k, bitset(dev.length, ex), { mode: 'exact' });
        assertSame(got, want, `query ${qi} k=${k}`);
        for (let i = 1; i < want.scores.length; i++) if (want.scores[i] === want.scores[i - 1]) ties++;
      }
    }
    assert.ok(ties > 0, 'the real data has tied scores, so the ordinal rule is exercised');
  });

  it('approx recall@10 >= 0.9 against exact (DL19 + 150 dev self-queries, own row excluded)', () => {
    let hit = 0, want = 0, docs = 0;
    const queries: Array<[SparseInput, number]> = [...dl19.map((q): [SparseInput, number] => [q, -1]), ...queryRows.map((i): [SparseInput, number] => [dev[i], i])];
    for (const [q, self] of queries) {
      const ex = self >= 0 ? bitset(dev.length, [self]) : undefined;
      const exact = index.search(q, 10, ex, { mode: 'exact' });
      const approx = index.search(q, 10, ex);
      const truth = new Set(exact.ords);
      want += exact.count;
      for (const o of approx.ords) { if (truth.has(o)) hit++; assert.notEqual(o, self, 'own row excluded'); }
      docs += approx.docsScored;
      // approx scores are exact scores of the rows it returns
      for (let i = 0; i < approx.count; i++) assert.equal(approx.scores[i], bruteForce([dev[approx.ords[i]]], q, 1).scores[0]);
    }
    const recall = hit / want;
    assert.ok(recall >= 0.9, `recall@10 ${recall}`);
    assert.ok(docs / queries.length < dev.length / 4, `approx scored ${docs / queries.length} rows per query`);
  });

  it('excluded rows are never returned, in either mode', () => {
    const ex = new Set<number>();
    const rr = rng(7);
    for (let i = 0; i < dev.length; i++) if (rr() < 0.5) ex.add(i);
    for (const i of queryRows.slice(0, 30)) {
      // exclude the query's unfiltered top 20 as well: the rows most likely to leak
      for (const o of index.search(dev[i], 20, undefined, { mode: 'exact' }).ords) ex.add(o);
      const bits = bitset(dev.length, ex);
      for (const mode of ['exact', 'approx'] as const) {
        const res = index.search(dev[i], 50, bits, { mode });
        assert.ok(res.count > 0);
        for (const o of res.ords) assert.ok(!ex.has(o), `${mode} returned excluded row ${o}`);
      }
    }
  });

  it('round trip: decoded index has the same vectors, results and bytes', () => {
    const bytes = concat(encodeSparseIndex(index));
    const back = decodeSparseIndex(bytes, dev.length, 'seg-1.sparse[3]');
    assert.equal(back.hasApprox, true);
    for (let i = 0; i < dev.length; i += 97) assert.deepEqual({ ...back.vectorAt(i) }, { ...index.vectorAt(i) });
    for (const i of queryRows.slice(0, 40)) {
      for (const mode of ['exact', 'approx'] as const) {
        const a = index.search(dev[i], 10, undefined, { mode }), b = back.search(dev[i], 10, undefined, { mode });
        assert.deepEqual(Array.from(b.ords), Array.from(a.ords));
        assert.deepEqual(Array.from(b.scores), Array.from(a.scores));
        assert.equal(b.docsScored, a.docsScored);
      }
    }
    assert.deepEqual(concat(encodeSparseIndex(back)), bytes);
    back.release();
  });
});

describe('sparse index section: damaged bytes', () => {
  const docs = synthetic(240, 8);
  const idx = buildSparseIndex((i) => docs[i], docs.length, { approxMinRows: 0 });
  const bytes = concat(encodeSparseIndex(idx));
  const where = 'seg-9.sparse[1]';
  /** Rewrites the checksum after an edit, so that only the structural checks can object. */
  const resealed = (edit: (b: Uint8Array, v: DataView) => void): Uint8Array => {
    const b = bytes.slice();
    const v = new DataView(b.buffer);
    edit(b, v);
    v.setUint32(b.length - 4, crc32c(b, 0, 0, b.length - 4), true);
    return b;
  };

  it('round trip of a small segment with rows without values', () => {
    const back = decodeSparseIndex(bytes, docs.length, where);
    for (let i = 0; i < docs.length; i++) assert.deepEqual(back.vectorAt(i) && { ...back.vectorAt(i) }, idx.vectorAt(i) && { ...idx.vectorAt(i) });
    assert.deepEqual(Array.from(back.search({ t1: 1, t2: 2 }, 9).ords), Array.from(idx.search({ t1: 1, t2: 2 }, 9).ords));
  });

  it('round trip without the approximate structures, and of an empty segment', () => {
    const small = synthetic(500, 10);
    const a = buildSparseIndex((i) => small[i], small.length);
    assert.equal(a.hasApprox, false);
    const b = decodeSparseIndex(concat(encodeSparseIndex(a)), small.length, where);
    assert.equal(b.hasApprox, false);
    for (let i = 0; i < small.length; i++) assert.deepEqual(b.vectorAt(i) && { ...b.vectorAt(i) }, a.vectorAt(i) && { ...a.vectorAt(i) });
    assertSame(b.search({ t1: 1, t5: 2 }, 10), bruteForce(small, { t1: 1, t5: 2 }, 10), 'decoded exact search');
    const empty = decodeSparseIndex(concat(encodeSparseIndex(buildSparseIndex(() => undefined, 0))), 0, where);
    assert.equal(empty.count, 0);
    assert.equal(empty.search({ a: 1 }, 3).count, 0);
  });

  it('every single-byte flip and every truncation is CORRUPT_FILE naming the section', () => {
    const r = rng(9);
    for (let pos = 0; pos < bytes.length; pos++) {
      const b = bytes.slice();
      b[pos] ^= 1 << Math.floor(r() * 8);
      const e = expectCode(() => decodeSparseIndex(b, docs.length, where), 'CORRUPT_FILE', `flip at ${pos}`);
      assert.match(e.message, /seg-9\.sparse\[1\]/);
    }
    for (let len = 0; len < bytes.length; len += 1 + Math.floor(r() * 7)) {
      expectCode(() => decodeSparseIndex(bytes.subarray(0, len), docs.length, where), 'CORRUPT_FILE', `truncated to ${len}`);
    }
    expectCode(() => decodeSparseIndex(concat([bytes, new Uint8Array(4)]), docs.length, where), 'CORRUPT_FILE', 'trailing bytes');
    expectCode(() => decodeSparseIndex(bytes, docs.length + 1, where), 'CORRUPT_FILE', 'row count of another segment');
  });

  it('inconsistencies under a valid checksum are CORRUPT_FILE; an unknown version is UNSUPPORTED_FORMAT', () => {
    expectCode(() => decodeSparseIndex(resealed((_, v) => v.setUint32(4, 2, true)), docs.length, where), 'UNSUPPORTED_FORMAT', 'version 2');
    const header = new DataView(bytes.buffer, bytes.byteOffset);
    const nTerms = header.getUint32(12, true), nnz = header.getUint32(16, true), dictBytes = header.getUint32(52, true);
    const presentAt = 56 + Math.ceil(dictBytes / 4) * 4;
    const rowStartAt = presentAt + 4 * Math.ceil(docs.length / 32);
    const termsAt = rowStartAt + 4 * (docs.length + 1);
    const weightsAt = termsAt + 4 * nnz;
    const tbsAt = weightsAt + 4 * nnz;
    const bdsAt = tbsAt + 4 * (nTerms + 1);
    const edits: Array<[string, (b: Uint8Array, v: DataView) => void]> = [
      ['bad magic', (_, v) => v.setUint32(0, 0x12345678, true)],
      ['huge nnz', (_, v) => v.setUint32(16, 0xfffffff0, true)],
      ['unknown flag', (_, v) => v.setUint32(20, 3, true)],
      ['dictionary out of order', (b) => { const i = b.indexOf(0x74, 58); b[i + 1] = 0x7a; }],
      ['row range backwards', (_, v) => v.setUint32(rowStartAt + 4 * 10, v.getUint32(rowStartAt + 4 * 12, true) + 1, true)],
      ['term id past the dictionary', (_, v) => v.setUint32(termsAt, nTerms, true)],
      ['negative weight', (_, v) => v.setFloat32(weightsAt + 8, -1, true)],
      ['NaN weight', (_, v) => v.setFloat32(weightsAt + 8, NaN, true)],
      ['presence bit of a row with entries cleared', (_, v) => v.setUint32(presentAt, 0, true)],
      ['block range past the postings', (_, v) => v.setUint32(tbsAt + 4 * nTerms, 0xffff, true)],
      ['empty block', (_, v) => v.setUint32(bdsAt + 4, 0, true)],
      ['block row past the segment', (_, v) => v.setUint32(bdsAt + 4 * (header.getUint32(40, true) + 1), 1000, true)],
    ];
    for (const [what, edit] of edits) {
      const e = expectCode(() => decodeSparseIndex(resealed(edit), docs.length, where), 'CORRUPT_FILE', what);
      assert.match(e.message, /seg-9\.sparse\[1\]/, what);
    }
  });
});
