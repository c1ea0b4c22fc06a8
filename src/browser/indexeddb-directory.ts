import { QuiverError } from '../errors.js';
import { checkFileName, memoryReader, notFound, type AppendFile, type Directory, type DirectoryLock, type RandomAccessFile } from '../storage/directory.js';

/*
 * Layout: one IndexedDB database per collection, named `quiverdb:<name>` (so `remove(name)` is one
 * `deleteDatabase` and collections never share a transaction scope), version 1, with four stores:
 * - `meta`: key 'format' -> { version: 1, pageSize } (the page size is fixed when the database is
 *   created: every page of every file depends on it);
 * - `names`: file name -> inode number (the directory entries);
 * - `inodes`: inode number (auto-increment, never reused within a database) -> { size }; `size` is
 *   the file's committed length, the one thing that says which bytes exist;
 * - `pages`: [inode, pageNo] -> Uint8Array holding bytes [pageNo * pageSize, ...) of the file, at
 *   most pageSize of them. Bytes at or past `size` (in the last page, or whole pages past it) are
 *   garbage that readers ignore; pages never begin past a gap (every page below the last is full).
 * Names point at inodes, as on a POSIX filesystem, so a rename is a change of one `names` entry and
 * an appender (which holds its inode) keeps writing to its file whatever it is called.
 */
const DB_VERSION = 1;
const FORMAT_VERSION = 1;
/**
 * 32 KiB: Chromium stores a value whose serialization exceeds 64 KiB as a separate blob file, so a
 * 64 KiB page would cost a file each; and a WAL sync rewrites the partly filled last page, so
 * smaller pages make small commits cheaper.
 */
const DEFAULT_PAGE_SIZE = 32 * 1024;
const MAX_PAGE_SIZE = 16 * 1024 * 1024;
/** An appender writes its full pages out once it holds this many (bounding its memory, see below). */
const SPILL_PAGES = 64;
/** Pages fetched per request when a file is read (bounds the transient copy of a read at 64 pages). */
const READ_BATCH_PAGES = 64;

export interface IndexedDbDirectoryOptions {
  /** The IndexedDB implementation (default `globalThis.indexedDB`); tests pass fake-indexeddb's. */
  indexedDB?: IDBFactory;
  /** The key-range constructor of that implementation (default `globalThis.IDBKeyRange`); required with a foreign `indexedDB`. */
  IDBKeyRange?: typeof IDBKeyRange;
  /**
   * Bytes per page (1..16 MiB, default 32 KiB), used only when the database is created; an existing
   * database keeps the page size it was created with. Small pages are for tests of page boundaries.
   */
  pageSize?: number;
}

interface WebLocks {
  request(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<void> | void): Promise<void>;
}
interface Conn {
  db: IDBDatabase;
  pageSize: number;
  /** The key range of pages [from, to] of inode `id` (to: the end by default). */
  range(id: number, from: number, to?: number): IDBKeyRange;
}
interface Inode { size: number }

/** Locks taken by IndexedDbDirectory.lock() where Web Locks do not apply, per IndexedDB factory. */
const agentLocks = new WeakMap<object, Set<string>>();

