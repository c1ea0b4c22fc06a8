import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Collection, MemoryDirectory, QuiverError } from '../src/index.js';
import { readManifest } from '../src/storage/manifest.js';
import { decodeOperation, encodeDelete, encodeUpsert, encodeUpsertV1 } from '../src/storage/records.js';
import { NO_VALUES } from '../src/fields/types.js';
import { readWalBytes, WAL_HEADER_BYTES, walFileName, WalWriter } from '../src/storage/wal.js';
import { crc32c } from '../src/util/crc32c.js';
import { FaultyDirectory } from './helpers/faulty-directory.js';
import { randomF32, rng } from './helpers/random.js';

// Storage formats and their failure modes: WAL framing and replay, segment and manifest
// checksums, truncation and bit flips in every file, recovery that drops only a torn tail.

async function codeOf(fn: () => Promise<unknown>): Promise<QuiverError> {
  try { await fn(); } catch (e) { assert.ok(e instanceof QuiverError, `expected QuiverError, got ${e}`); return e; }
  assert.fail('expected an error');
}

describe('CRC-32C', () => {
  it('matches the standard check value and continues across calls', () => {
    const b = new TextEncoder().encode('123456789');
    assert.equal(crc32c(b), 0xe3069283);
    assert.equal(crc32c(b.subarray(4), crc32c(b.subarray(0, 4))), 0xe3069283);
    const big = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);
    let c = 0;
    for (let i = 0; i < 1000; i += 13) c = crc32c(big.subarray(i, Math.min(1000, i + 13)), c);
    assert.equal(c, crc32c(big));
  });
});

describe('WAL', () => {
  async function walWith(payloads: Uint8Array[]): Promise<Uint8Array> {
    const dir = new MemoryDirectory();
    const w = await WalWriter.create(dir, 3);
    await w.commit(payloads);
    return dir.rawFile(walFileName(3)).slice();
  }
  const payloads = [encodeUpsertV1(1, 4, [{ id: 'a', vector: new Float32Array([1, 2, 3, 4]), metadataJson: '{"x":1}' }]), encodeDelete(2, ['a', 'b']), encodeUpsert(3, 4, [{ id: 'ü', vector: new Float32Array([0, 0, 0, 1]), metadataJson: '', values: NO_VALUES }])];

  it('round-trips records and decodes operations', async () => {
    const bytes = await walWith(payloads);
    const ops: unknown[] = [];
    const res = readWalBytes(bytes, 'w', 3, (p, off) => ops.push(decodeOperation(p, 4, 'w', off)));
    assert.equal(res.records, 3);
    assert.equal(res.torn, undefined);
    assert.equal(res.validBytes, bytes.length);
    assert.deepEqual(ops.map((o) => (o as { seq: number }).seq), [1, 2, 3]);
    assert.deepEqual((ops[1] as { ids: string[] }).ids, ['a', 'b']);
    assert.equal((ops[2] as { entries: { id: string }[] }).entries[0].id, 'ü');
  });

  it('every cut inside the last record is a torn tail that keeps the earlier records', async () => {
    const bytes = await walWith(payloads);
    const lastStart = bytes.length - (payloads[2].length + 8);
    for (let cut = lastStart + 1; cut < bytes.length; cut++) {
      let n = 0;
      const res = readWalBytes(bytes.subarray(0, cut), 'w', 3, () => n++);
      assert.equal(n, 2, `cut ${cut}`);
      assert.equal(res.validBytes, lastStart);
      assert.equal(res.torn?.offset, lastStart);
      assert.equal(res.torn?.droppedBytes, cut - lastStart);
    }
    // a cut exactly at a record boundary is a shorter valid log
    assert.equal(readWalBytes(bytes.subarray(0, lastStart), 'w', 3, () => {}).torn, undefined);
    // a header cut short (crash while creating the file) is an empty, torn log
    assert.equal(readWalBytes(bytes.subarray(0, 7), 'w', 3, () => {}).records, 0);
  });

  it('a bad checksum in the middle is CORRUPT_WAL with the offset; in the last record it is a torn tail', async () => {
    const bytes = await walWith(payloads);
    const mid = bytes.slice();
    const secondStart = WAL_HEADER_BYTES + payloads[0].length + 8;
    mid[secondStart + 6] ^= 0x10;
    const e = await codeOf(async () => readWalBytes(mid, 'w.log', 3, () => {}));
    assert.equal(e.code, 'CORRUPT_WAL');
    assert.equal(e.details.offset, secondStart);
    assert.match(e.message, /w\.log/);
    const last = bytes.slice();
    last[bytes.length - 3] ^= 1;
    const res = readWalBytes(last, 'w', 3, () => {});
    assert.equal(res.records, 2);
    assert.match(res.torn!.reason, /checksum/);
    // zero-filled tail (space allocated, never written)
    const zeros = new Uint8Array(bytes.length + 100);
    zeros.set(bytes);
    assert.equal(readWalBytes(zeros, 'w', 3, () => {}).torn?.reason, 'zero-filled tail');
    // header damage
    for (const at of [0, 5, 9, 13]) {
      const h = bytes.slice();
      h[at] ^= 4;
      assert.ok(['CORRUPT_WAL', 'UNSUPPORTED_FORMAT'].includes((await codeOf(async () => readWalBytes(h, 'w', 3, () => {}))).code));
    }
  });

  it('a failed append is cut back so that later records do not follow garbage', async () => {
    const dir = new MemoryDirectory();
    const w = await WalWriter.create(dir, 1);
    await w.commit([payloads[0]]);
    const good = dir.rawFile(walFileName(1)).length;
    // simulate a write that failed halfway: append garbage, then a failing commit truncates
    const file = await dir.openAppend(walFileName(1), { create: false });
    await file.append(new Uint8Array([1, 2, 3]));
    await WalWriter.reopen(dir, 1, good);
    assert.equal(dir.rawFile(walFileName(1)).length, good);
  });
});

