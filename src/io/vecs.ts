import { LITTLE_ENDIAN, MAX_DIMENSION, alignedBytes, asBytes, ioError } from './common.js';

/**
 * Readers of the TEXMEX `.fvecs` / `.ivecs` / `.bvecs` formats (browser-safe).
 *
 * Byte layout: records back to back, each = int32 little-endian dimension `d`, then `d` values
 * (float32 LE for fvecs, int32 LE for ivecs, uint8 for bvecs). Every record must repeat the same
 * `d`; there is no file header, so the row count is fileSize / (4 + d * valueSize).
 *
 * A file cut exactly at a record boundary is indistinguishable from a shorter valid file;
 * every other truncation, a changed dimension, or (fvecs) a NaN/Infinity raises a QuiverError.
 */

/** A parsed vecs file: `count` rows of `dimension` values, row-major in `data` (length count*dimension). */
export interface VecsResult<T extends Float32Array | Int32Array | Uint8Array> {
  count: number;
  dimension: number;
  /** Row i is data[i*dimension .. (i+1)*dimension); a fresh array that never aliases the input bytes. */
  data: T;
}

type Kind = 'fvecs' | 'ivecs' | 'bvecs';

/**
 * Parses `.fvecs` bytes into float32 rows. `bytes` may be any Uint8Array view (Buffer, unaligned
 * subarray). Errors: MALFORMED_INPUT (empty, truncated, bad or mixed dimension) with details
 * {source, offset (bytes), row, expected, received}; INVALID_VECTOR for NaN/Infinity with {row, column}.
 */
export function parseFvecs(bytes: Uint8Array, source = '<bytes>'): VecsResult<Float32Array> {
  const { bytes: b, count, dimension, stride } = scanRecords(bytes, source, 'fvecs', 4);
  const data = new Float32Array(count * dimension);
  copyRows32(b, count, dimension, stride, data, true);
  checkFinite(data, dimension, stride, source);
  return { count, dimension, data };
}

/** Parses `.ivecs` bytes (e.g. ground-truth neighbour ids) into int32 rows; errors as parseFvecs. */
export function parseIvecs(bytes: Uint8Array, source = '<bytes>'): VecsResult<Int32Array> {
  const { bytes: b, count, dimension, stride } = scanRecords(bytes, source, 'ivecs', 4);
  const data = new Int32Array(count * dimension);
  copyRows32(b, count, dimension, stride, data, false);
  return { count, dimension, data };
}

/** Parses `.bvecs` bytes into uint8 rows (values 0..255); errors as parseFvecs. */
export function parseBvecs(bytes: Uint8Array, source = '<bytes>'): VecsResult<Uint8Array> {
  const { bytes: b, count, dimension, stride } = scanRecords(bytes, source, 'bvecs', 1);
  const data = new Uint8Array(count * dimension);
  for (let r = 0; r < count; r++) {
    const at = r * stride + 4;
    data.set(b.subarray(at, at + dimension), r * dimension);
  }
  return { count, dimension, data };
}

/**
 * Validates the record framing of a vecs file: first dimension sane, every record header equal to
 * it, total size a whole number of records. Returns the row count and record stride in bytes.
 */
function scanRecords(input: Uint8Array, source: string, kind: Kind, valueSize: number): { bytes: Uint8Array; count: number; dimension: number; stride: number } {
  const bytes = asBytes(input, source);
  const n = bytes.length;
  if (n === 0) throw ioError('MALFORMED_INPUT', source, `empty ${kind} file`, { offset: 0, row: 0, expected: 'at least one record', received: '0 bytes' });
  if (n < 4) {
    throw ioError('MALFORMED_INPUT', source, `truncated ${kind} file: ${n} bytes, too short for the 4-byte dimension header of row 0`, {
      offset: n, row: 0, expected: 4, received: n,
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dimension = view.getInt32(0, true);
  if (dimension <= 0 || dimension > MAX_DIMENSION) {
    throw ioError('MALFORMED_INPUT', source, `invalid ${kind} dimension ${dimension} in row 0 (expected 1..${MAX_DIMENSION}); is this really a ${kind} file?`, {
      offset: 0, row: 0, expected: `1..${MAX_DIMENSION}`, received: dimension,
    });
  }
  const stride = 4 + dimension * valueSize;
  const count = Math.floor(n / stride);
  const rest = n - count * stride;
  for (let r = 1; r < count; r++) {
    const d = view.getInt32(r * stride, true);
    if (d !== dimension) throw mixed(source, kind, r, r * stride, dimension, d);
  }
  if (rest !== 0) {
    const offset = count * stride;
    if (rest >= 4 && count > 0) {
      const d = view.getInt32(offset, true);
      if (d !== dimension) throw mixed(source, kind, count, offset, dimension, d);
    }
    throw ioError('MALFORMED_INPUT', source,
      `truncated ${kind} file: row ${count} starts at byte offset ${offset} and needs ${stride} bytes (4 + ${dimension} x ${valueSize}), but only ${rest} remain (file ends at byte ${n})`, {
        offset: n, row: count, rowOffset: offset, expected: stride, received: rest, fileSize: n, expectedFileSize: offset + stride,
      });
  }
  return { bytes, count, dimension, stride };
}

function mixed(source: string, kind: Kind, row: number, offset: number, expected: number, received: number) {
  return ioError('MALFORMED_INPUT', source,
    `mixed dimensions in ${kind} file: row ${row} (byte offset ${offset}) has dimension ${received}, expected ${expected} like row 0`, {
      offset, row, expected, received,
    });
}

/** Copies the 4-byte values of every record (skipping the headers) into `out`. */
function copyRows32(input: Uint8Array, count: number, dim: number, stride: number, out: Float32Array | Int32Array, float: boolean): void {
  if (count === 0) return;
  if (!LITTLE_ENDIAN) {
    const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
    for (let r = 0, o = 0; r < count; r++) {
      const at = r * stride + 4;
      for (let j = 0; j < dim; j++) out[o++] = float ? view.getFloat32(at + 4 * j, true) : view.getInt32(at + 4 * j, true);
    }
    return;
  }
  const bytes = alignedBytes(input, 4); // copy only when the view starts at an unaligned offset
  const words = count * (dim + 1);
  const src = float ? new Float32Array(bytes.buffer, bytes.byteOffset, words) : new Int32Array(bytes.buffer, bytes.byteOffset, words);
  const w = dim + 1;
  if (dim >= 16) {
    for (let r = 0; r < count; r++) out.set(src.subarray(r * w + 1, r * w + w), r * dim);
  } else {
    for (let r = 0, o = 0; r < count; r++) {
      const at = r * w + 1;
      for (let j = 0; j < dim; j++) out[o++] = src[at + j];
    }
  }
}

/** INVALID_VECTOR at the first NaN or +-Infinity, naming row, column and byte offset. */
function checkFinite(data: Float32Array, dim: number, stride: number, source: string): void {
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (x - x !== 0) {
      const row = Math.floor(i / dim), column = i - row * dim;
      throw ioError('INVALID_VECTOR', source, `non-finite value ${x} at row ${row}, column ${column}`, {
        row, column, offset: row * stride + 4 + column * 4, received: String(x), expected: 'finite float32',
      });
    }
  }
}
