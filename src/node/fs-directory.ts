import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { QuiverError } from '../errors.js';
import { checkFileName, type AppendFile, type Directory, type DirectoryLock, type RandomAccessFile } from '../storage/directory.js';

/** IO_ERROR naming the file and errno; ENOSPC and EACCES get plain-language messages. */
export function fsError(path: string, e: unknown, action: string): QuiverError {
  if (e instanceof QuiverError) return e;
  const errno = (e as NodeJS.ErrnoException).code ?? 'EIO';
  const why = errno === 'ENOSPC' ? 'no space left on device (disk full)'
    : errno === 'EACCES' || errno === 'EPERM' ? 'permission denied'
    : errno === 'ENOENT' ? 'no such file or directory'
    : errno === 'EROFS' ? 'read-only file system'
    : (e as Error).message;
  return new QuiverError('IO_ERROR', `${path}: cannot ${action}: ${why}`, { file: path, errno }, { cause: e });
}

const LOCK_FILE = 'LOCK';
/** Directories locked by this process (a second writer in the same process is also LOCKED). */
const heldLocks = new Set<string>();

/**
 * A collection directory on the filesystem. Creates the folder if missing. fsync discipline:
 * data files are synced before they are referenced; renames and creations are followed by a
 * directory sync.
 */
export class FsDirectory implements Directory {
  readonly durable = true;
  readonly description: string;

  private constructor(readonly path: string) {
    this.description = path;
  }

  /** Opens (creating with `create`) the folder at `path`. */
  static async open(path: string, options: { create?: boolean } = {}): Promise<FsDirectory> {
    const abs = resolve(path);
    try {
      const s = await stat(abs);
      if (!s.isDirectory()) throw new QuiverError('IO_ERROR', `${abs} is not a directory`, { file: abs, errno: 'ENOTDIR' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(abs, e, 'open the collection directory');
      if (!options.create) throw new QuiverError('NOT_FOUND', `no collection at ${abs} (the directory does not exist)`, { directory: abs });
      try {
        await mkdir(abs, { recursive: true });
      } catch (e2) {
        throw fsError(abs, e2, 'create the collection directory');
      }
    }
    return new FsDirectory(abs);
  }

  private p(name: string): string {
    checkFileName(name);
    return join(this.path, name);
  }

  async list(): Promise<string[]> {
    try {
      return await readdir(this.path);
    } catch (e) {
      throw fsError(this.path, e, 'list');
    }
  }

  async exists(name: string): Promise<boolean> {
    try {
      await stat(this.p(name));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw fsError(this.p(name), e, 'stat');
    }
  }

  async readFile(name: string): Promise<Uint8Array> {
    try {
      return await readFile(this.p(name));
    } catch (e) {
      throw fsError(this.p(name), e, 'read');
    }
  }

  async writeFile(name: string, chunks: readonly Uint8Array[]): Promise<void> {
    const path = this.p(name);
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'w');
      for (const c of chunks) await writeAll(fh, c, -1);
      await fh.sync();
    } catch (e) {
      throw fsError(path, e, 'write');
    } finally {
      await fh?.close().catch(() => {});
    }
  }

  async openAppend(name: string, options: { create: boolean }): Promise<AppendFile> {
    const path = this.p(name);
    let fh: FileHandle;
    let size = 0;
    try {
      fh = await open(path, options.create ? 'wx' : 'r+');
      if (!options.create) size = (await fh.stat()).size;
    } catch (e) {
      throw fsError(path, e, options.create ? 'create' : 'open for appending');
    }
    let closed = false;
    const check = () => { if (closed) throw new QuiverError('CLOSED', `${path} is closed`, { file: path }); };
    return {
      name,
      get size() { return size; },
      async append(bytes: Uint8Array) {
        check();
        try {
          await writeAll(fh, bytes, size);
          size += bytes.length;
        } catch (e) {
          throw fsError(path, e, 'append to');
        }
      },
      async sync() {
        check();
        try { await fh.datasync(); } catch (e) { throw fsError(path, e, 'sync'); }
      },
      async truncate(to: number) {
        check();
        try {
          await fh.truncate(to);
          size = Math.min(size, to);
        } catch (e) {
          throw fsError(path, e, 'truncate');
        }
      },
      async close() {
        if (closed) return;
        closed = true;
        await fh.close().catch(() => {});
      },
    };
  }

