import { F16_TABLE } from '../kernels/js.js';
import { LITTLE_ENDIAN, asBytes, copyBytes, ioError } from './common.js';

/**
 * Reader of NumPy `.npy` files, format versions 1.0, 2.0 and 3.0 (browser-safe).
 *
 * Byte layout: magic "\x93NUMPY", major and minor version bytes, header length (uint16 LE in v1,
 * uint32 LE in v2/v3), then the header: a Python dict literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }` padded with spaces and ending
 * in '\n' (ASCII in v1/v2, UTF-8 in v3), then the raw array data, exactly product(shape) * itemsize bytes.
 *
 * Supported: dtypes '<f4', '<f2', '<f8', '<i4', '|u1', '|i1'; C order; 1-D or 2-D shapes.
 */

/** Element types read: f4 float32, f2 float16 (kept as raw bits), f8 float64, i4 int32, u1 uint8, i1 int8. */
export type NpyDtype = 'f4' | 'f2' | 'f8' | 'i4' | 'u1' | 'i1';

export type NpyData = Float32Array | Uint16Array | Float64Array | Int32Array | Uint8Array | Int8Array;

export interface NpyResult {
  /** The array shape as stored, [n] or [rows, cols]. */
  shape: number[];
  dtype: NpyDtype;
  /**
   * The elements in C (row-major) order, length product(shape); a fresh array that never aliases the
   * input. For 'f2' these are the IEEE binary16 bit patterns (decode with npyToFloat32).
   */
  data: NpyData;
  /** Rows when read as vectors: shape[0] for 2-D; 1 for a 1-D array (one vector of length shape[0]). */
  count: number;
  /** Vector length: shape[1] for 2-D, shape[0] for 1-D. */
  dimension: number;
  /** Format version of the file, e.g. '1.0'. */
  version: string;
  source: string;
}

