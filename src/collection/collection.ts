import { checkPositiveInt, QuiverError } from '../errors.js';
import { createKernels, type KernelChoice } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { flatSearch } from '../index/flat.js';
import type { SearchResultBatch } from '../index/types.js';
import { VectorStore } from '../index/vector-store.js';
import { checkId, checkMetadata, describe, METRICS, norm, toVector, type Metric, type VectorLike } from './validate.js';

export interface CollectionSchema {
  /** Vector dimension, 1..65536. */
  dimension: number;
  /** Similarity: 'cosine' (default), 'dot' (inner product) or 'l2' (Euclidean). */
  metric?: Metric;
  /** Index spec; 'Flat' (exact scan) for now. Compressed specs arrive with the quantizers. */
  index?: string;
}

export interface CollectionOptions {
  /** Kernel implementation: 'auto' (WASM SIMD when available), 'wasm' or 'js'. */
  kernels?: KernelChoice;
}

export interface UpsertRecord {
  id: string;
  vector: VectorLike;
  metadata?: Record<string, unknown>;
}

export interface StoredRecord {
  id: string;
  vector: Float32Array;
  metadata: Record<string, unknown> | undefined;
}

export interface SearchOptions {
  /** Number of neighbours, default 10. */
  k?: number;
  /** Include each hit's metadata (default true). */
  includeMetadata?: boolean;
  /** Include each hit's stored vector (default false). */
  includeVector?: boolean;
}

export interface Hit {
  id: string;
  /** Larger is closer: cosine similarity, inner product, or minus the squared L2 distance. */
  score: number;
  metadata?: Record<string, unknown>;
  vector?: Float32Array;
}

export interface CollectionStats {
  count: number;
  dimension: number;
  metric: Metric;
  index: string;
  kernels: Kernels['name'];
  /** Bytes of full-precision vectors (count * dimension * 4). */
  vectorBytes: number;
  /** Bytes the index holds in kernel memory (allocated chunks, including slack). */
  indexBytes: number;
}

const SEARCH_OPTION_KEYS = new Set(['k', 'includeMetadata', 'includeVector']);
const SCHEMA_KEYS = new Set(['dimension', 'metric', 'index']);

/**
 * A collection of vectors with string ids and JSON metadata, searched by similarity.
 * This is the in-memory engine; durable storage wraps it (quiverdb/node).
 *
 * Writes are all-or-nothing per call: a batch with one bad record changes nothing.
 */
export class Collection {
  readonly dimension: number;
  readonly metric: Metric;
  readonly index: string;
  private readonly kernels: Kernels;
  private readonly store: VectorStore;
  private readonly ordOf = new Map<string, number>();
  private ids: string[] = [];
  private meta: (Record<string, unknown> | undefined)[] = [];
  private closed = false;

  private constructor(schema: Required<CollectionSchema>, kernels: Kernels) {
    this.dimension = schema.dimension;
    this.metric = schema.metric;
    this.index = schema.index;
    this.kernels = kernels;
    this.store = new VectorStore(kernels, this.dimension, this.metric === 'cosine');
  }

  /** Creates an empty in-memory collection. Throws INVALID_ARGUMENT for a bad schema. */
  static create(schema: CollectionSchema, options: CollectionOptions = {}): Collection {
    return new Collection(normalizeSchema(schema), createKernels(options.kernels ?? 'auto'));
  }

  get size(): number { return this.ids.length; }

  /** The schema, as normalised at creation. */
  get schema(): Required<CollectionSchema> {
    return { dimension: this.dimension, metric: this.metric, index: this.index };
  }

  has(id: string): boolean { return this.ordOf.has(id); }

  /**
   * Inserts or replaces records (a record with an existing id replaces it). Within one batch a
   * later record with the same id wins. Validates the whole batch before changing anything.
   */
  async upsert(records: readonly UpsertRecord[]): Promise<void> {
    this.upsertSync(records);
  }

