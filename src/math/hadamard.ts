import { check, QuiverError } from '../errors.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { Rng } from './rng.js';

/**
 * Random orthogonal rotation built from fast Walsh-Hadamard transforms (FWHT) and random sign
 * flips: x -> H·S_r ··· H·S_1 x, with H the normalised Hadamard matrix (orthogonal, symmetric)
 * and S_i diagonal ±1. A few rounds spread every input coordinate over all outputs, which is what
 * RaBitQ's estimator and scalar quantizers after rotation need ("every coordinate looks alike"),
 * at O(D log D) per vector instead of the O(D^2) of a dense random matrix.
 *
 * Padding: the FWHT needs a power-of-two length, so vectors are zero-padded to `dim` >= inputDim.
 * - 'pow2' (default): dim = the next power of two (768 -> 1024, 1536 -> 2048).
 * - 'multiple64': dim = the next multiple of 64 (768 -> 768, 1536 -> 1536, 100 -> 128). When that
 *   is not a power of two, each round applies signs + FWHT to the leading power-of-two block
 *   [0, P) and then signs + FWHT to the trailing block [dim - P, dim), P the largest power of two
 *   <= dim; the blocks overlap (P >= dim / 2), so one round already mixes every coordinate with
 *   every other, and each step is orthogonal, so the whole map is. Codes that pay per rotated
 *   coordinate (RaBitQ) save up to a third of their size this way.
 *
 * The rotation is fully determined by (inputDim, padding, rounds, seed): it serializes to those
 * few numbers and regenerates its signs on load.
 */
export type RotationPadding = 'pow2' | 'multiple64';

export interface RotationOptions {
  /** Seed of the sign flips (default 0x5eed). */
  seed?: number;
  /** Rounds of signs + FWHT (default 3; 1..16). */
  rounds?: number;
  /** How the dimension is padded (default 'pow2'). */
  padding?: RotationPadding;
}

const SERIAL_VERSION = 1;

export class HadamardRotation {
  /** Dimension of the vectors passed to apply(). */
  readonly inputDim: number;
  /** Dimension of the rotated vectors (padded). */
  readonly dim: number;
  readonly rounds: number;
  readonly seed: number;
  readonly padding: RotationPadding;
  /** Length of each FWHT block (= dim when dim is a power of two). */
  private readonly block: number;
  /** Whether each round runs two overlapping blocks (front, then back). */
  private readonly twoBlocks: boolean;
  /**
   * Sign flips times the FWHT normalisation 1/sqrt(block), per round and block step:
   * f64[rounds * steps * block], steps = 2 with two blocks, else 1.
   */
  private readonly scaledSigns: Float64Array;
  /** Scratch vector, f64[dim]; the rotation is not re-entrant across threads (there are none). */
  private readonly work: Float64Array;

  constructor(inputDim: number, options: RotationOptions = {}) {
    check(Number.isInteger(inputDim) && inputDim >= 1 && inputDim <= 1 << 20, `rotation dimension must be an integer in [1, 2^20], got ${inputDim}`, {
      name: 'inputDim', expected: 'integer in [1, 1048576]', received: inputDim,
    });
    const rounds = options.rounds ?? 3;
    check(Number.isInteger(rounds) && rounds >= 1 && rounds <= 16, `rotation rounds must be an integer in [1, 16], got ${rounds}`, {
      name: 'rounds', expected: 'integer in [1, 16]', received: rounds,
    });
    const padding = options.padding ?? 'pow2';
    check(padding === 'pow2' || padding === 'multiple64', `rotation padding must be 'pow2' or 'multiple64', got ${String(padding)}`, {
      name: 'padding', expected: ['pow2', 'multiple64'], received: padding,
    });
    this.inputDim = inputDim;
    this.rounds = rounds;
    this.seed = (options.seed ?? 0x5eed) >>> 0;
    this.padding = padding;
    this.dim = paddedDimension(inputDim, padding);
    this.block = largestPow2AtMost(this.dim);
    this.twoBlocks = this.block !== this.dim;
    const steps = this.twoBlocks ? 2 : 1;
    this.scaledSigns = new Float64Array(rounds * steps * this.block);
    const rng = new Rng(this.seed);
    const scale = 1 / Math.sqrt(this.block);
    for (let i = 0; i < this.scaledSigns.length; i++) this.scaledSigns[i] = rng.next() < 0.5 ? -scale : scale;
    this.work = new Float64Array(this.dim);
  }

  /** Rotates n vectors: x: f32[n * inputDim] -> out: f32[n * dim] (zero-padded, then rotated). */
  apply(x: Float32Array, n: number, out: Float32Array): void {
    this.checkShapes(x, n * this.inputDim, out, n * this.dim, 'apply');
    const w = this.work, d = this.inputDim, D = this.dim;
    for (let v = 0; v < n; v++) {
      const xo = v * d;
      for (let j = 0; j < d; j++) w[j] = x[xo + j];
      w.fill(0, d);
      this.forward(w);
      const oo = v * D;
      for (let j = 0; j < D; j++) out[oo + j] = w[j];
    }
  }

