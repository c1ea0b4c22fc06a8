import { QuiverError } from '../errors.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { bitsetWords, setBit, testBit } from '../util/bitset.js';
import { encodeStringColumn, readStringColumn, StringColumn } from '../storage/segment-file.js';
import { FIELD_TYPE_CODES, fieldTypeOfCode, type FieldType, type FieldValue } from './types.js';

/**
 * Column sections of declared fields in segment files: one COLUMN section per (field id),
 * holding the values of every row of the segment in ordinal order.
 *
 * Byte layout (little-endian):
 *   0  u32  column format version (1)
 *   4  u8   type code: 1 keyword, 2 number, 3 boolean, 4 keyword[]; then 3 bytes of zero
 *   8  u32  row count n
 *   12 ..   by type, W = ceil(n / 32) words:
 *     keyword    u32 T, terms as a string column (u32[T + 1] offsets, UTF-8 blob; sorted by UTF-16
 *                code units, distinct), u32[n] term ordinal per row (0xFFFFFFFF = absent)
 *     number     u32[W] presence bitset, f64[n] values (0 where absent)
 *     boolean    u32[W] presence bitset, u32[W] value bitset
 *     keyword[]  u32[W] presence bitset, u32 T, terms as above, u32[n + 1] offsets into the
 *                list, u32 L, u32[L] term ordinals (row i's terms: list[offsets[i] .. offsets[i+1]))
 *     text       u32[W] presence bitset, the texts as a string column (u32[n + 1] offsets, UTF-8
 *                blob; '' where absent). Their terms are in the field's POSTINGS section.
 * Sparse fields have no COLUMN section: their SPARSE section (src/sparse/) holds the vectors.
 * Keyword dictionaries make equality filters a comparison of integers and give term postings
 * without decoding strings.
 */
export const COLUMN_VERSION = 1;
/** Term ordinal of a row without a value (keyword columns). */
export const ABSENT_TERM = 0xffffffff;
const ABSENT = ABSENT_TERM;

/** Encodes one column from its values by ordinal (undefined = absent). */
export function encodeColumn(type: FieldType, n: number, valueAt: (ord: number) => FieldValue | undefined): Uint8Array[] {
  const head = new ByteWriter(16).u32(COLUMN_VERSION).u8(FIELD_TYPE_CODES[type]).u8(0).u8(0).u8(0).u32(n);
  const words = bitsetWords(n);
  if (type === 'sparse') throw new Error('sparse fields are stored in their SPARSE section, not a column');
  if (type === 'text') {
    const present = new Uint32Array(words);
    const texts: string[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const v = valueAt(i);
      texts[i] = v === undefined ? '' : (v as string);
      if (v !== undefined) setBit(present, i);
    }
    head.typed(present);
    return [head.finish(), ...encodeStringColumn(texts)];
  }
  if (type === 'number' || type === 'boolean') {
    const present = new Uint32Array(words);
    const nums = type === 'number' ? new Float64Array(n) : null;
    const bools = type === 'boolean' ? new Uint32Array(words) : null;
    for (let i = 0; i < n; i++) {
      const v = valueAt(i);
      if (v === undefined) continue;
      setBit(present, i);
      if (nums) nums[i] = v as number;
      else if (v === true) setBit(bools!, i);
    }
    head.typed(present).typed(nums ?? bools!);
    return [head.finish()];
  }
  // keyword and keyword[]: a sorted dictionary of distinct terms
  const termSet = new Set<string>();
  const rows: (FieldValue | undefined)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const v = valueAt(i);
    rows[i] = v;
    if (v === undefined) continue;
    if (type === 'keyword') termSet.add(v as string);
    else for (const t of v as readonly string[]) termSet.add(t);
  }
  const terms = [...termSet].sort(compareCodeUnits);
  const ordOf = new Map<string, number>();
  terms.forEach((t, i) => ordOf.set(t, i));
  const dict = encodeStringColumn(terms);
  if (type === 'keyword') {
    const ords = new Uint32Array(n).fill(ABSENT);
    for (let i = 0; i < n; i++) if (rows[i] !== undefined) ords[i] = ordOf.get(rows[i] as string)!;
    head.u32(terms.length);
    return [head.finish(), ...dict, new Uint8Array(ords.buffer)];
  }
  const present = new Uint32Array(words);
  const offsets = new Uint32Array(n + 1);
  const list: number[] = [];
  for (let i = 0; i < n; i++) {
    offsets[i] = list.length;
    const v = rows[i] as readonly string[] | undefined;
    if (v === undefined) continue;
    setBit(present, i);
    for (const t of v) list.push(ordOf.get(t)!);
  }
  offsets[n] = list.length;
  head.typed(present).u32(terms.length);
  const tail = new ByteWriter(8 + list.length * 4).u32(list.length).typed(Uint32Array.from(list));
  return [head.finish(), ...dict, new Uint8Array(offsets.buffer), tail.finish()];
}

