import { QuiverError } from '../errors.js';

/**
 * Dense linear algebra for training (PCA, LeanVec, OPQ): small square problems of a few hundred
 * to a few thousand dimensions, solved once per training run, never on the query path.
 *
 * Conventions: matrices are row-major Float64Array, `a[i * cols + j]` is row i, column j.
 * Float64 throughout, because eigenvectors of covariance matrices lose orthogonality quickly in f32.
 */

export interface SymmetricEigen {
  /** Eigenvalues, descending: f64[n]. */
  values: Float64Array;
  /** Eigenvectors as ROWS: f64[n * n], row i (entries [i*n, (i+1)*n)) is the unit eigenvector of values[i]. */
  vectors: Float64Array;
}

const EPS = 2.220446049250313e-16;

/**
 * Eigendecomposition of a symmetric matrix a: f64[n * n] (only symmetry is assumed; `a` is not
 * modified). Householder reduction to tridiagonal form, then implicit symmetric QR steps with
 * Wilkinson shifts (Golub & Van Loan, ch. 8), accumulating the orthogonal factor. O(n^3):
 * about 0.2 s for n = 256 and 0.8 s for n = 512 in plain JS (6-7 s at n = 1024).
 *
 * Returns eigenvalues in descending order with eigenvectors as rows (see SymmetricEigen), so
 * the top-k principal axes are the first k rows.
 */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  checkSquare(a, n, 'symmetricEigen');
  const m = Float64Array.from(a.subarray(0, n * n));
  for (let i = 0; i < m.length; i++) {
    if (!Number.isFinite(m[i])) {
      throw new QuiverError('INVALID_ARGUMENT', `symmetricEigen: entry ${i} is not finite (${m[i]})`, { index: i, received: m[i], expected: 'finite numbers' });
    }
  }
  // z holds Q^T as rows: after the reduction A = Q T Q^T, row i of z is column i of Q. Every
  // later rotation then acts on two contiguous rows of z, and the final rows are eigenvectors.
  const z = new Float64Array(n * n);
  for (let i = 0; i < n; i++) z[i * n + i] = 1;
  const diag = new Float64Array(n);
  const off = new Float64Array(Math.max(0, n - 1)); // off[i] = T[i, i+1]
  tridiagonalize(m, n, z, diag, off);
  tridiagonalQr(diag, off, n, z);
  return sortDescending(diag, z, n);
}

/** Householder tridiagonalisation of symmetric m (overwritten), accumulating Q^T into z. */
function tridiagonalize(m: Float64Array, n: number, z: Float64Array, diag: Float64Array, off: Float64Array): void {
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  const u = new Float64Array(n);
  for (let k = 0; k + 2 < n; k++) {
    // x = column k below the diagonal; reflect it onto alpha * e_{k+1}
    let scale = 0;
    for (let i = k + 1; i < n; i++) scale += Math.abs(m[i * n + k]);
    if (scale === 0) continue; // already tridiagonal in this column
    let sigma = 0;
    for (let i = k + 1; i < n; i++) { v[i] = m[i * n + k] / scale; sigma += v[i] * v[i]; }
    const x0 = v[k + 1];
    const normX = Math.sqrt(sigma);
    const alpha = x0 >= 0 ? -normX : normX;
    v[k + 1] = x0 - alpha;
    const vv = sigma - x0 * x0 + v[k + 1] * v[k + 1];
    if (vv === 0) continue;
    const beta = 2 / vv;
    // p = beta * S v over the trailing block S = m[k+1.., k+1..]
    let pv = 0;
    for (let i = k + 1; i < n; i++) {
      let s = 0;
      const row = i * n;
      for (let j = k + 1; j < n; j++) s += m[row + j] * v[j];
      p[i] = beta * s;
      pv += p[i] * v[i];
    }
    // w = p - (beta/2)(p.v) v ; S -= v w^T + w v^T
    const half = 0.5 * beta * pv;
    for (let i = k + 1; i < n; i++) p[i] -= half * v[i];
    for (let i = k + 1; i < n; i++) {
      const row = i * n, vi = v[i], wi = p[i];
      for (let j = k + 1; j < n; j++) m[row + j] -= vi * p[j] + wi * v[j];
    }
    // column/row k now hold alpha*scale at k+1 and zeros below
    m[(k + 1) * n + k] = m[k * n + k + 1] = alpha * scale;
    for (let i = k + 2; i < n; i++) m[i * n + k] = m[k * n + i] = 0;
    // z <- H z with H = I - beta v v^T (rows k+1.. only)
    u.fill(0);
    for (let i = k + 1; i < n; i++) {
      const vi = v[i];
      if (vi === 0) continue;
      const row = i * n;
      for (let j = 0; j < n; j++) u[j] += vi * z[row + j];
    }
    for (let i = k + 1; i < n; i++) {
      const f = beta * v[i];
      if (f === 0) continue;
      const row = i * n;
      for (let j = 0; j < n; j++) z[row + j] -= f * u[j];
    }
  }
  for (let i = 0; i < n; i++) diag[i] = m[i * n + i];
  for (let i = 0; i + 1 < n; i++) off[i] = m[(i + 1) * n + i];
}

