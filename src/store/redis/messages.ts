// Messages on Redis: save, read and delete, each one function on the user agent's slot; a save
// with a receipt also asks the receipt subscription's slot, and tells routing.ts what it learnt
// of the connection's holder.
import { URGENCIES, type MessageFilter, type NewMessage, type ReceiptTarget, type SaveResult, type StoredMessage } from '../types.ts';
import type { Reply } from './connection.ts';
import type { RedisHandle } from './handle.ts';
import { receiptKeys, receiptSlot, userAgentKeys } from './keys.ts';
import type { Receipts } from './receipts.ts';
import { decodeMessage, encodeMessage } from './record.ts';
import type { Routing } from './routing.ts';

export interface MessageLimits {
  /** Most messages stored for one user agent. */
  maxStored: number;
  /** Most messages stored for one subscription. */
  maxStoredPerSub: number;
  /** How long a queued receipt waits for its application server. */
  receiptTtlMs: number;
}

export class Messages {
  readonly #r: RedisHandle;
  readonly #limits: MessageLimits;
  readonly #receipts: Receipts;
  readonly #routing: Routing;

  constructor(r: RedisHandle, limits: MessageLimits, receipts: Receipts, routing: Routing) {
    this.#r = r;
    this.#limits = limits;
    this.#receipts = receipts;
    this.#routing = routing;
  }

  async saveMessage(m: NewMessage, receipt?: ReceiptTarget): Promise<SaveResult> {
    const expiresAt = m.createdAt + m.ttl * 1000;
    // a receipt subscription lives until the receipts of its messages could have expired
    const receiptsUntil = String(expiresAt + this.#limits.receiptTtlMs);
    const keys = userAgentKeys(m.uaid);
    const record = encodeMessage(m, expiresAt, receipt?.id);
    const args = [
      m.uaid,
      m.chid,
      m.topic ?? '',
      record,
      String(expiresAt),
      String(this.#limits.maxStoredPerSub),
      String(this.#limits.maxStored),
      this.#routing.hintsAs,
    ];
    const saved = await this.#r.write(async (): Promise<Reply | 'no-subscription' | 'no-receipt-subscription'> => {
      if (receipt) {
        // the receipt subscription is in another slot: both asked at once (one round trip); one
        // made or extended for a subscription that turns out not to exist expires unused
        const slot = receiptSlot(receipt.id);
        const receiptSubscription = receipt.create
          ? this.#r.register(slot).then(() => this.#r.fcall('create_receipt_subscription', receiptKeys(slot), [receipt.id, receiptsUntil]))
          : this.#r.fcall('use_receipt_subscription', receiptKeys(slot), [receipt.id, receiptsUntil, String(this.#r.now())]);
        const [exists, usable] = await Promise.all([this.#r.command(['HEXISTS', keys[1]!, m.chid]), receiptSubscription]);
        if (exists === 0) return 'no-subscription';
        if (usable === 0) return 'no-receipt-subscription';
      }
      return this.#r.fcall('save_message', keys, args);
    });
    if (typeof saved === 'string') return { ok: false, reason: saved };
    const [code, id, replaced, out, holder, hinted] = saved as [number, number, number, Buffer[], Buffer | undefined, number | undefined];
    if (code === 1) return { ok: false, reason: 'no-subscription' };
    if (code === 2) return { ok: false, reason: 'too-many-stored' };
    await this.#receipts.move(m.uaid, out);
    const message: StoredMessage = { ...m, id, expiresAt };
    if (receipt) message.receipt = receipt.id;
    // (a library an older node loaded does not say: the router asks)
    if (holder) this.#routing.saved(message, { holder: holder.length > 0 ? holder.toString('utf8') : null, record, hinted: hinted === 1 });
    return { ok: true, message, replacedId: replaced === 0 ? null : replaced };
  }

  pendingMessages(uaid: Buffer, afterId: number, limit: number, filter?: MessageFilter): Promise<StoredMessage[]> {
    const now = this.#r.now();
    const minUrgency = filter?.minUrgency ? URGENCIES.indexOf(filter.minUrgency) : 0;
    const args = [String(afterId), String(limit), String(now), filter?.chid ?? '', String(minUrgency)];
    return this.#r.read(async () => {
      const flat = (await this.#r.fcall('pending_messages', userAgentKeys(uaid), args, true)) as (number | Buffer)[];
      const messages: StoredMessage[] = [];
      for (let i = 0; i < flat.length; i += 2) messages.push(decodeMessage(uaid, flat[i] as number, flat[i + 1] as Buffer));
      return messages;
    });
  }

  async deleteMessage(uaid: Buffer, chid: Buffer, id: number): Promise<boolean> {
    const [deleted, out] = (await this.#r.write(() => this.#r.fcall('delete_message', userAgentKeys(uaid), [uaid, chid, String(id)]))) as [
      number,
      Buffer[],
    ];
    await this.#receipts.move(uaid, out);
    return deleted === 1;
  }
}
