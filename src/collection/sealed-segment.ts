import { QuiverError } from '../errors.js';
import { decodeColumn, type ColumnData, type ColumnReader } from '../fields/columns.js';
import { NO_VALUES, type FieldDef, type FieldValue, type FieldValues } from '../fields/types.js';
import { FlatIndex } from '../index/flat.js';
import { searchGathered } from '../index/gathered.js';
import { loadIndex } from '../index/segment-index.js';
import type { IndexSpec } from '../index/spec.js';
import type { ExactScorer, SearchResultBatch, VectorIndex } from '../index/types.js';
import type { Kernels } from '../kernels/types.js';
import type { Directory } from '../storage/directory.js';
import type { ManifestSegment } from '../storage/manifest.js';
import { SECTION, SegmentFile, StringColumn } from '../storage/segment-file.js';
import { bitsetWords, growBitset } from '../util/bitset.js';
import { decodePostings, type FieldPostings } from '../text/postings.js';
import { decodeSparseIndex } from '../sparse/section.js';
import type { SparseIndex, SparseSearcher } from '../sparse/types.js';
import type { MutableSegment } from './mutable-segment.js';
import { SegmentBase, type Segment } from './segment.js';
import type { Metric } from './validate.js';

export interface SealedLoadContext {
  /** Fresh kernels for this segment: its index memory lives and dies with it. */
  kernels: Kernels;
  dimension: number;
  metric: Metric;
  spec: IndexSpec;
  /** The collection's declared fields (to check the segment's columns against). */
  fields: readonly FieldDef[];
  /** Yields to the event loop between pieces of a long load. */
  pause: () => Promise<void>;
}

/**
 * An immutable segment: its file plus what search needs in memory. The index decides what is in
 * memory (segment-index.ts): full vectors for Flat, codes for a compressed spec (full vectors
 * stay in the file and are read by position to rerank and for get()). Ids, metadata and columns
 * stay encoded, decoded per row on demand.
 */
export class SealedSegment extends SegmentBase implements Segment, ExactScorer {
  private readonly rowBuf: Float32Array;
  private readonly rowBytes: Uint8Array;
  private readonly vectorsOffset: number;
  /** Full vectors in kernel memory (exact index), else null (read from the file). */
  private readonly flat: FlatIndex | null;

  private constructor(
    readonly number: number,
    readonly file: SegmentFile,
    readonly fileName: string,
    readonly count: number,
    readonly dimension: number,
    readonly metric: Metric,
    readonly kernels: Kernels,
    readonly index: VectorIndex,
    private readonly norms: Float32Array | null,
    private readonly ids: { value(i: number): string },
    private readonly metadata: { value(i: number): string },
    private readonly fields: RowFields,
    tombstones: Uint32Array,
    deleted: number,
    /** The frozen mutable segment whose memory this one uses (fromFrozen), released with it. */
    private readonly memoryOwner: MutableSegment | null,
  ) {
    super(tombstones, deleted);
    this.rowBuf = new Float32Array(dimension);
    this.rowBytes = new Uint8Array(this.rowBuf.buffer);
    this.vectorsOffset = file.section(SECTION.VECTORS).offset;
    this.flat = index instanceof FlatIndex ? index : null;
  }

  /**
   * Seals a frozen mutable segment whose exact file was just written with the same rows and
   * ordinals: takes over its vectors, kernel memory and row arrays instead of reading them back.
   */
  static fromFrozen(m: MutableSegment, file: SegmentFile): SealedSegment {
    const ids = m.ids, meta = m.metadataJson;
    // the vectors stay m's: the sealed segment holds a reference to m, released when it is freed
    m.retain();
    const fields: RowFields = {
      has: (name) => m.hasField(name), valuesAt: (i) => m.fieldValuesAt(i), data: () => null, bytes: 0,
      text: (name) => m.textPostings(name), sparse: (name) => m.sparseSearcher(name), release: () => {},
    };
    return new SealedSegment(m.number, file, file.name, m.count, m.dimension, m.metric, m.kernels, m.index, null,
      { value: (i) => ids[i] }, { value: (i) => meta[i] }, fields, growBitset(m.tombstones, m.count).slice(), m.deleted, m);
  }

