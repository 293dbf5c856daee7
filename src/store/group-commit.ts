// One transaction per event-loop turn: the first write of a turn opens it, a setImmediate
// commits it, and every write of the turn resolves after that single commit (and its fsync).
// A write that throws, or a COMMIT that fails, rolls the whole turn back and rejects every write
// of it: a write's statements are never kept in part (e.g. a Topic replacement's delete without
// its insert), and no writer was answered yet.
import type { DatabaseSync } from 'node:sqlite';
import { StoreUnavailable } from './errors.ts';

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** SQLite primary result codes that mean "cannot serve now", not a bug in a statement. */
const UNAVAILABLE = new Set([
  5, // BUSY: another process holds the write lock
  6, // LOCKED
  7, // NOMEM
  8, // READONLY
  10, // IOERR
  11, // CORRUPT
  13, // FULL: database or disk is full
  14, // CANTOPEN
  15, // PROTOCOL
  26, // NOTADB
]);

/** A SQLite error as the Store seam reports it: StoreUnavailable when it is a fault of the disk or file. */
export function storeError(err: unknown): unknown {
  const code = (err as { errcode?: unknown }).errcode;
  if (typeof code === 'number' && UNAVAILABLE.has(code & 0xff)) {
    return new StoreUnavailable((err as Error).message, { cause: err });
  }
  return err;
}

export interface GroupCommitEvents {
  /** After each successful commit: how long it took and how many writes it held. */
  onCommit?: (ms: number, writes: number) => void;
  /** After a turn failed (its writes were rolled back). */
  onFailure?: (err: unknown) => void;
}

export class GroupCommit {
  readonly #db: DatabaseSync;
  readonly #onCommit: (ms: number, writes: number) => void;
  readonly #onFailure: (err: unknown) => void;
  #waiters: Waiter[] = [];
  /** Run after this turn's commit succeeds (dropped if it fails). */
  #afterCommit: (() => void)[] = [];
  #open = false;

  constructor(db: DatabaseSync, events: GroupCommitEvents = {}) {
    this.#db = db;
    this.#onCommit = events.onCommit ?? (() => {});
    this.#onFailure = events.onFailure ?? (() => {});
  }

  /** Runs `write` inside this turn's transaction; resolves with its result once committed. */
  run<T>(write: () => T): Promise<T> {
    let value: T;
    try {
      if (!this.#open) {
        this.#db.exec('BEGIN IMMEDIATE');
        this.#open = true;
        setImmediate(this.#commit);
      }
      value = write();
    } catch (raw) {
      const err = storeError(raw);
      if (this.#open) this.#fail(err);
      else this.#onFailure(err);
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => this.#waiters.push({ resolve: () => resolve(value), reject }));
  }

  /** Runs `fn` once the current transaction is committed (call it from inside `run`). */
  afterCommit(fn: () => void): void {
    this.#afterCommit.push(fn);
  }

  /** Commits now (used on shutdown). */
  flush(): void {
    if (this.#open) this.#commit();
  }

  /** Rolls this turn back and rejects its writes; the next write opens a new transaction. */
  #fail(err: unknown): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#afterCommit = [];
    this.#open = false;
    // SQLite rolls back by itself after some errors (e.g. SQLITE_FULL)
    if (this.#db.isTransaction) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // nothing left to undo
      }
    }
    for (const w of waiters) w.reject(err);
    this.#onFailure(err);
  }

  readonly #commit = (): void => {
    if (!this.#open) return;
    const started = performance.now();
    try {
      this.#db.exec('COMMIT');
    } catch (err) {
      return this.#fail(storeError(err));
    }
    const waiters = this.#waiters;
    const after = this.#afterCommit;
    this.#waiters = [];
    this.#afterCommit = [];
    this.#open = false;
    this.#onCommit(performance.now() - started, waiters.length);
    for (const w of waiters) w.resolve();
    // synchronous, so they run before the continuation of any waiter
    for (const fn of after) fn();
  };
}
