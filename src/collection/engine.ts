import { QuiverError } from '../errors.js';
import type { FieldDef } from '../fields/types.js';
import type { IndexSearchParams } from '../index/types.js';
import type { Kernels } from '../kernels/types.js';
import type { GraphBuildThreads } from '../index/build-threads.js';
import type { Directory, DirectoryLock } from '../storage/directory.js';
import { readManifest, writeManifest, type ManifestSchema, type ManifestSegment, type ManifestState } from '../storage/manifest.js';
import { encodeDelete, encodeUpsert, type RecordField, type UpsertEntry } from '../storage/records.js';
import { adoptFromJson, type FieldValues } from '../fields/types.js';
import { checkRecordSize, MAX_RECORD_BYTES, type WalWriter } from '../storage/wal.js';
import { verifyFiles, type VerifyReport } from './verify.js';
import { CommitLane } from './commit-lane.js';
import { isolateCallback, type EngineEvent } from './events.js';
import { Maintenance, type MaintenanceHost } from './maintenance.js';
import type { MergePolicy } from './merge-policy.js';
import { recover, type RecoveryReport, type WalPosition } from './recovery.js';
import { refreshOnce, type RefreshHost, type RefreshResult } from './refresh.js';
import { SealedSegment } from './sealed-segment.js';
import { searchSnapshot, Snapshot, type SnapshotSearchResult } from './searcher.js';
import type { ParsedFilter } from '../filter/types.js';
import type { Segment } from './segment.js';
import { MIN_QUANTIZED_ROWS } from '../index/segment-index.js';
import { CollectionState, inverseNorm } from './state.js';

/**
 * The storage engine behind a Collection: a small coordinator over
 * - CollectionState (state.ts): manifest, segments, id map, and how operations apply;
 * - CommitLane (commit-lane.ts): the one writer lane, WAL group commit;
 * - recover (recovery.ts): orphan sweep, segment loading and WAL replay at open;
 * - Maintenance (maintenance.ts, merge-policy.ts): seal and merge, off the lane, installed in it;
 * - Snapshot (searcher.ts): refcounted segment lists that searches read.
 *
 * Write path: validate (Collection) -> WAL record encoded and size-checked -> queued in the lane
 * -> group commit (one sync covers every record queued meanwhile) -> applied to memory -> the
 * promise resolves. Memory only ever holds effects of durable records, so a manifest written at
 * any moment is consistent with replaying the WAL from its `walStart` (replay is idempotent).
 */

export interface EngineOptions {
  /** Makes the kernels of one segment (each segment has its own kernel memory). */
  newKernels: () => Kernels;
  /** Threads for large graph builds (null or absent: on the calling thread). */
  buildThreads?: GraphBuildThreads | null;
  /** Write the WAL (default: when the directory is durable). */
  wal?: boolean;
  readOnly?: boolean;
  /** Extra milliseconds to wait for more writes before a group commit (default 0). */
  groupCommitMs?: number;
  /** Sync each write on its own instead of in groups. */
  perCallCommit?: boolean;
  /** Rows of the mutable segment that trigger sealing; Infinity = only on flush(). */
  sealRows?: number;
  /** Segments with fewer rows stay exact under a compressed spec (default 256). */
  minQuantizedRows?: number;
  /** Background merging after seals (default true). */
  autoMerge?: boolean;
  /** Merge when this many sealed segments share a size tier (default 4). */
  segmentsPerTier?: number;
  /** Rewrite a segment whose deleted fraction exceeds this (default 0.3). */
  maxDeletedRatio?: number;
  /** Largest WAL record in bytes (default MAX_RECORD_BYTES; lowered by tests). */
  walMaxRecordBytes?: number;
  /** Crash-test hook: called at named points of flush and merge (it may throw or kill the process). */
  faults?: (point: string) => void;
  /** Notices: torn WAL tail dropped, orphan files removed, seals, merges, cleanup and background errors. */
  onEvent?: (event: EngineEvent) => void;
}

export type { EngineEvent } from './events.js';
export type { RecoveryReport } from './recovery.js';

/** A record ready to write: validated, vector as f32, metadata split (UpsertEntry) and its inverse norm. */
export interface PreparedRecord extends UpsertEntry {
  /** 1/||vector|| for cosine, else 1. */
  invNorm: number;
}

