import type { Metric } from '../collection/validate.js';
import type { Kernels } from '../kernels/types.js';
import type { GraphBuildThreads } from './build-threads.js';
import { createQuantizer } from '../quant/registry.js';
import { trainQuantizer, type Quantizer } from '../quant/types.js';
import { SECTION, type SegmentFile, type SegmentWriter } from '../storage/segment-file.js';
import { crc32c } from '../util/crc32c.js';
import { readCodesSection, writeCodesSection } from './codes-section.js';
import { FlatIndex } from './flat.js';
import { quantizerSpecOf, rerankRule, type IndexSpec } from './spec.js';
import type { ExactScorer, VectorIndex } from './types.js';
import { VectorStore } from './vector-store.js';
import { transientBytes } from '../util/transient.js';
import { loadGraphIndex, planGraphIndex, type GraphDonor } from './hnsw-segment.js';
import { loadIvfIndex, planIvfIndex, type IvfDonor } from './ivf-segment.js';

/**
 * Which VectorIndex a segment gets, how it is written at seal/merge, and how it is loaded at open.
 * Each index owns its sections: FlatIndex reads the segment's VECTORS into kernel memory;
 * FlatQuantizedIndex writes and reads CODES (codes-section.ts) and reranks from the file.
 * The graph and IVF indexes join here with their own sections.
 */

/** Most training vectors a segment's quantizer sees (rows sampled with a fixed stride). */
export const MAX_TRAINING_SAMPLE = 16384;
/** Default: segments smaller than this stay exact (a full scan of them is cheap). */
export const MIN_QUANTIZED_ROWS = 256;

/** Reports progress of a long index build: phase, units done, units in all; threads building ('graph'). */
export type IndexProgress = (phase: 'graph' | 'calibration', done: number, total: number, threads?: number) => void;

/** What a segment writer must do for the index: collect a training sample, then write sections. */
export interface IndexPlan {
  /** Rows whose ordinal is a multiple of this go into the training sample (unit for cosine). */
  readonly sampleStride: number;
  readonly sampleRows: number;
  /** Rows whose index structure is taken over from a merge input instead of built (graph reuse). */
  readonly reusedRows?: number;
  /**
   * Trains on `sample` (f32[sampleRows * dimension]) and writes the index's sections from a
   * second pass over the rows (`chunks`: raw f32 rows in ordinal order; norms: f32[count]).
   */
  write(w: SegmentWriter, sample: Float32Array, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, norms: Float32Array, progress?: IndexProgress): Promise<void>;
}

/**
 * The plan for a segment of `count` rows: null when it stays exact (Flat spec, or fewer rows than
 * `minRows` or the quantizer needs). `kernels` are scratch kernels for training and encoding
 * (the written codes are loaded later into the segment's own memory); `threads` build large
 * graphs (build-threads.ts).
 */
/** What a merge hands over from its largest input: its graph, or its IVF partition and quantizer. */
export type IndexDonor = ({ kind: 'graph' } & GraphDonor) | ({ kind: 'ivf' } & IvfDonor);

export function planIndex(spec: IndexSpec, dimension: number, metric: Metric, count: number, minRows: number, seed: number, kernels: Kernels, donor?: IndexDonor, threads: GraphBuildThreads | null = null): IndexPlan | null {
  if (spec.index === 'HNSW') return planGraphIndex(spec, dimension, metric, count, minRows, seed, kernels, donor?.kind === 'graph' ? donor : undefined, threads);
  if (spec.index === 'IVF') return planIvfIndex(spec, dimension, metric, count, minRows, seed, kernels, donor?.kind === 'ivf' ? donor : undefined);
  const quantSpec = quantizerSpecOf(spec);
  if (!quantSpec) return null;
  const q: Quantizer = createQuantizer(quantSpec, { dimension, metric: metric === 'l2' ? 'l2' : 'dot', kernels });
  if (count < Math.max(minRows, q.minTrainingVectors)) return null;
  const stride = Math.max(1, Math.ceil(count / MAX_TRAINING_SAMPLE));
  const sampleRows = Math.ceil(count / stride);
  return {
    sampleStride: stride,
    sampleRows,
    async write(w, sample, chunks, norms) {
      // PQ codebooks (a k-means per subspace) take seconds: trained in slices between event-loop turns
      await trainQuantizer(q, sample, sampleRows, { seed }, () => new Promise<void>((resolve) => setTimeout(resolve, 0)));
      await writeCodesSection(w, q, count, chunks, (rows, first, n) => {
        if (metric === 'cosine') for (let i = 0; i < n; i++) scaleRow(rows, i * dimension, dimension, norms[first + i]);
      });
    },
  };
}

