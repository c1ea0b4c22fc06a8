// Writes test/fixtures/format-v1/: a small durable collection in the current file formats
// (two sealed segments, tombstones, a WAL with unsealed writes). Commit the result when a format
// version changes, keeping the old folders: test/fixtures.test.ts checks every one still opens.
// usage: npm run build && node scripts/make-fixtures.mjs
import { rmSync } from 'node:fs';
import { Collection } from '../dist/node.js';

const dir = new URL('../test/fixtures/format-v1/', import.meta.url).pathname;
rmSync(dir, { recursive: true, force: true });
const vec = (i) => [Math.cos(i), Math.sin(i), i / 10, 1];
const col = await Collection.open(dir, { schema: { dimension: 4, metric: 'l2' }, sealRows: 1000, autoMerge: false });
await col.upsert(Array.from({ length: 12 }, (_, i) => ({ id: `a${i}`, vector: vec(i), metadata: { group: 'a', i } })));
await col.flush();
await col.upsert(Array.from({ length: 8 }, (_, i) => ({ id: `b${i}`, vector: vec(100 + i), metadata: { group: 'b', i, tags: ['x', 'ü'] } })));
await col.delete(['a3', 'a4']);
await col.flush();
// left in the WAL: a replacement, a delete, new records
await col.upsert([{ id: 'a0', vector: [9, 9, 9, 9], metadata: { group: 'a', replaced: true } }, { id: 'c0', vector: vec(200) }]);
await col.delete(['b7']);
await col.close();
console.log(`wrote ${dir}`);
