import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Collection, MemoryDirectory, QuiverError, type EngineEvent } from '../src/index.js';
import { testHooks } from '../src/collection/collection.js';
import { FaultyDirectory } from './helpers/faulty-directory.js';
import { randomF32 } from './helpers/random.js';

// Regression tests for defects found in review (issue 7): each failed on the engine before the
// hardening. Named by the defect they pin down.

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(e instanceof QuiverError, `expected QuiverError, got ${e}`);
    return e.code;
  }
  assert.fail('expected an error');
}

const vec = (i: number, d = 8) => randomF32(d, 1000 + i);

describe('an installed state is never undone', () => {
  it('a source file that cannot be removed after a merge leaves the merged segment in force, reported and retried', async () => {
    const dir = new FaultyDirectory();
    const events: EngineEvent[] = [];
    let col = await Collection.open(dir, { schema: { dimension: 8, metric: 'l2' }, sealRows: 50, autoMerge: false, onEvent: (e) => { events.push(e); } });
    for (let b = 0; b < 3; b++) {
      await col.upsert(Array.from({ length: 50 }, (_, i) => ({ id: `r${b * 50 + i}`, vector: vec(b * 50 + i), metadata: { b } })));
      await col.flush();
    }
    await col.delete(['r7']);
    dir.failRemove = /^seg-0000000[123]\./; // the merge's sources
    dir.failRemovals = 1;
    await col.compact(); // must not throw: the merge is installed before the cleanup
    assert.equal(dir.failedRemovals.length, 1);
    const failed = dir.failedRemovals[0];
    assert.ok(events.some((e) => e.type === 'cleanup-failed' && e.file === failed), 'cleanup-failed reported');
    assert.deepEqual(col.info().pendingCleanup, [failed]);
    assert.equal(col.stats().segments, 1);
    assert.equal(col.size, 149);
    await col.close(); // close retries the cleanup
    assert.equal(await dir.exists(failed), false, 'retried at close');
    col = await Collection.open(dir);
    assert.equal(col.size, 149);
    assert.deepEqual((await col.verify()).problems, []);
    await col.close();
  });

  it('a failed removal left over at close is swept at the next open', async () => {
    const dir = new FaultyDirectory();
    let col = await Collection.open(dir, { schema: { dimension: 8, metric: 'l2' }, sealRows: 40, autoMerge: false });
    for (let b = 0; b < 2; b++) {
      await col.upsert(Array.from({ length: 40 }, (_, i) => ({ id: `r${b * 40 + i}`, vector: vec(i) })));
      await col.flush();
    }
    dir.failRemove = /^seg-0000000[12]\./;
    dir.failRemovals = 10; // the retries at close fail too
    await col.compact();
    await col.close();
    const left = dir.failedRemovals[0];
    assert.equal(await dir.exists(left), true);
    dir.failRemovals = 0;
    col = await Collection.open(dir);
    assert.ok(col.info().recovery.orphansRemoved.includes(left));
    assert.equal(col.size, 80);
    await col.close();
  });

  it('an onEvent callback that throws (or rejects) never breaks writes, seals or merges', async () => {
    const dir = new MemoryDirectory();
    let calls = 0;
    const col = await Collection.open(dir, {
      schema: { dimension: 8 }, sealRows: 30, mergePolicy: { segmentsPerTier: 2 },
      onEvent: (e) => { calls++; if (e.type === 'sealed') throw new Error('user bug'); return Promise.reject(new Error('async user bug')) as never; },
    });
    for (let b = 0; b < 6; b++) await col.upsert(Array.from({ length: 30 }, (_, i) => ({ id: `x${b * 30 + i}`, vector: vec(b * 30 + i) })));
    await col.idle();
    await col.compact();
    await new Promise((r) => setImmediate(r));
    assert.ok(calls > 0);
    assert.ok(col.info().callbackErrors > 0);
    assert.equal(col.size, 180);
    assert.equal(col.stats().segments, 1);
    await col.close();
  });
});

describe('memory after an import', () => {
  it('a sealed compressed segment gives its float32 vectors back: kernel memory holds the codes, not the vectors', async () => {
    const d = 64, n = 20000;
    const col = Collection.create({ dimension: d, metric: 'cosine', index: 'Flat,SQ8,Rerank' });
    for (let s = 0; s < n; s += 5000) await col.upsert(Array.from({ length: 5000 }, (_, i) => ({ id: `m${s + i}`, vector: randomF32(d, s + i + 1) })));
    const vectors = n * d * 4;
    assert.ok(col.info().kernelMemoryBytes >= vectors, 'before sealing, the mutable segment holds the vectors');
    await col.flush();
    await col.idle();
    const info = col.info();
    assert.equal(info.segmentList.filter((s) => s.state === 'sealed').length, 1);
    assert.ok(info.kernelMemoryBytes < vectors / 2, `kernel memory ${info.kernelMemoryBytes} B for ${vectors} B of vectors`);
    assert.ok(info.kernelMemoryBytes >= n * d, 'it holds the SQ8 codes (1 byte per dimension)');
    await col.close();
  });
});

