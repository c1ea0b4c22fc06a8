import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
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
/** Prefix of the claim files of the takeover protocol (see FsDirectory.lock). */
const CLAIM_PREFIX = 'LOCK.next-';
/** Prefix of the candidate lock files, one per lock() call in progress. */
const TEMP_PREFIX = 'LOCK.tmp-';
/**
 * Directory path -> token of the lock this process holds there or is taking (registered before the
 * first await, so a second writer in the same process is LOCKED, also while the first is opening).
 */
const heldLocks = new Map<string, string>();

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
   * The single-writer lock.
   *
   * Format: `LOCK` is one line of JSON naming its holder,
   * `{"pid":4242,"host":"box","boot":"f690...","start":34286,"token":"9c1e...","since":"2024-05-01T12:00:00.000Z"}`:
   * `boot` is /proc/sys/kernel/random/boot_id and `start` the process start time (field 22 of
   * /proc/<pid>/stat, clock ticks since boot), both null where /proc is absent; `token` is 128 random
   * bits, unique to one lock() call. Files written by older versions (`{pid, host, token, since}`)
   * are read as well.
   *
   * Liveness: a holder on another host is taken as live (it cannot be checked: LOCKED telling to
   * delete the file if that process is gone). On this host it is stale when its boot id differs from
   * ours (rebooted), when its pid does not run or is a zombie, or when the pid runs with another
   * start time (pid reused, e.g. by a restarted container). A LOCK naming our own pid is live only if
   * its token is one this process holds or is taking (`heldLocks`) and its start time is ours.
   * Without /proc the check falls back to pid liveness. A file that is not valid JSON is stale once
   * it is 2 s old (before that it may be a copy in progress, see below).
   *
   * Taking it: the candidate file `LOCK.tmp-<token>` is written and synced, then `link()`ed to `LOCK`:
   * this succeeds for exactly one opener when there is no LOCK (EEXIST otherwise), and LOCK never
   * exists half-written. A stale LOCK is replaced by one opener only: it must first link its
   * candidate to the claim file `LOCK.next-<h>`, h = SHA-256 of the stale file's bytes; the one
   * opener whose link succeeds re-reads LOCK (and the claims it followed) and, if unchanged,
   * renames its candidate over LOCK (atomic), removes the claims and checks LOCK holds its token.
   * Another opener that finds the claim taken judges the claimant like a holder: a live one gives
   * LOCKED naming it; a dead one (it crashed mid-takeover) is replaced the same way through
   * `LOCK.next-<hash of the claim>`. A file missing or changed under an opener makes it start over.
   * Claims are exclusive and tokens never repeat, so two openers cannot both replace the same LOCK;
   * a late opener whose claim succeeds only after the winner removed the claims finds LOCK changed
   * at its re-read. (Assumed: a holder judged gone is gone, and nobody deletes LOCK by hand during
   * a takeover.) The holder removes claims and candidates left by dead processes. Release removes
   * LOCK only if it still holds our token. On filesystems without hard links the candidate is
   * copied with COPYFILE_EXCL instead of linked. Not for network filesystems shared between hosts.
   */
  async lock(): Promise<DirectoryLock> {
    const dir = this.path;
    if (heldLocks.has(dir)) {
      throw new QuiverError('LOCKED', `${dir} is already open for writing in this process`, { directory: dir, pid: process.pid });
    }
    const token = randomBytes(16).toString('hex');
    heldLocks.set(dir, token); // before any await: see heldLocks
    const lockPath = join(dir, LOCK_FILE);
    const temp = join(dir, TEMP_PREFIX + token);
    try {
      const me = identity();
      const owner: LockOwner = { pid: process.pid, host: hostname(), boot: me.boot, start: me.start, token, since: new Date().toISOString() };
      try {
        await writeNew(temp, JSON.stringify(owner) + '\n');
      } catch (e) {
        throw fsError(temp, e, 'create the lock file');
      }
      await takeLock(dir, temp, token);
      await sweepLockLeftovers(dir).catch(() => {});
    } catch (e) {
      if (heldLocks.get(dir) === token) heldLocks.delete(dir);
      throw e;
    } finally {
      await unlink(temp).catch(() => {});
    }
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        try {
          const now = JSON.parse(await readFile(lockPath, 'utf8')) as { token?: unknown };
          if (now.token === token) await unlink(lockPath);
        } catch { /* gone, or replaced: not ours to remove */ }
        // only now: until LOCK is gone, a lock() of this process must see its holder live
        if (heldLocks.get(dir) === token) heldLocks.delete(dir);
      },
    };
  }
}

