/**
 * Durable storage: import throughput with durable commits, time to open, group commit.
 * QuiverDB durable collections against @lancedb/lancedb and vectra, same process, same disk.
 *
 *   node --import tsx bench/storage.ts [--smoke] [--datasets msmarco,glove] [--batch 1000]
 *        [--engines quiverdb,lancedb,lancedb-fsync,vectra] [--queries 10] [--k 10]
 *        [--repeat 1] [--vectra-budget 600] [--group-writes 2000] [--concurrency 1,8,64] [--no-peers] [--out FILE]
 *
 * (`npm run bench:storage` at the root runs it through bench/package.json; `npm run bench:install`
 * installs the peers.) The product is imported from the built ../dist (`npm run build` first).
 * Everything is written under one temporary directory in os.tmpdir(), removed at the end.
 *
 * 1. Import: every engine starts from an empty directory and receives the dataset in batches of
 *    `--batch` records, each batch awaited before the next (for QuiverDB an acknowledged batch is
 *    durable). Then whatever makes the data searchable and sealed (ours: flush() + idle()), bytes
 *    on disk, and a search sanity check (top-k of a few queries against a plain brute force over
 *    the rows the engine received).
 * 2. Open: the handle is closed, then timed: open + one first search, on a fresh handle.
 * 3. Group commit (ours only): `--group-writes` single-record upserts issued by 1, 8, 64
 *    concurrent writers into a fresh durable collection; WAL syncs are counted by wrapping the
 *    filesystem Directory, so the table shows how many writes shared each sync.
 *
 * Engines: `quiverdb` (Collection.open from quiverdb/node, index Flat, cosine); `lancedb`
 * (createEmptyTable + add of Arrow record batches, no vector index, so search is an exact flat
 * scan); `lancedb-fsync` (the same, then this script fsyncs every file lancedb created and the
 * directories: what durable acknowledgements would cost it, since lancedb itself never syncs);
 * `vectra` (LocalIndex.batchInsertItems, which rewrites the whole index.json per call). vectra
 * rewrites its whole index on every batch, so its import stops after `--vectra-budget` seconds
 * (and at the first error it throws); the rows it reached are reported and used for its
 * search and open measurements.
 *
 * --smoke: the first 3,000 msmarco rows in batches of 500, 300 group-commit writes at concurrency
 * 1 and 8, to check the code runs (test/bench-storage-smoke.test.ts). Peers not installed are
 * skipped and named.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { AppendFile, Directory } from '../src/node.js';
import { BENCH_DIR, fail, loadGlove, loadMsmarco, loadProduct, machineInfo, median, optionValue, percentile, positiveInt, round, runMain, type Dataset, type Quiver } from './common.js';

/** Below this recall@k against brute force an engine's import is not what it claims: exit 1. */
const RECALL_FLOOR = 0.99;

// ---- the product, from the built package ----------------------------------------------------

type DurableCollection = Awaited<ReturnType<Quiver['Collection']['open']>>;

// ---- peers: optional packages installed in bench/node_modules --------------------------------
// Loaded with require from bench/ so that lancedb and this script share one apache-arrow instance
// (lancedb is CommonJS; an ESM import of apache-arrow would be a second copy of its classes).

/** The part of apache-arrow 18 used to build record batches without per-row objects. */
interface ArrowModule {
  Field: new (name: string, type: unknown, nullable?: boolean) => { name: string };
  Float32: new () => unknown;
  Utf8: new () => unknown;
  FixedSizeList: new (size: number, child: unknown) => unknown;
  Struct: new (children: unknown[]) => unknown;
  Schema: new (fields: unknown[]) => { fields: unknown[] };
  RecordBatch: new (schema: unknown, data: unknown) => unknown;
  Table: new (batches: unknown[]) => unknown;
  makeData(props: Record<string, unknown>): unknown;
  vectorFromArray(values: string[], type: unknown): { data: unknown[] };
}

/** The part of @lancedb/lancedb 0.39 used here (dist/connection.d.ts, dist/table.d.ts, dist/query.d.ts). */
interface LanceQuery {
  distanceType(type: 'cosine' | 'l2' | 'dot'): LanceQuery;
  limit(n: number): LanceQuery;
  select(columns: string[]): LanceQuery;
  toArray(): Promise<Record<string, unknown>[]>;
}
interface LanceTable {
  add(data: unknown): Promise<unknown>;
  countRows(): Promise<number>;
  vectorSearch(vector: Float32Array): LanceQuery;
  close(): void;
}
interface LanceConnection {
  createEmptyTable(name: string, schema: unknown, options?: { mode?: 'create' | 'overwrite' }): Promise<LanceTable>;
  openTable(name: string): Promise<LanceTable>;
  close(): void;
}
interface LanceModule { connect(uri: string): Promise<LanceConnection> }

/** The part of vectra 0.15 used here (lib/LocalIndex.d.ts). */
interface VectraIndex {
  createIndex(config?: { version: number }): Promise<void>;
  batchInsertItems(items: { id: string; vector: number[] }[]): Promise<unknown[]>;
  queryItems(vector: number[], query: string, topK: number): Promise<{ item: { id: string }; score: number }[]>;
  getIndexStats(): Promise<{ items: number }>;
}
interface VectraModule { LocalIndex: new (folderPath: string) => VectraIndex }

interface Peer<T> { module?: T; version?: string; missing?: string }

