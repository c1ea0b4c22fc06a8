import { QuiverError } from '../errors.js';
import { checkWellFormed, describe } from '../util/strings.js';
import { checkSparseVector } from '../sparse/types.js';

/**
 * Declared fields: typed metadata the schema names, stored as columns in segments (what filters
 * compile against), as opposed to undeclared metadata, which stays opaque JSON.
 *
 * A record's metadata is one plain object to the user. On write it is split: values of declared
 * fields are checked against their type and taken out; the rest is serialized as JSON. On read
 * the two are joined again, so a user never sees the split.
 *
 * Types (the value a record holds; absent = the key is missing or undefined):
 *   keyword    a string (exact match; later: keyword postings)
 *   number     a finite number (float64)
 *   boolean    true or false
 *   keyword[]  an array of strings (a record matches a term if any element equals it)
 *   text       a string, analysed into terms and indexed for BM25 (src/text/); stored and returned
 *   sparse     a learned-sparse vector { term: weight } (weights finite, >= 0), indexed for
 *              inner-product search (src/sparse/)
 * Filters apply to the first four; text and sparse fields are searched with `text` / `sparse`.
 */
export type FieldType = 'keyword' | 'number' | 'boolean' | 'keyword[]' | 'text' | 'sparse';
export const FIELD_TYPES: readonly FieldType[] = ['keyword', 'number', 'boolean', 'keyword[]', 'text', 'sparse'];
/** The types filters compile against (columns of scalar values). */
export const FILTERABLE_TYPES: readonly FieldType[] = ['keyword', 'number', 'boolean', 'keyword[]'];

/** A declared field as the manifest records it: `id` keys its segment sections, never reused. */
export interface FieldDef {
  readonly name: string;
  readonly type: FieldType;
  readonly id: number;
  /** Text fields: the analyzer's name (src/text/analyzer.ts), 'english' by default. */
  readonly analyzer?: string;
  /** Text fields: the field whose text the collection's embedder turns into a record's vector when none is given. */
  readonly embed?: boolean;
}

/** A sparse vector as stored: term -> weight (finite, > 0), frozen. */
export type SparseValue = Readonly<Record<string, number>>;

export type FieldValue = string | number | boolean | readonly string[] | SparseValue;

/** Values of declared fields of one record, by field name (absent fields are missing keys). */
export type FieldValues = Readonly<Record<string, FieldValue>>;

/**
 * What the user may write in a schema: `{ price: 'number' }` or `{ price: { type: 'number' } }`;
 * text fields take options: `{ body: { type: 'text', analyzer: 'english', embed: true } }`.
 */
export type FieldSpec = FieldType | { type: FieldType; analyzer?: string; embed?: boolean };

/** Longest keyword (or keyword[] element), in UTF-16 code units. */
export const MAX_KEYWORD_LENGTH = 4096;
/** Most elements of a keyword[] value. */
export const MAX_KEYWORD_LIST = 1024;
/** Longest text value, in UTF-16 code units (1 Mi). */
export const MAX_TEXT_LENGTH = 1 << 20;
/** Most terms of a sparse vector, and the longest term (the sparse index's limits). */
export { SPARSE_MAX_TERMS as MAX_SPARSE_TERMS, SPARSE_MAX_TERM_LENGTH as MAX_SPARSE_TERM_LENGTH } from '../sparse/types.js';

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** Checks a field name: 1..64 characters, a letter or _ first, then letters, digits, _ . - */
export function checkFieldName(name: unknown): string {
  if (typeof name !== 'string' || !FIELD_NAME.test(name) || name === '__proto__') {
    throw new QuiverError('INVALID_ARGUMENT', `field name must match ${FIELD_NAME} (a letter or _ first, at most 64 characters), got ${describe(name)}`, {
      field: 'fields', expected: String(FIELD_NAME), received: describe(name),
    });
  }
  return name;
}

