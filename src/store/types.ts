// The data model shared by every store and transport (see docs/ARCHITECTURE.md).

export const URGENCIES = ['very-low', 'low', 'normal', 'high'] as const;
export type Urgency = (typeof URGENCIES)[number];

/** The HTTP headers of a push request a user agent needs to decrypt the body. */
export interface EncodingHeaders {
  encoding: string;
  encryption?: string;
  cryptoKey?: string;
}

export interface NewMessage {
  uaid: Buffer;
  chid: Buffer;
  /** Seconds, > 0 (a TTL of 0 is never stored). */
  ttl: number;
  topic: string | null;
  urgency: Urgency;
  /** null for an empty body. */
  headers: EncodingHeaders | null;
  body: Buffer;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

export interface StoredMessage extends NewMessage {
  /** Increases with every message stored: the delivery order. */
  id: number;
  expiresAt: number;
  /**
   * The receipt subscription (RFC 8030 5.1) that gets a receipt when this message is
   * acknowledged (204) or given up (410). Absent when the sender asked for none.
   */
  receipt?: Buffer;
}

/** How a message names a receipt subscription when it is saved. */
export interface ReceiptTarget {
  id: Buffer;
  /** true: create it (a new random id); false: it must exist (named by the sender's Link). */
  create: boolean;
}

export type SaveResult =
  | { ok: true; message: StoredMessage; replacedId: number | null }
  | { ok: false; reason: 'no-subscription' | 'too-many-stored' | 'no-receipt-subscription' };

export interface Subscription {
  uaid: Buffer;
  chid: Buffer;
  keyHash: Buffer | null;
}

/** Which stored messages a reader wants (RFC 8030 6: a subscription's own, or above an urgency). */
export interface MessageFilter {
  /** Only this subscription's messages; absent: every subscription of the user agent. */
  chid?: Buffer;
  /** Only messages at least this urgent; absent: all. */
  minUrgency?: Urgency;
}

/** RFC 8030 6.3: 204 = acknowledged by the user agent; 410 = expired, replaced or unsubscribed first. */
export type ReceiptStatus = 204 | 410;

export interface QueuedReceipt {
  /** Increases with every receipt queued: the delivery order. */
  seq: number;
  /** The receipt subscription it is for. */
  subscription: Buffer;
  /** The message it is about. */
  uaid: Buffer;
  chid: Buffer;
  messageId: number;
  status: ReceiptStatus;
}

export interface MessageRef {
  uaid: Buffer;
  chid: Buffer;
  id: number;
}

export interface SweepResult {
  /** Expired messages removed (their 410 receipts, when asked for, are queued). */
  expired: MessageRef[];
  /** Receipts removed because nobody collected them in time. */
  receipts: number;
  /** Receipt subscriptions that expired (their monitors end with 404). */
  receiptSubscriptions: Buffer[];
}

/**
 * Subscriptions, messages and receipts. Writes resolve once durable; the embedded SQLite
 * store commits all writes of one event-loop turn together. A store tells its owner, after
 * the commit, which receipt subscriptions got new receipts (`onReceipts` of the SQLite store).
 * A store that cannot serve now (disk full, I/O error, locked, unreachable) rejects with
 * StoreUnavailable (./errors.ts) and keeps nothing of a failed write.
 */
export interface Store {
  hasUserAgent(uaid: Buffer): Promise<boolean>;
  /** Creates or updates a subscription; false (nothing written) when its user agent already holds the most it may. */
  putSubscription(sub: Subscription): Promise<boolean>;
  /** Also deletes the subscription's pending messages (queuing 410 receipts); false when unknown. */
  deleteSubscription(uaid: Buffer, chid: Buffer): Promise<boolean>;
  /**
   * Deletes a whole user agent (RFC 8030 set): every subscription and message; false when unknown.
   * `seenBefore` (ms): only if it was last seen before then (expiring an idle one).
   */
  deleteUserAgent(uaid: Buffer, seenBefore?: number): Promise<boolean>;
  /** The user agent connected or disconnected now. */
  touchUserAgent(uaid: Buffer): Promise<void>;
  /** Up to `limit` user agents last seen before `seenBefore` (ms), least recently seen first. */
  idleUserAgents(seenBefore: number, limit: number): Promise<Buffer[]>;
  getSubscription(uaid: Buffer, chid: Buffer): Promise<Subscription | null>;
  listSubscriptions(uaid: Buffer): Promise<Subscription[]>;
  /**
   * Stores a message, replacing a pending one of the same topic (queuing a 410 receipt for it
   * when it asked for one); enforces the per-subscription and per-UA caps (one refusal for
   * both: a sender cannot tell which); creates or extends the receipt subscription.
   */
  saveMessage(message: NewMessage, receipt?: ReceiptTarget): Promise<SaveResult>;
  /** Unexpired messages of a user agent with id > afterId, oldest first. */
  pendingMessages(uaid: Buffer, afterId: number, limit: number, filter?: MessageFilter): Promise<StoredMessage[]>;
  /** True when the message existed (acknowledged or cancelled now: queues its 204 receipt). */
  deleteMessage(uaid: Buffer, chid: Buffer, id: number): Promise<boolean>;
  /** True while the receipt subscription exists (not expired). */
  hasReceiptSubscription(id: Buffer): Promise<boolean>;
  /** Unexpired receipts of a receipt subscription with seq > afterSeq, oldest first. */
  pendingReceipts(subscription: Buffer, afterSeq: number, limit: number): Promise<QueuedReceipt[]>;
  /** A receipt was handed to the application server: it is not kept. */
  deleteReceipt(seq: number): Promise<void>;
  /** Deletes expired messages (queuing their 410 receipts), receipts and receipt subscriptions. */
  sweep(): Promise<SweepResult>;
  /** Deletes expired messages; returns how many (`sweep` without the details). */
  sweepExpired(): Promise<number>;
  /** The broadcast versions set while running (src/connect/broadcasts.ts). */
  broadcasts(): Promise<Map<string, string>>;
  /** Sets broadcast versions (new ids are added). */
  putBroadcasts(versions: Readonly<Record<string, string>>): Promise<void>;
  /**
   * null while the store can read and write; else why not (readiness). While writes fail it
   * tries one, so it reports recovery without waiting for other traffic.
   */
  unavailable(): Promise<string | null>;
  close(): Promise<void>;
}
