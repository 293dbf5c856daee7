// accept -> store -> route: the one path every message takes, whichever door it came in by.
import type { Router } from '../router/router.ts';
import type { NewMessage, Store, StoredMessage } from '../store/types.ts';

export type AcceptResult =
  | { outcome: 'stored'; message: StoredMessage }
  /** TTL 0: handed to a connected user agent, or dropped; never stored. */
  | { outcome: 'ephemeral'; delivered: boolean }
  | { outcome: 'no-subscription' }
  | { outcome: 'too-many-stored' };

export class Pipeline {
  readonly #store: Store;
  readonly #router: Router;
  #ephemeralIds = 0;

  constructor(store: Store, router: Router) {
    this.#store = store;
    this.#router = router;
  }

  async accept(m: NewMessage): Promise<AcceptResult> {
    if (m.ttl === 0) {
      if (!(await this.#store.getSubscription(m.uaid, m.chid))) return { outcome: 'no-subscription' };
      const delivered = this.#router.deliver({ ...m, id: -++this.#ephemeralIds, expiresAt: m.createdAt });
      return { outcome: 'ephemeral', delivered };
    }
    const saved = await this.#store.saveMessage(m);
    if (!saved.ok) return { outcome: saved.reason };
    this.#router.deliver(saved.message);
    return { outcome: 'stored', message: saved.message };
  }

  /** Acknowledged by the user agent, or cancelled by the sender. */
  remove(uaid: Buffer, chid: Buffer, id: number): Promise<boolean> {
    return this.#store.deleteMessage(uaid, chid, id);
  }
}
