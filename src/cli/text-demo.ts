import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Collection } from '../node.js';
import type { Hit, RequestStats } from '../collection/collection.js';
import { QuiverError, isQuiverError } from '../errors.js';
import type { KernelChoice } from '../kernels/index.js';
import { USE_LITE_DIMENSION, USE_LITE_MODEL_ID } from '../node/use-lite-embedder.js';
import { loadMobyDickPassages, MOBY_DICK_PACKAGE, PASSAGE_MAX_WORDS, PASSAGE_MIN_WORDS, type Passage } from './text-corpus.js';
import { describeRetrievers, documentsToWrite, printTextHits, rateLine, ReportingEmbedder, writeDocuments } from './text-indexing.js';

export interface TextDemoOptions {
  /** Queries to answer; none: an interactive prompt when `interactive`, else DEFAULT_TEXT_QUERIES. */
  queries: string[];
  k: number;
  /** Index the first N passages of the book (0 = all of them). */
  limit: number;
  /** Cache directory (default: defaultTextDemoDir()). */
  dir?: string;
  kernels: KernelChoice;
  json: boolean;
  /** Ask for queries on stdin (a terminal) when none are given. */
  interactive: boolean;
}

/**
 * Passages indexed by default: the first 1,200 of the book's 1,882 (up to chapter 82), 41 s
 * of embedding on two idle cores (29 passages/s; 8-15 on a busy machine); --limit 0 takes the whole book.
 */
export const DEFAULT_TEXT_DEMO_LIMIT = 1200;
export const DEFAULT_TEXT_QUERIES = ['whale hunting', 'Ahab is obsessed with the white whale', 'a storm at sea'];
/** Passages per durable batch of the first run: Ctrl-C loses at most one batch of embedding. */
const DEMO_BATCH = 128;
/** Marks a directory as this demo's cache, the only kind it will ever delete and rebuild. */
const CACHE_MARKER = 'quiver-demo-text.json';

/** ~/.cache/quiverdb/demo-text ($XDG_CACHE_HOME, or %LOCALAPPDATA% on Windows, when set). */
export function defaultTextDemoDir(): string {
  const base = process.env.XDG_CACHE_HOME || (process.platform === 'win32' && process.env.LOCALAPPDATA) || join(homedir(), '.cache');
  return join(base, 'quiverdb', 'demo-text');
}

/**
 * Makes `dir` the demo's cache: creates it with its marker, accepts it when the marker is there,
 * and refuses a directory that holds anything else (it would be deleted on a rebuild).
 */
function claimCacheDir(dir: string): void {
  const marker = join(dir, CACHE_MARKER);
  if (existsSync(marker)) return;
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new QuiverError('INVALID_ARGUMENT', `${dir} is not empty and is not a cache of quiver demo --text: pass a new or empty directory with --dir`, { directory: dir });
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(marker, JSON.stringify({ corpus: MOBY_DICK_PACKAGE, embedder: USE_LITE_MODEL_ID, note: 'cache of `quiver demo --text`; safe to delete' }, null, 2) + '\n');
}

function cacheCorpus(dir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(dir, CACHE_MARKER), 'utf8')) as { corpus?: string }).corpus;
  } catch {
    return undefined;
  }
}

const SCHEMA = {
  dimension: USE_LITE_DIMENSION, metric: 'cosine' as const, index: 'Flat',
  fields: { text: { type: 'text' as const, embed: true }, passage: 'number' as const, chapter: 'keyword' as const },
  embedder: USE_LITE_MODEL_ID,
};

/**
 * Opens the cached collection, checking every checksum; when it cannot be opened or is damaged
 * (a crash mid-write, a truncated file, another version's schema), deletes it and starts afresh:
 * it is only a cache. LOCKED (another demo is running on it) and other failures propagate.
 */
