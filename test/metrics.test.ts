import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate } from '../src/eval/metrics.js';
import { isQuiverError } from '../src/errors.js';

const close = (actual: number, expected: number, label: string) => assert.ok(Math.abs(actual - expected) < 1e-9, `${label}: ${actual} != ${expected}`);

const qrels = new Map<string, Map<string, number>>([
  ['q1', new Map([['d1', 1], ['d2', 0], ['d3', 2], ['d5', 1]])], // 3 relevant, d2 judged non-relevant
  ['q2', new Map([['d9', 1]])],
  ['q3', new Map([['dx', 1]])], // missing from the run: scores 0
  ['q5', new Map([['dz', 0]])], // judged, nothing relevant: scores 0
]);
const run = new Map<string, string[]>([
  ['q1', ['d1', 'd2', 'd3', 'd4']],
  ['q2', ['d7', 'd8', 'd9']],
  ['q4', ['d1']], // not judged: skipped
  ['q5', ['dz']],
]);

test('hand-computed values per query', () => {
  const result = evaluate(qrels, run, ['map', 'P@2', 'p@5', 'recall@2', 'recall@4', 'ndcg@3', 'ndcg', 'mrr@2', 'mrr@3', 'map@2']);
  const q1 = result.perQuery.get('q1')!;
  close(q1.map, (1 / 1 + 2 / 3) / 3, 'q1 map');
  close(q1['map@2'], 1 / 3, 'q1 map@2'); // only d1 within 2, divided by all 3 relevant
  close(q1['P@2'], 1 / 2, 'q1 P@2');
  close(q1['p@5'], 2 / 5, 'q1 P@5 divides by 5 though 4 were retrieved');
  close(q1['recall@2'], 1 / 3, 'q1 recall@2');
  close(q1['recall@4'], 2 / 3, 'q1 recall@4');
  // DCG@3 = 1/log2(2) + 0 + 2/log2(4) = 2; ideal from grades [2,1,1] = 2 + 1/log2(3) + 1/2.
  close(q1['ndcg@3'], 2 / (2 + 1 / Math.log2(3) + 0.5), 'q1 ndcg@3');
  close(q1.ndcg, 2 / (2 + 1 / Math.log2(3) + 0.5), 'q1 ndcg (d5 never retrieved)');
  close(q1['mrr@2'], 1, 'q1 mrr@2');

  const q2 = result.perQuery.get('q2')!;
  close(q2.map, 1 / 3, 'q2 map');
  close(q2['P@2'], 0, 'q2 P@2');
  close(q2['ndcg@3'], (1 / Math.log2(4)) / 1, 'q2 ndcg@3');
  close(q2['mrr@2'], 0, 'q2 mrr@2: first relevant at rank 3 is past the cutoff');
  close(q2['mrr@3'], 1 / 3, 'q2 mrr@3');

  for (const id of ['q3', 'q5']) {
    for (const [metric, value] of Object.entries(result.perQuery.get(id)!)) close(value, 0, `${id} ${metric}`);
  }
  assert.equal(result.perQuery.has('q4'), false);
  assert.equal(result.queries, 4);
  assert.deepEqual(result.missingFromRun, ['q3']);
  close(result.mean.map, ((1 + 2 / 3) / 3 + 1 / 3) / 4, 'mean map over the 4 judged queries');
  close(result.mean['mrr@3'], (1 + 1 / 3) / 4, 'mean mrr@3');
});

test('graded nDCG uses the grade as gain and the ideal order of all judged relevant documents', () => {
  const graded = new Map([['q', new Map([['a', 3], ['b', 2], ['c', 1]])]]);
  const result = evaluate(graded, new Map([['q', ['c', 'b', 'a']]]), ['ndcg@2', 'ndcg@3']);
  close(result.mean['ndcg@2'], (1 + 2 / Math.log2(3)) / (3 + 2 / Math.log2(3)), 'ndcg@2');
  close(result.mean['ndcg@3'], (1 + 2 / Math.log2(3) + 3 / 2) / (3 + 2 / Math.log2(3) + 1 / 2), 'ndcg@3');
  // A perfect ranking scores 1.
  close(evaluate(graded, new Map([['q', ['a', 'b', 'c']]]), ['ndcg@10']).mean['ndcg@10'], 1, 'perfect ndcg');
});

