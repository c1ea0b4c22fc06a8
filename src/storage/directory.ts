import { QuiverError } from '../errors.js';

/**
 * Where a collection's files live. Implementations: the filesystem (quiverdb/node,
 * src/node/fs-directory.ts), memory (MemoryDirectory below), and in browsers the Origin Private
 * File System and IndexedDB (src/browser/). File names are flat (no subfolders), ASCII, and chosen by the engine.
 *
 * Durability contract (what the engine relies on):
 * - `writeFile` and `AppendFile.sync` return only once the bytes are on stable storage
 *   (fsync) when `durable` is true;
 * - `rename` atomically replaces the target, and `syncDirectory` makes renames, creations and
 *   removals durable;
 * - `RandomAccessFile.readInto` is synchronous, so searches can rerank from files without
 *   awaiting; a file open for reading keeps its content when it is removed or replaced by `rename`
 *   (files are written once; on the filesystem this takes POSIX semantics: not on Windows).
 * Errors are QuiverErrors: IO_ERROR with {file, errno} (errno 'ENOENT' for a missing file,
 * 'EEXIST' for `openAppend` with `create` on an existing one); a name that fails checkFileName is
 * INVALID_ARGUMENT in every method. test/directory.test.ts runs this contract on the Node-side implementations (IndexedDB on
 * fake-indexeddb); test-browser/ runs it on OPFS and IndexedDB in Chromium.
 */
export interface Directory {
  /** A description for messages, e.g. the path, or 'memory'. */
  readonly description: string;
  /** True when sync() reaches stable storage (false for memory). */
  readonly durable: boolean;
  /** File names, unordered. */
  list(): Promise<string[]>;
  exists(name: string): Promise<boolean>;
  /** Whole file contents (a fresh buffer). */
  readFile(name: string): Promise<Uint8Array>;
  /** Creates or truncates `name`, writes the chunks in order, syncs the file (not the directory). */
  writeFile(name: string, chunks: readonly Uint8Array[]): Promise<void>;
  /** Opens `name` for appending; `create` makes a new empty file (failing if it exists). */
  openAppend(name: string, options: { create: boolean }): Promise<AppendFile>;
  openRead(name: string): Promise<RandomAccessFile>;
  /** Atomically renames, replacing `to` if present. */
  rename(from: string, to: string): Promise<void>;
  /** Removes `name`; a missing file is not an error. */
  remove(name: string): Promise<void>;
  /** Makes creations, renames and removals durable. */
  syncDirectory(): Promise<void>;
  /** Takes the single-writer lock of this directory, or throws LOCKED naming the holder. */
  lock(): Promise<DirectoryLock>;
}

export interface AppendFile {
  readonly name: string;
  /** Bytes in the file, including appends not yet synced. */
  readonly size: number;
  /** Appends bytes (may be buffered until sync). */
  append(bytes: Uint8Array): Promise<void>;
  /** Makes everything appended so far durable. */
  sync(): Promise<void>;
  /** Cuts the file to `size` bytes (used to drop a torn or failed tail). */
  truncate(size: number): Promise<void>;
  close(): Promise<void>;
}

export interface RandomAccessFile {
  readonly name: string;
  readonly size: number;
  /** Reads exactly out.length bytes at `offset` into `out`; CORRUPT_FILE if the file is shorter. */
  readInto(offset: number, out: Uint8Array): void;
  close(): Promise<void>;
}

export interface DirectoryLock {
  /** Gives the lock up; repeated calls do nothing (they never release a later holder). */
  release(): Promise<void>;
}

/** Names the engine writes must be plain file names. */
export function checkFileName(name: string): void {
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(name)) {
    throw new QuiverError('INVALID_ARGUMENT', `invalid file name ${JSON.stringify(name)}`, { received: name });
  }
}

/**
 * A RandomAccessFile over bytes already in memory (MemoryDirectory's files, a snapshot's entries,
 * an IndexedDB file loaded at open). `where` names the file in messages. Reads past the end are
 * CORRUPT_FILE; after close() reads are CLOSED and the bytes are let go.
 */
export function memoryReader(name: string, where: string, data: Uint8Array): RandomAccessFile {
  let bytes: Uint8Array | null = data;
  return {
    name,
    size: data.length,
    readInto(offset: number, out: Uint8Array): void {
      if (bytes === null) throw new QuiverError('CLOSED', `${where} is closed`, { file: where });
      if (!(offset >= 0) || offset + out.length > bytes.length) {
        throw new QuiverError('CORRUPT_FILE', `${where}: read of ${out.length} bytes at ${offset} past the end (${bytes.length} bytes)`, {
          file: where, offset, expected: offset + out.length, received: bytes.length,
        });
      }
      out.set(bytes.subarray(offset, offset + out.length));
    },
    close: async () => { bytes = null; },
  };
}