const requireFromBench = createRequire(join(BENCH_DIR, 'package.json'));

function loadPeer<T>(name: string): Peer<T> {
  try {
    const mod = requireFromBench(name) as T;
    let version: string | undefined;
    try {
      version = (JSON.parse(readFileSync(join(BENCH_DIR, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version;
    } catch {
      // the version is only a label
    }
    return { module: mod, version };
  } catch (e) {
    return { missing: `${name} not installed (npm run bench:install): ${(e as Error).message.split('\n')[0]}` };
  }
}

// ---- engines ------------------------------------------------------------------------------

/**
 * One storage engine. Rows are addressed by their row number in the dataset: record i has id
 * String(i) and vector base[i*d .. (i+1)*d) (f32, unit norm).
 */
interface StorageEngine {
  name: string;
  /** What an acknowledged write survives, and how we know (their source, strace, our docs). */
  guarantee: string;
  /** What "searchable and sealed" costs after the last acknowledged batch. */
  sealNote: string;
  /** Creates an empty store of dimension d in `path` (a directory that does not exist yet). */
  create(path: string, d: number): Promise<void>;
  /** Writes rows [from, to) and resolves when the engine acknowledges them. */
  write(base: Float32Array, from: number, to: number, d: number): Promise<void>;
  /** Makes every acknowledged row searchable and sealed; absent when the acknowledgement already is. */
  seal?(): Promise<void>;
  /** Ids of the k nearest rows (cosine), best first. q: f32[d]. */
  search(q: Float32Array, k: number): Promise<string[]>;
  /** Rows the open handle holds (checked after reopening). */
  count(): Promise<number>;
  close(): Promise<void>;
  /** Opens `path` (written by create/write) on a fresh handle, ready to search. */
  open(path: string, d: number): Promise<void>;
}

function quiverEngine(q: Quiver): StorageEngine {
  let col: DurableCollection | undefined;
  return {
    name: 'quiverdb (durable, Flat)',
    guarantee: 'WAL record fdatasync\'ed before upsert resolves (group commit); survives power loss',
    sealNote: 'flush() + idle(): WAL sealed into segment files, background merges finished',
    async create(path, d) {
      col = await q.Collection.open(path, { schema: { dimension: d, metric: 'cosine' } });
    },
    async write(base, from, to, d) {
      const records = new Array<{ id: string; vector: Float32Array }>(to - from);
      for (let i = from; i < to; i++) records[i - from] = { id: String(i), vector: base.subarray(i * d, (i + 1) * d) };
      await col!.upsert(records);
    },
    async seal() {
      await col!.flush();
      await col!.idle();
    },
    async search(v, k) {
      return (await col!.search(v, { k, includeMetadata: false })).map((h) => h.id);
    },
    async count() { return col!.size; },
    async close() { await col?.close(); col = undefined; },
    async open(path) { col = await q.Collection.open(path); },
  };
}

/** Builds one Arrow table {id: utf8, vector: fixed_size_list<float32>[d]} over rows [from, to) without copying the floats. */
function arrowBatch(arrow: ArrowModule, base: Float32Array, from: number, to: number, d: number): unknown {
  const m = to - from;
  const { vecType, schema } = arrowSchema(arrow, d);
  const child = arrow.makeData({ type: new arrow.Float32(), length: m * d, data: base.subarray(from * d, to * d) });
  const vectors = arrow.makeData({ type: vecType, length: m, nullCount: 0, child });
  const ids = new Array<string>(m);
  for (let i = 0; i < m; i++) ids[i] = String(from + i);
  const idColumn = arrow.vectorFromArray(ids, new arrow.Utf8());
  const struct = arrow.makeData({ type: new arrow.Struct(schema.fields), length: m, nullCount: 0, children: [idColumn.data[0], vectors] });
  return new arrow.Table([new arrow.RecordBatch(schema, struct)]);
}

function arrowSchema(arrow: ArrowModule, d: number): { vecType: unknown; schema: { fields: unknown[] } } {
  const vecType = new arrow.FixedSizeList(d, new arrow.Field('item', new arrow.Float32(), true));
  const schema = new arrow.Schema([new arrow.Field('id', new arrow.Utf8(), false), new arrow.Field('vector', vecType, false)]);
  return { vecType, schema };
}

/**
 * fsyncs every file under `root` not synced before, then every directory (so new entries and
 * renames are durable). `seen` holds the files already synced (lancedb never rewrites a file).
 */
async function syncNewFiles(root: string, seen: Set<string>): Promise<number> {
  let synced = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (!seen.has(p)) {
        const fh = await open(p, 'r');
        try { await fh.sync(); } finally { await fh.close(); }
        seen.add(p);
        synced++;
      }
    }
    const dh = await open(dir, 'r');
    try { await dh.sync(); } finally { await dh.close(); }
  };
  await walk(root);
  return synced;
}

function lanceEngine(lancedb: LanceModule, arrow: ArrowModule, version: string | undefined, fsyncAfterAdd: boolean): StorageEngine {
  let db: LanceConnection | undefined;
  let table: LanceTable | undefined;
  let root = '';
  const synced = new Set<string>();
  return {
    name: `lancedb ${version ?? ''}${fsyncAfterAdd ? ' + fsync by the bench' : ''} (no index)`.replace('  ', ' '),
    guarantee: fsyncAfterAdd
      ? 'after each add() the bench fsyncs every new file and every directory: an emulation of durable acks'
      : 'add() writes data file, transaction and manifest (temp file + rename), no fsync (strace): survives a process crash, not power loss',
    sealNote: 'none: add() leaves the rows in a new fragment file, searchable by flat scan',
    async create(path, d) {
      root = path;
      synced.clear();
      db = await lancedb.connect(path);
      table = await db.createEmptyTable('vectors', arrowSchema(arrow, d).schema, { mode: 'create' });
      if (fsyncAfterAdd) await syncNewFiles(root, synced);
    },
    async write(base, from, to, d) {
      await table!.add(arrowBatch(arrow, base, from, to, d));
      if (fsyncAfterAdd) await syncNewFiles(root, synced);
    },
    async search(v, k) {
      const rows = await table!.vectorSearch(v).distanceType('cosine').limit(k).select(['id', '_distance']).toArray();
      return rows.map((r) => String(r.id));
    },
    async count() { return table!.countRows(); },
    async close() { table?.close(); db?.close(); table = undefined; db = undefined; },
    async open(path) {
      db = await lancedb.connect(path);
      table = await db.openTable('vectors');
    },
  };
}

function vectraEngine(vectra: VectraModule, version: string | undefined): StorageEngine {
  let index: VectraIndex | undefined;
  return {
    name: `vectra ${version ?? ''} LocalIndex`.replace('  ', ' '),
    guarantee: 'each call rewrites index.json in place (open with O_TRUNC, write), no fsync: a crash mid-write can lose the whole index',
    sealNote: 'none: index.json is rewritten by every call',
    async create(path) {
      index = new vectra.LocalIndex(path);
      await index.createIndex({ version: 1 });
    },
    async write(base, from, to, d) {
      // vectra takes number[] vectors (it stores them as JSON arrays)
      const items = new Array<{ id: string; vector: number[] }>(to - from);
      for (let i = from; i < to; i++) items[i - from] = { id: String(i), vector: Array.from(base.subarray(i * d, (i + 1) * d)) };
      await index!.batchInsertItems(items);
    },
    async search(v, k) {
      return (await index!.queryItems(Array.from(v), '', k)).map((r) => r.item.id);
    },
    async count() { return (await index!.getIndexStats()).items; },
    async close() { index = undefined; },
    async open(path) { index = new vectra.LocalIndex(path); },
  };
}

// ---- datasets -----------------------------------------------------------------------------

/**
 * Exact cosine top-k over rows [0, rows) by plain brute force (the reference of the sanity check).
 * Returns ids (row numbers as strings), best first, k per query.
 */
function bruteForce(ds: Dataset, rows: number, k: number): string[][] {
  const { base, d } = ds;
  const inv = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += base[i * d + j] * base[i * d + j];
    inv[i] = s > 0 ? 1 / Math.sqrt(s) : 0;
  }
  const out: string[][] = [];
  const topScore = new Float64Array(k), topRow = new Int32Array(k);
  for (let qi = 0; qi < ds.nq; qi++) {
    topScore.fill(-Infinity);
    topRow.fill(-1);
    const qo = qi * d;
    for (let i = 0; i < rows; i++) {
      let dot = 0;
      const o = i * d;
      for (let j = 0; j < d; j++) dot += base[o + j] * ds.queries[qo + j];
      const s = dot * inv[i];
      if (s <= topScore[k - 1]) continue;
      let p = k - 1;
      while (p > 0 && topScore[p - 1] < s) { topScore[p] = topScore[p - 1]; topRow[p] = topRow[p - 1]; p--; }
      topScore[p] = s;
      topRow[p] = i;
    }
    out.push(Array.from(topRow).filter((r) => r >= 0).map(String));
  }
  return out;
}

function recall(got: string[][], want: string[][]): number {
  let hit = 0, total = 0;
  for (let q = 0; q < want.length; q++) {
    const w = new Set(want[q]);
    total += want[q].length;
    for (const id of got[q] ?? []) if (w.has(id)) hit++;
  }
  return total === 0 ? 1 : hit / total;
}

// ---- measurement --------------------------------------------------------------------------

export interface ImportResult {
  engine: string;
  guarantee: string;
  /** Rows acknowledged (less than the dataset when the engine stopped early: see `stopped`). */
  rows: number;
  batchSize: number;
  batches: number;
  /** Create + all batches, each awaited before the next. */
  importSeconds: number;
  vectorsPerSecond: number;
  batchMs: { p50: number; p99: number; max: number; first: number; last: number };
  /** Time of making everything searchable and sealed after the last batch (0 when nothing is needed). */
  sealSeconds: number;
  sealNote: string;
  /** rows / (import + seal). */
  sealedVectorsPerSecond: number;
  /** Bytes of all files under the engine's directory after sealing, and how many files. */
  diskBytes: number;
  files: number;
  /** bytes on disk / (rows * d * 4). */
  diskOverRaw: number;
  /** recall@k of the engine's top-k against brute force over the rows it received. */
  recall: number;
  /** import vectors/s of quiverdb / this engine's (2 = quiverdb twice as fast; over the rows this engine reached). */
  quiverSpeedup?: number;
  stopped?: string;
  open?: OpenResult;
  /**
   * Runs measured (--repeat; budgeted engines run once). Timings above are medians over the runs,
   * recall the worst run; `perRun` lists every run's value, in the order they ran.
   */
  runs: number;
  perRun?: { vectorsPerSecond: number[]; sealSeconds: number[]; openTotalMs: number[] };
}

export interface OpenResult {
  rows: number;
  /** Opening alone (ours: Collection.open; lancedb: connect + openTable; vectra: constructor, which reads nothing). */
  openMs: number;
  /** The first search on the fresh handle (vectra loads its JSON here). */
  firstSearchMs: number;
  totalMs: number;
  /** recall@k of that first handle on all queries (after the timed first search). */
  recall: number;
}

export interface GroupCommitResult {
  concurrency: number;
  writes: number;
  seconds: number;
  recordsPerSecond: number;
  /** WAL sync calls during the writes (counted by wrapping the filesystem Directory). */
  walSyncs: number;
  recordsPerSync: number;
  latencyMs: { p50: number; p99: number };
  /** Runs folded into these medians (--repeat). */
  runs?: number;
}

export interface StorageReport {
  date: string;
  command: string;
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; loadAverage: number[]; loadAverageAtEnd?: number[]; tmp: string };
  /** Median time of a 4 KiB append + fdatasync in the temp directory: what one durable commit costs on this disk. */
  diskSyncMs: { p50: number; p99: number };
  smoke: boolean;
  k: number;
  skipped: string[];
  datasets: { name: string; n: number; d: number; queries: number; note: string; results: ImportResult[] }[];
  groupCommit?: { dataset: string; d: number; results: GroupCommitResult[] };
}

