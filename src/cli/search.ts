import { Collection } from '../node.js';
import type { Metric } from '../collection/validate.js';
import { QuiverError } from '../errors.js';
import type { KernelChoice } from '../kernels/index.js';
import { parseIvecs } from '../io/vecs.js';
import { readVectorFile } from '../node/readers.js';
import { readFileSync, statSync } from 'node:fs';
import { formatCount, Progress } from './progress.js';
import type { Hit, RequestStats } from '../collection/collection.js';
import { closeRegisteredEmbedders, registerEmbedder, registeredEmbedder } from '../embed/registry.js';
import { createUseLiteEmbedder, USE_LITE_MODEL_ID } from '../node/use-lite-embedder.js';
import { describeRetrievers, printTextHits } from './text-indexing.js';

export interface SearchCommandOptions {
  metric: Metric;
  k: number;
  index: string;
  kernels: KernelChoice;
  /** A file of query vectors (any readable format). */
  queries?: string;
  /** Query vector given inline, comma separated. */
  vector?: string;
  /** Rows of the base file used as queries, e.g. "0,5,9". */
  rows?: string;
  /** Use the stored vector of this record id as the query. */
  id?: string;
  /** Ground-truth neighbour rows (.ivecs): report recall@k. */
  groundTruth?: string;
  /** Print at most this many queries' hits. */
  show: number;
  json: boolean;
  /** A text query: BM25 over the collection's text fields, fused with a dense search on its embedding when the collection embeds text. */
  text?: string;
  /** With `text`: embed the query for the dense search (default true); false = BM25 only. */
  embed?: boolean;
}

/**
 * `quiver search TARGET`: TARGET is a collection directory (opened read-only, so it works beside
 * a running writer) or a vector file, loaded into an in-memory collection. Answers queries given
 * inline, from a file, by base row, or by a stored record's id.
 */
export async function runSearch(file: string, o: SearchCommandOptions, out: (line: string) => void = console.log): Promise<void> {
  let isDir = false;
  try { isDir = statSync(file).isDirectory(); } catch { /* readVectorFile reports a missing file */ }
  if (o.text !== undefined) return runTextSearch(file, isDir, o, out);
  let col: Collection;
  let base: Awaited<ReturnType<typeof readVectorFile>> | undefined;
  let ids: string[] | undefined;
  if (isDir) {
    col = await Collection.open(file, { readOnly: true, kernels: o.kernels });
    if (o.rows !== undefined) throw new QuiverError('INVALID_ARGUMENT', '--rows selects rows of a vector file; for a collection use --id, --vector or --queries', { received: o.rows });
  } else {
    base = await readVectorFile(file);
    const d = base.dimension;
    col = Collection.create({ dimension: d, metric: o.metric, index: o.index }, { kernels: o.kernels });
    const bar = new Progress('indexing', base.count, 'vectors');
    ids = base.ids ?? Array.from({ length: base.count }, (_, i) => String(i));
    const BATCH = 10000;
    for (let s = 0; s < base.count; s += BATCH) {
      const e = Math.min(base.count, s + BATCH);
      const batch = [];
      for (let i = s; i < e; i++) batch.push({ id: ids[i], vector: base.data.subarray(i * d, (i + 1) * d), metadata: base.metadata?.[i] });
      await col.upsert(batch);
      bar.update(e);
    }
    bar.stop();
  }
  const d = col.dimension;

  let queries: Float32Array[];
  if (o.id !== undefined) {
    queries = [col.get(o.id).vector];
  } else if (o.vector !== undefined) {
    queries = [Float32Array.from(o.vector.split(',').map((x) => {
      const v = Number(x.trim());
      if (x.trim() === '' || !Number.isFinite(v)) throw new QuiverError('INVALID_VECTOR', `--vector holds "${x}", which is not a finite number`, { received: x });
      return v;
    }))];
  } else if (o.queries !== undefined) {
    const q = await readVectorFile(o.queries);
    queries = Array.from({ length: q.count }, (_, i) => q.data.subarray(i * q.dimension, (i + 1) * q.dimension));
  } else if (base) {
    const b = base;
    const rows = (o.rows ?? '0').split(',').map((r) => Number(r.trim()));
    for (const r of rows) {
      if (!Number.isInteger(r) || r < 0 || r >= b.count) throw new QuiverError('INVALID_ARGUMENT', `--rows: ${r} is not a row of ${file} (0..${b.count - 1})`, { received: r });
    }
    queries = rows.map((r) => b.data.subarray(r * d, (r + 1) * d));
  } else {
    throw new QuiverError('INVALID_ARGUMENT', 'give a query: --id, --vector or --queries', {});
  }

  const qbar = new Progress('searching', queries.length, 'queries');
  const results = [];
  const t0 = performance.now();
  const STEP = 64;
  for (let s = 0; s < queries.length; s += STEP) {
    results.push(...(await col.search(queries.slice(s, s + STEP), { k: o.k })));
    qbar.update(Math.min(queries.length, s + STEP));
  }
  const ms = performance.now() - t0;
  qbar.stop();

  let recall: number | undefined;
  if (o.groundTruth) {
    const gt = parseIvecs(readFileSync(o.groundTruth), o.groundTruth);
    if (gt.count < queries.length) throw new QuiverError('INVALID_ARGUMENT', `ground truth has ${gt.count} rows for ${queries.length} queries`, { expected: queries.length, received: gt.count });
    if (gt.dimension < o.k) throw new QuiverError('INVALID_ARGUMENT', `ground truth holds ${gt.dimension} neighbours per query, fewer than k = ${o.k}`, { expected: o.k, received: gt.dimension });
    let hit = 0;
    results.forEach((hits, q) => {
      // ground-truth rows name records by row: the file's ids, or row numbers (quiver import's default ids)
      const want = new Set(Array.from(gt.data.subarray(q * gt.dimension, q * gt.dimension + o.k), (r) => (ids ? ids[r] : String(r))));
      for (const h of hits) if (want.has(h.id)) hit++;
    });
    recall = hit / (queries.length * o.k);
  }

  if (o.json) {
    out(JSON.stringify({ file, count: col.size, dimension: d, queries: queries.length, ms, recall, results: results.slice(0, o.show) }, null, 2));
  } else {
    out(`${col.size.toLocaleString('en-US')} vectors of dimension ${d} ${isDir ? 'in collection' : 'from'} ${file}; metric ${col.metric}, index ${col.index}, kernels ${col.stats().kernels}`);
    results.slice(0, o.show).forEach((hits, q) => {
      out(`\nquery ${q}:`);
      hits.forEach((h, i) => out(`  ${String(i + 1).padStart(3)}. ${h.id.padEnd(16)} ${h.score.toFixed(6)}${h.metadata ? '  ' + JSON.stringify(h.metadata) : ''}`));
    });
    if (results.length > o.show) out(`\n(${results.length - o.show} more queries not shown; --show N to print more)`);
    out(`\n${queries.length} queries in ${ms.toFixed(1)} ms (${formatCount(queries.length / (ms / 1000))} queries/s)`);
    if (recall !== undefined) out(`recall@${o.k} against ${o.groundTruth}: ${recall.toFixed(4)}`);
  }
  await col.close();
}

