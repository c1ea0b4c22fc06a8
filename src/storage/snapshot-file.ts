import { QuiverError } from '../errors.js';
import { crc32c } from '../util/crc32c.js';
import { checkFileName, memoryReader, notFound, type AppendFile, type Directory, type DirectoryLock, type RandomAccessFile } from './directory.js';
import { decodeManifest, MANIFEST_FILE, MANIFEST_TMP } from './manifest.js';
import { readWalBytes, walFileName, walGeneration } from './wal.js';

/**
 * Snapshot files (`.qsnap`): a whole durable collection in one checksummed file, to ship a
 * collection built in one place (Node) and open it somewhere else (a browser: read-only, straight
 * from the bytes; or imported into any Directory, e.g. OPFS, and then written to).
 *
 * What a snapshot holds: a consistent state of the collection's files, exactly those a writer's
 * recovery reads: the MANIFEST, the segment files it lists, and the WAL generations from its
 * `walStart` on, each cut back to its last complete record (a record still being written was never
 * acknowledged). Opening it replays that WAL like any open does, so the snapshot's state is the
 * writer's state after one of its writes. `Collection.exportSnapshot()` flushes first, so the WAL
 * part is normally one empty generation (a 16-byte header). Nothing else goes in: no LOCK, no
 * orphans, no MANIFEST.tmp, no WAL generation older than walStart.
 *
 * Byte layout (little-endian):
 *   header, 24 bytes:
 *     0  u32  magic 0x504E5351 ("QSNP")
 *     4  u16  format version (1)
 *     6  u16  flags (0)
 *     8  u32  file count N (1..65535)
 *     12 u32  table byte length T
 *     16 u32  reserved (0)
 *     20 u32  CRC-32C of bytes 0..20 (checked before the version, so a flipped bit is CORRUPT_FILE
 *             and only a well-formed header naming another version is UNSUPPORTED_FORMAT)
 *   file table, T bytes, one entry per file, in the order of the data:
 *     u16 name length L, L bytes of name (ASCII [A-Za-z0-9._-], 1..128 bytes, not "." or "..":
 *     flat names, never a path), u64 byte length, u32 CRC-32C of the file's bytes
 *   u32  CRC-32C of the table
 *   file bytes, back to back in table order (no padding)
 *   trailer, 16 bytes: u64 total byte length of the file data, u32 CRC-32C of the table (again),
 *                      u32 end magic 0x454E5351 ("QSNE")
 *
 * Every byte is checked: the header and table by their checksums, each file by its own, the
 * trailer against the values it repeats, and the total length must be exactly
 * 24 + T + 4 + data + 16, so a truncated or extended snapshot is CORRUPT_FILE at once. A reader
 * verifies everything when it opens a snapshot, before any file is handed to the engine (which
 * then checks each file's own checksums again as usual).
 */
export const SNAPSHOT_MAGIC = 0x504e5351;
export const SNAPSHOT_END_MAGIC = 0x454e5351;
export const SNAPSHOT_VERSION = 1;
const HEADER_BYTES = 24;
const TRAILER_BYTES = 16;
const MAX_FILES = 0xffff;
/** Attempts at reading a consistent state while a writer keeps replacing the manifest. */
const CONSISTENT_READ_ATTEMPTS = 8;

/** What a browser Blob (or File) offers: enough to read a large snapshot in slices. */
export interface BlobLike {
  readonly size: number;
  slice(start: number, end: number): { arrayBuffer(): Promise<ArrayBuffer> };
}

/** One file of a snapshot, as listed in its table. */
export interface SnapshotEntry {
  name: string;
  /** Byte offset of the file's data inside the snapshot. */
  offset: number;
  length: number;
  crc: number;
}

/** INVALID_ARGUMENT (writing) unless `name` is a flat file name a snapshot may carry. */
function checkEntryName(name: string): void {
  checkFileName(name);
  // checkFileName admits dots only; "." and ".." would still name a directory
  if (name === '.' || name === '..') throw new QuiverError('INVALID_ARGUMENT', `invalid file name ${JSON.stringify(name)}`, { received: name });
}

function isSafeName(name: string): boolean {
  return /^[A-Za-z0-9._-]{1,128}$/.test(name) && name !== '.' && name !== '..';
}

/**
 * Encodes the given files (name -> bytes, in order) as a snapshot: the chunks to write or
 * concatenate, in order (the file bytes are not copied). INVALID_ARGUMENT for a name with a path
 * separator (or anything but [A-Za-z0-9._-]) or a repeated one.
 */
