// The data dir holds bearer credentials (uaids in the database, the token secret): only the
// service's user may read it. Created 0700; the database is created 0600 before SQLite opens it,
// so its -wal and -shm files (SQLite gives them the database's mode) are 0600 too.
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Creates `dir` (0700) and makes `files` in it 0600, creating them empty when missing. Returns whether `dir` is open to other users. */
export function preparePrivateDir(dir: string, files: readonly string[]): { groupOrWorldAccess: boolean } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const name of files) {
    const path = join(dir, name);
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
  }
  return { groupOrWorldAccess: (statSync(dir).mode & 0o077) !== 0 };
}

/** Makes `path` 0600 if it exists (files an older webpushd created with the default umask). */
export function tightenIfPresent(path: string): void {
  try {
    chmodSync(path, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
