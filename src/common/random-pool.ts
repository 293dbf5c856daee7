// Random bytes for small values (token nonces, new uaids) drawn from the CSPRNG many values at a
// time, instead of one call per value: the same generator, fewer calls, and the values of one
// draw share one ArrayBuffer (randomBytes gives each 16-byte uaid one of its own, ~0.15 kB).
import { randomFillSync } from 'node:crypto';

export class RandomPool {
  readonly #size: number;
  #pool: Buffer;
  #offset: number;

  /** `bytes`: how much is drawn at a time. */
  constructor(bytes = 8192) {
    this.#size = bytes;
    this.#pool = Buffer.alloc(0);
    this.#offset = 0;
  }

  /**
   * `n` random bytes, never handed out again nor overwritten: a draw is a new buffer, so a value
   * kept (a uaid) keeps its draw's buffer alive, shared only with values of the same kind.
   */
  take(n: number): Buffer {
    if (this.#offset + n > this.#pool.length) {
      this.#pool = randomFillSync(Buffer.allocUnsafeSlow(Math.max(n, this.#size)));
      this.#offset = 0;
    }
    const bytes = this.#pool.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return bytes;
  }
}
