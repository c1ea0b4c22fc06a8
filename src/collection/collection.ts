import { checkPositiveInt, QuiverError } from '../errors.js';
import { createKernels, type KernelChoice } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { MemoryDirectory, type Directory } from '../storage/directory.js';
import { formatIndexSpec, parseIndexSpec } from '../index/spec.js';
import { Engine, type EngineEvent, type PreparedRecord, type RecoveryReport, type SegmentInfo } from './engine.js';
import type { Segment } from './segments.js';
import { checkId, checkMetadata, describe, METRICS, norm, toVector, type Metric, type VectorLike } from './validate.js';

export interface CollectionSchema {
  /** Vector dimension, 1..65536. */
  dimension: number;
  /** Similarity: 'cosine' (default), 'dot' (inner product) or 'l2' (Euclidean). */
  metric?: Metric;
  /**
   * Index spec (default 'Flat', exact). Compressed: e.g. 'Flat,SQ8', 'Flat,RaBitQ4,Rerank',
   * 'Flat,PCA128,SQ8,Rerank10': sealed segments keep only codes in memory and rerank from the
   * full vectors in their files. See src/index/spec.ts for the grammar.
   */
  index?: string;
}

export interface CollectionOptions {
  /** Kernel implementation: 'auto' (WASM SIMD when available), 'wasm' or 'js'. */
  kernels?: KernelChoice;
}

/** Options of Collection.open (durable collections). */
export interface OpenOptions extends CollectionOptions {
  /** Creates the collection with this schema when the directory holds none (else SCHEMA_MISMATCH if it differs). */
  schema?: CollectionSchema;
  /** Opens without the writer lock; writes throw READ_ONLY. Many readers may open a directory. */
  readOnly?: boolean;
  /**
   * Milliseconds to wait for more writes before each group commit (default 0: commit as soon as
   * the previous sync finishes; writes arriving meanwhile share the next sync). Every write is
   * durable before its promise resolves, whatever this value.
   */
  groupCommitMs?: number;
  /**
   * 'group' (default): one sync covers every write queued while the previous sync ran.
   * 'per-call': each upsert/delete gets its own write and sync (slower under concurrency; the
   * same guarantee). Either way nothing resolves before it is durable.
   */
  commitMode?: 'group' | 'per-call';
  /** Rows of the mutable segment that trigger sealing (default: 64 MiB of vectors, at least 4096 rows). */
  sealRows?: number;
  /** Merge segments in the background (default true). */
  autoMerge?: boolean;
  /**
   * Under a compressed index spec, segments with fewer rows than this stay exact: no quantizer is
   * trained for them (default 256; a full scan of a small segment is cheap and exact).
   */
  minQuantizedRows?: number;
  /**
   * Merge policy: merge when `segmentsPerTier` sealed segments share a size tier (default 4);
   * rewrite a segment alone once more than `maxDeletedRatio` of its rows are deleted (default 0.3).
   */
  mergePolicy?: { segmentsPerTier?: number; maxDeletedRatio?: number };
  /** Notices: torn WAL tail dropped at open, orphan files removed, seals, merges, background errors. */
  onEvent?: (event: EngineEvent) => void;
  /**
   * Crash-testing hook, called at named points inside flush and merge
   * ('seal:before-write', 'segment:mid-vectors', 'manifest:before-rename', 'merge:after-write', ...).
   */
  faults?: (point: string) => void;
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

/** Results of searchPacked: query q's hits are entries q*k .. q*k+counts[q]-1, best first. */
export interface PackedResults {
  k: number;
  counts: Uint32Array;
  scores: Float32Array;
  ids: string[];
  /** u32[nq]: full vectors scored exactly per query after compressed scans. */
  reranked: Uint32Array;
}

export interface CollectionStats {
  count: number;
  dimension: number;
  metric: Metric;
  index: string;
  kernels: Kernels['name'];
  /** Bytes of the live full-precision vectors (count * dimension * 4). */
  vectorBytes: number;
  /** Bytes the index holds in kernel memory (vectors or codes, including slack). */
  indexBytes: number;
  segments: number;
}

export interface CollectionInfo extends CollectionStats {
  directory: string;
  durable: boolean;
  readOnly: boolean;
  manifestGeneration: number;
  walGeneration: number | null;
  /** Bytes in the current WAL file. */
  walBytes: number;
  segmentList: SegmentInfo[];
  recovery: RecoveryReport;
}

const SEARCH_OPTION_KEYS = new Set(['k', 'includeMetadata', 'includeVector']);
const SCHEMA_KEYS = new Set(['dimension', 'metric', 'index']);
const OPEN_OPTION_KEYS = new Set(['kernels', 'schema', 'readOnly', 'groupCommitMs', 'commitMode', 'sealRows', 'autoMerge', 'minQuantizedRows', 'mergePolicy', 'onEvent', 'faults']);

/** Opens a filesystem path as a Directory; registered by quiverdb/node. */
let pathDirectory: ((path: string, create: boolean) => Promise<Directory>) | null = null;

/** Lets quiverdb/node teach Collection.open to accept filesystem paths. */
export function registerPathDirectory(factory: (path: string, create: boolean) => Promise<Directory>): void {
  pathDirectory = factory;
}

/**
 * A collection of vectors with string ids and JSON metadata, searched by similarity.
 *
 * `Collection.create` makes an in-memory collection; `Collection.open` opens (or creates) a
 * durable one in a directory: every upsert/delete is in the write-ahead log and synced before its
 * promise resolves. Writes are all-or-nothing per call: a batch with one bad record changes
 * nothing, and a crash never leaves part of a batch.
 */
export class Collection {
  readonly dimension: number;
  readonly metric: Metric;
  readonly index: string;
  private readonly kernels: Kernels;
  private readonly engine: Engine;
  private closed = false;

