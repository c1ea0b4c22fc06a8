import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Collection } from '../src/node.js';
import { randomF32, rng } from './helpers/random.js';

// Every search sees one consistent state, even while seals, merges and compactions install
// new segments and replacements move records between segments.

const tmp = mkdtempSync(join(tmpdir(), 'quiver-snapshot-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('snapshots', () => {
  it('searches running during seals, merges and compactions see every record exactly once', async () => {
    // a real directory: file I/O yields to the event loop, so searches interleave with the work
    const col = await Collection.open(join(tmp, 'snap'), { schema: { dimension: 8, metric: 'l2' }, sealRows: 60, mergePolicy: { segmentsPerTier: 2 } });
    const n = 500;
    await col.upsert(Array.from({ length: n }, (_, i) => ({ id: `s${i}`, vector: randomF32(8, i + 1) })));
    const q = randomF32(8, 424242);
    let searches = 0;
    let stop = false;
    let failure: unknown = null;
    const searcher = (async () => {
      while (!stop) {
        try {
          // only replacements below: the live set is always the same n ids
          const hits = await col.search(q, { k: 1000, includeMetadata: false });
          assert.equal(hits.length, n);
          assert.equal(new Set(hits.map((h) => h.id)).size, n, 'each record exactly once');
          for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1].score >= hits[i].score);
          searches++;
        } catch (e) { failure = e; stop = true; }
        await new Promise((r) => setImmediate(r));
      }
    })();
    const r = rng(9);
    for (let round = 0; round < 25 && !failure; round++) {
      const replace = () => col.upsert(Array.from({ length: 40 }, () => { const i = Math.floor(r() * n); return { id: `s${i}`, vector: randomF32(8, 1000 + round * 100 + i) }; }));
      await Promise.all([replace(), replace(), round % 6 === 5 ? col.compact() : col.flush(), replace()]);
    }
    await col.idle();
    stop = true;
    await searcher;
    if (failure) throw failure;
    assert.ok(searches >= 25, `searches ${searches}`);
    console.log(`snapshot test: ${searches} searches interleaved with 25 rounds of replacements, seals and merges`);
    assert.equal(col.size, n);
    await col.close();
  });
});
