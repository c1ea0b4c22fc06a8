import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HnswGraph } from '../src/index/hnsw-graph.js';
import { SCORER_BYTES, SCORE_KIND, writeScorer } from '../src/kernels/graph.js';
import { createKernels } from '../src/kernels/index.js';
import type { Kernels } from '../src/kernels/types.js';
import { parseFvecs } from '../src/io/vecs.js';
import { createQuantizer } from '../src/quant/registry.js';
import { bitsetWords, setBit } from '../src/util/bitset.js';
import { readData } from './helpers/data.js';
import { put } from './helpers/kernels.js';
import { randomF32 } from './helpers/random.js';

// The graph kernels (assembly/graph.ts) and their JS twin (src/kernels/graph.ts): the same
// graph built by each, the same searches, recall against brute force, exclusion masks, odd
// dimensions and tiny graphs.

function bruteTopK(base: Float32Array, n: number, d: number, q: Float32Array, k: number, l2: boolean, skip?: (i: number) => boolean): number[] {
  const scores: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    if (skip?.(i)) continue;
    let s = 0;
    for (let j = 0; j < d; j++) s += l2 ? -((q[j] - base[i * d + j]) ** 2) : q[j] * base[i * d + j];
    scores.push([s, i]);
  }
  scores.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  return scores.slice(0, k).map((x) => x[1]);
}

function build(k: Kernels, base: Float32Array, n: number, d: number, m: number, metric: 'dot' | 'l2', efc: number): { graph: HnswGraph; rows: number } {
  const rows = put(k, base.subarray(0, n * d));
  const graph = HnswGraph.create(k, n, m, 7);
  for (let from = 0; from < n; from += 97) graph.insert(rows, d, metric, from, Math.min(n, from + 97), efc);
  return { graph, rows };
}

function searchAll(k: Kernels, g: HnswGraph, rows: number, queries: Float32Array, nq: number, d: number, metric: 'dot' | 'l2', kk: number, ef: number, excluded = 0): number[][] {
  const out: number[][] = [];
  const qp = k.memory.alloc(d * 4), ids = k.memory.alloc(kk * 4), sc = k.memory.alloc(kk * 4);
  for (let q = 0; q < nq; q++) {
    k.memory.f32(qp, d).set(queries.subarray(q * d, (q + 1) * d));
    const n = g.search({ kind: metric === 'l2' ? SCORE_KIND.F32_L2 : SCORE_KIND.F32_DOT, d, stride: d * 4, scale: 0, bias: 0, p0: qp, p1: 0 }, rows, kk, ef, excluded, ids, sc);
    const got = [...k.memory.u32(ids, n)];
    const scores = [...k.memory.f32(sc, n)];
    for (let i = 1; i < n; i++) assert.ok(scores[i - 1] >= scores[i], 'hits come best first');
    out.push(got);
  }
  k.memory.release(qp); k.memory.release(ids); k.memory.release(sc);
  return out;
}

function recall(got: number[][], truth: number[][]): number {
  let hit = 0, total = 0;
  got.forEach((g, q) => { const t = new Set(truth[q]); total += truth[q].length; for (const id of g) if (t.has(id)) hit++; });
  return hit / total;
}

