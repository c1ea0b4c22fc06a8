/** Bitsets over Uint32Array words: bit i lives in word i >> 5 at position i & 31. */

export function bitsetWords(bits: number): number {
  return (bits + 31) >>> 5;
}

export function testBit(b: Uint32Array, i: number): boolean {
  return (b[i >>> 5] & (1 << (i & 31))) !== 0;
}

/** Sets bit i; returns true if it was clear. */
export function setBit(b: Uint32Array, i: number): boolean {
  const w = i >>> 5, m = 1 << (i & 31);
  if (b[w] & m) return false;
  b[w] |= m;
  return true;
}

export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export function countBits(b: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < b.length; i++) if (b[i]) n += popcount32(b[i]);
  return n;
}

/** A copy at least `bits` long (grown geometrically when it must grow). */
export function growBitset(b: Uint32Array, bits: number): Uint32Array {
  const need = bitsetWords(bits);
  if (need <= b.length) return b;
  const out = new Uint32Array(Math.max(need, b.length * 2, 32));
  out.set(b);
  return out;
}

/** Calls fn(i) for every set bit i in [from, to). */
export function forEachSetBit(b: Uint32Array, from: number, to: number, fn: (i: number) => void): void {
  if (from >= to) return;
  let w = from >>> 5;
  const last = (to - 1) >>> 5;
  for (; w <= last && w < b.length; w++) {
    let word = b[w];
    if (word === 0) continue;
    while (word !== 0) {
      const t = word & -word;
      const i = (w << 5) + (31 - Math.clz32(t));
      if (i >= from && i < to) fn(i);
      word ^= t;
    }
  }
}