  private constructor(engine: Engine, kernels: Kernels) {
    this.engine = engine;
    this.dimension = engine.schema.dimension;
    this.metric = engine.schema.metric;
    this.index = engine.schema.index;
    this.kernels = kernels;
  }

  /**
   * Creates an empty in-memory collection (nothing is written anywhere; it lives until close()).
   * Throws INVALID_ARGUMENT for a bad schema. Synchronous: memory needs no I/O.
   */
  static create(schema: CollectionSchema, options: CollectionOptions = {}): Collection {
    const s = normalizeSchema(schema);
    const kernels = createKernels(options.kernels ?? 'auto');
    const dir = new MemoryDirectory();
    // memory holds nothing durable: no WAL; an exact index never seals (one growing segment),
    // a compressed one seals to train its quantizer and encode codes
    const exact = parseIndexSpec(s.index).quantizer === null;
    const engine = Engine.createInMemory(dir, s, { kernels, wal: false, sealRows: exact ? Infinity : undefined });
    return new Collection(engine, kernels);
  }

  /**
   * Opens the durable collection in `target`: a filesystem path (with quiverdb/node) or any
   * Directory (e.g. a MemoryDirectory). With `options.schema` it is created when absent.
   * Replays the write-ahead log; a torn tail from a crash is dropped and reported in
   * info().recovery. Errors: NOT_FOUND (no collection, no schema), SCHEMA_MISMATCH, LOCKED (another
   * writer), CORRUPT_FILE / CORRUPT_WAL naming the damaged file.
   */
  static async open(target: string | Directory, options: OpenOptions = {}): Promise<Collection> {
    if (typeof options !== 'object' || options === null) throw new QuiverError('INVALID_ARGUMENT', `open options must be an object, got ${describe(options)}`);
    for (const key of Object.keys(options)) {
      if (!OPEN_OPTION_KEYS.has(key)) throw new QuiverError('INVALID_ARGUMENT', `unknown open option "${key}" (allowed: ${[...OPEN_OPTION_KEYS].join(', ')})`, { field: key });
    }
    const schema = options.schema === undefined ? undefined : normalizeSchema(options.schema);
    let dir: Directory;
    if (typeof target === 'string') {
      if (!pathDirectory) {
        throw new QuiverError('INVALID_ARGUMENT', 'opening a filesystem path needs the Node entry point: import { Collection } from "quiverdb/node"', { received: target });
      }
      dir = await pathDirectory(target, schema !== undefined && !options.readOnly);
    } else if (target && typeof target === 'object' && typeof (target as Directory).openAppend === 'function') {
      dir = target;
    } else {
      throw new QuiverError('INVALID_ARGUMENT', `open expects a path or a Directory, got ${describe(target)}`, { received: describe(target) });
    }
    if (options.sealRows !== undefined && options.sealRows !== Infinity) checkPositiveInt(options.sealRows, 'sealRows');
    if (options.commitMode !== undefined && options.commitMode !== 'group' && options.commitMode !== 'per-call') {
      throw new QuiverError('INVALID_ARGUMENT', `commitMode must be 'group' or 'per-call', got ${describe(options.commitMode)}`, { field: 'commitMode', expected: ['group', 'per-call'], received: options.commitMode });
    }
    if (options.groupCommitMs !== undefined && !(options.groupCommitMs >= 0 && options.groupCommitMs <= 10_000)) {
      throw new QuiverError('INVALID_ARGUMENT', `groupCommitMs must be in [0, 10000], got ${String(options.groupCommitMs)}`, { field: 'groupCommitMs', received: options.groupCommitMs });
    }
    const mp = options.mergePolicy ?? {};
    if (mp.segmentsPerTier !== undefined) checkPositiveInt(mp.segmentsPerTier, 'mergePolicy.segmentsPerTier', 1000);
    if (mp.segmentsPerTier === 1) throw new QuiverError('INVALID_ARGUMENT', 'mergePolicy.segmentsPerTier must be at least 2', { field: 'mergePolicy.segmentsPerTier', received: 1 });
    if (mp.maxDeletedRatio !== undefined && !(mp.maxDeletedRatio > 0 && mp.maxDeletedRatio <= 1)) {
      throw new QuiverError('INVALID_ARGUMENT', `mergePolicy.maxDeletedRatio must be in (0, 1], got ${String(mp.maxDeletedRatio)}`, { field: 'mergePolicy.maxDeletedRatio', received: mp.maxDeletedRatio });
    }
    const kernels = createKernels(options.kernels ?? 'auto');
    const engine = await Engine.open(dir, schema, {
      kernels, readOnly: options.readOnly, groupCommitMs: options.groupCommitMs, perCallCommit: options.commitMode === 'per-call', sealRows: options.sealRows,
      autoMerge: options.autoMerge, minQuantizedRows: options.minQuantizedRows === undefined ? undefined : checkPositiveInt(options.minQuantizedRows, 'minQuantizedRows'), segmentsPerTier: mp.segmentsPerTier, maxDeletedRatio: mp.maxDeletedRatio,
      onEvent: options.onEvent, faults: options.faults, wal: true,
    });
    return new Collection(engine, kernels);
  }

