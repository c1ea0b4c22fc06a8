// Crash-test child: opens a durable collection and runs a deterministic workload, logging
// "begin n" before submitting op n and "ack n" once it resolved, with synchronous writes to a log
// file (page cache survives SIGKILL). The parent kills it at a random moment, or it kills itself
// at a named fault point inside flush or merge.
// usage: node crash-child.mjs <dir> <seed> <ops> <logFile> <faultPoint|-> <faultHit> <sealRows> [indexSpec]
import { openSync, writeSync } from 'node:fs';
// QUIVER_CRASH_DIST: another build of the package (a long stress run uses a frozen copy of dist/)
const { Collection } = await import(process.env.QUIVER_CRASH_DIST ?? '../../dist/node.js');
import { makeOps, textFor, vectorFor } from './crash-ops.mjs';

const [dir, seedS, countS, logFile, faultPoint, faultHitS, sealRowsS, index = 'Flat'] = process.argv.slice(2);
const seed = Number(seedS);
const log = openSync(logFile, 'a');
const say = (line) => writeSync(log, line + '\n');
let hits = 0;
const faults = faultPoint === '-' ? undefined : (point) => {
  if (point === faultPoint && ++hits === Number(faultHitS)) {
    say(`fault ${point}`);
    process.kill(process.pid, 'SIGKILL');
  }
};

const col = await Collection.open(dir, {
  // declared fields: a column, and a text field's column and postings, written and read at every seal and merge
  schema: { dimension: 8, metric: 'cosine', index, fields: { v: 'number', t: 'text' } },
  sealRows: Number(sealRowsS),
  // small segments get codes too, so that crashes hit the CODES path of compressed specs
  minQuantizedRows: 8,
  mergePolicy: { segmentsPerTier: 2, maxDeletedRatio: 0.25 },
  faults,
});
say('ready');
process.stdout.write('ready\n');
const ops = makeOps(seed, Number(countS));
const submit = (n) => {
  const op = ops[n];
  say(`begin ${n}`);
  let p;
  if (op.kind === 'upsert') p = col.upsert(op.records.map((r) => ({ id: r.id, vector: vectorFor(r.id, r.version), metadata: { v: r.version, t: textFor(r.id, r.version) } })));
  else if (op.kind === 'delete') p = col.delete(op.ids);
  else if (op.kind === 'update') p = col.update(op.ids.map((id) => ({ id, metadata: { u: op.tag } })), { merge: true });
  else if (op.kind === 'flush') p = col.flush();
  else p = col.compact();
  return p.then(() => say(`ack ${n}`));
};
for (let n = 0; n < ops.length;) {
  const group = Math.min(ops[n].group, ops.length - n);
  await Promise.all(Array.from({ length: group }, (_, i) => submit(n + i)));
  n += group;
}
await col.close();
say('closed');
