import type { Segment } from '../collection/segment.js';
import { ABSENT_TERM, type ColumnData, type TermDictionary } from '../fields/columns.js';
import { bitsetWords, countBits } from '../util/bitset.js';
import { columnOf } from './rows.js';
import type { Bounds, FilterNode, ParsedFilter } from './types.js';

/** A filter compiled for one segment. */
export interface CompiledFilter {
  /** u32[bitsetWords(count)]: bit i set = row i is live and matches. */
  readonly bits: Uint32Array;
  /** Live rows that match (the popcount of `bits`). */
  readonly matched: number;
}

/**
 * Compiles a parsed filter for one segment into the bitset of its live matching rows.
 *
 * Each leaf reads the field's column (rows.ts): keyword leaves become a table over the term
 * dictionary (a sorted dictionary turns a range into a range of term ordinals; strings are
 * compared per distinct term, never per row), then one pass over the rows' term ordinals; number
 * leaves compare the f64 column; boolean leaves are word-wise operations on the presence and value
 * bitsets. $and/$or/$not are word-wise AND/OR/NOT. Deleted rows (tombstones) never match.
 * Cost: O(rows) per leaf plus O(terms) per keyword leaf; no allocation per row.
 */
export function compileFilter(filter: ParsedFilter, seg: Segment): CompiledFilter {
  // a segment's rows never change, only its tombstones (and a mutable segment's row count): a
  // filter compiled for the same rows and deletes is the same bitset (applications repeat filters)
  const key = filterKey(filter);
  let cache = compiled.get(seg);
  const hit = cache?.get(key);
  if (hit && hit.count === seg.count && hit.deleted === seg.deleted) {
    cache!.delete(key); // most recently used last
    cache!.set(key, hit);
    return hit.result;
  }
  const result = compileUncached(filter, seg);
  if (!cache) { cache = new Map(); compiled.set(seg, cache); }
  cache.set(key, { count: seg.count, deleted: seg.deleted, result });
  if (cache.size > FILTER_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
  return result;
}

/** Compiled filters kept per segment (least recently used dropped first). */
export const FILTER_CACHE_ENTRIES = 16;
const compiled = new WeakMap<Segment, Map<string, { count: number; deleted: number; result: CompiledFilter }>>();
const keys = new WeakMap<ParsedFilter, string>();

/** A canonical text of a parsed filter (its tree, fields included), computed once per filter. */
function filterKey(filter: ParsedFilter): string {
  let k = keys.get(filter);
  if (k === undefined) { k = JSON.stringify(filter.root); keys.set(filter, k); }
  return k;
}

function compileUncached(filter: ParsedFilter, seg: Segment): CompiledFilter {
  const n = seg.count;
  const bits = evaluate(filter.root, seg, n);
  const tomb = seg.tombstones;
  const m = Math.min(bits.length, tomb.length);
  for (let w = 0; w < m; w++) bits[w] &= ~tomb[w];
  return { bits, matched: countBits(bits) };
}

/** A bitset of n rows with every bit below n set. */
function allRows(n: number): Uint32Array {
  const out = new Uint32Array(bitsetWords(n)).fill(0xffffffff);
  clearTail(out, n);
  return out;
}

/** Clears the bits at n and above in the last word. */
function clearTail(b: Uint32Array, n: number): void {
  if (n & 31) b[b.length - 1] &= (1 << (n & 31)) - 1;
}

function isEmpty(b: Uint32Array): boolean {
  for (let w = 0; w < b.length; w++) if (b[w] !== 0) return false;
  return true;
}

/** Rows of the segment (0..n-1) where `node` holds, deleted rows included (a fresh bitset the caller owns). */
function evaluate(node: FilterNode, seg: Segment, n: number): Uint32Array {
  const W = bitsetWords(n);
  switch (node.op) {
    case 'all': return allRows(n);
    case 'none': return new Uint32Array(W);
    case 'and': {
      const out = evaluate(node.children[0], seg, n);
      for (let c = 1; c < node.children.length && !isEmpty(out); c++) {
        const b = evaluate(node.children[c], seg, n);
        for (let w = 0; w < W; w++) out[w] &= b[w];
      }
      return out;
    }
    case 'or': {
      const out = evaluate(node.children[0], seg, n);
      for (let c = 1; c < node.children.length; c++) {
        const b = evaluate(node.children[c], seg, n);
        for (let w = 0; w < W; w++) out[w] |= b[w];
      }
      return out;
    }
    case 'not': {
      const out = evaluate(node.child, seg, n);
      for (let w = 0; w < W; w++) out[w] = ~out[w];
      clearTail(out, n);
      return out;
    }
    default:
      return leaf(node, columnOf(seg, node.field), n);
  }
}

type Leaf = Extract<FilterNode, { field: unknown }>;

function leaf(node: Leaf, col: ColumnData, n: number): Uint32Array {
  const W = bitsetWords(n);
  switch (col.type) {
    case 'number': {
      if (node.op === 'exists') return col.present.slice(0, W);
      const out = node.op === 'numbers' ? numbersIn(col.values, n, node.values) : node.op === 'numberRange' ? numbersWithin(col.values, n, node.bounds) : unreachable(node);
      for (let w = 0; w < W; w++) out[w] &= col.present[w];
      return out;
    }
    case 'boolean': {
      if (node.op === 'exists') return col.present.slice(0, W);
      if (node.op !== 'bool') return unreachable(node);
      const out = new Uint32Array(W);
      for (let w = 0; w < W; w++) out[w] = col.present[w] & (node.value ? col.values[w] : ~col.values[w]);
      return out;
    }
    case 'keyword': {
      const out = new Uint32Array(W);
      const ords = col.ords;
      if (node.op === 'exists') {
        for (let i = 0; i < n; i++) out[i >>> 5] |= +(ords[i] !== ABSENT_TERM) << (i & 31);
        return out;
      }
      const table = termTable(col.terms, node);
      if (!table) return out;
      // table[T] = 0 stands for ABSENT_TERM (clamped to T): no branch per row
      const T = col.terms.size;
      for (let i = 0; i < n; i++) out[i >>> 5] |= table[Math.min(ords[i], T)] << (i & 31);
      return out;
    }
    case 'keyword[]': {
      if (node.op === 'exists') return col.present.slice(0, W);
      const out = new Uint32Array(W);
      const table = termTable(col.terms, node);
      if (!table) return out;
      const { starts, ends, list } = col;
      for (let i = 0; i < n; i++) {
        for (let j = starts[i], e = ends[i]; j < e; j++) {
          if (table[list[j]] !== 0) { out[i >>> 5] |= 1 << (i & 31); break; }
        }
      }
      return out;
    }
    default:
      // parse.ts refuses filters on text and sparse fields
      return unreachable(node);
  }
}

// Row loops below set bits without a branch per row (bit |= condition << position): filters on
// unsorted data make the condition unpredictable, and a mispredicted branch per row cost ~4x.

function unreachable(node: FilterNode): never {
  throw new Error(`filter node ${node.op} does not apply to this column`);
}

/** Rows whose value is one of `values` (presence not checked). */
function numbersIn(vals: Float64Array, n: number, values: readonly number[]): Uint32Array {
  const out = new Uint32Array(bitsetWords(n));
  if (values.length === 1) {
    const x = values[0];
    for (let i = 0; i < n; i++) out[i >>> 5] |= +(vals[i] === x) << (i & 31);
    return out;
  }
  const set = new Set(values);
  for (let i = 0; i < n; i++) out[i >>> 5] |= +set.has(vals[i]) << (i & 31);
  return out;
}

/** Rows whose value is within bounds (presence not checked). */
function numbersWithin(vals: Float64Array, n: number, b: Bounds<number>): Uint32Array {
  const out = new Uint32Array(bitsetWords(n));
  const lo = b.lo ?? -Infinity, hi = b.hi ?? Infinity;
  const loIn = b.lo === undefined || b.loInclusive, hiIn = b.hi === undefined || b.hiInclusive;
  // one loop per bound kind, so the comparison in the loop is fixed
  if (loIn && hiIn) { for (let i = 0; i < n; i++) { const v = vals[i]; out[i >>> 5] |= (+(v >= lo) & +(v <= hi)) << (i & 31); } }
  else if (loIn) { for (let i = 0; i < n; i++) { const v = vals[i]; out[i >>> 5] |= (+(v >= lo) & +(v < hi)) << (i & 31); } }
  else if (hiIn) { for (let i = 0; i < n; i++) { const v = vals[i]; out[i >>> 5] |= (+(v > lo) & +(v <= hi)) << (i & 31); } }
  else { for (let i = 0; i < n; i++) { const v = vals[i]; out[i >>> 5] |= (+(v > lo) & +(v < hi)) << (i & 31); } }
  return out;
}

/**
 * u8[terms.size + 1]: 1 for the term ordinals the leaf accepts (the extra last entry, 0, answers
 * for absent rows); null when it accepts none (the leaf then matches no row). A sorted dictionary
 * finds terms and range ends by binary search.
 */
function termTable(terms: TermDictionary, node: Leaf): Uint8Array | null {
  const T = terms.size;
  if (T === 0) return null;
  const table = new Uint8Array(T + 1);
  let any = false;
  if (node.op === 'terms') {
    for (const t of node.terms) {
      const i = terms.find(t);
      if (i >= 0) { table[i] = 1; any = true; }
    }
  } else if (node.op === 'termRange') {
    const b = node.bounds;
    if (terms.sorted) {
      const a = b.lo === undefined ? 0 : b.loInclusive ? terms.lowerBound(b.lo) : upperBound(terms, b.lo);
      const z = b.hi === undefined ? T : b.hiInclusive ? upperBound(terms, b.hi) : terms.lowerBound(b.hi);
      if (a < z) { table.fill(1, a, z); any = true; }
    } else {
      for (let i = 0; i < T; i++) {
        const t = terms.term(i);
        if (b.lo !== undefined && (b.loInclusive ? t < b.lo : t <= b.lo)) continue;
        if (b.hi !== undefined && (b.hiInclusive ? t > b.hi : t >= b.hi)) continue;
        table[i] = 1;
        any = true;
      }
    }
  } else {
    return unreachable(node);
  }
  return any ? table : null;
}

/** The first ordinal whose term is > t (sorted dictionaries). */
function upperBound(terms: TermDictionary, t: string): number {
  const i = terms.lowerBound(t);
  return i < terms.size && terms.term(i) === t ? i + 1 : i;
}
