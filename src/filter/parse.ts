import { QuiverError } from '../errors.js';
import type { FieldDef } from '../fields/types.js';
import { describe } from '../util/strings.js';
import type { Bounds, FilterNode, ParsedFilter } from './types.js';

/**
 * Validates a user filter against the schema's declared fields and turns it into a FilterNode
 * tree (once per search; compile.ts then compiles it per segment). Every mistake is
 * INVALID_ARGUMENT naming where it is in the filter: details { path, expected, received }, path
 * like `filter.$and[1].price.$gt`.
 */

/** Deepest nesting of objects accepted (a filter is written by hand or built by code; this is generous). */
export const MAX_FILTER_DEPTH = 32;
/** Most values in one $in / $nin, and most conditions in one $and / $or. */
export const MAX_FILTER_LIST = 65536;

const LOGICAL_OPS = ['$and', '$or', '$not'];
const FIELD_OPS = ['$eq', '$ne', '$in', '$nin', '$gt', '$gte', '$lt', '$lte', '$exists', '$not'];
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

const ALL: FilterNode = Object.freeze({ op: 'all' });
const NONE: FilterNode = Object.freeze({ op: 'none' });

function fail(path: string, message: string, expected: unknown, received: unknown): never {
  throw new QuiverError('INVALID_ARGUMENT', `${path}: ${message}`, { path, expected, received: describe(received) });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function not(child: FilterNode): FilterNode {
  if (child.op === 'all') return NONE;
  if (child.op === 'none') return ALL;
  if (child.op === 'not') return child.child;
  return { op: 'not', child };
}

function and(children: FilterNode[]): FilterNode {
  if (children.some((c) => c.op === 'none')) return NONE;
  const rest = children.filter((c) => c.op !== 'all');
  return rest.length === 0 ? ALL : rest.length === 1 ? rest[0] : { op: 'and', children: rest };
}

/**
 * Parses `filter` (a plain object) against `fields` (the collection's declared fields).
 * Throws INVALID_ARGUMENT with { path, expected, received } on any problem.
 */
export function parseFilter(filter: unknown, fields: readonly FieldDef[]): ParsedFilter {
  const byName = new Map(fields.map((f) => [f.name, f]));
  const used = new Map<string, FieldDef>();

  const parseObject = (v: unknown, path: string, depth: number): FilterNode => {
    if (!isPlainObject(v)) return fail(path, `expected an object of field conditions and $and/$or/$not, got ${describe(v)}`, 'object', v);
    if (depth > MAX_FILTER_DEPTH) return fail(path, `nested deeper than ${MAX_FILTER_DEPTH} levels`, `depth <= ${MAX_FILTER_DEPTH}`, v);
    const parts: FilterNode[] = [];
    for (const key of Object.keys(v)) {
      const value = v[key];
      const at = `${path}.${key}`;
      if (key.startsWith('$')) {
        if (key === '$and' || key === '$or') {
          if (!Array.isArray(value)) fail(at, `${key} expects a non-empty array of filters, got ${describe(value)}`, 'array of filters', value);
          if (value.length === 0) fail(at, `${key} needs at least one filter`, 'non-empty array', value);
          if (value.length > MAX_FILTER_LIST) fail(at, `${key} holds ${value.length} filters (at most ${MAX_FILTER_LIST})`, `<= ${MAX_FILTER_LIST} filters`, value);
          const children = value.map((c, i) => parseObject(c, `${at}[${i}]`, depth + 1));
          parts.push(key === '$and' ? and(children) : orOf(children));
        } else if (key === '$not') {
          parts.push(not(parseObject(value, at, depth + 1)));
        } else {
          const hint = FIELD_OPS.includes(key) ? ` (${key} applies to a field: { field: { ${key}: ... } })` : '';
          fail(at, `unknown operator "${key}"${hint}; expected ${LOGICAL_OPS.join(', ')} or a declared field`, LOGICAL_OPS, key);
        }
        continue;
      }
      const def = byName.get(key);
      if (!def) {
        const declared = [...byName.keys()];
        if (!FIELD_NAME.test(key)) fail(at, `"${key}" is not a field name`, declared, key);
        fail(at, `unknown field "${key}": filters run on declared fields only (declared: ${declared.length ? declared.join(', ') : 'none'}; declare more with addFields)`, declared, key);
      }
      if (def.type === 'text' || def.type === 'sparse') {
        fail(at, `"${key}" is a ${def.type} field: it is searched with the search's \`${def.type}\` query, not filtered (filters apply to keyword, number, boolean and keyword[] fields)`, 'keyword, number, boolean or keyword[] field', key);
      }
      used.set(def.name, def);
      parts.push(parseField(def, value!, at, depth + 1));
    }
    return and(parts);
  };

  const root = parseObject(filter, 'filter', 0);
  return { root, fields: [...used.values()] };
}

function orOf(children: FilterNode[]): FilterNode {
  if (children.some((c) => c.op === 'all')) return ALL;
  const rest = children.filter((c) => c.op !== 'none');
  return rest.length === 0 ? NONE : rest.length === 1 ? rest[0] : { op: 'or', children: rest };
}

/** A field's condition: a value (= $eq) or an object of operators (AND of them). */
function parseField(def: FieldDef, value: unknown, path: string, depth: number): FilterNode {
  if (!isPlainObject(value)) return eq(def, value, path);
  if (depth > MAX_FILTER_DEPTH) return fail(path, `nested deeper than ${MAX_FILTER_DEPTH} levels`, `depth <= ${MAX_FILTER_DEPTH}`, value);
  const keys = Object.keys(value);
  if (keys.length === 0) fail(path, `expected a ${def.type} value or operators (${FIELD_OPS.join(', ')}), got an empty object`, FIELD_OPS, value);
  const parts: FilterNode[] = [];
  for (const op of keys) {
    const v = value[op];
    const at = `${path}.${op}`;
    switch (op) {
      case '$eq': parts.push(eq(def, v, at)); break;
      case '$ne': parts.push(not(eq(def, v, at))); break;
      case '$in': parts.push(inList(def, v, at)); break;
      case '$nin': parts.push(not(inList(def, v, at))); break;
      case '$gt': parts.push(range(def, v, at, { loInclusive: false, hiInclusive: false }, 'lo')); break;
      case '$gte': parts.push(range(def, v, at, { loInclusive: true, hiInclusive: false }, 'lo')); break;
      case '$lt': parts.push(range(def, v, at, { loInclusive: false, hiInclusive: false }, 'hi')); break;
      case '$lte': parts.push(range(def, v, at, { loInclusive: false, hiInclusive: true }, 'hi')); break;
      case '$exists':
        if (typeof v !== 'boolean') fail(at, `$exists expects true or false, got ${describe(v)}`, 'boolean', v);
        parts.push(v ? { op: 'exists', field: def } : not({ op: 'exists', field: def }));
        break;
      case '$not': parts.push(not(parseField(def, v, at, depth + 1))); break;
      default: {
        const why = op.startsWith('$') ? `unknown operator "${op}"` : `"${op}" is not an operator (fields hold ${def.type} values, not objects)`;
        fail(at, `${why}; expected one of ${FIELD_OPS.join(', ')}`, FIELD_OPS, op);
      }
    }
  }
  return and(parts);
}

/** What a value of `def` must be in a filter. */
function expectedScalar(def: FieldDef): string {
  if (def.type === 'keyword[]') return 'string (keyword[] fields match element by element)';
  if (def.type === 'keyword') return 'string';
  return def.type;
}

/** Whether v is a value of the field's type. */
function isScalarOf(def: FieldDef, v: unknown): boolean {
  return def.type === 'number' ? typeof v === 'number' && !Number.isNaN(v)
    : def.type === 'boolean' ? typeof v === 'boolean'
      : typeof v === 'string';
}

/** Checks one filter value against the field's type. */
function scalar(def: FieldDef, v: unknown, path: string): string | number | boolean {
  if (!isScalarOf(def, v)) {
    const hint = v === null ? ' (to match rows without the field use { $exists: false })' : Number.isNaN(v) ? ' (NaN matches nothing and is rejected)' : '';
    fail(path, `field "${def.name}" is ${def.type}: expected a ${expectedScalar(def)}, got ${describe(v)}${hint}`, expectedScalar(def), v);
  }
  return v as string | number | boolean;
}

function eq(def: FieldDef, v: unknown, path: string): FilterNode {
  const x = scalar(def, v, path);
  if (def.type === 'number') return { op: 'numbers', field: def, values: [x as number] };
  if (def.type === 'boolean') return { op: 'bool', field: def, value: x as boolean };
  return { op: 'terms', field: def, terms: [x as string] };
}

function inList(def: FieldDef, v: unknown, path: string): FilterNode {
  if (!Array.isArray(v)) return fail(path, `expected an array of ${expectedScalar(def)} values, got ${describe(v)}`, `array of ${def.type === 'keyword[]' ? 'string' : def.type}`, v);
  if (v.length > MAX_FILTER_LIST) fail(path, `holds ${v.length} values (at most ${MAX_FILTER_LIST})`, `<= ${MAX_FILTER_LIST} values`, v);
  // each value checked, its path built only for the message of a wrong one (lists run to thousands)
  for (let i = 0; i < v.length; i++) if (!isScalarOf(def, v[i])) scalar(def, v[i], `${path}[${i}]`);
  const values = [...new Set(v as (string | number | boolean)[])];
  if (values.length === 0) return NONE;
  if (def.type === 'number') return { op: 'numbers', field: def, values: values as number[] };
  if (def.type === 'boolean') return values.length === 2 ? { op: 'exists', field: def } : { op: 'bool', field: def, value: values[0] as boolean };
  return { op: 'terms', field: def, terms: values as string[] };
}

function range(def: FieldDef, v: unknown, path: string, incl: { loInclusive: boolean; hiInclusive: boolean }, side: 'lo' | 'hi'): FilterNode {
  if (def.type === 'boolean') fail(path, `range operators apply to number and keyword fields; "${def.name}" is boolean`, 'number or keyword field', v);
  const x = scalar(def, v, path);
  const bounds: Bounds<number | string> = { ...incl, [side]: x };
  return def.type === 'number'
    ? { op: 'numberRange', field: def, bounds: bounds as Bounds<number> }
    : { op: 'termRange', field: def, bounds: bounds as Bounds<string> };
}
