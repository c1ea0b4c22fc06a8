import { checkPositiveInt, QuiverError } from '../errors.js';
import { joinMetadata, splitMetadata, type FieldSpec } from '../fields/types.js';
import { parseFilter } from '../filter/parse.js';
import type { FilterPath } from '../filter/plan.js';
import type { Filter } from '../filter/types.js';
import { kernelFactory, type KernelChoice } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { graphBuildThreads, type GraphBuildThreads } from '../index/build-threads.js';
import { MemoryDirectory, type Directory } from '../storage/directory.js';
import { concatChunks, encodeSnapshot, SnapshotDirectory, type BlobLike } from '../storage/snapshot-file.js';
import { parseIndexSpec } from '../index/spec.js';
import type { IndexSearchParams } from '../index/types.js';
import type { RefreshResult } from './refresh.js';
import { Engine, type EngineEvent, type PreparedRecord, type RecoveryReport, type SegmentInfo } from './engine.js';
import { normalizeFields, normalizeSchema, publicSchema, type CollectionSchema, type NormalizedSchema } from './schema.js';
import { scrollPage } from './scroll.js';
import type { Segment } from './segment.js';
import { checkId, checkMetadata, describe, norm, toVector, type Metric, type VectorLike } from './validate.js';
import { transientFloats } from '../util/transient.js';
import type { Embedder } from '../embed/types.js';
import { registeredEmbedder } from '../embed/registry.js';
import type { ManifestSchema } from '../storage/manifest.js';
import { searchSparse, searchText, type RetrieverResult } from './retrievers.js';
import { fuseLists, isSearchRequest, planRequest, type SearchRequest } from './search-request.js';
import type { RankedList, RetrieverName } from '../query/fusion.js';
import type { SnapshotHit } from './searcher.js';

export type { CollectionSchema, NormalizedSchema } from './schema.js';
export type { SearchRequest } from './search-request.js';
export type { RefreshResult } from './refresh.js';

export interface CollectionOptions {
  /** Kernel implementation: 'auto' (WASM SIMD when available), 'wasm' or 'js'. */
  kernels?: KernelChoice;
  /**
   * Threads that build a large segment's HNSW graph (1..256). Default: the machine's cores (at
   * most 8) where the platform offers threads on shared memory (Node with quiverdb/node), else 1.
   * 1 builds on the calling thread, in slices between event-loop turns. Graphs built on several
   * threads differ from run to run in their links (not in quality). WASM kernels only.
   */
  buildThreads?: number;
  /**
   * The embedder that turns text into this collection's vectors (records upserted without a
   * vector, and text queries). Its `model` must equal the schema's `embedder` and its dimension
   * the collection's. Without it, a collection whose schema names an embedder uses the one
   * registered for that model id (quiverdb/node registers 'use-lite-512'), made on first use.
   */
  embedder?: Embedder;
}

/** Options of Collection.open (durable collections). */
export interface OpenOptions extends CollectionOptions {
  /**
   * Creates the collection with this schema when the directory holds none; else it must agree
   * with the stored one (SCHEMA_MISMATCH), except that fields it declares and the collection
   * lacks are added.
   */
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
   * 'per-call': each write gets its own write and sync (slower under concurrency; the same
   * guarantee). Either way nothing resolves before it is durable.
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
  /**
   * Notices: torn WAL tail dropped at open, orphan files removed, seals, merges, cleanup failures,
   * background errors. The callback can never break the collection: what it throws is ignored
   * (counted in info().callbackErrors).
   */
  onEvent?: (event: EngineEvent) => void;
  /**
   * Crash-testing hook, called at named points inside flush and merge
   * ('seal:before-write', 'segment:mid-vectors', 'manifest:before-rename', 'merge:after-write', ...).
   */
  faults?: (point: string) => void;
}

export interface UpsertRecord {
  id: string;
  /**
   * The record's vector. May be left out when the collection embeds text (schema.embedder): the
   * text of the field declared `embed: true` is embedded instead.
   */
  vector?: VectorLike;
  /** A plain JSON object; values of declared fields must have their declared type. */
  metadata?: Record<string, unknown>;
}

export interface MetadataUpdate {
  id: string;
  metadata: Record<string, unknown>;
}

export interface StoredRecord {
  id: string;
  /** The stored vector (a copy); absent when read with includeVector: false. */
  vector: Float32Array;
  metadata: Record<string, unknown> | undefined;
}

export interface ReadOptions {
  /** Include the stored vector (default true). */
  includeVector?: boolean;
  /** Include the metadata (default true). */
  includeMetadata?: boolean;
}

export interface ScrollOptions extends ReadOptions {
  /** Records per page, 1..10000 (default 100). */
  limit?: number;
  /** Cursor: the `next` of the previous page (records with a larger id follow). */
  after?: string;
}

export interface ScrollPage {
  /** Records in id order (UTF-16 code units). */
  records: StoredRecord[];
  /** Cursor for the next page, or null after the last one. */
  next: string | null;
}

