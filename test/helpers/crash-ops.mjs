// Deterministic workload shared by the crash-test child (which runs it) and parent (which
// replays it as a model). Plain JS so the child can run it on the built package without tsx.

/** mulberry32 */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const DIMENSION = 8;
export const UNIVERSE = 200;

/** The vector stored for `id` at `version`: exact float32 values, reproducible anywhere. */
export function vectorFor(id, version) {
  const r = rng((Number(id.slice(1)) * 7919 + version * 104729) >>> 0);
  const v = new Float32Array(DIMENSION);
  for (let i = 0; i < DIMENSION; i++) v[i] = r() * 2 - 1 + (i === 0 ? 0.01 : 0);
  return v;
}

/**
 * Operations of one child run: {kind: 'upsert', records: [{id, version}]} | {kind: 'delete', ids}
 * | {kind: 'update', ids, tag} (metadata merge: sets u = tag, keeps the vector) | {kind: 'flush'}
 * | {kind: 'compact'}, plus `group`: how many ops to submit concurrently from here.
 */
export function makeOps(seed, count) {
  const r = rng(seed);
  const ops = [];
  for (let n = 0; n < count; n++) {
    const x = r();
    const group = r() < 0.25 ? 2 + Math.floor(r() * 4) : 1;
    if (x < 0.55) {
      const size = 1 + Math.floor(r() * 25);
      const records = Array.from({ length: size }, (_, i) => ({ id: `k${Math.floor(r() * UNIVERSE)}`, version: seed * 10000 + n * 100 + i }));
      ops.push({ kind: 'upsert', records, group });
    } else if (x < 0.67) {
      const ids = Array.from({ length: 1 + Math.floor(r() * 8) }, () => `k${Math.floor(r() * UNIVERSE)}`);
      ops.push({ kind: 'update', ids, tag: seed * 10000 + n, group });
    } else if (x < 0.92) {
      const ids = Array.from({ length: 1 + Math.floor(r() * 10) }, () => `k${Math.floor(r() * UNIVERSE)}`);
      ops.push({ kind: 'delete', ids, group });
    } else if (x < 0.985) {
      ops.push({ kind: 'flush', group: 1 });
    } else {
      ops.push({ kind: 'compact', group: 1 });
    }
  }
  return ops;
}

/** Applies ops[0..m) to a model Map(id -> {version, tag}) (tag: the last update's, or undefined). */
export function applyOps(model, ops, m) {
  for (let n = 0; n < m; n++) {
    const op = ops[n];
    if (op.kind === 'upsert') for (const rec of op.records) model.set(rec.id, { version: rec.version, tag: undefined });
    else if (op.kind === 'delete') for (const id of op.ids) model.delete(id);
    else if (op.kind === 'update') for (const id of op.ids) { const cur = model.get(id); if (cur) model.set(id, { version: cur.version, tag: op.tag }); }
  }
  return model;
}

/** The text of a record version: its id and version as words (a text search for the id finds it alone). */
export function textFor(id, version) {
  return `${id} version${version} crash`;
}
