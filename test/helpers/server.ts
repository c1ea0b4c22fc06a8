import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { createServer, type QuiverServer, type ServerOptions } from '../../src/server/index.js';

/** A server over a fresh temporary data directory, quiet (no logs). `cleanup` closes it and removes the directory. */
export function tempServer(options: Partial<ServerOptions> = {}): { app: QuiverServer; dir: string; cleanup: () => Promise<void> } {
  const dir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'quiver-server-'));
  const app = createServer({ logger: false, ...options, dataDir: dir });
  return {
    app, dir,
    cleanup: async () => {
      await app.close();
      if (!options.dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A JSON request through inject; `key` adds the bearer header. */
export async function call(app: QuiverServer, method: InjectOptions['method'], url: string, body?: unknown, key?: string): Promise<LightMyRequestResponse & { json: () => any }> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return app.inject({ method, url, headers, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) }) as Promise<LightMyRequestResponse & { json: () => any }>;
}
