import { QuiverError } from '../errors.js';
import { isQuantizerSpec, quantizerGrammars } from '../quant/registry.js';
import { parseTransformSpec, transformGrammar } from '../quant/transform.js';
import { DEFAULT_RERANK_FACTOR, type RerankRule } from '../query/rerank.js';

/**
 * Index specs: the human-readable description of a vector field's index, e.g.
 *   'Flat'                      exact scan over full-precision vectors
 *   'Flat,SQ8'                  scan SQ8 codes; scores are the quantizer's estimates
 *   'Flat,RaBitQ4,Rerank'       scan codes, then rerank with full vectors
 *   'Flat,PCA128,SQ8,Rerank10'  transforms in front of the quantizer; rerank 10*k candidates
 *   'HNSW32,SQ8,Rerank'         proximity graph (M = 32) traversed on SQ8 codes, reranked
 *   'HNSW32:400,SQ8,Rerank'     the same, built with efConstruction 400 (default 200)
 *   'HNSW16,RaBitQ4,Rerank'     graph traversed on RaBitQ estimates, reranked (by oversampling)
 *   'IVF1024,RaBitQ1,Rerank'    1024 inverted lists of RaBitQ codes, reranked by error bounds
 *   'IVF,PQ25x4fs,Rerank10'     IVF with nlist chosen from each segment's size
 *
 * Grammar (parts separated by commas, no spaces in canonical form):
 *   <index> [,<transform>]... [,<quantizer>] [,Rerank[<factor>]]
 *   <index>      = Flat | HNSW<M>[:<efConstruction>] | IVF[<nlist>]
 *                  M: graph degree of the upper levels (level 0 keeps 2M), 4..128;
 *                  efConstruction: beam width of graph insertions, 10..4096 (omitted = 200);
 *                  nlist: lists per segment, 1..65536 (omitted = about 4 sqrt(rows) per segment)
 *   <transform>  = ROT | PCA<k> | LeanVec<k>        (only in front of a quantizer)
 *   <quantizer>  = any registered quantizer spec (F16, SQ8, SQ4, BIN, LVQ8, PQ16x4fs, RaBitQ4, ...)
 *   Rerank       = rerank with full vectors: bound-driven for bounded quantizers (RaBitQ) on
 *                  Flat and IVF, oversampling by DEFAULT_RERANK_FACTOR (4) otherwise (always on HNSW)
 *   HNSW takes GRAPH_QUANTIZERS only (F16, SQ8, SQ4, LVQ, RaBitQ: scored inside the graph kernel)
 *   Rerank<f>    = oversample f*k candidates (f an integer in [1, 1000])
 */
export interface IndexSpec {
  /** The search structure. */
  index: IndexKind;
  /** HNSW: links per node on the upper levels (level 0 keeps 2M). */
  m?: number;
  /** HNSW: beam width of insertions; null = DEFAULT_EF_CONSTRUCTION (200). */
  efConstruction?: number | null;
  /** IVF: lists per segment; null = chosen from each segment's row count. */
  nlist?: number | null;
  /** Transform specs, in application order (empty without a quantizer). */
  transforms: string[];
  /** Quantizer spec without transforms, e.g. 'RaBitQ4'; null = full-precision vectors. */
  quantizer: string | null;
  /** Reranking with full vectors: factor null for a bare 'Rerank' (see rerankRule); null = none. */
  rerank: { factor: number | null } | null;
}

