import { QuiverError } from '../errors.js';
import { transientBytes } from './transient.js';

/**
 * Little-endian binary writer/reader for QuiverDB's own formats (segments, manifests, serialized
 * quantizers). The reader bounds-checks every read and raises CORRUPT_FILE naming the source and
 * offset, so a truncated or garbled file never becomes a RangeError or a silent misread.
 */
const ENCODER = new TextEncoder();

export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private n = 0;

  constructor(initial = 1024) {
    this.buf = transientBytes(Math.max(16, initial));
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number { return this.n; }

  private reserve(extra: number): void {
    if (this.n + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.n + extra) cap *= 2;
    const next = transientBytes(cap);
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this { this.reserve(1); this.buf[this.n++] = v; return this; }
  u16(v: number): this { this.reserve(2); this.view.setUint16(this.n, v, true); this.n += 2; return this; }
  u32(v: number): this { this.reserve(4); this.view.setUint32(this.n, v >>> 0, true); this.n += 4; return this; }
  i32(v: number): this { this.reserve(4); this.view.setInt32(this.n, v, true); this.n += 4; return this; }
  /** An unsigned integer up to 2^53 as u64. */
  u64(v: number): this {
    this.reserve(8);
    this.view.setUint32(this.n, v % 4294967296, true);
    this.view.setUint32(this.n + 4, Math.floor(v / 4294967296), true);
    this.n += 8;
    return this;
  }
  f32(v: number): this { this.reserve(4); this.view.setFloat32(this.n, v, true); this.n += 4; return this; }
  f64(v: number): this { this.reserve(8); this.view.setFloat64(this.n, v, true); this.n += 8; return this; }
  bytes(b: Uint8Array): this { this.reserve(b.length); this.buf.set(b, this.n); this.n += b.length; return this; }
  /**
   * u16 byte length, then the UTF-8 of `s` (encoded in place, no temporary array); throws if it
   * takes more than 65,535 bytes.
   */
  utf8u16(s: string): this {
    this.reserve(2 + s.length * 3);
    const { written } = ENCODER.encodeInto(s, this.buf.subarray(this.n + 2));
    if (written > 0xffff) throw new RangeError(`string of ${written} UTF-8 bytes does not fit a u16 length`);
    this.view.setUint16(this.n, written, true);
    this.n += 2 + written;
    return this;
  }
  /** u32 byte length, then UTF-8. */
  string(s: string): this {
    this.reserve(4 + s.length * 3);
    const { written } = ENCODER.encodeInto(s, this.buf.subarray(this.n + 4));
    this.view.setUint32(this.n, written, true);
    this.n += 4 + written;
    return this;
  }
  /** u32 byte length, then the bytes. */
  blob(b: Uint8Array): this { this.u32(b.length); return this.bytes(b); }
  /** Raw little-endian contents of a typed array (no length prefix). */
  typed(a: Float32Array | Uint32Array | Int32Array | Uint16Array | Uint8Array | Int8Array | Float64Array): this {
    return this.bytes(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  /** Pads with zeros to a multiple of `align` bytes. */
  align(align: number): this { while (this.n % align !== 0) this.u8(0); return this; }
  /** Overwrites a u32 at an earlier offset (e.g. a length or checksum slot). */
  patchU32(offset: number, v: number): this { this.view.setUint32(offset, v >>> 0, true); return this; }

  /** The bytes written so far (a view; copy if you keep writing). */
  finish(): Uint8Array { return this.buf.subarray(0, this.n); }
}

export class ByteReader {
  readonly view: DataView;
  pos: number;

  constructor(readonly bytes: Uint8Array, readonly source = '<bytes>', start = 0) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
  }

  get remaining(): number { return this.bytes.length - this.pos; }

  /** CORRUPT_FILE at the current offset. */
  fail(message: string, details: Record<string, unknown> = {}): never {
    throw new QuiverError('CORRUPT_FILE', `${this.source}: ${message} (at byte ${this.pos})`, { file: this.source, offset: this.pos, ...details });
  }

  need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.bytes.length) {
      this.fail(`truncated: ${what} needs ${n} bytes, ${this.bytes.length - this.pos} remain`, { expected: n, received: this.bytes.length - this.pos });
    }
  }

  u8(what = 'u8'): number { this.need(1, what); return this.bytes[this.pos++]; }
  u16(what = 'u16'): number { this.need(2, what); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  u32(what = 'u32'): number { this.need(4, what); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  i32(what = 'i32'): number { this.need(4, what); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  u64(what = 'u64'): number {
    this.need(8, what);
    const lo = this.view.getUint32(this.pos, true), hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    if (hi >= 0x200000) this.fail(`${what} ${hi} * 2^32 exceeds 2^53`);
    return hi * 4294967296 + lo;
  }
  f32(what = 'f32'): number { this.need(4, what); const v = this.view.getFloat32(this.pos, true); this.pos += 4; return v; }
  f64(what = 'f64'): number { this.need(8, what); const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  /** n bytes as a view into the source (copy before keeping if the source is reused). */
  bytesView(n: number, what = 'bytes'): Uint8Array { this.need(n, what); const b = this.bytes.subarray(this.pos, this.pos + n); this.pos += n; return b; }
  string(what = 'string'): string {
    const n = this.u32(`${what} length`);
    const b = this.bytesView(n, what);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      return this.fail(`${what} is not valid UTF-8`);
    }
  }
  blob(what = 'blob'): Uint8Array { const n = this.u32(`${what} length`); return this.bytesView(n, what); }
  /** n little-endian float32 values, copied into a fresh (aligned) array. */
  f32Array(n: number, what = 'f32 array'): Float32Array {
    const b = this.bytesView(n * 4, what);
    const out = new Float32Array(n);
    new Uint8Array(out.buffer).set(b);
    return out;
  }
  u32Array(n: number, what = 'u32 array'): Uint32Array {
    const b = this.bytesView(n * 4, what);
    const out = new Uint32Array(n);
    new Uint8Array(out.buffer).set(b);
    return out;
  }
  /** Skips to a multiple of `align`. */
  align(align: number): void { const p = Math.ceil(this.pos / align) * align; this.need(p - this.pos, 'padding'); this.pos = p; }
}
