/**
 * Text retrieval on real judgments: BM25, dense and hybrid on CACM, and BM25 latency with and
 * without block-max pruning.
 *
 *   node --import tsx bench/text.ts [--source] [--copies N] [--repeat R] [--smoke] [--out FILE]
 *
 * (`npm run bench:text` at the root.) The product comes from the built ../dist, or with --source
 * from ../src through tsx.
 *
 * Data: ../shared/data/cacm (BEIR layout: 3,204 documents, 64 queries of which 52 are judged;
 * `use512/` holds USE-Lite 512-d embeddings of the documents and queries, made by the same model
 * as the product's 'use-lite-512' embedder). Each document is indexed as one text field `body`
 * (the BEIR copy's titles are empty; its text holds title, authors and dates).
 *
 * 1. Effectiveness, one row per retriever: MAP (of the top 1,000), P@30, nDCG@10, recall@100,
 *    MRR@10 (trec_eval semantics, src/eval/metrics.ts), over the 52 judged queries; then the same
 *    over the even-id half only, because the default fusion (z-scored weighted sum) was chosen
 *    on the odd-id half (src/query/fusion.ts). Anserini's CACM regression (BM25, same analyzer):
 *    MAP 0.3123, P@30 0.1942.
 * 2. BM25 latency, one query at a time, k = 10 and k = 1000, pruned (block-max MaxScore) against
 *    exhaustive scoring (every posting of every query term scored), on CACM and on a larger
 *    collection of `--copies` copies of CACM (ids suffixed; the same texts, so the same postings
 *    shape at N times the length), sealed into segments and reopened from their files. Two query
 *    sets: CACM's 64 queries as written (long: 13 terms on average after analysis), and the same
 *    cut to their first three words that are not stop words (short, web-like queries). Median and
 *    p99 of per-query wall time over `--repeat` interleaved passes, plus documents scored in full
 *    per query.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DATA_DIR, fail, loadProduct, machineInfo, median, optionValue, percentile, positiveInt, ROOT, round, runMain, type Quiver } from './common.js';

interface Options { source: boolean; copies: number; repeat: number; smoke: boolean; out: string | null }

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { source: false, copies: 20, repeat: 3, smoke: false, out: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--source') o.source = true;
    else if (a === '--smoke') { o.smoke = true; o.copies = 2; o.repeat = 1; }
    else if (a === '--copies') o.copies = positiveInt(optionValue(argv, i++, a), a);
    else if (a === '--repeat') o.repeat = positiveInt(optionValue(argv, i++, a), a);
    else if (a === '--out') o.out = optionValue(argv, i++, a);
    else fail(`unknown option ${a} (options: --source, --copies N, --repeat R, --smoke, --out FILE)`);
  }
  return o;
}

type Run = Map<string, string[]>;
const METRICS = ['map', 'P@30', 'ndcg@10', 'recall@100', 'mrr@10'];

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const q: Quiver = o.source ? await import(pathToFileURL(join(ROOT, 'src', 'node.ts')).href) : await loadProduct();
  const cacmDir = join(DATA_DIR, 'cacm');
  const ds = await q.readBeirDataset(cacmDir);
  const vecs = (name: string) => {
    const bytes = readFileSync(join(cacmDir, 'use512', `${name}.fvecs`));
    const ids: string[] = JSON.parse(readFileSync(join(cacmDir, 'use512', `${name}.ids.json`), 'utf8'));
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const d = dv.getInt32(0, true);
    const rows = bytes.byteLength / (4 + d * 4);
    const out = new Map<string, Float32Array>();
    for (let i = 0; i < rows; i++) out.set(ids[i], new Float32Array(bytes.buffer.slice(bytes.byteOffset + i * (4 + d * 4) + 4, bytes.byteOffset + (i + 1) * (4 + d * 4))));
    return out;
  };
  const docVec = vecs('corpus'), queryVec = vecs('queries');
  const machine = machineInfo();
  console.log(`# bench/text.ts on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load ${machine.loadAverage.join(' ')}`);

  // ---- 1. effectiveness ----
  const c = q.Collection.create({ dimension: 512, fields: { body: 'text' } });
  await c.upsert(ds.corpus.map((d) => ({ id: d.id, vector: docVec.get(d.id) ?? fail(`no vector for ${d.id}`), metadata: { body: d.text } })));
  const retrievers: [string, (text: string, vector: Float32Array) => Promise<{ id: string }[]>][] = [
    ['BM25', (text) => c.search({ text, k: 1000, includeMetadata: false })],
    ['dense (USE-Lite)', (_t, vector) => c.search({ vector, k: 1000, includeMetadata: false })],
    ['hybrid RRF (k=60)', (text, vector) => c.search({ text, vector, k: 1000, depth: 1000, fusion: { method: 'rrf' }, includeMetadata: false })],
    ['hybrid weighted min-max', (text, vector) => c.search({ text, vector, k: 1000, depth: 1000, fusion: { method: 'weighted', normalize: 'minmax' }, includeMetadata: false })],
    ['hybrid weighted z-score (default)', (text, vector) => c.search({ text, vector, k: 1000, depth: 1000, includeMetadata: false })],
  ];
  const runs = new Map<string, Run>();
  for (const [name, run] of retrievers) {
    const r: Run = new Map();
    for (const [qid, text] of ds.queries) r.set(qid, (await run(text, queryVec.get(qid) ?? fail(`no vector for query ${qid}`))).map((h) => h.id));
    runs.set(name, r);
  }
  const even = new Map([...ds.qrels].filter(([id]) => Number(id) % 2 === 0));
  const tables: Record<string, Record<string, Record<string, number>>> = {};
  for (const [label, qrels] of [['all 52 judged queries', ds.qrels], ['even-id half (26 queries; fusion chosen on the odd half)', even]] as const) {
    console.log(`\n## CACM, ${label}\n\n| retriever | MAP | P@30 | nDCG@10 | recall@100 | MRR@10 |\n|---|---|---|---|---|---|`);
    tables[label] = {};
    for (const [name, run] of runs) {
      const e = q.evaluate(qrels, run, METRICS);
      tables[label][name] = Object.fromEntries(METRICS.map((m) => [m, round(e.mean[m], 4)]));
      console.log(`| ${name} | ${METRICS.map((m) => e.mean[m].toFixed(4)).join(' | ')} |`);
    }
  }
  console.log('\nAnserini CACM regression (BM25, k1 0.9, b 0.4): MAP 0.3123, P@30 0.1942');
  await c.close();

  // ---- 2. BM25 latency, pruned vs exhaustive ----
  const latency: Record<string, unknown>[] = [];
  const english = q.getAnalyzer('english'), standard = q.getAnalyzer('standard');
  const querySets: [string, string[]][] = [
    ['long (as written)', [...ds.queries.values()]],
    ['short (first 3 words)', [...ds.queries.values()].map((t) => standard.analyze(t).filter((w) => english.analyze(w).length > 0).slice(0, 3).join(' '))],
  ];
  for (const copies of o.copies > 1 ? [1, o.copies] : [1]) {
    const dir = new q.MemoryDirectory();
    let col = await q.Collection.open(dir, { schema: { dimension: 1, fields: { body: 'text' } }, sealRows: 16_384, autoMerge: false });
    const t0 = performance.now();
    for (let copy = 0; copy < copies; copy++) {
      for (let i = 0; i < ds.corpus.length; i += 1000) {
        await col.upsert(ds.corpus.slice(i, i + 1000).map((d) => ({ id: `${d.id}#${copy}`, vector: [1], metadata: { body: d.text } })));
      }
    }
    await col.flush();
    const indexMs = performance.now() - t0;
    // reopened: every segment reads its POSTINGS section (a seal keeps the in-memory lists otherwise)
    await col.close();
    col = await q.Collection.open(dir, { autoMerge: false });
    for (const [setName, queries] of querySets) for (const k of [10, 1000]) {
      const times = { pruned: [] as number[], exhaustive: [] as number[] };
      const scored = { pruned: 0, exhaustive: 0 };
      for (let pass = 0; pass < o.repeat; pass++) {
        for (let qi = 0; qi < queries.length; qi++) {
          const text = queries[qi];
          // alternate which mode goes first, so neither always runs on a warm cache
          const modes = (pass + qi) % 2 ? ['pruned', 'exhaustive'] as const : ['exhaustive', 'pruned'] as const;
          for (const mode of modes) {
            const s = performance.now();
            const { stats } = await col.search({ text, k, exhaustive: mode === 'exhaustive', includeMetadata: false, withStats: true });
            times[mode].push(performance.now() - s);
            if (pass === 0) scored[mode] += stats.text!.scored;
          }
        }
      }
      const row = {
        docs: ds.corpus.length * copies, queries: setName, k, segments: col.info().segmentList.filter((s) => s.rows > 0).length, indexSeconds: round(indexMs / 1000, 1),
        prunedMedianMs: round(median(times.pruned), 3), prunedP99Ms: round(percentile(times.pruned.sort((a, b) => a - b), 0.99), 3),
        exhaustiveMedianMs: round(median(times.exhaustive), 3), exhaustiveP99Ms: round(percentile(times.exhaustive.sort((a, b) => a - b), 0.99), 3),
        speedup: round(median(times.exhaustive) / median(times.pruned), 2),
        scoredPerQueryPruned: Math.round(scored.pruned / queries.length), scoredPerQueryExhaustive: Math.round(scored.exhaustive / queries.length),
      };
      latency.push(row);
    }
    await col.close();
  }
  console.log(`\n## BM25 latency, one query at a time (64 CACM queries, ${o.repeat} passes)\n`);
  console.log('| documents | segments | queries | k | pruned median ms | p99 | exhaustive median ms | p99 | speed-up | docs scored/query pruned | exhaustive |\n|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of latency) console.log(`| ${(r.docs as number).toLocaleString('en-US')} | ${r.segments} | ${r.queries} | ${r.k} | ${r.prunedMedianMs} | ${r.prunedP99Ms} | ${r.exhaustiveMedianMs} | ${r.exhaustiveP99Ms} | ${r.speedup}x | ${r.scoredPerQueryPruned} | ${r.scoredPerQueryExhaustive} |`);
  if (o.out) writeFileSync(o.out, JSON.stringify({ machine, options: o, effectiveness: tables, latency }, null, 2));
}

await runMain('bench/text.ts', main);
