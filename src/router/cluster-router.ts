// The router of one node among several on one Redis (--store redis://): the connections held
// here, and hints to the node that holds a user agent's connection elsewhere (sharded pub/sub,
// one channel per node). Hints only: a message is stored before its hint is sent, and the node
// holding the connection reads it from the store. Each connection records its node and an epoch
// in Redis (counted up by every attach), so a second node taking a user agent over tells the
// first to close its connection, without clocks; the store's `claim` also says which message
// ids the connection's own catch-up read covers. A hint can be lost (pub/sub is at most once):
// every `recheckIntervalMs` the node compares each connection's last id in Redis with the last it
// handed over, so a lost hint delays a message by that long at most.
import { randomBytes } from 'node:crypto';
import type { RedisStore } from '../store/redis-store.ts';
import { hintChannel } from '../store/redis/keys.ts';
import { decodeMessage, decodeMessageHint, encodeMessageHint } from '../store/redis/record.ts';
import type { EncodingHeaders, Urgency } from '../store/types.ts';
import { LocalRouter, type Connection, type Delivery, type ReceiptWatcher, type Router } from './router.ts';

const RECEIPTS = '{g}:receipts';
const keyOf = (id: Buffer): string => id.toString('hex');
/** Forwarded TTL 0 messages are numbered here, apart from the pipeline's own (small) numbers. */
const FORWARDED_BASE = 2 ** 31;
/** Connections whose last id one recheck asks for at once (pipelined by the client), then the next ones. */
const RECHECK_BATCH = 1000;
/** A node's alive key lasts this many recheck intervals (it is renewed on each). */
const ALIVE_PERIODS = 3;

interface Held {
  conn: Connection;
  /** 0 until the claim came back. */
  epoch: number;
  /** The highest message id handed to the connection by this router (null: claim pending). */
  last: number | null;
  /** The newest epoch another node claimed (takeover), if any. */
  takenOver: number;
  reading: boolean;
  again: boolean;
  /** A last id seen in Redis before the next read starts: that read covers every message up to it. */
  seen: number;
}

interface EphemeralHint {
  uaid: string;
  chid: string;
  ttl: number;
  urgency: Urgency;
  headers: EncodingHeaders | null;
  body: string;
  createdAt: number;
}

type Hint =
  /** A message for `u` was stored: read the store. (One that carries the message is binary: record.ts, encodeMessageHint.) */
  | { t: 'message'; u: string }
  /** A TTL 0 message: it exists only here. */
  | { t: 'ephemeral'; m: EphemeralHint }
  /** Another node holds `u`'s connection from epoch `e`. */
  | { t: 'takeover'; u: string; e: number }
  | { t: 'removed'; u: string; c: string; i: number }
  | { t: 'unsubscribed'; u: string; c: string | null }
  | { t: 'receipts' | 'receipts-expired'; n: string; r: string[] }
  /** Cluster-wide state changed in Redis: every node re-reads it. */
  | { t: 'changed'; w: Changed };

/** Cluster-wide state a node holds a copy of (src/server.ts re-reads it on a hint, and periodically). */
export type Changed = 'secrets' | 'broadcasts';

/** Tells every node that `what` changed in Redis (at most once: nodes also re-read it periodically). */
export const announceChange = (store: RedisStore, what: Changed): Promise<void> => store.publish(RECEIPTS, JSON.stringify({ t: 'changed', w: what } satisfies Hint));

export interface ClusterRouterOptions {
  /** Stored messages read per hint at most, as a connection's batch. */
  batchSize: number;
  /** How often the connections held here are checked for messages whose hint was lost. */
  recheckIntervalMs: number;
  /** A hint could not be sent or handled (it is a hint: the store still holds the truth). */
  onError: (err: unknown) => void;
  /** Another node (or `webpushd secret`) changed cluster-wide state (announceChange). */
  onChanged?: (what: Changed) => void;
}

