import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createKey, KEYS_FILE, listKeys, revokeKey } from '../src/server/index.js';
import { call, tempServer } from './helpers/server.js';

// API keys: the key file (scrypt hashes, atomic writes), 401 without a valid key, 403 for a
// key's scope or collection, revocation on a running server, and the `quiver keys` commands.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('API keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-keys-'));
  const s = tempServer({ dataDir: dir, limits: { authFailuresPerMinute: 5 } });
  let admin = '', reader = '', docsWriter = '', docsReader = '';
  before(async () => {
    admin = (await createKey(dir, { scope: 'read-write', label: 'admin' })).key;
    reader = (await createKey(dir, { scope: 'read-only' })).key;
    docsWriter = (await createKey(dir, { scope: 'read-write', collection: 'docs' })).key;
    docsReader = (await createKey(dir, { scope: 'read-only', collection: 'docs' })).key;
    for (const name of ['docs', 'other']) {
      assert.equal((await call(s.app, 'PUT', `/collections/${name}`, { dimension: 2 }, admin)).statusCode, 201);
      assert.equal((await call(s.app, 'POST', `/collections/${name}/records`, { records: [{ id: 'a', vector: [1, 0] }] }, admin)).statusCode, 200);
    }
  });
  after(async () => {
    await s.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores only scrypt hashes, readable by the owner alone', async () => {
    const text = readFileSync(join(dir, KEYS_FILE), 'utf8');
    for (const key of [admin, reader, docsWriter]) {
      assert.match(key, /^qvk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
      assert.ok(!text.includes(key.slice(17)), 'the secret is not stored');
    }
    assert.equal(statSync(join(dir, KEYS_FILE)).mode & 0o777, 0o600);
    const keys = await listKeys(dir);
    assert.deepEqual(keys.map((k) => [k.scope, k.collection, k.label]), [
      ['read-write', null, 'admin'], ['read-only', null, null], ['read-write', 'docs', null], ['read-only', 'docs', null],
    ]);
    assert.ok(keys.every((k) => !('hash' in k) && !('salt' in k)));
    await assert.rejects(createKey(dir, { scope: 'admin' as never }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(createKey(dir, { scope: 'read-only', collection: '../x' }), { code: 'INVALID_ARGUMENT' });
  });

  it('401 without a key, with a malformed header, with a wrong key', async () => {
    const none = await call(s.app, 'GET', '/collections');
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().error.code, 'UNAUTHENTICATED');
    assert.equal(none.headers['www-authenticate'], 'Bearer');
    const basic = await s.app.inject({ method: 'GET', url: '/collections', headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    assert.equal(basic.statusCode, 401);
    assert.equal((await call(s.app, 'GET', '/collections', undefined, 'qvk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).statusCode, 401);
    assert.equal((await call(s.app, 'GET', '/collections', undefined, 'not-a-key')).statusCode, 401);
    // the right id with a wrong secret: refuted by scrypt
    const forged = `${reader.slice(0, 17)}${'B'.repeat(43)}`;
    assert.equal((await call(s.app, 'GET', '/collections', undefined, forged)).statusCode, 401);
    // a body is not even read before the key is checked
    const write = await call(s.app, 'POST', '/collections/docs/records', { records: 'not even valid' });
    assert.equal(write.statusCode, 401);
  });

  it('health, readiness and the OpenAPI document need no key', async () => {
    for (const url of ['/healthz', '/readyz', '/openapi.json']) assert.equal((await call(s.app, 'GET', url)).statusCode, 200, url);
    assert.equal((await call(s.app, 'GET', '/metrics')).statusCode, 401);
  });

  it('a read-only key reads and searches, and gets 403 for every write', async () => {
    assert.equal((await call(s.app, 'GET', '/collections', undefined, reader)).statusCode, 200);
    assert.equal((await call(s.app, 'GET', '/collections/docs', undefined, reader)).statusCode, 200);
    assert.equal((await call(s.app, 'GET', '/collections/docs/records/a', undefined, reader)).statusCode, 200);
    assert.equal((await call(s.app, 'POST', '/collections/other/search', { vector: [1, 0] }, reader)).statusCode, 200);
    assert.equal((await call(s.app, 'GET', '/metrics', undefined, reader)).statusCode, 200);
    const writes: [string, string, unknown][] = [
      ['PUT', '/collections/new', { dimension: 2 }],
      ['DELETE', '/collections/docs', undefined],
      ['POST', '/collections/docs/records', { records: [{ id: 'b', vector: [0, 1] }] }],
      ['POST', '/collections/docs/records/delete', { ids: ['a'] }],
      ['POST', '/collections/docs/flush', undefined],
      ['POST', '/collections/docs/compact', undefined],
    ];
    for (const [method, url, body] of writes) {
      const r = await call(s.app, method as 'GET', url, body, reader);
      assert.equal(r.statusCode, 403, `${method} ${url}: ${r.body}`);
      assert.equal(r.json().error.code, 'PERMISSION_DENIED');
    }
    assert.equal((await call(s.app, 'GET', '/collections/docs', undefined, admin)).json().info.count, 1, 'nothing was written');
  });

  it('a collection key works on its collection only', async () => {
    assert.equal((await call(s.app, 'POST', '/collections/docs/records', { records: [{ id: 'b', vector: [0, 1] }] }, docsWriter)).statusCode, 200);
    assert.equal((await call(s.app, 'POST', '/collections/docs/search', { vector: [0, 1], k: 1 }, docsWriter)).json().hits[0].id, 'b');
    assert.equal((await call(s.app, 'POST', '/collections/docs/flush', undefined, docsWriter)).statusCode, 200);
    assert.deepEqual((await call(s.app, 'GET', '/collections', undefined, docsWriter)).json(), { collections: [{ name: 'docs' }] });
    for (const [method, url, body] of [['POST', '/collections/other/search', { vector: [1, 0] }], ['GET', '/collections/other', undefined], ['PUT', '/collections/third', { dimension: 2 }], ['GET', '/metrics', undefined]] as const) {
      const r = await call(s.app, method, url, body, docsWriter);
      assert.equal(r.statusCode, 403, `${method} ${url}: ${r.body}`);
      assert.equal(r.json().error.code, 'PERMISSION_DENIED');
    }
    assert.equal((await call(s.app, 'POST', '/collections/docs/search', { vector: [1, 0] }, docsReader)).statusCode, 200);
    assert.equal((await call(s.app, 'POST', '/collections/docs/records/delete', { ids: ['b'] }, docsReader)).statusCode, 403);
    assert.equal((await call(s.app, 'GET', '/collections/other/records/a', undefined, docsReader)).statusCode, 403);
  });

  it('a revoked key stops working on the running server within a second', async () => {
    const { key, info } = await createKey(dir, { scope: 'read-only' });
    await new Promise((r) => setTimeout(r, 1100)); // the server re-reads the key file at most once a second
    assert.equal((await call(s.app, 'GET', '/collections', undefined, key)).statusCode, 200);
    await revokeKey(dir, info.id);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await call(s.app, 'GET', '/collections', undefined, key)).statusCode, 401);
    assert.equal((await call(s.app, 'GET', '/collections', undefined, admin)).statusCode, 200);
    await assert.rejects(revokeKey(dir, info.id), { code: 'NOT_FOUND' });
  });

  it('an address that keeps failing scrypt checks is rate limited (429)', async () => {
    const forged = `${admin.slice(0, 17)}${'C'.repeat(43)}`;
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await call(s.app, 'GET', '/collections', undefined, forged)).statusCode);
    assert.ok(statuses.includes(429), statuses.join(' '));
    assert.ok(statuses.every((x) => x === 401 || x === 429), statuses.join(' '));
    // the address is limited for unverified keys only: a key that was verified before still works
    assert.equal((await call(s.app, 'GET', '/collections', undefined, admin)).statusCode, 200);
  });
});

describe('auth modes', () => {
  it('without a key file, requests need no key; once a key exists they do; revoking every key keeps auth on', async () => {
    const s = tempServer();
    try {
      assert.equal((await call(s.app, 'PUT', '/collections/open', { dimension: 2 })).statusCode, 201);
      const { info } = await createKey(s.dir, { scope: 'read-write' });
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await call(s.app, 'GET', '/collections')).statusCode, 401);
      await revokeKey(s.dir, info.id);
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await call(s.app, 'GET', '/collections')).statusCode, 401);
    } finally {
      await s.cleanup();
    }
  });

  it("auth: 'required' with no key file refuses everything but health", async () => {
    const s = tempServer({ auth: 'required' });
    try {
      assert.equal((await call(s.app, 'GET', '/collections')).statusCode, 401);
      assert.equal((await call(s.app, 'GET', '/healthz')).statusCode, 200);
    } finally {
      await s.cleanup();
    }
  });
});

describe('quiver keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-keys-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const quiver = (...args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });

  it('create prints the key alone on stdout; list shows it; revoke removes it', async () => {
    const c = await quiver('keys', 'create', '--data', dir, '--scope', 'read-only', '--collection', 'docs', '--label', 'ci');
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /^qvk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\n$/);
    assert.match(c.stderr, /shown once/);
    const id = c.stdout.slice(4, 16);
    const l = await quiver('keys', 'list', '--data', dir, '--json');
    assert.deepEqual(JSON.parse(l.stdout).map((k: { id: string; scope: string; collection: string }) => [k.id, k.scope, k.collection]), [[id, 'read-only', 'docs']]);
    assert.ok(!l.stdout.includes(c.stdout.trim()));
    const bad = await quiver('keys', 'create', '--data', dir, '--scope', 'everything');
    assert.notEqual(bad.code, 0);
    const r = await quiver('keys', 'revoke', id, '--data', dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`revoked key ${id}`));
    assert.match((await quiver('keys', 'list', '--data', dir)).stdout, /no API keys/);
    const again = await quiver('keys', 'revoke', id, '--data', dir);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /NOT_FOUND/);
  });
});
