// Scrape-time numbers read from the database file over a read-only connection of its own
// (WAL: it never blocks the writer, and the store's own connection stays untouched).
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { STORED_COUNT_LIMIT } from './metrics.ts';

export class StoreStats {
  readonly #db: DatabaseSync;
  readonly #count: StatementSync;

  /** `path`: the store's database file (it must exist: open the store first). */
  constructor(path: string) {
    this.#db = new DatabaseSync(path, { readOnly: true });
    // bounded: a scrape never scans more than STORED_COUNT_LIMIT rows of the smallest index
    this.#count = this.#db.prepare('SELECT count(*) AS n FROM (SELECT 1 FROM messages LIMIT ?)');
  }

  /** Messages stored now (expired ones not yet swept included), up to STORED_COUNT_LIMIT. */
  storedMessages(): number | null {
    try {
      return Number((this.#count.get(STORED_COUNT_LIMIT) as { n: number }).n);
    } catch {
      return null;
    }
  }

  close(): void {
    try {
      this.#db.close();
    } catch {
      // already closed
    }
  }
}
