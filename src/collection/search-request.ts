import { QuiverError, checkPositiveInt } from '../errors.js';
import { checkSparseValue, type FieldDef, type SparseValue } from '../fields/types.js';
import type { Filter } from '../filter/types.js';
import { checkFusion, fuse, type FusionSpec, type RankedList, type RetrieverName } from '../query/fusion.js';
import { getAnalyzer } from '../text/analyzer.js';
import { DEFAULT_BM25, type Bm25Params } from '../text/bm25.js';
import { describe, type VectorLike } from './validate.js';

/**
 * One search that may combine retrievers: `search({ text, vector, sparse, filter, k, fusion })`.
 *
 * - `text`: BM25 over the collection's text fields (all of them, or those named in `fields` with
 *   their boosts); when the collection embeds text (schema.embedder) and no `vector` is given,
 *   the text is also embedded by the collection's own embedder for a dense search.
 * - `vector`: dense search as `search(vector)` does.
 * - `sparse`: inner product over a sparse field (`sparseField`, default the only one).
 * With one retriever the hits are its own, with its scores; with several they are fused
 * (`fusion`: a z-scored weighted sum by default, or reciprocal rank fusion) over each retriever's top `depth` candidates.
 * Every hit says its rank and raw score in each retriever that found it.
 */
export interface SearchRequest {
  text?: string;
  vector?: VectorLike;
  sparse?: Record<string, number>;
  /** Text fields to search and their boosts, e.g. { title: 2, body: 1 } (default: every text field, boost 1). */
  fields?: Record<string, number>;
  /** The sparse field `sparse` searches (default: the collection's only sparse field). */
  sparseField?: string;
  /** Embed `text` for a dense search when no vector is given and the collection has an embedder (default true). */
  embed?: boolean;
  k?: number;
  filter?: Filter;
  fusion?: FusionSpec;
  /** Candidates each retriever contributes to fusion (default max(k, 100)). */
  depth?: number;
  /** BM25 parameters (default k1 = 0.9, b = 0.4, Anserini's). */
  bm25?: Partial<Bm25Params>;
  /** Score every row that holds a query term instead of pruning with block bounds (same results, slower; for checks). */
  exhaustive?: boolean;
  /** Sparse search: 'approx' (Seismic blocks, the default on large segments) or 'exact' (MaxScore). */
  sparseMode?: 'approx' | 'exact';
  includeMetadata?: boolean;
  includeVector?: boolean;
  /** Dense options, as in SearchOptions. */
  rerank?: number;
  ef?: number;
  nprobe?: number;
  recall?: number;
  exact?: boolean;
  withStats?: boolean;
}

export const SEARCH_REQUEST_KEYS = new Set([
  'text', 'vector', 'sparse', 'fields', 'sparseField', 'embed', 'k', 'filter', 'fusion', 'depth', 'bm25', 'exhaustive', 'sparseMode',
  'includeMetadata', 'includeVector', 'rerank', 'ef', 'nprobe', 'recall', 'exact', 'withStats',
]);

/** Longest query text, in UTF-16 code units. */
export const MAX_QUERY_TEXT = 65_536;

/** A request checked against the schema: what to run. */
export interface PlannedRequest {
  k: number;
  depth: number;
  text: { query: string; terms: Map<string, string[]>; boosts: Map<string, number>; params: Bm25Params; exhaustive: boolean } | null;
  /** Embed the text for a dense search. */
  embedText: boolean;
  sparse: { field: string; query: SparseValue; mode: 'approx' | 'exact' | undefined } | null;
  fusion: FusionSpec;
  retrievers: RetrieverName[];
}

/** True when `q` is a request object rather than a vector or a batch of vectors. */
export function isSearchRequest(q: unknown): q is SearchRequest {
  return typeof q === 'object' && q !== null && !Array.isArray(q) && !ArrayBuffer.isView(q);
}

function bad(message: string, details: Record<string, unknown>): never {
  throw new QuiverError('INVALID_ARGUMENT', message, details);
}