/**
 * A collection directory in the browser's IndexedDB: the fallback where OPFS sync access handles
 * are missing (the main thread of a page; older browsers). Works on the main thread and in workers.
 * The layout is described at the top of this file: database `quiverdb:<name>`, files as inodes of
 * fixed-size pages, names pointing at inodes.
 *
 * How the Directory contract maps onto IndexedDB:
 * - durability: a readwrite transaction is atomic (all its writes or none survive a crash) and is
 *   requested with `durability: 'strict'` (Chromium otherwise commits "relaxed", before the data is
 *   flushed); a method that changes files resolves on the transaction's `complete` event. Every
 *   creation, rename and removal is its own committed transaction, so `syncDirectory` has nothing
 *   left to do;
 * - `writeFile`: all pages and the name in one transaction (a replaced file's pages go in it too);
 * - `rename` and `remove`: one transaction each, repointing or deleting the name (and deleting the
 *   replaced or removed inode with its pages), so both are atomic;
 * - appends are buffered in memory; `sync()` writes the pages touched since the last sync and the
 *   new size in one transaction, so after a crash a file has its old synced length or its new one,
 *   never a torn tail. An appender holding 64 full pages writes them out early without changing the
 *   size (they stay invisible until a sync commits it), which bounds its memory for large segment
 *   files. `truncate` below the synced length commits at once. `close()` writes what was appended
 *   (as closing a file leaves written bytes in it), but only `sync()` promises they are durable;
 *   other handles (readers, `readFile`) see only what was synced or closed;
 * - readers: `RandomAccessFile.readInto` is synchronous and IndexedDB is not, so `openRead` loads
 *   the whole file into memory: an open segment costs its file size in memory, on top of whatever
 *   the engine decodes from it. An open reader therefore keeps its content when the file is removed
 *   or replaced, as the contract requires;
 * - lock: a Web Lock named `quiverdb:idb:<name>`, so a second tab or worker opening the collection
 *   for writing gets LOCKED, and the browser drops it with the tab or worker (no stale lock after a
 *   crash). Without Web Locks, or with an injected IndexedDB (whose databases are not the origin's),
 *   the lock only excludes writers in this JavaScript agent using the same factory.
 * Errors: IO_ERROR with {file, errno} (ENOENT missing, EEXIST, ENOSPC when the origin's quota is
 * exhausted, ESTALE when the database was deleted or closed under an open handle, EACCES where
 * storage is not allowed, ENOTSUP without IndexedDB, EIO otherwise); CORRUPT_FILE for a file whose
 * pages are missing; UNSUPPORTED_FORMAT for a database written by a newer version; LOCKED from lock().
 */
export class IndexedDbDirectory implements Directory {
  readonly durable = true;
  readonly description: string;
  /** The IndexedDB database holding this collection: `quiverdb:<name>`. */
  readonly databaseName: string;
  private readonly injected: IDBFactory | undefined;
  private readonly keyRange: typeof IDBKeyRange | undefined;
  private readonly pageSize: number;
  private conn: Promise<Conn> | undefined;

