// User agents and their subscriptions on Redis: each change one function on the user agent's
// slot (functions.lua), receipts it leaves in the outbox moved on (receipts.ts).
import type { Subscription } from '../types.ts';
import type { ClusterState } from './cluster-state.ts';
import type { RedisHandle } from './handle.ts';
import { subscriptionsKey, userAgentKey, userAgentKeys, userAgentSlot } from './keys.ts';
import type { Receipts } from './receipts.ts';
import type { Routing } from './routing.ts';

/**
 * A new user agent's message ids start at its creation time (ms) × this, or after the last id of
 * the same uaid deleted within a day (functions.lua): ids keep increasing when a uaid is deleted
 * and made again, as SQLite's never reuse theirs, so an old message URL never names a new
 * message (below 2^53 until the year 2248).
 */
const ID_SEED = 1024;

export class UserAgents {
  readonly #r: RedisHandle;
  readonly #maxChannels: number;
  readonly #receipts: Receipts;
  readonly #routing: Routing;
  readonly #nodes: ClusterState;

  constructor(r: RedisHandle, maxChannels: number, receipts: Receipts, routing: Routing, nodes: ClusterState) {
    this.#r = r;
    this.#maxChannels = maxChannels;
    this.#receipts = receipts;
    this.#routing = routing;
    this.#nodes = nodes;
  }

  hasUserAgent(uaid: Buffer): Promise<boolean> {
    return this.#r.read(async () => (await this.#r.command(['EXISTS', userAgentKey(uaid)])) === 1);
  }

  putSubscription(sub: Subscription): Promise<boolean> {
    const now = this.#r.now();
    return this.#r.write(async () => {
      await this.#r.register(userAgentSlot(sub.uaid));
      const args = [sub.uaid, sub.chid, sub.keyHash ?? '', String(now), String(this.#maxChannels), String(now * ID_SEED)];
      return (await this.#r.fcall('put_subscription', userAgentKeys(sub.uaid), args)) === 1;
    });
  }

  async deleteSubscription(uaid: Buffer, chid: Buffer): Promise<boolean> {
    const [existed, out] = (await this.#r.write(() => this.#r.fcall('delete_subscription', userAgentKeys(uaid), [uaid, chid]))) as [number, Buffer[]];
    await this.#receipts.move(uaid, out);
    return existed === 1;
  }

  /**
   * With `seenBefore` (expiry), a user agent whose connection a running node holds stays: seen
   * when it connected, it may have been connected to another node ever since.
   */
  async deleteUserAgent(uaid: Buffer, seenBefore?: number): Promise<boolean> {
    let holder = '';
    if (seenBefore !== undefined) {
      holder = (await this.#routing.holderOf(uaid)) ?? '';
      // a node that died without releasing its connections lets its alive key expire
      if (holder !== '' && (await this.#nodes.isAlive(holder))) return false;
    }
    const args = [uaid, seenBefore === undefined ? '' : String(seenBefore), holder];
    const [deleted, out] = (await this.#r.write(() => this.#r.fcall('delete_user_agent', userAgentKeys(uaid), args))) as [number, Buffer[]];
    await this.#receipts.move(uaid, out);
    return deleted === 1;
  }

  async touchUserAgent(uaid: Buffer): Promise<void> {
    const now = this.#r.now();
    await this.#r.write(() => this.#r.fcall('touch_user_agent', userAgentKeys(uaid), [uaid, String(now)]));
  }

  getSubscription(uaid: Buffer, chid: Buffer): Promise<Subscription | null> {
    return this.#r.read(async () => {
      const value = (await this.#r.command(['HGET', subscriptionsKey(uaid), chid])) as Buffer | null;
      return value ? { uaid, chid, keyHash: keyHashOf(value) } : null;
    });
  }

  listSubscriptions(uaid: Buffer): Promise<Subscription[]> {
    return this.#r.read(async () => {
      const flat = (await this.#r.command(['HGETALL', subscriptionsKey(uaid)])) as Buffer[];
      const subs: { created: number; sub: Subscription }[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const value = flat[i + 1]!;
        subs.push({ created: createdOf(value), sub: { uaid, chid: flat[i]!, keyHash: keyHashOf(value) } });
      }
      // as SQLite lists them: oldest first, then by chid
      subs.sort((a, b) => a.created - b.created || Buffer.compare(a.sub.chid, b.sub.chid));
      return subs.map((s) => s.sub);
    });
  }
}

/** A subscription's value: "<created ms>:<key hash>" (functions.lua: put_subscription). */
function createdOf(value: Buffer): number {
  return Number(value.toString('latin1', 0, value.indexOf(0x3a)));
}

function keyHashOf(value: Buffer): Buffer | null {
  const hash = value.subarray(value.indexOf(0x3a) + 1);
  return hash.length > 0 ? hash : null;
}