/**
 * Diagonalises the symmetric tridiagonal (diag, off) in place by implicit QR steps with
 * Wilkinson shifts; rotations are applied to the rows of z.
 */
function tridiagonalQr(diag: Float64Array, off: Float64Array, n: number, z: Float64Array): void {
  let hi = n - 1;
  let iterations = 0;
  const maxIterations = 60 * n + 100;
  while (hi > 0) {
    // deflate converged off-diagonal entries at the bottom
    if (Math.abs(off[hi - 1]) <= EPS * (Math.abs(diag[hi - 1]) + Math.abs(diag[hi]))) {
      off[hi - 1] = 0;
      hi--;
      continue;
    }
    // the unreduced block is lo..hi
    let lo = hi - 1;
    while (lo > 0 && Math.abs(off[lo - 1]) > EPS * (Math.abs(diag[lo - 1]) + Math.abs(diag[lo]))) lo--;
    if (lo > 0) off[lo - 1] = 0;
    if (++iterations > maxIterations) {
      throw new QuiverError('TRAINING_FAILED', `symmetricEigen: QR iteration did not converge after ${maxIterations} steps`, { dimension: n });
    }
    // Wilkinson shift from the trailing 2x2 block
    const t = (diag[hi - 1] - diag[hi]) / 2;
    const e2 = off[hi - 1] * off[hi - 1];
    const mu = diag[hi] - e2 / (t + (t >= 0 ? 1 : -1) * Math.hypot(t, off[hi - 1]));
    let x = diag[lo] - mu;
    let y = off[lo];
    let bulge = 0;
    for (let k = lo; k < hi; k++) {
      if (k > lo) { x = off[k - 1]; y = bulge; }
      // rotation G with c*x - s*y = r, s*x + c*y = 0
      const r = Math.hypot(x, y);
      const c = r === 0 ? 1 : x / r;
      const s = r === 0 ? 0 : -y / r;
      if (k > lo) off[k - 1] = r;
      const app = diag[k], aqq = diag[k + 1], apq = off[k];
      diag[k] = c * c * app - 2 * c * s * apq + s * s * aqq;
      diag[k + 1] = s * s * app + 2 * c * s * apq + c * c * aqq;
      off[k] = c * s * (app - aqq) + (c * c - s * s) * apq;
      if (k + 1 < hi) { bulge = -s * off[k + 1]; off[k + 1] = c * off[k + 1]; }
      // z <- G^T z on rows k, k+1
      const rk = k * n, rk1 = (k + 1) * n;
      for (let j = 0; j < n; j++) {
        const a0 = z[rk + j], a1 = z[rk1 + j];
        z[rk + j] = c * a0 - s * a1;
        z[rk1 + j] = s * a0 + c * a1;
      }
    }
  }
}

function sortDescending(diag: Float64Array, z: Float64Array, n: number): SymmetricEigen {
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => diag[b] - diag[a] || a - b);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    values[i] = diag[order[i]];
    vectors.set(z.subarray(order[i] * n, order[i] * n + n), i * n);
  }
  return { values, vectors };
}

/** Thin SVD of a: f64[rows * cols] = U diag(s) V^T with k = min(rows, cols). */
export interface Svd {
  /** f64[rows * k], orthonormal columns. */
  u: Float64Array;
  /** Singular values, descending: f64[k]. */
  s: Float64Array;
  /** f64[cols * k], orthonormal columns. */
  v: Float64Array;
  k: number;
}