  /** Live records. */
  get size(): number { return this.engine.size; }

  /** The schema, as normalised at creation. */
  get schema(): Required<CollectionSchema> {
    return { dimension: this.dimension, metric: this.metric, index: this.index };
  }

  has(id: string): boolean { return this.engine.has(id); }

  /**
   * Inserts or replaces records (a record with an existing id replaces it). Within one batch a
   * later record with the same id wins. Validates the whole batch before changing anything;
   * resolves once the batch is durable (durable collections) and visible to searches.
   */
  async upsert(records: readonly UpsertRecord[]): Promise<void> {
    this.checkOpen();
    const prepared = this.prepare(records);
    if (prepared.length === 0) return; // nothing to log or sync
    await this.engine.upsert(prepared);
  }

  private prepare(records: readonly UpsertRecord[]): PreparedRecord[] {
    if (!Array.isArray(records)) {
      throw new QuiverError('INVALID_ARGUMENT', `upsert expects an array of records, got ${describe(records)}`, { expected: 'array', received: describe(records) });
    }
    const prepared: PreparedRecord[] = [];
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
      // copy: the caller may reuse its array, and the WAL must log exactly what is applied
      const vector = Float32Array.from(toVector(rec.vector, this.dimension, where));
      let invNorm = 1;
      if (this.metric === 'cosine') {
        const nv = norm(vector);
        if (nv === 0) throw new QuiverError('INVALID_VECTOR', `record "${id}" has a zero vector, which has no direction for cosine similarity`, where);
        invNorm = 1 / nv;
      }
      const metadata = checkMetadata(rec.metadata, where);
      prepared.push({ id, vector, invNorm, metadataJson: metadata === undefined ? '' : JSON.stringify(metadata) });
    }
    return prepared;
  }

  /** Deletes records by id; ids not present are ignored. Resolves to the number deleted. */
  async delete(ids: readonly string[]): Promise<number> {
    this.checkOpen();
    if (!Array.isArray(ids)) throw new QuiverError('INVALID_ARGUMENT', `delete expects an array of ids, got ${describe(ids)}`, { received: describe(ids) });
    ids.forEach((id, i) => checkId(id, { index: i }));
    if (ids.length === 0) return 0;
    return this.engine.delete(ids.slice());
  }

  /** The stored record (a copy). Throws NOT_FOUND when the id is absent. */
  get(id: string): StoredRecord {
    this.checkOpen();
    checkId(id, {});
    const at = this.engine.locate(id);
    if (!at) throw new QuiverError('NOT_FOUND', `no record with id "${id}"`, { id });
    return { id, vector: at.segment.vectorAt(at.ord), metadata: parseMetadata(at.segment, at.ord) };
  }

  /** The k nearest records to `vector`, best first. */
  async search(vector: VectorLike, options: SearchOptions = {}): Promise<Hit[]> {
    return this.searchSync(vector, options);
  }

