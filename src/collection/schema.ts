import { checkPositiveInt, QuiverError } from '../errors.js';
import { checkFieldName, parseFieldSpec, type FieldDef, type FieldSpec, type FieldType } from '../fields/types.js';
import { getAnalyzer } from '../text/analyzer.js';
import { formatIndexSpec, parseIndexSpec } from '../index/spec.js';
import type { ManifestSchema } from '../storage/manifest.js';
import { describe, METRICS, type Metric } from './validate.js';

export interface CollectionSchema {
  /** Vector dimension, 1..65536. */
  dimension: number;
  /** Similarity: 'cosine' (default), 'dot' (inner product) or 'l2' (Euclidean). */
  metric?: Metric;
  /**
   * Index spec (default 'Flat', exact). Compressed: e.g. 'Flat,SQ8', 'Flat,RaBitQ4,Rerank',
   * 'Flat,PCA128,SQ8,Rerank10': sealed segments keep only codes in memory and rerank from the
   * full vectors in their files. See src/index/spec.ts for the grammar.
   */
  index?: string;
  /**
   * Declared metadata fields, stored as typed columns (what filters will run on), e.g.
   * `{ category: 'keyword', price: 'number', inStock: 'boolean', tags: 'keyword[]' }`.
   * Metadata keys not declared here are kept as opaque JSON. Fields can be added later
   * (Collection.addFields, or opening with a schema that declares more); never removed or retyped.
   */
  fields?: Record<string, FieldSpec>;
  /**
   * The model id of the embedder that makes this collection's vectors from text (e.g.
   * 'use-lite-512'): recorded so that queries are never embedded by another model than the
   * documents. Needs a text field declared with `embed: true`; the embedder itself is passed to
   * create/open (`embedder` option) or registered under that id (quiverdb/node registers
   * 'use-lite-512').
   */
  embedder?: string;
}

/** A schema as the collection reports it: every part present, fields by name. */
export interface NormalizedSchema {
  dimension: number;
  metric: Metric;
  index: string;
  fields: Record<string, FieldType>;
  /** Text fields' analyzers by field name (present when the collection has text fields). */
  analyzers?: Record<string, string>;
  /** The embedder's model id, when the collection embeds text. */
  embedder?: string;
}

/** The analyzer of a text field declared without one (Anserini's default English pipeline). */
export const DEFAULT_ANALYZER = 'english';

const SCHEMA_KEYS = new Set(['dimension', 'metric', 'index', 'fields', 'embedder']);

/** Checks a user schema and returns the manifest form (canonical spec text, fields in order with ids). */
export function normalizeSchema(schema: CollectionSchema): ManifestSchema {
  if (typeof schema !== 'object' || schema === null) {
    throw new QuiverError('INVALID_ARGUMENT', `schema must be an object {dimension, metric?, index?, fields?}, got ${describe(schema)}`, { received: describe(schema) });
  }
  for (const key of Object.keys(schema)) {
    if (!SCHEMA_KEYS.has(key)) throw new QuiverError('INVALID_ARGUMENT', `unknown schema field "${key}" (allowed: ${[...SCHEMA_KEYS].join(', ')})`, { field: key });
  }
  const dimension = checkPositiveInt(schema.dimension, 'dimension', 65536);
  const metric = schema.metric ?? 'cosine';
  if (!METRICS.includes(metric)) {
    throw new QuiverError('INVALID_ARGUMENT', `metric must be one of ${METRICS.join(', ')}, got ${describe(metric)}`, { field: 'metric', expected: METRICS, received: metric });
  }
  // canonical text, so that equal specs compare equal (e.g. against a stored schema)
  const index = formatIndexSpec(parseIndexSpec(schema.index ?? 'Flat'));
  const fields = normalizeFields(schema.fields ?? {});
  const embedField = fields.filter((f) => f.embed);
  if (schema.embedder !== undefined) {
    if (typeof schema.embedder !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(schema.embedder)) {
      throw new QuiverError('INVALID_ARGUMENT', `embedder must be a model id (1..200 printable ASCII characters), got ${describe(schema.embedder)}`, { field: 'embedder', received: describe(schema.embedder) });
    }
    if (embedField.length !== 1) {
      throw new QuiverError('INVALID_ARGUMENT', `a schema with an embedder needs exactly one text field declared with embed: true (the text it embeds), got ${embedField.length}`, { field: 'fields', expected: 1, received: embedField.length });
    }
  } else if (embedField.length) {
    throw new QuiverError('INVALID_ARGUMENT', `field "${embedField[0].name}" is declared embed: true, but the schema names no embedder (e.g. embedder: 'use-lite-512')`, { field: embedField[0].name });
  }
  return { dimension, metric, index, fields, ...(schema.embedder !== undefined ? { embedder: schema.embedder } : {}) };
}

/** Field declarations in the order given, with ids 1, 2, ... (the engine renumbers fields it adds). */
export function normalizeFields(fields: unknown): FieldDef[] {
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
    throw new QuiverError('INVALID_ARGUMENT', `fields must be an object {name: type}, got ${describe(fields)}`, { field: 'fields', received: describe(fields) });
  }
  const out: FieldDef[] = [];
  for (const [name, spec] of Object.entries(fields)) {
    checkFieldName(name);
    const parsed = parseFieldSpec(name, spec);
    if (parsed.type === 'text') {
      const analyzer = parsed.analyzer ?? DEFAULT_ANALYZER;
      getAnalyzer(analyzer); // UNKNOWN_SPEC listing the analyzers when there is no such one
      out.push(Object.freeze({ name, type: parsed.type, id: out.length + 1, analyzer, ...(parsed.embed ? { embed: true } : {}) }));
    } else {
      out.push(Object.freeze({ name, type: parsed.type, id: out.length + 1 }));
    }
  }
  if (out.length > 1024) throw new QuiverError('INVALID_ARGUMENT', `at most 1024 declared fields, got ${out.length}`, { field: 'fields', expected: '<= 1024', received: out.length });
  return out;
}

/** The schema as users see it. */
export function publicSchema(s: ManifestSchema): NormalizedSchema {
  const fields: Record<string, FieldType> = {};
  const analyzers: Record<string, string> = {};
  for (const f of s.fields) {
    fields[f.name] = f.type;
    if (f.analyzer) analyzers[f.name] = f.analyzer;
  }
  const out: NormalizedSchema = { dimension: s.dimension, metric: s.metric, index: s.index, fields };
  if (Object.keys(analyzers).length) out.analyzers = analyzers;
  if (s.embedder) out.embedder = s.embedder;
  return out;
}