/**
 * Thin SVD through the eigendecomposition of the smaller Gram matrix. Singular vectors of
 * (numerically) zero singular values are completed to an orthonormal set, so U and V always have
 * orthonormal columns, which is what orthogonal Procrustes needs on rank-deficient data.
 * Accuracy of small singular values is limited by squaring (relative ~1e-8 of the largest):
 * fine for rotations and projections, not for solving ill-conditioned systems.
 */
export function svd(a: Float64Array, rows: number, cols: number): Svd {
  if (!(a instanceof Float64Array) || a.length < rows * cols) {
    throw new QuiverError('INVALID_ARGUMENT', `svd: expected f64[${rows} * ${cols}]`, { expected: rows * cols, received: a?.length });
  }
  if (rows < cols) {
    const t = svd(transpose(a, rows, cols), cols, rows);
    return { u: t.v, s: t.s, v: t.u, k: t.k };
  }
  // rows >= cols: eigen of A^T A (cols x cols) gives V and s^2
  const k = cols;
  const gram = gramOfColumns(a, rows, cols);
  const { values, vectors } = symmetricEigen(gram, cols);
  const s = new Float64Array(k);
  const v = new Float64Array(cols * k);
  for (let j = 0; j < k; j++) {
    s[j] = Math.sqrt(Math.max(0, values[j]));
    for (let i = 0; i < cols; i++) v[i * k + j] = vectors[j * cols + i];
  }
  // u_j = A v_j / s_j for the numerically non-zero s_j; complete the rest orthonormally
  const u = new Float64Array(rows * k);
  const tol = Math.max(1e-300, s[0] * 1e-10);
  for (let j = 0; j < k; j++) {
    if (s[j] <= tol) continue;
    for (let i = 0; i < rows; i++) {
      let acc = 0;
      const row = i * cols;
      for (let t = 0; t < cols; t++) acc += a[row + t] * v[t * k + j];
      u[i * k + j] = acc / s[j];
    }
  }
  orthonormalizeColumns(u, rows, k, s, tol);
  return { u, s, v, k };
}

/**
 * Modified Gram-Schmidt on the columns of q: f64[rows * k], in order; a column whose singular
 * value is <= tol (or that collapses) is replaced by the first unit basis vector that is
 * independent of the previous columns. Re-orthogonalises twice for stability.
 */
function orthonormalizeColumns(q: Float64Array, rows: number, k: number, s: Float64Array, tol: number): void {
  let nextBasis = 0;
  const col = new Float64Array(rows);
  for (let j = 0; j < k; j++) {
    for (let attempt = 0; ; attempt++) {
      if (attempt > rows + 1) throw new QuiverError('TRAINING_FAILED', 'svd: could not complete an orthonormal basis', { rows, k });
      if (s[j] <= tol || attempt > 0) {
        col.fill(0);
        col[nextBasis++ % rows] = 1;
      } else {
        for (let i = 0; i < rows; i++) col[i] = q[i * k + j];
      }
      for (let pass = 0; pass < 2; pass++) {
        for (let p = 0; p < j; p++) {
          let dot = 0;
          for (let i = 0; i < rows; i++) dot += q[i * k + p] * col[i];
          for (let i = 0; i < rows; i++) col[i] -= dot * q[i * k + p];
        }
      }
      let norm = 0;
      for (let i = 0; i < rows; i++) norm += col[i] * col[i];
      norm = Math.sqrt(norm);
      if (norm > 1e-6) {
        for (let i = 0; i < rows; i++) q[i * k + j] = col[i] / norm;
        break;
      }
    }
  }
}

/** The orthogonal matrix nearest to square m: f64[d * d] in Frobenius norm (its polar factor U V^T). */
export function nearestOrthogonal(m: Float64Array, d: number): Float64Array {
  checkSquare(m, d, 'nearestOrthogonal');
  const { u, v } = svd(m, d, d);
  // R = U V^T
  const r = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let acc = 0;
      for (let t = 0; t < d; t++) acc += u[i * d + t] * v[j * d + t];
      r[i * d + j] = acc;
    }
  }
  return r;
}

/**
 * Orthogonal Procrustes: the orthogonal R: f64[d * d] minimising ||X R - Y||_F, for
 * x, y: f32 or f64 [n * d] row-major (row i of X is mapped to row i of Y). R = U V^T where
 * X^T Y = U S V^T. Used by OPQ to learn its rotation.
 */