  /**
   * Applies the inverse (the transpose) to n rotated vectors: y: f32[n * dim] -> out: f32[n * inputDim].
   * For y = apply(x) this returns x (up to rounding); in general it returns the first inputDim
   * coordinates of R^T y, i.e. the orthogonal projection back onto the input space.
   */
  applyInverse(y: Float32Array, n: number, out: Float32Array): void {
    this.checkShapes(y, n * this.dim, out, n * this.inputDim, 'applyInverse');
    const w = this.work, d = this.inputDim, D = this.dim;
    for (let v = 0; v < n; v++) {
      const yo = v * D;
      for (let j = 0; j < D; j++) w[j] = y[yo + j];
      this.inverse(w);
      const oo = v * d;
      for (let j = 0; j < d; j++) out[oo + j] = w[j];
    }
  }

  /** Rotates one vector in place: w: f64[dim], already zero-padded past inputDim. */
  forward(w: Float64Array): void {
    const P = this.block, S = this.scaledSigns;
    if (!this.twoBlocks) {
      for (let r = 0; r < this.rounds; r++) {
        const so = r * P;
        for (let j = 0; j < P; j++) w[j] *= S[so + j];
        fwhtInPlace(w, 0, P);
      }
      return;
    }
    const back = this.dim - P;
    for (let r = 0; r < this.rounds; r++) {
      const so = 2 * r * P;
      for (let j = 0; j < P; j++) w[j] *= S[so + j];
      fwhtInPlace(w, 0, P);
      for (let j = 0; j < P; j++) w[back + j] *= S[so + P + j];
      fwhtInPlace(w, back, P);
    }
  }

  /** Inverse of forward(), in place on w: f64[dim]. H is symmetric and orthogonal, so (H S)^-1 = S H. */
  inverse(w: Float64Array): void {
    const P = this.block, S = this.scaledSigns;
    if (!this.twoBlocks) {
      for (let r = this.rounds - 1; r >= 0; r--) {
        fwhtInPlace(w, 0, P);
        const so = r * P;
        for (let j = 0; j < P; j++) w[j] *= S[so + j]; // (H/sqrt(P))^-1 = H/sqrt(P), then S^-1 = S
      }
      return;
    }
    const back = this.dim - P;
    for (let r = this.rounds - 1; r >= 0; r--) {
      const so = 2 * r * P;
      fwhtInPlace(w, back, P);
      for (let j = 0; j < P; j++) w[back + j] *= S[so + P + j];
      fwhtInPlace(w, 0, P);
      for (let j = 0; j < P; j++) w[j] *= S[so + j];
    }
  }

  /** Writes the rotation's parameters (it regenerates from them). */
  writeTo(w: ByteWriter): void {
    w.u8(SERIAL_VERSION).u32(this.inputDim).u8(this.rounds).u8(this.padding === 'pow2' ? 0 : 1).u32(this.seed);
  }

  /** Reads a rotation written by writeTo; CORRUPT_FILE on garbage. */
  static readFrom(r: ByteReader): HadamardRotation {
    const version = r.u8('rotation version');
    if (version !== SERIAL_VERSION) {
      throw new QuiverError('UNSUPPORTED_FORMAT', `${r.source}: rotation format version ${version} is not supported (read: ${SERIAL_VERSION})`, {
        file: r.source, expected: SERIAL_VERSION, received: version,
      });
    }
    const inputDim = r.u32('rotation inputDim');
    const rounds = r.u8('rotation rounds');
    const pad = r.u8('rotation padding');
    const seed = r.u32('rotation seed');
    if (inputDim < 1 || inputDim > 1 << 20 || rounds < 1 || rounds > 16 || pad > 1) {
      r.fail('invalid rotation parameters', { received: { inputDim, rounds, padding: pad } });
    }
    return new HadamardRotation(inputDim, { rounds, seed, padding: pad === 0 ? 'pow2' : 'multiple64' });
  }

  /** The parameters as standalone bytes. */
  toBytes(): Uint8Array {
    const w = new ByteWriter(16);
    this.writeTo(w);
    return w.finish().slice();
  }

  static fromBytes(bytes: Uint8Array, source = '<rotation>'): HadamardRotation {
    return HadamardRotation.readFrom(new ByteReader(bytes, source));
  }

  private checkShapes(src: Float32Array, srcLen: number, out: Float32Array, outLen: number, what: string): void {
    if (!(src instanceof Float32Array) || !(out instanceof Float32Array) || src.length < srcLen || out.length < outLen) {
      throw new QuiverError('DIMENSION_MISMATCH', `rotation ${what}: expected input f32[${srcLen}] and output f32[${outLen}]`, {
        expected: { input: srcLen, output: outLen },
        received: { input: src instanceof Float32Array ? src.length : typeof src, output: out instanceof Float32Array ? out.length : typeof out },
      });
    }
  }
}

/** The rotated dimension for `inputDim` under `padding`. */
export function paddedDimension(inputDim: number, padding: RotationPadding): number {
  if (padding === 'multiple64') return Math.max(64, Math.ceil(inputDim / 64) * 64);
  let p = 1;
  while (p < inputDim) p *= 2;
  return p;
}

function largestPow2AtMost(n: number): number {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

/**
 * Unnormalised fast Walsh-Hadamard transform of w[off .. off + len), in place; len a power of two.
 * (Multiply by 1/sqrt(len) for the orthogonal transform.)
 */
export function fwhtInPlace(w: Float64Array, off: number, len: number): void {
  for (let h = 1; h < len; h *= 2) {
    for (let i = off, end = off + len; i < end; i += 2 * h) {
      for (let j = i; j < i + h; j++) {
        const a = w[j], b = w[j + h];
        w[j] = a + b;
        w[j + h] = a - b;
      }
    }
  }
}
