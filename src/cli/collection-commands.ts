import { Collection } from '../node.js';
import type { Metric } from '../collection/validate.js';
import { QuiverError } from '../errors.js';
import type { KernelChoice } from '../kernels/index.js';
import { readVectorFile } from '../node/readers.js';
import { formatBytes, formatCount, Progress } from './progress.js';

/** `quiver create DIR`: a new, empty durable collection. */
export async function runCreate(dir: string, o: { dimension: number; metric: Metric; index: string; fields?: string[]; json: boolean }, out = console.log): Promise<void> {
  const fields: Record<string, string> = {};
  for (const f of o.fields ?? []) {
    const m = /^([^:]+):(.+)$/.exec(f);
    if (!m) throw new QuiverError('INVALID_ARGUMENT', `--field expects name:type (e.g. category:keyword), got "${f}"`, { received: f });
    fields[m[1]] = m[2];
  }
  const col = await Collection.open(dir, { schema: { dimension: o.dimension, metric: o.metric, index: o.index, fields: fields as never } });
  if (col.size > 0) {
    await col.close();
    throw new QuiverError('INVALID_ARGUMENT', `${dir} already holds a collection of ${col.size} records`, { directory: dir });
  }
  const info = col.info();
  const declared = col.schema.fields;
  await col.close();
  if (o.json) out(JSON.stringify({ directory: info.directory, dimension: info.dimension, metric: info.metric, index: info.index, fields: declared }));
  else out(`created ${info.directory}: dimension ${info.dimension}, metric ${info.metric}, index ${info.index}${Object.keys(declared).length ? `, fields ${Object.entries(declared).map(([n, t]) => `${n}:${t}`).join(' ')}` : ''}`);
}

export interface ImportOptions {
  /** Create the collection when absent, with this metric (dimension from the file). */
  metric?: Metric;
  index: string;
  kernels: KernelChoice;
  batch: number;
  /** Prefix for row-number ids of formats without ids (fvecs, npy, ...). */
  idPrefix: string;
  /** Seal the imported rows into segments before exiting (default true). */
  flush: boolean;
  json: boolean;
}

/**
 * `quiver import DIR FILE`: upserts every vector of FILE (.fvecs .ivecs .bvecs .npy .jsonl) in
 * durable batches, with a progress bar and throughput. Ids: the file's own (JSONL) or
 * `<prefix><row>`. Creates the collection when absent if --metric is given.
 */
export async function runImport(dir: string, file: string, o: ImportOptions, out = console.log): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  let data: Awaited<ReturnType<typeof readVectorFile>>;
  try {
    data = await readVectorFile(file);
  } catch (e) {
    // JSONL documents without vectors are what `--text` imports: say so where the user looks
    if (e instanceof QuiverError && e.code === 'MALFORMED_INPUT' && e.details.field === 'vector' && e.details.received === 'missing') {
      throw new QuiverError('MALFORMED_INPUT', `${e.message} (documents to embed from a text key: quiver import ${dir} ${file} --text KEY)`, e.details, { cause: e });
    }
    throw e;
  }
  const readMs = performance.now() - t0;
  let col: Collection;
  try {
    col = await Collection.open(dir, { kernels: o.kernels, ...(o.metric ? { schema: { dimension: data.dimension, metric: o.metric, index: o.index } } : {}) });
  } catch (e) {
    if (e instanceof QuiverError && e.code === 'NOT_FOUND') {
      throw new QuiverError('NOT_FOUND', `no collection at ${dir}: create it with \`quiver create\`, or pass --metric to create it from the file`, { directory: dir });
    }
    throw e;
  }
  if (col.dimension !== data.dimension) {
    await col.close();
    throw new QuiverError('DIMENSION_MISMATCH', `${file} holds ${data.dimension}-d vectors, the collection at ${dir} is ${col.dimension}-d`, { expected: col.dimension, received: data.dimension });
  }
  const d = data.dimension;
  const bar = new Progress('importing', data.count, 'vectors');
  const t1 = performance.now();
  try {
    for (let s = 0; s < data.count; s += o.batch) {
      const e = Math.min(data.count, s + o.batch);
      const batch = [];
      for (let i = s; i < e; i++) {
        batch.push({ id: data.ids ? data.ids[i] : `${o.idPrefix}${i}`, vector: data.data.subarray(i * d, (i + 1) * d), metadata: data.metadata?.[i] });
      }
      await col.upsert(batch);
      bar.update(e);
    }
    bar.stop();
    const upsertMs = performance.now() - t1;
    const t2 = performance.now();
    if (o.flush) await col.flush();
    await col.idle();
    const flushMs = performance.now() - t2;
    const info = col.info();
    const report = {
      directory: info.directory, file, vectors: data.count, dimension: d, count: info.count,
      readSeconds: +(readMs / 1000).toFixed(3), upsertSeconds: +(upsertMs / 1000).toFixed(3), flushSeconds: +(flushMs / 1000).toFixed(3),
      vectorsPerSecond: Math.round(data.count / ((upsertMs + flushMs) / 1000)), segments: info.segments,
    };
    if (o.json) out(JSON.stringify(report));
    else {
      out(`imported ${data.count.toLocaleString('en-US')} ${d}-d vectors from ${file} into ${info.directory} (${info.count.toLocaleString('en-US')} records now)`);
      out(`durable upserts ${(upsertMs / 1000).toFixed(2)} s + flush ${(flushMs / 1000).toFixed(2)} s: ${formatCount(report.vectorsPerSecond)} vectors/s (file read ${(readMs / 1000).toFixed(2)} s)`);
    }
    return report;
  } finally {
    bar.stop();
    await col.close();
  }
}

