import { QuiverError } from '../errors.js';
import { crc32c } from '../util/crc32c.js';
import type { AppendFile, Directory } from './directory.js';
import { transientBytes } from '../util/transient.js';

/**
 * The write-ahead log. One file per generation, `wal-<generation>.log`; a collection replays the
 * generations at or above its manifest's `walStart`, in order.
 *
 * Byte layout (little-endian):
 *   header, 16 bytes:
 *     0  u32  magic 0x4C415751 ("QWAL")
 *     4  u16  format version (1)
 *     6  u16  reserved (0)
 *     8  u32  generation
 *     12 u32  CRC-32C of bytes 0..12
 *   records, back to back:
 *     0  u32  payload length L (1 .. MAX_RECORD_BYTES)
 *     4  L    payload (src/storage/records.ts)
 *     4+L u32 CRC-32C of the length field and the payload
 *
 * Appends are acknowledged only after sync, so a crash can tear at most the records that were
 * never acknowledged, and only at the end of the newest file. Replay therefore stops cleanly at a
 * torn tail (a record running past the end of the file, a zero-filled tail, or a bad checksum on
 * the file's last record) and reports what it dropped; a bad record followed by more data is
 * CORRUPT_WAL with its offset, never skipped silently.
 */
export const WAL_MAGIC = 0x4c415751;
export const WAL_VERSION = 1;
export const WAL_HEADER_BYTES = 16;
/** Largest record payload: keeps one upsert batch a single atomic record of sane size. */
export const MAX_RECORD_BYTES = 512 * 1024 * 1024;

export function walFileName(generation: number): string {
  return `wal-${String(generation).padStart(8, '0')}.log`;
}

/** The generation of a WAL file name, or -1 if `name` is not one. */
export function walGeneration(name: string): number {
  const m = /^wal-(\d{8,})\.log$/.exec(name);
  return m ? Number(m[1]) : -1;
}

export function walHeader(generation: number): Uint8Array {
  const b = new Uint8Array(WAL_HEADER_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, WAL_MAGIC, true);
  v.setUint16(4, WAL_VERSION, true);
  v.setUint16(6, 0, true);
  v.setUint32(8, generation, true);
  v.setUint32(12, crc32c(b, 0, 0, 12), true);
  return b;
}

/** INVALID_ARGUMENT unless a payload of `bytes` fits in one WAL record (checked before a write is queued). */
export function checkRecordSize(bytes: number, max = MAX_RECORD_BYTES): void {
  if (bytes < 1 || bytes > max) {
    throw new QuiverError('INVALID_ARGUMENT', `a write must encode to 1..${max} bytes in the write-ahead log, this one takes ${bytes}; split the batch`, {
      expected: `<= ${max} bytes`, received: bytes,
    });
  }
}

/** Frames one payload as [length, payload, CRC] chunks (the payload is not copied). */
export function frameRecord(payload: Uint8Array, max = MAX_RECORD_BYTES): [Uint8Array, Uint8Array, Uint8Array] {
  checkRecordSize(payload.length, max);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, payload.length, true);
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, crc32c(payload, crc32c(len)), true);
  return [len, payload, crc];
}

export interface WalReadResult {
  /** Byte length of the valid prefix (header + whole, checksummed records). */
  validBytes: number;
  records: number;
  /** Set when replay stopped at a torn tail: where it starts and how many bytes were dropped. */
  torn?: { offset: number; droppedBytes: number; reason: string };
}

/**
 * Reads the records of one WAL file, calling `onRecord(payload, offset)` for each valid one in order.
 * CORRUPT_WAL {file, offset} for a bad header or a bad record that is not the torn tail.
 * A file shorter than its header (a crash while creating it) reads as empty and torn.
 */
