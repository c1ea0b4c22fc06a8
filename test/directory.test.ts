import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { IndexedDbDirectory } from '../src/browser/indexeddb-directory.js';
import { QuiverError } from '../src/errors.js';
import { FsDirectory } from '../src/node/fs-directory.js';
import { MemoryDirectory, type Directory } from '../src/storage/directory.js';

// The Directory contract (src/storage/directory.ts) run against every implementation. Where an
// implementation legitimately differs, the test is skipped for it with the reason.

interface Impl {
  name: string;
  make(): Promise<Directory>;
  durable: boolean;
  /** Reason to skip reads through a handle of a removed or replaced file, or false. */
  noOpenAfterRemove: string | false;
}

let tmp: string;
let n = 0;
before(() => { tmp = mkdtempSync(join(tmpdir(), 'quiver-dir-')); });
after(() => rmSync(tmp, { recursive: true, force: true }));

const IMPLS: Impl[] = [
  { name: 'MemoryDirectory', make: async () => new MemoryDirectory(), durable: false, noOpenAfterRemove: false },
  {
    name: 'FsDirectory',
    make: () => FsDirectory.open(join(tmp, `d${n++}`), { create: true }),
    durable: true,
    // Windows refuses to remove or replace a file that is open
    noOpenAfterRemove: process.platform === 'win32' ? 'Windows keeps open files from being removed' : false,
  },
  // fake-indexeddb in place of the browser's (a fresh factory: its databases are its own); the
  // 8-byte pages make every file here span page boundaries
  { name: 'IndexedDbDirectory', make: async () => new IndexedDbDirectory(`d${n++}`, { indexedDB: new IDBFactory(), IDBKeyRange }), durable: true, noOpenAfterRemove: false },
  { name: 'IndexedDbDirectory, 8-byte pages', make: async () => new IndexedDbDirectory(`d${n++}`, { indexedDB: new IDBFactory(), IDBKeyRange, pageSize: 8 }), durable: true, noOpenAfterRemove: false },
];

const bytes = (...v: number[]) => Uint8Array.from(v);
const text = (s: string) => new TextEncoder().encode(s);

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<QuiverError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(e instanceof QuiverError, `expected a QuiverError, got ${e}`);
    return e;
  }
  assert.fail('expected an error');
}