export type IndexKind = 'Flat' | 'HNSW' | 'IVF';
const INDEX_GRAMMAR = 'Flat | HNSW<M>[:<efConstruction>] (M 4..128, efConstruction 10..4096) | IVF[<nlist>] (nlist 1..65536)';
/** Quantizers whose codes a graph search scores inside its kernel (QueryScorer.rowScoring). */
export const GRAPH_QUANTIZERS: readonly string[] = [
  'F16', 'SQ8', 'SQ4',
  'LVQ4', 'LVQ8', 'LVQ4x4', 'LVQ4x8', 'LVQ8x4', 'LVQ8x8',
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((b) => `RaBitQ${b}`), ...[2, 3, 4, 5, 6, 7, 8].map((b) => `RaBitQ${b}fast`),
];
/** GRAPH_QUANTIZERS in words, for errors. */
const GRAPH_QUANTIZER_GRAMMAR = 'F16, SQ8, SQ4, LVQ4, LVQ8, LVQ<4|8>x<4|8>, RaBitQ<B> and RaBitQ<B>fast';
/** Bounds of HNSW's M. */
export const HNSW_M_RANGE = [4, 128] as const;
/** Bounds of HNSW's efConstruction. */
export const HNSW_EF_CONSTRUCTION_RANGE = [10, 4096] as const;
/** Bounds of IVF's nlist. */
export const IVF_NLIST_RANGE = [1, 65536] as const;

/** The grammar shown in UNKNOWN_SPEC errors. */
export function indexSpecGrammar(): string {
  return `<index>[,<transform>]...[,<quantizer>][,Rerank[<factor>]] with <index> = ${INDEX_GRAMMAR}; `
    + `<transform> = ${transformGrammar()}; <quantizer> = ${quantizerGrammars().join(' | ')}; <factor> = integer 1..1000`;
}

function fail(text: unknown, reason: string, part?: string): never {
  throw new QuiverError('UNKNOWN_SPEC', `invalid index spec "${String(text)}": ${reason} (grammar: ${indexSpecGrammar()})`, {
    received: text, ...(part !== undefined ? { part } : {}), reason, expected: indexSpecGrammar(),
  });
}

/** Parses an index spec; UNKNOWN_SPEC naming the offending part and the grammar on bad text. */
export function parseIndexSpec(text: string): IndexSpec {
  if (typeof text !== 'string' || text.trim() === '') fail(text, 'an index spec must be a non-empty string');
  const parts = text.split(',').map((p) => p.trim());
  const head = parseIndexPart(text, parts[0]);
  let rest = parts.slice(1);
  let rerank: IndexSpec['rerank'] = null;
  const last = rest[rest.length - 1];
  if (last !== undefined && /^Rerank/.test(last)) {
    const m = /^Rerank(?:([1-9][0-9]{0,3}))?$/.exec(last);
    if (!m || (m[1] !== undefined && Number(m[1]) > 1000)) fail(text, `bad rerank part "${last}" (Rerank or Rerank<factor>, factor 1..1000)`, last);
    rerank = { factor: m[1] === undefined ? null : Number(m[1]) };
    rest = rest.slice(0, -1);
  }
  for (const p of rest) if (p === '') fail(text, 'empty part');
  const transforms: string[] = [];
  let quantizer: string | null = null;
  for (let i = 0; i < rest.length; i++) {
    const p = rest[i];
    if (/^Rerank/.test(p)) fail(text, '"Rerank" must be the last part', p);
    if (parseTransformSpec(p)) {
      if (i === rest.length - 1) fail(text, `transform "${p}" must be followed by a quantizer`, p);
      transforms.push(p);
      continue;
    }
    if (i !== rest.length - 1) fail(text, `"${p}" is not a transform (only transforms may precede the quantizer)`, p);
    if (!isQuantizerSpec(p)) fail(text, `unknown quantizer "${p}"`, p);
    quantizer = p;
  }
  if (head.index === 'HNSW' && quantizer !== null && !GRAPH_QUANTIZERS.includes(quantizer)) {
    fail(text, `HNSW traverses ${GRAPH_QUANTIZER_GRAMMAR} codes or full-precision vectors; "${quantizer}" codes are scanned by Flat and IVF only`, quantizer);
  }
  if (rerank && quantizer === null) fail(text, 'Rerank needs a quantizer (full-precision vectors are scored exactly already)', 'Rerank');
  return { ...head, transforms, quantizer, rerank };
}

