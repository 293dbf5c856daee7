// The cluster store: Redis 7.0+, shared by any number of webpushd nodes. Every change to a user
// agent is one function call (src/store/redis/functions.lua) on keys of one hash slot, so it is
// atomic, and answered only once Redis executed it (with `appendfsync always`, after its AOF
// fsync). Receipts live with their receipt subscription, in another slot: the user agent's
// function leaves them in its outbox, and the store moves them on at once (the sweep moves
// what a crash left behind; a receipt is queued once however often it is moved).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ErrorReply } from 'redis';
import { StoreUnavailable } from './errors.ts';
import { openConnection, type RedisConnection, type Reply } from './redis/connection.ts';
import { redisError } from './redis/errors.ts';
import {
  aliveKey,
  GLOBAL,
  holderKey,
  outboxKeys,
  receiptKeys,
  receiptSlot,
  slotIndexKeys,
  slotOfSeq,
  slotStoredKey,
  slotTag,
  subscriptionsKey,
  userAgentKey,
  userAgentKeys,
  userAgentSlot,
} from './redis/keys.ts';
import { decodeMessage, encodeMessage } from './redis/record.ts';
import { isClusterUrl, where } from './redis/url.ts';
import { DEFAULT_RECEIPT_TTL_MS } from './sqlite-store.ts';
import {
  URGENCIES,
  type MessageFilter,
  type MessageRef,
  type NewMessage,
  type QueuedReceipt,
  type ReceiptStatus,
  type ReceiptTarget,
  type SaveResult,
  type Store,
  type StoredMessage,
  type Subscription,
  type SweepResult,
} from './types.ts';

export interface RedisStoreOptions {
  /** redis://[[user]:password@]host[:port][/db], rediss://…, or a Redis Cluster's seed nodes: redis-cluster://[[user]:password@]host:port[,host:port…] (rediss-cluster://…) */
  url: string;
  /** Most messages stored for one user agent; further sends are refused until some are acked. */
  maxStoredPerUserAgent: number;
  /** Most messages stored for one subscription (default: maxStoredPerUserAgent). */
  maxStoredPerSubscription?: number;
  /** Most subscriptions of one user agent; a new one beyond is refused (default: no limit). */
  maxChannelsPerUserAgent?: number;
  /** How long a queued receipt waits for its application server (default 24 h). */
  receiptTtlMs?: number;
  /** One Redis: connections to it, commands spread by slot (default 4; a Redis Cluster: one per primary). */
  connections?: number;
  /** How long a command waits for its reply before it fails as unavailable (default 5000 ms). */
  commandTimeoutMs?: number;
  now?: () => number;
  /** Writes started failing (the error), or succeed again after failing (null). */
  onWritable?: (failure: Error | null) => void;
  /** After receipts were queued: the receipt subscriptions that got them. */
  onReceipts?: (subscriptions: Buffer[]) => void;
}

/** Connections to one Redis unless told (see RedisStoreOptions.connections). */
const DEFAULT_CONNECTIONS = 4;
const LIBRARY = readFileSync(new URL('./redis/functions.lua', import.meta.url), 'utf8');
/** The functions' names carry the library's version (functions.lua). */
const PREFIX = 'wp1_';
/**
 * A new user agent's message ids start at its creation time (ms) × this, or after the last id of
 * the same uaid deleted within a day (functions.lua): ids keep increasing when a uaid is deleted
 * and made again, as SQLite's never reuse theirs, so an old message URL never names a new
 * message (below 2^53 until the year 2248).
 */
const ID_SEED = 1024;
/** User agents with expired messages one sweep visits per slot; messages per user agent. */
const SWEEP_USER_AGENTS = 1000;
const SWEEP_MESSAGES = 5000;

