/**
 * The same searches timed in Chromium (a dedicated Worker, WASM SIMD kernels) and in Node, in one
 * run, on the same segments.
 *
 *   node --import tsx bench/browser.ts [--rows N] [--queries N] [--repeat R] [--specs "Flat;Flat,SQ8,Rerank"]
 *
 * (`npm run bench:browser -- ...` at the root.) Both sides run the TypeScript sources: Node imports
 * ../src/node.ts (through tsx), the page runs test-browser/bench-page.ts and bench-worker.ts,
 * bundled from the same sources by test-browser/build.mjs, which this script runs first (so a
 * stale ../dist cannot make the two differ). The WASM kernels are the generated
 * src/kernels/*.generated.ts (`npm run build:wasm`). Chromium is Debian's (or
 * CHROMIUM_PATH), driven by playwright-core; without one the script says so and exits 0.
 *
 * Data: SIFT10K (../shared/data/sift10k: base.fvecs 10,000 x 128, query.fvecs 100 queries), metric
 * l2, the first --rows rows and --queries queries. For each index spec: the collection is built in
 * Node (durable MemoryDirectory, upserts of 1,000 rows, flush, so every row is in a sealed
 * segment), exportSnapshot() taken, and that snapshot opened with Collection.openSnapshot in Node
 * and in the page: both search the same segment bytes. Searches are k = 10, one untimed warm-up
 * pass, then --repeat passes of the queries one at a time (each call timed alone: median and p95
 * ms per query, QPS = calls / summed call time) and --repeat batch calls of all the queries
 * (median ms per call / queries). The ids of the first timed pass are compared per query (same ids
 * in the same order). The build (upsert + flush of the same rows into a MemoryDirectory, one build
 * thread in both) is timed too, once each. The page is served cross-origin isolated (COOP/COEP),
 * so performance.now() in the worker is not coarsened to 0.1 ms.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { DATA_DIR, ROOT, fail, machineInfo, median, optionValue, percentile, positiveInt, round, runMain, type Quiver } from './common.js';
import { findChromium } from '../test-browser/chromium.js';

const K = 10;
const CHUNK = 1000;
const METRIC = 'l2' as const;
const DEFAULT_SPECS = ['Flat', 'Flat,SQ8,Rerank', 'HNSW16,SQ8,Rerank'];
const USAGE = 'usage: node --import tsx bench/browser.ts [--rows N] [--queries N] [--repeat R] [--specs "Flat;Flat,SQ8,Rerank"]';
const DIST = join(ROOT, 'test-browser', 'dist');

type Collection = Awaited<ReturnType<Quiver['Collection']['openSnapshot']>>;
interface BenchResult { perQuery: number[]; batchMs: number[]; ids: string[][] }
interface BuildResult { upsertMs: number; flushMs: number; totalMs: number; segments: number }


// ---- Node: the same loops as test-browser/bench-worker.ts ------------------------------------

async function nodeBuild(q: Quiver, base: Float32Array, n: number, d: number, spec: string): Promise<{ build: BuildResult; snapshot: Uint8Array }> {
  const t0 = performance.now();
  const c = await q.Collection.open(new q.MemoryDirectory('bench'), { schema: { dimension: d, metric: METRIC, index: spec }, kernels: 'wasm', buildThreads: 1 });
  for (let i = 0; i < n; i += CHUNK) {
    const recs = [];
    for (let j = i; j < Math.min(n, i + CHUNK); j++) recs.push({ id: `v${j}`, vector: base.subarray(j * d, (j + 1) * d) });
    await c.upsert(recs);
  }
  const t1 = performance.now();
  await c.flush();
  const t2 = performance.now();
  const segments = c.stats().segments;
  const snapshot = await c.exportSnapshot();
  await c.close();
  return { build: { upsertMs: t1 - t0, flushMs: t2 - t1, totalMs: t2 - t0, segments }, snapshot };
}

async function nodeBench(c: Collection, queries: Float32Array, nq: number, d: number, repeat: number): Promise<BenchResult> {
  const qs = Array.from({ length: nq }, (_, i) => queries.subarray(i * d, (i + 1) * d));
  for (const v of qs) await c.search(v, { k: K });
  const perQuery: number[] = [];
  let ids: string[][] = [];
  for (let r = 0; r < repeat; r++) {
    const pass: string[][] = [];
    for (const v of qs) {
      const t0 = performance.now();
      const hits = await c.search(v, { k: K });
      perQuery.push(performance.now() - t0);
      pass.push(hits.map((h) => h.id));
    }
    if (r === 0) ids = pass;
  }
  const batchMs: number[] = [];
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    await c.search(qs, { k: K });
    batchMs.push(performance.now() - t0);
  }
  return { perQuery, batchMs, ids };
}

// ---- the page ------------------------------------------------------------------------------

const PAGE = '<!doctype html><meta charset="utf-8"><title>QuiverDB browser benchmark</title><script type="module" src="./bench-page.js"></script>';

/** Serves the bundles, the page and named byte blobs on 127.0.0.1, cross-origin isolated. */
function serve(blobs: Map<string, Uint8Array>): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp', 'cache-control': 'no-store' };
    const blob = blobs.get(path);
    if (blob) { res.writeHead(200, { ...headers, 'content-type': 'application/octet-stream' }).end(blob); return; }
    if (path === '/') { res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' }).end(PAGE); return; }
    if ((path === '/bench-page.js' || path === '/bench-worker.js') && existsSync(join(DIST, path))) {
      res.writeHead(200, { ...headers, 'content-type': 'text/javascript' }).end(readFileSync(join(DIST, path)));
      return;
    }
    res.writeHead(404, headers).end('not found');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

type Bench = { ready: Promise<{ simd: boolean; crossOriginIsolated: boolean }>; call(cmd: string, args: unknown): Promise<unknown> };
declare const quiverBench: Bench;

async function call<T>(page: Page, cmd: string, args: unknown): Promise<T> {
  return page.evaluate(([c, a]) => quiverBench.call(c as string, a), [cmd, args] as const) as Promise<T>;
}

// ---- report ----------------------------------------------------------------------------------

function summary(r: BenchResult, nq: number): { median: number; p95: number; qps: number; batchPerQuery: number } {
  const sorted = [...r.perQuery].sort((a, b) => a - b);
  const total = r.perQuery.reduce((s, x) => s + x, 0);
  return { median: median(sorted), p95: percentile(sorted, 0.95), qps: r.perQuery.length / (total / 1000), batchPerQuery: median(r.batchMs) / nq };
}

function agreement(a: string[][], b: string[][]): { equal: number; overlap: number } {
  let equal = 0, overlap = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i].length === b[i].length && a[i].every((id, j) => id === b[i][j])) equal++;
    const s = new Set(b[i]);
    overlap += a[i].filter((id) => s.has(id)).length / Math.max(1, a[i].length);
  }
  return { equal: equal / a.length, overlap: overlap / a.length };
}

