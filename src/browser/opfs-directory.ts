import { QuiverError } from '../errors.js';
import { checkFileName, notFound, type AppendFile, type Directory, type DirectoryLock, type RandomAccessFile } from '../storage/directory.js';

/*
 * The parts of the File System API this file uses, declared here: `FileSystemSyncAccessHandle`
 * and `createSyncAccessHandle` are only in TypeScript's WebWorker lib, which cannot be loaded
 * beside the DOM lib that the browser entry is checked with (tsconfig.browser.json).
 */
interface SyncAccessHandle {
  read(buffer: Uint8Array, options?: { at?: number }): number;
  write(buffer: Uint8Array, options?: { at?: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}
interface OpfsFileHandle {
  readonly kind: 'file';
  getFile(): Promise<Blob>;
  createSyncAccessHandle(options?: { mode?: 'readwrite' | 'read-only' | 'readwrite-unsafe' }): Promise<SyncAccessHandle>;
  /** Chromium and Firefox; absent in Safari. */
  move?(parent: OpfsDirHandle, name: string): Promise<void>;
}
interface OpfsDirHandle {
  readonly kind: 'directory';
  getFileHandle(name: string, options?: { create?: boolean }): Promise<OpfsFileHandle>;
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<OpfsDirHandle>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
  keys(): AsyncIterableIterator<string>;
}
interface WebLocks {
  request(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<void> | void): Promise<void>;
}
interface StorageNavigator {
  storage?: { getDirectory?: () => Promise<unknown> };
  locks?: WebLocks;
}

const nav = (): StorageNavigator | undefined => (globalThis as { navigator?: StorageNavigator }).navigator;

/** Names of Web Locks taken by OpfsDirectory.lock() in this agent, when Web Locks are absent. */
const agentLocks = new Set<string>();

/**
 * A collection directory in the browser's Origin Private File System: the folder `name` under
 * `navigator.storage.getDirectory()`, one per collection. For a dedicated Worker only: reads,
 * appends and syncs go through `FileSystemSyncAccessHandle`, which browsers offer in workers alone
 * (and which makes `RandomAccessFile.readInto` synchronous, as the engine needs).
 *
 * How the Directory contract maps onto OPFS:
 * - durability: `flush()` of a sync access handle is the fsync (`writeFile` and `AppendFile.sync`
 *   call it); OPFS has no directory fsync, so `syncDirectory` has nothing to do: creations, moves
 *   and removals are committed by the browser's storage backend when their promise resolves;
 * - `rename` is `FileSystemFileHandle.move()`, which replaces the target in one step. Where move()
 *   is missing (Safari) it falls back to copy + remove, which is NOT atomic: a crash between the
 *   two can leave a torn target (the engine's checksums then report CORRUPT_FILE);
 * - readers: a read opens a `read-only` sync handle (several may share a file). OPFS refuses to
 *   remove or replace a file that has one open, while the contract says an open reader keeps its
 *   content; so before this directory removes, replaces, rewrites or appends to a file, each of its
 *   open readers copies the file into memory and lets the handle go ("detach"). Where a handle
 *   cannot be had (browsers without the `mode` option give exclusive handles; another tab's writer
 *   holds the file), the reader reads the whole file into memory at open;
 * - lock: a Web Lock named after the folder (`navigator.locks.request(..., { ifAvailable: true })`),
 *   so a second tab or worker opening the same collection for writing gets LOCKED. The browser
 *   drops the lock when the tab or worker goes away, so no stale lock survives a crash.
 * Errors: IO_ERROR with {file, errno} as for the filesystem (ENOENT missing, EEXIST, ENOSPC when
 * the origin's storage quota is exhausted, EBUSY when another tab or worker holds the file open,
 * ENOTSUP where OPFS or sync access handles are missing); LOCKED from lock().
 */
export class OpfsDirectory implements Directory {
  readonly durable = true;
  readonly description: string;
  private dirHandle: Promise<OpfsDirHandle> | undefined;
  /** Open readers by file name, to detach before the file is changed (see the class comment). */
  private readonly readers = new Map<string, Set<OpfsReader>>();

  /** `name`: the collection's folder in the origin's OPFS root ([A-Za-z0-9._-], 1..128 chars). */
  constructor(readonly name: string) {
    if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(name) || name === '.' || name === '..') {
      throw new QuiverError('INVALID_ARGUMENT', `invalid OPFS collection name ${JSON.stringify(name)} (use [A-Za-z0-9._-], 1..128 characters)`, { received: name });
    }
    this.description = `opfs:${name}`;
  }

  /** Whether this environment has OPFS with sync access handles (a dedicated Worker in a current browser). */
  static supported(): boolean {
    const g = globalThis as { FileSystemSyncAccessHandle?: unknown };
    return typeof nav()?.storage?.getDirectory === 'function' && typeof g.FileSystemSyncAccessHandle === 'function';
  }

  /** Removes the collection folder `name` and everything in it; a missing folder is not an error. */
  static async remove(name: string): Promise<void> {
    const d = new OpfsDirectory(name); // validates the name
    const root = await opfsRoot(d.description);
    try {
      await root.removeEntry(name, { recursive: true });
    } catch (e) {
      if (domName(e) !== 'NotFoundError') throw opfsError(d.description, e, 'remove the collection folder');
    }
  }

  private dir(): Promise<OpfsDirHandle> {
    if (!this.dirHandle) {
      this.dirHandle = (async () => {
        if (!OpfsDirectory.supported()) {
          throw new QuiverError('IO_ERROR', `${this.description}: OPFS with sync access handles is not available here (it needs a dedicated Worker in a browser that has FileSystemSyncAccessHandle); use MemoryDirectory or Collection.openSnapshot instead`, { file: this.description, errno: 'ENOTSUP' });
        }
        const root = await opfsRoot(this.description);
        try {
          return await root.getDirectoryHandle(this.name, { create: true });
        } catch (e) {
          throw opfsError(this.description, e, 'open the collection folder');
        }
      })();
      // a failure is not cached: a later call may succeed (e.g. after quota was freed)
      this.dirHandle.catch(() => { this.dirHandle = undefined; });
    }
    return this.dirHandle;
  }

  private where(name: string): string {
    return `${this.description}/${name}`;
  }

  /** The handle of an existing file; IO_ERROR ENOENT when missing. */
  private async file(name: string, create = false): Promise<OpfsFileHandle> {
    checkFileName(name);
    const dir = await this.dir();
    try {
      return await dir.getFileHandle(name, { create });
    } catch (e) {
      if (domName(e) === 'NotFoundError') throw notFound(this.description, name);
      throw opfsError(this.where(name), e, 'open');
    }
  }

  /** Moves every open reader of `name` onto an in-memory copy, freeing the file for changes. */
  private detachReaders(name: string): void {
    const set = this.readers.get(name);
    if (!set) return;
    for (const r of set) r.detach();
    this.readers.delete(name);
  }

  async list(): Promise<string[]> {
    const dir = await this.dir();
    const out: string[] = [];
    try {
      for await (const k of dir.keys()) out.push(k);
    } catch (e) {
      throw opfsError(this.description, e, 'list');
    }
    return out;
  }

  async exists(name: string): Promise<boolean> {
    checkFileName(name);
    const dir = await this.dir();
    try {
      await dir.getFileHandle(name);
      return true;
    } catch (e) {
      if (domName(e) === 'NotFoundError') return false;
      throw opfsError(this.where(name), e, 'look up');
    }
  }

  async readFile(name: string): Promise<Uint8Array> {
    const fh = await this.file(name);
    try {
      // getFile() works while a sync handle is open (even another tab's), unlike a second handle
      return new Uint8Array(await (await fh.getFile()).arrayBuffer());
    } catch (e) {
      throw opfsError(this.where(name), e, 'read');
    }
  }

  async writeFile(name: string, chunks: readonly Uint8Array[]): Promise<void> {
    const fh = await this.file(name, true);
    this.detachReaders(name);
    let h: SyncAccessHandle | undefined;
    try {
      h = await fh.createSyncAccessHandle();
      h.truncate(0);
      let at = 0;
      for (const c of chunks) at += writeAll(h, c, at);
      h.flush();
    } catch (e) {
      throw opfsError(this.where(name), e, 'write');
    } finally {
      try { h?.close(); } catch { /* already closed */ }
    }
  }

  async openAppend(name: string, options: { create: boolean }): Promise<AppendFile> {
    checkFileName(name);
    const where = this.where(name);
    if (options.create && await this.exists(name)) {
      throw new QuiverError('IO_ERROR', `${where}: file exists`, { file: where, errno: 'EEXIST' });
    }
    const fh = await this.file(name, options.create);
    this.detachReaders(name);
    let h: SyncAccessHandle;
    let size: number;
    try {
      h = await fh.createSyncAccessHandle();
      size = h.getSize();
    } catch (e) {
      throw opfsError(where, e, options.create ? 'create' : 'open for appending');
    }
    let closed = false;
    const check = () => { if (closed) throw new QuiverError('CLOSED', `${where} is closed`, { file: where }); };
    return {
      name,
      get size() { return size; },
      async append(bytes: Uint8Array) {
        check();
        try {
          size += writeAll(h, bytes, size);
        } catch (e) {
          throw opfsError(where, e, 'append to');
        }
      },
      async sync() {
        check();
        try { h.flush(); } catch (e) { throw opfsError(where, e, 'sync'); }
      },
      async truncate(to: number) {
        check();
        try {
          h.truncate(Math.min(size, to));
          size = Math.min(size, to);
        } catch (e) {
          throw opfsError(where, e, 'truncate');
        }
      },
      async close() {
        if (closed) return;
        closed = true;
        try { h.close(); } catch { /* already closed */ }
      },
    };
  }

  async openRead(name: string): Promise<RandomAccessFile> {
    const fh = await this.file(name);
    const where = this.where(name);
    let handle: SyncAccessHandle | undefined;
    try {
      handle = await fh.createSyncAccessHandle({ mode: 'read-only' });
    } catch (e) {
      // held exclusively (another tab's writer; or an older browser ignoring `mode`, whose handles
      // are all exclusive): read the file's current bytes through getFile() instead
      if (domName(e) !== 'NoModificationAllowedError' && domName(e) !== 'InvalidStateError') throw opfsError(where, e, 'open');
    }
    let reader: OpfsReader;
    if (handle) {
      reader = new OpfsReader(name, where, handle, undefined);
    } else {
      try {
        reader = new OpfsReader(name, where, undefined, new Uint8Array(await (await fh.getFile()).arrayBuffer()));
      } catch (e) {
        throw opfsError(where, e, 'read');
      }
    }
    let set = this.readers.get(name);
    if (!set) this.readers.set(name, set = new Set());
    set.add(reader);
    reader.onClose = () => { this.readers.get(name)?.delete(reader); };
    return reader;
  }

  async rename(from: string, to: string): Promise<void> {
    checkFileName(to);
    const src = await this.file(from);
    // OPFS refuses to move a file with an open handle, or over one
    this.detachReaders(from);
    this.detachReaders(to);
    const dir = await this.dir();
    if (typeof src.move === 'function') {
      try {
        await src.move(dir, to);
        return;
      } catch (e) {
        throw opfsError(this.where(from), e, `rename to ${to}`);
      }
    }
    // no move(): copy, then remove the source (not atomic, see the class comment)
    const bytes = await this.readFile(from);
    await this.writeFile(to, [bytes]);
    await this.remove(from);
  }

  async remove(name: string): Promise<void> {
    checkFileName(name);
    const dir = await this.dir();
    this.detachReaders(name);
    try {
      await dir.removeEntry(name);
    } catch (e) {
      if (domName(e) !== 'NotFoundError') throw opfsError(this.where(name), e, 'remove');
    }
  }

  /** Nothing to do: OPFS has no directory fsync (see the class comment). */
  async syncDirectory(): Promise<void> {}

  async lock(): Promise<DirectoryLock> {
    const lockName = `quiverdb:${this.description}`;
    const locks = nav()?.locks;
    const lockedError = () => new QuiverError('LOCKED', `${this.description} is already open for writing (in this or another tab or worker); open it read-only or close the other writer`, { directory: this.description });
    if (!locks) {
      // Without Web Locks only this agent's writers can be told apart; a writer in another tab still
      // cannot corrupt the files, since its first readwrite sync handle on the WAL fails (EBUSY).
      if (agentLocks.has(lockName)) throw lockedError();
      agentLocks.add(lockName);
      let released = false;
      return { release: async () => { if (!released) { released = true; agentLocks.delete(lockName); } } };
    }
    let letGo!: () => void;
    const held = new Promise<void>((r) => { letGo = r; });
    const granted = await new Promise<boolean>((resolve, reject) => {
      // the lock is held for as long as the callback's promise is pending
      locks.request(lockName, { ifAvailable: true }, (lock) => {
        if (!lock) { resolve(false); return; }
        resolve(true);
        return held;
      }).catch((e: unknown) => reject(opfsError(this.description, e, 'take the writer lock')));
    });
    if (!granted) throw lockedError();
    let released = false;
    return { release: async () => { if (!released) { released = true; letGo(); } } };
  }
}

/** A file open for reading: a read-only sync handle, or (detached) a copy of its bytes. */
class OpfsReader implements RandomAccessFile {
  readonly size: number;
  onClose: (() => void) | undefined;
  private closed = false;