export interface SearchOptions {
  /** Number of neighbours, default 10. */
  k?: number;
  /** Include each hit's metadata (default true). */
  includeMetadata?: boolean;
  /** Include each hit's stored vector (default false). */
  includeVector?: boolean;
  /**
   * Compressed segments: rerank `rerank * k` candidates with full vectors, overriding the spec's
   * rule (an oversampling factor, 1..1000). Ignored by exact segments.
   */
  rerank?: number;
  /**
   * Graph (HNSW) segments: the beam width of the search (candidates kept), default the index's
   * own (see docs); larger = better recall, slower. Ignored by other indexes. Clamped up to k.
   */
  ef?: number;
  /** IVF segments: how many inverted lists each query scans. Ignored by other indexes. */
  nprobe?: number;
  /**
   * Target recall@k in (0, 1] for approximate indexes (HNSW, IVF): each segment picks its ef or
   * nprobe and rerank depth from the recall it measured on its own rows when it was built.
   * Explicit `ef`, `nprobe` or `rerank` override its choice. Exact indexes ignore it.
   */
  recall?: number;
  /**
   * Score every live (and, with a filter, matching) record exactly with its full vector instead
   * of searching the indexes: exact results at the cost of a scan. Default false.
   */
  exact?: boolean;
  /**
   * Only records whose declared fields match, e.g. `{ lang: 'en', year: { $gte: 2020 } }`
   * (see "Filters" in the README; INVALID_ARGUMENT naming the path otherwise).
   */
  filter?: Filter;
  /** Resolve to `{ hits, stats }` instead of the hits alone. */
  withStats?: boolean;
}

export interface Hit {
  id: string;
  /**
   * Larger is closer: cosine similarity, inner product, or minus the squared L2 distance; BM25
   * for text; the inner product for sparse; the fused score when a request ran several retrievers.
   */
  score: number;
  metadata?: Record<string, unknown>;
  vector?: Float32Array;
  /** Requests (search({ text, vector, sparse })): the hit's rank (from 1) in each retriever that found it. */
  ranks?: Partial<Record<RetrieverName, number>>;
  /** Requests: the hit's raw score in each retriever that found it. */
  scores?: Partial<Record<RetrieverName, number>>;
}

/** What a search request did, per retriever. */
export interface RequestStats {
  retrievers: RetrieverName[];
  /** BM25: documents scored in full, and row windows skipped on block bounds. */
  text?: { terms: number; scored: number; windowsSkipped: number; candidates: number };
  vector?: SearchStats & { candidates: number; embedded: boolean };
  sparse?: { scored: number; blocksSkipped: number; candidates: number };
  fusion?: string;
}

/** What one query's search did. */
export interface SearchStats {
  /** Segments searched (those with live rows). */
  segments: number;
  /** Vectors or codes scored: by the indexes, and (with a filter) the matching rows a segment scored exactly. */
  scanned: number;
  /** Full-precision vectors scored exactly after compressed scans. */
  reranked: number;
  /** With a filter: what it matched and how each segment was searched. */
  filter?: FilterStats;
}

/** What a filter matched and what the planner chose (the same for every query of a batch). */
export interface FilterStats {
  /** Live records the filter matched, over the segments searched. */
  matched: number;
  /** Live records of those segments. */
  live: number;
  /** matched / live (exact: counted on each segment's compiled filter; 0 when nothing is live). */
  selectivity: number;
  /**
   * Segments by path: `exact` = the matching records scored exactly; `index` = the segment's index
   * searched with the other records masked; `none` = nothing matched, not searched.
   */
  paths: Record<FilterPath, number>;
  /** Per segment (oldest first): its number, live and matched records, and path. */
  segments: { segment: number; live: number; matched: number; path: FilterPath }[];
}

/** A batch of queries: an array of vectors (number[] or typed arrays). */
export type QueryBatch = readonly VectorLike[];

export interface CollectionStats {
  count: number;
  dimension: number;
  metric: Metric;
  index: string;
  kernels: Kernels['name'];
  /** Bytes of the live full-precision vectors (count * dimension * 4). */
  vectorBytes: number;
  /** Bytes the indexes hold in memory (vectors or codes, columns, including slack). */
  indexBytes: number;
  segments: number;
}

export interface CollectionInfo extends CollectionStats {
  directory: string;
  durable: boolean;
  readOnly: boolean;
  manifestGeneration: number;
  walGeneration: number | null;
  /** Bytes in the current WAL file (a read-only opener: where it stopped reading it). */
  walBytes: number;
  /**
   * The last write reflected in this collection's state, by WAL sequence number: a writer's last
   * committed write; a read-only opener's last write applied (at open or refresh). See refresh().
   */
  appliedSeq: number;
  segmentList: SegmentInfo[];
  recovery: RecoveryReport;
  /** Kernel memory the segments hold (WASM memories or their JS twins), in bytes. */
  kernelMemoryBytes: number;
  /** Files the manifest no longer names whose removal failed (retried; removed at the next open). */
  pendingCleanup: string[];
  /** Errors thrown by the onEvent callback (ignored). */
  callbackErrors: number;
}

const SEARCH_OPTION_KEYS = new Set(['k', 'includeMetadata', 'includeVector', 'rerank', 'ef', 'nprobe', 'recall', 'exact', 'filter', 'withStats']);
const READ_OPTION_KEYS = new Set(['includeVector', 'includeMetadata']);
const SCROLL_OPTION_KEYS = new Set(['includeVector', 'includeMetadata', 'limit', 'after']);
const OPEN_OPTION_KEYS = new Set(['kernels', 'buildThreads', 'embedder', 'schema', 'readOnly', 'groupCommitMs', 'commitMode', 'sealRows', 'autoMerge', 'minQuantizedRows', 'mergePolicy', 'onEvent', 'faults']);

/** Opens a filesystem path as a Directory; registered by quiverdb/node. */
let pathDirectory: ((path: string, create: boolean) => Promise<Directory>) | null = null;

