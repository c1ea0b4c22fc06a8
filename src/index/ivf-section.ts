import type { Metric } from '../collection/validate.js';
import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { checkCodesFingerprint } from '../quant/checks.js';
import { deserializeQuantizer } from '../quant/registry.js';
import type { Quantizer } from '../quant/types.js';
import { SECTION, type SegmentFile, type SegmentWriter } from '../storage/segment-file.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { crc32c } from '../util/crc32c.js';
import { transientBytes } from '../util/transient.js';
import { IvfIndex, type IvfLists } from './ivf.js';
import { IVF_NLIST_RANGE } from './spec.js';

/**
 * The IVF section of a segment file: the coarse quantizer, the rows of each list and, for a
 * compressed spec, the quantizer and the codes grouped by list. Written when a segment under an
 * IVF spec is sealed or merged (ivf-segment.ts), loaded at open without retraining.
 *
 * Layout (little-endian; rows are addressed by *position*: list l holds positions
 * [starts[l], starts[l + 1])):
 *   u32 version (1)
 *   u32 flags: bit 0 = codes follow (a quantizer); every other bit 0
 *   u32 dimension, u32 count (rows of the segment), u32 nlist (1..65536)
 *   f32[nlist * dimension]   centroids, row c = centroid c (unit length for cosine collections)
 *   u32[nlist + 1]           starts: starts[0] = 0, non-decreasing, starts[nlist] = count
 *   u32[count]               ordinals by position: a permutation of 0..count-1, ascending within a list
 *   if flags bit 0:
 *     u32 L, L bytes Quantizer.serialize() (its own magic, spec and checksum)
 *     u32 fingerprint, u32 codeSize
 *     u8[count * codeSize]   row codes by position (position p's code at p * codeSize; the code of
 *                            the raw vector, unit for cosine, not of a residual)
 * Without codes the full vectors are the segment's VECTORS section, read at open into kernel
 * memory in list order.
 */
export const IVF_VERSION = 1;
const FLAG_CODES = 1;
const FIXED_HEAD = 20;

/**
 * Writes the IVF section. codes: the trained quantizer and the row codes by *ordinal*
 * (u8[count * codeSize]), regrouped by list here; null for an uncompressed IVF.
 */
export async function writeIvfSection(w: SegmentWriter, dimension: number, lists: IvfLists, codes: { quantizer: Quantizer; rows: Uint8Array } | null): Promise<void> {
  const { nlist, centroids, starts, ords } = lists;
  const count = ords.length;
  const head = new ByteWriter(64).u32(IVF_VERSION).u32(codes ? FLAG_CODES : 0).u32(dimension).u32(count).u32(nlist).finish().slice();
  await w.beginSection(SECTION.IVF);
  await w.writeChunk(head);
  await w.writeChunk(bytesOf(centroids));
  await w.writeChunk(bytesOf(starts));
  await w.writeChunk(bytesOf(ords));
  if (codes) {
    const q = codes.quantizer, cs = q.codeSize;
    await w.writeChunk(new ByteWriter(256).blob(q.serialize()).u32(q.fingerprint).u32(cs).finish().slice());
    const per = Math.max(1, Math.floor((4 << 20) / cs));
    const buf = transientBytes(Math.min(Math.max(count, 1), per) * cs);
    for (let p = 0; p < count; p += per) {
      const m = Math.min(per, count - p);
      for (let i = 0; i < m; i++) {
        const o = ords[p + i];
        buf.set(codes.rows.subarray(o * cs, (o + 1) * cs), i * cs);
      }
      await w.writeChunk(buf.subarray(0, m * cs));
    }
  }
  w.endSection();
}

