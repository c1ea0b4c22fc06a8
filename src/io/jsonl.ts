import { QuiverError } from '../errors.js';
import { describe, ioError } from './common.js';

/**
 * Reader of JSON Lines vector files (browser-safe): one JSON object per line,
 * `{"id": "doc1", "vector": [0.1, ...], ...metadata}`. Blank lines are skipped; a leading UTF-8 BOM
 * and CRLF line ends are accepted. Every other deviation raises a QuiverError naming the 1-based line.
 */

/** One record: the id as a string, the vector as float32, every other field as metadata. */
export interface JsonlRecord {
  id: string;
  vector: Float32Array;
  /**
   * All fields except the id and vector fields. A field named `metadata` holding a plain object is
   * flattened into this object (its keys win over top-level keys of the same name).
   */
  metadata: Record<string, unknown>;
}

export interface JsonlOptions {
  /** Name used in error messages and details (a path or '<string>'). */
  source?: string;
  /** Field(s) holding the id, tried in order; default ['id', '_id']. Numbers become strings. */
  idField?: string | readonly string[];
  /** Field holding the vector; default 'vector'. */
  vectorField?: string;
  /** Expected vector dimension; a record of another length raises DIMENSION_MISMATCH. */
  dimension?: number;
  /** Longest accepted line in UTF-16 code units; default 64 Mi (guards against a file without newlines). */
  maxLineLength?: number;
}

const NON_STANDARD = /[[,:]\s*(-?Infinity|NaN)\s*[,\]}]/;

/**
 * Incremental JSONL parser: feed text chunks split anywhere (even mid-line or mid-character
 * for strings already decoded), get back the records of the lines completed so far.
 * Not re-entrant after an error: a thrown QuiverError ends the parse.
 */
export class JsonlParser {
  readonly source: string;
  private readonly idFields: readonly string[];
  private readonly vectorField: string;
  private readonly maxLineLength: number;
  private readonly expectedDimension: number | undefined;
  private dim: number | undefined;
  private line = 0; // number of lines fully consumed
  private pending: string[] = [];
  private pendingLength = 0;
  private ended = false;

  constructor(options: JsonlOptions = {}) {
    this.source = options.source ?? '<jsonl>';
    const ids = options.idField ?? ['id', '_id'];
    this.idFields = typeof ids === 'string' ? [ids] : ids;
    this.vectorField = options.vectorField ?? 'vector';
    this.maxLineLength = options.maxLineLength ?? 64 * 1024 * 1024;
    if (options.dimension !== undefined && (!Number.isInteger(options.dimension) || options.dimension < 1)) {
      throw new QuiverError('INVALID_ARGUMENT', `dimension must be a positive integer, got ${String(options.dimension)}`, { name: 'dimension', received: options.dimension });
    }
    this.expectedDimension = options.dimension;
    this.dim = options.dimension;
  }

  /** The vector dimension seen so far (or the expected one), undefined before the first record. */
  get dimension(): number | undefined {
    return this.dim;
  }

  /** Lines consumed so far (1-based number of the last complete line). */
  get lines(): number {
    return this.line;
  }

  /** Consumes a chunk; returns the records of the lines it completed (possibly none). */
  push(chunk: string): JsonlRecord[] {
    if (this.ended) throw new QuiverError('INVALID_ARGUMENT', `${this.source}: push() after end()`, { source: this.source });
    if (typeof chunk !== 'string') {
      throw new QuiverError('INVALID_ARGUMENT', `${this.source}: JSONL chunks must be strings`, { source: this.source, received: describe(chunk) });
    }
    const out: JsonlRecord[] = [];
    let start = 0;
    let nl = chunk.indexOf('\n');
    if (nl < 0) {
      this.append(chunk);
      return out;
    }
    // first line completes what is pending
    this.append(chunk.slice(0, nl));
    const first = this.pending.length === 1 ? this.pending[0] : this.pending.join('');
    this.pending = []; this.pendingLength = 0;
    this.consume(first, out);
    start = nl + 1;
    while ((nl = chunk.indexOf('\n', start)) >= 0) {
      if (nl - start > this.maxLineLength) this.tooLong(nl - start);
      this.consume(chunk.slice(start, nl), out);
      start = nl + 1;
    }
    if (start < chunk.length) this.append(chunk.slice(start));
    return out;
  }

  /** Ends the input: parses a final line without a trailing newline. */
  end(): JsonlRecord[] {
    if (this.ended) return [];
    this.ended = true;
    const out: JsonlRecord[] = [];
    if (this.pendingLength > 0) {
      const last = this.pending.join('');
      this.pending = []; this.pendingLength = 0;
      this.consume(last, out);
    }
    return out;
  }

  private append(s: string): void {
    if (s.length === 0) return;
    this.pendingLength += s.length;
    if (this.pendingLength > this.maxLineLength) this.tooLong(this.pendingLength);
    this.pending.push(s);
  }