/** Lets quiverdb/node teach Collection.open to accept filesystem paths. */
/** The graph build threads for a collection (null: build on the calling thread). */
function resolveBuildThreads(threads: number | undefined, kernels: string): GraphBuildThreads | null {
  if (threads !== undefined) checkPositiveInt(threads, 'buildThreads', 256);
  return kernels === 'js' ? null : graphBuildThreads(threads);
}

export function registerPathDirectory(factory: (path: string, create: boolean) => Promise<Directory>): void {
  pathDirectory = factory;
}

/** Internal test hooks (not part of the API): engine options tests need to provoke edge cases. */
export const testHooks: { walMaxRecordBytes?: number } = {};

/**
 * A collection of vectors with string ids and JSON metadata, searched by similarity.
 *
 * `Collection.create` makes an in-memory collection; `Collection.open` opens (or creates) a
 * durable one in a directory: every write is in the write-ahead log and synced before its
 * promise resolves. Writes are all-or-nothing per call: a batch with one bad record changes
 * nothing, and a crash never leaves part of a batch.
 */
export class Collection {
  readonly dimension: number;
  readonly metric: Metric;
  readonly index: string;
  private readonly kernelName: Kernels['name'];
  private readonly engine: Engine;
  private closed = false;
  /** The embedder given at open, or the registered one once made (null: not resolved yet). */
  private embedderInstance: Embedder | null;
  /** Writes waiting for an embedding: later writes queue behind them so that writes apply in call order. */
  private orderedTail: Promise<void> | null = null;
  private orderedPending = 0;

  private constructor(engine: Engine, kernelName: Kernels['name'], embedder?: Embedder) {
    this.engine = engine;
    this.embedderInstance = checkEmbedder(embedder, engine.schema);
    this.dimension = engine.schema.dimension;
    this.metric = engine.schema.metric;
    this.index = engine.schema.index;
    this.kernelName = kernelName;
  }

  /**
   * Creates an empty in-memory collection (nothing is written anywhere; it lives until close()).
   * Throws INVALID_ARGUMENT for a bad schema. Synchronous: memory needs no I/O.
   */
  static create(schema: CollectionSchema, options: CollectionOptions = {}): Collection {
    const s = normalizeSchema(schema);
    const { newKernels, name } = kernelFactory(options.kernels);
    const buildThreads = resolveBuildThreads(options.buildThreads, name);
    // memory holds nothing durable: no WAL; an exact index never seals (one growing segment),
    // a compressed or graph/IVF one seals to train its quantizer and build its index
    const parsed = parseIndexSpec(s.index);
    const exact = parsed.index === 'Flat' && parsed.quantizer === null;
    const engine = Engine.createInMemory(new MemoryDirectory(), s, { newKernels, buildThreads, wal: false, sealRows: exact ? Infinity : undefined });
    return new Collection(engine, name, options.embedder);
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
    if (options.buildThreads !== undefined) checkPositiveInt(options.buildThreads, 'buildThreads', 256);
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
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') throw new QuiverError('INVALID_ARGUMENT', `onEvent must be a function, got ${describe(options.onEvent)}`, { field: 'onEvent' });
    const { newKernels, name } = kernelFactory(options.kernels);
    const buildThreads = resolveBuildThreads(options.buildThreads, name);
    const engine = await Engine.open(dir, schema, {
      newKernels, buildThreads, readOnly: options.readOnly, groupCommitMs: options.groupCommitMs, perCallCommit: options.commitMode === 'per-call', sealRows: options.sealRows,
      autoMerge: options.autoMerge, minQuantizedRows: options.minQuantizedRows === undefined ? undefined : checkPositiveInt(options.minQuantizedRows, 'minQuantizedRows'),
      segmentsPerTier: mp.segmentsPerTier, maxDeletedRatio: mp.maxDeletedRatio,
      onEvent: options.onEvent, faults: options.faults, wal: true, walMaxRecordBytes: testHooks.walMaxRecordBytes,
    });
    try {
      return new Collection(engine, name, options.embedder);
    } catch (e) {
      await engine.close();
      throw e;
    }
  }

  /** Live records (the same as count()). */
  get size(): number { return this.engine.size; }

  /** The number of live records. */
  count(): number {
    this.checkOpen();
    return this.engine.size;
  }

  /** The schema: dimension, metric, canonical index spec, declared fields by name. */
  get schema(): NormalizedSchema { return publicSchema(this.engine.schema); }

  has(id: string): boolean {
    this.checkOpen();
    checkId(id, {});
    return this.engine.has(id);
  }

  /**
   * Inserts or replaces records (a record with an existing id replaces it). Within one batch a
   * later record with the same id wins. Validates the whole batch before changing anything;
   * resolves once the batch is durable (durable collections) and visible to searches.
   */
  async upsert(records: readonly UpsertRecord[]): Promise<void> {
    this.checkOpen();
    const { prepared, toEmbed } = this.prepare(records);
    if (prepared.length === 0) return; // nothing to log or sync
    if (toEmbed.length === 0) return this.ordered(null, () => this.engine.upsert(prepared));
    return this.ordered(async () => {
      const embedder = await this.embedder();
      const vectors = await embedder.embed(toEmbed.map((t) => t.text));
      const d = this.dimension;
      toEmbed.forEach(({ index }, i) => {
        const p = prepared[index];
        p.vector.set(vectors.subarray(i * d, (i + 1) * d));
        const nv = norm(p.vector);
        if (!(nv > 0) || !Number.isFinite(nv)) throw new QuiverError('INVALID_VECTOR', `the embedder gave record "${p.id}" a ${nv === 0 ? 'zero' : 'non-finite'} vector`, { id: p.id, index });
        p.invNorm = this.metric === 'cosine' ? 1 / nv : 1;
      });
    }, () => this.engine.upsert(prepared));
  }

