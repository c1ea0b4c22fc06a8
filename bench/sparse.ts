/**
 * Learned-sparse retrieval (src/sparse/): the Seismic-style approximate search against exact
 * MaxScore and brute force, on real SPLADE-v3 vectors. See bench/README-sparse.md.
 *
 *   node --import tsx bench/sparse.ts [--copies 20] [--queries 200] [--tune] [--only small|large]
 *
 * Data: ../shared/data/splade, the MS MARCO dev subset (6,980 vectors) as documents; queries are
 * the 43 TREC DL19 vectors (not among the documents) plus 200 dev vectors drawn with a fixed seed
 * (self-queries: each one's own row is excluded through the `excluded` bitset, so it neither
 * counts as a hit nor as ground truth). A second, disjoint draw of 200 dev vectors is the tuning
 * split (`--tune` reports the grid on it; the reported queries never choose a default).
 * The large setting repeats the documents `--copies` times: copy 0 as is, copy c > 0 with every
 * term renamed through a fixed random permutation of the vocabulary (seed 1000 + c), so every
 * copy keeps the real weight distribution but the copies share no vectors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildSparseIndex, type SparseBuildOptions } from '../src/sparse/build.js';
import type { SparseSearchParams, SparseSearchResult } from '../src/sparse/types.js';
import { Rng } from '../src/math/rng.js';
import { DATA_DIR, fail, machineInfo, median, optionValue, percentile, positiveInt, round, runMain } from './common.js';

type Vec = Record<string, number>;

let tuneTerms = [6, 8, 10, 12, 16];
let repeat = 3;
let tuneFactors = [0.8, 0.9, 1.0, 1.2];

function loadTsv(name: string): Vec[] {
  const path = join(DATA_DIR, 'splade', name);
  let text: string;
  try { text = gunzipSync(readFileSync(path)).toString('utf8'); } catch { fail(`cannot read ${path} (expected ../shared/data beside the repository)`); }
  const rows: Vec[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const tab = line.indexOf('\t');
    const v: Vec = {};
    for (const t of line.slice(tab + 1).split(' ')) if (t) v[t] = (v[t] ?? 0) + 1;
    rows.push(v);
  }
  return rows;
}

function shuffled(n: number, seed: number): number[] {
  const r = new Rng(seed);
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) { const j = Math.floor(r.next() * (i + 1)); [a[i], a[j]] = [a[j], a[i]]; }
  return a;
}

interface Query { vec: Vec; self: number } // self: the query's own row (-1 for none)

interface Timed { ms: number[]; results: SparseSearchResult[] }

function timeAll(queries: Query[], excl: (q: Query) => Uint32Array | undefined, run: (q: Query, ex: Uint32Array | undefined) => SparseSearchResult): Timed {
  for (const q of queries.slice(0, 20)) run(q, excl(q)); // warm-up
  const ms: number[] = [], results: SparseSearchResult[] = [];
  for (const q of queries) {
    const ex = excl(q);
    const t = performance.now();
    const r = run(q, ex);
    ms.push(performance.now() - t);
    results.push(r);
  }
  return { ms, results };
}

function recallAt10(found: SparseSearchResult[], truth: SparseSearchResult[]): number {
  let hit = 0, want = 0;
  for (let i = 0; i < truth.length; i++) {
    const t = new Set(truth[i].ords);
    want += truth[i].count;
    for (let j = 0; j < found[i].count; j++) if (t.has(found[i].ords[j])) hit++;
  }
  return want === 0 ? 1 : hit / want;
}

function stats(ms: number[]): { mean: number; p50: number; p99: number; qps: number } {
  const s = [...ms].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { mean, p50: percentile(s, 0.5), p99: percentile(s, 0.99), qps: 1000 / mean };
}

interface Row { setting: string; method: string; recall: number; mean: number; p50: number; p99: number; qps: number; vsBrute: number; vsExact: number; docs: number; bytes: number; buildS: number }

function runSetting(name: string, docs: Vec[], queries: Query[], tuneQueries: Query[], tune: boolean, rows: Row[], buildOpts: SparseBuildOptions): void {
  const t0 = performance.now();
  const index = buildSparseIndex((i) => docs[i], docs.length, buildOpts);
  const buildS = (performance.now() - t0) / 1000;
  process.stderr.write(`${name}: ${docs.length} rows, ${index.termCount} terms, built in ${buildS.toFixed(1)} s, ${(index.memoryBytes / 2 ** 20).toFixed(1)} MiB\n`);
  const words = Math.ceil(docs.length / 32);
  const excl = (q: Query): Uint32Array | undefined => {
    if (q.self < 0) return undefined;
    const b = new Uint32Array(words); b[q.self >>> 5] |= 1 << (q.self & 31); return b;
  };
  const k = 10;
  if (tune) {
    const truth = tuneQueries.map((q) => index.searchBruteForce(q.vec, k, excl(q)));
    const exact = timeAll(tuneQueries, excl, (q, ex) => index.search(q.vec, k, ex, { mode: 'exact' }));
    const exactMean = stats(exact.ms).mean;
    process.stdout.write(`\nTuning split (${tuneQueries.length} dev queries), ${name}, build ${JSON.stringify(buildOpts)} (${buildS.toFixed(1)} s, ${(index.memoryBytes / 2 ** 20).toFixed(1)} MiB): exact MaxScore ${exactMean.toFixed(3)} ms\n| queryTerms | heapFactor | recall@10 | mean ms | vs exact | rows scored | blocks skipped |\n|---:|---:|---:|---:|---:|---:|---:|\n`);
    for (const queryTerms of tuneTerms) for (const heapFactor of tuneFactors) {
      const r = timeAll(tuneQueries, excl, (q, ex) => index.search(q.vec, k, ex, { mode: 'approx', queryTerms, heapFactor }));
      const s = stats(r.ms);
      const per = (f: (x: SparseSearchResult) => number): number => Math.round(r.results.reduce((acc, x) => acc + f(x), 0) / r.results.length);
      process.stdout.write(`| ${queryTerms} | ${heapFactor} | ${recallAt10(r.results, truth).toFixed(3)} | ${s.mean.toFixed(3)} | ${(exactMean / s.mean).toFixed(1)}x | ${per((x) => x.docsScored)} | ${per((x) => x.blocksSkipped)} |\n`);
    }
    index.release();
    return;
  }
  // each pass runs every method over all queries (method order rotated between passes, so none
  // always follows the cache-clearing brute-force scan); a query's time is its median over the
  // passes, so a burst of load from elsewhere rarely counts
  const methods: Array<[string, (q: Query, ex: Uint32Array | undefined) => SparseSearchResult]> = [
    ['brute force (forward index scan)', (q, ex) => index.searchBruteForce(q.vec, k, ex)],
    ['exact MaxScore', (q, ex) => index.search(q.vec, k, ex, { mode: 'exact' })],
    ['approx (defaults: queryTerms 8, heapFactor 1.1)', (q, ex) => index.search(q.vec, k, ex, { mode: 'approx' })],
    ['approx queryTerms 6, heapFactor 1.0', (q, ex) => index.search(q.vec, k, ex, { mode: 'approx', queryTerms: 6, heapFactor: 1.0 })],
    ['approx queryTerms 10, heapFactor 1.2', (q, ex) => index.search(q.vec, k, ex, { mode: 'approx', queryTerms: 10, heapFactor: 1.2 })],
  ];
  const times = methods.map(() => queries.map(() => [] as number[]));
  const results = methods.map(() => [] as SparseSearchResult[]);
  const excluded = queries.map(excl);
  for (const [qi, q] of queries.slice(0, 20).entries()) for (const [, run] of methods) run(q, excluded[qi]); // warm-up
  for (let pass = 0; pass < repeat; pass++) {
    for (let step = 0; step < methods.length; step++) {
      const mi = (step + pass) % methods.length;
      const run = methods[mi][1];
      queries.forEach((q, qi) => {
        const t = performance.now();
        const r = run(q, excluded[qi]);
        times[mi][qi].push(performance.now() - t);
        if (pass === 0) results[mi].push(r);
      });
    }
  }
  const brute = results[0], exact = results[1];
  for (let i = 0; i < queries.length; i++) {
    const a = brute[i], b = exact[i];
    if (a.count !== b.count || a.ords.some((o, j) => o !== b.ords[j] || a.scores[j] !== b.scores[j])) fail(`${name}: MaxScore differs from brute force on query ${i}`);
  }
  const ms = times.map((perQuery) => perQuery.map((xs) => median(xs)));
  const bs = stats(ms[0]), es = stats(ms[1]);
  methods.forEach(([label], mi) => {
    const s = stats(ms[mi]);
    const docsPer = results[mi].reduce((a, r) => a + r.docsScored, 0) / queries.length;
    rows.push({ setting: name, method: label, recall: recallAt10(results[mi], brute), ...s, vsBrute: bs.mean / s.mean, vsExact: es.mean / s.mean, docs: docsPer, bytes: index.memoryBytes, buildS });
  });
  index.release();
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let copies = 20, nQueries = 200, tune = false, only: string | undefined;
  const buildOpts: SparseBuildOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--copies') copies = positiveInt(optionValue(argv, i++, a), a);
    else if (a === '--queries') nQueries = positiveInt(optionValue(argv, i++, a), a);
    else if (a === '--tune') tune = true;
    else if (a === '--repeat') repeat = positiveInt(optionValue(argv, i++, a), a);
    else if (a === '--only') only = optionValue(argv, i++, a);
    else if (a === '--lambda') buildOpts.lambda = positiveInt(optionValue(argv, i++, a), a);
    else if (a === '--centroid-fraction') buildOpts.centroidFraction = Number(optionValue(argv, i++, a));
    else if (a === '--summary-mass') buildOpts.summaryMass = Number(optionValue(argv, i++, a));
    else if (a === '--max-block-size') buildOpts.maxBlockSize = positiveInt(optionValue(argv, i++, a), a);
    else if (a === '--tune-terms') tuneTerms = optionValue(argv, i++, a).split(',').map(Number);
    else if (a === '--tune-factors') tuneFactors = optionValue(argv, i++, a).split(',').map(Number);
    else fail(`unknown option ${a}`);
  }
  const dev = loadTsv('topics.msmarco-passage.dev-subset.splade-v3.tsv.gz');
  const dl19 = loadTsv('topics.dl19-passage.splade-v3.tsv.gz');
  const order = shuffled(dev.length, 20240901);
  if (2 * nQueries > dev.length) fail('--queries too large');
  const reported: Query[] = [...dl19.map((vec) => ({ vec, self: -1 })), ...order.slice(0, nQueries).map((i) => ({ vec: dev[i], self: i }))];
  const tuning: Query[] = order.slice(nQueries, 2 * nQueries).map((i) => ({ vec: dev[i], self: i }));

  // the large collection: copy 0 as is, copies c > 0 renamed through a fixed vocabulary permutation
  const vocab = [...new Set(dev.flatMap((v) => Object.keys(v)))].sort();
  const large: Vec[] = [...dev];
  for (let c = 1; c < copies; c++) {
    const perm = shuffled(vocab.length, 1000 + c);
    const rename = new Map(vocab.map((t, i) => [t, vocab[perm[i]]]));
    for (const v of dev) {
      const out: Vec = {};
      for (const [t, w] of Object.entries(v)) out[rename.get(t)!] = w;
      large.push(out);
    }
  }

  const rows: Row[] = [];
  if (only !== 'large') runSetting(`real ${dev.length}`, dev, reported, tuning, tune, rows, buildOpts);
  if (only !== 'small') runSetting(`${copies} permuted copies = ${large.length}`, large, reported, tuning, tune, rows, buildOpts);
  if (tune) return;
  const m = machineInfo();
  process.stdout.write(`\nQueries: ${dl19.length} DL19 + ${nQueries} dev self-queries (own row excluded); k = 10; per-query median of ${repeat} passes; ${m.cpu}, ${m.cores} cores, Node ${m.node}, load ${m.loadAverage.join(' ')}\n\n`);
  process.stdout.write('| setting | method | recall@10 | mean ms | p50 ms | p99 ms | QPS | vs brute | vs MaxScore | rows scored/query | index MiB | build s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.setting} | ${r.method} | ${r.recall.toFixed(3)} | ${r.mean.toFixed(3)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${Math.round(r.qps)} | ${r.vsBrute.toFixed(1)}x | ${r.vsExact.toFixed(1)}x | ${Math.round(r.docs)} | ${round(r.bytes / 2 ** 20, 1)} | ${r.buildS.toFixed(1)} |\n`);
  }
}

await runMain('bench/sparse', main);
