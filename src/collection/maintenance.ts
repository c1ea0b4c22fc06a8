import { QuiverError } from '../errors.js';
import type { FieldValues } from '../fields/types.js';
import type { Kernels } from '../kernels/types.js';
import type { GraphBuildThreads } from '../index/build-threads.js';
import type { Directory } from '../storage/directory.js';
import { writeManifest, type ManifestState } from '../storage/manifest.js';
import { SECTION, segmentFileName, SegmentFile } from '../storage/segment-file.js';
import { walGeneration, WalWriter } from '../storage/wal.js';
import { bitsetWords } from '../util/bitset.js';
import type { CommitLane } from './commit-lane.js';
import type { EngineEvent } from './events.js';
import { pickMerge, type MergePolicy } from './merge-policy.js';
import type { MutableSegment } from './mutable-segment.js';
import { SealedSegment } from './sealed-segment.js';
import type { Segment } from './segment.js';
import { writeSegmentFile } from './segment-writer.js';
import type { CollectionState } from './state.js';
import { transientBytes, transientFloats } from '../util/transient.js';
import { HnswIndex } from '../index/hnsw.js';
import { MAX_DONOR_DROPPED } from '../index/hnsw-segment.js';
import { IvfIndex } from '../index/ivf.js';
import type { IndexDonor, IndexProgress } from '../index/segment-index.js';

/** What maintenance needs of the engine. */
export interface MaintenanceHost {
  readonly dir: Directory;
  readonly state: CollectionState;
  readonly lane: CommitLane;
  /** The last committed WAL sequence number (written into each manifest as committedSeq). */
  readonly appliedSeq: number;
  /** The current WAL writer (null without a WAL); a seal starts the next generation. */
  wal: WalWriter | null;
  readonly newKernels: () => Kernels;
  readonly buildThreads: GraphBuildThreads | null;
  readonly minQuantizedRows: number;
  readonly policy: MergePolicy;
  readonly faults: ((point: string) => void) | undefined;
  /** Reports an event to the user's callback (never throws). */
  emit(e: EngineEvent): void;
  /** Loads a sealed segment file in fresh kernels (yielding between pieces). */
  loadSealed(entry: ManifestState['segments'][number]): Promise<SealedSegment>;
}

/**
 * Seal and merge: both rewrite some segments' live rows into a new segment file, then install it.
 *
 * 1. Off the lane: note the rows live now, write `seg-<n>.qseg` from them (training a quantizer
 *    for compressed specs) and load it. Writes and searches go on meanwhile.
 * 2. In the writer lane, in one step: carry over deletes that landed meanwhile, write the new
 *    manifest, then install (segments list, id map) synchronously. Until the manifest is
 *    replaced, a failure undoes only the unreferenced new file; after it, nothing is undone.
 * 3. Cleanup of files the new manifest no longer names (older WAL generations, merged sources):
 *    a failure here is reported ('cleanup-failed', info().pendingCleanup) and retried before the
 *    next maintenance task; whatever is left is removed at the next open (orphan sweep).
 *
 * A seal is the rewrite of the frozen mutable segment. When none of its rows had been deleted
 * and the spec keeps it exact, the sealed segment takes over its memory and ordinals.
 */
export class Maintenance {
  /** Files to remove that a cleanup could not (retried before each task). */
  readonly pendingCleanup = new Set<string>();

  constructor(private readonly host: MaintenanceHost) {}

  private get state(): CollectionState { return this.host.state; }

