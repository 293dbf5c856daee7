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
}

export type SaveResult =
  | { ok: true; message: StoredMessage; replacedId: number | null }
  | { ok: false; reason: 'no-subscription' | 'too-many-stored' };

export interface Subscription {
  uaid: Buffer;
  chid: Buffer;
  keyHash: Buffer | null;
}

/**
 * Subscriptions and messages. Writes resolve once durable; the embedded SQLite store commits
 * all writes of one event-loop turn together.
 */
export interface Store {
  hasUserAgent(uaid: Buffer): Promise<boolean>;
  putSubscription(sub: Subscription): Promise<void>;
  /** Also deletes the subscription's pending messages. */
  deleteSubscription(uaid: Buffer, chid: Buffer): Promise<void>;
  getSubscription(uaid: Buffer, chid: Buffer): Promise<Subscription | null>;
  /** Stores a message, replacing a pending one of the same topic; enforces the per-UA cap. */
  saveMessage(message: NewMessage): Promise<SaveResult>;
  /** Unexpired messages of a user agent with id > afterId, oldest first. */
  pendingMessages(uaid: Buffer, afterId: number, limit: number): Promise<StoredMessage[]>;
  /** True when the message existed (acknowledged or cancelled now). */
  deleteMessage(uaid: Buffer, chid: Buffer, id: number): Promise<boolean>;
  /** Deletes expired messages; returns how many. */
  sweepExpired(): Promise<number>;
  close(): Promise<void>;
}
