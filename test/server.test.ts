import SwaggerParser from '@apidevtools/swagger-parser';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { Collection, type Hit } from '../src/node.js';
import { HTTP_STATUS } from '../src/server/index.js';
import { SearchGate, TokenBuckets, resolveLimits } from '../src/server/limits.js';
import { isLoopback } from '../src/server/listen.js';
import { call, tempServer } from './helpers/server.js';

// quiverdb/server through fastify.inject: every route's happy path, the error statuses, limits,
// durability of acknowledged writes, metrics and the OpenAPI document.

describe('server routes', () => {
  const { app, dir, cleanup } = tempServer({ limits: { batchSize: 100, k: 50, dimension: 64, bodyBytes: 64 << 10, queries: 8 } });
  after(cleanup);

  it('creates a collection (201), accepts the same schema again (200) and adds new fields (200)', async () => {
    const r = await call(app, 'PUT', '/collections/docs', { dimension: 4, metric: 'cosine', fields: { lang: 'keyword' } });
    assert.equal(r.statusCode, 201, r.body);
    assert.deepEqual(r.json().schema, { dimension: 4, metric: 'cosine', index: 'Flat', fields: { lang: 'keyword' } });
    assert.equal(r.json().name, 'docs');
    assert.equal(r.json().info.count, 0);
    assert.equal(r.json().info.directory, undefined, 'server paths are not shown');
    const again = await call(app, 'PUT', '/collections/docs', { dimension: 4, fields: { lang: 'keyword' } });
    assert.equal(again.statusCode, 200, again.body);
    const more = await call(app, 'PUT', '/collections/docs', { dimension: 4, fields: { year: { type: 'number' } } });
    assert.equal(more.statusCode, 200, more.body);
    assert.deepEqual(more.json().schema.fields, { lang: 'keyword', year: 'number' });
  });

  it('lists and describes collections', async () => {
    assert.equal((await call(app, 'PUT', '/collections/other', { dimension: 2, metric: 'l2', index: 'Flat,SQ8' })).statusCode, 201);
    const list = await call(app, 'GET', '/collections');
    assert.deepEqual(list.json(), { collections: [{ name: 'docs' }, { name: 'other' }] });
    const d = await call(app, 'GET', '/collections/other');
    assert.equal(d.statusCode, 200);
    assert.deepEqual(d.json().schema, { dimension: 2, metric: 'l2', index: 'Flat,SQ8', fields: {} });
    for (const key of ['count', 'segments', 'walBytes', 'indexBytes', 'kernelMemoryBytes', 'segmentList', 'recovery']) assert.ok(key in d.json().info, key);
  });

  it('upserts, reads back, searches (one query, a batch, a filter, stats) and deletes', async () => {
    const records = [
      { id: 'a', vector: [1, 0, 0, 0], metadata: { lang: 'en', year: 2020, note: { any: ['json'] } } },
      { id: 'b', vector: [0, 1, 0, 0], metadata: { lang: 'fr', year: 2024 } },
      { id: 'c/with slash', vector: [0.9, 0.1, 0, 0] },
    ];
    const up = await call(app, 'POST', '/collections/docs/records', { records });
    assert.equal(up.statusCode, 200, up.body);
    assert.deepEqual(up.json(), { upserted: 3 });

    const rec = await call(app, 'GET', `/collections/docs/records/${encodeURIComponent('c/with slash')}`);
    assert.equal(rec.statusCode, 200, rec.body);
    assert.equal(rec.json().id, 'c/with slash');
    assert.equal(rec.json().vector.length, 4);
    assert.ok(Math.abs(rec.json().vector[0] - 0.9) < 1e-6);
    const a = await call(app, 'GET', '/collections/docs/records/a');
    assert.deepEqual(a.json().metadata, { lang: 'en', year: 2020, note: { any: ['json'] } });

    const one = await call(app, 'POST', '/collections/docs/search', { vector: [1, 0.05, 0, 0], k: 2, withStats: true });
    assert.equal(one.statusCode, 200, one.body);
    assert.deepEqual(one.json().hits.map((h: { id: string }) => h.id), ['a', 'c/with slash']);
    assert.ok(one.json().hits[0].score > one.json().hits[1].score);
    assert.equal(one.json().hits[0].metadata.lang, 'en');
    assert.deepEqual(one.json().hits[0].ranks, { vector: 1 });
    assert.equal(one.json().hits[0].scores.vector, one.json().hits[0].score);
    assert.deepEqual(one.json().stats.retrievers, ['vector']);
    assert.equal(one.json().stats.vector.scanned, 3);
    assert.equal(one.json().stats.vector.embedded, false);
    assert.equal(one.json().results, undefined);

    const batch = await call(app, 'POST', '/collections/docs/search', { vectors: [[1, 0, 0, 0], [0, 1, 0, 0]], k: 1, includeVector: true, includeMetadata: false });
    assert.equal(batch.statusCode, 200, batch.body);
    assert.deepEqual(batch.json().results.map((r: { hits: { id: string }[] }) => r.hits[0].id), ['a', 'b']);
    assert.deepEqual(batch.json().results[1].hits[0].vector, [0, 1, 0, 0]);
    assert.equal(batch.json().results[1].hits[0].metadata, undefined);

    const filtered = await call(app, 'POST', '/collections/docs/search', { vector: [1, 0, 0, 0], k: 10, filter: { year: { $gte: 2021 } }, withStats: true, exact: true });
    assert.equal(filtered.statusCode, 200, filtered.body);
    assert.deepEqual(filtered.json().hits.map((h: { id: string }) => h.id), ['b']);
    assert.equal(filtered.json().stats.vector.filter.matched, 1);

    const del = await call(app, 'POST', '/collections/docs/records/delete', { ids: ['b', 'never-there'] });
    assert.deepEqual(del.json(), { deleted: 1 });
    assert.equal((await call(app, 'GET', '/collections/docs/records/b')).statusCode, 404);
  });

  it('flushes and compacts, answering with the collection afterwards', async () => {
    const f = await call(app, 'POST', '/collections/docs/flush');
    assert.equal(f.statusCode, 200, f.body);
    assert.ok(f.json().info.segmentList.some((s: { state: string; rows: number }) => s.state === 'sealed' && s.rows > 0));
    const c = await call(app, 'POST', '/collections/docs/compact');
    assert.equal(c.statusCode, 200, c.body);
    assert.equal(c.json().info.count, 2);
    const hits = await call(app, 'POST', '/collections/docs/search', { vector: [1, 0, 0, 0], k: 5 });
    assert.deepEqual(hits.json().hits.map((h: { id: string }) => h.id), ['a', 'c/with slash']);
  });

  it('drops a collection: its directory is gone and its name is free again', async () => {
    const d = await call(app, 'DELETE', '/collections/other');
    assert.deepEqual(d.json(), { name: 'other', dropped: true });
    assert.equal((await call(app, 'GET', '/collections/other')).statusCode, 404);
    assert.equal((await call(app, 'DELETE', '/collections/other')).statusCode, 404);
    assert.deepEqual((await call(app, 'GET', '/collections')).json(), { collections: [{ name: 'docs' }] });
    const again = await call(app, 'PUT', '/collections/other', { dimension: 3 });
    assert.equal(again.statusCode, 201);
    assert.equal(again.json().info.count, 0);
  });

  it('a score that overflows float32 is sent as the largest finite number (JSON has no Infinity)', async () => {
    assert.equal((await call(app, 'PUT', '/collections/huge', { dimension: 2, metric: 'dot' })).statusCode, 201);
    await call(app, 'POST', '/collections/huge/records', { records: [{ id: 'h', vector: [3e38, 3e38] }] });
    const r = await call(app, 'POST', '/collections/huge/search', { vector: [3e38, 3e38] });
    assert.equal(r.json().hits[0].score, Number.MAX_VALUE);
    assert.equal((await call(app, 'DELETE', '/collections/huge')).statusCode, 200);
  });

  it('answers health, readiness and metrics', async () => {
    assert.deepEqual((await call(app, 'GET', '/healthz')).json(), { status: 'ok' });
    const ready = await call(app, 'GET', '/readyz');
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json(), { status: 'ready' });
    const m = await call(app, 'GET', '/metrics');
    assert.equal(m.statusCode, 200);
    assert.match(m.headers['content-type'] as string, /text\/plain/);
    assert.match(m.body, /quiver_http_request_duration_seconds_bucket\{[^}]*route="\/collections\/:name\/search"/);
    assert.match(m.body, /quiver_http_requests_total\{method="POST",route="\/collections\/:name\/records",status="200"\} \d+/);
    assert.match(m.body, /quiver_collection_records\{collection="docs"\} 2/);
    assert.match(m.body, /quiver_collection_wal_bytes\{collection="docs"\} \d+/);
    assert.match(m.body, /quiver_collection_segments\{collection="docs"\} \d+/);
    assert.match(m.body, /quiver_collection_index_bytes\{collection="docs"\} \d+/);
  });

  describe('errors: a 4xx with the QuiverError code, never a 5xx for a client mistake', () => {
    const cases: [string, string, string, unknown, number, string][] = [
      ['dimension mismatch', 'POST', '/collections/docs/records', { records: [{ id: 'x', vector: [1, 2] }] }, 400, 'DIMENSION_MISMATCH'],
      ['a string in a vector', 'POST', '/collections/docs/search', { vector: [1, '2', 0, 0] }, 400, 'INVALID_VECTOR'],
      ['zero vector under cosine', 'POST', '/collections/docs/records', { records: [{ id: 'z', vector: [0, 0, 0, 0] }] }, 400, 'INVALID_VECTOR'],
      ['a value float32 cannot hold', 'POST', '/collections/docs/records', { records: [{ id: 'z', vector: [1e39, 0, 0, 0] }] }, 400, 'INVALID_VECTOR'],
      ['unknown field in a record', 'POST', '/collections/docs/records', { records: [{ id: 'x', vector: [1, 0, 0, 0], extra: 1 }] }, 400, 'INVALID_ARGUMENT'],
      ['unknown search option', 'POST', '/collections/docs/search', { vector: [1, 0, 0, 0], query: 'hello' }, 400, 'INVALID_ARGUMENT'],
      ['text on a collection without text fields or embedder', 'POST', '/collections/docs/search', { text: 'hello' }, 400, 'INVALID_ARGUMENT'],
      ['sparse on a collection without sparse fields', 'POST', '/collections/docs/search', { sparse: { a: 1 } }, 400, 'INVALID_ARGUMENT'],
      ['a record without a vector where nothing embeds', 'POST', '/collections/docs/records', { records: [{ id: 'nv', metadata: { lang: 'en' } }] }, 400, 'INVALID_ARGUMENT'],
      ['k above the limit', 'POST', '/collections/docs/search', { vector: [1, 0, 0, 0], k: 51 }, 400, 'INVALID_ARGUMENT'],
      ['k = 0', 'POST', '/collections/docs/search', { vector: [1, 0, 0, 0], k: 0 }, 400, 'INVALID_ARGUMENT'],
      ['k a string', 'POST', '/collections/docs/search', { vector: [1, 0, 0, 0], k: '5' }, 400, 'INVALID_ARGUMENT'],
      ['recall above 1', 'POST', '/collections/docs/search', { vector: [1, 0, 0, 0], recall: 1.5 }, 400, 'INVALID_ARGUMENT'],
      ['neither vector nor vectors', 'POST', '/collections/docs/search', { k: 3 }, 400, 'INVALID_ARGUMENT'],
      ['both vector and vectors', 'POST', '/collections/docs/search', { vector: [1, 0, 0, 0], vectors: [[1, 0, 0, 0]] }, 400, 'INVALID_ARGUMENT'],
      ['too many queries', 'POST', '/collections/docs/search', { vectors: Array.from({ length: 9 }, () => [1, 0, 0, 0]) }, 413, 'TOO_LARGE'],
      ['vector longer than the server allows', 'POST', '/collections/docs/search', { vector: new Array(65).fill(1) }, 400, 'INVALID_ARGUMENT'],
      ['filter on an undeclared field', 'POST', '/collections/docs/search', { vector: [1, 0, 0, 0], filter: { nope: 1 } }, 400, 'INVALID_ARGUMENT'],
      ['filter of the wrong type', 'POST', '/collections/docs/search', { vector: [1, 0, 0, 0], filter: { year: 'x' } }, 400, 'INVALID_ARGUMENT'],
      ['declared field of the wrong type', 'POST', '/collections/docs/records', { records: [{ id: 'x', vector: [1, 0, 0, 0], metadata: { year: 'then' } }] }, 400, 'INVALID_ARGUMENT'],
      ['too many records', 'POST', '/collections/docs/records', { records: Array.from({ length: 101 }, (_, i) => ({ id: `r${i}`, vector: [1, 0, 0, 0] })) }, 413, 'TOO_LARGE'],
      ['too many ids', 'POST', '/collections/docs/records/delete', { ids: Array.from({ length: 101 }, (_, i) => `r${i}`) }, 413, 'TOO_LARGE'],
      ['empty id', 'POST', '/collections/docs/records/delete', { ids: [''] }, 400, 'INVALID_ARGUMENT'],
      ['another dimension for an existing name', 'PUT', '/collections/docs', { dimension: 8 }, 409, 'SCHEMA_MISMATCH'],
      ['a field retyped', 'PUT', '/collections/docs', { dimension: 4, fields: { lang: 'number' } }, 409, 'SCHEMA_MISMATCH'],
      ['an unknown index spec', 'PUT', '/collections/bad-spec', { dimension: 4, index: 'HNSW16,NOPE' }, 400, 'UNKNOWN_SPEC'],
      ['a dimension above the server limit', 'PUT', '/collections/big', { dimension: 65 }, 400, 'INVALID_ARGUMENT'],
      ['a field of unknown type', 'PUT', '/collections/f', { dimension: 4, fields: { t: 'vector' } }, 400, 'INVALID_ARGUMENT'],
      ['an uppercase name', 'PUT', '/collections/Docs', { dimension: 4 }, 400, 'INVALID_ARGUMENT'],
      ['a traversal name', 'GET', '/collections/..%2F..%2Fetc', undefined, 400, 'INVALID_ARGUMENT'],
      ['a hidden name', 'GET', '/collections/.keys.json', undefined, 400, 'INVALID_ARGUMENT'],
      ['a missing collection', 'POST', '/collections/missing/search', { vector: [1] }, 404, 'NOT_FOUND'],
      ['a missing record', 'GET', '/collections/docs/records/nope', undefined, 404, 'NOT_FOUND'],
      ['an unknown route', 'GET', '/nope', undefined, 404, 'NOT_FOUND'],
      ['a wrong method', 'PATCH', '/collections/docs', undefined, 404, 'NOT_FOUND'],
    ];
    for (const [what, method, url, body, status, code] of cases) {
      it(`${what}: ${status} ${code}`, async () => {
        const r = await call(app, method as 'GET', url, body);
        assert.equal(r.statusCode, status, r.body);
        assert.equal(r.json().error.code, code, r.body);
        assert.equal(typeof r.json().error.message, 'string');
        assert.equal(typeof r.json().error.details, 'object');
        assert.ok(!r.body.includes(dir), `the data directory leaks: ${r.body}`);
      });
    }

    it('malformed JSON, an empty body, a non-JSON media type and an oversized body', async () => {
      const raw = (payload: string, type = 'application/json') => app.inject({ method: 'POST', url: '/collections/docs/search', headers: { 'content-type': type }, payload });
      let r = await raw('{"vector": [1, 0, 0');
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().error.code, 'MALFORMED_INPUT');
      r = await raw('{"vector": [NaN, 0, 0, 0]}');
      assert.equal(r.json().error.code, 'MALFORMED_INPUT');
      r = await raw('{"vector": [1e400, 0, 0, 0]}'); // parses to Infinity
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().error.code, 'INVALID_VECTOR');
      r = await raw(''); // no body: the schema asks for one
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().error.code, 'INVALID_ARGUMENT');
      r = await raw('   ');
      assert.equal(r.json().error.code, 'MALFORMED_INPUT');
      r = await raw('{"__proto__": {"k": 1}, "vector": [1, 0, 0, 0]}');
      assert.equal(r.statusCode, 400);
      r = await raw('vector=1', 'application/x-www-form-urlencoded');
      assert.equal(r.statusCode, 415);
      assert.equal(r.json().error.code, 'UNSUPPORTED_FORMAT');
      r = await raw(JSON.stringify({ vector: new Array(20_000).fill(0.123456789) }));
      assert.equal(r.statusCode, 413);
      assert.equal(r.json().error.code, 'TOO_LARGE');
    });

    it('a rejected batch changes nothing (all or nothing)', async () => {
      const before = (await call(app, 'GET', '/collections/docs')).json().info.count;
      const r = await call(app, 'POST', '/collections/docs/records', { records: [{ id: 'new1', vector: [1, 0, 0, 0] }, { id: 'new2', vector: [1, 0] }] });
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().error.details.index, 1);
      assert.equal((await call(app, 'GET', '/collections/docs')).json().info.count, before);
      assert.equal((await call(app, 'GET', '/collections/docs/records/new1')).statusCode, 404);
    });

    it('every code has a status; client codes are 4xx', () => {
      for (const code of ['INVALID_ARGUMENT', 'DIMENSION_MISMATCH', 'INVALID_VECTOR', 'MALFORMED_INPUT', 'UNKNOWN_SPEC', 'NOT_FOUND', 'SCHEMA_MISMATCH', 'DUPLICATE_ID', 'UNAUTHENTICATED', 'PERMISSION_DENIED', 'TOO_LARGE', 'RATE_LIMITED', 'LOCKED', 'READ_ONLY'] as const) {
        assert.ok(HTTP_STATUS[code] >= 400 && HTTP_STATUS[code] < 500, code);
      }
      assert.equal(HTTP_STATUS.INTERNAL, 500);
    });
  });

  describe('durability: a 2xx write is on disk', () => {
    it('a reader opening the directory beside the server finds every acknowledged record', async () => {
      const records = Array.from({ length: 50 }, (_, i) => ({ id: `d${i}`, vector: [1, i, 0, 0], metadata: { year: i } }));
      const r = await call(app, 'POST', '/collections/docs/records', { records });
      assert.equal(r.statusCode, 200);
      assert.equal((await call(app, 'POST', '/collections/docs/records/delete', { ids: ['d0'] })).statusCode, 200);
      // nothing is closed or flushed: the records are in the write-ahead log, which a reader replays
      const reader = await Collection.open(join(dir, 'docs'), { readOnly: true });
      try {
        assert.equal(reader.has('d0'), false);
        for (let i = 1; i < 50; i++) assert.deepEqual(reader.get(`d${i}`).metadata, { year: i });
      } finally {
        await reader.close();
      }
    });
  });

  it('the OpenAPI document is valid OpenAPI 3 and has every route', async () => {
    const r = await call(app, 'GET', '/openapi.json');
    assert.equal(r.statusCode, 200);
    const doc = r.json();
    assert.match(doc.openapi, /^3\./);
    await SwaggerParser.validate(structuredClone(doc));
    const routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort();
    assert.deepEqual(routes, [
      'DELETE /collections/{name}', 'GET /collections', 'GET /collections/{name}', 'GET /collections/{name}/records/{id}',
      'GET /healthz', 'GET /metrics', 'GET /readyz', 'POST /collections/{name}/compact', 'POST /collections/{name}/flush',
      'POST /collections/{name}/records', 'POST /collections/{name}/records/delete', 'POST /collections/{name}/search',
      'PUT /collections/{name}',
    ]);
    const search = doc.paths['/collections/{name}/search'].post;
    const [request, batch, vectors] = search.requestBody.content['application/json'].schema.anyOf;
    assert.equal(request.properties.k.maximum, 50);
    for (const key of ['text', 'vector', 'sparse', 'sparseField', 'fields', 'fusion', 'depth', 'bm25', 'exhaustive', 'sparseMode', 'filter', 'recall']) assert.ok(request.properties[key], key);
    assert.equal(request.properties.text.maxLength, 65_536);
    assert.equal(request.properties.sparse.maxProperties, 4096);
    assert.equal(request.properties.fusion.discriminator.propertyName, 'method');
    assert.deepEqual(request.properties.fusion.oneOf.map((b: { properties: { method: { enum: string[] } } }) => b.properties.method.enum), [['rrf'], ['weighted']]);
    assert.equal(batch.type, 'array');
    assert.equal(batch.maxItems, 8);
    assert.ok(vectors.properties.vectors);
    const hit = search.responses['200'].content['application/json'].schema.properties.hits.items;
    assert.ok(hit.properties.ranks && hit.properties.scores);
    const create = doc.paths['/collections/{name}'].put.requestBody.content['application/json'].schema;
    assert.ok(create.properties.embedder);
    assert.ok(search.responses['4XX'] ?? search.responses['4xx']);
  });
});