  /**
   * Runs a write in call order: at once when no write is waiting for an embedding, else after
   * the writes before it were submitted. `prep` (an embedding) runs first; if it fails, only
   * this write fails.
   */
  private ordered<T>(prep: (() => Promise<void>) | null, submit: () => Promise<T>): Promise<T> {
    if (!prep && this.orderedPending === 0) return submit();
    this.orderedPending++;
    const before = this.orderedTail ?? Promise.resolve();
    let submitted!: () => void;
    const tail = new Promise<void>((resolve) => { submitted = resolve; });
    this.orderedTail = tail;
    const run = before.then(() => (prep ? prep() : undefined)).then(
      () => { try { return submit(); } finally { submitted(); } },
      (e: unknown) => { submitted(); throw e; },
    );
    const done = (): void => {
      if (--this.orderedPending === 0 && this.orderedTail === tail) this.orderedTail = null;
    };
    run.then(done, done);
    return run;
  }

  /** The collection's embedder: the one given at open, or the one registered for the schema's model. */
  private async embedder(): Promise<Embedder> {
    if (this.embedderInstance) return this.embedderInstance;
    const model = this.engine.schema.embedder;
    if (!model) throw new QuiverError('INVALID_ARGUMENT', 'the collection has no embedder (schema.embedder): give records a vector', {});
    const e = await registeredEmbedder(model);
    this.embedderInstance = checkEmbedder(e, this.engine.schema);
    return e;
  }

