import { QuiverError } from '../errors.js';
import type { Metric } from '../collection/validate.js';
import type { Kernels } from '../kernels/types.js';
import { Rng } from '../math/rng.js';
import { SECTION, type SegmentFile, type SegmentWriter } from '../storage/segment-file.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { bitsetWords, setBit } from '../util/bitset.js';
import { drainHeaps } from './flat.js';
import { newCounters, type ExactScorer, type IndexSearchParams, type VectorIndex } from './types.js';

/**
 * Recall targets: `search(q, { recall: 0.95 })` instead of ef / nprobe / rerank knobs.
 *
 * When an approximate index is built (seal or merge), it measures itself: `SAMPLE_QUERIES` of its
 * own rows (seeded) are searched with every setting of a ladder (ef or nprobe x rerank depth)
 * against the exact top-k of the other rows (the sample rows are excluded from both, so a
 * query never finds itself). Each setting's mean recall@k and cost (codes scored plus
 * RERANK_COST per vector reranked from the file) is kept in the segment's CALIBRATION section.
 * A search with a recall target takes the cheapest setting whose calibrated recall reaches the
 * target with a margin (TARGET_MARGIN); when none does, the best calibrated one. The sample rows
 * are left out of the index while it is measured (an HNSW graph inserts them last).
 */

/** Sample queries per calibration (standard error of a recall near 0.95: about 0.005). */
export const SAMPLE_QUERIES = 200;
/** k of the calibration; other k scale the chosen ef / candidates (see chooseSetting). */
export const CALIBRATION_K = 10;
/** Cost of reranking one vector, in codes scored: a random read of a full vector from the file (~2 us) against a code scored in memory (~0.1 us). A priori, from those two timings. */
export const RERANK_COST = 16;
/**
 * Safety margin of a recall target, as a fraction of the misses it allows: calibrated recall
 * must reach 1 - (1 - target) * (1 - TARGET_MARGIN), e.g. 0.96 for 0.95 and 0.992 for 0.99
 * (a sample of a few hundred queries estimates recall within about 0.005). A priori.
 */
export const TARGET_MARGIN = 0.2;

export interface CalibrationPoint {
  /** Search parameters of this setting (ef or nprobe, rerankFactor). */
  readonly params: { ef?: number; nprobe?: number; rerankFactor?: number };
  /** Mean recall@CALIBRATION_K over the sample queries. */
  readonly recall: number;
  /** Mean codes scored + RERANK_COST * vectors reranked per query. */
  readonly cost: number;
}

export interface Calibration {
  readonly k: number;
  readonly queries: number;
  readonly points: readonly CalibrationPoint[];
}

/**
 * The setting for a recall target at k results: the cheapest point with recall >= target +
 * TARGET_MARGIN (the best one when none reaches it), its ef / candidate depth scaled by k / 10
 * when k > 10.
 */
export function chooseSetting(cal: Calibration, target: number, k: number): IndexSearchParams {
  let best: CalibrationPoint | null = null, top: CalibrationPoint | null = null;
  const required = 1 - (1 - target) * (1 - TARGET_MARGIN);
  for (const p of cal.points) {
    if (!top || p.recall > top.recall || (p.recall === top.recall && p.cost < top.cost)) top = p;
    if (p.recall >= required && (!best || p.cost < best.cost)) best = p;
  }
  const p = (best ?? top)!.params;
  const scale = Math.max(1, k / cal.k);
  return {
    ...(p.ef !== undefined ? { ef: Math.ceil(p.ef * scale) } : {}),
    ...(p.nprobe !== undefined ? { nprobe: p.nprobe } : {}),
    ...(p.rerankFactor !== undefined ? { rerankFactor: p.rerankFactor } : {}),
  };
}

/** Exact scores of f32 rows in kernel memory (unit for cosine): the truth and reranker of a calibration. */
export class MemoryRows implements ExactScorer {
  constructor(readonly kernels: Kernels, readonly rows: number, readonly count: number, readonly dimension: number, readonly metric: Metric) {}

  scoreOrdinals(query: Float32Array, ords: Uint32Array, n: number, out: Float32Array): void {
    const k = this.kernels, mem = k.memory, d = this.dimension;
    const q = mem.alloc(d * 4), o = mem.alloc(4);
    try {
      mem.f32(q, d).set(query);
      for (let i = 0; i < n; i++) {
        const row = this.rows + ords[i] * d * 4;
        if (this.metric === 'l2') { k.l2Many(q, row, 1, d, o); out[i] = -mem.f32(o, 1)[0]; } else { k.dotMany(q, row, 1, d, o); out[i] = mem.f32(o, 1)[0]; }
      }
    } finally {
      mem.release(q); mem.release(o);
    }
  }
}

/**
 * The calibration sample of a segment of `count` rows: SAMPLE_QUERIES ordinals drawn (seeded)
 * among `candidates` (default: every row), sorted; null when fewer than MIN_SAMPLE can be drawn
 * or the segment has fewer than 4 * SAMPLE_QUERIES rows (an exact fallback is cheap there).
 */
export function calibrationSample(count: number, seed: number, candidates?: Uint32Array): Uint32Array | null {
  const pool = candidates ?? null;
  const n = pool ? pool.length : count;
  if (count < 4 * SAMPLE_QUERIES || n < MIN_SAMPLE) return null;
  const picks = new Rng(seed ^ 0x5eed).sample(n, Math.min(SAMPLE_QUERIES, n));
  const out = pool ? picks.map((i) => pool[i]) : picks;
  return out.sort();
}

/** Sample queries searched per call while calibrating (between yields to the event loop). */
const CALIBRATION_BATCH = 25;