  /** `name`: the collection ([A-Za-z0-9._-], 1..128 chars); its database is `quiverdb:<name>`. */
  constructor(readonly name: string, options: IndexedDbDirectoryOptions = {}) {
    checkCollectionName(name);
    if (typeof options !== 'object' || options === null) throw new QuiverError('INVALID_ARGUMENT', 'IndexedDbDirectory options must be an object', { received: String(options) });
    const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
      throw new QuiverError('INVALID_ARGUMENT', `pageSize must be an integer in [1, ${MAX_PAGE_SIZE}], got ${String(options.pageSize)}`, { field: 'pageSize', received: options.pageSize });
    }
    if (options.indexedDB !== undefined && typeof options.indexedDB?.open !== 'function') {
      throw new QuiverError('INVALID_ARGUMENT', 'options.indexedDB must be an IDBFactory', { field: 'indexedDB' });
    }
    // ranges must come from the same implementation as the factory: a fake factory rejects the
    // browser's IDBKeyRange objects and vice versa
    if (options.indexedDB !== undefined && options.indexedDB !== globalIndexedDb() && options.IDBKeyRange === undefined) {
      throw new QuiverError('INVALID_ARGUMENT', 'pass options.IDBKeyRange from the same implementation as options.indexedDB', { field: 'IDBKeyRange' });
    }
    if (options.IDBKeyRange !== undefined && typeof options.IDBKeyRange?.bound !== 'function') {
      throw new QuiverError('INVALID_ARGUMENT', 'options.IDBKeyRange must be an IDBKeyRange constructor', { field: 'IDBKeyRange' });
    }
    this.injected = options.indexedDB;
    this.keyRange = options.IDBKeyRange;
    this.pageSize = pageSize;
    this.description = `indexeddb:${name}`;
    this.databaseName = `quiverdb:${name}`;
  }

  /** Whether this environment has IndexedDB (pages and workers of current browsers). */
  static supported(): boolean {
    return globalIndexedDb() !== undefined && typeof (globalThis as { IDBKeyRange?: unknown }).IDBKeyRange === 'function';
  }

  /**
   * Deletes the collection `name` (its whole database); a missing one is not an error. Open
   * connections to it (in any tab) close on the deletion's `versionchange` event, so their open
   * handles then fail with ESTALE; their directories start afresh on the next operation.
   */
  static async remove(name: string, options: Pick<IndexedDbDirectoryOptions, 'indexedDB'> = {}): Promise<void> {
    checkCollectionName(name);
    const description = `indexeddb:${name}`;
    const factory = factoryOf(options.indexedDB, description);
    await new Promise<void>((resolve, reject) => {
      let req: IDBOpenDBRequest;
      try {
        req = factory.deleteDatabase(`quiverdb:${name}`);
      } catch (e) {
        reject(idbError(description, e, 'delete the database'));
        return;
      }
      req.onsuccess = () => resolve();
      req.onerror = () => reject(idbError(description, req.error, 'delete the database'));
      // `blocked`: a connection elsewhere (another tab) has not closed yet; ours close on
      // `versionchange`, and the deletion completes when the others do
    });
  }

  /**
   * Whether the collection `name` has a database here. Uses `indexedDB.databases()` where it
   * exists; elsewhere opens the database and aborts its creation if it was missing.
   */
  static async exists(name: string, options: Pick<IndexedDbDirectoryOptions, 'indexedDB'> = {}): Promise<boolean> {
    checkCollectionName(name);
    const description = `indexeddb:${name}`;
    const factory = factoryOf(options.indexedDB, description);
    const dbName = `quiverdb:${name}`;
    try {
      if (typeof factory.databases === 'function') return (await factory.databases()).some((d) => d.name === dbName);
    } catch (e) {
      throw idbError(description, e, 'list databases');
    }
    return new Promise<boolean>((resolve, reject) => {
      let req: IDBOpenDBRequest;
      let created = false;
      try {
        req = factory.open(dbName);
      } catch (e) {
        reject(idbError(description, e, 'open the database'));
        return;
      }
      req.onupgradeneeded = (ev) => {
        // version 0 -> 1: the database did not exist; aborting the upgrade leaves it uncreated
        if (ev.oldVersion === 0) { created = true; req.transaction!.abort(); }
      };
      req.onsuccess = () => { req.result.close(); resolve(true); };
      req.onerror = () => {
        if (created) resolve(false);
        else reject(idbError(description, req.error, 'open the database'));
      };
    });
  }

  private where(name: string): string {
    return `${this.description}/${name}`;
  }

  private range(): typeof IDBKeyRange {
    const r = this.keyRange ?? (globalThis as { IDBKeyRange?: typeof IDBKeyRange }).IDBKeyRange;
    if (!r) throw new QuiverError('IO_ERROR', `${this.description}: IDBKeyRange is not available here`, { file: this.description, errno: 'ENOTSUP' });
    return r;
  }

  /** The open connection, opening (and on first use creating) the database. */
  private connect(): Promise<Conn> {
    if (this.conn) return this.conn;
    const p: Promise<Conn> = (async () => {
      const factory = factoryOf(this.injected, this.description);
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        let req: IDBOpenDBRequest;
        try {
          req = factory.open(this.databaseName, DB_VERSION);
        } catch (e) {
          reject(idbError(this.description, e, 'open the database'));
          return;
        }
        req.onupgradeneeded = (ev) => {
          if (ev.oldVersion !== 0) return; // only version 1 exists so far
          try {
            const d = req.result;
            d.createObjectStore('meta');
            d.createObjectStore('names');
            d.createObjectStore('inodes', { autoIncrement: true });
            d.createObjectStore('pages');
            req.transaction!.objectStore('meta').put({ version: FORMAT_VERSION, pageSize: this.pageSize }, 'format');
          } catch (e) {
            reject(idbError(this.description, e, 'create the database'));
            try { req.transaction?.abort(); } catch { /* already finishing */ }
          }
        };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => {
          if (domName(req.error) === 'VersionError') {
            reject(new QuiverError('UNSUPPORTED_FORMAT', `${this.description}: the database was written by a newer version of QuiverDB`, { file: this.description }, { cause: req.error }));
          } else {
            reject(idbError(this.description, req.error, 'open the database'));
          }
        };
        // `blocked` only concerns upgrades from an older version; there is none yet
      });
      // let a deletion (IndexedDbDirectory.remove, another tab) or a newer version proceed: this
      // connection closes and the next operation opens the database again
      const drop = () => { if (this.conn === p) this.conn = undefined; };
      db.onversionchange = () => { db.close(); drop(); };
      db.onclose = drop; // closed by the browser (storage cleared, disk error)
      let meta: { version?: unknown; pageSize?: unknown } | undefined;
      try {
        meta = await txn<typeof meta>(db, ['meta'], 'readonly', this.description, 'read the format', (x) => {
          x.on(x.t.objectStore('meta').get('format'), (v) => x.set(v as typeof meta));
        });
      } catch (e) {
        db.close();
        throw e;
      }
      const pageSize = meta?.pageSize;
      if (!meta || typeof meta.version !== 'number' || typeof pageSize !== 'number' || !Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
        db.close();
        throw new QuiverError('CORRUPT_FILE', `${this.description}: the database's format record is missing or malformed`, { file: this.description });
      }
      if (meta.version > FORMAT_VERSION) {
        db.close();
        throw new QuiverError('UNSUPPORTED_FORMAT', `${this.description}: format ${meta.version} is newer than this version of QuiverDB reads (${FORMAT_VERSION})`, { file: this.description, received: meta.version, expected: FORMAT_VERSION });
      }
      return { db, pageSize, range: (id: number, from: number, to = Infinity) => this.range().bound([id, from], [id, to]) };
    })();
    this.conn = p;
    // a failure is not cached: a later call may succeed (e.g. after quota was freed)
    p.catch(() => { if (this.conn === p) this.conn = undefined; });
    return p;
  }

  async list(): Promise<string[]> {
    const { db } = await this.connect();
    return txn<string[]>(db, ['names'], 'readonly', this.description, 'list', (x) => {
      x.on(x.t.objectStore('names').getAllKeys(), (keys) => x.set(keys.map(String)));
    });
  }

  async exists(name: string): Promise<boolean> {
    checkFileName(name);
    const { db } = await this.connect();
    return txn<boolean>(db, ['names'], 'readonly', this.where(name), 'look up', (x) => {
      x.on(x.t.objectStore('names').count(name), (n) => x.set(n > 0));
    });
  }

  async readFile(name: string): Promise<Uint8Array> {
    checkFileName(name);
    return this.load(await this.connect(), name);
  }

  /** The committed bytes of `name`, read in one transaction (a consistent version of the file). */
  private load(c: Conn, name: string): Promise<Uint8Array> {
    const where = this.where(name);
    const P = c.pageSize;
    return txn<Uint8Array>(c.db, ['names', 'inodes', 'pages'], 'readonly', where, 'read', (x) => {
      x.on(x.t.objectStore('names').get(name), (id) => {
        if (id === undefined) throw notFound(this.description, name);
        x.on(x.t.objectStore('inodes').get(id as number), (inode) => {
          const size = inodeSize(inode, where);
          const out = new Uint8Array(size);
          x.set(out);
          const last = Math.ceil(size / P) - 1;
          // batches of pages, each request picking up after the previous one's last page
          const next = (from: number) => {
            if (from > last) return;
            x.on(x.t.objectStore('pages').getAll(c.range(id as number, from, last), READ_BATCH_PAGES), (got) => {
              for (let k = 0; k < got.length; k++) {
                const start = (from + k) * P;
                // getAll returns pages in key order: a gap shifts the pages and shows up here
                out.set(pageBytes(got[k], Math.min(P, size - start), where, start), start);
              }
              if (got.length < Math.min(READ_BATCH_PAGES, last - from + 1)) {
                throw new QuiverError('CORRUPT_FILE', `${where}: pages from ${from + got.length} are missing (file of ${size} bytes)`, { file: where, offset: (from + got.length) * P });
              }
              next(from + got.length);
            });
          };
          next(0);
        });
      });
    });
  }

  async writeFile(name: string, chunks: readonly Uint8Array[]): Promise<void> {
    checkFileName(name);
    const c = await this.connect();
    const P = c.pageSize;
    let total = 0;
    for (const ch of chunks) total += ch.length;
    // cut into pages up front (copies: the caller may reuse its buffers once this resolves, and a
    // page must not drag a larger buffer into the store)
    const pages: Uint8Array[] = [];
    for (let p = 0; p * P < total; p++) pages.push(new Uint8Array(Math.min(P, total - p * P)));
    let at = 0;
    for (const ch of chunks) {
      let done = 0;
      while (done < ch.length) {
        const page = pages[Math.floor(at / P)];
        const off = at % P;
        const n = Math.min(ch.length - done, page.length - off);
        page.set(ch.subarray(done, done + n), off);
        done += n;
        at += n;
      }
    }
    await txn(c.db, ['names', 'inodes', 'pages'], 'readwrite', this.where(name), 'write', (x) => {
      x.on(x.t.objectStore('inodes').add({ size: total } satisfies Inode), (key) => {
        const id = key as number;
        const store = x.t.objectStore('pages');
        for (let p = 0; p < pages.length; p++) store.put(pages[p], [id, p]);
        repoint(x, c, name, id);
      });
    });
  }

  async openAppend(name: string, options: { create: boolean }): Promise<AppendFile> {
    checkFileName(name);
    const c = await this.connect();
    const where = this.where(name);
    const P = c.pageSize;
    if (options.create) {
      const id = await txn<number>(c.db, ['names', 'inodes'], 'readwrite', where, 'create', (x) => {
        const names = x.t.objectStore('names');
        x.on(names.count(name), (n) => {
          if (n > 0) throw new QuiverError('IO_ERROR', `${where}: file exists`, { file: where, errno: 'EEXIST' });
          x.on(x.t.objectStore('inodes').add({ size: 0 } satisfies Inode), (key) => {
            x.set(key as number);
            names.put(key, name);
          });
        });
      });
      return new IdbAppendFile(c, name, where, id, 0, new Uint8Array(0));
    }
    const opened = await txn<{ id: number; size: number; tail: Uint8Array }>(c.db, ['names', 'inodes', 'pages'], 'readonly', where, 'open for appending', (x) => {
      x.on(x.t.objectStore('names').get(name), (key) => {
        if (key === undefined) throw notFound(this.description, name);
        const id = key as number;
        x.on(x.t.objectStore('inodes').get(id), (inode) => {
          const size = inodeSize(inode, where);
          const partial = size % P;
          if (partial === 0) { x.set({ id, size, tail: new Uint8Array(0) }); return; }
          // the last page is partly filled: the appender holds it, since its next sync rewrites it whole
          x.on(x.t.objectStore('pages').get([id, Math.floor(size / P)]), (page) => {
            x.set({ id, size, tail: pageBytes(page, partial, where, size - partial).slice() });
          });
        });
      });
    });
    return new IdbAppendFile(c, name, where, opened.id, opened.size, opened.tail);
  }

  async openRead(name: string): Promise<RandomAccessFile> {
    checkFileName(name);
    // readInto must be synchronous: the whole file comes into memory now (see the class comment)
    return memoryReader(name, this.where(name), await this.load(await this.connect(), name));
  }

  async rename(from: string, to: string): Promise<void> {
    checkFileName(from);
    checkFileName(to);
    const c = await this.connect();
    await txn(c.db, ['names', 'inodes', 'pages'], 'readwrite', this.where(from), `rename to ${to}`, (x) => {
      const names = x.t.objectStore('names');
      x.on(names.get(from), (id) => {
        if (id === undefined) throw notFound(this.description, from);
        if (from === to) return; // POSIX: renaming a file onto itself does nothing
        names.delete(from);
        repoint(x, c, to, id as number);
      });
    });
  }

  async remove(name: string): Promise<void> {
    checkFileName(name);
    const c = await this.connect();
    await txn(c.db, ['names', 'inodes', 'pages'], 'readwrite', this.where(name), 'remove', (x) => {
      const names = x.t.objectStore('names');
      x.on(names.get(name), (id) => {
        if (id === undefined) return;
        names.delete(name);
        dropInode(x, c, id as number);
      });
    });
  }

  /** Nothing to do: creations, renames and removals each commit in their own durable transaction. */
  async syncDirectory(): Promise<void> {}

  async lock(): Promise<DirectoryLock> {
    const lockName = `quiverdb:idb:${this.name}`;
    const lockedError = () => new QuiverError('LOCKED', `${this.description} is already open for writing (in this or another tab or worker); open it read-only or close the other writer`, { directory: this.description });
    const factory = factoryOf(this.injected, this.description);
    const locks = (globalThis as { navigator?: { locks?: WebLocks } }).navigator?.locks;
    // Web Locks are per origin, like the browser's own IndexedDB; an injected factory (a fake in
    // tests) has databases of its own, so its locks are kept per factory in this agent
    if (!locks || factory !== globalIndexedDb()) {
      let held = agentLocks.get(factory);
      if (!held) agentLocks.set(factory, held = new Set());
      if (held.has(lockName)) throw lockedError();
      held.add(lockName);
      const set = held;
      let released = false;
      return { release: async () => { if (!released) { released = true; set.delete(lockName); } } };
    }
    let letGo!: () => void;
    const holding = new Promise<void>((r) => { letGo = r; });
    const granted = await new Promise<boolean>((resolve, reject) => {
      // the lock is held for as long as the callback's promise is pending
      locks.request(lockName, { ifAvailable: true }, (lock) => {
        if (!lock) { resolve(false); return; }
        resolve(true);
        return holding;
      }).catch((e: unknown) => reject(idbError(this.description, e, 'take the writer lock')));
    });
    if (!granted) throw lockedError();
    let released = false;
    return { release: async () => { if (!released) { released = true; letGo(); } } };
  }
}

