import { QuiverError } from '../errors.js';
import type { Directory } from '../storage/directory.js';
import { MANIFEST_TMP, type ManifestSegment } from '../storage/manifest.js';
import { decodeOperation } from '../storage/records.js';
import { segmentNumber } from '../storage/segment-file.js';
import { readWalBytes, walFileName, walGeneration, WalWriter } from '../storage/wal.js';
import type { EngineEvent } from './events.js';
import type { SealedSegment } from './sealed-segment.js';
import type { CollectionState } from './state.js';

export interface RecoveryReport {
  walFiles: number;
  walRecords: number;
  tornTail?: { file: string; offset: number; droppedBytes: number; reason: string };
  orphansRemoved: string[];
}

/** Where a reader stopped in the WAL: the generation and the byte offset of the next record to read (0: header not read yet). */
export interface WalPosition {
  generation: number;
  offset: number;
}

export interface RecoveryOptions {
  readOnly: boolean;
  /** Open a WAL writer (durable writers). */
  walEnabled: boolean;
  walMaxRecordBytes: number;
  emit: (e: EngineEvent) => void;
  loadSealed: (entry: ManifestSegment) => Promise<SealedSegment>;
}

/**
 * Brings `state` (holding the manifest just read) to the collection's last acknowledged state:
 * removes orphans (writer only: segment files the manifest does not name, WAL generations older
 * than its walStart, a leftover MANIFEST.tmp), loads the sealed segments, and replays the WAL
 * generations from walStart into a new mutable segment. A torn tail of the newest generation is
 * dropped and reported (it was never acknowledged); a gap or damage elsewhere is CORRUPT_WAL.
 * Returns the WAL writer to append to (null for readers and collections without a WAL) and where
 * replay stopped (a reader tails the log from there: refresh.ts).
 */
export async function recover(dir: Directory, state: CollectionState, o: RecoveryOptions, recovery: RecoveryReport): Promise<{ writer: WalWriter | null; tail: WalPosition }> {
  const m = state.manifest;
  const listed = new Set(m.segments.map((s) => s.file));
  const files = await dir.list();
  const walGens = files.map(walGeneration).filter((g) => g >= 0).sort((a, b) => a - b);
  if (!o.readOnly) {
    for (const f of files) {
      const orphanSeg = segmentNumber(f) >= 0 && !listed.has(f);
      const oldWal = walGeneration(f) >= 0 && walGeneration(f) < m.walStart;
      if (orphanSeg || oldWal || f === MANIFEST_TMP) {
        await dir.remove(f);
        recovery.orphansRemoved.push(f);
        o.emit({ type: 'orphan-removed', file: f });
      }
    }
  }
  for (const entry of m.segments) {
    const seg = await o.loadSealed(entry);
    state.sealed.push(seg);
    state.ids.addSegment(seg);
  }
  state.mutable = state.newMutable();

  const replay = walGens.filter((g) => g >= m.walStart);
  for (let i = 1; i < replay.length; i++) {
    if (replay[i] !== replay[i - 1] + 1) {
      throw new QuiverError('CORRUPT_WAL', `${dir.description}: WAL generation ${replay[i - 1] + 1} is missing between ${replay[i - 1]} and ${replay[i]}`, {
        file: walFileName(replay[i - 1] + 1), offset: 0,
      });
    }
  }
  if (replay.length && replay[0] !== m.walStart) {
    throw new QuiverError('CORRUPT_WAL', `${dir.description}: WAL generation ${m.walStart} named by the manifest is missing (found ${replay[0]})`, { file: walFileName(m.walStart), offset: 0 });
  }
  const dimension = state.schema.dimension;
  let lastSeq = m.appliedSeq;
  let lastValid = 0;
  for (let i = 0; i < replay.length; i++) {
    const gen = replay[i];
    const name = walFileName(gen);
    const bytes = await dir.readFile(name);
    const where = `${dir.description}/${name}`;
    const res = readWalBytes(bytes, where, gen, (payload, offset) => {
      const op = decodeOperation(payload, dimension, where, offset);
      if (op.seq <= lastSeq) {
        if (op.seq <= m.appliedSeq) return; // already inside the segments
        throw new QuiverError('CORRUPT_WAL', `${where}: sequence number ${op.seq} at byte ${offset} does not increase (previous ${lastSeq})`, { file: where, offset });
      }
      lastSeq = op.seq;
      state.apply(op);
      recovery.walRecords++;
    });
    recovery.walFiles++;
    if (res.torn) {
      const last = i === replay.length - 1;
      if (!last && !o.readOnly) {
        throw new QuiverError('CORRUPT_WAL', `${where}: WAL generation ${gen} is cut short at byte ${res.torn.offset} but a newer generation follows (${res.torn.reason})`, { file: where, offset: res.torn.offset });
      }
      if (last) {
        recovery.tornTail = { file: where, ...res.torn };
        o.emit({ type: 'wal-torn-tail', file: where, ...res.torn });
      }
    }
    lastValid = res.validBytes;
  }
  state.nextSeq = lastSeq + 1;
  const tail: WalPosition = replay.length ? { generation: replay[replay.length - 1], offset: lastValid } : { generation: m.walStart, offset: 0 };
  if (o.readOnly || !o.walEnabled) return { writer: null, tail };
  if (replay.length) return { writer: await WalWriter.reopen(dir, replay[replay.length - 1], lastValid, o.walMaxRecordBytes), tail };
  return { writer: await WalWriter.create(dir, m.walStart, o.walMaxRecordBytes), tail };
}
