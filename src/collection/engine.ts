import { QuiverError } from '../errors.js';
import { parseIndexSpec, type IndexSpec } from '../index/spec.js';
import type { Kernels } from '../kernels/types.js';
import type { Directory, DirectoryLock } from '../storage/directory.js';
import { MANIFEST_TMP, readManifest, writeManifest, type ManifestSchema, type ManifestState } from '../storage/manifest.js';
import { decodeOperation, encodeDelete, encodeUpsert, type UpsertEntry, type WalOperation } from '../storage/records.js';
import { SECTION, segmentFileName, segmentNumber, SegmentFile } from '../storage/segment-file.js';
import { readWalBytes, walFileName, walGeneration, WalWriter } from '../storage/wal.js';
import { growBitset, testBit } from '../util/bitset.js';
import { MIN_QUANTIZED_ROWS, MutableSegment, SealedSegment, writeSegmentFile, type Segment } from './segments.js';
import { norm } from './validate.js';

/**
 * The storage engine behind a Collection: a WAL, one mutable segment, immutable sealed segments,
 * a manifest, and the background work that seals and merges segments.
 *
 * Write path: validate (Collection) -> WAL record appended -> group commit (one sync covers every
 * record queued meanwhile) -> applied to memory -> the promise resolves. Memory only ever holds
 * effects of durable records, so a manifest written at any moment is consistent with replaying
 * the WAL from its `walStart` (replay is idempotent).
 *
 * Concurrency: JavaScript runs one call at a time, so every synchronous method (search, get)
 * sees one consistent state. State changes that span awaits (commit, seal, merge) prepare their
 * work off to the side and install it in one synchronous step inside the writer lane.
 */

export interface EngineOptions {
  kernels: Kernels;
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
  /** Crash-test hook: called at named points of flush and merge (it may throw or kill the process). */
  faults?: (point: string) => void;
  /** Notices: torn WAL tail dropped, orphan files removed, background errors. */
  onEvent?: (event: EngineEvent) => void;
}

export type EngineEvent =
  | { type: 'wal-torn-tail'; file: string; offset: number; droppedBytes: number; reason: string }
  | { type: 'orphan-removed'; file: string }
  | { type: 'sealed'; segment: number; rows: number; bytes: number; ms: number }
  | { type: 'merged'; from: number[]; into: number; rows: number; ms: number }
  | { type: 'background-error'; error: QuiverError };

/** A record ready to write: validated, vector as f32, metadata serialized. */
export interface PreparedRecord extends UpsertEntry {
  /** 1/||vector|| for cosine, else 1. */
  invNorm: number;
}

export interface RecoveryReport {
  walFiles: number;
  walRecords: number;
  tornTail?: { file: string; offset: number; droppedBytes: number; reason: string };
  orphansRemoved: string[];
}

/** Where a live id is: slot of its segment, and its ordinal there. */
type Location = number; // slot * 2^32 + ord
const SLOT_SCALE = 4294967296;

export interface EngineHit { segment: Segment; ord: number; score: number }

export interface EngineSearchResult {
  hits: EngineHit[][];
  /** u32[nq]: vectors scored exactly after compressed scans, per query (0 for exact segments). */
  reranked: Uint32Array;
}

export interface SegmentInfo {
  number: number;
  state: 'mutable' | 'sealing' | 'sealed';
  rows: number;
  deleted: number;
  fileBytes: number;
  memoryBytes: number;
}

export class Engine {
  readonly schema: ManifestSchema;
  readonly indexSpec: IndexSpec;
  readonly dir: Directory;
  readonly kernels: Kernels;
  readonly readOnly: boolean;
  readonly recovery: RecoveryReport;

  private manifest: ManifestState;
  private sealed: SealedSegment[] = [];
  private sealing: MutableSegment | null = null;
  private mutable!: MutableSegment;
  private wal: WalWriter | null = null;
  private readonly walEnabled: boolean;
  private lock: DirectoryLock | null = null;

  /**
   * Where each live id is; built on first need (a write, get, has), not at open: a collection
   * opened to search never pays for hashing every id.
   */
  private locs: Map<string, Location> | null = null;
  private readonly slots: (Segment | null)[] = [];
  private readonly slotOf = new Map<Segment, number>();
  private nextSeq = 1;
  private nextSegment: number;