async function diskUsage(path: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0, files = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) await walk(p);
      else { bytes += (await stat(p)).size; files++; }
    }
  };
  await walk(path);
  return { bytes, files };
}

async function searchAll(engine: StorageEngine, ds: Dataset, k: number): Promise<string[][]> {
  const out: string[][] = [];
  for (let i = 0; i < ds.nq; i++) out.push(await engine.search(ds.queries.subarray(i * ds.d, (i + 1) * ds.d), k));
  return out;
}

interface RunOptions { batch: number; k: number; budgetSeconds: number; log: (s: string) => void }

/** Import, seal, size, sanity search, close, timed reopen + first search; removes `path` at the end. */
async function runEngine(engine: StorageEngine, ds: Dataset, path: string, o: RunOptions, budgeted: boolean): Promise<ImportResult> {
  const { n, d } = ds;
  const batchTimes: number[] = [];
  let rows = 0;
  let stopped: string | undefined;
  let lastLog = 0;
  o.log(`  ${engine.name}: importing ${n} x ${d} in batches of ${o.batch} ...`);
  const t0 = performance.now();
  await engine.create(path, d);
  for (let from = 0; from < n; from += o.batch) {
    const to = Math.min(n, from + o.batch);
    const tb = performance.now();
    try {
      await engine.write(ds.base, from, to, d);
    } catch (e) {
      stopped = `error at rows ${from}..${to}: ${(e as Error).message.split('\n')[0]}`;
      break;
    }
    batchTimes.push(performance.now() - tb);
    rows = to;
    const elapsed = (performance.now() - t0) / 1000;
    if (budgeted && rows < n && elapsed > o.budgetSeconds) {
      stopped = `stopped by the time budget (--vectra-budget ${o.budgetSeconds} s) after ${rows} rows; the last batch took ${round(batchTimes[batchTimes.length - 1], 0)} ms`;
      break;
    }
    if (elapsed - lastLog >= 30) { lastLog = elapsed; o.log(`    ${rows} rows, ${round(elapsed, 1)} s, last batch ${round(batchTimes[batchTimes.length - 1], 0)} ms`); }
  }
  const importSeconds = (performance.now() - t0) / 1000;
  if (stopped) o.log(`    ${stopped}`);

  const ts = performance.now();
  if (engine.seal) await engine.seal();
  const sealSeconds = (performance.now() - ts) / 1000;
  const disk = await diskUsage(path);

  const want = bruteForce(ds, rows, o.k);
  const got = await searchAll(engine, ds, o.k);
  const importRecall = recall(got, want);
  await engine.close();

  // reopen on a fresh handle: open, then one search, both timed
  const to0 = performance.now();
  await engine.open(path, d);
  const to1 = performance.now();
  const first = await engine.search(ds.queries.subarray(0, d), o.k);
  const to2 = performance.now();
  const reopened = await engine.count();
  const rest = await searchAll(engine, ds, o.k);
  rest[0] = first;
  await engine.close();
  if (reopened !== rows) fail(`${engine.name} on ${ds.name}: ${reopened} rows after reopening, ${rows} acknowledged`);
  await rm(path, { recursive: true, force: true });

  const sorted = batchTimes.slice().sort((a, b) => a - b);
  const res: ImportResult = {
    engine: engine.name, guarantee: engine.guarantee, rows, batchSize: o.batch, batches: batchTimes.length,
    importSeconds: round(importSeconds, 3), vectorsPerSecond: round(rows / importSeconds, 0),
    batchMs: { p50: round(percentile(sorted, 0.5), 1), p99: round(percentile(sorted, 0.99), 1), max: round(sorted[sorted.length - 1] ?? 0, 1), first: round(batchTimes[0] ?? 0, 1), last: round(batchTimes[batchTimes.length - 1] ?? 0, 1) },
    sealSeconds: round(sealSeconds, 3), sealNote: engine.sealNote,
    sealedVectorsPerSecond: round(rows / (importSeconds + sealSeconds), 0),
    diskBytes: disk.bytes, files: disk.files, diskOverRaw: round(disk.bytes / Math.max(1, rows * d * 4), 3),
    recall: round(importRecall, 4), runs: 1,
    open: { rows: reopened, openMs: round(to1 - to0, 1), firstSearchMs: round(to2 - to1, 1), totalMs: round(to2 - to0, 1), recall: round(recall(rest, want), 4) },
  };
  if (stopped) res.stopped = stopped;
  o.log(`    ${rows} rows in ${res.importSeconds} s (${res.vectorsPerSecond} vectors/s), seal ${res.sealSeconds} s, ${(disk.bytes / 2 ** 20).toFixed(1)} MiB in ${disk.files} files, recall@${o.k} ${res.recall}; reopen + first search ${res.open!.totalMs} ms`);
  return res;
}