async function openCache(colDir: string, embedder: ReportingEmbedder, kernels: KernelChoice): Promise<{ col: Collection; rebuilt: string | null }> {
  let reason: string | null = null;
  if (existsSync(colDir)) {
    try {
      const col = await Collection.open(colDir, { schema: SCHEMA, embedder, kernels });
      const check = await col.verify();
      if (check.problems.length === 0) return { col, rebuilt: null };
      await col.close();
      reason = `${check.problems[0].file}: ${check.problems[0].message}`;
    } catch (e) {
      if (!(e instanceof QuiverError) || ['LOCKED', 'MISSING_DEPENDENCY', 'INVALID_ARGUMENT'].includes(e.code)) throw e;
      reason = `[${e.code}] ${e.message}`;
    }
    rmSync(colDir, { recursive: true, force: true });
  }
  return { col: await Collection.open(colDir, { schema: SCHEMA, embedder, kernels }), rebuilt: reason };
}

interface QueryReport { query: string; ms: number; retrievers: string; hits: { id: string; score: number; ranks: Hit['ranks']; scores: Hit['scores']; chapter: unknown; passage: unknown; text: unknown }[] }

/**
 * `quiver demo --text`: hybrid search over passages of Moby-Dick, offline. The first run embeds
 * the passages with USE-Lite (progress in passages/s) into a durable collection in the cache
 * directory; later runs open it at once. Then it answers the queries given, or those typed at a
 * prompt, with each hit's fused score, BM25 rank and dense rank, and a snippet.
 */