describe('graph kernels: HNSW build and search', () => {
  const sift = parseFvecs(readData('sift10k', 'base.fvecs'));
  const siftQ = parseFvecs(readData('sift10k', 'query.fvecs'));
  const d = sift.dimension, N = 4000, NQ = 50;

  for (const metric of ['l2', 'dot'] as const) {
    it(`SIFT ${N} x ${d}, ${metric}: both twins reach recall >= 0.95 at ef 64 and agree`, () => {
      const truth = Array.from({ length: NQ }, (_, q) => bruteTopK(sift.data, N, d, siftQ.data.subarray(q * d, (q + 1) * d), 10, metric === 'l2'));
      const results: number[][][] = [];
      for (const kind of ['wasm', 'js'] as const) {
        const k = createKernels(kind);
        const { graph, rows } = build(k, sift.data, N, d, 16, metric, 100);
        assert.equal(graph.count, N);
        const got = searchAll(k, graph, rows, siftQ.data, NQ, d, metric, 10, 64);
        const r = recall(got, truth);
        assert.ok(r >= 0.95, `${kind} recall ${r}`);
        assert.ok(graph.lastScored > 0 && graph.lastScored < N, `scored ${graph.lastScored} of ${N}`);
        results.push(got);
        graph.release();
      }
      // the twins differ only in float summation order: nearly the same hits
      assert.ok(recall(results[1], results[0]) >= 0.97, `twins agree on ${recall(results[1], results[0])}`);
    });
  }

  it('the same graph searched by both twins gives the same hits (odd dimension, tails)', () => {
    for (const d of [1, 3, 17, 33]) {
      const n = 600;
      const base = randomF32(n * d, d);
      const queries = randomF32(20 * d, 100 + d);
      const kw = createKernels('wasm'), kj = createKernels('js');
      const { graph, rows } = build(kw, base, n, d, 8, 'l2', 40);
      // copy the built memory into the JS twin's memory: same pointers, same graph
      const buf = new Uint8Array(kw.memory.buffer);
      while (kj.memory.buffer.byteLength < buf.length) kj.memory.alloc(1 << 16);
      new Uint8Array(kj.memory.buffer).set(buf);
      const got: number[][][] = [];
      for (const k of [kw, kj]) {
        const qp = rows + n * d * 4 + (1 << 20); // well past every block: scratch for this check
        while (k.memory.buffer.byteLength < qp + d * 4 + 160) k.memory.alloc(1 << 16);
        const ids = qp + d * 4 + 16, sc = ids + 64;
        const res: number[][] = [];
        for (let q = 0; q < 20; q++) {
          k.memory.f32(qp, d).set(queries.subarray(q * d, (q + 1) * d));
          const c = k.hnswSearch(graphPtr(graph), scorerAt(k, qp + d * 4 + 160, d, qp, rows), 10, 20, 0, ids, sc);
          res.push([...k.memory.u32(ids, c)]);
        }
        got.push(res);
      }
      // identical graph: any difference comes from float rounding of near-ties only
      assert.ok(recall(got[1], got[0]) >= 0.98, `d=${d}: ${recall(got[1], got[0])}`);
    }
  });

  it('excluded nodes are traversed but never returned', () => {
    const k = createKernels('wasm');
    const { graph, rows } = build(k, sift.data, 2000, d, 16, 'l2', 64);
    const ex = new Uint32Array(bitsetWords(2000));
    for (let i = 0; i < 2000; i += 2) setBit(ex, i); // half the rows
    const ep = put(k, ex);
    const got = searchAll(k, graph, rows, siftQ.data, 20, d, 'l2', 10, 64, ep);
    const truth = Array.from({ length: 20 }, (_, q) => bruteTopK(sift.data, 2000, d, siftQ.data.subarray(q * d, (q + 1) * d), 10, true, (i) => i % 2 === 0));
    for (const g of got) for (const id of g) assert.equal(id % 2, 1, 'an excluded node was returned');
    assert.ok(recall(got, truth) >= 0.9, `filtered recall ${recall(got, truth)}`);
  });

  it('two-hop (ACORN-1) walks score eligible rows only, find them as well, and agree across twins', () => {
    const n = 4000;
    const ex = new Uint32Array(bitsetWords(n));
    for (let i = 0; i < n; i++) if (i % 8 !== 3) setBit(ex, i); // 12.5% eligible
    const truth = Array.from({ length: 30 }, (_, q) => bruteTopK(sift.data, n, d, siftQ.data.subarray(q * d, (q + 1) * d), 10, true, (i) => i % 8 !== 3));
    const got: number[][][] = [];
    for (const kind of ['wasm', 'js'] as const) {
      const k = createKernels(kind);
      const { graph, rows } = build(k, sift.data, n, d, 16, 'l2', 100);
      const ep = put(k, ex);
      const qp = k.memory.alloc(d * 4), ids = k.memory.alloc(40), sc = k.memory.alloc(40);
      const res: number[][] = [];
      let scoredTwoHop = 0, scoredPlain = 0;
      for (let q = 0; q < 30; q++) {
        k.memory.f32(qp, d).set(siftQ.data.subarray(q * d, (q + 1) * d));
        const scoring = { kind: SCORE_KIND.F32_L2, d, stride: d * 4, scale: 0, bias: 0, p0: qp, p1: 0 } as const;
        const c = graph.search(scoring, rows, 10, 64, ep, ids, sc, true);
        scoredTwoHop += graph.lastScored;
        const hits = [...k.memory.u32(ids, c)];
        for (const h of hits) assert.equal(h % 8, 3, 'a masked row was returned');
        res.push(hits);
        graph.search(scoring, rows, 10, 64, ep, ids, sc, false);
        scoredPlain += graph.lastScored;
      }
      assert.ok(recall(res, truth) >= 0.9, `${kind}: two-hop recall ${recall(res, truth)}`);
      assert.ok(scoredTwoHop < scoredPlain / 2, `${kind}: two-hop scored ${scoredTwoHop}, plain ${scoredPlain}`);
      got.push(res);
    }
    assert.ok(recall(got[1], got[0]) >= 0.95, `twins agree on ${recall(got[1], got[0])}`);
  });

  it('LVQ and RaBitQ score kinds: both twins walk the same graph to the same hits, scored as scoreBlock scores them', () => {
    // every LVQ spec, and RaBitQ over each layout (planes B = 1, 2, 3, 5; nibbles B = 4; bytes
    // B = 8; exact and fast codes); d = 130 pads RaBitQ to D = 192 (a 16-byte chunk plus an
    // 8-byte tail of each plane), the others to D = 64 (tails only)
    const specs = ['LVQ4', 'LVQ8', 'LVQ4x4', 'LVQ4x8', 'LVQ8x4', 'LVQ8x8', 'RaBitQ1', 'RaBitQ2', 'RaBitQ3fast', 'RaBitQ4', 'RaBitQ5', 'RaBitQ4fast', 'RaBitQ8', 'ROT,RaBitQ2', 'PCA16,LVQ4x8'];
    const n = 300, NQ = 8, kk = 10, ef = 24;
    for (const d of [1, 3, 17, 33, 130]) {
      for (const metric of ['dot', 'l2'] as const) {
        const base = randomF32(n * d, 11 * d + (metric === 'l2' ? 1 : 0));
        const queries = randomF32(NQ * d, 500 + d);
        for (const spec of specs) {
          if (spec.startsWith('PCA') && d < 17) continue;
          const kw = createKernels('wasm'), kj = createKernels('js');
          const { graph, rows } = build(kw, base, n, d, 8, metric, 40);
          const q = createQuantizer(spec, { dimension: d, metric, kernels: kw });
          q.train(base, n, { seed: 3 });
          const codes = new Uint8Array(n * q.codeSize);
          q.encode(base, n, codes);
          const codesPtr = put(kw, codes);
          // everything in WASM memory first (scorers, structs, outputs), then one copy to the JS twin's
          const scorers = Array.from({ length: NQ }, (_, i) => q.prepare(queries.subarray(i * d, (i + 1) * d)));
          const structs = scorers.map((sc) => {
            assert.ok(sc.rowScoring, `${spec} has rowScoring`);
            const s = kw.memory.alloc(SCORER_BYTES);
            writeScorer(kw.memory, s, sc.rowScoring, codesPtr);
            return s;
          });
          const ids = kw.memory.alloc(kk * 4), sc = kw.memory.alloc(kk * 4), all = kw.memory.alloc(n * 4);
          const buf = new Uint8Array(kw.memory.buffer);
          while (kj.memory.buffer.byteLength < buf.length) kj.memory.alloc(1 << 16);
          new Uint8Array(kj.memory.buffer).set(buf);
          const g = graphPtr(graph);
          const where = `${spec} d=${d} ${metric}`;
          for (let i = 0; i < NQ; i++) {
            scorers[i].scoreBlock(codesPtr, n, all);
            const est = kw.memory.f32(all, n).slice();
            const hits: { ids: number[]; scores: number[] }[] = [];
            for (const k of [kw, kj]) {
              const c = k.hnswSearch(g, structs[i], kk, ef, 0, ids, sc);
              hits.push({ ids: [...k.memory.u32(ids, c)], scores: [...k.memory.f32(sc, c)] });
            }
            const [w, j] = hits;
            assert.equal(w.ids.length, Math.min(kk, n), where);
            // the graph's scores are the block scan's estimates of those rows
            const tol = (x: number) => 1e-5 * (1 + Math.abs(x));
            w.ids.forEach((id, t) => assert.ok(Math.abs(w.scores[t] - est[id]) <= tol(est[id]), `${where} q${i} row ${id}: graph ${w.scores[t]}, scoreBlock ${est[id]}`));
            if (spec.includes('RaBitQ')) {
              // integer inner products, the same f64 arithmetic: bit-identical walks
              assert.deepEqual(j.ids, w.ids, `${where} q${i}`);
              assert.deepEqual(j.scores, w.scores, `${where} q${i}`);
            } else {
              // f32 (WASM) and f64 (JS) sums of the same integer dots: equal up to rounding
              assert.deepEqual(j.ids, w.ids, `${where} q${i}`);
              j.scores.forEach((x, t) => assert.ok(Math.abs(x - w.scores[t]) <= tol(x), `${where} q${i}: ${x} vs ${w.scores[t]}`));
            }
          }
          for (const s of scorers) s.release();
          graph.release();
        }
      }
    }
  });

  it('tiny graphs: 0, 1 and 2 nodes, k above the count', () => {
    for (const kind of ['wasm', 'js'] as const) {
      const k = createKernels(kind);
      const base = randomF32(2 * 5, 3);
      for (const n of [0, 1, 2]) {
        const { graph, rows } = build(k, base, n, 5, 4, 'dot', 10);
        const got = searchAll(k, graph, rows, base, 1, 5, 'dot', 10, 10);
        assert.equal(got[0].length, n);
        graph.release();
      }
    }
  });
});

// test-only access to the raw header pointer, for driving the kernels directly
function graphPtr(g: HnswGraph): number { return (g as unknown as { g: number }).g; }
function scorerAt(k: Kernels, s: number, d: number, q: number, rows: number): number {
  const u = k.memory.u32(s, 12);
  u.fill(0);
  u[0] = SCORE_KIND.F32_L2; u[1] = d; u[2] = d * 4; u[5] = q; u[7] = rows; u[8] = s + 40;
  return s;
}
