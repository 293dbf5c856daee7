// The server secrets that seal capability tokens live in the data dir, one base64url key per
// line, newest first: the first seals new tokens, every line opens. Generated on first start;
// keeping the file keeps every URL valid. `webpushd secret rotate|retire` edit it (atomically);
// a running server reads it again on SIGHUP.
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SECRET_FILE = 'secret.key';

/** A new token secret (32 random bytes). */
export const newSecretKey = (): Buffer => randomBytes(32);
const newSecret = () => newSecretKey().toString('base64url');

function parseSecrets(path: string, text: string): string[] {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  if (lines.length === 0 || lines.some((s) => Buffer.from(s, 'base64url').length < 32)) {
    throw new Error(`${path}: expected one or more base64url secrets of at least 32 bytes, one per line`);
  }
  return lines;
}

export function loadOrCreateSecrets(dataDir: string): Buffer[] {
  try {
    return readSecrets(dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // 'wx': never overwrite a secret another process created meanwhile
    writeFileSync(join(dataDir, SECRET_FILE), `${newSecret()}\n`, { mode: 0o600, flag: 'wx' });
    return readSecrets(dataDir);
  }
}

function readLines(dataDir: string): string[] {
  const path = join(dataDir, SECRET_FILE);
  return parseSecrets(path, readFileSync(path, 'utf8'));
}

/** The secrets of an existing file (a reload: a missing or bad file is an error, never a new secret). */
export function readSecrets(dataDir: string): Buffer[] {
  return readLines(dataDir).map((line) => Buffer.from(line, 'base64url'));
}

/** Replaces the file atomically: a temp file (mode 0600) renamed over it. */
function writeLines(dataDir: string, lines: string[]): void {
  const path = join(dataDir, SECRET_FILE);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, `${lines.join('\n')}\n`, { mode: 0o600, flag: 'wx', flush: true });
  renameSync(tmp, path);
}

/**
 * Adds a new secret at the top (it seals from the next start on; the others still open old
 * tokens). Creates the file when missing. Returns how many secrets the file holds now.
 */
export function rotateSecrets(dataDir: string): number {
  let lines: string[];
  try {
    lines = readLines(dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    lines = [];
  }
  const next = [newSecret(), ...lines];
  writeLines(dataDir, next);
  return next.length;
}

/** Keeps the newest `keep` secrets; tokens sealed by the dropped ones stop opening. Returns how many were dropped. */
export function retireSecrets(dataDir: string, keep: number): number {
  if (!Number.isInteger(keep) || keep < 1) throw new Error('keep must be an integer of at least 1');
  const lines = readLines(dataDir);
  if (lines.length <= keep) return 0;
  writeLines(dataDir, lines.slice(0, keep));
  return lines.length - keep;
}
