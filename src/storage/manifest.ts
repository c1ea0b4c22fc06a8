import { QuiverError } from '../errors.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { crc32c } from '../util/crc32c.js';
import type { Directory } from './directory.js';
import { FIELD_TYPES, type FieldDef } from '../fields/types.js';

/**
 * The manifest: which segments make up the collection, their tombstones, and where WAL replay
 * starts. Replaced atomically (write MANIFEST.tmp, sync, rename over MANIFEST, sync the
 * directory), so a crash leaves either the old or the new one, never a mix.
 *
 * Byte layout (little-endian):
 *   0  u32  magic 0x4E414D51 ("QMAN")
 *   4  u16  format version (2; version 1, without declared fields, is still read)
 *   6  u16  reserved (0)
 *   8  u32  JSON byte length J
 *   12 J    JSON (ManifestState without tombstones), UTF-8; version 2 adds schema.fields:
 *           [{name, type, id}] (declared fields; ids key their segment sections, never reused)
 *   .. pad to a multiple of 4
 *   per segment, in JSON order: u32 word count W (0 when nothing is deleted), u32[W] tombstone bitset
 *        (bit i of word i >> 5 set = row i deleted)
 *   .  u32  CRC-32C of every preceding byte
 */
export const MANIFEST_FILE = 'MANIFEST';
export const MANIFEST_TMP = 'MANIFEST.tmp';
export const MANIFEST_MAGIC = 0x4e414d51;
export const MANIFEST_VERSION = 2;

export interface ManifestSchema {
  dimension: number;
  metric: 'cosine' | 'dot' | 'l2';
  index: string;
  /** Declared fields in declaration order (empty when none). */
  fields: readonly FieldDef[];
  /** The embedder's model id (collections that embed text). */
  embedder?: string;
}

export interface ManifestSegment {
  number: number;
  file: string;
  count: number;
  deleted: number;
  bytes: number;
  /** Tombstones: bit i set = row i deleted (length ceil(count / 32)). */
  tombstones: Uint32Array;
}

export interface ManifestState {
  /** Increases with every manifest written. */
  generation: number;
  schema: ManifestSchema;
  /** Number for the next segment (mutable or sealed). */
  nextSegment: number;
  /** First WAL generation to replay; older WAL files are obsolete. */
  walStart: number;
  /** Largest WAL sequence number whose effect is inside the listed segments. */
  appliedSeq: number;
  /**
   * The writer's last committed WAL sequence number when this manifest was written: every write
   * up to it is reflected by the segments (rows and tombstones) or replayable from walStart.
   * Absent in manifests written before read-only collections could refresh. (An optional JSON
   * field: readers of the same format version that do not know it ignore it.)
   */
  committedSeq?: number;
  createdAt: string;
  segments: ManifestSegment[];
}

export function encodeManifest(m: ManifestState): Uint8Array {
  const json = JSON.stringify({
    generation: m.generation, schema: m.schema, nextSegment: m.nextSegment, walStart: m.walStart,
    appliedSeq: m.appliedSeq, ...(m.committedSeq !== undefined ? { committedSeq: m.committedSeq } : {}), createdAt: m.createdAt,
    segments: m.segments.map((s) => ({ number: s.number, file: s.file, count: s.count, deleted: s.deleted, bytes: s.bytes })),
  });
  const w = new ByteWriter(4096);
  w.u32(MANIFEST_MAGIC).u16(MANIFEST_VERSION).u16(0).string(json).align(4);
  for (const s of m.segments) {
    if (s.deleted === 0) { w.u32(0); continue; }
    w.u32(s.tombstones.length).typed(s.tombstones);
  }
  w.u32(crc32c(w.finish()));
  return w.finish().slice();
}