export function encodeSnapshotFiles(files: readonly { name: string; bytes: Uint8Array }[]): Uint8Array[] {
  if (files.length < 1 || files.length > MAX_FILES) {
    throw new QuiverError('INVALID_ARGUMENT', `a snapshot holds 1..${MAX_FILES} files, got ${files.length}`, { received: files.length });
  }
  const seen = new Set<string>();
  let tableBytes = 0;
  for (const f of files) {
    checkEntryName(f.name);
    if (seen.has(f.name)) throw new QuiverError('INVALID_ARGUMENT', `file ${f.name} appears twice in the snapshot`, { received: f.name });
    seen.add(f.name);
    tableBytes += 2 + f.name.length + 8 + 4;
  }
  const head = new Uint8Array(HEADER_BYTES + tableBytes + 4);
  const v = new DataView(head.buffer);
  v.setUint32(0, SNAPSHOT_MAGIC, true);
  v.setUint16(4, SNAPSHOT_VERSION, true);
  v.setUint16(6, 0, true);
  v.setUint32(8, files.length, true);
  v.setUint32(12, tableBytes, true);
  v.setUint32(16, 0, true);
  v.setUint32(20, crc32c(head, 0, 0, 20), true);
  let p = HEADER_BYTES;
  let dataBytes = 0;
  for (const f of files) {
    v.setUint16(p, f.name.length, true);
    p += 2;
    for (let i = 0; i < f.name.length; i++) head[p++] = f.name.charCodeAt(i); // ASCII, checked above
    setU64(v, p, f.bytes.length);
    v.setUint32(p + 8, crc32c(f.bytes), true);
    p += 12;
    dataBytes += f.bytes.length;
  }
  const tableCrc = crc32c(head, 0, HEADER_BYTES, p);
  v.setUint32(p, tableCrc, true);
  const trailer = new Uint8Array(TRAILER_BYTES);
  const tv = new DataView(trailer.buffer);
  setU64(tv, 0, dataBytes);
  tv.setUint32(8, tableCrc, true);
  tv.setUint32(12, SNAPSHOT_END_MAGIC, true);
  return [head, ...files.map((f) => f.bytes), trailer];
}

/**
 * Reads a consistent state of the collection in `dir` (see the top of this file) and encodes it
 * as a snapshot: the chunks in order (concatenate them, or write them one after the other).
 *
 * Safe while a writer works in `dir`: the manifest is read first and again at the end, and the
 * whole read starts over if it changed in between (a seal or merge installed a new state) or a
 * file it names was removed meanwhile; segment files are written once, and WAL files only grow,
 * so with an unchanged manifest every file read belongs to the state it describes. NOT_FOUND
 * when `dir` holds no collection; CORRUPT_WAL when a WAL generation other than the newest is cut
 * short (the collection is damaged: `quiver verify`); IO_ERROR if the manifest kept changing.
 */
export async function encodeSnapshot(dir: Directory): Promise<Uint8Array[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const files = await readConsistentFiles(dir);
      if (files) return encodeSnapshotFiles(files);
    } catch (e) {
      // a writer removed a file between our reading the manifest and the file: start over
      const raced = e instanceof QuiverError && e.code === 'IO_ERROR' && e.details.errno === 'ENOENT' && (await dir.exists(MANIFEST_FILE).catch(() => false));
      if (!raced) throw e;
    }
    if (attempt >= CONSISTENT_READ_ATTEMPTS) {
      throw new QuiverError('IO_ERROR', `${dir.description}: the collection changed during each of ${attempt} attempts to read it for a snapshot; retry when it is less busy`, { directory: dir.description, errno: 'EAGAIN' });
    }
  }
}