  private lane: Promise<unknown> = Promise.resolve();
  private queue: { payload: Uint8Array; apply: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  private committing = false;
  private maintenance: Promise<void> = Promise.resolve();
  private maintenancePending = 0;
  private merging = new Set<SealedSegment>();
  private backgroundError: QuiverError | null = null;
  private poisoned: QuiverError | null = null;
  private closed = false;

  private readonly groupCommitMs: number;
  private readonly perCallCommit: boolean;
  readonly sealRows: number;
  private readonly autoMerge: boolean;
  private readonly minQuantizedRows: number;
  private readonly segmentsPerTier: number;
  private readonly maxDeletedRatio: number;
  private readonly faults: ((point: string) => void) | undefined;
  private readonly onEvent: ((e: EngineEvent) => void) | undefined;

  private constructor(dir: Directory, manifest: ManifestState, o: EngineOptions, recovery: RecoveryReport) {
    this.dir = dir;
    this.manifest = manifest;
    this.schema = manifest.schema;
    this.indexSpec = parseIndexSpec(manifest.schema.index);
    this.kernels = o.kernels;
    this.readOnly = o.readOnly ?? false;
    this.walEnabled = o.wal ?? dir.durable;
    this.groupCommitMs = o.groupCommitMs ?? 0;
    this.perCallCommit = o.perCallCommit ?? false;
    const defaultSealRows = Math.max(4096, Math.floor((64 << 20) / (manifest.schema.dimension * 4)));
    this.sealRows = o.sealRows ?? defaultSealRows;
    this.autoMerge = o.autoMerge ?? true;
    this.minQuantizedRows = o.minQuantizedRows ?? MIN_QUANTIZED_ROWS;
    this.segmentsPerTier = o.segmentsPerTier ?? 4;
    this.maxDeletedRatio = o.maxDeletedRatio ?? 0.3;
    this.faults = o.faults;
    this.onEvent = o.onEvent;
    this.nextSegment = manifest.nextSegment;
    this.recovery = recovery;
  }

  /**
   * Opens the collection in `dir`, creating it with `create` when the directory holds none.
   * NOT_FOUND without a collection and without `create`; SCHEMA_MISMATCH when `create` disagrees
   * with the stored schema; LOCKED when another writer holds the directory.
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
    e.mutable = e.newMutable();
    return e;
  }

  private static async openLocked(dir: Directory, create: ManifestSchema | undefined, o: EngineOptions, lock: DirectoryLock | null): Promise<Engine> {
    const readOnly = o.readOnly ?? false;
    let manifest = await readManifest(dir);
    const recovery: RecoveryReport = { walFiles: 0, walRecords: 0, orphansRemoved: [] };
    if (!manifest) {
      if (!create) throw new QuiverError('NOT_FOUND', `no collection in ${dir.description} (no MANIFEST); pass a schema to create one`, { directory: dir.description });
      if (readOnly) throw new QuiverError('READ_ONLY', `cannot create a collection in ${dir.description} read-only`, { directory: dir.description });
      manifest = {
        generation: 1, schema: create, nextSegment: 1, walStart: 1, appliedSeq: 0, createdAt: new Date().toISOString(), segments: [],
      };
      await writeManifest(dir, manifest);
    } else if (create && (create.dimension !== manifest.schema.dimension || create.metric !== manifest.schema.metric || create.index !== manifest.schema.index)) {
      throw new QuiverError('SCHEMA_MISMATCH', `${dir.description} holds a collection with schema ${JSON.stringify(manifest.schema)}, not ${JSON.stringify(create)}`, {
        directory: dir.description, expected: manifest.schema, received: create,
      });
    }
    const engine = new Engine(dir, manifest, { ...o, readOnly }, recovery);
    engine.lock = lock;
    try {
      await engine.load(recovery);
    } catch (e) {
      await engine.releaseAll();
      throw e;
    }
    return engine;
  }

  /** Loads segments, removes orphans (writer only), replays the WAL into the mutable segment. */
  private async load(recovery: RecoveryReport): Promise<void> {
    const m = this.manifest;
    const listed = new Set(m.segments.map((s) => s.file));
    const files = await this.dir.list();
    const walGens = files.map(walGeneration).filter((g) => g >= 0).sort((a, b) => a - b);
    if (!this.readOnly) {
      for (const f of files) {
        const orphanSeg = segmentNumber(f) >= 0 && !listed.has(f);
        const oldWal = walGeneration(f) >= 0 && walGeneration(f) < m.walStart;
        if (orphanSeg || oldWal || f === MANIFEST_TMP) {
          await this.dir.remove(f);
          recovery.orphansRemoved.push(f);
          this.onEvent?.({ type: 'orphan-removed', file: f });
        }
      }
    }
    for (const entry of m.segments) {
      const seg = await SealedSegment.load(this.dir, entry, this.kernels, this.schema.dimension, this.schema.metric, this.indexSpec);
      this.sealed.push(seg);
      this.allocSlot(seg);
    }
    this.mutable = this.newMutable();

    const replay = walGens.filter((g) => g >= m.walStart);
    for (let i = 1; i < replay.length; i++) {
      if (replay[i] !== replay[i - 1] + 1) {
        throw new QuiverError('CORRUPT_WAL', `${this.dir.description}: WAL generation ${replay[i - 1] + 1} is missing between ${replay[i - 1]} and ${replay[i]}`, {
          file: walFileName(replay[i - 1] + 1), offset: 0,
        });
      }
    }
    if (replay.length && replay[0] !== m.walStart) {
      throw new QuiverError('CORRUPT_WAL', `${this.dir.description}: WAL generation ${m.walStart} named by the manifest is missing (found ${replay[0]})`, { file: walFileName(m.walStart), offset: 0 });
    }
    let lastSeq = m.appliedSeq;
    let lastValid = 0;
    for (let i = 0; i < replay.length; i++) {
      const gen = replay[i];
      const name = walFileName(gen);
      const bytes = await this.dir.readFile(name);
      const where = `${this.dir.description}/${name}`;
      const res = readWalBytes(bytes, where, gen, (payload, offset) => {
        const op = decodeOperation(payload, this.schema.dimension, where, offset);
        if (op.seq <= lastSeq) {
          if (op.seq <= m.appliedSeq) return; // already inside the segments
          throw new QuiverError('CORRUPT_WAL', `${where}: sequence number ${op.seq} at byte ${offset} does not increase (previous ${lastSeq})`, { file: where, offset });
        }
        lastSeq = op.seq;
        this.applyOperation(op);
        recovery.walRecords++;
      });
      recovery.walFiles++;
      if (res.torn) {
        const last = i === replay.length - 1;
        if (!last && !this.readOnly) {
          throw new QuiverError('CORRUPT_WAL', `${where}: WAL generation ${gen} is cut short at byte ${res.torn.offset} but a newer generation follows (${res.torn.reason})`, { file: where, offset: res.torn.offset });
        }
        if (last) {
          recovery.tornTail = { file: where, ...res.torn };
          this.onEvent?.({ type: 'wal-torn-tail', file: where, ...res.torn });
        }
      }
      lastValid = res.validBytes;
    }
    this.nextSeq = lastSeq + 1;
    if (this.readOnly || !this.walEnabled) return;
    if (replay.length) this.wal = await WalWriter.reopen(this.dir, replay[replay.length - 1], lastValid);
    else this.wal = await WalWriter.create(this.dir, m.walStart);
    if (this.mutable.count >= this.sealRows) this.scheduleSeal();
  }

  private newMutable(): MutableSegment {
    const m = new MutableSegment(this.nextSegment++, this.kernels, this.schema.dimension, this.schema.metric, this.sealRows);
    this.allocSlot(m);
    return m;
  }

  private get locations(): Map<string, Location> {
    if (this.locs) return this.locs;
    const map = new Map<string, Location>();
    for (const seg of this.segments()) {
      const slot = this.slotOf.get(seg)!;
      for (let ord = 0; ord < seg.count; ord++) if (!seg.isDeleted(ord)) map.set(seg.idAt(ord), slot * SLOT_SCALE + ord);
    }
    this.locs = map;
    return map;
  }

  private allocSlot(seg: Segment): number {
    let slot = this.slots.indexOf(null);
    if (slot < 0) { slot = this.slots.length; this.slots.push(seg); } else this.slots[slot] = seg;
    this.slotOf.set(seg, slot);
    return slot;
  }

  /** Hands `from`'s slot to `to` (same ordinals: a frozen segment becoming sealed). */
  private moveSlot(from: Segment, to: Segment): void {
    const slot = this.slotOf.get(from)!;
    this.slots[slot] = to;
    this.slotOf.delete(from);
    this.slotOf.set(to, slot);
  }

  private freeSlot(seg: Segment): void {
    const slot = this.slotOf.get(seg);
    if (slot === undefined) return;
    this.slots[slot] = null;
    this.slotOf.delete(seg);
  }

  // ---- applying operations (replay and live writes share this) ----

  private applyOperation(op: WalOperation): number {
    if (op.type === 'upsert') {
      for (const e of op.entries) this.applyUpsert(e.id, e.vector, inverseNorm(e.vector, this.schema.metric), e.metadataJson, op.seq);
      return op.entries.length;
    }
    let n = 0;
    for (const id of op.ids) if (this.applyDelete(id)) n++;
    return n;
  }

  private applyUpsert(id: string, vector: Float32Array, invNorm: number, metadataJson: string, seq: number): void {
    const m = this.mutable;
    m.noteSeq(seq);
    const loc = this.locations.get(id);
    if (loc !== undefined) {
      const seg = this.slots[Math.floor(loc / SLOT_SCALE)]!;
      const ord = loc % SLOT_SCALE;
      if (seg === m) { m.overwrite(ord, vector, invNorm, metadataJson); return; }
      this.removeAt(seg, ord);
    }
    const ord = m.append(id, vector, invNorm, metadataJson);
    this.locations.set(id, this.slotOf.get(m)! * SLOT_SCALE + ord);
  }

  private applyDelete(id: string): boolean {
    const loc = this.locations.get(id);
    if (loc === undefined) return false;
    this.locations.delete(id);
    this.removeAt(this.slots[Math.floor(loc / SLOT_SCALE)]!, loc % SLOT_SCALE);
    return true;
  }

  private removeAt(seg: Segment, ord: number): void {
    if (seg instanceof MutableSegment) {
      const movedId = seg.remove(ord);
      if (movedId !== undefined) this.locations.set(movedId, this.slotOf.get(seg)! * SLOT_SCALE + ord);
    } else {
      (seg as SealedSegment).markDeleted(ord);
    }
  }

  // ---- writes ----

  private checkWritable(): void {
    if (this.closed) throw new QuiverError('CLOSED', 'the collection is closed');
    if (this.readOnly) throw new QuiverError('READ_ONLY', `${this.dir.description} is open read-only`, { directory: this.dir.description });
    if (this.poisoned) throw this.poisoned;
  }

  /** Durably upserts records (one atomic WAL record); resolves once applied. */
  upsert(records: readonly PreparedRecord[]): Promise<void> {
    this.checkWritable();
    const seq = this.nextSeq++;
    const payload = this.walEnabled ? encodeUpsert(seq, this.schema.dimension, records) : EMPTY;
    return this.submit(payload, () => {
      for (const r of records) this.applyUpsert(r.id, r.vector, r.invNorm, r.metadataJson, seq);
      return undefined;
    }) as Promise<void>;
  }

  /** Durably deletes ids; resolves to how many were present. */
  delete(ids: readonly string[]): Promise<number> {
    this.checkWritable();
    const seq = this.nextSeq++;
    const payload = this.walEnabled ? encodeDelete(seq, ids) : EMPTY;
    return this.submit(payload, () => {
      let n = 0;
      for (const id of ids) if (this.applyDelete(id)) n++;
      return n;
    }) as Promise<number>;
  }

  private submit(payload: Uint8Array, apply: () => unknown): Promise<unknown> {
    if (!this.walEnabled) {
      // nothing to make durable: apply now, in order with everything else
      try {
        const v = apply();
        this.afterApply();
        return Promise.resolve(v);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ payload, apply, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.committing || this.queue.length === 0) return;
    this.committing = true;
    void this.inLane(() => this.commitGroup()).finally(() => {
      this.committing = false;
      this.kick();
    });
  }

  /** One group commit: every queued record, one sync, then applied in order. */
  private async commitGroup(): Promise<void> {
    if (this.groupCommitMs > 0) await new Promise((r) => setTimeout(r, this.groupCommitMs));
    const batch = this.queue.splice(0, this.perCallCommit ? 1 : this.queue.length);
    if (batch.length === 0) return;
    const wal = this.wal!;
    try {
      if (this.poisoned) throw this.poisoned;
      for (const p of batch) wal.append(p.payload);
      await wal.commit();
    } catch (e) {
      for (const p of batch) p.reject(e);
      return;
    }
    for (const p of batch) {
      try {
        p.resolve(p.apply());
      } catch (e) {
        // durable but not applied: memory no longer matches the log until reopened
        this.poisoned = new QuiverError('IO_ERROR', `a durable write could not be applied in memory (${(e as Error).message}); reopen the collection to replay it`, {}, { cause: e });
        p.reject(e);
      }
    }
    this.afterApply();
  }

  private afterApply(): void {
    if (this.mutable.count >= this.sealRows && this.maintenancePending === 0) this.scheduleSeal();
  }

  /** Runs fn after everything queued in the writer lane. */
  private inLane<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lane.then(fn, fn);
    this.lane = run.catch(() => {});
    return run;
  }

  /** Waits for the writes submitted so far to be durable and applied. */
  private async drainWrites(): Promise<void> {
    while (this.queue.length || this.committing) {
      await this.inLane(async () => {});
      if (this.queue.length && !this.committing) this.kick();
    }
  }

  // ---- background maintenance: sealing and merging, one task at a time ----

  /**
   * Queues a maintenance task. A background task's error is kept and reported by the next
   * flush()/idle(); a foreground task's error goes to its caller only.
   */
  private runMaintenance(task: () => Promise<void>, foreground = false): Promise<void> {
    this.maintenancePending++;
    const run = this.maintenance.then(task).finally(() => { this.maintenancePending--; });
    this.maintenance = run.catch((e) => {
      if (foreground) return;
      const err = e instanceof QuiverError ? e : new QuiverError('IO_ERROR', `background work failed: ${(e as Error).message}`, {}, { cause: e });
      this.backgroundError = err;
      this.onEvent?.({ type: 'background-error', error: err });
    });
    return run;
  }

  private scheduleSeal(): void {
    if (this.readOnly || this.closed) return;
    void this.runMaintenance(async () => {
      await this.sealOnce();
      if (this.autoMerge) await this.mergeByPolicy();
    }).catch(() => {});
  }

  /** Seals the mutable segment (and retries a previously failed seal). */
  private async sealOnce(): Promise<void> {
    let frozen = this.sealing;
    if (!frozen) {
      frozen = await this.inLane(async () => {
        if (this.mutable.count === 0) return null;
        const m = this.mutable;
        m.freeze();
        this.sealing = m;
        this.mutable = this.newMutable();
        if (this.wal) {
          const old = this.wal;
          this.wal = await WalWriter.create(this.dir, old.generation + 1);
          await old.close();
        }
        return m;
      });
      if (!frozen) return;
    }
    const t0 = Date.now();
    const fault = this.faults;
    fault?.('seal:before-write');
    const m = frozen;
    const bytes = await writeSegmentFile(this.dir, {
      number: m.number, dimension: m.dimension, metric: m.metric, count: m.count, minSeq: m.minSeq, maxSeq: m.maxSeq,
      vectorChunks: () => m.store.rawChunks(), ids: m.ids, metadataJson: m.metadataJson, index: this.indexFor(),
    }, fault);
    fault?.('seal:after-write');
    const name = segmentFileName(m.number);
    let file = await SegmentFile.open(this.dir, name);
    // a compressed segment is reloaded from its file (codes in memory, vectors left on disk)
    let loaded: SealedSegment | null = null;
    if (file.has(SECTION.CODES)) {
      await file.close();
      loaded = await SealedSegment.load(this.dir, { number: m.number, file: name, count: m.count, deleted: 0, bytes, tombstones: new Uint32Array(Math.ceil(m.count / 32)) },
        this.kernels, this.schema.dimension, this.schema.metric, this.indexSpec);
      file = loaded.file;
    }
    await this.inLane(async () => {
      let seg: SealedSegment;
      if (loaded) {
        seg = loaded;
        seg.tombstones = growBitset(m.tombstones, m.count).slice();
        seg.deleted = m.deleted;
      } else {
        seg = SealedSegment.fromFrozen(m, file);
      }
      const next: ManifestState = {
        ...this.manifest,
        generation: this.manifest.generation + 1,
        nextSegment: this.nextSegment,
        walStart: this.wal ? this.wal.generation : this.manifest.walStart,
        appliedSeq: Math.max(this.manifest.appliedSeq, m.maxSeq),
        segments: [...this.sealed.map((s) => s.manifestEntry()), seg.manifestEntry()],
      };
      try {
        await writeManifest(this.dir, next, fault);
      } catch (e) {
        if (loaded) await loaded.release(); else await file.close();
        throw e;
      }
      // install: one synchronous step
      this.manifest = next;
      this.sealed.push(seg);
      this.moveSlot(m, seg);
      this.sealing = null;
      if (loaded) m.release();
      await this.removeObsoleteWal();
    });
    this.onEvent?.({ type: 'sealed', segment: m.number, rows: m.count, bytes, ms: Date.now() - t0 });
  }

  /** The index a new segment file gets: codes for a compressed spec. */
  private indexFor(): { spec: IndexSpec; kernels: Kernels; minRows: number } | undefined {
    return this.indexSpec.quantizer ? { spec: this.indexSpec, kernels: this.kernels, minRows: this.minQuantizedRows } : undefined;
  }

  private async removeObsoleteWal(): Promise<void> {
    for (const f of await this.dir.list()) {
      const g = walGeneration(f);
      if (g >= 0 && g < this.manifest.walStart) await this.dir.remove(f);
    }
  }

  /** Picks segments to merge: a size tier holding segmentsPerTier segments, or one tombstone-heavy segment. */
  private pickMerge(all: boolean): SealedSegment[] {
    const candidates = this.sealed.filter((s) => !this.merging.has(s));
    if (all) return candidates.length > 1 || candidates.some((s) => s.deleted > 0) ? candidates : [];
    const heavy = candidates.find((s) => s.count > 0 && s.deleted / s.count > this.maxDeletedRatio);
    if (heavy) return [heavy];
    const tiers = new Map<number, SealedSegment[]>();
    for (const s of candidates) {
      const tier = Math.floor(Math.log(Math.max(1, s.live) / Math.max(1, Math.min(this.sealRows, 1 << 20))) / Math.log(this.segmentsPerTier));
      const t = Math.max(0, tier);
      if (!tiers.has(t)) tiers.set(t, []);
      tiers.get(t)!.push(s);
    }
    for (const t of [...tiers.keys()].sort((a, b) => a - b)) {
      const group = tiers.get(t)!;
      if (group.length >= this.segmentsPerTier) return group.slice(0, this.segmentsPerTier);
    }
    return [];
  }

  private async mergeByPolicy(): Promise<void> {
    for (let rounds = 0; rounds < 16; rounds++) {
      const pick = this.pickMerge(false);
      if (pick.length === 0) return;
      await this.merge(pick);
    }
  }

  /** Rewrites `sources` (sealed segments) as one segment holding their live rows. */
  private async merge(sources: SealedSegment[]): Promise<void> {
    if (sources.length === 0) return;
    const t0 = Date.now();
    for (const s of sources) this.merging.add(s);
    const number = this.nextSegment++;
    const fault = this.faults;
    try {
      // rows live now (a snapshot: the file is read in two passes, codes after vectors);
      // deletes that land while we write are carried over at install
      const startDeleted = sources.map((s) => s.tombstones.slice());
      const rows: { seg: SealedSegment; ord: number }[] = [];
      sources.forEach((seg, si) => { for (let ord = 0; ord < seg.count; ord++) if (!testBit(startDeleted[si], ord)) rows.push({ seg, ord }); });
      const d = this.schema.dimension;
      if (rows.length === 0) {
        // nothing live: drop the sources without writing an empty segment
        await this.inLane(async () => {
          if (sources.some((s) => s.live > 0)) return; // rows cannot come back to life; defensive
          const order = this.sealed.filter((s) => !sources.includes(s));
          const next: ManifestState = { ...this.manifest, generation: this.manifest.generation + 1, nextSegment: this.nextSegment, segments: order.map((s) => s.manifestEntry()) };
          await writeManifest(this.dir, next, fault);
          this.manifest = next;
          this.sealed = order;
          for (const s of sources) this.freeSlot(s);
        });
        for (const s of sources) {
          await s.release();
          await this.dir.remove(s.fileName);
        }
        this.onEvent?.({ type: 'merged', from: sources.map((s) => s.number), into: -1, rows: 0, ms: Date.now() - t0 });
        return;
      }
      const ids = rows.map((r) => r.seg.idAt(r.ord));
      const meta = rows.map((r) => r.seg.metadataJsonAt(r.ord));
      const rowsPerChunk = Math.max(1, Math.floor((4 << 20) / (d * 4)));
      fault?.('merge:before-write');
      await writeSegmentFile(this.dir, {
        number, dimension: d, metric: this.schema.metric, count: rows.length, minSeq: 0, maxSeq: 0,
        // sequential reads of each source, keeping the rows live at the start
        vectorChunks: function* () {
          let out = new Float32Array(rowsPerChunk * d);
          let filled = 0;
          for (let si = 0; si < sources.length; si++) {
            const src = sources[si];
            for (let s = 0; s < src.count; s += rowsPerChunk) {
              const n = Math.min(rowsPerChunk, src.count - s);
              const block = new Float32Array(src.vectorRange(s, n).buffer);
              for (let i = 0; i < n; i++) {
                if (testBit(startDeleted[si], s + i)) continue;
                out.set(block.subarray(i * d, (i + 1) * d), filled * d);
                if (++filled === rowsPerChunk) {
                  yield new Uint8Array(out.buffer);
                  out = new Float32Array(rowsPerChunk * d);
                  filled = 0;
                }
              }
            }
          }
          if (filled) yield new Uint8Array(out.buffer, 0, filled * d * 4);
        },
        ids, metadataJson: meta, index: this.indexFor(),
      }, fault);
      fault?.('merge:after-write');
      const name = segmentFileName(number);
      const seg = await SealedSegment.load(this.dir, {
        number, file: name, count: rows.length, deleted: 0, bytes: 0, tombstones: new Uint32Array(Math.ceil(rows.length / 32)),
      }, this.kernels, d, this.schema.metric, this.indexSpec);
      await this.inLane(async () => {
        // carry deletes that happened during the merge
        rows.forEach((r, i) => { if (r.seg.isDeleted(r.ord)) seg.markDeleted(i); });
        const remaining = this.sealed.filter((s) => !sources.includes(s));
        const at = Math.min(...sources.map((s) => this.sealed.indexOf(s)));
        const order = [...remaining];
        order.splice(Math.min(at, order.length), 0, seg);
        const next: ManifestState = {
          ...this.manifest, generation: this.manifest.generation + 1, nextSegment: this.nextSegment,
          segments: order.map((s) => s.manifestEntry()),
        };
        try {
          await writeManifest(this.dir, next, fault);
        } catch (e) {
          await seg.release();
          await this.dir.remove(name).catch(() => {});
          throw e;
        }
        this.manifest = next;
        this.sealed = order;
        const slot = this.allocSlot(seg);
        if (this.locs) for (let i = 0; i < rows.length; i++) if (!seg.isDeleted(i)) this.locs.set(ids[i], slot * SLOT_SCALE + i);
        for (const s of sources) this.freeSlot(s);
      });
      for (const s of sources) {
        await s.release();
        await this.dir.remove(s.fileName);
      }
      this.onEvent?.({ type: 'merged', from: sources.map((s) => s.number), into: number, rows: rows.length, ms: Date.now() - t0 });
    } catch (e) {
      await this.dir.remove(segmentFileName(number)).catch(() => {});
      throw e;
    } finally {
      for (const s of sources) this.merging.delete(s);
    }
  }

  /** Makes every acknowledged write part of a sealed segment (and waits for background work). */
  async flush(): Promise<void> {
    this.checkWritable();
    await this.drainWrites();
    this.throwBackgroundError();
    await this.runMaintenance(() => this.sealOnce(), true);
  }

  /** Flushes, then merges every sealed segment into one, dropping deleted rows. */
  async compact(): Promise<void> {
    await this.flush();
    await this.runMaintenance(async () => {
      const pick = this.pickMerge(true);
      if (pick.length) await this.merge(pick);
    }, true);
  }

  /** Waits until no background seal or merge is running. */
  async idle(): Promise<void> {
    await this.drainWrites();
    while (this.maintenancePending > 0) await this.maintenance;
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

  get size(): number {
    if (this.locs) return this.locs.size;
    return this.segments().reduce((a, s) => a + s.live, 0);
  }
  has(id: string): boolean { return this.locations.has(id); }

  /** The segment and ordinal of a live id, or undefined. */
  locate(id: string): { segment: Segment; ord: number } | undefined {
    const loc = this.locations.get(id);
    if (loc === undefined) return undefined;
    return { segment: this.slots[Math.floor(loc / SLOT_SCALE)]!, ord: loc % SLOT_SCALE };
  }

  /** Segments in search order (oldest first), each once. */
  segments(): Segment[] {
    const out: Segment[] = [...this.sealed];
    if (this.sealing) out.push(this.sealing);
    out.push(this.mutable);
    return out;
  }

  /**
   * The k best live rows for each prepared query (f32[nq * dimension]), merged across segments.
   * Ties order by segment age, then ordinal (older first).
   */
  searchBatch(queries: Float32Array, nq: number, k: number): EngineSearchResult {
    if (this.closed) throw new QuiverError('CLOSED', 'the collection is closed');
    const segs = this.segments().filter((s) => s.live > 0);
    const reranked = new Uint32Array(nq);
    const per = segs.map((s) => s.searchBatch(queries, nq, Math.min(k, s.live), reranked));
    const out: EngineHit[][] = [];
    for (let q = 0; q < nq; q++) {
      const hits: (EngineHit & { si: number })[] = [];
      per.forEach((r, si) => {
        for (let i = 0; i < r.counts[q]; i++) hits.push({ segment: segs[si], ord: r.ords[q * r.k + i], score: r.scores[q * r.k + i] + 0, si }); // + 0: an L2 distance of 0 negated is -0
      });
      if (per.length > 1) hits.sort((a, b) => b.score - a.score || a.si - b.si || a.ord - b.ord);
      out.push(hits.slice(0, k).map(({ segment, ord, score }) => ({ segment, ord, score })));
    }
    return { hits: out, reranked };
  }

  info(): { segments: SegmentInfo[]; manifestGeneration: number; walGeneration: number | null; walBytes: number; nextSeq: number } {
    const segs: SegmentInfo[] = this.sealed.map((s) => ({ number: s.number, state: 'sealed', rows: s.count, deleted: s.deleted, fileBytes: s.fileBytes, memoryBytes: s.memoryBytes }));
    if (this.sealing) segs.push({ number: this.sealing.number, state: 'sealing', rows: this.sealing.count, deleted: this.sealing.deleted, fileBytes: 0, memoryBytes: this.sealing.memoryBytes });
    segs.push({ number: this.mutable.number, state: 'mutable', rows: this.mutable.count, deleted: 0, fileBytes: 0, memoryBytes: this.mutable.memoryBytes });
    return { segments: segs, manifestGeneration: this.manifest.generation, walGeneration: this.wal?.generation ?? null, walBytes: this.wal?.size ?? 0, nextSeq: this.nextSeq };
  }

  /** Checks every checksum of every file (manifest, segments, WAL). */
  async verify(): Promise<{ files: number; bytes: number; problems: { file: string; code: string; message: string }[] }> {
    const problems: { file: string; code: string; message: string }[] = [];
    let files = 0, bytes = 0;
    const record = (file: string, e: unknown) => {
      const q = e instanceof QuiverError ? e : new QuiverError('IO_ERROR', String(e));
      problems.push({ file, code: q.code, message: q.message });
    };
    try {
      await readManifest(this.dir);
      files++;
    } catch (e) { record('MANIFEST', e); }
    for (const s of this.manifest.segments) {
      try {
        const f = await SegmentFile.open(this.dir, s.file);
        try { bytes += f.verifyAll().bytes; } finally { await f.close(); }
        files++;
      } catch (e) { record(s.file, e); }
    }
    for (const name of (await this.dir.list()).filter((f) => walGeneration(f) >= this.manifest.walStart)) {
      try {
        const b = await this.dir.readFile(name);
        readWalBytes(b, `${this.dir.description}/${name}`, walGeneration(name), (payload, off) => decodeOperation(payload, this.schema.dimension, name, off));
        files++;
        bytes += b.length;
      } catch (e) { record(name, e); }
    }
    return { files, bytes, problems };
  }

  get memoryBytes(): number {
    return this.segments().reduce((a, s) => a + s.memoryBytes, 0);
  }

  /** Waits for pending writes and background work, then releases files, memory and the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.readOnly) {
        await this.drainWrites();
        while (this.maintenancePending > 0) await this.maintenance;
      }
    } finally {
      this.closed = true;
      await this.releaseAll();
    }
  }

  private async releaseAll(): Promise<void> {
    for (const q of this.queue.splice(0)) q.reject(new QuiverError('CLOSED', 'the collection was closed before this write was committed'));
    for (const s of this.sealed) await s.release().catch(() => {});
    this.sealed = [];
    this.sealing?.release();
    this.sealing = null;
    this.mutable?.release();
    await this.wal?.close().catch(() => {});
    this.wal = null;
    this.locs = null;
    await this.lock?.release();
    this.lock = null;
  }
}

const EMPTY = new Uint8Array(0);

/** What Collection.prepare computes for a record, recomputed for records replayed from the WAL. */
function inverseNorm(v: Float32Array, metric: string): number {
  if (metric !== 'cosine') return 1;
  const n = norm(v);
  return n > 0 ? 1 / n : 0;
}

