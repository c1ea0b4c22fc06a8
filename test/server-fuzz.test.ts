import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createKey, HTTP_STATUS, listen } from '../src/server/index.js';
import { rng } from './helpers/random.js';
import { call, tempServer } from './helpers/server.js';

// Hundreds of malformed requests from a seeded generator (bad JSON, wrong types, unknown fields,
// huge arrays and bodies, path traversal in names, wrong methods, bad headers and URLs, values
// the engine refuses, malformed text, sparse and fusion parts of searches and schemas): each must
// get a 4xx whose body is our error shape with the status its code maps to; never a 5xx, never a
// 2xx. Odd but well-formed text and sparse values must never be a 5xx either. Then the server
// must be alive and the data unchanged. A last part sends malformed HTTP over a real socket.

const SEED = 20_241_010;
const INJECT_REQUESTS = 800;
const RAW_REQUESTS = 60;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface FuzzRequest { kind: string; method: string; url: string; headers: Record<string, string>; payload?: string | Buffer }

describe('server fuzz', () => {
  const s = tempServer({ limits: { batchSize: 20, dimension: 64, bodyBytes: 64 << 10, k: 100, queries: 10 } });
  let key = '';
  const r = rng(SEED);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

  before(async () => {
    key = (await createKey(s.dir, { scope: 'read-write' })).key;
    assert.equal((await call(s.app, 'PUT', '/collections/fuzz', { dimension: 8, fields: { lang: 'keyword', year: 'number', tags: 'keyword[]' } }, key)).statusCode, 201);
    const records = Array.from({ length: 20 }, (_, i) => ({ id: `r${i}`, vector: Array.from({ length: 8 }, (_, j) => Math.sin(i * 8 + j + 1)), metadata: { lang: i % 2 ? 'en' : 'fr', year: 2000 + i, tags: [`t${i % 3}`] } }));
    assert.equal((await call(s.app, 'POST', '/collections/fuzz/records', { records }, key)).statusCode, 200);
    assert.equal((await call(s.app, 'PUT', '/collections/fuzztext', { dimension: 8, fields: { title: 'text', body: { type: 'text', analyzer: 'standard' }, terms: 'sparse', lang: 'keyword' } }, key)).statusCode, 201);
    assert.equal((await call(s.app, 'POST', '/collections/fuzztext/records', { records: textRecords() }, key)).statusCode, 200);
  });
  after(s.cleanup);

  const vec = (n = 8): number[] => Array.from({ length: n }, () => +(r() * 2 - 1).toFixed(4));
  const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'owl', 'river', 'stone', 'night'];
  const textRecords = () => Array.from({ length: 20 }, (_, i) => ({
    id: `t${i}`, vector: Array.from({ length: 8 }, (_, j) => Math.cos(i * 8 + j + 1)),
    metadata: { title: `${WORDS[i % 8]} ${WORDS[(i * 3) % 8]}`, body: `${WORDS[(i + 1) % 8]} and ${WORDS[(i * 5) % 8]}`, terms: { [`s${i % 4}`]: 1 + (i % 3), s9: 0.5 }, lang: i % 2 ? 'en' : 'fr' },
  }));
  const TS = '/collections/fuzztext/search';
  /** Valid bodies, which the mutations below break. */
  const validBodies: { method: string; path: string; body: () => Json }[] = [
    { method: 'POST', path: '/collections/fuzz/search', body: () => ({ vector: vec(), k: 1 + int(10), filter: { year: { $gte: 2005 } }, withStats: true }) },
    { method: 'POST', path: '/collections/fuzz/search', body: () => ({ vectors: [vec(), vec()], k: 3, recall: 0.9, includeVector: true }) },
    { method: 'POST', path: '/collections/fuzz/records', body: () => ({ records: [{ id: `new${int(1e6)}`, vector: vec(), metadata: { lang: 'en', year: 2020 } }] }) },
    { method: 'POST', path: '/collections/fuzz/records/delete', body: () => ({ ids: ['r1', 'r2'] }) },
    { method: 'PUT', path: '/collections/fuzz-new', body: () => ({ dimension: 4, metric: 'l2', index: 'Flat', fields: { a: 'keyword' } }) },
    { method: 'POST', path: TS, body: () => ({ text: `${pick(WORDS)} ${pick(WORDS)}`, k: 1 + int(10), withStats: true }) },
    { method: 'POST', path: TS, body: () => ({ text: pick(WORDS), vector: vec(), sparse: { s1: 1, s2: 0.5 }, fusion: { method: 'rrf', k: 20, weights: { text: 2, sparse: 1 } }, depth: 50, bm25: { k1: 1.2, b: 0.5 } }) },
    { method: 'POST', path: TS, body: () => ({ sparse: { s0: 1 }, sparseField: 'terms', sparseMode: 'exact', fusion: { method: 'weighted', normalize: 'zscore' }, exhaustive: true }) },
    { method: 'POST', path: TS, body: (): Json => [{ text: pick(WORDS), k: 2 }, { vector: vec(), k: 3, includeMetadata: false }] },
    { method: 'POST', path: '/collections/fuzztext/records', body: () => ({ records: [{ id: `n${int(1e6)}`, vector: vec(), metadata: { title: 'new text', terms: { s1: 2 } } }] }) },
    { method: 'PUT', path: '/collections/fuzz-new', body: () => ({ dimension: 4, fields: { t: { type: 'text', analyzer: 'english' }, sp: 'sparse' } }) },
  ];

  /** A value of another JSON type than `v` (so the request stays invalid), or a placeholder for a huge number. */
  const otherType = (v: Json): Json => {
    const pool: Json[] = ['1', 'x'.repeat(1 + int(3000)), 1, -1, 0, 1.5, -0.0001, 2 ** 53 + 2, true, false, null, [], [[]], {}, { a: 1 }, 'NaN', '__HUGE__'];
    for (;;) {
      const c = pick(pool);
      const t = (x: Json) => (x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x);
      if (c === '__HUGE__') { if (typeof v !== 'number') return c; continue; }
      if (t(c) !== t(v)) return c;
    }
  };
  /** Replaces one random leaf or node of `body` (never the whole thing) by a value of another type. */
  const mutateType = (body: Json): Json => {
    const copy = structuredClone(body) as Json;
    const spots: { parent: Json[] | Record<string, Json>; key: string | number; value: Json }[] = [];
    const walk = (node: Json, depth: number) => {
      if (depth > 4 || node === null || typeof node !== 'object') return;
      // inside metadata and filter objects any key and many values are valid: do not mutate there
      for (const [k, v] of Object.entries(node)) {
        spots.push({ parent: node, key: Array.isArray(node) ? Number(k) : k, value: v });
        if (k !== 'metadata' && k !== 'filter' && k !== 'fields') walk(v, depth + 1);
      }
    };
    walk(copy, 0);
    const spot = pick(spots);
    (spot.parent as Record<string, Json>)[spot.key as string] = otherType(spot.value);
    return copy;
  };
  const stringify = (body: Json): string => JSON.stringify(body).replace('"__HUGE__"', pick(['1e400', '-1e999', '123456789012345678901234567890123456789']));
  const parses = (p: string | Buffer) => { try { JSON.parse(p.toString()); return true; } catch { return false; } };
  const withKey = (h: Record<string, string> = {}) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json', ...h });

  const BAD_NAMES = ['..', '.', '%2e%2e', '..%2f..%2fetc%2fpasswd', '%2e%2e%2f%2e%2e%2f', 'a%2fb', '%00', 'a%00b', 'Fuzz', 'fuzz%20', '%20fuzz',
    'x'.repeat(65), '.keys.json', '.trash-fuzz', '~root', '%E2%80%AEfuzz', '%5c..%5c', '-leading', '_leading', 'caf%C3%A9', '%ff', 'a.b', 'a*'];

  const generators: Record<string, () => FuzzRequest> = {
    'bad JSON': () => {
      const b = pick(validBodies);
      const text = stringify(b.body());
      const cut = int(text.length - 1);
      const mutations = [
        () => text.slice(0, cut),
        () => `${text.slice(0, cut)}${pick(['"', '{', ']', ',', ':', '\\', '\u0000', 'NaN', 'Infinity', 'undefined', "'"])}${text.slice(cut)}`,
        () => text.replace(/([[:,])-?\d/, '$1NaN'),
        () => text.replace(/,/, ',,'),
        () => `${text.slice(0, -1)},}`,
        () => `// comment\n${text}`,
        () => `${text}${text}`,
        () => '['.repeat(1000 + int(50_000)),
        () => `${'{"a":'.repeat(5000)}1${'}'.repeat(4999)}`,
        () => Buffer.from(Array.from({ length: 1 + int(2000) }, () => int(256))),
      ];
      // valid JSON that the server must still refuse: prototype pollution attempts
      const refused = [`{"__proto__": {"admin": true}, ${text.slice(1)}`, `{"constructor": {"prototype": {"x": 1}}, ${text.slice(1)}`];
      let payload: string | Buffer = r() < 0.1 ? pick(refused) : '';
      // a mutation inside a string can leave valid JSON: draw again until it does not parse
      while (payload === '' || (!refused.includes(payload as string) && parses(payload))) payload = pick(mutations)();
      return { kind: 'bad JSON', method: b.method, url: b.path, headers: withKey(), payload };
    },
    'wrong types': () => {
      const b = pick(validBodies);
      return { kind: 'wrong types', method: b.method, url: b.path, headers: withKey(), payload: stringify(mutateType(b.body())) };
    },
    'unknown fields': () => {
      const b = pick(validBodies);
      const body = b.body() as Record<string, Json>;
      const field = pick(['extra', 'query', 'sparseVector', 'rrf', 'K', 'vector ', 'prototype', 'constructor', 'ID', '']);
      // in a batch, the unknown field goes into one of its requests (an array has no fields to add)
      const target = Array.isArray(body) ? (body as unknown as Record<string, Json>[])[int((body as unknown as Json[]).length)] : body;
      if (b.path.endsWith('/records') && r() < 0.5) (body.records as Record<string, Json>[])[0][field] = 1;
      else target[field] = pick([1, 'x', null, {}, []] as Json[]);
      const text = field === '' && r() < 0.5 ? JSON.stringify(body).replace('"":', '"__proto__":') : JSON.stringify(body);
      return { kind: 'unknown fields', method: b.method, url: b.path, headers: withKey(), payload: text };
    },
    'huge arrays': () => {
      const n = pick([9, 65, 1000, 20_000]);
      const body = pick([
        () => ({ vector: new Array(n).fill(0.5) }),
        () => ({ vectors: Array.from({ length: 11 + int(50) }, () => vec()) }),
        () => ({ records: Array.from({ length: 21 + int(200) }, (_, i) => ({ id: `h${i}`, vector: vec() })) }),
        () => ({ records: [{ id: 'h', vector: new Array(n).fill(1) }] }),
        () => ({ ids: Array.from({ length: 21 + int(2000) }, (_, i) => `i${i}`) }),
        () => ({ vector: vec(), filter: { tags: { $in: Array.from({ length: 5000 }, (_, i) => `t${i}`) } }, k: 1000 }),
      ])();
      const url = 'ids' in body ? '/collections/fuzz/records/delete' : 'records' in body ? '/collections/fuzz/records' : '/collections/fuzz/search';
      return { kind: 'huge arrays', method: 'POST', url, headers: withKey(), payload: JSON.stringify(body) };
    },
    'path traversal': () => {
      const name = pick(BAD_NAMES);
      const [method, tail, body] = pick([
        ['PUT', '', { dimension: 4 }], ['GET', '', undefined], ['DELETE', '', undefined], ['POST', '/records', { records: [] }],
        ['POST', '/search', { vector: vec() }], ['GET', '/records/r1', undefined], ['POST', '/flush', undefined], ['POST', '/compact', undefined],
      ] as [string, string, Json | undefined][]);
      // without a body, half the time without a content-type either (an empty JSON body is no body)
      const headers = body === undefined && r() < 0.5 ? { authorization: `Bearer ${key}` } : withKey();
      return { kind: 'path traversal', method, url: `/collections/${name}${tail}`, headers, payload: body === undefined ? undefined : JSON.stringify(body) };
    },
    'wrong methods': () => {
      const [method, url] = pick([
        ['POST', '/collections/fuzz'], ['PATCH', '/collections/fuzz'], ['GET', '/collections/fuzz/search'], ['PUT', '/collections/fuzz/records'],
        ['DELETE', '/collections/fuzz/records/r1'], ['PUT', '/collections/fuzz/records/r1'], ['OPTIONS', '/collections'], ['POST', '/healthz'],
        ['PUT', '/metrics'], ['DELETE', '/collections'], ['GET', '/collections/fuzz/flush'], ['GET', '/collections/fuzz/compact'],
        ['PATCH', '/collections/fuzz/records'], ['POST', '/openapi.json'], ['GET', '/collections/fuzz/records'], ['POST', '/'],
      ] as [string, string][]);
      return { kind: 'wrong methods', method, url, headers: withKey(), payload: r() < 0.5 ? JSON.stringify({ vector: vec() }) : undefined };
    },
    'oversized bodies': () => {
      const size = (64 << 10) + 1 + int(1 << 20);
      const payload = pick([
        () => JSON.stringify({ vector: vec(), filter: { lang: 'x'.repeat(size) } }),
        () => JSON.stringify({ records: [{ id: 'big', vector: vec(), metadata: { blob: 'y'.repeat(size) } }] }),
        () => ' '.repeat(size),
      ])();
      return { kind: 'oversized bodies', method: 'POST', url: pick(['/collections/fuzz/search', '/collections/fuzz/records']), headers: withKey(), payload };
    },
    'bad headers': () => {
      const body = JSON.stringify({ vector: vec() });
      const h = pick<Record<string, string>>([
        { 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, { 'content-type': 'multipart/form-data; boundary=x' },
        { 'content-type': 'text/json' }, { 'content-type': 'application/xml' }, { 'content-type': '' }, { 'content-type': 'application/json; charset=utf-16' },
        { authorization: '' }, { authorization: 'Bearer' }, { authorization: 'Bearer ' }, { authorization: `Basic ${key}` }, { authorization: `Bearer ${key}x` },
        { authorization: `Bearer ${key.slice(0, -1)}` }, { authorization: `Bearer ${key} ${key}` }, { authorization: 'Bearer qvk_000000000000_' + 'A'.repeat(43) },
        { authorization: `Token ${key}` },
      ]);
      const headers = { ...withKey(), ...h };
      if (headers.authorization === '') delete (headers as Record<string, string>).authorization;
      return { kind: 'bad headers', method: 'POST', url: '/collections/fuzz/search', headers, payload: headers['content-type'] === 'application/json; charset=utf-16' ? Buffer.from(`\ufeff${body}`, 'utf16le') : body };
    },
    'bad URLs': () => ({
      kind: 'bad URLs', method: 'GET', headers: withKey(),
      url: pick(['/collections/%E0%A4%A', '/collections/%', '/collections/fuzz/records/%ff%fe', '/collections/fuzz/records/%', `/collections/fuzz/records/${'z'.repeat(20_000)}`,
        `/collections/${'n'.repeat(12_000)}`, '/collections/fuzz/records/', '//collections', '/collections/fuzz/records/r1/extra', '/collections/fuzz/records/%00']),
    }),
    'engine refusals': () => {
      const [method, url, body] = pick<[string, string, Json]>([
        ['POST', '/collections/fuzz/search', { vector: vec(1 + int(7)) }],
        ['POST', '/collections/fuzz/search', { vector: new Array(8).fill(0) }],
        ['POST', '/collections/fuzz/search', { vector: vec(), filter: pick<Json>([{ $foo: 1 }, { year: { $gt: 'x' } }, { lang: { $in: 5 } }, { $or: [] }, { nope: 1 }, { year: { $eq: null } }, { tags: { $gte: [] } }]) }],
        ['POST', '/collections/fuzz/search', { vector: vec(), filter: JSON.parse(`${'{"$not":'.repeat(100)}{"lang":"en"}${'}'.repeat(100)}`) }],
        ['POST', '/collections/fuzz/search', { vector: vec(), ef: 0 }],
        ['POST', '/collections/fuzz/search', { vector: vec(), recall: 0 }],
        ['POST', '/collections/fuzz/search', { vector: vec(), vectors: [vec()] }],
        ['POST', '/collections/fuzz/search', {}],
        ['POST', '/collections/fuzz/records', { records: [{ id: 'ok', vector: vec() }, { id: 'bad', vector: vec(7) }] }],
        ['POST', '/collections/fuzz/records', { records: [{ id: 'z', vector: new Array(8).fill(0) }] }],
        ['POST', '/collections/fuzz/records', { records: [{ id: 'm', vector: vec(), metadata: JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`) }] }],
        ['POST', '/collections/fuzz/records', { records: [{ id: 'm', vector: vec(), metadata: { year: 'x' } }] }],
        ['POST', '/collections/fuzz/records', { records: [{ id: 'm', vector: vec(), metadata: { tags: [1, 2] } }] }],
        ['POST', '/collections/fuzz/records', { records: [{ id: '', vector: vec() }] }],
        ['POST', '/collections/fuzz/records', { records: [{ id: 'i'.repeat(1025), vector: vec() }] }],
        ['POST', '/collections/fuzz/records/delete', { ids: [''] }],
        ['PUT', '/collections/fuzz-new', { dimension: pick<Json>([0, -1, 1.5, 65, 1e9]) }],
        ['PUT', '/collections/fuzz-new', { dimension: 4, metric: pick<Json>(['cos', 'L2', '', 'euclid']) }],
        ['PUT', '/collections/fuzz-new', { dimension: 4, index: pick<Json>(['HNSW', 'IVF0', 'Flat,Flat', 'HNSW3', 'PQ', 'Flat,SQ9', '%%%', 'HNSW16,RaBitQ99', 'IVF99999999']) }],
        ['PUT', '/collections/fuzz-new', { dimension: 4, fields: pick<Json>([{ '1abc': 'keyword' }, { $x: 'number' }, { ['a'.repeat(65)]: 'keyword' }, { a: 'vector' }, { a: { type: 'keyword', extra: 1 } }, { a: 5 }]) }],
        ['PUT', '/collections/fuzz', { dimension: 9 }],
        ['PUT', '/collections/fuzz', { dimension: 8, fields: { year: 'keyword' } }],
      ]);
      const text = JSON.stringify(body);
      // a lone surrogate in an id (well-formed JSON, not well-formed UTF-16)
      const payload = url.endsWith('/delete') && r() < 0.5 ? '{"ids": ["a\\ud800b"]}' : text;
      return { kind: 'engine refusals', method, url, headers: withKey(), payload };
    },
    'text, sparse and fusion': () => {
      const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`m${i}`, 1]));
      const q = () => pick(WORDS);
      const [method, url, body] = pick<[string, string, Json]>([
        ['POST', TS, { text: pick<Json>([123, true, null, [], {}, ['a'], { text: 'a' }]) }],
        ['POST', TS, { text: 'x'.repeat(65_537) }],
        ['POST', TS, { sparse: pick<Json>([[], 'a', 1, null, true, { a: -1 }, { a: 'x' }, { a: null }, { a: true }, { '': 1 }, { ['t'.repeat(257)]: 1 }, { a: {} }, { a: [1] }, many(4097)]) }],
        ['POST', TS, { sparse: { s1: 1 }, sparseField: pick<Json>(['nope', '', 5, null, 'title', 'lang']) }],
        ['POST', TS, { text: q(), sparseField: 'terms' }],
        ['POST', TS, { sparse: { s1: 1 }, sparseMode: pick<Json>(['fast', '', 1, null, 'EXACT']) }],
        ['POST', TS, { text: q(), vector: vec(), fusion: pick<Json>(['rrf', 1, null, [], {}, { method: 'RRF' }, { method: null }, { method: 'borda' }, { method: 'rrf', k: -1 }, { method: 'rrf', k: '60' },
          { method: 'rrf', normalize: 'zscore' }, { method: 'weighted', normalize: 'l2' }, { method: 'weighted', k: 60 }, { method: 'rrf', weights: { bm25: 1 } }, { method: 'rrf', weights: { text: -1 } },
          { method: 'rrf', weights: { text: '1' } }, { method: 'rrf', weights: [] }, { method: 'weighted', weights: null }, { method: 'rrf', extra: 1 }, { k: 60 }]) }],
        ['POST', TS, { text: q(), bm25: pick<Json>([{ k1: -1 }, { b: 1.5 }, { k3: 1 }, 'x', [], { k1: '1' }, null, { b: -0.1 }, { k1: 101 }]) }],
        ['POST', TS, { text: q(), depth: pick<Json>([0, -1, 1.5, 1e9, '10', null]) }],
        ['POST', TS, { text: q(), fields: pick<Json>([{ nope: 1 }, { title: 0 }, { title: -1 }, { title: 'x' }, [], 'title', { lang: 1 }, { terms: 1 }, null]) }],
        ['POST', TS, { text: q(), exhaustive: pick<Json>(['yes', 1, null]), embed: pick<Json>([true, false]) }],
        ['POST', TS, { text: q(), embed: pick<Json>(['no', 0, null]) }],
        ['POST', TS, pick<Json>([{ k: 3 }, {}, { fusion: { method: 'rrf' } }, { includeMetadata: false, withStats: true }, { sparseMode: 'exact' }])],
        ['POST', TS, Array.from({ length: 11 + int(20) }, () => ({ text: q() }))],
        ['POST', TS, [{ text: q() }, pick<Json>([{ text: 5 }, { k: 0, text: 'a' }, { fusion: 'rrf', text: 'a' }, 'text', null, 5, [], [{ text: 'a' }], { sparse: { a: -1 } }, {}])]],
        ['POST', TS, { vectors: [vec()], text: q() }],
        ['POST', TS, { vectors: [vec()], sparse: { s1: 1 } }],
        ['POST', '/collections/fuzz/search', { text: q() }],
        ['POST', '/collections/fuzz/search', { sparse: { s1: 1 } }],
        ['POST', '/collections/fuzztext/records', { records: [{ id: 'x', vector: vec(), metadata: pick<Json>([{ title: 5 }, { title: ['a'] }, { terms: { a: -1 } }, { terms: 'x' }, { terms: [1] }, { terms: many(4097) }, { terms: { a: 'heavy' } }, { body: {} }]) }] }],
        ['POST', '/collections/fuzztext/records', { records: [{ id: 'nv', metadata: { title: 'no vector and no embedder' } }] }],
        ['PUT', '/collections/fuzz-new', { dimension: 4, fields: pick<Json>([{ a: { type: 'text', analyzer: 'nope' } }, { a: { type: 'text', embed: 'yes' } }, { a: { type: 'sparse', analyzer: 'english' } },
          { a: { type: 'text', embed: true } }, { a: { type: 'text', analyzer: '' } }, { a: { type: 'text', analyzer: 5 } }, { a: { type: 'keyword', embed: true } }, { a: 'TEXT' }]) }],
        ['PUT', '/collections/fuzz-new', { dimension: pick<Json>([4, 512]), embedder: pick<Json>(['use-lite-512', 'nope-model', 5, '', 'has space', null, ['use-lite-512']]), fields: pick<Json>([{ a: { type: 'text', embed: true } }, { a: 'text' }, {}]) }],
        ['PUT', '/collections/fuzztext', { dimension: 8, fields: pick<Json>([{ title: { type: 'text', analyzer: 'english' } }, { title: 'sparse' }, { terms: 'text' }, { lang: 'text' }]) }],
      ]);
      return { kind: 'text, sparse and fusion', method, url, headers: withKey(), payload: JSON.stringify(body) };
    },
  };

  it(`${INJECT_REQUESTS} malformed requests through inject: 4xx only, in our error shape`, async (t) => {
    const kinds = Object.keys(generators);
    const byKind = new Map<string, Map<string, number>>();
    for (let i = 0; i < INJECT_REQUESTS; i++) {
      const req = generators[kinds[i % kinds.length]]();
      const res = await s.app.inject({ method: req.method as 'GET', url: req.url, headers: req.headers, ...(req.payload !== undefined ? { payload: req.payload } : {}) });
      const what = `#${i} ${req.kind}: ${req.method} ${req.url.slice(0, 80)} ${String(req.payload ?? '').slice(0, 120)}`;
      assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${what} -> ${res.statusCode} ${res.body.slice(0, 300)}`);
      let body: { error?: { code?: string; message?: string; details?: unknown } };
      try {
        body = JSON.parse(res.body);
      } catch {
        assert.fail(`${what} -> a body that is not JSON: ${res.body.slice(0, 200)}`);
      }
      const code = body.error?.code as keyof typeof HTTP_STATUS;
      assert.ok(code in HTTP_STATUS, `${what} -> unknown code in ${res.body.slice(0, 200)}`);
      assert.equal(res.statusCode, HTTP_STATUS[code], `${what} -> ${res.statusCode} but ${code} maps to ${HTTP_STATUS[code]}`);
      assert.equal(typeof body.error?.message, 'string');
      assert.ok(!res.body.includes(s.dir), `${what} leaks the data directory`);
      const counts = byKind.get(req.kind) ?? new Map<string, number>();
      counts.set(`${res.statusCode} ${code}`, (counts.get(`${res.statusCode} ${code}`) ?? 0) + 1);
      byKind.set(req.kind, counts);
    }
    for (const [kind, counts] of byKind) t.diagnostic(`${kind}: ${[...counts].map(([k, n]) => `${k} x${n}`).join(', ')}`);
  });

  it('odd but well-formed text and sparse values: answered (2xx or 4xx), never a 5xx', async () => {
    const odd: Json[] = [
      { text: '' }, { text: '   \t\n' }, { text: '\u0000\u0001 alpha' }, { text: 'a\ud800b' }, { text: '\udc00' }, { text: '🦉 night 🌙' }, { text: '\u202eahpla' },
      { text: 'alpha '.repeat(5000) }, { text: 'ÀÉÎõü ß ﬁ' }, { text: '日本語のテキスト' }, { text: 'alpha', fields: { title: 1e308, body: 1e-308 } },
      { sparse: {} }, { sparse: { s1: 0 } }, { sparse: { s1: 1e308 } }, { sparse: { s1: 3.5e38, s2: 1e-45 } }, { sparse: { 'a\ud800': 1 } }, { sparse: { constructor: 1, toString: 2, hasOwnProperty: 3 } },
      { text: 'alpha', vector: new Array(8).fill(1e-30), fusion: { method: 'rrf', k: 0 } }, { text: 'alpha', sparse: { s1: 1 }, fusion: { method: 'weighted', weights: { text: 0, sparse: 0 } } },
      { text: 'alpha', fusion: { method: 'rrf', k: 1e308, weights: { text: 1e308 } } }, { text: 'alpha', sparse: { s1: 1 }, fusion: { method: 'weighted', normalize: 'minmax', weights: { text: 1e308, sparse: 1e308 } } },
      { text: 'alpha', sparse: { s1: 1e308, s2: 1 }, fusion: { method: 'weighted', normalize: 'minmax' } }, { text: 'alpha', sparse: { s1: 1e308, s9: 1 }, k: 20 },
      { text: 'alpha', depth: 1000, k: 100 }, { text: 'alpha', bm25: { k1: 0, b: 0 } }, { text: 'alpha', bm25: { k1: 100, b: 1 } }, [], [{ text: 'alpha' }],
    ];
    for (const body of odd) {
      const res = await s.app.inject({ method: 'POST', url: TS, headers: withKey(), payload: JSON.stringify(body) });
      const what = `${JSON.stringify(body).slice(0, 120)} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
      assert.ok(res.statusCode < 500, what);
      const answer = JSON.parse(res.body);
      if (res.statusCode >= 400) assert.equal(res.statusCode, HTTP_STATUS[answer.error.code as keyof typeof HTTP_STATUS], what);
      else for (const hit of answer.hits ?? answer.results.flatMap((x: { hits: unknown[] }) => x.hits)) assert.ok(Number.isFinite(hit.score), what);
    }
  });

  it('the server is alive and nothing changed', async () => {
    assert.deepEqual((await call(s.app, 'GET', '/healthz')).json(), { status: 'ok' });
    assert.deepEqual((await call(s.app, 'GET', '/collections', undefined, key)).json(), { collections: [{ name: 'fuzz' }, { name: 'fuzztext' }] });
    const t = (await call(s.app, 'GET', '/collections/fuzztext', undefined, key)).json();
    assert.equal(t.info.count, 20);
    assert.deepEqual(t.schema.fields, { title: 'text', body: 'text', terms: 'sparse', lang: 'keyword' });
    const text = (await call(s.app, 'POST', '/collections/fuzztext/search', { text: 'owl', k: 20, fields: { title: 1 } }, key)).json();
    assert.deepEqual(text.hits.map((h: { id: string }) => h.id).sort(), textRecords().filter((x) => x.metadata.title.split(' ').includes('owl')).map((x) => x.id).sort());
    const sparse = (await call(s.app, 'POST', '/collections/fuzztext/search', { sparse: { s3: 1 }, k: 20, sparseMode: 'exact' }, key)).json();
    assert.deepEqual(sparse.hits.map((h: { id: string }) => h.id).sort(), ['t11', 't15', 't19', 't3', 't7']);
    const d = (await call(s.app, 'GET', '/collections/fuzz', undefined, key)).json();
    assert.equal(d.info.count, 20);
    assert.deepEqual(d.schema.fields, { lang: 'keyword', year: 'number', tags: 'keyword[]' });
    assert.equal(d.schema.dimension, 8);
    const hit = (await call(s.app, 'POST', '/collections/fuzz/search', { vector: Array.from({ length: 8 }, (_, j) => Math.sin(3 * 8 + j + 1)), k: 1 }, key)).json();
    assert.equal(hit.hits[0].id, 'r3');
    assert.deepEqual((await call(s.app, 'GET', '/collections/fuzz/records/r1', undefined, key)).json().metadata, { lang: 'en', year: 2001, tags: ['t1'] });
  });

  it(`${RAW_REQUESTS} malformed HTTP messages over a real socket: 4xx or a closed connection, never a 5xx`, async () => {
    const address = await listen(s.app, { port: 0 });
    const { port } = new URL(address);
    const messages = [
      'GARBAGE\r\n\r\n',
      'GET\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      'POST /collections/fuzz/search HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /collections/fuzz/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      'POST /collections/fuzz/search HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      'POST /collections/fuzz/search HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n',
      'GET /collections/%zz HTTP/1.1\r\nHost: x\r\n\r\n',
      `GET /${'p'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      'GET /healthz HTTP/1.1\nHost: x\n\n\0\0\0',
      '\u0000\u0001\u0002\u0003\r\n\r\n',
    ];
    const send = (msg: string | Buffer) => new Promise<string>((resolve) => {
      const sock = connect(Number(port), '127.0.0.1');
      let data = '';
      sock.setTimeout(3000, () => sock.destroy());
      sock.on('data', (d) => { data += d.toString('latin1'); });
      sock.on('error', () => resolve(data));
      sock.on('close', () => resolve(data));
      sock.end(msg);
    });
    for (let i = 0; i < RAW_REQUESTS; i++) {
      const msg = i < messages.length ? messages[i] : Buffer.from(Array.from({ length: 1 + int(300) }, () => int(256)));
      const reply = await send(msg);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(reply)?.[1];
      if (status !== undefined) assert.ok(Number(status) >= 400 && Number(status) < 500, `raw #${i} ${String(msg).slice(0, 60)} -> ${reply.slice(0, 200)}`);
    }
    const res = await fetch(`${address}/healthz`);
    assert.equal(res.status, 200);
    const search = await fetch(`${address}/collections/fuzz/search`, { method: 'POST', headers: withKey(), body: JSON.stringify({ vector: vec(), k: 2 }) });
    assert.equal(search.status, 200);
    assert.equal(((await search.json()) as { hits: unknown[] }).hits.length, 2);
  });
});
