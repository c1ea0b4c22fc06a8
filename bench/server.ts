/**
 * The HTTP server under load: throughput and latency of searches, upserts and a 90/10 mix at
 * increasing concurrency, /healthz latency meanwhile, the same searches through the library in
 * process (the HTTP overhead), and a soak that SIGKILLs the server mid-load and checks that every
 * write answered with a 2xx survived.
 *
 *   node --import tsx bench/server.ts [--smoke] [--datasets glove,msmarco] [--rows N] [--index SPEC]
 *        [--concurrency 1,4,16,64] [--seconds 5] [--k 10] [--recall 0.95] [--upsert-batch 10]
 *        [--soak-kills 5] [--driver autocannon|builtin] [--search-threads N] [--out FILE]
 *
 * (`npm run bench:server` at the root; `npm run bench:install` installs autocannon.) The product
 * is the built ../dist (`npm run build` first). Loopback only; everything lives in one temporary
 * directory, removed at the end. Bounded: each measurement runs `--seconds`.
 *
 * 1. Build: the dataset is upserted into a durable collection (`--index`, default
 *    HNSW16,SQ8,Rerank) through the library, flushed and closed.
 * 2. Library: the same collection opened in this process, searches one after another for
 *    `--seconds` (k, recall as below): queries per second and latency per query.
 * 3. Server: `quiverdb/server` in a child process (no logs, no rate limit) over that directory.
 *    For each concurrency level: search-only (POST .../search, one query per request), upsert-only
 *    (POST .../records, `--upsert-batch` new records per request), and a mix drawing 90% searches
 *    and 10% upserts, each for `--seconds` with that many connections (autocannon, or a built-in
 *    fetch loop when autocannon is not installed in bench/node_modules). Meanwhile a worker thread
 *    of this process sends GET /healthz every 10 ms on its own connection: its p99 is what a load
 *    balancer would see.
 * 4. Soak (msmarco, or the first dataset): a fresh collection; 8 writers upsert batches of 10 while
 *    the server is SIGKILLed at a random moment, `--soak-kills` times; after each restart a reader
 *    opened beside the server must find every record whose write was answered 2xx (exit 1 if not).
 *
 * --smoke: 2,000 msmarco rows, concurrency 1 and 4 for 1 s each, 2 kills: checks the code runs
 * (test/bench-server-smoke.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BENCH_DIR, ROOT, fail, loadGlove, loadMsmarco, loadProduct, machineInfo, optionValue, percentile, positiveInt, round, runMain, seeded, type Dataset, type Quiver } from './common.js';

// ---- load drivers ----------------------------------------------------------------------------

interface NextRequest { method: 'GET' | 'POST'; path: string; body?: string }

/** What one measurement of a driver gives. */
export interface DriveResult {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Answers other than 2xx. */
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
}

/** The part of autocannon's API used here (it is an optional peer, loaded untyped). */
type Autocannon = (opts: Record<string, unknown>, done: (err: unknown, result: {
  requests: { total: number }; duration: number; latency: { p50: number; p99: number; max: number }; non2xx: number; errors: number; timeouts: number;
}) => void) => unknown;

function loadAutocannon(): { fn?: Autocannon; version?: string; missing?: string } {
  const require = createRequire(join(BENCH_DIR, 'package.json'));
  try {
    return { fn: require('autocannon') as Autocannon, version: (require('autocannon/package.json') as { version: string }).version };
  } catch {
    return { missing: 'autocannon is not installed in bench/node_modules (npm run bench:install): the built-in fetch driver measured instead' };
  }
}

async function driveAutocannon(autocannon: Autocannon, url: string, connections: number, seconds: number, next: () => NextRequest): Promise<DriveResult> {
  const r = await new Promise<Parameters<Parameters<Autocannon>[1]>[1]>((resolve, reject) => {
    autocannon({
      url, connections, duration: seconds,
      requests: [{
        setupRequest: (req: Record<string, unknown>) => {
          const n = next();
          return { ...req, method: n.method, path: n.path, body: n.body, headers: { 'content-type': 'application/json' } };
        },
      }],
    }, (err, result) => (err ? reject(err) : resolve(result)));
  });
  return {
    requests: r.requests.total, seconds: r.duration, requestsPerSecond: round(r.requests.total / r.duration, 1),
    latencyMs: { p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max }, non2xx: r.non2xx, errors: r.errors + r.timeouts,
  };
}