/** A durable collection with two sealed segments, a merge, deletes, and a non-empty WAL. */
async function populated(): Promise<{ dir: MemoryDirectory; ids: string[] }> {
  const dir = new MemoryDirectory('mem');
  const col = await Collection.open(dir, { schema: { dimension: 6, metric: 'cosine' }, sealRows: 20, autoMerge: false });
  const ids: string[] = [];
  for (let b = 0; b < 3; b++) {
    const batch = Array.from({ length: 20 }, (_, i) => ({ id: `r${b * 20 + i}`, vector: randomF32(6, b * 100 + i + 1), metadata: { b, i } }));
    await col.upsert(batch);
    ids.push(...batch.map((r) => r.id));
  }
  await col.idle();
  await col.delete(['r3', 'r25']);
  await col.flush();
  await col.upsert([{ id: 'tail', vector: randomF32(6, 999) }]);
  ids.push('tail');
  await col.close();
  return { dir, ids: ids.filter((i) => i !== 'r3' && i !== 'r25') };
}

describe('files are checked: truncation and bit flips name the damaged file', () => {
  it('a healthy directory verifies and reopens with every record', async () => {
    const { dir, ids } = await populated();
    const col = await Collection.open(dir);
    assert.equal(col.size, ids.length);
    for (const id of ids) assert.ok(col.has(id), id);
    assert.deepEqual(col.get('r7').metadata, { b: 0, i: 7 });
    const v = await col.verify();
    assert.deepEqual(v.problems, []);
    assert.ok(v.files >= 4, `files ${v.files}`);
    await col.close();
  });

  it('segment files and the manifest: any truncation or flipped bit is CORRUPT_FILE naming the file', async () => {
    const { dir } = await populated();
    const manifest = await readManifest(dir);
    const targets = ['MANIFEST', ...manifest!.segments.map((s) => s.file)];
    const r = rng(42);
    for (const name of targets) {
      const original = dir.rawFile(name).slice();
      const positions = [0, 4, 10, 30, 63, 64, 65, original.length - 1, original.length - 10, original.length - 21];
      for (let i = 0; i < 12; i++) positions.push(Math.floor(r() * original.length));
      for (const pos of positions) {
        const flipped = original.slice();
        flipped[pos] ^= 1 << Math.floor(r() * 8);
        dir.setRawFile(name, flipped);
        const e = await codeOf(() => Collection.open(dir));
        assert.ok(['CORRUPT_FILE', 'UNSUPPORTED_FORMAT'].includes(e.code), `${name} bit flip at ${pos}: ${e.code} ${e.message}`);
        assert.ok(e.message.includes(name), `${name} named in: ${e.message}`);
      }
      for (const cut of [0, 3, 40, 64, Math.floor(original.length / 2), original.length - 1]) {
        dir.setRawFile(name, original.slice(0, cut));
        const e = await codeOf(() => Collection.open(dir));
        assert.ok(['CORRUPT_FILE'].includes(e.code), `${name} cut at ${cut}: ${e.code} ${e.message}`);
        assert.ok(e.message.includes(name), `${name} named in: ${e.message}`);
      }
      dir.setRawFile(name, original);
    }
    const col = await Collection.open(dir);
    assert.deepEqual((await col.verify()).problems, []);
    await col.close();
  });

  it('the WAL: a cut tail is dropped and reported, a damaged middle is CORRUPT_WAL', async () => {
    const { dir, ids } = await populated();
    const walName = (await dir.list()).find((f) => f.startsWith('wal-'))!;
    const original = dir.rawFile(walName).slice();
    // cutting inside the last record loses only that (unacknowledged, in a real crash) record
    dir.setRawFile(walName, original.slice(0, original.length - 5));
    const events: string[] = [];
    let col = await Collection.open(dir, { onEvent: (e) => events.push(e.type) });
    assert.equal(col.has('tail'), false);
    assert.equal(col.size, ids.length - 1);
    assert.ok(col.info().recovery.tornTail, 'recovery reports the torn tail');
    assert.ok(events.includes('wal-torn-tail'));
    // and the log was cut back, so new writes follow a clean record boundary
    await col.upsert([{ id: 'after', vector: randomF32(6, 5) }]);
    await col.close();
    col = await Collection.open(dir);
    assert.ok(col.has('after'));
    assert.equal(col.info().recovery.tornTail, undefined);
    await col.close();
    // two records, the first damaged: corruption, not a tail
    const twoRecords = await populated();
    const col2 = await Collection.open(twoRecords.dir);
    await col2.upsert([{ id: 'x2', vector: randomF32(6, 6) }]);
    await col2.close();
    const wal2 = (await twoRecords.dir.list()).find((f) => f.startsWith('wal-'))!;
    const bytes = twoRecords.dir.rawFile(wal2).slice();
    bytes[WAL_HEADER_BYTES + 10] ^= 0x40;
    twoRecords.dir.setRawFile(wal2, bytes);
    const e = await codeOf(() => Collection.open(twoRecords.dir));
    assert.equal(e.code, 'CORRUPT_WAL');
    assert.equal(e.details.offset, WAL_HEADER_BYTES);
    assert.ok(e.message.includes(wal2));
  });

  it('a crash copy (only synced bytes) keeps every acknowledged write', async () => {
    const dir = new MemoryDirectory();
    const col = await Collection.open(dir, { schema: { dimension: 3, metric: 'l2' }, sealRows: 7 });
    const acked: string[] = [];
    for (let i = 0; i < 40; i++) {
      await col.upsert([{ id: `k${i}`, vector: [i, 1, 2] }]);
      acked.push(`k${i}`);
      if (i % 9 === 0) await col.delete([`k${i - 1}`]).then((n) => { if (n) acked.splice(acked.indexOf(`k${i - 1}`), 1); });
      const copy = dir.crashCopy();
      const back = await Collection.open(copy);
      assert.equal(back.size, acked.length, `after write ${i}`);
      for (const id of acked) assert.ok(back.has(id), `${id} after write ${i}`);
      await back.close();
    }
    await col.close();
  });
});

