import { encodeColumn } from '../fields/columns.js';
import type { FieldDef, FieldValues } from '../fields/types.js';
import { planIndex, scaleRow, type IndexDonor, type IndexProgress } from '../index/segment-index.js';
import type { IndexSpec } from '../index/spec.js';
import type { Kernels } from '../kernels/types.js';
import type { GraphBuildThreads } from '../index/build-threads.js';
import type { Directory } from '../storage/directory.js';
import { encodeStringColumn, SECTION, segmentFileName, SegmentWriter } from '../storage/segment-file.js';
import type { Metric } from './validate.js';
import { transientFloats } from '../util/transient.js';
import { getAnalyzer } from '../text/analyzer.js';
import { encodePostings, gatherPostings, type PostingLists } from '../text/postings.js';
import { buildSparseIndex } from '../sparse/build.js';
import { encodeSparseIndex } from '../sparse/section.js';
import type { SparseValue } from '../fields/types.js';

/** What a segment file is written from: rows in ordinal order. */
export interface SegmentRows {
  number: number;
  dimension: number;
  metric: Metric;
  count: number;
  minSeq: number;
  maxSeq: number;
  /** Raw f32 rows, in ordinal order, as byte chunks (each a whole number of rows); called once per pass. */
  vectorChunks: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
  ids: readonly string[];
  /** Undeclared metadata per row, JSON ('' = none). */
  metadataJson: readonly string[];
  /** Declared field values per row. */
  values: readonly FieldValues[];
  /**
   * The collection's declared fields: each gets a COLUMN section; text fields a POSTINGS section
   * too, sparse fields a SPARSE section instead.
   */
  fields: readonly FieldDef[];
  /** Postings a text field already has for exactly these rows (a frozen mutable segment's), instead of analysing the texts again. */
  postings?: (field: string) => PostingLists | undefined;
  /**
   * The collection's index spec: a compressed spec trains a quantizer (on scratch `kernels`) and
   * writes a CODES section when the segment has at least `minRows` rows.
   */
  index: { spec: IndexSpec; kernels: Kernels; threads?: GraphBuildThreads | null; minRows: number; donor?: IndexDonor; progress?: IndexProgress };
}

/**
 * Writes `seg-<number>.qseg` (VECTORS, the index's sections, NORMS, IDS, METADATA, FIELDS and a
 * COLUMN per declared field) and syncs it. Returns the file size. `fault` is the crash-test
 * hook, called between sections. The file is referenced by nothing until a manifest lists it.
 */
export async function writeSegmentFile(dir: Directory, rows: SegmentRows, fault?: (point: string) => void): Promise<number> {
  const name = segmentFileName(rows.number);
  const w = await SegmentWriter.create(dir, name, {
    number: rows.number, dimension: rows.dimension, metric: rows.metric, count: rows.count, minSeq: rows.minSeq, maxSeq: rows.maxSeq,
  });
  try {
    const d = rows.dimension;
    const norms = transientFloats(rows.count);
    const plan = planIndex(rows.index.spec, d, rows.metric, rows.count, rows.index.minRows, rows.number, rows.index.kernels, rows.index.donor, rows.index.threads ?? null);
    const sample = plan ? transientFloats(plan.sampleRows * d) : null;
    let sampled = 0;
    let row = 0;
    await w.beginSection(SECTION.VECTORS);
    for await (const chunk of rows.vectorChunks()) {
      const n = chunk.length / (d * 4);
      const f = new Float32Array(chunk.buffer, chunk.byteOffset, n * d);
      for (let i = 0; i < n; i++) {
        let s2 = 0;
        for (let j = 0; j < d; j++) { const x = f[i * d + j]; s2 += x * x; }
        norms[row + i] = Math.sqrt(s2);
        if (sample && (row + i) % plan!.sampleStride === 0) {
          sample.set(f.subarray(i * d, (i + 1) * d), sampled * d);
          if (rows.metric === 'cosine') scaleRow(sample, sampled * d, d, norms[row + i]);
          sampled++;
        }
      }
      row += n;
      await w.writeChunk(chunk);
      fault?.('segment:mid-vectors');
    }
    w.endSection();
    if (row !== rows.count) throw new Error(`segment ${rows.number}: wrote ${row} vectors, expected ${rows.count}`);
    if (plan && sample) {
      await plan.write(w, sample.subarray(0, sampled * d), rows.vectorChunks(), norms, rows.index.progress);
      fault?.('segment:after-codes');
    }
    await w.section(SECTION.NORMS, [new Uint8Array(norms.buffer, 0, rows.count * 4)]);
    await w.section(SECTION.IDS, encodeStringColumn(rows.ids));
    fault?.('segment:before-metadata');
    await w.section(SECTION.METADATA, encodeStringColumn(rows.metadataJson));
    if (rows.fields.length) {
      const listed = rows.fields.map((f) => ({ id: f.id, name: f.name, type: f.type }));
      await w.section(SECTION.FIELDS, [new TextEncoder().encode(JSON.stringify(listed))]);
      for (const f of rows.fields) {
        if (f.type === 'sparse') {
          const index = buildSparseIndex((i) => rows.values[i][f.name] as SparseValue | undefined, rows.count, { kernels: rows.index.kernels });
          try {
            await w.section(SECTION.SPARSE, encodeSparseIndex(index), f.id);
          } finally {
            index.release();
          }
          continue;
        }
        await w.section(SECTION.COLUMN, encodeColumn(f.type, rows.count, (i) => rows.values[i][f.name]), f.id);
        if (f.type === 'text') {
          let lists = rows.postings?.(f.name);
          if (!lists) {
            const analyzer = getAnalyzer(f.analyzer ?? 'english');
            lists = gatherPostings(rows.count, (i) => { const v = rows.values[i][f.name]; return typeof v === 'string' ? analyzer.analyze(v) : null; });
          }
          await w.section(SECTION.POSTINGS, encodePostings(lists), f.id);
        }
      }
    }
    return await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  }
}
