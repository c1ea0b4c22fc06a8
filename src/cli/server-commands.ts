import { readFileSync } from 'node:fs';
import { QuiverError } from '../errors.js';
import { createKey, createServer, listen, listKeys, revokeKey, type KeyScope, type ServerLimits } from '../server/index.js';

export interface ServeOptions {
  data: string;
  port: number;
  host?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecure: boolean;
  logLevel: string;
  limits: Partial<ServerLimits>;
  /** Search threads (undefined: the server's default, the machine's cores; 0: the main thread). */
  searchThreads?: number;
  queryEmbedderThreads?: number;
}

/**
 * `quiver serve`: the HTTP server until SIGTERM or SIGINT, which stop accepting connections,
 * let requests in flight finish and close every collection (a second signal exits at once).
 */
export async function runServe(o: ServeOptions): Promise<void> {
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    throw new QuiverError('INVALID_ARGUMENT', 'HTTPS needs both --tls-cert and --tls-key', { tlsCert: o.tlsCert ?? null, tlsKey: o.tlsKey ?? null });
  }
  const readPem = (path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new QuiverError('IO_ERROR', `cannot read ${path}: ${(e as Error).message}`, { file: path, errno: (e as NodeJS.ErrnoException).code }, { cause: e });
    }
  };
  const https = o.tlsCert && o.tlsKey ? { cert: readPem(o.tlsCert), key: readPem(o.tlsKey) } : null;
  const app = createServer({ dataDir: o.data, https, logger: { level: o.logLevel }, limits: o.limits, ...(o.searchThreads !== undefined ? { searchThreads: o.searchThreads } : {}), ...(o.queryEmbedderThreads !== undefined ? { queryEmbedderThreads: o.queryEmbedderThreads } : {}) });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      app.log.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    app.log.info(`${signal}: draining requests and closing collections`);
    app.close().then(() => {
      app.log.info('stopped');
      process.exit(0);
    }, (err) => {
      app.log.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await listen(app, { port: o.port, host: o.host, insecure: o.insecure });
  } catch (e) {
    await app.close().catch(() => {});
    throw e;
  }
}

/** `quiver keys create`: prints the new key alone on stdout (shown once), what it allows on stderr. */
export async function runKeysCreate(o: { data: string; scope: KeyScope; collection?: string; label?: string; json: boolean }, out = console.log, err = console.error): Promise<void> {
  const { key, info } = await createKey(o.data, { scope: o.scope, collection: o.collection ?? null, label: o.label ?? null });
  if (o.json) { out(JSON.stringify({ key, ...info })); return; }
  out(key);
  err(`created key ${info.id}: ${info.scope}, ${info.collection === null ? 'every collection' : `collection "${info.collection}" only`}. It is shown once and stored only as a hash: keep it now.`);
}

/** `quiver keys list`: ids, scopes, collections, creation times (never the keys). */
export async function runKeysList(o: { data: string; json: boolean }, out = console.log): Promise<void> {
  const keys = await listKeys(o.data);
  if (o.json) { out(JSON.stringify(keys, null, 2)); return; }
  if (keys.length === 0) { out('no API keys'); return; }
  out(`${'id'.padEnd(14)}${'scope'.padEnd(12)}${'collection'.padEnd(20)}${'created'.padEnd(26)}label`);
  for (const k of keys) out(`${k.id.padEnd(14)}${k.scope.padEnd(12)}${(k.collection ?? '*').padEnd(20)}${k.created.padEnd(26)}${k.label ?? ''}`);
}

/** `quiver keys revoke ID`: the key stops working within a second on a running server. */
export async function runKeysRevoke(o: { data: string; id: string; json: boolean }, out = console.log): Promise<void> {
  const info = await revokeKey(o.data, o.id);
  if (o.json) out(JSON.stringify({ revoked: info }));
  else out(`revoked key ${info.id} (${info.scope}, ${info.collection ?? 'every collection'})`);
}