/** In a readwrite transaction: points `name` at inode `id`, deleting the inode it pointed at before. */
function repoint(x: Tx<unknown>, c: Conn, name: string, id: number): void {
  const names = x.t.objectStore('names');
  x.on(names.get(name), (old) => {
    if (old !== undefined && old !== id) dropInode(x, c, old as number);
    names.put(id, name);
  });
}

function dropInode(x: Tx<unknown>, c: Conn, id: number): void {
  x.t.objectStore('inodes').delete(id);
  x.t.objectStore('pages').delete(c.range(id, 0));
}

/**
 * A file open for appending. Bytes [0, base) are in the database's pages (committed up to
 * `synced`; pages between `synced` and `base` were written out early and are not yet part of the
 * file); `buf` holds bytes [base, base + len) in memory, `base` a page boundary. Operations run one
 * at a time in call order (`queue`), since each may wait on a transaction.
 */
class IdbAppendFile implements AppendFile {
  private base: number;
  private buf: Uint8Array;
  private len: number;
  private synced: number;
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly P: number;

  constructor(private readonly c: Conn, readonly name: string, private readonly where: string,
    private readonly id: number, size: number, tail: Uint8Array) {
    this.P = c.pageSize;
    this.base = size - tail.length;
    this.buf = tail;
    this.len = tail.length;
    this.synced = size;
  }