  private prepare(records: readonly UpsertRecord[]): { prepared: PreparedRecord[]; toEmbed: { index: number; text: string }[] } {
    if (!Array.isArray(records)) {
      throw new QuiverError('INVALID_ARGUMENT', `upsert expects an array of records, got ${describe(records)}`, { expected: 'array', received: describe(records) });
    }
    const fields = this.engine.schema.fields;
    const embedField = this.engine.schema.embedder ? fields.find((f) => f.embed) : undefined;
    const prepared: PreparedRecord[] = [];
    const toEmbed: { index: number; text: string }[] = [];
    const d = this.dimension;
    // one buffer for the whole batch's vectors (copies: the caller may reuse its arrays, and the
    // WAL must log exactly what is applied), rather than a small allocation per record
    const vectors = transientFloats(records.length * d);
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
      const split = splitMetadata(checkMetadata(rec.metadata, where), fields, where);
      if (rec.vector === undefined) {
        const text = embedField ? split.values[embedField.name] : undefined;
        if (typeof text !== 'string') {
          const why = embedField ? `the collection embeds metadata field "${embedField.name}", which this record lacks` : 'the collection has no embedder (schema.embedder) to make one from text';
          throw new QuiverError('INVALID_ARGUMENT', `record ${i} ("${id}") has no vector: ${why}`, { ...where, field: 'vector' });
        }
        prepared.push({ id, vector: vectors.subarray(i * d, (i + 1) * d), invNorm: 1, metadataJson: split.json, values: split.values });
        toEmbed.push({ index: prepared.length - 1, text });
        continue;
      }
      const vector = toVector(rec.vector, d, where, vectors.subarray(i * d, (i + 1) * d));
      let invNorm = 1;
      if (this.metric === 'cosine') {
        const nv = norm(vector);
        if (nv === 0) throw new QuiverError('INVALID_VECTOR', `record "${id}" has a zero vector, which has no direction for cosine similarity`, where);
        invNorm = 1 / nv;
      }
      prepared.push({ id, vector, invNorm, metadataJson: split.json, values: split.values });
    }
    return { prepared, toEmbed };
  }

  /** Deletes records by id; ids not present are ignored. Resolves to the number deleted. */
  async delete(ids: readonly string[]): Promise<number> {
    this.checkOpen();
    if (!Array.isArray(ids)) throw new QuiverError('INVALID_ARGUMENT', `delete expects an array of ids, got ${describe(ids)}`, { received: describe(ids) });
    ids.forEach((id, i) => checkId(id, { index: i }));
    if (ids.length === 0) return 0;
    const copy = ids.slice();
    return this.ordered(null, () => this.engine.delete(copy));
  }

  /**
   * Sets records' metadata without resending their vectors: replaces it, or with `merge: true`
   * sets the given top-level keys and keeps the others. Ids not present are ignored; resolves to
   * the number of records updated. Atomic and durable like upsert.
   */
  async update(updates: readonly MetadataUpdate[], options: { merge?: boolean } = {}): Promise<number> {
    this.checkOpen();
    if (!Array.isArray(updates)) throw new QuiverError('INVALID_ARGUMENT', `update expects an array of {id, metadata}, got ${describe(updates)}`, { received: describe(updates) });
    if (typeof options !== 'object' || options === null || Object.keys(options).some((k) => k !== 'merge') || (options.merge !== undefined && typeof options.merge !== 'boolean')) {
      throw new QuiverError('INVALID_ARGUMENT', `update options must be { merge?: boolean }, got ${describe(options)}`, { expected: '{ merge?: boolean }', received: describe(options) });
    }
    const fields = this.engine.schema.fields;
    const entries = updates.map((u, i) => {
      if (typeof u !== 'object' || u === null) throw new QuiverError('INVALID_ARGUMENT', `update ${i} must be an object {id, metadata}, got ${describe(u)}`, { index: i });
      for (const key of Object.keys(u)) {
        if (key !== 'id' && key !== 'metadata') throw new QuiverError('INVALID_ARGUMENT', `update ${i} has unknown field "${key}" (allowed: id, metadata)`, { index: i, field: key });
      }
      const id = checkId(u.id, { index: i });
      const where = { index: i, id };
      const metadata = checkMetadata(u.metadata, where);
      if (metadata === undefined) throw new QuiverError('INVALID_ARGUMENT', `update ${i} needs a metadata object`, { ...where, field: 'metadata' });
      const split = splitMetadata(metadata, fields, where);
      return { id, metadataJson: split.json, values: split.values };
    });
    if (entries.length === 0) return 0;
    return this.ordered(null, () => this.engine.update(entries, options.merge === true));
  }

  /**
   * Declares more metadata fields (e.g. `{ price: 'number' }`). Records written from now on
   * store them as columns; existing records keep theirs in their JSON until their segment is
   * merged (reads return the same metadata either way). Declaring an existing field again with
   * the same type does nothing; another type is SCHEMA_MISMATCH.
   */
  async addFields(fields: Record<string, FieldSpec>): Promise<void> {
    this.checkOpen();
    await this.engine.addFields(normalizeFields(fields));
  }

  /** The stored record (a copy). Throws NOT_FOUND when the id is absent. */
  get(id: string): StoredRecord {
    this.checkOpen();
    checkId(id, {});
    const at = this.engine.locate(id);
    if (!at) throw new QuiverError('NOT_FOUND', `no record with id "${id}"`, { id });
    return readRecord(at.segment, at.ord, id, true, true);
  }

  /** The records of `ids`, in order; null where an id is absent. */
  getMany(ids: readonly string[], options: ReadOptions = {}): (StoredRecord | null)[] {
    this.checkOpen();
    if (!Array.isArray(ids)) throw new QuiverError('INVALID_ARGUMENT', `getMany expects an array of ids, got ${describe(ids)}`, { received: describe(ids) });
    const { includeVector, includeMetadata } = checkReadOptions(options, READ_OPTION_KEYS);
    ids.forEach((id, i) => checkId(id, { index: i }));
    return ids.map((id) => {
      const at = this.engine.locate(id);
      return at ? readRecord(at.segment, at.ord, id, includeVector, includeMetadata) : null;
    });
  }

  /**
   * One page of records in id order, from the cursor `after` (exclusive). Pass the returned
   * `next` to get the following page; `next` is null after the last page. Writes between pages
   * are seen by later pages.
   */
  scroll(options: ScrollOptions = {}): ScrollPage {
    this.checkOpen();
    const { includeVector, includeMetadata } = checkReadOptions(options, SCROLL_OPTION_KEYS);
    const limit = options.limit === undefined ? 100 : checkPositiveInt(options.limit, 'limit', 10_000);
    if (options.after !== undefined && typeof options.after !== 'string') {
      throw new QuiverError('INVALID_ARGUMENT', `after must be a string cursor, got ${describe(options.after)}`, { field: 'after', received: describe(options.after) });
    }
    const snap = this.engine.snapshot();
    try {
      const rows = scrollPage(snap.segments, options.after, limit + 1);
      const page = rows.slice(0, limit).map((r) => readRecord(r.segment, r.ord, r.id, includeVector, includeMetadata));
      return { records: page, next: rows.length > limit ? rows[limit - 1].id : null };
    } finally {
      snap.release();
    }
  }

  /** Every record in id order, fetched a page at a time (see scroll). */
  async *records(options: Omit<ScrollOptions, 'after'> = {}): AsyncGenerator<StoredRecord> {
    let after: string | undefined;
    for (;;) {
      const page = this.scroll({ ...options, limit: options.limit ?? 1000, after });
      for (const r of page.records) yield r;
      if (page.next === null) return;
      after = page.next;
    }
  }

  /**
   * The k nearest records to a query vector, best first; or, for a batch (an array of vectors),
   * one list of hits per query. With `withStats: true` it resolves to `{ hits, stats }` saying
   * what each search did.
   */
  search(request: SearchRequest & { withStats?: false }): Promise<Hit[]>;
  search(request: SearchRequest & { withStats: true }): Promise<{ hits: Hit[]; stats: RequestStats }>;
  search(query: VectorLike, options?: SearchOptions & { withStats?: false }): Promise<Hit[]>;
  search(queries: QueryBatch, options?: SearchOptions & { withStats?: false }): Promise<Hit[][]>;
  search(query: VectorLike, options: SearchOptions & { withStats: true }): Promise<{ hits: Hit[]; stats: SearchStats }>;
  search(queries: QueryBatch, options: SearchOptions & { withStats: true }): Promise<{ hits: Hit[][]; stats: SearchStats[] }>;
  async search(query: VectorLike | QueryBatch | SearchRequest, options: SearchOptions = {}): Promise<unknown> {
    if (isSearchRequest(query)) {
      if (arguments.length > 1) throw new QuiverError('INVALID_ARGUMENT', 'a search request carries its options itself: search({ text, vector, k, ... }) takes one argument', {});
      return this.searchRequest(query);
    }
    return this.searchNow(query, options);
  }

  /**
   * Runs a request's retrievers on one snapshot and fuses their lists (see SearchRequest).
   * The query text is embedded first (when it is), before the snapshot is taken.
   */
  private async searchRequest(r: SearchRequest): Promise<unknown> {
    this.checkOpen();
    const schema = this.engine.schema;
    const plan = planRequest(r, schema.fields, schema.embedder);
    const dense = checkSearchOptions({
      k: plan.depth, ...pick(r, ['rerank', 'ef', 'nprobe', 'recall', 'exact']),
    });
    const filter = r.filter === undefined ? undefined : parseFilter(r.filter, schema.fields);
    let queryVector: Float32Array | null = null;
    if (r.vector !== undefined) {
      queryVector = this.packQueries([r.vector]);
    } else if (plan.embedText) {
      const e = await this.embedder();
      queryVector = this.packQueries([await e.embed([r.text!])]);
    }
    this.checkOpen();
    const includeMetadata = r.includeMetadata ?? true;
    const includeVector = r.includeVector ?? false;
    const snap = this.engine.snapshot();
    try {
      const lists: RankedList[] = [];
      const rows = new Map<string, SnapshotHit>();
      const stats: RequestStats = { retrievers: plan.retrievers };
      const add = (name: RetrieverName, hits: readonly SnapshotHit[]): void => {
        const keys: string[] = [], scores: number[] = [];
        for (const h of hits) {
          const key = `${h.segment.number}:${h.ord}`;
          rows.set(key, h);
          keys.push(key);
          scores.push(h.score);
        }
        lists.push({ name, keys, scores });
      };
      const depth = plan.retrievers.length > 1 ? plan.depth : plan.k;
      if (plan.text) {
        const res: RetrieverResult = searchText(snap, plan.text, depth, filter);
        let terms = 0;
        for (const t of plan.text.terms.values()) terms += t.length;
        stats.text = { terms, scored: res.scored, windowsSkipped: res.skipped, candidates: res.hits.length };
        add('text', res.hits);
      }
      if (queryVector) {
        const res = this.engine.search(snap, queryVector, 1, depth, dense.params, filter);
        const st: SearchStats = { segments: res.segmentsSearched, scanned: res.counters.scanned[0], reranked: res.counters.reranked[0] };
        if (res.filter) st.filter = filterStats(res.filter);
        stats.vector = { ...st, candidates: res.hits[0].length, embedded: r.vector === undefined };
        add('vector', res.hits[0]);
      }
      if (plan.sparse) {
        const res = searchSparse(snap, plan.sparse.field, plan.sparse.query, depth, plan.sparse.mode ? { mode: plan.sparse.mode } : {}, filter);
        stats.sparse = { scored: res.scored, blocksSkipped: res.skipped, candidates: res.hits.length };
        add('sparse', res.hits);
      }
      if (lists.length > 1) stats.fusion = plan.fusion.method;
      const hits = fuseLists(lists, plan).map((e) => {
        const { segment, ord } = rows.get(e.key)!;
        const hit: Hit = { id: segment.idAt(ord), score: e.score, ranks: e.ranks, scores: e.scores };
        if (includeMetadata) {
          const m = parseMetadata(segment, ord);
          if (m !== undefined) hit.metadata = m;
        }
        if (includeVector) hit.vector = segment.vectorAt(ord);
        return hit;
      });
      return r.withStats ? { hits, stats } : hits;
    } finally {
      snap.release();
    }
  }

  private searchNow(query: VectorLike | QueryBatch, options: SearchOptions): unknown {
    this.checkOpen();
    const o = checkSearchOptions(options);
    const batch = isBatch(query);
    const vectors = batch ? (query as QueryBatch) : [query as VectorLike];
    const packed = this.packQueries(vectors);
    // parsed once against the schema in force; compiled per segment by the searcher
    const filter = o.filter === undefined ? undefined : parseFilter(o.filter, this.engine.schema.fields);
    const snap = this.engine.snapshot();
    try {
      const res = this.engine.search(snap, packed, vectors.length, o.k, o.params, filter);
      const hits = res.hits.map((list) => list.map(({ segment, ord, score }) => {
        const hit: Hit = { id: segment.idAt(ord), score };
        if (o.includeMetadata) {
          const m = parseMetadata(segment, ord);
          if (m !== undefined) hit.metadata = m;
        }
        if (o.includeVector) hit.vector = segment.vectorAt(ord);
        return hit;
      }));
      if (!o.withStats) return batch ? hits : hits[0];
      const stats: SearchStats[] = hits.map((_, q) => {
        const st: SearchStats = { segments: res.segmentsSearched, scanned: res.counters.scanned[q], reranked: res.counters.reranked[q] };
        if (res.filter) st.filter = filterStats(res.filter);
        return st;
      });
      return batch ? { hits, stats } : { hits: hits[0], stats: stats[0] };
    } finally {
      snap.release();
    }
  }

  /** Validates queries and packs them into one f32 block (normalised for cosine). */
  private packQueries(vectors: readonly VectorLike[]): Float32Array {
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

  /**
   * The last write reflected in this collection's state (a WAL sequence number): on a writer, its
   * last committed write (every write resolved so far is at or below it); on a read-only opener,
   * the last write it has applied. Pass a writer's value to a reader's refresh({ upTo }) to read
   * your writes.
   */
  get appliedSeq(): number {
    return this.engine.appliedSeq;
  }

  /**
   * Read-only openers (Collection.open(dir, { readOnly: true })): catches up with what the writer
   * (in this process or another) has made durable: re-reads the manifest; loads the segment files
   * it does not have yet (segments it has are kept, never reloaded) and drops those the manifest
   * no longer lists (searches in flight keep theirs until they finish); applies the WAL records
   * written since the last refresh. A record still being written is left for the next refresh.
   * Cost when nothing changed: one manifest read and one read of the WAL's new bytes.
   *
   * `upTo`: apply writes up to this sequence number (a writer's `appliedSeq`) and no further, so
   * the reader never shows a write whose sync is still running; without it every complete record
   * in the log is applied. Either way the state is the writer's state after one of its writes.
   *
   * INVALID_ARGUMENT on a writer or an in-memory collection (they hold their own state); CLOSED
   * after close(); NOT_FOUND if the collection's directory no longer holds one.
   */
  async refresh(options: { upTo?: number } = {}): Promise<RefreshResult> {
    this.checkOpen();
    if (typeof options !== 'object' || options === null || Object.keys(options).some((k) => k !== 'upTo')) {
      throw new QuiverError('INVALID_ARGUMENT', `refresh options must be { upTo?: number }, got ${describe(options)}`, { expected: '{ upTo?: number }' });
    }
    const upTo = options.upTo;
    if (upTo !== undefined && !(Number.isSafeInteger(upTo) && upTo >= 0)) {
      throw new QuiverError('INVALID_ARGUMENT', `upTo must be a sequence number (an integer >= 0), got ${describe(upTo)}`, { field: 'upTo', received: describe(upTo) });
    }
    return this.engine.refresh(upTo);
  }

  /** Makes every acknowledged write part of a sealed segment file (durable collections). */
  async flush(): Promise<void> {
    this.checkOpen();
    await this.engine.flush();
  }

  /**
   * The collection as one snapshot file (src/storage/snapshot-file.ts): open it elsewhere with
   * Collection.openSnapshot (read-only) or importSnapshot() it into a Directory. A writer flushes
   * first and waits for background seals and merges, so the snapshot holds sealed segments and an
   * empty WAL generation; writes made while it is taken land in it or not, as a whole (the
   * snapshot is the state after one of the writes). A read-only opener does not flush: it
   * snapshots the directory as the writer left it (manifest, segments and the WAL from walStart,
   * to its last complete record), which may be newer than what it shows until refresh().
   * INVALID_ARGUMENT for an in-memory collection (Collection.create): it has no files; build
   * it with Collection.open(new MemoryDirectory(), { schema }) to export it.
   */
  async exportSnapshot(): Promise<Uint8Array> {
    this.checkOpen();
    // only in-memory collections have no WAL (walGeneration null)
    if (this.engine.info().walGeneration === null) {
      throw new QuiverError('INVALID_ARGUMENT', 'an in-memory collection (Collection.create) has no files to snapshot: build it with Collection.open(new MemoryDirectory(), { schema }) instead', { durable: false });
    }
    if (!this.engine.readOnly) {
      await this.engine.flush();
      await this.engine.idle();
    }
    return concatChunks(await encodeSnapshot(this.engine.dir));
  }

  /**
   * Opens a snapshot (from exportSnapshot: the bytes, or a Blob/File read in slices) as a
   * read-only collection: searches, get() and scroll() work, writes throw READ_ONLY. The snapshot
   * is verified first: CORRUPT_FILE naming the damaged file inside it, UNSUPPORTED_FORMAT for
   * another snapshot version. To write, importSnapshot() it into a Directory and open that.
   */
  static async openSnapshot(snapshot: Uint8Array | BlobLike | SnapshotDirectory, options: CollectionOptions & Pick<OpenOptions, 'onEvent'> = {}): Promise<Collection> {
    if (typeof options !== 'object' || options === null) throw new QuiverError('INVALID_ARGUMENT', `openSnapshot options must be an object, got ${describe(options)}`);
    for (const key of Object.keys(options)) {
      if (!['kernels', 'buildThreads', 'embedder', 'onEvent'].includes(key)) {
        throw new QuiverError('INVALID_ARGUMENT', `unknown openSnapshot option "${key}" (allowed: kernels, buildThreads, embedder, onEvent)`, { field: key });
      }
    }
    return Collection.open(await SnapshotDirectory.open(snapshot), { ...options, readOnly: true });
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
      kernels: this.kernelName,
      vectorBytes: this.size * this.dimension * 4,
      indexBytes: this.engine.memoryBytes,
      segments: this.engine.segments().filter((s) => s.count > 0).length,
    };
  }

  /** Storage details: segments, WAL, memory, what recovery did at open. */
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
      appliedSeq: e.appliedSeq,
      segmentList: e.segments,
      recovery: this.engine.recovery,
      kernelMemoryBytes: e.kernelMemoryBytes,
      pendingCleanup: e.pendingCleanup,
      callbackErrors: e.callbackErrors,
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