/** Folds repeated runs of one engine into one result: median timings, worst recall, fastest/slowest run. */
function aggregate(runs: ImportResult[]): ImportResult {
  if (runs.length === 1) return runs[0];
  const med = (f: (r: ImportResult) => number, digits: number) => round(median(runs.map(f)), digits);
  const opens = runs.map((r) => r.open!);
  const first = runs[0];
  return {
    ...first,
    importSeconds: med((r) => r.importSeconds, 3),
    vectorsPerSecond: med((r) => r.vectorsPerSecond, 0),
    batchMs: {
      p50: med((r) => r.batchMs.p50, 1), p99: med((r) => r.batchMs.p99, 1), max: med((r) => r.batchMs.max, 1),
      first: med((r) => r.batchMs.first, 1), last: med((r) => r.batchMs.last, 1),
    },
    sealSeconds: med((r) => r.sealSeconds, 3),
    sealedVectorsPerSecond: med((r) => r.sealedVectorsPerSecond, 0),
    recall: Math.min(...runs.map((r) => r.recall)),
    open: {
      rows: first.open!.rows,
      openMs: round(median(opens.map((o) => o.openMs)), 1),
      firstSearchMs: round(median(opens.map((o) => o.firstSearchMs)), 1),
      totalMs: round(median(opens.map((o) => o.totalMs)), 1),
      recall: Math.min(...opens.map((o) => o.recall)),
    },
    runs: runs.length,
    perRun: { vectorsPerSecond: runs.map((r) => r.vectorsPerSecond), sealSeconds: runs.map((r) => r.sealSeconds), openTotalMs: opens.map((o) => o.totalMs) },
  };
}