const DTYPES: Record<string, { dtype: NpyDtype; size: number }> = {
  '<f4': { dtype: 'f4', size: 4 },
  '<f2': { dtype: 'f2', size: 2 },
  '<f8': { dtype: 'f8', size: 8 },
  '<i4': { dtype: 'i4', size: 4 },
  '|u1': { dtype: 'u1', size: 1 }, '<u1': { dtype: 'u1', size: 1 }, 'u1': { dtype: 'u1', size: 1 },
  '|i1': { dtype: 'i1', size: 1 }, '<i1': { dtype: 'i1', size: 1 }, 'i1': { dtype: 'i1', size: 1 },
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93 N U M P Y

/**
 * Parses `.npy` bytes. Errors: MALFORMED_INPUT (bad magic, truncated or unparsable header, data
 * length != product(shape) * itemsize) with details {source, offset, expected, received};
 * UNSUPPORTED_FORMAT (unknown version, dtype, fortran_order True, or ndim other than 1 and 2);
 * INVALID_VECTOR for NaN/Infinity in float data, with {row, column, index}.
 */
export function parseNpy(input: Uint8Array, source = '<bytes>'): NpyResult {
  const bytes = asBytes(input, source);
  const n = bytes.length;
  if (n < 10) {
    throw ioError('MALFORMED_INPUT', source, n === 0 ? 'empty .npy file' : `truncated .npy file: ${n} bytes, shorter than the 10-byte preamble`, {
      offset: n, expected: 'at least 10 bytes', received: n,
    });
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) {
      throw ioError('MALFORMED_INPUT', source, 'not a .npy file: the magic string \\x93NUMPY is missing', {
        offset: i, expected: '\\x93NUMPY', received: hex(bytes.subarray(0, 6)),
      });
    }
  }
  const major = bytes[6], minor = bytes[7];
  const version = `${major}.${minor}`;
  if (major < 1 || major > 3) {
    throw ioError('UNSUPPORTED_FORMAT', source, `unsupported .npy format version ${version} (read: 1.0, 2.0, 3.0)`, {
      offset: 6, expected: ['1.0', '2.0', '3.0'], received: version,
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number, headerLen: number;
  if (major === 1) {
    headerStart = 10; headerLen = view.getUint16(8, true);
  } else {
    if (n < 12) throw ioError('MALFORMED_INPUT', source, `truncated .npy v${version} preamble: ${n} bytes, need 12`, { offset: n, expected: 12, received: n });
    headerStart = 12; headerLen = view.getUint32(8, true);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > n) {
    throw ioError('MALFORMED_INPUT', source, `truncated .npy header: declared ${headerLen} bytes from offset ${headerStart}, file has ${n} bytes`, {
      offset: n, expected: dataStart, received: n,
    });
  }
  const headerBytes = bytes.subarray(headerStart, dataStart);
  let header: string;
  if (major === 3) {
    try {
      header = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
    } catch (e) {
      throw ioError('MALFORMED_INPUT', source, '.npy v3 header is not valid UTF-8', { offset: headerStart }, e);
    }
  } else {
    header = '';
    for (let i = 0; i < headerBytes.length; i++) header += String.fromCharCode(headerBytes[i]);
  }
  const dict = parseHeaderDict(header, source, headerStart);

  for (const key of ['descr', 'fortran_order', 'shape']) {
    if (!(key in dict)) {
      throw ioError('MALFORMED_INPUT', source, `.npy header lacks the '${key}' key`, { offset: headerStart, expected: ['descr', 'fortran_order', 'shape'], received: Object.keys(dict), header: header.trim() });
    }
  }
  const descr = dict.descr;
  if (typeof descr !== 'string') {
    throw ioError('UNSUPPORTED_FORMAT', source, `unsupported .npy descr ${JSON.stringify(descr)} (structured dtypes are not read)`, {
      offset: headerStart, expected: Object.keys(DTYPES), received: descr,
    });
  }
  // own keys only: a descr such as 'constructor' must not find Object.prototype members
  const type = Object.prototype.hasOwnProperty.call(DTYPES, descr) ? DTYPES[descr] : undefined;
  if (type === undefined) {
    const hint = descr.startsWith('>') ? ' (big-endian; convert with arr.astype(arr.dtype.newbyteorder("<")))' : '';
    throw ioError('UNSUPPORTED_FORMAT', source, `unsupported .npy dtype '${descr}'${hint}; read: ${Object.keys(DTYPES).join(', ')}`, {
      offset: headerStart, expected: Object.keys(DTYPES), received: descr,
    });
  }
  if (typeof dict.fortran_order !== 'boolean') {
    throw ioError('MALFORMED_INPUT', source, `.npy 'fortran_order' must be True or False`, { offset: headerStart, expected: 'bool', received: dict.fortran_order });
  }
  if (dict.fortran_order) {
    throw ioError('UNSUPPORTED_FORMAT', source, '.npy array is in Fortran (column-major) order; save it with np.ascontiguousarray first', {
      offset: headerStart, expected: 'fortran_order: False', received: 'fortran_order: True',
    });
  }
  const shapeValue = dict.shape;
  if (!Array.isArray(shapeValue) || !shapeValue.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
    throw ioError('MALFORMED_INPUT', source, `.npy 'shape' must be a tuple of non-negative integers`, { offset: headerStart, expected: 'tuple of ints', received: shapeValue });
  }
  const shape = shapeValue as number[];
  if (shape.length < 1 || shape.length > 2) {
    throw ioError('UNSUPPORTED_FORMAT', source, `.npy arrays of ${shape.length} dimensions are not read (need 1-D or 2-D)`, {
      offset: headerStart, expected: '1 or 2 dimensions', received: shape,
    });
  }
  const elements = shape.reduce((a, b) => a * b, 1);
  const expected = elements * type.size;
  const available = n - dataStart;
  if (available !== expected) {
    const rowBytes = (shape.length === 2 ? shape[1] : 1) * type.size;
    const rows = rowBytes > 0 ? Math.floor(available / rowBytes) : 0;
    throw ioError('MALFORMED_INPUT', source, available < expected
      ? `truncated .npy data: shape (${shape.join(', ')}) of ${descr} needs ${expected} bytes from offset ${dataStart}, only ${available} present (${rows} complete rows)`
      : `.npy data has ${available - expected} trailing bytes after the ${expected} bytes of shape (${shape.join(', ')}) of ${descr}`, {
      offset: available < expected ? n : dataStart + expected, ...(available < expected ? { row: rows } : {}), expected, received: available,
    });
  }
  const raw = copyBytes(bytes, dataStart, n);
  if (!LITTLE_ENDIAN && type.size > 1) swapBytes(raw, type.size);
  const data = typedView(raw, type.dtype, elements);
  const count = shape.length === 2 ? shape[0] : 1;
  const dimension = shape.length === 2 ? shape[1] : shape[0];
  checkFinite(data, type.dtype, dimension, dataStart, type.size, source);
  return { shape: shape.slice(), dtype: type.dtype, data, count, dimension, version, source };
}

/**
 * The elements of a parsed .npy as float32 (length product(shape)). Returns `result.data` itself when
 * it is already 'f4'; decodes 'f2' bits through F16_TABLE; converts integers and float64 (a float64
 * beyond the float32 range raises INVALID_VECTOR).
 */
export function npyToFloat32(result: Pick<NpyResult, 'dtype' | 'data'> & Partial<Pick<NpyResult, 'source' | 'dimension'>>): Float32Array {
  const { dtype, data } = result;
  if (dtype === 'f4') return data as Float32Array;
  const out = new Float32Array(data.length);
  if (dtype === 'f2') {
    const h = data as Uint16Array;
    for (let i = 0; i < h.length; i++) out[i] = F16_TABLE[h[i]];
    return out;
  }
  out.set(data as Exclude<NpyData, Uint16Array>);
  if (dtype === 'f8') {
    for (let i = 0; i < out.length; i++) {
      const x = out[i];
      if (x - x !== 0) {
        const dim = result.dimension ?? data.length, row = Math.floor(i / dim);
        throw ioError('INVALID_VECTOR', result.source ?? '<npy>', `float64 value ${(data as Float64Array)[i]} at index ${i} overflows float32`, {
          index: i, row, column: i - row * dim, received: (data as Float64Array)[i], expected: 'finite float32',
        });
      }
    }
  }
  return out;
}

function typedView(raw: Uint8Array, dtype: NpyDtype, elements: number): NpyData {
  const b = raw.buffer;
  switch (dtype) {
    case 'f4': return new Float32Array(b, 0, elements);
    case 'f2': return new Uint16Array(b, 0, elements);
    case 'f8': return new Float64Array(b, 0, elements);
    case 'i4': return new Int32Array(b, 0, elements);
    case 'u1': return raw;
    case 'i1': return new Int8Array(b, 0, elements);
  }
}

function swapBytes(raw: Uint8Array, size: number): void {
  for (let i = 0; i < raw.length; i += size) raw.subarray(i, i + size).reverse();
}

function checkFinite(data: NpyData, dtype: NpyDtype, dim: number, dataStart: number, size: number, source: string): void {
  let bad = -1;
  if (dtype === 'f2') {
    const h = data as Uint16Array;
    for (let i = 0; i < h.length; i++) if ((h[i] & 0x7c00) === 0x7c00) { bad = i; break; }
  } else if (dtype === 'f4' || dtype === 'f8') {
    const f = data as Float32Array | Float64Array;
    for (let i = 0; i < f.length; i++) { const x = f[i]; if (x - x !== 0) { bad = i; break; } }
  }
  if (bad < 0) return;
  const value = dtype === 'f2' ? F16_TABLE[(data as Uint16Array)[bad]] : (data as Float32Array)[bad];
  const row = dim > 0 ? Math.floor(bad / dim) : 0, column = bad - row * dim;
  throw ioError('INVALID_VECTOR', source, `non-finite value ${value} at row ${row}, column ${column}`, {
    row, column, index: bad, offset: dataStart + bad * size, received: String(value), expected: 'finite',
  });
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

// ---- header dict: the subset of Python literal syntax that np.save writes ----

type PyValue = string | number | boolean | null | PyValue[];

/** Parses `{'key': value, ...}` followed only by whitespace; values are str, int, True/False/None, tuples, lists. */
function parseHeaderDict(text: string, source: string, base: number): Record<string, PyValue> {
  let p = 0;
  const fail = (what: string): never => {
    throw ioError('MALFORMED_INPUT', source, `unparsable .npy header at character ${p}: ${what}`, {
      offset: base + p, header: text.length > 200 ? `${text.slice(0, 200)}...` : text, received: text.slice(p, p + 20),
    });
  };
  const ws = () => { while (p < text.length && (text[p] === ' ' || text[p] === '\t' || text[p] === '\n' || text[p] === '\r')) p++; };
  const str = (): string => {
    const q = text[p];
    const end = text.indexOf(q, p + 1);
    if (end < 0) fail('unterminated string');
    const s = text.slice(p + 1, end);
    if (s.includes('\\')) fail('escapes in strings are not supported');
    p = end + 1;
    return s;
  };
  const value = (depth: number): PyValue => {
    if (depth > 8) fail('nesting too deep');
    ws();
    const c = text[p];
    if (c === "'" || c === '"') return str();
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      p++;
      const items: PyValue[] = [];
      for (;;) {
        ws();
        if (text[p] === close) { p++; break; }
        items.push(value(depth + 1));
        ws();
        if (text[p] === ',') { p++; continue; }
        if (text[p] === close) { p++; break; }
        fail(`expected ',' or '${close}'`);
      }
      return items;
    }
    if (c !== undefined && /[0-9-]/.test(c)) {
      const m = /^-?[0-9]+L?/.exec(text.slice(p, p + 40));
      if (!m) fail('bad integer');
      p += m![0].length;
      const v = Number(m![0].replace('L', ''));
      if (!Number.isSafeInteger(v)) fail('integer out of range');
      return v;
    }
    for (const [word, v] of [['True', true], ['False', false], ['None', null]] as const) {
      if (text.startsWith(word, p)) { p += word.length; return v; }
    }
    return fail('unexpected token');
  };
  ws();
  if (text[p] !== '{') fail("expected '{'");
  p++;
  const out: Record<string, PyValue> = Object.create(null) as Record<string, PyValue>;
  for (;;) {
    ws();
    if (text[p] === '}') { p++; break; }
    if (text[p] !== "'" && text[p] !== '"') fail('expected a quoted key');
    const key = str();
    ws();
    if (text[p] !== ':') fail("expected ':'");
    p++;
    if (key in out) fail(`duplicate key '${key}'`);
    out[key] = value(0);
    ws();
    if (text[p] === ',') { p++; continue; }
    if (text[p] === '}') { p++; break; }
    fail("expected ',' or '}'");
  }
  ws();
  if (p !== text.length) fail('unexpected text after the dict');
  return out;
}