/** The keys of `o` that are set, for passing a subset of options on. */
function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const key of keys) if (o[key] !== undefined) out[key] = o[key];
  return out;
}

/**
 * Checks an embedder against the schema: its model id must be the one the schema records (a
 * query is never embedded by another model than its documents), its dimension the collection's.
 */
function checkEmbedder(e: Embedder | undefined, schema: ManifestSchema): Embedder | null {
  if (e === undefined) return null;
  if (typeof e !== 'object' || e === null || typeof e.embed !== 'function' || typeof e.model !== 'string') {
    throw new QuiverError('INVALID_ARGUMENT', `embedder must implement Embedder { model, dimension, embed() }, got ${describe(e)}`, { field: 'embedder' });
  }
  if (schema.embedder === undefined) {
    throw new QuiverError('INVALID_ARGUMENT', `an embedder was given, but the schema names none: create the collection with embedder: '${e.model}' and a text field declared embed: true`, { field: 'embedder', received: e.model });
  }
  if (e.model !== schema.embedder) {
    throw new QuiverError('SCHEMA_MISMATCH', `the collection's vectors were made by embedder "${schema.embedder}", not "${e.model}": queries and documents must be embedded by the same model`, { field: 'embedder', expected: schema.embedder, received: e.model });
  }
  if (e.dimension !== schema.dimension) {
    throw new QuiverError('DIMENSION_MISMATCH', `embedder "${e.model}" makes ${e.dimension}-d vectors, the collection holds ${schema.dimension}-d ones`, { field: 'embedder', expected: schema.dimension, received: e.dimension });
  }
  return e;
}

