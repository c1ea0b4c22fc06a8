/**
 * The bytes of a sparse index (one segment section per sparse field). Little-endian; version 1:
 *
 *   offset  field
 *   0       u32 magic 0x52505351 ("QSPR")
 *   4       u32 version = 1
 *   8       u32 count            rows of the segment
 *   12      u32 nTerms           dictionary size
 *   16      u32 nnz              forward-index entries
 *   20      u32 flags            bit 0: the approximate (Seismic) structures follow; other bits 0
 *   24      u32 lambda           build settings, recorded (postings kept per term, 1..2,097,151)
 *   28      f32 centroidFraction
 *   32      f32 summaryMass
 *   36      u32 maxBlockSize
 *   40      u32 nBlocks          (0 without bit 0)
 *   44      u32 nPruned          postings kept in the blocks (0 without bit 0)
 *   48      u32 nSummary         summary entries (0 without bit 0)
 *   52      u32 dictBytes
 *   56      dictionary: nTerms x (u16 UTF-8 byte length >= 1, UTF-8), strictly ascending in JS
 *           string order (term id = position), dictBytes bytes, then zero padding to 4
 *           present     u32[ceil(count / 32)]  bitset of rows with a value
 *           rowStart    u32[count + 1]         CSR: row r = entries rowStart[r]..rowStart[r+1]
 *           fwdTerms    u32[nnz]               term ids, strictly ascending within a row
 *           fwdWeights  f32[nnz]               finite, > 0
 *   with bit 0:
 *           termBlockStart u32[nTerms + 1]     term t's blocks (at most lambda per term)
 *           blockDocStart  u32[nBlocks + 1]    block b's rows, non-empty
 *           blockDocs      u32[nPruned]        row ordinals, strictly ascending within a block
 *           sumStart       u32[nBlocks + 1]    block b's summary entries
 *           sumScale       f32[nBlocks]        finite, >= 0
 *           sumTerms       u32[nSummary]       term ids, strictly ascending within a block
 *           sumCodes       u8[nSummary], then zero padding to 4
 *   last 4  u32 CRC-32C of every byte before it (in every version: checked before the version)
 *
 * The full posting lists and per-term maxima are not stored: loading transposes the forward index.
 * Decoding checks the magic, the checksum, the version (UNSUPPORTED_FORMAT when unknown), that the
 * counts account for every byte, and every offset, id, order and weight above, so a damaged
 * section is CORRUPT_FILE naming `where`, never a crash, a hang or an out-of-range read.
 */
import { QuiverError } from '../errors.js';
import { createKernels } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { crc32c } from '../util/crc32c.js';
import { SeismicSparseIndex, type SparseApproxData, type SparseIndexData } from './sparse-index.js';
import { SPARSE_MAX_TERM_LENGTH, SPARSE_MAX_TERMS, type SparseIndex } from './types.js';

export const SPARSE_SECTION_MAGIC = 0x52505351;
export const SPARSE_SECTION_VERSION = 1;
const HEADER_BYTES = 56;

function typedBytes(a: Uint32Array | Float32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * The section's bytes as a list of chunks (their concatenation is the section), so the large
 * arrays are not copied into one buffer. The index must come from buildSparseIndex or
 * decodeSparseIndex.
 */
export function encodeSparseIndex(index: SparseIndex): Uint8Array[] {
  if (!(index instanceof SeismicSparseIndex)) {
    throw new QuiverError('INVALID_ARGUMENT', 'encodeSparseIndex takes an index from buildSparseIndex or decodeSparseIndex', { expected: 'SeismicSparseIndex' });
  }
  const d = index.exportData();
  const a = d.approx;
  const head = new ByteWriter(HEADER_BYTES + 16 * d.terms.length);
  head.u32(SPARSE_SECTION_MAGIC).u32(SPARSE_SECTION_VERSION).u32(d.count).u32(d.terms.length).u32(d.fwdTerms.length)
    .u32(a ? 1 : 0).u32(d.build.lambda).f32(d.build.centroidFraction).f32(d.build.summaryMass).u32(d.build.maxBlockSize)
    .u32(a ? a.sumScale.length : 0).u32(a ? a.blockDocs.length : 0).u32(a ? a.sumTerms.length : 0).u32(0);
  for (const t of d.terms) head.utf8u16(t);
  head.patchU32(52, head.length - HEADER_BYTES);
  head.align(4);
  const chunks: Uint8Array[] = [head.finish().slice(), typedBytes(d.present), typedBytes(d.rowStart), typedBytes(d.fwdTerms), typedBytes(d.fwdWeights)];
  if (a) {
    chunks.push(typedBytes(a.termBlockStart), typedBytes(a.blockDocStart), typedBytes(a.blockDocs), typedBytes(a.sumStart),
      typedBytes(a.sumScale), typedBytes(a.sumTerms), typedBytes(a.sumCodes), new Uint8Array((4 - (a.sumCodes.length & 3)) & 3));
  }
  let crc = 0;
  for (const c of chunks) crc = crc32c(c, crc);
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, crc, true);
  chunks.push(tail);
  return chunks;
}

