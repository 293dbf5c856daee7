// Receipts on Redis: they live with their receipt subscription, in another slot than the user
// agent whose function produced them, so that function leaves them in its outbox and this moves
// them on at once (the sweep moves what a crash left behind; a receipt is queued once however
// often it is moved). Also the application server's side: its queue, read and acked.
import type { QueuedReceipt, ReceiptStatus } from '../types.ts';
import { redisError } from './errors.ts';
import type { RedisHandle } from './handle.ts';
import { outboxKeys, receiptKeys, receiptSlot, slotOfSeq } from './keys.ts';

export class Receipts {
  readonly #r: RedisHandle;
  readonly #ttl: number;
  readonly #onReceipts: (subscriptions: Buffer[]) => void;
  /** Receipt moves under way: close waits for them. */
  readonly #moves = new Set<Promise<void>>();

  constructor(r: RedisHandle, ttlMs: number, onReceipts: (subscriptions: Buffer[]) => void) {
    this.#r = r;
    this.#ttl = ttlMs;
    this.#onReceipts = onReceipts;
  }

  /**
   * Moves receipts a user agent's function left in its outbox (`out`: message id, entry, …) to
   * their receipt subscriptions, then tells the owner. Never rejects: what fails stays in the
   * outbox, for the sweep.
   */
  async move(uaid: Buffer, out: Buffer[]): Promise<void> {
    if (out.length === 0) return;
    const move = this.#move(uaid, out).catch((err: unknown) => this.#r.failing(redisError(err)));
    this.#moves.add(move);
    await move;
    this.#moves.delete(move);
  }

  async #move(uaid: Buffer, out: Buffer[]): Promise<void> {
    const bySlot = new Map<number, Buffer[]>();
    const subs = new Map<string, Buffer>();
    const ids: Buffer[] = [];
    for (let i = 0; i < out.length; i += 2) {
      const [id, entry] = [out[i]!, out[i + 1]!];
      const sub = entry.subarray(0, 16);
      const slot = receiptSlot(sub);
      const args = bySlot.get(slot) ?? [];
      if (args.length === 0) bySlot.set(slot, args);
      args.push(id, entry);
      subs.set(sub.toString('latin1'), sub);
      ids.push(id);
    }
    const expiresAt = String(this.#r.now() + this.#ttl);
    const queued = await Promise.all(
      [...bySlot].map(([slot, args]) => this.#r.fcall('queue_receipts', receiptKeys(slot), [String(slot), expiresAt, uaid, ...args])),
    );
    await this.#r.fcall('outbox_moved', outboxKeys(uaid), [uaid, ...ids]);
    if (queued.some((n) => (n as number) > 0)) this.#onReceipts([...subs.values()]);
  }

  /** Resolves once the moves under way ended. */
  async settled(): Promise<void> {
    await Promise.all(this.#moves);
  }

  hasReceiptSubscription(id: Buffer): Promise<boolean> {
    return this.#r.read(async () => {
      const expires = (await this.#r.command(['ZSCORE', receiptKeys(receiptSlot(id))[0]!, id])) as number | null;
      return expires !== null && expires > this.#r.now();
    });
  }

  pendingReceipts(subscription: Buffer, afterSeq: number, limit: number): Promise<QueuedReceipt[]> {
    const args = [subscription, String(afterSeq), String(limit), String(this.#r.now())];
    return this.#r.read(async () => {
      const flat = (await this.#r.fcall('pending_receipts', receiptKeys(receiptSlot(subscription)), args, true)) as (number | Buffer)[];
      const receipts: QueuedReceipt[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        // subscription (16), uaid (16), chid (16), status (3 digits), message id
        const rec = flat[i + 1] as Buffer;
        receipts.push({
          seq: flat[i] as number,
          subscription: rec.subarray(0, 16),
          uaid: rec.subarray(16, 32),
          chid: rec.subarray(32, 48),
          messageId: Number(rec.toString('latin1', 51)),
          status: Number(rec.toString('latin1', 48, 51)) as ReceiptStatus,
        });
      }
      return receipts;
    });
  }

  async deleteReceipt(seq: number): Promise<void> {
    await this.#r.write(() => this.#r.fcall('delete_receipt', receiptKeys(slotOfSeq(seq)), [String(seq)]));
  }
}