  /** Synchronous form of search (searches never wait for I/O). */
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
    return this.searchBatchWithStats(vectors, options).hits;
  }

  /**
   * searchBatch plus what the search did: `reranked[q]` is how many full-precision vectors query q
   * scored exactly after scanning compressed codes (0 on exact segments).
   */
  searchBatchWithStats(vectors: readonly VectorLike[], options: SearchOptions = {}): { hits: Hit[][]; reranked: Uint32Array } {
    this.checkOpen();
    const { k, includeMetadata, includeVector } = checkSearchOptions(options);
    if (!Array.isArray(vectors)) throw new QuiverError('INVALID_ARGUMENT', `searchBatch expects an array of vectors, got ${describe(vectors)}`, { received: describe(vectors) });
    const raw = this.engine.searchBatch(this.packQueries(vectors), vectors.length, k);
    const hits = raw.hits.map((list) => list.map(({ segment, ord, score }) => {
      const hit: Hit = { id: segment.idAt(ord), score };
      if (includeMetadata) {
        const m = parseMetadata(segment, ord);
        if (m !== undefined) hit.metadata = m;
      }
      if (includeVector) hit.vector = segment.vectorAt(ord);
      return hit;
    }));
    return { hits, reranked: raw.reranked };
  }

  /**
   * Low-level batch search without per-hit objects: queries f32[nq * dimension] (validated and,
   * for cosine, normalised here). For benchmarks and tools.
   */
  searchPacked(queries: Float32Array, nq: number, k: number): PackedResults {
    this.checkOpen();
    checkPositiveInt(k, 'k', 100_000);
    if (!(queries instanceof Float32Array) || queries.length !== nq * this.dimension) {
      throw new QuiverError('DIMENSION_MISMATCH', `queries hold ${queries?.length} floats, expected ${nq} x ${this.dimension}`, { expected: nq * this.dimension, received: queries?.length });
    }
    const rows = Array.from({ length: nq }, (_, q) => queries.subarray(q * this.dimension, (q + 1) * this.dimension));
    const raw = this.engine.searchBatch(this.packQueries(rows), nq, k);
    const counts = new Uint32Array(nq), scores = new Float32Array(nq * k), ids: string[] = new Array(nq * k).fill('');
    raw.hits.forEach((hits, q) => {
      counts[q] = hits.length;
      hits.forEach((h, i) => { scores[q * k + i] = h.score; ids[q * k + i] = h.segment.idAt(h.ord); });
    });
    return { k, counts, scores, ids, reranked: raw.reranked };
  }

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

  /** Makes every acknowledged write part of a sealed segment file (durable collections). */
  async flush(): Promise<void> {
    this.checkOpen();
    await this.engine.flush();
  }

  /** Flushes, then rewrites all segments as one, dropping deleted rows. */
  async compact(): Promise<void> {
    this.checkOpen();
    await this.engine.compact();
  }

  /** Waits for background sealing and merging to finish (surfacing any error they hit). */
  async idle(): Promise<void> {
    this.checkOpen();
    await this.engine.idle();
  }

  /** Checks every checksum of every file; lists problems rather than throwing. */
  async verify(): Promise<{ files: number; bytes: number; problems: { file: string; code: string; message: string }[] }> {
    this.checkOpen();
    return this.engine.verify();
  }

  stats(): CollectionStats {
    this.checkOpen();
    return {
      count: this.size,
      dimension: this.dimension,
      metric: this.metric,
      index: this.index,
      kernels: this.kernels.name,
      vectorBytes: this.size * this.dimension * 4,
      indexBytes: this.engine.memoryBytes,
      segments: this.engine.segments().filter((s) => s.count > 0).length,
    };
  }

  /** Storage details: segments, WAL, what recovery did at open. */
  info(): CollectionInfo {
    const e = this.engine.info();
    return {
      ...this.stats(),
      directory: this.engine.dir.description,
      durable: this.engine.dir.durable,
      readOnly: this.engine.readOnly,
      manifestGeneration: e.manifestGeneration,
      walGeneration: e.walGeneration,
      walBytes: e.walBytes,
      segmentList: e.segments,
      recovery: this.engine.recovery,
    };
  }

  /**
   * Waits for pending writes and background work, then frees memory and releases the writer
   * lock. Later calls throw CLOSED (from the moment close() is called).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.engine.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new QuiverError('CLOSED', 'the collection is closed');
  }
}

/** A row's metadata (a fresh object), or undefined; CORRUPT_FILE if the stored JSON does not parse. */
function parseMetadata(segment: Segment, ord: number): Record<string, unknown> | undefined {
  const json = segment.metadataJsonAt(ord);
  if (!json) return undefined;
  try {
    return JSON.parse(json) as Record<string, unknown>;
  } catch (e) {
    throw new QuiverError('CORRUPT_FILE', `stored metadata of "${segment.idAt(ord)}" (segment ${segment.number}, row ${ord}) is not valid JSON`, { id: segment.idAt(ord), segment: segment.number, row: ord }, { cause: e });
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
  // canonical text, so that equal specs compare equal (e.g. against a stored schema)
  const index = formatIndexSpec(parseIndexSpec(schema.index ?? 'Flat'));
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
