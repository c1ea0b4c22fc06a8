import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createWasmKernels, JsKernels, type Kernels } from '../src/kernels/index.js';
import { quantizeQueryI16, splitQuery } from '../src/kernels/scalar.js';
import { rng } from './helpers/random.js';
import { put } from './helpers/kernels.js';

// Scalar-code kernels (assembly/scalar.ts) against their JS twins (src/kernels/scalar.ts), and
// the twins against direct definitions: random data, every dimension 1..67, odd block sizes,
// strides with padding, so that every SIMD body and scalar tail is exercised.
const wasm = createWasmKernels();
const js = new JsKernels();
const BLOCKS = [1, 3, 7, 17];
const DIMS = Array.from({ length: 67 }, (_, i) => i + 1);

/** Runs `call` on both kernel implementations with the given inputs copied in; returns both outputs. */
function both(inputs: ArrayBufferView[], n: number, call: (k: Kernels, ptrs: number[], out: number) => void): [Float32Array, Float32Array] {
  const res = [wasm, js].map((k) => {
    const ptrs = inputs.map((a) => put(k, a));
    const out = k.memory.alloc(n * 4);
    call(k, ptrs, out);
    const r = Float32Array.from(k.memory.f32(out, n));
    for (const p of [...ptrs, out]) k.memory.release(p);
    return r;
  });
  return [res[0], res[1]];
}

function close(a: number, b: number, scale: number, what: string): void {
  const tol = 2e-5 * Math.max(1, scale);
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);
}

const randF = (r: () => number, n: number, lo = -1, hi = 1): Float32Array => Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
const randU8 = (r: () => number, n: number, max = 255): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(r() * (max + 1)));
/** An i16 query at the kernels' limit for d (large values exercise the accumulator bound). */
const randI16 = (r: () => number, d: number, maxCode: number): { q: Int16Array; scale: number } => {
  const q = new Int16Array(d);
  const scale = quantizeQueryI16(randF(r, d), d, maxCode, q);
  return { q, scale };
};
const nibble = (row: Uint8Array, off: number, j: number): number => (row[off + (j >> 1)] >> ((j & 1) * 4)) & 15;
const align4 = (x: number): number => (x + 3) & ~3;

