// The broadcast versions, one hash for all nodes ({g}:broadcasts).
import type { RedisHandle } from './handle.ts';
import { GLOBAL } from './keys.ts';

export class Broadcasts {
  readonly #r: RedisHandle;

  constructor(r: RedisHandle) {
    this.#r = r;
  }

  broadcasts(): Promise<Map<string, string>> {
    return this.#r.read(async () => {
      const flat = (await this.#r.command(['HGETALL', GLOBAL.broadcasts])) as Buffer[];
      const versions = new Map<string, string>();
      for (let i = 0; i < flat.length; i += 2) versions.set(flat[i]!.toString('utf8'), flat[i + 1]!.toString('utf8'));
      return versions;
    });
  }

  async putBroadcasts(versions: Readonly<Record<string, string>>): Promise<void> {
    const pairs = Object.entries(versions).flat();
    if (pairs.length > 0) await this.#r.write(() => this.#r.command(['HSET', GLOBAL.broadcasts, ...pairs]));
  }

  /** Sets the broadcast versions Redis does not hold yet (a copy from elsewhere). Returns how many. */
  async addBroadcasts(versions: Readonly<Record<string, string>>): Promise<number> {
    let added = 0;
    for (const [id, version] of Object.entries(versions)) added += (await this.#r.write(() => this.#r.command(['HSETNX', GLOBAL.broadcasts, id, version]))) as number;
    return added;
  }
}