  /** Seals the mutable segment (or retries the seal of a segment left frozen by a failed attempt). */
  async seal(): Promise<void> {
    await this.retryCleanup();
    const h = this.host, st = this.state;
    let frozen = st.sealing;
    if (!frozen) {
      frozen = await h.lane.run(async () => {
        if (st.mutable.count === 0) return null;
        const m = st.mutable;
        m.freeze();
        st.sealing = m;
        st.mutable = st.newMutable();
        if (h.wal) {
          const old = h.wal;
          h.wal = await WalWriter.create(h.dir, old.generation + 1, old.maxRecordBytes);
          await old.close();
        }
        return m;
      });
      if (!frozen) return;
    }
    const m = frozen;
    const t0 = Date.now();
    h.faults?.('seal:before-write');
    const live: number[] = [];
    for (let ord = 0; ord < m.count; ord++) if (!m.isDeleted(ord)) live.push(ord);
    const identity = live.length === m.count;
    const result = live.length ? await this.writeAndLoad(m.number, [m], live.map((ord) => ({ seg: m as Segment, ord })), m.minSeq, m.maxSeq, identity ? m : null) : null;
    h.faults?.('seal:after-write');
    await h.lane.run(async () => {
      const seg = result?.segment ?? null;
      if (seg && !identity) result!.rows.forEach((r, i) => { if (r.seg.isDeleted(r.ord)) seg.markDeleted(i); });
      if (seg && identity) seg.setTombstones(m.tombstones, m.deleted);
      const next: ManifestState = {
        ...st.manifest,
        generation: st.manifest.generation + 1,
        nextSegment: st.nextSegment,
        walStart: h.wal ? h.wal.generation : st.manifest.walStart,
        appliedSeq: Math.max(st.manifest.appliedSeq, m.maxSeq),
        committedSeq: h.appliedSeq,
        segments: [...st.sealed.map((s) => s.manifestEntry()), ...(seg ? [seg.manifestEntry()] : [])],
      };
      await this.replaceManifest(next, seg);
      // installed from here on: one synchronous step, then nothing is undone
      st.manifest = next;
      if (seg) st.sealed.push(seg);
      if (seg && identity) {
        st.ids.replaceSegment(m, seg);
      } else {
        if (seg) {
          st.ids.addSegment(seg);
          result!.rows.forEach((r, i) => { if (!seg.isDeleted(i)) st.ids.setIfBuilt(m.idAt(r.ord), seg, i); });
        }
        st.ids.removeSegment(m);
      }
      st.sealing = null;
      m.release();
    });
    h.emit({ type: 'sealed', segment: m.number, rows: result?.rows.length ?? 0, bytes: result?.bytes ?? 0, ms: Date.now() - t0 });
    await this.removeObsoleteWal();
  }

  /** Merges by policy until nothing qualifies (at most 16 rounds per call). */
  async mergeByPolicy(): Promise<void> {
    for (let round = 0; round < 16; round++) {
      const pick = pickMerge(this.state.sealed, this.host.policy, false);
      if (pick.length === 0) return;
      await this.merge(pick);
    }
  }

  /** Merges every sealed segment into one, dropping deleted rows. */
  async compact(): Promise<void> {
    const pick = pickMerge(this.state.sealed, this.host.policy, true);
    if (pick.length) await this.merge(pick);
  }

  /** Rewrites `sources` (sealed segments) as one segment holding their live rows. */
  async merge(inputs: SealedSegment[]): Promise<void> {
    let sources = inputs;
    if (sources.length === 0) return;
    await this.retryCleanup();
    const h = this.host, st = this.state;
    const t0 = Date.now();
    const number = st.nextSegment++;
    // a graph index reuses its largest input's graph (that input's rows go first); an IVF index
    // its largest input's centroids and quantizer, unless the merged rows drifted from them
    const donorSeg = donorOf(sources);
    if (donorSeg) sources = [donorSeg, ...sources.filter((s) => s !== donorSeg)];
    // rows live now; deletes that land while we write are carried over at install
    const rows: { seg: Segment; ord: number }[] = [];
    for (const seg of sources) for (let ord = 0; ord < seg.count; ord++) if (!seg.isDeleted(ord)) rows.push({ seg, ord });
    let donor: IndexDonor | undefined;
    if (donorSeg && donorSeg.index instanceof HnswIndex) {
      const map = new Int32Array(donorSeg.count).fill(-1);
      rows.forEach((r, i) => { if (r.seg === donorSeg) map[r.ord] = i; });
      donor = { kind: 'graph', graph: donorSeg.index.graph, map, calibration: donorSeg.index.calibration };
    } else if (donorSeg && donorSeg.index instanceof IvfIndex) {
      const from = rows.findIndex((r) => r.seg !== donorSeg);
      donor = { kind: 'ivf', index: donorSeg.index, donorRows: from === -1 ? rows.length : from };
    }
    h.faults?.('merge:before-write');
    let reused = false;
    const result = rows.length ? await this.writeAndLoad(number, sources, rows, 0, 0, null, donor, () => { reused = true; }) : null;
    h.faults?.('merge:after-write');
    await h.lane.run(async () => {
      const seg = result?.segment ?? null;
      if (seg) rows.forEach((r, i) => { if (r.seg.isDeleted(r.ord)) seg.markDeleted(i); });
      const order = st.sealed.filter((s) => !sources.includes(s));
      if (seg) order.splice(Math.min(Math.min(...sources.map((s) => st.sealed.indexOf(s))), order.length), 0, seg);
      const next: ManifestState = { ...st.manifest, generation: st.manifest.generation + 1, nextSegment: st.nextSegment, committedSeq: h.appliedSeq, segments: order.map((s) => s.manifestEntry()) };
      await this.replaceManifest(next, seg);
      // installed from here on
      st.manifest = next;
      st.sealed = order;
      if (seg) {
        st.ids.addSegment(seg);
        rows.forEach((r, i) => { if (!seg.isDeleted(i)) st.ids.setIfBuilt(r.seg.idAt(r.ord), seg, i); });
      }
      for (const s of sources) {
        st.ids.removeSegment(s);
        s.release();
      }
    });
    h.emit({ type: 'merged', from: inputs.map((s) => s.number), into: result ? number : -1, rows: rows.length, ms: Date.now() - t0, ...(donor?.kind === 'graph' ? { graphFrom: donorSeg!.number } : {}), ...(donor?.kind === 'ivf' ? { listsFrom: donorSeg!.number, retrained: !reused } : {}) });
    for (const s of sources) await this.removeFile(s.fileName);
  }

