import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Collection } from '../src/node.js';
import { createKey, listen } from '../src/server/index.js';
import { tempServer } from './helpers/server.js';

// The server on real sockets: loopback by default, refusal of an open non-loopback address,
// HTTPS, and `quiver serve` as a process: a SIGTERM under load lets requests finish, closes the
// collections, and every write answered with a 2xx is found when the directory is reopened.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'quiver-listen-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('listen', () => {
  it('binds 127.0.0.1 by default and serves HTTP', async () => {
    const s = tempServer();
    try {
      const address = await listen(s.app, { port: 0 });
      assert.match(address, /^http:\/\/127\.0\.0\.1:\d+$/);
      const put = await fetch(`${address}/collections/live`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dimension: 3 }) });
      assert.equal(put.status, 201);
      const up = await fetch(`${address}/collections/live/records`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records: [{ id: 'x', vector: [1, 2, 3] }] }) });
      assert.deepEqual(await up.json(), { upserted: 1 });
      const hits = await fetch(`${address}/collections/live/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vector: [1, 2, 3], k: 1 }) });
      assert.equal(((await hits.json()) as { hits: { id: string }[] }).hits[0].id, 'x');
    } finally {
      await s.cleanup();
    }
  });

  it('refuses a non-loopback address without keys unless insecure; accepts it once a key exists', async () => {
    const s = tempServer();
    try {
      await assert.rejects(listen(s.app, { port: 0, host: '0.0.0.0' }), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && /refusing to listen on 0\.0\.0\.0/.test(e.message));
      assert.equal(s.app.server.listening, false);
      await createKey(s.dir, { scope: 'read-only' });
      await new Promise((r) => setTimeout(r, 1100)); // the key file is re-read at most once a second
      const address = await listen(s.app, { port: 0, host: '0.0.0.0' });
      assert.match(address, /:\d+$/);
    } finally {
      await s.cleanup();
    }
    const open = tempServer();
    try {
      await listen(open.app, { port: 0, host: '0.0.0.0', insecure: true });
      assert.equal(open.app.server.listening, true);
    } finally {
      await open.cleanup();
    }
  });

  it('serves HTTPS with a certificate', { skip: hasOpenssl() ? false : 'openssl is not installed' }, async () => {
    const cert = join(tmp, 'cert.pem'), key = join(tmp, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const s = tempServer({ https: { cert: readFileSync(cert), key: readFileSync(key) } });
    try {
      const address = await listen(s.app, { port: 0 });
      assert.match(address, /^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(`${address}/healthz`, { ca: readFileSync(cert) }, (res) => {
          let data = '';
          res.on('data', (d) => { data += d; });
          res.on('end', () => resolve(data));
        });
        req.on('error', reject);
        req.end();
      });
      assert.deepEqual(JSON.parse(body), { status: 'ok' });
    } finally {
      await s.cleanup();
    }
  });
});

describe('quiver serve', () => {
  it('refuses 0.0.0.0 without keys (exit code 2)', async () => {
    const dir = join(tmp, 'refuse');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--data', dir, '--port', '0', '--host', '0.0.0.0'], { cwd: ROOT });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 2, stderr);
    assert.match(stderr, /INVALID_ARGUMENT.*refusing to listen on 0\.0\.0\.0/);
  });

  it('drains on SIGTERM: every write answered 2xx is in the collection when reopened', async (t) => {
    const dir = join(tmp, 'drain');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--data', dir, '--port', '0', '--log-level', 'info'], { cwd: ROOT });
    let stdout = '', stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const address = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        stdout += d;
        const m = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(stdout);
        if (m) resolve(m[1]);
      });
      void exited.then(() => reject(new Error(`serve exited early: ${stderr}`)));
    });
    const json = { 'content-type': 'application/json' };
    assert.equal((await fetch(`${address}/collections/drain`, { method: 'PUT', headers: json, body: JSON.stringify({ dimension: 16 }) })).status, 201);
    const acknowledged: string[] = [];
    const outcomes: string[] = [];
    const writes = Array.from({ length: 40 }, async (_, b) => {
      const records = Array.from({ length: 50 }, (_, i) => ({ id: `b${b}-${i}`, vector: Array.from({ length: 16 }, (_, j) => Math.cos(b * 50 + i + j)) }));
      try {
        const res = await fetch(`${address}/collections/drain/records`, { method: 'POST', headers: json, body: JSON.stringify({ records }) });
        outcomes.push(String(res.status));
        if (res.ok) acknowledged.push(...records.map((r) => r.id));
        else assert.ok(res.status === 503, `a write refused during shutdown is 503, got ${res.status}`);
      } catch {
        outcomes.push('refused'); // connection refused or closed once the server stopped accepting
      }
    });
    await new Promise((r) => setTimeout(r, 30)); // some writes are in flight
    child.kill('SIGTERM');
    await Promise.all(writes);
    assert.equal(await exited, 0, stderr);
    assert.match(stdout, /SIGTERM: draining requests and closing collections/);
    assert.match(stdout, /"msg":"stopped"/);
    assert.ok(acknowledged.length > 0, `no write was acknowledged: ${outcomes.join(' ')}`);
    t.diagnostic(`outcomes of 40 concurrent writes around the SIGTERM: ${outcomes.sort().join(' ')}`);
    // the writer lock was released: a writer can open the directory at once
    const col = await Collection.open(join(dir, 'drain'));
    try {
      for (const id of acknowledged) assert.ok(col.has(id), `acknowledged ${id} is missing`);
    } finally {
      await col.close();
    }
  });
});
