import { QuiverError } from '../errors.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';

/**
 * Payloads of WAL records: one record per upsert() or delete() call, so a batch is atomic on
 * replay (all of it or none of it).
 *
 * Byte layout (little-endian), after the WAL framing:
 *   0  u8   type: 1 upsert, 2 delete
 *   1  u64  sequence number (strictly increasing across the collection's life)
 *   9  u32  count
 *   upsert: 13 u32 dimension, then per record:
 *           u16 id byte length, id UTF-8, f32[dimension] vector, u32 metadata byte length (0 = none), metadata JSON UTF-8
 *   delete: per id: u16 id byte length, id UTF-8
 */
export const RECORD_UPSERT = 1;
export const RECORD_DELETE = 2;

export interface UpsertEntry {
  id: string;
  vector: Float32Array;
  /** Metadata as JSON text ('' = none): serialized once, at validation. */
  metadataJson: string;
}

export type WalOperation =
  | { type: 'upsert'; seq: number; entries: UpsertEntry[] }
  | { type: 'delete'; seq: number; ids: string[] };

const enc = new TextEncoder();

export function encodeUpsert(seq: number, dimension: number, entries: readonly UpsertEntry[]): Uint8Array {
  let size = 17;
  const idBytes = entries.map((e) => enc.encode(e.id));
  const metaBytes = entries.map((e) => (e.metadataJson ? enc.encode(e.metadataJson) : EMPTY));
  for (let i = 0; i < entries.length; i++) size += 2 + idBytes[i].length + dimension * 4 + 4 + metaBytes[i].length;
  const w = new ByteWriter(size);
  w.u8(RECORD_UPSERT).u64(seq).u32(entries.length).u32(dimension);
  for (let i = 0; i < entries.length; i++) {
    w.u16(idBytes[i].length).bytes(idBytes[i]).typed(entries[i].vector).u32(metaBytes[i].length).bytes(metaBytes[i]);
  }
  return w.finish();
}

export function encodeDelete(seq: number, ids: readonly string[]): Uint8Array {
  const w = new ByteWriter(13 + ids.length * 16);
  w.u8(RECORD_DELETE).u64(seq).u32(ids.length);
  for (const id of ids) {
    const b = enc.encode(id);
    w.u16(b.length).bytes(b);
  }
  return w.finish();
}

const EMPTY = new Uint8Array(0);

/** Decodes a payload whose checksum already matched; CORRUPT_WAL if it does not parse. */
export function decodeOperation(payload: Uint8Array, dimension: number, file: string, offset: number): WalOperation {
  const r = new ByteReader(payload, file);
  try {
    const type = r.u8('record type');
    const seq = r.u64('sequence');
    const count = r.u32('count');
    const dec = new TextDecoder('utf-8', { fatal: true });
    const str = (what: string) => dec.decode(r.bytesView(r.u16(`${what} length`), what));
    if (type === RECORD_UPSERT) {
      const d = r.u32('dimension');
      if (d !== dimension) r.fail(`upsert record of dimension ${d} in a collection of dimension ${dimension}`);
      const entries: UpsertEntry[] = [];
      for (let i = 0; i < count; i++) {
        const id = str('id');
        const vector = r.f32Array(d, 'vector');
        const ml = r.u32('metadata length');
        const metadataJson = ml ? dec.decode(r.bytesView(ml, 'metadata')) : '';
        entries.push({ id, vector, metadataJson });
      }
      if (r.remaining !== 0) r.fail(`${r.remaining} trailing bytes`);
      return { type: 'upsert', seq, entries };
    }
    if (type === RECORD_DELETE) {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) ids.push(str('id'));
      if (r.remaining !== 0) r.fail(`${r.remaining} trailing bytes`);
      return { type: 'delete', seq, ids };
    }
    return r.fail(`unknown record type ${type}`);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new QuiverError('CORRUPT_WAL', `${file}: record at byte ${offset} has a valid checksum but does not decode: ${why}`, { file, offset }, { cause: e });
  }
}
