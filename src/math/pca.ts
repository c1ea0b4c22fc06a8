import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { columnMeans, secondMoment, symmetricEigen } from './linalg.js';
import { Rng } from './rng.js';

/**
 * Linear dimension reduction fitted on a sample: PCA (LeanVec in-distribution) and the LeanVec
 * out-of-distribution projection pair fitted from a sample of queries.
 *
 * Shapes: projections are row-major f64[k * d] (row i maps a d-vector to output coordinate i).
 * A fitted pair approximates inner products as <q, x> ~ <q, mean> + <B q, A (x - mean)>.
 */
export interface ProjectionFit {
  /** f64[d], subtracted from data vectors before projecting. */
  mean: Float64Array;
  /** A: f64[k * d], applied to centred data vectors. */
  data: Float64Array;
  /** B: f64[k * d], applied to (uncentred) queries; the same array as `data` for PCA. */
  query: Float64Array;
  /** Right inverse of A for reconstruction: f64[d * k] with A * back = I_k (x ~ mean + back * y). */
  back: Float64Array;
  /** Fraction of the sample's (data) variance kept by A, in [0, 1]; for PCA the top-k eigenvalue share. */
  keptVariance: number;
}

export interface FitOptions {
  /** Kernels for the covariance products (WASM SIMD); plain JS float64 loops when absent. */
  kernels?: Kernels;
  /** Sample rows used at most (a seeded subsample beyond it; default 16384). */
  maxVectors?: number;
  seed?: number;
}

/**
 * Covariance (1/m) sum (x - mean)(x - mean)^T: f64[d * d] of rows `rows` of x: f32[* d]
 * (all rows when rows is null). With kernels, the centred sample is stored column-major in
 * kernel memory and each row of the upper triangle is one dotMany call over the columns.
 */
export function covariance(x: Float32Array, n: number, d: number, mean: Float64Array, rows: Uint32Array | null, kernels?: Kernels): Float64Array {
  const m = rows ? rows.length : n;
  if (!kernels) {
    if (!rows) return secondMoment(x, n, d, mean);
    const sub = new Float32Array(m * d);
    for (let i = 0; i < m; i++) sub.set(x.subarray(rows[i] * d, rows[i] * d + d), i * d);
    return secondMoment(sub, m, d, mean);
  }
  const mem = kernels.memory;
  const cols = mem.alloc(d * m * 4);
  const out = mem.alloc(d * 4);
  try {
    {
      const c = mem.f32(cols, d * m);
      for (let i = 0; i < m; i++) {
        const r = (rows ? rows[i] : i) * d;
        for (let j = 0; j < d; j++) c[j * m + i] = x[r + j] - mean[j];
      }
    }
    const cov = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      // row i, columns j >= i: <col_i, col_j> for the d - i columns starting at column i
      kernels.dotMany(cols + i * m * 4, cols + i * m * 4, d - i, m, out);
      const o = mem.f32(out, d - i);
      for (let j = i; j < d; j++) {
        const v = o[j - i] / m;
        cov[i * d + j] = v;
        cov[j * d + i] = v;
      }
    }
    return cov;
  } finally {
    mem.release(cols);
    mem.release(out);
  }
}

function subsample(n: number, options: FitOptions): Uint32Array | null {
  const max = options.maxVectors ?? 16384;
  return n > max ? new Rng(options.seed ?? 1).sample(n, max) : null;
}

function checkFit(n: number, d: number, k: number, what: string): void {
  if (!Number.isInteger(k) || k < 1 || k > d) {
    throw new QuiverError('INVALID_ARGUMENT', `${what}: the output dimension must be an integer in [1, ${d}], got ${k}`, { expected: `integer in [1, ${d}]`, received: k, dimension: d });
  }
  if (n < 2) throw new QuiverError('TRAINING_FAILED', `${what} needs at least 2 training vectors, got ${n}`, { expected: 2, received: n });
}

/** Mean of the chosen rows: f64[d]. */
function meanOf(x: Float32Array, n: number, d: number, rows: Uint32Array | null): Float64Array {
  if (!rows) return columnMeans(x, n, d);
  const mean = new Float64Array(d);
  for (let i = 0; i < rows.length; i++) for (let j = 0; j < d; j++) mean[j] += x[rows[i] * d + j];
  for (let j = 0; j < d; j++) mean[j] /= rows.length;
  return mean;
}

/**
 * PCA: the top-k principal axes of sample: f32[n * d] (centred on its mean). data = query = the
 * axes as orthonormal rows, back = their transpose. Costs one d x d covariance and one
 * eigendecomposition (about 1 s at d = 512).
 */
export function fitPca(sample: Float32Array, n: number, d: number, k: number, options: FitOptions = {}): ProjectionFit {
  checkFit(n, d, k, `PCA${k}`);
  const rows = subsample(n, options);
  const mean = meanOf(sample, n, d, rows);
  const cov = covariance(sample, n, d, mean, rows, options.kernels);
  const { values, vectors } = symmetricEigen(cov, d);
  const axes = vectors.slice(0, k * d);
  let total = 0, kept = 0;
  for (let i = 0; i < d; i++) total += Math.max(0, values[i]);
  for (let i = 0; i < k; i++) kept += Math.max(0, values[i]);
  return { mean, data: axes, query: axes, back: transposeOf(axes, k, d), keptVariance: total > 0 ? kept / total : 1 };
}