  /** Loads a sealed segment listed in the manifest; CORRUPT_FILE naming the file on any damage. */
  static async load(dir: Directory, entry: ManifestSegment, ctx: SealedLoadContext): Promise<SealedSegment> {
    const file = await SegmentFile.open(dir, entry.file);
    const where = `${dir.description}/${entry.file}`;
    const { dimension, metric } = ctx;
    let index: VectorIndex | null = null;
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
      const columns = readColumns(file, where, h.count, ctx.fields, ctx.kernels);
      const normBytes = file.read(SECTION.NORMS);
      if (normBytes.length !== h.count * 4) throw new QuiverError('CORRUPT_FILE', `${where}: norms section has ${normBytes.length} bytes, expected ${h.count * 4}`, { file: where });
      const norms = new Float32Array(h.count);
      new Uint8Array(norms.buffer).set(normBytes);
      // the segment is the index's ExactScorer, but it exists only after the index: a forwarder
      let self: SealedSegment | null = null;
      const exact: ExactScorer = { scoreOrdinals: (q, o, n, out) => self!.scoreOrdinals(q, o, n, out) };
      index = await loadIndex(file, where, { spec: ctx.spec, kernels: ctx.kernels, dimension, metric, norms, exact, pause: ctx.pause });
      self = new SealedSegment(entry.number, file, entry.file, h.count, dimension, metric, ctx.kernels, index, index instanceof FlatIndex ? null : norms,
        ids, meta, columnFields(columns), entry.tombstones.slice(), entry.deleted, null);
      return self;
    } catch (e) {
      index?.release();
      await file.close();
      throw e;
    }
  }

  get live(): number { return this.count - this.deleted; }
  get memoryBytes(): number {
    return this.index.memoryBytes + (this.norms ? this.norms.byteLength : 0) + this.fields.bytes;
  }
  get fileBytes(): number { return this.file.size; }

  /** Takes the manifest's tombstones (a copy) for this segment's rows, replacing its own. */
  setTombstones(bits: Uint32Array, deleted: number): void {
    this.bits = growBitset(bits, this.count).slice();
    this.deleted = deleted;
  }

  idAt(ord: number): string { return this.ids.value(ord); }
  metadataJsonAt(ord: number): string { return this.metadata.value(ord); }
  hasField(name: string): boolean { return this.fields.has(name); }
  fieldValuesAt(ord: number): FieldValues { return this.fields.valuesAt(ord); }
  columnData(name: string): ColumnData | null { return this.fields.data(name); }
  textPostings(name: string): FieldPostings | null { return this.fields.text(name); }
  sparseSearcher(name: string): SparseSearcher | null { return this.fields.sparse(name); }

  vectorAt(ord: number, out: Float32Array = new Float32Array(this.dimension)): Float32Array {
    if (this.flat) return this.flat.store.get(ord, out);
    this.file.file.readInto(this.vectorsOffset + ord * this.dimension * 4, this.rowBytes);
    out.set(this.rowBuf);
    return out;
  }

  /**
   * Rows [from, from + n) as raw f32 bytes: from kernel memory, or one sequential file read
   * (merges stream segments through this rather than reading row by row).
   */
  vectorRange(from: number, n: number, into?: Uint8Array): Uint8Array {
    const d = this.dimension;
    const out = into ? into.subarray(0, n * d * 4) : new Uint8Array(n * d * 4);
    if (this.flat) {
      this.flat.store.readRange(from, n, new Float32Array(out.buffer, out.byteOffset, n * d));
    } else {
      this.file.file.readInto(this.vectorsOffset + from * d * 4, out);
    }
    return out;
  }

  /**
   * Exact top-k among rows `ords` (increasing): gathered from kernel memory (exact index) or read
   * from the file, one read per run of consecutive rows, straight into kernel memory.
   */
  searchRows(queries: Float32Array, nq: number, k: number, ords: Uint32Array, n: number): SearchResultBatch {
    if (this.flat) {
      const store = this.flat.store;
      return searchGathered(this.kernels, this.dimension, this.metric, queries, nq, k, ords, n, (vec, inv, from, m) => store.gather(ords, from, m, vec, inv));
    }
    const rowBytes = this.dimension * 4, file = this.file.file, base = this.vectorsOffset, norms = this.norms;
    const mem = this.kernels.memory;
    return searchGathered(this.kernels, this.dimension, this.metric, queries, nq, k, ords, n, (vec, inv, from, m) => {
      for (let i = 0; i < m;) {
        let run = 1;
        while (i + run < m && ords[from + i + run] === ords[from + i] + run) run++;
        file.readInto(base + ords[from + i] * rowBytes, mem.u8(vec + i * rowBytes, run * rowBytes));
        i += run;
      }
      if (inv) {
        const out = mem.f32(inv, m);
        for (let i = 0; i < m; i++) { const nv = norms![ords[from + i]]; out[i] = nv > 0 ? 1 / nv : 0; }
      }
    });
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

  manifestEntry(): ManifestSegment {
    return { number: this.number, file: this.fileName, count: this.count, deleted: this.deleted, bytes: this.file.size, tombstones: this.bits.slice(0, bitsetWords(this.count)) };
  }

  protected free(): void {
    this.fields.release();
    if (this.memoryOwner) this.memoryOwner.release();
    else this.index.release();
    void this.file.close();
  }
}