  /** Synchronous form of upsert (in-memory engine only). */
  upsertSync(records: readonly UpsertRecord[]): void {
    this.checkOpen();
    if (!Array.isArray(records)) {
      throw new QuiverError('INVALID_ARGUMENT', `upsert expects an array of records, got ${describe(records)}`, { expected: 'array', received: describe(records) });
    }
    const prepared: { id: string; vector: Float32Array; invNorm: number; metadata: Record<string, unknown> | undefined }[] = [];
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as unknown;
      if (typeof r !== 'object' || r === null) {
        throw new QuiverError('INVALID_ARGUMENT', `record ${i} must be an object {id, vector, metadata?}, got ${describe(r)}`, { index: i });
      }
      const rec = r as Record<string, unknown>;
      for (const key of Object.keys(rec)) {
        if (key !== 'id' && key !== 'vector' && key !== 'metadata') {
          throw new QuiverError('INVALID_ARGUMENT', `record ${i} has unknown field "${key}" (allowed: id, vector, metadata)`, { index: i, field: key });
        }
      }
      const id = checkId(rec.id, { index: i });
      const where = { index: i, id };
      const vector = toVector(rec.vector, this.dimension, where);
      let invNorm = 1;
      if (this.metric === 'cosine') {
        const nv = norm(vector);
        if (nv === 0) throw new QuiverError('INVALID_VECTOR', `record "${id}" has a zero vector, which has no direction for cosine similarity`, where);
        invNorm = 1 / nv;
      }
      prepared.push({ id, vector, invNorm, metadata: checkMetadata(rec.metadata, where) });
    }
    for (const p of prepared) {
      const existing = this.ordOf.get(p.id);
      const meta = p.metadata === undefined ? undefined : structuredClone(p.metadata);
      if (existing !== undefined) {
        this.store.set(existing, p.vector, p.invNorm);
        this.meta[existing] = meta;
      } else {
        const ord = this.store.append(p.vector, p.invNorm);
        this.ordOf.set(p.id, ord);
        this.ids[ord] = p.id;
        this.meta[ord] = meta;
      }
    }
  }

  /** Deletes records by id; ids not present are ignored. Resolves to the number deleted. */
  async delete(ids: readonly string[]): Promise<number> {
    return this.deleteSync(ids);
  }

  deleteSync(ids: readonly string[]): number {
    this.checkOpen();
    if (!Array.isArray(ids)) throw new QuiverError('INVALID_ARGUMENT', `delete expects an array of ids, got ${describe(ids)}`, { received: describe(ids) });
    ids.forEach((id, i) => checkId(id, { index: i }));
    let deleted = 0;
    for (const id of ids) {
      const ord = this.ordOf.get(id);
      if (ord === undefined) continue;
      this.ordOf.delete(id);
      const moved = this.store.removeSwapLast(ord);
      if (moved >= 0) {
        const movedId = this.ids[moved];
        this.ids[ord] = movedId;
        this.meta[ord] = this.meta[moved];
        this.ordOf.set(movedId, ord);
      }
      this.ids.pop();
      this.meta.pop();
      deleted++;
    }
    return deleted;
  }

  /** The stored record (a copy). Throws NOT_FOUND when the id is absent. */
  get(id: string): StoredRecord {
    this.checkOpen();
    checkId(id, {});
    const ord = this.ordOf.get(id);
    if (ord === undefined) throw new QuiverError('NOT_FOUND', `no record with id "${id}"`, { id });
    const m = this.meta[ord];
    return { id, vector: this.store.get(ord), metadata: m === undefined ? undefined : structuredClone(m) };
  }

  /** The k nearest records to `vector`, best first. */
  async search(vector: VectorLike, options: SearchOptions = {}): Promise<Hit[]> {
    return this.searchSync(vector, options);
  }

  searchSync(vector: VectorLike, options: SearchOptions = {}): Hit[] {
    return this.searchBatchSync([vector], options)[0];
  }

  /** Searches several queries at once (faster than one by one: base vectors are read once per tile). */
  async searchBatch(vectors: readonly VectorLike[], options: SearchOptions = {}): Promise<Hit[][]> {
    return this.searchBatchSync(vectors, options);
  }

  searchBatchSync(vectors: readonly VectorLike[], options: SearchOptions = {}): Hit[][] {
    this.checkOpen();
    const { k, includeMetadata, includeVector } = checkSearchOptions(options);
    if (!Array.isArray(vectors)) throw new QuiverError('INVALID_ARGUMENT', `searchBatch expects an array of vectors, got ${describe(vectors)}`, { received: describe(vectors) });
    const raw = this.searchOrdinals(this.packQueries(vectors), vectors.length, k);
    const out: Hit[][] = [];
    for (let q = 0; q < vectors.length; q++) {
      const hits: Hit[] = [];
      for (let i = 0; i < raw.counts[q]; i++) {
        const ord = raw.ords[q * raw.k + i];
        const hit: Hit = { id: this.ids[ord], score: raw.scores[q * raw.k + i] };
        if (includeMetadata && this.meta[ord] !== undefined) hit.metadata = structuredClone(this.meta[ord]);
        if (includeVector) hit.vector = this.store.get(ord);
        hits.push(hit);
      }
      out.push(hits);
    }
    return out;
  }

  /**
   * Low-level batch search: queries f32[nq * dimension] (validated here), returns ordinals
   * and scores (see SearchResultBatch); ordinals map to ids with idAt(). For benchmarks and
   * tools that avoid per-hit objects.
   */
  searchOrdinals(queries: Float32Array, nq: number, k: number): SearchResultBatch {
    this.checkOpen();
    checkPositiveInt(k, 'k', 100_000);
    if (queries.length !== nq * this.dimension) {
      throw new QuiverError('DIMENSION_MISMATCH', `queries hold ${queries.length} floats, expected ${nq} x ${this.dimension}`, { expected: nq * this.dimension, received: queries.length });
    }
    const kk = Math.min(k, Math.max(1, this.size));
    return flatSearch(this.store, this.metric, queries, nq, kk);
  }

  /** Id of a dense ordinal returned by searchOrdinals (valid until the next write). */
  idAt(ord: number): string { return this.ids[ord]; }

  /** Validates queries and packs them into one f32 block (normalised for cosine). */
  packQueries(vectors: readonly VectorLike[]): Float32Array {
    const d = this.dimension;
    const out = new Float32Array(vectors.length * d);
    vectors.forEach((v, q) => {
      const vec = toVector(v, d, { query: q });
      out.set(vec, q * d);
      if (this.metric === 'cosine') {
        const nv = norm(vec);
        if (nv === 0) throw new QuiverError('INVALID_VECTOR', `query ${q} is a zero vector, which has no direction for cosine similarity`, { query: q });
        for (let j = 0; j < d; j++) out[q * d + j] = vec[j] / nv;
      }
    });
    return out;
  }

  stats(): CollectionStats {
    return {
      count: this.size,
      dimension: this.dimension,
      metric: this.metric,
      index: this.index,
      kernels: this.kernels.name,
      vectorBytes: this.size * this.dimension * 4,
      indexBytes: this.store.bytes,
    };
  }

  /** Frees kernel memory; later calls throw CLOSED. */
  close(): void {
    if (this.closed) return;
    this.store.clear();
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new QuiverError('CLOSED', 'the collection is closed');
  }
}

