import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { deserializeQuantizer } from '../quant/registry.js';
import type { Quantizer } from '../quant/types.js';
import { SECTION, type SegmentFile, type SegmentWriter } from '../storage/segment-file.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { crc32c } from '../util/crc32c.js';
import { FlatQuantizedIndex } from './flat-quantized.js';
import { transientBytes, transientFloats } from '../util/transient.js';

/**
 * The CODES section of a segment file: a trained quantizer and the code of every row, written
 * when a segment under a compressed spec is sealed or merged, loaded as a FlatQuantizedIndex.
 *
 * Layout (little-endian):
 *   u32 version (1), u32 L, L bytes Quantizer.serialize() (its own magic, spec and checksum),
 *   u32 fingerprint, u32 codeSize, u32 count,
 *   u8[count * codeSize] row codes (row i's code at i * codeSize; cosine collections encode unit vectors)
 */
export const CODES_VERSION = 1;

/**
 * Writes the CODES section: the header, then the codes of `chunks` (raw f32 rows in ordinal
 * order, as byte chunks of whole rows), encoded by `q` (trained). `prepare` turns a chunk's rows
 * into what the quantizer encodes (e.g. unit vectors for cosine) in place. `onEncoded` sees each
 * chunk's codes (u8[n * codeSize], rows firstRow..firstRow + n; valid during the call only), for a
 * caller that also needs them in memory (encoding can cost seconds: it is done once).
 */
export async function writeCodesSection(
  w: SegmentWriter, q: Quantizer, count: number,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, prepare: (rows: Float32Array, firstRow: number, n: number) => void,
  onEncoded?: (codes: Uint8Array, firstRow: number, n: number) => void,
): Promise<void> {
  const d = q.dimension;
  const head = new ByteWriter(256).u32(CODES_VERSION).blob(q.serialize()).u32(q.fingerprint).u32(q.codeSize).u32(count).finish();
  await w.beginSection(SECTION.CODES);
  await w.writeChunk(head.slice());
  let row = 0;
  // one scratch pair for every chunk (chunks may be views the caller reuses)
  let f = new Float32Array(0), codes = new Uint8Array(0);
  for await (const chunk of chunks) {
    const n = chunk.length / (d * 4);
    if (f.length < n * d) { f = transientFloats(n * d); codes = transientBytes(n * q.codeSize); }
    const rows = f.subarray(0, n * d);
    new Uint8Array(rows.buffer, 0, n * d * 4).set(chunk);
    prepare(rows, row, n);
    const out = codes.subarray(0, n * q.codeSize);
    q.encode(rows, n, out);
    onEncoded?.(out, row, n);
    await w.writeChunk(out);
    row += n;
  }
  w.endSection();
  if (row !== count) throw new Error(`codes section: encoded ${row} rows, expected ${count}`);
}

/**
 * Loads the CODES section into a FlatQuantizedIndex on `kernels` (INCOMPATIBLE_CODES /
 * CORRUPT_FILE on mismatch). The codes are read in ~4 MiB pieces straight into the index (no
 * copy of the whole section), the checksum verified at the end; on any failure the index is
 * released.
 */
export function readCodesSection(file: SegmentFile, where: string, count: number, kernels: Kernels): FlatQuantizedIndex {
  let index: FlatQuantizedIndex | null = null;
  let origin: { spec: string; fingerprint: number } | undefined;
  try {
    readCodes(file, where, count, kernels, (q, fingerprint) => {
      index = new FlatQuantizedIndex(q, count);
      origin = { spec: q.spec, fingerprint };
    }, (part, rows, first) => index!.addCodes(part, rows, first === 0 ? origin : undefined));
    return index!;
  } catch (e) {
    (index as FlatQuantizedIndex | null)?.release();
    throw e;
  }
}

/**
 * Reads the CODES section: its quantizer (deserialized on `kernels`) goes to `begin` with the
 * stored fingerprint, then the row codes in ~4 MiB pieces of whole rows to `piece(part, rows,
 * firstRow)` (the buffer is reused: copy what you keep). The checksum is verified at the end;
 * CORRUPT_FILE / UNSUPPORTED_FORMAT / INCOMPATIBLE_CODES on damage or mismatch (the caller frees
 * what it built from the pieces).
 */
export function readCodes(
  file: SegmentFile, where: string, count: number, kernels: Kernels,
  begin: (q: Quantizer, fingerprint: number) => void, piece: (part: Uint8Array, rows: number, firstRow: number) => void,
): Quantizer {
  const sec = file.section(SECTION.CODES);
  const head8 = new Uint8Array(Math.min(8, sec.length));
  file.file.readInto(sec.offset, head8);
  const blobLen = head8.length === 8 ? new DataView(head8.buffer).getUint32(4, true) : 0;
  const headLen = 8 + blobLen + 12;
  if (headLen > sec.length) {
    file.readChunked(SECTION.CODES, 4 << 20, () => {}); // a damaged length: the checksum says so
    throw new QuiverError('CORRUPT_FILE', `${where}: codes section of ${sec.length} bytes is too short for its header (${headLen} bytes)`, { file: where });
  }
  const head = new Uint8Array(headLen);
  file.file.readInto(sec.offset, head);
  let crc = crc32c(head);
  const r = new ByteReader(head, where);
  try {
    const version = r.u32('codes version');
    if (version !== CODES_VERSION) throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: codes section version ${version} is not supported (read: ${CODES_VERSION})`, { file: where, expected: CODES_VERSION, received: version });
    const blob = r.blob('quantizer');
    const q = deserializeQuantizer(blob.slice(), kernels, where);
    const fingerprint = r.u32('fingerprint');
    const codeSize = r.u32('code size');
    const n = r.u32('code count');
    if (n !== count || codeSize !== q.codeSize) r.fail(`codes section holds ${n} codes of ${codeSize} bytes, expected ${count} of ${q.codeSize}`);
    if (sec.length !== headLen + n * codeSize) r.fail(`codes section is ${sec.length} bytes, expected ${headLen + n * codeSize}`);
    begin(q, fingerprint);
    const perPiece = Math.max(1, Math.floor((4 << 20) / Math.max(1, codeSize)));
    const buf = transientBytes(Math.min(n, perPiece) * codeSize);
    let at = sec.offset + headLen;
    for (let done = 0; done < n;) {
      const take = Math.min(perPiece, n - done);
      const part = buf.subarray(0, take * codeSize);
      file.file.readInto(at, part);
      crc = crc32c(part, crc);
      piece(part, take, done);
      at += part.length;
      done += take;
    }
    file.checkCrc(SECTION.CODES, crc);
    return q;
  } catch (e) {
    // a damaged section is CORRUPT_FILE (its checksum), whatever part of it failed to parse
    file.readChunked(SECTION.CODES, 4 << 20, () => {});
    throw e;
  }
}