  constructor(readonly name: string, private readonly where: string, private handle: SyncAccessHandle | undefined, private data: Uint8Array | undefined) {
    this.size = handle ? handle.getSize() : data!.length;
  }

  readInto(offset: number, out: Uint8Array): void {
    if (this.closed) throw new QuiverError('CLOSED', `${this.where} is closed`, { file: this.where });
    if (offset < 0 || offset + out.length > this.size) {
      throw new QuiverError('CORRUPT_FILE', `${this.where}: read of ${out.length} bytes at ${offset} past the end (${this.size} bytes)`, {
        file: this.where, offset, expected: offset + out.length, received: this.size,
      });
    }
    if (this.data) {
      out.set(this.data.subarray(offset, offset + out.length));
      return;
    }
    let n: number;
    try {
      n = this.handle!.read(out, { at: offset });
    } catch (e) {
      throw opfsError(this.where, e, 'read');
    }
    if (n !== out.length) throw new QuiverError('CORRUPT_FILE', `${this.where}: file shrank while reading at ${offset + n}`, { file: this.where, offset: offset + n });
  }

  /** Copies the file into memory and closes the handle (synchronous: no read can interleave). */
  detach(): void {
    if (!this.handle) return;
    const data = new Uint8Array(this.size);
    try {
      if (this.size && this.handle.read(data, { at: 0 }) !== this.size) throw new Error(`short read of ${this.size} bytes`);
    } catch (e) {
      throw opfsError(this.where, e, 'copy into memory before the file changes');
    }
    try { this.handle.close(); } catch { /* already closed */ }
    this.handle = undefined;
    this.data = data;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try { this.handle?.close(); } catch { /* already closed */ }
    this.handle = undefined;
    this.data = undefined;
    this.onClose?.();
  }
}

async function opfsRoot(description: string): Promise<OpfsDirHandle> {
  const getDirectory = nav()?.storage?.getDirectory;
  if (typeof getDirectory !== 'function') {
    throw new QuiverError('IO_ERROR', `${description}: this environment has no Origin Private File System (navigator.storage.getDirectory)`, { file: description, errno: 'ENOTSUP' });
  }
  try {
    return await getDirectory.call(nav()!.storage) as OpfsDirHandle;
  } catch (e) {
    // e.g. SecurityError in a private window or an opaque origin
    throw opfsError(description, e, 'open the origin private file system');
  }
}

/** Writes all of `bytes` at `at`; returns bytes.length. */
function writeAll(h: SyncAccessHandle, bytes: Uint8Array, at: number): number {
  let done = 0;
  while (done < bytes.length) {
    const n = h.write(done === 0 ? bytes : bytes.subarray(done), { at: at + done });
    // a sync handle writes everything or throws; 0 would loop forever
    if (n <= 0) throw new QuiverError('IO_ERROR', `write of ${bytes.length - done} bytes at ${at + done} made no progress`, { errno: 'EIO' });
    done += n;
  }
  return bytes.length;
}

function domName(e: unknown): string {
  return e !== null && typeof e === 'object' && typeof (e as { name?: unknown }).name === 'string' ? (e as { name: string }).name : '';
}

/** IO_ERROR naming the file and an errno like the filesystem's, from a DOMException. */
function opfsError(file: string, e: unknown, action: string): QuiverError {
  if (e instanceof QuiverError) return e;
  const name = domName(e);
  const errno = name === 'NotFoundError' ? 'ENOENT'
    : name === 'QuotaExceededError' ? 'ENOSPC'
    : name === 'NoModificationAllowedError' || name === 'InvalidStateError' ? 'EBUSY'
    : name === 'SecurityError' || name === 'NotAllowedError' ? 'EACCES'
    : name === 'TypeMismatchError' ? 'EISDIR'
    : 'EIO';
  const why = errno === 'ENOENT' ? 'no such file'
    : errno === 'ENOSPC' ? "the origin's storage quota is exhausted"
    : errno === 'EBUSY' ? 'the file is open in another tab or worker'
    : errno === 'EACCES' ? 'storage access is not allowed here (private window or opaque origin?)'
    : (e as Error)?.message ?? String(e);
  return new QuiverError('IO_ERROR', `${file}: cannot ${action}: ${why}`, { file, errno }, { cause: e });
}