  private tooLong(length: number): never {
    throw ioError('MALFORMED_INPUT', this.source, `line ${this.line + 1} is longer than ${this.maxLineLength} characters (is this really JSONL?)`, {
      line: this.line + 1, expected: `<= ${this.maxLineLength} characters`, received: length,
    });
  }

  private consume(text: string, out: JsonlRecord[]): void {
    const lineNo = ++this.line;
    if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.length > 0 && text.charCodeAt(text.length - 1) === 13) text = text.slice(0, -1);
    if (text.trim().length === 0) return;
    out.push(this.record(text, lineNo));
  }

  private record(text: string, line: number): JsonlRecord {
    const source = this.source;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      const m = NON_STANDARD.exec(text);
      if (m) {
        throw ioError('INVALID_VECTOR', source, `line ${line}: non-finite value ${m[1]} (not valid JSON; e.g. Python json.dumps writes it)`, {
          line, received: m[1], expected: 'finite numbers',
        }, e);
      }
      throw ioError('MALFORMED_INPUT', source, `line ${line}: invalid JSON (${(e as Error).message})`, {
        line, received: snippet(text), expected: 'one JSON object per line',
      }, e);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw ioError('MALFORMED_INPUT', source, `line ${line}: expected a JSON object, got ${describe(obj)}`, {
        line, expected: 'object', received: describe(obj),
      });
    }
    const rec = obj as Record<string, unknown>;

    let idKey: string | undefined;
    for (const k of this.idFields) if (Object.prototype.hasOwnProperty.call(rec, k)) { idKey = k; break; }
    if (idKey === undefined) {
      throw ioError('MALFORMED_INPUT', source, `line ${line}: missing id field (${this.idFields.join(' or ')})`, {
        line, field: this.idFields[0], expected: this.idFields, received: Object.keys(rec).slice(0, 20),
      });
    }
    const rawId = rec[idKey];
    let id: string;
    if (typeof rawId === 'string' && rawId.length > 0) id = rawId;
    else if (typeof rawId === 'number' && Number.isFinite(rawId)) id = String(rawId);
    else {
      throw ioError('MALFORMED_INPUT', source, `line ${line}: field '${idKey}' must be a non-empty string or a number, got ${JSON.stringify(rawId)}`, {
        line, field: idKey, expected: 'non-empty string or number', received: rawId === '' ? 'empty string' : describe(rawId),
      });
    }

    const vf = this.vectorField;
    if (!Object.prototype.hasOwnProperty.call(rec, vf)) {
      throw ioError('MALFORMED_INPUT', source, `line ${line} (id ${id}): missing '${vf}' field`, { line, id, field: vf, expected: 'array of numbers', received: 'missing' });
    }
    const raw = rec[vf];
    if (!Array.isArray(raw)) {
      throw ioError('MALFORMED_INPUT', source, `line ${line} (id ${id}): '${vf}' must be an array of numbers, got ${describe(raw)}`, {
        line, id, field: vf, expected: 'array of numbers', received: describe(raw),
      });
    }
    if (raw.length === 0) {
      throw ioError('MALFORMED_INPUT', source, `line ${line} (id ${id}): '${vf}' is empty`, { line, id, field: vf, expected: 'non-empty array', received: 0 });
    }
    if (this.dim !== undefined && raw.length !== this.dim) {
      const code = this.expectedDimension !== undefined ? 'DIMENSION_MISMATCH' : 'MALFORMED_INPUT';
      throw ioError(code, source, `line ${line} (id ${id}): vector has ${raw.length} values, expected ${this.dim}${code === 'MALFORMED_INPUT' ? ' like the first record' : ''}`, {
        line, id, expected: this.dim, received: raw.length,
      });
    }
    const vector = new Float32Array(raw.length);
    for (let j = 0; j < raw.length; j++) {
      const v = raw[j];
      if (typeof v !== 'number') {
        throw ioError('MALFORMED_INPUT', source, `line ${line} (id ${id}): ${vf}[${j}] is ${describe(v)}, expected a number`, {
          line, id, column: j, expected: 'number', received: describe(v),
        });
      }
      vector[j] = v;
      const f = vector[j];
      if (f - f !== 0) {
        throw ioError('INVALID_VECTOR', source, `line ${line} (id ${id}): ${vf}[${j}] = ${v} is not a finite float32`, {
          line, id, column: j, expected: 'finite float32', received: v,
        });
      }
    }
    this.dim ??= raw.length;

    const metadata: Record<string, unknown> = {};
    let nested: Record<string, unknown> | undefined;
    for (const k of Object.keys(rec)) {
      if (k === idKey || k === vf) continue;
      const v = rec[k];
      if (k === 'metadata' && v !== null && typeof v === 'object' && !Array.isArray(v)) { nested = v as Record<string, unknown>; continue; }
      setField(metadata, k, v);
    }
    if (nested) for (const k of Object.keys(nested)) setField(metadata, k, nested[k]);
    return { id, vector, metadata };
  }
}

