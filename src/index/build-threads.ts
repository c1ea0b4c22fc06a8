import type { Kernels } from '../kernels/types.js';

/**
 * Threads that build HNSW graphs concurrently (hnswlib's parallel insertion): every thread runs
 * the hnswInsert kernel on the same graph in shared kernel memory, claiming nodes from a shared
 * counter, with per-node locks around list writes (assembly/graph.ts) and its own scratch.
 *
 * The engine core stays free of platform imports: a platform registers an implementation
 * (quiverdb/node registers worker_threads, src/node/graph-build-threads.ts); without one, or
 * with one thread asked for, graphs are built on the calling thread in slices between
 * event-loop turns (hnsw-segment.ts buildGraph).
 */
export interface GraphBuildThreads {
  /** Threads a build runs on. */
  readonly threads: number;
  /** Fresh kernels on memory the threads share: the graph, its rows and the job live there. */
  createKernels(): Kernels;
  /**
   * Runs `job` on every thread; resolves once all of its nodes are inserted, rejects (after
   * stopping every thread) if one fails. onProgress(done) reports nodes inserted while it runs.
   */
  run(kernels: Kernels, job: GraphInsertJob, onProgress?: (done: number) => void): Promise<void>;
}

/** One concurrent insertion, as pointers into the shared kernel memory. */
export interface GraphInsertJob {
  /** Per thread: a copy of the graph header with its own scratch and the LOCKS word set. */
  headers: number[];
  /** Per thread: a build scorer (f32 rows); threads rewrite its query pointer per node. */
  scorers: number[];
  /** u32[count]: the nodes to insert, claimed in order, `chunk` at a time. */
  nodes: number;
  count: number;
  chunk: number;
  efConstruction: number;
  /** i32[2]: next index of `nodes` to claim, nodes inserted (both start at 0). */
  counter: number;
}

/** Fewest nodes to insert for which a build goes to threads (below, spawning them does not pay). */
export const MIN_THREADED_INSERTS = 20_000;

let factory: ((threads?: number) => GraphBuildThreads | null) | null = null;

/** Registers the platform's threaded builder; `threads` = what a collection asked for (undefined = the default). */
export function registerGraphBuildThreads(f: (threads?: number) => GraphBuildThreads | null): void {
  factory = f;
}

/**
 * The registered builder for a collection that asked for `threads` (undefined = the platform's
 * default; 1 = none: build on the calling thread), or null when none is registered or usable.
 */
export function graphBuildThreads(threads?: number): GraphBuildThreads | null {
  if (threads === 1 || !factory) return null;
  return factory(threads);
}