/** Validates a request against the schema's fields; INVALID_ARGUMENT naming the part otherwise. */
export function planRequest(r: SearchRequest, fields: readonly FieldDef[], embedder: string | undefined): PlannedRequest {
  for (const key of Object.keys(r)) {
    if (!SEARCH_REQUEST_KEYS.has(key)) bad(`unknown search request key "${key}" (allowed: ${[...SEARCH_REQUEST_KEYS].join(', ')})`, { field: key });
  }
  const k = r.k === undefined ? 10 : checkPositiveInt(r.k, 'k', 100_000);
  const depth = r.depth === undefined ? Math.max(k, 100) : checkPositiveInt(r.depth, 'depth', 100_000);
  const textFields = fields.filter((f) => f.type === 'text');
  let text: PlannedRequest['text'] = null;
  if (r.text !== undefined) {
    if (typeof r.text !== 'string') bad(`text must be a string, got ${describe(r.text)}`, { field: 'text', expected: 'string', received: describe(r.text) });
    if (r.text.length > MAX_QUERY_TEXT) bad(`text is ${r.text.length} characters long (at most ${MAX_QUERY_TEXT})`, { field: 'text', expected: `<= ${MAX_QUERY_TEXT}`, received: r.text.length });
    const boosts = new Map<string, number>();
    if (r.fields !== undefined) {
      if (typeof r.fields !== 'object' || r.fields === null || Array.isArray(r.fields)) bad(`fields must be an object {textField: boost}, got ${describe(r.fields)}`, { field: 'fields' });
      for (const [name, boost] of Object.entries(r.fields)) {
        const def = textFields.find((f) => f.name === name);
        if (!def) bad(`"${name}" is not a text field (text fields: ${textFields.map((f) => f.name).join(', ') || 'none'})`, { field: `fields.${name}`, expected: textFields.map((f) => f.name), received: name });
        if (typeof boost !== 'number' || !Number.isFinite(boost) || boost <= 0) bad(`the boost of "${name}" must be a finite number > 0, got ${describe(boost)}`, { field: `fields.${name}`, received: describe(boost) });
        boosts.set(name, boost);
      }
    } else {
      for (const f of textFields) boosts.set(f.name, 1);
    }
    const terms = new Map<string, string[]>();
    for (const name of boosts.keys()) {
      const def = textFields.find((f) => f.name === name)!;
      terms.set(name, getAnalyzer(def.analyzer ?? 'english').analyze(r.text));
    }
    const params = { ...DEFAULT_BM25 };
    if (r.bm25 !== undefined) {
      if (typeof r.bm25 !== 'object' || r.bm25 === null) bad(`bm25 must be an object { k1?, b? }, got ${describe(r.bm25)}`, { field: 'bm25' });
      for (const [key, v] of Object.entries(r.bm25)) {
        if (key !== 'k1' && key !== 'b') bad(`bm25 has unknown option "${key}" (allowed: k1, b)`, { field: `bm25.${key}` });
        const ok = typeof v === 'number' && Number.isFinite(v) && v >= 0 && (key === 'k1' ? v <= 100 : v <= 1);
        if (!ok) bad(`bm25.${key} must be a number in ${key === 'k1' ? '[0, 100]' : '[0, 1]'}, got ${describe(v)}`, { field: `bm25.${key}`, received: describe(v) });
        params[key] = v as number;
      }
    }
    if (r.exhaustive !== undefined && typeof r.exhaustive !== 'boolean') bad(`exhaustive must be a boolean, got ${describe(r.exhaustive)}`, { field: 'exhaustive' });
    if (textFields.length === 0 && !embedder) bad('the collection has no text fields to search and no embedder to embed the text (declare a field { type: "text" })', { field: 'text' });
    text = textFields.length ? { query: r.text, terms, boosts, params, exhaustive: r.exhaustive === true } : null;
  }
  if (r.embed !== undefined && typeof r.embed !== 'boolean') bad(`embed must be a boolean, got ${describe(r.embed)}`, { field: 'embed' });
  const embedText = r.text !== undefined && r.vector === undefined && embedder !== undefined && r.embed !== false;
  let sparse: PlannedRequest['sparse'] = null;
  if (r.sparse !== undefined) {
    const sparseFields = fields.filter((f) => f.type === 'sparse');
    let field: string;
    if (r.sparseField !== undefined) {
      if (!sparseFields.some((f) => f.name === r.sparseField)) bad(`"${String(r.sparseField)}" is not a sparse field (sparse fields: ${sparseFields.map((f) => f.name).join(', ') || 'none'})`, { field: 'sparseField', received: describe(r.sparseField) });
      field = r.sparseField;
    } else {
      if (sparseFields.length !== 1) bad(`sparse needs sparseField to say which sparse field to search (sparse fields: ${sparseFields.map((f) => f.name).join(', ') || 'none'})`, { field: 'sparseField', expected: sparseFields.map((f) => f.name) });
      field = sparseFields[0].name;
    }
    if (r.sparseMode !== undefined && r.sparseMode !== 'approx' && r.sparseMode !== 'exact') bad(`sparseMode must be 'approx' or 'exact', got ${describe(r.sparseMode)}`, { field: 'sparseMode' });
    sparse = { field, query: checkSparseValue('sparse', r.sparse, {}, 'the sparse query'), mode: r.sparseMode };
  } else if (r.sparseField !== undefined) {
    bad('sparseField is given without a sparse query', { field: 'sparseField' });
  }
  const retrievers: RetrieverName[] = [];
  if (text) retrievers.push('text');
  if (r.vector !== undefined || embedText) retrievers.push('vector');
  if (sparse) retrievers.push('sparse');
  if (retrievers.length === 0) bad('a search request needs text, vector or sparse', { expected: ['text', 'vector', 'sparse'] });
  return { k, depth, text, embedText, sparse, fusion: checkFusion(r.fusion), retrievers };
}

/** Fuses the retrievers' hit lists (keys identify rows across lists). */
export function fuseLists(lists: RankedList[], plan: PlannedRequest): ReturnType<typeof fuse> {
  if (lists.length === 1) {
    const l = lists[0];
    return l.keys.slice(0, plan.k).map((key, i) => ({ key, score: l.scores[i], ranks: { [l.name]: i + 1 }, scores: { [l.name]: l.scores[i] } }));
  }
  return fuse(lists, plan.fusion, plan.k);
}
