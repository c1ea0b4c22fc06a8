import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createWasmKernels, JsKernels, type Kernels } from '../src/kernels/index.js';
import { rng } from './helpers/random.js';
import { put } from './helpers/kernels.js';

// RaBitQ kernels: WASM SIMD against the JS twin, and the twin against the definition, on random
// data for every plane width 1..67 bytes (SIMD chunks of 16, u64 words and byte tails) and odd
// block sizes.
const wasm = createWasmKernels();
const js = new JsKernels();
const BLOCKS = [1, 3, 7, 17];

interface Case {
  planeBytes: number; codeBits: number; queryBits: number; n: number;
  codes: Uint8Array; query: Uint8Array; params: Float32Array; codeSize: number;
}

function makeCase(r: () => number, planeBytes: number, codeBits: number, queryBits: number, n: number): Case {
  const codeSize = Math.ceil((codeBits * planeBytes) / 4) * 4 + 16;
  const codes = new Uint8Array(n * codeSize);
  const fv = new DataView(codes.buffer);
  for (let i = 0; i < n; i++) {
    for (let b = 0; b < codeBits * planeBytes; b++) codes[i * codeSize + b] = Math.floor(r() * 256);
    const f = i * codeSize + codeSize - 16;
    fv.setFloat32(f, r() * 2 - 1, true); // add
    fv.setFloat32(f + 4, r() * 0.1, true); // rescale
    fv.setFloat32(f + 8, r() * 3, true); // errScale
    fv.setFloat32(f + 12, r(), true); // oneMinusA2
  }
  const query = Uint8Array.from({ length: queryBits * planeBytes }, () => Math.floor(r() * 256));
  const params = Float32Array.from([r() * 0.01, r() - 0.5, r() * 4 - 2, r() < 0.5 ? 1 : 2, r() - 0.5, r() * 0.01, r() * 1e-4, 1.9]);
  return { planeBytes, codeBits, queryBits, n, codes, query, params, codeSize };
}

function run(k: Kernels, c: Case, withBounds: boolean): { out: Float32Array; bounds: Float32Array } {
  const cp = put(k, c.codes), qp = put(k, c.query), pp = put(k, c.params);
  const op = k.memory.alloc(c.n * 4), bp = withBounds ? k.memory.alloc(c.n * 4) : 0;
  k.rabitqScan(cp, c.n, c.codeSize, c.codeBits, c.planeBytes, qp, c.queryBits, pp, op, bp);
  const out = Float32Array.from(k.memory.f32(op, c.n));
  const bounds = withBounds ? Float32Array.from(k.memory.f32(bp, c.n)) : new Float32Array(0);
  for (const p of [cp, qp, pp, op]) k.memory.release(p);
  if (bp) k.memory.release(bp);
  return { out, bounds };
}

/** The definition, from unpacked integer codes: dimension t's code value u_t = sum_k 2^k bit_k(t). */
function reference(c: Case): { out: number[]; bounds: number[] } {
  const D = c.planeBytes * 8;
  const unpack = (bytes: Uint8Array, off: number, bits: number): number[] => {
    const v = new Array<number>(D).fill(0);
    for (let k = 0; k < bits; k++) for (let t = 0; t < D; t++) v[t] += ((bytes[off + k * c.planeBytes + (t >> 3)] >> (t & 7)) & 1) << k;
    return v;
  };
  const q = unpack(c.query, 0, c.queryBits);
  const [delta, low, constTerm, outScale, outBias, boundVar, quantVar, boundScale] = c.params;
  const fv = new DataView(c.codes.buffer);
  const out: number[] = [], bounds: number[] = [];
  for (let i = 0; i < c.n; i++) {
    const u = unpack(c.codes, i * c.codeSize, c.codeBits);
    let ip = 0, sumU = 0;
    for (let t = 0; t < D; t++) { ip += u[t] * q[t]; sumU += u[t]; }
    const f = i * c.codeSize + c.codeSize - 16;
    const [add, rescale, errScale, oneMinusA2] = [0, 4, 8, 12].map((o) => fv.getFloat32(f + o, true));
    out.push(outBias + add + outScale * rescale * (delta * ip + low * sumU + constTerm));
    bounds.push(boundScale * errScale * Math.sqrt(oneMinusA2 * boundVar + quantVar));
  }
  return { out, bounds };
}

