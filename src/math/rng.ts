/**
 * Seeded pseudo-random numbers (mulberry32 for uniforms, Box-Muller for normals), so that every
 * trained artefact (rotations, k-means seeds, samples) is reproducible from its seed.
 */
export class Rng {
  private a: number;
  private spare: number | undefined;

  constructor(seed = 0x9e3779b9) {
    this.a = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal N(0, 1). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** k distinct indices drawn uniformly from [0, n) (k <= n), in random order. */
  sample(n: number, k: number): Uint32Array {
    const out = new Uint32Array(Math.min(k, n));
    if (out.length * 3 > n) {
      const all = new Uint32Array(n);
      for (let i = 0; i < n; i++) all[i] = i;
      for (let i = 0; i < out.length; i++) {
        const j = i + this.int(n - i);
        const t = all[i]; all[i] = all[j]; all[j] = t;
        out[i] = all[i];
      }
      return out;
    }
    const seen = new Set<number>();
    for (let i = 0; i < out.length; ) {
      const x = this.int(n);
      if (!seen.has(x)) { seen.add(x); out[i++] = x; }
    }
    return out;
  }
}
