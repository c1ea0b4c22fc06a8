import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { RABITQ_FAMILY } from './rabitq.js';
import { readQuantizerEnvelope } from './serial.js';
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
];

/** The grammars of every registered family (for help texts). */
export function quantizerGrammars(): string[] {
  return FAMILIES.map((f) => f.grammar);
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

/** A new, untrained quantizer for `spec` (e.g. 'SQ8', 'PQ16x4fs', 'RaBitQ4'). UNKNOWN_SPEC when no family claims it. */
export function createQuantizer(spec: string, ctx: QuantizerContext): Quantizer {
  return findFamily(spec).factory(ctx);
}

/** Restores a trained quantizer from Quantizer.serialize() bytes, running on `kernels`. */
export function deserializeQuantizer(bytes: Uint8Array, kernels: Kernels, source = '<quantizer>'): Quantizer {
  const env = readQuantizerEnvelope(bytes, source);
  const { family } = findFamily(env.spec);
  return family.deserialize(env.spec, env.payload, { dimension: env.dimension, metric: env.metric, kernels });
}
