// A total storage quota for messages: refuse new ones (507) before the disk fills, rather than
// find out from a failed commit. Read at most once a second: a statfs and two stats, no query.
import { statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export interface DiskQuotaOptions {
  /** The SQLite file; its -wal counts too. */
  dbPath: string;
  /** Refuse while the file system has less free than this (0: never for this reason). */
  minFreeBytes: number;
  /** Refuse while the database with its WAL is larger than this (0: no quota). */
  maxStoreBytes: number;
  now?: () => number;
}

const RECHECK_MS = 1000;

export class DiskQuota {
  readonly #o: DiskQuotaOptions;
  readonly #now: () => number;
  #checkedAt = -Infinity;
  #full: string | null = null;

  constructor(o: DiskQuotaOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Why new messages are refused now, or null. */
  exceeded(): string | null {
    const now = this.#now();
    if (now - this.#checkedAt >= RECHECK_MS) {
      this.#checkedAt = now;
      this.#full = this.#check();
    }
    return this.#full;
  }

  #check(): string | null {
    const { dbPath, minFreeBytes, maxStoreBytes } = this.#o;
    if (minFreeBytes > 0) {
      const fs = statfsSync(dirname(dbPath));
      if (fs.bavail * fs.bsize < minFreeBytes) return 'the disk is nearly full';
    }
    if (maxStoreBytes > 0 && sizeOf(dbPath) + sizeOf(`${dbPath}-wal`) > maxStoreBytes) return 'the storage quota is used up';
    return null;
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
