/**
 * Reads a dataset in BEIR's layout (Node only: node:fs):
 *   DIR/corpus.jsonl       one {"_id", "title", "text"} per line (title may be missing or empty)
 *   DIR/queries.jsonl      one {"_id", "text"} per line
 *   DIR/qrels/SPLIT.tsv    a header line, then query-id TAB corpus-id TAB score
 * Files are read line by line, so a large corpus never sits in memory as one string.
 * Errors: IO_ERROR for a missing or unreadable file, MALFORMED_INPUT naming the file and line.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { QuiverError } from '../errors.js';
import { ioError } from '../io/common.js';
import type { Qrels } from '../eval/metrics.js';

export interface BeirDocument {
  id: string;
  title: string;
  text: string;
}

export interface BeirDataset {
  corpus: BeirDocument[];
  /** Query id -> query text, in file order. */
  queries: Map<string, string>;
  /** Query id -> document id -> grade, from qrels/SPLIT.tsv. */
  qrels: Qrels;
}

/** Calls `onLine` with each non-empty line of `path` and its 1-based line number. */
async function forEachLine(path: string, onLine: (line: string, lineNumber: number) => void): Promise<void> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNumber = 0;
  try {
    for await (const line of lines) {
      lineNumber++;
      if (line.trim().length > 0) onLine(line, lineNumber);
    }
  } catch (e) {
    if (e instanceof QuiverError) throw e;
    const errno = (e as NodeJS.ErrnoException).code;
    throw ioError('IO_ERROR', path, `cannot read: ${errno ?? String(e)}`, { errno }, e);
  } finally {
    lines.close();
    stream.destroy();
  }
}

function malformed(path: string, lineNumber: number, why: string): QuiverError {
  return ioError('MALFORMED_INPUT', path, `line ${lineNumber}: ${why}`, { line: lineNumber });
}

function parseJsonObject(path: string, line: string, lineNumber: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw malformed(path, lineNumber, `not JSON (${(e as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw malformed(path, lineNumber, 'not a JSON object');
  return value as Record<string, unknown>;
}

/** A string field, or '' when `optional` and absent; MALFORMED_INPUT otherwise. */
function stringField(record: Record<string, unknown>, field: string, optional: boolean, path: string, lineNumber: number): string {
  const value = record[field];
  if (typeof value === 'string') return value;
  if (optional && (value === undefined || value === null)) return '';
  // Some BEIR corpora give numeric ids; ids are compared as strings with the qrels' columns.
  if (field === '_id' && typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw malformed(path, lineNumber, `field "${field}" must be a string, got ${value === undefined ? 'nothing' : typeof value}`);
}

export async function readBeirCorpus(path: string): Promise<BeirDocument[]> {
  const corpus: BeirDocument[] = [];
  await forEachLine(path, (line, n) => {
    const record = parseJsonObject(path, line, n);
    corpus.push({ id: stringField(record, '_id', false, path, n), title: stringField(record, 'title', true, path, n), text: stringField(record, 'text', true, path, n) });
  });
  return corpus;
}

export async function readBeirQueries(path: string): Promise<Map<string, string>> {
  const queries = new Map<string, string>();
  await forEachLine(path, (line, n) => {
    const record = parseJsonObject(path, line, n);
    queries.set(stringField(record, '_id', false, path, n), stringField(record, 'text', false, path, n));
  });
  return queries;
}

/** qrels TSV: the first line is a header (skipped); then query-id, corpus-id, integer score. */
export async function readBeirQrels(path: string): Promise<Map<string, Map<string, number>>> {
  const qrels = new Map<string, Map<string, number>>();
  await forEachLine(path, (line, n) => {
    if (n === 1) return;
    const columns = line.split('\t');
    if (columns.length !== 3) throw malformed(path, n, `expected 3 tab-separated columns (query-id, corpus-id, score), got ${columns.length}`);
    const [queryId, docId, scoreText] = columns;
    const score = Number(scoreText);
    if (queryId === '' || docId === '' || scoreText.trim() === '' || !Number.isInteger(score)) {
      throw malformed(path, n, `expected query-id, corpus-id and an integer score, got ${JSON.stringify(line)}`);
    }
    let judgments = qrels.get(queryId);
    if (judgments === undefined) qrels.set(queryId, judgments = new Map());
    judgments.set(docId, score);
  });
  return qrels;
}

/** Reads corpus, queries and the qrels of `split` (default 'test') of the BEIR dataset in `dir`. */
export async function readBeirDataset(dir: string, options: { split?: string } = {}): Promise<BeirDataset> {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new QuiverError('INVALID_ARGUMENT', 'readBeirDataset expects a directory path', { received: typeof dir });
  }
  const split = options.split ?? 'test';
  if (!/^[A-Za-z0-9_.-]+$/.test(split)) {
    throw new QuiverError('INVALID_ARGUMENT', `split must be a file name such as "test", got ${JSON.stringify(split)}`, { received: split });
  }
  const [corpus, queries, qrels] = await Promise.all([
    readBeirCorpus(join(dir, 'corpus.jsonl')),
    readBeirQueries(join(dir, 'queries.jsonl')),
    readBeirQrels(join(dir, 'qrels', `${split}.tsv`)),
  ]);
  return { corpus, queries, qrels };
}