test('errors: unknown metrics, missing cutoffs, duplicate documents', () => {
  assert.throws(() => evaluate(qrels, run, ['bpref']), (e: unknown) => isQuiverError(e, 'UNKNOWN_SPEC'));
  assert.throws(() => evaluate(qrels, run, ['P']), (e: unknown) => isQuiverError(e, 'UNKNOWN_SPEC'));
  assert.throws(() => evaluate(qrels, run, ['ndcg@0']), (e: unknown) => isQuiverError(e, 'UNKNOWN_SPEC'));
  assert.throws(() => evaluate(qrels, run, []), (e: unknown) => isQuiverError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => evaluate(qrels, new Map([['q1', ['d1', 'd2', 'd1']]]), ['map']), (e: unknown) => isQuiverError(e, 'INVALID_ARGUMENT')
    && e.details.rank === 3);
  // The default metric set runs.
  assert.deepEqual(Object.keys(evaluate(qrels, run).mean), ['map', 'P@10', 'recall@100', 'ndcg@10', 'mrr@10']);
  // No judged query: means are 0, not NaN.
  assert.equal(evaluate(new Map(), run, ['map']).mean.map, 0);
});

// The BEIR reader lives in src/node (it needs node:fs); its tests sit with the metrics it feeds.
test('readBeirDataset reads the CACM copy in BEIR layout', async () => {
  const { readBeirDataset } = await import('../src/node/beir.js');
  const data = await readBeirDataset(new URL('../../shared/data/cacm', import.meta.url).pathname);
  assert.equal(data.corpus.length, 3204);
  assert.equal(data.queries.size, 64);
  assert.equal(data.qrels.size, 52);
  assert.equal([...data.qrels.values()].reduce((n, j) => n + j.size, 0), 796);
  assert.equal(data.qrels.get('1')!.get('CACM-1410'), 1);
  assert.ok(data.corpus.every((d) => typeof d.id === 'string' && typeof d.title === 'string' && d.text.length > 0));
  assert.match(data.queries.get('1')!, /Time Sharing System/);
});

test('readBeirDataset: missing files are IO_ERROR, bad lines MALFORMED_INPUT with the line', async () => {
  const { mkdtemp, mkdir, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { readBeirDataset, readBeirQrels, readBeirCorpus } = await import('../src/node/beir.js');
  const dir = await mkdtemp(join(tmpdir(), 'quiver-beir-'));
  try {
    await assert.rejects(readBeirDataset(dir), (e: unknown) => isQuiverError(e, 'IO_ERROR'));
    await mkdir(join(dir, 'qrels'));
    await writeFile(join(dir, 'corpus.jsonl'), '{"_id":"d1","text":"no title"}\n\n{"_id":2,"title":"T","text":"numeric id"}\n');
    await writeFile(join(dir, 'queries.jsonl'), '{"_id":"q1","text":"hello"}\n');
    await writeFile(join(dir, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t2\t0\n');
    const data = await readBeirDataset(dir);
    assert.deepEqual(data.corpus, [{ id: 'd1', title: '', text: 'no title' }, { id: '2', title: 'T', text: 'numeric id' }]);
    assert.deepEqual([...data.qrels.get('q1')!], [['d1', 2], ['2', 0]]);

    await writeFile(join(dir, 'bad.tsv'), 'header\nq1\td1\n');
    await assert.rejects(readBeirQrels(join(dir, 'bad.tsv')), (e: unknown) => isQuiverError(e, 'MALFORMED_INPUT') && e.details.line === 2);
    await writeFile(join(dir, 'bad.tsv'), 'header\nq1\td1\tx\n');
    await assert.rejects(readBeirQrels(join(dir, 'bad.tsv')), (e: unknown) => isQuiverError(e, 'MALFORMED_INPUT'));
    await writeFile(join(dir, 'bad.jsonl'), '{"_id":"a","text":"ok"}\n{"_id":"b","text":\n');
    await assert.rejects(readBeirCorpus(join(dir, 'bad.jsonl')), (e: unknown) => isQuiverError(e, 'MALFORMED_INPUT') && e.details.line === 2);
    await writeFile(join(dir, 'bad.jsonl'), '{"text":"no id"}\n');
    await assert.rejects(readBeirCorpus(join(dir, 'bad.jsonl')), (e: unknown) => isQuiverError(e, 'MALFORMED_INPUT') && /_id/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