export function readWalBytes(bytes: Uint8Array, file: string, expectedGeneration: number, onRecord: (payload: Uint8Array, offset: number) => void): WalReadResult {
  const n = bytes.length;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (n < WAL_HEADER_BYTES) {
    if (bytes.every((b) => b === 0) || n === 0 || matchesHeaderPrefix(bytes, expectedGeneration)) {
      return { validBytes: 0, records: 0, torn: { offset: 0, droppedBytes: n, reason: 'header incomplete (crash while creating the file)' } };
    }
    throw corrupt(file, 0, `file of ${n} bytes is too short for the WAL header and is not a partial header`);
  }
  if (v.getUint32(0, true) !== WAL_MAGIC) throw corrupt(file, 0, 'bad magic: not a QuiverDB WAL file');
  if (v.getUint32(12, true) !== crc32c(bytes, 0, 0, 12)) throw corrupt(file, 12, 'header checksum mismatch');
  const version = v.getUint16(4, true);
  if (version !== WAL_VERSION) {
    throw new QuiverError('UNSUPPORTED_FORMAT', `${file}: WAL format version ${version} is not supported (read: ${WAL_VERSION})`, { file, expected: WAL_VERSION, received: version });
  }
  const gen = v.getUint32(8, true);
  if (gen !== expectedGeneration) throw corrupt(file, 8, `header says generation ${gen}, the file name says ${expectedGeneration}`);
  return scanWalRecords(bytes, WAL_HEADER_BYTES, 0, file, onRecord);
}

/**
 * Reads the records of `bytes` from `start`, as readWalBytes does after the header. `base` is
 * the file offset of bytes[0] (a reader tailing a file reads only what follows its last
 * position): offsets passed to `onRecord` and returned are file offsets. Used by readWalBytes
 * and by read-only collections that tail the log (refresh).
 */
export function scanWalRecords(bytes: Uint8Array, start: number, base: number, file: string, onRecord: (payload: Uint8Array, offset: number) => void): WalReadResult {
  const n = bytes.length;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = start;
  let records = 0;
  while (off < n) {
    const rest = n - off;
    if (rest < 8) {
      return rebase(tornOrCorrupt(bytes, file, off, records, 'record header cut short', base), base);
    }
    const len = v.getUint32(off, true);
    if (len === 0) {
      // a zero-filled tail (space allocated, data never written) is torn; zeros then data is not
      if (allZero(bytes, off)) return rebase({ validBytes: off, records, torn: { offset: off, droppedBytes: rest, reason: 'zero-filled tail' } }, base);
      throw corrupt(file, base + off, 'record of length 0 followed by data');
    }
    if (len > MAX_RECORD_BYTES) {
      return rebase(tornOrCorrupt(bytes, file, off, records, `record length ${len} exceeds the maximum`, base), base);
    }
    if (len + 8 > rest) {
      return rebase({ validBytes: off, records, torn: { offset: off, droppedBytes: rest, reason: `record of ${len} bytes runs past the end of the file` } }, base);
    }
    const stored = v.getUint32(off + 4 + len, true);
    if (stored !== crc32c(bytes, 0, off, off + 4 + len)) {
      if (off + 8 + len === n) return rebase({ validBytes: off, records, torn: { offset: off, droppedBytes: rest, reason: 'checksum mismatch in the last record' } }, base);
      throw corrupt(file, base + off, `checksum mismatch in a record of ${len} bytes followed by ${n - off - 8 - len} more bytes`);
    }
    onRecord(bytes.subarray(off + 4, off + 4 + len), base + off);
    records++;
    off += 8 + len;
  }
  return rebase({ validBytes: off, records }, base);
}

function rebase(r: WalReadResult, base: number): WalReadResult {
  if (base === 0) return r;
  return { validBytes: r.validBytes + base, records: r.records, ...(r.torn ? { torn: { ...r.torn, offset: r.torn.offset + base } } : {}) };
}

function tornOrCorrupt(bytes: Uint8Array, file: string, off: number, records: number, reason: string, base = 0): WalReadResult {
  // garbage that cannot be framed: a torn tail only if it is short enough to be one partial record
  // header, or zeros; anything longer is corruption we must not skip
  const rest = bytes.length - off;
  if (rest < 8 || allZero(bytes, off)) return { validBytes: off, records, torn: { offset: off, droppedBytes: rest, reason } };
  throw corrupt(file, base + off, reason);
}

