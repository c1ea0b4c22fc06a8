// What the playground's page, worker and data script share: the data manifest and the messages
// between page.ts and worker.ts (types only; erased from the bundles).

/** playground/dist/data/manifest.json, written by make-data.ts. */
export interface PlaygroundManifest {
  version: number;
  /** The data script's configuration, as JSON: a cache built with another one is rebuilt. */
  config: string;
  builtAt: string;
  buildSeconds: number;
  glove: {
    source: string;
    words: number;
    dimension: number;
    metric: 'cosine';
    /** One snapshot per index spec; the first is `Flat`, the exact reference. */
    snapshots: { spec: string; file: string; bytes: number }[];
    /** Seeded random words of the collection: the queries of the recall measurement. */
    sample: string[];
  };
  text: { source: string; passages: number; field: 'text'; file: string; bytes: number };
}

/** A collection the page can open: an index spec of the GloVe words, or the text collection. */
export const TEXT_KEY = 'moby-dick';

/** What the worker reports about an opened snapshot. */
export interface CollectionFacts {
  key: string;
  /** The spec the opened collection reports (stats().index). */
  index: string;
  count: number;
  dimension: number;
  metric: string;
  kernels: string;
  segments: number;
  /** stats().indexBytes: what its indexes hold in memory (vectors, codes, graph, columns). */
  indexBytes: number;
  /** stats().vectorBytes: the full-precision vectors (count x dimension x 4). */
  vectorBytes: number;
  snapshotBytes: number;
  fetchMs: number;
  openMs: number;
}

/** Search options the page may pass on (blank fields are left out). */
export interface SearchParams { ef?: number; nprobe?: number; recall?: number }

export interface SearchArgs { key: string; query: string; k: number; params: SearchParams }

export interface ResultHit {
  id: string;
  score: number;
  /** Text collection: the passage, its chapter and title. */
  text?: string;
  chapter?: string;
  title?: string;
}

export type SearchResult =
  | { ok: true; hits: ResultHit[]; ms: number; facts: CollectionFacts; workerHeapBytes: number | null }
  | { ok: false; message: string; facts: CollectionFacts };

export type SweepMode = 'recall' | 'knob';

export interface MeasureArgs { queries: number; k: number; mode: SweepMode; specs: string[] }

export interface MeasurePoint {
  /** The search options of this point, e.g. { ef: 64 } or { recall: 0.95 }. */
  setting: SearchParams;
  label: string;
  /** Mean recall@k against Flat's top k, in [0, 1]. */
  recall: number;
  /** Mean latency of one search call, ms. */
  ms: number;
}

export interface MeasureResult {
  k: number;
  queries: number;
  mode: SweepMode;
  /** Flat (exact search) timed the same way: recall 1 by definition. */
  flat: { spec: string; ms: number; indexBytes: number };
  series: { spec: string; indexBytes: number; points: MeasurePoint[] }[];
  seconds: number;
}

export type Request =
  | { id: number; cmd: 'init'; args: null }
  | { id: number; cmd: 'open'; args: { key: string } }
  | { id: number; cmd: 'search'; args: SearchArgs }
  | { id: number; cmd: 'measure'; args: MeasureArgs };

export type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { code: string | null; message: string } }
  | { progress: string };

export interface InitResult { manifest: PlaygroundManifest; simd: boolean; crossOriginIsolated: boolean }
