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
 *
 * Grammar (parts separated by commas, no spaces in canonical form):
 *   <index> [,<transform>]... [,<quantizer>] [,Rerank[<factor>]]
 *   <index>      = Flat
 *   <transform>  = ROT | PCA<k> | LeanVec<k>        (only in front of a quantizer)
 *   <quantizer>  = any registered quantizer spec (F16, SQ8, SQ4, BIN, LVQ8, PQ16x4fs, RaBitQ4, ...)
 *   Rerank       = rerank with full vectors: bound-driven for bounded quantizers (RaBitQ),
 *                  oversampling by DEFAULT_RERANK_FACTOR (4) otherwise
 *   Rerank<f>    = oversample f*k candidates (f an integer in [1, 1000])
 */
export interface IndexSpec {
  /** The search structure. */
  index: 'Flat';
  /** Transform specs, in application order (empty without a quantizer). */
  transforms: string[];
  /** Quantizer spec without transforms, e.g. 'RaBitQ4'; null = full-precision vectors. */
  quantizer: string | null;
  /** Reranking with full vectors: factor null for a bare 'Rerank' (see rerankRule); null = none. */
  rerank: { factor: number | null } | null;
}

const INDEX_KINDS = ['Flat'] as const;

/** The grammar shown in UNKNOWN_SPEC errors. */
export function indexSpecGrammar(): string {
  return `<index>[,<transform>]...[,<quantizer>][,Rerank[<factor>]] with <index> = ${INDEX_KINDS.join(' | ')}; `
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
  const index = parts[0];
  if (!(INDEX_KINDS as readonly string[]).includes(index)) fail(text, `unknown index "${index}" (the first part names the index)`, index);
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
  if (rerank && quantizer === null) fail(text, 'Rerank needs a quantizer (a full-precision index is exact already)', 'Rerank');
  return { index: index as IndexSpec['index'], transforms, quantizer, rerank };
}

/** Canonical text of a spec: parseIndexSpec(formatIndexSpec(s)) deep-equals s. */
export function formatIndexSpec(spec: IndexSpec): string {
  const parts: string[] = [spec.index, ...spec.transforms];
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
