import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { QuiverError } from '../errors.js';
import { checkCollectionName } from './names.js';

/**
 * API keys, kept in `<dataDir>/.keys.json` as scrypt hashes (the key itself is shown once, when
 * created, and never stored). A key reads `qvk_<id>_<secret>`: the id (12 hex digits) finds its
 * entry without hashing, the secret (32 random bytes, base64url) is what the hash protects.
 *
 * File layout (JSON, written atomically: temporary file, fsync, rename, fsync of the directory):
 *   { "version": 1, "keys": [ { id, scope, collection, label, created,
 *                               salt (base64), hash (base64), scrypt: { N, r, p } }, ... ] }
 * Read-modify-write cycles (create, revoke) hold `<dataDir>/.keys.lock`, so two CLI commands at
 * once cannot lose a key. The server re-reads the file when it changes, so keys created or
 * revoked while it runs take effect within a second.
 */

export type KeyScope = 'read-only' | 'read-write';
export const KEY_SCOPES: readonly KeyScope[] = ['read-only', 'read-write'];

/** What is known about a key (never its secret). */
export interface ApiKeyInfo {
  id: string;
  scope: KeyScope;
  /** The one collection the key may use, or null for all. */
  collection: string | null;
  /** A note for humans (who or what uses the key). */
  label: string | null;
  /** ISO time of creation. */
  created: string;
}

interface StoredKey extends ApiKeyInfo {
  salt: string;
  hash: string;
  scrypt: { N: number; r: number; p: number };
}

interface KeyFile {
  version: 1;
  keys: StoredKey[];
}

export const KEYS_FILE = '.keys.json';
const LOCK_FILE = '.keys.lock';
const KEY_PATTERN = /^qvk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
/** scrypt cost: 16 MiB and ~50 ms per check (OWASP's minimum is N=2^17 for passwords; these secrets are random, 256 bits). */
const SCRYPT = { N: 1 << 14, r: 8, p: 1 } as const;
const HASH_BYTES = 32;

function scrypt(secret: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: 128 * params.N * params.r * params.p + (1 << 20) };
  return new Promise((resolve, reject) => scryptCallback(secret, salt, HASH_BYTES, options, (err, key) => (err ? reject(err) : resolve(key))));
}

function publicInfo(k: StoredKey): ApiKeyInfo {
  return { id: k.id, scope: k.scope, collection: k.collection, label: k.label, created: k.created };
}

/** Parses the key file; CORRUPT_FILE when it is not what this module writes. */
function parseKeyFile(text: string, path: string): KeyFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new QuiverError('CORRUPT_FILE', `${path} is not valid JSON`, { file: path }, { cause: e });
  }
  const f = data as KeyFile;
  const ok = typeof f === 'object' && f !== null && f.version === 1 && Array.isArray(f.keys) && f.keys.every((k) =>
    typeof k === 'object' && k !== null && typeof k.id === 'string' && KEY_SCOPES.includes(k.scope)
    && (k.collection === null || typeof k.collection === 'string') && typeof k.salt === 'string' && typeof k.hash === 'string'
    && typeof k.scrypt === 'object' && k.scrypt !== null && [k.scrypt.N, k.scrypt.r, k.scrypt.p].every((x) => Number.isInteger(x) && x > 0));
  if (!ok) throw new QuiverError('CORRUPT_FILE', `${path} is not a QuiverDB key file (version 1)`, { file: path });
  return f;
}

async function readKeyFile(dataDir: string): Promise<KeyFile | null> {
  const path = join(dataDir, KEYS_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new QuiverError('IO_ERROR', `${path}: cannot read: ${(e as Error).message}`, { file: path, errno: (e as NodeJS.ErrnoException).code }, { cause: e });
  }
  return parseKeyFile(text, path);
}

