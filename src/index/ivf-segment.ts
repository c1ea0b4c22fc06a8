import type { Metric } from '../collection/validate.js';
import type { Kernels } from '../kernels/types.js';
import { kmeansAsync } from '../math/kmeans.js';
import { createQuantizer, deserializeQuantizer } from '../quant/registry.js';
import { trainQuantizer, type Quantizer } from '../quant/types.js';
import type { SegmentFile } from '../storage/segment-file.js';
import { transientBytes, transientFloats } from '../util/transient.js';
import { IvfIndex, type IvfLists } from './ivf.js';
import { calibrate, calibrationSample, MemoryRows, readCalibrationSection, writeCalibrationSection, type Calibration } from './calibration.js';
import { readIvfSection, writeIvfSection } from './ivf-section.js';
import { MAX_TRAINING_SAMPLE, readVectorsSection, scaleRow, type IndexLoadContext, type IndexPlan, type IndexProgress } from './segment-index.js';
import { IVF_NLIST_RANGE, quantizerSpecOf, rerankRule, type IndexSpec } from './spec.js';
import type { VectorIndex } from './types.js';

/**
 * The IVF index of a segment: planned at seal/merge (k-means on the writer's sample, then a
 * second pass over the rows assigns and encodes them), loaded at open from the IVF section
 * (ivf-section.ts) without retraining. A merge plans afresh on the merged rows (new centroids,
 * new quantizer): nothing is carried over from the sources.
 *
 * A-priori rules (none tuned on queries):
 * - nlist, when the spec leaves it out ('IVF'): round(4 sqrt(rows)), clamped to [1, rows / 32],
 *   i.e. lists of at least 32 rows on average (4 sqrt(n) keeps the centroid scan and the list scan
 *   of a query of the same order at nprobe ~ sqrt(nlist)). An explicit nlist ('IVF1024') is kept
 *   up to rows / 8: a segment too small for it gets fewer lists (description() says how many).
 * - k-means: 10 Lloyd iterations (k-means++ init) on up to clamp(32 nlist, 16384, 65536) rows
 *   sampled with a fixed stride (at least 2 nlist), squared L2; for cosine the centroids are then
 *   normalised (spherical assignment).
 * - assignment: each row goes to its nearest centroid by the collection metric (dot for cosine
 *   and dot, squared L2 for l2: the same rule the query uses to pick lists), one nearestCentroids
 *   kernel call per block of rows. A cap keeps lists from growing wildly unequal: a list holds at
 *   most ceil(4 rows / nlist) rows, and a row whose nearest list is full goes to the nearest list
 *   with room (rows are taken in ordinal order). On SIFT10K with k-means centroids the cap binds
 *   rarely (the largest list is ~4.4x the mean at nlist = 312); it is a guard against
 *   degenerate partitions (duplicates, dot-product centroids of large norm), not a balancer.
 * - the quantizer (if any) trains on at most MAX_TRAINING_SAMPLE rows of the same sample and
 *   encodes raw vectors (unit for cosine), not residuals, so codes do not depend on the list.
 */

/** Lists per segment when the spec gives none: lists average at least this many rows. */
export const IVF_AUTO_MIN_ROWS_PER_LIST = 32;
/** An explicit nlist is lowered so that lists average at least this many rows. */
export const IVF_MIN_ROWS_PER_LIST = 8;
/** Lloyd iterations of the coarse k-means. */
export const IVF_KMEANS_ITERATIONS = 10;
/** Largest coarse training sample. */
export const IVF_MAX_KMEANS_SAMPLE = 65536;
/** A list holds at most this many times the mean list size. */
export const IVF_LIST_CAP = 4;
/** Most rows assigned per nearestCentroids call when writing. */
const ASSIGN_BATCH = 4096;
/** Kernel work (multiply-adds) per assignment call, so that each lasts some tens of milliseconds. */
const ASSIGN_WORK = 1 << 27;

