// The nodes sharing the store: which are running (an alive key each, renewed before it expires)
// and leases that let one node at a time do a job (the sweep). Not part of the Store seam.
import { randomBytes } from 'node:crypto';
import type { RedisHandle } from './handle.ts';
import { aliveKey, GLOBAL } from './keys.ts';

export class ClusterState {
  readonly #r: RedisHandle;

  constructor(r: RedisHandle) {
    this.#r = r;
  }

  /** `node` is running, for `ttlMs` from now (renewed before that). */
  async nodeAlive(node: string, ttlMs: number): Promise<void> {
    await this.#r.write(() => this.#r.command(['SET', aliveKey(node), '1', 'PX', String(ttlMs)]));
  }

  /** Whether `node` renewed its alive key in time (a node that died lets it expire). */
  async isAlive(node: string): Promise<boolean> {
    return (await this.#r.read(() => this.#r.command(['EXISTS', aliveKey(node)]))) === 1;
  }

  /**
   * Takes the lease `name` (e.g. the sweep: one node at a time) for `ttlMs` at most: resolves
   * with the way to end it, or null while another node holds it.
   */
  async takeLease(name: 'sweep', ttlMs: number): Promise<(() => Promise<void>) | null> {
    const token = randomBytes(16).toString('hex');
    const key = GLOBAL[name];
    const taken = await this.#r.write(() => this.#r.command(['SET', key, token, 'NX', 'PX', String(ttlMs)]));
    if (taken === null) return null;
    // only this token's lease: after it expired another node may hold the key
    return async () => void (await this.#r.write(() => this.#r.fcall('release_lease', [key], [token])));
  }
}