/** Replaces the key file atomically (readable by its owner only). */
async function writeKeyFile(dataDir: string, file: KeyFile): Promise<void> {
  const path = join(dataDir, KEYS_FILE);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(file, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  const dir = await open(dataDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Runs `work` holding the key file's lock (waits up to 10 s; a lock older than 60 s is stale). */
async function withKeyLock<T>(dataDir: string, work: () => Promise<T>): Promise<T> {
  await mkdir(dataDir, { recursive: true });
  const lock = join(dataDir, LOCK_FILE);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const fh = await open(lock, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 60_000) { await unlink(lock).catch(() => {}); continue; }
      if (Date.now() > deadline) throw new QuiverError('LOCKED', `${lock} is held by another command; remove it if no quiver command is running`, { file: lock });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await work();
  } finally {
    await unlink(lock).catch(() => {});
  }
}

/** Creates a key; returns the key text (show it once: only its hash is stored) and its entry. */
export async function createKey(dataDir: string, o: { scope: KeyScope; collection?: string | null; label?: string | null }): Promise<{ key: string; info: ApiKeyInfo }> {
  if (!KEY_SCOPES.includes(o.scope)) {
    throw new QuiverError('INVALID_ARGUMENT', `scope must be one of ${KEY_SCOPES.join(', ')}, got ${JSON.stringify(o.scope)}`, { field: 'scope', expected: KEY_SCOPES, received: o.scope });
  }
  const collection = o.collection == null ? null : checkCollectionName(o.collection);
  const label = o.label == null ? null : String(o.label).slice(0, 200);
  return withKeyLock(dataDir, async () => {
    const file = (await readKeyFile(dataDir)) ?? { version: 1, keys: [] };
    let id: string;
    do id = randomBytes(6).toString('hex'); while (file.keys.some((k) => k.id === id));
    const secret = randomBytes(32).toString('base64url');
    const salt = randomBytes(16);
    const hash = await scrypt(secret, salt, SCRYPT);
    const stored: StoredKey = { id, scope: o.scope, collection, label, created: new Date().toISOString(), salt: salt.toString('base64'), hash: hash.toString('base64'), scrypt: { ...SCRYPT } };
    file.keys.push(stored);
    await writeKeyFile(dataDir, file);
    return { key: `qvk_${id}_${secret}`, info: publicInfo(stored) };
  });
}

/** Every key's entry (no secrets). */
export async function listKeys(dataDir: string): Promise<ApiKeyInfo[]> {
  return ((await readKeyFile(dataDir))?.keys ?? []).map(publicInfo);
}

/** Removes a key (NOT_FOUND when no key has this id). The file stays, even empty: auth stays on. */
export async function revokeKey(dataDir: string, id: string): Promise<ApiKeyInfo> {
  return withKeyLock(dataDir, async () => {
    const file = await readKeyFile(dataDir);
    const found = file?.keys.find((k) => k.id === id);
    if (!file || !found) throw new QuiverError('NOT_FOUND', `no API key with id ${JSON.stringify(id)}`, { id });
    file.keys = file.keys.filter((k) => k !== found);
    await writeKeyFile(dataDir, file);
    return publicInfo(found);
  });
}

/**
 * Checks presented keys against the key file, re-reading it when it changes (checked at most
 * once per `recheckMs`). A key verified once is remembered (by a SHA-256 of the key, until the
 * file changes), so scrypt runs once per key, not once per request.
 */
export class KeyVerifier {
  private file: KeyFile | null = null;
  private fileStamp = '';
  private checkedAt = -Infinity;
  private loading: Promise<void> | null = null;
  private readonly verified = new Map<string, ApiKeyInfo>();

  constructor(private readonly dataDir: string, private readonly recheckMs = 1000) {}

  /** Whether a key file exists (then every request needs a key, even once all keys are revoked). */
  async hasKeyFile(): Promise<boolean> {
    await this.refresh();
    return this.file !== null;
  }

  /** The entry of a key verified before (and not revoked since), without hashing; else null. */
  async remembered(text: string): Promise<ApiKeyInfo | null> {
    await this.refresh();
    return this.verified.get(createHash('sha256').update(text).digest('base64')) ?? null;
  }

  /** The key's entry, or null when the text is not a valid, unrevoked key. */
  async verify(text: string): Promise<ApiKeyInfo | null> {
    await this.refresh();
    const m = KEY_PATTERN.exec(text);
    if (!m || !this.file) return null;
    const digest = createHash('sha256').update(text).digest('base64');
    const known = this.verified.get(digest);
    if (known) return known;
    const entry = this.file.keys.find((k) => k.id === m[1]);
    if (!entry) return null;
    const file = this.file;
    const hash = await scrypt(m[2], Buffer.from(entry.salt, 'base64'), entry.scrypt);
    const expected = Buffer.from(entry.hash, 'base64');
    if (hash.length !== expected.length || !timingSafeEqual(hash, expected)) return null;
    const info = publicInfo(entry);
    // the file may have changed while scrypt ran: remember only what the current file says
    if (file === this.file) {
      if (this.verified.size >= 10_000) this.verified.clear();
      this.verified.set(digest, info);
    }
    return info;
  }

  /** Is `text` shaped like a key whose id exists? (Only those cost a scrypt check.) */
  knownId(text: string): boolean {
    const m = KEY_PATTERN.exec(text);
    return !!m && !!this.file?.keys.some((k) => k.id === m[1]);
  }

  private async refresh(): Promise<void> {
    const now = performance.now();
    if (now - this.checkedAt < this.recheckMs) return;
    this.loading ??= this.load().finally(() => { this.loading = null; });
    await this.loading;
  }

  private async load(): Promise<void> {
    const path = join(this.dataDir, KEYS_FILE);
    let stamp: string;
    try {
      const s = await stat(path);
      stamp = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      stamp = 'absent';
    }
    if (stamp !== this.fileStamp) {
      this.verified.clear();
      // a damaged file fails closed: every key is refused until it is fixed (the error is thrown to the caller)
      this.file = stamp === 'absent' ? null : { version: 1, keys: [] };
      this.fileStamp = stamp;
      if (stamp !== 'absent') this.file = await readKeyFile(this.dataDir);
    }
    this.checkedAt = performance.now();
  }
}
