import { QuiverError } from '../errors.js';
import type { Directory, RandomAccessFile } from '../storage/directory.js';
import { readManifest, type ManifestSchema, type ManifestSegment, type ManifestState } from '../storage/manifest.js';
import { decodeOperation, type WalOperation } from '../storage/records.js';
import { readWalBytes, scanWalRecords, walFileName, type WalReadResult } from '../storage/wal.js';
import { bitsetWords } from '../util/bitset.js';
import type { WalPosition } from './recovery.js';
import type { SealedSegment } from './sealed-segment.js';
import type { CollectionState } from './state.js';

/** What one refresh of a read-only collection did. */
export interface RefreshResult {
  /** The last write reflected now: the reader's state is the writer's state right after this WAL sequence number. */
  appliedSeq: number;
  /** Whether a new manifest (seal, merge, compaction, fields added) was taken in. */
  manifestChanged: boolean;
  /** Segment files loaded (those the reader did not have yet). */
  segmentsLoaded: number;
  /** Segments the new manifest no longer lists (freed once no search holds them). */
  segmentsDropped: number;
  /** WAL records applied. */
  records: number;
  /** WAL bytes read. */
  walBytes: number;
}

/** What refresh needs of the engine (a read-only one). */
export interface RefreshHost {
  readonly dir: Directory;
  state: CollectionState;
  /** Where the reader stopped in the WAL. */
  walTail: WalPosition;
  /** Last WAL sequence number reflected in `state`. */
  appliedSeq: number;
  /** CLOSED once the collection is closed (checked before installing). */
  checkOpen(): void;
  loadSealed(entry: ManifestSegment, schema: ManifestSchema): Promise<SealedSegment>;
  /** An empty state over `manifest` (no segments yet). */
  newState(manifest: ManifestState): CollectionState;
}

/**
 * Brings a read-only collection up to what the writer has made durable.
 *
 * - Manifest unchanged (same generation of the same collection): reads the WAL from where the
 *   reader stopped (the current generation, then any newer one) and applies the new records to
 *   the mutable segment through CollectionState.apply, as replay does. No segment is loaded.
 * - Manifest changed: loads the segment files the reader does not have (the ones it has are
 *   reused by file name, their tombstones joined with the manifest's), then replays the WAL
 *   generations from the new walStart into a new mutable segment, exactly as opening does.
 *   Segments the manifest no longer lists are released: searches holding them in a snapshot keep
 *   them until they finish.
 *
 * Everything is read first; the new state is then built and installed in one synchronous step,
 * so a search sees the state before or after, never a mix. A record still being written (a torn
 * tail) is not applied yet: the next refresh reads it from the same offset.
 *
 * `upTo`: apply records up to this sequence number only (the writer's last committed one, which
 * a caller got from the writer); records past it may be in the file before their sync finished.
 * The bound never goes below what the reader shows already, nor below the new manifest's
 * committedSeq (its tombstones may reflect writes up to that), so the state is always the
 * writer's state after one committed write. Without `upTo`, every complete record is applied.
 */