/** Wraps a Directory so that every AppendFile.sync (the WAL's group commit) is counted. */
function countingDirectory(inner: Directory, counter: { syncs: number }): Directory {
  const wrapFile = (f: AppendFile): AppendFile => ({
    get name() { return f.name; },
    get size() { return f.size; },
    append: (bytes) => f.append(bytes),
    sync: async () => { counter.syncs++; await f.sync(); },
    truncate: (size) => f.truncate(size),
    close: () => f.close(),
  });
  return {
    get description() { return inner.description; },
    get durable() { return inner.durable; },
    list: () => inner.list(),
    exists: (name) => inner.exists(name),
    readFile: (name) => inner.readFile(name),
    writeFile: (name, chunks) => inner.writeFile(name, chunks),
    openAppend: async (name, options) => wrapFile(await inner.openAppend(name, options)),
    openRead: (name) => inner.openRead(name),
    rename: (from, to) => inner.rename(from, to),
    remove: (name) => inner.remove(name),
    syncDirectory: () => inner.syncDirectory(),
    lock: () => inner.lock(),
  };
}

/** `writes` single-record upserts by `concurrency` writers, each awaiting its own write before the next. */
async function runGroupCommit(q: Quiver, ds: Dataset, path: string, writes: number, concurrency: number): Promise<GroupCommitResult> {
  const { d } = ds;
  const counter = { syncs: 0 };
  const dir = countingDirectory(await q.FsDirectory.open(path, { create: true }), counter);
  const col = await q.Collection.open(dir, { schema: { dimension: d, metric: 'cosine' } });
  const latencies: number[] = [];
  let next = 0;
  const syncsBefore = counter.syncs;
  const t0 = performance.now();
  const writer = async (): Promise<void> => {
    while (next < writes) {
      const i = next++;
      const row = i % ds.n;
      const t = performance.now();
      await col.upsert([{ id: String(i), vector: ds.base.subarray(row * d, (row + 1) * d) }]);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, writer));
  const seconds = (performance.now() - t0) / 1000;
  const syncs = counter.syncs - syncsBefore;
  if (col.size !== writes) fail(`group commit: ${col.size} records after ${writes} acknowledged writes`);
  await col.close();
  await rm(path, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    concurrency, writes, seconds: round(seconds, 3), recordsPerSecond: round(writes / seconds, 0),
    walSyncs: syncs, recordsPerSync: round(writes / Math.max(1, syncs), 2),
    latencyMs: { p50: round(percentile(latencies, 0.5), 2), p99: round(percentile(latencies, 0.99), 2) },
  };
}