  get size(): number { return this.base + this.len; }

  private check(): void {
    if (this.closed) throw new QuiverError('CLOSED', `${this.where} is closed`, { file: this.where });
  }

  private run<T>(op: () => Promise<T>): Promise<T> {
    const r = this.queue.then(op);
    this.queue = r.catch(() => {});
    return r;
  }

  /** Bytes [0, upTo) of the buffer as fresh page arrays (a stored view would carry the whole buffer). */
  private pagesOf(upTo: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let at = 0; at < upTo; at += this.P) out.push(this.buf.slice(at, Math.min(at + this.P, upTo)));
    return out;
  }

  /**
   * One transaction on this file's inode: `body` runs only while the inode exists. A file removed
   * or replaced while open gets nothing written, as an unlinked file's writes go nowhere on POSIX
   * (and nothing is left behind in the store).
   */
  private onInode(action: string, body: (x: Tx<void>, committed: number) => void): Promise<void> {
    return txn(this.c.db, ['inodes', 'pages'], 'readwrite', this.where, action, (x) => {
      x.on(x.t.objectStore('inodes').get(this.id), (inode) => {
        if (inode !== undefined) body(x, inodeSize(inode, this.where));
      });
    });
  }

  private putPages(x: Tx<void>, pages: Uint8Array[]): void {
    const store = x.t.objectStore('pages');
    const first = this.base / this.P;
    for (let k = 0; k < pages.length; k++) store.put(pages[k], [this.id, first + k]);
  }

  async append(bytes: Uint8Array): Promise<void> {
    this.check();
    return this.run(async () => {
      this.check();
      if (this.len + bytes.length > this.buf.length) {
        let cap = Math.max(this.buf.length * 2, Math.min(this.P, 1 << 16), 256);
        while (cap < this.len + bytes.length) cap *= 2;
        const next = new Uint8Array(cap);
        next.set(this.buf.subarray(0, this.len));
        this.buf = next;
      }
      this.buf.set(bytes, this.len);
      this.len += bytes.length;
      const full = Math.floor(this.len / this.P);
      if (full < SPILL_PAGES) return;
      // write the full pages out without committing a new size: a crash still finds the synced
      // length, and the pages stay invisible garbage past it until a sync commits them
      const pages = this.pagesOf(full * this.P);
      await this.onInode('append to', (x) => this.putPages(x, pages));
      this.shift(full * this.P);
    });
  }

  /** Drops the first `n` bytes (a multiple of the page size) of the buffer, now in the store. */
  private shift(n: number): void {
    if (n === 0) return;
    this.buf.copyWithin(0, n, this.len);
    this.len -= n;
    this.base += n;
  }

  /** Writes the buffered pages and commits the size, in one transaction. */
  private async commit(action: string): Promise<void> {
    const size = this.size;
    if (size === this.synced) return; // nothing appended since the last commit
    const pages = this.pagesOf(this.len);
    await this.onInode(action, (x) => {
      this.putPages(x, pages);
      x.t.objectStore('inodes').put({ size } satisfies Inode, this.id);
    });
    this.synced = size;
    // keep only the partly filled last page: the next commit rewrites it whole
    this.shift(Math.floor(this.len / this.P) * this.P);
    // a long-lived appender (the WAL) should not keep the capacity one large write needed
    if (this.buf.length > 4 * Math.max(this.P, 256)) this.buf = this.buf.slice(0, Math.max(this.P, 256));
  }

  async sync(): Promise<void> {
    this.check();
    return this.run(async () => {
      this.check();
      await this.commit('sync');
    });
  }

  async truncate(size: number): Promise<void> {
    this.check();
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) {
      throw new QuiverError('INVALID_ARGUMENT', `truncate size must be a non-negative integer, got ${String(size)}`, { file: this.where, received: size });
    }
    return this.run(async () => {
      this.check();
      const to = Math.min(size, this.size);
      const P = this.P;
      if (to >= this.base && to >= this.synced) {
        this.len = to - this.base; // only buffered bytes go
        return;
      }
      // committed bytes (or pages written out early) go: cut the store in one transaction
      const pageStart = Math.floor(to / P) * P;
      let tail: Uint8Array | undefined;
      await this.onInode('truncate', (x, committed) => {
        const pages = x.t.objectStore('pages');
        if (to < this.base && to > pageStart) {
          // the page holding the new end is in the store, not in the buffer: fetch it
          x.on(pages.get([this.id, pageStart / P]), (page) => { tail = pageBytes(page, to - pageStart, this.where, pageStart).slice(); });
        }
        pages.delete(this.c.range(this.id, Math.ceil(to / P)));
        if (to < committed) x.t.objectStore('inodes').put({ size: to } satisfies Inode, this.id);
      });
      if (to < this.base) {
        this.base = pageStart;
        this.buf = tail ?? new Uint8Array(0);
        this.len = to - pageStart;
      } else {
        this.len = to - this.base;
      }
      this.synced = Math.min(this.synced, to);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return this.queue.then(() => {});
    this.closed = true;
    // closing leaves appended bytes in the file, as on a filesystem (durable only after sync)
    return this.run(() => this.commit('close'));
  }
}

