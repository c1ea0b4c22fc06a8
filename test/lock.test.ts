import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { QuiverError } from '../src/errors.js';
import { FsDirectory } from '../src/node/fs-directory.js';

// The writer lock of FsDirectory (src/node/fs-directory.ts): liveness of the holder (pid, start
// time, boot id, this process's own locks), takeover of stale locks by exactly one of several
// racing processes, and release that never removes somebody else's lock. Child processes run
// test/helpers/lock-child.ts on the sources.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('./helpers/lock-child.ts', import.meta.url));
const HAS_PROC = existsSync('/proc/self/stat') && existsSync('/proc/sys/kernel/random/boot_id');
const NO_PROC = HAS_PROC ? false : 'needs /proc (Linux): start times and boot ids';

function startTime(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}
const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

interface Reply { id: number; ok: boolean; pid?: number; code?: string; message?: string; details?: Record<string, unknown> }

class Child {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  readonly exited: Promise<void>;
  private constructor(readonly proc: ChildProcess, readonly pid: number) {
    proc.on('message', (m: Reply) => { this.waiting.get(m.id)?.(m); this.waiting.delete(m.id); });
    this.exited = new Promise((r) => proc.once('exit', () => r()));
  }
  static start(): Promise<Child> {
    const proc = spawn(process.execPath, ['--import', 'tsx', CHILD], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      proc.once('error', reject);
      proc.once('exit', (code) => reject(new Error(`lock child exited early (${code})`)));
      proc.once('message', (m: { ready?: boolean; pid: number }) => { if (m.ready) resolve(new Child(proc, m.pid)); });
    });
  }
  request(cmd: 'lock' | 'release', dir: string, at?: number): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.send({ id, cmd, dir, at });
    });
  }
  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => p.once('exit', r));
  return p.pid!;
}

async function errorOf(p: Promise<unknown>): Promise<QuiverError> {
  try { await p; } catch (e) { assert.ok(e instanceof QuiverError, `expected a QuiverError, got ${e}`); return e; }
  assert.fail('expected an error');
}

let tmp: string;
let n = 0;
const freshDir = () => { const d = join(tmp, `d${n++}`); return d; };
const lockOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'LOCK'), 'utf8')) as { pid: number; token: string; start?: number; boot?: string };
const plant = (dir: string, body: object | string) => {
  writeFileSync(join(dir, 'LOCK'), typeof body === 'string' ? body : JSON.stringify(body));
};
const me = () => ({ pid: process.pid, host: hostname(), since: '2000-01-01T00:00:00.000Z' });

