import { QuiverError } from '../errors.js';
import type { Directory } from '../storage/directory.js';
import { readManifest, type ManifestState } from '../storage/manifest.js';
import { decodeOperation } from '../storage/records.js';
import { SegmentFile } from '../storage/segment-file.js';
import { readWalBytes, walGeneration } from '../storage/wal.js';

export interface VerifyReport {
  files: number;
  bytes: number;
  problems: { file: string; code: string; message: string }[];
}

/**
 * Checks every checksum of every file the manifest `m` names (the manifest itself, each segment
 * section, each WAL record from walStart on) and that every WAL record decodes; lists problems
 * rather than throwing (`quiver verify`, Collection.verify()).
 */
export async function verifyFiles(dir: Directory, m: ManifestState, dimension: number): Promise<VerifyReport> {
  const problems: VerifyReport['problems'] = [];
  let files = 0, bytes = 0;
  const record = (file: string, e: unknown) => {
    const q = e instanceof QuiverError ? e : new QuiverError('IO_ERROR', String(e));
    problems.push({ file, code: q.code, message: q.message });
  };
  if (m.generation > 0) {
    try {
      await readManifest(dir);
      files++;
    } catch (e) { record('MANIFEST', e); }
  }
  for (const s of m.segments) {
    try {
      const f = await SegmentFile.open(dir, s.file);
      try { bytes += f.verifyAll().bytes; } finally { await f.close(); }
      files++;
    } catch (e) { record(s.file, e); }
  }
  for (const name of (await dir.list()).filter((f) => walGeneration(f) >= m.walStart)) {
    try {
      const b = await dir.readFile(name);
      readWalBytes(b, `${dir.description}/${name}`, walGeneration(name), (payload, off) => decodeOperation(payload, dimension, name, off));
      files++;
      bytes += b.length;
    } catch (e) { record(name, e); }
  }
  return { files, bytes, problems };
}
