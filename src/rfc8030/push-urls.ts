// The push URLs of one user agent's subscriptions, for the Link of every pushed message (RFC 8030
// 6.1: it names the message's subscription). A URL is sealed when a message of its subscription
// is first pushed, and kept while the user agent's monitors are open: a GET of a set of 20,000
// costs what a GET of one subscription does, and the work grows with the messages pushed.
import type { Store, Subscription } from '../store/types.ts';
import type { PushTarget } from '../tokens/capabilities.ts';

const keyOf = (chid: Buffer): string => chid.toString('latin1');

export class PushUrls {
  readonly #uaid: Buffer;
  readonly #store: Pick<Store, 'getSubscription'>;
  readonly #pushUrl: (target: PushTarget) => string;
  readonly #urls = new Map<string, string>();

  constructor(uaid: Buffer, store: Pick<Store, 'getSubscription'>, pushUrl: (target: PushTarget) => string) {
    this.#uaid = uaid;
    this.#store = store;
    this.#pushUrl = pushUrl;
  }

  /** The push URL of a subscription; undefined until looked up (or when it is gone). */
  get(chid: Buffer): string | undefined {
    return this.#urls.get(keyOf(chid));
  }

  /** A subscription already read (a subscription's own GET). */
  add(sub: Subscription): void {
    this.#urls.set(keyOf(sub.chid), this.#pushUrl(sub));
  }

  /** Looks up the subscriptions of these messages not known yet: work per message, not per member. */
  async resolve(messages: readonly { chid: Buffer }[]): Promise<void> {
    const missing = new Map<string, Buffer>();
    for (const { chid } of messages) if (!this.#urls.has(keyOf(chid))) missing.set(keyOf(chid), chid);
    if (missing.size === 0) return;
    const subs = await Promise.all([...missing.values()].map((chid) => this.#store.getSubscription(this.#uaid, chid)));
    for (const sub of subs) if (sub) this.add(sub);
  }

  /** A subscription was deleted (null: all of them). */
  delete(chid: Buffer | null): void {
    if (chid === null) this.#urls.clear();
    else this.#urls.delete(keyOf(chid));
  }
}
