import type { Metric } from '../collection/validate.js';
import type { Kernels } from '../kernels/types.js';
import { createQuantizer } from '../quant/registry.js';
import { trainQuantizer, type Quantizer } from '../quant/types.js';
import { SECTION, type SegmentFile } from '../storage/segment-file.js';
import { readCodes, writeCodesSection } from './codes-section.js';
import { MIN_THREADED_INSERTS, type GraphBuildThreads } from './build-threads.js';
import { HnswGraph } from './hnsw-graph.js';
import { readGraphSection, writeGraphSection } from './hnsw-section.js';
import { HnswIndex } from './hnsw.js';
import { calibrate, calibrationSample, MemoryRows, readCalibrationSection, writeCalibrationSection, type Calibration } from './calibration.js';
import { MAX_TRAINING_SAMPLE, readVectorsSection, scaleRow, type IndexLoadContext, type IndexPlan, type IndexProgress } from './segment-index.js';
import { quantizerSpecOf, rerankRule, type IndexSpec } from './spec.js';
import type { RerankRule } from '../query/rerank.js';
import type { VectorIndex } from './types.js';

/**
 * HNSW indexes of sealed segments: built when a segment is written (seal or merge), stored as a
 * GRAPH section (hnsw-section.ts) beside the CODES it is traversed on (graph quantizers) or the
 * segment's VECTORS (full precision), and restored at open without a rebuild.
 *
 * The graph is built on the full-precision rows (unit for cosine) whatever the quantizer, so its
 * links are those of the true neighbourhoods; searches traverse it on the codes.
 */

/** Beam width of insertions unless the spec sets it (HNSW<M>:<efConstruction>): hnswlib's and the peers' usual 200, chosen a priori. */
export const DEFAULT_EF_CONSTRUCTION = 200;
/** ef settings a calibration measures (recall targets choose among them). */
export const EF_LADDER = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512];
/** Rerank depths (x k) a calibration measures for specs that rerank. */
export const RERANK_LADDER = [1, 2, 4, 8];
/** Insertions between yields to the event loop while building (writes and searches run between). */
const INSERT_SLICE_MS = 30;

/**
 * A merge's reusable graph: the HNSW graph of its largest input and where that input's rows
 * land in the merged segment (map[i] = new ordinal of old row i, -1 = dropped; the live rows
 * come first, in order). See HnswGraph.seeded.
 */
export interface GraphDonor {
  graph: HnswGraph;
  map: Int32Array;
  /** The donor's calibration, kept when the merge adds too few rows to measure anew. */
  calibration: Calibration | null;
  /** Called when the donor's graph is used. */
  onReuse?: () => void;
}

/** A merge reuses the largest input's graph unless more than this fraction of its rows is dropped. */
export const MAX_DONOR_DROPPED = 0.1;

