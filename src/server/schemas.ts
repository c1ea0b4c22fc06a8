import { Type, type Static, type TSchema } from 'typebox';
import { MAX_QUERY_TEXT } from '../collection/search-request.js';
import { MAX_SPARSE_TERM_LENGTH, MAX_SPARSE_TERMS } from '../fields/types.js';
import type { ServerLimits } from './limits.js';
import { COLLECTION_NAME_PATTERN } from './names.js';

/**
 * The HTTP API's shapes, in TypeBox: each schema validates requests (Fastify, with unknown fields
 * refused), serializes responses, becomes the OpenAPI document (/openapi.json) and gives the
 * TypeScript types below, which the typed client (src/client/) uses as its signatures. Limits
 * (vector length, batch sizes, k, text length, sparse terms) are part of the schemas, so they are
 * documented where they apply.
 */

/** Any JSON object (metadata, filters, engine details that grow over time). */
const JsonObject = (description: string) => Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true, description });

/** An object with any keys whose values all follow `value` (JSON Schema additionalProperties). */
const MapOf = <V extends TSchema>(value: V, options: Record<string, unknown>) => Type.Unsafe<Record<string, Static<V>>>({ type: 'object', additionalProperties: value, ...options });

export const Metric = Type.Enum(['cosine', 'dot', 'l2'], { description: 'similarity; larger scores are closer (cosine similarity, inner product, minus squared L2 distance)' });
export const FieldType = Type.Enum(['keyword', 'number', 'boolean', 'keyword[]', 'text', 'sparse'], {
  description: 'keyword, number, boolean, keyword[]: filterable columns; text: BM25-searched with `text`; sparse: {term: weight} searched with `sparse`',
});
export const RetrieverName = Type.Enum(['text', 'vector', 'sparse']);

export const ErrorResponse = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'stable QuiverError code, e.g. DIMENSION_MISMATCH, NOT_FOUND, UNAUTHENTICATED' }),
    message: Type.String(),
    details: JsonObject('structured fields such as expected, received, path'),
  }),
}, { description: 'every 4xx and 5xx response' });

export const CollectionParams = Type.Object({
  name: Type.String({ pattern: COLLECTION_NAME_PATTERN, description: 'collection name: lowercase letters, digits, _ and -, 1..64 characters' }),
});

export const RecordParams = Type.Object({
  name: CollectionParams.properties.name,
  id: Type.String({ minLength: 1, maxLength: 1024, description: 'record id (URL-encoded)' }),
});

const NormalizedSchema = Type.Object({
  dimension: Type.Integer(),
  metric: Metric,
  index: Type.String({ description: 'canonical index spec' }),
  fields: MapOf(FieldType, { description: 'declared metadata fields by name' }),
  analyzers: Type.Optional(MapOf(Type.String(), { description: 'text fields\' analyzers by field name' })),
  embedder: Type.Optional(Type.String({ description: 'model id of the embedder that makes the vectors from text' })),
});

const SegmentInfo = Type.Object({
  number: Type.Integer(),
  state: Type.String(),
  rows: Type.Integer(),
  deleted: Type.Integer(),
  fileBytes: Type.Integer(),
  memoryBytes: Type.Integer(),
  index: Type.String(),
}, { additionalProperties: true });

const CollectionInfo = Type.Object({
  count: Type.Integer({ description: 'live records' }),
  segments: Type.Integer({ description: 'segments holding live records' }),
  vectorBytes: Type.Integer(),
  indexBytes: Type.Integer({ description: 'bytes the indexes hold in memory' }),
  kernelMemoryBytes: Type.Integer(),
  kernels: Type.String(),
  walBytes: Type.Integer({ description: 'bytes in the current write-ahead log file' }),
  walGeneration: Type.Union([Type.Integer(), Type.Null()]),
  manifestGeneration: Type.Integer(),
  appliedSeq: Type.Integer({ description: 'sequence number of the last write committed (a search after a write answered 2xx sees it)' }),
  segmentList: Type.Array(SegmentInfo),
  recovery: Type.Object({
    walFiles: Type.Integer(),
    walRecords: Type.Integer({ description: 'write-ahead log records replayed at open' }),
    tornTail: Type.Optional(Type.Object({ file: Type.String(), offset: Type.Integer(), droppedBytes: Type.Integer(), reason: Type.String() }, { description: 'an unacknowledged, partly written tail dropped at open' })),
    orphansRemoved: Type.Array(Type.String()),
  }, { additionalProperties: true, description: 'what opening the collection recovered' }),
  pendingCleanup: Type.Array(Type.String()),
}, { additionalProperties: true });

