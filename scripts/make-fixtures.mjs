// Writes a small durable collection in the current file formats into test/fixtures/format-v<N>/
// (N = the segment format version). Commit the result when a format version changes, keeping the
// old folders: test/fixtures.test.ts checks that every one still opens with the same contents.
// usage: npm run fixtures [-- <name>...]   (builds dist/ first; names: format-v2,
// format-v2-hnsw-graph2, format-v2-ivf; default all)
//
// format-v2 holds: a compressed segment (CODES section with its SQ8 quantizer), an exact one
// (fewer rows than minQuantizedRows), declared fields of every type as columns, a field added
// after the first seal (so the first segment lacks its column and keeps the value in its JSON),
// tombstones, and a WAL with unsealed v2 records (upserts, a delete, a metadata update).
//
// format-v2-hnsw-graph2 and format-v2-ivf hold one sealed segment of 900 rows each under
// 'HNSW8,SQ8,Rerank' (GRAPH section version 2 with its packed level 0, CODES and CALIBRATION
// sections) and 'IVF,SQ8,Rerank' (IVF and CALIBRATION sections), plus a delete and an unsealed
// record in the WAL. format-v2-hnsw (the same collection with a GRAPH section of version 1) was
// written by an earlier version of this script and is kept as it is.
import { rmSync } from 'node:fs';
import { Collection } from '../dist/node.js';

const wanted = process.argv.slice(2);
const make = (name) => wanted.length === 0 || wanted.includes(name);

for (const [name, index] of [['format-v2-hnsw-graph2', 'HNSW8,SQ8,Rerank'], ['format-v2-ivf', 'IVF,SQ8,Rerank']]) {
  if (!make(name)) continue;
  const out = new URL(`../test/fixtures/${name}/`, import.meta.url).pathname;
  rmSync(out, { recursive: true, force: true });
  const v = (i) => [Math.cos(i), Math.sin(i), Math.cos(i / 7), Math.sin(i / 11), (i % 13) / 13, 1];
  const c = await Collection.open(out, { schema: { dimension: 6, metric: 'l2', index, fields: { i: 'number' } }, sealRows: 10000, autoMerge: false });
  await c.upsert(Array.from({ length: 900 }, (_, i) => ({ id: `r${i}`, vector: v(i), metadata: { i } })));
  await c.flush();
  await c.delete(['r0']);
  await c.upsert([{ id: 'w0', vector: v(1000), metadata: { i: 1000 } }]);
  await c.close();
  console.log(`wrote ${out}`);
}
if (!make('format-v2')) process.exit(0);

const dir = new URL('../test/fixtures/format-v2/', import.meta.url).pathname;
rmSync(dir, { recursive: true, force: true });
const vec = (i) => [Math.cos(i), Math.sin(i), i / 10, 1, Math.cos(2 * i), Math.sin(3 * i)];
const open = (schema) => Collection.open(dir, { schema, sealRows: 1000, autoMerge: false, minQuantizedRows: 16 });
let col = await open({ dimension: 6, metric: 'cosine', index: 'Flat,SQ8,Rerank', fields: { group: 'keyword', i: 'number', even: 'boolean', tags: 'keyword[]' } });
await col.upsert(Array.from({ length: 40 }, (_, i) => ({ id: `a${i}`, vector: vec(i), metadata: { group: 'a', i, even: i % 2 === 0, tags: i % 3 ? ['x', 'ü'] : [], rank: i % 5 } })));
await col.flush(); // seg 1: 40 rows, SQ8 codes; "rank" is undeclared here (JSON)
await col.addFields({ rank: 'number' });
await col.upsert(Array.from({ length: 8 }, (_, i) => ({ id: `b${i}`, vector: vec(100 + i), metadata: { group: 'b', i, rank: i, note: 'plain' } })));
await col.delete(['a3', 'a4']);
await col.flush(); // seg 2: 8 rows, exact (fewer than 16), with a rank column
// left in the WAL: a replacement, a delete, a merge update, a new record without metadata
await col.upsert([{ id: 'a0', vector: [9, 9, 9, 9, 9, 9], metadata: { group: 'a', replaced: true } }, { id: 'c0', vector: vec(200) }]);
await col.delete(['b7']);
await col.update([{ id: 'a5', metadata: { even: true, tags: ['y'] } }], { merge: true });
await col.close();
console.log(`wrote ${dir}`);