/** The number of lists of a segment of `rows` rows: `nlist` from the spec (null = automatic), see the rules above. */
export function ivfListCount(nlist: number | null | undefined, rows: number): number {
  if (nlist == null) return Math.max(1, Math.min(Math.round(4 * Math.sqrt(rows)), Math.floor(rows / IVF_AUTO_MIN_ROWS_PER_LIST), IVF_NLIST_RANGE[1]));
  return Math.max(1, Math.min(nlist, Math.floor(rows / IVF_MIN_ROWS_PER_LIST)));
}

/** IVF index: the plan for a segment of `count` rows, null when it stays exact (fewer than minRows rows, or than the quantizer needs). */
/**
 * A merge's IVF donor: the index of its largest input, whose rows are the first `donorRows` of the
 * merged segment. Its centroids and quantizer are kept unless the other rows drifted from them
 * (IVF_DRIFT_RATIO); `onReuse` is called when they are kept.
 */
export interface IvfDonor {
  index: IvfIndex;
  donorRows: number;
  onReuse?: () => void;
}

/**
 * A merge retrains when the rows from the other inputs sit this much farther from their nearest
 * donor centroid, on average, than the donor's own rows do (mean squared distance). A priori.
 */
export const IVF_DRIFT_RATIO = 1.25;
/** Fewer new rows than this never trigger retraining (their mean is noise; their weight is small). */
const IVF_DRIFT_MIN_ROWS = 256;

export function planIvfIndex(spec: IndexSpec, dimension: number, metric: Metric, count: number, minRows: number, seed: number, kernels: Kernels, donor?: IvfDonor): IndexPlan | null {
  const quantSpec = quantizerSpecOf(spec);
  const q: Quantizer | null = quantSpec ? createQuantizer(quantSpec, { dimension, metric: metric === 'l2' ? 'l2' : 'dot', kernels }) : null;
  if (count < Math.max(1, minRows, q?.minTrainingVectors ?? 0)) return null;
  const nlist = ivfListCount(spec.nlist, count);
  const target = Math.min(count, Math.max(MAX_TRAINING_SAMPLE, Math.min(32 * nlist, IVF_MAX_KMEANS_SAMPLE), 2 * nlist));
  const stride = Math.max(1, Math.ceil(count / target));
  const sampleRows = Math.ceil(count / stride);
  const d = dimension;
  const train = async (sample: Float32Array) => {
    const n = Math.floor(sample.length / d);
    const lists = Math.min(nlist, n);
    // seconds of kernel work on a large segment: between blocks of it, timers and I/O run (searches, writes, health checks)
    const centroids = (await kmeansAsync(kernels, sample, n, d, lists, { seed, maxIterations: IVF_KMEANS_ITERATIONS, pause: nextTurn })).centroids;
    if (metric === 'cosine') {
      for (let c = 0; c < lists; c++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += centroids[c * d + j] ** 2;
        scaleRow(centroids, c * d, d, Math.sqrt(s));
      }
    }
    if (q) {
      // the quantizer sees at most MAX_TRAINING_SAMPLE rows of the coarse sample
      const step = Math.ceil(n / MAX_TRAINING_SAMPLE), m = Math.ceil(n / step);
      const sub = step === 1 ? sample.subarray(0, n * d) : new Float32Array(m * d);
      if (step > 1) for (let i = 0; i < m; i++) sub.set(sample.subarray(i * step * d, (i * step + 1) * d), i * d);
      await trainQuantizer(q, sub, m, { seed }, nextTurn);
    }
    return { centroids, lists };
  };
  return {
    sampleStride: stride,
    sampleRows,
    async write(w, sample, chunks, norms, progress) {
      // every unit row stays in scratch kernel memory for the calibration (truth and reranking)
      const allRows = kernels.memory.alloc(Math.max(4, count * d * 4));
      try {
        let built: { centroids: Float32Array; lists: number; quantizer: Quantizer | null; list: Uint32Array; codes: Uint8Array | null } | null = null;
        if (donor && donor.index.dimension === d) {
          // a merge: the largest input's partition and quantizer, kept unless the other rows drifted
          const centroids = donor.index.centroids(), lists = donor.index.nlist;
          const dq = donor.index.quantizer ? deserializeQuantizer(donor.index.quantizer.serialize(), kernels, 'merge donor') : null;
          const { list, codes } = await assignAndEncode(kernels, metric, d, count, centroids, lists, dq, chunks, norms, allRows);
          if (!drifted(kernels, allRows, d, count, donor.donorRows, centroids, list)) {
            donor.onReuse?.();
            built = { centroids, lists, quantizer: dq, list, codes };
          } else {
            // retrain on the rows already in memory (unit for cosine)
            chunks = rowChunks(kernels, allRows, count, d);
            norms = new Float32Array(count).fill(1);
          }
        }
        if (!built) {
          const { centroids, lists } = await train(sample);
          const { list, codes } = await assignAndEncode(kernels, metric, d, count, centroids, lists, q, chunks, norms, allRows);
          built = { centroids, lists, quantizer: q, list, codes };
        }
        const { centroids, lists, quantizer, list, codes } = built;
        // group by list; ordinals ascending within a list (a counting sort in ordinal order)
        const starts = new Uint32Array(lists + 1);
        for (let i = 0; i < count; i++) starts[list[i] + 1]++;
        for (let l = 0; l < lists; l++) starts[l + 1] += starts[l];
        const fill = starts.slice(0, lists);
        const ords = new Uint32Array(count);
        for (let i = 0; i < count; i++) ords[fill[list[i]]++] = i;
        await writeIvfSection(w, d, { nlist: lists, centroids, starts, ords }, quantizer ? { quantizer, rows: codes! } : null);
        const cal = await calibrateIvf(kernels, d, metric, count, { nlist: lists, centroids, starts, ords }, quantizer, codes, allRows, spec, seed, progress);
        if (cal) await writeCalibrationSection(w, cal);
      } finally {
        kernels.memory.release(allRows);
      }
    },
  };
}

