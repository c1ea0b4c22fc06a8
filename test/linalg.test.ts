import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QuiverError } from '../src/errors.js';
import { columnMeans, matMul, nearestOrthogonal, orthogonalProcrustes, secondMoment, svd, symmetricEigen, symmetricFunction, transpose } from '../src/math/linalg.js';
import { rng } from './helpers/random.js';

function randomMatrix(rows: number, cols: number, seed: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: rows * cols }, () => r() * 2 - 1);
}

function randomSymmetric(n: number, seed: number): Float64Array {
  const b = randomMatrix(n, n, seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = b[i * n + j] + b[j * n + i];
  return a;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function orthogonalityError(q: Float64Array, rows: number, cols: number): number {
  // columns of q (rows x cols) orthonormal: q^T q = I
  const qtq = matMul(transpose(q, rows, cols), q, cols, rows, cols);
  let m = 0;
  for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) m = Math.max(m, Math.abs(qtq[i * cols + j] - (i === j ? 1 : 0)));
  return m;
}

describe('linalg: symmetric eigendecomposition', () => {
  for (const n of [1, 2, 3, 7, 16, 33, 100]) {
    it(`A v = lambda v, orthonormal rows, descending values (n=${n})`, () => {
      const a = randomSymmetric(n, n);
      const { values, vectors } = symmetricEigen(a, n);
      for (let k = 0; k < n; k++) {
        for (let i = 0; i < n; i++) {
          let s = 0;
          for (let j = 0; j < n; j++) s += a[i * n + j] * vectors[k * n + j];
          assert.ok(Math.abs(s - values[k] * vectors[k * n + i]) < 1e-10 * n, `residual n=${n} k=${k}`);
        }
        if (k > 0) assert.ok(values[k] <= values[k - 1]);
      }
      // rows orthonormal = the transpose's columns
      assert.ok(orthogonalityError(transpose(vectors, n, n), n, n) < 1e-12 * n);
      // trace is preserved
      let tr = 0, sum = 0;
      for (let i = 0; i < n; i++) { tr += a[i * n + i]; sum += values[i]; }
      assert.ok(Math.abs(tr - sum) < 1e-10 * n);
    });
  }

  it('handles repeated eigenvalues, diagonal and zero matrices', () => {
    const n = 6;
    const diag = new Float64Array(n * n);
    [3, 1, 3, -2, 0, 1].forEach((v, i) => { diag[i * n + i] = v; });
    assert.deepEqual(Array.from(symmetricEigen(diag, n).values), [3, 3, 1, 1, 0, -2]);
    const zero = symmetricEigen(new Float64Array(n * n), n);
    assert.deepEqual(Array.from(zero.values), [0, 0, 0, 0, 0, 0]);
    assert.ok(orthogonalityError(transpose(zero.vectors, n, n), n, n) < 1e-15);
    // rank-one: v v^T has one eigenvalue ||v||^2 with eigenvector +-v/||v||
    const v = [1, 2, 0, -1, 0.5, 3];
    const r1 = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) r1[i * n + j] = v[i] * v[j];
    const e = symmetricEigen(r1, n);
    const norm2 = v.reduce((s, x) => s + x * x, 0);
    assert.ok(Math.abs(e.values[0] - norm2) < 1e-12);
    const sign = Math.sign(e.vectors[1]);
    for (let j = 0; j < n; j++) assert.ok(Math.abs(e.vectors[j] - sign * v[j] / Math.sqrt(norm2)) < 1e-12);
  });

  it('rejects bad input with QuiverError', () => {
    assert.throws(() => symmetricEigen(new Float64Array(3), 2), (e: unknown) => e instanceof QuiverError && e.code === 'INVALID_ARGUMENT');
    assert.throws(() => symmetricEigen(Float64Array.from([1, NaN, NaN, 1]), 2), (e: unknown) => e instanceof QuiverError && e.code === 'INVALID_ARGUMENT');
    assert.throws(() => symmetricEigen(new Float64Array(4), 0), (e: unknown) => e instanceof QuiverError && e.code === 'INVALID_ARGUMENT');
  });
});

describe('linalg: SVD and orthogonal Procrustes', () => {
  for (const [rows, cols] of [[5, 3], [3, 5], [12, 12], [40, 9]] as const) {
    it(`thin SVD reconstructs a ${rows}x${cols} matrix`, () => {
      const a = randomMatrix(rows, cols, rows * 100 + cols);
      const { u, s, v, k } = svd(a, rows, cols);
      assert.equal(k, Math.min(rows, cols));
      assert.ok(orthogonalityError(u, rows, k) < 1e-10);
      assert.ok(orthogonalityError(v, cols, k) < 1e-10);
      const us = Float64Array.from(u, (x, i) => x * s[i % k]);
      const back = matMul(us, transpose(v, cols, k), rows, k, cols);
      assert.ok(maxAbsDiff(back, a) < 1e-9);
    });
  }

  it('recovers a known rotation, and stays orthogonal on rank-deficient data', () => {
    const d = 24, n = 300;
    const g = randomMatrix(d, d, 5);
    const rot = nearestOrthogonal(g, d);
    assert.ok(orthogonalityError(rot, d, d) < 1e-12);
    const x = randomMatrix(n, d, 6);
    const y = matMul(x, rot, n, d, d);
    assert.ok(maxAbsDiff(orthogonalProcrustes(x, y, n, d), rot) < 1e-10);
    // only 4 informative coordinates: the solution is not unique but must be orthogonal and fit
    const low = new Float64Array(n * d);
    for (let i = 0; i < n; i++) for (let j = 0; j < 4; j++) low[i * d + j] = x[i * d + j];
    const yLow = matMul(low, rot, n, d, d);
    const r = orthogonalProcrustes(low, yLow, n, d);
    assert.ok(orthogonalityError(r, d, d) < 1e-10);
    assert.ok(maxAbsDiff(matMul(low, r, n, d, d), yLow) < 1e-9);
  });

  it('symmetricFunction computes a matrix square root', () => {
    const n = 10;
    const b = randomMatrix(n, n, 11);
    const spd = matMul(b, transpose(b, n, n), n, n, n);
    const root = symmetricFunction(spd, n, (l) => Math.sqrt(Math.max(0, l)));
    assert.ok(maxAbsDiff(matMul(root, root, n, n, n), spd) < 1e-9);
  });

  it('secondMoment and columnMeans agree with the definitions', () => {
    const n = 50, d = 4;
    const x = Float32Array.from(randomMatrix(n, d, 12));
    const mean = columnMeans(x, n, d);
    const cov = secondMoment(x, n, d, mean);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
      let s = 0;
      for (let r = 0; r < n; r++) s += (x[r * d + i] - mean[i]) * (x[r * d + j] - mean[j]);
      assert.ok(Math.abs(cov[i * d + j] - s / n) < 1e-12);
    }
  });
});