function normalizeSchema(schema: CollectionSchema): Required<CollectionSchema> {
  if (typeof schema !== 'object' || schema === null) {
    throw new QuiverError('INVALID_ARGUMENT', `schema must be an object {dimension, metric?, index?}, got ${describe(schema)}`, { received: describe(schema) });
  }
  for (const key of Object.keys(schema)) {
    if (!SCHEMA_KEYS.has(key)) throw new QuiverError('INVALID_ARGUMENT', `unknown schema field "${key}" (allowed: ${[...SCHEMA_KEYS].join(', ')})`, { field: key });
  }
  const dimension = checkPositiveInt(schema.dimension, 'dimension', 65536);
  const metric = schema.metric ?? 'cosine';
  if (!METRICS.includes(metric)) {
    throw new QuiverError('INVALID_ARGUMENT', `metric must be one of ${METRICS.join(', ')}, got ${describe(metric)}`, { field: 'metric', expected: METRICS, received: metric });
  }
  const index = schema.index ?? 'Flat';
  if (index !== 'Flat') {
    throw new QuiverError('UNKNOWN_SPEC', `unknown index spec "${index}" (available: Flat)`, { field: 'index', expected: ['Flat'], received: index });
  }
  return { dimension, metric, index };
}

function checkSearchOptions(o: SearchOptions): { k: number; includeMetadata: boolean; includeVector: boolean } {
  if (typeof o !== 'object' || o === null) throw new QuiverError('INVALID_ARGUMENT', `search options must be an object, got ${describe(o)}`, {});
  for (const key of Object.keys(o)) {
    if (!SEARCH_OPTION_KEYS.has(key)) throw new QuiverError('INVALID_ARGUMENT', `unknown search option "${key}" (allowed: ${[...SEARCH_OPTION_KEYS].join(', ')})`, { field: key });
  }
  const k = o.k === undefined ? 10 : checkPositiveInt(o.k, 'k', 100_000);
  return { k, includeMetadata: o.includeMetadata ?? true, includeVector: o.includeVector ?? false };
}
