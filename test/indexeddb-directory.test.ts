import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { IDBDatabase, IDBFactory, IDBKeyRange, IDBObjectStore } from 'fake-indexeddb';
import { Collection, IndexedDbDirectory, MemoryDirectory, QuiverError, openBrowserDirectory, type CollectionSchema, type DirectoryLock, type Hit } from '../src/index.js';
import { randomF32 } from './helpers/random.js';

// IndexedDbDirectory (src/browser/indexeddb-directory.ts) on fake-indexeddb: the crash rules a
// collection relies on. test/directory.test.ts runs the Directory contract on it; Chromium runs
// both on the real thing (test-browser/e2e.test.ts). A "crash" here is a new IndexedDbDirectory on
// the same factory: it sees exactly what the old one committed, while the old one's memory (its
// buffered appends) is abandoned.

/** An IndexedDbDirectory whose writer lock a test can give up, as a crashed tab's lock goes away. */
class CrashableDirectory extends IndexedDbDirectory {
  held: DirectoryLock | undefined;
  override async lock(): Promise<DirectoryLock> {
    this.held = await super.lock();
    return this.held;
  }
}

let n = 0;
function fresh(pageSize?: number): { factory: IDBFactory; name: string; make: () => CrashableDirectory } {
  const factory = new IDBFactory();
  const name = `t${n++}`;
  return { factory, name, make: () => new CrashableDirectory(name, { indexedDB: factory, IDBKeyRange, pageSize }) };
}

const bytes = (len: number, seed: number) => Uint8Array.from({ length: len }, (_, i) => (i * 31 + seed) & 255);

async function errorOf(p: Promise<unknown>): Promise<QuiverError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof QuiverError, `expected a QuiverError, got ${e}`);
    return e;
  }
  assert.fail('expected an error');
}

/** Records per store of the collection's database, read straight from the factory. */
async function storeCounts(factory: IDBFactory, name: string): Promise<Record<string, number>> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const r = factory.open(`quiverdb:${name}`);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const stores = ['names', 'inodes', 'pages'];
  const t = db.transaction(stores, 'readonly');
  const counts = await Promise.all(stores.map((s) => new Promise<number>((resolve) => {
    const r = t.objectStore(s).count();
    r.onsuccess = () => resolve(r.result);
  })));
  db.close();
  return Object.fromEntries(stores.map((s, i) => [s, counts[i]]));
}

const restore: (() => void)[] = [];
afterEach(() => { while (restore.length) restore.pop()!(); });

/** Replaces `obj[key]` for the current test. */
function patch<T extends object, K extends keyof T>(obj: T, key: K, value: T[K]): void {
  const old = obj[key];
  obj[key] = value;
  restore.push(() => { obj[key] = old; });
}

