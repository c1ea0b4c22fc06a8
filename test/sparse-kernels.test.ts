import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createWasmKernels, JsKernels, wasmKernelNames, type Kernels } from '../src/kernels/index.js';
import { rng } from './helpers/random.js';
import { put } from './helpers/kernels.js';

// Sparse kernels: WASM against the JS twin (bit-identical: both sum in f64 in stored order and
// round once) and the twin against the definition, on random data: row and summary lengths
// 0..67 (odd tails of the two-entries-per-step loop), odd block sizes, random row orders.
const wasm = createWasmKernels();
const js = new JsKernels();
const BLOCKS = [1, 3, 7, 17];

interface Forward { rowStart: Uint32Array; entries: Uint32Array; terms: number[]; weights: number[] }

function randomForward(r: () => number, count: number, nTerms: number, maxLen: number): Forward {
  const rowStart = new Uint32Array(count + 1);
  const terms: number[] = [], weights: number[] = [];
  for (let i = 0; i < count; i++) {
    const len = Math.floor(r() * (maxLen + 1));
    for (let j = 0; j < len; j++) { terms.push(Math.floor(r() * nTerms)); weights.push(Math.fround(r() * 3)); }
    rowStart[i + 1] = terms.length;
  }
  const entries = new Uint32Array(2 * terms.length);
  const f = new Float32Array(entries.buffer);
  for (let j = 0; j < terms.length; j++) { entries[2 * j] = terms[j]; f[2 * j + 1] = weights[j]; }
  return { rowStart, entries, terms, weights };
}

function randomTable(r: () => number, nTerms: number): Float32Array {
  // mostly zeros, as a query table is
  return Float32Array.from({ length: nTerms }, () => (r() < 0.3 ? r() * 5 : 0));
}

function scoreRows(k: Kernels, table: Float32Array, f: Forward, rows: Uint32Array): Float32Array {
  const tp = put(k, table), rp = put(k, f.rowStart), ep = put(k, f.entries.length ? f.entries : new Uint32Array(2)), lp = put(k, rows);
  const op = k.memory.alloc(rows.length * 4);
  k.sparseScoreRows(tp, rp, ep, lp, rows.length, op);
  const out = Float32Array.from(k.memory.f32(op, rows.length));
  for (const p of [tp, rp, ep, lp, op]) k.memory.release(p);
  return out;
}

describe('sparse kernels: wasm agrees with the js twin and the definition', () => {
  it('both implementations export sparseScoreRows and sparseScoreSummaries', () => {
    for (const name of ['sparseScoreRows', 'sparseScoreSummaries']) {
      assert.ok(wasmKernelNames().includes(name), name);
      assert.ok(JsKernels.kernelNames().includes(name), name);
    }
  });

  it('sparseScoreRows: row lengths 0..67, odd blocks, random row order', () => {
    const r = rng(91);
    for (let maxLen = 0; maxLen <= 67; maxLen++) for (const n of BLOCKS) {
      const nTerms = 1 + Math.floor(r() * 300);
      const count = n + Math.floor(r() * 20);
      const f = randomForward(r, count, nTerms, maxLen);
      const table = randomTable(r, nTerms);
      const rows = Uint32Array.from({ length: n }, () => Math.floor(r() * count));
      const w = scoreRows(wasm, table, f, rows), j = scoreRows(js, table, f, rows);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let e = f.rowStart[rows[i]]; e < f.rowStart[rows[i] + 1]; e++) s += table[f.terms[e]] * f.weights[e];
        assert.equal(w[i], j[i], `maxLen=${maxLen} n=${n} i=${i}: wasm ${w[i]} vs js ${j[i]}`);
        assert.ok(Math.abs(j[i] - s) <= 1e-6 * Math.max(1, Math.abs(s)), `definition: ${j[i]} vs ${s}`);
      }
    }
  });

  it('sparseScoreSummaries: summary lengths 0..67, odd runs starting anywhere', () => {
    const r = rng(92);
    for (let maxLen = 0; maxLen <= 67; maxLen++) for (const n of BLOCKS) {
      const nTerms = 1 + Math.floor(r() * 300);
      const nBlocks = n + Math.floor(r() * 10);
      const sumStart = new Uint32Array(nBlocks + 1);
      const terms: number[] = [], codes: number[] = [];
      for (let b = 0; b < nBlocks; b++) {
        const len = Math.floor(r() * (maxLen + 1));
        for (let j = 0; j < len; j++) { terms.push(Math.floor(r() * nTerms)); codes.push(Math.floor(r() * 256)); }
        sumStart[b + 1] = terms.length;
      }
      const scale = Float32Array.from({ length: nBlocks }, () => r() * 0.1);
      const table = randomTable(r, nTerms);
      const first = Math.floor(r() * (nBlocks - n + 1));
      const run = (k: Kernels): Float32Array => {
        const ps = [put(k, table), put(k, sumStart), put(k, Uint32Array.from(terms.length ? terms : [0])), put(k, Uint8Array.from(codes.length ? codes : [0])), put(k, scale)];
        const op = k.memory.alloc(n * 4);
        k.sparseScoreSummaries(ps[0], ps[1], ps[2], ps[3], ps[4], first, n, op);
        const out = Float32Array.from(k.memory.f32(op, n));
        for (const p of [...ps, op]) k.memory.release(p);
        return out;
      };
      const w = run(wasm), j = run(js);
      for (let i = 0; i < n; i++) {
        const b = first + i;
        let s = 0;
        for (let e = sumStart[b]; e < sumStart[b + 1]; e++) s += table[terms[e]] * codes[e];
        s *= scale[b];
        assert.equal(w[i], j[i], `maxLen=${maxLen} n=${n} i=${i}: wasm ${w[i]} vs js ${j[i]}`);
        assert.ok(Math.abs(j[i] - s) <= 1e-6 * Math.max(1, Math.abs(s)), `definition: ${j[i]} vs ${s}`);
      }
    }
  });
});