/** A metadata update as validated by Collection: the patch split under the current schema. */
export interface MetadataPatch {
  id: string;
  metadataJson: string;
  values: FieldValues;
}

export interface SegmentInfo {
  number: number;
  state: 'mutable' | 'sealing' | 'sealed';
  rows: number;
  deleted: number;
  fileBytes: number;
  memoryBytes: number;
  /** 'Flat', or the quantizer spec whose codes the segment scans. */
  index: string;
}

export class Engine implements MaintenanceHost, RefreshHost {
  readonly dir: Directory;
  readonly readOnly: boolean;
  readonly recovery: RecoveryReport;
  /** Replaced only by a read-only engine's refresh (in one synchronous step). */
  state: CollectionState;
  /**
   * The last WAL sequence number reflected in memory: for a writer, its last committed write; for
   * a reader, the last write it has applied (at open or refresh).
   */
  appliedSeq = 0;
  /** Where a reader stopped in the WAL (refresh continues from there). */
  walTail: WalPosition = { generation: 0, offset: 0 };
  readonly lane: CommitLane;
  readonly newKernels: () => Kernels;
  readonly buildThreads: GraphBuildThreads | null;
  readonly minQuantizedRows: number;
  readonly policy: MergePolicy;
  readonly faults: ((point: string) => void) | undefined;
  wal: WalWriter | null = null;

  private readonly walEnabled: boolean;
  private readonly walMaxRecordBytes: number;
  private readonly maintenance: Maintenance;
  private readonly autoMerge: boolean;
  private readonly callbacks: ReturnType<typeof isolateCallback>;
  private lock: DirectoryLock | null = null;
  private tasks: Promise<void> = Promise.resolve();
  private tasksPending = 0;
  private backgroundError: QuiverError | null = null;
  private closed = false;
  private refreshing: Promise<unknown> = Promise.resolve();
  private readonly sealRows: number;

  private constructor(dir: Directory, manifest: ManifestState, o: EngineOptions, recovery: RecoveryReport) {
    this.dir = dir;
    this.readOnly = o.readOnly ?? false;
    this.walEnabled = o.wal ?? dir.durable;
    this.walMaxRecordBytes = o.walMaxRecordBytes ?? MAX_RECORD_BYTES;
    this.newKernels = o.newKernels;
    this.buildThreads = o.buildThreads ?? null;
    const d = manifest.schema.dimension;
    const sealRows = o.sealRows ?? Math.max(4096, Math.floor((64 << 20) / (d * 4)));
    this.sealRows = sealRows;
    this.state = new CollectionState(manifest, o.newKernels, sealRows);
    this.minQuantizedRows = o.minQuantizedRows ?? MIN_QUANTIZED_ROWS;
    this.policy = { segmentsPerTier: o.segmentsPerTier ?? 4, maxDeletedRatio: o.maxDeletedRatio ?? 0.3, baseRows: sealRows };
    this.autoMerge = o.autoMerge ?? true;
    this.faults = o.faults;
    this.callbacks = isolateCallback(o.onEvent);
    this.recovery = recovery;
    this.lane = new CommitLane({
      wal: () => this.wal,
      groupCommitMs: o.groupCommitMs ?? 0,
      perCallCommit: o.perCallCommit ?? false,
      afterApply: () => this.afterApply(),
    });
    this.maintenance = new Maintenance(this);
  }

  emit(e: EngineEvent): void { this.callbacks.emit(e); }

  get schema(): ManifestSchema { return this.state.schema; }

