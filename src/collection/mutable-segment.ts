import type { ColumnData } from '../fields/columns.js';
import { NO_VALUES, type FieldDef, type FieldValues, type SparseValue } from '../fields/types.js';
import { MutableSparsePostings } from '../sparse/mutable.js';
import { getAnalyzer, type Analyzer } from '../text/analyzer.js';
import { MutableFieldPostings } from '../text/mutable-postings.js';
import type { FieldPostings } from '../text/postings.js';
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
  private readonly fieldNames = new Set<string>();
  /** Text fields: their analyzer and postings, grown as rows arrive. */
  private readonly texts = new Map<string, { analyzer: Analyzer; postings: MutableFieldPostings }>();
  /** Sparse fields: exact in-memory postings. */
  private readonly sparse = new Map<string, MutableSparsePostings>();

  /** `maxRows`: rows expected before sealing (sizes the memory chunks; Infinity for default chunks). */
  constructor(readonly number: number, readonly kernels: Kernels, readonly dimension: number, readonly metric: Metric, fields: Iterable<FieldDef>, maxRows = Infinity) {
    super(new Uint32Array(0), 0);
    const defaultRows = new VectorStore(kernels, dimension, false).chunkRows;
    this.store = new VectorStore(kernels, dimension, metric === 'cosine', maxRows < defaultRows ? Math.max(16, Math.ceil(maxRows / 16) * 16) : undefined);
    this.index = new FlatIndex(this.store, metric);
    for (const f of fields) this.addField(f);
  }

  get count(): number { return this.ids.length; }
  get live(): number { return this.ids.length - this.deleted; }
  get memoryBytes(): number {
    let b = this.store.bytes;
    for (const t of this.texts.values()) b += t.postings.bytes;
    for (const sp of this.sparse.values()) b += sp.bytes;
    return b;
  }
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
    this.indexRow(ord, values);
    return ord;
  }

  private indexRow(ord: number, values: FieldValues): void {
    for (const [name, t] of this.texts) {
      const v = values[name];
      t.postings.add(ord, typeof v === 'string' ? t.analyzer.analyze(v) : null);
    }
    for (const [name, sp] of this.sparse) sp.add(ord, values[name] as SparseValue | undefined);
  }

  /** Rewrites a row's metadata in place (adopting a newly declared field; not for user writes). */
  setMetadata(ord: number, metadataJson: string, values: FieldValues): void {
    this.metadataJson[ord] = metadataJson;
    this.values[ord] = values;
  }

  /**
   * Starts holding declared field `def`: text and sparse fields index the rows already here
   * (whose values the caller adopted from their JSON first).
   */
  addField(def: FieldDef): void {
    if (this.fieldNames.has(def.name)) return;
    this.fieldNames.add(def.name);
    if (def.type === 'text') {
      const t = { analyzer: getAnalyzer(def.analyzer ?? 'english'), postings: new MutableFieldPostings() };
      for (let ord = 0; ord < this.count; ord++) {
        const v = this.values[ord]?.[def.name];
        t.postings.add(ord, typeof v === 'string' ? t.analyzer.analyze(v) : null);
      }
      this.texts.set(def.name, t);
    } else if (def.type === 'sparse') {
      const sp = new MutableSparsePostings();
      for (let ord = 0; ord < this.count; ord++) sp.add(ord, this.values[ord]?.[def.name] as SparseValue | undefined);
      this.sparse.set(def.name, sp);
    }
  }
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
  textPostings(field: string): FieldPostings | null { return this.texts.get(field)?.postings ?? null; }
  /** The in-memory postings of a text field (what a seal writes), or undefined. */
  mutableTextPostings(field: string): MutableFieldPostings | undefined { return this.texts.get(field)?.postings; }
  sparseSearcher(field: string): MutableSparsePostings | null { return this.sparse.get(field) ?? null; }

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
