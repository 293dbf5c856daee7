// One transaction per event-loop turn: the first write of a turn opens it, a setImmediate
// commits it, and every write of the turn resolves after that single commit (and its fsync).
import type { DatabaseSync } from 'node:sqlite';

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupCommit {
  readonly #db: DatabaseSync;
  readonly #onCommit: (ms: number, writes: number) => void;
  #waiters: Waiter[] = [];
  /** Run after this turn's commit succeeds (dropped if it fails). */
  #afterCommit: (() => void)[] = [];
  #open = false;

  constructor(db: DatabaseSync, onCommit: (ms: number, writes: number) => void = () => {}) {
    this.#db = db;
    this.#onCommit = onCommit;
  }

  /** Runs `write` inside this turn's transaction; resolves with its result once committed. */
  run<T>(write: () => T): Promise<T> {
    if (!this.#open) {
      this.#db.exec('BEGIN IMMEDIATE');
      this.#open = true;
      setImmediate(this.#commit);
    }
    let value: T;
    try {
      value = write();
    } catch (err) {
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

  readonly #commit = (): void => {
    if (!this.#open) return;
    const waiters = this.#waiters;
    const after = this.#afterCommit;
    this.#waiters = [];
    this.#afterCommit = [];
    this.#open = false;
    const started = performance.now();
    try {
      this.#db.exec('COMMIT');
    } catch (err) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // the failed COMMIT may already have rolled back
      }
      for (const w of waiters) w.reject(err);
      return;
    }
    this.#onCommit(performance.now() - started, waiters.length);
    for (const w of waiters) w.resolve();
    // synchronous, so they run before the continuation of any waiter
    for (const fn of after) fn();
  };
}
