import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { isQuiverError } from '../src/errors.js';
import { OpenAIEmbedder, TransformersEmbedder, type Embedder } from '../src/embed/index.js';

// The browser-safe embedders: OpenAIEmbedder against a real HTTP server on 127.0.0.1 that speaks
// the embeddings protocol (batching, ordering, retries, timeouts, errors), TransformersEmbedder
// with the package absent (the real path here) and with a stand-in module passed as
// options.transformers (batching, pooling options, checks of the model's answers).

const DIM = 4;

/** A deterministic vector per text, so a test can tell which row came from which text. */
function vectorOf(text: string): number[] {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) >>> 0;
  return [text.length, h % 1000, (h >>> 10) % 1000, 1];
}

interface Seen { headers: IncomingMessage['headers']; body: { model: string; input: string[]; encoding_format: string; dimensions?: number }; url: string }
type Handler = (seen: Seen, res: ServerResponse, n: number) => void;

/** An embeddings server whose answer to the n-th request (0-based) is up to `handler`. */
class FakeEmbeddingsServer {
  readonly requests: Seen[] = [];
  handler: Handler = (seen, res) => answer(res, seen.body.input);
  private readonly server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { raw += c; });
    req.on('end', () => {
      const seen: Seen = { headers: req.headers, body: JSON.parse(raw), url: req.url ?? '' };
      this.requests.push(seen);
      this.handler(seen, res, this.requests.length - 1);
    });
  });
  baseURL = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.baseURL = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }
  reset(handler?: Handler): void {
    this.requests.length = 0;
    this.handler = handler ?? ((seen, res) => answer(res, seen.body.input));
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A 200 answer with rows in reverse order (servers may reorder; `index` says which is which). */
function answer(res: ServerResponse, input: string[], embed: (t: string) => unknown = vectorOf): void {
  const data = input.map((t, index) => ({ object: 'embedding', index, embedding: embed(t) })).reverse();
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ object: 'list', data, model: 'm', usage: { prompt_tokens: 1, total_tokens: 1 } }));
}

function fail(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ error: { message, type: 'test' } }));
}

function rowsOf(vectors: Float32Array, d: number): number[][] {
  return Array.from({ length: vectors.length / d }, (_, i) => Array.from(vectors.subarray(i * d, (i + 1) * d)));
}

const texts = (n: number, prefix = 'text'): string[] => Array.from({ length: n }, (_, i) => `${prefix} number ${i}${'!'.repeat(i % 7)}`);