/** A batch is an array whose elements are vectors (not numbers); [] is an empty batch. */
function isBatch(q: unknown): boolean {
  if (!Array.isArray(q)) return false;
  return q.length === 0 || typeof q[0] !== 'number';
}

function readRecord(segment: Segment, ord: number, id: string, includeVector: boolean, includeMetadata: boolean): StoredRecord {
  const rec = { id } as StoredRecord;
  if (includeVector) rec.vector = segment.vectorAt(ord);
  if (includeMetadata) rec.metadata = parseMetadata(segment, ord);
  return rec;
}

/** A row's metadata (a fresh object), or undefined; CORRUPT_FILE if the stored JSON does not parse. */
function parseMetadata(segment: Segment, ord: number): Record<string, unknown> | undefined {
  try {
    return joinMetadata(segment.metadataJsonAt(ord), segment.fieldValuesAt(ord));
  } catch (e) {
    throw new QuiverError('CORRUPT_FILE', `stored metadata of "${segment.idAt(ord)}" (segment ${segment.number}, row ${ord}) is not valid JSON`, { id: segment.idAt(ord), segment: segment.number, row: ord }, { cause: e });
  }
}

function checkReadOptions(o: ReadOptions, allowed: Set<string>): { includeVector: boolean; includeMetadata: boolean } {
  if (typeof o !== 'object' || o === null) throw new QuiverError('INVALID_ARGUMENT', `options must be an object, got ${describe(o)}`, {});
  for (const key of Object.keys(o)) {
    if (!allowed.has(key)) throw new QuiverError('INVALID_ARGUMENT', `unknown option "${key}" (allowed: ${[...allowed].join(', ')})`, { field: key });
  }
  return { includeVector: o.includeVector ?? true, includeMetadata: o.includeMetadata ?? true };
}