function allZero(b: Uint8Array, from: number): boolean {
  for (let i = from; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function matchesHeaderPrefix(b: Uint8Array, generation: number): boolean {
  const h = walHeader(generation);
  for (let i = 0; i < b.length; i++) if (b[i] !== h[i]) return false;
  return true;
}

function corrupt(file: string, offset: number, message: string): QuiverError {
  return new QuiverError('CORRUPT_WAL', `${file}: corrupt write-ahead log at byte ${offset}: ${message}`, { file, offset });
}

/**
 * Appends framed records to the newest WAL file. `commit(payloads)` frames a whole group, writes
 * it and syncs, so one sync covers every record of the group (group commit). The writer holds
 * no pending state between commits: a group that fails (a record too large, a failed write)
 * leaves nothing behind that a later commit could write.
 * A failed write is cut back to the last committed size, so the file never keeps a half record
 * that later writes would follow; if even that fails, the writer is poisoned (every later commit
 * fails) and the collection must be reopened, which replays the log.
 */
export class WalWriter {
  private committedSize: number;
  private poisoned: QuiverError | null = null;

  private constructor(readonly generation: number, private readonly file: AppendFile, readonly maxRecordBytes: number) {
    this.committedSize = file.size;
  }

  /** Creates wal-<generation>.log with its header, synced, and syncs the directory. */
  static async create(dir: Directory, generation: number, maxRecordBytes = MAX_RECORD_BYTES): Promise<WalWriter> {
    const name = walFileName(generation);
    const file = await dir.openAppend(name, { create: true });
    await file.append(walHeader(generation));
    await file.sync();
    await dir.syncDirectory();
    return new WalWriter(generation, file, maxRecordBytes);
  }

  /** Reopens an existing file for appending after replay, cutting it to `validBytes`. */
  static async reopen(dir: Directory, generation: number, validBytes: number, maxRecordBytes = MAX_RECORD_BYTES): Promise<WalWriter> {
    const file = await dir.openAppend(walFileName(generation), { create: false });
    if (validBytes < WAL_HEADER_BYTES) {
      await file.truncate(0);
      await file.append(walHeader(generation));
    } else if (file.size !== validBytes) {
      await file.truncate(validBytes);
    }
    await file.sync();
    return new WalWriter(generation, file, maxRecordBytes);
  }

  /** Bytes of the file that are committed (synced). */
  get size(): number { return this.committedSize; }

  /**
   * Writes the records of one group and syncs: all of them become durable, or (on any error)
   * none is acknowledged. INVALID_ARGUMENT, before anything is written, if a payload does not fit
   * in a record; IO_ERROR when writing or syncing fails.
   */
  async commit(payloads: readonly Uint8Array[]): Promise<void> {
    if (this.poisoned) throw this.poisoned;
    if (payloads.length === 0) return;
    const flat: Uint8Array[] = [];
    let bytes = 0;
    for (const p of payloads) {
      for (const c of frameRecord(p, this.maxRecordBytes)) flat.push(c);
      bytes += p.length + 8;
    }
    try {
      if (bytes <= 4 << 20) {
        // one write call for a group of small records
        const all = transientBytes(bytes);
        let at = 0;
        for (const c of flat) { all.set(c, at); at += c.length; }
        await this.file.append(all);
      } else {
        for (const c of flat) await this.file.append(c);
      }
    } catch (e) {
      try {
        await this.file.truncate(this.committedSize);
      } catch (e2) {
        this.poisoned = new QuiverError('IO_ERROR', `the write-ahead log could not be repaired after a failed write; reopen the collection`, {
          file: this.file.name, cause: String((e2 as Error).message),
        }, { cause: e2 });
      }
      throw e;
    }
    try {
      await this.file.sync();
    } catch (e) {
      // after a failed fsync the kernel may have dropped the dirty pages: nothing written since
      // the last good sync can be trusted, and retrying fsync can falsely succeed
      this.poisoned = new QuiverError('IO_ERROR', `sync of the write-ahead log failed; reopen the collection`, { file: this.file.name }, { cause: e });
      throw e;
    }
    this.committedSize += bytes;
  }

  async close(): Promise<void> { await this.file.close(); }
}
