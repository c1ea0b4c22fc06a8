// End-to-end test of the browser build in Chromium (playwright-core driving the system's
// chromium; no browser download): a dedicated Worker builds a collection on OPFS (OpfsDirectory),
// searches it, finds it again after a page reload, refuses a second writer in another tab
// (LOCKED), and opens a snapshot built in Node (read-only from the bytes, and imported into OPFS)
// with the same results as Node; the same contract, reload and lock checks run on IndexedDB
// (IndexedDbDirectory, the fallback where OPFS sync access handles are missing). Run by `npm run test:browser` (build, bundle, then this file).
// Skipped only when no chromium executable is found (CHROMIUM_PATH, /usr/bin/chromium, PATH).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { Collection, MemoryDirectory, type CollectionSchema, type Hit } from '../src/index.js';
import { findChromium } from './chromium.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const dist = join(here, 'dist');


const executablePath = findChromium();
const skip = executablePath ? false : 'no chromium executable found (set CHROMIUM_PATH, or install chromium)';
if (executablePath && !existsSync(join(dist, 'worker.js'))) {
  // not a skip: the harness is part of this test's build step (npm run test:browser)
  throw new Error('test-browser/dist/worker.js is missing: run `node test-browser/build.mjs` (npm run test:browser does)');
}