/** `connections` loops of fetch (undici keeps the connections alive), for `seconds`. */
async function driveBuiltin(url: string, connections: number, seconds: number, next: () => NextRequest): Promise<DriveResult> {
  const lat: number[] = [];
  let non2xx = 0, errors = 0;
  const t0 = performance.now(), end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      const n = next();
      const t = performance.now();
      try {
        const res = await fetch(url + n.path, { method: n.method, headers: n.body ? { 'content-type': 'application/json' } : {}, body: n.body });
        await res.arrayBuffer();
        if (!res.ok) non2xx++;
      } catch {
        errors++;
      }
      lat.push(performance.now() - t);
    }
  }));
  const s = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { requests: lat.length, seconds: round(s, 2), requestsPerSecond: round(lat.length / s, 1), latencyMs: { p50: round(percentile(lat, 0.5), 2), p99: round(percentile(lat, 0.99), 2), max: round(lat[lat.length - 1] ?? 0, 2) }, non2xx, errors };
}

/**
 * A worker thread that sends GET /healthz every `intervalMs` on its own keep-alive connection
 * until stopped, then hands back its latencies (its own event loop: the load this process drives
 * does not delay its clock).
 */
function healthProbe(url: string, intervalMs = 10): { stop: () => Promise<{ samples: number; p50: number; p99: number; max: number; failed: number }> } {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const http = require('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const lat = []; let failed = 0, stopped = false;
    parentPort.on('message', () => { stopped = true; });
    const once = () => new Promise((resolve) => {
      const t = performance.now();
      http.get(workerData.url + '/healthz', { agent }, (res) => { res.resume(); res.on('end', () => { if (res.statusCode !== 200) failed++; lat.push(performance.now() - t); resolve(); }); })
        .on('error', () => { failed++; resolve(); });
    });
    (async () => {
      while (!stopped) { const t = performance.now(); await once(); const wait = workerData.intervalMs - (performance.now() - t); if (wait > 0) await new Promise((r) => setTimeout(r, wait)); }
      agent.destroy();
      parentPort.postMessage({ lat, failed });
    })();`;
  const worker = new Worker(code, { eval: true, workerData: { url, intervalMs } });
  return {
    stop: () => new Promise((resolve, reject) => {
      worker.once('message', (m: { lat: number[]; failed: number }) => {
        void worker.terminate();
        const lat = m.lat.sort((a, b) => a - b);
        resolve({ samples: lat.length, p50: round(percentile(lat, 0.5), 2), p99: round(percentile(lat, 0.99), 2), max: round(lat[lat.length - 1] ?? 0, 2), failed: m.failed });
      });
      worker.once('error', reject);
      worker.postMessage('stop');
    }),
  };
}

// ---- the server in a child process -----------------------------------------------------------

const CHILD = `
const { createServer, listen } = await import(process.env.QUIVER_BENCH_SERVER);
const threads = process.env.QUIVER_BENCH_SEARCH_THREADS;
const app = createServer({ dataDir: process.env.QUIVER_BENCH_DATA, logger: false, limits: { ratePerSecond: 0, bodyBytes: 64 << 20 }, ...(threads ? { searchThreads: Number(threads) } : {}) });
const address = await listen(app, { port: 0 });
process.stdout.write('LISTENING ' + address + '\\n');
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)); });
`;

/** The server's searchThreads (--search-threads; default: the server's own, the machine's cores). */
let searchThreads: number | undefined;

interface ServerProcess { child: ChildProcess; url: string; stop: () => Promise<void>; kill: () => Promise<void> }

async function startServer(dataDir: string): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
    env: { ...process.env, QUIVER_BENCH_DATA: dataDir, QUIVER_BENCH_SERVER: pathToFileURL(join(ROOT, 'dist', 'server', 'index.js')).href, ...(searchThreads !== undefined ? { QUIVER_BENCH_SEARCH_THREADS: String(searchThreads) } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '', err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /LISTENING (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    void exited.then(() => reject(new Error(`the server exited before listening: ${err}`)));
  });
  // ready = the collections of the directory are open (write-ahead logs replayed)
  for (let i = 0; ; i++) {
    const res = await fetch(`${url}/readyz`).catch(() => null);
    if (res?.status === 200) break;
    if (i > 6000) fail('the server did not become ready in 60 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  const signal = async (s: NodeJS.Signals) => { if (child.exitCode === null && child.signalCode === null) child.kill(s); await exited; };
  return { child, url, stop: () => signal('SIGTERM'), kill: () => signal('SIGKILL') };
}

// ---- measurements ----------------------------------------------------------------------------

export interface LoadRow {
  scenario: 'search' | 'upsert' | 'mix 90/10';
  connections: number;
  result: DriveResult;
  /** For upserts: records written per second (requests x batch). */
  recordsPerSecond?: number;
  /** For searches with --search-batch above 1: query vectors per request, and queries answered per second. */
  queriesPerRequest?: number;
  queriesPerSecond?: number;
  health: { samples: number; p50: number; p99: number; max: number; failed: number };
}

export interface SoakResult {
  kills: number;
  acknowledgedRecords: number;
  /** Writes sent but not answered when the server was killed (they may or may not be there). */
  unansweredWrites: number;
  lost: number;
  tornTailsDropped: number;
  seconds: number;
}

export interface ServerReport {
  date: string;
  command: string;
  machine: ReturnType<typeof machineInfo> & { loadAverageAtEnd?: number[] };
  smoke: boolean;
  driver: string;
  notes: string[];
  k: number;
  recall: number;
  upsertBatch: number;
  datasets: {
    name: string; n: number; d: number; index: string; note: string; buildSeconds: number;
    library: { queries: number; queriesPerSecond: number; latencyMs: { p50: number; p99: number } };
    /** The same searches over HTTP, one after another on one connection (fetch, timed here). */
    http: DriveResult;
    load: LoadRow[];
    /** HTTP p50 over the library's p50 per query; library QPS over HTTP QPS (both one search after another). */
    overhead: { latencyRatio: number; throughputRatio: number };
  }[];
  soak?: SoakResult & { dataset: string };
}

type Collection = Awaited<ReturnType<Quiver['Collection']['open']>>;

async function buildCollection(q: Quiver, ds: Dataset, dir: string, index: string, log: (s: string) => void): Promise<number> {
  const t0 = performance.now();
  const col: Collection = await q.Collection.open(dir, { schema: { dimension: ds.d, metric: 'cosine', index } });
  try {
    for (let s = 0; s < ds.n; s += 5000) {
      const e = Math.min(ds.n, s + 5000);
      const records = [];
      for (let i = s; i < e; i++) records.push({ id: String(i), vector: ds.base.subarray(i * ds.d, (i + 1) * ds.d) });
      await col.upsert(records);
    }
    await col.flush();
    await col.idle();
  } finally {
    await col.close();
  }
  const s = (performance.now() - t0) / 1000;
  log(`  built ${ds.n} x ${ds.d} (${index}) in ${s.toFixed(1)} s`);
  return round(s, 1);
}

async function librarySearches(q: Quiver, ds: Dataset, dir: string, k: number, recall: number, seconds: number): Promise<ServerReport['datasets'][number]['library']> {
  const col: Collection = await q.Collection.open(dir, { readOnly: true });
  try {
    const lat: number[] = [];
    const end = performance.now() + seconds * 1000;
    for (let i = 0; i < 20; i++) await col.search(ds.queries.subarray((i % ds.nq) * ds.d, (i % ds.nq + 1) * ds.d), { k, recall }); // warm-up
    const t0 = performance.now();
    for (let i = 0; performance.now() < end; i++) {
      const t = performance.now();
      await col.search(ds.queries.subarray((i % ds.nq) * ds.d, (i % ds.nq + 1) * ds.d), { k, recall });
      lat.push(performance.now() - t);
    }
    const s = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    return { queries: lat.length, queriesPerSecond: round(lat.length / s, 1), latencyMs: { p50: round(percentile(lat, 0.5), 3), p99: round(percentile(lat, 0.99), 3) } };
  } finally {
    await col.close();
  }
}

/** Request makers over a dataset: searches cycle through the queries, upserts write new ids. */
function requestMakers(ds: Dataset, name: string, k: number, recall: number, batch: number, seed: number, searchBatch = 1) {
  const rand = seeded(seed);
  const nq = Math.min(ds.nq, 1000);
  const vectorOf = (i: number) => Array.from(ds.queries.subarray((i % nq) * ds.d, (i % nq + 1) * ds.d));
  // one query per request, or `searchBatch` of them as { vectors } (the server's batch form)
  const searches = Array.from({ length: nq }, (_, i) => JSON.stringify(searchBatch === 1
    ? { vector: vectorOf(i), k, recall }
    : { vectors: Array.from({ length: searchBatch }, (_, j) => vectorOf(i * searchBatch + j)), k, recall }));
  const rows = Array.from({ length: Math.min(ds.n, 1000) }, (_, i) => JSON.stringify(Array.from(ds.base.subarray(i * ds.d, (i + 1) * ds.d))));
  let s = 0, u = 0;
  const search = (): NextRequest => ({ method: 'POST', path: `/collections/${name}/search`, body: searches[s++ % searches.length] });
  const upsert = (): NextRequest => {
    const parts: string[] = [];
    for (let j = 0; j < batch; j++, u++) parts.push(`{"id":"u${seed}-${u}","vector":${rows[u % rows.length]}}`);
    return { method: 'POST', path: `/collections/${name}/records`, body: `{"records":[${parts.join(',')}]}` };
  };
  return { search, upsert, mix: (): NextRequest => (rand() < 0.9 ? search() : upsert()) };
}

async function soak(q: Quiver, ds: Dataset, dataDir: string, kills: number, log: (s: string) => void): Promise<SoakResult> {
  const t0 = performance.now();
  const rand = seeded(7);
  const name = 'soak';
  const rows = Array.from({ length: Math.min(ds.n, 500) }, (_, i) => JSON.stringify(Array.from(ds.base.subarray(i * ds.d, (i + 1) * ds.d))));
  const acknowledged: string[] = [];
  let unanswered = 0, torn = 0, seq = 0;
  let server = await startServer(dataDir);
  const put = await fetch(`${server.url}/collections/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dimension: ds.d }) });
  if (!put.ok) fail(`soak: creating the collection answered ${put.status} ${await put.text()}`);
  for (let round = 1; round <= kills; round++) {
    let killed = false;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      while (!killed) {
        const ids = Array.from({ length: 10 }, (_, j) => `k${round}-w${w}-${seq}-${j}`);
        seq++;
        const body = `{"records":[${ids.map((id, j) => `{"id":"${id}","vector":${rows[(seq + j) % rows.length]}}`).join(',')}]}`;
        try {
          const res = await fetch(`${server.url}/collections/${name}/records`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          await res.arrayBuffer();
          if (res.ok) acknowledged.push(...ids);
          else if (res.status !== 503) fail(`soak: a write answered ${res.status}`);
        } catch {
          unanswered++;
          return; // the server is gone
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300 + rand() * 1500));
    await server.kill();
    killed = true;
    await Promise.all(writers);
    server = await startServer(dataDir);
    const info = await (await fetch(`${server.url}/collections/${name}`)).json() as { info: { recovery: { tornTail?: unknown } } };
    if (info.info.recovery.tornTail) torn++;
    // a reader beside the restarted server: every acknowledged write must be there
    const reader: Collection = await q.Collection.open(join(dataDir, name), { readOnly: true });
    let lost = 0;
    try {
      for (const id of acknowledged) if (!reader.has(id)) lost++;
    } finally {
      await reader.close();
    }
    log(`  soak round ${round}/${kills}: SIGKILL, restart; ${acknowledged.length} acknowledged records checked, ${lost} lost`);
    if (lost > 0) {
      await server.stop();
      fail(`soak: ${lost} records acknowledged with a 2xx are missing after SIGKILL and restart`);
    }
  }
  await server.stop();
  return { kills, acknowledgedRecords: acknowledged.length, unansweredWrites: unanswered, lost: 0, tornTailsDropped: torn, seconds: round((performance.now() - t0) / 1000, 1) };
}

