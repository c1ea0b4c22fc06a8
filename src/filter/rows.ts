import { ABSENT_TERM, type ColumnData, type TermDictionary } from '../fields/columns.js';
import { checkFieldValue, type FieldDef, type FieldValue } from '../fields/types.js';
import type { Segment } from '../collection/segment.js';
import { bitsetWords } from '../util/bitset.js';

/**
 * The column of a declared field in one segment, as filters read it (ColumnData).
 *
 * Sealed segments read from a file hold decoded columns (Segment.columnData). Other segments hold
 * per-row values, turned into the same arrays here: the mutable segment (rows as they arrive), a
 * sealed segment that took over a frozen mutable segment's rows, and any segment written before
 * the field was declared, whose values are adopted from each row's JSON exactly as a merge would
 * adopt them (a value of another type counts as absent, as it will after the merge).
 *
 * Arrays are built on the first filter that reads the field, cached per segment (dropped with it),
 * and extended by the rows appended since: a row never changes once written (an update or a
 * replacement is a new row), so only new rows cost anything at the next search.
 */
export function columnOf(seg: Segment, field: FieldDef): ColumnData {
  const stored = seg.columnData(field.name);
  if (stored) return stored;
  let byField = cache.get(seg);
  if (!byField) cache.set(seg, (byField = new Map()));
  const fromJson = !seg.hasField(field.name);
  let col = byField.get(field.name);
  // a field declared since the cache was built: its values moved from the JSON to the rows (same
  // values; rebuilt once rather than reasoning about which rows moved)
  if (!col || col.fromJson !== fromJson || col.type !== field.type || col.rows > seg.count) {
    col = new RowColumn(field, fromJson);
    byField.set(field.name, col);
  }
  col.extend(seg, seg.count);
  return col.data;
}

const cache = new WeakMap<Segment, Map<string, RowColumn>>();

/**
 * A row's value of `field`: its declared value, or (a segment without the field, whose rows then
 * hold no declared value for it) the value adopted from its JSON.
 */
function valueAt(seg: Segment, field: FieldDef, ord: number, fromJson: boolean): FieldValue | undefined {
  if (!fromJson) return seg.fieldValuesAt(ord)[field.name];
  const json = seg.metadataJsonAt(ord);
  if (!json) return undefined;
  let obj: unknown;
  try {
    obj = JSON.parse(json);
  } catch {
    return undefined; // reported as CORRUPT_FILE when the row is read
  }
  if (typeof obj !== 'object' || obj === null || !Object.prototype.hasOwnProperty.call(obj, field.name)) return undefined;
  try {
    return checkFieldValue(field.name, field.type, (obj as Record<string, unknown>)[field.name], {});
  } catch {
    return undefined;
  }
}

/** Terms in order of first appearance (not sorted: range filters compare each term). */
class ArrivalDictionary implements TermDictionary {
  readonly sorted = false;
  readonly list: string[] = [];
  private readonly ids = new Map<string, number>();
  get size(): number { return this.list.length; }
  term(ord: number): string { return this.list[ord]; }
  find(term: string): number { return this.ids.get(term) ?? -1; }
  lowerBound(): number { throw new Error('lowerBound on an unsorted dictionary'); }
  /** The ordinal of `term`, added when new. */
  add(term: string): number {
    let id = this.ids.get(term);
    if (id === undefined) {
      id = this.list.length;
      this.ids.set(term, id);
      this.list.push(term);
    }
    return id;
  }
}

function grownU32(a: Uint32Array<ArrayBuffer>, n: number, fill = 0): Uint32Array<ArrayBuffer> {
  if (a.length >= n) return a;
  const out = new Uint32Array(Math.max(n, a.length * 2, 64));
  out.set(a);
  if (fill) out.fill(fill, a.length);
  return out;
}

class RowColumn {
  rows = 0;
  readonly type: FieldDef['type'];
  private readonly terms = new ArrivalDictionary();
  private present = new Uint32Array(0);
  private ords = new Uint32Array(0); // keyword: term per row
  private starts = new Uint32Array(0); // keyword[]: row i's terms are list[starts[i] .. ends[i])
  private ends = new Uint32Array(0);
  private list = new Uint32Array(0);
  private listLength = 0;
  private nums = new Float64Array(0);
  private bools = new Uint32Array(0);
  private view: ColumnData | null = null;

  constructor(readonly field: FieldDef, readonly fromJson: boolean) {
    this.type = field.type;
  }

  /** Adds rows [rows, to) of `seg`. */
  extend(seg: Segment, to: number): void {
    if (to <= this.rows) return;
    const type = this.type, words = bitsetWords(to);
    if (type !== 'keyword') this.present = grownU32(this.present, words);
    if (type === 'keyword') this.ords = grownU32(this.ords, to, ABSENT_TERM);
    if (type === 'boolean') this.bools = grownU32(this.bools, words);
    if (type === 'keyword[]') { this.starts = grownU32(this.starts, to); this.ends = grownU32(this.ends, to); }
    if (type === 'number' && this.nums.length < to) {
      const grown = new Float64Array(Math.max(to, this.nums.length * 2, 64));
      grown.set(this.nums);
      this.nums = grown;
    }
    for (let ord = this.rows; ord < to; ord++) {
      const v = valueAt(seg, this.field, ord, this.fromJson);
      if (type === 'keyword[]') this.starts[ord] = this.ends[ord] = this.listLength;
      if (v === undefined) continue;
      const bit = 1 << (ord & 31), w = ord >>> 5;
      switch (type) {
        case 'keyword': this.ords[ord] = this.terms.add(v as string); break;
        case 'number': this.present[w] |= bit; this.nums[ord] = v as number; break;
        case 'boolean': this.present[w] |= bit; if (v === true) this.bools[w] |= bit; break;
        case 'keyword[]': {
          this.present[w] |= bit;
          const elems = v as readonly string[];
          this.list = grownU32(this.list, this.listLength + elems.length);
          for (const t of elems) this.list[this.listLength++] = this.terms.add(t);
          this.ends[ord] = this.listLength;
          break;
        }
      }
    }
    this.rows = to;
    this.view = null;
  }

  /** The arrays as ColumnData (views valid until the next extend). */
  get data(): ColumnData {
    if (this.view) return this.view;
    const terms = this.terms;
    switch (this.type) {
      case 'keyword': this.view = { type: 'keyword', terms, ords: this.ords }; break;
      case 'keyword[]': this.view = { type: 'keyword[]', terms, present: this.present, starts: this.starts, ends: this.ends, list: this.list }; break;
      case 'number': this.view = { type: 'number', present: this.present, values: this.nums }; break;
      case 'boolean': this.view = { type: 'boolean', present: this.present, values: this.bools }; break;
    }
    return this.view!;
  }
}
