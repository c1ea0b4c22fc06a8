export type CrashOp =
  | { kind: 'upsert'; records: { id: string; version: number }[]; group: number }
  | { kind: 'delete'; ids: string[]; group: number }
  | { kind: 'update'; ids: string[]; tag: number; group: number }
  | { kind: 'flush'; group: number }
  | { kind: 'compact'; group: number };
export function rng(seed: number): () => number;
export const DIMENSION: number;
export const UNIVERSE: number;
export function vectorFor(id: string, version: number): Float32Array;
export function makeOps(seed: number, count: number): CrashOp[];
export interface ModelEntry { version: number; tag: number | undefined }
export function applyOps(model: Map<string, ModelEntry>, ops: CrashOp[], m: number): Map<string, ModelEntry>;
export function textFor(id: string, version: number): string;