function near(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

describe('rabitq kernels: wasm-simd agrees with the js twin and the definition', () => {
  it('rabitqScan, every plane width 1..67 bytes, odd blocks, with and without bounds', () => {
    const r = rng(11);
    for (let planeBytes = 1; planeBytes <= 67; planeBytes++) for (const n of BLOCKS) {
      const c = makeCase(r, planeBytes, 1 + ((planeBytes + n) % 8), 1 + ((planeBytes * 3 + n) % 8), n);
      const w = run(wasm, c, true), j = run(js, c, true), ref = reference(c);
      for (let i = 0; i < n; i++) {
        const what = `planeBytes=${planeBytes} bits=${c.codeBits}x${c.queryBits} n=${n} i=${i}`;
        assert.equal(w.out[i], j.out[i], `${what} score wasm vs js`);
        assert.equal(w.bounds[i], j.bounds[i], `${what} bound wasm vs js`);
        near(j.out[i], ref.out[i], `${what} score vs definition`);
        near(j.bounds[i], ref.bounds[i], `${what} bound vs definition`);
      }
      const noBounds = run(wasm, c, false);
      assert.deepEqual(noBounds.out, w.out);
    }
  });

  it('rabitqScan, every pair of code and query bit widths 1..8', () => {
    const r = rng(12);
    for (let codeBits = 1; codeBits <= 8; codeBits++) for (let queryBits = 1; queryBits <= 8; queryBits++) {
      for (const planeBytes of [8, 37, 64]) {
        const c = makeCase(r, planeBytes, codeBits, queryBits, 5);
        const w = run(wasm, c, true), j = run(js, c, true), ref = reference(c);
        assert.deepEqual(w.out, j.out, `bits ${codeBits}x${queryBits} planeBytes ${planeBytes}`);
        assert.deepEqual(w.bounds, j.bounds);
        for (let i = 0; i < c.n; i++) near(j.out[i], ref.out[i], `bits ${codeBits}x${queryBits} i=${i}`);
      }
    }
  });
  it('rabitqScanDirect: nibble and byte codes, every dimension 1..67, odd blocks, signed queries', () => {
    const r = rng(13);
    for (let dim = 1; dim <= 67; dim++) for (const bits of [4, 8]) for (const n of BLOCKS) {
      const codeBytes = bits === 4 ? (dim + 1) >> 1 : dim;
      const codeSize = Math.ceil(codeBytes / 4) * 4 + 16;
      const codes = new Uint8Array(n * codeSize);
      const fv = new DataView(codes.buffer);
      for (let i = 0; i < n; i++) {
        for (let b = 0; b < codeBytes; b++) codes[i * codeSize + b] = Math.floor(r() * 256);
        const f = i * codeSize + codeSize - 16;
        fv.setFloat32(f, r() * 2 - 1, true);
        fv.setFloat32(f + 4, r() * 0.1, true);
        fv.setFloat32(f + 8, r() * 3, true);
        fv.setFloat32(f + 12, r(), true);
      }
      const query = Int16Array.from({ length: dim }, () => Math.round((r() * 2 - 1) * 2047));
      const params = Float32Array.from([r() * 0.01, 0, r() * 4 - 2, r() < 0.5 ? 1 : 2, r() - 0.5, r() * 0.01, r() * 1e-4, 1.9]);
      const runOn = (k: Kernels, withBounds: boolean): { out: number[]; bounds: number[] } => {
        const cp = put(k, codes), qp = put(k, query), pp = put(k, params);
        const op = k.memory.alloc(n * 4), bp = withBounds ? k.memory.alloc(n * 4) : 0;
        k.rabitqScanDirect(cp, n, codeSize, dim, bits, qp, pp, op, bp);
        const res = { out: Array.from(k.memory.f32(op, n)), bounds: withBounds ? Array.from(k.memory.f32(bp, n)) : [] };
        for (const p of [cp, qp, pp, op]) k.memory.release(p);
        if (bp) k.memory.release(bp);
        return res;
      };
      const w = runOn(wasm, true), j = runOn(js, true);
      assert.deepEqual(w, j, `dim=${dim} bits=${bits} n=${n}`);
      assert.deepEqual(runOn(wasm, false).out, w.out);
      for (let i = 0; i < n; i++) {
        let ip = 0;
        for (let t = 0; t < dim; t++) {
          const u = bits === 4 ? (codes[i * codeSize + (t >> 1)] >> (t % 2 ? 4 : 0)) & 15 : codes[i * codeSize + t];
          ip += u * query[t];
        }
        const f = i * codeSize + codeSize - 16;
        const want = params[4] + fv.getFloat32(f, true) + params[3] * fv.getFloat32(f + 4, true) * (params[0] * ip + params[2]);
        near(j.out[i], want, `dim=${dim} bits=${bits} i=${i}`);
      }
    }
  });
  it('rabitqFastScan: every group count 1..67 and 257, partial blocks, with and without bounds, no writes past n', () => {
    const r = rng(14);
    const cases: Array<[number, number]> = [];
    for (let m = 1; m <= 67; m++) cases.push([m, [1, 5, 31, 32, 33, 70][m % 6]]);
    cases.push([257, 64], [300, 45]);
    for (const [m, n] of cases) {
      const blocks = Math.ceil(n / 32), codeBytes = m * 16, blockBytes = codeBytes + 512;
      const data = new Uint8Array(blocks * blockBytes);
      const fv = new DataView(data.buffer);
      for (let b = 0; b < blocks; b++) {
        for (let i = 0; i < codeBytes; i++) data[b * blockBytes + i] = Math.floor(r() * 256);
        for (let v = 0; v < 32; v++) {
          const f = b * blockBytes + codeBytes + v * 4;
          fv.setFloat32(f, r() * 2 - 1, true); // add
          fv.setFloat32(f + 128, r() * 0.1, true); // rescale
          fv.setFloat32(f + 256, r() * 3, true); // errScale
          fv.setFloat32(f + 384, r(), true); // oneMinusA2
        }
      }
      const lut = Uint8Array.from({ length: m * 16 }, () => (m === 257 ? 255 : Math.floor(r() * 256)));
      const params = Float32Array.from([0.001 + r() * 0.01, r() * 4 - 2, r() < 0.5 ? 1 : 2, r() - 0.5, r() * 0.01, r() * 1e-4, 1.9, 0]);
      const runOn = (k: Kernels, withBounds: boolean): { out: number[]; bounds: number[] } => {
        const cp = put(k, data), lp = put(k, lut), pp = put(k, params);
        const op = k.memory.alloc((n + 8) * 4), bp = withBounds ? k.memory.alloc((n + 8) * 4) : 0;
        k.memory.f32(op + n * 4, 8).fill(7);
        if (bp) k.memory.f32(bp + n * 4, 8).fill(7);
        k.rabitqFastScan(cp, n, m, lp, pp, op, bp);
        assert.deepEqual(Array.from(k.memory.f32(op + n * 4, 8)), [7, 7, 7, 7, 7, 7, 7, 7], 'scores written past n');
        if (bp) assert.deepEqual(Array.from(k.memory.f32(bp + n * 4, 8)), [7, 7, 7, 7, 7, 7, 7, 7], 'bounds written past n');
        const res = { out: Array.from(k.memory.f32(op, n)), bounds: withBounds ? Array.from(k.memory.f32(bp, n)) : [] };
        for (const p of [cp, lp, pp, op]) k.memory.release(p);
        if (bp) k.memory.release(bp);
        return res;
      };
      const w = runOn(wasm, true), j = runOn(js, true);
      assert.deepEqual(w, j, `m=${m} n=${n}`);
      assert.deepEqual(runOn(wasm, false).out, w.out);
      for (let i = 0; i < n; i++) {
        const b = Math.floor(i / 32), v = i % 32, base = b * blockBytes;
        let total = 0;
        for (let s = 0; s < m; s++) {
          const byte = data[base + s * 16 + (v & 15)];
          total += lut[s * 16 + (v < 16 ? byte & 15 : byte >> 4)];
        }
        const [add, rescale, errScale, oneMinusA2] = [0, 128, 256, 384].map((o) => fv.getFloat32(base + codeBytes + o + v * 4, true));
        near(j.out[i], params[3] + add + params[2] * rescale * (params[0] * total + params[1]), `m=${m} i=${i} score vs definition`);
        near(j.bounds[i], params[6] * errScale * Math.sqrt(oneMinusA2 * params[4] + params[5]), `m=${m} i=${i} bound vs definition`);
      }
    }
  });
});
