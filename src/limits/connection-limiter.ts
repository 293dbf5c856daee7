// Open connections per client address (WebSocket user agents, HTTP/2 sessions): a count per
// address (an IPv6 one by its prefix), dropped when it reaches zero.
import { isExempt, limitKey } from './addresses.ts';

export class ConnectionLimiter {
  readonly #max: number;
  readonly #exemptLoopback: boolean;
  readonly #ipv6Prefix: number;
  readonly #open = new Map<string, number>();
  readonly #onRefused: (() => void) | undefined;

  /** `max` 0: no limit. `onRefused`: told of each connection refused (metrics). `ipv6Prefix`: see limitKey. */
  constructor(max: number, exemptLoopback: boolean, onRefused?: () => void, ipv6Prefix = 64) {
    this.#max = max;
    this.#exemptLoopback = exemptLoopback;
    this.#onRefused = onRefused;
    this.#ipv6Prefix = ipv6Prefix;
  }

  /** Counts a new connection from `address`; false (nothing counted) when it is one too many. */
  acquire(address: string | undefined): boolean {
    if (this.#max <= 0 || address === undefined || isExempt(address, this.#exemptLoopback)) return true;
    const key = limitKey(address, this.#ipv6Prefix);
    const n = this.#open.get(key) ?? 0;
    if (n >= this.#max) {
      this.#onRefused?.();
      return false;
    }
    this.#open.set(key, n + 1);
    return true;
  }

  /** Whether acquire() counts `address` (so release() must follow): callers attach nothing otherwise. */
  counts(address: string | undefined): boolean {
    return this.#max > 0 && address !== undefined && !isExempt(address, this.#exemptLoopback);
  }

  /** Call once for each acquire() that returned true. */
  release(address: string | undefined): void {
    if (address === undefined) return;
    const key = limitKey(address, this.#ipv6Prefix);
    const n = this.#open.get(key);
    if (n === undefined) return;
    if (n <= 1) this.#open.delete(key);
    else this.#open.set(key, n - 1);
  }

  get max(): number {
    return this.#max;
  }
}
