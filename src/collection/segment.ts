import type { ColumnData } from '../fields/columns.js';
import type { FieldValues } from '../fields/types.js';
import type { SearchResultBatch, VectorIndex } from '../index/types.js';
import type { Kernels } from '../kernels/types.js';
import { setBit, testBit } from '../util/bitset.js';
import type { FieldPostings } from '../text/postings.js';
import type { SparseSearcher } from '../sparse/types.js';

/**
 * What the engine and searches need of a segment: the mutable segment that takes new writes
 * (mutable-segment.ts) or a sealed one loaded from its file (sealed-segment.ts).
 *
 * Rows are addressed by ordinals 0..count-1 that never change for the life of the segment;
 * deletes and replacements set tombstones (bit i set = row i deleted).
 *
 * Lifetime: a segment is reference counted. The engine holds one reference while the segment
 * is part of the collection; every search snapshot holds one while it reads. When a seal or
 * merge replaces a segment, the engine drops its reference, and the segment frees its memory
 * (its own kernel memory, so the process gets it back) and closes its file when the last
 * snapshot is done with it.
 */
export interface Segment {
  readonly number: number;
  /** Rows, including deleted ones. */
  readonly count: number;
  /** Rows not deleted. */
  readonly live: number;
  readonly deleted: number;
  /** Deleted rows as a bitset (at least ceil(count / 32) words). */
  readonly tombstones: Uint32Array;
  /** The kernels (and kernel memory) this segment's vectors or codes live in. */
  readonly kernels: Kernels;
  /** The vector index searched for this segment. */
  readonly index: VectorIndex;
  idAt(ord: number): string;
  /** Undeclared metadata of a row as JSON text ('' = none). */
  metadataJsonAt(ord: number): string;
  /** Declared field values of a row that this segment stores as columns. */
  fieldValuesAt(ord: number): FieldValues;
  /** Whether the segment stores declared field `name` as a column (else its values may still be in the JSON). */
  hasField(name: string): boolean;
  /**
   * The decoded column of declared field `name` when the segment holds one in that form (sealed
   * segments read from a file); null otherwise (the mutable segment: per-row values, see
   * fieldValuesAt; filters build their own arrays from them, src/filter/rows.ts).
   */
  columnData(name: string): ColumnData | null;
  /** BM25 postings of text field `name`, or null when the segment has none (field declared after it was written). */
  textPostings(name: string): FieldPostings | null;
  /** The index of sparse field `name`, or null when the segment has none. */
  sparseSearcher(name: string): SparseSearcher | null;
  /**
   * Exact top-k among the given rows for each query (a filtered search's exact path): full
   * vectors gathered from kernel memory or read from the file, scored with the scan kernels.
   * queries: f32[nq * dimension], prepared (unit for cosine); ords: u32[n] row ordinals in
   * increasing order; results are ordinals of this segment, best first, k = min(k, n).
   */
  searchRows(queries: Float32Array, nq: number, k: number, ords: Uint32Array, n: number): SearchResultBatch;
  /** The stored vector of a row (a copy). */
  vectorAt(ord: number, out?: Float32Array): Float32Array;
  /** Rows [from, from + n) as raw f32 bytes, read sequentially into `out` (at least n * dimension * 4 bytes) or a new array. */
  vectorRange(from: number, n: number, out?: Uint8Array): Uint8Array;
  isDeleted(ord: number): boolean;
  /** Sets a tombstone; true if the row was live. */
  markDeleted(ord: number): boolean;
  /** Bytes held in memory for search (vectors or codes, columns). */
  readonly memoryBytes: number;
  /** Bytes of its file (0 for the mutable segment). */
  readonly fileBytes: number;
  retain(): this;
  release(): void;
  /** False once the last reference is gone. */
  readonly alive: boolean;
}

/** Reference counting and tombstones shared by both kinds of segment. */
export abstract class SegmentBase {
  private refs = 1;
  deleted: number;
  protected bits: Uint32Array;

  protected constructor(tombstones: Uint32Array, deleted: number) {
    this.bits = tombstones;
    this.deleted = deleted;
  }

  get tombstones(): Uint32Array { return this.bits; }
  get alive(): boolean { return this.refs > 0; }

  isDeleted(ord: number): boolean { return testBit(this.bits, ord); }

  markDeleted(ord: number): boolean {
    if (!setBit(this.bits, ord)) return false;
    this.deleted++;
    return true;
  }

  retain(): this {
    if (this.refs <= 0) throw new Error('retain of a released segment');
    this.refs++;
    return this;
  }

  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) this.free();
  }

  /** Frees memory and closes files; called once, when the last reference is released. */
  protected abstract free(): void;
}