// --- the data: deterministic vectors and texts, the same in Node and in the page ---
const DIM = 24;
const N = 300;
const SEAL_ROWS = 100; // several sealed segment files, so OPFS holds segments as well as the WAL
const WORDS = ['river', 'stone', 'quiver', 'arrow', 'forest', 'lantern', 'harbor', 'copper', 'meadow', 'falcon', 'ember', 'glacier', 'orchard', 'signal', 'velvet', 'thunder'];
const schema: CollectionSchema = { dimension: DIM, metric: 'cosine', fields: { body: 'text' } } as CollectionSchema;

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(11);
const records = Array.from({ length: N }, (_, i) => ({
  id: `doc-${i}`,
  // rounded to f32 so the page (which gets JSON numbers) and Node hold the same bits
  vector: Array.from(Float32Array.from({ length: DIM }, () => rand() * 2 - 1)),
  metadata: { body: Array.from({ length: 3 + Math.floor(rand() * 8) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ') + ` item${i}` },
}));
const extra = records.slice(0, 5).map((r, i) => ({ ...r, id: `late-${i}`, metadata: { body: `late arrival falcon ${i}` } }));
type Query = { vector?: number[]; text?: string; k: number };
const queries: Query[] = [
  ...Array.from({ length: 4 }, () => ({ vector: Array.from(Float32Array.from({ length: DIM }, () => rand() * 2 - 1)), k: 10 })),
  { text: 'quiver arrow', k: 10 },
  { text: 'falcon', k: 10 },
  { text: 'glacier thunder ember', k: 5 },
];

async function nodeResults(c: Collection): Promise<[string, number][][]> {
  const out: [string, number][][] = [];
  for (const q of queries) {
    const hits = (q.vector ? await c.search(new Float32Array(q.vector), { k: q.k }) : await c.search({ text: q.text!, k: q.k })) as Hit[];
    out.push(hits.map((h) => [h.id, h.score]));
  }
  return out;
}

/** Same ids in the same order, scores within 1e-6. */
function assertSameResults(actual: [string, number][][], expected: [string, number][][], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: number of queries`);
  for (let q = 0; q < expected.length; q++) {
    assert.ok(expected[q].length > 0, `${what}: query ${q} has hits in Node`);
    assert.deepEqual(actual[q].map((h) => h[0]), expected[q].map((h) => h[0]), `${what}: ids of query ${q}`);
    for (let i = 0; i < expected[q].length; i++) {
      assert.ok(Math.abs(actual[q][i][1] - expected[q][i][1]) <= 1e-6, `${what}: score ${i} of query ${q}: ${actual[q][i][1]} vs ${expected[q][i][1]}`);
    }
  }
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json' };

/** Serves test-browser/dist and the snapshot, on 127.0.0.1 at a free port. */
function serve(snapshot: () => Uint8Array): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/snapshot.qsnap') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(snapshot());
      return;
    }
    const file = normalize(join(dist, path === '/' ? 'index.html' : path));
    if (!file.startsWith(dist + '/') || !existsSync(file)) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

type Quiver = { ready: Promise<{ opfs: boolean }>; call(cmd: string, args: unknown): Promise<unknown>; show(text: string): void };
declare const quiver: Quiver;

async function call<T>(page: Page, cmd: string, args: unknown): Promise<T> {
  return page.evaluate(([c, a]) => quiver.call(c as string, a), [cmd, args] as const) as Promise<T>;
}
/** The QuiverError code (or message) a command fails with. */
async function failure(page: Page, cmd: string, args: unknown): Promise<string> {
  return page.evaluate(([c, a]) => quiver.call(c as string, a).then(() => 'no error', (e: { code?: string; message: string }) => e.code ?? e.message), [cmd, args] as const);
}
async function show(page: Page, text: string): Promise<void> {
  await page.evaluate((t) => quiver.show(t), text);
}

describe('browser: OPFS storage and snapshots in Chromium', { skip }, () => {
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let server: Server;
  let url: string;
  let snapshot: Uint8Array;
  let expected: [string, number][][];
  let expectedWithExtra: [string, number][][];

  before(async () => {
    // Node builds the reference collection, with the same sealing as the page
    const c = await Collection.open(new MemoryDirectory('node'), { schema, sealRows: SEAL_ROWS });
    for (let i = 0; i < N; i += 50) await c.upsert(records.slice(i, i + 50).map((r) => ({ ...r, vector: new Float32Array(r.vector) })));
    await c.flush();
    expected = await nodeResults(c);
    snapshot = await c.exportSnapshot();
    await c.upsert(extra.map((r) => ({ ...r, vector: new Float32Array(r.vector) })));
    expectedWithExtra = await nodeResults(c);
    await c.close();

    server = await serve(() => snapshot);
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
    context = await browser.newContext();
    page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    const ready = await page.evaluate(() => quiver.ready);
    assert.equal(ready.opfs, true, `OPFS sync access handles are available in the worker (page errors: ${errors.join('; ')})`);
    for (const name of ['e2e', 'imported']) await call(page, 'wipe', { name });
    await call(page, 'wipe', { name: 'e2e-idb', kind: 'idb' });
  });

  after(async () => {
    await browser?.close();
    server?.close();
  });

  it('OpfsDirectory keeps the Directory contract (names, errors, appends, readers, rename, lock)', async () => {
    const checks = await call<string[]>(page, 'contract', { name: 'contract' });
    assert.ok(checks.includes('reader keeps content after remove') && checks.length >= 25, `checks run: ${checks.join(', ')}`);
  });

  it('builds a collection on OPFS in a worker and searches it like Node does', async () => {
    const opened = await call<{ count: number }>(page, 'open', { key: 'w', name: 'e2e', schema, sealRows: SEAL_ROWS });
    assert.equal(opened.count, 0);
    for (let i = 0; i < N; i += 50) await call(page, 'upsert', { key: 'w', records: records.slice(i, i + 50) });
    await call(page, 'flush', { key: 'w' });
    const stats = await call<{ count: number; segments: number; durable: boolean }>(page, 'stats', { key: 'w' });
    assert.equal(stats.count, N);
    assert.equal(stats.durable, true);
    assert.ok(stats.segments >= 1, `sealed segments on OPFS (got ${stats.segments})`);
    const files = await call<string[]>(page, 'files', { name: 'e2e' });
    assert.ok(files.includes('MANIFEST'), `MANIFEST in ${files.join(', ')}`);
    assert.ok(files.some((f) => f.endsWith('.log')), `a WAL file in ${files.join(', ')}`);
    assert.ok(!files.includes('MANIFEST.tmp'), 'the manifest was renamed into place');
    const got = await call<[string, number][][]>(page, 'search', { key: 'w', queries });
    assertSameResults(got, expected, 'OPFS collection built in the page');
    await show(page, `built ${stats.count} records on OPFS (${stats.segments} segments; files: ${files.join(' ')})`);
    await show(page, `vector top hit ${got[0][0][0]} ${got[0][0][1].toFixed(6)}; text "quiver arrow" top hit ${got[4][0][0]}`);
  });

  it('refuses a second writer in another tab (LOCKED)', async () => {
    const other = await context.newPage();
    await other.goto(url);
    await other.evaluate(() => quiver.ready);
    assert.equal(await failure(other, 'open', { key: 'x', name: 'e2e', schema }), 'LOCKED');
    await other.close();
  });

  it('keeps acknowledged writes across a page reload without close(), and compacts on OPFS', async () => {
    // these stay in the WAL (below sealRows): only the synced log brings them back
    await call(page, 'upsert', { key: 'w', records: extra });
    await page.reload();
    await page.evaluate(() => quiver.ready);
    // the old worker's Web Lock and sync handles go with it; the new worker opens as the writer
    const opened = await call<{ count: number }>(page, 'open', { key: 'w', name: 'e2e', schema, sealRows: SEAL_ROWS });
    assert.equal(opened.count, N + extra.length);
    const got = await call<[string, number][][]>(page, 'search', { key: 'w', queries });
    assertSameResults(got, expectedWithExtra, 'after reload');
    // a merge into one segment: new segment file written and renamed in, old ones removed
    const before = await call<string[]>(page, 'files', { name: 'e2e' });
    const compacted = await call<{ count: number; segments: number }>(page, 'compact', { key: 'w' });
    assert.deepEqual(compacted, { count: N + extra.length, segments: 1 });
    const afterCompact = await call<string[]>(page, 'files', { name: 'e2e' });
    assert.ok(before.filter((f) => f.endsWith('.qseg')).some((f) => !afterCompact.includes(f)), `compaction removed old segment files (${before.join(' ')} -> ${afterCompact.join(' ')})`);
    assertSameResults(await call(page, 'search', { key: 'w', queries }), expectedWithExtra, 'after compaction');
    // the reverse way: a snapshot exported in the browser, opened by Node, answers as the page does
    const exported = Buffer.from(await call<string>(page, 'exportSnapshot', { key: 'w' }), 'base64');
    const fromBrowser = await Collection.openSnapshot(new Uint8Array(exported));
    assert.equal(fromBrowser.count(), N + extra.length);
    assertSameResults(await nodeResults(fromBrowser), expectedWithExtra, 'browser snapshot opened in Node');
    await fromBrowser.close();
    await call(page, 'close', { key: 'w' });
    await show(page, `after reload: ${opened.count} records, same results as Node; compacted: ${afterCompact.join(' ')}; its snapshot (${exported.length} bytes) opened in Node gives the same results`);
  });

  it('opens a Node-built snapshot read-only and imported into OPFS, with Node results', async () => {
    const count = await call<number>(page, 'openSnapshot', { key: 'snap', url: `${url}snapshot.qsnap` });
    assert.equal(count, N);
    assertSameResults(await call(page, 'search', { key: 'snap', queries }), expected, 'openSnapshot');
    assert.equal(await failure(page, 'upsert', { key: 'snap', records: extra }), 'READ_ONLY');

    const imported = await call<{ files: number; bytes: number }>(page, 'importSnapshot', { name: 'imported', url: `${url}snapshot.qsnap` });
    assert.ok(imported.files >= 2 && imported.bytes > 0);
    // a second import into the now non-empty folder is refused
    assert.equal(await failure(page, 'importSnapshot', { name: 'imported', url: `${url}snapshot.qsnap` }), 'INVALID_ARGUMENT');
    const opened = await call<{ count: number }>(page, 'open', { key: 'imp', name: 'imported' });
    assert.equal(opened.count, N);
    assertSameResults(await call(page, 'search', { key: 'imp', queries }), expected, 'imported snapshot');
    // the import is a normal writable collection
    await call(page, 'upsert', { key: 'imp', records: extra });
    assertSameResults(await call(page, 'search', { key: 'imp', queries }), expectedWithExtra, 'imported snapshot after writes');
    await call(page, 'close', { key: 'imp' });
    await show(page, `snapshot (${snapshot.length} bytes): openSnapshot and importSnapshot match Node`);

    mkdirSync(join(root, 'test-results'), { recursive: true });
    await page.screenshot({ path: join(root, 'test-results', 'browser.png'), fullPage: true });
  });

  it('IndexedDbDirectory: keeps the contract, survives a reload without close(), refuses a second tab', async () => {
    const checks = await call<string[]>(page, 'contract', { name: 'contract-idb', kind: 'idb' });
    assert.ok(checks.includes('reader keeps content after remove') && checks.length >= 25, `checks run: ${checks.join(', ')}`);
    const at = { key: 'idb', name: 'e2e-idb', kind: 'idb' };
    await call(page, 'open', { ...at, schema, sealRows: SEAL_ROWS });
    for (let i = 0; i < N; i += 50) await call(page, 'upsert', { key: 'idb', records: records.slice(i, i + 50) });
    await call(page, 'flush', { key: 'idb' });
    await call(page, 'upsert', { key: 'idb', records: extra }); // in the WAL only
    const files = await call<string[]>(page, 'files', at);
    assert.ok(files.includes('MANIFEST') && files.some((f) => f.endsWith('.qseg')) && files.some((f) => f.endsWith('.log')), `files: ${files.join(' ')}`);
    // the worker has OPFS, but a collection that exists only in IndexedDB is found there
    assert.equal(await call(page, 'pick', { name: 'e2e-idb' }), 'indexeddb:e2e-idb');
    assert.equal(await call(page, 'pick', { name: 'e2e' }), 'opfs:e2e');
    const other = await context.newPage();
    await other.goto(url);
    await other.evaluate(() => quiver.ready);
    assert.equal(await failure(other, 'open', { ...at, key: 'x', schema }), 'LOCKED');
    await other.close();
    await page.reload();
    await page.evaluate(() => quiver.ready);
    const opened = await call<{ count: number; segments: number }>(page, 'open', at);
    assert.equal(opened.count, N + extra.length);
    assert.ok(opened.segments >= 1, `sealed segments in IndexedDB (got ${opened.segments})`);
    assertSameResults(await call(page, 'search', { key: 'idb', queries }), expectedWithExtra, 'IndexedDB after reload');
    await call(page, 'close', { key: 'idb' });
    await show(page, `IndexedDB: ${opened.count} records (${opened.segments} segments) after reload, same results as Node`);
  });
});
