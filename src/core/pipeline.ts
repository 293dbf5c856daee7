// accept -> store -> route: the one path every message takes, whichever door it came in by.
// Every change a live connection must hear of (a message left the store, a subscription was
// deleted) also goes through here, after the store committed it.
import type { Metrics } from '../observability/metrics.ts';
import type { Router } from '../router/router.ts';
import type { NewMessage, ReceiptTarget, Store, StoredMessage, SweepResult } from '../store/types.ts';

/** Says why new messages cannot be stored now (src/store/disk-quota.ts), or null. */
export interface StorageQuota {
  exceeded(): string | null;
}

export type AcceptResult =
  | { outcome: 'stored'; message: StoredMessage }
  /** TTL 0: handed to a connected user agent, or dropped; never stored. `id` (< 0) names it in its message URL. */
  | { outcome: 'ephemeral'; delivered: boolean; id: number }
  | { outcome: 'no-subscription' }
  | { outcome: 'too-many-stored' }
  /** The total storage quota is used up (or the disk nearly full): nothing more is stored. */
  | { outcome: 'store-full'; why: string }
  /** The receipt subscription the sender named does not exist (or expired). */
  | { outcome: 'no-receipt-subscription' };

export class Pipeline {
  readonly #store: Store;
  readonly #router: Router;
  readonly #metrics: Metrics | null;
  readonly #quota: StorageQuota | null;
  #ephemeralIds = 0;

  constructor(store: Store, router: Router, metrics: Metrics | null = null, quota: StorageQuota | null = null) {
    this.#store = store;
    this.#router = router;
    this.#metrics = metrics;
    this.#quota = quota;
  }

  /** `receipt`: where to report the message's fate (RFC 8030 5.1); ignored for TTL 0 (never stored). */
  async accept(m: NewMessage, receipt?: ReceiptTarget): Promise<AcceptResult> {
    if (m.ttl === 0) {
      if (!(await this.#store.getSubscription(m.uaid, m.chid))) {
        this.#metrics?.rejected('no-subscription');
        return { outcome: 'no-subscription' };
      }
      this.#metrics?.accepted(false);
      const id = -++this.#ephemeralIds;
      const delivered = this.#router.deliver({ ...m, id, expiresAt: m.createdAt });
      return { outcome: 'ephemeral', delivered, id };
    }
    const full = this.#quota?.exceeded();
    if (full) {
      this.#metrics?.rejected('store-full');
      return { outcome: 'store-full', why: full };
    }
    const saved = await this.#store.saveMessage(m, receipt);
    if (!saved.ok) {
      this.#metrics?.rejected(saved.reason);
      return { outcome: saved.reason };
    }
    this.#metrics?.accepted(true);
    if (saved.replacedId !== null) this.#router.removed(m.uaid, m.chid, saved.replacedId);
    this.#router.deliver(saved.message);
    return { outcome: 'stored', message: saved.message };
  }

  /** Acknowledged by the user agent, or cancelled by the sender. */
  async remove(uaid: Buffer, chid: Buffer, id: number): Promise<boolean> {
    const removed = await this.#store.deleteMessage(uaid, chid, id);
    if (removed) {
      this.#metrics?.acknowledged();
      this.#router.removed(uaid, chid, id);
    }
    return removed;
  }

  /** Deletes a subscription and its messages; false when it did not exist. */
  async unsubscribe(uaid: Buffer, chid: Buffer): Promise<boolean> {
    const existed = await this.#store.deleteSubscription(uaid, chid);
    this.#router.unsubscribed(uaid, chid);
    return existed;
  }

  /** Deletes a user agent (an RFC 8030 subscription set) with all its subscriptions. */
  async deleteUserAgent(uaid: Buffer): Promise<boolean> {
    const existed = await this.#store.deleteUserAgent(uaid);
    this.#router.unsubscribed(uaid, null);
    return existed;
  }

  /**
   * Deletes up to `limit` user agents last seen before `seenBefore` (ms) and not connected now,
   * with their subscriptions and messages (their push URLs then answer 410). Returns how many.
   */
  async expireIdleUserAgents(seenBefore: number, limit: number): Promise<number> {
    // one connected for longer than the expiry is not idle (it is seen again when it disconnects)
    const idle = (await this.#store.idleUserAgents(seenBefore, limit)).filter((uaid) => !this.#router.has(uaid));
    // all in one group commit
    const deleted = await Promise.all(idle.map((uaid) => this.#store.deleteUserAgent(uaid, seenBefore)));
    const n = deleted.filter(Boolean).length;
    this.#metrics?.userAgentsExpired(n);
    return n;
  }

  /** Removes what expired and tells the live connections and receipt monitors. */
  async sweep(): Promise<SweepResult> {
    const result = await this.#store.sweep();
    this.#metrics?.expired(result.expired.length);
    for (const m of result.expired) this.#router.removed(m.uaid, m.chid, m.id);
    if (result.receiptSubscriptions.length > 0) this.#router.receiptsExpired(result.receiptSubscriptions);
    return result;
  }
}
