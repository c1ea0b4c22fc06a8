import { QuiverError } from '../errors.js';
import { crc32c } from '../util/crc32c.js';
import type { ByteReader } from '../util/bytes.js';
import type { AppendFile, Directory, RandomAccessFile } from './directory.js';
import { transientBytes } from '../util/transient.js';

/**
 * Immutable segment files, `seg-<number>.qseg`: everything a sealed segment holds, written once
 * and never modified (deletes live in the manifest as tombstone bitsets).
 *
 * Byte layout (little-endian):
 *   header, 64 bytes:
 *     0  u32  magic 0x47455351 ("QSEG")
 *     4  u16  format version (2; version 1 files are still read)
 *     6  u16  flags (0)
 *     8  u32  segment number
 *     12 u32  dimension
 *     16 u8   metric: 0 cosine, 1 dot, 2 l2; then 3 bytes of padding
 *     20 u32  row count
 *     24 u64  smallest WAL sequence number of the rows (0 for merged segments: see manifest)
 *     32 u64  largest WAL sequence number
 *     40 ..   reserved (zero)
 *     60 u32  CRC-32C of bytes 0..60
 *   sections, back to back (no padding: every byte of the file is under some checksum)
 *   section table, one entry per section, keyed by (kind, field):
 *     version 2: 32 bytes: u32 kind, u32 field id (0 = none), u32 CRC-32C of the section,
 *                u32 reserved (0), u64 offset, u64 length
 *     version 1: 24 bytes: u32 kind, u32 CRC-32C, u64 offset, u64 length (field id 0)
 *   footer, 20 bytes: u64 table offset, u32 section count, u32 magic 0x444E4551 ("QEND"),
 *                     u32 CRC-32C of the table and the footer's first 16 bytes
 *
 * Section kinds (the owner documents the layout):
 *   1 VECTORS   f32[count * dimension], row-major: the full-precision vectors, read by position
 *   2 NORMS     f32[count]: each vector's L2 norm
 *   3 IDS       u32[count + 1] byte offsets into the UTF-8 blob that follows
 *   4 METADATA  u32[count + 1] byte offsets into the UTF-8 JSON blob that follows ('' = none):
 *               undeclared metadata only
 *   5 CODES     compressed vectors and their quantizer (src/index/codes-section.ts; absent for Flat)
 *   6 FIELDS    JSON [{id, name, type}]: the declared fields this segment has columns for
 *   7 COLUMN    one per declared field (field id = the field's id): src/fields/columns.ts
 *   8 GRAPH, 9 IVF, 10 CALIBRATION: the approximate index (src/index/*-section.ts)
 *   11 POSTINGS one per text field: BM25 postings with block impacts (src/text/postings.ts)
 *   12 SPARSE   one per sparse field: the sparse index with its forward rows (src/sparse/section.ts)
 */
export const SEGMENT_MAGIC = 0x47455351;
export const SEGMENT_END_MAGIC = 0x444e4551;
export const SEGMENT_VERSION = 2;
/** Oldest segment format version still read. */
export const SEGMENT_MIN_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 64;
const FOOTER_BYTES = 20;
const TABLE_ENTRY_BYTES = 32;
const TABLE_ENTRY_BYTES_V1 = 24;

export const SECTION = { VECTORS: 1, NORMS: 2, IDS: 3, METADATA: 4, CODES: 5, FIELDS: 6, COLUMN: 7, GRAPH: 8, IVF: 9, CALIBRATION: 10, POSTINGS: 11, SPARSE: 12 } as const;
export type SectionKind = (typeof SECTION)[keyof typeof SECTION];

export type MetricCode = 0 | 1 | 2;
export const METRIC_CODES = { cosine: 0, dot: 1, l2: 2 } as const;

export interface SegmentHeader {
  number: number;
  dimension: number;
  metric: 'cosine' | 'dot' | 'l2';
  count: number;
  minSeq: number;
  maxSeq: number;
}

export function segmentFileName(number: number): string {
  return `seg-${String(number).padStart(8, '0')}.qseg`;
}