export class RedisStore implements Store {
  readonly #redis: RedisConnection;
  readonly #where: string;
  readonly #now: () => number;
  readonly #maxStored: number;
  readonly #maxStoredPerSub: number;
  readonly #maxChannels: number;
  readonly #receiptTtl: number;
  readonly #onWritable: (failure: Error | null) => void;
  readonly #onReceipts: (subscriptions: Buffer[]) => void;
  #running = false;
  /** Why the last write failed, until one succeeds again. */
  #writeFailure: Error | null = null;
  /** Slots known to be in GLOBAL.slots (the sweeps read the indexes of those). */
  readonly #registered = new Set<number>();
  /** Receipt moves under way: close waits for them. */
  readonly #moves = new Set<Promise<void>>();
  /** What saving a message learnt, for the router handing it on (savedWith). */
  readonly #saved = new WeakMap<StoredMessage, Saved>();
  /** The node whose saves hint the holder in save_message itself ('': none; see publishHintsAs). */
  #hintsAs = '';
  readonly #cluster: boolean;
  /** A count of stored messages under way: scrapes at once share it. */
  #storedCount: Promise<number | null> | null = null;

  /** Connects, loads the functions, and resolves once it can serve; rejects (StoreUnavailable) when Redis cannot be reached. */
  static async open(opts: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(opts);
    await store.#start();
    return store;
  }

  private constructor(opts: RedisStoreOptions) {
    this.#where = where(opts.url);
    this.#cluster = isClusterUrl(opts.url);
    this.#now = opts.now ?? Date.now;
    this.#maxStored = opts.maxStoredPerUserAgent;
    this.#maxStoredPerSub = opts.maxStoredPerSubscription ?? opts.maxStoredPerUserAgent;
    this.#maxChannels = opts.maxChannelsPerUserAgent ?? Number.MAX_SAFE_INTEGER;
    this.#receiptTtl = opts.receiptTtlMs ?? DEFAULT_RECEIPT_TTL_MS;
    this.#onWritable = opts.onWritable ?? (() => {});
    this.#onReceipts = opts.onReceipts ?? (() => {});
    this.#redis = openConnection({
      url: opts.url,
      connections: opts.connections ?? DEFAULT_CONNECTIONS,
      timeoutMs: opts.commandTimeoutMs ?? 5000,
      reconnect: () => this.#running,
      // the client reports each failed reconnection: the store says once that it is failing
      onError: (err) => {
        if (this.#running) this.#failing(redisError(err));
      },
      // a Redis that came back may be a new one (a failover, a flushed one): it gets the library
      onReady: (node) => {
        if (this.#running) node(['FUNCTION', 'LOAD', 'REPLACE', LIBRARY]).catch((err: unknown) => this.#failing(redisError(err)));
      },
    });
  }

