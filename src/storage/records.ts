import { QuiverError } from '../errors.js';
import { FIELD_TYPE_CODES, fieldTypeOfCode, NO_VALUES, type FieldType, type FieldValue, type FieldValues, type SparseValue } from '../fields/types.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';

/**
 * Payloads of WAL records: one record per write call (upsert, delete; a metadata update is logged
 * as the upsert it amounts to, with the vector it keeps), so a batch is atomic on replay (all of
 * it or none of it), and every record replays without reading the state it was applied to.
 *
 * Byte layout (little-endian), after the WAL framing:
 *   0  u8   type: 1 upsert (v1), 2 delete, 3 upsert (v2, with declared fields)
 *   1  u64  sequence number (strictly increasing across the collection's life)
 *   9  u32  count
 *   type 1: 13 u32 dimension, then per record:
 *           u16 id byte length, id UTF-8, f32[dimension] vector, u32 metadata byte length (0 = none), metadata JSON UTF-8
 *   type 2: per id: u16 id byte length, id UTF-8
 *   type 3: 13 u32 dimension, then the field table, then per record:
 *           u16 id byte length, id UTF-8, f32[dimension] vector, u32 JSON byte length, JSON
 *           (undeclared metadata), then per field of the table: the field value
 *   field table: u16 F, per field: u16 name byte length, name UTF-8, u8 type code
 *           (src/fields/types.ts FIELD_TYPE_CODES). It names the declared fields the writer
 *           knew, so a record replays correctly after later fields are added.
 *   field value: u8 0 (absent) or 1 (present), then when present:
 *           keyword: u32 byte length + UTF-8; number: f64; boolean: u8 0/1;
 *           keyword[]: u32 count, per element u32 byte length + UTF-8;
 *           text: u32 byte length + UTF-8; sparse: u32 count, per term u32 byte length + UTF-8, f32 weight
 */
export const RECORD_UPSERT_V1 = 1;
export const RECORD_DELETE = 2;
export const RECORD_UPSERT = 3;

/** One record of an upsert: vector as f32, metadata split into declared values and JSON. */
export interface UpsertEntry {
  id: string;
  vector: Float32Array;
  /** Undeclared metadata as JSON text ('' = none): serialized once, at validation. */
  metadataJson: string;
  /** Values of declared fields (absent fields are missing). */
  values: FieldValues;
}

/** A declared field as a record names it. */
export interface RecordField { name: string; type: FieldType }

export type WalOperation =
  | { type: 'upsert'; seq: number; entries: UpsertEntry[]; fields: readonly RecordField[] }
  | { type: 'delete'; seq: number; ids: string[] };

const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);

function writeFieldTable(w: ByteWriter, fields: readonly RecordField[]): void {
  w.u16(fields.length);
  for (const f of fields) {
    const b = enc.encode(f.name);
    w.u16(b.length).bytes(b).u8(FIELD_TYPE_CODES[f.type]);
  }
}

function writeValue(w: ByteWriter, type: FieldType, v: FieldValue | undefined): void {
  if (v === undefined) { w.u8(0); return; }
  w.u8(1);
  switch (type) {
    case 'keyword': case 'text': w.blob(enc.encode(v as string)); break;
    case 'number': w.f64(v as number); break;
    case 'boolean': w.u8(v ? 1 : 0); break;
    case 'keyword[]':
      w.u32((v as readonly string[]).length);
      for (const s of v as readonly string[]) w.blob(enc.encode(s));
      break;
    case 'sparse': {
      const terms = Object.keys(v as SparseValue);
      w.u32(terms.length);
      for (const t of terms) w.blob(enc.encode(t)).f32((v as SparseValue)[t]);
      break;
    }
  }
}

/** Encodes an upsert (type 3). `fields`: the declared fields of the schema the entries were split with. */
export function encodeUpsert(seq: number, dimension: number, entries: readonly UpsertEntry[], fields: readonly RecordField[] = []): Uint8Array {
  // sized for the worst case (3 UTF-8 bytes per UTF-16 unit) so the writer never grows
  let size = 32 + fields.length * 64;
  for (const e of entries) {
    size += 2 + e.id.length * 3 + dimension * 4 + 4 + (e.metadataJson.length * 3) + fields.length * 9;
    for (const f of fields) {
      const v = e.values[f.name];
      if (f.type === 'text' && typeof v === 'string') size += v.length * 3;
      else if (f.type === 'keyword' && typeof v === 'string') size += v.length * 3;
      else if (f.type === 'keyword[]' && Array.isArray(v)) for (const x of v as string[]) size += 4 + x.length * 3;
      else if (f.type === 'sparse' && v !== undefined) for (const t in v as SparseValue) size += 8 + t.length * 3;
    }
  }
  const w = new ByteWriter(size);
  w.u8(RECORD_UPSERT).u64(seq).u32(entries.length).u32(dimension);
  writeFieldTable(w, fields);
  for (const e of entries) {
    w.utf8u16(e.id).typed(e.vector);
    if (e.metadataJson) w.string(e.metadataJson); else w.u32(0);
    for (const f of fields) writeValue(w, f.type, e.values[f.name]);
  }
  return w.finish();
}