  /**
   * Writes segment `number` from `rows` (live rows of `sources`, in order) and loads it.
   * `reuse`: a frozen mutable segment written whole with the same ordinals, whose memory the
   * sealed segment takes over when it stays exact.
   */
  private async writeAndLoad(number: number, sources: readonly Segment[], rows: { seg: Segment; ord: number }[], minSeq: number, maxSeq: number, reuse: MutableSegment | null, donor?: IndexDonor, onReuse?: () => void): Promise<{ segment: SealedSegment; rows: { seg: Segment; ord: number }[]; bytes: number }> {
    const h = this.host, st = this.state;
    const d = st.schema.dimension;
    const fields = st.fields;
    const ids: string[] = new Array(rows.length), meta: string[] = new Array(rows.length), values: FieldValues[] = new Array(rows.length);
    const lacking = new Map(sources.map((s) => [s, st.lackingFields(s)]));
    rows.forEach((r, i) => {
      ids[i] = r.seg.idAt(r.ord);
      const split = st.currentMetadata(r.seg, r.ord, lacking.get(r.seg));
      meta[i] = split.json;
      values[i] = split.values;
    });
    const name = segmentFileName(number);
    try {
      const bytes = await writeSegmentFile(h.dir, {
        number, dimension: d, metric: st.schema.metric, count: rows.length, minSeq, maxSeq,
        vectorChunks: () => liveVectorChunks(sources, rows, d),
        ids, metadataJson: meta, values, fields,
        // the same rows with the same ordinals: the mutable segment's postings are the segment's
        postings: reuse ? (field) => reuse.mutableTextPostings(field)?.toLists() : undefined,
        index: { spec: st.spec, kernels: h.newKernels(), threads: h.buildThreads, minRows: h.minQuantizedRows, donor: donor && { ...donor, onReuse } as IndexDonor, progress: throttledProgress((phase, done, total, threads) => h.emit({ type: 'index-progress', segment: number, phase, done, total, ...(threads !== undefined ? { threads } : {}) })) },
      }, h.faults);
      let segment: SealedSegment;
      const file = reuse ? await SegmentFile.open(h.dir, name) : null;
      if (file && !file.has(SECTION.CODES) && !file.has(SECTION.IVF) && !file.has(SECTION.GRAPH)) {
        segment = SealedSegment.fromFrozen(reuse!, file);
      } else {
        await file?.close();
        segment = await h.loadSealed({ number, file: name, count: rows.length, deleted: 0, bytes, tombstones: new Uint32Array(bitsetWords(rows.length)) });
      }
      return { segment, rows, bytes };
    } catch (e) {
      await h.dir.remove(name).catch(() => {}); // referenced by nothing: safe to drop
      throw e;
    }
  }

  /**
   * Writes the manifest that installs `seg` (atomic replace). If that fails, nothing was
   * installed: the new segment is dropped and the error goes to the caller.
   */
  private async replaceManifest(next: ManifestState, seg: SealedSegment | null): Promise<void> {
    try {
      await writeManifest(this.host.dir, next, this.host.faults);
    } catch (e) {
      if (seg) await this.discard(seg);
      throw e;
    }
  }

