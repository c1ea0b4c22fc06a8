import { Collection } from '../node.js';
import type { NormalizedSchema } from '../collection/schema.js';
import { checkId, checkMetadata } from '../collection/validate.js';
import { QuiverError, isQuiverError } from '../errors.js';
import type { KernelChoice } from '../kernels/index.js';
import { readBytes } from '../node/readers.js';
import { USE_LITE_DIMENSION, USE_LITE_MODEL_ID } from '../node/use-lite-embedder.js';
import { documentsToWrite, rateLine, ReportingEmbedder, writeDocuments, type TextDocument } from './text-indexing.js';

export interface TextImportOptions {
  /** The JSON key holding each document's text: a text field (BM25) whose text the collection embeds. */
  field: string;
  /** The JSON key holding each document's id. */
  idKey: string;
  /** Index spec of the dense vectors when the collection is created. */
  index: string;
  kernels: KernelChoice;
  /** Documents per durable upsert: an interruption loses at most the batch being embedded. */
  batch: number;
  /** Seal the imported rows into segments before exiting. */
  flush: boolean;
  json: boolean;
}

/** Documents per durable batch of a text import: about 15 s of embedding on two cores. */
export const DEFAULT_TEXT_IMPORT_BATCH = 256;

function malformed(file: string, line: number, message: string, details: Record<string, unknown> = {}): QuiverError {
  return new QuiverError('MALFORMED_INPUT', `${file}:${line}: ${message}`, { file, line, ...details });
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/**
 * One JSON object per line: the id under `idKey` (a string, or an integer), the text under
 * `field`, every other key kept as metadata (the text too: it is the text field's value).
 * Blank lines are skipped; any other bad line is MALFORMED_INPUT naming the file and line, found
 * before anything is written. A later line with an id seen before replaces it, as upsert does.
 */
export function parseJsonlDocuments(content: string, file: string, field: string, idKey: string): { docs: TextDocument[]; duplicates: number } {
  const byId = new Map<string, TextDocument>();
  let duplicates = 0;
  const lines = content.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let doc: unknown;
    try {
      doc = JSON.parse(raw);
    } catch (e) {
      throw malformed(file, line, `not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw malformed(file, line, `each line must be a JSON object {"${idKey}": ..., "${field}": "...", ...}, got ${kindOf(doc)}`, { received: kindOf(doc) });
    }
    const { [idKey]: rawId, ...metadata } = doc as Record<string, unknown>;
    if (rawId === undefined || rawId === null) {
      throw malformed(file, line, `the document has no "${idKey}" key: every document needs an id (name its key with --id KEY)`, { field: idKey });
    }
    if (typeof rawId !== 'string' && !(typeof rawId === 'number' && Number.isSafeInteger(rawId))) {
      throw malformed(file, line, `the id ("${idKey}") must be a string or an integer, got ${kindOf(rawId)}`, { field: idKey, received: kindOf(rawId) });
    }
    const text = metadata[field];
    if (text === undefined) {
      throw malformed(file, line, `document "${String(rawId)}" has no "${field}" key, the text to index (--text ${field}); its keys: ${Object.keys(doc).join(', ')}`, { field, id: String(rawId) });
    }
    if (typeof text !== 'string') throw malformed(file, line, `"${field}" must be a string, got ${kindOf(text)}`, { field, id: String(rawId), received: kindOf(text) });
    if (text.trim() === '') throw malformed(file, line, `"${field}" is empty: there is no text to index`, { field, id: String(rawId) });
    let id: string;
    try {
      id = checkId(String(rawId), {});
      checkMetadata(metadata, {});
    } catch (e) {
      if (e instanceof QuiverError) throw malformed(file, line, e.message, e.details);
      throw e;
    }
    if (byId.has(id)) {
      duplicates++;
      byId.delete(id); // keep file order for the survivor
    }
    byId.set(id, { id, metadata });
  });
  return { docs: [...byId.values()], duplicates };
}

/** Why an existing collection cannot take this text import (SCHEMA_MISMATCH), or nothing. */
function checkTextSchema(dir: string, schema: NormalizedSchema, field: string): void {
  if (schema.embedder === undefined) {
    throw new QuiverError('SCHEMA_MISMATCH', `${dir} holds a collection of vectors without an embedder: import text documents into a new directory (quiver import --text creates it)`, { directory: dir, expected: USE_LITE_MODEL_ID, received: null });
  }
  if (schema.embedder !== USE_LITE_MODEL_ID) {
    throw new QuiverError('SCHEMA_MISMATCH', `the collection at ${dir} embeds text with "${schema.embedder}"; quiver import --text embeds with ${USE_LITE_MODEL_ID}, and queries and documents must share one model`, { directory: dir, expected: schema.embedder, received: USE_LITE_MODEL_ID });
  }
  if (schema.fields[field] !== 'text') {
    const textFields = Object.entries(schema.fields).filter(([, t]) => t === 'text').map(([n]) => n);
    throw new QuiverError('SCHEMA_MISMATCH', `"${field}" is not a text field of the collection at ${dir} (its text fields: ${textFields.join(', ') || 'none'}); pass --text ${textFields[0] ?? 'FIELD'}`, { directory: dir, field, expected: textFields, received: field });
  }
}

/**
 * `quiver import DIR FILE --text FIELD`: indexes a JSONL file of documents, offline. Creates the
 * collection when absent (text field FIELD, BM25 and embedded by USE-Lite 512-d; other keys are
 * metadata), then upserts in durable batches while USE-Lite embeds each batch on worker threads
 * (progress in documents/s). Documents already stored with the same content are skipped, so a
 * re-run costs nothing and an interrupted import goes on where it stopped.
 */
export async function runTextImport(dir: string, file: string, o: TextImportOptions, out: (line: string) => void = console.log, err: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  let content: string;
  try {
    content = new TextDecoder('utf-8', { fatal: true }).decode(await readBytes(file));
  } catch (e) {
    if (e instanceof TypeError) throw new QuiverError('MALFORMED_INPUT', `${file} is not UTF-8 text`, { file });
    throw e;
  }
  const { docs, duplicates } = parseJsonlDocuments(content, file, o.field, o.idKey);
  if (docs.length === 0) throw new QuiverError('MALFORMED_INPUT', `${file} holds no documents (one JSON object per line)`, { file });
  const readMs = performance.now() - t0;

  let existing: NormalizedSchema | null = null;
  try {
    const probe = await Collection.open(dir, { readOnly: true });
    existing = probe.schema;
    await probe.close();
  } catch (e) {
    if (!isQuiverError(e, 'NOT_FOUND')) throw e;
  }
  if (existing) checkTextSchema(dir, existing, o.field);

  const embedder = new ReportingEmbedder();
  let col: Collection;
  try {
    col = await Collection.open(dir, {
      embedder, kernels: o.kernels,
      ...(existing ? {} : { schema: { dimension: USE_LITE_DIMENSION, metric: 'cosine' as const, index: o.index, fields: { [o.field]: { type: 'text' as const, embed: true } }, embedder: USE_LITE_MODEL_ID } }),
    });
  } catch (e) {
    await embedder.close();
    throw e;
  }
  try {
    const toWrite = documentsToWrite(col, docs);
    const unchanged = docs.length - toWrite.length;
    if (!o.json) {
      out(`${existing ? 'importing into' : 'created'} ${col.info().directory}: text field "${o.field}" (BM25) embedded by ${USE_LITE_MODEL_ID} (${USE_LITE_DIMENSION}-d, offline)`);
      out(`read ${docs.length.toLocaleString('en-US')} documents from ${file}${duplicates ? ` (${duplicates} repeated ids: the last line of each wins)` : ''}; ${unchanged ? `${unchanged.toLocaleString('en-US')} already stored unchanged, ` : ''}${toWrite.length.toLocaleString('en-US')} to embed`);
    }
    const written = await writeDocuments(col, embedder, toWrite, { batch: o.batch, label: 'embedding', unit: 'docs' });
    const t2 = performance.now();
    if (o.flush && written.written > 0) await col.flush();
    await col.idle();
    const flushMs = performance.now() - t2;
    const info = col.info();
    const report = {
      directory: info.directory, file, documents: docs.length, duplicates, unchanged, written: written.written, count: info.count,
      interrupted: written.interrupted, readSeconds: +(readMs / 1000).toFixed(3), embedSeconds: +written.seconds.toFixed(3),
      flushSeconds: +(flushMs / 1000).toFixed(3), docsPerSecond: +written.docsPerSecond.toFixed(1),
    };
    if (written.interrupted) {
      err(`interrupted: ${written.written.toLocaleString('en-US')} of ${toWrite.length.toLocaleString('en-US')} documents stored durably in ${info.directory}; run the same command again to go on (stored documents are skipped)`);
      process.exitCode = 130;
    }
    if (o.json) out(JSON.stringify(report));
    else {
      if (written.written > 0) out(rateLine(written, 'docs'));
      else if (!written.interrupted) out('nothing to embed: every document is already stored with the same content');
      out(`${info.directory}: ${info.count.toLocaleString('en-US')} records; search it with: quiver search ${dir} --text "your query"`);
    }
    return report;
  } finally {
    await col.close();
    await embedder.close();
  }
}
