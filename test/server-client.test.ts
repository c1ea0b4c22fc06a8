import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { QuiverClient, QuiverError, type VectorBatchBody } from '../src/client/index.js';
import { createKey, listen } from '../src/server/index.js';
import { tempServer } from './helpers/server.js';

// quiverdb/client end to end: a real server on a loopback port (search threads on), every
// method, a text + vector hybrid search, the server's errors as QuiverErrors (401, 403, 400, 404),
// failures of the transport as IO_ERROR, and the browser-safety of the module (no node: imports).

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Rejects with a QuiverError of `code`; returns it for more checks. */
async function rejectsWith(p: Promise<unknown>, code: string): Promise<QuiverError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof QuiverError, `a QuiverError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, the call resolved`);
}

describe('quiverdb/client against a running server', () => {
  const s = tempServer({ searchThreads: 2, limits: { queries: 10 } });
  let url = '';
  let client: QuiverClient;
  let reader: QuiverClient;
  const records = [
    { id: 'owl', vector: [1, 0, 0], metadata: { title: 'The owl hunts at night', tags: ['bird'], year: 2021 } },
    { id: 'hawk', vector: [0.9, 0.4, 0], metadata: { title: 'A hawk circles over the field by day', tags: ['bird'], year: 2022 } },
    { id: 'bat', vector: [0, 1, 0], metadata: { title: 'Bats hunt insects at night', tags: ['mammal'], year: 2023 } },
    { id: 'mole', vector: [0, 0, 1], metadata: { title: 'The mole digs tunnels', tags: ['mammal'], year: 2024 } },
  ];

  before(async () => {
    const admin = (await createKey(s.dir, { scope: 'read-write' })).key;
    const readOnly = (await createKey(s.dir, { scope: 'read-only' })).key;
    url = await listen(s.app, { port: 0 });
    client = new QuiverClient({ url, apiKey: admin });
    reader = new QuiverClient({ url: `${url}/`, apiKey: readOnly });
  });
  after(s.cleanup);

  it('health and readiness', async () => {
    assert.deepEqual(await client.health(), { status: 'ok' });
    assert.deepEqual(await new QuiverClient({ url }).ready(), { status: 'ready' }, 'public routes need no key');
  });

  it('creates, lists and describes a collection with text fields', async () => {
    const view = await client.createCollection('birds', { dimension: 3, metric: 'cosine', fields: { title: { type: 'text', analyzer: 'english' }, tags: 'keyword[]', year: 'number' } });
    assert.equal(view.name, 'birds');
    assert.deepEqual(view.schema.fields, { title: 'text', tags: 'keyword[]', year: 'number' });
    assert.equal(view.info.count, 0);
    assert.deepEqual(await client.listCollections(), { collections: [{ name: 'birds' }] });
    assert.deepEqual(await reader.listCollections(), { collections: [{ name: 'birds' }] });
    assert.equal((await client.getCollection('birds')).schema.dimension, 3);
  });

  it('upserts, reads back and deletes records', async () => {
    assert.deepEqual(await client.upsert('birds', records), { upserted: 4 });
    const owl = await reader.getRecord('birds', 'owl');
    assert.deepEqual(owl, { id: 'owl', vector: [1, 0, 0], metadata: records[0].metadata });
    await client.upsert('birds', [{ id: 'a/b c?', vector: [0.5, 0.5, 0.5] }]);
    assert.equal((await client.getRecord('birds', 'a/b c?')).id, 'a/b c?', 'ids are encoded in the path');
    assert.deepEqual(await client.deleteRecords('birds', ['a/b c?', 'never']), { deleted: 1 });
    await rejectsWith(client.getRecord('birds', 'a/b c?'), 'NOT_FOUND');
  });

  it('a text + vector hybrid search: hits ranked by fusion, with ranks and scores per retriever', async () => {
    const weighted = await reader.search('birds', { text: 'night', vector: [0, 1, 0], fusion: { method: 'weighted', normalize: 'zscore', weights: { vector: 2 } }, k: 2 });
    assert.equal(weighted.hits[0].id, 'bat', 'first by both');
    const res = await reader.search('birds', { text: 'hunting at night', vector: [1, 0.05, 0], fusion: { method: 'rrf', k: 60 }, k: 3, withStats: true });
    assert.equal(res.hits.length, 3);
    // owl is first in both lists (BM25: hunt + night; vector: the closest), so first fused
    assert.equal(res.hits[0].id, 'owl');
    assert.deepEqual(res.hits[0].ranks, { text: 1, vector: 1 });
    assert.equal(typeof res.hits[0].scores?.text, 'number');
    assert.ok(Math.abs(res.hits[0].score - 2 / 61) < 1e-12, 'RRF: 1/(60+1) from each list');
    assert.deepEqual(res.stats?.retrievers, ['text', 'vector']);
    assert.equal(res.stats?.fusion, 'rrf');
    assert.equal(res.stats?.vector?.embedded, false);
    const ids = new Set(res.hits.map((h) => h.id));
    assert.ok(ids.has('bat') && ids.has('hawk'), 'bat from the text, hawk from the vector');

    const filtered = await reader.search('birds', { text: 'night', filter: { tags: 'mammal' }, includeMetadata: false });
    assert.deepEqual(filtered.hits.map((h) => h.id), ['bat']);
    assert.equal(filtered.hits[0].metadata, undefined);
    assert.equal(filtered.stats, undefined);
  });

  it('batches: an array of requests, and vectors with shared options', async () => {
    const batch = await reader.search('birds', [{ text: 'tunnels' }, { vector: [0, 1, 0], k: 1 }, { text: 'day', vector: [1, 0, 0], k: 2, fusion: { method: 'rrf', weights: { text: 2 } } }]);
    assert.equal(batch.results.length, 3);
    assert.deepEqual(batch.results[0].hits.map((h) => h.id), ['mole']);
    assert.deepEqual(batch.results[1].hits.map((h) => h.id), ['bat']);
    assert.equal(batch.results[2].hits[0].id, 'hawk');
    const body: VectorBatchBody = { vectors: [[1, 0, 0], [0, 0, 1]], k: 1, filter: { year: { $gte: 2021 } } };
    const vectors = await reader.search('birds', body); // typed as a batch answer, not as one request's
    assert.deepEqual(vectors.results.map((r) => r.hits[0].id), ['owl', 'mole']);
  });

  it('flush, compact, metrics and the OpenAPI document', async () => {
    const flushed = await client.flush('birds');
    assert.ok(flushed.info.segmentList.some((seg) => seg.state === 'sealed'));
    const compacted = await client.compact('birds');
    assert.equal(compacted.info.count, 4);
    assert.match(await client.metrics(), /quiver_http_requests_total\{method="POST",route="\/collections\/:name\/search",status="200"\} \d+/);
    assert.match(String((await reader.openApi()).openapi), /^3\.1/);
  });

  it('the server\'s errors are QuiverErrors with its code, message and details: 401, 403, 400, 404', async () => {
    const anonymous = new QuiverClient({ url });
    const e401 = await rejectsWith(anonymous.listCollections(), 'UNAUTHENTICATED');
    assert.match(e401.message, /key/i);
    const wrongKey = new QuiverClient({ url, apiKey: 'qvk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    await rejectsWith(wrongKey.search('birds', { vector: [1, 0, 0] }), 'UNAUTHENTICATED');
    const e403 = await rejectsWith(reader.upsert('birds', [{ id: 'x', vector: [1, 0, 0] }]), 'PERMISSION_DENIED');
    assert.equal(typeof e403.details, 'object');
    await rejectsWith(reader.deleteCollection('birds'), 'PERMISSION_DENIED');
    const dim = await rejectsWith(client.upsert('birds', [{ id: 'x', vector: [1, 0] }]), 'DIMENSION_MISMATCH');
    assert.equal(dim.details.expected, 3);
    const k0 = await rejectsWith(client.search('birds', { vector: [1, 0, 0], k: 0 }), 'INVALID_ARGUMENT');
    assert.equal(k0.details.path, '/k');
    await rejectsWith(client.search('birds', { text: 'x', fusion: { method: 'rrf', weights: { text: -1 } } }), 'INVALID_ARGUMENT');
    await rejectsWith(client.search('birds', { text: 'x', fields: { tags: 1 } }), 'INVALID_ARGUMENT');
    await rejectsWith(client.getCollection('nope'), 'NOT_FOUND');
    await rejectsWith(client.getCollection('../etc'), 'INVALID_ARGUMENT');
    await rejectsWith(client.createCollection('birds', { dimension: 4 }), 'SCHEMA_MISMATCH');
  });

  it('the types are the server\'s schemas: a wrong request does not compile (and the server refuses it anyway)', async () => {
    // @ts-expect-error k is an integer, not a string
    await rejectsWith(client.search('birds', { vector: [1, 0, 0], k: 'five' }), 'INVALID_ARGUMENT');
    // @ts-expect-error there is no such fusion method
    await rejectsWith(client.search('birds', { text: 'owl', fusion: { method: 'borda' } }), 'INVALID_ARGUMENT');
    // @ts-expect-error records have id, vector and metadata only
    await rejectsWith(client.upsert('birds', [{ id: 'x', vector: [1, 0, 0], text: 'no' }]), 'INVALID_ARGUMENT');
    // @ts-expect-error a field type the server does not know
    await rejectsWith(client.createCollection('other', { dimension: 2, fields: { a: 'vector' } }), 'INVALID_ARGUMENT');
  });

  it('deletes the collection', async () => {
    assert.deepEqual(await client.deleteCollection('birds'), { name: 'birds', dropped: true });
    await rejectsWith(client.getCollection('birds'), 'NOT_FOUND');
  });
});

describe('quiverdb/client without a server', () => {
  it('an unreachable server, a timeout and a non-JSON error page are IO_ERROR; the caller\'s abort keeps its reason', async () => {
    // a port nothing listens on: the server above closed, and port 9 (discard) is not served on loopback
    await rejectsWith(new QuiverClient({ url: 'http://127.0.0.1:9' }).health(), 'IO_ERROR');
    // a fetch that never answers; it holds a timer, as a real request holds its socket (Node's
    // AbortSignal.timeout does not keep the process alive by itself)
    const hanging: typeof fetch = (_url, init) => new Promise((_resolve, reject) => {
      const held = setTimeout(() => reject(new Error('the abort never came')), 10_000);
      init?.signal?.addEventListener('abort', () => { clearTimeout(held); reject(init.signal!.reason); });
    });
    const slow = await rejectsWith(new QuiverClient({ url: 'http://quiver.invalid', fetch: hanging, timeoutMs: 30 }).health(), 'IO_ERROR');
    assert.equal(slow.details.timeoutMs, 30);
    const proxy: typeof fetch = async () => new Response('<html>Bad Gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } });
    const bad = await rejectsWith(new QuiverClient({ url: 'http://quiver.invalid', fetch: proxy }).listCollections(), 'IO_ERROR');
    assert.equal(bad.details.status, 502);
    const controller = new AbortController();
    const call = new QuiverClient({ url: 'http://quiver.invalid', fetch: hanging }).health({ signal: controller.signal });
    controller.abort(new Error('changed my mind'));
    await assert.rejects(call, /changed my mind/);
    assert.throws(() => new QuiverClient({ url: 'localhost:8080' }), { code: 'INVALID_ARGUMENT' });
  });

  it('sends the key as a bearer token and JSON bodies with their content type', async () => {
    const seen: { url: string; init: RequestInit }[] = [];
    const recorder: typeof fetch = async (u, init) => {
      seen.push({ url: String(u), init: init! });
      return new Response(JSON.stringify({ upserted: 1 }), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const c = new QuiverClient({ url: 'https://db.example/quiver/', apiKey: 'k1', fetch: recorder, headers: { 'x-trace': 't' } });
    assert.deepEqual(await c.upsert('docs', [{ id: 'a', vector: [1] }]), { upserted: 1 });
    assert.equal(seen[0].url, 'https://db.example/quiver/collections/docs/records');
    assert.equal(seen[0].init.method, 'POST');
    const headers = seen[0].init.headers as Record<string, string>;
    assert.equal(headers.authorization, 'Bearer k1');
    assert.equal(headers['content-type'], 'application/json');
    assert.equal(headers['x-trace'], 't');
    assert.deepEqual(JSON.parse(String(seen[0].init.body)), { records: [{ id: 'a', vector: [1] }] });
  });

  it('is browser-safe: no node: import anywhere in what src/client/index.ts loads at run time', () => {
    const visited = new Set<string>();
    const walk = (file: string) => {
      if (visited.has(file)) return;
      visited.add(file);
      const src = readFileSync(file, 'utf8');
      // type-only imports and re-exports compile away; everything else is loaded at run time
      for (const m of src.matchAll(/^\s*(import|export)\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) {
        const spec = m[2];
        assert.ok(spec.startsWith('.'), `${file.slice(ROOT.length)} imports ${spec} at run time`);
        walk(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      }
      assert.ok(!/\bimport\(\s*['"]node:/.test(src) && !/\brequire\(/.test(src), `${file.slice(ROOT.length)} loads a module dynamically`);
    };
    walk(join(ROOT, 'src/client/index.ts'));
    assert.deepEqual([...visited].map((f) => f.slice(ROOT.length)).sort(), ['/src/client/index.ts', '/src/errors.ts']);
  });

  it('is exported as quiverdb/client (package.json exports, built to dist/)', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    assert.deepEqual(pkg.exports['./client'], { types: './dist/client/index.d.ts', default: './dist/client/index.js' });
    assert.ok(existsSync(join(ROOT, 'dist/client/index.d.ts')), 'run `npm run build:ts` (the test runner does when sources changed)');
    const specifier = 'quiverdb/client'; // a variable: typechecking must not need dist/ built
    const mod = await import(specifier);
    assert.equal(typeof mod.QuiverClient, 'function');
    assert.equal(typeof mod.QuiverError, 'function');
  });
});
