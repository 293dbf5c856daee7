// "Who holds this user agent's connection?" On one node, a map. The router carries hints only:
// a message it cannot hand to a live connection is still in the store. It also carries the
// hints RFC 8030 monitors need: a stored message left the store, a subscription was deleted,
// receipts were queued for a receipt subscription.
import type { StoredMessage } from '../store/types.ts';

/** A message on its way to a user agent; ephemeral ones (TTL 0) have id <= 0 and no row. */
export type Delivery = StoredMessage;

export interface Connection {
  /** Takes a message for live delivery; false when it cannot (closing). */
  deliver(message: Delivery): boolean;
  /** Called when a newer connection of the same user agent takes over. */
  replacedByNewer(): void;
  /** A stored message left the store (acknowledged, cancelled, expired or replaced by Topic). */
  removed?(chid: Buffer, id: number): void;
  /** A subscription of this user agent was deleted; `null`: all of them (the set was deleted). */
  unsubscribed?(chid: Buffer | null): void;
}

/** A monitor of a receipt subscription (RFC 8030 6.3). */
export interface ReceiptWatcher {
  /** New receipts are in the store. */
  receiptsQueued(): void;
  /** The receipt subscription expired. */
  expired(): void;
}

export interface Router {
  /** Makes `conn` the connection of `uaid`, replacing (and telling) an older one. */
  attach(uaid: Buffer, conn: Connection): void;
  detach(uaid: Buffer, conn: Connection): void;
  deliver(message: Delivery): boolean;
  removed(uaid: Buffer, chid: Buffer, id: number): void;
  unsubscribed(uaid: Buffer, chid: Buffer | null): void;
  watchReceipts(id: Buffer, watcher: ReceiptWatcher): void;
  unwatchReceipts(id: Buffer, watcher: ReceiptWatcher): void;
  receiptsQueued(ids: readonly Buffer[]): void;
  receiptsExpired(ids: readonly Buffer[]): void;
  /** Whether a connection of `uaid` is attached. */
  has(uaid: Buffer): boolean;
  readonly connected: number;
}

const keyOf = (id: Buffer): string => id.toString('latin1');

export class LocalRouter implements Router {
  readonly #conns = new Map<string, Connection>();
  readonly #receipts = new Map<string, Set<ReceiptWatcher>>();
  readonly #onPresence: ((uaid: Buffer) => void) | undefined;

  /** `onPresence`: a user agent connected, or its last connection left (when it was last seen). */
  constructor(onPresence?: (uaid: Buffer) => void) {
    this.#onPresence = onPresence;
  }

  attach(uaid: Buffer, conn: Connection): void {
    const key = keyOf(uaid);
    const old = this.#conns.get(key);
    this.#conns.set(key, conn);
    if (old && old !== conn) old.replacedByNewer();
    this.#onPresence?.(uaid);
  }

  detach(uaid: Buffer, conn: Connection): void {
    const key = keyOf(uaid);
    if (this.#conns.get(key) !== conn) return;
    this.#conns.delete(key);
    this.#onPresence?.(uaid);
  }

  has(uaid: Buffer): boolean {
    return this.#conns.has(keyOf(uaid));
  }

  deliver(message: Delivery): boolean {
    return this.#conns.get(keyOf(message.uaid))?.deliver(message) ?? false;
  }

  removed(uaid: Buffer, chid: Buffer, id: number): void {
    this.#conns.get(keyOf(uaid))?.removed?.(chid, id);
  }

  unsubscribed(uaid: Buffer, chid: Buffer | null): void {
    this.#conns.get(keyOf(uaid))?.unsubscribed?.(chid);
  }

  watchReceipts(id: Buffer, watcher: ReceiptWatcher): void {
    const key = keyOf(id);
    const set = this.#receipts.get(key);
    if (set) set.add(watcher);
    else this.#receipts.set(key, new Set([watcher]));
  }

  unwatchReceipts(id: Buffer, watcher: ReceiptWatcher): void {
    const key = keyOf(id);
    const set = this.#receipts.get(key);
    if (set?.delete(watcher) && set.size === 0) this.#receipts.delete(key);
  }

  receiptsQueued(ids: readonly Buffer[]): void {
    for (const id of ids) for (const w of this.#receipts.get(keyOf(id)) ?? []) w.receiptsQueued();
  }

  receiptsExpired(ids: readonly Buffer[]): void {
    for (const id of ids) for (const w of [...(this.#receipts.get(keyOf(id)) ?? [])]) w.expired();
  }

  get connected(): number {
    return this.#conns.size;
  }
}