/** A schema entry's type and options; INVALID_ARGUMENT naming the field otherwise. */
export function parseFieldSpec(name: string, spec: unknown): { type: FieldType; analyzer?: string; embed?: boolean } {
  const isObject = typeof spec === 'object' && spec !== null && !Array.isArray(spec);
  const type = isObject ? (spec as { type?: unknown }).type : spec;
  if (!(FIELD_TYPES as readonly unknown[]).includes(type)) {
    throw new QuiverError('INVALID_ARGUMENT', `field "${name}" has type ${describe(type)}; expected one of ${FIELD_TYPES.join(', ')}`, {
      field: name, expected: FIELD_TYPES, received: describe(type),
    });
  }
  if (!isObject) return { type: type as FieldType };
  const allowed = type === 'text' ? ['type', 'analyzer', 'embed'] : ['type'];
  const o = spec as { analyzer?: unknown; embed?: unknown };
  for (const key of Object.keys(spec as object)) {
    if (!allowed.includes(key)) throw new QuiverError('INVALID_ARGUMENT', `field "${name}": unknown option "${key}" (allowed for ${type as string}: ${allowed.join(', ')})`, { field: name, received: key });
  }
  const out: { type: FieldType; analyzer?: string; embed?: boolean } = { type: type as FieldType };
  if (o.analyzer !== undefined) {
    if (typeof o.analyzer !== 'string' || o.analyzer.length === 0) throw new QuiverError('INVALID_ARGUMENT', `field "${name}": analyzer must be an analyzer name, got ${describe(o.analyzer)}`, { field: name, received: describe(o.analyzer) });
    out.analyzer = o.analyzer;
  }
  if (o.embed !== undefined) {
    if (typeof o.embed !== 'boolean') throw new QuiverError('INVALID_ARGUMENT', `field "${name}": embed must be a boolean, got ${describe(o.embed)}`, { field: name, received: describe(o.embed) });
    if (o.embed) out.embed = true;
  }
  return out;
}

/**
 * Checks `value` against `type`; returns the value to store (a frozen copy for keyword[]), or
 * throws INVALID_ARGUMENT {field, expected, received, ...where}.
 */
export function checkFieldValue(name: string, type: FieldType, value: unknown, where: Record<string, unknown>): FieldValue {
  const bad = (why: string): never => {
    throw new QuiverError('INVALID_ARGUMENT', `metadata field "${name}" is declared ${type}, ${why}`, { ...where, field: name, expected: type, received: describe(value) });
  };
  switch (type) {
    case 'keyword':
      if (typeof value !== 'string') return bad(`got ${describe(value)}`);
      checkKeyword(name, value, where);
      return value;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return bad(`got ${describe(value)}`);
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') return bad(`got ${describe(value)}`);
      return value;
    case 'keyword[]': {
      if (!Array.isArray(value)) return bad(`got ${describe(value)}`);
      if (value.length > MAX_KEYWORD_LIST) return bad(`got ${value.length} elements (at most ${MAX_KEYWORD_LIST})`);
      const out: string[] = [];
      for (let i = 0; i < value.length; i++) {
        const s = value[i] as unknown;
        if (typeof s !== 'string') return bad(`but element ${i} is ${describe(s)}`);
        checkKeyword(`${name}[${i}]`, s, where);
        out.push(s);
      }
      return Object.freeze(out);
    }
    case 'text':
      if (typeof value !== 'string') return bad(`got ${describe(value)}`);
      if (value.length > MAX_TEXT_LENGTH) return bad(`got ${value.length} characters (at most ${MAX_TEXT_LENGTH})`);
      checkWellFormed(value, `metadata field "${name}"`, { ...where, field: name });
      return value;
    case 'sparse':
      return checkSparseValue(name, value, where);
  }
}

/**
 * A sparse vector field's value: checked by the sparse index's own validator (checkSparseVector:
 * an object of term -> weight, weights finite and >= 0 within float32 range, terms 1..256
 * well-formed characters, at most 4,096 non-zero terms; zeros dropped), then rounded to float32
 * as the WAL stores it (a replayed record scores exactly like the original) and frozen, terms in
 * code-unit order. INVALID_ARGUMENT carries `where` and `field: name` in its details; `label`
 * names the value in messages.
 */
export function checkSparseValue(name: string, value: unknown, where: Record<string, unknown>, label = `metadata field "${name}"`): SparseValue {
  let checked: Readonly<Record<string, number>>;
  try {
    checked = checkSparseVector(value, label);
  } catch (e) {
    if (e instanceof QuiverError) throw new QuiverError(e.code, e.message, { ...e.details, ...where, field: name }, { cause: e });
    throw e;
  }
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const t of Object.keys(checked).sort()) {
    const f = Math.fround(checked[t]);
    if (f > 0) out[t] = f;
  }
  return Object.freeze(out);
}