/**
 * `quiver search DIR --text QUERY`: a search request on a collection with text fields (e.g. made by
 * `quiver import --text`): BM25, and when the schema names an embedder, a dense search on the
 * query embedded by that model (USE-Lite, offline), fused. Each hit shows both ranks.
 */
async function runTextSearch(target: string, isDir: boolean, o: SearchCommandOptions, out: (line: string) => void): Promise<void> {
  // a missing path is NOT_FOUND from Collection.open below
  if (!isDir && statSync(target, { throwIfNoEntry: false })) {
    throw new QuiverError('INVALID_ARGUMENT', `--text searches a collection directory (e.g. one made by \`quiver import DIR FILE.jsonl --text FIELD\`), and ${target} is a file`, { received: target });
  }
  const clash = (['id', 'vector', 'queries', 'rows', 'groundTruth'] as const).filter((k) => o[k] !== undefined);
  if (clash.length) throw new QuiverError('INVALID_ARGUMENT', `--text is a query by itself: drop ${clash.map((k) => `--${k === 'groundTruth' ? 'ground-truth' : k}`).join(', ')}`, { received: clash });
  if (o.text!.trim() === '') throw new QuiverError('INVALID_ARGUMENT', '--text needs a query: some words to search for', { field: 'text' });
  const col = await Collection.open(target, { readOnly: true, kernels: o.kernels });
  try {
    const schema = col.schema;
    const textFields = Object.entries(schema.fields).filter(([, t]) => t === 'text').map(([n]) => n);
    if (textFields.length === 0 && !schema.embedder) {
      throw new QuiverError('INVALID_ARGUMENT', `the collection at ${target} has no text fields and no embedder: search it with --id, --vector or --queries, or import text with \`quiver import DIR FILE.jsonl --text FIELD\``, { directory: target });
    }
    let loadMs = 0;
    if (schema.embedder && o.embed !== false) {
      // one query needs one worker thread (the default pool starts two, each loading the model)
      if (schema.embedder === USE_LITE_MODEL_ID) registerEmbedder(USE_LITE_MODEL_ID, () => createUseLiteEmbedder({ threads: 1 }));
      const tl = performance.now();
      // loaded and run once before the search so that its time is the query's own
      await (await registeredEmbedder(schema.embedder)).embed(['warm-up']);
      loadMs = performance.now() - tl;
    }
    const t0 = performance.now();
    const { hits, stats } = await col.search({ text: o.text!, k: o.k, embed: o.embed !== false, withStats: true }) as { hits: Hit[]; stats: RequestStats };
    const ms = performance.now() - t0;
    if (o.json) {
      out(JSON.stringify({ directory: target, query: o.text, k: o.k, count: col.size, ms: +ms.toFixed(2), modelLoadMs: +loadMs.toFixed(1), retrievers: stats.retrievers, fusion: stats.fusion ?? null, hits }, null, 2));
      return;
    }
    out(`${col.size.toLocaleString('en-US')} records in ${target}; text fields ${textFields.join(', ') || 'none'}${schema.embedder ? `, embedder ${schema.embedder}${loadMs ? ` (loaded in ${(loadMs / 1000).toFixed(1)} s)` : ''}` : ''}`);
    out(`\n"${o.text}" (${ms.toFixed(1)} ms; ${describeRetrievers(stats)}):`);
    // a snippet of the first text field (the one imported with --text, in a collection it made)
    const snippetField = textFields[0];
    const others = (h: Hit): string => {
      const rest = Object.entries(h.metadata ?? {}).filter(([key]) => !textFields.includes(key));
      if (rest.length === 0) return '';
      const json = JSON.stringify(Object.fromEntries(rest));
      return json.length > 100 ? `${json.slice(0, 99)}…` : json;
    };
    printTextHits(hits, { query: o.text!, textField: snippetField, describe: others }, out);
  } finally {
    await col.close();
    await closeRegisteredEmbedders(); // the collection's embedder runs worker threads
  }
}