describe('one writer lane in memory too', () => {
  // In-memory collections applied writes at once, outside the lane, while a seal copied
  // tombstones and then awaited: deletes in that window were lost (the id came back in search).
  for (const index of ['Flat,SQ8', 'Flat,RaBitQ4,Rerank']) {
    it(`${index}: deletes and replacements issued while flush() runs are never lost`, async () => {
      const d = 16, n = 1200;
      const col = Collection.create({ dimension: d, metric: 'l2', index });
      await col.upsert(Array.from({ length: n }, (_, i) => ({ id: `p${i}`, vector: randomF32(d, i + 1) })));
      const deleted = new Set<string>();
      const replaced = new Set<string>();
      let done = false;
      const flush = col.flush().finally(() => { done = true; });
      let i = 0;
      // a write on every turn of the microtask queue while the seal runs
      while (!done && i < n) {
        const id = `p${i++}`;
        if (i % 3 === 0) { replaced.add(id); await col.upsert([{ id, vector: randomF32(d, 50_000 + i) }]); } else { deleted.add(id); await col.delete([id]); }
      }
      await flush;
      assert.ok(deleted.size > 5, `only ${deleted.size} deletes overlapped the seal`);
      const all = await col.search(randomF32(d, 7), { k: n, includeMetadata: false });
      const seen = new Map<string, number>();
      for (const h of all) seen.set(h.id, (seen.get(h.id) ?? 0) + 1);
      for (const id of deleted) assert.equal(seen.has(id), false, `deleted ${id} is still returned`);
      for (const [id, c] of seen) assert.equal(c, 1, `${id} returned ${c} times`);
      for (const id of replaced) assert.deepEqual(Array.from(col.get(id).vector), Array.from(randomF32(d, 50_000 + Number(id.slice(1)) + 1)));
      assert.equal(col.size, n - deleted.size);
      assert.equal(all.length, n - deleted.size);
      await col.close();
    });
  }
});

describe('ids and strings that reach files are well-formed UTF-16', () => {
  it('lone surrogates are INVALID_ARGUMENT in ids (upsert, delete, get) and keyword fields; pairs are fine', async () => {
    const dir = new MemoryDirectory();
    let col = await Collection.open(dir, { schema: { dimension: 2, metric: 'dot', fields: { tag: 'keyword', tags: 'keyword[]' } } });
    for (const bad of ['\uD800', '\uDC00', 'a\uD800b', 'x\uDBFF', '\uDFFFy']) {
      assert.equal(await codeOf(col.upsert([{ id: bad, vector: [1, 0] }])), 'INVALID_ARGUMENT', JSON.stringify(bad));
      assert.equal(await codeOf(col.delete([bad])), 'INVALID_ARGUMENT');
      assert.equal(await codeOf(() => col.get(bad)), 'INVALID_ARGUMENT');
      assert.equal(await codeOf(col.upsert([{ id: 'ok', vector: [1, 0], metadata: { tag: bad } }])), 'INVALID_ARGUMENT');
      assert.equal(await codeOf(col.upsert([{ id: 'ok', vector: [1, 0], metadata: { tags: ['fine', bad] } }])), 'INVALID_ARGUMENT');
    }
    try { await col.upsert([{ id: '\uD800', vector: [1, 0] }]); } catch (e) {
      assert.deepEqual((e as QuiverError).details, { index: 0, field: 'id', expected: 'well-formed UTF-16', received: 'lone surrogate U+D800 at index 0' });
    }
    // a surrogate pair is one character, stored and read back exactly; undeclared metadata keeps lone surrogates (JSON escapes them)
    await col.upsert([{ id: '😀', vector: [1, 0], metadata: { tag: '🎉', note: '\uD800' } }, { id: '\uD83D\uDE01', vector: [0, 1] }]);
    col = await reopen(col, dir);
    assert.equal(col.size, 2);
    assert.deepEqual(col.get('😀').metadata, { tag: '🎉', note: '\uD800' });
    await col.flush();
    col = await reopen(col, dir);
    assert.deepEqual(col.getMany(['😀', '\uD83D\uDE01']).map((r) => r?.id), ['😀', '\uD83D\uDE01']);
    await col.close();
  });
});

describe('a rejected write never comes back', () => {
  it('a write too large for one WAL record is rejected before it is queued; its group commits without it', async () => {
    testHooks.walMaxRecordBytes = 4096;
    try {
      const dir = new MemoryDirectory();
      let col = await Collection.open(dir, { schema: { dimension: 16, metric: 'dot' }, groupCommitMs: 5 });
      const small = col.upsert([{ id: 'small', vector: randomF32(16, 1) }]);
      const big = col.upsert(Array.from({ length: 100 }, (_, i) => ({ id: `big${i}`, vector: randomF32(16, i + 2) })));
      const after = col.upsert([{ id: 'after', vector: randomF32(16, 3) }]);
      assert.equal(await codeOf(big), 'INVALID_ARGUMENT');
      await small;
      await after;
      col = await reopen(col, dir);
      assert.deepEqual(col.getMany(['small', 'big0', 'big99', 'after']).map((r) => r?.id ?? null), ['small', null, null, 'after']);
      assert.equal(col.size, 2);
      await col.close();
    } finally {
      delete testHooks.walMaxRecordBytes;
    }
  });

  it('a group whose write fails (disk full) is rejected whole and never written by a later commit', async () => {
    const dir = new FaultyDirectory();
    let col = await Collection.open(dir, { schema: { dimension: 4, metric: 'dot' }, groupCommitMs: 5 });
    await col.upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    dir.spaceLeft = 10;
    const p1 = col.upsert([{ id: 'b', vector: [0, 1, 0, 0] }]);
    const p2 = col.delete(['a']);
    assert.equal(await codeOf(p1), 'IO_ERROR');
    assert.equal(await codeOf(p2), 'IO_ERROR');
    dir.spaceLeft = Infinity;
    await col.upsert([{ id: 'c', vector: [0, 0, 1, 0] }]);
    col = await reopen(col, dir);
    assert.deepEqual(col.getMany(['a', 'b', 'c']).map((r) => r?.id ?? null), ['a', null, 'c']);
    await col.close();
  });
});

async function reopen(col: Collection, dir: MemoryDirectory | FaultyDirectory): Promise<Collection> {
  await col.close();
  return Collection.open(dir);
}
