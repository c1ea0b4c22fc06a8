import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { BINARY_FAMILY } from './binary.js';
import { LVQ_FAMILY } from './lvq.js';
import { SCALAR_FAMILY } from './scalar.js';
import { OPQ_FAMILY } from './opq.js';
import { PQ_FAMILY } from './pq.js';
import { RABITQ_FAMILY } from './rabitq.js';
import { readQuantizerEnvelope } from './serial.js';
import { createTransformed, parseTransformSpec, TransformedQuantizer, transformGrammar } from './transform.js';
import type { QuantMetric, Quantizer } from './types.js';

/** What every quantizer is built for. */
export interface QuantizerContext {
  dimension: number;
  metric: QuantMetric;
  kernels: Kernels;
}

/**
 * A family of quantizers sharing one spec grammar (e.g. 'SQ8' and 'SQ4'). Each family lives in
 * its own file under src/quant/ and adds one entry to FAMILIES below.
 */
export interface QuantizerFamily {
  /** Grammar shown in UNKNOWN_SPEC messages, e.g. 'SQ8 | SQ4'. */
  readonly grammar: string;
  /** Returns a factory when `spec` belongs to this family, else null. May throw INVALID_ARGUMENT for a spec of this family with bad parameters. */
  parse(spec: string): ((ctx: QuantizerContext) => Quantizer) | null;
  /** Restores a trained quantizer of this family from its envelope payload. */
  deserialize(spec: string, payload: Uint8Array, ctx: QuantizerContext): Quantizer;
}

/** Registered families, tried in order. */
const FAMILIES: QuantizerFamily[] = [
  RABITQ_FAMILY,
  PQ_FAMILY,
  OPQ_FAMILY,
  SCALAR_FAMILY,
  BINARY_FAMILY,
  LVQ_FAMILY,
];

/** The grammars of every registered family (for help texts). */
export function quantizerGrammars(): string[] {
  return FAMILIES.map((f) => f.grammar);
}

/** The grammar of a full quantizer spec, transforms included (for help texts). */
export function quantizerSpecGrammar(): string {
  return `[<transform>,]...<quantizer>  with <transform> = ${transformGrammar()} and <quantizer> = ${quantizerGrammars().join(' | ')}`;
}

/** Whether `spec` names a quantizer (transforms allowed), without building it. UNKNOWN_SPEC is not thrown. */
export function isQuantizerSpec(spec: string): boolean {
  if (typeof spec !== 'string' || spec.length === 0) return false;
  const parts = spec.split(',');
  const last = parts[parts.length - 1];
  try {
    if (!FAMILIES.some((f) => f.parse(last) !== null)) return false;
  } catch {
    return false;
  }
  return parts.slice(0, -1).every((p) => parseTransformSpec(p) !== null);
}

function findFamily(spec: string): { family: QuantizerFamily; factory: (ctx: QuantizerContext) => Quantizer } {
  if (typeof spec !== 'string' || spec.length === 0) {
    throw new QuiverError('UNKNOWN_SPEC', `a quantizer spec must be a non-empty string, got ${typeof spec}`, { received: spec, expected: quantizerGrammars() });
  }
  for (const family of FAMILIES) {
    const factory = family.parse(spec);
    if (factory) return { family, factory };
  }
  throw new QuiverError('UNKNOWN_SPEC', `unknown quantizer "${spec}" (available: ${quantizerGrammars().join('; ')})`, { received: spec, expected: quantizerGrammars() });
}

/**
 * A new, untrained quantizer for `spec` (e.g. 'SQ8', 'PQ16x4fs', 'RaBitQ4', or with transforms in
 * front: 'ROT,SQ4', 'PCA128,SQ8'; see quant/transform.ts). UNKNOWN_SPEC when no family claims it.
 */
export function createQuantizer(spec: string, ctx: QuantizerContext): Quantizer {
  if (typeof spec === 'string' && spec.includes(',')) return createTransformed(spec, ctx, createQuantizer)!;
  return findFamily(spec).factory(ctx);
}

/** Restores a trained quantizer from Quantizer.serialize() bytes, running on `kernels`. */
export function deserializeQuantizer(bytes: Uint8Array, kernels: Kernels, source = '<quantizer>'): Quantizer {
  const env = readQuantizerEnvelope(bytes, source);
  const ctx = { dimension: env.dimension, metric: env.metric, kernels };
  if (env.spec.includes(',')) return TransformedQuantizer.fromPayload(env.spec, env.payload, ctx, deserializeQuantizer);
  const { family } = findFamily(env.spec);
  return family.deserialize(env.spec, env.payload, ctx);
}