before(() => { tmp = mkdtempSync(join(tmpdir(), 'quiver-lock-')); });
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('FsDirectory.lock: whose lock is live', () => {
  it('a LOCK naming our own pid but another start time or boot id, or not held by us, is taken over', async () => {
    const cases: [string, object][] = [
      ['legacy {pid, host}', { ...me(), token: 'old' }],
      ['a token this process does not hold', { ...me(), token: 'not-ours', ...(HAS_PROC ? { boot: bootId(), start: startTime(process.pid) } : {}) }],
    ];
    if (HAS_PROC) {
      cases.push(['another start time (a restarted container got our pid)', { ...me(), token: 't1', boot: bootId(), start: startTime(process.pid) + 1000 }]);
      cases.push(['another boot', { ...me(), token: 't2', boot: 'another-boot', start: startTime(process.pid) }]);
    }
    for (const [what, body] of cases) {
      const path = freshDir();
      const dir = await FsDirectory.open(path, { create: true });
      plant(path, body);
      const lock = await dir.lock().catch((e) => assert.fail(`${what}: ${e}`));
      const now = lockOf(path);
      assert.equal(now.pid, process.pid, what);
      assert.notEqual(now.token, (body as { token: string }).token, what);
      if (HAS_PROC) {
        assert.equal(now.start, startTime(process.pid));
        assert.equal(now.boot, bootId());
      }
      // and it is live now: a second lock() is LOCKED, also through another FsDirectory object
      assert.equal((await errorOf((await FsDirectory.open(path)).lock())).code, 'LOCKED');
      await lock.release();
      assert.equal(existsSync(join(path, 'LOCK')), false, what);
    }
  });

  it('a live holder in another process is LOCKED with its pid; after SIGKILL its lock is taken over', async () => {
    const path = freshDir();
    const dir = await FsDirectory.open(path, { create: true });
    const child = await Child.start();
    try {
      const r = await child.request('lock', path);
      assert.ok(r.ok, r.message);
      const e = await errorOf(dir.lock());
      assert.equal(e.code, 'LOCKED');
      assert.equal(e.details.pid, child.pid);
      assert.equal(e.details.directory, path);
      assert.match(e.message, new RegExp(`open for writing by process ${child.pid} .*read-only`));
      await child.kill();
      const lock = await dir.lock();
      assert.equal(lockOf(path).pid, process.pid);
      await lock.release();
    } finally {
      await child.kill();
    }
  });

  it('a running pid with another start time or boot id is a reused pid, a zombie is gone: taken over', { skip: NO_PROC }, async () => {
    const live = process.ppid; // runs, and is not us
    for (const body of [
      { pid: live, host: hostname(), boot: bootId(), start: startTime(live) + 7, token: 'reused', since: 'x' },
      { pid: live, host: hostname(), boot: 'another-boot', start: startTime(live), token: 'rebooted', since: 'x' },
    ]) {
      const path = freshDir();
      const dir = await FsDirectory.open(path, { create: true });
      plant(path, body);
      const lock = await dir.lock();
      assert.equal(lockOf(path).pid, process.pid);
      await lock.release();
    }
    // a zombie (exited, its parent has not reaped it): `sleep 0.1` under a shell that became `sleep 5`
    const sh = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = Number((await new Promise<Buffer>((r) => sh.stdout!.once('data', r))).toString());
      for (let i = 0; i < 200 && !readFileSync(`/proc/${zombie}/stat`, 'utf8').includes(') Z '); i++) await new Promise((r) => setTimeout(r, 10));
      assert.match(readFileSync(`/proc/${zombie}/stat`, 'utf8'), /\) Z /);
      const path = freshDir();
      const dir = await FsDirectory.open(path, { create: true });
      plant(path, { pid: zombie, host: hostname(), boot: bootId(), start: startTime(zombie), token: 'zombie', since: 'x' });
      const lock = await dir.lock();
      assert.equal(lockOf(path).pid, process.pid);
      await lock.release();
    } finally {
      sh.kill('SIGKILL');
    }
    // the same pid with its real start time and boot is live
    const path = freshDir();
    const dir = await FsDirectory.open(path, { create: true });
    plant(path, { pid: live, host: hostname(), boot: bootId(), start: startTime(live), token: 'live', since: 'x' });
    const e = await errorOf(dir.lock());
    assert.equal(e.code, 'LOCKED');
    assert.equal(e.details.pid, live);
  });

  it('another host is LOCKED (cannot be checked); an old unreadable LOCK is stale, a fresh one is waited for', async () => {
    let path = freshDir();
    let dir = await FsDirectory.open(path, { create: true });
    plant(path, { pid: 1, host: 'elsewhere.example', token: 'x', since: 'x' });
    const e = await errorOf(dir.lock());
    assert.equal(e.code, 'LOCKED');
    assert.deepEqual([e.details.pid, e.details.host], [1, 'elsewhere.example']);
    assert.match(e.message, /on host elsewhere\.example; if that process is gone, delete .*LOCK/);

    path = freshDir();
    dir = await FsDirectory.open(path, { create: true });
    plant(path, '');
    utimesSync(join(path, 'LOCK'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    await (await dir.lock()).release();

    if (!HAS_PROC) return;
    // a LOCK still being written (no hard links: copied) is not taken over while fresh
    path = freshDir();
    dir = await FsDirectory.open(path, { create: true });
    plant(path, '{"pid":');
    const attempt = errorOf(dir.lock());
    await new Promise((r) => setTimeout(r, 300));
    const live = process.ppid;
    plant(path, { pid: live, host: hostname(), boot: bootId(), start: startTime(live), token: 'late', since: 'x' });
    const late = await attempt;
    assert.equal(late.code, 'LOCKED');
    assert.equal(late.details.pid, live);
  });

  it('claims: a live claimant is LOCKED, a dead one (died mid-takeover) is replaced, leftovers are removed', async () => {
    const dead = await deadPid();
    const stale = JSON.stringify({ pid: dead, host: hostname(), token: 'stale', since: 'x' });
    const claimOf = (bytes: string) => `LOCK.next-${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}`;

    let path = freshDir();
    let dir = await FsDirectory.open(path, { create: true });
    plant(path, stale);
    const deadClaim = JSON.stringify({ pid: dead, host: hostname(), token: 'claimant', since: 'x' });
    writeFileSync(join(path, claimOf(stale)), deadClaim);
    writeFileSync(join(path, 'LOCK.tmp-leftover'), JSON.stringify({ pid: dead, host: hostname(), token: 'leftover', since: 'x' }));
    writeFileSync(join(path, 'LOCK.tmp-live'), JSON.stringify({ pid: process.ppid, host: hostname(), token: 'parent', since: 'x' }));
    const lock = await dir.lock();
    assert.equal(lockOf(path).pid, process.pid);
    assert.deepEqual(readdirSync(path).sort(), ['LOCK', 'LOCK.tmp-live']);
    await lock.release();
    assert.deepEqual(readdirSync(path), ['LOCK.tmp-live']);

    if (!HAS_PROC) return;
    path = freshDir();
    dir = await FsDirectory.open(path, { create: true });
    plant(path, stale);
    const live = process.ppid;
    writeFileSync(join(path, claimOf(stale)), JSON.stringify({ pid: live, host: hostname(), boot: bootId(), start: startTime(live), token: 'busy', since: 'x' }));
    const e = await errorOf(dir.lock());
    assert.equal(e.code, 'LOCKED');
    assert.equal(e.details.pid, live);
    assert.match(e.message, /being opened for writing by process/);
  });
});