describe('OpenAIEmbedder against an HTTP server', () => {
  const server = new FakeEmbeddingsServer();
  const make = (extra: Partial<ConstructorParameters<typeof OpenAIEmbedder>[0]> = {}): OpenAIEmbedder =>
    new OpenAIEmbedder({ baseURL: server.baseURL, model: 'test-embed', dimension: DIM, apiKey: 'test-key', retryBaseDelayMs: 1, ...extra });
  before(() => server.start());
  after(() => server.stop());

  it('batches, sends the protocol and the key, and orders rows by index', async () => {
    server.reset();
    const e = make({ batchSize: 96 });
    assert.equal(e.model, 'openai:test-embed');
    assert.equal(e.dimension, DIM);
    const input = texts(250);
    const progress: number[] = [];
    const out = await e.embed(input, { onProgress: (done, total) => { assert.equal(total, 250); progress.push(done); } });
    assert.equal(server.requests.length, 3);
    assert.deepEqual(server.requests.map((r) => r.body.input.length).sort((a, b) => a - b), [58, 96, 96]);
    for (const r of server.requests) {
      assert.equal(r.url, '/v1/embeddings');
      assert.equal(r.headers.authorization, 'Bearer test-key');
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.body.model, 'test-embed');
      assert.equal(r.body.encoding_format, 'float');
      assert.equal(r.body.dimensions, undefined);
    }
    // every text went exactly once, and row i is the vector of text i
    assert.deepEqual(server.requests.flatMap((r) => r.body.input).sort(), [...input].sort());
    assert.deepEqual(rowsOf(out, DIM), input.map(vectorOf));
    assert.deepEqual(progress.slice().sort((a, b) => a - b), progress);
    assert.equal(progress.at(-1), 250);
    await e.close();
  });

  it('embeds an empty list without a request, and refuses bad input before sending anything', async () => {
    server.reset();
    const e = make();
    assert.equal((await e.embed([])).length, 0);
    for (const bad of [undefined, 'one text', [1], ['ok', ''], ['ok', 'lone \uD800 surrogate'], [null]]) {
      await assert.rejects(e.embed(bad as unknown as string[]), (err) => isQuiverError(err, 'INVALID_ARGUMENT'), `input ${JSON.stringify(bad)}`);
    }
    await assert.rejects(e.embed(['a'], { onProgress: 3 } as never), (err) => isQuiverError(err, 'INVALID_ARGUMENT'));
    await assert.rejects(e.embed(['a'], { signal: {} } as never), (err) => isQuiverError(err, 'INVALID_ARGUMENT'));
    assert.equal(server.requests.length, 0);
  });

  it('sends dimensions when asked to', async () => {
    server.reset();
    await make({ requestDimensions: true }).embed(['a']);
    assert.equal(server.requests[0].body.dimensions, DIM);
  });

  it('waits for Retry-After after a 429, then succeeds', async () => {
    server.reset((seen, res, n) => (n === 0 ? fail(res, 429, 'slow down', { 'retry-after': '1' }) : answer(res, seen.body.input)));
    const started = performance.now();
    // a backoff of 1 ms would retry at once: only Retry-After explains a wait of a second
    const out = await make({ retryBaseDelayMs: 1 }).embed(['alpha', 'beta']);
    const waited = performance.now() - started;
    assert.ok(waited >= 950, `retried after ${waited.toFixed(0)} ms, Retry-After said 1 s`);
    assert.equal(server.requests.length, 2);
    assert.deepEqual(rowsOf(out, DIM), ['alpha', 'beta'].map(vectorOf));
  });

  it('caps a long Retry-After at maxRetryDelayMs', async () => {
    server.reset((seen, res, n) => (n === 0 ? fail(res, 429, 'slow down', { 'retry-after': '3600' }) : answer(res, seen.body.input)));
    const started = performance.now();
    await make({ maxRetryDelayMs: 50 }).embed(['alpha']);
    assert.ok(performance.now() - started < 2000);
    assert.equal(server.requests.length, 2);
  });

  it('gives up after maxRetries on 500s with IO_ERROR carrying status, server message and a URL without the key', async () => {
    server.reset((_seen, res) => fail(res, 500, 'the model is on fire'));
    const e = make({ maxRetries: 2, baseURL: `${server.baseURL}?api-key=secret-in-query` });
    await assert.rejects(e.embed(['a', 'b']), (err) => {
      assert.ok(isQuiverError(err, 'IO_ERROR'), String(err));
      assert.equal(err.details.status, 500);
      assert.equal(err.details.attempts, 3);
      assert.equal(err.details.serverMessage, 'the model is on fire');
      assert.equal(err.details.url, `${server.baseURL}/embeddings`);
      assert.ok(!JSON.stringify(err.toJSON()).includes('secret'), 'the key in the query must not leak into the error');
      assert.match(err.message, /HTTP 500: the model is on fire/);
      return true;
    });
    assert.equal(server.requests.length, 3);
    assert.equal(server.requests[0].url, '/v1/embeddings?api-key=secret-in-query');
  });

  it('times out a hanging request and retries it', async () => {
    server.reset((seen, res, n) => { if (n > 0) answer(res, seen.body.input); /* the first request never gets an answer */ });
    const started = performance.now();
    // generous: on a loaded machine a request can take a while to even reach the server
    const out = await make({ timeoutMs: 500 }).embed(['slow']);
    assert.ok(performance.now() - started >= 490);
    assert.equal(server.requests.length, 2);
    assert.deepEqual(rowsOf(out, DIM), [vectorOf('slow')]);
  });

  it('reports a timeout as IO_ERROR once retries are spent', async () => {
    server.reset(() => undefined);
    await assert.rejects(make({ timeoutMs: 500, maxRetries: 1 }).embed(['slow']), (err) => {
      assert.ok(isQuiverError(err, 'IO_ERROR'), String(err));
      assert.equal(err.details.reason, 'timeout');
      assert.equal(err.details.attempts, 2);
      return true;
    });
    assert.equal(server.requests.length, 2);
  });

  it('does not retry a 400', async () => {
    server.reset((_seen, res) => fail(res, 400, "'$.input' is invalid"));
    await assert.rejects(make().embed(['a']), (err) => {
      assert.ok(isQuiverError(err, 'IO_ERROR'), String(err));
      assert.equal(err.details.status, 400);
      assert.equal(err.details.attempts, 1);
      assert.equal(err.details.serverMessage, "'$.input' is invalid");
      return true;
    });
    assert.equal(server.requests.length, 1);
  });

  it('refuses vectors of the wrong dimension or with non-numbers as INVALID_VECTOR, without retrying', async () => {
    server.reset((seen, res) => answer(res, seen.body.input, (t) => vectorOf(t).slice(0, 3)));
    await assert.rejects(make().embed(['a', 'b']), (err) => {
      assert.ok(isQuiverError(err, 'INVALID_VECTOR'), String(err));
      assert.equal(err.details.expected, DIM);
      assert.equal(err.details.received, 3);
      return true;
    });
    assert.equal(server.requests.length, 1);
    server.reset((seen, res) => answer(res, seen.body.input, () => [1, null, 2, 3]));
    await assert.rejects(make().embed(['a']), (err) => isQuiverError(err, 'INVALID_VECTOR'));
  });

  it('refuses an answer with the wrong number of rows or repeated indexes as IO_ERROR', async () => {
    server.reset((seen, res) => answer(res, seen.body.input.slice(1)));
    await assert.rejects(make().embed(['a', 'b']), (err) => isQuiverError(err, 'IO_ERROR') && err.details.expected === 2);
    server.reset((_seen, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: [{ index: 0, embedding: [1, 2, 3, 4] }, { index: 0, embedding: [1, 2, 3, 4] }] }));
    });
    await assert.rejects(make().embed(['a', 'b']), (err) => isQuiverError(err, 'IO_ERROR'));
  });

  it('retries network errors and then fails with IO_ERROR', async () => {
    // a port that was just free: connections are refused
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const e = new OpenAIEmbedder({ baseURL: `http://127.0.0.1:${port}/v1`, model: 'm', dimension: DIM, maxRetries: 2, retryBaseDelayMs: 1 });
    await assert.rejects(e.embed(['a']), (err) => {
      assert.ok(isQuiverError(err, 'IO_ERROR'), String(err));
      assert.equal(err.details.reason, 'network');
      assert.equal(err.details.attempts, 3);
      return true;
    });
  });

  it('aborts a call through its signal with the signal reason', async () => {
    server.reset(() => undefined);
    const controller = new AbortController();
    const pending = make({ timeoutMs: 10_000 }).embed(['a'], { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(pending, (err) => (err as Error).name === 'AbortError');
    const already = AbortSignal.abort(new Error('caller gave up'));
    await assert.rejects(make().embed(['a'], { signal: already }), /caller gave up/);
  });

  it('close() fails calls in flight and later calls with CLOSED', async () => {
    server.reset(() => undefined);
    const e = make({ timeoutMs: 10_000 });
    const pending = e.embed(['a']);
    await new Promise((r) => setTimeout(r, 50));
    await e.close();
    await e.close();
    await assert.rejects(pending, (err) => isQuiverError(err, 'CLOSED'));
    await assert.rejects(e.embed(['a']), (err) => isQuiverError(err, 'CLOSED'));
  });

  it('needs an API key except on loopback, and sends no Authorization header without one', async () => {
    const saved = process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_API_KEY;
    try {
      assert.throws(() => new OpenAIEmbedder({ model: 'm', dimension: DIM }), (err) => isQuiverError(err, 'INVALID_ARGUMENT') && err.details.name === 'apiKey');
      assert.throws(() => new OpenAIEmbedder({ baseURL: 'https://example.com/v1', model: 'm', dimension: DIM }), (err) => isQuiverError(err, 'INVALID_ARGUMENT'));
      process.env.OPENAI_API_KEY = 'from-env';
      server.reset();
      await new OpenAIEmbedder({ baseURL: server.baseURL, model: 'm', dimension: DIM }).embed(['a']);
      assert.equal(server.requests[0].headers.authorization, 'Bearer from-env');
      delete process.env.OPENAI_API_KEY;
      server.reset();
      await new OpenAIEmbedder({ baseURL: server.baseURL.replace('127.0.0.1', 'localhost'), model: 'm', dimension: DIM }).embed(['a']);
      assert.equal(server.requests[0].headers.authorization, undefined);
    } finally {
      if (saved === undefined) delete process.env.OPENAI_API_KEY; else process.env.OPENAI_API_KEY = saved;
    }
  });

  it('refuses bad options', () => {
    const base = { baseURL: server.baseURL, model: 'm', dimension: DIM };
    for (const bad of [{ dimension: 0 }, { dimension: 1.5 }, { model: '' }, { baseURL: 'ftp://x' }, { baseURL: 'not a url' }, { batchSize: 0 }, { timeoutMs: -1 }, { maxRetries: 1.5 }]) {
      assert.throws(() => new OpenAIEmbedder({ ...base, ...bad } as never), (err) => isQuiverError(err, 'INVALID_ARGUMENT'), JSON.stringify(bad));
    }
  });
});

