import type { SparseValue } from '../fields/types.js';
import type { SparseSearchResult } from './types.js';

/**
 * A sparse field in the mutable segment: per term, the rows holding it and their weights, grown
 * as rows are appended. Search is exact: the query's lists are walked and scores accumulated
 * (term at a time), which for a segment of at most a few tens of thousands of rows costs less
 * than keeping pruning structures up to date under appends. Sealed segments get the Seismic
 * index (build.ts).
 */
export class MutableSparsePostings {
  private readonly lists = new Map<string, { ords: Uint32Array; weights: Float32Array; n: number }>();
  private rows = 0;

  get bytes(): number {
    let b = 0;
    for (const [t, l] of this.lists) b += t.length * 2 + 48 + l.ords.byteLength * 2;
    return b;
  }

  /** Indexes row `ord` (rows arrive in order; rows without a value pass undefined). */
  add(ord: number, value: SparseValue | undefined): void {
    this.rows = Math.max(this.rows, ord + 1);
    if (!value) return;
    for (const t in value) {
      let l = this.lists.get(t);
      if (!l) { l = { ords: new Uint32Array(4), weights: new Float32Array(4), n: 0 }; this.lists.set(t, l); }
      if (l.n === l.ords.length) {
        const o = new Uint32Array(l.n * 2), w = new Float32Array(l.n * 2);
        o.set(l.ords); w.set(l.weights);
        l.ords = o; l.weights = w;
      }
      l.ords[l.n] = ord;
      l.weights[l.n] = value[t];
      l.n++;
    }
  }

  /** The exact top-k by inner product (rows scoring 0 are not hits); best first, ties by lower ordinal. */
  search(query: SparseValue, k: number, excluded?: Uint32Array): SparseSearchResult {
    const scores = new Float32Array(this.rows);
    const seen = new Uint8Array(this.rows);
    const touched: number[] = [];
    let postings = 0;
    for (const t in query) {
      const l = this.lists.get(t);
      if (!l) continue;
      const q = query[t];
      postings += l.n;
      for (let i = 0; i < l.n; i++) {
        const o = l.ords[i];
        if (seen[o] === 0) { seen[o] = 1; touched.push(o); }
        scores[o] += q * l.weights[i];
      }
    }
    const cand = touched.filter((o) => scores[o] > 0 && !(excluded && ((excluded[o >>> 5] >>> (o & 31)) & 1)));
    cand.sort((a, b) => scores[b] - scores[a] || a - b);
    const n = Math.min(k, cand.length);
    const ords = Uint32Array.from(cand.slice(0, n));
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = scores[ords[i]];
    return { ords, scores: out, count: n, postingsScored: postings, docsScored: cand.length, blocksSkipped: 0 };
  }
}
