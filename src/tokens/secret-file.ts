// The server secrets that seal capability tokens live in the data dir, one base64url key per
// line, newest first. Generated on first start; keeping the file keeps every URL valid.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SECRET_FILE = 'secret.key';

export function loadOrCreateSecrets(dataDir: string): Buffer[] {
  const path = join(dataDir, SECRET_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    text = `${randomBytes(32).toString('base64url')}\n`;
    // 'wx': never overwrite a secret another process created meanwhile
    writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
  }
  const secrets = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => Buffer.from(line, 'base64url'));
  if (secrets.length === 0 || secrets.some((s) => s.length < 32)) {
    throw new Error(`${path}: expected one or more base64url secrets of at least 32 bytes, one per line`);
  }
  return secrets;
}