/** Values of one field in a sealed segment, by ordinal. */
export interface ColumnReader {
  readonly type: FieldType;
  value(ord: number): FieldValue | undefined;
  /** The decoded arrays, for filters (read-only views; valid while the segment lives). */
  readonly data: ColumnData;
  /** Bytes held in memory. */
  readonly bytes: number;
}

/**
 * The distinct terms of a keyword or keyword[] column, addressed by term ordinal 0..size-1.
 * Column sections keep them sorted by UTF-16 code units (so a range of terms is a range of
 * ordinals); dictionaries built in memory from rows (src/filter/rows.ts) are in arrival order.
 */
export interface TermDictionary {
  readonly size: number;
  /** True when ordinals follow code-unit order of the terms. */
  readonly sorted: boolean;
  term(ord: number): string;
  /** The ordinal of `term`, or -1 when the column never holds it. */
  find(term: string): number;
  /** Sorted dictionaries only: the first ordinal whose term is >= `term` (size if none). */
  lowerBound(term: string): number;
}

/**
 * A column's values as typed arrays over rows 0..n-1 (n = the segment's rows; arrays may be
 * longer), what filters compile against without materialising a value per row.
 * Bitsets as in src/util/bitset.ts (bit i = row i).
 *   keyword    ords: u32[n] term ordinal per row, ABSENT_TERM when absent
 *   keyword[]  present: bitset; row i's terms are list[starts[i] .. ends[i]) (term ordinals)
 *   number     present: bitset; values: f64[n] (0 where absent)
 *   boolean    present: bitset; values: bitset (bit set = true)
 */
export type ColumnData =
  | { readonly type: 'keyword'; readonly terms: TermDictionary; readonly ords: Uint32Array }
  | { readonly type: 'keyword[]'; readonly terms: TermDictionary; readonly present: Uint32Array; readonly starts: Uint32Array; readonly ends: Uint32Array; readonly list: Uint32Array }
  | { readonly type: 'number'; readonly present: Uint32Array; readonly values: Float64Array }
  | { readonly type: 'boolean'; readonly present: Uint32Array; readonly values: Uint32Array }
  /** Not filterable: searched through their own indexes (BM25 postings, the sparse index). */
  | { readonly type: 'text' | 'sparse' };