/** Own-property assignment that stays correct for a key named "__proto__". */
function setField(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

function snippet(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

/** Parses a whole JSONL string into records (in file order). Errors as JsonlParser. */
export function parseJsonl(text: string, options: JsonlOptions = {}): JsonlRecord[] {
  const p = new JsonlParser({ source: '<string>', ...options });
  const out = p.push(text);
  for (const r of p.end()) out.push(r);
  return out;
}

/**
 * Streaming variant: consumes chunks (strings, or UTF-8 bytes decoded strictly) from a sync or async
 * iterable, splitting lines across chunk boundaries, and yields arrays of at most `batchSize`
 * records (default 1024), in file order. Memory stays O(batch + longest line).
 */
export async function* parseJsonlChunks(
  chunks: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
  options: JsonlOptions & { batchSize?: number } = {},
): AsyncGenerator<JsonlRecord[], void, undefined> {
  const batchSize = options.batchSize ?? 1024;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new QuiverError('INVALID_ARGUMENT', `batchSize must be a positive integer, got ${String(batchSize)}`, { name: 'batchSize', received: batchSize });
  }
  const parser = new JsonlParser(options);
  let decoder: TextDecoder | undefined;
  let batch: JsonlRecord[] = [];
  let bytesBefore = 0; // bytes of the chunks decoded before the current one
  const decode = (b: Uint8Array, stream: boolean): string => {
    decoder ??= new TextDecoder('utf-8', { fatal: true });
    try {
      const text = decoder.decode(b, { stream });
      bytesBefore += b.length;
      return text;
    } catch (e) {
      // Locate the bad byte: the chunk's lines end before it (the parser has not seen this chunk yet).
      const at = stream ? firstInvalidUtf8(b) : 0;
      let line = parser.lines + 1;
      for (let i = 0; i < at; i++) if (b[i] === 10) line++;
      throw ioError('MALFORMED_INPUT', parser.source, stream ? `invalid UTF-8 at byte offset ${bytesBefore + at} (line ${line})` : `the input ends inside a UTF-8 character (line ${line})`, {
        line, offset: bytesBefore + at, expected: 'UTF-8 text',
      }, e);
    }
  };
  for await (const chunk of chunks) {
    const text = typeof chunk === 'string' ? chunk : chunk instanceof Uint8Array ? decode(chunk, true) : (chunk as string);
    for (const r of parser.push(text)) {
      batch.push(r);
      if (batch.length >= batchSize) { yield batch; batch = []; }
    }
  }
  if (decoder) parser.push(decode(new Uint8Array(0), false));
  for (const r of parser.end()) {
    batch.push(r);
    if (batch.length >= batchSize) { yield batch; batch = []; }
  }
  if (batch.length > 0) yield batch;
}

/**
 * Index in `b` of the first byte that cannot be valid UTF-8 (error path only). Up to 3 leading
 * continuation bytes are skipped: they may complete a character begun in the previous chunk.
 */
function firstInvalidUtf8(b: Uint8Array): number {
  let start = 0;
  while (start < 3 && start < b.length && (b[start] & 0xc0) === 0x80) start++;
  // the last byte of the shortest failing prefix (stream mode tolerates a character cut at the end)
  let lo = start, hi = b.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    let ok = true;
    try { new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(start, mid + 1), { stream: true }); } catch { ok = false; }
    if (ok) lo = mid + 1; else hi = mid;
  }
  return Math.min(lo, Math.max(0, b.length - 1));
}

/**
 * Packs records into one row-major matrix: data has length count*dimension (float32), ids and
 * metadata are parallel arrays. All vectors must share one dimension (JsonlParser guarantees it);
 * an empty list raises MALFORMED_INPUT (no dimension to report).
 */
export function jsonlToMatrix(records: readonly JsonlRecord[], source = '<jsonl>'): {
  count: number; dimension: number; data: Float32Array; ids: string[]; metadata: Record<string, unknown>[];
} {
  if (records.length === 0) throw ioError('MALFORMED_INPUT', source, 'no records (empty JSONL input)', { expected: 'at least one record', received: 0 });
  const dimension = records[0].vector.length;
  const data = new Float32Array(records.length * dimension);
  const ids: string[] = new Array(records.length);
  const metadata: Record<string, unknown>[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (r.vector.length !== dimension) {
      throw ioError('MALFORMED_INPUT', source, `record ${i} (id ${r.id}) has dimension ${r.vector.length}, expected ${dimension}`, { row: i, id: r.id, expected: dimension, received: r.vector.length });
    }
    data.set(r.vector, i * dimension);
    ids[i] = r.id;
    metadata[i] = r.metadata;
  }
  return { count: records.length, dimension, data, ids, metadata };
}