/**
 * Whether rows [donorRows, count) sit more than IVF_DRIFT_RATIO times farther (mean squared L2
 * distance to their list's centroid) than rows [0, donorRows). rows: f32[count * d] in kernel memory.
 */
function drifted(kernels: Kernels, rows: number, d: number, count: number, donorRows: number, centroids: Float32Array, list: Uint32Array): boolean {
  if (count - donorRows < IVF_DRIFT_MIN_ROWS || donorRows === 0) return false;
  const f = kernels.memory.f32(rows, count * d);
  const err = (from: number, to: number) => {
    let s = 0;
    for (let i = from; i < to; i++) {
      const c = list[i] * d, r = i * d;
      for (let j = 0; j < d; j++) { const t = f[r + j] - centroids[c + j]; s += t * t; }
    }
    return s / Math.max(1, to - from);
  };
  return err(donorRows, count) > IVF_DRIFT_RATIO * err(0, donorRows);
}

/** The rows at `rows` (f32[count * d] in kernel memory) as byte chunks of ~4 MiB (copies). */
function* rowChunks(kernels: Kernels, rows: number, count: number, d: number): Generator<Uint8Array> {
  const per = Math.max(1, Math.floor((4 << 20) / (d * 4)));
  for (let r = 0; r < count; r += per) {
    const n = Math.min(per, count - r);
    yield kernels.memory.u8(rows + r * d * 4, n * d * 4).slice();
  }
}

/**
 * The second pass of a write: the list of every row (u32[count], by ordinal) under the list cap,
 * and, with a quantizer, the row codes by ordinal (u8[count * codeSize]). Rows arrive as raw f32
 * bytes in ordinal order; for cosine they are made unit (norms: f32[count]) before assignment and
 * encoding.
 */