const f = (x: number, digits = 3) => round(x, digits).toString();

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let rows = 10_000, nqWanted = 100, repeat = 5, specs = DEFAULT_SPECS;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rows') rows = positiveInt(optionValue(argv, i++, a), a);
    else if (a === '--queries') nqWanted = positiveInt(optionValue(argv, i++, a), a);
    else if (a === '--repeat') repeat = positiveInt(optionValue(argv, i++, a), a);
    else if (a === '--specs') specs = optionValue(argv, i++, a).split(';').map((s) => s.trim()).filter(Boolean);
    else fail(`unknown option ${a}\n${USAGE}`);
  }

  const executablePath = findChromium();
  if (!executablePath) {
    console.log('bench/browser.ts: skipped, no chromium executable found (set CHROMIUM_PATH, or install chromium)');
    return;
  }
  const dataDir = join(DATA_DIR, 'sift10k');
  if (!existsSync(join(dataDir, 'base.fvecs'))) fail(`${dataDir}/base.fvecs is missing (the test data lives in ../shared/data beside the repository)`);

  // bundle the page and worker from the current sources
  const built = spawnSync(process.execPath, [join(ROOT, 'test-browser', 'build.mjs')], { encoding: 'utf8' });
  if (built.status !== 0) fail(`test-browser/build.mjs failed: ${built.stderr || built.stdout}`);

  // the sources, as the page's bundle is (not ../dist, which may be older than src/)
  const q: Quiver = await import('../src/node.js');
  const baseFile = await q.readVectorFile(join(dataDir, 'base.fvecs'));
  const queryFile = await q.readVectorFile(join(dataDir, 'query.fvecs'));
  const d = baseFile.dimension;
  const n = Math.min(rows, baseFile.count), nq = Math.min(nqWanted, queryFile.count);
  const base = baseFile.data.slice(0, n * d);
  const queries = queryFile.data.slice(0, nq * d);
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

  const blobs = new Map<string, Uint8Array>([['/base.f32', bytes(base)], ['/queries.f32', bytes(queries)]]);
  const server = await serve(blobs);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    const ready = await page.evaluate(() => quiverBench.ready).catch((e: Error) => fail(`the page did not start: ${e.message} ${errors.join('; ')}`));
    if (!ready.simd) fail('WASM SIMD is not available in this Chromium');
    await call(page, 'queries', { url: `${url}queries.f32`, nq, d });

    const machine = machineInfo();
    const version = browser.version();
    console.log(`# QuiverDB in Chromium vs Node: SIFT10K, ${n} x ${d} rows, ${nq} queries, k = ${K}, metric ${METRIC}, repeat ${repeat}`);
    console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, load ${machine.loadAverage.join(' ')}`);
    console.log(`Chromium ${version} (${executablePath}), headless; worker crossOriginIsolated: ${ready.crossOriginIsolated}; kernels: wasm (SIMD) in both\n`);

    const searchRows: string[] = [];
    const detailRows: string[] = [];
    const buildRows: string[] = [];
    for (const spec of specs) {
      process.stderr.write(`${spec}: build in Node ...\n`);
      const { build: nb, snapshot } = await nodeBuild(q, base, n, d, spec);
      process.stderr.write(`${spec}: build in Chromium ...\n`);
      const cb = await call<BuildResult>(page, 'build', { url: `${url}base.f32`, n, d, spec, metric: METRIC, chunk: CHUNK });
      buildRows.push(`| ${spec} | ${f(nb.totalMs / 1000, 2)} (${f(nb.upsertMs / 1000, 2)} + ${f(nb.flushMs / 1000, 2)}) | ${f(cb.totalMs / 1000, 2)} (${f(cb.upsertMs / 1000, 2)} + ${f(cb.flushMs / 1000, 2)}) | ${f(cb.totalMs / nb.totalMs, 2)} | ${nb.segments} / ${cb.segments} |`);

      const path = `/snapshot-${spec.replace(/[^A-Za-z0-9]/g, '_')}.qsnap`;
      blobs.set(path, snapshot);
      const nodeCol = await q.Collection.openSnapshot(snapshot, { kernels: 'wasm' });
      const opened = await call<{ count: number; segments: number; kernels: string }>(page, 'openSnapshot', { key: spec, url: `${url}${path.slice(1)}` });
      if (opened.count !== n || nodeCol.count() !== n) fail(`${spec}: snapshot holds ${nodeCol.count()} rows in Node, ${opened.count} in the page, expected ${n}`);
      if (opened.kernels !== 'wasm-simd' || nodeCol.stats().kernels !== 'wasm-simd') fail(`${spec}: kernels ${nodeCol.stats().kernels} in Node, ${opened.kernels} in the page`);

      process.stderr.write(`${spec}: search in Node ...\n`);
      const nr = await nodeBench(nodeCol, queries, nq, d, repeat);
      process.stderr.write(`${spec}: search in Chromium ...\n`);
      const cr = await call<BenchResult>(page, 'bench', { key: spec, k: K, repeat });
      await nodeCol.close();
      await call(page, 'close', { key: spec });
      blobs.delete(path);

      const ns = summary(nr, nq), cs = summary(cr, nq);
      const ag = agreement(cr.ids, nr.ids);
      searchRows.push(`| ${spec} | ${f(ns.median)} | ${f(cs.median)} | ${f(cs.median / ns.median, 2)} | ${ag.equal === 1 ? 'yes' : 'no'} (${round(ag.equal * 100, 1)}% of queries; overlap ${f(ag.overlap)}) |`);
      detailRows.push(`| ${spec} | ${f(ns.p95)} / ${f(cs.p95)} | ${Math.round(ns.qps)} / ${Math.round(cs.qps)} | ${f(ns.batchPerQuery)} / ${f(cs.batchPerQuery)} | ${opened.segments} | ${f(snapshot.length / 2 ** 20, 2)} |`);
    }

    console.log('| spec | Node ms/query (median) | Chromium ms/query (median) | ratio | ids equal |');
    console.log('| --- | ---: | ---: | ---: | --- |');
    for (const r of searchRows) console.log(r);
    console.log('\n| spec | p95 ms/query Node / Chromium | QPS Node / Chromium | batch ms/query Node / Chromium | segments | snapshot MiB |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const r of detailRows) console.log(r);
    console.log('\n| spec | build s in Node (upsert + flush) | build s in Chromium (upsert + flush) | ratio | segments Node / Chromium |');
    console.log('| --- | ---: | ---: | ---: | --- |');
    for (const r of buildRows) console.log(r);
    if (errors.length) console.log(`\npage errors: ${errors.join('; ')}`);
  } finally {
    await browser?.close();
    server.close();
  }
}

await runMain('bench/browser.ts', main);
