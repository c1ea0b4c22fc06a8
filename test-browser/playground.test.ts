// End-to-end test of the playground (playground/) in Chromium, driven by playwright-core through
// the page's own controls: starts playground/serve.mjs on a free port, searches a GloVe word on
// the exact and the graph snapshot and a Moby-Dick text, comparing each with the same search run
// in Node on the same snapshot file, then runs the recall-vs-latency measurement with few queries
// and checks the chart. Saves test-results/playground.png (the full page).
// Needs playground/dist (`npm run playground:build`, which `npm run test:browser` runs first).
// Skipped only when no chromium executable is found (CHROMIUM_PATH, /usr/bin/chromium, PATH).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Collection } from '../src/index.js';
import type { PlaygroundManifest } from '../playground/protocol.js';
import { findChromium } from './chromium.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const dist = join(root, 'playground', 'dist');
const data = join(dist, 'data');

const executablePath = findChromium();
const skip = executablePath ? false : 'no chromium executable found (set CHROMIUM_PATH, or install chromium)';
if (executablePath && !(existsSync(join(dist, 'worker.js')) && existsSync(join(data, 'manifest.json')))) {
  // not a skip: bundling and the data are this test's build step (npm run test:browser)
  throw new Error('playground/dist is not built: run `npm run playground:build` (npm run test:browser does)');
}

const K = 10;
type Row = { id: string; score: number };

/** Starts playground/serve.mjs on a free port; resolves with the URL it prints. */
function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [join(root, 'playground', 'serve.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve.mjs printed no URL in 10 s: ${out}`)), 10_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, url: m[0] }); }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve.mjs exited with ${code}: ${out}`)); });
  });
}

async function openSnapshot(file: string): Promise<Collection> {
  return Collection.openSnapshot(new Uint8Array(readFileSync(join(data, file))));
}

/** The rows of the page's result table, with full-precision scores (data-score). */
async function pageRows(page: Page): Promise<Row[]> {
  return page.$$eval('#results tbody tr', (trs) => trs.map((tr) => ({ id: (tr as HTMLElement).dataset.id!, score: Number((tr as HTMLElement).dataset.score) })));
}

/** Types a query in the form and waits for the table (or the message) that answers it. */
async function searchInPage(page: Page, query: string): Promise<string> {
  await page.fill('#query', query);
  await page.press('#query', 'Enter');
  await page.waitForSelector(`#results[data-query="${query}"]:is([data-state="done"], [data-state="missing"])`, { state: 'attached', timeout: 60_000 });
  return (await page.getAttribute('#results', 'data-state'))!;
}

function assertSame(actual: Row[], expected: Row[], what: string): void {
  assert.ok(expected.length > 0, `${what}: Node finds hits`);
  assert.deepEqual(actual.map((r) => r.id), expected.map((r) => r.id), `${what}: the page's ids equal Node's`);
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i].score - e.score) <= 1e-6, `${what}: score ${i}: ${actual[i].score} vs ${e.score}`));
}

