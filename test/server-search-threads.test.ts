import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { randomF32 } from './helpers/random.js';
import { call, tempServer } from './helpers/server.js';

// Searches on worker threads (src/server/search-pool.ts): the same answers as the main thread
// (vector, text, sparse and fused requests), query texts embedded before a search reaches its
// thread, read-your-writes, health checks that stay fast under search load, and no threads or
// files left after close.

const tmp = mkdtempSync(join(tmpdir(), 'quiver-threads-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const vec = (d: number, seed: number) => Array.from(randomF32(d, seed));

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('server: searches on worker threads', () => {
  it('answers exactly as the main thread does (single, batch, filter, stats, text, sparse, hybrid, errors)', async () => {
    const dataDir = join(tmp, 'same');
    const requests: unknown[] = [
      { vector: vec(16, 1), k: 5, withStats: true },
      { vectors: [vec(16, 2), vec(16, 3)], k: 3, includeVector: true },
      { vector: vec(16, 4), k: 20, filter: { tag: { $in: ['t1', 't2'] } }, withStats: true },
      { vector: vec(16, 5), k: 10, exact: true, includeMetadata: false },
      { vector: vec(15, 6), k: 3 }, // wrong dimension
      { vector: vec(16, 7), filter: { nope: 1 } }, // undeclared field
      { text: 'w3 w17', k: 5, withStats: true },
      { sparse: { s1: 1, s2: 0.5 }, k: 5, filter: { tag: 't1' } },
      { text: 'w5', vector: vec(16, 8), sparse: { s3: 1 }, fusion: { method: 'rrf' }, k: 8, withStats: true },
      [{ text: 'w9', k: 3 }, { vector: vec(16, 9), k: 3 }, { sparse: { s0: 2 }, k: 3, sparseMode: 'exact' }],
      { text: 'w1', fields: { nope: 2 } }, // not a text field
    ];
    const answers: { status: number; body: unknown }[][] = [];
    for (const searchThreads of [2, 0]) {
      const { app, cleanup } = tempServer({ dataDir, searchThreads });
      if (searchThreads) {
        assert.equal((await call(app, 'PUT', '/collections/docs', { dimension: 16, metric: 'cosine', index: 'Flat', fields: { tag: 'keyword', body: 'text', terms: 'sparse' } })).statusCode, 201);
        for (let b = 0; b < 3; b++) {
          const records = Array.from({ length: 400 }, (_, i) => ({
            id: `d${b * 400 + i}`, vector: vec(16, 100 + b * 400 + i),
            metadata: { tag: `t${i % 4}`, i, body: `w${i % 23} w${i % 7} w${(i * 3) % 31}`, terms: { [`s${i % 5}`]: 1 + (i % 3), [`s${i % 2}`]: 0.5 } },
          }));
          assert.equal((await call(app, 'POST', '/collections/docs/records', { records })).statusCode, 200);
          if (b === 1) assert.equal((await call(app, 'POST', '/collections/docs/flush')).statusCode, 200);
        }
        assert.equal((await call(app, 'POST', '/collections/docs/records/delete', { ids: ['d3', 'd500', 'd1000'] })).statusCode, 200);
      }
      const got: { status: number; body: unknown }[] = [];
      for (const body of requests) {
        const r = await call(app, 'POST', '/collections/docs/search', body);
        got.push({ status: r.statusCode, body: r.json() });
      }
      assert.equal(app.quiver.searchPool?.threads ?? 0, searchThreads, 'searches ran on the threads');
      answers.push(got);
      await cleanup();
    }
    assert.deepEqual(answers[0], answers[1]);
    assert.equal(answers[0][4].status, 400);
    assert.equal(answers[0][5].status, 400);
    assert.equal(answers[0][10].status, 400);
    for (const i of [6, 7, 8, 9]) assert.equal(answers[0][i].status, 200, JSON.stringify(answers[0][i].body));
    assert.deepEqual((answers[0][8].body as { stats: { retrievers: string[] } }).stats.retrievers, ['text', 'vector', 'sparse']);
    assert.equal((answers[0][9].body as { results: unknown[] }).results.length, 3);
  });

  it('embeds query text for collections with an embedder (USE-Lite) and searches the vector on a thread', async () => {
    const { app, cleanup } = tempServer({ dataDir: join(tmp, 'embed'), searchThreads: 2 });
    try {
      const created = await call(app, 'PUT', '/collections/notes', { dimension: 512, embedder: 'use-lite-512', fields: { body: { type: 'text', embed: true }, topic: 'keyword' } });
      assert.equal(created.statusCode, 201, created.body);
      assert.equal(created.json().schema.embedder, 'use-lite-512');
      const records = [
        { id: 'cat', metadata: { body: 'The kitten slept on the warm windowsill all afternoon.', topic: 'pets' } },
        { id: 'stocks', metadata: { body: 'Share prices tumbled as investors sold technology companies.', topic: 'finance' } },
        { id: 'cake', metadata: { body: 'Bake the chocolate sponge for thirty minutes, then add the frosting.', topic: 'food' } },
        { id: 'vector', vector: Array.from({ length: 512 }, (_, i) => (i === 0 ? 1 : 0)), metadata: { body: 'A record that brings its own vector.', topic: 'misc' } },
      ];
      const up = await call(app, 'POST', '/collections/notes/records', { records });
      assert.equal(up.statusCode, 200, up.body);
      // no word in common with any document: BM25 finds nothing, the embedded query finds the kitten
      const semantic = await call(app, 'POST', '/collections/notes/search', { text: 'a cat napping', k: 1, withStats: true });
      assert.equal(semantic.statusCode, 200, semantic.body);
      assert.equal(semantic.json().hits[0].id, 'cat');
      assert.deepEqual(semantic.json().stats.retrievers, ['text', 'vector']);
      assert.equal(semantic.json().stats.vector.embedded, true);
      assert.equal(semantic.json().stats.text.candidates, 0);
      const batch = await call(app, 'POST', '/collections/notes/search', [
        { text: 'market crash and falling shares', k: 1, withStats: true },
        { text: 'dessert recipe', k: 1, filter: { topic: 'food' } },
        { text: 'kitten', k: 4, embed: false, withStats: true }, // BM25 only
      ]);
      assert.equal(batch.statusCode, 200, batch.body);
      const [stocks, cake, bm25] = batch.json().results;
      assert.equal(stocks.hits[0].id, 'stocks');
      assert.equal(stocks.stats.vector.embedded, true);
      assert.equal(cake.hits[0].id, 'cake');
      assert.deepEqual(bm25.stats.retrievers, ['text']);
      assert.deepEqual(bm25.hits.map((h: { id: string }) => h.id), ['cat']);
      assert.equal(app.quiver.searchPool?.threads, 2, 'the searches ran on the threads');
    } finally {
      await cleanup();
    }
  });

  it('a search after an acknowledged write sees it (read-your-writes), across seals and deletes', async () => {
    const { app, cleanup } = tempServer({ dataDir: join(tmp, 'ryw'), searchThreads: 2, collections: { sealRows: 64 } });
    try {
      assert.equal((await call(app, 'PUT', '/collections/ryw', { dimension: 8, metric: 'l2' })).statusCode, 201);
      for (let i = 0; i < 60; i++) {
        const v = vec(8, 1000 + i);
        const up = await call(app, 'POST', '/collections/ryw/records', { records: [{ id: `w${i}`, vector: v }, ...Array.from({ length: 5 }, (_, j) => ({ id: `f${i}-${j}`, vector: vec(8, 5000 + i * 10 + j) }))] });
        assert.equal(up.statusCode, 200);
        const s = await call(app, 'POST', '/collections/ryw/search', { vector: v, k: 1 });
        assert.equal(s.statusCode, 200, s.body);
        assert.equal(s.json().hits[0]?.id, `w${i}`, `write ${i} is visible`);
        if (i % 7 === 3) {
          assert.equal((await call(app, 'POST', '/collections/ryw/records/delete', { ids: [`w${i}`] })).statusCode, 200);
          const gone = await call(app, 'POST', '/collections/ryw/search', { vector: v, k: 1 });
          assert.notEqual(gone.json().hits[0]?.id, `w${i}`, `delete ${i} is visible`);
        }
        if (i % 20 === 19) assert.equal((await call(app, 'POST', '/collections/ryw/compact')).statusCode, 200);
      }
    } finally {
      await cleanup();
    }
  });

  it('drops and re-creates a collection under the same name: the threads follow', async () => {
    const { app, cleanup } = tempServer({ dataDir: join(tmp, 'drop'), searchThreads: 2 });
    try {
      await call(app, 'PUT', '/collections/x', { dimension: 4, metric: 'l2' });
      await call(app, 'POST', '/collections/x/records', { records: [{ id: 'old', vector: [1, 2, 3, 4] }] });
      assert.equal((await call(app, 'POST', '/collections/x/search', { vector: [1, 2, 3, 4], k: 1 })).json().hits[0].id, 'old');
      assert.equal((await call(app, 'DELETE', '/collections/x')).statusCode, 200);
      assert.equal((await call(app, 'POST', '/collections/x/search', { vector: [1, 2, 3, 4], k: 1 })).statusCode, 404);
      await call(app, 'PUT', '/collections/x', { dimension: 3, metric: 'l2' });
      await call(app, 'POST', '/collections/x/records', { records: [{ id: 'new', vector: [1, 2, 3] }] });
      const s = await call(app, 'POST', '/collections/x/search', { vector: [1, 2, 3], k: 5 });
      assert.equal(s.statusCode, 200, s.body);
      assert.deepEqual(s.json().hits.map((h: { id: string }) => h.id), ['new']);
    } finally {
      await cleanup();
    }
  });

  it('health checks stay fast under saturating search load; threads and files are released on close', async () => {
    const fdsBefore = openFds();
    const priorityBefore = getPriority(0); // what the test runner was started with (e.g. under nice)
    const { app, cleanup } = tempServer({ dataDir: join(tmp, 'load'), searchThreads: 2, limits: { concurrentSearches: 4, queuedSearches: 1000 } });
    let closed = false;
    try {
      const d = 64;
      await call(app, 'PUT', '/collections/load', { dimension: d, metric: 'l2' });
      for (let b = 0; b < 4; b++) {
        const records = Array.from({ length: 5000 }, (_, i) => ({ id: `l${b * 5000 + i}`, vector: vec(d, b * 5000 + i + 1) }));
        assert.equal((await call(app, 'POST', '/collections/load/records', { records })).statusCode, 200);
      }
      const { p50, p99, searches, samples } = await healthUnderLoad(app, d, 2500);
      console.log(`# healthz under search load (2 search threads, 8 concurrent clients, 8 exact queries of 20,000 x ${d} per request): p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms over ${samples} checks; ${searches} searches`);
      assert.ok(searches > 0);
      assert.ok(p99 < 50, `p99 of /healthz ${p99.toFixed(1)} ms`);
      const pool = app.quiver.searchPool!;
      assert.equal(pool.threads, 2);
      assert.equal(getPriority(0), priorityBefore, 'the event loop thread keeps its priority (the search threads lower their own)');
      await cleanup();
      closed = true;
      assert.equal(pool.threads, 0);
      assert.ok(!process.getActiveResourcesInfo().includes('Worker'), String(process.getActiveResourcesInfo()));
      assert.ok(openFds() <= fdsBefore, `file descriptors: ${fdsBefore} before, ${openFds()} after`);
    } finally {
      // a failed assertion must not leave the threads alive (the test process would never exit)
      if (!closed) await cleanup();
    }
  });
});

/** Runs 8 search clients in a loop for `ms` while timing /healthz every 5 ms. */
async function healthUnderLoad(app: Parameters<typeof call>[0], d: number, ms: number): Promise<{ p50: number; p99: number; searches: number; samples: number }> {
  let stop = false;
  let searches = 0;
  const clients = Array.from({ length: 8 }, async (_, c) => {
    for (let i = 0; !stop; i++) {
      const r = await call(app, 'POST', '/collections/load/search', { vectors: Array.from({ length: 8 }, (_, q) => vec(d, 100_000 + c * 1000 + i * 8 + q)), k: 10, exact: true });
      assert.equal(r.statusCode, 200, r.body);
      searches++;
    }
  });
  await new Promise((r) => setTimeout(r, 300)); // let the load build up (and the threads start)
  const lat: number[] = [];
  const end = Date.now() + ms;
  // latency from when the check was due (5 ms after the previous answer), so time the event loop
  // was too busy to even start it counts too
  let due = performance.now();
  while (Date.now() < end) {
    const r = await call(app, 'GET', '/healthz');
    const now = performance.now();
    lat.push(now - due);
    assert.equal(r.statusCode, 200);
    due = now + 5;
    await new Promise((r) => setTimeout(r, 5));
  }
  stop = true;
  await Promise.all(clients);
  lat.sort((a, b) => a - b);
  return { p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))], searches, samples: lat.length };
}
