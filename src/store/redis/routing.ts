// Routing between nodes (src/router/cluster-router.ts): who holds a user agent's connection,
// what a save learnt of that holder, and hints over sharded pub/sub. Not part of the Store seam:
// only a shared store has them.
import type { StoredMessage } from '../types.ts';
import type { RedisHandle } from './handle.ts';
import { holderKey, userAgentKey, userAgentKeys } from './keys.ts';

/** What a save learnt (RedisStore.savedWith). */
export interface Saved {
  /** The node holding the connection as the message was stored, or null. */
  holder: string | null;
  record: Buffer;
  /** Whether the save published the hint to the holder itself. */
  hinted: boolean;
}

export class Routing {
  readonly #r: RedisHandle;
  /** What saving a message learnt, for the router handing it on (savedWith). */
  readonly #saved = new WeakMap<StoredMessage, Saved>();
  /** The node whose saves hint the holder in save_message itself ('': none; see publishHintsAs). */
  #hintsAs = '';

  constructor(r: RedisHandle) {
    this.#r = r;
  }

  /** The connection of `uaid` is on `node` now (it is seen now, as touchUserAgent records). */
  async claimUserAgent(uaid: Buffer, node: string): Promise<{ previous: string | null; epoch: number; lastId: number }> {
    const args = [node, uaid, String(this.#r.now())];
    const [previous, epoch, lastId] = (await this.#r.write(() => this.#r.fcall('claim_user_agent', userAgentKeys(uaid), args))) as [
      Buffer | null,
      number,
      number,
    ];
    return { previous: previous?.toString('utf8') ?? null, epoch, lastId };
  }

  /** That connection of `uaid` (its epoch) on `node` left (it is seen now). */
  async releaseUserAgent(uaid: Buffer, node: string, epoch: number): Promise<void> {
    await this.#r.write(() => this.#r.fcall('release_user_agent', userAgentKeys(uaid), [node, String(epoch), uaid, String(this.#r.now())]));
  }

  /** The last message id given to `uaid` (0: none, or no such user agent). */
  lastMessageId(uaid: Buffer): Promise<number> {
    return this.#r.read(async () => Number(((await this.#r.command(['HGET', userAgentKey(uaid), 'id'])) as Buffer | null)?.toString() ?? 0));
  }

  /** The epoch of the newest connection of `uaid` (0: none recorded). */
  connectionEpoch(uaid: Buffer): Promise<number> {
    return this.#r.read(async () => Number(((await this.#r.command(['HGET', holderKey(uaid), 'epoch'])) as Buffer | null)?.toString() ?? 0));
  }

  /** The node holding the connection of `uaid`, or null. */
  holderOf(uaid: Buffer): Promise<string | null> {
    return this.#r.read(async () => ((await this.#r.command(['HGET', holderKey(uaid), 'node'])) as Buffer | null)?.toString('utf8') ?? null);
  }

  /** What save_message is told to hint as: this node, or '' (none). */
  get hintsAs(): string {
    return this.#hintsAs;
  }

  /**
   * From now on a save of a message whose user agent another node holds publishes its hint
   * (record.ts: encodeMessageHint) in the same function, one round trip and one Redis turn fewer
   * on the way; `node` is this node, which needs none. One Redis only: on a Redis Cluster the
   * holder's channel is on another slot than the user agent's keys, and the router publishes.
   */
  publishHintsAs(node: string): void {
    if (!this.#r.cluster) this.#hintsAs = node;
  }

  /** Keeps what saving `message` learnt, for savedWith. */
  saved(message: StoredMessage, saved: Saved): void {
    this.#saved.set(message, saved);
  }

  /**
   * For a message saveMessage returned: the node holding its user agent's connection when it was
   * stored (read in the same function), its record, and whether that function hinted the holder
   * already (publishHintsAs); so the router hints that node with the message itself, without a
   * read before nor one after. undefined for any other message.
   */
  savedWith(message: StoredMessage): Saved | undefined {
    return this.#saved.get(message);
  }

  /** Sends a hint on a sharded pub/sub channel (at most once: nobody may be listening). */
  async publish(channel: string, hint: string | Buffer): Promise<void> {
    await this.#r.read(() => this.#r.command(['SPUBLISH', channel, hint]));
  }

  /**
   * Listens on sharded pub/sub channels over a connection of their own; `onResubscribed` after
   * that connection came back (hints sent meanwhile were lost). Resolves with the way to stop.
   */
  async subscribe(channels: string[], onHint: (hint: Buffer) => void, onResubscribed: () => void): Promise<() => Promise<void>> {
    return this.#r.subscribe(channels, onHint, onResubscribed);
  }
}
