// Token buckets keyed by a string (a subscription, a client address), in one bounded map: no
// timer per key. A bucket holds up to `burst` tokens and refills at `rate` per second; a bucket
// that has refilled completely carries no state, so it is the first to be evicted.

export type Clock = () => number;

export interface BucketOptions {
  /** Tokens added per second; 0 turns the limit off. */
  rate: number;
  /** Most tokens a bucket holds (the burst allowed after idling). */
  burst: number;
  /** Most buckets kept; the least recently used ones are dropped beyond it. */
  maxKeys?: number;
  /** Milliseconds; injectable for tests. */
  now?: Clock;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was computed (ms). */
  at: number;
}

/** 0 when the request may go ahead; otherwise the seconds (ceil, at least 1) until a token is there. */
export type TakeResult = number;

export class TokenBuckets {
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxKeys: number;
  readonly #now: Clock;
  /** Insertion order is recency order: a touched key is moved to the end. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(o: BucketOptions) {
    this.#rate = o.rate;
    this.#burst = Math.max(1, o.burst);
    this.#maxKeys = o.maxKeys ?? 100_000;
    this.#now = o.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.#rate > 0;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token for `key`: 0 if there was one, else the whole seconds to wait (Retry-After). */
  take(key: string): TakeResult {
    if (this.#rate <= 0) return 0;
    const now = this.#now();
    const b = this.#buckets.get(key);
    let tokens = this.#burst;
    if (b) {
      tokens = Math.min(this.#burst, b.tokens + ((now - b.at) / 1000) * this.#rate);
      this.#buckets.delete(key);
    }
    if (tokens >= 1) {
      this.#buckets.set(key, { tokens: tokens - 1, at: now });
      this.#evict(now);
      return 0;
    }
    this.#buckets.set(key, { tokens, at: now });
    return Math.max(1, Math.ceil((1 - tokens) / this.#rate));
  }

  /** Drops full (idle) buckets from the oldest end, then the oldest ones while over the bound. */
  #evict(now: number): void {
    const fullAfterMs = (this.#burst / this.#rate) * 1000;
    for (const [key, b] of this.#buckets) {
      if (this.#buckets.size > this.#maxKeys || now - b.at >= fullAfterMs) this.#buckets.delete(key);
      else break;
    }
  }
}