// ---- report ----------------------------------------------------------------------------------

function markdown(r: ServerReport): string {
  const lines: string[] = [];
  const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
  for (const ds of r.datasets) {
    lines.push(`### ${ds.name}: ${ds.n.toLocaleString('en-US')} x ${ds.d}, ${ds.index}, k = ${r.k}, recall target ${r.recall}`, '');
    lines.push(`Library in process (one search after another): ${ds.library.queriesPerSecond} queries/s, p50 ${ms(ds.library.latencyMs.p50)} ms, p99 ${ms(ds.library.latencyMs.p99)} ms.`);
    lines.push(`The same over HTTP (one connection, fetch): ${ds.http.requestsPerSecond} queries/s, p50 ${ms(ds.http.latencyMs.p50)} ms, p99 ${ms(ds.http.latencyMs.p99)} ms: ${ds.overhead.latencyRatio}x the library's latency, ${ds.overhead.throughputRatio}x fewer queries per second.`, '');
    lines.push(`Under load (${r.driver}${r.driver.startsWith('autocannon') ? ': its latencies are whole milliseconds' : ''}):`, '');
    lines.push('| scenario | connections | requests/s | records/s (upserts) or queries/s (batched searches) | p50 ms | p99 ms | non-2xx | errors | /healthz p50 ms | /healthz p99 ms |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const row of ds.load) {
      const x = row.result;
      lines.push(`| ${row.scenario}${row.queriesPerRequest ? ` (${row.queriesPerRequest} queries a request)` : ''} | ${row.connections} | ${x.requestsPerSecond} | ${row.recordsPerSecond ?? row.queriesPerSecond ?? ''} | ${ms(x.latencyMs.p50)} | ${ms(x.latencyMs.p99)} | ${x.non2xx} | ${x.errors} | ${ms(row.health.p50)} | ${ms(row.health.p99)} |`);
    }
    lines.push('');
  }
  if (r.soak) {
    const s = r.soak;
    lines.push(`### Soak (${s.dataset}): ${s.kills} SIGKILLs under 8 concurrent writers`, '');
    lines.push(`${s.acknowledgedRecords.toLocaleString('en-US')} records acknowledged with a 2xx, ${s.lost} lost; ${s.unansweredWrites} writes unanswered at a kill; a torn WAL tail dropped at ${s.tornTailsDropped} of ${s.kills} restarts; ${s.seconds} s.`, '');
  }
  lines.push(`Driver: ${r.driver}. ${r.notes.join(' ')}`);
  return lines.join('\n');
}

