import { QuiverError } from '../errors.js';
import { flatSearch } from '../index/flat.js';
import { FlatQuantizedIndex } from '../index/flat-quantized.js';
import { quantizerSpecOf, rerankRule, type IndexSpec } from '../index/spec.js';
import type { ExactScorer, SearchResultBatch } from '../index/types.js';
import { createQuantizer, deserializeQuantizer } from '../quant/registry.js';
import type { Quantizer } from '../quant/types.js';
import type { RerankRule } from '../query/rerank.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { crc32c } from '../util/crc32c.js';
import { VectorStore } from '../index/vector-store.js';
import type { Kernels } from '../kernels/types.js';
import type { Directory } from '../storage/directory.js';
import type { ManifestSegment } from '../storage/manifest.js';
import { SECTION, SegmentFile, SegmentWriter, StringColumn, encodeStringColumn, segmentFileName } from '../storage/segment-file.js';
import { bitsetWords, growBitset, setBit, testBit } from '../util/bitset.js';
import type { Metric } from './validate.js';

/**
 * The two kinds of segment a collection searches: the mutable segment that takes new writes
 * (in memory, replayable from the WAL) and sealed segments (immutable files, loaded for search).
 * Rows are addressed by ordinals 0..count-1 within a segment.
 */
export interface Segment {
  readonly number: number;
  /** Rows, including deleted ones. */
  readonly count: number;
  /** Rows not deleted. */
  readonly live: number;
  /** Deleted rows: bit i set = row i deleted. */
  readonly tombstones: Uint32Array;
  idAt(ord: number): string;
  /** Metadata JSON text of a row ('' = none). */
  metadataJsonAt(ord: number): string;
  /** The stored vector of a row (a copy). */
  vectorAt(ord: number, out?: Float32Array): Float32Array;
  isDeleted(ord: number): boolean;
  /**
   * Top-k of live rows for nq prepared queries (f32[nq * dimension]). `reranked`, when given
   * (u32[nq]), is increased by the vectors each query scored exactly after a compressed scan.
   */
  searchBatch(queries: Float32Array, nq: number, k: number, reranked?: Uint32Array): SearchResultBatch;
  /** Kernel memory held for search (vectors, codes), in bytes. */
  readonly memoryBytes: number;
}

/**
 * The segment that takes writes. Until it is frozen for sealing, deletes swap-remove rows
 * (ordinals of this segment are never persisted, so they may move) and upserts of an id it
 * already holds overwrite in place. Once frozen, rows never move: deletes set tombstones, which
 * the sealed segment inherits ordinal for ordinal.
 */
export class MutableSegment implements Segment {
  readonly store: VectorStore;
  readonly ids: string[] = [];
  readonly metadataJson: string[] = [];
  tombstones: Uint32Array = new Uint32Array(0);
  deleted = 0;
  frozen = false;
  minSeq = 0;
  maxSeq = 0;

  /** `maxRows`: rows expected before sealing (sizes the memory chunks; Infinity for default chunks). */
  constructor(readonly number: number, readonly kernels: Kernels, readonly dimension: number, readonly metric: Metric, maxRows = Infinity) {
    const defaultRows = new VectorStore(kernels, dimension, false).chunkRows;
    this.store = new VectorStore(kernels, dimension, metric === 'cosine', maxRows < defaultRows ? Math.max(16, Math.ceil(maxRows / 16) * 16) : undefined);
  }

  get count(): number { return this.ids.length; }
  get live(): number { return this.ids.length - this.deleted; }
  get memoryBytes(): number { return this.store.bytes; }

  noteSeq(seq: number): void {
    if (this.minSeq === 0) this.minSeq = seq;
    this.maxSeq = Math.max(this.maxSeq, seq);
  }

  append(id: string, vector: Float32Array, invNorm: number, metadataJson: string): number {
    if (this.frozen) throw new Error('append to a frozen segment');
    const ord = this.store.append(vector, invNorm);
    this.ids[ord] = id;
    this.metadataJson[ord] = metadataJson;
    return ord;
  }

  overwrite(ord: number, vector: Float32Array, invNorm: number, metadataJson: string): void {
    if (this.frozen) throw new Error('overwrite in a frozen segment');
    this.store.set(ord, vector, invNorm);
    this.metadataJson[ord] = metadataJson;
  }