/** The contents of LOCK (and of claim and candidate files). */
interface LockOwner {
  pid: number;
  host: string;
  boot: string | null;
  start: number | null;
  token: string;
  since: string;
}

/** Restarts of the protocol (a file changed under us) before giving up, at least 5 s. */
const MAX_LOCK_ATTEMPTS = 40;
/** A lock file that is not valid JSON may be a copy in progress (no hard links) until this old. */
const GARBAGE_GRACE_MS = 2000;

/** The protocol of FsDirectory.lock: publishes `temp` as LOCK, or throws LOCKED. */
async function takeLock(dir: string, temp: string, token: string): Promise<void> {
  const lockPath = join(dir, LOCK_FILE);
  const deadline = Date.now() + GARBAGE_GRACE_MS + 3000;
  let wait = 0; // before the next attempt, ms
  for (let attempt = 0; attempt < MAX_LOCK_ATTEMPTS || Date.now() < deadline; attempt++) {
    if (attempt > 0) await sleep(wait || (attempt < 4 ? 2 : 25));
    wait = 0;
    if (await publish(temp, lockPath)) return confirm(dir, token);
    // LOCK exists: judge it, then the claims on it, until a live owner or a free claim
    const chain: { path: string; raw: Buffer }[] = [];
    let current = lockPath;
    for (;;) {
      const f = await readLockFile(current);
      if (f === undefined) break; // released or cleaned up meanwhile: start over
      const owner = parseOwner(f.raw);
      if (owner === undefined && Date.now() - f.mtimeMs < GARBAGE_GRACE_MS) {
        wait = 100; // may still be being written: wait for it, or for it to turn stale
        break;
      }
      if (owner !== undefined) {
        const verdict = judge(owner);
        // a live claimant: LOCKED naming it, unless its claim is on a LOCK already replaced (a latecomer)
        if (verdict !== 'stale' && (current === lockPath || await unchanged(chain))) {
          throw lockedError(dir, owner, current !== lockPath, verdict === 'foreign');
        }
        if (verdict !== 'stale') break;
      }
      chain.push({ path: current, raw: f.raw });
      const claim = join(dir, CLAIM_PREFIX + createHash('sha256').update(f.raw).digest('hex').slice(0, 32));
      if (!(await publish(temp, claim))) {
        current = claim; // someone else claimed it first: judge them
        continue;
      }
      // ours alone to replace, if nothing moved since we read it
      if (!(await unchanged(chain))) {
        await unlink(claim).catch(() => {});
        break;
      }
      try {
        await rename(temp, lockPath);
      } catch (e) {
        await unlink(claim).catch(() => {});
        throw fsError(lockPath, e, 'replace the stale lock file');
      }
      for (const c of chain.slice(1)) await unlink(c.path).catch(() => {});
      await unlink(claim).catch(() => {});
      return confirm(dir, token);
    }
  }
  throw new QuiverError('LOCKED', `${dir}: could not take the lock file (other processes kept changing it); try again`, { directory: dir });
}

/** Whether the files read still hold the same bytes. */
async function unchanged(chain: readonly { path: string; raw: Buffer }[]): Promise<boolean> {
  for (const c of chain) {
    const again = await readLockFile(c.path);
    if (again === undefined || !again.raw.equals(c.raw)) return false;
  }
  return true;
}

/** Checks that LOCK holds our token (it must, unless a liveness judgement went wrong). */
async function confirm(dir: string, token: string): Promise<void> {
  const lockPath = join(dir, LOCK_FILE);
  const f = await readLockFile(lockPath);
  const owner = f && parseOwner(f.raw);
  if (owner?.token === token) return;
  if (owner) throw lockedError(dir, owner, false, judge(owner) === 'foreign');
  throw new QuiverError('LOCKED', `${dir}: the lock file changed while it was being taken; try again`, { directory: dir });
}

