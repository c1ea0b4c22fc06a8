import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isQuiverError } from '../src/errors.js';
import { fwhtInPlace, HadamardRotation, paddedDimension } from '../src/math/hadamard.js';
import { ByteReader } from '../src/util/bytes.js';
import { randomF32 } from './helpers/random.js';

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += a[ao + j] * b[bo + j];
  return s;
}

describe('HadamardRotation', () => {
  it('pads to a power of two or to a multiple of 64', () => {
    assert.deepEqual([1, 2, 3, 64, 100, 512, 768, 1536].map((d) => paddedDimension(d, 'pow2')), [1, 2, 4, 64, 128, 512, 1024, 2048]);
    assert.deepEqual([1, 63, 64, 100, 512, 768, 1536].map((d) => paddedDimension(d, 'multiple64')), [64, 64, 64, 128, 512, 768, 1536]);
  });

  it('fwhtInPlace matches the Hadamard matrix definition', () => {
    for (const len of [1, 2, 4, 8, 16]) {
      const x = Float64Array.from(randomF32(len, len));
      const w = Float64Array.from(x);
      fwhtInPlace(w, 0, len);
      for (let i = 0; i < len; i++) {
        let s = 0;
        // H[i][j] = (-1)^popcount(i & j)
        for (let j = 0; j < len; j++) s += (popcount(i & j) % 2 ? -1 : 1) * x[j];
        assert.ok(Math.abs(w[i] - s) < 1e-9, `len=${len} i=${i}`);
      }
    }
  });

  for (const padding of ['pow2', 'multiple64'] as const) {
    it(`is an orthogonal map (${padding}): preserves inner products, and inverse undoes it`, () => {
      for (const d of [1, 2, 3, 5, 17, 64, 100, 129, 200, 300, 768]) {
        const rot = new HadamardRotation(d, { seed: d * 7 + 1, padding });
        const n = 6;
        const x = randomF32(n * d, d);
        const y = new Float32Array(n * rot.dim);
        rot.apply(x, n, y);
        for (let a = 0; a < n; a++) for (let b = a; b < n; b++) {
          const before = dot(x, a * d, x, b * d, d), after = dot(y, a * rot.dim, y, b * rot.dim, rot.dim);
          assert.ok(Math.abs(before - after) < 1e-4 * Math.max(1, d / 10), `${padding} d=${d} <x${a},x${b}>: ${before} vs ${after}`);
        }
        const back = new Float32Array(n * d);
        rot.applyInverse(y, n, back);
        for (let i = 0; i < n * d; i++) assert.ok(Math.abs(back[i] - x[i]) < 1e-5, `${padding} d=${d} inverse at ${i}`);
      }
    });
  }

  it('the multiple64 rotation of a non-power-of-two dimension is an orthogonal matrix with spread-out columns', () => {
    const d = 192; // blocks [0,128) and [64,192)
    const rot = new HadamardRotation(d, { seed: 3, padding: 'multiple64', rounds: 2 });
    assert.equal(rot.dim, 192);
    const basis = new Float32Array(d * d);
    for (let i = 0; i < d; i++) basis[i * d + i] = 1;
    const cols = new Float32Array(d * d);
    rot.apply(basis, d, cols);
    let maxAbs = 0;
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
      const g = dot(cols, i * d, cols, j * d, d);
      assert.ok(Math.abs(g - (i === j ? 1 : 0)) < 1e-5, `gram[${i}][${j}] = ${g}`);
    }
    for (const v of cols) maxAbs = Math.max(maxAbs, Math.abs(v));
    // a dense orthogonal map: every input coordinate lands on many outputs (no coordinate keeps
    // more than a small share of its mass); identity-like leakage would give 1.
    assert.ok(maxAbs < 0.5, `largest entry ${maxAbs}`);
  });

  it('is determined by its seed and survives serialization', () => {
    const d = 100;
    const x = randomF32(d, 9);
    const a = new HadamardRotation(d, { seed: 42, padding: 'multiple64' });
    const b = HadamardRotation.fromBytes(a.toBytes());
    const c = new HadamardRotation(d, { seed: 43, padding: 'multiple64' });
    const [ya, yb, yc] = [a, b, c].map((r) => { const y = new Float32Array(r.dim); r.apply(x, 1, y); return y; });
    assert.deepEqual(ya, yb);
    assert.notDeepEqual(ya, yc);
    assert.equal(b.dim, 128);
    assert.equal(b.rounds, a.rounds);
  });

  it('rejects bad parameters, shapes and bytes with QuiverErrors', () => {
    assert.throws(() => new HadamardRotation(0), (e) => isQuiverError(e, 'INVALID_ARGUMENT') && e.details.received === 0);
    assert.throws(() => new HadamardRotation(8, { rounds: 0 }), (e) => isQuiverError(e, 'INVALID_ARGUMENT'));
    const rot = new HadamardRotation(10);
    assert.throws(() => rot.apply(new Float32Array(9), 1, new Float32Array(16)), (e) => isQuiverError(e, 'DIMENSION_MISMATCH'));
    assert.throws(() => rot.apply(new Float32Array(10), 1, new Float32Array(10)), (e) => isQuiverError(e, 'DIMENSION_MISMATCH'));
    const bytes = rot.toBytes();
    assert.throws(() => HadamardRotation.fromBytes(bytes.subarray(0, 5)), (e) => isQuiverError(e, 'CORRUPT_FILE'));
    const bad = bytes.slice(); bad[5] = 0; // rounds = 0
    assert.throws(() => HadamardRotation.readFrom(new ByteReader(bad)), (e) => isQuiverError(e, 'CORRUPT_FILE'));
    const v2 = bytes.slice(); v2[0] = 9;
    assert.throws(() => HadamardRotation.fromBytes(v2), (e) => isQuiverError(e, 'UNSUPPORTED_FORMAT'));
  });
});

function popcount(x: number): number {
  let c = 0;
  while (x) { c += x & 1; x >>>= 1; }
  return c;
}