export function planGraphIndex(spec: IndexSpec, dimension: number, metric: Metric, count: number, minRows: number, seed: number, scratch: Kernels, donor?: GraphDonor, threads: GraphBuildThreads | null = null): IndexPlan | null {
  const reused = donor && donor.graph.m === spec.m ? donor.map.reduce((a, v) => a + (v === -1 ? 0 : 1), 0) : 0;
  // a large build runs on threads: the graph, its rows, the quantizer and the calibration then
  // live in kernels on shared memory (the scratch kernels stay unused)
  const threaded = threads !== null && scratch.name !== 'js' && count - reused >= MIN_THREADED_INSERTS ? threads : null;
  const kernels = threaded ? threaded.createKernels() : scratch;
  const quantSpec = quantizerSpecOf(spec);
  const q: Quantizer | null = quantSpec ? createQuantizer(quantSpec, { dimension, metric: metric === 'l2' ? 'l2' : 'dot', kernels }) : null;
  if (count < Math.max(minRows, q?.minTrainingVectors ?? 0)) return null;
  const stride = q ? Math.max(1, Math.ceil(count / MAX_TRAINING_SAMPLE)) : count;
  const sampleRows = Math.ceil(count / stride);
  const m = spec.m!;
  const efConstruction = spec.efConstruction ?? DEFAULT_EF_CONSTRUCTION;
  return {
    sampleStride: stride,
    sampleRows,
    reusedRows: reused,
    async write(w, sample, chunks, norms, progress) {
      if (q) await trainQuantizer(q, sample, sampleRows, { seed }, yieldNow);
      const d = dimension, mem = kernels.memory;
      const rows = mem.alloc(Math.max(4, count * d * 4));
      let graph: HnswGraph | null = null;
      // the codes, kept in memory for the calibration's traversals (encoded once, for the CODES section)
      const codes = q ? mem.alloc(Math.max(4, count * q.codeSize)) : 0;
      try {
        let row = 0;
        for await (const chunk of chunks) {
          const n = chunk.length / (d * 4);
          const f = mem.f32(rows + row * d * 4, n * d);
          new Uint8Array(f.buffer, f.byteOffset, f.byteLength).set(chunk);
          if (metric === 'cosine') for (let i = 0; i < n; i++) scaleRow(f, i * d, d, norms[row + i]);
          row += n;
        }
        if (row !== count) throw new Error(`graph index: read ${row} rows, expected ${count}`);
        if (q) {
          // codes of the unit rows, in pieces re-derived from kernel memory (encoding may grow it);
          // 1 MiB of rows a piece: encoding RaBitQ4 codes costs ~50 us a row, and the event loop
          // turns between pieces (4 MiB pieces held it ~0.5 s each)
          const piece = Math.max(1, Math.floor((1 << 20) / (d * 4)));
          const rowChunks = function* () {
            for (let r = 0; r < count; r += piece) {
              const take = Math.min(piece, count - r);
              yield mem.u8(rows + r * d * 4, take * d * 4).slice();
            }
          };
          await writeCodesSection(w, q, count, rowChunks(), () => {}, (out, first, n) => mem.u8(codes + first * q.codeSize, n * q.codeSize).set(out));
        }
        graph = donor && donor.graph.m === m ? HnswGraph.seeded(kernels, count, donor.graph, donor.map, seed) : HnswGraph.create(kernels, count, m, seed);
        if (donor && donor.graph.m === m) donor.onReuse?.();
        // the calibration's sample rows go in last: measured while they are not in the graph
        const pending = new Uint32Array(count - graph.count);
        for (let i = 0; i < pending.length; i++) pending[i] = graph.count + i;
        const sample = calibrationSample(count, seed, pending);
        const inSample = new Uint8Array(count);
        if (sample) for (const s of sample) inSample[s] = 1;
        const first = graph.count;
        const main = pending.filter((i) => !inSample[i]);
        const buildThreads = threaded && main.length >= MIN_THREADED_INSERTS ? threaded.threads : 1;
        const graphProgress = progress ? (done: number) => progress('graph', done, count - first, buildThreads) : undefined;
        await buildGraph(graph, rows, d, metric === 'l2' ? 'l2' : 'dot', efConstruction, main, graphProgress, threaded);
        let cal: Calibration | null = donor?.calibration ?? null;
        if (sample) cal = await calibrateGraph(graph, rows, count, d, metric, q ? { quantizer: q, codes } : null, q ? graphRerankRule(spec, q) : null, sample, kernels, progress);
        await buildGraph(graph, rows, d, metric === 'l2' ? 'l2' : 'dot', efConstruction, sample ?? new Uint32Array(0), graphProgress && ((done) => graphProgress(main.length + done)));
        await writeGraphSection(w, graph, efConstruction);
        if (cal) await writeCalibrationSection(w, cal);
      } finally {
        graph?.release();
        mem.release(rows);
        if (codes) mem.release(codes);
      }
    },
  };
}

/**
 * How a graph reranks its candidates: by error bounds over the whole beam for 1-bit RaBitQ codes
 * with a bare 'Rerank', oversampling (4k, or Rerank<f>) otherwise. The 1-bit estimate is too coarse
 * for any fixed depth (GloVe-100: recall@10 0.62 at 4k whatever the ef, 0.93 by bounds at ef 384);
 * extended codes (RaBitQ2-8) put the true top 10 within 4k already, and the bound pass (the beam's
 * codes gathered and scored again) cost more than the reranks it saved (HNSW16,RaBitQ4 at ef 192:
 * 2,320 QPS by bounds against 2,547 by 4k oversampling, both recall 0.959; bench/README-ann.md).
 */
export function graphRerankRule(spec: IndexSpec, q: Quantizer): RerankRule | null {
  return rerankRule(spec, q.bounded && /(^|,)RaBitQ1$/.test(q.spec));
}

/**
 * Inserts `nodes` in order: on `threads` when given and there are at least MIN_THREADED_INSERTS
 * (the graph must then live in their kernels), else on this thread in slices of about
 * INSERT_SLICE_MS with a yield to the event loop between.
 */
