import { QuiverError } from '../errors.js';
import { flatSearch } from '../index/flat.js';
import type { SearchResultBatch } from '../index/types.js';
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
  /** Top-k of live rows for nq prepared queries (f32[nq * dimension]). */
  searchBatch(queries: Float32Array, nq: number, k: number): SearchResultBatch;
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

/** Options for writing a segment file from rows held in memory. */
interface SegmentRows {
  number: number;
  dimension: number;
  metric: Metric;
  count: number;
  minSeq: number;
  maxSeq: number;
  /** Raw f32 rows, in ordinal order, as byte chunks (each a whole number of rows). */
  vectorChunks: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
  ids: readonly string[];
  metadataJson: readonly string[];
}

/**
 * Writes `seg-<number>.qseg` (VECTORS, NORMS, IDS, METADATA) and syncs it. Returns the file size.
 * `fault` is the crash-test hook, called between sections.
 */
export async function writeSegmentFile(dir: Directory, rows: SegmentRows, fault?: (point: string) => void): Promise<number> {
  const name = segmentFileName(rows.number);
  const w = await SegmentWriter.create(dir, name, {
    number: rows.number, dimension: rows.dimension, metric: rows.metric, count: rows.count, minSeq: rows.minSeq, maxSeq: rows.maxSeq,
  });
  try {
    const norms = new Float32Array(rows.count);
    const d = rows.dimension;
    let row = 0;
    await w.beginSection(SECTION.VECTORS);
    for await (const chunk of rows.vectorChunks()) {
      const n = chunk.length / (d * 4);
      const f = new Float32Array(chunk.buffer, chunk.byteOffset, n * d);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) { const x = f[i * d + j]; s += x * x; }
        norms[row + i] = Math.sqrt(s);
      }
      row += n;
      await w.writeChunk(chunk);
      fault?.('segment:mid-vectors');
    }
    w.endSection();
    if (row !== rows.count) throw new Error(`segment ${rows.number}: wrote ${row} vectors, expected ${rows.count}`);
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

/**
 * An immutable segment: its file plus what search needs in memory. For the Flat index the
 * vectors are loaded into kernel memory (the scan reads them there); ids and metadata stay as
 * encoded columns and are decoded per row on demand.
 */
export class SealedSegment implements Segment {
  tombstones: Uint32Array;
  deleted: number;

  private constructor(
    readonly number: number,
    readonly file: SegmentFile,
    readonly fileName: string,
    readonly count: number,
    readonly dimension: number,
    readonly metric: Metric,
    readonly store: VectorStore,
    private readonly ids: { value(i: number): string },
    private readonly metadata: { value(i: number): string },
    tombstones: Uint32Array,
    deleted: number,
  ) {
    this.tombstones = tombstones;
    this.deleted = deleted;
  }

  /** Seals a frozen mutable segment whose file was just written: reuses its memory (no reload). */
  static fromFrozen(m: MutableSegment, file: SegmentFile): SealedSegment {
    const ids = m.ids, meta = m.metadataJson;
    return new SealedSegment(m.number, file, file.name, m.count, m.dimension, m.metric, m.store,
      { value: (i) => ids[i] }, { value: (i) => meta[i] }, growBitset(m.tombstones, m.count), m.deleted);
  }

  /** Loads a sealed segment listed in the manifest; CORRUPT_FILE naming the file on any damage. */
  static async load(dir: Directory, entry: ManifestSegment, kernels: Kernels, dimension: number, metric: Metric): Promise<SealedSegment> {
    const file = await SegmentFile.open(dir, entry.file);
    const where = `${dir.description}/${entry.file}`;
    // sized to the segment: a small sealed segment must not hold a default 4 MiB chunk
    const defaultRows = new VectorStore(kernels, dimension, false).chunkRows;
    const store = new VectorStore(kernels, dimension, metric === 'cosine', Math.max(16, Math.min(defaultRows, Math.ceil(file.header.count / 16) * 16)));
    try {
      const h = file.header;
      if (h.number !== entry.number || h.count !== entry.count || h.dimension !== dimension || h.metric !== metric) {
        throw new QuiverError('CORRUPT_FILE', `${where}: header (segment ${h.number}, ${h.count} rows, ${h.dimension}-d ${h.metric}) disagrees with the manifest (segment ${entry.number}, ${entry.count} rows, ${dimension}-d ${metric})`, {
          file: where, expected: { number: entry.number, count: entry.count, dimension, metric }, received: h,
        });
      }
      const ids = new StringColumn(file.read(SECTION.IDS), h.count, where, 'ids');
      const meta = new StringColumn(file.read(SECTION.METADATA), h.count, where, 'metadata');
      const normBytes = file.read(SECTION.NORMS);
      if (normBytes.length !== h.count * 4) throw new QuiverError('CORRUPT_FILE', `${where}: norms section has ${normBytes.length} bytes, expected ${h.count * 4}`, { file: where });
      const norms = new Float32Array(h.count);
      new Uint8Array(norms.buffer).set(normBytes);
      const rowBytes = dimension * 4;
      let loaded = 0;
      file.readChunked(SECTION.VECTORS, Math.max(rowBytes, Math.floor((4 << 20) / rowBytes) * rowBytes), (bytes) => {
        const n = bytes.length / rowBytes;
        store.appendRaw(bytes, n, norms.subarray(loaded, loaded + n));
        loaded += n;
      });
      if (entry.tombstones.length !== bitsetWords(h.count)) {
        throw new QuiverError('CORRUPT_FILE', `${where}: manifest tombstones do not cover ${h.count} rows`, { file: where });
      }
      return new SealedSegment(entry.number, file, entry.file, h.count, dimension, metric, store, ids, meta, entry.tombstones.slice(), entry.deleted);
    } catch (e) {
      store.clear();
      await file.close();
      throw e;
    }
  }

  get live(): number { return this.count - this.deleted; }
  get memoryBytes(): number { return this.store.bytes; }
  get fileBytes(): number { return this.file.size; }

  markDeleted(ord: number): boolean {
    if (!setBit(this.tombstones, ord)) return false;
    this.deleted++;
    return true;
  }

  isDeleted(ord: number): boolean { return testBit(this.tombstones, ord); }
  idAt(ord: number): string { return this.ids.value(ord); }
  metadataJsonAt(ord: number): string { return this.metadata.value(ord); }
  vectorAt(ord: number, out?: Float32Array): Float32Array { return this.store.get(ord, out); }

  searchBatch(queries: Float32Array, nq: number, k: number): SearchResultBatch {
    return flatSearch(this.store, this.metric, queries, nq, k, this.deleted > 0 ? this.tombstones : undefined);
  }

  manifestEntry(): ManifestSegment {
    return { number: this.number, file: this.fileName, count: this.count, deleted: this.deleted, bytes: this.file.size, tombstones: this.tombstones.slice(0, bitsetWords(this.count)) };
  }

  async release(): Promise<void> {
    this.store.clear();
    await this.file.close();
  }
}