/** Encodes the v1 upsert (no declared fields): what older versions wrote; kept for tests and fixtures. */
export function encodeUpsertV1(seq: number, dimension: number, entries: readonly Pick<UpsertEntry, 'id' | 'vector' | 'metadataJson'>[]): Uint8Array {
  const w = new ByteWriter(17 + entries.length * (dimension * 4 + 32));
  w.u8(RECORD_UPSERT_V1).u64(seq).u32(entries.length).u32(dimension);
  for (const e of entries) {
    const id = enc.encode(e.id), meta = e.metadataJson ? enc.encode(e.metadataJson) : EMPTY;
    w.u16(id.length).bytes(id).typed(e.vector).u32(meta.length).bytes(meta);
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

/** Decodes a payload whose checksum already matched; CORRUPT_WAL if it does not parse. */
export function decodeOperation(payload: Uint8Array, dimension: number, file: string, offset: number): WalOperation {
  const r = new ByteReader(payload, file);
  try {
    const type = r.u8('record type');
    const seq = r.u64('sequence');
    const count = r.u32('count');
    const dec = new TextDecoder('utf-8', { fatal: true });
    const str = (what: string) => dec.decode(r.bytesView(r.u16(`${what} length`), what));
    const json = () => { const ml = r.u32('metadata length'); return ml ? dec.decode(r.bytesView(ml, 'metadata')) : ''; };
    const fieldTable = (): RecordField[] => {
      const n = r.u16('field count');
      const out: RecordField[] = [];
      for (let i = 0; i < n; i++) {
        const name = str('field name');
        const t = fieldTypeOfCode(r.u8('field type')) ?? r.fail(`field "${name}" has an unknown type code`);
        out.push({ name, type: t });
      }
      return out;
    };
    const values = (fields: readonly RecordField[]): FieldValues => {
      if (fields.length === 0) return NO_VALUES;
      let out: Record<string, FieldValue> | null = null;
      for (const f of fields) {
        const present = r.u8('field presence');
        if (present === 0) continue;
        if (present !== 1) r.fail(`field "${f.name}" presence byte ${present}`);
        let v: FieldValue;
        switch (f.type) {
          case 'keyword': v = dec.decode(r.blob('keyword')); break;
          case 'text': v = dec.decode(r.blob('text')); break;
          case 'sparse': {
            const n = r.u32('sparse term count');
            const o: Record<string, number> = Object.create(null) as Record<string, number>;
            for (let i = 0; i < n; i++) { const t = dec.decode(r.blob('sparse term')); o[t] = r.f32('sparse weight'); }
            v = Object.freeze(o);
            break;
          }
          case 'number': v = r.f64('number'); break;
          case 'boolean': v = r.u8('boolean') !== 0; break;
          default: {
            const n = r.u32('keyword count');
            const list: string[] = [];
            for (let i = 0; i < n; i++) list.push(dec.decode(r.blob('keyword')));
            v = Object.freeze(list);
          }
        }
        out ??= Object.create(null) as Record<string, FieldValue>;
        out[f.name] = v;
      }
      return out ?? NO_VALUES;
    };
    const done = () => { if (r.remaining !== 0) r.fail(`${r.remaining} trailing bytes`); };
    if (type === RECORD_UPSERT_V1 || type === RECORD_UPSERT) {
      const d = r.u32('dimension');
      if (d !== dimension) r.fail(`upsert record of dimension ${d} in a collection of dimension ${dimension}`);
      const fields = type === RECORD_UPSERT ? fieldTable() : [];
      const entries: UpsertEntry[] = [];
      for (let i = 0; i < count; i++) {
        const id = str('id');
        const vector = r.f32Array(d, 'vector');
        const metadataJson = json();
        entries.push({ id, vector, metadataJson, values: values(fields) });
      }
      done();
      return { type: 'upsert', seq, entries, fields };
    }
    if (type === RECORD_DELETE) {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) ids.push(str('id'));
      done();
      return { type: 'delete', seq, ids };
    }
    return r.fail(`unknown record type ${type}`);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new QuiverError('CORRUPT_WAL', `${file}: record at byte ${offset} has a valid checksum but does not decode: ${why}`, { file, offset }, { cause: e });
  }
}