function checkCollectionName(name: string): void {
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(name)) {
    throw new QuiverError('INVALID_ARGUMENT', `invalid IndexedDB collection name ${JSON.stringify(name)} (use [A-Za-z0-9._-], 1..128 characters)`, { received: name });
  }
}

function globalIndexedDb(): IDBFactory | undefined {
  try {
    // reading `indexedDB` throws SecurityError in opaque origins (sandboxed frames)
    const f = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    return f && typeof f.open === 'function' ? f : undefined;
  } catch {
    return undefined;
  }
}

function factoryOf(injected: IDBFactory | undefined, description: string): IDBFactory {
  const f = injected ?? globalIndexedDb();
  if (!f) {
    throw new QuiverError('IO_ERROR', `${description}: IndexedDB is not available here; use MemoryDirectory or Collection.openSnapshot instead`, { file: description, errno: 'ENOTSUP' });
  }
  return f;
}

/** The size in an inode record; CORRUPT_FILE for a dangling name or a malformed record. */
function inodeSize(v: unknown, where: string): number {
  const size = (v as Inode | undefined)?.size;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) {
    throw new QuiverError('CORRUPT_FILE', `${where}: the file's inode record is missing or malformed`, { file: where });
  }
  return size;
}

/** The first `want` bytes of a stored page (a view); CORRUPT_FILE if it is missing or short. */
function pageBytes(page: unknown, want: number, where: string, offset: number): Uint8Array {
  if (!(page instanceof Uint8Array) || page.length < want) {
    throw new QuiverError('CORRUPT_FILE', `${where}: the page at byte ${offset} is missing or short`, { file: where, offset });
  }
  return page.length === want ? page : page.subarray(0, want);
}

