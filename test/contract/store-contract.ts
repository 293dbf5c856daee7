// The behaviour every Store implementation owes the rest of webpushd (src/store/types.ts), as one
// suite: test/unit/store-*.test.ts run it against each store. Messages (order, fields, Topic,
// caps, TTL), subscriptions (channels cap), filtered reads, receipts (queued on ack, Topic
// replacement, expiry and unsubscribe; expiring), whole sets, idle user agents, broadcasts, and
// what survives reopening the store.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import type { NewMessage, ReceiptTarget, Store } from '../../src/store/types.ts';

/** The options of the SQLite store every store takes in some form. */
export interface ContractStoreOptions {
  maxStoredPerUserAgent: number;
  maxStoredPerSubscription?: number;
  maxChannelsPerUserAgent?: number;
  receiptTtlMs?: number;
  now: () => number;
  onReceipts: (subscriptions: Buffer[]) => void;
}

export interface OpenedStore {
  store: Store;
  /** Closes the store and opens it again on the same data (file, Redis). */
  reopen(): Promise<Store>;
}

/** Opens an empty store (nothing from an earlier test in it). */
export type OpenStore = (opts: ContractStoreOptions) => Promise<OpenedStore>;

/** The store `open` makes, reopened by closing it and calling `open` again on the same data. */
export async function reopenable(open: () => Store | Promise<Store>): Promise<OpenedStore> {
  const store = await open();
  return {
    store,
    async reopen() {
      await store.close();
      return open();
    },
  };
}

const T0 = 1_000_000;

/** A subscription of a new (or the given) user agent. */
export const sub = (uaid = randomBytes(16)) => ({ uaid, chid: randomBytes(16), keyHash: null });

/** A message to `s` (TTL 60, created at T0), with `over` applied. */
export function message(s: { uaid: Buffer; chid: Buffer }, over: Partial<NewMessage> = {}): NewMessage {
  return {
    uaid: s.uaid,
    chid: s.chid,
    ttl: 60,
    topic: null,
    urgency: 'normal',
    headers: { encoding: 'aes128gcm' },
    body: Buffer.from('body'),
    createdAt: T0,
    ...over,
  };
}

/** Stores `m`, which must fit; its id. */
export async function save(store: Store, m: NewMessage, receipt?: ReceiptTarget): Promise<number> {
  const r = await store.saveMessage(m, receipt);
  assert.ok(r.ok, JSON.stringify(r));
  return r.message.id;
}

