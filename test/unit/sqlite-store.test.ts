import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite-store.ts';
import type { NewMessage } from '../../src/store/types.ts';

function open(opts: Partial<SqliteStoreOptions> = {}) {
  let now = 1_000_000;
  const commits: number[] = [];
  const store = new SqliteStore({
    path: ':memory:',
    maxStoredPerUserAgent: 5,
    now: () => now,
    onCommit: (_ms, writes) => commits.push(writes),
    ...opts,
  });
  return { store, commits, advance: (ms: number) => (now += ms), now: () => now };
}

const sub = () => ({ uaid: randomBytes(16), chid: randomBytes(16), keyHash: null });

function message(s: { uaid: Buffer; chid: Buffer }, over: Partial<NewMessage> = {}): NewMessage {
  return {
    uaid: s.uaid,
    chid: s.chid,
    ttl: 60,
    topic: null,
    urgency: 'normal',
    headers: { encoding: 'aes128gcm' },
    body: Buffer.from('body'),
    createdAt: 1_000_000,
    ...over,
  };
}

describe('SqliteStore', () => {
  test('a message for an unknown subscription is refused', async () => {
    const { store } = open();
    assert.deepEqual(await store.saveMessage(message(sub())), { ok: false, reason: 'no-subscription' });
  });

  test('messages come back in order with every field', async () => {
    const { store } = open();
    const s = sub();
    await store.putSubscription(s);
    const a = await store.saveMessage(message(s, { urgency: 'high', topic: 'x', body: Buffer.from([1, 2, 3]) }));
    const b = await store.saveMessage(
      message(s, { headers: { encoding: 'aesgcm', encryption: 'salt=abc', cryptoKey: 'dh=def' }, urgency: 'very-low' }),
    );
    assert.ok(a.ok && b.ok && a.message.id < b.message.id);
    const got = await store.pendingMessages(s.uaid, 0, 10);
    assert.equal(got.length, 2);
    assert.deepEqual(got[0], { ...message(s, { urgency: 'high', topic: 'x', body: Buffer.from([1, 2, 3]) }), id: a.message.id, expiresAt: 1_060_000 });
    assert.deepEqual(got[1]!.headers, { encoding: 'aesgcm', encryption: 'salt=abc', cryptoKey: 'dh=def' });
    assert.equal(got[1]!.urgency, 'very-low');
    assert.deepEqual(await store.pendingMessages(s.uaid, a.message.id, 10), [got[1]]);
  });

  test('a topic replaces the pending message of the same topic and subscription only', async () => {
    const { store } = open();
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
  });

  test('the per-user-agent cap refuses more, but a topic replacement still fits', async () => {
    const { store } = open({ maxStoredPerUserAgent: 2 });
    const s = sub();
    await store.putSubscription(s);
    assert.ok((await store.saveMessage(message(s))).ok);
    assert.ok((await store.saveMessage(message(s, { topic: 't' }))).ok);
    assert.deepEqual(await store.saveMessage(message(s)), { ok: false, reason: 'too-many-stored' });
    assert.ok((await store.saveMessage(message(s, { topic: 't' }))).ok);
  });

  test('expired messages are never returned and are swept', async () => {
    const { store, advance } = open();
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
  });

  test('deleting a subscription deletes its messages; deleteMessage is scoped to its subscription', async () => {
    const { store } = open();
    const s = sub();
    await store.putSubscription(s);
    const saved = await store.saveMessage(message(s));
    assert.ok(saved.ok);
    assert.equal(await store.deleteMessage(s.uaid, randomBytes(16), saved.message.id), false);
    await store.deleteSubscription(s.uaid, s.chid);
    assert.equal(await store.getSubscription(s.uaid, s.chid), null);
    assert.equal(await store.deleteMessage(s.uaid, s.chid, saved.message.id), false);
    assert.equal(await store.hasUserAgent(s.uaid), true, 'the user agent stays known');
  });

  test('all writes of one event-loop turn share one commit', async () => {
    const { store, commits } = open();
    const s = sub();
    await store.putSubscription(s);
    commits.length = 0;
    const results = await Promise.all(Array.from({ length: 20 }, () => store.saveMessage(message(s, { ttl: 5 }))));
    assert.equal(results.filter((r) => !r.ok).length, 15, 'cap of 5 applies inside one transaction too');
    assert.deepEqual(commits, [20]);
  });

  test('committed data survives reopening the file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'webpushd-store-')), 'db');
    const s = { uaid: randomBytes(16), chid: randomBytes(16), keyHash: randomBytes(16) };
    const a = open({ path, now: Date.now });
    await a.store.putSubscription(s);
    await a.store.saveMessage(message(s, { createdAt: Date.now() }));
    await a.store.close();
    const b = open({ path, now: Date.now });
    assert.deepEqual(await b.store.getSubscription(s.uaid, s.chid), s);
    assert.equal((await b.store.pendingMessages(s.uaid, 0, 10)).length, 1);
    await b.store.close();
  });
});