export const CollectionDescription = Type.Object({
  name: Type.String(),
  schema: NormalizedSchema,
  info: CollectionInfo,
});

export const CollectionList = Type.Object({
  collections: Type.Array(Type.Object({ name: Type.String() })),
});

export const Dropped = Type.Object({ name: Type.String(), dropped: Type.Boolean() });
export const Upserted = Type.Object({ upserted: Type.Integer({ description: 'records written (durable when this response is sent)' }) });
export const Deleted = Type.Object({ deleted: Type.Integer({ description: 'records that existed and were deleted (durable when this response is sent)' }) });

export const StoredRecord = Type.Object({
  id: Type.String(),
  vector: Type.Array(Type.Number()),
  metadata: Type.Optional(JsonObject('the record\'s metadata')),
});

/** One value per retriever that found the hit. */
const PerRetriever = <V extends TSchema>(value: V, description: string) => Type.Object({
  text: Type.Optional(value), vector: Type.Optional(value), sparse: Type.Optional(value),
}, { description });

export const Hit = Type.Object({
  id: Type.String(),
  score: Type.Number({ description: 'larger is closer: the retriever\'s own score when one ran (cosine, dot or -L2 for vectors, BM25 for text, inner product for sparse), else the fused score' }),
  ranks: Type.Optional(PerRetriever(Type.Integer({ minimum: 1 }), 'rank (from 1) of the hit in each retriever that found it')),
  scores: Type.Optional(PerRetriever(Type.Number(), 'raw score of the hit in each retriever that found it')),
  metadata: Type.Optional(JsonObject('the record\'s metadata (unless includeMetadata is false)')),
  vector: Type.Optional(Type.Array(Type.Number(), { description: 'with includeVector: true' })),
});

const FilterStats = Type.Object({
  matched: Type.Integer(),
  live: Type.Integer(),
  selectivity: Type.Number(),
  paths: Type.Object({ exact: Type.Integer(), index: Type.Integer(), none: Type.Integer() }),
  segments: Type.Array(Type.Object({ segment: Type.Integer(), live: Type.Integer(), matched: Type.Integer(), path: Type.String() })),
}, { additionalProperties: true, description: 'what the filter matched and the path each segment took' });

export const SearchStats = Type.Object({
  retrievers: Type.Array(RetrieverName, { description: 'the retrievers that ran' }),
  text: Type.Optional(Type.Object({
    terms: Type.Integer({ description: 'query terms after analysis, over the fields searched' }),
    scored: Type.Integer({ description: 'documents scored in full' }),
    windowsSkipped: Type.Integer({ description: 'row windows skipped on their BM25 upper bounds' }),
    candidates: Type.Integer(),
  }, { additionalProperties: true })),
  vector: Type.Optional(Type.Object({
    segments: Type.Integer(),
    scanned: Type.Integer({ description: 'vectors or codes scored' }),
    reranked: Type.Integer({ description: 'full vectors scored after compressed scans' }),
    filter: Type.Optional(FilterStats),
    candidates: Type.Integer(),
    embedded: Type.Boolean({ description: 'the query vector was embedded from the text' }),
  }, { additionalProperties: true })),
  sparse: Type.Optional(Type.Object({
    scored: Type.Integer(),
    blocksSkipped: Type.Integer(),
    candidates: Type.Integer(),
  }, { additionalProperties: true })),
  fusion: Type.Optional(Type.String({ description: 'the fusion method, when several retrievers ran' })),
}, { additionalProperties: true, description: 'what the search did, per retriever' });

/** The answer to one search request (or one query of a batch). */
export const SearchHits = Type.Object({
  hits: Type.Array(Hit, { description: 'best first' }),
  stats: Type.Optional(SearchStats),
});

/** The answer to a batch: one entry per request or vector, in order. */
export const SearchBatchResults = Type.Object({
  results: Type.Array(SearchHits, { description: 'one entry per request (or per vector of `vectors`), in order' }),
});

/**
 * What the search route sends: `{hits, stats?}` for one request, `{results}` for a batch. One
 * object with both parts optional rather than a union, so the serializer never has to try which
 * branch a (possibly large) answer matches.
 */
export const SearchResponse = Type.Object({
  hits: Type.Optional(SearchHits.properties.hits),
  stats: Type.Optional(SearchStats),
  results: Type.Optional(SearchBatchResults.properties.results),
});

export const Health = Type.Object({ status: Type.String() });