describe('server: text, sparse and hybrid search', () => {
  const { app, dir, cleanup } = tempServer({ limits: { queries: 4, k: 50 } });
  after(cleanup);
  const schema = { dimension: 4, metric: 'cosine' as const, fields: { title: 'text' as const, body: { type: 'text' as const, analyzer: 'english' }, terms: 'sparse' as const, lang: 'keyword' as const } };
  const records = [
    { id: 'p1', vector: [1, 0, 0, 0], metadata: { title: 'Rust ownership and borrowing', body: 'memory safety without garbage collection', terms: { rust: 2, memory: 1 }, lang: 'en' } },
    { id: 'p2', vector: [0, 1, 0, 0], metadata: { title: 'Garbage collection in Java', body: 'generational collectors and their pauses', terms: { java: 2, gc: 1.5 }, lang: 'en' } },
    { id: 'p3', vector: [0, 0, 1, 0], metadata: { title: 'Cooking pasta', body: 'boil water, add salt, then the pasta', terms: { pasta: 3 }, lang: 'it' } },
    { id: 'p4', vector: [0.7, 0.7, 0, 0], metadata: { title: 'Memory management', body: 'garbage collection versus ownership', terms: { memory: 2, gc: 1 }, lang: 'en' } },
  ];
  // the library in process, holding the same records: the server must answer exactly as it does
  let library: Collection;
  before(async () => {
    library = Collection.create({ ...schema, fields: { ...schema.fields, summary: { type: 'text', analyzer: 'standard' } } }); // the field the test below adds
    await library.upsert(records);
  });

  const requests: Record<string, unknown>[] = [
    { text: 'garbage collection', withStats: true },
    { text: 'garbage collection', fields: { title: 2 } },
    { sparse: { memory: 1, gc: 1 } },
    { sparse: { gc: 1 }, sparseField: 'terms', sparseMode: 'exact', includeMetadata: false },
    { text: 'memory', vector: [1, 0.2, 0, 0], fusion: { method: 'rrf', k: 10 } },
    { text: 'memory', vector: [1, 0.2, 0, 0], sparse: { gc: 1 }, fusion: { method: 'weighted', normalize: 'minmax', weights: { text: 2 } }, k: 3, withStats: true },
    { text: 'garbage', filter: { lang: 'en' }, bm25: { k1: 1.2, b: 0.75 }, exhaustive: true, depth: 50 },
    { vector: [0, 0, 1, 0], k: 2, includeVector: true },
  ];
  /** What the library answers, as JSON carries it (vectors as arrays, hits without undefined parts). */
  const libraryAnswer = async (r: Record<string, unknown>) => {
    const { hits, stats } = await library.search({ ...r, withStats: true } as never) as unknown as { hits: Hit[]; stats: unknown };
    const plain = hits.map((h) => JSON.parse(JSON.stringify({ ...h, vector: h.vector ? Array.from(h.vector) : undefined })));
    return r.withStats ? { hits: plain, stats } : { hits: plain };
  };

  it('creates a collection with text and sparse fields and takes records with text and sparse values', async () => {
    const c = await call(app, 'PUT', '/collections/lit', schema);
    assert.equal(c.statusCode, 201, c.body);
    assert.deepEqual(c.json().schema.fields, { title: 'text', body: 'text', terms: 'sparse', lang: 'keyword' });
    assert.deepEqual(c.json().schema.analyzers, { title: 'english', body: 'english' });
    const again = await call(app, 'PUT', '/collections/lit', { ...schema, fields: { ...schema.fields, summary: { type: 'text', analyzer: 'standard' } } });
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual(again.json().schema.analyzers, { title: 'english', body: 'english', summary: 'standard' });
    const up = await call(app, 'POST', '/collections/lit/records', { records });
    assert.equal(up.statusCode, 200, up.body);
    assert.deepEqual((await call(app, 'GET', '/collections/lit/records/p2')).json().metadata, records[1].metadata);
  });

  it('answers text, sparse, dense and fused requests exactly as the library, with ranks and scores per retriever', async () => {
    for (const r of requests) {
      const res = await call(app, 'POST', '/collections/lit/search', r);
      assert.equal(res.statusCode, 200, `${JSON.stringify(r)}: ${res.body}`);
      assert.deepEqual(res.json(), await libraryAnswer(r), JSON.stringify(r));
    }
    const text = (await call(app, 'POST', '/collections/lit/search', requests[0])).json();
    assert.deepEqual(new Set(text.hits.map((h: { id: string }) => h.id)), new Set(['p1', 'p2', 'p4']), 'BM25 finds the documents holding the terms');
    assert.deepEqual(text.hits.map((h: { ranks: { text: number } }) => h.ranks.text), [1, 2, 3]);
    assert.deepEqual(text.stats.retrievers, ['text']);
    assert.ok(text.stats.text.terms >= 2);
    const hybrid = (await call(app, 'POST', '/collections/lit/search', requests[5])).json();
    assert.deepEqual(hybrid.stats.retrievers, ['text', 'vector', 'sparse']);
    assert.equal(hybrid.stats.fusion, 'weighted');
    assert.equal(hybrid.hits.length, 3);
    assert.ok(hybrid.hits.every((h: { ranks: object; scores: object }) => Object.keys(h.ranks).length > 0 && Object.keys(h.scores).length === Object.keys(h.ranks).length));
  });

  it('answers a batch of requests (an array) with one result per request, in order', async () => {
    const batch = requests.slice(0, 4);
    const res = await call(app, 'POST', '/collections/lit/search', batch);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().hits, undefined);
    assert.deepEqual(res.json().results, await Promise.all(batch.map(libraryAnswer)));
    const vectors = await call(app, 'POST', '/collections/lit/search', { vectors: [[1, 0, 0, 0], [0, 0, 1, 0]], k: 1, withStats: true, includeMetadata: false });
    assert.equal(vectors.statusCode, 200, vectors.body);
    assert.deepEqual(vectors.json().results.map((r: { hits: { id: string; ranks: unknown }[] }) => [r.hits[0].id, r.hits[0].ranks]), [['p1', { vector: 1 }], ['p3', { vector: 1 }]]);
    assert.deepEqual(vectors.json().results[1].stats.retrievers, ['vector']);
  });

  describe('refusals: 4xx with the QuiverError code', () => {
    const terms = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, 1]));
    const S = '/collections/lit/search';
    const cases: [string, string, string, unknown, number, string][] = [
      ['text longer than MAX_QUERY_TEXT', 'POST', S, { text: 'x'.repeat(65_537) }, 400, 'INVALID_ARGUMENT'],
      ['text not a string', 'POST', S, { text: ['a'] }, 400, 'INVALID_ARGUMENT'],
      ['more sparse terms than MAX_SPARSE_TERMS', 'POST', S, { sparse: terms(4097) }, 400, 'INVALID_ARGUMENT'],
      ['a negative sparse weight', 'POST', S, { sparse: { gc: -1 } }, 400, 'INVALID_ARGUMENT'],
      ['a sparse weight that is a string', 'POST', S, { sparse: { gc: '1' } }, 400, 'INVALID_ARGUMENT'],
      ['an empty sparse term', 'POST', S, { sparse: { '': 1 } }, 400, 'INVALID_ARGUMENT'],
      ['a sparse term longer than 256', 'POST', S, { sparse: { ['t'.repeat(257)]: 1 } }, 400, 'INVALID_ARGUMENT'],
      ['a sparse vector as an array', 'POST', S, { sparse: [1, 2] }, 400, 'INVALID_ARGUMENT'],
      ['an unknown sparse field', 'POST', S, { sparse: { gc: 1 }, sparseField: 'nope' }, 400, 'INVALID_ARGUMENT'],
      ['sparseField without sparse', 'POST', S, { text: 'gc', sparseField: 'terms' }, 400, 'INVALID_ARGUMENT'],
      ['an unknown sparseMode', 'POST', S, { sparse: { gc: 1 }, sparseMode: 'fast' }, 400, 'INVALID_ARGUMENT'],
      ['an unknown fusion method', 'POST', S, { text: 'gc', vector: [1, 0, 0, 0], fusion: { method: 'borda' } }, 400, 'INVALID_ARGUMENT'],
      ['fusion without a method', 'POST', S, { text: 'gc', fusion: { k: 60 } }, 400, 'INVALID_ARGUMENT'],
      ['an rrf fusion with normalize', 'POST', S, { text: 'gc', fusion: { method: 'rrf', normalize: 'zscore' } }, 400, 'INVALID_ARGUMENT'],
      ['an rrf k below 0', 'POST', S, { text: 'gc', fusion: { method: 'rrf', k: -1 } }, 400, 'INVALID_ARGUMENT'],
      ['an unknown normalization', 'POST', S, { text: 'gc', fusion: { method: 'weighted', normalize: 'l2' } }, 400, 'INVALID_ARGUMENT'],
      ['a weight for an unknown retriever', 'POST', S, { text: 'gc', fusion: { method: 'rrf', weights: { bm25: 1 } } }, 400, 'INVALID_ARGUMENT'],
      ['a negative weight', 'POST', S, { text: 'gc', fusion: { method: 'weighted', weights: { text: -1 } } }, 400, 'INVALID_ARGUMENT'],
      ['fusion as a string', 'POST', S, { text: 'gc', fusion: 'rrf' }, 400, 'INVALID_ARGUMENT'],
      ['bm25 b above 1', 'POST', S, { text: 'gc', bm25: { b: 2 } }, 400, 'INVALID_ARGUMENT'],
      ['an unknown bm25 parameter', 'POST', S, { text: 'gc', bm25: { k3: 1 } }, 400, 'INVALID_ARGUMENT'],
      ['depth 0', 'POST', S, { text: 'gc', depth: 0 }, 400, 'INVALID_ARGUMENT'],
      ['depth above the limit', 'POST', S, { text: 'gc', depth: 1001 }, 400, 'INVALID_ARGUMENT'],
      ['a boost for a field that is not a text field', 'POST', S, { text: 'gc', fields: { lang: 1 } }, 400, 'INVALID_ARGUMENT'],
      ['a boost of 0', 'POST', S, { text: 'gc', fields: { title: 0 } }, 400, 'INVALID_ARGUMENT'],
      ['exhaustive not a boolean', 'POST', S, { text: 'gc', exhaustive: 'yes' }, 400, 'INVALID_ARGUMENT'],
      ['embed not a boolean', 'POST', S, { text: 'gc', embed: 1 }, 400, 'INVALID_ARGUMENT'],
      ['a request with nothing to search', 'POST', S, { k: 3, fusion: { method: 'rrf' } }, 400, 'INVALID_ARGUMENT'],
      ['a vector batch with text', 'POST', S, { vectors: [[1, 0, 0, 0]], text: 'gc' }, 400, 'INVALID_ARGUMENT'],
      ['more requests than the limit', 'POST', S, Array.from({ length: 5 }, () => ({ text: 'gc' })), 413, 'TOO_LARGE'],
      ['a bad request inside a batch', 'POST', S, [{ text: 'gc' }, { text: 'gc', k: 0 }], 400, 'INVALID_ARGUMENT'],
      ['a request inside a batch the engine refuses', 'POST', S, [{ text: 'gc' }, { text: 'gc', fields: { nope: 1 } }], 400, 'INVALID_ARGUMENT'],
      ['a text value that is a number', 'POST', '/collections/lit/records', { records: [{ id: 'x', vector: [1, 0, 0, 0], metadata: { title: 5 } }] }, 400, 'INVALID_ARGUMENT'],
      ['a sparse value with a negative weight', 'POST', '/collections/lit/records', { records: [{ id: 'x', vector: [1, 0, 0, 0], metadata: { terms: { a: -1 } } }] }, 400, 'INVALID_ARGUMENT'],
      ['a sparse value with too many terms', 'POST', '/collections/lit/records', { records: [{ id: 'x', vector: [1, 0, 0, 0], metadata: { terms: terms(4097) } }] }, 400, 'INVALID_ARGUMENT'],
      ['a record without a vector where nothing embeds', 'POST', '/collections/lit/records', { records: [{ id: 'x', metadata: { title: 'no vector' } }] }, 400, 'INVALID_ARGUMENT'],
      ['text options on a keyword field', 'PUT', '/collections/n1', { dimension: 4, fields: { a: { type: 'keyword', analyzer: 'english' } } }, 400, 'INVALID_ARGUMENT'],
      ['an unknown analyzer', 'PUT', '/collections/n1', { dimension: 4, fields: { a: { type: 'text', analyzer: 'klingon' } } }, 400, 'UNKNOWN_SPEC'],
      ['an unknown field option', 'PUT', '/collections/n1', { dimension: 4, fields: { a: { type: 'text', stem: true } } }, 400, 'INVALID_ARGUMENT'],
      ['embed: true without an embedder', 'PUT', '/collections/n1', { dimension: 4, fields: { a: { type: 'text', embed: true } } }, 400, 'INVALID_ARGUMENT'],
      ['an embedder without a field to embed', 'PUT', '/collections/n1', { dimension: 512, embedder: 'use-lite-512', fields: { a: 'text' } }, 400, 'INVALID_ARGUMENT'],
      ['an embedder of another dimension', 'PUT', '/collections/n1', { dimension: 4, embedder: 'use-lite-512', fields: { a: { type: 'text', embed: true } } }, 400, 'DIMENSION_MISMATCH'],
      ['an embedder the server does not have', 'PUT', '/collections/n1', { dimension: 4, embedder: 'acme-embed', fields: { a: { type: 'text', embed: true } } }, 400, 'INVALID_ARGUMENT'],
      ['an embedder id with spaces', 'PUT', '/collections/n1', { dimension: 4, embedder: 'use lite', fields: { a: { type: 'text', embed: true } } }, 400, 'INVALID_ARGUMENT'],
      ['another analyzer for an existing text field', 'PUT', '/collections/lit', { ...schema, fields: { title: { type: 'text', analyzer: 'standard' } } }, 409, 'SCHEMA_MISMATCH'],
      ['a text field retyped', 'PUT', '/collections/lit', { ...schema, fields: { terms: 'text' } }, 409, 'SCHEMA_MISMATCH'],
    ];
    for (const [what, method, url, body, status, code] of cases) {
      it(`${what}: ${status} ${code}`, async () => {
        const r = await call(app, method as 'GET', url, body);
        assert.equal(r.statusCode, status, r.body);
        assert.equal(r.json().error.code, code, r.body);
        assert.ok(!r.body.includes(dir), `the data directory leaks: ${r.body}`);
      });
    }

    it('an existing collection asked for another embedder is SCHEMA_MISMATCH (409); nothing was created by the refusals', async () => {
      assert.equal((await call(app, 'PUT', '/collections/wide', { dimension: 512, fields: { body: 'text' } })).statusCode, 201);
      const r = await call(app, 'PUT', '/collections/wide', { dimension: 512, embedder: 'use-lite-512', fields: { body: { type: 'text', embed: true } } });
      assert.equal(r.statusCode, 409, r.body);
      assert.equal(r.json().error.code, 'SCHEMA_MISMATCH');
      assert.deepEqual((await call(app, 'GET', '/collections')).json(), { collections: [{ name: 'lit' }, { name: 'wide' }] });
      assert.equal((await call(app, 'GET', '/collections/lit')).json().info.count, records.length);
    });
  });
});

