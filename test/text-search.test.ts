import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { rng } from './helpers/random.js';
import { Collection, MemoryDirectory, QuiverError, type Embedder, type Hit } from '../src/index.js';
import { readBeirDataset, type BeirDataset } from '../src/node/beir.js';
import { evaluate } from '../src/eval/metrics.js';
import { parseFvecs } from '../src/io/vecs.js';
import { getAnalyzer } from '../src/text/analyzer.js';
import { bm25Idf, scoredLength } from '../src/text/bm25.js';
import { decodePostings, encodePostings, gatherPostings } from '../src/text/postings.js';
import { checkFusion, fuse } from '../src/query/fusion.js';

const CACM = '../shared/data/cacm';
const haveCacm = existsSync(`${CACM}/corpus.jsonl`);
let cacm: BeirDataset | null = null;
async function loadCacm(): Promise<BeirDataset> {
  cacm ??= await readBeirDataset(CACM);
  return cacm;
}

const pairs = (hits: Hit[]) => hits.map((h) => [h.id, h.score]);

async function expectCode(p: Promise<unknown> | (() => unknown), code: string, re?: RegExp): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(e instanceof QuiverError, `expected QuiverError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return;
  }
  assert.fail(`expected ${code}`);
}

describe('BM25 through the collection', () => {
  it('pruned search returns exactly what exhaustive scoring returns (CACM: sealed, frozen and mutable segments, deletes, replacements, a filter)', { skip: !haveCacm && 'no ../shared/data', timeout: 300_000 }, async () => {
    const ds = await loadCacm();
    const dir = new MemoryDirectory();
    const schema = { dimension: 2, fields: { body: 'text' as const, half: 'keyword' as const } };
    let c = await Collection.open(dir, { schema, sealRows: 900, autoMerge: false });
    const docs = ds.corpus;
    const rec = (i: number) => ({ id: docs[i].id, vector: [1, (i % 7) / 7], metadata: { body: docs[i].text, half: i % 2 ? 'odd' : 'even' } });
    for (let i = 0; i < 2400; i += 300) await c.upsert(Array.from({ length: 300 }, (_, j) => rec(i + j)));
    await c.flush();
    await c.close();
    // reopened: sealed segments read from their files; then a mutable tail, deletes and replacements
    c = await Collection.open(dir, { schema, sealRows: 100_000, autoMerge: false });
    await c.upsert(Array.from({ length: docs.length - 2400 }, (_, j) => rec(2400 + j)));
    await c.delete(docs.slice(0, 300).filter((_, i) => i % 3 === 0).map((d) => d.id));
    await c.upsert(docs.slice(1000, 1100).map((d, j) => ({ id: d.id, vector: [1, 0.5], metadata: { body: docs[2000 + j].text, half: 'odd' } })));
    assert.ok(c.info().segmentList.filter((s) => s.state === 'sealed').length >= 2);
    let compared = 0;
    for (const k of [1, 10, 100]) {
      for (const [, text] of ds.queries) {
        for (const filter of [undefined, { half: 'odd' }]) {
          const a = await c.search({ text, k, filter, includeMetadata: false });
          const b = await c.search({ text, k, filter, exhaustive: true, includeMetadata: false });
          assert.deepEqual(pairs(a), pairs(b), `k=${k} "${text.slice(0, 40)}" filter=${JSON.stringify(filter)}`);
          if (filter) for (const h of a) assert.ok(Number(docs.findIndex((d) => d.id === h.id)) >= 0);
          compared++;
        }
      }
    }
    assert.ok(compared >= 3 * 64 * 2);
    // pruning did prune: fewer documents scored in full than exhaustively
    const pruned = await c.search({ text: ds.queries.get('1')!, k: 10, withStats: true });
    const full = await c.search({ text: ds.queries.get('1')!, k: 10, exhaustive: true, withStats: true });
    assert.ok(pruned.stats.text!.scored < full.stats.text!.scored, `${pruned.stats.text!.scored} < ${full.stats.text!.scored}`);
    await c.close();
  });

  it('equals an independent BM25 (Lucene scoring, collection-wide statistics) on random texts with many ties, across segments', async () => {
    const r = rng(7);
    const vocab = Array.from({ length: 12 }, (_, i) => `w${i}`);
    const texts = Array.from({ length: 700 }, () => Array.from({ length: 1 + Math.floor(r() * 40) }, () => vocab[Math.floor(r() ** 2 * vocab.length)]).join(' '));
    const c = await Collection.open(new MemoryDirectory(), { schema: { dimension: 1, fields: { t: 'text' } }, sealRows: 256, autoMerge: false });
    for (let i = 0; i < texts.length; i += 100) await c.upsert(texts.slice(i, i + 100).map((t, j) => ({ id: `d${i + j}`, vector: [1], metadata: { t } })));
    const deleted = new Set(['d3', 'd300', 'd301', 'd699']);
    await c.delete([...deleted]);
    // the reference: every row ever written counts in the statistics (deleted ones too, as in Lucene)
    const analyzer = getAnalyzer('english');
    const rows = texts.map((t) => analyzer.analyze(t));
    const N = rows.length, avg = rows.reduce((a, t) => a + t.length, 0) / N;
    const reference = (q: string, k: number): [string, number][] => {
      const qt = new Map<string, number>();
      for (const t of analyzer.analyze(q)) qt.set(t, (qt.get(t) ?? 0) + 1);
      const scored: [string, number][] = [];
      rows.forEach((terms, i) => {
        if (deleted.has(`d${i}`)) return;
        let s = 0, any = false;
        for (const [t, n] of qt) {
          const tf = terms.filter((x) => x === t).length;
          const df = rows.filter((x) => x.includes(t)).length;
          if (df === 0) continue;
          if (tf > 0) { any = true; s += (n * bm25Idf(N, df) * tf) / (tf + 0.9 * (1 - 0.4 + (0.4 * scoredLength(terms.length)) / avg)); }
        }
        if (any) scored.push([`d${i}`, s]);
      });
      scored.sort((a, b) => b[1] - a[1] || Number(a[0].slice(1)) - Number(b[0].slice(1)));
      return scored.slice(0, k);
    };
    for (let q = 0; q < 40; q++) {
      const query = Array.from({ length: 1 + Math.floor(r() * 4) }, () => vocab[Math.floor(r() * vocab.length)]).join(' ');
      for (const k of [1, 5, 50]) {
        const got = await c.search({ text: query, k, includeMetadata: false });
        const want = reference(query, k);
        assert.equal(got.length, want.length, query);
        got.forEach((h, i) => {
          assert.ok(Math.abs(h.score - want[i][1]) < 1e-9, `${query}: score ${h.score} vs ${want[i][1]}`);
        });
        // the same scores in the same order; among equal scores, older rows first (segment order = id order here)
        assert.deepEqual(got.map((h) => h.id), want.map((w) => w[0]), `${query} k=${k}`);
        assert.deepEqual(pairs(got), pairs(await c.search({ text: query, k, exhaustive: true, includeMetadata: false })));
      }
    }
    await c.close();
  });

  it('persists postings: the same hits after close and reopen, and after compact (nothing deleted)', { skip: !haveCacm && 'no ../shared/data', timeout: 120_000 }, async () => {
    const ds = await loadCacm();
    const dir = new MemoryDirectory();
    const schema = { dimension: 2, fields: { body: 'text' as const } };
    let c = await Collection.open(dir, { schema, sealRows: 1000, autoMerge: false });
    await c.upsert(ds.corpus.slice(0, 2500).map((d, i) => ({ id: d.id, vector: [1, i % 3], metadata: { body: d.text } })));
    const queries = [...ds.queries.values()].slice(0, 20);
    const before = await Promise.all(queries.map((text) => c.search({ text, k: 10, includeMetadata: false })));
    await c.close(); // the mutable tail comes back from the WAL
    c = await Collection.open(dir, { sealRows: 1000, autoMerge: false });
    const reopened = await Promise.all(queries.map((text) => c.search({ text, k: 10, includeMetadata: false })));
    assert.deepEqual(reopened.map(pairs), before.map(pairs));
    await c.compact();
    assert.equal(c.info().segmentList.filter((s) => s.state === 'sealed').length, 1);
    const compacted = await Promise.all(queries.map((text) => c.search({ text, k: 10, includeMetadata: false })));
    // one segment now, the same statistics: the same scores (ties may reorder by the new ordinals)
    compacted.forEach((hits, q) => {
      assert.deepEqual(hits.map((h) => h.score), before[q].map((h) => h.score));
      assert.deepEqual(new Set(hits.map((h) => h.id)).size, hits.length);
    });
    const got = c.get(ds.corpus[5].id);
    assert.equal((got.metadata as { body: string }).body, ds.corpus[5].text);
    assert.deepEqual((await c.verify()).problems, []);
    await c.close();
  });

  it('a text field declared later indexes the mutable segment at once and older segments when merged', async () => {
    const c = await Collection.open(new MemoryDirectory(), { schema: { dimension: 1 }, autoMerge: false });
    await c.upsert([{ id: 'old', vector: [1], metadata: { body: 'an old zebra' } }]);
    await c.flush();
    await c.upsert([{ id: 'new', vector: [1], metadata: { body: 'a new zebra' } }]);
    await expectCode(c.search({ text: 'zebra' }), 'INVALID_ARGUMENT', /no text fields/);
    await c.addFields({ body: 'text' });
    assert.deepEqual((await c.search({ text: 'zebra', includeMetadata: false })).map((h) => h.id), ['new']);
    assert.equal((c.get('old').metadata as { body: string }).body, 'an old zebra');
    await c.compact();
    assert.deepEqual((await c.search({ text: 'zebra', includeMetadata: false })).map((h) => h.id).sort(), ['new', 'old']);
    await expectCode(c.addFields({ body: { type: 'text', analyzer: 'standard' } }), 'SCHEMA_MISMATCH', /analyzer/);
    await c.close();
  });

  it('rejects what it cannot search, with stable codes', async () => {
    const c = Collection.create({ dimension: 2, fields: { body: 'text', tag: 'keyword' } });
    await expectCode(c.upsert([{ id: 'a', vector: [1, 0], metadata: { body: 7 } }]), 'INVALID_ARGUMENT', /declared text/);
    await expectCode(c.search({ text: 'x', filter: { body: 'x' } }), 'INVALID_ARGUMENT', /text field/);
    await expectCode(c.search({ text: 5 as unknown as string }), 'INVALID_ARGUMENT', /text must be a string/);
    await expectCode(c.search({ text: 'x', fields: { tag: 1 } }), 'INVALID_ARGUMENT', /not a text field/);
    await expectCode(c.search({ text: 'x', fields: { body: 0 } }), 'INVALID_ARGUMENT', /boost/);
    await expectCode(c.search({ text: 'x', bm25: { k1: -1 } }), 'INVALID_ARGUMENT', /bm25.k1/);
    await expectCode(c.search({ text: 'x', nope: 1 } as never), 'INVALID_ARGUMENT', /unknown search request key/);
    await expectCode(c.search({ sparse: { a: 1 } }), 'INVALID_ARGUMENT', /sparse field/);
    await expectCode(c.search({ text: 'x', vector: [1, 0], fusion: { method: 'max' } as never }), 'INVALID_ARGUMENT', /fusion/);
    await expectCode(c.search({ k: 3 }), 'INVALID_ARGUMENT', /needs text, vector or sparse/);
    await expectCode((c.search as (...a: unknown[]) => Promise<unknown>)({ text: 'x' }, { k: 3 }), 'INVALID_ARGUMENT', /one argument/);
    const plain = Collection.create({ dimension: 2 });
    await expectCode(plain.search({ text: 'x' }), 'INVALID_ARGUMENT', /no text fields/);
    await expectCode(async () => Collection.create({ dimension: 2, fields: { b: { type: 'text', analyzer: 'klingon' } } }), 'UNKNOWN_SPEC', /klingon/);
    await expectCode(async () => Collection.create({ dimension: 2, fields: { b: { type: 'keyword', analyzer: 'english' } as never } }), 'INVALID_ARGUMENT', /unknown option "analyzer"/);
    // a text query that analyses to nothing finds nothing (stop words only)
    await c.upsert([{ id: 'a', vector: [1, 0], metadata: { body: 'the cat' } }]);
    assert.deepEqual(await c.search({ text: 'the of and' }), []);
    assert.deepEqual((await c.search({ text: 'cats' })).map((h) => h.id), ['a']);
  });

  it('rejects a damaged POSTINGS section as CORRUPT_FILE, never a crash', () => {
    const lists = gatherPostings(300, (i) => (i % 5 === 0 ? null : [`t${i % 7}`, `t${i % 3}`, 'common']));
    const bytes = encodePostings(lists)[0];
    const ok = decodePostings(bytes, 300, 'seg', 'f');
    assert.equal(ok.docFreq('common'), 240);
    const r = rng(3);
    let corrupt = 0;
    for (let trial = 0; trial < 300; trial++) {
      const b = bytes.slice();
      const at = 24 + Math.floor(r() * (b.length - 24));
      b[at] ^= 1 + Math.floor(r() * 255);
      try {
        const p = decodePostings(b, 300, 'seg', 'f');
        // decoded: walking every list either works or reports CORRUPT_FILE
        for (const t of ['common', 't0', 't1', 't2', 't3', 't4', 't5', 't6']) {
          const cur = p.cursor(t);
          if (cur) for (let n = 0; cur.doc !== 0x7fffffff && n < 1000; n++) cur.next();
        }
      } catch (e) {
        assert.ok(e instanceof QuiverError && (e.code === 'CORRUPT_FILE' || e.code === 'UNSUPPORTED_FORMAT'), String(e));
        corrupt++;
      }
    }
    assert.ok(corrupt > 100, `${corrupt} of 300 flips detected`);
    assert.throws(() => decodePostings(bytes.subarray(0, bytes.length - 3), 300, 'seg', 'f'), (e: unknown) => e instanceof QuiverError && e.code === 'CORRUPT_FILE');
  });
});

describe('hybrid search', () => {
  it('fusion arithmetic: RRF, min-max and z-score by hand', () => {
    const lists = [
      { name: 'text' as const, keys: ['a', 'b', 'c'], scores: [3, 2, 1] },
      { name: 'vector' as const, keys: ['c', 'a'], scores: [0.9, 0.1] },
    ];
    const rrf = fuse(lists, checkFusion({ method: 'rrf', k: 1 }), 10);
    // a: 1/2 + 1/3; c: 1/4 + 1/2; b: 1/3
    assert.deepEqual(rrf.map((e) => e.key), ['a', 'c', 'b']);
    assert.ok(Math.abs(rrf[0].score - (1 / 2 + 1 / 3)) < 1e-12);
    assert.deepEqual(rrf[1].ranks, { text: 3, vector: 1 });
    const mm = fuse(lists, checkFusion({ method: 'weighted', normalize: 'minmax', weights: { text: 1, vector: 2 } }), 10);
    // a: 1 + 2*0 = 1; b: 0.5 + 2*0 (missing: the list's lowest) = 0.5; c: 0 + 2*1 = 2
    assert.deepEqual(mm.map((e) => [e.key, e.score]), [['c', 2], ['a', 1], ['b', 0.5]]);
    const z = fuse(lists, checkFusion({ method: 'weighted', normalize: 'zscore' }), 10);
    const sd = Math.sqrt(2 / 3);
    assert.ok(Math.abs(z.find((e) => e.key === 'a')!.score - (1 / sd - 1)) < 1e-12);
    assert.deepEqual(checkFusion(undefined), { method: 'weighted', normalize: 'zscore' });
  });

  it('on CACM, hybrid (text + USE-Lite vectors, default fusion) beats both BM25 and dense in nDCG@10; hits carry ranks', { skip: !haveCacm && 'no ../shared/data', timeout: 120_000 }, async () => {
    const ds = await loadCacm();
    const cv = parseFvecs(readFileSync(`${CACM}/use512/corpus.fvecs`));
    const cids: string[] = JSON.parse(readFileSync(`${CACM}/use512/corpus.ids.json`, 'utf8'));
    const qv = parseFvecs(readFileSync(`${CACM}/use512/queries.fvecs`));
    const qids: string[] = JSON.parse(readFileSync(`${CACM}/use512/queries.ids.json`, 'utf8'));
    const row = new Map(cids.map((id, i) => [id, i]));
    const c = Collection.create({ dimension: 512, fields: { body: 'text' } });
    await c.upsert(ds.corpus.map((d) => ({ id: d.id, vector: cv.data.subarray(row.get(d.id)! * 512, (row.get(d.id)! + 1) * 512), metadata: { body: d.text } })));
    const runs = { bm25: new Map<string, string[]>(), dense: new Map<string, string[]>(), hybrid: new Map<string, string[]>() };
    for (const [qid, text] of ds.queries) {
      const q = qids.indexOf(qid);
      const vector = qv.data.subarray(q * 512, (q + 1) * 512);
      runs.bm25.set(qid, (await c.search({ text, k: 10, includeMetadata: false })).map((h) => h.id));
      runs.dense.set(qid, (await c.search({ vector, k: 10, includeMetadata: false })).map((h) => h.id));
      const hybrid = await c.search({ text, vector, k: 10, includeMetadata: false });
      for (const h of hybrid) assert.ok(h.ranks && (h.ranks.text !== undefined || h.ranks.vector !== undefined));
      runs.hybrid.set(qid, hybrid.map((h) => h.id));
    }
    const ndcg = (run: Map<string, string[]>) => evaluate(ds.qrels, run, ['ndcg@10']).mean['ndcg@10'];
    const [b, d, h] = [ndcg(runs.bm25), ndcg(runs.dense), ndcg(runs.hybrid)];
    assert.ok(h >= Math.max(b, d), `hybrid ${h.toFixed(4)} >= max(BM25 ${b.toFixed(4)}, dense ${d.toFixed(4)})`);
    // BM25 lands on Anserini's CACM regression (MAP 0.3123): the analyzer and scoring are Lucene's
    const full = new Map<string, string[]>();
    for (const [qid, text] of ds.queries) full.set(qid, (await c.search({ text, k: 1000, includeMetadata: false })).map((x) => x.id));
    const map = evaluate(ds.qrels, full, ['map']).mean.map;
    assert.ok(Math.abs(map - 0.3123) < 0.005, `BM25 MAP ${map.toFixed(4)}`);
  });

  it('embeds records and queries with the collection\'s own embedder; writes apply in call order while one waits for its embedding', async () => {
    let calls = 0;
    const slow: Embedder = {
      model: 'test-hash-4', dimension: 4, batchSize: 8,
      async embed(texts) {
        calls++;
        await new Promise((r) => setTimeout(r, 30));
        const out = new Float32Array(texts.length * 4);
        texts.forEach((t, i) => { for (let j = 0; j < t.length; j++) out[i * 4 + (t.charCodeAt(j) % 4)] += 1; });
        return out;
      },
      async close() {},
    };
    const schema = { dimension: 4, embedder: 'test-hash-4', fields: { body: { type: 'text' as const, embed: true } } };
    const c = Collection.create(schema, { embedder: slow });
    // the first write waits for its embedding; the second (a vector given) must still apply after it
    const first = c.upsert([{ id: 'a', metadata: { body: 'aaaa bbbb' } }]);
    const second = c.upsert([{ id: 'a', vector: [0, 0, 0, 1], metadata: { body: 'given' } }]);
    const third = c.delete(['zzz']);
    await Promise.all([first, second, third]);
    assert.deepEqual(Array.from(c.get('a').vector), [0, 0, 0, 1]);
    assert.equal((c.get('a').metadata as { body: string }).body, 'given');
    await c.upsert([{ id: 'b', metadata: { body: 'cccc' } }]);
    const { hits, stats } = await c.search({ text: 'cccc', k: 2, withStats: true });
    assert.equal(hits[0].id, 'b');
    assert.equal(stats.vector!.embedded, true);
    assert.deepEqual(stats.retrievers, ['text', 'vector']);
    assert.ok(calls >= 3);
    await expectCode(c.upsert([{ id: 'c', metadata: {} }]), 'INVALID_ARGUMENT', /no vector/);
    await expectCode(async () => Collection.create(schema, { embedder: { ...slow, model: 'other' } }), 'SCHEMA_MISMATCH', /same model/);
    await expectCode(async () => Collection.create(schema, { embedder: { ...slow, dimension: 8 } }), 'DIMENSION_MISMATCH');
    await expectCode(async () => Collection.create({ dimension: 4, fields: { body: { type: 'text', embed: true } } }), 'INVALID_ARGUMENT', /names no embedder/);
    await expectCode(async () => Collection.create({ dimension: 4, embedder: 'x', fields: { body: 'text' } }), 'INVALID_ARGUMENT', /embed: true/);
    // no embedder given nor registered for the model: a clear error when one is needed
    const orphan = Collection.create({ dimension: 4, embedder: 'nobody-1', fields: { body: { type: 'text', embed: true } } });
    await expectCode(orphan.upsert([{ id: 'x', metadata: { body: 'hello' } }]), 'MISSING_DEPENDENCY', /nobody-1/);
    await orphan.upsert([{ id: 'x', vector: [1, 0, 0, 0], metadata: { body: 'hello' } }]);
    assert.deepEqual((await orphan.search({ text: 'hello', embed: false })).map((h) => h.id), ['x']);
    // an embedding failure fails its own write only
    const failing: Embedder = { ...slow, embed: async () => { throw new QuiverError('IO_ERROR', 'model down'); } };
    const f = Collection.create(schema, { embedder: failing });
    const bad = f.upsert([{ id: 'p', metadata: { body: 'x' } }]);
    const good = f.upsert([{ id: 'q', vector: [1, 0, 0, 0], metadata: { body: 'y' } }]);
    await expectCode(bad, 'IO_ERROR');
    await good;
    assert.deepEqual([f.has('p'), f.has('q')], [false, true]);
  });
});