/** One attempt of encodeSnapshot: the files, or null when the manifest changed meanwhile. */
async function readConsistentFiles(dir: Directory): Promise<{ name: string; bytes: Uint8Array }[] | null> {
  if (!(await dir.exists(MANIFEST_FILE))) {
    throw new QuiverError('NOT_FOUND', `no collection in ${dir.description} (no MANIFEST) to snapshot`, { directory: dir.description });
  }
  const manifestBytes = await dir.readFile(MANIFEST_FILE);
  const m = decodeManifest(manifestBytes, `${dir.description}/${MANIFEST_FILE}`);
  const files: { name: string; bytes: Uint8Array }[] = [];
  for (const s of m.segments) files.push({ name: s.file, bytes: await dir.readFile(s.file) });
  const gens = (await dir.list()).map(walGeneration).filter((g) => g >= m.walStart).sort((a, b) => a - b);
  // only the unbroken run from walStart: recovery replays exactly that
  const run: number[] = [];
  for (const g of gens) {
    if (g !== m.walStart + run.length) break;
    run.push(g);
  }
  for (let i = 0; i < run.length; i++) {
    const name = walFileName(run[i]);
    const where = `${dir.description}/${name}`;
    const bytes = await dir.readFile(name);
    const res = readWalBytes(bytes, where, run[i], () => {});
    const last = i === run.length - 1;
    if (res.torn && !last) {
      // a newer generation exists, so this one was complete: damage, not a write in progress
      throw new QuiverError('CORRUPT_WAL', `${where}: WAL generation ${run[i]} is cut short at byte ${res.torn.offset} but a newer generation follows (${res.torn.reason})`, { file: where, offset: res.torn.offset });
    }
    // the newest generation may end in a record being written: never acknowledged, left out
    if (res.validBytes === 0) continue; // only a header being created: recovery makes a new one
    files.push({ name, bytes: res.validBytes === bytes.length ? bytes : bytes.subarray(0, res.validBytes) });
  }
  const again = await dir.readFile(MANIFEST_FILE);
  if (!sameBytes(again, manifestBytes)) return null;
  // the MANIFEST goes first: a reader (and importSnapshot) finds what the snapshot describes at once
  return [{ name: MANIFEST_FILE, bytes: manifestBytes }, ...files];
}

/** The chunks of encodeSnapshot as one array. */
export function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let p = 0;
  for (const c of chunks) { out.set(c, p); p += c.length; }
  return out;
}

/** Where a snapshot's bytes come from: all in memory, or a Blob read in slices. */
interface Source {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Synchronous view (in-memory sources only). */
  view?(offset: number, length: number): Uint8Array;
}

function memorySource(bytes: Uint8Array): Source {
  return {
    size: bytes.length,
    read: async (offset, length) => bytes.subarray(offset, offset + length),
    view: (offset, length) => bytes.subarray(offset, offset + length),
  };
}

function blobSource(blob: BlobLike): Source {
  return {
    size: blob.size,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  };
}

/** Blob slices read at a time when verifying a Blob-backed snapshot (memory stays bounded). */
const BLOB_CHUNK = 8 * 1024 * 1024;

interface Parsed { entries: SnapshotEntry[]; dataStart: number; tableCrc: number }

