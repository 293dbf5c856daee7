// The cluster store: Redis 7.0+, shared by any number of webpushd nodes. Every change to a user
// agent is one function call (src/store/redis/functions.lua) on keys of one hash slot, so it is
// atomic, and answered only once Redis executed it (with `appendfsync always`, after its AOF
// fsync). This class only puts together the parts in src/store/redis/, each of one job, over
// the connection they share (handle.ts).
import type { Reply } from './redis/connection.ts';
import { Broadcasts } from './redis/broadcasts.ts';
import { ClusterState } from './redis/cluster-state.ts';
import { RedisHandle, type RedisHandleOptions } from './redis/handle.ts';
import { Import, type ImportedReceipt, type ImportedUserAgent } from './redis/import.ts';
import { Messages } from './redis/messages.ts';
import { Receipts } from './redis/receipts.ts';
import { Routing, type Saved } from './redis/routing.ts';
import { TokenSecrets } from './redis/secrets.ts';
import { Sweeps } from './redis/sweeps.ts';
import { UserAgents } from './redis/user-agents.ts';
import { DEFAULT_RECEIPT_TTL_MS } from './sqlite-store.ts';
import type {
  MessageFilter,
  NewMessage,
  QueuedReceipt,
  ReceiptTarget,
  SaveResult,
  Store,
  StoredMessage,
  Subscription,
  SweepResult,
} from './types.ts';

export type { Saved } from './redis/routing.ts';

export interface RedisStoreOptions extends RedisHandleOptions {
  /** Most messages stored for one user agent; further sends are refused until some are acked. */
  maxStoredPerUserAgent: number;
  /** Most messages stored for one subscription (default: maxStoredPerUserAgent). */
  maxStoredPerSubscription?: number;
  /** Most subscriptions of one user agent; a new one beyond is refused (default: no limit). */
  maxChannelsPerUserAgent?: number;
  /** How long a queued receipt waits for its application server (default 24 h). */
  receiptTtlMs?: number;
  /** After receipts were queued: the receipt subscriptions that got them. */
  onReceipts?: (subscriptions: Buffer[]) => void;
}

export class RedisStore implements Store {
  readonly #redis: RedisHandle;
  readonly #receipts: Receipts;
  readonly #routing: Routing;
  readonly #nodes: ClusterState;
  readonly #userAgents: UserAgents;
  readonly #messages: Messages;
  readonly #sweeps: Sweeps;
  readonly #secrets: TokenSecrets;
  readonly #broadcasts: Broadcasts;
  readonly #import: Import;

  /** Connects, loads the functions, and resolves once it can serve; rejects (StoreUnavailable) when Redis cannot be reached. */
  static async open(opts: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(opts);
    await store.#redis.start();
    return store;
  }

  private constructor(opts: RedisStoreOptions) {
    const receiptTtlMs = opts.receiptTtlMs ?? DEFAULT_RECEIPT_TTL_MS;
    this.#redis = new RedisHandle(opts);
    this.#receipts = new Receipts(this.#redis, receiptTtlMs, opts.onReceipts ?? (() => {}));
    this.#routing = new Routing(this.#redis);
    this.#nodes = new ClusterState(this.#redis);
    this.#userAgents = new UserAgents(this.#redis, opts.maxChannelsPerUserAgent ?? Number.MAX_SAFE_INTEGER, this.#receipts, this.#routing, this.#nodes);
    const maxStoredPerSub = opts.maxStoredPerSubscription ?? opts.maxStoredPerUserAgent;
    this.#messages = new Messages(this.#redis, { maxStored: opts.maxStoredPerUserAgent, maxStoredPerSub, receiptTtlMs }, this.#receipts, this.#routing);
    this.#sweeps = new Sweeps(this.#redis, this.#receipts);
    this.#secrets = new TokenSecrets(this.#redis);
    this.#broadcasts = new Broadcasts(this.#redis);
    this.#import = new Import(this.#redis);
  }

  // The Store seam: user agents and subscriptions (redis/user-agents.ts), messages
  // (redis/messages.ts), receipts (redis/receipts.ts), what spans slots (redis/sweeps.ts),
  // broadcasts (redis/broadcasts.ts), readiness (redis/handle.ts).

  hasUserAgent(uaid: Buffer): Promise<boolean> {
    return this.#userAgents.hasUserAgent(uaid);
  }

  putSubscription(sub: Subscription): Promise<boolean> {
    return this.#userAgents.putSubscription(sub);
  }

  deleteSubscription(uaid: Buffer, chid: Buffer): Promise<boolean> {
    return this.#userAgents.deleteSubscription(uaid, chid);
  }

  deleteUserAgent(uaid: Buffer, seenBefore?: number): Promise<boolean> {
    return this.#userAgents.deleteUserAgent(uaid, seenBefore);
  }

  touchUserAgent(uaid: Buffer): Promise<void> {
    return this.#userAgents.touchUserAgent(uaid);
  }

  idleUserAgents(seenBefore: number, limit: number): Promise<Buffer[]> {
    return this.#sweeps.idleUserAgents(seenBefore, limit);
  }

  getSubscription(uaid: Buffer, chid: Buffer): Promise<Subscription | null> {
    return this.#userAgents.getSubscription(uaid, chid);
  }

  listSubscriptions(uaid: Buffer): Promise<Subscription[]> {
    return this.#userAgents.listSubscriptions(uaid);
  }