export function segmentNumber(name: string): number {
  const m = /^seg-(\d{8,})\.qseg$/.exec(name);
  return m ? Number(m[1]) : -1;
}

interface SectionEntry { kind: number; field: number; crc: number; offset: number; length: number }

/** Map key of a (kind, field) pair. */
function key(kind: number, field: number): number {
  return kind * 4294967296 + field;
}

/**
 * Streams a segment file: header, then sections one at a time (each given as chunks), then the
 * table and footer; `finish` syncs the file. The file is referenced by nothing until the
 * manifest lists it, so a crash mid-write leaves only an orphan that open() removes.
 */
export class SegmentWriter {
  private readonly sections: SectionEntry[] = [];
  private offset = 0;
  private current: SectionEntry | null = null;

  private constructor(private readonly file: AppendFile) {}

  static async create(dir: Directory, name: string, h: SegmentHeader): Promise<SegmentWriter> {
    await dir.remove(name); // an orphan from an interrupted attempt
    const file = await dir.openAppend(name, { create: true });
    const w = new SegmentWriter(file);
    await w.write(encodeHeader(h));
    return w;
  }

  private async write(bytes: Uint8Array): Promise<void> {
    await this.file.append(bytes);
    this.offset += bytes.length;
    if (this.current) {
      this.current.crc = crc32c(bytes, this.current.crc);
      this.current.length += bytes.length;
    }
  }

  /** Starts section (kind, field); each pair at most once per file. */
  async beginSection(kind: SectionKind, field = 0): Promise<void> {
    if (this.current) throw new Error('segment writer: section still open');
    if (this.sections.some((s) => s.kind === kind && s.field === field)) throw new Error(`segment writer: section ${sectionName(kind)}/${field} written twice`);
    this.current = { kind, field, crc: 0, offset: this.offset, length: 0 };
  }

  async writeChunk(bytes: Uint8Array): Promise<void> {
    if (!this.current) throw new Error('segment writer: no open section');
    if (bytes.length) await this.write(bytes);
  }

  endSection(): void {
    if (!this.current) throw new Error('segment writer: no open section');
    this.sections.push(this.current);
    this.current = null;
  }

  async section(kind: SectionKind, chunks: Iterable<Uint8Array>, field = 0): Promise<void> {
    await this.beginSection(kind, field);
    for (const c of chunks) await this.writeChunk(c);
    this.endSection();
  }

  /** Writes the table and footer and syncs. Returns the file size. */
  async finish(): Promise<number> {
    if (this.current) throw new Error('segment writer: section still open');
    const tableOffset = this.offset;
    const tail = new Uint8Array(this.sections.length * TABLE_ENTRY_BYTES + FOOTER_BYTES);
    const v = new DataView(tail.buffer);
    this.sections.forEach((s, i) => {
      const o = i * TABLE_ENTRY_BYTES;
      v.setUint32(o, s.kind, true);
      v.setUint32(o + 4, s.field, true);
      v.setUint32(o + 8, s.crc, true);
      v.setUint32(o + 12, 0, true);
      setU64(v, o + 16, s.offset);
      setU64(v, o + 24, s.length);
    });
    const f = this.sections.length * TABLE_ENTRY_BYTES;
    setU64(v, f, tableOffset);
    v.setUint32(f + 8, this.sections.length, true);
    v.setUint32(f + 12, SEGMENT_END_MAGIC, true);
    v.setUint32(f + 16, crc32c(tail, 0, 0, f + 16), true);
    await this.write(tail);
    await this.file.sync();
    await this.file.close();
    return this.offset;
  }

  async abort(): Promise<void> { await this.file.close(); }
}

function encodeHeader(h: SegmentHeader): Uint8Array {
  const b = new Uint8Array(SEGMENT_HEADER_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, SEGMENT_MAGIC, true);
  v.setUint16(4, SEGMENT_VERSION, true);
  v.setUint32(8, h.number, true);
  v.setUint32(12, h.dimension, true);
  v.setUint8(16, METRIC_CODES[h.metric]);
  v.setUint32(20, h.count, true);
  setU64(v, 24, h.minSeq);
  setU64(v, 32, h.maxSeq);
  v.setUint32(60, crc32c(b, 0, 0, 60), true);
  return b;
}

