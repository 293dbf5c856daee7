// "Who holds this user agent's connection?" On one node, a map. The router carries hints only:
// a message it cannot hand to a live connection is still in the store.
import type { StoredMessage } from '../store/types.ts';

/** A message on its way to a user agent; ephemeral ones (TTL 0) have id <= 0 and no row. */
export type Delivery = StoredMessage;

export interface Connection {
  /** Takes a message for live delivery; false when it cannot (closing). */
  deliver(message: Delivery): boolean;
  /** Called when a newer connection of the same user agent takes over. */
  replacedByNewer(): void;
}

export interface Router {
  /** Makes `conn` the connection of `uaid`, replacing (and telling) an older one. */
  attach(uaid: Buffer, conn: Connection): void;
  detach(uaid: Buffer, conn: Connection): void;
  deliver(message: Delivery): boolean;
  readonly connected: number;
}

export class LocalRouter implements Router {
  readonly #conns = new Map<string, Connection>();

  attach(uaid: Buffer, conn: Connection): void {
    const key = uaid.toString('latin1');
    const old = this.#conns.get(key);
    this.#conns.set(key, conn);
    if (old && old !== conn) old.replacedByNewer();
  }

  detach(uaid: Buffer, conn: Connection): void {
    const key = uaid.toString('latin1');
    if (this.#conns.get(key) === conn) this.#conns.delete(key);
  }

  deliver(message: Delivery): boolean {
    return this.#conns.get(message.uaid.toString('latin1'))?.deliver(message) ?? false;
  }

  get connected(): number {
    return this.#conns.size;
  }
}