/** Checks header and table; returns the entries (file checksums not yet checked). */
function parseHead(head: Uint8Array, total: number, where: string): { tableBytes: number } | Parsed {
  const fail = (offset: number, msg: string): never => {
    throw new QuiverError('CORRUPT_FILE', `${where}: ${msg}`, { file: where, offset });
  };
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length < HEADER_BYTES) fail(head.length, `truncated snapshot (${total} bytes)`);
  if (v.getUint32(0, true) !== SNAPSHOT_MAGIC) fail(0, 'bad magic: not a QuiverDB snapshot');
  if (v.getUint32(20, true) !== crc32c(head, 0, 0, 20)) fail(20, 'snapshot header checksum mismatch');
  const version = v.getUint16(4, true);
  if (version !== SNAPSHOT_VERSION) {
    throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: snapshot format version ${version} is not supported (read: ${SNAPSHOT_VERSION})`, { file: where, expected: SNAPSHOT_VERSION, received: version });
  }
  const count = v.getUint32(8, true), tableBytes = v.getUint32(12, true);
  if (count < 1 || count > MAX_FILES) fail(8, `file count ${count} out of range`);
  const headBytes = HEADER_BYTES + tableBytes + 4;
  if (headBytes + TRAILER_BYTES > total) fail(total, `truncated snapshot: the table alone needs ${headBytes + TRAILER_BYTES} bytes, the snapshot has ${total}`);
  if (head.length < headBytes) return { tableBytes }; // the caller reads more and calls again
  const tableCrc = v.getUint32(HEADER_BYTES + tableBytes, true);
  if (tableCrc !== crc32c(head, 0, HEADER_BYTES, HEADER_BYTES + tableBytes)) fail(HEADER_BYTES + tableBytes, 'snapshot file table checksum mismatch');
  const entries: SnapshotEntry[] = [];
  const names = new Set<string>();
  let p = HEADER_BYTES, offset = headBytes;
  const end = HEADER_BYTES + tableBytes;
  for (let i = 0; i < count; i++) {
    if (p + 2 > end) fail(p, `file table ends inside entry ${i}`);
    const len = v.getUint16(p, true);
    if (p + 2 + len + 12 > end) fail(p, `file table ends inside entry ${i}`);
    let name = '';
    for (let j = 0; j < len; j++) name += String.fromCharCode(head[p + 2 + j]);
    // never trust a name to stay inside the target directory: flat names only
    if (!isSafeName(name)) fail(p, `file table entry ${i} has the unsafe name ${JSON.stringify(name)} (flat names of [A-Za-z0-9._-] only)`);
    if (names.has(name)) fail(p, `file ${name} appears twice`);
    names.add(name);
    p += 2 + len;
    const lo = v.getUint32(p, true), hi = v.getUint32(p + 4, true);
    if (hi >= 0x200000) fail(p, `file ${name} length exceeds 2^53`);
    const length = hi * 4294967296 + lo;
    entries.push({ name, offset, length, crc: v.getUint32(p + 8, true) });
    offset += length;
    p += 12;
  }
  if (p !== end) fail(p, `${end - p} unexpected bytes after the file table`);
  if (offset + TRAILER_BYTES !== total) {
    fail(Math.min(offset, total), `snapshot is ${total} bytes, its table describes ${offset + TRAILER_BYTES} (${offset + TRAILER_BYTES > total ? 'truncated' : 'extra bytes'})`);
  }
  return { entries, dataStart: headBytes, tableCrc };
}

function checkTrailer(t: Uint8Array, p: Parsed, total: number, where: string): void {
  const v = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const dataBytes = total - TRAILER_BYTES - p.dataStart;
  const lo = v.getUint32(0, true), hi = v.getUint32(4, true);
  if (hi * 4294967296 + lo !== dataBytes || v.getUint32(8, true) !== p.tableCrc || v.getUint32(12, true) !== SNAPSHOT_END_MAGIC) {
    throw new QuiverError('CORRUPT_FILE', `${where}: snapshot trailer does not match its table (damaged or truncated)`, { file: where, offset: total - TRAILER_BYTES });
  }
}

function fileCorrupt(where: string, e: SnapshotEntry, expected: number, received: number): QuiverError {
  return new QuiverError('CORRUPT_FILE', `${where}: file ${e.name} inside the snapshot (bytes ${e.offset}..${e.offset + e.length}) fails its checksum`, {
    file: e.name, snapshot: where, offset: e.offset, expected, received,
  });
}

/** Checks an in-memory snapshot completely (synchronous). */
function verifyBytes(bytes: Uint8Array, where: string): Parsed {
  const p = parseHead(bytes, bytes.length, where);
  if (!('entries' in p)) throw new Error('unreachable: the whole snapshot was given');
  for (const e of p.entries) {
    const crc = crc32c(bytes, 0, e.offset, e.offset + e.length);
    if (crc !== e.crc) throw fileCorrupt(where, e, e.crc, crc);
  }
  checkTrailer(bytes.subarray(bytes.length - TRAILER_BYTES), p, bytes.length, where);
  return p;
}

/** Checks a snapshot read in slices (Blobs): one pass, BLOB_CHUNK bytes in memory at a time. */
async function verifySource(src: Source, where: string): Promise<Parsed> {
  const total = src.size;
  let head = await src.read(0, Math.min(total, HEADER_BYTES));
  let p = parseHead(head, total, where);
  if (!('entries' in p)) {
    head = await src.read(0, HEADER_BYTES + p.tableBytes + 4);
    p = parseHead(head, total, where);
    if (!('entries' in p)) throw new Error('unreachable: the whole head was read');
  }
  for (const e of p.entries) {
    let crc = 0;
    for (let off = 0; off < e.length; off += BLOB_CHUNK) {
      const n = Math.min(BLOB_CHUNK, e.length - off);
      const chunk = await src.read(e.offset + off, n);
      if (chunk.length !== n) throw new QuiverError('CORRUPT_FILE', `${where}: short read of file ${e.name} inside the snapshot`, { file: e.name, snapshot: where, offset: e.offset + off });
      crc = crc32c(chunk, crc);
    }
    if (crc !== e.crc) throw fileCorrupt(where, e, e.crc, crc);
  }
  checkTrailer(await src.read(total - TRAILER_BYTES, TRAILER_BYTES), p, total, where);
  return p;
}

/** Checks what the snapshot holds is a collection: a MANIFEST whose segments are all present. */
function checkContents(entries: Map<string, SnapshotEntry>, manifest: Uint8Array, where: string): void {
  const m = decodeManifest(manifest, `${where}/${MANIFEST_FILE}`);
  for (const s of m.segments) {
    if (!entries.has(s.file)) {
      throw new QuiverError('CORRUPT_FILE', `${where}: the snapshot's MANIFEST lists segment ${s.file}, which the snapshot does not hold`, { file: s.file, snapshot: where });
    }
  }
}

