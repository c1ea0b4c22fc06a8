import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isQuiverError } from '../src/errors.js';
import { parseFvecs } from '../src/io/vecs.js';
import { createUseLiteEmbedder, USE_LITE_MODEL_ID, WorkerPoolEmbedder } from '../src/node/use-lite-embedder.js';
import { DATA_DIR } from './helpers/data.js';

// The worker-thread embedder: first the pool's machinery (ordering, progress, abort, close, a
// dying thread) with small stand-in workers, then the real USE-Lite model against the vectors
// in ../shared/data/cacm/use512, which were made with the same model.

/**
 * A stand-in worker: the vector of a text is [length, first char code, thread id, 1]; each batch
 * waits a random 0-15 ms (so threads finish out of order) or `delayMs`; `crash` makes the thread
 * exit, `fail` answers a failure, `short` answers 3 values per text; every batch received bumps
 * the shared counter in workerData.seen.
 */
const FAKE_WORKER = `
const { parentPort, workerData, threadId } = require('node:worker_threads');
const seen = new Int32Array(workerData.seen);
if (workerData.failStart) throw new Error('no model here');
parentPort.on('message', ({ batch, texts }) => {
  Atomics.add(seen, 0, 1);
  if (texts.includes('crash')) process.exit(7);
  if (texts.includes('fail')) { parentPort.postMessage({ type: 'failed', batch, message: 'tensor trouble' }); return; }
  const d = texts.includes('short') ? 3 : 4;
  const vectors = new Float32Array(texts.length * d);
  texts.forEach((t, i) => vectors.set([t.length, t.charCodeAt(0), threadId, 1].slice(0, d), i * d));
  setTimeout(() => parentPort.postMessage({ type: 'done', batch, vectors }, [vectors.buffer]), workerData.delayMs ?? Math.random() * 15);
});
parentPort.postMessage({ type: 'ready' });
`;

function fakePool(opts: { threads?: number; batchSize?: number; delayMs?: number; failStart?: boolean } = {}) {
  const seen = new SharedArrayBuffer(4);
  const pool = WorkerPoolEmbedder.start({
    model: 'fake', dimension: 4, batchSize: opts.batchSize ?? 3, threads: opts.threads ?? 2,
    workerSource: FAKE_WORKER, workerData: { seen, delayMs: opts.delayMs, failStart: opts.failStart },
  });
  return { pool, batchesSeen: () => Atomics.load(new Int32Array(seen), 0) };
}

const texts = (n: number): string[] => Array.from({ length: n }, (_, i) => `${String.fromCharCode(65 + (i % 26))}${'x'.repeat(i)}`);

describe('WorkerPoolEmbedder', () => {
  it('spreads batches over the threads and returns rows in input order', async () => {
    const { pool: started, batchesSeen } = fakePool({ threads: 2, batchSize: 3 });
    const pool = await started;
    const input = texts(40);
    const progress: number[] = [];
    const [a, b] = await Promise.all([
      pool.embed(input, { onProgress: (done, total) => { assert.equal(total, 40); progress.push(done); } }),
      pool.embed(input.slice(0, 7)),
    ]);
    for (const [out, src] of [[a, input], [b, input.slice(0, 7)]] as const) {
      assert.equal(out.length, src.length * 4);
      src.forEach((t, i) => assert.deepEqual([out[i * 4], out[i * 4 + 1], out[i * 4 + 3]], [t.length, t.charCodeAt(0), 1], `row ${i}`));
    }
    assert.equal(new Set(Array.from({ length: 40 }, (_, i) => a[i * 4 + 2])).size, 2, 'both threads took batches');
    // once per batch, counting texts; batches finish in any order, so only the sum is fixed
    assert.equal(progress.length, 14);
    assert.ok(progress.every((p, i) => i === 0 || p > progress[i - 1]));
    assert.equal(progress.at(-1), 40);
    assert.equal(batchesSeen(), 14 + 3);
    assert.equal((await pool.embed([])).length, 0);
    await assert.rejects(pool.embed(['ok', '']), (err) => isQuiverError(err, 'INVALID_ARGUMENT'));
    await pool.close();
  });

  it('fails the call whose thread dies, goes on with the others, and fails everything once none is left', async () => {
    const pool = await fakePool({ threads: 2, batchSize: 1, delayMs: 20 }).pool;
    const doomed = pool.embed(['a', 'crash', 'b']);
    const healthy = pool.embed(['c', 'd', 'e', 'f']);
    await assert.rejects(doomed, (err) => isQuiverError(err, 'INTERNAL') && /exited with code 7/.test(err.message));
    const out = await healthy;
    assert.deepEqual([out[0], out[4], out[8], out[12]], [1, 1, 1, 1]);
    // the last thread dies: the call fails at once, and so does every later one
    await assert.rejects(pool.embed(['crash', 'g']), (err) => isQuiverError(err, 'INTERNAL'));
    await assert.rejects(pool.embed(['h']), (err) => isQuiverError(err, 'INTERNAL') && err.details.reason === 'no threads left');
    await pool.close();
  });

  it('turns a failed batch into INTERNAL and a wrong-sized answer into INVALID_VECTOR, keeping the threads', async () => {
    const pool = await fakePool({ threads: 1, batchSize: 2 }).pool;
    await assert.rejects(pool.embed(['a', 'b', 'fail']), (err) => isQuiverError(err, 'INTERNAL') && /tensor trouble/.test(err.message));
    await assert.rejects(pool.embed(['short']), (err) => isQuiverError(err, 'INVALID_VECTOR') && err.details.received === 3);
    assert.equal((await pool.embed(['still works'])).length, 4);
    await pool.close();
  });

  it('aborts through the signal, dropping the batches not yet sent', async () => {
    const { pool: started, batchesSeen } = fakePool({ threads: 1, batchSize: 1, delayMs: 50 });
    const pool = await started;
    const controller = new AbortController();
    const pending = pool.embed(texts(20), { signal: controller.signal, onProgress: (done) => { if (done === 2) controller.abort(); } });
    await assert.rejects(pending, (err) => (err as Error).name === 'AbortError');
    assert.ok(batchesSeen() <= 3, `${batchesSeen()} batches reached the thread after the abort`);
    assert.equal((await pool.embed(['next'])).length, 4, 'the pool serves the next call');
    await assert.rejects(pool.embed(['x'], { signal: AbortSignal.abort() }), (err) => (err as Error).name === 'AbortError');
    await pool.close();
  });

  it('close() fails pending calls with CLOSED, is idempotent, and refuses later calls', async () => {
    const pool = await fakePool({ threads: 2, batchSize: 1, delayMs: 100 }).pool;
    const pending = assert.rejects(pool.embed(texts(10)), (err) => isQuiverError(err, 'CLOSED'));
    await new Promise((r) => setTimeout(r, 20));
    await Promise.all([pool.close(), pool.close()]);
    await pending;
    await assert.rejects(pool.embed(['a']), (err) => isQuiverError(err, 'CLOSED'));
  });

  it('rejects with INTERNAL when a thread cannot start, leaving no thread behind', async () => {
    await assert.rejects(fakePool({ threads: 2, failStart: true }).pool, (err) => isQuiverError(err, 'INTERNAL') && /no model here/.test(err.message));
  });

  it('refuses a bad thread count', async () => {
    await assert.rejects(createUseLiteEmbedder({ threads: 0 }), (err) => isQuiverError(err, 'INVALID_ARGUMENT'));
    await assert.rejects(createUseLiteEmbedder({ threads: 1.5 }), (err) => isQuiverError(err, 'INVALID_ARGUMENT'));
  });
});

