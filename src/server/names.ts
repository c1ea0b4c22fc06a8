import { QuiverError } from '../errors.js';

/**
 * Collection names become directory names under the data directory, so they are strict:
 * lowercase letters, digits, `_` and `-`, 1..64 characters, a letter or digit first. No dots
 * (no `..`, no hidden files such as the key file), no slashes, and no case (two names differing
 * only in case would be one directory on macOS and Windows).
 */
export const COLLECTION_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$';
const NAME = new RegExp(COLLECTION_NAME_PATTERN);

export function isCollectionName(name: unknown): name is string {
  return typeof name === 'string' && NAME.test(name);
}

/** The name, or INVALID_ARGUMENT saying what a name may be. */
export function checkCollectionName(name: unknown): string {
  if (!isCollectionName(name)) {
    throw new QuiverError('INVALID_ARGUMENT', `collection names are 1..64 lowercase letters, digits, _ or -, starting with a letter or digit; got ${JSON.stringify(String(name)).slice(0, 80)}`, {
      field: 'name', expected: COLLECTION_NAME_PATTERN, received: String(name).slice(0, 80),
    });
  }
  return name;
}