describe('IndexedDbDirectory: appends, sync and crashes', () => {
  it('an append never synced is absent after a crash; synced bytes remain', async () => {
    const { make } = fresh(16);
    const d = make();
    const f = await d.openAppend('wal', { create: true });
    await f.append(bytes(40, 1));
    await f.sync();
    await f.append(bytes(30, 2)); // never synced
    assert.equal(f.size, 70);
    const after = make();
    assert.deepEqual(await after.readFile('wal'), bytes(40, 1));
    const g = await after.openAppend('wal', { create: false });
    assert.equal(g.size, 40);
    // the new appender continues from the synced length, rewriting the partly filled page
    await g.append(bytes(5, 3));
    await g.sync();
    assert.deepEqual(await make().readFile('wal'), Uint8Array.from([...bytes(40, 1), ...bytes(5, 3)]));
  });

  it('pages written out early (a long unsynced append) stay invisible until a sync', async () => {
    const { make } = fresh(8); // 64 pages of 8 bytes: an append of 600 bytes spills
    const d = make();
    const f = await d.openAppend('seg', { create: true });
    await f.append(bytes(13, 1));
    await f.sync();
    await f.append(bytes(600, 2));
    await f.append(bytes(3, 3));
    assert.equal(f.size, 616);
    // the spilled pages are in the store, but the committed size still says 13 bytes
    assert.deepEqual(await make().readFile('seg'), bytes(13, 1));
    const spilledOnly = make();
    const g = await spilledOnly.openAppend('seg', { create: false });
    assert.equal(g.size, 13);
    await g.close();
    await f.sync();
    assert.deepEqual(await make().readFile('seg'), Uint8Array.from([...bytes(13, 1), ...bytes(600, 2), ...bytes(3, 3)]));
    // a crash after a spill: a new appender overwrites the garbage past the synced length
    await f.append(bytes(200, 4));
    const h = await make().openAppend('seg', { create: false });
    assert.equal(h.size, 616);
    await h.append(bytes(9, 5));
    await h.sync();
    assert.deepEqual(await make().readFile('seg'), Uint8Array.from([...bytes(13, 1), ...bytes(600, 2), ...bytes(3, 3), ...bytes(9, 5)]));
  });

  it('truncate below the synced length commits at once, in memory, spilled and stored pages alike', async () => {
    const { make } = fresh(8);
    const d = make();
    const f = await d.openAppend('wal', { create: true });
    const all = bytes(700, 7);
    await f.append(all.subarray(0, 100));
    await f.sync();
    await f.append(all.subarray(100)); // spills pages past the synced 100 bytes
    await f.truncate(50); // below both the buffer and the synced length
    assert.equal(f.size, 50);
    assert.deepEqual(await make().readFile('wal'), all.subarray(0, 50));
    await f.append(bytes(5, 9));
    await f.sync();
    assert.deepEqual(await make().readFile('wal'), Uint8Array.from([...all.subarray(0, 50), ...bytes(5, 9)]));
    await f.truncate(53); // within the last page: committed at once too
    assert.deepEqual(await make().readFile('wal'), Uint8Array.from([...all.subarray(0, 50), ...bytes(3, 9)]));
    await f.truncate(1000); // longer than the file: nothing changes
    assert.equal(f.size, 53);
    assert.equal((await errorOf(f.truncate(-1))).code, 'INVALID_ARGUMENT');
    await f.close();
    assert.deepEqual(await make().readFile('wal'), Uint8Array.from([...all.subarray(0, 50), ...bytes(3, 9)]));
  });

  it('a sync whose transaction fails leaves the old length (all or nothing), and reports IO_ERROR', async () => {
    const { make } = fresh(8);
    const d = make();
    const f = await d.openAppend('wal', { create: true });
    await f.append(bytes(20, 1));
    await f.sync();
    await f.append(bytes(30, 2));
    // the third page written by the next transaction fails: the two before it must not survive
    let puts = 0;
    const put = IDBObjectStore.prototype.put;
    patch(IDBObjectStore.prototype, 'put', function (this: IDBObjectStore, ...args: Parameters<typeof put>) {
      if (this.name === 'pages' && ++puts === 3) throw Object.assign(new Error('simulated write failure'), { name: 'UnknownError' });
      return put.apply(this, args);
    });
    const e = await errorOf(f.sync());
    assert.equal(e.code, 'IO_ERROR');
    assert.equal(e.details.errno, 'EIO');
    assert.ok(puts >= 3);
    restore.pop()!();
    const back = make();
    assert.deepEqual(await back.readFile('wal'), bytes(20, 1));
    // the appender still holds its bytes: a retried sync commits them
    await f.sync();
    assert.deepEqual(await back.readFile('wal'), Uint8Array.from([...bytes(20, 1), ...bytes(30, 2)]));
  });

  it('every transaction that writes asks for strict durability', async () => {
    const seen: (string | undefined)[] = [];
    const transaction = IDBDatabase.prototype.transaction;
    patch(IDBDatabase.prototype, 'transaction', function (this: IDBDatabase, ...args: Parameters<typeof transaction>) {
      if (args[1] === 'readwrite') seen.push(args[2]?.durability);
      return transaction.apply(this, args);
    });
    const { make } = fresh();
    const d = make();
    await d.writeFile('a', [bytes(3, 1)]);
    const f = await d.openAppend('b', { create: true });
    await f.append(bytes(3, 2));
    await f.sync();
    await f.truncate(1);
    await f.close();
    await d.rename('a', 'c');
    await d.remove('c');
    assert.equal(seen.length, 6);
    assert.deepEqual(new Set(seen), new Set(['strict']));
  });

  it('a file removed or replaced while open for appending gets nothing written (and nothing left behind)', async () => {
    const { factory, name, make } = fresh(8);
    const d = make();
    const f = await d.openAppend('wal', { create: true });
    await f.append(bytes(20, 1));
    await f.sync();
    await d.writeFile('other', [bytes(3, 2)]);
    await d.rename('other', 'wal');
    await f.append(bytes(20, 3));
    await f.sync(); // its file is gone: as on POSIX, the writes go nowhere
    assert.deepEqual(await d.readFile('wal'), bytes(3, 2));
    await f.close();
    // a rename keeps the appender writing to its file under the new name
    const g = await d.openAppend('log', { create: true });
    await g.append(bytes(4, 4));
    await d.rename('log', 'log2');
    await g.sync();
    assert.deepEqual(await d.readFile('log2'), bytes(4, 4));
    assert.deepEqual((await d.list()).sort(), ['log2', 'wal']);
    // one inode per name, one page each (3 and 4 bytes): no orphan of the replaced file
    assert.deepEqual(await storeCounts(factory, name), { names: 2, inodes: 2, pages: 2 });
  });

  it('keeps the page size the database was created with; checks names and options', async () => {
    const { factory, name } = fresh(8);
    const small = new IndexedDbDirectory(name, { indexedDB: factory, IDBKeyRange, pageSize: 8 });
    await small.writeFile('f', [bytes(100, 1)]);
    const other = new IndexedDbDirectory(name, { indexedDB: factory, IDBKeyRange, pageSize: 4096 });
    assert.deepEqual(await other.readFile('f'), bytes(100, 1));
    for (const bad of ['', 'a/b', 'x'.repeat(129), 'sp ace']) {
      assert.throws(() => new IndexedDbDirectory(bad, { indexedDB: factory, IDBKeyRange }), (e: unknown) => e instanceof QuiverError && e.code === 'INVALID_ARGUMENT');
    }
    for (const pageSize of [0, 1.5, 32 << 20, Number.NaN]) {
      assert.throws(() => new IndexedDbDirectory('ok', { indexedDB: factory, IDBKeyRange, pageSize }), (e: unknown) => e instanceof QuiverError && e.code === 'INVALID_ARGUMENT');
    }
    // a foreign factory needs its own key ranges
    assert.throws(() => new IndexedDbDirectory('ok', { indexedDB: factory }), (e: unknown) => e instanceof QuiverError && e.code === 'INVALID_ARGUMENT' && e.details.field === 'IDBKeyRange');
  });

  it('remove(name) deletes the database; open handles then fail with ESTALE; exists() tells', async () => {
    const { factory, name, make } = fresh();
    const d = make();
    await d.writeFile('a', [bytes(3, 1)]);
    const f = await d.openAppend('wal', { create: true });
    assert.equal(await IndexedDbDirectory.exists(name, { indexedDB: factory }), true);
    await IndexedDbDirectory.remove(name, { indexedDB: factory });
    assert.equal(await IndexedDbDirectory.exists(name, { indexedDB: factory }), false);
    await f.append(bytes(3, 2));
    const e = await errorOf(f.sync());
    assert.equal(e.code, 'IO_ERROR');
    assert.equal(e.details.errno, 'ESTALE');
    // the directory itself starts afresh
    assert.deepEqual(await d.list(), []);
    await IndexedDbDirectory.remove('never-made', { indexedDB: factory });
  });

  it('without IndexedDB: IO_ERROR ENOTSUP from the directory and from openBrowserDirectory', async () => {
    assert.equal(IndexedDbDirectory.supported(), false); // Node has no indexedDB global
    const e = await errorOf(new IndexedDbDirectory('x').list());
    assert.equal(e.code, 'IO_ERROR');
    assert.equal(e.details.errno, 'ENOTSUP');
    const b = await errorOf(openBrowserDirectory('x'));
    assert.equal(b.code, 'IO_ERROR');
    assert.equal(b.details.errno, 'ENOTSUP');
    assert.equal((await errorOf(openBrowserDirectory('a/b'))).code, 'INVALID_ARGUMENT');
    assert.equal((await errorOf(openBrowserDirectory('x', { kind: 'disk' as 'opfs' }))).code, 'INVALID_ARGUMENT');
  });

  it('openBrowserDirectory picks IndexedDB where OPFS sync handles are missing', async () => {
    const g = globalThis as { indexedDB?: unknown; IDBKeyRange?: unknown };
    patch(g, 'indexedDB', new IDBFactory());
    patch(g, 'IDBKeyRange', IDBKeyRange);
    const d = await openBrowserDirectory('picked');
    assert.ok(d instanceof IndexedDbDirectory);
    assert.equal(d.description, 'indexeddb:picked');
    assert.equal((await errorOf(openBrowserDirectory('picked', { kind: 'opfs' }))).details.errno, 'ENOTSUP');
    await d.writeFile('f', [bytes(2, 1)]);
    assert.deepEqual(await (await openBrowserDirectory('picked')).readFile('f'), bytes(2, 1));
  });
});

