import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { QuiverError } from '../errors.js';
import type { GraphBuildThreads, GraphInsertJob } from '../index/build-threads.js';
import type { Kernels } from '../kernels/types.js';
import { createSharedKernels, sharedKernelParts, sharedKernelsSupported } from '../kernels/wasm-shared.js';

/**
 * GraphBuildThreads on worker_threads: each run spawns its threads (a build this size takes
 * seconds to minutes, so their start, ~30 ms, does not count), hands each the compiled module
 * and the shared memory, and waits; the event loop stays free for writes and searches meanwhile.
 */

/** Most threads a build uses by default (beyond, lock traffic and memory bandwidth cap the gain). */
export const DEFAULT_MAX_BUILD_THREADS = 8;

/**
 * One thread of a build: instantiates the shared-memory kernels on the build's memory and inserts
 * nodes claimed from the shared counter until none is left; everything it touches is in that
 * memory and it allocates nothing. Plain JavaScript evaluated as the worker (no file to resolve:
 * the same under tsx, from dist/, or in a bundle).
 */
const WORKER_SOURCE = `
const { parentPort, workerData: t } = require('node:worker_threads');
const ex = new WebAssembly.Instance(t.module, {
  env: { memory: t.memory, abort: () => { throw new Error('kernel abort'); } },
}).exports;
const counter = new Int32Array(t.memory.buffer, t.counter, 2);
for (;;) {
  const at = Atomics.add(counter, 0, t.chunk);
  if (at >= t.count) break;
  const n = Math.min(t.chunk, t.count - at);
  ex.hnswInsert(t.g, t.s, t.nodes + at * 4, n, t.efConstruction);
  Atomics.add(counter, 1, n);
}
parentPort.postMessage('done');
`;
const PROGRESS_MS = 200;

export class WorkerGraphBuildThreads implements GraphBuildThreads {
  constructor(readonly threads: number) {
    if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256)) {
      throw new QuiverError('INVALID_ARGUMENT', `build threads must be an integer in [1, 256], got ${String(threads)}`, { name: 'buildThreads', expected: 'integer in [1, 256]', received: threads });
    }
  }

  /** A builder for `threads` (default: the machine's cores, at most DEFAULT_MAX_BUILD_THREADS), or null where shared memory is unavailable. */
  static create(threads?: number): WorkerGraphBuildThreads | null {
    if (!sharedKernelsSupported()) return null;
    return new WorkerGraphBuildThreads(threads ?? Math.max(1, Math.min(DEFAULT_MAX_BUILD_THREADS, availableParallelism())));
  }

  createKernels(): Kernels {
    return createSharedKernels();
  }

  async run(kernels: Kernels, job: GraphInsertJob, onProgress?: (done: number) => void): Promise<void> {
    const parts = sharedKernelParts(kernels);
    if (!parts) throw new QuiverError('INVALID_ARGUMENT', 'a threaded graph build needs kernels from createKernels() (shared memory)', { reason: 'not shared kernels' });
    if (job.headers.length !== job.scorers.length || job.headers.length < 1) {
      throw new QuiverError('INVALID_ARGUMENT', `a threaded graph build needs one scorer per header, got ${job.headers.length} headers and ${job.scorers.length} scorers`, { expected: job.headers.length, received: job.scorers.length });
    }
    const counter = new Int32Array(parts.memory.buffer, job.counter, 2);
    const workers = job.headers.map((g, i) => new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        module: parts.module, memory: parts.memory, g, s: job.scorers[i], nodes: job.nodes, count: job.count,
        chunk: job.chunk, efConstruction: job.efConstruction, counter: job.counter,
      },
    }));
    const timer = onProgress ? setInterval(() => onProgress(Math.min(job.count, Atomics.load(counter, 1))), PROGRESS_MS) : null;
    try {
      await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
        let done = false;
        w.once('message', () => { done = true; });
        w.once('error', (e) => reject(new QuiverError('INTERNAL', `graph build thread failed: ${e instanceof Error ? e.message : String(e)}`, { reason: 'thread error' }, { cause: e })));
        w.once('exit', (code) => (done && code === 0 ? resolve() : reject(new QuiverError('INTERNAL', `graph build thread exited with code ${code} before finishing`, { reason: 'thread exit', received: code }))));
      })));
    } finally {
      if (timer) clearInterval(timer);
      // a failed run stops the other threads before the caller releases the memory they use
      await Promise.all(workers.map((w) => w.terminate()));
    }
    const inserted = Atomics.load(counter, 1);
    if (inserted !== job.count) throw new QuiverError('INTERNAL', `graph build threads inserted ${inserted} of ${job.count} nodes`, { expected: job.count, received: inserted });
    onProgress?.(inserted);
  }
}