export function notFound(dir: string, name: string): QuiverError {
  return new QuiverError('IO_ERROR', `${dir}/${name}: no such file`, { file: `${dir}/${name}`, errno: 'ENOENT' });
}

/**
 * Files held in memory: for in-memory collections, browsers, and tests. Not durable: sync is a
 * no-op. `crashCopy()` returns a new directory holding only what a crash would leave (synced
 * bytes of every file), which tests use to simulate power loss.
 */
export class MemoryDirectory implements Directory {
  readonly description: string;
  readonly durable = false;
  private readonly files = new Map<string, MemFile>();
  /** The current holder of lock(), if any. */
  private locked: object | undefined;

  constructor(description = 'memory') {
    this.description = description;
  }

  async list(): Promise<string[]> { return [...this.files.keys()]; }
  async exists(name: string): Promise<boolean> { checkFileName(name); return this.files.has(name); }

  async readFile(name: string): Promise<Uint8Array> {
    const f = this.get(name);
    return f.data.slice(0, f.size);
  }

  async writeFile(name: string, chunks: readonly Uint8Array[]): Promise<void> {
    checkFileName(name);
    const f = new MemFile();
    for (const c of chunks) f.append(c);
    f.synced = f.size;
    this.files.set(name, f);
  }

  async openAppend(name: string, options: { create: boolean }): Promise<AppendFile> {
    checkFileName(name);
    let f = this.files.get(name);
    if (options.create) {
      if (f) throw new QuiverError('IO_ERROR', `${this.description}/${name}: file exists`, { file: name, errno: 'EEXIST' });
      f = new MemFile();
      this.files.set(name, f);
    } else if (!f) {
      throw notFound(this.description, name);
    }
    const file = f;
    let closed = false;
    const check = () => { if (closed) throw new QuiverError('CLOSED', `${name} is closed`); };
    return {
      name,
      get size() { return file.size; },
      append: async (bytes) => { check(); file.append(bytes); },
      sync: async () => { check(); file.synced = file.size; },
      truncate: async (size) => { check(); file.size = Math.min(file.size, size); file.synced = Math.min(file.synced, size); },
      close: async () => { closed = true; },
    };
  }

  async openRead(name: string): Promise<RandomAccessFile> {
    const f = this.get(name);
    // a snapshot of the current contents: write-once files never change after creation
    return memoryReader(name, `${this.description}/${name}`, f.data.subarray(0, f.size));
  }

  async rename(from: string, to: string): Promise<void> {
    checkFileName(to);
    const f = this.get(from);
    this.files.delete(from);
    this.files.set(to, f);
  }

  async remove(name: string): Promise<void> { checkFileName(name); this.files.delete(name); }
  async syncDirectory(): Promise<void> {}

  async lock(): Promise<DirectoryLock> {
    if (this.locked) throw new QuiverError('LOCKED', `${this.description} is already open for writing`, { directory: this.description });
    const holder = {};
    this.locked = holder;
    // a repeated release() of an old holder must not free a newer one
    return { release: async () => { if (this.locked === holder) this.locked = undefined; } };
  }

  /** A copy holding only synced bytes (what survives a crash), unlocked. */
  crashCopy(): MemoryDirectory {
    const d = new MemoryDirectory(this.description);
    for (const [name, f] of this.files) {
      const g = new MemFile();
      g.append(f.data.subarray(0, f.synced));
      g.synced = g.size;
      d.files.set(name, g);
    }
    return d;
  }

  /** Test hook: raw access to a file's bytes (to corrupt or truncate it). */
  rawFile(name: string): Uint8Array { const f = this.get(name); return f.data.subarray(0, f.size); }
  /** Test hook: replaces a file's bytes. */
  setRawFile(name: string, bytes: Uint8Array): void { const f = new MemFile(); f.append(bytes); f.synced = f.size; this.files.set(name, f); }

  private get(name: string): MemFile {
    checkFileName(name);
    const f = this.files.get(name);
    if (!f) throw notFound(this.description, name);
    return f;
  }
}

class MemFile {
  data = new Uint8Array(256);
  size = 0;
  synced = 0;
  append(bytes: Uint8Array): void {
    if (this.size + bytes.length > this.data.length) {
      let cap = this.data.length * 2;
      while (cap < this.size + bytes.length) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.data.subarray(0, this.size));
      this.data = next;
    }
    this.data.set(bytes, this.size);
    this.size += bytes.length;
  }
}
