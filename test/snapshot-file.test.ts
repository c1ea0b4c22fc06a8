import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Collection, FsDirectory, MemoryDirectory, QuiverError, SnapshotDirectory, importSnapshot, type Directory, type Hit } from '../src/node.js';
import { encodeSnapshotFiles, encodeSnapshot, concatChunks, SNAPSHOT_VERSION } from '../src/storage/snapshot-file.js';
import { crc32c } from '../src/util/crc32c.js';
import { randomF32, rng } from './helpers/random.js';

// Snapshot files (src/storage/snapshot-file.ts): a durable collection exported as one checksummed
// file, opened read-only straight from its bytes, imported into another Directory and written to.

const tmp = mkdtempSync(join(tmpdir(), 'quiver-snapfile-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const D = 16;
const WORDS = ['river', 'stone', 'cloud', 'ember', 'glass', 'harbor', 'meadow', 'signal', 'lantern', 'orbit'];
const schema = {
  dimension: D, metric: 'cosine' as const, index: 'HNSW16,SQ8,Rerank',
  fields: { lang: 'keyword' as const, year: 'number' as const, body: 'text' as const },
};
const openOpts = { schema, sealRows: 150, minQuantizedRows: 50, autoMerge: false };

function record(i: number, salt = 0) {
  const r = rng(i * 7 + 1 + salt);
  const body = Array.from({ length: 6 }, () => WORDS[Math.floor(r() * WORDS.length)]).join(' ');
  return { id: `r${i}`, vector: randomF32(D, i + 1 + salt), metadata: { lang: i % 3 === 0 ? 'en' : 'de', year: 2000 + (i % 25), body, extra: { n: i } } };
}

/** A collection with several sealed HNSW segments, a deletion, a replacement and unflushed writes. */
async function build(dir: Directory): Promise<Collection> {
  const c = await Collection.open(dir, openOpts);
  for (let b = 0; b < 4; b++) await c.upsert(Array.from({ length: 100 }, (_, j) => record(b * 100 + j)));
  await c.delete(['r5', 'r77']);
  await c.upsert([record(12, 999)]); // a replacement
  await c.update([{ id: 'r13', metadata: { lang: 'fr', year: 1999, body: 'lantern orbit' } }]);
  return c; // the last rows are still in the WAL: exportSnapshot must flush them
}

const QUERIES = [0, 1, 2].map((q) => randomF32(D, 5000 + q));
/** A Blob over the bytes (what a browser's File is). */
const blob = (b: Uint8Array) => new Blob([b as Uint8Array<ArrayBuffer>]);
const pairs = (hits: Hit[]) => hits.map((h) => [h.id, h.score]);

/** Everything a reader can observe, for comparing two collections. */
async function observe(c: Collection): Promise<unknown> {
  const out: unknown[] = [c.count()];
  for (const q of QUERIES) {
    out.push(pairs(await c.search(q, { k: 10 })));
    out.push(pairs(await c.search(q, { k: 10, filter: { lang: 'en', year: { $gte: 2010 } } })));
    out.push((await c.search(q, { k: 5, includeMetadata: true })).map((h) => h.metadata));
  }
  out.push(pairs(await c.search({ text: 'lantern orbit', k: 10 }) as Hit[]));
  out.push(pairs(await c.search({ text: 'river glass', k: 10, filter: { lang: 'de' } }) as Hit[]));
  for (const id of ['r0', 'r12', 'r13', 'r399', 'r150']) {
    const g = c.get(id);
    out.push([g.id, Array.from(g.vector), g.metadata]);
  }
  out.push(c.has('r5'), c.has('r77'));
  return out;
}

/** Every record (id, vector, metadata), in id order. */
async function contents(c: Collection): Promise<unknown[]> {
  const all: unknown[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await c.scroll({ limit: 1000, ...(after !== undefined ? { after } : {}) });
    for (const r of page.records) all.push([r.id, Array.from(r.vector), r.metadata]);
    if (page.next === null) return all;
    after = page.next;
  }
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<QuiverError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(e instanceof QuiverError, `expected a QuiverError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

/** Recomputes the table checksum (after the table and in the trailer) of a snapshot edited by hand. */
function resealTable(b: Uint8Array): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const t = v.getUint32(12, true);
  const crc = crc32c(b, 0, 24, 24 + t);
  v.setUint32(24 + t, crc, true);
  v.setUint32(b.length - 8, crc, true);
}

describe('snapshot files', () => {
  for (const kind of ['memory', 'filesystem'] as const) {
    it(`exports a ${kind} collection; the snapshot opens read-only with identical results`, async () => {
      const dir = kind === 'memory' ? new MemoryDirectory() : await FsDirectory.open(join(tmp, 'src-' + kind), { create: true });
      const c = await build(dir);
      const snap = await c.exportSnapshot();
      const segs = c.info().segmentList;
      assert.ok(segs.filter((s) => s.state === 'sealed' && s.rows > 0).length >= 2 && segs.some((s) => s.index.startsWith('HNSW')), `sealed segments, HNSW among them: ${JSON.stringify(segs)}`);
      assert.equal(c.info().walBytes, 16, 'the export flushed: the WAL holds only its header');
      const want = await observe(c);

      const r = await Collection.openSnapshot(snap);
      assert.equal(r.info().readOnly, true);
      assert.deepEqual(r.schema, c.schema);
      assert.deepEqual(await observe(r), want);
      assert.deepEqual(await contents(r), await contents(c));
      assert.equal((await r.verify()).problems.length, 0);
      assert.equal((await codeOf(r.upsert([record(1000)]))).code, 'READ_ONLY');
      assert.equal((await codeOf(r.delete(['r1']))).code, 'READ_ONLY');
      await r.close();

      // the same through a Directory, and through a Blob read in slices
      const sd = new SnapshotDirectory(snap);
      assert.deepEqual((await sd.list())[0], 'MANIFEST');
      assert.ok(!(await sd.list()).includes('LOCK'), 'no lock file in a snapshot');
      const r2 = await Collection.open(sd, { readOnly: true });
      assert.deepEqual(await observe(r2), want);
      await r2.close();
      const r3 = await Collection.openSnapshot(blob(snap));
      assert.deepEqual(await observe(r3), want);
      await r3.close();

      // writes to the directory itself, and opening it as a writer, are READ_ONLY
      assert.equal((await codeOf(Collection.open(sd))).code, 'READ_ONLY');
      assert.equal((await codeOf(sd.writeFile('x', []))).code, 'READ_ONLY');
      assert.equal((await codeOf(sd.rename('MANIFEST', 'y'))).code, 'READ_ONLY');
      assert.equal((await codeOf(sd.remove('MANIFEST'))).code, 'READ_ONLY');
      assert.equal((await codeOf(sd.openAppend('wal-00000009.log', { create: true }))).code, 'READ_ONLY');
      await c.close();
    });
  }

  it('imports into an empty Directory that then opens for writing; round trip gives the same snapshot', async () => {
    const c = await build(new MemoryDirectory());
    const snap = await c.exportSnapshot();
    const want = await observe(c);
    const wantContents = await contents(c);

    const target = new MemoryDirectory();
    const res = await importSnapshot(snap, target);
    assert.equal(res.files, new SnapshotDirectory(snap).entries().length);
    assert.equal(res.bytes, new SnapshotDirectory(snap).entries().reduce((s, e) => s + e.length, 0));
    assert.deepEqual((await target.list()).sort(), (await new SnapshotDirectory(snap).list()).sort());
    const w = await Collection.open(target);
    assert.equal(w.info().readOnly, false);
    assert.deepEqual(await observe(w), want);
    // exporting the imported collection again gives the very same bytes (nothing changed)
    const again = await w.exportSnapshot();
    assert.deepEqual(again, snap);

    // writes, seals and a compaction work on the imported copy
    await w.upsert(Array.from({ length: 40 }, (_, j) => record(2000 + j)));
    await w.delete(['r0']);
    const hits = await w.search(record(2003).vector, { k: 1 });
    assert.equal(hits[0].id, 'r2003');
    await w.flush();
    await w.compact();
    assert.equal(w.count(), c.count() + 40 - 1);
    await w.close();
    const w2 = await Collection.open(target);
    assert.equal(w2.count(), c.count() + 40 - 1);
    assert.equal((await w2.search(record(2017).vector, { k: 1 }))[0].id, 'r2017');
    assert.equal(w2.has('r0'), false);
    // Node -> snapshot -> import -> export again: the new snapshot carries the new content
    const third = await Collection.openSnapshot(await w2.exportSnapshot());
    assert.deepEqual(await contents(third), await contents(w2));
    assert.equal(third.count(), wantContents.length + 39);
    await third.close();
    await w2.close();

    // the unchanged original and a filesystem import agree too
    const fsTarget = await FsDirectory.open(join(tmp, 'imported'), { create: true });
    await importSnapshot(blob(snap), fsTarget);
    const f = await Collection.open(join(tmp, 'imported'));
    assert.deepEqual(await observe(f), want);
    assert.deepEqual(await contents(f), wantContents);
    assert.equal((await f.verify()).problems.length, 0);
    await f.close();
    await c.close();
  });

  it('a snapshot file written by Node opens from the file read back', async () => {
    const c = await build(await FsDirectory.open(join(tmp, 'to-file'), { create: true }));
    const file = join(tmp, 'collection.qsnap');
    writeFileSync(file, await c.exportSnapshot());
    const r = await Collection.openSnapshot(new Uint8Array(readFileSync(file)));
    assert.deepEqual(await observe(r), await observe(c));
    await r.close();
    await c.close();
  });

  it('refuses a non-empty import target, an in-memory export, and bad arguments', async () => {
    const c = await build(new MemoryDirectory());
    const snap = await c.exportSnapshot();
    const busy = new MemoryDirectory();
    await busy.writeFile('notes.txt', [new Uint8Array([1])]);
    const e = await codeOf(importSnapshot(snap, busy));
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.match(e.message, /not empty \(notes\.txt\)/);
    assert.deepEqual(await busy.list(), ['notes.txt'], 'nothing written into a refused target');
    // a target with a writer open is LOCKED
    const held = new MemoryDirectory();
    const lock = await held.lock();
    assert.equal((await codeOf(importSnapshot(snap, held))).code, 'LOCKED');
    await lock.release();

    const mem = Collection.create({ dimension: 4 });
    await mem.upsert([{ id: 'a', vector: [1, 2, 3, 4] }]);
    assert.equal((await codeOf(mem.exportSnapshot())).code, 'INVALID_ARGUMENT');
    await mem.close();
    assert.equal((await codeOf(Collection.openSnapshot(snap, { readOnly: false } as never))).code, 'INVALID_ARGUMENT');
    assert.equal((await codeOf(Collection.openSnapshot('x' as never))).code, 'INVALID_ARGUMENT');
    assert.equal((await codeOf(encodeSnapshot(new MemoryDirectory()))).code, 'NOT_FOUND');
    await c.close();
  });

  it('a read-only opener exports the directory as the writer left it', async () => {
    const dir = new MemoryDirectory();
    const c = await build(dir);
    const r = await Collection.open(dir, { readOnly: true });
    const snap = await r.exportSnapshot(); // no flush: the unflushed rows come from the WAL
    const s = await Collection.openSnapshot(snap);
    assert.ok(new SnapshotDirectory(snap).entries().some((e) => e.name.startsWith('wal-') && e.length > 16), 'the WAL records travel in the snapshot');
    assert.deepEqual(await contents(s), await contents(c));
    await s.close();
    await r.close();
    await c.close();
  });

  it('a snapshot taken while writes run holds a state after one of them', async () => {
    const c = await Collection.open(new MemoryDirectory(), { ...openOpts, sealRows: 60 });
    await c.upsert(Array.from({ length: 50 }, (_, j) => record(j)));
    const writes: Promise<void>[] = [];
    let exported: Promise<Uint8Array> | null = null;
    for (let b = 1; b <= 8; b++) {
      writes.push(c.upsert(Array.from({ length: 25 }, (_, j) => record(b * 1000 + j))));
      if (b === 3) exported = c.exportSnapshot();
    }
    await Promise.all(writes);
    const s = await Collection.openSnapshot(await exported!);
    const n = s.count();
    assert.ok(n >= 50 && n <= 250 && (n - 50) % 25 === 0, `whole batches only: ${n}`);
    for (const rec of await contents(s) as [string, number[], unknown][]) {
      const i = Number(rec[0].slice(1));
      assert.deepEqual(rec[1], Array.from(c.get(rec[0]).vector), `record ${i} as written`);
    }
    await s.close();
    await c.close();
  });

  it('damaged snapshots are CORRUPT_FILE (naming the file inside), never a crash', async () => {
    const c = await build(new MemoryDirectory());
    const snap = await c.exportSnapshot();
    await c.close();
    const entries = new SnapshotDirectory(snap).entries();
    const expectCorrupt = async (bytes: Uint8Array, what: string, file?: string) => {
      for (const open of [() => new SnapshotDirectory(bytes), () => SnapshotDirectory.open(blob(bytes)), () => Collection.openSnapshot(bytes)]) {
        const e = await codeOf(open);
        assert.equal(e.code, 'CORRUPT_FILE', `${what}: ${e.code} ${e.message}`);
        if (file) assert.equal(e.details.file, file, `${what}: ${e.message}`);
      }
    };
    // one flipped bit inside each file names that file
    for (const e of entries) {
      const b = snap.slice();
      b[e.offset + Math.floor(e.length / 2)] ^= 0x10;
      await expectCorrupt(b, `flip in ${e.name}`, e.name);
      assert.match((await codeOf(() => new SnapshotDirectory(b))).message, new RegExp(`file ${e.name.replace('.', '\\.')} inside the snapshot`));
    }
    // a flip anywhere (header, table, data, trailer), checked on a stride over the whole snapshot
    const b = snap.slice();
    const stride = Math.max(1, Math.floor(snap.length / 1500));
    for (let i = 0; i < snap.length; i += i < 64 || i > snap.length - 64 ? 1 : stride) {
      b[i] ^= 0x01;
      const e = await codeOf(() => new SnapshotDirectory(b));
      assert.equal(e.code, 'CORRUPT_FILE', `flip at ${i}: ${e.code} ${e.message}`);
      b[i] ^= 0x01;
    }
    // truncations and an extra byte
    for (const n of [0, 3, 23, 24, 40, entries[0].offset, entries[1].offset + 5, snap.length - 17, snap.length - 16, snap.length - 1]) {
      await expectCorrupt(snap.subarray(0, n), `truncated to ${n}`);
    }
    const longer = new Uint8Array(snap.length + 1);
    longer.set(snap);
    await expectCorrupt(longer, 'one byte more');
    await expectCorrupt(new TextEncoder().encode('not a snapshot at all, just some text'), 'text');

    // a well-formed header of another version is UNSUPPORTED_FORMAT
    const v2 = snap.slice();
    const dv = new DataView(v2.buffer);
    dv.setUint16(4, SNAPSHOT_VERSION + 1, true);
    dv.setUint32(20, crc32c(v2, 0, 0, 20), true);
    const e = await codeOf(() => new SnapshotDirectory(v2));
    assert.equal(e.code, 'UNSUPPORTED_FORMAT');
    assert.equal((await codeOf(Collection.openSnapshot(blob(v2)))).code, 'UNSUPPORTED_FORMAT');
    // an import of a damaged snapshot writes nothing
    const target = new MemoryDirectory();
    const bad = snap.slice();
    bad[entries[entries.length - 1].offset + 3] ^= 0xff;
    assert.equal((await codeOf(importSnapshot(bad, target))).code, 'CORRUPT_FILE');
    assert.deepEqual(await target.list(), []);
  });

  it('rejects path-like names, writing and reading', async () => {
    const manifestOf = async () => {
      const c = await Collection.open(new MemoryDirectory(), { schema: { dimension: 2 } });
      const d = new SnapshotDirectory(await c.exportSnapshot());
      await c.close();
      return d.readFile('MANIFEST');
    };
    const manifest = await manifestOf();
    for (const name of ['../x', 'a/b', 'a\\b', '..', '.', '', '/etc']) {
      assert.equal((await codeOf(() => encodeSnapshotFiles([{ name: 'MANIFEST', bytes: manifest }, { name, bytes: new Uint8Array([1]) }]))).code, 'INVALID_ARGUMENT', name);
    }
    // a crafted snapshot whose table names "../x" (checksums made valid) is refused on open and import
    for (const evil of ['../x', '..', 'a/bc']) {
      const safe = 'z'.repeat(evil.length);
      const b = concatChunks(encodeSnapshotFiles([{ name: 'MANIFEST', bytes: manifest }, { name: safe, bytes: new Uint8Array([1, 2, 3]) }]));
      const at = b.findIndex((_, i) => new TextDecoder().decode(b.subarray(i, i + safe.length)) === safe);
      b.set(new TextEncoder().encode(evil), at);
      resealTable(b);
      const e = await codeOf(() => new SnapshotDirectory(b));
      assert.equal(e.code, 'CORRUPT_FILE');
      assert.match(e.message, /unsafe name/);
      const target = new MemoryDirectory();
      assert.equal((await codeOf(importSnapshot(b, target))).code, 'CORRUPT_FILE');
      assert.deepEqual(await target.list(), []);
      assert.equal((await codeOf(SnapshotDirectory.open(blob(b)))).code, 'CORRUPT_FILE');
    }
    // duplicates, and a snapshot without a MANIFEST or missing a listed segment, are not collections
    assert.equal((await codeOf(() => encodeSnapshotFiles([{ name: 'MANIFEST', bytes: manifest }, { name: 'MANIFEST', bytes: manifest }]))).code, 'INVALID_ARGUMENT');
    assert.match((await codeOf(() => new SnapshotDirectory(concatChunks(encodeSnapshotFiles([{ name: 'wal-00000001.log', bytes: new Uint8Array(16) }]))))).message, /no MANIFEST/);
    const c = await build(new MemoryDirectory());
    const full = new SnapshotDirectory(await c.exportSnapshot());
    await c.close();
    const files = await Promise.all(full.entries().filter((e) => !e.name.startsWith('seg-') || e.name !== full.entries().find((x) => x.name.startsWith('seg-'))!.name)
      .map(async (e) => ({ name: e.name, bytes: await full.readFile(e.name) })));
    const missing = await codeOf(() => new SnapshotDirectory(concatChunks(encodeSnapshotFiles(files))));
    assert.equal(missing.code, 'CORRUPT_FILE');
    assert.match(missing.message, /does not hold/);
  });
});
