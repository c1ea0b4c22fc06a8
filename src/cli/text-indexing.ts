import type { Collection, Hit, RequestStats } from '../collection/collection.js';
import type { EmbedOptions, Embedder } from '../embed/types.js';
import { QuiverError } from '../errors.js';
import { createUseLiteEmbedder, USE_LITE_DIMENSION, USE_LITE_MODEL_ID } from '../node/use-lite-embedder.js';
import { ENGLISH_STOP_WORDS } from '../text/stopwords.js';
import { formatCount, Progress } from './progress.js';

/**
 * What `quiver demo --text`, `quiver import --text` and `quiver search --text` share: the offline
 * embedder with a progress hook, writing documents in durable batches that skip what is already
 * stored, Ctrl-C during that work, and printing hybrid hits.
 */

/** A document to index: its id and metadata; the text to embed is one of the metadata's keys. */
export interface TextDocument {
  id: string;
  metadata: Record<string, unknown>;
}

/**
 * The USE-Lite embedder handed to a collection (Collection.open's `embedder` option), so that the
 * collection embeds its own text field (documents and queries by one model, by construction)
 * while the CLI still sees each finished batch of 32 texts for its progress bar, and can abort.
 * The worker threads start at the first embed() (about half a second), and only one of them
 * when that is a single query: a cached demo or an unchanged re-import never waits for two
 * copies of the model to load, nor for one when nothing needs embedding.
 */
export class ReportingEmbedder implements Embedder {
  readonly model = USE_LITE_MODEL_ID;
  readonly dimension = USE_LITE_DIMENSION;
  readonly batchSize = 32;
  /** Called with the texts embedded so far by the current call. */
  onProgress: ((done: number) => void) | null = null;
  /** Aborts the calls in flight (Ctrl-C). */
  signal: AbortSignal | undefined;
  private inner: Promise<Embedder> | null = null;

  /**
   * Starts the worker threads now if they are not running: `many` texts to embed get the default
   * pool (two threads on two cores), a query one thread. MISSING_DEPENDENCY naming the npm
   * install line when USE-Lite's packages are absent.
   */
  async start(many: boolean): Promise<Embedder> {
    this.inner ??= createUseLiteEmbedder(many ? {} : { threads: 1 });
    return this.inner;
  }

  /**
   * Ready to answer queries: the model loaded and run once (its first call compiles the graph, a
   * few hundred milliseconds that would otherwise be counted as the first query's latency).
   */
  async readyForQueries(): Promise<void> {
    await (await this.start(false)).embed(['warm-up']);
  }

  async embed(texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array> {
    const inner = await this.start(texts.length > 1);
    return inner.embed(texts, {
      signal: options.signal ?? this.signal,
      onProgress: (done, total) => { options.onProgress?.(done, total); this.onProgress?.(done); },
    });
  }

  async close(): Promise<void> {
    const inner = this.inner;
    this.inner = null;
    if (!inner) return;
    let started: Embedder;
    try {
      started = await inner;
    } catch {
      return; // it never started: its error was thrown to the call that started it
    }
    await started.close();
  }
}

/**
 * Ctrl-C while documents are embedded: the first aborts the embedding in flight (the batch being
 * embedded is not written; every batch before it is durable) so the command can close the
 * collection and say how to go on; a second one exits at once.
 */
export class Interruption {
  private readonly controller = new AbortController();
  private readonly handler = (): void => {
    if (this.controller.signal.aborted) process.exit(130);
    this.controller.abort(new QuiverError('CLOSED', 'interrupted (Ctrl-C)', { reason: 'SIGINT' }));
  };

  constructor() { process.on('SIGINT', this.handler); }