describe('writer lock and readers', () => {
  it('a second writer gets LOCKED; readers may open alongside and see acknowledged writes', async () => {
    const dir = new MemoryDirectory();
    const w = await Collection.open(dir, { schema: { dimension: 2 } });
    await w.upsert([{ id: 'a', vector: [1, 0] }]);
    assert.equal((await codeOf(() => Collection.open(dir))).code, 'LOCKED');
    const r = await Collection.open(dir, { readOnly: true });
    assert.ok(r.has('a'));
    assert.equal((await codeOf(() => r.upsert([{ id: 'b', vector: [0, 1] }]))).code, 'READ_ONLY');
    await r.close();
    await w.close();
    const again = await Collection.open(dir);
    await again.close();
  });

  it('schema checks: NOT_FOUND without a collection, SCHEMA_MISMATCH on a different schema', async () => {
    const dir = new MemoryDirectory();
    assert.equal((await codeOf(() => Collection.open(dir))).code, 'NOT_FOUND');
    const c = await Collection.open(dir, { schema: { dimension: 4, metric: 'dot' } });
    await c.close();
    assert.equal((await codeOf(() => Collection.open(dir, { schema: { dimension: 5, metric: 'dot' } }))).code, 'SCHEMA_MISMATCH');
    assert.equal((await codeOf(() => Collection.open(dir, { bogus: 1 } as never))).code, 'INVALID_ARGUMENT');
    assert.equal((await codeOf(() => Collection.open('/tmp/x' as never, {}))).code, 'INVALID_ARGUMENT', 'paths need quiverdb/node');
  });
});

