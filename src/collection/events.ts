import type { QuiverError } from '../errors.js';

/** Notices from the engine, given to the `onEvent` option. */
export type EngineEvent =
  | { type: 'wal-torn-tail'; file: string; offset: number; droppedBytes: number; reason: string }
  | { type: 'orphan-removed'; file: string }
  | { type: 'sealed'; segment: number; rows: number; bytes: number; ms: number }
  /**
   * Progress of building a segment's index (seal or merge): `phase` 'graph' (HNSW insertion),
   * 'calibration' (measuring recall for recall targets); done of total units. At most ~10 per second.
   * threads: for 'graph', the threads inserting (1 = on the event loop's thread, in slices).
   */
  | { type: 'index-progress'; segment: number; phase: 'graph' | 'calibration'; done: number; total: number; threads?: number }
  /**
   * graphFrom: the input whose HNSW graph the merged segment was built from (its other rows
   * inserted); listsFrom: the input whose IVF centroids and quantizer were offered, retrained:
   * whether the merged rows had drifted from them (so the index was trained anew).
   */
  | { type: 'merged'; from: number[]; into: number; rows: number; ms: number; graphFrom?: number; listsFrom?: number; retrained?: boolean }
  /** A file the manifest no longer names could not be removed; retried later, and at the next open. */
  | { type: 'cleanup-failed'; file: string; error: QuiverError }
  | { type: 'background-error'; error: QuiverError };

/**
 * Wraps a user callback so that it can never break the engine: a throw (or a rejected promise)
 * is counted and otherwise ignored. Returns the safe function and a counter of swallowed errors.
 */
export function isolateCallback(fn: ((e: EngineEvent) => unknown) | undefined): { emit: (e: EngineEvent) => void; errors: () => number } {
  let errors = 0;
  return {
    emit: (e) => {
      if (!fn) return;
      try {
        const r = fn(e) as unknown;
        if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(undefined, () => { errors++; });
      } catch {
        errors++;
      }
    },
    errors: () => errors,
  };
}