/** Median over repeated runs of one concurrency level. */
function aggregateGroup(runs: GroupCommitResult[]): GroupCommitResult {
  if (runs.length === 1) return runs[0];
  const med = (f: (r: GroupCommitResult) => number, digits: number) => round(median(runs.map(f)), digits);
  return {
    concurrency: runs[0].concurrency, writes: runs[0].writes, seconds: med((r) => r.seconds, 3), recordsPerSecond: med((r) => r.recordsPerSecond, 0),
    walSyncs: med((r) => r.walSyncs, 0), recordsPerSync: med((r) => r.recordsPerSync, 2),
    latencyMs: { p50: med((r) => r.latencyMs.p50, 2), p99: med((r) => r.latencyMs.p99, 2) },
    runs: runs.length,
  };
}

/** Append 4 KiB + fdatasync, `times` times, in `dir`: the floor of one durable commit on this disk. */
async function probeDiskSync(dir: string, times: number): Promise<{ p50: number; p99: number }> {
  const file = join(dir, 'sync-probe.bin');
  const fh = await open(file, 'w');
  const block = new Uint8Array(4096).fill(7);
  const t: number[] = [];
  try {
    for (let i = 0; i < times; i++) {
      const s = performance.now();
      await fh.write(block, 0, block.length, i * block.length);
      await fh.datasync();
      t.push(performance.now() - s);
    }
  } finally {
    await fh.close();
    await rm(file, { force: true });
  }
  t.sort((a, b) => a - b);
  return { p50: round(percentile(t, 0.5), 3), p99: round(percentile(t, 0.99), 3) };
}

// ---- report -------------------------------------------------------------------------------

function fmtInt(x: number): string { return Math.round(x).toLocaleString('en-US'); }

function markdown(report: StorageReport): string {
  const lines: string[] = [];
  for (const ds of report.datasets) {
    const batch = ds.results[0]?.batchSize ?? 0;
    const runs = Math.max(...ds.results.map((r) => r.runs));
    lines.push(`### Import with durable commits: ${ds.name}, ${fmtInt(ds.n)} x ${ds.d}, batches of ${fmtInt(batch)}, each awaited${runs > 1 ? ` (median of ${runs} runs, slowest-fastest in brackets)` : ''}`);
    lines.push('');
    lines.push('| engine | rows | import s | vectors/s | quiverdb vectors/s ÷ this | batch ms p50 / max | seal s | vectors/s incl. seal | MiB on disk (x raw f32) | files | recall@' + report.k + ' |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of ds.results) {
      const spread = r.perRun ? ` (${fmtInt(Math.min(...r.perRun.vectorsPerSecond))}-${fmtInt(Math.max(...r.perRun.vectorsPerSecond))})` : '';
      lines.push(`| ${r.engine}${r.stopped ? ' *' : ''} | ${fmtInt(r.rows)} | ${r.importSeconds.toFixed(1)} | ${fmtInt(r.vectorsPerSecond)}${spread} | ${r.quiverSpeedup !== undefined ? r.quiverSpeedup.toFixed(2) + (r.stopped ? ' *' : '') : '-'} | `
        + `${r.batchMs.p50.toFixed(1)} / ${r.batchMs.max.toFixed(1)} | ${r.sealSeconds.toFixed(2)} | ${fmtInt(r.sealedVectorsPerSecond)} | ${(r.diskBytes / 2 ** 20).toFixed(1)} (${r.diskOverRaw.toFixed(2)}) | ${fmtInt(r.files)} | ${r.recall.toFixed(3)} |`);
    }
    for (const r of ds.results) if (r.stopped) lines.push(`\n\\* ${r.engine}: ${r.stopped}; its vectors/s, search and open are over the ${fmtInt(r.rows)} rows it reached.`);
    lines.push('');
  }
  const openRuns = Math.max(1, ...report.datasets.flatMap((ds) => ds.results.map((r) => r.runs)));
  lines.push(`### Open: close, then open + first search on a fresh handle${openRuns > 1 ? ` (median of ${openRuns} runs, fastest-slowest total in brackets)` : ''}`);
  lines.push('');
  lines.push('| dataset | engine | rows | open ms | first search ms | total ms | this ÷ quiverdb | recall@' + report.k + ' after open |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const ds of report.datasets) {
    const ours = ds.results.find((r) => r.engine.startsWith('quiverdb'))?.open;
    for (const r of ds.results) {
      if (!r.open) continue;
      const spread = r.perRun ? ` (${Math.min(...r.perRun.openTotalMs).toFixed(0)}-${Math.max(...r.perRun.openTotalMs).toFixed(0)})` : '';
      // a ratio only between stores of the same rows
      const ratio = ours && !r.engine.startsWith('quiverdb') && ours.rows === r.open.rows ? (r.open.totalMs / ours.totalMs).toFixed(2) : '-';
      lines.push(`| ${ds.name} | ${r.engine}${r.stopped ? ' *' : ''} | ${fmtInt(r.open.rows)} | ${r.open.openMs.toFixed(1)} | ${r.open.firstSearchMs.toFixed(1)} | ${r.open.totalMs.toFixed(1)}${spread} | `
        + `${ratio} | ${r.open.recall.toFixed(3)} |`);
    }
  }
  lines.push('');
  if (report.groupCommit) {
    const g = report.groupCommit;
    const gr = g.results[0]?.runs ?? 1;
    lines.push(`### Group commit: ${fmtInt(g.results[0]?.writes ?? 0)} single-record upserts (${g.dataset}, d = ${g.d}), quiverdb durable collection${gr > 1 ? ` (median of ${gr} runs)` : ''}`);
    lines.push('');
    lines.push('| concurrent writers | seconds | records/s | WAL syncs | records per sync | latency p50 / p99 ms |');
    lines.push('|---:|---:|---:|---:|---:|---:|');
    for (const r of g.results) {
      lines.push(`| ${r.concurrency} | ${r.seconds.toFixed(2)} | ${fmtInt(r.recordsPerSecond)} | ${fmtInt(r.walSyncs)} | ${r.recordsPerSync.toFixed(2)} | ${r.latencyMs.p50.toFixed(2)} / ${r.latencyMs.p99.toFixed(2)} |`);
    }
    lines.push('');
  }
  lines.push('What an acknowledged write survives:');
  lines.push('');
  const seen = new Set<string>();
  for (const ds of report.datasets) for (const r of ds.results) if (!seen.has(r.engine)) { seen.add(r.engine); lines.push(`- ${r.engine}: ${r.guarantee}.`); }
  lines.push('');
  const m = report.machine;
  lines.push(`${report.date.slice(0, 10)}; ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}; temp directory ${m.tmp} (4 KiB append + fdatasync: p50 ${report.diskSyncMs.p50} ms, p99 ${report.diskSyncMs.p99} ms); `
    + `load average ${m.loadAverage[0]} at start, ${m.loadAverageAtEnd?.[0] ?? '?'} at end; page cache warm (files just written).`);
  if (report.skipped.length) lines.push(`Skipped: ${report.skipped.join('; ')}.`);
  return lines.join('\n');
}