describe('TransformersEmbedder', () => {
  it('names the install line when @huggingface/transformers is absent', async (t) => {
    try {
      createRequire(import.meta.url).resolve('@huggingface/transformers');
      t.skip('@huggingface/transformers is installed here; the missing-package path cannot be exercised');
      return;
    } catch {
      // absent, as intended
    }
    await assert.rejects(TransformersEmbedder.create({ model: 'Xenova/all-MiniLM-L6-v2' }), (err) => {
      assert.ok(isQuiverError(err, 'MISSING_DEPENDENCY'), String(err));
      assert.match(err.message, /npm install @huggingface\/transformers/);
      assert.equal(err.details.package, '@huggingface/transformers');
      return true;
    });
  });

  /** A stand-in for the module: the vector of a text is [length, pooling flag, normalize flag]. */
  function fakeTransformers(opts: { dimension?: number; poison?: string; failLoad?: boolean } = {}) {
    const calls: { texts: string[]; options: { pooling: string; normalize: boolean } }[] = [];
    const loads: { task: string; model: string; options?: Record<string, unknown> }[] = [];
    let disposed = 0;
    const module = {
      env: {} as { localModelPath?: string; allowRemoteModels?: boolean; allowLocalModels?: boolean },
      async pipeline(task: string, model: string, options?: Record<string, unknown>) {
        loads.push({ task, model, options });
        if (opts.failLoad) throw new Error('Could not locate file: "model.onnx"');
        const d = opts.dimension ?? 3;
        const extractor = async (texts: string[], options: { pooling: string; normalize: boolean }) => {
          calls.push({ texts, options });
          const data = new Float32Array(texts.length * d);
          texts.forEach((text, i) => {
            data.set([text.length, options.pooling === 'cls' ? 1 : 0, options.normalize ? 1 : 0].slice(0, d), i * d);
            if (text === opts.poison) data[i * d] = Number.NaN;
          });
          return { dims: [texts.length, d], data };
        };
        return Object.assign(extractor, { dispose: async () => { disposed++; } });
      },
    };
    return { module, calls, loads, disposed: () => disposed };
  }

  it('loads the feature-extraction pipeline, learns the dimension and batches', async () => {
    const fake = fakeTransformers();
    const e: Embedder = await TransformersEmbedder.create({ model: 'org/model', transformers: fake.module, batchSize: 2, localPath: '/models', dtype: 'q8' });
    assert.equal(e.model, 'hf:org/model');
    assert.equal(e.dimension, 3);
    assert.equal(e.batchSize, 2);
    assert.deepEqual(fake.loads, [{ task: 'feature-extraction', model: 'org/model', options: { dtype: 'q8' } }]);
    assert.deepEqual(fake.module.env, { localModelPath: '/models', allowLocalModels: true, allowRemoteModels: false });
    const input = ['a', 'bb', 'ccc', 'dddd', 'eeeee'];
    const progress: number[] = [];
    const out = await e.embed(input, { onProgress: (done) => progress.push(done) });
    assert.deepEqual(rowsOf(out, 3), input.map((t) => [t.length, 0, 1]));
    assert.deepEqual(fake.calls.slice(1).map((c) => c.texts), [['a', 'bb'], ['ccc', 'dddd'], ['eeeee']]); // calls[0] is the probe
    assert.deepEqual(progress, [2, 4, 5]);
    await e.close();
    await e.close();
    assert.equal(fake.disposed(), 1);
    await assert.rejects(e.embed(['a']), (err) => isQuiverError(err, 'CLOSED'));
  });

  it('passes pooling and normalize on, and records them in the id', async () => {
    const fake = fakeTransformers();
    const e = await TransformersEmbedder.create({ model: 'BAAI/bge-small-en-v1.5', transformers: fake.module, pooling: 'cls', normalize: false });
    assert.equal(e.model, 'hf:BAAI/bge-small-en-v1.5:cls:unnormalized');
    assert.deepEqual(rowsOf(await e.embed(['xy']), 3), [[2, 1, 0]]);
    assert.deepEqual(fake.calls.at(-1)?.options, { pooling: 'cls', normalize: false });
  });

  it('checks the declared dimension and the values the model returns', async () => {
    const mismatch = fakeTransformers({ dimension: 3 });
    await assert.rejects(TransformersEmbedder.create({ model: 'm', transformers: mismatch.module, dimension: 384 }), (err) => isQuiverError(err, 'INVALID_VECTOR') && err.details.received === 3);
    assert.equal(mismatch.disposed(), 1, 'a refused pipeline is disposed');
    const poisoned = fakeTransformers({ poison: 'bad' });
    const e = await TransformersEmbedder.create({ model: 'm', transformers: poisoned.module, dimension: 3 });
    await assert.rejects(e.embed(['good', 'bad']), (err) => isQuiverError(err, 'INVALID_VECTOR') && err.details.row === 1);
  });

  it('reports a model that cannot be loaded as IO_ERROR, and a wrong module as INVALID_ARGUMENT', async () => {
    await assert.rejects(TransformersEmbedder.create({ model: 'm', transformers: fakeTransformers({ failLoad: true }).module, localPath: '/nowhere' }), (err) => {
      assert.ok(isQuiverError(err, 'IO_ERROR'), String(err));
      assert.match(err.message, /could not load m from \/nowhere: Could not locate file/);
      return true;
    });
    await assert.rejects(TransformersEmbedder.create({ model: 'm', transformers: {} }), (err) => isQuiverError(err, 'INVALID_ARGUMENT'));
    await assert.rejects(TransformersEmbedder.create({ model: 'm', transformers: fakeTransformers().module, pooling: 'max' as never }), (err) => isQuiverError(err, 'INVALID_ARGUMENT'));
  });
});
