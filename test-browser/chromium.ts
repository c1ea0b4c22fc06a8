import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * The Chromium to drive (no browser download: Debian's package or one the user names):
 * CHROMIUM_PATH, /usr/bin/chromium, then chromium / chromium-browser / google-chrome on PATH.
 */
export function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium'];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const exe of ['chromium', 'chromium-browser', 'google-chrome']) candidates.push(join(dir, exe));
  }
  for (const c of candidates) {
    if (!c) continue;
    try { accessSync(c, constants.X_OK); return c; } catch { /* next */ }
  }
  return undefined;
}
