// The capability URLs handed out: push URLs (per subscription, v1 open or v2 restricted to a
// VAPID key), message URLs (per stored message), the RFC 8030 user agent's subscription,
// set and receipt-subscription URLs, and aggregate URLs. Each is a sealed record of the ids it names.
import { randomBytes } from 'node:crypto';
import type { Sealer } from './sealer.ts';

const Kind = { push: 1, restrictedPush: 2, message: 3, subscription: 4, set: 5, receipts: 6, aggregate: 7 } as const;

export interface PushTarget {
  uaid: Buffer;
  chid: Buffer;
  /** First 16 bytes of SHA-256 of the VAPID key a restricted subscription is bound to. */
  keyHash: Buffer | null;
}

export interface MessageRef {
  uaid: Buffer;
  chid: Buffer;
  /** A stored message's id (> 0); a TTL 0 message's number in this process (<= 0; it has no row). */
  id: number;
}

/** The id field of a TTL 0 message's token has its top bit set: no stored id has it (ids < 2^53). */
const EPHEMERAL = 0x80;

export class Capabilities {
  readonly #sealer: Sealer;
  /** Numbers of TTL 0 messages restart with the process: this keeps their URLs from repeating. */
  readonly #epoch = randomBytes(4);

  constructor(sealer: Sealer) {
    this.#sealer = sealer;
  }

  /**
   * `stable`: the same subscription always gets the same token (RFC 8030 subscriptions: the
   * push URL of the 201 is the one named again in each pushed message's Link). Otherwise each
   * call gives a new, unlinkable token (WebSocket registrations).
   */
  pushToken(t: PushTarget, stable = false): string {
    const kind = t.keyHash ? Kind.restrictedPush : Kind.push;
    const plain = Buffer.concat([Buffer.of(kind), t.uaid, t.chid, ...(t.keyHash ? [t.keyHash] : [])]);
    return stable ? this.#sealer.sealDeterministic(plain) : this.#sealer.seal(plain);
  }

  /** Names the key that seals now: a token kept with it is what pushToken would give, until a new secret comes first. */
  sealingKeyTag(): Buffer {
    return this.#sealer.sealingKeyTag;
  }

  /** `restricted` says which URL form (v2 or v1) the token arrived on; they must agree. */
  openPushToken(token: string, restricted: boolean): PushTarget | null {
    // a sender posts to one push URL again and again
    const p = this.#sealer.openRepeated(token);
    if (!p) return null;
    if (restricted && p[0] === Kind.restrictedPush && p.length === 49) {
      return { uaid: p.subarray(1, 17), chid: p.subarray(17, 33), keyHash: p.subarray(33) };
    }
    if (!restricted && p[0] === Kind.push && p.length === 33) {
      return { uaid: p.subarray(1, 17), chid: p.subarray(17, 33), keyHash: null };
    }
    return null;
  }

  /**
   * Deterministic: the 201's Location, the PUSH_PROMISE and the receipt name one URL. A TTL 0
   * message is named by its number with this process's random epoch: each gets a URL of its own,
   * never repeated after a restart, so its URLs cannot link a subscription's push URLs or sends.
   */
  messageToken(m: MessageRef): string {
    const id = Buffer.allocUnsafe(8);
    if (m.id > 0) id.writeBigUInt64BE(BigInt(m.id));
    else {
      this.#epoch.copy(id);
      id[0]! |= EPHEMERAL;
      id.writeUInt32BE(-m.id >>> 0, 4);
    }
    return this.#sealer.sealDeterministic(Buffer.concat([Buffer.of(Kind.message), m.uaid, m.chid, id]));
  }

  /** A TTL 0 message's token opens with id 0: it names no stored message. */
  openMessageToken(token: string): MessageRef | null {
    const p = this.#sealer.open(token);
    if (!p || p[0] !== Kind.message || p.length !== 41) return null;
    const id = p[33]! & EPHEMERAL ? 0 : Number(p.readBigUInt64BE(33));
    return { uaid: p.subarray(1, 17), chid: p.subarray(17, 33), id };
  }

  subscriptionToken(uaid: Buffer, chid: Buffer): string {
    return this.#sealer.seal(Buffer.concat([Buffer.of(Kind.subscription), uaid, chid]));
  }

  openSubscriptionToken(token: string): { uaid: Buffer; chid: Buffer } | null {
    const p = this.#sealer.open(token);
    if (!p || p[0] !== Kind.subscription || p.length !== 33) return null;
    return { uaid: p.subarray(1, 17), chid: p.subarray(17, 33) };
  }

  /** Deterministic: a set has one URL, whichever subscription request returned it. */
  setToken(uaid: Buffer): string {
    return this.#sealer.sealDeterministic(Buffer.concat([Buffer.of(Kind.set), uaid]));
  }

  openSetToken(token: string): Buffer | null {
    const p = this.#sealer.open(token);
    return p && p[0] === Kind.set && p.length === 17 ? p.subarray(1) : null;
  }

  /**
   * A receipt subscription: `id` is 16 random bytes naming it in the store. Deterministic: a
   * sender that names it in a Link gets the same URL back.
   */
  receiptsToken(id: Buffer): string {
    return this.#sealer.sealDeterministic(Buffer.concat([Buffer.of(Kind.receipts), id]));
  }

  openReceiptsToken(token: string): Buffer | null {
    const p = this.#sealer.open(token);
    return p && p[0] === Kind.receipts && p.length === 17 ? p.subarray(1) : null;
  }

  /** An aggregate: `id` is 16 random bytes naming it in the aggregate store. Deterministic: one URL per aggregate. */
  aggregateToken(id: Buffer): string {
    return this.#sealer.sealDeterministic(Buffer.concat([Buffer.of(Kind.aggregate), id]));
  }

  openAggregateToken(token: string): Buffer | null {
    const p = this.#sealer.open(token);
    return p && p[0] === Kind.aggregate && p.length === 17 ? p.subarray(1) : null;
  }
}