function readOnlyError(where: string, what: string): QuiverError {
  return new QuiverError('READ_ONLY', `${where} is a snapshot, read-only: cannot ${what} (open it with { readOnly: true }, or importSnapshot() it into a Directory to write)`, { directory: where });
}

/**
 * A read-only Directory over a snapshot's bytes, so a collection opens straight from them:
 * `Collection.open(new SnapshotDirectory(bytes), { readOnly: true })` (or `Collection.openSnapshot`).
 * Everything is verified when it is made: CORRUPT_FILE naming the file inside the snapshot whose
 * checksum fails (or the snapshot itself for its header, table, trailer or length),
 * UNSUPPORTED_FORMAT for another snapshot format version. Writes, renames, removals and lock()
 * throw READ_ONLY.
 *
 * `new SnapshotDirectory(bytes)` serves files as views of `bytes` (no copy; do not modify `bytes`
 * afterwards). `SnapshotDirectory.open(blob)` reads a Blob or File in slices: verification streams
 * through it once, and each file is read (and its checksum checked again, in case a File changed
 * on disk) when the engine opens it, so the whole snapshot is never in memory at once.
 */
export class SnapshotDirectory implements Directory {
  readonly description: string;
  readonly durable = false;
  private readonly files: Map<string, SnapshotEntry>;
  private readonly source: Source;

  constructor(bytes: Uint8Array, description = 'snapshot') {
    if (!(bytes instanceof Uint8Array)) {
      throw new QuiverError('INVALID_ARGUMENT', 'SnapshotDirectory expects the snapshot as a Uint8Array (use SnapshotDirectory.open for a Blob)', { received: typeof bytes });
    }
    this.description = description;
    const p = verifyBytes(bytes, description);
    this.files = new Map(p.entries.map((e) => [e.name, e]));
    this.source = memorySource(bytes);
    const m = this.files.get(MANIFEST_FILE);
    if (!m) throw new QuiverError('CORRUPT_FILE', `${description}: the snapshot holds no MANIFEST: not a collection`, { file: description });
    checkContents(this.files, bytes.subarray(m.offset, m.offset + m.length), description);
  }

  /**
   * A Blob-backed instance, already verified: the public constructor takes bytes only (it
   * verifies synchronously), so this one skips it and sets the same fields.
   */
  private static fromParsed(source: Source, p: Parsed, description: string): SnapshotDirectory {
    const d = Object.create(SnapshotDirectory.prototype) as SnapshotDirectory;
    Object.assign(d, { description, durable: false, files: new Map(p.entries.map((e) => [e.name, e])), source });
    return d;
  }

  /** A SnapshotDirectory over bytes or a Blob/File (read in slices); verified before it resolves. */
  static async open(source: Uint8Array | BlobLike | SnapshotDirectory, description = 'snapshot'): Promise<SnapshotDirectory> {
    if (source instanceof SnapshotDirectory) return source;
    if (source instanceof Uint8Array) return new SnapshotDirectory(source, description);
    if (!source || typeof source !== 'object' || typeof (source as BlobLike).slice !== 'function' || !Number.isSafeInteger((source as BlobLike).size)) {
      throw new QuiverError('INVALID_ARGUMENT', 'a snapshot must be a Uint8Array or a Blob-like object { size, slice(start, end).arrayBuffer() }', { received: typeof source });
    }
    const src = blobSource(source);
    const p = await verifySource(src, description);
    const d = SnapshotDirectory.fromParsed(src, p, description);
    if (!d.files.has(MANIFEST_FILE)) throw new QuiverError('CORRUPT_FILE', `${description}: the snapshot holds no MANIFEST: not a collection`, { file: description });
    checkContents(d.files, await d.readFile(MANIFEST_FILE), description);
    return d;
  }

  /** The files in the snapshot, in its order (MANIFEST first in snapshots written by encodeSnapshot). */
  entries(): SnapshotEntry[] { return [...this.files.values()].map((e) => ({ ...e })); }

