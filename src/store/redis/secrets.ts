// The token secrets every node must agree on (src/tokens/secret-store.ts), newest first in
// {g}:secrets. Not part of the Store seam.
import type { RedisHandle } from './handle.ts';
import { GLOBAL } from './keys.ts';

export class TokenSecrets {
  readonly #r: RedisHandle;

  constructor(r: RedisHandle) {
    this.#r = r;
  }

  /** The token secrets, newest first (none yet: empty). */
  tokenSecrets(): Promise<Buffer[]> {
    return this.#r.read(async () => (await this.#r.command(['LRANGE', GLOBAL.secrets, '0', '-1'])) as Buffer[]);
  }

  /** Stores `secrets` (newest first) unless Redis holds some already; resolves with those Redis holds. */
  async initTokenSecrets(secrets: readonly Buffer[]): Promise<Buffer[]> {
    return (await this.#r.write(() => this.#r.fcall('init_secrets', [GLOBAL.secrets], secrets))) as Buffer[];
  }

  /** Adds `secret` as the newest (it seals from now on). Returns how many there are now. */
  async rotateTokenSecrets(secret: Buffer): Promise<number> {
    return (await this.#r.write(() => this.#r.command(['LPUSH', GLOBAL.secrets, secret]))) as number;
  }

  /** Keeps the newest `keep` secrets. Returns how many were dropped. */
  async retireTokenSecrets(keep: number): Promise<number> {
    return (await this.#r.write(() => this.#r.fcall('retire_secrets', [GLOBAL.secrets], [String(keep)]))) as number;
  }

  /** Adds `secrets` after (older than) those Redis holds, each unless there already. Returns how many were added. */
  async addTokenSecrets(secrets: readonly Buffer[]): Promise<number> {
    return (await this.#r.write(() => this.#r.fcall('add_secrets', [GLOBAL.secrets], secrets))) as number;
  }
}