// ---- main ------------------------------------------------------------------------------------

interface Args {
  smoke: boolean; datasets: string[]; rows?: number; index: string; concurrency?: number[]; seconds?: number; k: number; recall: number;
  upsertBatch: number; soakKills?: number; driver?: 'autocannon' | 'builtin'; searchThreads?: number; out?: string;
  /** Query vectors per search request in the load table (1: { vector }; more: { vectors }). */
  searchBatch: number;
  /** Load scenarios to run: search, mix, upsert. */
  scenarios: string[];
}

const USAGE = 'usage: node --import tsx bench/server.ts [--smoke] [--datasets glove,msmarco] [--rows N] [--index SPEC] [--concurrency 1,4,16,64]\n'
  + '       [--seconds 5] [--k 10] [--recall 0.95] [--upsert-batch 10] [--soak-kills 5] [--driver autocannon|builtin] [--search-threads N]\n'
  + '       [--search-batch 1] [--scenarios search,mix,upsert] [--out FILE]\n';

function parseArgs(argv: string[]): Args {
  const a: Args = { smoke: false, datasets: ['glove', 'msmarco'], index: 'HNSW16,SQ8,Rerank', k: 10, recall: 0.95, upsertBatch: 10, searchBatch: 1, scenarios: ['search', 'mix', 'upsert'] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => optionValue(argv, i++, arg);
    switch (arg) {
      case '--smoke': a.smoke = true; break;
      case '--datasets': a.datasets = value().split(','); break;
      case '--rows': a.rows = positiveInt(value(), arg); break;
      case '--index': a.index = value(); break;
      case '--concurrency': a.concurrency = value().split(',').map((x) => positiveInt(x, arg)); break;
      case '--seconds': a.seconds = positiveInt(value(), arg); break;
      case '--k': a.k = positiveInt(value(), arg); break;
      case '--recall': { const r = Number(value()); if (!(r > 0 && r <= 1)) fail('--recall must be in (0, 1]'); a.recall = r; break; }
      case '--upsert-batch': a.upsertBatch = positiveInt(value(), arg); break;
      case '--search-batch': a.searchBatch = positiveInt(value(), arg); if (a.searchBatch > 100) fail('--search-batch is at most 100 (the server\'s default limit of queries per request)'); break;
      case '--scenarios': a.scenarios = value().split(','); for (const x of a.scenarios) if (!['search', 'mix', 'upsert'].includes(x)) fail(`unknown scenario "${x}" (search, mix, upsert)`); break;
      case '--soak-kills': a.soakKills = Number(value()); if (!Number.isInteger(a.soakKills) || a.soakKills < 0) fail('--soak-kills must be an integer >= 0'); break;
      case '--driver': { const d = value(); if (d !== 'autocannon' && d !== 'builtin') fail('--driver is autocannon or builtin'); a.driver = d; break; }
      case '--search-threads': { const t = Number(value()); if (!Number.isInteger(t) || t < 0 || t > 256) fail('--search-threads must be an integer in [0, 256] (0: searches on the event loop)'); a.searchThreads = t; break; }
      case '--out': a.out = value(); break;
      case '--help': case '-h': process.stdout.write(USAGE); process.exit(0);
      default: fail(`unknown argument "${arg}" (--help for usage)`);
    }
  }
  for (const d of a.datasets) if (d !== 'msmarco' && d !== 'glove') fail(`unknown dataset "${d}" (msmarco, glove)`);
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  searchThreads = args.searchThreads;
  const log = (s: string) => process.stderr.write(s + '\n');
  const quiver = await loadProduct();
  const notes: string[] = [];
  const ac = args.driver === 'builtin' ? { missing: 'built-in fetch driver (--driver builtin)' } : loadAutocannon();
  if (args.driver === 'autocannon' && !ac.fn) fail(ac.missing!);
  if (ac.missing) { notes.push(ac.missing); log(`note: ${ac.missing}`); }
  const driver = ac.fn ? `autocannon ${ac.version}` : 'built-in fetch loops';
  const drive = (url: string, c: number, s: number, next: () => NextRequest) => (ac.fn ? driveAutocannon(ac.fn, url, c, s, next) : driveBuiltin(url, c, s, next));
  const seconds = args.seconds ?? (args.smoke ? 1 : 5);
  const levels = args.concurrency ?? (args.smoke ? [1, 4] : [1, 4, 16, 64]);
  const kills = args.soakKills ?? (args.smoke ? 2 : 5);
  notes.push(`Searches run on the server's search threads (searchThreads: ${searchThreads ?? "the machine's cores"}), writes on its event loop.`);

  const tmpRoot = await mkdtemp(join(tmpdir(), 'quiver-bench-server-'));
  const cleanup = () => rm(tmpRoot, { recursive: true, force: true });
  process.once('SIGINT', () => { void cleanup().finally(() => process.exit(130)); });
  try {
    const report: ServerReport = {
      date: new Date().toISOString(), command: `node --import tsx bench/server.ts ${process.argv.slice(2).join(' ')}`.trim(),
      machine: machineInfo(), smoke: args.smoke, driver, notes, k: args.k, recall: args.recall, upsertBatch: args.upsertBatch, datasets: [],
    };
    const datasets = args.smoke ? ['msmarco'] : args.datasets;
    let soakData: Dataset | undefined;
    for (const name of datasets) {
      log(`loading ${name} ...`);
      const full = name === 'msmarco' ? await loadMsmarco(quiver, args.smoke ? 2000 : (args.rows ?? Infinity), 1000) : await loadGlove(quiver, 1000);
      const n = Math.min(full.n, args.rows ?? Infinity);
      const ds: Dataset = n === full.n ? full : { ...full, base: full.base.subarray(0, n * full.d), n, note: `${full.note}; first ${n} rows` };
      if (!soakData || ds.name === 'msmarco-use512') soakData = ds;
      const dataDir = join(tmpRoot, ds.name);
      const coll = 'bench';
      const buildSeconds = await buildCollection(quiver, ds, join(dataDir, coll), args.index, log);
      const library = await librarySearches(quiver, ds, join(dataDir, coll), args.k, args.recall, seconds);
      log(`  library: ${library.queriesPerSecond} queries/s, p50 ${library.latencyMs.p50} ms`);
      const server = await startServer(dataDir);
      const load: LoadRow[] = [];
      let sequential: DriveResult;
      try {
        const make = requestMakers(ds, coll, args.k, args.recall, args.upsertBatch, 1);
        const batched = args.searchBatch > 1 ? requestMakers(ds, coll, args.k, args.recall, args.upsertBatch, 1, args.searchBatch) : make;
        // the same searches one after another over one connection, timed to the microsecond: the HTTP overhead
        await driveBuiltin(server.url, 1, 1, make.search); // warm-up
        sequential = await driveBuiltin(server.url, 1, seconds, make.search);
        log(`  HTTP, one search after another: ${sequential.requestsPerSecond} queries/s, p50 ${sequential.latencyMs.p50} ms`);
        const scenarios: [LoadRow['scenario'], () => NextRequest][] = [['search', batched.search], ['mix 90/10', make.mix], ['upsert', make.upsert]];
        for (const [scenario, next] of scenarios.filter(([s]) => args.scenarios.includes(s === 'mix 90/10' ? 'mix' : s))) {
          for (const c of levels) {
            const probe = healthProbe(server.url);
            const result = await drive(server.url, c, seconds, next);
            const health = await probe.stop();
            const row: LoadRow = { scenario, connections: c, result, health };
            if (scenario === 'upsert') row.recordsPerSecond = round(result.requestsPerSecond * args.upsertBatch, 0);
            if (scenario === 'search' && args.searchBatch > 1) { row.queriesPerRequest = args.searchBatch; row.queriesPerSecond = round(result.requestsPerSecond * args.searchBatch, 0); }
            load.push(row);
            log(`  ${scenario}${args.searchBatch > 1 && scenario === 'search' ? ` (${args.searchBatch} queries a request: ${row.queriesPerSecond} queries/s)` : ''} x${c}: ${result.requestsPerSecond} req/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, non-2xx ${result.non2xx}, errors ${result.errors}; /healthz p99 ${health.p99} ms`);
          }
        }
      } finally {
        await server.stop();
      }
      report.datasets.push({
        name: ds.name, n: ds.n, d: ds.d, index: args.index, note: ds.note, buildSeconds, library, http: sequential, load,
        overhead: { latencyRatio: round(sequential.latencyMs.p50 / library.latencyMs.p50, 1), throughputRatio: round(library.queriesPerSecond / sequential.requestsPerSecond, 1) },
      });
    }
    if (kills > 0 && soakData) {
      log(`soak: ${kills} SIGKILLs under load (${soakData.name}) ...`);
      report.soak = { dataset: soakData.name, ...(await soak(quiver, soakData, join(tmpRoot, 'soak'), kills, log)) };
    }
    report.machine.loadAverageAtEnd = loadavg().map((x) => round(x, 2));
    process.stdout.write(`${markdown(report)}\n`);
    const out = args.out ?? join(BENCH_DIR, 'results', `server-${args.smoke ? 'smoke-' : ''}${report.date.replace(/[:.]/g, '-')}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
    log(`wrote ${out}`);
  } finally {
    await cleanup();
  }
}

// a failed precondition or check (BenchFailure) is reported after main() removed its temp directory
await runMain('bench/server', main);