/** The request schemas, whose limits come from the server's configuration. */
export function requestSchemas(limits: ServerLimits) {
  const Vector = Type.Array(Type.Number(), { maxItems: limits.dimension, description: `the collection's dimension of finite numbers (at most ${limits.dimension})` });
  const Id = Type.String({ minLength: 1, maxLength: 1024 });
  const NonNegative = Type.Number({ minimum: 0 });
  const Weights = Type.Object({ text: Type.Optional(NonNegative), vector: Type.Optional(NonNegative), sparse: Type.Optional(NonNegative) }, {
    additionalProperties: false, description: 'weight of each retriever (default 1)',
  });
  const Rrf = Type.Object({
    method: Type.Literal('rrf'),
    k: Type.Optional(Type.Number({ minimum: 0, description: 'the constant of 1 / (k + rank), default 60' })),
    weights: Type.Optional(Weights),
  }, { additionalProperties: false, description: 'reciprocal rank fusion' });
  const Weighted = Type.Object({
    method: Type.Literal('weighted'),
    normalize: Type.Optional(Type.Enum(['minmax', 'zscore'], { description: 'how each list\'s scores are normalised before the weighted sum' })),
    weights: Type.Optional(Weights),
  }, { additionalProperties: false, description: 'weighted sum of normalised scores' });
  // a discriminator (ajv and OpenAPI both read it) validates against the branch `method` names,
  // so an error says what is wrong with that branch rather than listing both
  const Fusion = Type.Unsafe<Static<typeof Rrf> | Static<typeof Weighted>>({
    type: 'object',
    required: ['method'],
    discriminator: { propertyName: 'method' },
    oneOf: [Rrf, Weighted],
    description: 'how several retrievers\' lists are fused (default: weighted with z-scores)',
  });
  const SparseVector = MapOf(Type.Number({ minimum: 0 }), {
    maxProperties: MAX_SPARSE_TERMS,
    description: `a learned-sparse vector {term: weight >= 0}, at most ${MAX_SPARSE_TERMS} terms of 1..${MAX_SPARSE_TERM_LENGTH} characters`,
  });
  /** What every search may say about its vector retriever and its hits. */
  const CommonOptions = {
    k: Type.Optional(Type.Integer({ minimum: 1, maximum: limits.k, description: 'hits per request (default 10)' })),
    filter: Type.Optional(JsonObject('Mongo-like filter on declared fields, e.g. {"year": {"$gte": 2020}}')),
    recall: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'target recall@k of approximate indexes' })),
    ef: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'HNSW beam width' })),
    nprobe: Type.Optional(Type.Integer({ minimum: 1, maximum: 1 << 20, description: 'IVF lists scanned' })),
    rerank: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'rerank rerank*k candidates with full vectors' })),
    exact: Type.Optional(Type.Boolean({ description: 'score every (matching) record exactly' })),
    includeMetadata: Type.Optional(Type.Boolean({ description: 'default true' })),
    includeVector: Type.Optional(Type.Boolean({ description: 'default false' })),
    withStats: Type.Optional(Type.Boolean({ description: 'add what each search did' })),
  };
  const depthLimit = Math.max(1000, limits.k);
  const SearchRequest = Type.Object({
    text: Type.Optional(Type.String({ maxLength: MAX_QUERY_TEXT, description: `query text (at most ${MAX_QUERY_TEXT} characters): BM25 over the text fields, and embedded for a dense search when the collection has an embedder and no vector is given` })),
    vector: Type.Optional(Vector),
    sparse: Type.Optional(SparseVector),
    sparseField: Type.Optional(Type.String({ maxLength: 64, description: 'the sparse field `sparse` searches (default: the only one)' })),
    fields: Type.Optional(MapOf(Type.Number({ exclusiveMinimum: 0 }), { maxProperties: 1024, description: 'text fields to search and their boosts, e.g. {"title": 2, "body": 1} (default: every text field, boost 1)' })),
    embed: Type.Optional(Type.Boolean({ description: 'embed `text` for a dense search when no vector is given (default true when the collection has an embedder)' })),
    fusion: Type.Optional(Fusion),
    depth: Type.Optional(Type.Integer({ minimum: 1, maximum: depthLimit, description: `candidates each retriever contributes to fusion (default max(k, 100), at most ${depthLimit})` })),
    bm25: Type.Optional(Type.Object({
      k1: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
      b: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    }, { additionalProperties: false, description: 'BM25 parameters (default k1 = 0.9, b = 0.4)' })),
    exhaustive: Type.Optional(Type.Boolean({ description: 'BM25: score every row holding a query term instead of pruning (same results, slower)' })),
    sparseMode: Type.Optional(Type.Enum(['approx', 'exact'], { description: 'sparse search: approx (block pruning, the default on large segments) or exact' })),
    ...CommonOptions,
  }, { additionalProperties: false, description: 'one search: any of text, vector and sparse; several are fused' });
  const VectorBatch = Type.Object({
    vectors: Type.Array(Vector, { maxItems: limits.queries, description: `a batch of at most ${limits.queries} query vectors sharing the options` }),
    ...CommonOptions,
  }, { additionalProperties: false, description: 'a batch of vector queries with shared options' });
  return {
    CreateCollection: Type.Object({
      dimension: Type.Integer({ minimum: 1, maximum: limits.dimension }),
      metric: Type.Optional(Metric),
      index: Type.Optional(Type.String({ maxLength: 256, description: 'index spec, e.g. Flat, "HNSW16,SQ8,Rerank", "IVF,RaBitQ4,Rerank" (default Flat)' })),
      fields: Type.Optional(MapOf(Type.Union([FieldType, Type.Object({
        type: FieldType,
        analyzer: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'text fields: the analyzer (default english)' })),
        embed: Type.Optional(Type.Boolean({ description: 'text fields: the one field whose text the embedder turns into vectors' })),
      }, { additionalProperties: false })]), {
        maxProperties: 1024,
        description: 'declared metadata fields, e.g. {"lang": "keyword", "year": "number", "body": {"type": "text", "embed": true}, "splade": "sparse"}',
      })),
      embedder: Type.Optional(Type.String({ pattern: '^[\\x21-\\x7e]{1,200}$', description: 'model id of the embedder that makes vectors from the text of the field declared embed: true, e.g. "use-lite-512" (dimension 512); records may then omit vector' })),
    }, { additionalProperties: false }),
    Upsert: Type.Object({
      records: Type.Array(Type.Object({
        id: Id,
        vector: Type.Optional(Type.Array(Type.Number(), { maxItems: limits.dimension, description: `the collection's dimension of finite numbers; may be left out when the collection embeds text` })),
        metadata: Type.Optional(JsonObject('JSON metadata; values of declared fields must have their type (text: a string; sparse: {term: weight})')),
      }, { additionalProperties: false }), { maxItems: limits.batchSize, description: `at most ${limits.batchSize} records; all or nothing` }),
    }, { additionalProperties: false }),
    Delete: Type.Object({
      ids: Type.Array(Id, { maxItems: limits.batchSize, description: `at most ${limits.batchSize} ids; ids not present are ignored` }),
    }, { additionalProperties: false }),
    SearchRequest,
    VectorBatch,
    Search: Type.Union([
      SearchRequest,
      Type.Array(SearchRequest, { maxItems: limits.queries, description: `a batch of at most ${limits.queries} search requests, answered as {results}` }),
      VectorBatch,
    ], { description: 'one request {text?, vector?, sparse?, ...} answered as {hits}; or a batch (an array of requests, or {vectors}) answered as {results}' }),
  };
}