export async function buildGraph(graph: HnswGraph, rows: number, d: number, metric: 'dot' | 'l2', efConstruction: number, nodes: Uint32Array, progress?: (done: number) => void, threads: GraphBuildThreads | null = null): Promise<void> {
  if (threads && nodes.length >= MIN_THREADED_INSERTS) {
    await graph.insertConcurrently(threads, rows, d, metric, nodes, efConstruction, progress);
    return;
  }
  let batch = 64;
  for (let from = 0; from < nodes.length;) {
    const to = Math.min(nodes.length, from + batch);
    const t0 = performance.now();
    graph.insertNodes(rows, d, metric, nodes.subarray(from, to), efConstruction);
    const ms = performance.now() - t0;
    // aim each slice at INSERT_SLICE_MS: the cost per insert grows with the graph
    batch = Math.max(16, Math.min(1 << 14, Math.round(((to - from) * INSERT_SLICE_MS) / Math.max(ms, 0.5))));
    from = to;
    progress?.(from);
    if (from < nodes.length) await yieldNow();
  }
}

const yieldNow = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Measures the graph (all rows but `sample` inserted) as it will be searched: traversed on the
 * quantizer's codes (coded.codes: u8[count * codeSize] in kernel memory, as the CODES section
 * holds them) or on the f32 rows, reranked as searches will be (`rule`): at each depth of
 * RERANK_LADDER when oversampling, by the error bounds (no depth to choose) for the bound rule;
 * every ef of EF_LADDER.
 */
async function calibrateGraph(graph: HnswGraph, rows: number, count: number, d: number, metric: Metric, coded: { quantizer: Quantizer; codes: number } | null, rule: RerankRule | null, sample: Uint32Array, kernels: Kernels, progress?: IndexProgress): Promise<Calibration> {
  const exactRows = new MemoryRows(kernels, rows, count, d, metric);
  const q = coded?.quantizer ?? null;
  const traversed = coded ? coded.codes : rows, rowBytes = q ? q.codeSize : d * 4;
  const rerank = q !== null ? rule : null;
  const ladder = rerank !== null && 'factor' in rerank;
  // the index borrows the graph and the codes (neither released here)
  const index = new HnswIndex(graph, traversed, rowBytes, { metric, dimension: d, quantizer: q, rerank: rerank === null ? null : ladder ? { factor: 1 } : rerank, exact: rerank ? exactRows : null, ownsRows: false, ownsGraph: false });
  try {
    const settings = EF_LADDER.flatMap((ef) => (ladder ? RERANK_LADDER.map((rerankFactor) => ({ ef, rerankFactor })) : [{ ef }]));
    return await calibrate(index, exactRows, sample, settings, yieldNow, progress && ((done, total) => progress('calibration', done, total)));
  } finally {
    index.release();
  }
}

/** Restores a segment's HNSW index: its rows (codes, or unit f32 vectors) and its graph. */
export async function loadGraphIndex(file: SegmentFile, where: string, ctx: IndexLoadContext): Promise<VectorIndex> {
  const { kernels, dimension: d } = ctx;
  const count = file.header.count;
  const mem = kernels.memory;
  let rows = 0, rowBytes = 0;
  let graph: HnswGraph | null = null;
  let quantizer: Quantizer | null = null;
  try {
    if (file.has(SECTION.CODES)) {
      quantizer = readCodes(file, where, count, kernels, (q) => {
        rowBytes = q.codeSize;
        rows = mem.alloc(Math.max(4, count * rowBytes));
      }, (part, n, first) => mem.u8(rows + first * rowBytes, n * rowBytes).set(part));
      await readVectorsSection(file, ctx); // reranking reads them: checked once here
    } else {
      rowBytes = d * 4;
      rows = mem.alloc(Math.max(4, count * rowBytes));
      await readVectorsSection(file, ctx, (piece, first, n) => {
        const f = mem.f32(rows + first * rowBytes, n * d);
        new Uint8Array(f.buffer, f.byteOffset, f.byteLength).set(piece);
        if (ctx.metric === 'cosine') for (let i = 0; i < n; i++) scaleRow(f, i * d, d, ctx.norms[first + i]);
      });
    }
    graph = readGraphSection(file, where, count, kernels).graph;
    const calibration = readCalibrationSection(file, where);
    const rerank = quantizer ? graphRerankRule(ctx.spec, quantizer) : null;
    return new HnswIndex(graph, rows, rowBytes, { metric: ctx.metric, dimension: d, quantizer, rerank, exact: rerank ? ctx.exact : null, calibration, ownsRows: true });
  } catch (e) {
    graph?.release();
    if (rows) mem.release(rows);
    throw e;
  }
}