describe('scalar kernels: wasm-simd agrees with the js twin and the definitions', () => {
  it('every scalar kernel exists in both implementations', () => {
    for (const name of ['sqDotU8', 'sqDotU4', 'sqL2U8', 'sqL2U4', 'lvqScore', 'binDot', 'binHamming', 'affineInPlace', 'addScaledInPlace'] as const) {
      assert.equal(typeof wasm[name], 'function', name);
      assert.equal(typeof js[name], 'function', name);
    }
  });

  it('sqDotU8 (i16 query) and sqL2U8 (strided u8 rows)', () => {
    const r = rng(21);
    for (const d of DIMS) for (const n of BLOCKS) for (const pad of [0, 3]) {
      const stride = d + pad;
      const { q: qi, scale } = randI16(r, d, 255);
      const q = randF(r, d), w = randF(r, d, 0, 1), codes = randU8(r, n * stride);
      // all-max codes hit the accumulator bound
      if (n > 1) codes.fill(255, 0, stride);
      const bias = r() - 0.5;
      const [a, b] = both([qi, codes], n, (k, [qp, cp], out) => k.sqDotU8(qp, scale, cp, n, d, stride, bias, out));
      const [c, e] = both([q, w, codes], n, (k, [qp, wp, cp], out) => k.sqL2U8(qp, wp, cp, n, d, stride, bias, out));
      for (let i = 0; i < n; i++) {
        let dot = 0, l2 = bias;
        for (let j = 0; j < d; j++) { const x = codes[i * stride + j]; dot += qi[j] * x; l2 -= w[j] * (q[j] - x) ** 2; }
        const want = bias + scale * dot;
        close(b[i], want, 255 * d, `js sqDotU8 d=${d} n=${n}`);
        close(a[i], b[i], 255 * d, `sqDotU8 d=${d} n=${n} i=${i}`);
        close(e[i], l2, 255 * 255 * d, `js sqL2U8 d=${d}`);
        close(c[i], e[i], 255 * 255 * d, `sqL2U8 d=${d} n=${n} i=${i}`);
      }
    }
  });

  it('quantizeQueryI16 keeps 1/(2*limit) relative precision and the accumulator bound for large d', () => {
    const r = rng(27);
    for (const [d, maxCode] of [[37, 255], [512, 255], [1536, 255], [4096, 255], [4096, 15]] as const) {
      const q = randF(r, d), out = new Int16Array(d);
      const scale = quantizeQueryI16(q, d, maxCode, out);
      const limit = Math.max(...Array.from(out, Math.abs));
      assert.ok(limit <= 32767 && limit * maxCode * (Math.ceil(d / 8) + 16) <= 2147483647, `d=${d}`);
      for (let j = 0; j < d; j++) assert.ok(Math.abs(out[j] * scale - q[j]) <= scale / 2 + 1e-12);
      // a block of all-max codes against the largest query values stays exact in the WASM kernel
      const big = Int16Array.from({ length: d }, () => limit);
      const codes = new Uint8Array(d).fill(maxCode);
      const [a] = both([big, codes], 1, (k, [qp, cp], o) => (maxCode === 255 ? k.sqDotU8(qp, 1, cp, 1, d, d, 0, o) : undefined));
      if (maxCode === 255) assert.ok(Math.abs(a[0] - limit * 255 * d) <= 1e-6 * limit * 255 * d, `overflow at d=${d}: ${a[0]}`);
    }
    assert.equal(quantizeQueryI16(new Float32Array(5), 5, 255, new Int16Array(5)), 0);
  });

  it('sqDotU4 (split i16 query) and sqL2U4 (nibble rows)', () => {
    const r = rng(22);
    for (const d of DIMS) for (const n of BLOCKS) for (const pad of [0, 5]) {
      const nb = (d + 1) >> 1, stride = nb + pad;
      const q = randF(r, d), w = randF(r, d, 0, 1), codes = randU8(r, n * stride);
      const { q: qi, scale } = randI16(r, d, 15);
      // a zero high nibble past d is the encoder's contract; random garbage there must not count
      const qs = new Float32Array(2 * nb), ws = new Float32Array(2 * nb), qis = new Int16Array(2 * nb);
      splitQuery(q, d, qs); splitQuery(w, d, ws); splitQuery(qi, d, qis);
      const bias = r() - 0.5;
      const [a, b] = both([qis, codes], n, (k, [qp, cp], out) => k.sqDotU4(qp, scale, cp, n, d, stride, bias, out));
      const [c, e] = both([qs, ws, codes], n, (k, [qp, wp, cp], out) => k.sqL2U4(qp, wp, cp, n, d, stride, bias, out));
      for (let i = 0; i < n; i++) {
        let dot = 0, l2 = bias;
        for (let j = 0; j < d; j++) { const x = nibble(codes, i * stride, j); dot += qi[j] * x; l2 -= w[j] * (q[j] - x) ** 2; }
        // past d (odd d) the split query and weight are zero, so the garbage nibble adds nothing
        close(b[i], bias + scale * dot, 15 * d, `js sqDotU4 d=${d}`);
        close(a[i], b[i], 15 * d, `sqDotU4 d=${d} n=${n} i=${i}`);
        close(e[i], l2, 225 * d, `js sqL2U4 d=${d}`);
        close(c[i], e[i], 225 * d, `sqL2U4 d=${d} n=${n} i=${i}`);
      }
    }
  });

  it('lvqScore: every level combination, both metrics', () => {
    const r = rng(23);
    const combos: Array<[number, number]> = [[8, 0], [4, 0], [4, 8], [8, 8], [4, 4], [8, 4]];
    for (const d of DIMS) for (const n of [1, 7]) for (const [bits1, bits2] of combos) for (const l2 of [0, 1]) {
      const header = l2 ? 12 : 8;
      const nb = (d + 1) >> 1;
      const len1 = bits1 === 8 ? d : nb, len2 = bits2 === 8 ? d : bits2 === 4 ? nb : 0;
      const stride = align4(header + len1 + len2);
      const rows = randU8(r, n * stride, bits1 === 8 ? 255 : 255);
      const view = new DataView(rows.buffer);
      for (let i = 0; i < n; i++) {
        view.setFloat32(i * stride, r() * 0.1, true);
        view.setFloat32(i * stride + 4, r() - 0.5, true);
        if (l2) view.setFloat32(i * stride + 8, r() * 3, true);
      }
      const { q, scale: qscale } = randI16(r, d, 255);
      const qs = new Int16Array(2 * nb);
      splitQuery(q, d, qs);
      const qsum = r() * 4 - 2;
      const bias = r() - 0.5;
      const [a, b] = both([q, qs, rows], n, (k, [qp, sp, cp], out) => k.lvqScore(qp, sp, qscale, qsum, cp, n, d, stride, bits1, bits2, l2, bias, out));
      for (let i = 0; i < n; i++) {
        const o = i * stride;
        const level = (bits: number, start: number, j: number): number => (bits === 8 ? rows[start + j] : nibble(rows, start, j));
        let dot1 = 0, dot2 = 0;
        for (let j = 0; j < d; j++) {
          dot1 += qscale * q[j] * level(bits1, o + header, j);
          if (bits2) dot2 += qscale * q[j] * level(bits2, o + header + len1, j);
        }
        const scale = view.getFloat32(o, true), offset = view.getFloat32(o + 4, true);
        const inner = offset * qsum + scale * (dot1 + (bits2 ? dot2 / ((1 << bits2) - 1) - qsum / 2 : 0));
        const want = l2 ? bias + 2 * inner - view.getFloat32(o + 8, true) : bias + inner;
        close(b[i], want, 26 * d, `js lvqScore d=${d} ${bits1}x${bits2} l2=${l2}`);
        close(a[i], b[i], 26 * d, `lvqScore d=${d} n=${n} ${bits1}x${bits2} l2=${l2} i=${i}`);
      }
    }
  });

  it('binDot (nibble lookup tables) and binHamming', () => {
    const r = rng(24);
    for (const d of DIMS) for (const n of BLOCKS) {
      const nbytes = (d + 7) >> 3, stride = align4(8 + nbytes) + 4;
      const rows = randU8(r, n * stride);
      const view = new DataView(rows.buffer);
      for (let i = 0; i < n; i++) {
        view.setFloat32(i * stride, r(), true);
        view.setFloat32(i * stride + 4, r() - 0.5, true);
        // bits past d are zero by the encoder's contract
        if (d % 8) rows[i * stride + 8 + nbytes - 1] &= (1 << (d % 8)) - 1;
      }
      const q = randF(r, d);
      const lut = new Float32Array(nbytes * 32);
      for (let g = 0; g < 2 * nbytes; g++) for (let m = 0; m < 16; m++) {
        let s = 0;
        for (let b = 0; b < 4; b++) { const j = 4 * g + b; if (j < d) s += (m >> b) & 1 ? q[j] : -q[j]; }
        lut[g * 16 + m] = s;
      }
      const qbits = randU8(r, nbytes);
      if (d % 8) qbits[nbytes - 1] &= (1 << (d % 8)) - 1;
      const bias = r() - 0.5, ipMul = r() < 0.5 ? 1 : 2, qscale = r();
      const [a, b] = both([lut, rows], n, (k, [lp, cp], out) => k.binDot(lp, cp, n, d, stride, ipMul, bias, out));
      const [c, e] = both([qbits, rows], n, (k, [qp, cp], out) => k.binHamming(qp, cp, n, d, stride, qscale, bias, out));
      for (let i = 0; i < n; i++) {
        const o = i * stride;
        const alpha = view.getFloat32(o, true), gamma = view.getFloat32(o + 4, true);
        let s = 0, h = 0;
        for (let j = 0; j < d; j++) {
          const bit = (rows[o + 8 + (j >> 3)] >> (j & 7)) & 1;
          s += bit ? q[j] : -q[j];
          h += bit !== ((qbits[j >> 3] >> (j & 7)) & 1) ? 1 : 0;
        }
        close(b[i], bias + gamma + ipMul * alpha * s, 2 * d, `js binDot d=${d}`);
        close(a[i], b[i], 2 * d, `binDot d=${d} n=${n} i=${i}`);
        close(e[i], bias + gamma + alpha * qscale * (d - 2 * h), d, `js binHamming d=${d}`);
        close(c[i], e[i], d, `binHamming d=${d} n=${n} i=${i}`);
      }
    }
  });

  it('addScaledInPlace', () => {
    const r = rng(26);
    for (const n of [1, 3, 4, 5, 17, 67]) {
      const a = randF(r, n), b = randF(r, n);
      const [x, y] = both([a, b], n, (k, [ap, bp], out) => { k.addScaledInPlace(ap, bp, n, -1.5); k.memory.f32(out, n).set(k.memory.f32(ap, n)); });
      for (let i = 0; i < n; i++) { close(y[i], a[i] - 1.5 * b[i], 1, 'js addScaled'); close(x[i], y[i], 1, `addScaled n=${n}`); }
    }
  });

  it('affineInPlace', () => {
    const r = rng(25);
    for (const n of [1, 3, 4, 5, 17, 67]) {
      const a = randF(r, n);
      const [x, y] = both([a], n, (k, [ap], out) => { k.affineInPlace(ap, n, -2, 0.5); k.memory.f32(out, n).set(k.memory.f32(ap, n)); });
      for (let i = 0; i < n; i++) { close(y[i], a[i] * -2 + 0.5, 1, 'js affine'); close(x[i], y[i], 1, `affine n=${n}`); }
    }
  });
});
