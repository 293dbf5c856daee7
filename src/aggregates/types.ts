// The AggregateStore seam: aggregates (one send, many subscriptions) and their members, kept
// apart from the message store (src/store/): membership lists are written in large chunks that
// should never share a commit with messages. Implemented on SQLite (a file of its own in the
// data dir) and on Redis (the message store's connection).
import { createHash } from 'node:crypto';

/** A member: a subscription of this service, as its push token names it. */
export interface Member {
  uaid: Buffer;
  chid: Buffer;
  /** The VAPID key hash of a restricted subscription (the aggregate's owner's), else null. */
  keyHash: Buffer | null;
  /** Its stable push token as sealed when it was added: a send or a listing need not seal it again. */
  pushToken?: SealedToken;
}

export interface SealedToken {
  /** Names the sealing key (8 bytes): a token of another key than the one sealing now is sealed again. */
  key: Buffer;
  token: string;
}

export interface Aggregate {
  id: Buffer;
  /** First 16 bytes of SHA-256 of the owner's VAPID public key (publicKeyHash). */
  owner: Buffer;
  members: number;
  /** Last created, changed or sent to (ms): it expires `idleMs` after. */
  usedAt: number;
}

export type CreateResult = { ok: true; id: Buffer } | { ok: false; reason: 'too-many-aggregates' | 'too-many-members' };

export type ChangeResult = { ok: true; members: number } | { ok: false; reason: 'no-aggregate' | 'too-many-members' };

export interface MemberPage {
  members: Member[];
  /** Where the next page starts (opaque, reveals no member), or null after the last. */
  next: string | null;
}

export interface AggregateStoreOptions {
  /** Members one aggregate may hold: a change past it is refused whole. */
  maxMembers: number;
  /** Live aggregates one owner may hold. */
  maxPerOwner: number;
  /** An aggregate neither changed nor sent to for this long is gone (ms). */
  idleMs: number;
  now?: () => number;
}

export interface AggregateStore {
  create(owner: Buffer, members: readonly Member[]): Promise<CreateResult>;
  /** null when it never existed, was deleted, or expired. */
  get(id: Buffer): Promise<Aggregate | null>;
  /** Removes `remove`, then adds `add`, at once; refused whole when the result would pass maxMembers. */
  change(id: Buffer, add: readonly Member[], remove: readonly Member[]): Promise<ChangeResult>;
  /** Members in a fixed order (by memberId), `limit` at a time from `cursor` (null: the first). */
  members(id: Buffer, cursor: string | null, limit: number): Promise<MemberPage>;
  /** Which of `members` the aggregate holds, in their order. */
  has(id: Buffer, members: readonly Member[]): Promise<boolean[]>;
  /** Marks it used now (a fan-out): its expiry starts again. */
  touch(id: Buffer): Promise<void>;
  delete(id: Buffer): Promise<boolean>;
  /** Deletes up to `limit` aggregates idle for longer than idleMs; returns how many. */
  expire(limit: number): Promise<number>;
  /** Live aggregates (a gauge). */
  count(): Promise<number>;
  close(): Promise<void>;
}

/**
 * A member's key in both stores: a hash of its ids, so that the order members are listed in, and
 * the page cursors that name a member, reveal no uaid (a bearer credential).
 */
export function memberId(m: { uaid: Buffer; chid: Buffer }): Buffer {
  return createHash('sha256').update(m.uaid).update(m.chid).digest().subarray(0, 16);
}

/**
 * What a store keeps of a member: uaid | chid | keyHash without a push token (as members were
 * kept before they had one: 32 or 48 bytes); with one, uaid | chid | 1 if restricted, else 0 |
 * keyHash | the token's key (8) | the token.
 */
export function encodeMember(m: Member): Buffer {
  const keyHash = m.keyHash ? [m.keyHash] : [];
  if (!m.pushToken) return Buffer.concat([m.uaid, m.chid, ...keyHash]);
  return Buffer.concat([m.uaid, m.chid, Buffer.of(keyHash.length), ...keyHash, m.pushToken.key, Buffer.from(m.pushToken.token, 'base64url')]);
}

export function decodeMember(b: Buffer): Member {
  const ids = { uaid: b.subarray(0, 16), chid: b.subarray(16, 32) };
  if (b.length <= 48) return { ...ids, keyHash: b.length > 32 ? b.subarray(32, 48) : null };
  const at = b[32] === 1 ? 49 : 33;
  return {
    ...ids,
    keyHash: at === 49 ? b.subarray(33, 49) : null,
    pushToken: { key: b.subarray(at, at + 8), token: b.subarray(at + 8).toString('base64url') },
  };
}

/** The members without repeats (by memberId), the last of each kept. */
export function distinct<T extends { uaid: Buffer; chid: Buffer }>(members: readonly T[]): Map<string, T> {
  return new Map(members.map((m) => [memberId(m).toString('hex'), m]));
}
