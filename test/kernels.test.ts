import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createWasmKernels, decodeF16, JsKernels, wasmKernelNames, type Kernels } from '../src/kernels/index.js';
import { rng } from './helpers/random.js';
import { put } from './helpers/kernels.js';

// WASM SIMD kernels against their JS twins: random data, every dimension 1..67, odd block sizes.
const wasm = createWasmKernels();
const js = new JsKernels();
const BLOCKS = [1, 3, 7, 17];
const DIMS = Array.from({ length: 67 }, (_, i) => i + 1);

function close(a: number, b: number, scale: number, what: string): void {
  const tol = 1e-5 * Math.max(1, scale);
  assert.ok(Math.abs(a - b) <= tol, `${what}: wasm ${a} vs js ${b} (tol ${tol})`);
}

function randomHalfBits(n: number, r: () => number): Uint16Array {
  // finite halves of moderate magnitude (exponent 10..20), plus a sprinkling of subnormals and zeros
  const h = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const kind = r();
    const sign = r() < 0.5 ? 0x8000 : 0;
    const frac = Math.floor(r() * 1024);
    if (kind < 0.05) h[i] = sign | frac; // subnormal
    else if (kind < 0.07) h[i] = sign;
    else h[i] = sign | ((10 + Math.floor(r() * 10)) << 10) | frac;
  }
  return h;
}