// ---- main ---------------------------------------------------------------------------------

const ENGINE_NAMES = ['quiverdb', 'lancedb', 'lancedb-fsync', 'vectra'] as const;
type EngineName = (typeof ENGINE_NAMES)[number];

interface Args {
  smoke: boolean; datasets: string[]; batch?: number; engines: EngineName[]; queries?: number; k: number;
  vectraBudget: number; groupWrites?: number; concurrency?: number[]; repeat: number; peers: boolean; out?: string;
}

const USAGE = 'usage: node --import tsx bench/storage.ts [--smoke] [--datasets msmarco,glove] [--batch 1000] [--engines quiverdb,lancedb,lancedb-fsync,vectra]\n'
  + '       [--queries 10] [--k 10] [--repeat 1] [--vectra-budget 600] [--group-writes 2000] [--concurrency 1,8,64] [--no-peers] [--out FILE]\n';

function parseArgs(argv: string[]): Args {
  const a: Args = { smoke: false, datasets: ['msmarco', 'glove'], engines: [...ENGINE_NAMES], k: 10, vectraBudget: 600, repeat: 1, peers: true };
  const value = (i: number, name: string): string => optionValue(argv, i, name);
  const int = positiveInt;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case '--smoke': a.smoke = true; break;
      case '--no-peers': a.peers = false; break;
      case '--datasets': a.datasets = value(i++, arg).split(','); break;
      case '--engines': a.engines = value(i++, arg).split(',') as EngineName[]; break;
      case '--batch': a.batch = int(value(i++, arg), arg); break;
      case '--queries': a.queries = int(value(i++, arg), arg); break;
      case '--k': a.k = int(value(i++, arg), arg); break;
      case '--repeat': a.repeat = int(value(i++, arg), arg); break;
      case '--vectra-budget': a.vectraBudget = int(value(i++, arg), arg); break;
      case '--group-writes': a.groupWrites = int(value(i++, arg), arg); break;
      case '--concurrency': a.concurrency = value(i++, arg).split(',').map((s) => int(s, arg)); break;
      case '--out': a.out = value(i++, arg); break;
      case '--help': case '-h': process.stdout.write(USAGE); process.exit(0);
      default: fail(`unknown argument "${arg}" (--help for usage)`);
    }
  }
  for (const d of a.datasets) if (d !== 'msmarco' && d !== 'glove') fail(`unknown dataset "${d}" (msmarco, glove)`);
  for (const e of a.engines) if (!ENGINE_NAMES.includes(e)) fail(`unknown engine "${e}" (${ENGINE_NAMES.join(', ')})`);
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (s: string) => process.stderr.write(s + '\n');
  const quiver = await loadProduct();
  const skipped: string[] = [];
  const wants = (e: EngineName) => args.engines.includes(e);
  const wantLance = wants('lancedb') || wants('lancedb-fsync');
  const peer = <T>(name: string, wanted: boolean): Peer<T> => {
    if (!wanted) return {};
    if (!args.peers) return { missing: `${name} skipped (--no-peers)` };
    return loadPeer<T>(name);
  };
  const lancedb = peer<LanceModule>('@lancedb/lancedb', wantLance);
  const arrow = peer<ArrowModule>('apache-arrow', wantLance && lancedb.module !== undefined);
  const vectra = peer<VectraModule>('vectra', wants('vectra'));
  for (const p of [lancedb, arrow, vectra]) if (p.missing) { skipped.push(p.missing); log(`note: ${p.missing}`); }

  const makeEngines = (): { engine: StorageEngine; budgeted: boolean; slug: string }[] => {
    const list: { engine: StorageEngine; budgeted: boolean; slug: string }[] = [];
    if (wants('quiverdb')) list.push({ engine: quiverEngine(quiver), budgeted: false, slug: 'quiverdb' });
    if (lancedb.module && arrow.module) {
      if (wants('lancedb')) list.push({ engine: lanceEngine(lancedb.module, arrow.module, lancedb.version, false), budgeted: false, slug: 'lancedb' });
      if (wants('lancedb-fsync')) list.push({ engine: lanceEngine(lancedb.module, arrow.module, lancedb.version, true), budgeted: false, slug: 'lancedb-fsync' });
    }
    if (vectra.module) list.push({ engine: vectraEngine(vectra.module, vectra.version), budgeted: true, slug: 'vectra' });
    return list;
  };

  const tmpRoot = await mkdtemp(join(tmpdir(), 'quiver-bench-storage-'));
  const cleanup = () => rm(tmpRoot, { recursive: true, force: true });
  process.once('SIGINT', () => { void cleanup().finally(() => process.exit(130)); });
  try {
    const report: StorageReport = {
      date: new Date().toISOString(),
      command: `node --import tsx bench/storage.ts ${process.argv.slice(2).join(' ')}`.trim(),
      machine: { ...machineInfo(), tmp: tmpdir() },
      diskSyncMs: await probeDiskSync(tmpRoot, args.smoke ? 50 : 200),
      smoke: args.smoke, k: args.k, skipped, datasets: [],
    };
    log(`temp directory ${tmpRoot}; 4 KiB append + fdatasync: p50 ${report.diskSyncMs.p50} ms`);
    const batch = args.batch ?? (args.smoke ? 500 : 1000);
    const nq = args.queries ?? (args.smoke ? 5 : 10);
    const opts: RunOptions = { batch, k: args.k, budgetSeconds: args.vectraBudget, log };

    const datasets = args.smoke ? ['msmarco'] : args.datasets;
    let groupData: Dataset | undefined;
    for (const name of datasets) {
      log(`loading ${name} ...`);
      const ds = name === 'msmarco' ? await loadMsmarco(quiver, args.smoke ? 3000 : Infinity, nq) : await loadGlove(quiver, nq);
      log(`${ds.name}: ${ds.n} x ${ds.d}, ${ds.nq} queries (${ds.note})`);
      // rounds: every engine once per round, the starting engine rotating, so that background
      // load drifting over time hits all engines alike; budgeted engines (vectra) run in round 1 only
      const engines = makeEngines();
      const runs = engines.map((): ImportResult[] => []);
      for (let r = 0; r < args.repeat; r++) {
        if (args.repeat > 1) log(` round ${r + 1} of ${args.repeat}`);
        for (let j = 0; j < engines.length; j++) {
          const e = (r + j) % engines.length;
          const { engine, budgeted, slug } = engines[e];
          if (budgeted && r > 0) continue;
          runs[e].push(await runEngine(engine, ds, join(tmpRoot, `${ds.name}-${slug}`), opts, budgeted));
        }
      }
      const results = runs.map(aggregate);
      const ours = results.find((r) => r.engine.startsWith('quiverdb'));
      if (ours) for (const r of results) if (r !== ours) r.quiverSpeedup = round(ours.vectorsPerSecond / r.vectorsPerSecond, 2);
      report.datasets.push({ name: ds.name, n: ds.n, d: ds.d, queries: ds.nq, note: ds.note, results });
      if (!groupData || ds.name === 'msmarco-use512') groupData = ds;
    }

    if (wants('quiverdb') && groupData) {
      const writes = args.groupWrites ?? (args.smoke ? 300 : 2000);
      const levels = args.concurrency ?? (args.smoke ? [1, 8] : [1, 8, 64]);
      const runs = levels.map((): GroupCommitResult[] => []);
      for (let r = 0; r < args.repeat; r++) {
        for (let li = 0; li < levels.length; li++) {
          const c = levels[li];
          log(`group commit: ${writes} single-record upserts, ${c} concurrent writers ...`);
          const g = await runGroupCommit(quiver, groupData, join(tmpRoot, `group-${c}`), writes, c);
          log(`  ${g.recordsPerSecond} records/s, ${g.walSyncs} WAL syncs (${g.recordsPerSync} records per sync), p50 ${g.latencyMs.p50} ms`);
          runs[li].push(g);
        }
      }
      report.groupCommit = { dataset: groupData.name, d: groupData.d, results: runs.map(aggregateGroup) };
    }

    report.machine.loadAverageAtEnd = loadavg().map((x) => round(x, 2));
    process.stdout.write(`${markdown(report)}\n`);
    const out = args.out ?? join(BENCH_DIR, 'results', `storage-${args.smoke ? 'smoke-' : ''}${report.date.replace(/[:.]/g, '-')}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
    log(`wrote ${out}`);

    const bad = report.datasets.flatMap((ds) => ds.results.flatMap((r) => (r.recall < RECALL_FLOOR || (r.open?.recall ?? 1) < RECALL_FLOOR ? [`${ds.name} / ${r.engine}: recall ${r.recall}, after open ${r.open?.recall}`] : [])));
    if (bad.length > 0) fail(`search disagrees with brute force (recall@${args.k} below ${RECALL_FLOOR}):\n  ${bad.join('\n  ')}`);
  } finally {
    await cleanup();
  }
}

// a failed precondition or check (BenchFailure) is reported after main() removed its temp directory
await runMain('bench/storage', main);