  async openRead(name: string): Promise<RandomAccessFile> {
    const path = this.p(name);
    let fd: number;
    let size: number;
    try {
      fd = openSync(path, 'r');
      size = fstatSync(fd).size;
    } catch (e) {
      throw fsError(path, e, 'open');
    }
    let closed = false;
    return {
      name,
      size,
      readInto(offset: number, out: Uint8Array): void {
        if (closed) throw new QuiverError('CLOSED', `${path} is closed`, { file: path });
        if (offset < 0 || offset + out.length > size) {
          throw new QuiverError('CORRUPT_FILE', `${path}: read of ${out.length} bytes at ${offset} past the end (${size} bytes)`, {
            file: path, offset, expected: offset + out.length, received: size,
          });
        }
        let done = 0;
        try {
          while (done < out.length) {
            const n = readSync(fd, out, done, out.length - done, offset + done);
            if (n === 0) throw new QuiverError('CORRUPT_FILE', `${path}: file shrank while reading at ${offset + done}`, { file: path, offset: offset + done });
            done += n;
          }
        } catch (e) {
          throw fsError(path, e, 'read');
        }
      },
      async close() {
        if (closed) return;
        closed = true;
        try { closeSync(fd); } catch { /* already closed */ }
      },
    };
  }

  async rename(from: string, to: string): Promise<void> {
    try {
      await rename(this.p(from), this.p(to));
    } catch (e) {
      throw fsError(this.p(from), e, `rename to ${to}`);
    }
  }

  async remove(name: string): Promise<void> {
    try {
      await unlink(this.p(name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(this.p(name), e, 'remove');
    }
  }

  async syncDirectory(): Promise<void> {
    let fh: FileHandle | undefined;
    try {
      fh = await open(this.path, 'r');
      await fh.sync();
    } catch (e) {
      // some filesystems refuse fsync on directories; that is not a reason to fail a write
      const errno = (e as NodeJS.ErrnoException).code;
      if (errno !== 'EINVAL' && errno !== 'EISDIR' && errno !== 'EPERM') throw fsError(this.path, e, 'sync the directory');
    } finally {
      await fh?.close().catch(() => {});
    }
  }

  /**
   * The writer lock: a LOCK file created exclusively, holding {pid, host, token}. A LOCK left by a
   * process that no longer runs on this host (killed, crashed) is taken over; a live holder gives
   * LOCKED with its pid. Not for network filesystems shared between hosts.
   */
  async lock(): Promise<DirectoryLock> {
    const path = join(this.path, LOCK_FILE);
    if (heldLocks.has(this.path)) {
      throw new QuiverError('LOCKED', `${this.path} is already open for writing in this process`, { directory: this.path, pid: process.pid });
    }
    const token = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const body = JSON.stringify({ pid: process.pid, host: hostname(), token, since: new Date().toISOString() });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await open(path, 'wx');
        try {
          await fh.writeFile(body);
          await fh.sync();
        } finally {
          await fh.close();
        }
        heldLocks.add(this.path);
        const dirPath = this.path;
        return {
          release: async () => {
            heldLocks.delete(dirPath);
            try {
              const now = JSON.parse(await readFile(path, 'utf8')) as { token?: string };
              if (now.token === token) await unlink(path);
            } catch { /* already gone */ }
          },
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(path, e, 'create the lock file');
      }
      let holder: { pid?: number; host?: string; since?: string } = {};
      try {
        holder = JSON.parse(await readFile(path, 'utf8'));
      } catch {
        // unreadable or half-written lock: only stale if it stays so (a writer may be creating it)
        await new Promise((r) => setTimeout(r, 50));
        try { holder = JSON.parse(await readFile(path, 'utf8')); } catch { holder = {}; }
      }
      const sameHost = holder.host === hostname();
      if (sameHost && typeof holder.pid === 'number' && processAlive(holder.pid)) {
        throw new QuiverError('LOCKED', `${this.path} is open for writing by process ${holder.pid} (since ${holder.since}); open it read-only or close the other writer`, {
          directory: this.path, pid: holder.pid, since: holder.since,
        });
      }
      if (!sameHost && holder.host !== undefined) {
        throw new QuiverError('LOCKED', `${this.path} is locked by process ${holder.pid} on host ${holder.host}; if that process is gone, delete ${path}`, {
          directory: this.path, pid: holder.pid, host: holder.host,
        });
      }
      // stale: the holder died without releasing (e.g. SIGKILL); take over
      await unlink(path).catch(() => {});
    }
    throw new QuiverError('LOCKED', `${this.path}: could not take the lock file`, { directory: this.path });
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position < 0 ? null : position + done);
    done += bytesWritten;
  }
}