export function decodeManifest(bytes: Uint8Array, where: string): ManifestState {
  const r = new ByteReader(bytes, where);
  if (bytes.length < 16) r.fail(`truncated manifest (${bytes.length} bytes)`);
  const stored = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true);
  if (r.u32('magic') !== MANIFEST_MAGIC) r.fail('bad magic: not a QuiverDB manifest');
  const actual = crc32c(bytes, 0, 0, bytes.length - 4);
  if (stored !== actual) {
    throw new QuiverError('CORRUPT_FILE', `${where}: manifest checksum mismatch`, { file: where, expected: stored, received: actual });
  }
  const version = r.u16('version');
  if (version !== 1 && version !== MANIFEST_VERSION) {
    throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: manifest format version ${version} is not supported (read: 1..${MANIFEST_VERSION})`, { file: where, expected: MANIFEST_VERSION, received: version });
  }
  r.u16('reserved');
  let raw: Omit<ManifestState, 'segments'> & { segments: Omit<ManifestSegment, 'tombstones'>[] };
  try {
    raw = JSON.parse(r.string('manifest JSON'));
  } catch (e) {
    if (e instanceof QuiverError) throw e;
    return r.fail(`manifest JSON does not parse: ${(e as Error).message}`);
  }
  r.align(4);
  const okInt = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  if (!raw || typeof raw !== 'object' || !Array.isArray(raw.segments) || !okInt(raw.generation) || !okInt(raw.walStart) || !okInt(raw.appliedSeq) || !okInt(raw.nextSegment)
    || !raw.schema || !okInt(raw.schema.dimension) || !['cosine', 'dot', 'l2'].includes(raw.schema.metric) || typeof raw.schema.index !== 'string') {
    r.fail('manifest JSON lacks required fields');
  }
  const rawFields: unknown = version === 1 ? [] : (raw.schema as { fields?: unknown }).fields;
  if (!Array.isArray(rawFields)) r.fail('manifest schema lacks its field list');
  const fields: FieldDef[] = [];
  const names = new Set<string>(), ids = new Set<number>();
  for (const f of rawFields as { name?: unknown; type?: unknown; id?: unknown; analyzer?: unknown; embed?: unknown }[]) {
    if (!f || typeof f.name !== 'string' || !(FIELD_TYPES as readonly unknown[]).includes(f.type) || !okInt(f.id) || (f.id as number) < 1
      || names.has(f.name) || ids.has(f.id as number) || (f.type === 'text') !== (typeof f.analyzer === 'string')
      || (f.embed !== undefined && f.embed !== true)) r.fail(`manifest field entry ${JSON.stringify(f)} is malformed`);
    names.add(f.name as string);
    ids.add(f.id as number);
    fields.push(Object.freeze({
      name: f.name as string, type: f.type as FieldDef['type'], id: f.id as number,
      ...(f.type === 'text' ? { analyzer: f.analyzer as string } : {}), ...(f.embed ? { embed: true } : {}),
    }));
  }
  const embedder = (raw.schema as { embedder?: unknown }).embedder;
  if (embedder !== undefined && typeof embedder !== 'string') r.fail('manifest schema embedder is malformed');
  const schema: ManifestSchema = {
    dimension: raw.schema.dimension, metric: raw.schema.metric, index: raw.schema.index, fields: Object.freeze(fields),
    ...(embedder !== undefined ? { embedder: embedder as string } : {}),
  };
  const segments: ManifestSegment[] = raw.segments.map((s, i) => {
    if (!okInt(s.number) || !okInt(s.count) || !okInt(s.deleted) || typeof s.file !== 'string') r.fail(`segment entry ${i} is malformed`);
    const words = r.u32(`tombstone length of segment ${s.number}`);
    const need = Math.ceil(s.count / 32);
    if (words !== 0 && words !== need) r.fail(`segment ${s.number} tombstones hold ${words} words, expected ${need}`);
    const tombstones = words ? r.u32Array(words, `tombstones of segment ${s.number}`) : new Uint32Array(need);
    return { number: s.number, file: s.file, count: s.count, deleted: s.deleted, bytes: s.bytes ?? 0, tombstones };
  });
  if (r.remaining !== 4) r.fail(`${r.remaining - 4} unexpected bytes before the checksum`);
  if (raw.committedSeq !== undefined && !okInt(raw.committedSeq)) r.fail('manifest committedSeq is malformed');
  return {
    generation: raw.generation, schema, nextSegment: raw.nextSegment, walStart: raw.walStart, appliedSeq: raw.appliedSeq,
    ...(raw.committedSeq !== undefined ? { committedSeq: raw.committedSeq } : {}), createdAt: raw.createdAt, segments,
  };
}

/** Atomically replaces the manifest: temp file, sync, rename, directory sync. */
export async function writeManifest(dir: Directory, m: ManifestState, fault?: (point: string) => void): Promise<void> {
  await dir.writeFile(MANIFEST_TMP, [encodeManifest(m)]);
  fault?.('manifest:before-rename');
  await dir.rename(MANIFEST_TMP, MANIFEST_FILE);
  await dir.syncDirectory();
  fault?.('manifest:after-rename');
}

export async function readManifest(dir: Directory): Promise<ManifestState | null> {
  if (!(await dir.exists(MANIFEST_FILE))) return null;
  return decodeManifest(await dir.readFile(MANIFEST_FILE), `${dir.description}/${MANIFEST_FILE}`);
}
