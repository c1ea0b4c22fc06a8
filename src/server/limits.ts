import { cpus } from 'node:os';
import { QuiverError } from '../errors.js';

/**
 * What one request may ask of the server. Every limit is a guard against a client (careless or
 * hostile) taking the process down: bytes parsed, items validated and written, work per search.
 */
export interface ServerLimits {
  /** Bytes of a request body (default 16 MiB: 10,000 records of 100 floats, or 1,000 of 1,536). */
  bodyBytes: number;
  /** Records per upsert and ids per delete (default 10,000). */
  batchSize: number;
  /** Largest vector dimension a collection may be created with (default 4,096; the engine's own limit is 65,536). */
  dimension: number;
  /** Largest k of a search (default 1,000). */
  k: number;
  /** Queries in one search request: vectors of `{vectors}`, or requests of a batch (default 100). */
  queries: number;
  /** Searches running at once (default: the machine's cores). */
  concurrentSearches: number;
  /** Searches waiting for a slot; beyond this a search is OVERLOADED (503), not queued (default 256). */
  queuedSearches: number;
  /**
   * Requests per second per API key (per client address when auth is off), as a token bucket
   * refilled at this rate; 0 turns it off (default 1,000: well above what one client needs, low
   * enough that a runaway client cannot starve the others).
   */
  ratePerSecond: number;
  /** Requests a key may send at once after a quiet spell: the bucket's size (default 2 x ratePerSecond, at least 1). */
  rateBurst: number;
  /**
   * Failed key checks per client address per minute before it is RATE_LIMITED (default 60):
   * every failed check runs scrypt, so guessing is expensive for the server too.
   */
  authFailuresPerMinute: number;
}

export const DEFAULT_LIMITS: Readonly<Omit<ServerLimits, 'concurrentSearches' | 'rateBurst'>> = {
  bodyBytes: 16 << 20,
  batchSize: 10_000,
  dimension: 4096,
  k: 1000,
  queries: 100,
  queuedSearches: 256,
  ratePerSecond: 1000,
  authFailuresPerMinute: 60,
};

/** Fills in defaults and checks ranges (INVALID_ARGUMENT naming the limit). */
export function resolveLimits(given: Partial<ServerLimits> = {}): ServerLimits {
  const out = { ...DEFAULT_LIMITS, concurrentSearches: Math.max(1, cpus().length), ...given } as ServerLimits;
  const ranges: Record<keyof ServerLimits, [number, number]> = {
    bodyBytes: [1024, 1 << 30],
    batchSize: [1, 1_000_000],
    dimension: [1, 65536],
    k: [1, 100_000],
    queries: [1, 100_000],
    concurrentSearches: [1, 1024],
    queuedSearches: [0, 1_000_000],
    ratePerSecond: [0, 1_000_000],
    rateBurst: [1, 10_000_000],
    authFailuresPerMinute: [1, 1_000_000],
  };
  if (given.rateBurst === undefined) out.rateBurst = Math.max(1, 2 * out.ratePerSecond);
  for (const key of Object.keys(given)) {
    if (!(key in ranges)) throw new QuiverError('INVALID_ARGUMENT', `unknown server limit "${key}" (allowed: ${Object.keys(ranges).join(', ')})`, { field: key });
  }
  for (const [key, [min, max]] of Object.entries(ranges) as [keyof ServerLimits, [number, number]][]) {
    const v = out[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (key !== 'ratePerSecond' && !Number.isInteger(v))) {
      throw new QuiverError('INVALID_ARGUMENT', `server limit ${key} must be a number in [${min}, ${max}], got ${String(v)}`, { field: key, expected: [min, max], received: v });
    }
  }
  return out;
}

/**
 * Token buckets by key (an API key id or a client address): each holds up to `burst` tokens,
 * refilled at `perSecond`; a request takes one. At most `maxKeys` buckets are kept (the oldest
 * touched is dropped first: a dropped bucket comes back full, which only ever favours a client).
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly perSecond: number, private readonly burst: number, private readonly maxKeys = 10_000, private readonly now: () => number = () => performance.now()) {}

  /** Takes a token: 0 when granted, else the seconds until one is available. */
  take(key: string): number {
    const t = this.now();
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key); // re-inserted below: Map order is then least recently used first
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
      b.at = t;
    } else {
      b = { tokens: this.burst, at: t };
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
    }
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / this.perSecond;
  }

  /** Whether `key` has a token, without taking it. */
  wouldGrant(key: string): boolean {
    const b = this.buckets.get(key);
    if (!b) return true;
    return Math.min(this.burst, b.tokens + ((this.now() - b.at) / 1000) * this.perSecond) >= 1;
  }
}

/**
 * Admits at most `running` searches at once and queues `queued` more in arrival order; a search
 * beyond both is refused with OVERLOADED rather than queued without bound.
 */
export class SearchGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly running: number, private readonly queued: number) {}

  get inFlight(): number { return this.active; }
  get queueLength(): number { return this.waiting.length; }

  /** Runs `work` once a slot is free. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.running) {
      if (this.waiting.length >= this.queued) {
        throw new QuiverError('OVERLOADED', `the server is running ${this.active} searches and has ${this.waiting.length} queued; retry shortly`, { running: this.active, queued: this.waiting.length });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await work();
    } finally {
      // hand the slot straight to the next waiter (active stays the same), or free it
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
