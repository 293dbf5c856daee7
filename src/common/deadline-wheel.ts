// One coarse timer for every connection's deadline (handshake, keepalive ping, pong) instead of
// a timer each: idle connections then cost no timer objects. Buckets are keyed by tick; an item
// is in at most one bucket, so rescheduling moves it and cancelling removes it: a closed
// connection is not kept alive by the wheel, and rescheduling often costs no memory.

export interface HasDeadline {
  /** When onDeadline should run (ms since epoch); 0 = none. Owned by the wheel. */
  deadline: number;
  /** The tick of the bucket holding the item; 0 = none. Owned by the wheel. */
  deadlineTick: number;
  onDeadline(now: number): void;
}

export interface DeadlineWheelOptions {
  tickMs?: number;
  now?: () => number;
  /** An onDeadline that threw: reported here, and the wheel goes on with the others. */
  onError?: (err: unknown) => void;
}

export class DeadlineWheel<T extends HasDeadline> {
  readonly #tickMs: number;
  readonly #buckets = new Map<number, Set<T>>();
  readonly #timer: NodeJS.Timeout;
  readonly #now: () => number;
  readonly #onError: (err: unknown) => void;
  /** Every bucket up to this tick has been run: an item is never put in one of them. */
  #lastTick: number;

  constructor({ tickMs = 1000, now = Date.now, onError = (err) => console.error(err) }: DeadlineWheelOptions = {}) {
    this.#tickMs = tickMs;
    this.#now = now;
    this.#onError = onError;
    this.#lastTick = Math.floor(now() / tickMs);
    this.#timer = setInterval(() => this.advance(), tickMs);
    this.#timer.unref();
  }

  /** Runs `item.onDeadline` at `at`, at most one tick late (a time already past: at the next tick). */
  schedule(item: T, at: number): void {
    this.#remove(item);
    item.deadline = at;
    this.#enqueue(item, Math.max(Math.floor(at / this.#tickMs), this.#lastTick + 1));
  }

  cancel(item: T): void {
    this.#remove(item);
    item.deadline = 0;
  }

  /** Items waiting for a deadline. */
  get size(): number {
    let n = 0;
    for (const bucket of this.#buckets.values()) n += bucket.size;
    return n;
  }

  /** Buckets held (each holds at least one item). */
  get buckets(): number {
    return this.#buckets.size;
  }

  #enqueue(item: T, tick: number): void {
    item.deadlineTick = tick;
    const bucket = this.#buckets.get(tick);
    if (bucket) bucket.add(item);
    else this.#buckets.set(tick, new Set([item]));
  }

  #remove(item: T): void {
    const tick = item.deadlineTick;
    if (tick === 0) return;
    item.deadlineTick = 0;
    const bucket = this.#buckets.get(tick)!;
    bucket.delete(item);
    if (bucket.size === 0) this.#buckets.delete(tick);
  }

  /** The earliest bucket at or before `tick`, if any (buckets are few: one per distinct second ahead). */
  #earliestUpTo(tick: number): number | undefined {
    let earliest: number | undefined;
    for (const t of this.#buckets.keys()) if (t <= tick && (earliest === undefined || t < earliest)) earliest = t;
    return earliest;
  }

  /** Runs every deadline that is due; called by the interval, and by tests. */
  advance(): void {
    const now = this.#now();
    const target = Math.floor(now / this.#tickMs);
    // Buckets are taken earliest first, by key rather than by counting ticks: a late or jumping
    // clock costs nothing, and a deadline a handler schedules (at `lastTick + 1` or later) is
    // still seen by this loop when it is due.
    for (let tick = this.#earliestUpTo(target); tick !== undefined; tick = this.#earliestUpTo(target)) {
      // the bucket stays in the map while it runs, so a handler can still cancel or move its items
      const bucket = this.#buckets.get(tick)!;
      if (tick > this.#lastTick) this.#lastTick = tick;
      for (const item of bucket) {
        bucket.delete(item);
        item.deadlineTick = 0;
        if (item.deadline > now) {
          // due later within the current tick
          this.#enqueue(item, target + 1);
          continue;
        }
        item.deadline = 0;
        try {
          item.onDeadline(now);
        } catch (err) {
          this.#onError(err);
        }
      }
      this.#buckets.delete(tick);
    }
    if (target > this.#lastTick) this.#lastTick = target;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