function setU64(v: DataView, o: number, x: number): void {
  v.setUint32(o, x % 4294967296, true);
  v.setUint32(o + 4, Math.floor(x / 4294967296), true);
}

function getU64(v: DataView, o: number): number {
  return v.getUint32(o + 4, true) * 4294967296 + v.getUint32(o, true);
}

/**
 * An open segment file: header and section table checked on open (CORRUPT_FILE naming the file
 * for a truncated file, bad magic, or any checksum mismatch); sections read whole (checked) or
 * by position (vectors, for reranking).
 */
export class SegmentFile {
  private constructor(
    readonly name: string,
    readonly file: RandomAccessFile,
    readonly header: SegmentHeader,
    private readonly sections: Map<number, SectionEntry>,
    /** Format version of the file (1 or 2). */
    readonly version: number,
    private readonly where: string,
  ) {}

  static async open(dir: Directory, name: string): Promise<SegmentFile> {
    const file = await dir.openRead(name);
    const where = `${dir.description}/${name}`;
    try {
      return SegmentFile.parse(file, name, where);
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  private static parse(file: RandomAccessFile, name: string, where: string): SegmentFile {
    const fail = (offset: number, msg: string): never => {
      throw new QuiverError('CORRUPT_FILE', `${where}: ${msg}`, { file: where, offset });
    };
    if (file.size < SEGMENT_HEADER_BYTES + FOOTER_BYTES) fail(file.size, `truncated segment file (${file.size} bytes)`);
    const hb = new Uint8Array(SEGMENT_HEADER_BYTES);
    file.readInto(0, hb);
    const hv = new DataView(hb.buffer);
    if (hv.getUint32(0, true) !== SEGMENT_MAGIC) fail(0, 'bad magic: not a QuiverDB segment file');
    if (hv.getUint32(60, true) !== crc32c(hb, 0, 0, 60)) fail(60, 'header checksum mismatch');
    const version = hv.getUint16(4, true);
    if (version < SEGMENT_MIN_VERSION || version > SEGMENT_VERSION) {
      throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: segment format version ${version} is not supported (read: ${SEGMENT_MIN_VERSION}..${SEGMENT_VERSION})`, { file: where, expected: SEGMENT_VERSION, received: version });
    }
    const entryBytes = version === 1 ? TABLE_ENTRY_BYTES_V1 : TABLE_ENTRY_BYTES;
    const metricCode = hv.getUint8(16);
    if (metricCode > 2) fail(16, `unknown metric code ${metricCode}`);
    const header: SegmentHeader = {
      number: hv.getUint32(8, true),
      dimension: hv.getUint32(12, true),
      metric: (['cosine', 'dot', 'l2'] as const)[metricCode],
      count: hv.getUint32(20, true),
      minSeq: getU64(hv, 24),
      maxSeq: getU64(hv, 32),
    };
    const fb = new Uint8Array(FOOTER_BYTES);
    file.readInto(file.size - FOOTER_BYTES, fb);
    const fv = new DataView(fb.buffer);
    if (fv.getUint32(12, true) !== SEGMENT_END_MAGIC) fail(file.size - 8, 'bad end magic: the file is truncated or was not finished');
    const tableOffset = getU64(fv, 0);
    const nSections = fv.getUint32(8, true);
    const tableBytes = nSections * entryBytes;
    if (nSections > 65536 || tableOffset + tableBytes + FOOTER_BYTES !== file.size) fail(file.size - FOOTER_BYTES, `footer points to a section table at ${tableOffset} (${nSections} sections) that does not end at the footer`);
    const tail = new Uint8Array(tableBytes + FOOTER_BYTES);
    file.readInto(tableOffset, tail);
    const tv = new DataView(tail.buffer);
    if (tv.getUint32(tableBytes + 16, true) !== crc32c(tail, 0, 0, tableBytes + 16)) fail(tableOffset, 'section table checksum mismatch');
    const sections = new Map<number, SectionEntry>();
    for (let i = 0; i < nSections; i++) {
      const o = i * entryBytes;
      const s: SectionEntry = version === 1
        ? { kind: tv.getUint32(o, true), field: 0, crc: tv.getUint32(o + 4, true), offset: getU64(tv, o + 8), length: getU64(tv, o + 16) }
        : { kind: tv.getUint32(o, true), field: tv.getUint32(o + 4, true), crc: tv.getUint32(o + 8, true), offset: getU64(tv, o + 16), length: getU64(tv, o + 24) };
      if (version !== 1 && tv.getUint32(o + 12, true) !== 0) fail(tableOffset + o + 12, 'reserved field of a section entry is not zero');
      if (s.offset < SEGMENT_HEADER_BYTES || s.offset + s.length > tableOffset) fail(tableOffset + o, `section ${s.kind} [${s.offset}, +${s.length}) lies outside the data area`);
      if (sections.has(key(s.kind, s.field))) fail(tableOffset + o, `section ${sectionName(s.kind)}/${s.field} is listed twice`);
      sections.set(key(s.kind, s.field), s);
    }
    // sections tile the data area exactly: no byte of the file escapes a checksum
    let expect = SEGMENT_HEADER_BYTES;
    for (const s of [...sections.values()].sort((a, b) => a.offset - b.offset)) {
      if (s.offset !== expect) fail(s.offset, `section ${sectionName(s.kind)} starts at ${s.offset}, expected ${expect}`);
      expect = s.offset + s.length;
    }
    if (expect !== tableOffset) fail(expect, `sections end at ${expect} but the table starts at ${tableOffset}`);
    const seg = new SegmentFile(name, file, header, sections, version, where);
    const vec = sections.get(key(SECTION.VECTORS, 0));
    if (vec && vec.length !== header.count * header.dimension * 4) fail(vec.offset, `vectors section holds ${vec.length} bytes, expected ${header.count} x ${header.dimension} x 4`);
    return seg;
  }

  get size(): number { return this.file.size; }

  has(kind: SectionKind, field = 0): boolean { return this.sections.has(key(kind, field)); }

  /** Offset and length of a section (CORRUPT_FILE if missing). */
  section(kind: SectionKind, field = 0): { offset: number; length: number; crc: number } {
    const s = this.sections.get(key(kind, field));
    if (!s) throw new QuiverError('CORRUPT_FILE', `${this.where}: missing section ${sectionName(kind)}${field ? `/${field}` : ''}`, { file: this.where, section: sectionName(kind), field });
    return s;
  }

  /** A whole section, checksum verified. */
  read(kind: SectionKind, field = 0): Uint8Array {
    const s = this.section(kind, field);
    const out = new Uint8Array(s.length);
    this.file.readInto(s.offset, out);
    this.checkCrc(kind, crc32c(out), field);
    return out;
  }

  /**
   * Reads a section in pieces of at most `chunkBytes`, handing each to `sink(bytes, offsetInSection)`,
   * and verifies the checksum at the end (so a sink must not commit anything irreversible before).
   */
  readChunked(kind: SectionKind, chunkBytes: number, sink: (bytes: Uint8Array, at: number) => void, field = 0): void {
    const s = this.section(kind, field);
    let crc = 0;
    const buf = new Uint8Array(Math.min(chunkBytes, s.length));
    for (let at = 0; at < s.length; at += buf.length) {
      const part = buf.subarray(0, Math.min(buf.length, s.length - at));
      this.file.readInto(s.offset + at, part);
      crc = crc32c(part, crc);
      sink(part, at);
    }
    this.checkCrc(kind, crc, field);
  }

  /** Verifies every section's checksum (`quiver verify`). */
  verifyAll(): { sections: number; bytes: number } {
    let bytes = 0;
    for (const s of this.sections.values()) {
      this.readChunked(s.kind as SectionKind, 1 << 20, (b) => { bytes += b.length; }, s.field);
    }
    return { sections: this.sections.size, bytes };
  }

  /** Field ids that have a section of `kind`. */
  fieldsWith(kind: SectionKind): number[] {
    return [...this.sections.values()].filter((s) => s.kind === kind && s.field !== 0).map((s) => s.field).sort((a, b) => a - b);
  }

  /** CORRUPT_FILE unless `actual` is the stored checksum of section (kind, field) (for callers reading it themselves). */
  checkCrc(kind: SectionKind, actual: number, field = 0): void {
    const s = this.section(kind, field);
    if (s.crc !== actual) {
      throw new QuiverError('CORRUPT_FILE', `${this.where}: checksum mismatch in section ${sectionName(kind)}${field ? `/${field}` : ''} (bytes ${s.offset}..${s.offset + s.length})`, {
        file: this.where, section: sectionName(kind), field, offset: s.offset, expected: s.crc, received: actual,
      });
    }
  }

  async close(): Promise<void> { await this.file.close(); }
}

export function sectionName(kind: number): string {
  return Object.entries(SECTION).find(([, k]) => k === kind)?.[0] ?? `#${kind}`;
}

/** Encodes strings as u32[count + 1] offsets + UTF-8 blob (IDS and METADATA sections). */
export function encodeStringColumn(values: readonly string[]): Uint8Array[] {
  const enc = new TextEncoder();
  const offsets = new Uint32Array(values.length + 1);
  // one blob for all (at most 3 UTF-8 bytes per UTF-16 code unit), trimmed by the view returned
  let bound = 0;
  for (const v of values) bound += v.length * 3;
  const blob = transientBytes(bound);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    offsets[i] = total;
    if (values[i]) total += enc.encodeInto(values[i], blob.subarray(total)).written;
  }
  offsets[values.length] = total;
  return [new Uint8Array(offsets.buffer), blob.subarray(0, total)];
}


/**
 * Reads a string column (u32[count + 1] offsets, then the UTF-8 blob, which ends at
 * offsets[count]) at the reader's position inside a larger section, and moves past it.
 */
export function readStringColumn(r: ByteReader, count: number, where: string, what: string): StringColumn {
  const start = r.pos;
  r.need((count + 1) * 4, `${what} offsets`);
  const blobLen = r.view.getUint32(r.pos + count * 4, true);
  r.pos += (count + 1) * 4;
  r.need(blobLen, what);
  r.pos += blobLen;
  return new StringColumn(r.bytes.slice(start, r.pos), count, where, what);
}

/** A string column read back: value(i) decodes lazily. */
export class StringColumn {
  private readonly offsets: Uint32Array;
  private readonly blob: Uint8Array;
  private readonly dec = new TextDecoder('utf-8', { fatal: true });

  constructor(bytes: Uint8Array, readonly count: number, where: string, what: string) {
    const need = (count + 1) * 4;
    if (bytes.length < need) throw new QuiverError('CORRUPT_FILE', `${where}: ${what} column too short for ${count} offsets`, { file: where });
    this.offsets = new Uint32Array(count + 1);
    new Uint8Array(this.offsets.buffer).set(bytes.subarray(0, need));
    this.blob = bytes.subarray(need);
    for (let i = 0; i < count; i++) {
      if (this.offsets[i] > this.offsets[i + 1]) throw new QuiverError('CORRUPT_FILE', `${where}: ${what} offsets decrease at row ${i}`, { file: where, row: i });
    }
    if (this.offsets[count] !== this.blob.length || this.offsets[0] !== 0) {
      throw new QuiverError('CORRUPT_FILE', `${where}: ${what} offsets do not match the blob of ${this.blob.length} bytes`, { file: where });
    }
  }

  value(i: number): string {
    const a = this.offsets[i], b = this.offsets[i + 1];
    return a === b ? '' : this.dec.decode(this.blob.subarray(a, b));
  }

  /** Bytes held (offsets + blob). */
  get bytes(): number { return this.offsets.byteLength + this.blob.byteLength; }
}
