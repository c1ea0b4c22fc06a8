import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createWasmKernels, JsKernels, type Kernels } from '../src/kernels/index.js';
import { rng } from './helpers/random.js';
import { put } from './helpers/kernels.js';

// PQ kernels: WASM SIMD against the JS twin (bit-identical: both use float32 in the same order)
// and the twin against a float64 definition, for every dimension / subspace count 1..67 and odd
// block sizes (tails of SIMD groups and of 32-vector fast-scan blocks).
const wasm = createWasmKernels();
const js = new JsKernels();
const DIMS = Array.from({ length: 67 }, (_, i) => i + 1);
const BLOCKS = [1, 3, 7, 17];

function both<T>(fn: (k: Kernels) => T): [T, T] {
  return [fn(wasm), fn(js)];
}

describe('pq kernels: wasm-simd agrees with the js twin and the definition', () => {
  it('nearestCentroids: every d in 1..67, centroid counts around the 8-lane groups, odd blocks', () => {
    const r = rng(21);
    for (const d of DIMS) for (const k of [1, 3, 8, 9, 16, 21]) {
      const n = BLOCKS[(d + k) % BLOCKS.length];
      const points = Float32Array.from({ length: n * d }, () => r() * 2 - 1);
      const cents = Float32Array.from({ length: k * d }, () => r() * 2 - 1);
      if (k > 3) cents.copyWithin(2 * d, 0, d); // a duplicate centroid: the smaller index must win
      const centT = new Float32Array(d * k), half = new Float32Array(k);
      for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) { centT[j * k + c] = cents[c * d + j]; half[c] += (cents[c * d + j] ** 2) / 2; }
      const [w, j] = both((kern) => {
        const ids = kern.memory.alloc(n * 4), dists = kern.memory.alloc(n * 4);
        kern.nearestCentroids(put(kern, points), n, d, put(kern, centT), k, put(kern, half), ids, dists);
        return { ids: Array.from(kern.memory.u32(ids, n)), dists: Array.from(kern.memory.f32(dists, n)) };
      });
      assert.deepEqual(w, j, `d=${d} k=${k} n=${n}`);
      for (let i = 0; i < n; i++) {
        let best = Infinity;
        const dist = (c: number): number => { let s = 0; for (let t = 0; t < d; t++) s += (points[i * d + t] - cents[c * d + t]) ** 2; return s; };
        for (let c = 0; c < k; c++) best = Math.min(best, dist(c));
        assert.ok(dist(j.ids[i]) <= best + 1e-5 * (1 + best), `d=${d} k=${k}: chose ${dist(j.ids[i])}, best ${best}`);
        assert.ok(Math.abs(j.dists[i] - dist(j.ids[i])) <= 1e-4 * (1 + d), `d=${d} k=${k}: reported distance`);
        if (k > 3) assert.notEqual(j.ids[i], 2, 'duplicate of centroid 0 never chosen');
      }
    }
  });

  it('pqScan8 and pqScan4: every subspace count 1..67, odd blocks', () => {
    const r = rng(22);
    for (const m of DIMS) for (const n of BLOCKS) {
      const lut8 = Float32Array.from({ length: m * 256 }, () => r() * 2 - 1);
      const codes8 = Uint8Array.from({ length: n * m }, () => Math.floor(r() * 256));
      const [w8, j8] = both((k) => { const o = k.memory.alloc(n * 4); k.pqScan8(put(k, lut8), put(k, codes8), n, m, o); return Array.from(k.memory.f32(o, n)); });
      assert.deepEqual(w8, j8, `pqScan8 m=${m} n=${n}`);
      const lut4 = Float32Array.from({ length: m * 16 }, () => r() * 2 - 1);
      const rowBytes = (m + 1) >> 1;
      const codes4 = Uint8Array.from({ length: n * rowBytes }, () => Math.floor(r() * 256));
      const [w4, j4] = both((k) => { const o = k.memory.alloc(n * 4); k.pqScan4(put(k, lut4), put(k, codes4), n, m, o); return Array.from(k.memory.f32(o, n)); });
      assert.deepEqual(w4, j4, `pqScan4 m=${m} n=${n}`);
      for (let i = 0; i < n; i++) {
        let s8 = 0, s4 = 0;
        for (let s = 0; s < m; s++) {
          s8 += lut8[s * 256 + codes8[i * m + s]];
          const b = codes4[i * rowBytes + (s >> 1)];
          s4 += lut4[s * 16 + (s & 1 ? b >> 4 : b & 15)];
        }
        assert.ok(Math.abs(j8[i] - s8) < 1e-5 * m, `pqScan8 m=${m} i=${i}: ${j8[i]} vs ${s8}`);
        assert.ok(Math.abs(j4[i] - s4) < 1e-5 * m, `pqScan4 m=${m} i=${i}: ${j4[i]} vs ${s4}`);
      }
    }
  });

  it('pqFastScan: every subspace count 1..67, partial blocks, and u16 widening past 256 subspaces', () => {
    const r = rng(23);
    const cases: Array<[number, number]> = [];
    for (const m of DIMS) cases.push([m, [1, 5, 31, 32, 33, 70][m % 6]]);
    cases.push([300, 45], [600, 32], [257, 64]);
    for (const [m, n] of cases) {
      const saturate = m >= 257; // all-255 tables overflow u16 without the periodic widening
      const lut = Uint8Array.from({ length: m * 16 }, () => (saturate ? 255 : Math.floor(r() * 256)));
      const blocks = Math.ceil(n / 32);
      const codes = Uint8Array.from({ length: blocks * m * 16 }, () => Math.floor(r() * 256));
      const params = Float32Array.from([r() - 0.5, 0.01 + r() * 0.1]);
      const [w, j] = both((k) => {
        const o = k.memory.alloc((n + 8) * 4);
        k.memory.f32(o + n * 4, 8).fill(7); // sentinel past n: must stay untouched
        k.pqFastScan(put(k, codes), n, m, put(k, lut), put(k, params), o);
        assert.deepEqual(Array.from(k.memory.f32(o + n * 4, 8)), [7, 7, 7, 7, 7, 7, 7, 7], `${k.name} writes past n`);
        return Array.from(k.memory.f32(o, n));
      });
      assert.deepEqual(w, j, `pqFastScan m=${m} n=${n}`);
      for (let i = 0; i < n; i++) {
        const b = Math.floor(i / 32), v = i % 32;
        let acc = 0;
        for (let s = 0; s < m; s++) {
          const byte = codes[b * m * 16 + s * 16 + (v & 15)];
          acc += lut[s * 16 + (v < 16 ? byte & 15 : byte >> 4)];
        }
        const want = params[0] + params[1] * acc;
        assert.ok(Math.abs(j[i] - want) <= 1e-6 * Math.abs(want) + 1e-6, `pqFastScan m=${m} i=${i}: ${j[i]} vs ${want}`);
      }
    }
  });
});
