/**
 * Memory of text search as the process sees it: a collection of `--copies` copies of CACM (one
 * text field, ids suffixed) is built in a child process into a temporary directory; this process
 * then reopens it, runs one search, and reports RSS growth after GC against what
 * `stats().indexBytes` says the segments hold.
 *
 *   node --expose-gc --import tsx bench/text-memory.ts [--copies N]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATA_DIR, fail, optionValue, positiveInt, round, runMain } from './common.js';
import { Collection, readBeirDataset } from '../src/node.js';

async function settle(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc ?? fail('run with node --expose-gc');
  for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setTimeout(r, 20)); }
  return process.memoryUsage().rss;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let copies = 20, buildInto: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--copies') copies = positiveInt(optionValue(argv, i++, '--copies'), '--copies');
    else if (argv[i] === '--build-into') buildInto = optionValue(argv, i++, '--build-into');
    else fail(`unknown option ${argv[i]} (options: --copies N)`);
  }
  const ds = await readBeirDataset(join(DATA_DIR, 'cacm'));
  if (buildInto) {
    const c = await Collection.open(buildInto, { schema: { dimension: 1, fields: { body: 'text' } }, sealRows: 16_384, autoMerge: false });
    for (let copy = 0; copy < copies; copy++) await c.upsert(ds.corpus.map((d) => ({ id: `${d.id}#${copy}`, vector: [1], metadata: { body: d.text } })));
    await c.flush();
    await c.close();
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'quiver-text-memory-'));
  try {
    // the build runs in its own process, so its memory is not counted here
    execFileSync(process.execPath, [...process.execArgv, process.argv[1], '--build-into', join(dir, 'c'), '--copies', String(copies)], { stdio: 'inherit' });
    const before = await settle();
    const c = await Collection.open(join(dir, 'c'), { readOnly: true });
    await c.search({ text: 'computer programs', k: 10 });
    const after = await settle();
    const textChars = ds.corpus.reduce((a, d) => a + d.text.length, 0) * copies;
    console.log(`documents ${c.count().toLocaleString('en-US')}, segments ${c.stats().segments}: RSS growth after GC ${round((after - before) / 2 ** 20, 1)} MiB; stats().indexBytes ${round(c.stats().indexBytes / 2 ** 20, 1)} MiB; texts ${round(textChars / 2 ** 20, 1)} M characters`);
    await c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await runMain('bench/text-memory.ts', main);