  /**
   * Removes row `ord`. Unfrozen: swap-remove; returns the id now at `ord` (moved from the last row)
   * so the caller can update its location, or undefined. Frozen: sets the tombstone.
   */
  remove(ord: number): string | undefined {
    if (this.frozen) {
      if (setBit(this.tombstones, ord)) this.deleted++;
      return undefined;
    }
    const moved = this.store.removeSwapLast(ord);
    const last = this.ids.length - 1;
    let movedId: string | undefined;
    if (moved >= 0) {
      movedId = this.ids[last];
      this.ids[ord] = movedId;
      this.metadataJson[ord] = this.metadataJson[last];
    }
    this.ids.pop();
    this.metadataJson.pop();
    return movedId;
  }

  freeze(): void {
    this.frozen = true;
    this.tombstones = growBitset(new Uint32Array(0), this.count);
  }

  isDeleted(ord: number): boolean { return this.frozen && testBit(this.tombstones, ord); }
  idAt(ord: number): string { return this.ids[ord]; }
  metadataJsonAt(ord: number): string { return this.metadataJson[ord]; }
  vectorAt(ord: number, out?: Float32Array): Float32Array { return this.store.get(ord, out); }

  searchBatch(queries: Float32Array, nq: number, k: number): SearchResultBatch {
    return flatSearch(this.store, this.metric, queries, nq, k, this.deleted > 0 ? this.tombstones : undefined);
  }

  release(): void { this.store.clear(); }
}

/** What a segment file is written from: rows in ordinal order. */
interface SegmentRows {
  number: number;
  dimension: number;
  metric: Metric;
  count: number;
  minSeq: number;
  maxSeq: number;
  /** Raw f32 rows, in ordinal order, as byte chunks (each a whole number of rows); called once per pass. */
  vectorChunks: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
  ids: readonly string[];
  metadataJson: readonly string[];
  /**
   * The collection's index: a compressed spec trains a quantizer and writes a CODES section when
   * the segment has at least `minRows` rows (and what the quantizer needs to train).
   */
  index?: { spec: IndexSpec; kernels: Kernels; minRows: number };
}

/** Most training vectors a segment's quantizer sees (rows sampled with a fixed stride). */
export const MAX_TRAINING_SAMPLE = 16384;
/** Default: segments smaller than this stay exact (a full scan of them is cheap). */
export const MIN_QUANTIZED_ROWS = 256;

/**
 * Writes `seg-<number>.qseg` (VECTORS, NORMS, IDS, METADATA, and CODES for compressed indexes)
 * and syncs it. Returns the file size. `fault` is the crash-test hook, called between sections.
 */
