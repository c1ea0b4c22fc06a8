import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { Rng } from './rng.js';

/**
 * Lloyd's k-means (squared L2) for PQ codebooks, OPQ and coarse quantizers.
 *
 * - Init: k-means++ (each next centre drawn with probability proportional to the squared
 *   distance to the nearest chosen one; the distances come from the l2Many kernel, one call per
 *   centre over all points) or 'random' (k distinct points).
 * - Assignment: the nearestCentroids kernel over all points in one call per iteration (centroids
 *   transposed so that SIMD lanes run over centroids).
 * - Update: means in float64; an emptied cluster is repaired by moving its centre onto the point
 *   farthest from every centre (taken from a cluster with at least two points; farthest-first
 *   when several are empty), which splits the worst-served region instead of leaving a dead code.
 * - Stops after maxIterations, when no assignment changes, or when the inertia improves by less
 *   than `tolerance` (relative).
 * Deterministic for a given seed and kernel implementation (both kernels give identical ids).
 */
export interface KMeansOptions {
  /** Seed of the initialisation (default 1). */
  seed?: number;
  /** 'kmeans++' (default) or 'random'. */
  init?: 'kmeans++' | 'random';
  /** Lloyd iterations at most (default 20). */
  maxIterations?: number;
  /** Stop when (previous - current) / previous inertia falls below this (default 1e-4). */
  tolerance?: number;
  /** Initial centroids f32[k * d] instead of an initialisation (warm start, e.g. OPQ rounds). */
  initialCentroids?: Float32Array;
  /** Called after the initialisation and each iteration with the fraction done in [0, 1]. */
  onProgress?: (fractionDone: number) => void;
}

export interface KMeansResult {
  /** f32[k * d], row c is centroid c. */
  centroids: Float32Array;
  /** u32[n], the centroid of each point after the last assignment. */
  assignments: Uint32Array;
  /** Sum of squared distances of the points to their centroids (last assignment). */
  inertia: number;
  /** Lloyd iterations run. */
  iterations: number;
  /** Empty clusters repaired over the run. */
  emptyRepairs: number;
}

/**
 * Kernel work (multiply-adds) between the points where a long clustering may let other work run:
 * about 2^27, some tens of milliseconds in the WASM kernels.
 */
const STEP_WORK = 1 << 27;

/**
 * Clusters n points data: f32[n * d] into k clusters on `kernels`.
 * TRAINING_FAILED when n < k (each centroid needs a point) or the data holds NaN/Infinity;
 * INVALID_ARGUMENT on bad shapes or options.
 */
export function kmeans(kernels: Kernels, data: Float32Array, n: number, d: number, k: number, options: KMeansOptions = {}): KMeansResult {
  const steps = kmeansSteps(kernels, data, n, d, k, options);
  try {
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  } finally {
    steps.return(undefined as never);
  }
}

/**
 * kmeans, awaiting `pause()` after every STEP_WORK multiply-adds of kernel work (the assignment
 * runs in blocks of points, k-means++ in groups of centres), so that training a large coarse
 * quantizer (an IVF segment: 65,536 points x 2,334 lists x 100 dimensions is some 15 billion
 * multiply-adds per iteration) never holds the event loop for more than a block. Same results
 * as kmeans (the blocks are independent).
 */
export async function kmeansAsync(kernels: Kernels, data: Float32Array, n: number, d: number, k: number, options: KMeansOptions & { pause: () => Promise<void> }): Promise<KMeansResult> {
  const steps = kmeansSteps(kernels, data, n, d, k, options);
  try {
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      await options.pause();
    }
  } finally {
    steps.return(undefined as never);
  }
}

/**
 * The clustering as a generator that yields where it may pause (after about STEP_WORK
 * multiply-adds; kernel memory views are taken afresh after each yield), for callers that drive
 * a longer training made of several clusterings (PQ codebooks): `yield* kmeansSteps(...)`.
 */