  get signal(): AbortSignal { return this.controller.signal; }
  get interrupted(): boolean { return this.controller.signal.aborted; }
  dispose(): void { process.off('SIGINT', this.handler); }
}

/** Stable JSON (object keys sorted), to compare a stored record's metadata with a new one's. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * The documents whose id is absent from the collection or whose stored metadata (text included)
 * differs: only those need embedding. This is what makes an interrupted import or demo build
 * resumable, and a re-run of the same file nearly free.
 */
export function documentsToWrite(col: Collection, docs: readonly TextDocument[]): TextDocument[] {
  const out: TextDocument[] = [];
  const STEP = 1000;
  for (let s = 0; s < docs.length; s += STEP) {
    const chunk = docs.slice(s, s + STEP);
    const stored = col.getMany(chunk.map((d) => d.id), { includeVector: false });
    chunk.forEach((d, i) => {
      const rec = stored[i];
      if (!rec || canonicalJson(rec.metadata ?? {}) !== canonicalJson(d.metadata)) out.push(d);
    });
  }
  return out;
}

export interface WriteReport {
  written: number;
  seconds: number;
  /** Documents embedded per second (0 when nothing was written). */
  docsPerSecond: number;
  interrupted: boolean;
}

/**
 * Upserts `docs` (no vectors: the collection embeds its text field through `embedder`) in durable
 * batches of `batch`, with a progress bar in documents/s. On Ctrl-C it stops after the last whole
 * batch and reports `interrupted` instead of throwing.
 */
export async function writeDocuments(col: Collection, embedder: ReportingEmbedder, docs: readonly TextDocument[], o: { batch: number; label: string; unit: string }): Promise<WriteReport> {
  if (docs.length === 0) return { written: 0, seconds: 0, docsPerSecond: 0, interrupted: false };
  await embedder.start(docs.length > 1); // before the progress bar: its rate is the embedding's
  const interruption = new Interruption();
  embedder.signal = interruption.signal;
  const bar = new Progress(o.label, docs.length, o.unit, 0);
  const t0 = performance.now();
  let written = 0;
  try {
    if (process.stderr.isTTY) bar.update(0); // a bar at once in a terminal; logs get a line per few seconds
    for (let s = 0; s < docs.length; s += o.batch) {
      const chunk = docs.slice(s, s + o.batch);
      embedder.onProgress = (done) => bar.update(written + done);
      await col.upsert(chunk.map((d) => ({ id: d.id, metadata: d.metadata })));
      written += chunk.length;
      bar.update(written);
    }
  } catch (e) {
    if (!interruption.interrupted) throw e;
  } finally {
    bar.stop();
    embedder.onProgress = null;
    embedder.signal = undefined;
    interruption.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { written, seconds, docsPerSecond: written > 0 ? written / seconds : 0, interrupted: interruption.interrupted };
}

/** The rate line after indexing, e.g. "embedded and stored 1,200 passages in 80.1 s: 15.0 passages/s". */
export function rateLine(r: WriteReport, unit: string): string {
  return `embedded and stored ${r.written.toLocaleString('en-US')} ${unit} in ${r.seconds.toFixed(1)} s: ${formatCount(r.docsPerSecond)} ${unit}/s (USE-Lite on worker threads, offline)`;
}

const STOP_WORDS = new Set(ENGLISH_STOP_WORDS);

/** Words of a query worth finding in a snippet: lower case, 3 letters or more, not stop words (BM25 ignores them too). */
function queryWords(query: string): string[] {
  return [...new Set(query.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) ?? [])].filter((w) => !STOP_WORDS.has(w));
}

/**
 * About `width` characters of `text` around the first occurrence of a query word (or a word
 * sharing its first five letters, so "hunting" finds "hunted" as BM25's stemmer would), else
 * its beginning; on one line, with ellipses where it was cut.
 */
export function snippet(text: string, query: string, width = 220): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= width) return flat;
  const lower = flat.toLowerCase();
  let at = -1;
  for (const w of queryWords(query)) {
    const stem = w.slice(0, 5);
    const re = new RegExp(`(?<![\\p{L}\\p{N}])${stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'u');
    const m = re.exec(lower);
    if (m && (at < 0 || m.index < at)) at = m.index;
  }
  let start = at < 0 ? 0 : Math.max(0, at - Math.floor(width / 3));
  if (start > 0) {
    const space = flat.indexOf(' ', start);
    start = space >= 0 && space < at ? space + 1 : start;
  }
  let end = Math.min(flat.length, start + width);
  if (end < flat.length) {
    const space = flat.lastIndexOf(' ', end);
    if (space > start + width / 2) end = space;
  }
  return `${start > 0 ? '… ' : ''}${flat.slice(start, end)}${end < flat.length ? ' …' : ''}`;
}

/** "#3 (12.41)" or "-" when the retriever did not return the hit among its candidates. */
function rankCell(hit: Hit, retriever: 'text' | 'vector', digits: number): string {
  const rank = hit.ranks?.[retriever];
  const score = hit.scores?.[retriever];
  return rank === undefined ? '-' : `#${rank}${score === undefined ? '' : ` (${score.toFixed(digits)})`}`;
}

/**
 * Prints hybrid hits: rank, id, fused score, BM25 rank and score, dense rank and cosine, a line
 * of other metadata (`describe`), and a snippet of `textField` around the query's words.
 */
export function printTextHits(hits: readonly Hit[], o: { query: string; textField: string | undefined; describe?: (hit: Hit) => string }, out: (line: string) => void): void {
  if (hits.length === 0) { out('  (no matches)'); return; }
  hits.forEach((h, i) => {
    const label = o.describe?.(h) ?? '';
    out(`  ${String(i + 1).padStart(2)}. ${h.id}  score ${h.score.toFixed(3)}  bm25 ${rankCell(h, 'text', 2)}  dense ${rankCell(h, 'vector', 3)}${label ? `  ${label}` : ''}`);
    const text = o.textField ? h.metadata?.[o.textField] : undefined;
    if (typeof text === 'string') out(`      ${snippet(text, o.query)}`);
  });
}

/** The retrievers a request ran, for the header line of a result ("BM25 + dense (USE-Lite), fused"). */
export function describeRetrievers(stats: RequestStats): string {
  const names = stats.retrievers.map((r) => (r === 'text' ? 'BM25' : r === 'vector' ? `dense (${stats.vector?.embedded ? 'query embedded by USE-Lite' : 'vector'})` : r));
  return `${names.join(' + ')}${stats.fusion ? `, fused (${stats.fusion})` : ''}`;
}
