// The rate limits of the application-server API: per client address (POST /wpush/…,
// POST /subscribe) and per subscription (POST /wpush/…). Over the limit: 429 with Retry-After.
import { Errno, PushError } from '../common/push-error.ts';
import { isExempt, limitKey } from './addresses.ts';
import { TokenBuckets, type Clock } from './token-bucket.ts';

export interface RateLimitOptions {
  perSubscriptionRate: number;
  perSubscriptionBurst: number;
  perAddressRate: number;
  perAddressBurst: number;
  exemptLoopback: boolean;
  /** IPv6 addresses are keyed by this many leading bits (see limitKey); default 64. */
  ipv6Prefix?: number;
  /** Told of each request refused, by the limit that refused it (metrics). */
  onLimited?: (limit: 'subscription' | 'address') => void;
  maxKeys?: number;
  now?: Clock;
}

export function tooManyRequests(what: string, retryAfter: number): PushError {
  return new PushError(429, Errno.rateLimited, `Too many requests ${what}; retry after ${retryAfter} s`, {
    'retry-after': String(retryAfter),
  });
}

export class RateLimiter {
  readonly #subscriptions: TokenBuckets;
  readonly #addresses: TokenBuckets;
  readonly #exemptLoopback: boolean;
  readonly #ipv6Prefix: number;
  readonly #onLimited: RateLimitOptions['onLimited'];

  constructor(o: RateLimitOptions) {
    const common = { ...(o.maxKeys ? { maxKeys: o.maxKeys } : {}), ...(o.now ? { now: o.now } : {}) };
    this.#subscriptions = new TokenBuckets({ rate: o.perSubscriptionRate, burst: o.perSubscriptionBurst, ...common });
    this.#addresses = new TokenBuckets({ rate: o.perAddressRate, burst: o.perAddressBurst, ...common });
    this.#exemptLoopback = o.exemptLoopback;
    this.#ipv6Prefix = o.ipv6Prefix ?? 64;
    this.#onLimited = o.onLimited;
  }

  /** Throws the 429 when `address` is over its rate. */
  checkAddress(address: string | undefined): void {
    const wait = this.addressWait(address);
    if (wait > 0) throw tooManyRequests('from this address', wait);
  }

  /** Takes a token for `address`: 0 when it may go on, else the seconds until it may (counted as limited). */
  addressWait(address: string | undefined): number {
    if (!this.#addresses.enabled || address === undefined || isExempt(address, this.#exemptLoopback)) return 0;
    const wait = this.#addresses.take(limitKey(address, this.#ipv6Prefix));
    if (wait > 0) this.#onLimited?.('address');
    return wait;
  }

  /** Throws the 429 when the subscription (uaid + chid) is over its rate. */
  checkSubscription(uaid: Buffer, chid: Buffer): void {
    if (!this.#subscriptions.enabled) return;
    const wait = this.#subscriptions.take(uaid.toString('base64url') + chid.toString('base64url'));
    if (wait > 0) {
      this.#onLimited?.('subscription');
      throw tooManyRequests('to this subscription', wait);
    }
  }
}
