import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { SECTION, type SegmentFile, type SegmentWriter } from '../storage/segment-file.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { crc32c } from '../util/crc32c.js';
import { HNSW_M_RANGE } from './spec.js';
import { HnswGraph, MAX_LEVEL } from './hnsw-graph.js';

/**
 * The GRAPH section of a segment file: an HNSW graph over the segment's ordinals, written at
 * seal or merge by hnsw-segment.ts and restored at open without a rebuild. The rows it is
 * traversed on are the CODES section (quantized graphs) or the VECTORS section (full precision).
 *
 * Layout (little-endian), version 2 (written) and 1 (read):
 *   0   u32 version (2)
 *   4   u32 M (links per node on levels >= 1; level 0 keeps up to 2M)
 *   8   u32 efConstruction (what the graph was built with; informational)
 *   12  u32 count (= the segment's rows)
 *   16  u32 entry node (0xFFFFFFFF when count = 0)
 *   20  u32 top level
 *   24  u32 upperWords (u32 words in the upper-level pool)
 *   28  u32 level0Words (u32 words of the packed level 0; version 1: reserved, 0)
 *   32  u8[count] top level of each node, zero-padded to a multiple of 4 bytes
 *   ..  u32[count] upper offsets: word index into the pool of node i's level-1 list (0 for
 *       nodes of level 0); its level l list starts at offset + (l - 1) * (M + 1)
 *   ..  u32[count] level-0 offsets: word index of node i's list in the packed level 0
 *   ..  u32[level0Words] level 0, packed: per node [degree, neighbour ordinals...], back to back
 *       in node order (sum of degree + 1)
 *   ..  u32[upperWords] the pool: per node and level [degree, neighbour ordinals...] (M + 1 words)
 * Version 1 had no level-0 offsets and stored level 0 at a fixed u32[count * (2M + 1)] (per node
 * [degree, ids..., unused slots]); it is still read, into the fixed layout.
 *
 * A graph read from version 2 keeps level 0 packed in memory (HnswGraph.restorePacked): about
 * three quarters of the fixed layout's bytes on GloVe-100 (mean degree 23 of 32 at M = 16).
 */
export const GRAPH_VERSION = 2;
const HEAD_BYTES = 32;

/** Writes graph `g` (all its nodes linked) as the GRAPH section. */
export async function writeGraphSection(w: SegmentWriter, g: HnswGraph, efConstruction: number): Promise<void> {
  const a = g.arrays();
  const { offsets, packed } = packLevel0(a.level0, a.count, 2 * a.m + 1);
  const head = new ByteWriter(HEAD_BYTES).u32(GRAPH_VERSION).u32(a.m).u32(efConstruction).u32(a.count)
    .u32(a.count === 0 ? 0xffffffff : a.entry).u32(a.maxLevel).u32(a.upperWords).u32(packed.length).finish();
  const levels = new Uint8Array(pad4(a.count));
  levels.set(a.levels);
  await w.beginSection(SECTION.GRAPH);
  for (const part of [head.slice(), levels, bytesOf(a.upperOff), bytesOf(offsets), bytesOf(packed), bytesOf(a.upper)]) await w.writeChunk(part);
  w.endSection();
}

/** Level 0 from the fixed layout (u32[n * stride]) to lists back to back, and their word offsets. */
function packLevel0(fixed: Uint32Array, n: number, stride: number): { offsets: Uint32Array; packed: Uint32Array } {
  const offsets = new Uint32Array(n);
  let words = 0;
  for (let i = 0; i < n; i++) { offsets[i] = words; words += 1 + fixed[i * stride]; }
  const packed = new Uint32Array(words);
  for (let i = 0; i < n; i++) packed.set(fixed.subarray(i * stride, i * stride + 1 + fixed[i * stride]), offsets[i]);
  return { offsets, packed };
}

/**
 * Restores the GRAPH section into kernel memory of `kernels`. CORRUPT_FILE naming the file on
 * damage (checksum, sizes, or links that do not make a graph of `count` nodes),
 * UNSUPPORTED_FORMAT for a version this build does not read.
 */
