// The dedicated Worker of the harness: holds collections on OPFS (OpfsDirectory), on IndexedDB
// (IndexedDbDirectory; commands take `kind: 'idb'`) or opened from a snapshot, and answers commands
// from the page ({ id, cmd, args } -> { id, ok, value | error }).
// Bundled by build.mjs from the TypeScript sources, so it runs the engine as a browser would.
import { Collection, IndexedDbDirectory, OpfsDirectory, importSnapshot, isQuiverError, openBrowserDirectory, type CollectionSchema, type Directory, type Hit } from '../src/index.js';

/** Which browser Directory a command works on: OPFS (the default) or IndexedDB. */
type Kind = 'opfs' | 'idb';
const makeDir = (name: string, kind: Kind = 'opfs'): Directory => kind === 'idb' ? new IndexedDbDirectory(name) : new OpfsDirectory(name);
const removeDir = (name: string, kind: Kind = 'opfs'): Promise<void> => kind === 'idb' ? IndexedDbDirectory.remove(name) : OpfsDirectory.remove(name);

interface Query { vector?: number[]; text?: string; k: number }
interface Rec { id: string; vector: number[]; metadata: Record<string, unknown> }

const open = new Map<string, Collection>();

function get(key: string): Collection {
  const c = open.get(key);
  if (!c) throw new Error(`no open collection "${key}"`);
  return c;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function runQueries(c: Collection, queries: Query[]): Promise<[string, number][][]> {
  const out: [string, number][][] = [];
  for (const q of queries) {
    const hits = (q.vector
      ? await c.search(new Float32Array(q.vector), { k: q.k })
      : await c.search({ text: q.text!, k: q.k })) as Hit[];
    out.push(hits.map((h) => [h.id, h.score]));
  }
  return out;
}

/** The code (and errno) a call fails with, or 'no error'. */
async function codeOf(f: () => unknown): Promise<string> {
  try {
    await f();
    return 'no error';
  } catch (e) {
    return isQuiverError(e) ? [e.code, e.details.errno].filter(Boolean).join(' ') : `not a QuiverError: ${String(e)}`;
  }
}

/**
 * The Directory contract of src/storage/directory.ts (what test/directory.test.ts checks on the
 * Node implementations) run on OpfsDirectory in the folder `name`, or IndexedDbDirectory in the
 * database for `name`; throws on the first violation, returns the checks that passed.
 */
async function contract(name: string, kind: Kind = 'opfs'): Promise<string[]> {
  await removeDir(name, kind);
  const d = makeDir(name, kind);
  const done: string[] = [];
  const enc = (t: string) => new TextEncoder().encode(t);
  const dec = (b: Uint8Array) => new TextDecoder().decode(b);
  const expect = (what: string, actual: unknown, expected: unknown) => {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) throw new Error(`${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
    done.push(what);
  };
  expect('durable', d.durable, true);
  await d.writeFile('a.bin', [enc('hello '), enc('world')]);
  expect('writeFile + readFile', dec(await d.readFile('a.bin')), 'hello world');
  await d.writeFile('a.bin', [enc('hi')]);
  expect('writeFile truncates', dec(await d.readFile('a.bin')), 'hi');
  expect('exists', [await d.exists('a.bin'), await d.exists('b.bin')], [true, false]);
  expect('list', (await d.list()).sort(), ['a.bin']);
  expect('readFile missing', await codeOf(() => d.readFile('b.bin')), 'IO_ERROR ENOENT');
  expect('openAppend create on existing', await codeOf(() => d.openAppend('a.bin', { create: true })), 'IO_ERROR EEXIST');
  expect('openAppend missing', await codeOf(() => d.openAppend('b.bin', { create: false })), 'IO_ERROR ENOENT');
  expect('invalid name', await codeOf(() => d.readFile('../x')), 'INVALID_ARGUMENT');
  expect('invalid rename target', await codeOf(() => d.rename('a.bin', 'a/b')), 'INVALID_ARGUMENT');

  const f = await d.openAppend('log', { create: true });
  await f.append(enc('abc'));
  await f.append(enc('defg'));
  await f.sync();
  await f.truncate(5);
  await f.append(enc('XY'));
  await f.sync();
  expect('append/truncate size', f.size, 7);
  await f.close();
  expect('append after close', await codeOf(() => f.append(enc('z'))), 'CLOSED');
  const again = await d.openAppend('log', { create: false });
  expect('reopened size', again.size, 7);
  await again.close();
  expect('appended bytes', dec(await d.readFile('log')), 'abcdeXY');

  const r1 = await d.openRead('log');
  const r2 = await d.openRead('log'); // several readers of one file at once
  const out = new Uint8Array(3);
  r1.readInto(2, out);
  expect('readInto', dec(out), 'cde');
  expect('read past the end', await codeOf(() => r2.readInto(5, new Uint8Array(3))), 'CORRUPT_FILE');
  // an open reader keeps its content when the file is replaced by rename, or removed
  await d.writeFile('new', [enc('replacement')]);
  await d.rename('new', 'log');
  expect('rename replaces the target', dec(await d.readFile('log')), 'replacement');
  expect('rename removes the source', await d.exists('new'), false);
  r1.readInto(0, out);
  expect('reader keeps content after rename over its file', dec(out), 'abc');
  const r3 = await d.openRead('log');
  await d.remove('log');
  const out11 = new Uint8Array(11);
  r3.readInto(0, out11);
  expect('reader keeps content after remove', dec(out11), 'replacement');
  r2.readInto(4, out);
  expect('second reader keeps content too', dec(out), 'eXY');
  await Promise.all([r1.close(), r2.close(), r3.close()]);
  expect('read after close', await codeOf(() => r1.readInto(0, out)), 'CLOSED');
  expect('remove missing', await codeOf(() => d.remove('log')), 'no error');
  expect('rename missing', await codeOf(() => d.rename('nothing', 'x')), 'IO_ERROR ENOENT');

  const l1 = await d.lock();
  expect('second lock', await codeOf(() => d.lock()), 'LOCKED');
  await l1.release();
  const l2 = await d.lock();
  await l1.release(); // repeated: must not free l2
  expect('repeated release frees nobody else', await codeOf(() => makeDir(name, kind).lock()), 'LOCKED');
  await l2.release();
  await removeDir(name, kind);
  return done;
}

const commands: Record<string, (a: any) => Promise<unknown>> = {
  async contract({ name, kind }: { name: string; kind?: Kind }) {
    return contract(name, kind);
  },
  async wipe({ name, kind }: { name: string; kind?: Kind }) {
    await removeDir(name, kind);
    return null;
  },
  async open({ key, name, kind, schema, sealRows }: { key: string; name: string; kind?: Kind; schema?: CollectionSchema; sealRows?: number }) {
    const c = await Collection.open(makeDir(name, kind), { schema, sealRows });
    open.set(key, c);
    return { count: c.count(), segments: c.stats().segments };
  },
  async upsert({ key, records }: { key: string; records: Rec[] }) {
    const c = get(key);
    await c.upsert(records.map((r) => ({ id: r.id, vector: new Float32Array(r.vector), metadata: r.metadata })));
    return c.count();
  },
  async flush({ key }: { key: string }) {
    await get(key).flush();
    return null;
  },
  async compact({ key }: { key: string }) {
    const c = get(key);
    await c.compact();
    return { count: c.count(), segments: c.stats().segments };
  },
  async search({ key, queries }: { key: string; queries: Query[] }) {
    return runQueries(get(key), queries);
  },
  async stats({ key }: { key: string }) {
    const c = get(key);
    return { count: c.count(), segments: c.stats().segments, durable: c.info().durable ?? null };
  },
  async close({ key }: { key: string }) {
    await get(key).close();
    open.delete(key);
    return null;
  },
  async files({ name, kind }: { name: string; kind?: Kind }) {
    return (await makeDir(name, kind).list()).sort();
  },
  /** The description of the Directory openBrowserDirectory chooses for `name`. */
  async pick({ name }: { name: string }) {
    return (await openBrowserDirectory(name)).description;
  },
  async openSnapshot({ key, url }: { key: string; url: string }) {
    const c = await Collection.openSnapshot(await fetchBytes(url));
    open.set(key, c);
    return c.count();
  },
  /** The collection's snapshot (Collection.exportSnapshot), base64, for Node to open. */
  async exportSnapshot({ key }: { key: string }) {
    const bytes = await get(key).exportSnapshot();
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  },
  async importSnapshot({ name, url }: { name: string; url: string }) {
    return importSnapshot(await fetchBytes(url), new OpfsDirectory(name));
  },
};

self.onmessage = async (ev: MessageEvent<{ id: number; cmd: string; args: unknown }>) => {
  const { id, cmd, args } = ev.data;
  try {
    const fn = commands[cmd];
    if (!fn) throw new Error(`unknown command ${cmd}`);
    self.postMessage({ id, ok: true, value: await fn(args) });
  } catch (e) {
    const err = e as Error;
    self.postMessage({ id, ok: false, error: { code: isQuiverError(e) ? e.code : null, message: err?.message ?? String(e), details: isQuiverError(e) ? e.details : undefined } });
  }
};
self.postMessage({ ready: true, opfs: OpfsDirectory.supported() });
