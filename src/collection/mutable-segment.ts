import type { ColumnData } from '../fields/columns.js';
import { NO_VALUES, type FieldValues } from '../fields/types.js';
import { FlatIndex } from '../index/flat.js';
import { searchGathered } from '../index/gathered.js';
import type { SearchResultBatch } from '../index/types.js';
import { VectorStore } from '../index/vector-store.js';
import type { Kernels } from '../kernels/types.js';
import { growBitset } from '../util/bitset.js';
import { SegmentBase, type Segment } from './segment.js';
import type { Metric } from './validate.js';

/**
 * The segment that takes writes: rows appended in memory (replayable from the WAL), searched
 * exactly. Ordinals are stable: a delete or a replacement sets a tombstone and never moves a
 * row, so structures that keep ordinals (graphs, postings) stay valid. Frozen for sealing, it
 * takes no more appends; deletes still set tombstones, which the sealed segment inherits.
 * Its vectors live in its own kernel memory, given back to the process when it is released.
 */
export class MutableSegment extends SegmentBase implements Segment {
  readonly store: VectorStore;
  readonly index: FlatIndex;
  readonly ids: string[] = [];
  readonly metadataJson: string[] = [];
  readonly values: FieldValues[] = [];
  frozen = false;
  minSeq = 0;
  maxSeq = 0;
  /** Declared fields this segment holds columns for (all fields declared while it was mutable). */
  private readonly fieldNames: Set<string>;

  /** `maxRows`: rows expected before sealing (sizes the memory chunks; Infinity for default chunks). */
  constructor(readonly number: number, readonly kernels: Kernels, readonly dimension: number, readonly metric: Metric, fields: Iterable<string>, maxRows = Infinity) {
    super(new Uint32Array(0), 0);
    const defaultRows = new VectorStore(kernels, dimension, false).chunkRows;
    this.store = new VectorStore(kernels, dimension, metric === 'cosine', maxRows < defaultRows ? Math.max(16, Math.ceil(maxRows / 16) * 16) : undefined);
    this.index = new FlatIndex(this.store, metric);
    this.fieldNames = new Set(fields);
  }

  get count(): number { return this.ids.length; }
  get live(): number { return this.ids.length - this.deleted; }
  get memoryBytes(): number { return this.store.bytes; }
  get fileBytes(): number { return 0; }

  noteSeq(seq: number): void {
    if (this.minSeq === 0) this.minSeq = seq;
    this.maxSeq = Math.max(this.maxSeq, seq);
  }

  /** Appends a row; returns its ordinal. */
  append(id: string, vector: Float32Array, invNorm: number, metadataJson: string, values: FieldValues): number {
    if (this.frozen) throw new Error('append to a frozen segment');
    const ord = this.store.append(vector, invNorm);
    this.ids[ord] = id;
    this.metadataJson[ord] = metadataJson;
    this.values[ord] = values;
    if ((ord >>> 5) >= this.bits.length) this.bits = growBitset(this.bits, ord + 1);
    return ord;
  }

  /** Rewrites a row's metadata in place (adopting a newly declared field; not for user writes). */
  setMetadata(ord: number, metadataJson: string, values: FieldValues): void {
    this.metadataJson[ord] = metadataJson;
    this.values[ord] = values;
  }

  addField(name: string): void { this.fieldNames.add(name); }
  hasField(name: string): boolean { return this.fieldNames.has(name); }

  freeze(): void {
    this.frozen = true;
    this.bits = growBitset(this.bits, this.count);
  }

  idAt(ord: number): string { return this.ids[ord]; }
  metadataJsonAt(ord: number): string { return this.metadataJson[ord]; }
  fieldValuesAt(ord: number): FieldValues { return this.values[ord] ?? NO_VALUES; }
  vectorAt(ord: number, out?: Float32Array): Float32Array { return this.store.get(ord, out); }
  /** Rows change as they arrive: no decoded columns (filters read fieldValuesAt). */
  columnData(): ColumnData | null { return null; }

  searchRows(queries: Float32Array, nq: number, k: number, ords: Uint32Array, n: number): SearchResultBatch {
    const store = this.store;
    return searchGathered(this.kernels, this.dimension, this.metric, queries, nq, k, ords, n, (vec, inv, from, m) => store.gather(ords, from, m, vec, inv));
  }

  vectorRange(from: number, n: number, out: Uint8Array = new Uint8Array(n * this.dimension * 4)): Uint8Array {
    const d = this.dimension;
    this.store.readRange(from, n, new Float32Array(out.buffer, out.byteOffset, n * d));
    return out.subarray(0, n * d * 4);
  }

  protected free(): void { this.store.clear(); }
}