/** A stored (sorted) dictionary: lookups by binary search, decoding log2(size) terms. */
function sortedDictionary(terms: StringColumn, size: number): TermDictionary {
  const lowerBound = (t: string): number => {
    let lo = 0, hi = size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (terms.value(mid) < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return {
    size,
    sorted: true,
    term: (i) => terms.value(i),
    lowerBound,
    find: (t) => {
      const i = lowerBound(t);
      return i < size && terms.value(i) === t ? i : -1;
    },
  };
}

/** Parses a COLUMN section; CORRUPT_FILE naming `where` on any inconsistency. */
export function decodeColumn(bytes: Uint8Array, count: number, where: string, field: string): ColumnReader {
  const r = new ByteReader(bytes, where);
  const version = r.u32('column version');
  if (version !== COLUMN_VERSION) {
    throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: column "${field}" format version ${version} is not supported (read: ${COLUMN_VERSION})`, { file: where, expected: COLUMN_VERSION, received: version });
  }
  const type = fieldTypeOfCode(r.u8('column type')) ?? r.fail(`column "${field}" has an unknown type code`);
  r.u8(); r.u8(); r.u8();
  const n = r.u32('column rows');
  if (n !== count) r.fail(`column "${field}" holds ${n} rows, the segment ${count}`);
  const words = bitsetWords(n);
  if (type === 'sparse') r.fail(`column "${field}" has the sparse type code (sparse fields have no column)`);
  if (type === 'text') {
    const present = r.u32Array(words, 'presence');
    const texts = readStringColumn(r, n, where, `texts of "${field}"`);
    end(r, field);
    return { type, bytes: present.byteLength + texts.bytes, data: { type }, value: (i) => (testBit(present, i) ? texts.value(i) : undefined) };
  }
  if (type === 'number') {
    const present = r.u32Array(words, 'presence');
    const b = r.bytesView(n * 8, 'numbers');
    const nums = new Float64Array(n);
    new Uint8Array(nums.buffer).set(b);
    end(r, field);
    return { type, bytes: present.byteLength + nums.byteLength, data: { type, present, values: nums }, value: (i) => (testBit(present, i) ? nums[i] : undefined) };
  }
  if (type === 'boolean') {
    const present = r.u32Array(words, 'presence');
    const vals = r.u32Array(words, 'values');
    end(r, field);
    return { type, bytes: present.byteLength * 2, data: { type, present, values: vals }, value: (i) => (testBit(present, i) ? testBit(vals, i) : undefined) };
  }
  const present = type === 'keyword[]' ? r.u32Array(words, 'presence') : null;
  const nTerms = r.u32('term count');
  const terms = readStringColumn(r, nTerms, where, `terms of "${field}"`);
  if (type === 'keyword') {
    const ords = r.u32Array(n, 'term ordinals');
    for (let i = 0; i < n; i++) if (ords[i] !== ABSENT && ords[i] >= nTerms) r.fail(`column "${field}" row ${i} names term ${ords[i]} of ${nTerms}`);
    end(r, field);
    return {
      type, bytes: terms.bytes + ords.byteLength, data: { type, terms: sortedDictionary(terms, nTerms), ords },
      value: (i) => (ords[i] === ABSENT ? undefined : terms.value(ords[i])),
    };
  }
  const offsets = r.u32Array(n + 1, 'list offsets');
  const total = r.u32('list length');
  const list = r.u32Array(total, 'term list');
  if (offsets[0] !== 0 || offsets[n] !== total) r.fail(`column "${field}" list offsets do not cover ${total} terms`);
  for (let i = 0; i < n; i++) if (offsets[i] > offsets[i + 1]) r.fail(`column "${field}" list offsets decrease at row ${i}`);
  for (let i = 0; i < total; i++) if (list[i] >= nTerms) r.fail(`column "${field}" names term ${list[i]} of ${nTerms}`);
  end(r, field);
  return {
    type,
    bytes: terms.bytes + present!.byteLength + offsets.byteLength + list.byteLength,
    data: { type, terms: sortedDictionary(terms, nTerms), present: present!, starts: offsets.subarray(0, n), ends: offsets.subarray(1), list },
    value: (i) => {
      if (!testBit(present!, i)) return undefined;
      const out: string[] = [];
      for (let j = offsets[i]; j < offsets[i + 1]; j++) out.push(terms.value(list[j]));
      return Object.freeze(out);
    },
  };
}

function end(r: ByteReader, field: string): void {
  if (r.remaining !== 0) r.fail(`column "${field}" has ${r.remaining} trailing bytes`);
}

/** Orders strings by UTF-16 code units (what < does), the order of keyword dictionaries. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
