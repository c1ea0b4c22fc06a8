import { isIP } from 'node:net';
import { QuiverError } from '../errors.js';
import type { QuiverServer } from './app.js';

export interface ListenOptions {
  /** Port (0: any free port). */
  port: number;
  /** Address to bind (default 127.0.0.1: this machine only). */
  host?: string;
  /** Allow a non-loopback address although requests need no key (auth off, or no key file yet). */
  insecure?: boolean;
}

/** Whether `host` can only be reached from this machine: localhost, 127.0.0.0/8, ::1. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || /^(0+:){7}0*1$/.test(h);
  return false;
}

/**
 * Starts listening; resolves to the address (e.g. http://127.0.0.1:8080). Refuses (INVALID_ARGUMENT,
 * before binding) an address other machines can reach while requests need no key, unless
 * `insecure`: a server open to the network must not be open to everyone by accident.
 */
export async function listen(app: QuiverServer, o: ListenOptions): Promise<string> {
  const host = o.host ?? '127.0.0.1';
  await app.ready(); // the key file is read from the data directory, created by now
  if (!isLoopback(host) && !o.insecure && !(await app.quiver.authenticator.enabled())) {
    throw new QuiverError('INVALID_ARGUMENT', `refusing to listen on ${host} without API keys: anyone who can reach it could read and write every collection. Create a key (quiver keys create --data DIR --scope read-write), listen on 127.0.0.1, or pass --insecure`, { host, reason: 'no API keys' });
  }
  const address = await app.listen({ port: o.port, host });
  if (!isLoopback(host) && !app.initialConfig.https) app.log.warn(`listening on ${address} without TLS: API keys cross the network in clear text (use --tls-cert and --tls-key)`);
  return address;
}
