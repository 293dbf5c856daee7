// The copy of a SQLite data dir into Redis (src/cli/migrate.ts): ids, owners and expiries kept,
// what Redis holds already left as it is, so a copy repeated does no harm. Not part of the Store seam.
import type { QueuedReceipt, StoredMessage } from '../types.ts';
import type { RedisHandle } from './handle.ts';
import { GLOBAL, receiptKeys, receiptSlot, userAgentKeys, userAgentSlot } from './keys.ts';
import { encodeMessage } from './record.ts';

/** A user agent as it is copied (Import.importUserAgent). */
export interface ImportedUserAgent {
  uaid: Buffer;
  createdAt: number;
  seenAt: number;
  lastId: number;
  subscriptions: { chid: Buffer; keyHash: Buffer | null; createdAt: number }[];
  /** Oldest first. */
  messages: StoredMessage[];
}

/** A receipt as it is copied (Import.importReceipt). */
export type ImportedReceipt = Omit<QueuedReceipt, 'seq'> & { expiresAt: number };

export class Import {
  readonly #r: RedisHandle;

  constructor(r: RedisHandle) {
    this.#r = r;
  }

  /** Whether Redis holds webpushd data (user agents, receipts, secrets or broadcasts). */
  holdsData(): Promise<boolean> {
    return this.#r.read(async () => {
      const counts = await Promise.all([
        this.#r.command(['SCARD', GLOBAL.slots]),
        this.#r.command(['EXISTS', GLOBAL.secrets]),
        this.#r.command(['EXISTS', GLOBAL.broadcasts]),
      ]);
      return counts.some((n) => (n as number) > 0);
    });
  }

  /**
   * Copies a user agent with its subscriptions and stored messages, their ids kept; `lastId`
   * (at least its largest message id) is where its new ids go on from. A user agent Redis
   * already holds is left as it is: false.
   */
  importUserAgent(ua: ImportedUserAgent): Promise<boolean> {
    return this.#r.write(async () => {
      await this.#r.register(userAgentSlot(ua.uaid));
      const args: (string | Buffer)[] = [ua.uaid, String(ua.createdAt), String(ua.seenAt), String(ua.lastId), String(ua.subscriptions.length)];
      for (const s of ua.subscriptions) args.push(s.chid, Buffer.concat([Buffer.from(`${s.createdAt}:`), s.keyHash ?? Buffer.alloc(0)]));
      for (const m of ua.messages) args.push(String(m.id), encodeMessage(m, m.expiresAt, m.receipt), String(m.expiresAt));
      return (await this.#r.fcall('import_user_agent', userAgentKeys(ua.uaid), args)) === 1;
    });
  }

  /** Copies a receipt subscription (one Redis holds already lives until the later of both expiries). */
  async importReceiptSubscription(id: Buffer, expiresAt: number): Promise<void> {
    const slot = receiptSlot(id);
    await this.#r.write(async () => {
      await this.#r.register(slot);
      await this.#r.command(['ZADD', receiptKeys(slot)[0]!, 'GT', String(expiresAt), id]);
    });
  }

  /** Queues a receipt copied from elsewhere (once: a copy repeated finds it queued). Returns whether it was queued now. */
  async importReceipt(r: ImportedReceipt): Promise<boolean> {
    const slot = receiptSlot(r.subscription);
    const entry = Buffer.concat([r.subscription, r.chid, Buffer.from(String(r.status))]);
    const args = [String(slot), String(r.expiresAt), r.uaid, String(r.messageId), entry];
    return (await this.#r.write(async () => {
      await this.#r.register(slot);
      return this.#r.fcall('queue_receipts', receiptKeys(slot), args);
    })) === 1;
  }
}