/** Divides row [at, at + d) by `norm` (unit vectors for cosine); a zero norm leaves zeros. */
export function scaleRow(v: Float32Array, at: number, d: number, norm: number): void {
  const inv = norm > 0 ? 1 / norm : 0;
  for (let j = 0; j < d; j++) v[at + j] *= inv;
}

export interface IndexLoadContext {
  spec: IndexSpec;
  /** The segment's own kernels: its index memory lives and dies with the segment. */
  kernels: Kernels;
  dimension: number;
  metric: Metric;
  /** f32[count]: each row's L2 norm (NORMS section). */
  norms: Float32Array;
  /** Exact scores from the segment's file, for reranking. */
  exact: ExactScorer;
  /** Yields to the event loop (between ~4 MiB pieces of a long load). */
  pause: () => Promise<void>;
}

/**
 * Loads a segment's index. The VECTORS section is read once either way, checksummed: into kernel
 * memory for the exact index, or only checked for a compressed one (reranking trusts the file's
 * vectors, so they are checked once here), in ~4 MiB pieces with a pause between them so that
 * loading a big segment in the background does not stall writes and searches.
 */
export async function loadIndex(file: SegmentFile, where: string, ctx: IndexLoadContext): Promise<VectorIndex> {
  if (file.has(SECTION.GRAPH)) return loadGraphIndex(file, where, ctx);
  if (file.has(SECTION.IVF)) return loadIvfIndex(file, where, ctx);
  const { kernels, dimension: d } = ctx;
  const count = file.header.count;
  let store: VectorStore | null = null;
  let index: VectorIndex | null = null;
  try {
    if (file.has(SECTION.CODES)) {
      const q = readCodesSection(file, where, count, kernels);
      index = q;
      q.setRerank(rerankRule(ctx.spec, q.quantizer.bounded), ctx.exact);
    } else {
      const defaultRows = new VectorStore(kernels, d, false).chunkRows;
      // sized to the segment: a small segment must not hold a default 4 MiB chunk
      store = new VectorStore(kernels, d, ctx.metric === 'cosine', Math.max(16, Math.min(defaultRows, Math.ceil(count / 16) * 16)));
    }
    if (store) {
      await readVectorsSection(file, ctx, (piece, first, rows) => {
        let used = 0; // appendFilled may fill across a chunk boundary in two calls
        store!.appendFilled(rows, (dest) => { dest.set(piece.subarray(used, used + dest.length)); used += dest.length; }, ctx.norms.subarray(first, first + rows));
      });
    } else {
      await readVectorsSection(file, ctx);
    }
    return index ?? new FlatIndex(store!, ctx.metric);
  } catch (e) {
    store?.clear();
    index?.release();
    throw e;
  }
}

/**
 * Reads the VECTORS section in ~4 MiB pieces (whole rows), verifying its checksum at the end and
 * pausing between pieces. `sink(piece, firstRow, rows)` receives each piece (raw f32 rows as bytes;
 * the buffer is reused, copy what you keep); without a sink the section is only checked (indexes
 * that rerank from the file trust its vectors after this one check).
 */
export async function readVectorsSection(file: SegmentFile, ctx: Pick<IndexLoadContext, 'dimension' | 'pause'>, sink?: (piece: Uint8Array, firstRow: number, rows: number) => void): Promise<void> {
  const d = ctx.dimension, count = file.header.count;
  const vec = file.section(SECTION.VECTORS);
  const step = Math.max(1, Math.floor((4 << 20) / (d * 4)));
  const scratch = transientBytes(Math.min(Math.max(count, 1), step) * d * 4);
  let at = vec.offset, crc = 0;
  for (let row = 0; row < count; row += step) {
    const take = Math.min(step, count - row);
    const piece = scratch.subarray(0, take * d * 4);
    file.file.readInto(at, piece);
    crc = crc32c(piece, crc);
    at += piece.length;
    sink?.(piece, row, take);
    if (row + take < count) await ctx.pause();
  }
  file.checkCrc(SECTION.VECTORS, crc);
}