  /** Drops a segment that was written and loaded but never installed. */
  private async discard(seg: SealedSegment): Promise<void> {
    seg.release();
    await this.host.dir.remove(seg.fileName).catch(() => {});
  }

  private async removeObsoleteWal(): Promise<void> {
    let names: string[];
    try {
      names = await this.host.dir.list();
    } catch (e) {
      this.host.emit({ type: 'cleanup-failed', file: '(directory listing)', error: asQuiverError(e) });
      return;
    }
    for (const f of names) {
      const g = walGeneration(f);
      if (g >= 0 && g < this.state.manifest.walStart) await this.removeFile(f);
    }
  }

  /** Removes a file the manifest no longer names; a failure is reported and retried later, never thrown. */
  private async removeFile(name: string): Promise<void> {
    try {
      await this.host.dir.remove(name);
      this.pendingCleanup.delete(name);
    } catch (e) {
      this.pendingCleanup.add(name);
      this.host.emit({ type: 'cleanup-failed', file: name, error: asQuiverError(e) });
    }
  }

  /** Retries removals that failed earlier. */
  async retryCleanup(): Promise<void> {
    for (const name of [...this.pendingCleanup]) await this.removeFile(name);
  }
}

/**
 * The vectors of `rows` (live rows of `sources`, in source order) as chunks of ~4 MiB, read
 * with sequential range reads of each source rather than row by row. One output buffer and one
 * read buffer serve every chunk: the consumer (the segment writer) is done with a chunk before
 * it asks for the next, and the import of a large collection does not leave a trail of
 * multi-megabyte garbage behind (which the C allocator tends to keep as resident memory).
 */
/** `report`, called at most every 100 ms (and always for a phase's last unit). */
function throttledProgress(report: IndexProgress): IndexProgress {
  let last = 0;
  return (phase, done, total, threads) => {
    const now = Date.now();
    if (done < total && now - last < 100) return;
    last = now;
    report(phase, done, total, threads);
  };
}

/**
 * The merge input whose index the merged segment starts from: the largest with an HNSW graph of
 * the collection's degree that drops at most MAX_DONOR_DROPPED of its rows, or the largest with
 * an IVF index; null if none.
 */
function donorOf(sources: readonly SealedSegment[]): SealedSegment | null {
  let best: SealedSegment | null = null;
  for (const s of sources) {
    const ok = s.index instanceof IvfIndex || (s.index instanceof HnswIndex && s.deleted <= s.count * MAX_DONOR_DROPPED);
    if (ok && (!best || s.live > best.live)) best = s;
  }
  return best;
}

function* liveVectorChunks(sources: readonly Segment[], rows: readonly { seg: Segment; ord: number }[], d: number): Generator<Uint8Array> {
  const rowsPerChunk = Math.max(1, Math.min(rows.length, Math.floor((4 << 20) / (d * 4))));
  const out = transientFloats(rowsPerChunk * d);
  const outBytes = new Uint8Array(out.buffer, 0, rowsPerChunk * d * 4);
  const read = transientBytes(rowsPerChunk * d * 4);
  const block = new Float32Array(read.buffer, 0, rowsPerChunk * d);
  let filled = 0;
  let r = 0;
  for (const src of sources) {
    for (let s = 0; s < src.count && r < rows.length; s += rowsPerChunk) {
      if (rows[r].seg !== src) break;
      const n = Math.min(rowsPerChunk, src.count - s);
      if (rows[r].ord >= s + n) continue; // no wanted row in this range
      src.vectorRange(s, n, read);
      while (r < rows.length && rows[r].seg === src && rows[r].ord < s + n) {
        // a run of consecutive live rows is one copy
        const i = rows[r].ord - s;
        let run = 1;
        while (filled + run < rowsPerChunk && r + run < rows.length && rows[r + run].seg === src && rows[r + run].ord === rows[r].ord + run && i + run < n) run++;
        out.set(block.subarray(i * d, (i + run) * d), filled * d);
        r += run;
        filled += run;
        if (filled === rowsPerChunk) {
          yield outBytes;
          filled = 0;
        }
      }
    }
  }
  if (filled) yield outBytes.subarray(0, filled * d * 4);
}

function asQuiverError(e: unknown): QuiverError {
  return e instanceof QuiverError ? e : new QuiverError('IO_ERROR', String((e as Error)?.message ?? e), {}, { cause: e });
}