export class ClusterRouter implements Router {
  /** This node's name in Redis: new on every start. */
  readonly node = randomBytes(8).toString('hex');
  readonly #store: RedisStore;
  readonly #o: ClusterRouterOptions;
  readonly #held = new Map<string, Held>();
  /** The receipt monitors of this node (receipts are told to every node). */
  readonly #watchers = new LocalRouter();
  #forwarded = 0;
  #stop: (() => Promise<void>) | null = null;
  readonly #recheck: NodeJS.Timeout;
  #rechecking = false;

  static async start(store: RedisStore, options: ClusterRouterOptions): Promise<ClusterRouter> {
    const router = new ClusterRouter(store, options);
    await router.#alive();
    router.#stop = await store.subscribe([hintChannel(router.node), RECEIPTS], (hint) => router.#onHint(hint), () => router.#resync());
    store.publishHintsAs(router.node);
    return router;
  }

  private constructor(store: RedisStore, options: ClusterRouterOptions) {
    this.#store = store;
    this.#o = options;
    this.#recheck = setInterval(() => void this.#recheckHeld(), options.recheckIntervalMs).unref();
  }

  attach(uaid: Buffer, conn: Connection): void {
    const key = keyOf(uaid);
    const old = this.#held.get(key);
    const held: Held = { conn, epoch: 0, last: null, takenOver: 0, reading: false, again: false, seen: 0 };
    this.#held.set(key, held);
    if (old && old.conn !== conn) old.conn.replacedByNewer();
    // sent now, before the connection's first read of the store: that read covers every id up to lastId
    this.#store
      .claimUserAgent(uaid, this.node)
      .then(({ previous, epoch, lastId }) => {
        if (this.#held.get(key) !== held) return this.#store.releaseUserAgent(uaid, this.node, epoch);
        held.epoch = epoch;
        held.last = lastId;
        if (previous !== null && previous !== this.node) this.#send(previous, { t: 'takeover', u: key, e: epoch });
        if (held.takenOver > epoch) return held.conn.replacedByNewer();
        if (held.again) this.#read(uaid, held);
      })
      .catch((err: unknown) => {
        this.#o.onError(err);
        // unrecorded, no other node can reach it: the user agent comes back later and is recorded then
        if (this.#held.get(key) === held) held.conn.replacedByNewer();
      });
  }

  detach(uaid: Buffer, conn: Connection): void {
    const key = keyOf(uaid);
    const held = this.#held.get(key);
    if (held?.conn !== conn) return;
    this.#held.delete(key);
    // a claim still under way releases once it is back
    if (held.epoch > 0) this.#store.releaseUserAgent(uaid, this.node, held.epoch).catch(this.#o.onError);
  }

  has(uaid: Buffer): boolean {
    return this.#held.has(keyOf(uaid));
  }

  get connected(): number {
    return this.#held.size;
  }

  deliver(m: Delivery): boolean {
    const held = this.#held.get(keyOf(m.uaid));
    if (!held) {
      this.#forward(m);
      return false;
    }
    if (m.id <= 0) return held.conn.deliver(m);
    // ids of a user agent are consecutive: one that is not the next means another node stored
    // one this node has not seen yet, so the store is read, in order
    if (held.last === null || held.reading || m.id !== held.last + 1) {
      this.#read(m.uaid, held);
      return true;
    }
    held.last = m.id;
    return held.conn.deliver(m);
  }

  removed(uaid: Buffer, chid: Buffer, id: number): void {
    const held = this.#held.get(keyOf(uaid));
    if (held) held.conn.removed?.(chid, id);
    else this.#toHolder(uaid, { t: 'removed', u: keyOf(uaid), c: keyOf(chid), i: id });
  }

  unsubscribed(uaid: Buffer, chid: Buffer | null): void {
    const held = this.#held.get(keyOf(uaid));
    if (held) held.conn.unsubscribed?.(chid);
    else this.#toHolder(uaid, { t: 'unsubscribed', u: keyOf(uaid), c: chid && keyOf(chid) });
  }

  watchReceipts(id: Buffer, watcher: ReceiptWatcher): void {
    this.#watchers.watchReceipts(id, watcher);
  }

  unwatchReceipts(id: Buffer, watcher: ReceiptWatcher): void {
    this.#watchers.unwatchReceipts(id, watcher);
  }

  receiptsQueued(ids: readonly Buffer[]): void {
    this.#watchers.receiptsQueued(ids);
    this.#publish(RECEIPTS, { t: 'receipts', n: this.node, r: ids.map(keyOf) });
  }

  receiptsExpired(ids: readonly Buffer[]): void {
    this.#watchers.receiptsExpired(ids);
    this.#publish(RECEIPTS, { t: 'receipts-expired', n: this.node, r: ids.map(keyOf) });
  }

  async close(): Promise<void> {
    clearInterval(this.#recheck);
    await this.#stop?.();
  }

  /** Reads the store past what this router handed the connection; one read at a time per user agent. */
  #read(uaid: Buffer, held: Held): void {
    if (held.last === null || held.reading) {
      held.again = true;
      return;
    }
    held.reading = true;
    const key = keyOf(uaid);
    const run = async () => {
      do {
        held.again = false;
        const seen = held.seen;
        for (;;) {
          const messages = await this.#store.pendingMessages(uaid, held.last!, this.#o.batchSize);
          if (this.#held.get(key) !== held) return;
          for (const m of messages) {
            held.last = m.id;
            held.conn.deliver(m);
          }
          if (messages.length < this.#o.batchSize) break;
        }
        // ids up to `seen` with nothing left to read (acknowledged, deleted, expired) are passed
        if (seen > held.last!) held.last = seen;
      } while (held.again);
    };
    run()
      .catch(this.#o.onError)
      .finally(() => (held.reading = false));
  }

  /** A message for a user agent not connected here: a hint to the node that holds it, if any. */
  #forward(m: Delivery): void {
    const saved = m.id > 0 ? this.#store.savedWith(m) : undefined;
    if (saved) {
      // the holder as the save saw it, and the message itself: no round trip before the hint, nor after it
      if (!saved.hinted && saved.holder !== null && saved.holder !== this.node) {
        this.#store.publish(hintChannel(saved.holder), encodeMessageHint(m.uaid, m.id, saved.record)).catch(this.#o.onError);
      }
      return;
    }
    const hint: Hint =
      m.id > 0
        ? { t: 'message', u: keyOf(m.uaid) }
        : {
            t: 'ephemeral',
            m: { uaid: keyOf(m.uaid), chid: keyOf(m.chid), ttl: m.ttl, urgency: m.urgency, headers: m.headers, body: m.body.toString('base64'), createdAt: m.createdAt },
          };
    this.#toHolder(m.uaid, hint);
  }

  #toHolder(uaid: Buffer, hint: Hint): void {
    this.#store
      .holderOf(uaid)
      .then((node) => {
        if (node !== null && node !== this.node) this.#send(node, hint);
      })
      .catch(this.#o.onError);
  }

  #send(node: string, hint: Hint): void {
    this.#publish(hintChannel(node), hint);
  }

  #publish(channel: string, hint: Hint): void {
    this.#store.publish(channel, JSON.stringify(hint)).catch(this.#o.onError);
  }

  #onHint(raw: Buffer): void {
    const message = decodeMessageHint(raw);
    if (message) return this.#onMessage(message.uaid, message.id, message.rec);
    let hint: Hint;
    try {
      hint = JSON.parse(raw.toString('utf8')) as Hint;
    } catch (err) {
      return this.#o.onError(err);
    }
    switch (hint.t) {
      case 'message': {
        const held = this.#held.get(hint.u);
        if (held) this.#read(Buffer.from(hint.u, 'hex'), held);
        return;
      }
      case 'ephemeral': {
        const { uaid, chid, body, ...rest } = hint.m;
        const held = this.#held.get(uaid);
        const id = -(FORWARDED_BASE + ++this.#forwarded);
        held?.conn.deliver({ ...rest, uaid: Buffer.from(uaid, 'hex'), chid: Buffer.from(chid, 'hex'), body: Buffer.from(body, 'base64'), topic: null, id, expiresAt: rest.createdAt });
        return;
      }
      case 'takeover': {
        const held = this.#held.get(hint.u);
        if (!held) return;
        held.takenOver = Math.max(held.takenOver, hint.e);
        // a claim still under way compares once it is back
        if (held.epoch > 0 && held.epoch < hint.e) held.conn.replacedByNewer();
        return;
      }
      case 'removed':
        return this.#held.get(hint.u)?.conn.removed?.(Buffer.from(hint.c, 'hex'), hint.i);
      case 'unsubscribed':
        return this.#held.get(hint.u)?.conn.unsubscribed?.(hint.c === null ? null : Buffer.from(hint.c, 'hex'));
      case 'receipts':
      case 'receipts-expired': {
        if (hint.n === this.node) return;
        const ids = hint.r.map((r) => Buffer.from(r, 'hex'));
        return hint.t === 'receipts' ? this.#watchers.receiptsQueued(ids) : this.#watchers.receiptsExpired(ids);
      }
      case 'changed':
        return this.#o.onChanged?.(hint.w);
    }
  }

  /** A message stored for a user agent held here, with its record: the next one, nothing being read, is delivered as a read would give it. */
  #onMessage(uaid: Buffer, id: number, rec: Buffer): void {
    const held = this.#held.get(keyOf(uaid));
    if (!held) return;
    if (held.last !== null && !held.reading && id === held.last + 1) {
      held.last = id;
      held.conn.deliver(decodeMessage(uaid, id, rec));
    } else this.#read(uaid, held);
  }

  /**
   * Reads the last message id of every user agent held here (one pipelined command each), and
   * the store for those past what was handed over: their hints were lost. A connection another
   * node took over meanwhile (its takeover hint lost too) is closed instead, once a message
   * would have reached it.
   */
  async #recheckHeld(): Promise<void> {
    if (this.#rechecking) return;
    this.#rechecking = true;
    try {
      await this.#alive();
      const all = [...this.#held];
      for (let i = 0; i < all.length; i += RECHECK_BATCH) {
        const batch = all.slice(i, i + RECHECK_BATCH).filter(([, held]) => held.last !== null && !held.reading);
        const uaids = batch.map(([key]) => Buffer.from(key, 'hex'));
        const lastIds = await Promise.all(uaids.map((uaid) => this.#store.lastMessageId(uaid)));
        const behind = batch
          .map(([key, held], j) => ({ key, held, uaid: uaids[j]!, lastId: lastIds[j]! }))
          .filter(({ key, held, lastId }) => this.#held.get(key) === held && lastId > held.last!);
        // before handing over what it missed: a takeover whose hint was lost shows as a newer epoch
        const epochs = await Promise.all(behind.map(({ uaid }) => this.#store.connectionEpoch(uaid)));
        behind.forEach(({ key, held, uaid, lastId }, j) => {
          if (this.#held.get(key) !== held) return;
          if (epochs[j]! > held.epoch) return held.conn.replacedByNewer();
          held.seen = Math.max(held.seen, lastId);
          this.#read(uaid, held);
        });
      }
    } catch (err) {
      this.#o.onError(err);
    } finally {
      this.#rechecking = false;
    }
  }

  /** Tells the other nodes this one runs: its records of held connections are live (user-agent expiry spares them). */
  async #alive(): Promise<void> {
    await this.#store.nodeAlive(this.node, ALIVE_PERIODS * this.#o.recheckIntervalMs);
  }

  /** The hint connection came back: hints sent meanwhile are lost, so every connection here reads the store. */
  #resync(): void {
    for (const [key, held] of this.#held) this.#read(Buffer.from(key, 'hex'), held);
  }
}
