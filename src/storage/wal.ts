import { QuiverError } from '../errors.js';
import { crc32c } from '../util/crc32c.js';
import type { AppendFile, Directory } from './directory.js';

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

/** Frames one payload as [length, payload, CRC] chunks (the payload is not copied). */
export function frameRecord(payload: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  if (payload.length < 1 || payload.length > MAX_RECORD_BYTES) {
    throw new QuiverError('INVALID_ARGUMENT', `a WAL record must hold 1..${MAX_RECORD_BYTES} bytes, got ${payload.length}; split the batch`, {
      expected: `<= ${MAX_RECORD_BYTES} bytes`, received: payload.length,
    });
  }
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

  let off = WAL_HEADER_BYTES;
  let records = 0;
  while (off < n) {
    const rest = n - off;
    if (rest < 8) {
      return tornOrCorrupt(bytes, file, off, records, 'record header cut short');
    }
    const len = v.getUint32(off, true);
    if (len === 0) {
      // a zero-filled tail (space allocated, data never written) is torn; zeros then data is not
      if (allZero(bytes, off)) return { validBytes: off, records, torn: { offset: off, droppedBytes: rest, reason: 'zero-filled tail' } };
      throw corrupt(file, off, 'record of length 0 followed by data');
    }
    if (len > MAX_RECORD_BYTES) {
      return tornOrCorrupt(bytes, file, off, records, `record length ${len} exceeds the maximum`);
    }
    if (len + 8 > rest) {
      return { validBytes: off, records, torn: { offset: off, droppedBytes: rest, reason: `record of ${len} bytes runs past the end of the file` } };
    }
    const stored = v.getUint32(off + 4 + len, true);
    if (stored !== crc32c(bytes, 0, off, off + 4 + len)) {
      if (off + 8 + len === n) return { validBytes: off, records, torn: { offset: off, droppedBytes: rest, reason: 'checksum mismatch in the last record' } };
      throw corrupt(file, off, `checksum mismatch in a record of ${len} bytes followed by ${n - off - 8 - len} more bytes`);
    }
    onRecord(bytes.subarray(off + 4, off + 4 + len), off);
    records++;
    off += 8 + len;
  }
  return { validBytes: off, records };
}

function tornOrCorrupt(bytes: Uint8Array, file: string, off: number, records: number, reason: string): WalReadResult {
  // garbage that cannot be framed: a torn tail only if it is short enough to be one partial record
  // header, or zeros; anything longer is corruption we must not skip
  const rest = bytes.length - off;
  if (rest < 8 || allZero(bytes, off)) return { validBytes: off, records, torn: { offset: off, droppedBytes: rest, reason } };
  throw corrupt(file, off, reason);
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

/** Joins chunks into one buffer when small (fewer write calls), else keeps the big payload uncopied. */
function concatSmall(parts: Uint8Array[]): Uint8Array[] | Uint8Array {
  const total = parts.reduce((a, p) => a + p.length, 0);
  if (total > 1 << 16) return parts;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/**
 * Appends framed records to the newest WAL file. `append` buffers; `commit` writes the buffer and
 * syncs, so one sync covers every record appended since the last commit (group commit).
 * A failed write is cut back to the last committed size, so the file never keeps a half record
 * that later writes would follow; if even that fails, the writer is poisoned (every later commit
 * fails) and the collection must be reopened, which replays the log.
 */
export class WalWriter {
  private pending: (Uint8Array | Uint8Array[])[] = [];
  private pendingBytes = 0;
  private committedSize: number;
  private poisoned: QuiverError | null = null;

  private constructor(readonly generation: number, private readonly file: AppendFile) {
    this.committedSize = file.size;
  }

  /** Creates wal-<generation>.log with its header, synced, and syncs the directory. */
  static async create(dir: Directory, generation: number): Promise<WalWriter> {
    const name = walFileName(generation);
    const file = await dir.openAppend(name, { create: true });
    await file.append(walHeader(generation));
    await file.sync();
    await dir.syncDirectory();
    return new WalWriter(generation, file);
  }

  /** Reopens an existing file for appending after replay, cutting it to `validBytes`. */
  static async reopen(dir: Directory, generation: number, validBytes: number): Promise<WalWriter> {
    const file = await dir.openAppend(walFileName(generation), { create: false });
    if (validBytes < WAL_HEADER_BYTES) {
      await file.truncate(0);
      await file.append(walHeader(generation));
    } else if (file.size !== validBytes) {
      await file.truncate(validBytes);
    }
    await file.sync();
    return new WalWriter(generation, file);
  }

  get size(): number { return this.committedSize + this.pendingBytes; }
  get hasPending(): boolean { return this.pendingBytes > 0; }

  append(payload: Uint8Array): void {
    const framed = frameRecord(payload);
    this.pending.push(concatSmall(framed));
    this.pendingBytes += payload.length + 8;
  }

  /** Writes and syncs everything appended; IO_ERROR on failure (nothing of this group is durable). */
  async commit(): Promise<void> {
    if (this.poisoned) throw this.poisoned;
    if (this.pendingBytes === 0) return;
    const chunks = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      const flat = chunks.flat();
      if (bytes <= 4 << 20) {
        // one write call for a group of small records
        const all = new Uint8Array(bytes);
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