describe('kernels: wasm-simd agrees with the js twin', () => {
  it('every WASM kernel has a JS twin and vice versa', () => {
    assert.deepEqual(wasmKernelNames(), JsKernels.kernelNames());
    assert.ok(JsKernels.kernelNames().includes('dotMany'));
  });

  it('dotMany and l2Many, f32', () => {
    const r = rng(1);
    for (const d of DIMS) for (const n of BLOCKS) {
      const q = Float32Array.from({ length: d }, () => r() * 2 - 1);
      const base = Float32Array.from({ length: n * d }, () => r() * 2 - 1);
      for (const op of ['dotMany', 'l2Many'] as const) {
        const outs = [wasm, js].map((k) => {
          const qp = put(k, q), bp = put(k, base), op_ = k.memory.alloc(n * 4);
          k[op](qp, bp, n, d, op_);
          const res = Array.from(k.memory.f32(op_, n));
          for (const p of [qp, bp, op_]) k.memory.release(p);
          return res;
        });
        for (let i = 0; i < n; i++) close(outs[0][i], outs[1][i], d, `${op} d=${d} n=${n} i=${i}`);
      }
    }
  });

  it('f16ToF32 decodes every half value exactly, and matches the definition', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const outs = [wasm, js].map((k) => {
      const src = put(k, all), dst = k.memory.alloc(65536 * 4);
      k.f16ToF32(src, 65536, dst);
      return Float32Array.from(k.memory.f32(dst, 65536));
    });
    for (let h = 0; h < 65536; h++) {
      const ref = Math.fround(decodeF16(h));
      for (const o of outs) {
        if (Number.isNaN(ref)) assert.ok(Number.isNaN(o[h]), `h=${h} should be NaN`);
        else assert.equal(o[h], ref, `h=0x${h.toString(16)}`);
      }
    }
    // odd lengths exercise the scalar tail
    for (const n of [1, 2, 3, 5, 67]) {
      const src = all.subarray(15360, 15360 + n);
      const outsN = [wasm, js].map((k) => { const s = put(k, src), d = k.memory.alloc(n * 4); k.f16ToF32(s, n, d); return Array.from(k.memory.f32(d, n)); });
      assert.deepEqual(outsN[0], outsN[1]);
    }
  });

  it('dotManyF16 and l2ManyF16', () => {
    const r = rng(2);
    for (const d of DIMS) for (const n of BLOCKS) {
      const q = Float32Array.from({ length: d }, () => r() * 2 - 1);
      const base = randomHalfBits(n * d, r);
      for (const op of ['dotManyF16', 'l2ManyF16'] as const) {
        const outs = [wasm, js].map((k) => {
          const qp = put(k, q), bp = put(k, base), o = k.memory.alloc(n * 4);
          k[op](qp, bp, n, d, o);
          return Array.from(k.memory.f32(o, n));
        });
        let mag = 0;
        for (let i = 0; i < n * d; i++) mag = Math.max(mag, Math.abs(decodeF16(base[i])));
        for (let i = 0; i < n; i++) close(outs[0][i], outs[1][i], d * mag * (1 + mag), `${op} d=${d} n=${n}`);
      }
    }
  });

  // The WASM f16 scans convert with integer ops and correct lanes with exponent 0 (zero,
  // subnormal) or 31 (Inf, NaN) separately, over four row streams in steps of about 4 KiB:
  // these tests put every half value in every kind of lane position and cover the stream split.
  function f16Scan(k: Kernels, op: 'dotManyF16' | 'l2ManyF16', q: Float32Array, base: Uint16Array, n: number, d: number): Float32Array {
    const qp = put(k, q), bp = put(k, base), o = k.memory.alloc(n * 4);
    k[op](qp, bp, n, d, o);
    const res = k.memory.f32(o, n).slice();
    for (const p of [qp, bp, o]) k.memory.release(p);
    return res;
  }

  it('dotManyF16 converts every half value exactly in every lane position (one-hot query)', () => {
    const r = rng(21);
    const all = Uint16Array.from({ length: 65536 }, (_, h) => h);
    for (const d of [1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 31, 64, 67]) {
      for (const j of new Set([0, d - 1, (d * 5) >> 3])) {
        // row h holds half h at lane j; the other lanes hold random finite halves (subnormals and
        // zeros included) that the one-hot query multiplies by 0
        const base = randomHalfBits(65536 * d, r);
        for (let h = 0; h < 65536; h++) base[h * d + j] = all[h];
        const q = new Float32Array(d);
        q[j] = 1;
        const outs = [wasm, js].map((k) => f16Scan(k, 'dotManyF16', q, base, 65536, d));
        for (let h = 0; h < 65536; h++) {
          const want = Math.fround(decodeF16(h));
          for (const [name, o] of [['wasm', outs[0]], ['js', outs[1]]] as const) {
            if (Number.isNaN(want)) assert.ok(Number.isNaN(o[h]), `${name} d=${d} j=${j} h=0x${h.toString(16)}: ${o[h]} should be NaN`);
            else assert.ok(o[h] === want, `${name} d=${d} j=${j} h=0x${h.toString(16)}: ${o[h]} !== ${want}`);
          }
        }
      }
    }
  });

  it('l2ManyF16 handles every half value in every lane position', () => {
    for (const d of [1, 3, 4, 5, 8, 9, 16, 17, 67]) {
      for (const j of new Set([0, d - 1, (d * 5) >> 3])) {
        // the other lanes equal the query exactly (distance 0); lane j: query 0.75, base every half
        const base = new Uint16Array(65536 * d).fill(0x3c00); // 1.0
        for (let h = 0; h < 65536; h++) base[h * d + j] = h;
        const q = new Float32Array(d).fill(1);
        q[j] = 0.75;
        const outs = [wasm, js].map((k) => f16Scan(k, 'l2ManyF16', q, base, 65536, d));
        for (let h = 0; h < 65536; h++) {
          const want = Math.fround((0.75 - decodeF16(h)) ** 2);
          for (const [name, o] of [['wasm', outs[0]], ['js', outs[1]]] as const) {
            if (Number.isNaN(want)) assert.ok(Number.isNaN(o[h]), `${name} d=${d} j=${j} h=0x${h.toString(16)} should be NaN`);
            else if (!Number.isFinite(want)) assert.equal(o[h], want, `${name} d=${d} j=${j} h=0x${h.toString(16)}`);
            else assert.ok(Math.abs(o[h] - want) <= 2 ** -22 * want + 2 ** -50, `${name} d=${d} j=${j} h=0x${h.toString(16)}: ${o[h]} vs ${want}`);
          }
        }
      }
    }
  });

  it('dotManyF16 and l2ManyF16 over the stream split, with zeros, subnormals, Inf and NaN anywhere', () => {
    const r = rng(22);
    // mostly ordinary halves; 4% subnormal, 2% +-0, 0.3% +-Inf, 0.3% NaN
    const special = (n: number): Uint16Array => {
      const h = randomHalfBits(n, r);
      for (let i = 0; i < n; i++) {
        const u = r();
        if (u < 0.003) h[i] = (r() < 0.5 ? 0x8000 : 0) | 0x7c00;
        else if (u < 0.006) h[i] = 0x7c00 | (1 + Math.floor(r() * 1023)) | (r() < 0.5 ? 0x8000 : 0);
      }
      return h;
    };
    const cases: [number, number][] = [];
    for (const d of [...DIMS, 100, 512, 1000, 2048, 2500]) {
      const R = Math.min(1024, Math.max(1, Math.floor(4096 / (2 * d)))); // rows per stream step (assembly/dense.ts)
      for (const n of new Set([1, 5, 4 * R - 1, 4 * R, 4 * R + 5, 9 * R + 3])) cases.push([d, n]);
    }
    for (const [d, n] of cases) {
      const q = Float32Array.from({ length: d }, () => (r() < 0.05 ? 0 : r() * 2 - 1));
      const base = special(n * d);
      for (const op of ['dotManyF16', 'l2ManyF16'] as const) {
        const [w, j] = [wasm, js].map((k) => f16Scan(k, op, q, base, n, d));
        for (let i = 0; i < n; i++) {
          let scale = 0; // sum of |terms|: the natural bound of a float sum's error
          for (let t = 0; t < d; t++) {
            const x = decodeF16(base[i * d + t]);
            scale += op === 'dotManyF16' ? Math.abs(q[t] * x) : (q[t] - x) ** 2;
          }
          const what = `${op} d=${d} n=${n} row ${i}: wasm ${w[i]} js ${j[i]}`;
          if (Number.isNaN(j[i])) assert.ok(Number.isNaN(w[i]), what);
          else if (!Number.isFinite(j[i])) assert.equal(w[i], j[i], what);
          else assert.ok(Math.abs(w[i] - j[i]) <= 1e-5 * scale + 1e-30, what);
        }
      }
    }
  });

  it('i8DotMany is exact', () => {
    const r = rng(3);
    for (const d of DIMS) for (const n of BLOCKS) {
      const q = Int8Array.from({ length: d }, () => Math.floor(r() * 256) - 128);
      const base = Int8Array.from({ length: n * d }, () => Math.floor(r() * 256) - 128);
      const outs = [wasm, js].map((k) => {
        const o = k.memory.alloc(n * 4);
        k.i8DotMany(put(k, q), put(k, base), n, d, o);
        return Array.from(k.memory.i32(o, n));
      });
      assert.deepEqual(outs[0], outs[1], `d=${d} n=${n}`);
      // and against a direct computation
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += q[j] * base[i * d + j];
        assert.equal(outs[1][i], s);
      }
    }
  });

  it('hammingMany is exact', () => {
    const r = rng(4);
    for (const nbytes of DIMS) for (const n of BLOCKS) {
      const q = Uint8Array.from({ length: nbytes }, () => Math.floor(r() * 256));
      const base = Uint8Array.from({ length: n * nbytes }, () => Math.floor(r() * 256));
      const outs = [wasm, js].map((k) => {
        const o = k.memory.alloc(n * 4);
        k.hammingMany(put(k, q), put(k, base), n, nbytes, o);
        return Array.from(k.memory.u32(o, n));
      });
      assert.deepEqual(outs[0], outs[1], `nbytes=${nbytes} n=${n}`);
      let s = 0;
      for (let j = 0; j < nbytes; j++) { let x = q[j] ^ base[j]; while (x) { s += x & 1; x >>= 1; } }
      assert.equal(outs[1][0], s);
    }
  });

  it('mulInPlace', () => {
    const r = rng(5);
    for (const n of DIMS) {
      const a = Float32Array.from({ length: n }, () => r() * 4 - 2);
      const b = Float32Array.from({ length: n }, () => r() * 4 - 2);
      const outs = [wasm, js].map((k) => { const ap = put(k, a); k.mulInPlace(ap, put(k, b), n); return Array.from(k.memory.f32(ap, n)); });
      assert.deepEqual(outs[0], outs[1]);
    }
  });

  it('gatherRows copies the listed rows (odd row sizes, through a map or not)', () => {
    const r = rng(15);
    for (const rowBytes of [1, 3, 17, 100, 131]) for (const n of [0, 1, 5, 33]) {
      const rows = 50;
      const src = Uint8Array.from({ length: rows * rowBytes }, () => Math.floor(r() * 256));
      const ids = Uint32Array.from({ length: n }, () => Math.floor(r() * rows));
      const map = Uint32Array.from({ length: rows }, (_, i) => (i * 7 + 3) % rows);
      for (const mapped of [false, true]) {
        const outs = [wasm, js].map((k) => {
          const s = put(k, src), id = put(k, ids), m = mapped ? put(k, map) : 0, d = k.memory.alloc(Math.max(1, n * rowBytes));
          k.gatherRows(s, rowBytes, id, n, m, d);
          return Array.from(k.memory.u8(d, n * rowBytes));
        });
        const want: number[] = [];
        for (const id of ids) { const row = mapped ? map[id] : id; want.push(...src.subarray(row * rowBytes, (row + 1) * rowBytes)); }
        assert.deepEqual(outs[0], want, `wasm rowBytes=${rowBytes} n=${n} mapped=${mapped}`);
        assert.deepEqual(outs[1], want, `js rowBytes=${rowBytes} n=${n} mapped=${mapped}`);
      }
    }
  });

  it('topkPush selects the same k, in blocks, with either sign', () => {
    const r = rng(6);
    for (const n of [1, 5, 31, 67, 500]) for (const k of [1, 3, 10, 64]) for (const sign of [1, -1]) {
      // include ties: values drawn from a small set
      const scores = Float32Array.from({ length: n }, () => Math.round(r() * 40) / 8);
      const ref = Array.from(scores, (s, i) => ({ key: s * sign, i })).sort((x, y) => y.key - x.key || x.i - y.i).slice(0, k);
      for (const kern of [wasm, js]) {
        const sp = put(kern, scores), hk = kern.memory.alloc(k * 4), hi = kern.memory.alloc(k * 4);
        let size = 0;
        for (let off = 0; off < n; off += 7) {
          const m = Math.min(7, n - off);
          size = kern.topkPush(sp + off * 4, m, off, sign, hk, hi, k, size);
        }
        const keys = kern.memory.f32(hk, size), ids = kern.memory.u32(hi, size);
        const got = Array.from(keys, (key, j) => ({ key, i: ids[j] })).sort((x, y) => y.key - x.key || x.i - y.i);
        assert.deepEqual(got, ref, `${kern.name} n=${n} k=${k} sign=${sign}`);
      }
    }
  });

  it('memory: release coalesces and reuses, views survive growth when re-derived', () => {
    for (const kern of [createWasmKernels(), new JsKernels()]) {
      const m = kern.memory;
      const a = m.alloc(100), b = m.alloc(200), c = m.alloc(300);
      m.f32(b, 50).fill(7);
      m.release(a); m.release(b);
      const d = m.alloc(300); // fits in the coalesced a+b hole
      assert.equal(d, a);
      assert.deepEqual(Array.from(m.f32(d, 4)), [0, 0, 0, 0], 'alloc zero-fills');
      const big = m.alloc(8 << 20); // forces growth
      m.f32(big, 4).set([1, 2, 3, 4]);
      assert.deepEqual(Array.from(m.f32(big, 4)), [1, 2, 3, 4]);
      m.release(c); m.release(d); m.release(big);
      assert.equal(m.bytesInUse, 0);
      assert.throws(() => m.release(12345), /unknown pointer/);
    }
  });
});