describe('playground in Chromium', { skip }, () => {
  let manifest: PlaygroundManifest;
  let server: { child: ChildProcess; url: string };
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    manifest = JSON.parse(readFileSync(join(data, 'manifest.json'), 'utf8')) as PlaygroundManifest;
    server = await startServer();
    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 }).catch((e: Error) => {
      throw new Error(`the playground did not start: ${e.message}; page errors: ${errors.join('; ')}`);
    });
  });

  after(async () => {
    await browser?.close();
    server?.child.kill('SIGTERM');
  });

  it('serves the page cross-origin isolated, with the WASM SIMD kernels', async () => {
    const status = await page.textContent('#status');
    assert.match(status!, /WASM SIMD yes/);
    assert.match(status!, /cross-origin isolated yes/);
  });

  for (const spec of ['Flat', 'HNSW16,SQ8,Rerank']) {
    it(`"king" on ${spec}: royal neighbours, the same as Node on the same snapshot`, async () => {
      const s = manifest.glove.snapshots.find((x) => x.spec === spec);
      assert.ok(s, `the data has a ${spec} snapshot`);
      await page.selectOption('#collection', 'glove');
      await page.selectOption('#spec', spec);
      assert.equal(await searchInPage(page, 'king'), 'done');
      const rows = await pageRows(page);
      assert.equal(rows.length, K);
      const ids = rows.map((r) => r.id);
      assert.ok(!ids.includes('king'), 'the query word is left out');
      assert.ok(ids.includes('queen') || ids.includes('prince'), `a royal word among ${ids.join(', ')}`);
      assert.equal(await page.textContent('#f-spec'), spec, 'the page shows the spec in use');
      assert.match((await page.textContent('#f-latency'))!, /\d ms/);

      // Node: the word's stored vector from the exact snapshot, searched on this one
      const flat = await openSnapshot(manifest.glove.snapshots[0].file);
      const c = spec === 'Flat' ? flat : await openSnapshot(s.file);
      try {
        const hits = await c.search(flat.get('king').vector, { k: K + 1, includeMetadata: false });
        assertSame(rows, hits.filter((h) => h.id !== 'king').slice(0, K), `king on ${spec}`);
      } finally {
        await flat.close();
        if (c !== flat) await c.close();
      }
    });
  }

  it('an unknown word gets a clear message', async () => {
    await page.selectOption('#spec', 'Flat');
    assert.equal(await searchInPage(page, 'qzxwv'), 'missing');
    assert.equal(await page.textContent('#message'), `"qzxwv" is not one of the ${manifest.glove.words.toLocaleString('en-US')} words of this collection`);
  });

  it('Moby-Dick: BM25 passages, the same as Node', async () => {
    await page.selectOption('#collection', 'moby-dick');
    assert.equal(await searchInPage(page, 'white whale'), 'done');
    const rows = await pageRows(page);
    assert.equal(rows.length, K);
    assert.ok((await page.$$('#results tbody mark')).length > 0, 'query words are highlighted');
    const c = await openSnapshot(manifest.text.file);
    try {
      const hits = await c.search({ text: 'white whale', k: K });
      assertSame(rows, hits, 'white whale');
    } finally {
      await c.close();
    }
  });

  it('measures recall against latency and draws one line per approximate spec', async () => {
    await page.fill('#m-queries', '50');
    await page.selectOption('#m-mode', 'recall');
    await page.click('#measure-button');
    await page.waitForSelector('#chart[data-state="done"], #chart[data-state="error"]', { state: 'attached', timeout: 120_000 });
    assert.equal(await page.getAttribute('#chart', 'data-state'), 'done', (await page.textContent('#m-status'))!);
    const approximate = manifest.glove.snapshots.slice(1).map((s) => s.spec);
    const lines = await page.$$eval('#chart svg polyline', (ps) => ps.map((p) => p.getAttribute('data-spec')));
    assert.deepEqual(lines, approximate, 'one polyline per approximate spec');
    const points = await page.$$eval('#measure-table tbody tr', (trs) => trs.map((tr) => ({
      spec: (tr as HTMLElement).dataset.spec!, recall: Number((tr as HTMLElement).dataset.recall), ms: Number((tr as HTMLElement).dataset.ms),
    })));
    for (const p of points) {
      assert.ok(p.recall >= 0 && p.recall <= 1, `recall ${p.recall} of ${p.spec} in [0, 1]`);
      assert.ok(p.ms > 0 && Number.isFinite(p.ms), `latency ${p.ms} of ${p.spec}`);
    }
    const hnsw = points.filter((p) => p.spec.startsWith('HNSW'));
    assert.ok(hnsw.length > 1, 'HNSW measured at several settings');
    assert.ok(hnsw[hnsw.length - 1].recall >= 0.9, `HNSW recall at the largest setting: ${hnsw[hnsw.length - 1].recall}`);
    const circles = await page.$$eval('#chart svg g.series circle', (cs) => cs.map((c) => Number(c.getAttribute('data-recall'))));
    assert.equal(circles.length, points.length - 1, 'a point per measured setting (Flat drawn apart)');

    mkdirSync(join(root, 'test-results'), { recursive: true });
    await page.screenshot({ path: join(root, 'test-results', 'playground.png'), fullPage: true });
    assert.deepEqual(errors, [], 'no errors in the page');
  });
});