export async function runTextDemo(o: TextDemoOptions, out: (line: string) => void = console.log, err: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<Record<string, unknown>> {
  const all = loadMobyDickPassages(); // MISSING_DEPENDENCY before any work
  const passages = o.limit > 0 ? all.slice(0, o.limit) : all;
  const dir = resolve(o.dir ?? defaultTextDemoDir());
  claimCacheDir(dir);
  if (cacheCorpus(dir) !== MOBY_DICK_PACKAGE) throw new QuiverError('INVALID_ARGUMENT', `${dir} is a cache of another corpus`, { directory: dir });

  const t0 = performance.now();
  const embedder = new ReportingEmbedder();
  let col: Collection | null = null;
  try {
    const opened = await openCache(join(dir, 'collection'), embedder, o.kernels);
    col = opened.col;
    if (opened.rebuilt) err(`the cache in ${dir} could not be used (${opened.rebuilt}); rebuilding it`);
    const docs = passages.map((p: Passage) => ({ id: p.id, metadata: { text: p.text, chapter: p.chapter, title: p.title, passage: p.index } }));
    const toWrite = documentsToWrite(col, docs);
    const cached = docs.length - toWrite.length;
    const last = passages[passages.length - 1];
    if (!o.json) {
      out(`QuiverDB text demo: ${passages.length.toLocaleString('en-US')} of the ${all.length.toLocaleString('en-US')} passages of Moby-Dick (Herman Melville; npm ${MOBY_DICK_PACKAGE}), up to chapter ${last.chapter}${o.limit > 0 && o.limit < all.length ? ' (--limit 0: the whole book)' : ''}`);
      out(`passages: paragraphs of ${PASSAGE_MIN_WORDS}-${PASSAGE_MAX_WORDS} words; BM25 over their words + ${USE_LITE_MODEL_ID} ${USE_LITE_DIMENSION}-d embeddings (offline), fused`);
      if (toWrite.length > 0 && cached > 0) out(`resuming: ${cached.toLocaleString('en-US')} passages already cached in ${dir}; embedding the other ${toWrite.length.toLocaleString('en-US')}`);
      else if (toWrite.length > 0) out(`first run: embedding ${toWrite.length.toLocaleString('en-US')} passages into ${dir} (once; later runs start at once; Ctrl-C keeps what is done)`);
    }
    const written = await writeDocuments(col, embedder, toWrite, { batch: DEMO_BATCH, label: 'embedding', unit: 'passages' });
    if (written.interrupted) {
      err(`interrupted: ${(cached + written.written).toLocaleString('en-US')} of ${docs.length.toLocaleString('en-US')} passages are cached in ${dir}; run the demo again to go on`);
      process.exitCode = 130;
      return { interrupted: true, cached: cached + written.written, passages: docs.length };
    }
    if (written.written > 0) {
      await col.flush(); // a sealed segment opens without replaying the log: the next run starts at once
      if (!o.json) out(rateLine(written, 'passages'));
    }
    await embedder.readyForQueries(); // loads the model when nothing needed embedding
    const readyMs = performance.now() - t0;
    if (!o.json && toWrite.length === 0) out(`cached: all ${docs.length.toLocaleString('en-US')} passages are in ${dir}; nothing to embed (collection and model ready in ${(readyMs / 1000).toFixed(1)} s)`);

    // the cache only grows (passages are in book order); a smaller --limit searches its prefix
    const filter = col.size > passages.length ? { passage: { $lt: passages.length } } : undefined;
    const search = async (query: string): Promise<QueryReport> => {
      const ts = performance.now();
      const { hits, stats } = await col!.search({ text: query, k: o.k, withStats: true, ...(filter ? { filter } : {}) }) as { hits: Hit[]; stats: RequestStats };
      const ms = performance.now() - ts;
      if (!o.json) {
        out(`\n"${query}" (${ms.toFixed(1)} ms; ${describeRetrievers(stats)}):`);
        printTextHits(hits, { query, textField: 'text', describe: (h) => `ch. ${String(h.metadata?.chapter)}` }, out);
      }
      return {
        query, ms: +ms.toFixed(2), retrievers: describeRetrievers(stats),
        hits: hits.map((h) => ({ id: h.id, score: h.score, ranks: h.ranks, scores: h.scores, chapter: h.metadata?.chapter, passage: h.metadata?.passage, text: h.metadata?.text })),
      };
    };

    const report: Record<string, unknown> = {
      corpus: MOBY_DICK_PACKAGE, passages: docs.length, totalPassages: all.length, directory: dir, cached: toWrite.length === 0, rebuilt: opened.rebuilt,
      embedded: written.written, embedSeconds: +written.seconds.toFixed(2), passagesPerSecond: +written.docsPerSecond.toFixed(1), readySeconds: +(readyMs / 1000).toFixed(2),
      queries: [] as QueryReport[],
    };
    const queries = o.queries.length ? o.queries : o.interactive && !o.json ? [] : DEFAULT_TEXT_QUERIES;
    for (const q of queries) (report.queries as QueryReport[]).push(await search(q));
    if (queries.length === 0) await prompt(search, out);
    else if (!o.json) out(`\n(npx quiver demo --text "your query"; with no query in a terminal, a prompt)`);
    if (o.json) out(JSON.stringify(report, null, 2));
    return report;
  } finally {
    await col?.close();
    await embedder.close();
  }
}

/** Reads queries at a `query>` prompt until an empty input stream, "exit", Ctrl-D or Ctrl-C. */
async function prompt(search: (q: string) => Promise<unknown>, out: (line: string) => void): Promise<void> {
  out('\ntype a query and press Enter (Ctrl-C or Ctrl-D to leave)');
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: 'query> ' });
  // Ctrl-C at the prompt leaves like Ctrl-D: the collection and the embedder's threads are closed by the caller
  rl.on('SIGINT', () => { out(''); rl.close(); });
  rl.prompt();
  try {
    for await (const line of rl) {
      const q = line.trim();
      if (q === 'exit' || q === 'quit') break;
      if (q) {
        try {
          await search(q);
        } catch (e) {
          if (!isQuiverError(e)) throw e;
          out(`error [${e.code}]: ${e.message}`);
        }
      }
      rl.prompt();
    }
  } finally {
    rl.close();
  }
}
