// The token that guards the admin listener's write API (PUT /broadcasts): the configured
// --admin-token, or one made once in the data dir (`admin.token`, 0600) so that the API is never
// open and the CLI on the same machine finds it.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ADMIN_TOKEN_FILE = 'admin.token';

/** The token in `dataDir`, made when missing. */
export function loadOrCreateAdminToken(dataDir: string): string {
  try {
    return readAdminToken(dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(32).toString('base64url');
  try {
    writeFileSync(join(dataDir, ADMIN_TOKEN_FILE), `${token}\n`, { mode: 0o600, flag: 'wx' });
    return token;
  } catch (err) {
    // another process made it first
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readAdminToken(dataDir);
    throw err;
  }
}

export function readAdminToken(dataDir: string): string {
  const token = readFileSync(join(dataDir, ADMIN_TOKEN_FILE), 'utf8').trim();
  if (token.length < 16) throw new Error(`${join(dataDir, ADMIN_TOKEN_FILE)} holds no token`);
  return token;
}