export function storeContract(name: string, open: OpenStore, options: { skip?: string | false } = {}): void {
  describe(`${name}: the Store contract`, { skip: options.skip ?? false }, () => {
    const opened: Store[] = [];
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });

    /** A store on a fake clock (T0), recording the receipt announcements. */
    async function setup(over: Partial<ContractStoreOptions> = {}) {
      let now = T0;
      const notified: string[][] = [];
      const o = await open({
        maxStoredPerUserAgent: 50,
        receiptTtlMs: 10_000,
        now: () => now,
        onReceipts: (ids) => notified.push(ids.map((id) => id.toString('hex'))),
        ...over,
      });
      opened.push(o.store);
      const reopen = async () => {
        opened.splice(opened.indexOf(o.store), 1);
        const again = await o.reopen();
        opened.push(again);
        return again;
      };
      return { store: o.store, notified, reopen, advance: (ms: number) => (now += ms), now: () => now };
    }

    describe('messages', () => {
      test('a message for an unknown subscription is refused', async () => {
        const { store } = await setup();
        assert.deepEqual(await store.saveMessage(message(sub())), { ok: false, reason: 'no-subscription' });
      });

      test('messages come back in order with every field', async () => {
        const { store } = await setup();
        const s = sub();
        await store.putSubscription(s);
        const a = await store.saveMessage(message(s, { urgency: 'high', topic: 'x', body: Buffer.from([1, 2, 3]) }));
        const b = await store.saveMessage(
          message(s, { headers: { encoding: 'aesgcm', encryption: 'salt=abc', cryptoKey: 'dh=def' }, urgency: 'very-low' }),
        );
        const c = await store.saveMessage(message(s, { headers: null, body: Buffer.alloc(0), ttl: 2_592_000 }));
        assert.ok(a.ok && b.ok && c.ok && a.message.id < b.message.id && b.message.id < c.message.id);
        const got = await store.pendingMessages(s.uaid, 0, 10);
        assert.equal(got.length, 3);
        assert.deepEqual(got[0], { ...message(s, { urgency: 'high', topic: 'x', body: Buffer.from([1, 2, 3]) }), id: a.message.id, expiresAt: T0 + 60_000 });
        assert.deepEqual(got[1]!.headers, { encoding: 'aesgcm', encryption: 'salt=abc', cryptoKey: 'dh=def' });
        assert.equal(got[1]!.urgency, 'very-low');
        assert.deepEqual(got[2], { ...message(s, { headers: null, body: Buffer.alloc(0), ttl: 2_592_000 }), id: c.message.id, expiresAt: T0 + 2_592_000_000 });
        assert.deepEqual(a.message, got[0], 'saveMessage answers the message as stored');
        assert.deepEqual(await store.pendingMessages(s.uaid, a.message.id, 10), [got[1], got[2]]);
        assert.deepEqual(await store.pendingMessages(s.uaid, 0, 2), [got[0], got[1]], 'bounded by the limit');
      });

      test('a topic replaces the pending message of the same topic and subscription only', async () => {
        const { store } = await setup();
        const s = sub();
        const other = { ...s, chid: randomBytes(16) };
        await store.putSubscription(s);
        await store.putSubscription(other);
        const first = await store.saveMessage(message(s, { topic: 't', body: Buffer.from('old') }));
        await store.saveMessage(message(other, { topic: 't' }));
        const second = await store.saveMessage(message(s, { topic: 't', body: Buffer.from('new') }));
        assert.ok(first.ok && second.ok);
        assert.equal(second.replacedId, first.message.id);
        const bodies = (await store.pendingMessages(s.uaid, 0, 10)).map((m) => m.body.toString());
        assert.deepEqual(bodies, ['body', 'new']);
        // once acknowledged, the topic is free: the next one replaces nothing
        assert.equal(await store.deleteMessage(s.uaid, s.chid, second.message.id), true);
        const third = await store.saveMessage(message(s, { topic: 't' }));
        assert.ok(third.ok);
        assert.equal(third.replacedId, null);
      });

      test('the per-user-agent cap refuses more, but a topic replacement still fits', async () => {
        const { store } = await setup({ maxStoredPerUserAgent: 2 });
        const s = sub();
        await store.putSubscription(s);
        assert.ok((await store.saveMessage(message(s))).ok);
        assert.ok((await store.saveMessage(message(s, { topic: 't' }))).ok);
        assert.deepEqual(await store.saveMessage(message(s)), { ok: false, reason: 'too-many-stored' });
        assert.ok((await store.saveMessage(message(s, { topic: 't' }))).ok);
        assert.equal((await store.pendingMessages(s.uaid, 0, 10)).length, 2);
      });

      test('the per-subscription cap comes first; an acknowledgement makes room', async () => {
        const { store } = await setup({ maxStoredPerUserAgent: 3, maxStoredPerSubscription: 2 });
        const a = sub();
        const b = sub(a.uaid);
        await store.putSubscription(a);
        await store.putSubscription(b);
        const first = await save(store, message(a));
        await save(store, message(a));
        assert.deepEqual(await store.saveMessage(message(a)), { ok: false, reason: 'too-many-stored' }, 'a holds its 2');
        await save(store, message(b));
        assert.deepEqual(await store.saveMessage(message(b)), { ok: false, reason: 'too-many-stored' }, 'the user agent holds its 3');
        assert.equal(await store.deleteMessage(a.uaid, a.chid, first), true);
        await save(store, message(a));
        assert.deepEqual(await store.saveMessage(message(a)), { ok: false, reason: 'too-many-stored' });
        assert.equal((await store.pendingMessages(a.uaid, 0, 10)).length, 3);
      });

      test('the caps hold for writes made at once', async () => {
        const { store } = await setup({ maxStoredPerUserAgent: 5 });
        const s = sub();
        await store.putSubscription(s);
        const results = await Promise.all(Array.from({ length: 20 }, () => store.saveMessage(message(s, { ttl: 5 }))));
        assert.equal(results.filter((r) => !r.ok).length, 15);
        const ids = results.flatMap((r) => (r.ok ? [r.message.id] : []));
        assert.deepEqual((await store.pendingMessages(s.uaid, 0, 10)).map((m) => m.id), ids.sort((x, y) => x - y));
      });

      test('expired messages are never returned and are swept', async () => {
        const { store, advance } = await setup();
        const s = sub();
        await store.putSubscription(s);
        await store.saveMessage(message(s, { ttl: 1 }));
        await store.saveMessage(message(s, { ttl: 10 }));
        advance(1000);
        assert.equal((await store.pendingMessages(s.uaid, 0, 10)).length, 1);
        assert.equal(await store.sweepExpired(), 1);
        advance(9000);
        assert.equal(await store.sweepExpired(), 1);
        assert.equal((await store.pendingMessages(s.uaid, 0, 10)).length, 0);
        assert.equal(await store.sweepExpired(), 0);
      });

      test('deleting a subscription deletes its messages; deleteMessage is scoped to its subscription', async () => {
        const { store } = await setup();
        const s = sub();
        const other = sub(s.uaid);
        await store.putSubscription(s);
        await store.putSubscription(other);
        const saved = await save(store, message(s));
        const kept = await save(store, message(other));
        assert.equal(await store.deleteMessage(s.uaid, randomBytes(16), saved), false);
        assert.equal(await store.deleteMessage(s.uaid, other.chid, saved), false);
        assert.equal(await store.deleteSubscription(s.uaid, s.chid), true);
        assert.equal(await store.getSubscription(s.uaid, s.chid), null);
        assert.equal(await store.deleteMessage(s.uaid, s.chid, saved), false);
        assert.deepEqual((await store.pendingMessages(s.uaid, 0, 10)).map((m) => m.id), [kept]);
        assert.equal(await store.hasUserAgent(s.uaid), true, 'the user agent stays known');
      });

      test('message ids keep increasing when a user agent is deleted and made again', async () => {
        const { store } = await setup();
        const s = sub();
        await store.putSubscription(s);
        const before = await save(store, message(s));
        assert.equal(await store.deleteUserAgent(s.uaid), true);
        await store.putSubscription(s);
        assert.ok((await save(store, message(s))) > before, 'an old message URL never names a new message');
      });

      test('committed data survives reopening the store', async () => {
        const { store, reopen } = await setup();
        const s = { uaid: randomBytes(16), chid: randomBytes(16), keyHash: randomBytes(16) };
        await store.putSubscription(s);
        const id = await save(store, message(s, { topic: 'kept' }));
        const again = await reopen();
        assert.deepEqual(await again.getSubscription(s.uaid, s.chid), s);
        assert.deepEqual((await again.pendingMessages(s.uaid, 0, 10)).map((m) => [m.id, m.topic]), [[id, 'kept']]);
        const next = await again.saveMessage(message(s, { topic: 'kept' }));
        assert.ok(next.ok && next.message.id > id);
        assert.equal(next.replacedId, id, 'the topic index survives too');
      });
    });

    describe('subscriptions', () => {
      test('a subscription keeps its key hash; registering it again updates it; listed oldest first', async () => {
        const { store, advance } = await setup();
        const a = { uaid: randomBytes(16), chid: randomBytes(16), keyHash: randomBytes(16) };
        assert.equal(await store.hasUserAgent(a.uaid), false);
        assert.equal(await store.putSubscription(a), true);
        assert.equal(await store.hasUserAgent(a.uaid), true);
        advance(1000);
        const b = { uaid: a.uaid, chid: randomBytes(16), keyHash: null };
        await store.putSubscription(b);
        assert.deepEqual(await store.getSubscription(a.uaid, a.chid), a);
        assert.deepEqual(await store.getSubscription(b.uaid, b.chid), b);
        const updated = { ...a, keyHash: null };
        await store.putSubscription(updated);
        assert.deepEqual(await store.listSubscriptions(a.uaid), [updated, b], 'created order, unchanged by the update');
        assert.equal(await store.getSubscription(a.uaid, randomBytes(16)), null);
        assert.deepEqual(await store.listSubscriptions(randomBytes(16)), []);
      });

      test('the channels cap refuses a new subscription (nothing written) but not an existing one', async () => {
        const { store } = await setup({ maxChannelsPerUserAgent: 2 });
        const a = sub();
        const b = sub(a.uaid);
        const c = sub(a.uaid);
        assert.equal(await store.putSubscription(a), true);
        assert.equal(await store.putSubscription(b), true);
        assert.equal(await store.putSubscription(c), false);
        assert.equal(await store.getSubscription(c.uaid, c.chid), null);
        assert.equal(await store.putSubscription(a), true, 'registering an existing channel again fits');
        assert.equal(await store.deleteSubscription(b.uaid, b.chid), true);
        assert.equal(await store.putSubscription(c), true);
        assert.equal((await store.listSubscriptions(a.uaid)).length, 2);
      });
    });

    describe('RFC 8030', () => {
      test('pending messages filtered by subscription and by urgency', async () => {
        const { store } = await setup();
        const a = sub();
        const b = sub(a.uaid);
        await store.putSubscription(a);
        await store.putSubscription(b);
        await save(store, message(a, { urgency: 'very-low' }));
        const ah = await save(store, message(a, { urgency: 'high' }));
        const bl = await save(store, message(b, { urgency: 'low' }));
        const bn = await save(store, message(b));
        const ids = async (filter: Parameters<Store['pendingMessages']>[3], after = 0, limit = 10) =>
          (await store.pendingMessages(a.uaid, after, limit, filter)).map((m) => m.id);
        assert.equal((await ids(undefined)).length, 4);
        assert.deepEqual(await ids({ chid: b.chid }), [bl, bn]);
        assert.deepEqual(await ids({ minUrgency: 'normal' }), [ah, bn]);
        assert.deepEqual(await ids({ minUrgency: 'normal' }, 0, 1), [ah], 'the limit counts matching messages');
        assert.deepEqual(await ids({ minUrgency: 'low', chid: b.chid }), [bl, bn]);
        assert.deepEqual(await ids({ minUrgency: 'high', chid: b.chid }), []);
        assert.deepEqual(await ids({ chid: b.chid }, bl), [bn]);
        assert.deepEqual(await ids({ minUrgency: 'very-low' }), await ids({}));
        assert.deepEqual(
          (await store.listSubscriptions(a.uaid)).map((s) => s.chid.toString('hex')).sort(),
          [a.chid, b.chid].map((c) => c.toString('hex')).sort(),
        );
      });

      test('a receipt is queued on acknowledgement (204) and announced once it is', async () => {
        const { store, notified } = await setup();
        const s = sub();
        await store.putSubscription(s);
        const rid = randomBytes(16);
        const id = await save(store, message(s), { id: rid, create: true });
        const plain = await save(store, message(s));
        assert.deepEqual((await store.pendingMessages(s.uaid, 0, 10))[0]!.receipt, rid);
        assert.equal((await store.pendingMessages(s.uaid, 0, 10))[1]!.receipt, undefined);
        assert.equal(await store.hasReceiptSubscription(rid), true);
        assert.equal(await store.hasReceiptSubscription(randomBytes(16)), false);
        assert.deepEqual(await store.pendingReceipts(rid, 0, 10), []);
        const deleted = store.deleteMessage(s.uaid, s.chid, id);
        assert.deepEqual(notified, [], 'nothing before the write');
        assert.equal(await deleted, true);
        assert.deepEqual(notified, [[rid.toString('hex')]]);
        assert.equal(await store.deleteMessage(s.uaid, s.chid, plain), true);
        assert.equal(notified.length, 1, 'no receipt asked, none queued');
        const [r] = await store.pendingReceipts(rid, 0, 10);
        assert.deepEqual(r, { seq: r!.seq, subscription: rid, uaid: s.uaid, chid: s.chid, messageId: id, status: 204 });
        assert.deepEqual(await store.pendingReceipts(rid, r!.seq, 10), []);
        await store.deleteReceipt(r!.seq);
        assert.deepEqual(await store.pendingReceipts(rid, 0, 10), []);
      });

      test('one receipt subscription gets the receipts of many user agents, in the order queued', async () => {
        const { store } = await setup();
        const rid = randomBytes(16);
        const subs = [sub(), sub(), sub()];
        const ids: number[] = [];
        for (const [i, s] of subs.entries()) {
          await store.putSubscription(s);
          ids.push(await save(store, message(s), { id: rid, create: i === 0 }));
        }
        for (const i of [2, 0, 1]) await store.deleteMessage(subs[i]!.uaid, subs[i]!.chid, ids[i]!);
        const receipts = await store.pendingReceipts(rid, 0, 10);
        assert.deepEqual(
          receipts.map((r) => [r.uaid.toString('hex'), r.messageId]),
          [2, 0, 1].map((i) => [subs[i]!.uaid.toString('hex'), ids[i]]),
        );
        assert.ok(receipts[0]!.seq < receipts[1]!.seq && receipts[1]!.seq < receipts[2]!.seq);
        assert.deepEqual((await store.pendingReceipts(rid, receipts[0]!.seq, 1)).map((r) => r.messageId), [ids[0]], 'paged');
        const other = randomBytes(16);
        const s = sub();
        await store.putSubscription(s);
        await store.deleteMessage(s.uaid, s.chid, await save(store, message(s), { id: other, create: true }));
        assert.equal((await store.pendingReceipts(other, 0, 10)).length, 1, 'each subscription its own');
        assert.equal((await store.pendingReceipts(rid, 0, 10)).length, 3);
      });

      test('a named receipt subscription must exist; using it extends it; nothing is stored otherwise', async () => {
        const { store, advance } = await setup();
        const s = sub();
        await store.putSubscription(s);
        const unknown = await store.saveMessage(message(s), { id: randomBytes(16), create: false });
        assert.deepEqual(unknown, { ok: false, reason: 'no-receipt-subscription' });
        assert.equal((await store.pendingMessages(s.uaid, 0, 10)).length, 0);
        const rid = randomBytes(16);
        await save(store, message(s, { ttl: 1 }), { id: rid, create: true }); // lives to T0 + 1 s + 10 s
        advance(9_000);
        await save(store, message(s, { ttl: 60, createdAt: T0 + 9_000 }), { id: rid, create: false });
        advance(5_000);
        assert.equal(await store.hasReceiptSubscription(rid), true, 'extended to the new message expiry + 10 s');
        advance(70_000);
        assert.equal(await store.hasReceiptSubscription(rid), false);
        const late = await store.saveMessage(message(s, { createdAt: T0 + 84_000 }), { id: rid, create: false });
        assert.deepEqual(late, { ok: false, reason: 'no-receipt-subscription' });
        assert.deepEqual(await store.saveMessage(message(sub()), { id: rid, create: true }), { ok: false, reason: 'no-subscription' });
      });

      test('410 receipts: Topic replacement, expiry (sweep), unsubscribe and set deletion', async () => {
        const { store, advance, notified } = await setup();
        const s = sub();
        const other = sub(s.uaid);
        await store.putSubscription(s);
        await store.putSubscription(other);
        const rid = randomBytes(16);
        const named = { id: rid, create: false };
        const replaced = await save(store, message(s, { topic: 't' }), { id: rid, create: true });
        const replacing = await save(store, message(s, { topic: 't' }), named);
        const expiring = await save(store, message(s, { ttl: 1 }), named);
        const plain = await save(store, message(s, { ttl: 1 })); // expires without a receipt
        advance(1000);
        const swept = await store.sweep();
        assert.deepEqual(
          swept.expired.map((m) => m.id),
          [expiring, plain],
        );
        assert.deepEqual(swept.expired[0], { uaid: s.uaid, chid: s.chid, id: expiring });
        const unsubscribed = await save(store, message(other, { createdAt: T0 + 1000 }), named);
        assert.equal(await store.deleteSubscription(other.uaid, other.chid), true);
        assert.equal(await store.deleteSubscription(other.uaid, other.chid), false);
        assert.equal(await store.deleteUserAgent(s.uaid), true);
        assert.deepEqual(
          (await store.pendingReceipts(rid, 0, 10)).map((r) => [r.messageId, r.status]),
          [
            [replaced, 410],
            [expiring, 410],
            [unsubscribed, 410],
            [replacing, 410],
          ],
        );
        assert.equal(notified.length, 4);
        assert.equal(await store.deleteUserAgent(s.uaid), false);
        assert.equal(await store.hasUserAgent(s.uaid), false);
        assert.deepEqual(await store.listSubscriptions(s.uaid), []);
        assert.deepEqual(await store.pendingMessages(s.uaid, 0, 10), []);
        assert.deepEqual(await store.saveMessage(message(s)), { ok: false, reason: 'no-subscription' });
      });

      test('receipts and receipt subscriptions expire', async () => {
        const { store, advance } = await setup();
        const s = sub();
        await store.putSubscription(s);
        const rid = randomBytes(16);
        const id = await save(store, message(s, { ttl: 5 }), { id: rid, create: true }); // sub lives to T0 + 15 s
        advance(2_000);
        await store.deleteMessage(s.uaid, s.chid, id); // receipt expires at T0 + 12 s
        assert.equal((await store.pendingReceipts(rid, 0, 10)).length, 1);
        advance(10_000);
        assert.equal((await store.pendingReceipts(rid, 0, 10)).length, 0, 'an expired receipt is never handed out');
        const swept = await store.sweep();
        assert.equal(swept.receipts, 1);
        assert.deepEqual(swept.receiptSubscriptions, []);
        advance(3_000);
        assert.deepEqual((await store.sweep()).receiptSubscriptions, [rid]);
        assert.equal(await store.hasReceiptSubscription(rid), false);
      });

      test('queued receipts and receipt requests survive reopening the store', async () => {
        const { store, reopen } = await setup();
        const s = sub();
        const rid = randomBytes(16);
        await store.putSubscription(s);
        const acked = await save(store, message(s), { id: rid, create: true });
        const waiting = await save(store, message(s), { id: rid, create: false });
        await store.deleteMessage(s.uaid, s.chid, acked);
        const again = await reopen();
        assert.deepEqual((await again.pendingReceipts(rid, 0, 10)).map((r) => [r.messageId, r.status]), [[acked, 204]]);
        assert.deepEqual((await again.pendingMessages(s.uaid, 0, 10)).map((m) => [m.id, m.receipt]), [[waiting, rid]]);
        await again.deleteMessage(s.uaid, s.chid, waiting);
        assert.equal((await again.pendingReceipts(rid, 0, 10)).length, 2);
      });
    });

    describe('idle user agents', () => {
      test('seen on subscribe and touch; listed least recently seen first; a conditional delete spares one seen since', async () => {
        const { store, advance, now } = await setup();
        const a = sub();
        const b = sub();
        await store.putSubscription(a);
        advance(1000);
        await store.putSubscription(b);
        advance(1000);
        assert.deepEqual(await store.idleUserAgents(now(), 10), [a.uaid, b.uaid]);
        assert.deepEqual(await store.idleUserAgents(now(), 1), [a.uaid], 'bounded');
        assert.deepEqual(await store.idleUserAgents(now() - 2000, 10), [], 'seen at the cutoff is not before it');
        const cutoff = now();
        await store.touchUserAgent(a.uaid);
        await store.touchUserAgent(randomBytes(16)); // unknown: stays unknown
        assert.deepEqual(await store.idleUserAgents(cutoff + 1, 10), [b.uaid, a.uaid], 'a was seen last');
        assert.equal(await store.deleteUserAgent(a.uaid, cutoff), false, 'a was seen after the cutoff');
        assert.ok(await store.getSubscription(a.uaid, a.chid));
        await save(store, message(b, { createdAt: now() }));
        assert.equal(await store.deleteUserAgent(b.uaid, cutoff), true);
        assert.equal(await store.getSubscription(b.uaid, b.chid), null);
        assert.deepEqual(await store.pendingMessages(b.uaid, 0, 10), []);
        assert.equal(await store.hasUserAgent(b.uaid), false);
        assert.deepEqual(await store.idleUserAgents(cutoff + 1, 10), [a.uaid]);
        assert.equal(await store.sweepExpired(), 0, 'nothing of b is left to expire');
      });
    });

    describe('broadcasts and readiness', () => {
      test('broadcast versions are set, changed and kept', async () => {
        const { store, reopen } = await setup();
        assert.deepEqual(await store.broadcasts(), new Map());
        await store.putBroadcasts({ a: 'v1', 'remote-settings/monitor_changes': '"1700000000"' });
        await store.putBroadcasts({ a: 'v2' });
        await store.putBroadcasts({});
        const expected = new Map([
          ['a', 'v2'],
          ['remote-settings/monitor_changes', '"1700000000"'],
        ]);
        assert.deepEqual(await store.broadcasts(), expected);
        assert.deepEqual(await (await reopen()).broadcasts(), expected);
      });

      test('a store that reads and writes is ready', async () => {
        const { store } = await setup();
        assert.equal(await store.unavailable(), null);
      });
    });
  });
}