  async list(): Promise<string[]> { return [...this.files.keys()]; }
  async exists(name: string): Promise<boolean> { checkFileName(name); return this.files.has(name); }

  async readFile(name: string): Promise<Uint8Array> {
    return (await this.bytesOf(name)).slice(); // the contract: a fresh buffer
  }

  async openRead(name: string): Promise<RandomAccessFile> {
    return memoryReader(name, `${this.description}/${name}`, await this.bytesOf(name));
  }

  /** A file's bytes: a view of in-memory snapshots; read from a Blob and checked again. */
  private async bytesOf(name: string): Promise<Uint8Array> {
    checkFileName(name);
    const e = this.files.get(name);
    if (!e) throw notFound(this.description, name);
    if (this.source.view) return this.source.view(e.offset, e.length);
    const b = await this.source.read(e.offset, e.length);
    const crc = b.length === e.length ? crc32c(b) : -1;
    if (crc !== e.crc) throw fileCorrupt(this.description, e, e.crc, crc);
    return b;
  }

  async writeFile(name: string, _chunks?: readonly Uint8Array[]): Promise<void> { checkFileName(name); throw readOnlyError(this.description, `write ${name}`); }
  async openAppend(name: string, _options?: { create: boolean }): Promise<AppendFile> { checkFileName(name); throw readOnlyError(this.description, `append to ${name}`); }
  async rename(from: string, to: string): Promise<void> { checkFileName(to); throw readOnlyError(this.description, `rename ${from}`); }
  async remove(name: string): Promise<void> { checkFileName(name); throw readOnlyError(this.description, `remove ${name}`); }
  /** Nothing is ever created, renamed or removed here: there is nothing to make durable. */
  async syncDirectory(): Promise<void> {}
  async lock(): Promise<DirectoryLock> { throw readOnlyError(this.description, 'open it for writing'); }
}

/**
 * Writes every file of a snapshot into `target`, which must be empty (INVALID_ARGUMENT
 * otherwise), so that it then opens as a normal writable collection. Holds the target's writer
 * lock meanwhile (LOCKED if a writer has it). Durable order: every other file written and synced
 * (Directory.writeFile syncs), the directory synced, then the MANIFEST written as a writer writes
 * it (MANIFEST.tmp, rename, directory sync). A crash before that leaves no MANIFEST, so the target
 * never looks like a collection with files missing (empty it and import again). The snapshot is
 * verified first (CORRUPT_FILE / UNSUPPORTED_FORMAT), before anything is written.
 */
export async function importSnapshot(snapshot: Uint8Array | BlobLike | SnapshotDirectory, target: Directory): Promise<{ files: number; bytes: number }> {
  const snap = await SnapshotDirectory.open(snapshot);
  if (!target || typeof target !== 'object' || typeof (target as Directory).writeFile !== 'function') {
    throw new QuiverError('INVALID_ARGUMENT', 'importSnapshot needs a Directory to write into', { received: typeof target });
  }
  const lock = await target.lock();
  try {
    // lock files are the lock just taken (FsDirectory), not content
    const present = (await target.list()).filter((f) => f !== 'LOCK' && !f.startsWith('LOCK.'));
    if (present.length) {
      throw new QuiverError('INVALID_ARGUMENT', `${target.description} is not empty (${present.slice(0, 5).join(', ')}${present.length > 5 ? ', ...' : ''}): a snapshot is imported into an empty directory only`, {
        directory: target.description, received: present.slice(0, 20),
      });
    }
    let bytes = 0;
    const entries = snap.entries();
    for (const e of entries) {
      if (e.name === MANIFEST_FILE) continue;
      await target.writeFile(e.name, [await snap.readFile(e.name)]);
      bytes += e.length;
    }
    await target.syncDirectory();
    // the MANIFEST last, atomically: it is what makes the directory a collection
    const manifest = await snap.readFile(MANIFEST_FILE);
    await target.writeFile(MANIFEST_TMP, [manifest]);
    await target.rename(MANIFEST_TMP, MANIFEST_FILE);
    await target.syncDirectory();
    return { files: entries.length, bytes: bytes + manifest.length };
  } finally {
    await lock.release();
  }
}

function setU64(v: DataView, p: number, x: number): void {
  v.setUint32(p, x % 4294967296, true);
  v.setUint32(p + 4, Math.floor(x / 4294967296), true);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