describe('FsDirectory.lock: racing openers', () => {
  const N = 6;
  const ROUNDS = Number(process.env.QUIVER_LOCK_ROUNDS ?? 20); // more for a stress run
  let children: Child[] = [];
  before(async () => { children = await Promise.all(Array.from({ length: N }, () => Child.start())); });
  after(async () => { await Promise.all(children.map((c) => c.kill())); });

  it(`${N} processes take one stale lock at the same moment, ${ROUNDS} times: exactly one wins`, async () => {
    const dead = await deadPid();
    for (let round = 0; round < ROUNDS; round++) {
      const path = freshDir();
      await FsDirectory.open(path, { create: true });
      // alternately a stale lock of the current format and one of an older version
      plant(path, round % 2 === 0
        ? { pid: dead, host: hostname(), boot: HAS_PROC ? bootId() : null, start: 12345, token: `stale${round}`, since: 'x' }
        : { pid: dead, host: hostname(), token: `stale${round}`, since: 'x' });
      const at = Date.now() + 40;
      const replies = await Promise.all(children.map((c) => c.request('lock', path, at)));
      const winners = replies.filter((r) => r.ok);
      assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners: ${JSON.stringify(replies)}`);
      const winner = winners[0].pid;
      assert.equal(lockOf(path).pid, winner);
      for (const r of replies.filter((x) => !x.ok)) {
        assert.equal(r.code, 'LOCKED', `round ${round}: ${r.message}`);
        assert.equal(r.details!.pid, winner, `round ${round}: ${r.message}`);
      }
      await Promise.all(children.map((c) => c.request('release', path)));
      assert.deepEqual(readdirSync(path), [], `round ${round}: files left`);
    }
  });

  it('two lock() calls of one process at once: one wins, also through two FsDirectory objects', async () => {
    const path = freshDir();
    await FsDirectory.open(path, { create: true });
    plant(path, { pid: await deadPid(), host: hostname(), token: 'stale', since: 'x' });
    const [a, b] = [await FsDirectory.open(path), await FsDirectory.open(path)];
    const results = await Promise.allSettled([a.lock(), a.lock(), b.lock()]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as QuiverError).code, 'LOCKED');
    for (const r of results) if (r.status === 'fulfilled') await r.value.release();
    assert.deepEqual(readdirSync(path), []);
  });

  it('release by a holder whose lock was taken over leaves the new holder\'s lock', async () => {
    const path = freshDir();
    const dir = await FsDirectory.open(path, { create: true });
    const [old] = children;
    assert.ok((await old.request('lock', path)).ok);
    // the old holder's lock vanishes (deleted by hand) and this process takes the directory
    rmSync(join(path, 'LOCK'));
    const lock = await dir.lock();
    const mine = lockOf(path).token;
    assert.ok((await old.request('release', path)).ok);
    assert.equal(lockOf(path).token, mine);
    // the same within one process: a release after the LOCK was replaced keeps the new one
    await lock.release();
    const again = await dir.lock();
    plant(path, { pid: old.pid, host: hostname(), token: 'newer', since: 'x' });
    await again.release();
    assert.equal(lockOf(path).token, 'newer');
    await again.release();
    assert.equal(lockOf(path).token, 'newer');
  });
});