function bytesOf(a: Float32Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Reads the IVF section into an IvfIndex on `kernels` (the segment's own): centroids, lists and,
 * when present, the quantizer and codes (in ~4 MiB pieces of whole lists, packed list by list).
 * An uncompressed index is returned empty: the caller fills its vectors from VECTORS.
 * UNSUPPORTED_FORMAT for an unknown version; CORRUPT_FILE for a bad checksum or inconsistent
 * sizes; INCOMPATIBLE_CODES if the codes' fingerprint is not the quantizer's. On failure the
 * index is released.
 */
export function readIvfSection(file: SegmentFile, where: string, kernels: Kernels, dimension: number, metric: Metric): IvfIndex {
  const sec = file.section(SECTION.IVF);
  const count = file.header.count;
  const end = sec.offset + sec.length;
  let at = sec.offset, crc = 0;
  /** The next n bytes of the section, checksummed; CORRUPT_FILE past its end. */
  const next = (n: number, what: string, into?: Uint8Array): Uint8Array => {
    if (at + n > end) throw new QuiverError('CORRUPT_FILE', `${where}: IVF section of ${sec.length} bytes ends inside its ${what} (${n} bytes at ${at - sec.offset})`, { file: where, expected: at - sec.offset + n, received: sec.length });
    const b = into ? into.subarray(0, n) : new Uint8Array(n);
    file.file.readInto(at, b);
    crc = crc32c(b, crc);
    at += n;
    return b;
  };
  let index: IvfIndex | null = null;
  try {
    const h = new ByteReader(next(FIXED_HEAD, 'header'), where);
    const version = h.u32('IVF version');
    if (version !== IVF_VERSION) throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: IVF section version ${version} is not supported (read: ${IVF_VERSION})`, { file: where, expected: IVF_VERSION, received: version });
    const flags = h.u32('IVF flags');
    const dim = h.u32('dimension'), n = h.u32('row count'), nlist = h.u32('nlist');
    if (flags & ~FLAG_CODES) h.fail(`unknown IVF flags 0x${flags.toString(16)}`, { expected: FLAG_CODES, received: flags });
    if (dim !== dimension || n !== count) h.fail(`IVF section is for ${n} rows of dimension ${dim}, the segment holds ${count} of ${dimension}`, { expected: { count, dimension }, received: { count: n, dimension: dim } });
    if (nlist < IVF_NLIST_RANGE[0] || nlist > IVF_NLIST_RANGE[1]) h.fail(`IVF nlist ${nlist} is outside ${IVF_NLIST_RANGE[0]}..${IVF_NLIST_RANGE[1]}`, { expected: IVF_NLIST_RANGE, received: nlist });
    const body = new ByteReader(next(nlist * dimension * 4 + (nlist + 1) * 4 + count * 4, 'lists'), where);
    const centroids = body.f32Array(nlist * dimension, 'centroids');
    const starts = body.u32Array(nlist + 1, 'list starts');
    const ords = body.u32Array(count, 'ordinals');
    checkLists(body, centroids, starts, ords);
    let quantizer: Quantizer | null = null;
    let codeSize = 0;
    if (flags & FLAG_CODES) {
      const blobLen = new ByteReader(next(4, 'quantizer length'), where).u32();
      quantizer = deserializeQuantizer(next(blobLen, 'quantizer'), kernels, where);
      const t = new ByteReader(next(8, 'code header'), where);
      const fingerprint = t.u32('fingerprint');
      codeSize = t.u32('code size');
      if (quantizer.dimension !== dimension || codeSize !== quantizer.codeSize) t.fail(`IVF codes of ${codeSize} bytes for dimension ${quantizer.dimension}, expected ${quantizer.codeSize} bytes (${quantizer.spec}) for ${dimension}`, { expected: quantizer.codeSize, received: codeSize });
      checkCodesFingerprint(quantizer, quantizer.spec, fingerprint);
    }
    if (end - at !== count * codeSize) {
      throw new QuiverError('CORRUPT_FILE', `${where}: IVF section holds ${end - at} bytes of codes, expected ${count} x ${codeSize}`, { file: where, expected: count * codeSize, received: end - at });
    }
    index = new IvfIndex(kernels, dimension, metric, { nlist, centroids, starts, ords }, quantizer);
    if (quantizer && count > 0) {
      // whole lists per read (a list is packed into its own blocks), about 4 MiB at a time
      const target = Math.max(codeSize, 4 << 20);
      let biggest = 0;
      for (let l = 0; l < nlist; l++) biggest = Math.max(biggest, (starts[l + 1] - starts[l]) * codeSize);
      const piece = transientBytes(Math.max(Math.min(target, count * codeSize), biggest));
      for (let l = 0; l < nlist;) {
        let e = l + 1;
        while (e < nlist && (starts[e + 1] - starts[l]) * codeSize <= target) e++;
        const rows = starts[e] - starts[l];
        if (rows > 0) index.setCodeRows(next(rows * codeSize, 'codes', piece), starts[l], rows);
        l = e;
      }
    }
    file.checkCrc(SECTION.IVF, crc);
    return index;
  } catch (e) {
    index?.release();
    // a damaged section is CORRUPT_FILE (its checksum), whatever part of it failed to parse
    file.readChunked(SECTION.IVF, 4 << 20, () => {});
    throw e;
  }
}

/** CORRUPT_FILE unless the lists are consistent: finite centroids, ordered starts, ordinals a permutation ascending within each list. */
function checkLists(r: ByteReader, centroids: Float32Array, starts: Uint32Array, ords: Uint32Array): void {
  const nlist = starts.length - 1, count = ords.length;
  for (let i = 0; i < centroids.length; i++) if (!Number.isFinite(centroids[i])) r.fail(`IVF centroid ${Math.floor(i / (centroids.length / nlist))} is not finite`, { received: centroids[i] });
  if (starts[0] !== 0 || starts[nlist] !== count) r.fail(`IVF list starts run from ${starts[0]} to ${starts[nlist]}, expected 0 to ${count}`, { expected: [0, count], received: [starts[0], starts[nlist]] });
  const seen = new Uint32Array((count + 31) >>> 5);
  for (let l = 0; l < nlist; l++) {
    if (starts[l + 1] < starts[l]) r.fail(`IVF list ${l} ends (${starts[l + 1]}) before it starts (${starts[l]})`, { expected: `>= ${starts[l]}`, received: starts[l + 1] });
    for (let p = starts[l]; p < starts[l + 1]; p++) {
      const o = ords[p];
      if (o >= count || (p > starts[l] && o <= ords[p - 1])) r.fail(`IVF list ${l}: ordinal ${o} at position ${p} is out of range or out of order`, { expected: `< ${count}, ascending`, received: o });
      if ((seen[o >>> 5] >>> (o & 31)) & 1) r.fail(`IVF ordinal ${o} is listed twice`, { received: o });
      seen[o >>> 5] |= 1 << (o & 31);
    }
  }
}