/** Declared field values of a sealed segment's rows. */
interface RowFields {
  has(name: string): boolean;
  valuesAt(ord: number): FieldValues;
  /** The decoded column of a field, or null. */
  data(name: string): ColumnData | null;
  /** Bytes held in memory. */
  readonly bytes: number;
  text(name: string): FieldPostings | null;
  sparse(name: string): SparseSearcher | null;
  /** Frees what the fields hold outside the JS heap (sparse indexes in kernel memory). */
  release(): void;
}

/** A segment's declared fields as read from its file. */
interface SegmentFields {
  columns: Map<string, ColumnReader>;
  postings: Map<string, FieldPostings>;
  sparse: Map<string, SparseIndex>;
}

function columnFields(fields: SegmentFields | null): RowFields {
  if (!fields || fields.columns.size === 0) return { has: () => false, valuesAt: () => NO_VALUES, data: () => null, bytes: 0, text: () => null, sparse: () => null, release: () => {} };
  const { columns, postings, sparse } = fields;
  const list = [...columns];
  return {
    has: (name) => columns.has(name),
    text: (name) => postings.get(name) ?? null,
    sparse: (name) => sparse.get(name) ?? null,
    release: () => { for (const s of sparse.values()) s.release(); },
    data: (name) => columns.get(name)?.data ?? null,
    valuesAt: (ord) => {
      let out: Record<string, FieldValue> | null = null;
      for (const [name, col] of list) {
        const v = col.value(ord);
        if (v === undefined) continue;
        out ??= Object.create(null) as Record<string, FieldValue>;
        out[name] = v;
      }
      return out ?? NO_VALUES;
    },
    bytes: list.reduce((a, [, c]) => a + c.bytes, 0) + [...postings.values()].reduce((a, p) => a + p.bytes, 0),
  };
}

/**
 * Reads the FIELDS section and each field's COLUMN (text fields: and POSTINGS; sparse fields:
 * their SPARSE section, which is also their column), keyed by field name; null when the segment
 * has none.
 */
function readColumns(file: SegmentFile, where: string, count: number, schemaFields: readonly FieldDef[], kernels: Kernels): SegmentFields | null {
  if (!file.has(SECTION.FIELDS)) {
    if (file.fieldsWith(SECTION.COLUMN).length) throw new QuiverError('CORRUPT_FILE', `${where}: column sections without a FIELDS section`, { file: where });
    return null;
  }
  let listed: { id: number; name: string; type: string }[];
  try {
    listed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.read(SECTION.FIELDS)));
    if (!Array.isArray(listed)) throw new Error('not a list');
  } catch (e) {
    throw new QuiverError('CORRUPT_FILE', `${where}: FIELDS section does not parse (${(e as Error).message})`, { file: where }, { cause: e });
  }
  const out: SegmentFields = { columns: new Map(), postings: new Map(), sparse: new Map() };
  try {
    for (const f of listed) {
      const declared = schemaFields.find((s) => s.id === f?.id);
      if (!declared || declared.name !== f.name || declared.type !== f.type) {
        throw new QuiverError('CORRUPT_FILE', `${where}: field ${JSON.stringify(f)} does not match the collection's schema`, { file: where, received: f, expected: declared ?? null });
      }
      if (declared.type === 'sparse') {
        const index = decodeSparseIndex(file.read(SECTION.SPARSE, f.id), count, where, kernels);
        out.sparse.set(f.name, index);
        out.columns.set(f.name, { type: 'sparse', data: { type: 'sparse' }, bytes: index.memoryBytes, value: (i) => index.vectorAt(i) });
        continue;
      }
      const col = decodeColumn(file.read(SECTION.COLUMN, f.id), count, where, f.name);
      if (col.type !== declared.type) throw new QuiverError('CORRUPT_FILE', `${where}: column "${f.name}" holds ${col.type} values, the schema says ${declared.type}`, { file: where });
      out.columns.set(f.name, col);
      if (declared.type === 'text') out.postings.set(f.name, decodePostings(file.read(SECTION.POSTINGS, f.id), count, where, f.name));
    }
  } catch (e) {
    for (const s of out.sparse.values()) s.release();
    throw e;
  }
  return out;
}