type RequestSchemas = ReturnType<typeof requestSchemas>;
export type CreateCollectionBody = Static<RequestSchemas['CreateCollection']>;
export type UpsertBody = Static<RequestSchemas['Upsert']>;
export type UpsertRecordBody = UpsertBody['records'][number];
export type DeleteBody = Static<RequestSchemas['Delete']>;
/** One search request: any of text, vector and sparse, with options. */
export type SearchRequestBody = Static<RequestSchemas['SearchRequest']>;
/** A batch of vector queries sharing their options. */
export type VectorBatchBody = Static<RequestSchemas['VectorBatch']>;
export type SearchBody = Static<RequestSchemas['Search']>;
export type FusionBody = NonNullable<SearchRequestBody['fusion']>;
export type SearchResult = Static<typeof SearchResponse>;
export type SearchHitsResult = Static<typeof SearchHits>;
export type SearchBatchResult = Static<typeof SearchBatchResults>;
export type SearchStatsBody = Static<typeof SearchStats>;
export type HitBody = Static<typeof Hit>;
export type CollectionView = Static<typeof CollectionDescription>;
export type CollectionListBody = Static<typeof CollectionList>;
export type DroppedBody = Static<typeof Dropped>;
export type UpsertedBody = Static<typeof Upserted>;
export type DeletedBody = Static<typeof Deleted>;
export type StoredRecordBody = Static<typeof StoredRecord>;
export type HealthBody = Static<typeof Health>;
export type ErrorResponseBody = Static<typeof ErrorResponse>;
export type { TSchema };