  async #start(): Promise<void> {
    try {
      await this.#redis.connect();
      await this.#loadLibrary();
    } catch (err) {
      this.#redis.destroy();
      throw new StoreUnavailable(`cannot use Redis at ${this.#where}: ${(err as Error).message}`, { cause: err });
    }
    this.#running = true;
  }

  /** On every primary: each runs the functions of the slots it holds. */
  async #loadLibrary(): Promise<void> {
    await this.#redis.everyPrimary(['FUNCTION', 'LOAD', 'REPLACE', LIBRARY]);
  }

  #failing(err: unknown): void {
    const first = this.#writeFailure === null;
    this.#writeFailure = err instanceof Error ? err : new Error(String(err));
    if (first) this.#onWritable(this.#writeFailure);
  }

  async #fcall(name: string, keys: readonly string[], args: readonly (string | Buffer)[], readOnly = false): Promise<Reply> {
    const command = [readOnly ? 'FCALL_RO' : 'FCALL', PREFIX + name, String(keys.length), ...keys, ...args];
    try {
      return await this.#redis.send(keys[0]!, readOnly, command);
    } catch (err) {
      // a Redis without the library (flushed, or a primary that never had it): load it, once
      if (!(err instanceof ErrorReply && err.message.startsWith('ERR Function not found'))) throw err;
      await this.#loadLibrary();
      return await this.#redis.send(keys[0]!, readOnly, command);
    }
  }

  /** One command; `args[1]` is its key (or sharded channel), which names the node it goes to. */
  #command(args: readonly (string | Buffer)[]): Promise<Reply> {
    return this.#redis.send(args[1]!, false, args);
  }

  /** A write, with failures reported the way the Store seam does (StoreUnavailable) and tracked for readiness. */
  async #write<T>(write: () => Promise<T>): Promise<T> {
    let value: T;
    try {
      value = await write();
    } catch (raw) {
      const err = redisError(raw);
      if (err instanceof StoreUnavailable) this.#failing(err);
      throw err;
    }
    if (this.#writeFailure) {
      this.#writeFailure = null;
      this.#onWritable(null);
    }
    return value;
  }

  async #read<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      throw redisError(err);
    }
  }

  /** Adds `slot` to the slots the sweeps visit before its first index entry can be written. */
  async #register(slot: number): Promise<void> {
    if (this.#registered.has(slot)) return;
    await this.#command(['SADD', GLOBAL.slots, String(slot)]);
    this.#registered.add(slot);
  }

  async #slots(): Promise<number[]> {
    return ((await this.#command(['SMEMBERS', GLOBAL.slots])) as Buffer[]).map(Number);
  }

  /**
   * Moves receipts a user agent's function left in its outbox (`out`: message id, entry, …) to
   * their receipt subscriptions, then tells the owner. Never rejects: what fails stays in the
   * outbox, for the sweep.
   */
  async #moveReceipts(uaid: Buffer, out: Buffer[]): Promise<void> {
    if (out.length === 0) return;
    const move = this.#move(uaid, out).catch((err: unknown) => this.#failing(redisError(err)));
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
    const expiresAt = String(this.#now() + this.#receiptTtl);
    const queued = await Promise.all(
      [...bySlot].map(([slot, args]) => this.#fcall('queue_receipts', receiptKeys(slot), [String(slot), expiresAt, uaid, ...args])),
    );
    await this.#fcall('outbox_moved', outboxKeys(uaid), [uaid, ...ids]);
    if (queued.some((n) => (n as number) > 0)) this.#onReceipts([...subs.values()]);
  }

  hasUserAgent(uaid: Buffer): Promise<boolean> {
    return this.#read(async () => (await this.#command(['EXISTS', userAgentKey(uaid)])) === 1);
  }

  putSubscription(sub: Subscription): Promise<boolean> {
    const now = this.#now();
    return this.#write(async () => {
      await this.#register(userAgentSlot(sub.uaid));
      const args = [sub.uaid, sub.chid, sub.keyHash ?? '', String(now), String(this.#maxChannels), String(now * ID_SEED)];
      return (await this.#fcall('put_subscription', userAgentKeys(sub.uaid), args)) === 1;
    });
  }

  async deleteSubscription(uaid: Buffer, chid: Buffer): Promise<boolean> {
    const [existed, out] = (await this.#write(() => this.#fcall('delete_subscription', userAgentKeys(uaid), [uaid, chid]))) as [number, Buffer[]];
    await this.#moveReceipts(uaid, out);
    return existed === 1;
  }

  /**
   * With `seenBefore` (expiry), a user agent whose connection a running node holds stays: seen
   * when it connected, it may have been connected to another node ever since.
   */
  async deleteUserAgent(uaid: Buffer, seenBefore?: number): Promise<boolean> {
    let holder = '';
    if (seenBefore !== undefined) {
      holder = (await this.holderOf(uaid)) ?? '';
      // a node that died without releasing its connections lets its alive key expire
      if (holder !== '' && (await this.#read(() => this.#command(['EXISTS', aliveKey(holder)]))) === 1) return false;
    }
    const args = [uaid, seenBefore === undefined ? '' : String(seenBefore), holder];
    const [deleted, out] = (await this.#write(() => this.#fcall('delete_user_agent', userAgentKeys(uaid), args))) as [number, Buffer[]];
    await this.#moveReceipts(uaid, out);
    return deleted === 1;
  }

  async touchUserAgent(uaid: Buffer): Promise<void> {
    const now = this.#now();
    await this.#write(() => this.#fcall('touch_user_agent', userAgentKeys(uaid), [uaid, String(now)]));
  }

  idleUserAgents(seenBefore: number, limit: number): Promise<Buffer[]> {
    return this.#read(async () => {
      const slots = await this.#slots();
      const pages = await Promise.all(
        slots.map(
          (slot) =>
            this.#command(['ZRANGE', slotIndexKeys(slotTag(slot))[0]!, '-inf', `(${seenBefore}`, 'BYSCORE', 'LIMIT', '0', String(limit), 'WITHSCORES']) as Promise<
              [Buffer, number][]
            >,
        ),
      );
      return pages
        .flat()
        .sort((a, b) => a[1] - b[1])
        .slice(0, limit)
        .map(([uaid]) => uaid);
    });
  }

  getSubscription(uaid: Buffer, chid: Buffer): Promise<Subscription | null> {
    return this.#read(async () => {
      const value = (await this.#command(['HGET', subscriptionsKey(uaid), chid])) as Buffer | null;
      return value ? { uaid, chid, keyHash: keyHashOf(value) } : null;
    });
  }

  listSubscriptions(uaid: Buffer): Promise<Subscription[]> {
    return this.#read(async () => {
      const flat = (await this.#command(['HGETALL', subscriptionsKey(uaid)])) as Buffer[];
      const subs: { created: number; sub: Subscription }[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const value = flat[i + 1]!;
        subs.push({ created: createdOf(value), sub: { uaid, chid: flat[i]!, keyHash: keyHashOf(value) } });
      }
      // as SQLite lists them: oldest first, then by chid
      subs.sort((a, b) => a.created - b.created || Buffer.compare(a.sub.chid, b.sub.chid));
      return subs.map((s) => s.sub);
    });
  }

  async saveMessage(m: NewMessage, receipt?: ReceiptTarget): Promise<SaveResult> {
    const expiresAt = m.createdAt + m.ttl * 1000;
    // a receipt subscription lives until the receipts of its messages could have expired
    const receiptsUntil = String(expiresAt + this.#receiptTtl);
    const keys = userAgentKeys(m.uaid);
    const record = encodeMessage(m, expiresAt, receipt?.id);
    const args = [m.uaid, m.chid, m.topic ?? '', record, String(expiresAt), String(this.#maxStoredPerSub), String(this.#maxStored), this.#hintsAs];
    const saved = await this.#write(async (): Promise<Reply | 'no-subscription' | 'no-receipt-subscription'> => {
      if (receipt) {
        // the receipt subscription is in another slot: both asked at once (one round trip); one
        // made or extended for a subscription that turns out not to exist expires unused
        const slot = receiptSlot(receipt.id);
        const receiptSubscription = receipt.create
          ? this.#register(slot).then(() => this.#fcall('create_receipt_subscription', receiptKeys(slot), [receipt.id, receiptsUntil]))
          : this.#fcall('use_receipt_subscription', receiptKeys(slot), [receipt.id, receiptsUntil, String(this.#now())]);
        const [exists, usable] = await Promise.all([this.#command(['HEXISTS', keys[1]!, m.chid]), receiptSubscription]);
        if (exists === 0) return 'no-subscription';
        if (usable === 0) return 'no-receipt-subscription';
      }
      return this.#fcall('save_message', keys, args);
    });
    if (typeof saved === 'string') return { ok: false, reason: saved };
    const [code, id, replaced, out, holder, hinted] = saved as [number, number, number, Buffer[], Buffer | undefined, number | undefined];
    if (code === 1) return { ok: false, reason: 'no-subscription' };
    if (code === 2) return { ok: false, reason: 'too-many-stored' };
    await this.#moveReceipts(m.uaid, out);
    const message: StoredMessage = { ...m, id, expiresAt };
    if (receipt) message.receipt = receipt.id;
    // (a library an older node loaded does not say: the router asks)
    if (holder) this.#saved.set(message, { holder: holder.length > 0 ? holder.toString('utf8') : null, record, hinted: hinted === 1 });
    return { ok: true, message, replacedId: replaced === 0 ? null : replaced };
  }

  pendingMessages(uaid: Buffer, afterId: number, limit: number, filter?: MessageFilter): Promise<StoredMessage[]> {
    const now = this.#now();
    const minUrgency = filter?.minUrgency ? URGENCIES.indexOf(filter.minUrgency) : 0;
    const args = [String(afterId), String(limit), String(now), filter?.chid ?? '', String(minUrgency)];
    return this.#read(async () => {
      const flat = (await this.#fcall('pending_messages', userAgentKeys(uaid), args, true)) as (number | Buffer)[];
      const messages: StoredMessage[] = [];
      for (let i = 0; i < flat.length; i += 2) messages.push(decodeMessage(uaid, flat[i] as number, flat[i + 1] as Buffer));
      return messages;
    });
  }

  async deleteMessage(uaid: Buffer, chid: Buffer, id: number): Promise<boolean> {
    const [deleted, out] = (await this.#write(() => this.#fcall('delete_message', userAgentKeys(uaid), [uaid, chid, String(id)]))) as [
      number,
      Buffer[],
    ];
    await this.#moveReceipts(uaid, out);
    return deleted === 1;
  }

  hasReceiptSubscription(id: Buffer): Promise<boolean> {
    return this.#read(async () => {
      const expires = (await this.#command(['ZSCORE', receiptKeys(receiptSlot(id))[0]!, id])) as number | null;
      return expires !== null && expires > this.#now();
    });
  }

  pendingReceipts(subscription: Buffer, afterSeq: number, limit: number): Promise<QueuedReceipt[]> {
    const args = [subscription, String(afterSeq), String(limit), String(this.#now())];
    return this.#read(async () => {
      const flat = (await this.#fcall('pending_receipts', receiptKeys(receiptSlot(subscription)), args, true)) as (number | Buffer)[];
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
    await this.#write(() => this.#fcall('delete_receipt', receiptKeys(slotOfSeq(seq)), [String(seq)]));
  }

  /**
   * Visits every slot that holds indexes: expired messages of the user agents due (their 410
   * receipts queued), receipts a crash left in outboxes, expired receipts and receipt subscriptions.
   */
  async sweep(): Promise<SweepResult> {
    const now = String(this.#now());
    const slots = await this.#read(() => this.#slots());
    const expired: MessageRef[] = [];
    const result: SweepResult = { expired, receipts: 0, receiptSubscriptions: [] };
    await this.#write(() =>
      Promise.all(
        slots.map(async (slot) => {
          const [, expiryIndex, outboxIndex] = slotIndexKeys(slotTag(slot));
          const due = (await this.#command(['ZRANGE', expiryIndex!, '-inf', now, 'BYSCORE', 'LIMIT', '0', String(SWEEP_USER_AGENTS)])) as Buffer[];
          for (const uaid of due) {
            const [flat, out] = (await this.#fcall('sweep_user_agent', userAgentKeys(uaid), [uaid, now, String(SWEEP_MESSAGES)])) as [
              (number | Buffer)[],
              Buffer[],
            ];
            const refs: MessageRef[] = [];
            for (let i = 0; i < flat.length; i += 2) refs.push({ uaid, chid: flat[i + 1] as Buffer, id: flat[i] as number });
            expired.push(...refs.sort((a, b) => a.id - b.id));
            await this.#moveReceipts(uaid, out);
          }
          for (const uaid of (await this.#command(['SMEMBERS', outboxIndex!])) as Buffer[]) {
            await this.#moveReceipts(uaid, (await this.#command(['HGETALL', outboxKeys(uaid)[0]!])) as Buffer[]);
          }
          const [receipts, subs] = (await this.#fcall('sweep_receipts', receiptKeys(slot), [now, String(SWEEP_MESSAGES)])) as [number, Buffer[]];
          result.receipts += receipts;
          result.receiptSubscriptions.push(...subs);
        }),
      ),
    );
    return result;
  }

  async sweepExpired(): Promise<number> {
    return (await this.sweep()).expired.length;
  }

  /**
   * Messages stored now (expired ones not yet swept included), or null when Redis cannot say:
   * the per-slot counts the functions keep with every write, summed (one GET per slot that
   * holds data, at most 16384, pipelined: a few ms of Redis time per scrape).
   */
  storedMessages(): Promise<number | null> {
    this.#storedCount ??= this.#read(async () => {
      const counts = await Promise.all((await this.#slots()).map((slot) => this.#command(['GET', slotStoredKey(slotTag(slot))])));
      return counts.reduce<number>((sum, n) => sum + Number((n as Buffer | null)?.toString() ?? 0), 0);
    })
      .catch(() => null)
      .finally(() => (this.#storedCount = null));
    return this.#storedCount;
  }

  broadcasts(): Promise<Map<string, string>> {
    return this.#read(async () => {
      const flat = (await this.#command(['HGETALL', GLOBAL.broadcasts])) as Buffer[];
      const versions = new Map<string, string>();
      for (let i = 0; i < flat.length; i += 2) versions.set(flat[i]!.toString('utf8'), flat[i + 1]!.toString('utf8'));
      return versions;
    });
  }

  async putBroadcasts(versions: Readonly<Record<string, string>>): Promise<void> {
    const pairs = Object.entries(versions).flat();
    if (pairs.length > 0) await this.#write(() => this.#command(['HSET', GLOBAL.broadcasts, ...pairs]));
  }

  /**
   * null while the store reads and writes; else why not. A cheap read while writes succeed;
   * while they fail, a write of the probe key, so recovery is seen without other traffic.
   */
  async unavailable(): Promise<string | null> {
    if (this.#writeFailure) {
      try {
        await this.#write(() => this.#command(['SET', GLOBAL.probe, String(this.#now())]));
      } catch (err) {
        return `store cannot write: ${(err as Error).message}`;
      }
    }
    try {
      await this.#read(() => this.#command(['EXISTS', GLOBAL.probe]));
      return null;
    } catch (err) {
      return `store unreachable: ${(err as Error).message}`;
    }
  }

  // Routing between nodes (src/router/cluster-router.ts): who holds a user agent's connection,
  // and hints over sharded pub/sub. Not part of the Store seam: only a shared store has them.

  /** The connection of `uaid` is on `node` now (it is seen now, as touchUserAgent records). */
  async claimUserAgent(uaid: Buffer, node: string): Promise<{ previous: string | null; epoch: number; lastId: number }> {
    const args = [node, uaid, String(this.#now())];
    const [previous, epoch, lastId] = (await this.#write(() => this.#fcall('claim_user_agent', userAgentKeys(uaid), args))) as [
      Buffer | null,
      number,
      number,
    ];
    return { previous: previous?.toString('utf8') ?? null, epoch, lastId };
  }

  /** That connection of `uaid` (its epoch) on `node` left (it is seen now). */
  async releaseUserAgent(uaid: Buffer, node: string, epoch: number): Promise<void> {
    await this.#write(() => this.#fcall('release_user_agent', userAgentKeys(uaid), [node, String(epoch), uaid, String(this.#now())]));
  }

  /** The last message id given to `uaid` (0: none, or no such user agent). */
  lastMessageId(uaid: Buffer): Promise<number> {
    return this.#read(async () => Number(((await this.#command(['HGET', userAgentKey(uaid), 'id'])) as Buffer | null)?.toString() ?? 0));
  }

  /** `node` is running, for `ttlMs` from now (renewed before that). */
  async nodeAlive(node: string, ttlMs: number): Promise<void> {
    await this.#write(() => this.#command(['SET', aliveKey(node), '1', 'PX', String(ttlMs)]));
  }

  /**
   * Takes the lease `name` (e.g. the sweep: one node at a time) for `ttlMs` at most: resolves
   * with the way to end it, or null while another node holds it.
   */
  async takeLease(name: 'sweep', ttlMs: number): Promise<(() => Promise<void>) | null> {
    const token = randomBytes(16).toString('hex');
    const key = GLOBAL[name];
    const taken = await this.#write(() => this.#command(['SET', key, token, 'NX', 'PX', String(ttlMs)]));
    if (taken === null) return null;
    // only this token's lease: after it expired another node may hold the key
    return async () => void (await this.#write(() => this.#fcall('release_lease', [key], [token])));
  }

  /** The epoch of the newest connection of `uaid` (0: none recorded). */
  connectionEpoch(uaid: Buffer): Promise<number> {
    return this.#read(async () => Number(((await this.#command(['HGET', holderKey(uaid), 'epoch'])) as Buffer | null)?.toString() ?? 0));
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

  /**
   * From now on a save of a message whose user agent another node holds publishes its hint
   * (record.ts: encodeMessageHint) in the same function, one round trip and one Redis turn fewer
   * on the way; `node` is this node, which needs none. One Redis only: on a Redis Cluster the
   * holder's channel is on another slot than the user agent's keys, and the router publishes.
   */
  publishHintsAs(node: string): void {
    if (!this.#cluster) this.#hintsAs = node;
  }

  /** The node holding the connection of `uaid`, or null. */
  holderOf(uaid: Buffer): Promise<string | null> {
    return this.#read(async () => ((await this.#command(['HGET', holderKey(uaid), 'node'])) as Buffer | null)?.toString('utf8') ?? null);
  }

  /** Sends a hint on a sharded pub/sub channel (at most once: nobody may be listening). */
  async publish(channel: string, hint: string | Buffer): Promise<void> {
    await this.#read(() => this.#command(['SPUBLISH', channel, hint]));
  }

  /**
   * Listens on sharded pub/sub channels over a connection of their own; `onResubscribed` after
   * that connection came back (hints sent meanwhile were lost). Resolves with the way to stop.
   */
  async subscribe(channels: string[], onHint: (hint: Buffer) => void, onResubscribed: () => void): Promise<() => Promise<void>> {
    return this.#redis.subscribe(channels, onHint, onResubscribed, (err) => this.#failing(redisError(err)));
  }

  // Cluster-wide state (src/tokens/secret-store.ts) and the copy of a SQLite data dir
  // (src/cli/migrate.ts). Not part of the Store seam.

  /** The token secrets, newest first (none yet: empty). */
  tokenSecrets(): Promise<Buffer[]> {
    return this.#read(async () => (await this.#command(['LRANGE', GLOBAL.secrets, '0', '-1'])) as Buffer[]);
  }

  /** Stores `secrets` (newest first) unless Redis holds some already; resolves with those Redis holds. */
  async initTokenSecrets(secrets: readonly Buffer[]): Promise<Buffer[]> {
    return (await this.#write(() => this.#fcall('init_secrets', [GLOBAL.secrets], secrets))) as Buffer[];
  }

  /** Adds `secret` as the newest (it seals from now on). Returns how many there are now. */
  async rotateTokenSecrets(secret: Buffer): Promise<number> {
    return (await this.#write(() => this.#command(['LPUSH', GLOBAL.secrets, secret]))) as number;
  }

  /** Keeps the newest `keep` secrets. Returns how many were dropped. */
  async retireTokenSecrets(keep: number): Promise<number> {
    return (await this.#write(() => this.#fcall('retire_secrets', [GLOBAL.secrets], [String(keep)]))) as number;
  }

  /** Adds `secrets` after (older than) those Redis holds, each unless there already. Returns how many were added. */
  async addTokenSecrets(secrets: readonly Buffer[]): Promise<number> {
    return (await this.#write(() => this.#fcall('add_secrets', [GLOBAL.secrets], secrets))) as number;
  }

  /** Whether Redis holds webpushd data (user agents, receipts, secrets or broadcasts). */
  holdsData(): Promise<boolean> {
    return this.#read(async () => {
      const counts = await Promise.all([
        this.#command(['SCARD', GLOBAL.slots]),
        this.#command(['EXISTS', GLOBAL.secrets]),
        this.#command(['EXISTS', GLOBAL.broadcasts]),
      ]);
      return counts.some((n) => (n as number) > 0);
    });
  }

  /**
   * Copies a user agent with its subscriptions and stored messages, their ids kept; `lastId`
   * (at least its largest message id) is where its new ids go on from. A user agent Redis
   * already holds is left as it is: false.
   */
  importUserAgent(ua: {
    uaid: Buffer;
    createdAt: number;
    seenAt: number;
    lastId: number;
    subscriptions: { chid: Buffer; keyHash: Buffer | null; createdAt: number }[];
    /** Oldest first. */
    messages: StoredMessage[];
  }): Promise<boolean> {
    return this.#write(async () => {
      await this.#register(userAgentSlot(ua.uaid));
      const args: (string | Buffer)[] = [ua.uaid, String(ua.createdAt), String(ua.seenAt), String(ua.lastId), String(ua.subscriptions.length)];
      for (const s of ua.subscriptions) args.push(s.chid, Buffer.concat([Buffer.from(`${s.createdAt}:`), s.keyHash ?? Buffer.alloc(0)]));
      for (const m of ua.messages) args.push(String(m.id), encodeMessage(m, m.expiresAt, m.receipt), String(m.expiresAt));
      return (await this.#fcall('import_user_agent', userAgentKeys(ua.uaid), args)) === 1;
    });
  }

  /** Copies a receipt subscription (one Redis holds already lives until the later of both expiries). */
  async importReceiptSubscription(id: Buffer, expiresAt: number): Promise<void> {
    const slot = receiptSlot(id);
    await this.#write(async () => {
      await this.#register(slot);
      await this.#command(['ZADD', receiptKeys(slot)[0]!, 'GT', String(expiresAt), id]);
    });
  }

  /** Queues a receipt copied from elsewhere (once: a copy repeated finds it queued). Returns whether it was queued now. */
  async importReceipt(r: Omit<QueuedReceipt, 'seq'> & { expiresAt: number }): Promise<boolean> {
    const slot = receiptSlot(r.subscription);
    const entry = Buffer.concat([r.subscription, r.chid, Buffer.from(String(r.status))]);
    const args = [String(slot), String(r.expiresAt), r.uaid, String(r.messageId), entry];
    return (await this.#write(async () => {
      await this.#register(slot);
      return this.#fcall('queue_receipts', receiptKeys(slot), args);
    })) === 1;
  }

  /** Sets the broadcast versions Redis does not hold yet. Returns how many. */
  async addBroadcasts(versions: Readonly<Record<string, string>>): Promise<number> {
    let added = 0;
    for (const [id, version] of Object.entries(versions)) added += (await this.#write(() => this.#command(['HSETNX', GLOBAL.broadcasts, id, version]))) as number;
    return added;
  }

  /**
   * One command on the node holding `key` (its slot's primary on a Redis Cluster), failing as a
   * write does (StoreUnavailable): for the aggregates kept on this connection
   * (src/aggregates/redis-aggregate-store.ts).
   */
  command(key: string, args: readonly (string | Buffer)[]): Promise<Reply> {
    return this.#write(() => this.#redis.send(key, false, args));
  }

  async close(): Promise<void> {
    await Promise.all(this.#moves);
    if (!this.#running) return;
    this.#running = false;
    await this.#redis.close();
  }
}

/** What a save learnt (RedisStore.savedWith). */
export interface Saved {
  /** The node holding the connection as the message was stored, or null. */
  holder: string | null;
  record: Buffer;
  /** Whether the save published the hint to the holder itself. */
  hinted: boolean;
}

/** A subscription's value: "<created ms>:<key hash>" (functions.lua: put_subscription). */
function createdOf(value: Buffer): number {
  return Number(value.toString('latin1', 0, value.indexOf(0x3a)));
}

function keyHashOf(value: Buffer): Buffer | null {
  const hash = value.subarray(value.indexOf(0x3a) + 1);
  return hash.length > 0 ? hash : null;
}