describe('IndexedDbDirectory: a collection on it', () => {
  const DIM = 8;
  const schema = { dimension: DIM, metric: 'cosine', fields: { body: 'text' } } as CollectionSchema;
  const WORDS = ['river', 'stone', 'arrow', 'falcon', 'ember', 'meadow'];
  const rec = (i: number) => ({ id: `doc-${i}`, vector: randomF32(DIM, 1000 + i), metadata: { body: `${WORDS[i % 6]} ${WORDS[(i * 7) % 6]} item${i}` } });
  const queries = [randomF32(DIM, 1), randomF32(DIM, 2), randomF32(DIM, 3)];

  async function results(c: Collection): Promise<[string, number][][]> {
    const out: [string, number][][] = [];
    for (const q of queries) out.push(((await c.search(q, { k: 10 })) as Hit[]).map((h) => [h.id, h.score]));
    out.push(((await c.search({ text: 'falcon ember', k: 10 })) as Hit[]).map((h) => [h.id, h.score]));
    return out;
  }

  /** Same ids in the same order, scores within 1e-6 (sealed and mutable segments round differently). */
  function assertSameResults(actual: [string, number][][], expected: [string, number][][]): void {
    assert.equal(actual.length, expected.length);
    for (let q = 0; q < expected.length; q++) {
      assert.ok(expected[q].length > 0, `query ${q} has hits`);
      assert.deepEqual(actual[q].map((h) => h[0]), expected[q].map((h) => h[0]), `ids of query ${q}`);
      for (let i = 0; i < expected[q].length; i++) assert.ok(Math.abs(actual[q][i][1] - expected[q][i][1]) <= 1e-6, `score ${i} of query ${q}`);
    }
  }

  /** The same writes on a MemoryDirectory: what the IndexedDB collection must answer. */
  async function reference(ids: number[]): Promise<[string, number][][]> {
    const c = await Collection.open(new MemoryDirectory(), { schema, sealRows: Infinity });
    await c.upsert(ids.map(rec));
    const r = await results(c);
    await c.close();
    return r;
  }

  it('after each acknowledged write, the committed state (what a crash leaves) holds it', async () => {
    const { make } = fresh(512); // small pages, so WAL syncs cross pages
    const col = await Collection.open(make(), { schema, sealRows: 7 });
    const acked: string[] = [];
    for (let i = 0; i < 30; i++) {
      await col.upsert([rec(i)]);
      acked.push(`doc-${i}`);
      if (i % 9 === 8) { await col.delete([`doc-${i - 3}`]); acked.splice(acked.indexOf(`doc-${i - 3}`), 1); }
      // a reader on a new directory sees only committed transactions, as a reloaded page would
      const back = await Collection.open(make(), { readOnly: true });
      assert.equal(back.count(), acked.length, `after write ${i}`);
      for (const id of acked) assert.ok(back.has(id), `${id} after write ${i}`);
      await back.close();
    }
    await col.idle();
    await col.close();
  });

  it('reopens without close() after a crash with every acknowledged write, searching like Node', async () => {
    const { make } = fresh();
    const first = make();
    const col = await Collection.open(first, { schema, sealRows: 50 });
    for (let i = 0; i < 120; i += 20) await col.upsert(Array.from({ length: 20 }, (_, k) => rec(i + k)));
    await col.flush();
    await col.upsert([rec(120), rec(121), rec(122)]); // in the WAL only
    await col.idle();
    assert.equal(first.durable, true);
    // the crash: the old collection is abandoned (never closed); its tab's lock goes with it
    const second = make();
    assert.equal((await errorOf(Collection.open(second))).code, 'LOCKED');
    await first.held!.release();
    const back = await Collection.open(second);
    assert.equal(back.count(), 123);
    assert.ok(back.stats().segments >= 2, `sealed segments survive (${back.stats().segments})`);
    assertSameResults(await results(back), await reference(Array.from({ length: 123 }, (_, i) => i)));
    await back.close();
  });

  it('seals, compacts and reopens: segment files written, renamed in and removed on IndexedDB', async () => {
    const { make } = fresh(4096);
    const d = make();
    const col = await Collection.open(d, { schema, sealRows: 30 });
    for (let i = 0; i < 100; i += 10) await col.upsert(Array.from({ length: 10 }, (_, k) => rec(i + k)));
    await col.delete(['doc-3', 'doc-44']);
    await col.flush();
    await col.idle();
    const before = (await d.list()).filter((f) => f.endsWith('.qseg'));
    assert.ok(before.length >= 2, `several segments before compaction: ${before.join(' ')}`);
    await col.compact();
    assert.equal(col.stats().segments, 1);
    const after = (await d.list()).filter((f) => f.endsWith('.qseg'));
    assert.equal(after.length, 1);
    assert.ok(!before.includes(after[0]), 'compaction wrote a new segment file');
    assert.ok(!(await d.list()).includes('MANIFEST.tmp'), 'the manifest was renamed into place');
    const ids = Array.from({ length: 100 }, (_, i) => i).filter((i) => i !== 3 && i !== 44);
    const expected = await reference(ids);
    assertSameResults(await results(col), expected);
    assert.deepEqual((await col.verify()).problems, []);
    await col.close();
    const again = await Collection.open(make());
    assert.equal(again.count(), 98);
    assertSameResults(await results(again), expected);
    await again.close();
  });
});