  saveMessage(m: NewMessage, receipt?: ReceiptTarget): Promise<SaveResult> {
    return this.#messages.saveMessage(m, receipt);
  }

  pendingMessages(uaid: Buffer, afterId: number, limit: number, filter?: MessageFilter): Promise<StoredMessage[]> {
    return this.#messages.pendingMessages(uaid, afterId, limit, filter);
  }

  deleteMessage(uaid: Buffer, chid: Buffer, id: number): Promise<boolean> {
    return this.#messages.deleteMessage(uaid, chid, id);
  }

  hasReceiptSubscription(id: Buffer): Promise<boolean> {
    return this.#receipts.hasReceiptSubscription(id);
  }

  pendingReceipts(subscription: Buffer, afterSeq: number, limit: number): Promise<QueuedReceipt[]> {
    return this.#receipts.pendingReceipts(subscription, afterSeq, limit);
  }

  deleteReceipt(seq: number): Promise<void> {
    return this.#receipts.deleteReceipt(seq);
  }

  sweep(): Promise<SweepResult> {
    return this.#sweeps.sweep();
  }

  async sweepExpired(): Promise<number> {
    return (await this.sweep()).expired.length;
  }

  storedMessages(): Promise<number | null> {
    return this.#sweeps.storedMessages();
  }

  broadcasts(): Promise<Map<string, string>> {
    return this.#broadcasts.broadcasts();
  }

  putBroadcasts(versions: Readonly<Record<string, string>>): Promise<void> {
    return this.#broadcasts.putBroadcasts(versions);
  }

  unavailable(): Promise<string | null> {
    return this.#redis.unavailable();
  }

  // Not part of the Store seam, only a shared store has them: routing between nodes
  // (src/router/cluster-router.ts; redis/routing.ts) and the nodes' liveness and leases
  // (redis/cluster-state.ts).

  claimUserAgent(uaid: Buffer, node: string): Promise<{ previous: string | null; epoch: number; lastId: number }> {
    return this.#routing.claimUserAgent(uaid, node);
  }

  releaseUserAgent(uaid: Buffer, node: string, epoch: number): Promise<void> {
    return this.#routing.releaseUserAgent(uaid, node, epoch);
  }

  lastMessageId(uaid: Buffer): Promise<number> {
    return this.#routing.lastMessageId(uaid);
  }

  nodeAlive(node: string, ttlMs: number): Promise<void> {
    return this.#nodes.nodeAlive(node, ttlMs);
  }

  takeLease(name: 'sweep', ttlMs: number): Promise<(() => Promise<void>) | null> {
    return this.#nodes.takeLease(name, ttlMs);
  }

  connectionEpoch(uaid: Buffer): Promise<number> {
    return this.#routing.connectionEpoch(uaid);
  }

  savedWith(message: StoredMessage): Saved | undefined {
    return this.#routing.savedWith(message);
  }

  publishHintsAs(node: string): void {
    this.#routing.publishHintsAs(node);
  }

  holderOf(uaid: Buffer): Promise<string | null> {
    return this.#routing.holderOf(uaid);
  }

  publish(channel: string, hint: string | Buffer): Promise<void> {
    return this.#routing.publish(channel, hint);
  }

  subscribe(channels: string[], onHint: (hint: Buffer) => void, onResubscribed: () => void): Promise<() => Promise<void>> {
    return this.#routing.subscribe(channels, onHint, onResubscribed);
  }

  // Not part of the Store seam: cluster-wide state (src/tokens/secret-store.ts; redis/secrets.ts,
  // redis/broadcasts.ts) and the copy of a SQLite data dir (src/cli/migrate.ts; redis/import.ts).

  tokenSecrets(): Promise<Buffer[]> {
    return this.#secrets.tokenSecrets();
  }

  initTokenSecrets(secrets: readonly Buffer[]): Promise<Buffer[]> {
    return this.#secrets.initTokenSecrets(secrets);
  }

  rotateTokenSecrets(secret: Buffer): Promise<number> {
    return this.#secrets.rotateTokenSecrets(secret);
  }

  retireTokenSecrets(keep: number): Promise<number> {
    return this.#secrets.retireTokenSecrets(keep);
  }

  addTokenSecrets(secrets: readonly Buffer[]): Promise<number> {
    return this.#secrets.addTokenSecrets(secrets);
  }

  holdsData(): Promise<boolean> {
    return this.#import.holdsData();
  }

  importUserAgent(ua: ImportedUserAgent): Promise<boolean> {
    return this.#import.importUserAgent(ua);
  }

  importReceiptSubscription(id: Buffer, expiresAt: number): Promise<void> {
    return this.#import.importReceiptSubscription(id, expiresAt);
  }

  importReceipt(r: ImportedReceipt): Promise<boolean> {
    return this.#import.importReceipt(r);
  }

  addBroadcasts(versions: Readonly<Record<string, string>>): Promise<number> {
    return this.#broadcasts.addBroadcasts(versions);
  }

  /**
   * One command on the node holding `key` (its slot's primary on a Redis Cluster), failing as a
   * write does (StoreUnavailable): for the aggregates kept on this connection
   * (src/aggregates/redis-aggregate-store.ts).
   */
  command(key: string, args: readonly (string | Buffer)[]): Promise<Reply> {
    return this.#redis.write(() => this.#redis.send(key, args));
  }

  async close(): Promise<void> {
    await this.#receipts.settled();
    await this.#redis.close();
  }
}