function checkKeyword(name: string, s: string, where: Record<string, unknown>): void {
  if (s.length > MAX_KEYWORD_LENGTH) {
    throw new QuiverError('INVALID_ARGUMENT', `metadata field "${name}" is ${s.length} characters long (at most ${MAX_KEYWORD_LENGTH})`, { ...where, field: name, expected: `<= ${MAX_KEYWORD_LENGTH} characters`, received: s.length });
  }
  checkWellFormed(s, `metadata field "${name}"`, { ...where, field: name });
}

/** The result of splitting a record's metadata: declared values, and the rest as JSON ('' = none). */
export interface SplitMetadata {
  values: FieldValues;
  json: string;
}

export const NO_VALUES: FieldValues = Object.freeze(Object.create(null) as Record<string, FieldValue>);

/**
 * Splits validated metadata (a plain JSON object, or undefined) into declared values and the
 * opaque remainder. Throws INVALID_ARGUMENT when a declared field has the wrong type.
 * A declared key holding null or undefined counts as absent.
 */
export function splitMetadata(metadata: Record<string, unknown> | undefined, fields: readonly FieldDef[], where: Record<string, unknown>): SplitMetadata {
  if (metadata === undefined) return { values: NO_VALUES, json: '' };
  if (fields.length === 0) return { values: NO_VALUES, json: jsonOrEmpty(metadata) };
  let rest: Record<string, unknown> | null = null;
  let values: Record<string, FieldValue> | null = null;
  for (const f of fields) {
    if (!Object.prototype.hasOwnProperty.call(metadata, f.name)) continue;
    rest ??= { ...metadata };
    const v = metadata[f.name];
    delete rest[f.name];
    if (v === null || v === undefined) continue;
    values ??= Object.create(null) as Record<string, FieldValue>;
    values[f.name] = checkFieldValue(f.name, f.type, v, where);
  }
  return { values: values ?? NO_VALUES, json: jsonOrEmpty(rest ?? metadata) };
}

function jsonOrEmpty(o: Record<string, unknown>): string {
  for (const _ in o) return JSON.stringify(o);
  return '';
}

/**
 * Moves declared fields that `json` holds (written before the field was declared) into values,
 * when their value has the right type; a value of another type stays in the JSON. Returns the
 * input unchanged when nothing moves. `names`: the fields to look for.
 */
export function adoptFromJson(split: SplitMetadata, fields: readonly FieldDef[]): SplitMetadata {
  if (!split.json || fields.length === 0) return split;
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(split.json) as Record<string, unknown>;
  } catch {
    return split; // reported as CORRUPT_FILE when read
  }
  let values: Record<string, FieldValue> | null = null;
  for (const f of fields) {
    if (split.values[f.name] !== undefined || !Object.prototype.hasOwnProperty.call(obj, f.name)) continue;
    let v: FieldValue;
    try {
      v = checkFieldValue(f.name, f.type, obj[f.name], {});
    } catch {
      continue;
    }
    values ??= Object.assign(Object.create(null) as Record<string, FieldValue>, split.values);
    values[f.name] = v;
    delete obj[f.name];
  }
  if (!values) return split;
  return { values, json: jsonOrEmpty(obj) };
}

/**
 * The metadata object a user sees: the JSON remainder with the declared values put back
 * (a fresh object), or undefined when both are empty. Throws SyntaxError on bad JSON (callers
 * report CORRUPT_FILE with where it came from).
 */
export function joinMetadata(json: string, values: FieldValues | null): Record<string, unknown> | undefined {
  let out: Record<string, unknown> | undefined = json ? (JSON.parse(json) as Record<string, unknown>) : undefined;
  if (values) {
    for (const name in values) {
      const v = values[name];
      out ??= {};
      out[name] = Array.isArray(v) ? [...v] : typeof v === 'object' ? { ...(v as SparseValue) } : v;
    }
  }
  return out;
}

/** Type codes used in WAL records and segment column sections. */
export const FIELD_TYPE_CODES: Readonly<Record<FieldType, number>> = { keyword: 1, number: 2, boolean: 3, 'keyword[]': 4, text: 5, sparse: 6 };

export function fieldTypeOfCode(code: number): FieldType | undefined {
  return (Object.keys(FIELD_TYPE_CODES) as FieldType[]).find((t) => FIELD_TYPE_CODES[t] === code);
}
