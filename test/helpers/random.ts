import { Rng } from '../../src/math/rng.js';

/** Seeded uniform [0, 1) generator for tests: the engine's own Rng (mulberry32), as a function. */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

export function randomF32(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r() * 2 - 1;
  return a;
}
