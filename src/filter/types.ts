import type { FieldDef } from '../fields/types.js';

/**
 * The filter language (Mongo-like), over declared fields only (keyword, number, boolean,
 * keyword[]; see src/fields/types.ts):
 *
 *   { field: value }                      equality ($eq)
 *   { field: { $eq, $ne, $in: [...], $nin: [...], $gt, $gte, $lt, $lte, $exists: bool, $not: {...} } }
 *   { $and: [f, ...] }  { $or: [f, ...] }  { $not: f }
 *   several keys in one object (fields or operators) = AND of them; {} matches every row.
 *
 * keyword[] fields match element by element: $eq 'x' = contains x, $ne 'x' = does not contain x,
 * $in = contains any, $nin = contains none, a range = some element is in the range.
 * A row without a value for the field (key missing, null, or a value of another type written
 * before the field was declared) matches $ne, $nin, $exists: false and the negations ($not) of
 * what it does not match; nothing else (Mongo's rule).
 * Ranges apply to numbers and to keywords (UTF-16 code-unit order, as JavaScript's < compares).
 */
export type FilterScalar = string | number | boolean;

/** Operators on one field. */
export interface FieldCondition {
  $eq?: FilterScalar;
  $ne?: FilterScalar;
  $in?: readonly FilterScalar[];
  $nin?: readonly FilterScalar[];
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  $exists?: boolean;
  /** Rows where the inner condition does not hold (rows without the field included). */
  $not?: FieldCondition | FilterScalar;
}

/** A filter: field conditions and the logical operators $and, $or, $not. */
export interface Filter {
  $and?: readonly Filter[];
  $or?: readonly Filter[];
  $not?: Filter;
  [field: string]: FilterScalar | FieldCondition | readonly Filter[] | Filter | undefined;
}

/** Bounds of a range; an absent bound is open. */
export interface Bounds<T> {
  readonly lo?: T;
  readonly loInclusive: boolean;
  readonly hi?: T;
  readonly hiInclusive: boolean;
}

/**
 * A validated filter as a tree (what parse.ts makes and compile.ts compiles per segment). Leaves
 * name the field; $ne, $nin and $exists: false are `not` over the positive leaf.
 */
export type FilterNode =
  | { readonly op: 'all' }
  | { readonly op: 'none' }
  | { readonly op: 'and' | 'or'; readonly children: readonly FilterNode[] }
  | { readonly op: 'not'; readonly child: FilterNode }
  /** The row has a value. */
  | { readonly op: 'exists'; readonly field: FieldDef }
  /** keyword: the value is one of `terms`; keyword[]: some element is. */
  | { readonly op: 'terms'; readonly field: FieldDef; readonly terms: readonly string[] }
  /** keyword: the value is within bounds; keyword[]: some element is. */
  | { readonly op: 'termRange'; readonly field: FieldDef; readonly bounds: Bounds<string> }
  /** number: the value is one of `values`. */
  | { readonly op: 'numbers'; readonly field: FieldDef; readonly values: readonly number[] }
  | { readonly op: 'numberRange'; readonly field: FieldDef; readonly bounds: Bounds<number> }
  /** boolean: the value equals `value`. */
  | { readonly op: 'bool'; readonly field: FieldDef; readonly value: boolean };

/** A filter parsed once per search, compiled per segment. */
export interface ParsedFilter {
  readonly root: FilterNode;
  /** Declared fields the filter reads. */
  readonly fields: readonly FieldDef[];
}