function parseIndexPart(text: string, part: string): Pick<IndexSpec, 'index' | 'm' | 'nlist' | 'efConstruction'> {
  if (part === 'Flat') return { index: 'Flat' };
  let m = /^HNSW([0-9]{1,4})(?::([0-9]{1,5}))?$/.exec(part);
  if (m) {
    const M = Number(m[1]);
    if (M < HNSW_M_RANGE[0] || M > HNSW_M_RANGE[1]) fail(text, `HNSW degree M = ${M} is outside ${HNSW_M_RANGE[0]}..${HNSW_M_RANGE[1]}`, part);
    if (m[2] === undefined) return { index: 'HNSW', m: M, efConstruction: null };
    const efc = Number(m[2]);
    if (efc < HNSW_EF_CONSTRUCTION_RANGE[0] || efc > HNSW_EF_CONSTRUCTION_RANGE[1]) fail(text, `HNSW efConstruction = ${efc} is outside ${HNSW_EF_CONSTRUCTION_RANGE[0]}..${HNSW_EF_CONSTRUCTION_RANGE[1]}`, part);
    return { index: 'HNSW', m: M, efConstruction: efc };
  }
  if (/^HNSW/.test(part)) fail(text, `bad graph part "${part}" (HNSW<M> or HNSW<M>:<efConstruction>, e.g. HNSW32 or HNSW32:400)`, part);
  m = /^IVF([0-9]{1,6})?$/.exec(part);
  if (m) {
    if (m[1] === undefined) return { index: 'IVF', nlist: null };
    const nlist = Number(m[1]);
    if (nlist < IVF_NLIST_RANGE[0] || nlist > IVF_NLIST_RANGE[1]) fail(text, `IVF nlist = ${nlist} is outside ${IVF_NLIST_RANGE[0]}..${IVF_NLIST_RANGE[1]}`, part);
    return { index: 'IVF', nlist };
  }
  if (/^IVF/.test(part)) fail(text, `bad IVF part "${part}" (IVF or IVF<nlist>, e.g. IVF1024)`, part);
  return fail(text, `unknown index "${part}" (the first part names the index: ${INDEX_GRAMMAR})`, part);
}

/** The index part of a spec in canonical form: 'Flat', 'HNSW32', 'HNSW32:400', 'IVF1024' or 'IVF'. */
export function formatIndexPart(spec: Pick<IndexSpec, 'index' | 'm' | 'nlist' | 'efConstruction'>): string {
  if (spec.index === 'HNSW') return spec.efConstruction == null ? `HNSW${spec.m}` : `HNSW${spec.m}:${spec.efConstruction}`;
  if (spec.index === 'IVF') return spec.nlist == null ? 'IVF' : `IVF${spec.nlist}`;
  return 'Flat';
}

/** Canonical text of a spec: parseIndexSpec(formatIndexSpec(s)) deep-equals s. */
export function formatIndexSpec(spec: IndexSpec): string {
  const parts: string[] = [formatIndexPart(spec), ...spec.transforms];
  if (spec.quantizer) parts.push(spec.quantizer);
  if (spec.rerank) parts.push(spec.rerank.factor === null ? 'Rerank' : `Rerank${spec.rerank.factor}`);
  return parts.join(',');
}

/** The quantizer spec for createQuantizer (transforms included), e.g. 'PCA128,SQ8'; null for full precision. */
export function quantizerSpecOf(spec: IndexSpec): string | null {
  return spec.quantizer === null ? null : [...spec.transforms, spec.quantizer].join(',');
}

/**
 * The rerank rule a spec asks for, given whether its quantizer is bounded: a bare 'Rerank' is
 * bound-driven on bounded quantizers and oversamples DEFAULT_RERANK_FACTOR * k otherwise;
 * 'Rerank<f>' always oversamples f * k. Null when the spec does not rerank.
 */
export function rerankRule(spec: IndexSpec, bounded: boolean): RerankRule | null {
  if (!spec.rerank) return null;
  if (spec.rerank.factor !== null) return { factor: spec.rerank.factor };
  return bounded ? { bounds: true } : { factor: DEFAULT_RERANK_FACTOR };
}
