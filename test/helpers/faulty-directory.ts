import { QuiverError } from '../../src/errors.js';
import type { AppendFile, Directory, DirectoryLock, RandomAccessFile } from '../../src/storage/directory.js';
import { MemoryDirectory } from '../../src/storage/directory.js';

/**
 * A MemoryDirectory that fails on demand like a real disk: `spaceLeft` bytes of writes, after
 * which appends write what fits and throw ENOSPC; `deny` makes creations of matching files throw
 * EACCES. For testing that such errors surface without corrupting the collection.
 */
export class FaultyDirectory implements Directory {
  readonly inner = new MemoryDirectory('faulty');
  readonly description = 'faulty';
  readonly durable = false;
  spaceLeft = Infinity;
  deny: RegExp | null = null;
  /** Removals of matching files fail with EBUSY while `failRemovals` > 0 (each failure decrements it). */
  failRemove: RegExp | null = null;
  failRemovals = 0;
  /** Names whose removal failed. */
  readonly failedRemovals: string[] = [];
  /** Called before each writeFile (e.g. to pause a manifest write); may return a promise to wait on. */
  beforeWrite: ((name: string) => Promise<void> | void) | null = null;

  private enospc(name: string): QuiverError {
    return new QuiverError('IO_ERROR', `faulty/${name}: cannot write: no space left on device (disk full)`, { file: name, errno: 'ENOSPC' });
  }
  private eacces(name: string): QuiverError {
    return new QuiverError('IO_ERROR', `faulty/${name}: cannot create: permission denied`, { file: name, errno: 'EACCES' });
  }
  private take(name: string, n: number): number {
    const ok = Math.min(n, this.spaceLeft);
    this.spaceLeft -= ok;
    return ok;
  }

  list(): Promise<string[]> { return this.inner.list(); }
  exists(name: string): Promise<boolean> { return this.inner.exists(name); }
  readFile(name: string): Promise<Uint8Array> { return this.inner.readFile(name); }
  async writeFile(name: string, chunks: readonly Uint8Array[]): Promise<void> {
    await this.beforeWrite?.(name);
    if (this.deny?.test(name)) throw this.eacces(name);
    const total = chunks.reduce((a, c) => a + c.length, 0);
    if (this.take(name, total) < total) throw this.enospc(name);
    return this.inner.writeFile(name, chunks);
  }
  async openAppend(name: string, options: { create: boolean }): Promise<AppendFile> {
    if (options.create && this.deny?.test(name)) throw this.eacces(name);
    const f = await this.inner.openAppend(name, options);
    return {
      name,
      get size() { return f.size; },
      append: async (bytes: Uint8Array) => {
        const ok = this.take(name, bytes.length);
        if (ok > 0) await f.append(bytes.subarray(0, ok));
        if (ok < bytes.length) throw this.enospc(name);
      },
      sync: () => f.sync(),
      truncate: (size: number) => f.truncate(size),
      close: () => f.close(),
    };
  }
  openRead(name: string): Promise<RandomAccessFile> { return this.inner.openRead(name); }
  rename(from: string, to: string): Promise<void> { return this.inner.rename(from, to); }
  async remove(name: string): Promise<void> {
    if (this.failRemovals > 0 && this.failRemove?.test(name)) {
      this.failRemovals--;
      this.failedRemovals.push(name);
      throw new QuiverError('IO_ERROR', `faulty/${name}: cannot remove: resource busy`, { file: name, errno: 'EBUSY' });
    }
    return this.inner.remove(name);
  }
  syncDirectory(): Promise<void> { return this.inner.syncDirectory(); }
  lock(): Promise<DirectoryLock> { return this.inner.lock(); }
}