/** Fewest sample queries worth a calibration. */
export const MIN_SAMPLE = 50;

/**
 * Measures `index` (over `rows`, f32 in kernel memory) for each setting, with `sample` rows as
 * queries. The index must not contain the sample rows (an HNSW graph built without them: a
 * query that sits in the graph finds its neighbours through its own links, which overstates
 * recall); they are excluded from results and from the exact truth alike.
 */
export async function calibrate(index: VectorIndex, rows: MemoryRows, sample: Uint32Array, settings: readonly CalibrationPoint['params'][], pause: () => Promise<void>, progress?: (done: number, total: number) => void): Promise<Calibration> {
  const n = rows.count, d = rows.dimension, k = CALIBRATION_K;
  const nq = sample.length;
  const excluded = new Uint32Array(bitsetWords(n));
  for (const s of sample) setBit(excluded, s);
  const mem = rows.kernels.memory;
  const queries = new Float32Array(nq * d);
  sample.forEach((s, i) => queries.set(mem.f32(rows.rows + s * d * 4, d), i * d));
  // exact truth: one scan of every row per query, the sample rows masked out
  const truth: Set<number>[] = [];
  const scores = mem.alloc(n * 4), q = mem.alloc(d * 4), hk = mem.alloc(k * 4), hi = mem.alloc(k * 4);
  try {
    for (let i = 0; i < nq; i++) {
      mem.f32(q, d).set(queries.subarray(i * d, (i + 1) * d));
      if (rows.metric === 'l2') { rows.kernels.l2Many(q, rows.rows, n, d, scores); rows.kernels.affineInPlace(scores, n, -1, 0); } else rows.kernels.dotMany(q, rows.rows, n, d, scores);
      const f = mem.f32(scores, n);
      for (const s of sample) f[s] = NaN;
      const size = rows.kernels.topkPush(scores, n, 0, 1, hk, hi, k, 0);
      const top = drainHeaps(mem.f32(hk, size).slice(), mem.u32(hi, size).slice(), Int32Array.of(size), 1, size);
      truth.push(new Set(top.ords.subarray(0, top.counts[0])));
      if (i % 16 === 15) { progress?.(i + 1, nq + settings.length); await pause(); }
    }
  } finally {
    mem.release(scores); mem.release(q); mem.release(hk); mem.release(hi);
  }
  const points: CalibrationPoint[] = [];
  for (const params of settings) {
    let found = 0, cost = 0;
    // a few queries per call, with a yield between: a wide setting must not stall writes and searches
    for (let first = 0; first < nq; first += CALIBRATION_BATCH) {
      const m = Math.min(CALIBRATION_BATCH, nq - first);
      const counters = newCounters(m);
      const res = index.search({ queries: queries.subarray(first * d, (first + m) * d), nq: m, k, excluded, params, counters });
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < res.counts[i]; j++) if (truth[first + i].has(res.ords[i * res.k + j])) found++;
        cost += counters.scanned[i] + RERANK_COST * counters.reranked[i];
      }
      await pause();
    }
    points.push({ params, recall: found / (nq * k), cost: cost / nq });
    progress?.(nq + points.length, nq + settings.length);
  }
  return { k, queries: nq, points };
}

/**
 * The CALIBRATION section. Layout (little-endian), version 1:
 *   u32 version (1), u32 k, u32 sample queries, u32 point count P,
 *   P x { u32 ef (0 = unset), u32 nprobe (0 = unset), u32 rerankFactor (0 = unset), f32 recall, f32 cost }
 */
export const CALIBRATION_VERSION = 1;

export async function writeCalibrationSection(w: SegmentWriter, cal: Calibration): Promise<void> {
  const b = new ByteWriter(16 + cal.points.length * 20).u32(CALIBRATION_VERSION).u32(cal.k).u32(cal.queries).u32(cal.points.length);
  for (const p of cal.points) b.u32(p.params.ef ?? 0).u32(p.params.nprobe ?? 0).u32(p.params.rerankFactor ?? 0).f32(p.recall).f32(p.cost);
  await w.section(SECTION.CALIBRATION, [b.finish().slice()]);
}

/** The segment's calibration, or null when it has none (small segments, exact indexes). */
export function readCalibrationSection(file: SegmentFile, where: string): Calibration | null {
  if (!file.has(SECTION.CALIBRATION)) return null;
  const bytes = file.read(SECTION.CALIBRATION);
  const r = new ByteReader(bytes, where);
  const version = r.u32('calibration version');
  if (version !== CALIBRATION_VERSION) throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: calibration section version ${version} is not supported (read: ${CALIBRATION_VERSION})`, { file: where, expected: CALIBRATION_VERSION, received: version });
  const k = r.u32('k'), queries = r.u32('queries'), count = r.u32('points');
  if (r.remaining !== count * 20) r.fail(`calibration section holds ${r.remaining} bytes for ${count} points`);
  const points: CalibrationPoint[] = [];
  for (let i = 0; i < count; i++) {
    const ef = r.u32('ef'), nprobe = r.u32('nprobe'), factor = r.u32('rerank'), recall = r.f32('recall'), cost = r.f32('cost');
    if (!(recall >= 0 && recall <= 1) || !(cost >= 0)) r.fail(`calibration point ${i} is invalid (recall ${recall}, cost ${cost})`);
    points.push({ params: { ...(ef ? { ef } : {}), ...(nprobe ? { nprobe } : {}), ...(factor ? { rerankFactor: factor } : {}) }, recall, cost });
  }
  if (k < 1 || points.length === 0) r.fail('calibration section is empty');
  return { k, queries, points };
}