describe('server lifecycle', () => {
  it('reopens the collections of its data directory after a restart, with every record', async () => {
    const first = tempServer();
    await call(first.app, 'PUT', '/collections/keep', { dimension: 2, metric: 'l2' });
    await call(first.app, 'POST', '/collections/keep/records', { records: [{ id: 'p', vector: [1, 2] }] });
    await first.app.close(); // closes the collections: the writer lock is released
    const second = tempServer({ dataDir: first.dir });
    try {
      await second.app.ready();
      const r = await call(second.app, 'GET', '/collections/keep/records/p');
      assert.deepEqual(r.json(), { id: 'p', vector: [1, 2] });
      await new Promise((res) => setTimeout(res, 50));
      assert.deepEqual((await call(second.app, 'GET', '/readyz')).json(), { status: 'ready' });
    } finally {
      await second.cleanup();
      await first.cleanup().catch(() => {});
    }
  });

  it('a collection another process holds is LOCKED (423), not a crash', async () => {
    const s = tempServer();
    try {
      await s.app.ready();
      const holder = await Collection.open(join(s.dir, 'held'), { schema: { dimension: 2 } });
      try {
        const r = await call(s.app, 'POST', '/collections/held/search', { vector: [1, 0] });
        assert.equal(r.statusCode, 423, r.body);
        assert.equal(r.json().error.code, 'LOCKED');
      } finally {
        await holder.close();
      }
      assert.equal((await call(s.app, 'POST', '/collections/held/search', { vector: [1, 0] })).statusCode, 200);
    } finally {
      await s.cleanup();
    }
  });

  it('rate limits per client (429 with Retry-After) when configured', async () => {
    const s = tempServer({ limits: { ratePerSecond: 1, rateBurst: 3 } });
    try {
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await call(s.app, 'GET', '/collections')).statusCode);
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      const r = await call(s.app, 'GET', '/collections');
      assert.equal(r.json().error.code, 'RATE_LIMITED');
      assert.equal(r.headers['retry-after'], '1');
      assert.equal((await call(s.app, 'GET', '/healthz')).statusCode, 200, 'health checks are not rate limited');
    } finally {
      await s.cleanup();
    }
  });
});