// ../shared/data/cacm: queries.jsonl {_id,text}, corpus.jsonl {_id,title,text} (every title is
// empty, so a document's embedded text is its `text`), use512/*.fvecs with row order in *.ids.json.
const CACM = join(DATA_DIR, 'cacm');
const haveCacm = existsSync(join(CACM, 'use512', 'queries.fvecs'));

function readJsonl(path: string): { _id: string; text: string }[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

function storedRows(name: 'queries' | 'corpus'): Map<string, Float32Array> {
  const { data, dimension } = parseFvecs(readFileSync(join(CACM, 'use512', `${name}.fvecs`)));
  const ids = JSON.parse(readFileSync(join(CACM, 'use512', `${name}.ids.json`), 'utf8')) as string[];
  return new Map(ids.map((id, i) => [id, data.subarray(i * dimension, (i + 1) * dimension)]));
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
}

describe('USE-Lite on worker threads', { skip: haveCacm ? false : `no CACM data at ${CACM} (../shared/data beside the repository)` }, () => {
  it('reproduces the stored CACM embeddings of queries and documents', async () => {
    const embedder = await createUseLiteEmbedder({ threads: 2 });
    try {
      assert.equal(embedder.model, USE_LITE_MODEL_ID);
      assert.equal(embedder.dimension, 512);
      const queries = readJsonl(join(CACM, 'queries.jsonl')).slice(0, 8);
      const corpus = readJsonl(join(CACM, 'corpus.jsonl'));
      const docs = [0, 800, 1600, 2400].map((i) => corpus[i]);
      const storedQueries = storedRows('queries'), storedDocs = storedRows('corpus');
      const items = [...queries.map((q) => ({ ...q, stored: storedQueries })), ...docs.map((d) => ({ ...d, stored: storedDocs }))];
      const out = await embedder.embed(items.map((x) => x.text));
      items.forEach((item, i) => {
        const stored = item.stored.get(item._id);
        assert.ok(stored, `no stored vector for ${item._id}`);
        const c = cosine(out.subarray(i * 512, (i + 1) * 512), stored);
        assert.ok(c >= 0.99, `${item._id}: cosine ${c.toFixed(4)} with the stored vector`);
      });
      // rows are not interchangeable: each matches its own stored vector far better than its neighbour's
      assert.ok(cosine(out.subarray(0, 512), storedQueries.get(queries[1]._id)!) < 0.9);
    } finally {
      await embedder.close();
    }
  });

  it('keeps the event loop free while it embeds', async () => {
    const docs = readJsonl(join(CACM, 'corpus.jsonl')).slice(0, 64).map((d) => d.text);
    // one thread, one batch of 64 abstracts: a couple of seconds of work on whichever thread runs it
    const embedder = await createUseLiteEmbedder({ threads: 1, batchSize: 64 });
    try {
      let last = performance.now(), worstGap = 0, ticks = 0;
      const tick = setInterval(() => { const now = performance.now(); worstGap = Math.max(worstGap, now - last); last = now; ticks++; }, 10);
      const started = performance.now();
      await embedder.embed(docs);
      const took = performance.now() - started;
      clearInterval(tick);
      // embedding on the main thread would leave no tick at all for seconds; on a loaded machine the
      // scheduler alone can delay a tick by a few hundred ms, so count ticks rather than time one gap
      assert.ok(ticks >= took / 10 / 4, `the event loop ticked ${ticks} times in ${took.toFixed(0)} ms of embedding (every 10 ms expected)`);
      assert.ok(worstGap < took / 2, `the event loop stalled ${worstGap.toFixed(0)} ms during ${took.toFixed(0)} ms of embedding`);
    } finally {
      await embedder.close();
    }
  });
});
