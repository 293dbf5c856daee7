// One coarse timer for every connection's deadline (handshake, keepalive ping, pong) instead of
// a timer each: idle connections then cost no timer objects. Buckets are keyed by tick;
// rescheduling leaves the old entry behind and it is dropped when its bucket comes due.

export interface HasDeadline {
  /** When onDeadline should run (ms since epoch); 0 = none. Owned by the wheel. */
  deadline: number;
  onDeadline(now: number): void;
}

export class DeadlineWheel<T extends HasDeadline> {
  readonly #tickMs: number;
  readonly #buckets = new Map<number, T[]>();
  readonly #timer: NodeJS.Timeout;
  readonly #now: () => number;
  #lastTick: number;

  constructor(tickMs = 1000, now: () => number = Date.now) {
    this.#tickMs = tickMs;
    this.#now = now;
    this.#lastTick = Math.floor(now() / tickMs);
    this.#timer = setInterval(() => this.advance(), tickMs);
    this.#timer.unref();
  }

  schedule(item: T, at: number): void {
    item.deadline = at;
    this.#enqueue(item, Math.max(Math.floor(at / this.#tickMs), this.#lastTick + 1));
  }

  #enqueue(item: T, tick: number): void {
    const bucket = this.#buckets.get(tick);
    if (bucket) bucket.push(item);
    else this.#buckets.set(tick, [item]);
  }

  cancel(item: T): void {
    item.deadline = 0;
  }

  /** Runs every deadline that is due (at most one tick late); called by the interval, and by tests. */
  advance(): void {
    const now = this.#now();
    const target = Math.floor(now / this.#tickMs);
    for (let tick = this.#lastTick + 1; tick <= target; tick++) {
      const bucket = this.#buckets.get(tick);
      if (!bucket) continue;
      this.#buckets.delete(tick);
      for (const item of bucket) {
        if (item.deadline === 0) continue;
        if (item.deadline <= now) {
          item.deadline = 0;
          item.onDeadline(now);
        } else if (Math.floor(item.deadline / this.#tickMs) === tick) {
          // due later within the current tick
          this.#enqueue(item, target + 1);
        }
        // else: a stale entry; the item waits in a later bucket
      }
    }
    this.#lastTick = target;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