export async function writeSegmentFile(dir: Directory, rows: SegmentRows, fault?: (point: string) => void): Promise<number> {
  const name = segmentFileName(rows.number);
  const w = await SegmentWriter.create(dir, name, {
    number: rows.number, dimension: rows.dimension, metric: rows.metric, count: rows.count, minSeq: rows.minSeq, maxSeq: rows.maxSeq,
  });
  try {
    const norms = new Float32Array(rows.count);
    const d = rows.dimension;
    const quantSpec = rows.index ? quantizerSpecOf(rows.index.spec) : null;
    let quantizer: Quantizer | null = null;
    if (quantSpec && rows.index) {
      quantizer = createQuantizer(quantSpec, { dimension: d, metric: rows.metric === 'l2' ? 'l2' : 'dot', kernels: rows.index.kernels });
      if (rows.count < Math.max(rows.index.minRows, quantizer.minTrainingVectors)) quantizer = null;
    }
    const stride = Math.max(1, Math.ceil(rows.count / MAX_TRAINING_SAMPLE));
    const sample = quantizer ? new Float32Array(Math.ceil(rows.count / stride) * d) : null;
    let sampled = 0;
    let row = 0;
    await w.beginSection(SECTION.VECTORS);
    for await (const chunk of rows.vectorChunks()) {
      const n = chunk.length / (d * 4);
      const f = new Float32Array(chunk.buffer, chunk.byteOffset, n * d);
      for (let i = 0; i < n; i++) {
        let s2 = 0;
        for (let j = 0; j < d; j++) { const x = f[i * d + j]; s2 += x * x; }
        norms[row + i] = Math.sqrt(s2);
        if (sample && (row + i) % stride === 0) {
          sample.set(f.subarray(i * d, (i + 1) * d), sampled * d);
          if (rows.metric === 'cosine') unit(sample, sampled * d, d, norms[row + i]);
          sampled++;
        }
      }
      row += n;
      await w.writeChunk(chunk);
      fault?.('segment:mid-vectors');
    }
    w.endSection();
    if (row !== rows.count) throw new Error(`segment ${rows.number}: wrote ${row} vectors, expected ${rows.count}`);
    if (quantizer && sample) {
      quantizer.train(sample.subarray(0, sampled * d), sampled, { seed: rows.number });
      await writeCodes(w, quantizer, rows, norms);
      fault?.('segment:after-codes');
    }
    await w.section(SECTION.NORMS, [new Uint8Array(norms.buffer)]);
    await w.section(SECTION.IDS, encodeStringColumn(rows.ids));
    fault?.('segment:before-metadata');
    await w.section(SECTION.METADATA, encodeStringColumn(rows.metadataJson));
    return await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/** Lets other work (writes, searches, I/O callbacks) run before continuing. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function unit(v: Float32Array, at: number, d: number, norm: number): void {
  const inv = norm > 0 ? 1 / norm : 0;
  for (let j = 0; j < d; j++) v[at + j] *= inv;
}

/**
 * CODES section layout (little-endian):
 *   u32 version (1), u32 L, L bytes Quantizer.serialize(), u32 fingerprint, u32 codeSize, u32 count,
 *   u8[count * codeSize] row codes (vector i's code at i * codeSize; cosine collections encode unit vectors)
 */
async function writeCodes(w: SegmentWriter, q: Quantizer, rows: SegmentRows, norms: Float32Array): Promise<void> {
  const d = rows.dimension;
  const head = new ByteWriter(256).u32(1).blob(q.serialize()).u32(q.fingerprint).u32(q.codeSize).u32(rows.count).finish();
  await w.beginSection(SECTION.CODES);
  await w.writeChunk(head.slice());
  let row = 0;
  for await (const chunk of rows.vectorChunks()) {
    const n = chunk.length / (d * 4);
    const f = new Float32Array(n * d);
    new Uint8Array(f.buffer).set(chunk);
    if (rows.metric === 'cosine') for (let i = 0; i < n; i++) unit(f, i * d, d, norms[row + i]);
    const codes = new Uint8Array(n * q.codeSize);
    q.encode(f, n, codes);
    await w.writeChunk(codes);
    row += n;
  }
  w.endSection();
}

/**
 * An immutable segment: its file plus what search needs in memory. With the Flat index the
 * vectors are loaded into kernel memory (the scan reads them there). With a compressed index
 * only the codes are (FlatQuantizedIndex); full vectors stay in the file and are read by position
 * to rerank and for get(). Ids and metadata stay as encoded columns, decoded per row on demand.
 */
export class SealedSegment implements Segment, ExactScorer {
  tombstones: Uint32Array;
  deleted: number;
  private readonly rowBuf: Float32Array;
  private readonly rowBytes: Uint8Array;
  private readonly vectorsOffset: number;

  private constructor(
    readonly number: number,
    readonly file: SegmentFile,
    readonly fileName: string,
    readonly count: number,
    readonly dimension: number,
    readonly metric: Metric,
    /** Full vectors in kernel memory (exact segments), or null (compressed: vectors stay in the file). */
    readonly store: VectorStore | null,
    /** The compressed index, or null (exact segments). */
    readonly index: FlatQuantizedIndex | null,
    private readonly rerank: RerankRule | null,
    private readonly norms: Float32Array | null,
    private readonly ids: { value(i: number): string },
    private readonly metadata: { value(i: number): string },
    tombstones: Uint32Array,
    deleted: number,
  ) {
    this.tombstones = tombstones;
    this.deleted = deleted;
    this.rowBuf = new Float32Array(dimension);
    this.rowBytes = new Uint8Array(this.rowBuf.buffer);
    this.vectorsOffset = file.section(SECTION.VECTORS).offset;
  }

  /** Seals a frozen mutable segment whose (exact) file was just written: reuses its memory. */
  static fromFrozen(m: MutableSegment, file: SegmentFile): SealedSegment {
    const ids = m.ids, meta = m.metadataJson;
    return new SealedSegment(m.number, file, file.name, m.count, m.dimension, m.metric, m.store, null, null, null,
      { value: (i) => ids[i] }, { value: (i) => meta[i] }, growBitset(m.tombstones, m.count), m.deleted);
  }

  /** Loads a sealed segment listed in the manifest; CORRUPT_FILE naming the file on any damage. */
  static async load(dir: Directory, entry: ManifestSegment, kernels: Kernels, dimension: number, metric: Metric, spec: IndexSpec): Promise<SealedSegment> {
    const file = await SegmentFile.open(dir, entry.file);
    const where = `${dir.description}/${entry.file}`;
    let store: VectorStore | null = null;
    let index: FlatQuantizedIndex | null = null;
    try {
      const h = file.header;
      if (h.number !== entry.number || h.count !== entry.count || h.dimension !== dimension || h.metric !== metric) {
        throw new QuiverError('CORRUPT_FILE', `${where}: header (segment ${h.number}, ${h.count} rows, ${h.dimension}-d ${h.metric}) disagrees with the manifest (segment ${entry.number}, ${entry.count} rows, ${dimension}-d ${metric})`, {
          file: where, expected: { number: entry.number, count: entry.count, dimension, metric }, received: h,
        });
      }
      if (entry.tombstones.length !== bitsetWords(h.count)) {
        throw new QuiverError('CORRUPT_FILE', `${where}: manifest tombstones do not cover ${h.count} rows`, { file: where });
      }
      const ids = new StringColumn(file.read(SECTION.IDS), h.count, where, 'ids');
      const meta = new StringColumn(file.read(SECTION.METADATA), h.count, where, 'metadata');
      const normBytes = file.read(SECTION.NORMS);
      if (normBytes.length !== h.count * 4) throw new QuiverError('CORRUPT_FILE', `${where}: norms section has ${normBytes.length} bytes, expected ${h.count * 4}`, { file: where });
      const norms = new Float32Array(h.count);
      new Uint8Array(norms.buffer).set(normBytes);
      let rule: RerankRule | null = null;
      if (file.has(SECTION.CODES)) {
        index = readCodes(file.read(SECTION.CODES), where, h.count, kernels);
        rule = rerankRule(spec, index.quantizer.bounded);
      } else {
        // sized to the segment: a small sealed segment must not hold a default 4 MiB chunk
        const defaultRows = new VectorStore(kernels, dimension, false).chunkRows;
        store = new VectorStore(kernels, dimension, metric === 'cosine', Math.max(16, Math.min(defaultRows, Math.ceil(h.count / 16) * 16)));
      }
      // One pass over the vectors, checksummed: read straight into kernel memory when the scan
      // needs them (Flat), else only checked (compressed: reranking trusts them, so check once).
      // In pieces of ~4 MiB with a turn of the event loop between them, so that loading a big
      // merged segment in the background does not stall writes and searches for its whole length.
      const vec = file.section(SECTION.VECTORS);
      const step = Math.max(1, Math.floor((4 << 20) / (dimension * 4)));
      const scratch = store ? null : new Uint8Array(Math.min(h.count, step) * dimension * 4);
      let at = vec.offset, crc = 0;
      const fill = (dest: Uint8Array) => {
        file.file.readInto(at, dest);
        crc = crc32c(dest, crc);
        at += dest.length;
      };
      for (let row = 0; row < h.count; row += step) {
        const take = Math.min(step, h.count - row);
        if (store) store.appendFilled(take, fill, norms.subarray(row, row + take));
        else fill(scratch!.subarray(0, take * dimension * 4));
        if (row + take < h.count) await yieldToEventLoop();
      }
      file.checkCrc(SECTION.VECTORS, crc);
      return new SealedSegment(entry.number, file, entry.file, h.count, dimension, metric, store, index, rule, index ? norms : null,
        ids, meta, entry.tombstones.slice(), entry.deleted);
    } catch (e) {
      store?.clear();
      index?.release();
      await file.close();
      throw e;
    }
  }

  get live(): number { return this.count - this.deleted; }
  get memoryBytes(): number { return this.store ? this.store.bytes : this.index!.bytes + this.norms!.byteLength; }
  get fileBytes(): number { return this.file.size; }
  /** Spec of the quantizer whose codes this segment scans, or null when it scans full vectors. */
  get quantizerSpec(): string | null { return this.index ? this.index.quantizer.spec : null; }

  markDeleted(ord: number): boolean {
    if (!setBit(this.tombstones, ord)) return false;
    this.deleted++;
    return true;
  }

  isDeleted(ord: number): boolean { return testBit(this.tombstones, ord); }
  idAt(ord: number): string { return this.ids.value(ord); }
  metadataJsonAt(ord: number): string { return this.metadata.value(ord); }

  vectorAt(ord: number, out: Float32Array = new Float32Array(this.dimension)): Float32Array {
    if (this.store) return this.store.get(ord, out);
    this.file.file.readInto(this.vectorsOffset + ord * this.dimension * 4, this.rowBytes);
    out.set(this.rowBuf);
    return out;
  }

  /**
   * Rows [from, from + n) as raw f32 bytes: from kernel memory, or one sequential file read
   * (merges stream segments through this rather than reading row by row).
   */
  vectorRange(from: number, n: number): Uint8Array {
    const d = this.dimension;
    const out = new Uint8Array(n * d * 4);
    if (this.store) {
      const f = new Float32Array(out.buffer);
      for (let i = 0; i < n; i++) this.store.get(from + i, f.subarray(i * d, (i + 1) * d));
    } else {
      this.file.file.readInto(this.vectorsOffset + from * d * 4, out);
    }
    return out;
  }

  /** ExactScorer over the file: exact scores of full vectors read by position, for reranking. */
  scoreOrdinals(query: Float32Array, ords: Uint32Array, n: number, out: Float32Array): void {
    const d = this.dimension, v = this.rowBuf;
    for (let i = 0; i < n; i++) {
      const ord = ords[i];
      this.file.file.readInto(this.vectorsOffset + ord * d * 4, this.rowBytes);
      let s = 0;
      if (this.metric === 'l2') {
        for (let j = 0; j < d; j++) { const t = query[j] - v[j]; s += t * t; }
        out[i] = -s;
      } else {
        for (let j = 0; j < d; j++) s += query[j] * v[j];
        out[i] = this.metric === 'cosine' ? s / this.norms![ord] : s;
      }
    }
  }

  searchBatch(queries: Float32Array, nq: number, k: number, reranked?: Uint32Array): SearchResultBatch {
    const deleted = this.deleted > 0 ? this.tombstones : undefined;
    if (this.store) return flatSearch(this.store, this.metric, queries, nq, k, deleted);
    const res = this.index!.searchBatch(queries, nq, k, { deleted, rerank: this.rerank, exact: this });
    if (reranked) for (let q = 0; q < nq; q++) reranked[q] += res.reranked[q];
    return res;
  }

  manifestEntry(): ManifestSegment {
    return { number: this.number, file: this.fileName, count: this.count, deleted: this.deleted, bytes: this.file.size, tombstones: this.tombstones.slice(0, bitsetWords(this.count)) };
  }

  async release(): Promise<void> {
    this.store?.clear();
    this.index?.release();
    await this.file.close();
  }
}

/** Parses a CODES section into a FlatQuantizedIndex (INCOMPATIBLE_CODES / CORRUPT_FILE on mismatch). */
function readCodes(bytes: Uint8Array, where: string, count: number, kernels: Kernels): FlatQuantizedIndex {
  const r = new ByteReader(bytes, where);
  const version = r.u32('codes version');
  if (version !== 1) throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: codes section version ${version} is not supported (read: 1)`, { file: where, expected: 1, received: version });
  const q = deserializeQuantizer(r.blob('quantizer').slice(), kernels, where);
  const fingerprint = r.u32('fingerprint');
  const codeSize = r.u32('code size');
  const n = r.u32('code count');
  if (n !== count || codeSize !== q.codeSize) r.fail(`codes section holds ${n} codes of ${codeSize} bytes, expected ${count} of ${q.codeSize}`);
  const rows = r.bytesView(n * codeSize, 'codes');
  const index = new FlatQuantizedIndex(q, n);
  try {
    index.addCodes(rows, n, { spec: q.spec, fingerprint });
  } catch (e) {
    index.release();
    throw e;
  }
  return index;
}