for (const impl of IMPLS) {
  describe(`Directory contract: ${impl.name}`, () => {
    it('describes itself; durable only when sync reaches stable storage', async () => {
      const d = await impl.make();
      assert.equal(typeof d.description, 'string');
      assert.ok(d.description.length > 0);
      assert.equal(d.durable, impl.durable);
      await d.syncDirectory();
    });

    it('list and exists', async () => {
      const d = await impl.make();
      assert.deepEqual(await d.list(), []);
      assert.equal(await d.exists('a.bin'), false);
      await d.writeFile('a.bin', [bytes(1)]);
      await d.writeFile('b-2.log', []);
      assert.deepEqual((await d.list()).sort(), ['a.bin', 'b-2.log']);
      assert.equal(await d.exists('a.bin'), true);
      assert.equal(await d.exists('b-2.log'), true);
      await d.remove('a.bin');
      assert.deepEqual(await d.list(), ['b-2.log']);
      assert.equal(await d.exists('a.bin'), false);
    });

    it('readFile returns a fresh copy; a missing file is IO_ERROR ENOENT', async () => {
      const d = await impl.make();
      await d.writeFile('f', [bytes(1, 2, 3)]);
      const a = await d.readFile('f');
      a[0] = 99;
      const b = await d.readFile('f');
      assert.deepEqual([...b], [1, 2, 3]);
      assert.notEqual(a.buffer, b.buffer);
      const e = await errorOf(d.readFile('missing'));
      assert.equal(e.code, 'IO_ERROR');
      assert.equal(e.details.errno, 'ENOENT');
      assert.match(String(e.details.file), /missing$/);
    });

    it('writeFile creates, concatenates the chunks, and truncates an existing file', async () => {
      const d = await impl.make();
      await d.writeFile('f', [text('hello '), text(''), text('world')]);
      assert.equal(new TextDecoder().decode(await d.readFile('f')), 'hello world');
      await d.writeFile('f', [text('hi')]);
      assert.equal(new TextDecoder().decode(await d.readFile('f')), 'hi');
      await d.writeFile('f', []);
      assert.equal((await d.readFile('f')).length, 0);
      // the caller may reuse its buffers afterwards
      const chunk = bytes(5, 6);
      await d.writeFile('g', [chunk]);
      chunk[0] = 0;
      assert.deepEqual([...await d.readFile('g')], [5, 6]);
    });

    it('openAppend: create fails with EEXIST on an existing file, open fails with ENOENT on a missing one', async () => {
      const d = await impl.make();
      await d.writeFile('f', [bytes(1)]);
      const exists = await errorOf(d.openAppend('f', { create: true }));
      assert.equal(exists.code, 'IO_ERROR');
      assert.equal(exists.details.errno, 'EEXIST');
      assert.match(String(exists.details.file), /f$/);
      const missing = await errorOf(d.openAppend('g', { create: false }));
      assert.equal(missing.code, 'IO_ERROR');
      assert.equal(missing.details.errno, 'ENOENT');
      assert.match(String(missing.details.file), /g$/);
      assert.deepEqual([...await d.readFile('f')], [1]);
      assert.equal(await d.exists('g'), false);
    });

    it('append, size, sync, truncate, close; CLOSED after close', async () => {
      const d = await impl.make();
      const f = await d.openAppend('wal', { create: true });
      assert.equal(f.name, 'wal');
      assert.equal(f.size, 0);
      assert.deepEqual([...await d.readFile('wal')], []);
      await f.append(bytes(1, 2, 3));
      assert.equal(f.size, 3);
      const buf = bytes(4, 5);
      await f.append(buf);
      buf[0] = 0; // appended bytes are copied or written
      await f.sync();
      assert.equal(f.size, 5);
      assert.deepEqual([...await d.readFile('wal')], [1, 2, 3, 4, 5]);
      await f.truncate(2);
      assert.equal(f.size, 2);
      assert.deepEqual([...await d.readFile('wal')], [1, 2]);
      await f.append(bytes(9));
      await f.sync();
      assert.deepEqual([...await d.readFile('wal')], [1, 2, 9]);
      await f.close();
      for (const op of [() => f.append(bytes(1)), () => f.sync(), () => f.truncate(0)]) {
        assert.equal((await errorOf(op())).code, 'CLOSED');
      }
      await f.close(); // twice is fine
      assert.deepEqual([...await d.readFile('wal')], [1, 2, 9]);
      // reopened: size is the file's, appends go at the end
      const g = await d.openAppend('wal', { create: false });
      assert.equal(g.size, 3);
      await g.append(bytes(7));
      await g.sync();
      assert.equal(g.size, 4);
      await g.close();
      assert.deepEqual([...await d.readFile('wal')], [1, 2, 9, 7]);
    });

    it('openRead: size and readInto; a read past the end is CORRUPT_FILE with its offset', async () => {
      const d = await impl.make();
      await d.writeFile('seg', [Uint8Array.from({ length: 100 }, (_, i) => i)]);
      const r = await d.openRead('seg');
      assert.equal(r.name, 'seg');
      assert.equal(r.size, 100);
      const out = new Uint8Array(10);
      r.readInto(37, out);
      assert.deepEqual([...out], [37, 38, 39, 40, 41, 42, 43, 44, 45, 46]);
      r.readInto(90, out);
      assert.equal(out[9], 99);
      r.readInto(100, new Uint8Array(0));
      const past = await errorOf(() => r.readInto(95, out));
      assert.equal(past.code, 'CORRUPT_FILE');
      assert.deepEqual([past.details.offset, past.details.expected, past.details.received], [95, 105, 100]);
      assert.match(String(past.details.file), /seg$/);
      assert.equal((await errorOf(() => r.readInto(-1, out))).code, 'CORRUPT_FILE');
      await r.close();
      const missing = await errorOf(d.openRead('nope'));
      assert.equal(missing.code, 'IO_ERROR');
      assert.equal(missing.details.errno, 'ENOENT');
    });

    it('a file opened for reading keeps its content when it is removed or replaced by rename', { skip: impl.noOpenAfterRemove }, async () => {
      const d = await impl.make();
      await d.writeFile('seg-1', [bytes(1, 1, 1)]);
      await d.writeFile('seg-2', [bytes(2, 2, 2, 2)]);
      await d.writeFile('MANIFEST', [bytes(3)]);
      await d.writeFile('MANIFEST.tmp', [bytes(4, 4)]);
      const one = await d.openRead('seg-1');
      const two = await d.openRead('seg-2');
      const manifest = await d.openRead('MANIFEST');
      await d.remove('seg-1');
      await d.rename('seg-2', 'seg-3');
      await d.rename('MANIFEST.tmp', 'MANIFEST');
      const out = new Uint8Array(3);
      one.readInto(0, out);
      assert.deepEqual([...out], [1, 1, 1]);
      two.readInto(1, out);
      assert.deepEqual([...out], [2, 2, 2]);
      const m = new Uint8Array(1);
      manifest.readInto(0, m);
      assert.deepEqual([...m], [3]);
      assert.equal(manifest.size, 1);
      await Promise.all([one.close(), two.close(), manifest.close()]);
      assert.deepEqual([...await d.readFile('MANIFEST')], [4, 4]);
    });

    it('rename replaces the target; a missing source is ENOENT; remove of a missing file is fine', async () => {
      const d = await impl.make();
      await d.writeFile('MANIFEST', [bytes(1)]);
      await d.writeFile('MANIFEST.tmp', [bytes(2, 2)]);
      await d.rename('MANIFEST.tmp', 'MANIFEST');
      assert.deepEqual((await d.list()).sort(), ['MANIFEST']);
      assert.deepEqual([...await d.readFile('MANIFEST')], [2, 2]);
      await d.rename('MANIFEST', 'other');
      assert.deepEqual(await d.list(), ['other']);
      const e = await errorOf(d.rename('MANIFEST', 'x'));
      assert.equal(e.code, 'IO_ERROR');
      assert.equal(e.details.errno, 'ENOENT');
      assert.equal(await d.exists('x'), false);
      await d.remove('never-there');
      await d.remove('other');
      await d.remove('other');
      assert.deepEqual(await d.list(), []);
    });

    it('invalid file names are INVALID_ARGUMENT for every operation', async () => {
      const d = await impl.make();
      await d.writeFile('ok', [bytes(1)]);
      for (const bad of ['', '../x', 'a/b', '/abs', 'sp ace', 'ü', 'x'.repeat(129)]) {
        const ops: [string, () => Promise<unknown>][] = [
          ['exists', () => d.exists(bad)],
          ['readFile', () => d.readFile(bad)],
          ['writeFile', () => d.writeFile(bad, [bytes(1)])],
          ['openAppend create', () => d.openAppend(bad, { create: true })],
          ['openAppend', () => d.openAppend(bad, { create: false })],
          ['openRead', () => d.openRead(bad)],
          ['rename from', () => d.rename(bad, 'x')],
          ['rename to', () => d.rename('ok', bad)],
          ['remove', () => d.remove(bad)],
        ];
        for (const [what, op] of ops) {
          const e = await errorOf(op());
          assert.equal(e.code, 'INVALID_ARGUMENT', `${what}(${JSON.stringify(bad)}): ${e.message}`);
        }
      }
      assert.deepEqual(await d.list(), ['ok']);
      assert.equal('x'.repeat(128).length, 128);
      await d.writeFile('x'.repeat(128), []);
    });

    it('lock: a second lock() is LOCKED until release(); a repeated release() frees nobody else', async () => {
      const d = await impl.make();
      const first = await d.lock();
      const e = await errorOf(d.lock());
      assert.equal(e.code, 'LOCKED');
      assert.equal(e.details.directory, d.description);
      await first.release();
      const second = await d.lock();
      await first.release(); // the old holder again: must not free the new one
      assert.equal((await errorOf(d.lock())).code, 'LOCKED');
      await second.release();
      await (await d.lock()).release();
    });

    it('crashCopy keeps only synced bytes', { skip: impl.name === 'MemoryDirectory' ? false : 'crashCopy is a MemoryDirectory test hook' }, async () => {
      const d = await impl.make() as MemoryDirectory;
      const f = await d.openAppend('wal', { create: true });
      await f.append(bytes(1, 2));
      await f.sync();
      await f.append(bytes(3));
      const c = d.crashCopy();
      assert.deepEqual([...await c.readFile('wal')], [1, 2]);
      await c.lock(); // a crash copy is unlocked
    });
  });
}