/** Totals of the planner's per-segment reports (a fresh object per query). */
function filterStats(reports: readonly { segment: number; live: number; matched: number; path: FilterPath }[]): FilterStats {
  const paths: Record<FilterPath, number> = { exact: 0, index: 0, none: 0 };
  let matched = 0, live = 0;
  for (const r of reports) { paths[r.path]++; matched += r.matched; live += r.live; }
  return { matched, live, selectivity: live > 0 ? matched / live : 0, paths, segments: reports.map((r) => ({ ...r })) };
}

function checkSearchOptions(o: SearchOptions): { k: number; includeMetadata: boolean; includeVector: boolean; params: IndexSearchParams; filter: unknown; withStats: boolean } {
  if (typeof o !== 'object' || o === null) throw new QuiverError('INVALID_ARGUMENT', `search options must be an object, got ${describe(o)}`, {});
  for (const key of Object.keys(o)) {
    if (!SEARCH_OPTION_KEYS.has(key)) throw new QuiverError('INVALID_ARGUMENT', `unknown search option "${key}" (allowed: ${[...SEARCH_OPTION_KEYS].join(', ')})`, { field: key });
  }
  const k = o.k === undefined ? 10 : checkPositiveInt(o.k, 'k', 100_000);
  const params: { -readonly [K in keyof IndexSearchParams]: IndexSearchParams[K] } = {};
  if (o.rerank !== undefined) params.rerankFactor = checkPositiveInt(o.rerank, 'rerank', 1000);
  if (o.ef !== undefined) params.ef = checkPositiveInt(o.ef, 'ef', 100_000);
  if (o.nprobe !== undefined) params.nprobe = checkPositiveInt(o.nprobe, 'nprobe', 1 << 20);
  if (o.exact !== undefined) {
    if (typeof o.exact !== 'boolean') throw new QuiverError('INVALID_ARGUMENT', `exact must be a boolean, got ${describe(o.exact)}`, { name: 'exact', expected: 'boolean', received: o.exact });
    if (o.exact) params.exact = true;
  }
  if (o.recall !== undefined) {
    if (typeof o.recall !== 'number' || !(o.recall > 0 && o.recall <= 1)) {
      throw new QuiverError('INVALID_ARGUMENT', `recall must be a number in (0, 1], got ${describe(o.recall)}`, { name: 'recall', expected: '(0, 1]', received: o.recall });
    }
    params.recall = o.recall;
  }
  return { k, includeMetadata: o.includeMetadata ?? true, includeVector: o.includeVector ?? false, params, filter: o.filter, withStats: o.withStats === true };
}