/**
 * Loads a section written by encodeSparseIndex for a segment of `count` rows into `kernels`
 * (default createKernels()). CORRUPT_FILE naming `where` on any inconsistency; UNSUPPORTED_FORMAT
 * for a version this code does not know.
 */
export function decodeSparseIndex(bytes: Uint8Array, count: number, where: string, kernels?: Kernels): SeismicSparseIndex {
  const r = new ByteReader(bytes, where);
  r.need(HEADER_BYTES + 4, 'sparse index header');
  if (r.u32('magic') !== SPARSE_SECTION_MAGIC) { r.pos = 0; r.fail('not a sparse index section (bad magic)'); }
  const stored = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true);
  if (crc32c(bytes, 0, 0, bytes.length - 4) !== stored) { r.pos = bytes.length - 4; r.fail('sparse index checksum mismatch'); }
  const version = r.u32('version');
  if (version !== SPARSE_SECTION_VERSION) {
    throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: sparse index version ${version} is not supported (this build reads version ${SPARSE_SECTION_VERSION})`, {
      file: where, expected: SPARSE_SECTION_VERSION, received: version,
    });
  }
  const n = r.u32('count');
  if (n !== count) { r.pos -= 4; r.fail(`sparse index holds ${n} rows, the segment ${count}`, { expected: count, received: n }); }
  const nTerms = r.u32('nTerms'), nnz = r.u32('nnz'), flags = r.u32('flags');
  const lambda = r.u32('lambda'), centroidFraction = r.f32('centroidFraction'), summaryMass = r.f32('summaryMass'), maxBlockSize = r.u32('maxBlockSize');
  const nBlocks = r.u32('nBlocks'), nPruned = r.u32('nPruned'), nSummary = r.u32('nSummary'), dictBytes = r.u32('dictBytes');
  if (flags > 1) r.fail(`unknown flags ${flags}`);
  const approx = flags === 1;
  if (!approx && (nBlocks | nPruned | nSummary) !== 0) r.fail('block counts without the approximate structures');
  if (lambda < 1 || lambda > 2097151 || maxBlockSize < 1 || !(centroidFraction > 0 && centroidFraction <= 1) || !(summaryMass > 0 && summaryMass <= 1)) r.fail('invalid build settings');
  if (nTerms > nnz) r.fail(`${nTerms} terms but ${nnz} entries`);
  if (nPruned > nnz || nBlocks > nPruned) r.fail(`${nBlocks} blocks of ${nPruned} postings for ${nnz} entries`);
  // the counts must account for every byte (checked before anything is allocated)
  const dictPadded = Math.ceil(dictBytes / 4) * 4;
  let expected = HEADER_BYTES + dictPadded + 4 * Math.ceil(count / 32) + 4 * (count + 1) + 8 * nnz + 4;
  if (approx) expected += 4 * (nTerms + 1) + 8 * (nBlocks + 1) + 4 * nPruned + 4 * nBlocks + 4 * nSummary + Math.ceil(nSummary / 4) * 4;
  if (expected !== bytes.length) r.fail(`the counts need ${expected} bytes, the section has ${bytes.length}`, { expected, received: bytes.length });

  // dictionary
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const terms: string[] = new Array<string>(nTerms);
  const dictEnd = r.pos + dictBytes;
  let prev: string | null = null;
  for (let t = 0; t < nTerms; t++) {
    const len = r.u16('term length');
    if (len === 0 || r.pos + len > dictEnd) r.fail(`term ${t}: bad length ${len}`);
    let s: string;
    try { s = decoder.decode(r.bytesView(len, 'term')); } catch { s = r.fail(`term ${t} is not valid UTF-8`); }
    if (s.length > SPARSE_MAX_TERM_LENGTH) r.fail(`term ${t} is longer than ${SPARSE_MAX_TERM_LENGTH}`);
    if (prev !== null && !(prev < s)) r.fail(`dictionary not strictly ascending at term ${t}`);
    terms[t] = prev = s;
  }
  if (r.pos !== dictEnd) r.fail('dictionary size does not match its terms');
  r.align(4);

  // forward index
  const present = r.u32Array(Math.ceil(count / 32), 'present');
  if (count & 31 && present.length > 0 && present[present.length - 1] >>> (count & 31) !== 0) r.fail('presence bits past the last row');
  const rowStartAt = r.pos;
  const rowStart = r.u32Array(count + 1, 'rowStart');
  const fwdTermsAt = r.pos;
  const fwdTerms = r.u32Array(nnz, 'fwdTerms');
  const fwdWeightsAt = r.pos;
  const fwdWeights = r.f32Array(nnz, 'fwdWeights');
  const failAt = (at: number, msg: string): never => { r.pos = at; return r.fail(msg); };
  if (rowStart[0] !== 0 || rowStart[count] !== nnz) failAt(rowStartAt, 'rowStart does not span the entries');
  for (let row = 0; row < count; row++) {
    const s = rowStart[row], e = rowStart[row + 1];
    if (e < s || e > nnz) failAt(rowStartAt + 4 * row, `row ${row}: bad entry range ${s}..${e}`);
    if (e - s > SPARSE_MAX_TERMS) failAt(rowStartAt + 4 * row, `row ${row}: ${e - s} terms`);
    if (e > s && (present[row >>> 5] & (1 << (row & 31))) === 0) failAt(rowStartAt + 4 * row, `row ${row} has entries but no value`);
    for (let j = s; j < e; j++) {
      if (fwdTerms[j] >= nTerms || (j > s && fwdTerms[j] <= fwdTerms[j - 1])) failAt(fwdTermsAt + 4 * j, `row ${row}: bad term id ${fwdTerms[j]}`);
      const w = fwdWeights[j];
      if (!(w > 0) || !Number.isFinite(w)) failAt(fwdWeightsAt + 4 * j, `row ${row}: bad weight ${w}`);
    }
  }

  let a: SparseApproxData | null = null;
  if (approx) {
    const tbsAt = r.pos;
    const termBlockStart = r.u32Array(nTerms + 1, 'termBlockStart');
    const bdsAt = r.pos;
    const blockDocStart = r.u32Array(nBlocks + 1, 'blockDocStart');
    const bdAt = r.pos;
    const blockDocs = r.u32Array(nPruned, 'blockDocs');
    const ssAt = r.pos;
    const sumStart = r.u32Array(nBlocks + 1, 'sumStart');
    const scAt = r.pos;
    const sumScale = r.f32Array(nBlocks, 'sumScale');
    const stAt = r.pos;
    const sumTerms = r.u32Array(nSummary, 'sumTerms');
    const sumCodes = r.bytesView(nSummary, 'sumCodes').slice();
    if (termBlockStart[0] !== 0 || termBlockStart[nTerms] !== nBlocks) failAt(tbsAt, 'termBlockStart does not span the blocks');
    for (let t = 0; t < nTerms; t++) {
      if (termBlockStart[t + 1] < termBlockStart[t] || termBlockStart[t + 1] - termBlockStart[t] > lambda) failAt(tbsAt + 4 * t, `term ${t}: bad block range`);
    }
    if (blockDocStart[0] !== 0 || blockDocStart[nBlocks] !== nPruned) failAt(bdsAt, 'blockDocStart does not span the postings');
    if (sumStart[0] !== 0 || sumStart[nBlocks] !== nSummary) failAt(ssAt, 'sumStart does not span the summaries');
    for (let b = 0; b < nBlocks; b++) {
      const s = blockDocStart[b], e = blockDocStart[b + 1];
      if (e <= s || e > nPruned) failAt(bdsAt + 4 * b, `block ${b}: bad row range ${s}..${e}`);
      for (let p = s; p < e; p++) {
        if (blockDocs[p] >= count || (p > s && blockDocs[p] <= blockDocs[p - 1])) failAt(bdAt + 4 * p, `block ${b}: bad row ${blockDocs[p]}`);
      }
      const ss = sumStart[b], se = sumStart[b + 1];
      if (se < ss || se > nSummary) failAt(ssAt + 4 * b, `block ${b}: bad summary range ${ss}..${se}`);
      for (let j = ss; j < se; j++) {
        if (sumTerms[j] >= nTerms || (j > ss && sumTerms[j] <= sumTerms[j - 1])) failAt(stAt + 4 * j, `block ${b}: bad summary term ${sumTerms[j]}`);
      }
      if (!(sumScale[b] >= 0) || !Number.isFinite(sumScale[b])) failAt(scAt + 4 * b, `block ${b}: bad summary scale`);
    }
    a = { termBlockStart, blockDocStart, blockDocs, sumStart, sumScale, sumTerms, sumCodes };
  }
  const data: SparseIndexData = {
    count, terms, present, rowStart, fwdTerms, fwdWeights, build: { lambda, centroidFraction, summaryMass, maxBlockSize }, approx: a,
  };
  return new SeismicSparseIndex(data, kernels ?? createKernels());
}