async function assignAndEncode(
  kernels: Kernels, metric: Metric, d: number, count: number, centroids: Float32Array, nlist: number, q: Quantizer | null,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, norms: Float32Array, allRows: number,
): Promise<{ list: Uint32Array; codes: Uint8Array | null }> {
  const mem = kernels.memory;
  const list = new Uint32Array(count), sizes = new Uint32Array(nlist);
  const cap = Math.max(1, Math.ceil((IVF_LIST_CAP * count) / nlist));
  const codes = q ? transientBytes(count * q.codeSize) : null;
  const ptrs: number[] = [];
  const alloc = (bytes: number): number => { const p = mem.alloc(bytes); ptrs.push(p); return p; };
  try {
    // nearestCentroids maximises <x, c> - halfNorms[c]: |c|^2 / 2 gives L2, zero gives the dot product
    const centT = alloc(nlist * d * 4), halfNorms = alloc(nlist * 4), centRows = alloc(nlist * d * 4);
    {
      const ct = mem.f32(centT, nlist * d), hn = mem.f32(halfNorms, nlist);
      for (let c = 0; c < nlist; c++) {
        let s = 0;
        for (let j = 0; j < d; j++) { const v = centroids[c * d + j]; ct[j * nlist + c] = v; s += v * v; }
        hn[c] = metric === 'l2' ? s / 2 : 0;
      }
      mem.f32(centRows, nlist * d).set(centroids.subarray(0, nlist * d));
    }
    // rows per nearestCentroids call: about ASSIGN_WORK multiply-adds each, between turns of the event loop
    const batch = Math.max(64, Math.min(ASSIGN_BATCH, Math.floor(ASSIGN_WORK / (nlist * d))));
    const points = alloc(batch * d * 4), ids = alloc(batch * 4), dists = alloc(batch * 4), rowScores = alloc(nlist * 4);
    let f = new Float32Array(0);
    let row = 0;
    for await (const chunk of chunks) {
      const n = chunk.length / (d * 4);
      if (f.length < n * d) f = transientFloats(n * d);
      const rows = f.subarray(0, n * d);
      new Uint8Array(rows.buffer, 0, n * d * 4).set(chunk);
      if (metric === 'cosine') for (let i = 0; i < n; i++) scaleRow(rows, i * d, d, norms[row + i]);
      for (let b = 0; b < n; b += batch) {
        const m = Math.min(batch, n - b);
        mem.f32(points, m * d).set(rows.subarray(b * d, (b + m) * d));
        kernels.nearestCentroids(points, m, d, centT, nlist, halfNorms, ids, dists);
        const got = mem.u32(ids, m).slice();
        for (let i = 0; i < m; i++) {
          let l = got[i];
          if (sizes[l] >= cap) l = nearestWithRoom(kernels, metric, points + i * d * 4, centRows, nlist, d, rowScores, sizes, cap);
          list[row + b + i] = l;
          sizes[l]++;
        }
        if (q) q.encode(rows.subarray(b * d, (b + m) * d), m, codes!.subarray((row + b) * q.codeSize, (row + b + m) * q.codeSize));
        // a seal hands over its rows in one chunk: without a turn between batches, assigning 340k rows to 2,334 lists held the event loop for 10 s
        await nextTurn();
      }
      mem.f32(allRows + row * d * 4, n * d).set(rows);
      row += n;
    }
    if (row !== count) throw new Error(`IVF section: assigned ${row} rows, expected ${count}`);
    return { list, codes };
  } finally {
    for (const p of ptrs) mem.release(p);
  }
}

/** The closest list (by the metric) whose size is under `cap`: one kernel call over all centroids for the row at `rowPtr`. */
function nearestWithRoom(kernels: Kernels, metric: Metric, rowPtr: number, centRows: number, nlist: number, d: number, scores: number, sizes: Uint32Array, cap: number): number {
  if (metric === 'l2') kernels.l2Many(rowPtr, centRows, nlist, d, scores);
  else kernels.dotMany(rowPtr, centRows, nlist, d, scores);
  const s = kernels.memory.f32(scores, nlist);
  const sign = metric === 'l2' ? -1 : 1;
  let best = -1, bestKey = -Infinity;
  for (let c = 0; c < nlist; c++) {
    if (sizes[c] >= cap) continue;
    const key = sign * s[c];
    if (key > bestKey || best < 0) { best = c; bestKey = key; }
  }
  return best; // cap * nlist >= count, so some list always has room
}