describe('disk-full and permission errors surface without corrupting the collection', () => {
  it('a write that hits a full disk is rejected with IO_ERROR ENOSPC; earlier and later writes are intact', async () => {
    const dir = new FaultyDirectory();
    const col = await Collection.open(dir, { schema: { dimension: 4, metric: 'l2' }, sealRows: 1000 });
    await col.upsert([{ id: 'a', vector: [1, 2, 3, 4] }]);
    dir.spaceLeft = 30; // the next record (~60 bytes) is cut halfway
    const e = await codeOf(() => col.upsert([{ id: 'b', vector: [5, 6, 7, 8], metadata: { big: 'x'.repeat(10) } }]));
    assert.equal(e.code, 'IO_ERROR');
    assert.equal(e.details.errno, 'ENOSPC');
    assert.equal(col.has('b'), false, 'a rejected write is not applied');
    assert.equal(col.size, 1);
    dir.spaceLeft = Infinity;
    await col.upsert([{ id: 'c', vector: [0, 0, 0, 1] }]);
    assert.deepEqual((await col.search([0, 0, 0, 1], { k: 5 })).map((h) => h.id), ['c', 'a']);
    await col.close();
    const back = await Collection.open(dir.inner.crashCopy());
    assert.deepEqual(['a', 'b', 'c'].map((id) => back.has(id)), [true, false, true]);
    assert.equal(back.info().recovery.tornTail, undefined, 'the failed write was cut back, not left torn');
    await back.close();
  });

  it('a seal that cannot write its segment fails flush() with the error; nothing is lost and it retries', async () => {
    const dir = new FaultyDirectory();
    const col = await Collection.open(dir, { schema: { dimension: 3 }, sealRows: 1000 });
    await col.upsert(Array.from({ length: 30 }, (_, i) => ({ id: `r${i}`, vector: [1, i, 2] })));
    dir.deny = /^seg-/;
    const e = await codeOf(() => col.flush());
    assert.equal(e.code, 'IO_ERROR');
    assert.equal(e.details.errno, 'EACCES');
    assert.equal(col.size, 30);
    await col.upsert([{ id: 'more', vector: [3, 2, 1] }]);
    assert.equal((await col.search([3, 2, 1], { k: 1 }))[0].id, 'more');
    dir.deny = null;
    await col.flush();
    assert.ok(col.info().segmentList.filter((s) => s.state === 'sealed').length >= 1);
    await col.close();
    const back = await Collection.open(dir.inner.crashCopy());
    assert.equal(back.size, 31);
    assert.deepEqual((await back.verify()).problems, []);
    await back.close();
  });

  it('a manifest that cannot be written (disk full) leaves the previous one in force', async () => {
    const dir = new FaultyDirectory();
    const col = await Collection.open(dir, { schema: { dimension: 3 }, sealRows: 1000 });
    await col.upsert(Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, vector: [1, i, 2] })));
    dir.deny = /^MANIFEST/;
    assert.equal((await codeOf(() => col.flush())).code, 'IO_ERROR');
    const crashed = await Collection.open(dir.inner.crashCopy());
    assert.equal(crashed.size, 10, 'replayed from the WAL');
    await crashed.close();
    dir.deny = null;
    await col.flush();
    await col.close();
    const back = await Collection.open(dir.inner.crashCopy());
    assert.equal(back.size, 10);
    await back.close();
  });
});

describe('commit modes', () => {
  it('commitMode per-call syncs writes one by one with the same results', async () => {
    const dir = new MemoryDirectory();
    const col = await Collection.open(dir, { schema: { dimension: 2 }, commitMode: 'per-call' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => col.upsert([{ id: `p${i}`, vector: [1, i] }])));
    assert.equal(col.size, 20);
    await col.close();
    const back = await Collection.open(dir.crashCopy());
    assert.equal(back.size, 20);
    await back.close();
    assert.equal((await codeOf(() => Collection.open(new MemoryDirectory(), { schema: { dimension: 2 }, commitMode: 'sometimes' as never }))).code, 'INVALID_ARGUMENT');
  });
});