export async function refreshOnce(h: RefreshHost, upTo: number | undefined): Promise<RefreshResult> {
  const m2 = await readManifest(h.dir);
  if (!m2) throw new QuiverError('NOT_FOUND', `no collection in ${h.dir.description} any more (no MANIFEST)`, { directory: h.dir.description });
  const st = h.state;
  const dimension = st.schema.dimension;
  const sameCollection = m2.createdAt === st.manifest.createdAt;
  if (sameCollection && m2.generation === st.manifest.generation) {
    const bound = upTo === undefined ? Infinity : Math.max(upTo, h.appliedSeq);
    const read = await readWalFrom(h.dir, h.walTail, bound, dimension);
    h.checkOpen();
    let records = 0;
    for (const op of read.ops) {
      if (op.seq <= h.appliedSeq) continue;
      st.apply(op);
      h.appliedSeq = op.seq;
      records++;
    }
    st.nextSeq = h.appliedSeq + 1;
    h.walTail = read.tail;
    return { appliedSeq: h.appliedSeq, manifestChanged: false, segmentsLoaded: 0, segmentsDropped: 0, records, walBytes: read.bytes };
  }

  const s = m2.schema;
  if (s.dimension !== st.schema.dimension || s.metric !== st.schema.metric || s.index !== st.schema.index) {
    throw new QuiverError('SCHEMA_MISMATCH', `${h.dir.description} now holds another collection (${s.dimension}-d ${s.metric} ${s.index}); reopen it`, {
      directory: h.dir.description, expected: st.schema, received: s,
    });
  }
  // a collection dropped and created again reuses file names: reuse segments only of the same one
  const have = new Map(sameCollection ? st.sealed.map((seg) => [seg.fileName, seg]) : []);
  const loaded: SealedSegment[] = [];
  try {
    const segs: SealedSegment[] = [];
    for (const entry of m2.segments) {
      const mine = have.get(entry.file);
      if (mine && mine.count === entry.count && mine.number === entry.number) {
        segs.push(mine);
      } else {
        const seg = await h.loadSealed(entry, s);
        loaded.push(seg);
        segs.push(seg);
      }
    }
    const bound = upTo === undefined || m2.committedSeq === undefined ? Infinity : Math.max(upTo, h.appliedSeq, m2.committedSeq);
    const read = await readWalFrom(h.dir, { generation: m2.walStart, offset: 0 }, bound, dimension);
    h.checkOpen();

    // install: one synchronous step from here
    const next = h.newState(m2);
    segs.forEach((seg, i) => {
      if (!loaded.includes(seg)) {
        // deletes only ever add tombstones: join what the reader applied with what the manifest says
        const a = seg.tombstones, b = m2.segments[i].tombstones;
        const words = bitsetWords(seg.count);
        const bits = new Uint32Array(words);
        let deleted = 0;
        for (let w = 0; w < words; w++) {
          bits[w] = (a[w] ?? 0) | (b[w] ?? 0);
          deleted += popcount(bits[w]);
        }
        seg.setTombstones(bits, deleted);
      }
      next.sealed.push(seg);
      next.ids.addSegment(seg);
    });
    next.mutable = next.newMutable();
    let last = m2.appliedSeq, records = 0;
    for (const op of read.ops) {
      if (op.seq <= m2.appliedSeq) continue; // already inside the segments
      if (op.seq <= last) throw new QuiverError('CORRUPT_WAL', `${h.dir.description}: WAL sequence number ${op.seq} does not increase (previous ${last})`, { file: h.dir.description, offset: 0 });
      next.apply(op);
      last = op.seq;
      records++;
    }
    next.nextSeq = last + 1;
    const old = h.state;
    h.state = next;
    h.walTail = read.tail;
    h.appliedSeq = Math.max(last, m2.committedSeq ?? 0);
    let dropped = 0;
    for (const seg of old.sealed) {
      if (!segs.includes(seg)) { seg.release(); dropped++; }
    }
    old.sealing?.release();
    old.mutable.release();
    old.ids.clear();
    return { appliedSeq: h.appliedSeq, manifestChanged: true, segmentsLoaded: loaded.length, segmentsDropped: dropped, records, walBytes: read.bytes };
  } catch (e) {
    for (const seg of loaded) seg.release();
    throw e;
  }
}

/**
 * The WAL records from `from` on: the rest of that generation, then the newer generations in
 * order, up to the last complete record or the first record past `bound`. `tail`: where the next
 * read starts (the first record not returned).
 */
export async function readWalFrom(dir: Directory, from: WalPosition, bound: number, dimension: number): Promise<{ ops: WalOperation[]; tail: WalPosition; bytes: number }> {
  const ops: WalOperation[] = [];
  let { generation, offset } = from;
  let bytes = 0;
  for (;;) {
    const name = walFileName(generation);
    const where = `${dir.description}/${name}`;
    // the writer creates the next generation only after its last commit to this one (both in its
    // writer lane): if the next one exists now, everything read from this one below is complete
    const complete = await dir.exists(walFileName(generation + 1));
    let file: RandomAccessFile;
    try {
      file = await dir.openRead(name);
    } catch (e) {
      // not created yet (a collection that never took a write, or a writer between its manifest and its log)
      if (offset === 0 && !complete && isMissing(e)) return { ops, tail: { generation, offset }, bytes };
      throw e;
    }
    let buf: Uint8Array;
    try {
      buf = new Uint8Array(Math.max(0, file.size - offset));
      if (buf.length) file.readInto(offset, buf);
    } finally {
      await file.close();
    }
    bytes += buf.length;
    let stopAt = -1;
    const onRecord = (payload: Uint8Array, at: number) => {
      if (stopAt >= 0) return;
      const op = decodeOperation(payload, dimension, where, at);
      if (op.seq > bound) { stopAt = at; return; }
      ops.push(op);
    };
    const res: WalReadResult = offset === 0 ? readWalBytes(buf, where, generation, onRecord) : scanWalRecords(buf, 0, offset, where, onRecord);
    if (stopAt >= 0) return { ops, tail: { generation, offset: stopAt }, bytes };
    offset = res.validBytes;
    if (!complete) return { ops, tail: { generation, offset }, bytes };
    generation++;
    offset = 0;
  }
}

function isMissing(e: unknown): boolean {
  return e instanceof QuiverError && e.code === 'IO_ERROR' && e.details.errno === 'ENOENT';
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
