import { QuiverError } from '../errors.js';
import { KeyVerifier, type KeyScope } from './keys.js';
import { TokenBuckets, type ServerLimits } from './limits.js';

/**
 * What a route needs: `public` (health, readiness, the OpenAPI document), `read` (a read-only key
 * is enough), `write` (a read-write key), `server` (any key not tied to one collection: metrics
 * name every collection).
 */
export type Access = 'public' | 'read' | 'write' | 'server';

/**
 * Whether requests need a key: `auto` (default) when the data directory has a key file (created
 * by `quiver keys create`; it stays when every key is revoked, so revoking the last key locks the
 * server rather than opening it), `required` always, `off` never (every request may do anything).
 */
export type AuthMode = 'auto' | 'required' | 'off';

/** Who sent a request: a key, or `anonymous` when auth is off. */
export interface Principal {
  id: string;
  scope: KeyScope;
  collection: string | null;
}

const ANONYMOUS: Principal = Object.freeze({ id: 'anonymous', scope: 'read-write', collection: null });

export class Authenticator {
  readonly verifier: KeyVerifier;
  /** Failed key checks per client address: each costs a scrypt. */
  private readonly failures: TokenBuckets;

  constructor(dataDir: string, private readonly mode: AuthMode, limits: ServerLimits) {
    this.verifier = new KeyVerifier(dataDir);
    this.failures = new TokenBuckets(limits.authFailuresPerMinute / 60, limits.authFailuresPerMinute);
  }

  /** Whether requests need a key now. */
  async enabled(): Promise<boolean> {
    if (this.mode === 'off') return false;
    if (this.mode === 'required') return true;
    return this.verifier.hasKeyFile();
  }

  /** The principal of a request's Authorization header; UNAUTHENTICATED or RATE_LIMITED otherwise. */
  async authenticate(authorization: string | undefined, clientAddress: string): Promise<Principal> {
    if (!(await this.enabled())) return ANONYMOUS;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    if (!m) {
      throw new QuiverError('UNAUTHENTICATED', authorization ? 'the Authorization header must read "Bearer <key>"' : 'this server needs an API key: send "Authorization: Bearer <key>"', { scheme: 'Bearer' });
    }
    const token = m[1];
    const remembered = await this.verifier.remembered(token);
    if (remembered) return { id: remembered.id, scope: remembered.scope, collection: remembered.collection };
    // a key whose id exists costs a scrypt to refute: limit how often one address may try (keys
    // verified before pass above, so failures from a shared proxy address do not lock them out)
    if (this.verifier.knownId(token) && !this.failures.wouldGrant(clientAddress)) {
      throw new QuiverError('RATE_LIMITED', 'too many failed API key checks from this address; retry later', { retryAfterSeconds: 60 });
    }
    const key = await this.verifier.verify(token);
    if (!key) {
      this.failures.take(clientAddress);
      throw new QuiverError('UNAUTHENTICATED', 'the API key is not valid (unknown, revoked or mistyped)', { scheme: 'Bearer' });
    }
    return { id: key.id, scope: key.scope, collection: key.collection };
  }
}

/** PERMISSION_DENIED unless `who` may do `access` on `collection` (undefined: a route without one). */
export function authorize(who: Principal, access: Access, collection: string | undefined): void {
  if (access === 'public') return;
  if (access === 'write' && who.scope !== 'read-write') {
    throw new QuiverError('PERMISSION_DENIED', `key ${who.id} is read-only; this request writes`, { key: who.id, scope: who.scope, required: 'read-write' });
  }
  if (who.collection !== null) {
    if (access === 'server') {
      throw new QuiverError('PERMISSION_DENIED', `key ${who.id} is limited to collection "${who.collection}"; this request concerns the whole server`, { key: who.id, collection: who.collection });
    }
    if (collection !== undefined && collection !== who.collection) {
      throw new QuiverError('PERMISSION_DENIED', `key ${who.id} is limited to collection "${who.collection}"`, { key: who.id, collection: who.collection, requested: collection.slice(0, 80) });
    }
  }
}