export function* kmeansSteps(kernels: Kernels, data: Float32Array, n: number, d: number, k: number, options: KMeansOptions): Generator<void, KMeansResult, void> {
  for (const [name, v] of [['n', n], ['d', d], ['k', k]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new QuiverError('INVALID_ARGUMENT', `kmeans: ${name} must be a positive integer, got ${v}`, { name, expected: 'integer >= 1', received: v });
  }
  if (!(data instanceof Float32Array) || data.length < n * d) {
    throw new QuiverError('DIMENSION_MISMATCH', `kmeans: ${n} points of dimension ${d} need ${n * d} floats`, { expected: n * d, received: data instanceof Float32Array ? data.length : typeof data });
  }
  if (n < k) throw new QuiverError('TRAINING_FAILED', `kmeans: ${k} clusters need at least ${k} points, got ${n}`, { expected: k, received: n });
  for (let i = 0; i < n * d; i++) {
    if (!Number.isFinite(data[i])) {
      throw new QuiverError('TRAINING_FAILED', `kmeans: point ${Math.floor(i / d)} has a non-finite value at dimension ${i % d}`, { row: Math.floor(i / d), column: i % d, received: data[i] });
    }
  }
  const maxIterations = options.maxIterations ?? 20;
  const tolerance = options.tolerance ?? 1e-4;
  if (!Number.isInteger(maxIterations) || maxIterations < 0) {
    throw new QuiverError('INVALID_ARGUMENT', `kmeans: maxIterations must be an integer >= 0, got ${maxIterations}`, { name: 'maxIterations', received: maxIterations });
  }
  const init = options.init ?? 'kmeans++';
  if (init !== 'kmeans++' && init !== 'random') {
    throw new QuiverError('INVALID_ARGUMENT', `kmeans: init must be 'kmeans++' or 'random', got ${String(init)}`, { name: 'init', expected: ['kmeans++', 'random'], received: init });
  }
  const mem = kernels.memory;
  const ptrs: number[] = [];
  const alloc = (bytes: number): number => { const p = mem.alloc(bytes); ptrs.push(p); return p; };
  try {
    const pointsPtr = alloc(n * d * 4);
    mem.f32(pointsPtr, n * d).set(data.subarray(0, n * d));
    const rng = new Rng(options.seed ?? 1);
    let centroids: Float32Array;
    if (options.initialCentroids) {
      if (!(options.initialCentroids instanceof Float32Array) || options.initialCentroids.length !== k * d) {
        throw new QuiverError('INVALID_ARGUMENT', `kmeans: initialCentroids must be f32[${k * d}]`, { expected: k * d, received: options.initialCentroids?.length });
      }
      centroids = Float32Array.from(options.initialCentroids);
    } else if (init === 'random') {
      centroids = new Float32Array(k * d);
      const pick = rng.sample(n, k);
      for (let c = 0; c < k; c++) centroids.set(data.subarray(pick[c] * d, pick[c] * d + d), c * d);
    } else {
      centroids = yield* kmeansPlusPlus(kernels, pointsPtr, data, n, d, k, rng, alloc);
    }
    options.onProgress?.(maxIterations === 0 ? 1 : 0);

    const centT = alloc(k * d * 4), halfNorms = alloc(k * 4), idsPtr = alloc(n * 4), distPtr = alloc(n * 4);
    const assignments = new Uint32Array(n);
    const sums = new Float64Array(k * d);
    const counts = new Uint32Array(k);
    let inertia = Infinity, iterations = 0, emptyRepairs = 0;
    // points per nearestCentroids call: about STEP_WORK multiply-adds each; a pause once that much
    // work has been done since the last one (so small assignments pause every few iterations)
    const block = Math.max(1, Math.floor(STEP_WORK / (k * d)));
    let work = 0;
    const assign = function* (): Generator<void, number, void> {
      const ct = mem.f32(centT, k * d), hn = mem.f32(halfNorms, k);
      for (let c = 0; c < k; c++) {
        let s = 0;
        for (let j = 0; j < d; j++) { const v = centroids[c * d + j]; ct[j * k + c] = v; s += v * v; }
        hn[c] = s / 2;
      }
      for (let a = 0; a < n; a += block) {
        const m = Math.min(block, n - a);
        kernels.nearestCentroids(pointsPtr + a * d * 4, m, d, centT, k, halfNorms, idsPtr + a * 4, distPtr + a * 4);
        work += m * k * d;
        if (work >= STEP_WORK) { work = 0; yield; }
      }
      const dists = mem.f32(distPtr, n);
      let total = 0;
      for (let i = 0; i < n; i++) total += dists[i];
      return total;
    };
    for (let it = 0; it < maxIterations; it++) {
      const current = yield* assign();
      const ids = mem.u32(idsPtr, n);
      let changed = it === 0 ? n : 0;
      for (let i = 0; i < n; i++) if (assignments[i] !== ids[i]) { changed++; assignments[i] = ids[i]; }
      iterations = it + 1;
      const improved = inertia === Infinity ? Infinity : (inertia - current) / Math.max(inertia, 1e-300);
      inertia = current;
      if (changed === 0 || improved < tolerance) { options.onProgress?.(1); break; }
      // update: means of the assigned points
      sums.fill(0);
      counts.fill(0);
      for (let i = 0; i < n; i++) {
        const c = assignments[i], o = i * d, so = c * d;
        counts[c]++;
        for (let j = 0; j < d; j++) sums[so + j] += data[o + j];
      }
      emptyRepairs += repairEmpty(data, d, k, assignments, mem.f32(distPtr, n), sums, counts);
      for (let c = 0; c < k; c++) {
        const inv = 1 / counts[c];
        for (let j = 0; j < d; j++) centroids[c * d + j] = sums[c * d + j] * inv;
      }
      options.onProgress?.(iterations / maxIterations);
    }
    // final assignment against the final centroids
    inertia = yield* assign();
    assignments.set(mem.u32(idsPtr, n));
    return { centroids, assignments, inertia, iterations, emptyRepairs };
  } finally {
    for (const p of ptrs) mem.release(p);
  }
}

/** k-means++ seeding; distances to the newest centre come from the l2Many kernel. */
function* kmeansPlusPlus(kernels: Kernels, pointsPtr: number, data: Float32Array, n: number, d: number, k: number, rng: Rng, alloc: (bytes: number) => number): Generator<void, Float32Array, void> {
  const mem = kernels.memory;
  const centroids = new Float32Array(k * d);
  const nearest = new Float64Array(n).fill(Infinity);
  const centrePtr = alloc(d * 4), distPtr = alloc(n * 4);
  let pick = rng.int(n), work = 0;
  for (let c = 0; c < k; c++) {
    centroids.set(data.subarray(pick * d, pick * d + d), c * d);
    if (c === k - 1) break;
    work += n * d;
    if (work >= STEP_WORK) { work = 0; yield; }
    mem.f32(centrePtr, d).set(data.subarray(pick * d, pick * d + d));
    kernels.l2Many(centrePtr, pointsPtr, n, d, distPtr);
    const dist = mem.f32(distPtr, n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      if (dist[i] < nearest[i]) nearest[i] = dist[i];
      total += nearest[i];
    }
    if (total <= 0) {
      // every point coincides with a chosen centre: take the next unchosen point in order
      pick = (pick + 1) % n;
      continue;
    }
    let target = rng.next() * total;
    pick = n - 1;
    for (let i = 0; i < n; i++) {
      target -= nearest[i];
      if (target < 0) { pick = i; break; }
    }
  }
  return centroids;
}

/**
 * Gives every empty cluster the point farthest from every centre (among clusters of two or more
 * points), updating sums and counts. dists: the points' squared distances to their centres.
 * Returns the number of clusters repaired.
 */
function repairEmpty(data: Float32Array, d: number, k: number, assignments: Uint32Array, dists: Float32Array, sums: Float64Array, counts: Uint32Array): number {
  let repaired = 0;
  let gap: Float64Array | null = null;
  for (let e = 0; e < k; e++) {
    if (counts[e] !== 0) continue;
    // farthest-first: after each repair the new centre also serves its neighbourhood, so the
    // next empty cluster goes to another badly served region rather than the same one
    gap ??= Float64Array.from(dists);
    let far = -1, farDist = -1;
    for (let i = 0; i < assignments.length; i++) {
      if (counts[assignments[i]] >= 2 && gap[i] > farDist) { farDist = gap[i]; far = i; }
    }
    if (far < 0) break; // cannot happen when n >= k; keep the centre rather than fail
    const from = assignments[far], o = far * d;
    for (let j = 0; j < d; j++) { sums[from * d + j] -= data[o + j]; sums[e * d + j] = data[o + j]; }
    counts[from]--;
    counts[e] = 1;
    assignments[far] = e;
    for (let i = 0; i < assignments.length; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) { const t = data[i * d + j] - data[o + j]; s += t * t; }
      if (s < gap[i]) gap[i] = s;
    }
    repaired++;
  }
  return repaired;
}