  /**
   * Opens the collection in `dir`, creating it with `create` when the directory holds none.
   * NOT_FOUND without a collection and without `create`; SCHEMA_MISMATCH when `create`
   * disagrees with the stored schema (declaring new fields is allowed: they are added);
   * LOCKED when another writer holds the directory.
   */
  static async open(dir: Directory, create: ManifestSchema | undefined, o: EngineOptions): Promise<Engine> {
    const readOnly = o.readOnly ?? false;
    const lock = readOnly ? null : await dir.lock();
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          return await Engine.openLocked(dir, create, o, lock);
        } catch (e) {
          // a reader can race the writer deleting files it just read about: retry from the manifest
          const retry = readOnly && attempt < 3 && e instanceof QuiverError && e.code === 'IO_ERROR' && e.details.errno === 'ENOENT';
          if (!retry) throw e;
        }
      }
    } catch (e) {
      await lock?.release();
      throw e;
    }
  }

  /**
   * An engine over a fresh directory that needs no I/O to start (in-memory collections): no
   * lock, no manifest until a seal writes one, no WAL.
   */
  static createInMemory(dir: Directory, schema: ManifestSchema, o: EngineOptions): Engine {
    const manifest: ManifestState = { generation: 0, schema, nextSegment: 1, walStart: 1, appliedSeq: 0, createdAt: new Date().toISOString(), segments: [] };
    const e = new Engine(dir, manifest, { ...o, wal: false, readOnly: false }, { walFiles: 0, walRecords: 0, orphansRemoved: [] });
    e.state.mutable = e.state.newMutable();
    return e;
  }

  private static async openLocked(dir: Directory, create: ManifestSchema | undefined, o: EngineOptions, lock: DirectoryLock | null): Promise<Engine> {
    const readOnly = o.readOnly ?? false;
    let manifest = await readManifest(dir);
    const recovery: RecoveryReport = { walFiles: 0, walRecords: 0, orphansRemoved: [] };
    let addFields: FieldDef[] = [];
    if (!manifest) {
      if (!create) throw new QuiverError('NOT_FOUND', `no collection in ${dir.description} (no MANIFEST); pass a schema to create one`, { directory: dir.description });
      if (readOnly) throw new QuiverError('READ_ONLY', `cannot create a collection in ${dir.description} read-only`, { directory: dir.description });
      manifest = { generation: 1, schema: create, nextSegment: 1, walStart: 1, appliedSeq: 0, createdAt: new Date().toISOString(), segments: [] };
      await writeManifest(dir, manifest);
    } else if (create) {
      addFields = schemaChanges(dir, manifest.schema, create, readOnly);
    }
    const engine = new Engine(dir, manifest, { ...o, readOnly }, recovery);
    engine.lock = lock;
    try {
      const { writer, tail } = await recover(dir, engine.state, {
        readOnly, walEnabled: engine.walEnabled, walMaxRecordBytes: engine.walMaxRecordBytes,
        emit: (e) => engine.emit(e), loadSealed: (entry) => engine.loadSealed(entry),
      }, recovery);
      engine.wal = writer;
      engine.walTail = tail;
      engine.appliedSeq = Math.max(engine.state.nextSeq - 1, manifest.committedSeq ?? 0);
      if (addFields.length) await engine.addFields(addFields);
      if (engine.wal && engine.state.mutable.count >= engine.state.sealRows) engine.scheduleSeal();
    } catch (e) {
      await engine.releaseAll();
      throw e;
    }
    return engine;
  }

  /** Loads a sealed segment in fresh kernels. */
  async loadSealed(entry: ManifestSegment, schema: ManifestSchema = this.state.schema): Promise<SealedSegment> {
    const s = schema;
    return SealedSegment.load(this.dir, entry, {
      kernels: this.newKernels(), dimension: s.dimension, metric: s.metric, spec: this.state.spec, fields: s.fields, pause: yieldToEventLoop,
    });
  }

  // ---- writes ----

  private checkWritable(): void {
    if (this.closed) throw new QuiverError('CLOSED', 'the collection is closed');
    if (this.readOnly) throw new QuiverError('READ_ONLY', `${this.dir.description} is open read-only`, { directory: this.dir.description });
    if (this.lane.poisoned) throw this.lane.poisoned;
  }

  private recordFields(): RecordField[] {
    return this.state.fields.map((f) => ({ name: f.name, type: f.type }));
  }

  /** Encodes a write's WAL record (null without a WAL) and checks it fits, before anything is queued. */
  private record(encode: (seq: number) => Uint8Array): { seq: number; payload: Uint8Array | null } {
    const seq = this.state.nextSeq;
    const payload = this.walEnabled ? encode(seq) : null;
    if (payload) checkRecordSize(payload.length, this.walMaxRecordBytes);
    this.state.nextSeq++;
    return { seq, payload };
  }

  /**
   * Durably upserts records (one atomic WAL record); resolves once applied. `fields`: the
   * declared fields the records were split with.
   */
  upsert(records: readonly PreparedRecord[]): Promise<void> {
    this.checkWritable();
    const fields = this.recordFields();
    const { seq, payload } = this.record((s) => encodeUpsert(s, this.schema.dimension, records, fields));
    return this.lane.submit(payload, () => {
      const missing = this.state.fieldsNotIn(fields);
      for (const r of records) this.state.applyUpsert(r, r.invNorm, seq, missing);
      this.appliedSeq = seq;
    });
  }

  /** Durably deletes ids; resolves to how many were present. */
  delete(ids: readonly string[]): Promise<number> {
    this.checkWritable();
    const { seq, payload } = this.record((s) => encodeDelete(s, ids));
    return this.lane.submit(payload, () => {
      let n = 0;
      for (const id of ids) if (this.state.applyDelete(id)) n++;
      this.appliedSeq = seq;
      return n;
    });
  }

  /**
   * Durably replaces (or merges into) records' metadata, keeping their vectors; resolves to how
   * many existed. Built in the lane against the state it applies to and logged as the upsert it
   * amounts to (vector included), so replay is independent of the rows it replaced.
   */
  update(entries: readonly MetadataPatch[], merge: boolean): Promise<number> {
    this.checkWritable();
    const known = this.recordFields(); // the fields the patches were split with (same tick)
    const seq = this.state.nextSeq++; // reserved now: records carry increasing numbers in queue order
    return this.lane.submitLate(() => {
      const st = this.state;
      const fields = this.recordFields();
      const missing = st.fieldsNotIn(known);
      // by id: a later entry for the same id applies on top of the earlier one
      const planned = new Map<string, UpsertEntry>();
      for (const e of entries) {
        const patch = missing.length ? adoptFromJson({ json: e.metadataJson, values: e.values }, missing) : { json: e.metadataJson, values: e.values };
        const u = st.planUpdate(e.id, patch, merge, planned.get(e.id));
        if (u) planned.set(e.id, u);
      }
      const upserts = [...planned.values()];
      if (upserts.length === 0) return { payload: null, apply: () => 0 };
      const payload = this.walEnabled ? encodeUpsert(seq, this.schema.dimension, upserts, fields) : null;
      if (payload) checkRecordSize(payload.length, this.walMaxRecordBytes);
      return {
        payload,
        apply: () => {
          for (const u of upserts) st.applyUpsert(u, inverseNorm(u.vector, st.schema.metric), seq, []);
          this.appliedSeq = seq;
          return upserts.length;
        },
      };
    });
  }

  /**
   * Declares new fields (in the lane): a durable collection writes a new manifest first; then
   * the mutable segment adopts their values from its rows' JSON. Fields already declared with
   * the same type are ignored; another type is SCHEMA_MISMATCH.
   */
  async addFields(defs: readonly Omit<FieldDef, 'id'>[]): Promise<void> {
    this.checkWritable();
    await this.lane.run(async () => {
      const st = this.state;
      const fields = [...st.fields];
      const added: FieldDef[] = [];
      let nextId = fields.reduce((a, f) => Math.max(a, f.id), 0) + 1;
      for (const d of defs) {
        const have = fields.find((f) => f.name === d.name);
        if (have) {
          if (have.type !== d.type) throw new QuiverError('SCHEMA_MISMATCH', `field "${d.name}" is declared ${have.type}, not ${d.type} (a field's type cannot change)`, { field: d.name, expected: have.type, received: d.type });
          if (have.analyzer !== d.analyzer) throw new QuiverError('SCHEMA_MISMATCH', `text field "${d.name}" is analyzed by "${have.analyzer}", not "${d.analyzer}" (an analyzer cannot change)`, { field: d.name, expected: have.analyzer, received: d.analyzer });
          continue;
        }
        if (d.embed) throw new QuiverError('SCHEMA_MISMATCH', `field "${d.name}" cannot be added with embed: true (the embedded field is chosen when the collection is created)`, { field: d.name });
        const def: FieldDef = Object.freeze({ ...d, id: nextId++ });
        fields.push(def);
        added.push(def);
      }
      if (added.length === 0) return;
      const next: ManifestState = { ...st.manifest, generation: st.manifest.generation + 1, committedSeq: this.appliedSeq, schema: { ...st.schema, fields: Object.freeze(fields) } };
      if (this.walEnabled || st.manifest.generation > 0) await writeManifest(this.dir, next);
      st.manifest = next;
      for (const def of added) st.addField(def);
    });
  }

  private afterApply(): void {
    const st = this.state, m = st.mutable;
    if (m.count >= st.sealRows && this.tasksPending === 0) this.scheduleSeal();
    else if (m.deleted >= 1024 && m.deleted * 2 > m.count) st.vacuumMutable();
  }

  // ---- background maintenance: sealing and merging, one task at a time ----

  /**
   * Queues a maintenance task. A background task's error is kept and reported by the next
   * flush()/idle(); a foreground task's error goes to its caller only.
   */
  private runTask(task: () => Promise<void>, foreground = false): Promise<void> {
    this.tasksPending++;
    const run = this.tasks.then(task).finally(() => { this.tasksPending--; });
    this.tasks = run.catch((e) => {
      if (foreground) return;
      const err = e instanceof QuiverError ? e : new QuiverError('IO_ERROR', `background work failed: ${(e as Error).message}`, {}, { cause: e });
      this.backgroundError = err;
      this.emit({ type: 'background-error', error: err });
    });
    return run;
  }

  private scheduleSeal(): void {
    if (this.readOnly || this.closed) return;
    void this.runTask(async () => {
      await this.maintenance.seal();
      if (this.autoMerge) await this.maintenance.mergeByPolicy();
    }).catch(() => {});
  }

  /** Makes every acknowledged write part of a sealed segment (and waits for background work). */
  async flush(): Promise<void> {
    this.checkWritable();
    await this.lane.drain();
    this.throwBackgroundError();
    await this.runTask(() => this.maintenance.seal(), true);
  }

  /** Flushes, then merges every sealed segment into one, dropping deleted rows. */
  async compact(): Promise<void> {
    await this.flush();
    await this.runTask(() => this.maintenance.compact(), true);
  }

  /** Waits until no write, seal or merge is pending. */
  async idle(): Promise<void> {
    await this.lane.drain();
    while (this.tasksPending > 0) await this.tasks;
    this.throwBackgroundError();
  }

  private throwBackgroundError(): void {
    const e = this.backgroundError;
    if (e) {
      this.backgroundError = null;
      throw e;
    }
  }

  // ---- reads ----

  get size(): number { return this.state.ids.size; }
  has(id: string): boolean { this.checkOpen(); return this.state.ids.has(id); }

  /** The segment and ordinal of a live id, or undefined (valid until the next write or install). */
  locate(id: string): { segment: Segment; ord: number } | undefined {
    this.checkOpen();
    return this.state.ids.get(id);
  }

  /** Segments in search order (oldest first), each once. */
  segments(): Segment[] { return this.state.segments(); }

  /** A snapshot of the current segments; release() it when done reading. */
  snapshot(): Snapshot {
    this.checkOpen();
    return new Snapshot(this.state.segments());
  }

  /** Searches the segments of `snap` (the caller releases it). */
  search(snap: Snapshot, queries: Float32Array, nq: number, k: number, params: IndexSearchParams = {}, filter?: ParsedFilter): SnapshotSearchResult {
    this.checkOpen();
    return searchSnapshot(snap, queries, nq, k, params, filter);
  }

  // ---- read-only engines: following the writer ----

  /**
   * Brings a read-only engine up to what the writer has made durable (see refresh.ts); calls are
   * serialized. INVALID_ARGUMENT on a writer: it holds its own state, there is nothing to follow.
   */
  refresh(upTo?: number): Promise<RefreshResult> {
    this.checkOpen();
    if (!this.readOnly || !this.walEnabled) {
      throw new QuiverError('INVALID_ARGUMENT', 'refresh() follows a writer from a read-only opener (Collection.open(dir, { readOnly: true })); this collection is its own writer', { readOnly: this.readOnly });
    }
    const run = this.refreshing.then(async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await refreshOnce(this, upTo);
        } catch (e) {
          // the writer removed a file between our reading the manifest and the file: start over
          const retry = attempt < 5 && e instanceof QuiverError && e.code === 'IO_ERROR' && e.details.errno === 'ENOENT';
          if (!retry) throw e;
        }
      }
    });
    this.refreshing = run.catch(() => {});
    return run;
  }

  newState(manifest: ManifestState): CollectionState {
    return new CollectionState(manifest, this.newKernels, this.sealRows);
  }

  checkOpen(): void {
    if (this.closed) throw new QuiverError('CLOSED', 'the collection is closed');
  }

  info(): { segments: SegmentInfo[]; manifestGeneration: number; walGeneration: number | null; walBytes: number; nextSeq: number; appliedSeq: number; pendingCleanup: string[]; kernelMemoryBytes: number; callbackErrors: number } {
    const st = this.state;
    const segs: SegmentInfo[] = st.sealed.map((s) => ({ number: s.number, state: 'sealed', rows: s.count, deleted: s.deleted, fileBytes: s.fileBytes, memoryBytes: s.memoryBytes, index: s.index.description }));
    if (st.sealing) segs.push({ number: st.sealing.number, state: 'sealing', rows: st.sealing.count, deleted: st.sealing.deleted, fileBytes: 0, memoryBytes: st.sealing.memoryBytes, index: 'Flat' });
    segs.push({ number: st.mutable.number, state: 'mutable', rows: st.mutable.count, deleted: st.mutable.deleted, fileBytes: 0, memoryBytes: st.mutable.memoryBytes, index: 'Flat' });
    const memories = new Set(st.segments().map((s) => s.kernels.memory));
    let kernelMemoryBytes = 0;
    for (const m of memories) kernelMemoryBytes += m.buffer.byteLength;
    return {
      segments: segs, manifestGeneration: st.manifest.generation, walGeneration: this.wal?.generation ?? (this.readOnly && this.walEnabled ? this.walTail.generation : null), walBytes: this.wal?.size ?? (this.readOnly ? this.walTail.offset : 0),
      nextSeq: st.nextSeq, appliedSeq: this.appliedSeq, pendingCleanup: [...this.maintenance.pendingCleanup], kernelMemoryBytes, callbackErrors: this.callbacks.errors(),
    };
  }

  /** Checks every checksum of every file (manifest, segments, WAL). */
  async verify(): Promise<VerifyReport> {
    this.checkOpen();
    return verifyFiles(this.dir, this.state.manifest, this.schema.dimension);
  }

  get memoryBytes(): number {
    return this.state.segments().reduce((a, s) => a + s.memoryBytes, 0);
  }

  /** Waits for pending writes and background work, then releases files, memory and the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.readOnly) {
        await this.lane.drain();
        while (this.tasksPending > 0) await this.tasks;
        await this.maintenance.retryCleanup();
      }
    } finally {
      this.closed = true;
      await this.releaseAll();
    }
  }

  private async releaseAll(): Promise<void> {
    this.lane.rejectQueued(new QuiverError('CLOSED', 'the collection was closed before this write was committed'));
    const st = this.state;
    for (const s of st.sealed) s.release();
    st.sealed = [];
    st.sealing?.release();
    st.sealing = null;
    st.mutable?.release();
    await this.wal?.close().catch(() => {});
    this.wal = null;
    st.ids.clear();
    await this.lock?.release();
    this.lock = null;
  }
}

/**
 * Compares a requested schema with the stored one: SCHEMA_MISMATCH when dimension, metric,
 * index or the type of a declared field differ; returns the requested fields not declared yet
 * (to add). A read-only opener cannot add fields.
 */