/** What a transaction body gets: the transaction, and ways to answer or fail. */
interface Tx<T> {
  t: IDBTransaction;
  /** The value the transaction resolves with once it completes. */
  set(v: T): void;
  /** Aborts the transaction; it rejects with `e`. */
  fail(e: unknown): void;
  /** Runs `f` with the request's result when it succeeds; an exception in `f` aborts with it. */
  on<R>(req: IDBRequest<R>, f: (result: R) => void): void;
}

/**
 * Runs `body` in a new transaction and resolves with what it `set` once the transaction completes
 * (for readwrite ones: committed, with strict durability requested). `body` and the callbacks it
 * installs with `on` issue further requests; a failed request aborts the transaction (IndexedDB's
 * default), which rejects with IO_ERROR.
 */
function txn<T = void>(db: IDBDatabase, stores: string[], mode: IDBTransactionMode, file: string, action: string, body: (x: Tx<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let t: IDBTransaction;
    try {
      t = mode === 'readwrite' ? db.transaction(stores, mode, { durability: 'strict' }) : db.transaction(stores, mode);
    } catch (e) {
      reject(idbError(file, e, action));
      return;
    }
    let value: T | undefined;
    let failure: unknown;
    const fail = (e: unknown) => {
      if (failure === undefined) failure = e ?? new Error('aborted');
      try { t.abort(); } catch { /* already finishing */ }
    };
    t.oncomplete = () => resolve(value as T);
    t.onabort = () => reject(idbError(file, failure !== undefined ? failure : t.error, action));
    const x: Tx<T> = {
      t,
      set: (v) => { value = v; },
      fail,
      on: (req, f) => {
        // our own exception must abort with its error, not escape to the event loop
        req.onsuccess = () => { try { f(req.result); } catch (e) { fail(e); } };
      },
    };
    try { body(x); } catch (e) { fail(e); }
  });
}

function domName(e: unknown): string {
  return e !== null && typeof e === 'object' && typeof (e as { name?: unknown }).name === 'string' ? (e as { name: string }).name : '';
}

/** IO_ERROR naming the file and an errno like the filesystem's, from a DOMException. */
function idbError(file: string, e: unknown, action: string): QuiverError {
  if (e instanceof QuiverError) return e;
  const name = domName(e);
  const errno = name === 'QuotaExceededError' ? 'ENOSPC'
    : name === 'InvalidStateError' || name === 'TransactionInactiveError' ? 'ESTALE'
    : name === 'SecurityError' || name === 'NotAllowedError' ? 'EACCES'
    : 'EIO';
  const why = errno === 'ENOSPC' ? "the origin's storage quota is exhausted"
    : errno === 'ESTALE' ? 'the database was closed (deleted by IndexedDbDirectory.remove or another tab, or closed by the browser); open the collection again'
    : errno === 'EACCES' ? 'storage access is not allowed here (private window or opaque origin?)'
    : e == null ? 'the transaction was aborted'
    : (e as Error)?.message ?? String(e);
  return new QuiverError('IO_ERROR', `${file}: cannot ${action}: ${why}`, { file, errno }, { cause: e });
}
