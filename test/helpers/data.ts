import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** ../shared/data, beside the repository (tests only; the product never reads it). */
export const DATA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'data');

export function dataFile(...parts: string[]): string {
  const p = join(DATA_DIR, ...parts);
  if (!existsSync(p)) throw new Error(`test data missing: ${p} (expected ../shared/data beside the repository)`);
  return p;
}

export function readData(...parts: string[]): Uint8Array {
  return readFileSync(dataFile(...parts));
}

/** recall@k of found ids against the first k ground-truth ids of each query. */
export function recallAt(found: ArrayLike<number>[], truth: Int32Array, truthStride: number, k: number): number {
  let hit = 0;
  for (let q = 0; q < found.length; q++) {
    const want = new Set(Array.from(truth.subarray(q * truthStride, q * truthStride + k)));
    for (let i = 0; i < Math.min(k, found[q].length); i++) if (want.has(found[q][i])) hit++;
  }
  return hit / (found.length * k);
}