/**
 * LeanVec out-of-distribution projections from data and a query sample.
 *
 * Minimises E_{q,x} (q^T (I - B^T A) (x - mean))^2 over rank-k pairs (A, B). With
 * Kx = Cov(x) and Kq = E[q q^T] the loss is ||Kq^{1/2} (I - B^T A) Kx^{1/2}||_F^2; its minimiser
 * comes from the top-k left singular vectors U_k of Kq^{1/2} Kx^{1/2}, i.e. the top-k
 * eigenvectors of M = Kq^{1/2} Kx Kq^{1/2}: A = U_k^T Kq^{1/2}, B = U_k^T Kq^{-1/2}
 * (then B^T A x reproduces the best rank-k approximation in the query-weighted norm). With
 * queries distributed like the data this reduces to PCA up to a per-axis scale.
 *
 * A few hundred queries do not span d dimensions, so Kq is shrunk toward the data covariance
 * (scaled to Kq's trace) with weight `shrinkage` (default 0.1) plus a tiny ridge: directions the
 * query sample never visits are assumed to look like the data.
 */
export function fitLeanVecOod(sample: Float32Array, n: number, queries: Float32Array, nq: number, d: number, k: number, options: FitOptions & { shrinkage?: number } = {}): ProjectionFit {
  checkFit(n, d, k, `LeanVec${k}`);
  if (nq < 1) throw new QuiverError('TRAINING_FAILED', `LeanVec${k} out-of-distribution fitting needs sample queries, got ${nq}`, { expected: '>= 1 query', received: nq });
  const shrinkage = options.shrinkage ?? 0.1;
  const rows = subsample(n, options);
  const mean = meanOf(sample, n, d, rows);
  const kx = covariance(sample, n, d, mean, rows, options.kernels);
  const qRows = subsample(nq, options);
  const kq = covariance(queries, nq, d, new Float64Array(d), qRows, options.kernels);
  let trX = 0, trQ = 0;
  for (let i = 0; i < d; i++) { trX += kx[i * d + i]; trQ += kq[i * d + i]; }
  const blend = trX > 0 ? (shrinkage * trQ) / trX : 0;
  const ridge = 1e-6 * (trQ / d) + 1e-30;
  for (let i = 0; i < d * d; i++) kq[i] = (1 - shrinkage) * kq[i] + blend * kx[i];
  for (let i = 0; i < d; i++) kq[i * d + i] += ridge;
  // Kq^{1/2} and Kq^{-1/2} from one eigendecomposition
  const eq = symmetricEigen(kq, d);
  const floor = Math.max(ridge, eq.values[0] * 1e-12);
  const sqrtQ = fromEigen(eq.values, eq.vectors, d, (l) => Math.sqrt(Math.max(l, floor)));
  const invSqrtQ = fromEigen(eq.values, eq.vectors, d, (l) => 1 / Math.sqrt(Math.max(l, floor)));
  // M = S Kx S, symmetric
  const m = multiply(multiply(sqrtQ, kx, d), sqrtQ, d);
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) { const v = 0.5 * (m[i * d + j] + m[j * d + i]); m[i * d + j] = v; m[j * d + i] = v; }
  const em = symmetricEigen(m, d);
  const uk = em.vectors.subarray(0, k * d); // rows = top-k eigenvectors
  const a = multiplyRect(uk, sqrtQ, k, d); // U_k^T S as rows: A[i] = u_i^T S
  const b = multiplyRect(uk, invSqrtQ, k, d);
  // right inverse of A: back = S^{-1} U_k (d x k): A back = U_k^T S S^{-1} U_k = I
  const back = new Float64Array(d * k);
  for (let i = 0; i < d; i++) {
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += invSqrtQ[i * d + t] * uk[c * d + t];
      back[i * k + c] = s;
    }
  }
  // kept data variance: tr(P Kx P^T) / tr(Kx) with the oblique projector P = back * A
  let kept = 0;
  const ak = multiplyRect(a, kx, k, d); // A Kx (k x d)
  for (let c = 0; c < k; c++) for (let t = 0; t < d; t++) {
    // tr(back A Kx) = sum_c sum_t back[t, c] * (A Kx)[c, t]
    kept += back[t * k + c] * ak[c * d + t];
  }
  return { mean, data: a, query: b, back, keptVariance: trX > 0 ? Math.min(1, Math.max(0, kept / trX)) : 1 };
}

function transposeOf(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

/** V^T diag(f(values)) V for eigenvectors as rows: f64[d * d]. */
function fromEigen(values: Float64Array, vectors: Float64Array, d: number, f: (l: number) => number): Float64Array {
  const out = new Float64Array(d * d);
  for (let t = 0; t < d; t++) {
    const w = f(values[t]);
    const vt = t * d;
    for (let i = 0; i < d; i++) {
      const vi = w * vectors[vt + i];
      const o = i * d;
      for (let j = 0; j < d; j++) out[o + j] += vi * vectors[vt + j];
    }
  }
  return out;
}

/** a b for square f64[d * d]. */
function multiply(a: Float64Array, b: Float64Array, d: number): Float64Array {
  return multiplyRect(a, b, d, d);
}

/** a b for a: f64[r * d], b: f64[d * d] -> f64[r * d]. */
function multiplyRect(a: Float64Array, b: Float64Array, r: number, d: number): Float64Array {
  const out = new Float64Array(r * d);
  for (let i = 0; i < r; i++) {
    const o = i * d;
    for (let t = 0; t < d; t++) {
      const ait = a[o + t];
      if (ait === 0) continue;
      const row = t * d;
      for (let j = 0; j < d; j++) out[o + j] += ait * b[row + j];
    }
  }
  return out;
}