function schemaChanges(dir: Directory, stored: ManifestSchema, requested: ManifestSchema, readOnly: boolean): FieldDef[] {
  const mismatch = (why: string) => new QuiverError('SCHEMA_MISMATCH', `${dir.description} holds a collection with schema ${JSON.stringify(stored)}, not ${JSON.stringify(requested)}: ${why}`, {
    directory: dir.description, expected: stored, received: requested,
  });
  if (requested.dimension !== stored.dimension) throw mismatch('dimension differs');
  if (requested.metric !== stored.metric) throw mismatch('metric differs');
  if (requested.index !== stored.index) throw mismatch('index spec differs');
  if (requested.embedder !== undefined && requested.embedder !== stored.embedder) throw mismatch(`embedder differs (stored: ${stored.embedder ?? 'none'})`);
  const added: FieldDef[] = [];
  for (const f of requested.fields) {
    const have = stored.fields.find((s) => s.name === f.name);
    if (have && have.type !== f.type) throw mismatch(`field "${f.name}" is ${have.type}, not ${f.type}`);
    if (have && have.analyzer !== f.analyzer) throw mismatch(`text field "${f.name}" is analyzed by "${have.analyzer}", not "${f.analyzer}"`);
    if (!have) added.push(f);
  }
  if (added.length && readOnly) throw mismatch(`fields ${added.map((f) => f.name).join(', ')} are not declared, and a read-only opener cannot add them`);
  return added;
}

/** Lets other work (writes, searches, I/O callbacks) run before continuing. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