export function orthogonalProcrustes(x: Float32Array | Float64Array, y: Float32Array | Float64Array, n: number, d: number): Float64Array {
  if (x.length < n * d || y.length < n * d) {
    throw new QuiverError('INVALID_ARGUMENT', `orthogonalProcrustes: x and y must hold ${n} x ${d} values`, { expected: n * d, received: [x.length, y.length] });
  }
  return nearestOrthogonal(crossProduct(x, y, n, d), d);
}

/** X^T Y: f64[d * d] for x, y: [n * d] row-major. */
export function crossProduct(x: Float32Array | Float64Array, y: Float32Array | Float64Array, n: number, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let r = 0; r < n; r++) {
    const o = r * d;
    for (let i = 0; i < d; i++) {
      const xi = x[o + i];
      if (xi === 0) continue;
      const row = i * d;
      for (let j = 0; j < d; j++) out[row + j] += xi * y[o + j];
    }
  }
  return out;
}

/** Mean of the rows of x: [n * d] as f64[d]. */
export function columnMeans(x: Float32Array | Float64Array, n: number, d: number): Float64Array {
  const mean = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) mean[j] += x[r * d + j];
  for (let j = 0; j < d; j++) mean[j] /= Math.max(1, n);
  return mean;
}

/**
 * Second-moment matrix (1/n) sum_r (x_r - c)(x_r - c)^T: f64[d * d] for x: [n * d] and centre c: [d]
 * (pass null for the uncentred moment). The covariance when c is the mean.
 */
export function secondMoment(x: Float32Array | Float64Array, n: number, d: number, centre: Float64Array | null): Float64Array {
  const out = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < d; j++) row[j] = x[r * d + j] - (centre ? centre[j] : 0);
    for (let i = 0; i < d; i++) {
      const xi = row[i];
      if (xi === 0) continue;
      const o = i * d;
      for (let j = i; j < d; j++) out[o + j] += xi * row[j];
    }
  }
  const inv = 1 / Math.max(1, n);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      const v = out[i * d + j] * inv;
      out[i * d + j] = v;
      out[j * d + i] = v;
    }
  }
  return out;
}

/** A^T A: f64[cols * cols] for a: f64[rows * cols]. */
function gramOfColumns(a: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(cols * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let i = 0; i < cols; i++) {
      const ai = a[o + i];
      if (ai === 0) continue;
      const row = i * cols;
      for (let j = i; j < cols; j++) out[row + j] += ai * a[o + j];
    }
  }
  for (let i = 0; i < cols; i++) for (let j = 0; j < i; j++) out[i * cols + j] = out[j * cols + i];
  return out;
}

/** a^T: f64[cols * rows] for a: f64[rows * cols]. */
export function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

/** a b: f64[n * p] for a: f64[n * m], b: f64[m * p]. */
export function matMul(a: Float64Array, b: Float64Array, n: number, m: number, p: number): Float64Array {
  const out = new Float64Array(n * p);
  for (let i = 0; i < n; i++) {
    const o = i * p;
    for (let t = 0; t < m; t++) {
      const ait = a[i * m + t];
      if (ait === 0) continue;
      const row = t * p;
      for (let j = 0; j < p; j++) out[o + j] += ait * b[row + j];
    }
  }
  return out;
}

/**
 * f(A) = V diag(f(lambda)) V^T for symmetric a: f64[n * n], e.g. the square root or inverse
 * square root of a covariance. `f` receives each eigenvalue (may be slightly negative from
 * rounding; clamp inside f).
 */
export function symmetricFunction(a: Float64Array, n: number, f: (lambda: number) => number): Float64Array {
  const { values, vectors } = symmetricEigen(a, n);
  const out = new Float64Array(n * n);
  const fl = values.map(f);
  for (let t = 0; t < n; t++) {
    const w = fl[t];
    if (w === 0) continue;
    const vt = t * n;
    for (let i = 0; i < n; i++) {
      const vi = w * vectors[vt + i];
      if (vi === 0) continue;
      const o = i * n;
      for (let j = 0; j < n; j++) out[o + j] += vi * vectors[vt + j];
    }
  }
  return out;
}

function checkSquare(a: Float64Array, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new QuiverError('INVALID_ARGUMENT', `${what}: n must be a positive integer, got ${n}`, { received: n, expected: 'integer >= 1' });
  }
  if (!(a instanceof Float64Array) || a.length < n * n) {
    throw new QuiverError('INVALID_ARGUMENT', `${what}: expected a f64[${n} * ${n}] matrix`, { expected: n * n, received: a?.length });
  }
}