/** Links (or, without hard links, copies) `from` to the new name `to`; false if `to` exists. */
async function publish(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    if (errno === 'EEXIST') return false;
    if (errno !== 'EPERM' && errno !== 'ENOTSUP' && errno !== 'EOPNOTSUPP' && errno !== 'ENOSYS') throw fsError(to, e, 'create the lock file');
  }
  try {
    await copyFile(from, to, fsConstants.COPYFILE_EXCL);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw fsError(to, e, 'create the lock file');
  }
}

async function readLockFile(path: string): Promise<{ raw: Buffer; mtimeMs: number } | undefined> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    const [raw, s] = await Promise.all([fh.readFile(), fh.stat()]);
    return { raw, mtimeMs: s.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(path, e, 'read the lock file');
  } finally {
    await fh?.close().catch(() => {});
  }
}

function parseOwner(raw: Buffer): Partial<LockOwner> | undefined {
  try {
    const v = JSON.parse(raw.toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Partial<LockOwner> : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the owner named in a lock file still runs (see FsDirectory.lock). */
function judge(owner: Partial<LockOwner>): 'live' | 'stale' | 'foreign' {
  const { pid } = owner;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return 'stale';
  if (typeof owner.host === 'string' && owner.host !== hostname()) return 'foreign';
  const me = identity();
  if (me.boot !== null && typeof owner.boot === 'string' && owner.boot !== me.boot) return 'stale';
  const start = typeof owner.start === 'number' ? owner.start : null;
  if (pid === process.pid) {
    const ours = typeof owner.token === 'string' && [...heldLocks.values()].includes(owner.token);
    return ours && (start === null || me.start === null || start === me.start) ? 'live' : 'stale';
  }
  if (!pidRuns(pid)) return 'stale';
  const actual = processStat(pid);
  if (actual?.state === 'Z' || actual?.state === 'X') return 'stale'; // exited, not yet reaped
  if (start !== null && actual && actual.start !== null && actual.start !== start) return 'stale';
  return 'live';
}

function lockedError(dir: string, owner: Partial<LockOwner>, claim: boolean, foreign: boolean): QuiverError {
  const lockPath = join(dir, LOCK_FILE);
  if (foreign) {
    return new QuiverError('LOCKED', `${dir} is locked by process ${owner.pid} on host ${owner.host}; if that process is gone, delete ${lockPath}`, {
      directory: dir, pid: owner.pid, host: owner.host, since: owner.since,
    });
  }
  const what = claim ? 'is being opened for writing' : 'is open for writing';
  return new QuiverError('LOCKED', `${dir} ${what} by process ${owner.pid} (since ${owner.since}); open it read-only or close the other writer`, {
    directory: dir, pid: owner.pid, since: owner.since,
  });
}

/** Removes claim and candidate files of dead processes (called by the new holder). */
async function sweepLockLeftovers(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (!name.startsWith(CLAIM_PREFIX) && !name.startsWith(TEMP_PREFIX)) continue;
    const f = await readLockFile(join(dir, name));
    if (f === undefined) continue;
    const owner = parseOwner(f.raw);
    const dead = owner === undefined ? Date.now() - f.mtimeMs > 60_000 : judge(owner) === 'stale';
    if (dead) await unlink(join(dir, name)).catch(() => {});
  }
}

/** Creates `path` exclusively with `text`, synced. */
async function writeNew(path: string, text: string): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

let me: { boot: string | null; start: number | null } | undefined;
/** This process: boot id and start time (null where /proc is absent). */
function identity(): { boot: string | null; start: number | null } {
  if (me === undefined) {
    let boot: string | null = null;
    try { boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null; } catch { /* not Linux */ }
    me = { boot, start: processStat(process.pid)?.start ?? null };
  }
  return me;
}

/** From /proc/<pid>/stat: state (field 3) and start time (field 22, clock ticks since boot); undefined without /proc. */
function processStat(pid: number): { state: string; start: number | null } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // field 2 is the command in parentheses and may contain spaces: count from the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return { state: fields[0], start: Number.isSafeInteger(start) ? start : null };
  } catch {
    return undefined;
  }
}

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position < 0 ? null : position + done);
    done += bytesWritten;
  }
}
