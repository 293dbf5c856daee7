// Open connections per client address (WebSocket user agents, HTTP/2 sessions): a count per
// address, dropped when it reaches zero.
import { isExempt } from './addresses.ts';

export class ConnectionLimiter {
  readonly #max: number;
  readonly #exemptLoopback: boolean;
  readonly #open = new Map<string, number>();
  readonly #onRefused: (() => void) | undefined;

  /** `max` 0: no limit. `onRefused`: told of each connection refused (metrics). */
  constructor(max: number, exemptLoopback: boolean, onRefused?: () => void) {
    this.#max = max;
    this.#exemptLoopback = exemptLoopback;
    this.#onRefused = onRefused;
  }

  /** Counts a new connection from `address`; false (nothing counted) when it is one too many. */
  acquire(address: string | undefined): boolean {
    if (this.#max <= 0 || address === undefined || isExempt(address, this.#exemptLoopback)) return true;
    const n = this.#open.get(address) ?? 0;
    if (n >= this.#max) {
      this.#onRefused?.();
      return false;
    }
    this.#open.set(address, n + 1);
    return true;
  }

  /** Whether acquire() counts `address` (so release() must follow): callers attach nothing otherwise. */
  counts(address: string | undefined): boolean {
    return this.#max > 0 && address !== undefined && !isExempt(address, this.#exemptLoopback);
  }

  /** Call once for each acquire() that returned true. */
  release(address: string | undefined): void {
    if (address === undefined) return;
    const n = this.#open.get(address);
    if (n === undefined) return;
    if (n <= 1) this.#open.delete(address);
    else this.#open.set(address, n - 1);
  }

  get max(): number {
    return this.#max;
  }
}