/** nprobe settings a calibration measures (those up to nlist). */
export const NPROBE_LADDER = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512];
/** Rerank depths (x k) a calibration measures for specs that rerank by oversampling. */
export const IVF_RERANK_LADDER = [1, 2, 4, 8];

/**
 * Measures the freshly built IVF index on sample rows of its own (excluded from results and
 * truth; an IVF scan gains nothing from a query's own row), over NPROBE_LADDER and, for specs
 * that rerank by oversampling, IVF_RERANK_LADDER. Null for segments too small to sample.
 */
async function calibrateIvf(kernels: Kernels, d: number, metric: Metric, count: number, lists: IvfLists, q: Quantizer | null, codes: Uint8Array | null, allRows: number, spec: IndexSpec, seed: number, progress?: IndexProgress): Promise<Calibration | null> {
  const sample = calibrationSample(count, seed);
  if (!sample) return null;
  const index = new IvfIndex(kernels, d, metric, lists, q);
  try {
    const exactRows = new MemoryRows(kernels, allRows, count, d, metric);
    if (q) {
      const cs = q.codeSize;
      const byPos = new Uint8Array(count * cs);
      for (let p = 0; p < count; p++) byPos.set(codes!.subarray(lists.ords[p] * cs, (lists.ords[p] + 1) * cs), p * cs);
      index.setCodeRows(byPos, 0, count);
    } else {
      const u8 = () => kernels.memory.u8(allRows, count * d * 4);
      for (let p = 0; p < count; p++) {
        const o = lists.ords[p];
        // rows are unit for cosine already: norm 1
        index.setVectorRow(p, u8().subarray(o * d * 4, (o + 1) * d * 4), 1);
      }
    }
    const rule = q ? rerankRule(spec, q.bounded) : null;
    if (rule) index.setRerank(rule, exactRows);
    const byFactor = rule !== null && 'factor' in rule;
    const probes = NPROBE_LADDER.filter((p) => p < lists.nlist).concat([lists.nlist]);
    const settings = probes.flatMap((nprobe) => (byFactor ? IVF_RERANK_LADDER.map((rerankFactor) => ({ nprobe, rerankFactor })) : [{ nprobe }]));
    return await calibrate(index, exactRows, sample, settings, nextTurn, progress && ((done, total) => progress('calibration', done, total)));
  } finally {
    index.release();
  }
}

/**
 * Loads a segment's IVF index on the segment's kernels: the IVF section (no retraining), then
 * the VECTORS section, checked, and for an uncompressed index copied into kernel memory in list
 * order. A compressed index reranks with full vectors from the file (ctx.exact) by the spec's rule.
 */
export async function loadIvfIndex(file: SegmentFile, where: string, ctx: IndexLoadContext): Promise<VectorIndex> {
  const index: IvfIndex = readIvfSection(file, where, ctx.kernels, ctx.dimension, ctx.metric);
  try {
    index.calibration = readCalibrationSection(file, where);
    const q = index.quantizer;
    if (q) {
      index.setRerank(rerankRule(ctx.spec, q.bounded), ctx.exact);
      await readVectorsSection(file, ctx);
    } else {
      const d = ctx.dimension, rowBytes = d * 4;
      const posOf = index.positions();
      await readVectorsSection(file, ctx, (piece, first, rows) => {
        for (let i = 0; i < rows; i++) index.setVectorRow(posOf[first + i], piece.subarray(i * rowBytes, (i + 1) * rowBytes), ctx.norms[first + i]);
      });
    }
    return index;
  } catch (e) {
    index.release();
    throw e;
  }
}

/** Resolves on a later turn of the event loop (a timer, so pending I/O and timers run first; browsers and Node alike). */
function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, 0));
}
