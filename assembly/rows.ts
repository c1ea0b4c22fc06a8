// Row kernels shared by the block kernels (dense.ts) and the graph search (graph.ts), inlined
// into each. Not re-exported by index.ts: they are building blocks, not kernels.

@inline function hsum4(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/** <q, r> over d floats: the row kernel of dotMany, and of a graph search (one row at a time). */
// @ts-ignore: decorator
@inline export function dotRow(q: usize, r: usize, d: i32): f32 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let j = 0;
  for (; j + 16 <= d; j += 16) {
    const qp = q + (<usize>j << 2), rp = r + (<usize>j << 2);
    a0 = f32x4.add(a0, f32x4.mul(v128.load(qp), v128.load(rp)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(qp, 16), v128.load(rp, 16)));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(qp, 32), v128.load(rp, 32)));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(qp, 48), v128.load(rp, 48)));
  }
  for (; j + 4 <= d; j += 4) a0 = f32x4.add(a0, f32x4.mul(v128.load(q + (<usize>j << 2)), v128.load(r + (<usize>j << 2))));
  let s = hsum4(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (; j < d; j++) s += load<f32>(q + (<usize>j << 2)) * load<f32>(r + (<usize>j << 2));
  return s;
}

/** ||q - r||^2 over d floats: the row kernel of l2Many and of a graph search. */
// @ts-ignore: decorator
@inline export function l2Row(q: usize, r: usize, d: i32): f32 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let j = 0;
  for (; j + 16 <= d; j += 16) {
    const qp = q + (<usize>j << 2), rp = r + (<usize>j << 2);
    const d0 = f32x4.sub(v128.load(qp), v128.load(rp));
    const d1 = f32x4.sub(v128.load(qp, 16), v128.load(rp, 16));
    const d2 = f32x4.sub(v128.load(qp, 32), v128.load(rp, 32));
    const d3 = f32x4.sub(v128.load(qp, 48), v128.load(rp, 48));
    a0 = f32x4.add(a0, f32x4.mul(d0, d0));
    a1 = f32x4.add(a1, f32x4.mul(d1, d1));
    a2 = f32x4.add(a2, f32x4.mul(d2, d2));
    a3 = f32x4.add(a3, f32x4.mul(d3, d3));
  }
  for (; j + 4 <= d; j += 4) {
    const t = f32x4.sub(v128.load(q + (<usize>j << 2)), v128.load(r + (<usize>j << 2)));
    a0 = f32x4.add(a0, f32x4.mul(t, t));
  }
  let s = hsum4(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (; j < d; j++) { const t = load<f32>(q + (<usize>j << 2)) - load<f32>(r + (<usize>j << 2)); s += t * t; }
  return s;
}