/** `quiver info DIR`: schema, counts, segments with sizes and tombstones, WAL, recovery. */
export async function runInfo(dir: string, o: { json: boolean }, out = console.log): Promise<void> {
  const col = await Collection.open(dir, { readOnly: true });
  const info = col.info();
  const fields = col.schema.fields;
  await col.close();
  if (o.json) { out(JSON.stringify({ ...info, fields }, null, 2)); return; }
  out(`${info.directory}`);
  const declared = Object.entries(fields).map(([n, t]) => `${n}:${t}`).join(' ');
  out(`  schema     dimension ${info.dimension}, metric ${info.metric}, index ${info.index}${declared ? `, fields ${declared}` : ''}`);
  out(`  records    ${info.count.toLocaleString('en-US')} live`);
  const sealed = info.segmentList.filter((s) => s.state === 'sealed');
  const rows = info.segmentList.reduce((a, s) => a + s.rows, 0);
  const deleted = info.segmentList.reduce((a, s) => a + s.deleted, 0);
  out(`  segments   ${sealed.length} sealed, ${rows.toLocaleString('en-US')} rows, ${deleted.toLocaleString('en-US')} deleted (tombstones), ${formatBytes(sealed.reduce((a, s) => a + s.fileBytes, 0))} on disk`);
  for (const s of info.segmentList) {
    if (s.state === 'mutable' && s.rows === 0) continue;
    out(`    #${String(s.number).padEnd(6)} ${s.state.padEnd(8)} rows ${String(s.rows).padStart(9)}  deleted ${String(s.deleted).padStart(8)}  file ${formatBytes(s.fileBytes).padStart(10)}  memory ${formatBytes(s.memoryBytes).padStart(10)}  ${s.index}`);
  }
  out(`  wal        generation ${info.walGeneration ?? '-'} (replayed ${info.recovery.walRecords} records from ${info.recovery.walFiles} files at open${info.recovery.tornTail ? `; dropped a torn tail of ${info.recovery.tornTail.droppedBytes} bytes` : ''})`);
  out(`  manifest   generation ${info.manifestGeneration}`);
  if (info.pendingCleanup.length) out(`  cleanup    ${info.pendingCleanup.length} file(s) the manifest no longer names could not be removed yet: ${info.pendingCleanup.join(', ')}`);
}

/** `quiver compact DIR`: flush, then merge everything into one segment without deleted rows. */
export async function runCompact(dir: string, o: { json: boolean }, out = console.log): Promise<void> {
  const col = await Collection.open(dir);
  const before = col.info();
  const t0 = performance.now();
  try {
    await col.compact();
  } finally {
    const after = col.info();
    await col.close();
    const ms = performance.now() - t0;
    const seg = (i: typeof before) => i.segmentList.filter((s) => s.state === 'sealed').length;
    const disk = (i: typeof before) => i.segmentList.reduce((a, s) => a + s.fileBytes, 0);
    if (o.json) out(JSON.stringify({ segmentsBefore: seg(before), segmentsAfter: seg(after), bytesBefore: disk(before), bytesAfter: disk(after), seconds: ms / 1000 }));
    else out(`compacted ${before.directory}: ${seg(before)} -> ${seg(after)} segments, ${formatBytes(disk(before))} -> ${formatBytes(disk(after))} in ${(ms / 1000).toFixed(2)} s`);
  }
}

/** `quiver verify DIR`: every checksum of every file; exit code 1 when something is damaged. */
export async function runVerify(dir: string, o: { json: boolean }, out = console.log): Promise<boolean> {
  let result: { files: number; bytes: number; problems: { file: string; code: string; message: string }[] };
  try {
    const col = await Collection.open(dir, { readOnly: true });
    result = await col.verify();
    await col.close();
  } catch (e) {
    // a collection too damaged to open is itself the finding
    if (!(e instanceof QuiverError) || !['CORRUPT_FILE', 'CORRUPT_WAL', 'UNSUPPORTED_FORMAT'].includes(e.code)) throw e;
    result = { files: 0, bytes: 0, problems: [{ file: String(e.details.file ?? dir), code: e.code, message: e.message }] };
  }
  if (o.json) out(JSON.stringify(result, null, 2));
  else if (result.problems.length === 0) out(`ok: ${result.files} files, ${formatBytes(result.bytes)} checked, every checksum matches`);
  else for (const p of result.problems) out(`DAMAGED ${p.file}: [${p.code}] ${p.message}`);
  return result.problems.length === 0;
}
