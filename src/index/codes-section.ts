import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { deserializeQuantizer } from '../quant/registry.js';
import type { Quantizer } from '../quant/types.js';
import { SECTION, type SegmentFile, type SegmentWriter } from '../storage/segment-file.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { FlatQuantizedIndex } from './flat-quantized.js';

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
 * into what the quantizer encodes (e.g. unit vectors for cosine) in place.
 */
export async function writeCodesSection(
  w: SegmentWriter, q: Quantizer, count: number,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, prepare: (rows: Float32Array, firstRow: number, n: number) => void,
): Promise<void> {
  const d = q.dimension;
  const head = new ByteWriter(256).u32(CODES_VERSION).blob(q.serialize()).u32(q.fingerprint).u32(q.codeSize).u32(count).finish();
  await w.beginSection(SECTION.CODES);
  await w.writeChunk(head.slice());
  let row = 0;
  for await (const chunk of chunks) {
    const n = chunk.length / (d * 4);
    const f = new Float32Array(n * d);
    new Uint8Array(f.buffer).set(chunk);
    prepare(f, row, n);
    const codes = new Uint8Array(n * q.codeSize);
    q.encode(f, n, codes);
    await w.writeChunk(codes);
    row += n;
  }
  w.endSection();
  if (row !== count) throw new Error(`codes section: encoded ${row} rows, expected ${count}`);
}

/** Loads the CODES section into a FlatQuantizedIndex on `kernels` (INCOMPATIBLE_CODES / CORRUPT_FILE on mismatch). */
export function readCodesSection(file: SegmentFile, where: string, count: number, kernels: Kernels): FlatQuantizedIndex {
  const r = new ByteReader(file.read(SECTION.CODES), where);
  const version = r.u32('codes version');
  if (version !== CODES_VERSION) throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: codes section version ${version} is not supported (read: ${CODES_VERSION})`, { file: where, expected: CODES_VERSION, received: version });
  const q = deserializeQuantizer(r.blob('quantizer').slice(), kernels, where);
  const fingerprint = r.u32('fingerprint');
  const codeSize = r.u32('code size');
  const n = r.u32('code count');
  if (n !== count || codeSize !== q.codeSize) r.fail(`codes section holds ${n} codes of ${codeSize} bytes, expected ${count} of ${q.codeSize}`);
  const rows = r.bytesView(n * codeSize, 'codes');
  if (r.remaining !== 0) r.fail(`${r.remaining} trailing bytes after the codes`);
  const index = new FlatQuantizedIndex(q, n);
  try {
    index.addCodes(rows, n, { spec: q.spec, fingerprint });
  } catch (e) {
    index.release();
    throw e;
  }
  return index;
}