describe('server limits', () => {
  it('defaults are sane and a bad limit is INVALID_ARGUMENT', () => {
    const l = resolveLimits();
    assert.equal(l.bodyBytes, 16 << 20);
    assert.equal(l.rateBurst, 2 * l.ratePerSecond);
    assert.ok(l.concurrentSearches >= 1);
    assert.throws(() => resolveLimits({ k: 0 }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => resolveLimits({ nope: 1 } as never), { code: 'INVALID_ARGUMENT' });
  });

  it('token buckets refill at their rate and cap at their burst', () => {
    let t = 0;
    const b = new TokenBuckets(2, 2, 3, () => t);
    assert.equal(b.take('a'), 0);
    assert.equal(b.take('a'), 0);
    assert.ok(Math.abs(b.take('a') - 0.5) < 1e-9);
    t = 500;
    assert.equal(b.take('a'), 0);
    t = 100_000;
    assert.equal(b.take('a'), 0);
    assert.equal(b.take('a'), 0);
    assert.ok(b.take('a') > 0);
    for (const k of ['b', 'c', 'd']) b.take(k); // 'a' is evicted (least recently used) and comes back full
    assert.equal(b.take('a'), 0);
  });

  it('the search gate runs at most N, queues M, refuses the rest with OVERLOADED', async () => {
    const gate = new SearchGate(2, 1);
    const releases: (() => void)[] = [];
    let running = 0, peak = 0;
    const work = () => gate.run(() => new Promise<void>((res) => { running++; peak = Math.max(peak, running); releases.push(() => { running--; res(); }); }));
    const p = [work(), work(), work()];
    await assert.rejects(work(), { code: 'OVERLOADED' });
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(gate.inFlight, 2);
    assert.equal(gate.queueLength, 1);
    releases.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(releases.length, 2);
    while (releases.length) { releases.shift()!(); await new Promise((r) => setTimeout(r, 0)); }
    await Promise.all(p);
    assert.equal(peak, 2);
    assert.equal(gate.inFlight, 0);
  });

  it('loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopback(h), h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '::ffff:10.0.0.1']) assert.ok(!isLoopback(h), h);
  });
});