export function readGraphSection(file: SegmentFile, where: string, count: number, kernels: Kernels): { graph: HnswGraph; efConstruction: number } {
  const sec = file.section(SECTION.GRAPH);
  const fail = (reason: string): never => {
    file.readChunked(SECTION.GRAPH, 4 << 20, () => {}); // damaged bytes: the checksum names it first
    throw new QuiverError('CORRUPT_FILE', `${where}: graph section: ${reason}`, { file: where, section: 'GRAPH', reason });
  };
  if (sec.length < HEAD_BYTES) fail(`${sec.length} bytes is too short for its header`);
  const head = new Uint8Array(HEAD_BYTES);
  file.file.readInto(sec.offset, head);
  let crc = crc32c(head);
  const r = new ByteReader(head, where);
  const version = r.u32('graph version');
  if (version !== GRAPH_VERSION && version !== 1) {
    file.readChunked(SECTION.GRAPH, 4 << 20, () => {});
    throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: graph section version ${version} is not supported (read: 1 and ${GRAPH_VERSION})`, { file: where, expected: [1, GRAPH_VERSION], received: version });
  }
  const m = r.u32('M'), efConstruction = r.u32('efConstruction'), n = r.u32('count'), entry = r.u32('entry'), maxLevel = r.u32('top level'), upperWords = r.u32('upper words');
  const level0Words = version === 1 ? null : r.u32('level-0 words');
  if (n !== count) fail(`holds ${n} nodes, the segment ${count} rows`);
  if (m < HNSW_M_RANGE[0] || m > HNSW_M_RANGE[1]) fail(`M = ${m} is outside ${HNSW_M_RANGE[0]}..${HNSW_M_RANGE[1]}`);
  if (maxLevel > MAX_LEVEL) fail(`top level ${maxLevel} is above ${MAX_LEVEL}`);
  const m0 = 2 * m;
  const level0Bytes = level0Words === null ? 4 * n * (m0 + 1) : 4 * n + 4 * level0Words;
  const expected = HEAD_BYTES + pad4(n) + 4 * n + level0Bytes + 4 * upperWords;
  if (sec.length !== expected) {
    fail(`is ${sec.length} bytes, expected ${expected} for ${n} nodes, M = ${m}, ${level0Words === null ? '' : `${level0Words} level-0 words, `}${upperWords} pool words`);
  }
  let at = sec.offset + HEAD_BYTES;
  const readPart = (dest: Uint8Array) => { file.file.readInto(at, dest); crc = crc32c(dest, crc); at += dest.length; };
  const levelsPadded = new Uint8Array(pad4(n));
  readPart(levelsPadded);
  const levels = levelsPadded.subarray(0, n);
  const upperOff = new Uint32Array(n);
  readPart(new Uint8Array(upperOff.buffer));
  for (let i = 0; i < n; i++) {
    if (levels[i] > maxLevel) fail(`node ${i} has level ${levels[i]} above the top level ${maxLevel}`);
    if (levels[i] > 0 && upperOff[i] + levels[i] * (m + 1) > upperWords) fail(`node ${i}'s upper lists run past the pool (${upperWords} words)`);
  }
  let graph: HnswGraph;
  try {
    const arrays = { m, count: n, entry, maxLevel, levels, upperOff, upperWords };
    graph = level0Words === null
      ? HnswGraph.restore(kernels, arrays, (level0, upper) => {
        readInPieces(level0, readPart);
        readInPieces(upper, readPart);
        file.checkCrc(SECTION.GRAPH, crc);
      })
      : HnswGraph.restorePacked(kernels, arrays, level0Words, (offsets, level0, upper) => {
        readInPieces(offsets, readPart);
        readInPieces(level0, readPart);
        readInPieces(upper, readPart);
        file.checkCrc(SECTION.GRAPH, crc);
      });
  } catch (e) {
    if (e instanceof QuiverError && e.code === 'CORRUPT_FILE' && !String(e.message).startsWith(where)) {
      throw new QuiverError('CORRUPT_FILE', `${where}: ${e.message}`, { file: where, section: 'GRAPH', ...(e.details ?? {}) });
    }
    throw e;
  }
  return { graph, efConstruction };
}

/** Reads into a kernel-memory array in ~4 MiB pieces (the view is re-derived for each piece). */
function readInPieces(view: () => Uint32Array, readPart: (dest: Uint8Array) => void): void {
  const total = view().length * 4;
  for (let done = 0; done < total;) {
    const v = view();
    const take = Math.min(4 << 20, total - done);
    readPart(new Uint8Array(v.buffer, v.byteOffset + done, take));
    done += take;
  }
}

function pad4(n: number): number { return (n + 3) & ~3; }
function bytesOf(a: Uint32Array): Uint8Array { return new Uint8Array(a.buffer, a.byteOffset, a.byteLength); }
