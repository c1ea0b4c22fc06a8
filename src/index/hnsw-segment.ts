import { QuiverError } from '../errors.js';
import type { Metric } from '../collection/validate.js';
import type { Kernels } from '../kernels/types.js';
import type { SegmentFile } from '../storage/segment-file.js';
import type { IndexLoadContext, IndexPlan } from './segment-index.js';
import type { IndexSpec } from './spec.js';
import type { VectorIndex } from './types.js';

/** HNSW graph index: plan at seal/merge, load at open. */
export function planGraphIndex(spec: IndexSpec, _dimension: number, _metric: Metric, _count: number, _minRows: number, _seed: number, _kernels: Kernels): IndexPlan | null {
  throw new QuiverError('UNKNOWN_SPEC', `${spec.index} indexes are not built yet`, { received: spec.index });
}

export async function loadGraphIndex(_file: SegmentFile, where: string, _ctx: IndexLoadContext): Promise<VectorIndex> {
  throw new QuiverError('UNSUPPORTED_FORMAT', `${where}: HNSW graph index sections are not readable yet`, { file: where });
}
