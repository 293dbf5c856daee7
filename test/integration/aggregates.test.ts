// Aggregates end to end on one in-process server: created with VAPID and owned by that key,
// members given as push URLs (others refused and listed), listed in pages, changed by JSON Merge
// Patch, sent to (an empty message to all; a batch of one encrypted body per member, each entry
// checked), gone members leaving, every limit refused with its status and errno, expiry, metrics,
// and other traffic served while a large fan-out is written.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateVAPIDKeys, vapidHeaders } from '../../src/sdk/vapid.ts';
import { rotateSecrets } from '../../src/tokens/secret-file.ts';
import { aes128gcmBody, markerOf } from '../helpers/bodies.ts';
import { onRedis, skipOnRedis, startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';

const vapid = (): { subject: string; publicKey: string; privateKey: string } => ({ subject: 'mailto:ops@example.com', ...generateVAPIDKeys() });
type Vapid = ReturnType<typeof vapid>;

interface Answer {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** A request to the aggregate API, signed with `key` (null: anonymous). */
async function call(method: string, url: string, key: Vapid | null, body?: unknown, type = 'application/json', headers: Record<string, string> = {}): Promise<Answer> {
  const h: Record<string, string> = { ttl: '60', ...headers };
  if (key) h.authorization = vapidHeaders(key, url, 'aes128gcm').authorization;
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body);
  if (payload !== undefined) h['content-type'] = type;
  const res = await fetch(url, { method, headers: h, ...(payload !== undefined ? { body: payload } : {}) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null };
}

const set = (urls: readonly string[], value: true | null = true) => ({ members: Object.fromEntries(urls.map((u) => [u, value])) });

/** A WebSocket user agent with `n` subscriptions (restricted to `key` when given). */
async function userAgent(server: TestServer, n = 1, key?: string) {
  const ua = await TestUserAgent.connect(server.wsUrl);
  await ua.hello();
  const subs: { channelID: string; push: string }[] = [];
  for (let i = 0; i < n; i++) {
    const channelID = randomUUID();
    const r = await ua.register(channelID, key);
    assert.equal(r.status, 200);
    subs.push({ channelID, push: r.pushEndpoint as string });
  }
  return { ua, subs };
}

describe('aggregates', () => {
  let server: TestServer;
  const uas: TestUserAgent[] = [];
  const owner = vapid();
  before(async () => {
    server = await startTestServer({ aggregateMaxMembers: 6, aggregateMaxPerKey: 2, aggregateFanoutRate: 1, aggregateFanoutBurst: 100, aggregateChunk: 2, aggregateMaxBodyBytes: 64 * 1024 });
  });
  after(async () => {
    await Promise.all(uas.map((ua) => ua.close()));
    await server.close();
  });

  test('create, list, patch, send a tickle and a batch, gone members leave, delete', async () => {
    const a = await userAgent(server, 2);
    const b = await userAgent(server, 1);
    const r = await userAgent(server, 1, owner.publicKey);
    const otherKey = vapid();
    const foreign = await userAgent(server, 1, otherKey.publicKey);
    uas.push(a.ua, b.ua, r.ua, foreign.ua);
    const members = [...a.subs, ...b.subs, ...r.subs].map((s) => s.push);
    const notOurs = ['https://push.example.com/wpush/v1/abc', `${server.url}/wpush/v1/${'A'.repeat(60)}`, foreign.subs[0]!.push, `${server.url}/m/x`];

    assert.equal((await call('POST', `${server.url}/aggregate`, null, set(members))).json.errno, 109, 'VAPID is required');
    const created = await call('POST', `${server.url}/aggregate`, owner, set([...members, ...notOurs]));
    assert.equal(created.status, 201);
    const url = created.headers.get('location')!;
    assert.match(url, new RegExp(`^${server.url}/a/[A-Za-z0-9_-]{40,}$`));
    assert.equal(created.json.members, 4);
    assert.deepEqual(created.json.refused, {
      [notOurs[0]!]: 'not a push URL of this service',
      [notOurs[1]!]: 'invalid token',
      [notOurs[2]!]: 'the subscription is restricted to another VAPID key',
      [notOurs[3]!]: 'not a push URL of this service',
    });

    // listed two a page (--aggregate-chunk), each once, as stable push URLs of the same subscriptions
    const listed: string[] = [];
    let page = await call('GET', url, owner);
    for (;;) {
      assert.equal(page.status, 200);
      assert.equal(page.json.count, 4);
      listed.push(...Object.keys(page.json.members));
      if (!page.json.next) break;
      page = await call('GET', page.json.next, owner);
    }
    assert.equal(listed.length, 4);
    assert.equal(new Set(listed).size, 4);
    assert.ok(listed.every((u) => u.startsWith(`${server.url}/wpush/`)));

    // only the owner's key may use it; a forged URL names nothing
    assert.deepEqual([(await call('GET', url, otherKey)).status, (await call('GET', url, otherKey)).json.errno], [403, 109]);
    assert.equal((await call('POST', url, otherKey)).status, 403);
    assert.equal((await call('DELETE', url, null)).status, 401);
    assert.equal((await call('GET', `${server.url}/a/${'B'.repeat(60)}`, owner)).json.errno, 102);

    // an empty body: an empty message to every member
    const tickle = await call('POST', url, owner);
    assert.equal(tickle.status, 202);
    assert.deepEqual([tickle.json.stored, tickle.json.gone, tickle.json.refused], [4, 0, 0]);
    assert.ok(Object.values(tickle.json.members).every((m) => (m as { status: number; location: string }).status === 201 && (m as { location: string }).location.startsWith(`${server.url}/m/`)));
    const got = [await a.ua.next('notification'), await a.ua.next('notification'), await b.ua.next('notification'), await r.ua.next('notification')];
    assert.ok(got.every((n) => !n.data), 'an empty message');
    assert.deepEqual(new Set(got.slice(0, 2).map((n) => n.channelID)), new Set(a.subs.map((s) => s.channelID)));
    for (const [ua, n] of [[a.ua, got[0]!], [a.ua, got[1]!], [b.ua, got[2]!], [r.ua, got[3]!]] as const) ua.ack(n.channelID as string, n.version as string);

    // one encrypted body for all cannot be: every message is encrypted for one user agent
    const single = await call('POST', url, owner, aes128gcmBody('for all'), 'application/octet-stream', { 'content-encoding': 'aes128gcm' });
    assert.deepEqual([single.status, single.json.errno], [415, 140]);

    // a batch: each entry checked as a single push would be; two URLs of one subscription are one member
    const rStable = listed.find((u) => u.includes('/wpush/v2/'))!;
    const batch = {
      messages: {
        [a.subs[0]!.push]: { encoding: 'aes128gcm', body: aes128gcmBody('to a0').toString('base64url') },
        [b.subs[0]!.push]: { encoding: 'aes128gcm', body: aes128gcmBody('to b').toString('base64url') },
        [a.subs[1]!.push]: { encoding: 'rot13', body: aes128gcmBody('bad').toString('base64url') },
        [r.subs[0]!.push]: { encoding: 'aes128gcm', body: aes128gcmBody('to r').toString('base64url') },
        [rStable]: { encoding: 'aes128gcm', body: aes128gcmBody('to r again').toString('base64url') },
        [foreign.subs[0]!.push]: { encoding: 'aes128gcm', body: aes128gcmBody('not a member').toString('base64url') },
      },
    };
    const sent = await call('POST', url, owner, batch, 'application/webpush-batch+json', { topic: 'news', urgency: 'high' });
    assert.equal(sent.status, 202);
    assert.deepEqual([sent.json.stored, sent.json.gone, sent.json.refused], [3, 0, 3]);
    assert.deepEqual(sent.json.members[a.subs[1]!.push], { result: 'refused', status: 400, errno: 110, reason: 'Content-Encoding must be aes128gcm or aesgcm' });
    assert.equal(sent.json.members[rStable].reason, 'another entry of the batch names the same subscription');
    assert.equal(sent.json.members[foreign.subs[0]!.push].reason, 'the subscription is restricted to another VAPID key');
    const toA = await a.ua.next('notification');
    assert.equal(toA.channelID, a.subs[0]!.channelID);
    assert.equal(markerOf(Buffer.from(toA.data as string, 'base64url')), 'to a0');
    assert.equal(markerOf(Buffer.from((await b.ua.next('notification')).data as string, 'base64url')), 'to b');
    assert.equal((await call('POST', url, owner, { messages: [] }, 'application/webpush-batch+json')).json.errno, 143);

    // PATCH: a merge patch of the member set; past --aggregate-max-members refused whole
    assert.deepEqual([(await call('PATCH', url, owner, set([foreign.subs[0]!.push]))).status], [415]);
    const c = await userAgent(server, 3);
    uas.push(c.ua);
    const tooMany = await call('PATCH', url, owner, set(c.subs.map((s) => s.push)), 'application/merge-patch+json');
    assert.deepEqual([tooMany.status, tooMany.json.errno], [409, 142]);
    const patched = await call('PATCH', url, owner, { members: { [c.subs[0]!.push]: true, [c.subs[1]!.push]: true, [a.subs[1]!.push]: null } }, 'application/merge-patch+json');
    assert.deepEqual([patched.status, patched.json.members], [200, 5]);
    assert.equal((await call('PATCH', url, owner, { members: null }, 'application/merge-patch+json')).json.errno, 143);

    // a member whose subscription is gone is reported and leaves the aggregate
    b.ua.send({ messageType: 'unregister', channelID: b.subs[0]!.channelID });
    await b.ua.next('unregister');
    const afterGone = await call('POST', url, owner);
    assert.deepEqual([afterGone.json.stored, afterGone.json.gone], [4, 1]);
    assert.equal(afterGone.json.members[Object.keys(afterGone.json.members).find((u) => afterGone.json.members[u].result === 'gone')!].status, 410);
    assert.equal((await call('GET', url, owner)).json.count, 4);

    const metrics = await server.metrics.text();
    assert.match(metrics, /webpushd_fanout_messages_total\{result="stored"\} 11/);
    assert.match(metrics, /webpushd_fanout_messages_total\{result="gone"\} 1/);
    assert.match(metrics, /webpushd_fanout_messages_total\{result="refused"\} 3/);
    assert.match(metrics, /webpushd_fanouts_in_progress 0/);
    assert.match(metrics, /webpushd_aggregates 1/);

    assert.equal((await call('DELETE', url, owner)).status, 204);
    assert.deepEqual([(await call('GET', url, owner)).status, (await call('GET', url, owner)).json.errno], [404, 144]);
    assert.equal((await call('POST', url, owner)).status, 404);
  });

  test('attacks: aggregates per key, members per aggregate, body size, fan-outs per key per second', async () => {
    const attacker = vapid();
    const first = await call('POST', `${server.url}/aggregate`, attacker);
    assert.equal(first.status, 201);
    assert.equal((await call('POST', `${server.url}/aggregate`, attacker)).status, 201);
    const third = await call('POST', `${server.url}/aggregate`, attacker);
    assert.deepEqual([third.status, third.json.errno], [429, 141], '--aggregate-max-per-key');
    assert.equal((await call('POST', `${server.url}/aggregate`, vapid())).status, 201, 'other keys are not held back');

    const many = await userAgent(server, 7);
    uas.push(many.ua);
    const big = await call('POST', `${server.url}/aggregate`, vapid(), set(many.subs.map((s) => s.push)));
    assert.deepEqual([big.status, big.json.errno], [409, 142], '--aggregate-max-members');

    const huge = await call('POST', `${server.url}/aggregate`, vapid(), set(Array.from({ length: 1000 }, (_, i) => `${server.url}/wpush/v1/${'x'.repeat(60)}${i}`)));
    assert.deepEqual([huge.status, huge.json.errno], [413, 104], '--aggregate-max-body');

    const limited = await startTestServer({ aggregateFanoutRate: 1, aggregateFanoutBurst: 2 });
    try {
      const key = vapid();
      const url = (await call('POST', `${limited.url}/aggregate`, key)).headers.get('location')!;
      assert.equal((await call('POST', url, key)).status, 202);
      assert.equal((await call('POST', url, key)).status, 202);
      const over = await call('POST', url, key);
      assert.deepEqual([over.status, over.json.errno, over.headers.get('retry-after')], [429, 124, '1'], '--aggregate-fanout-burst, then --aggregate-fanout-rate');
      const other = vapid();
      const otherUrl = (await call('POST', `${limited.url}/aggregate`, other)).headers.get('location')!;
      assert.equal((await call('POST', otherUrl, other)).status, 202, 'per key');
    } finally {
      await limited.close();
    }
  });
});

test('a member\'s message is an ordinary push: the per-subscription cap refuses it (429 errno 116), a Topic replaces', async () => {
  const server = await startTestServer({ maxStoredPerSubscription: 1 });
  try {
    const key = vapid();
    const ua = await TestUserAgent.connect(server.wsUrl);
    const uaid = await ua.hello();
    const channelID = randomUUID();
    const push = (await ua.register(channelID)).pushEndpoint as string;
    await ua.close();
    const url = (await call('POST', `${server.url}/aggregate`, key, set([push]))).headers.get('location')!;
    assert.equal((await call('POST', url, key, undefined, undefined, { topic: 'news' })).json.stored, 1);
    assert.equal((await call('POST', url, key, undefined, undefined, { topic: 'news' })).json.stored, 1, 'replaces the stored one: the cap is not reached');
    const capped = await call('POST', url, key);
    assert.deepEqual([capped.json.refused, Object.values(capped.json.members)[0]], [1, { result: 'refused', status: 429, errno: 116, reason: 'Too many messages waiting; retry later' }]);
    const back = await TestUserAgent.connect(server.wsUrl);
    try {
      await back.hello(uaid);
      await back.next('notification');
      await assert.rejects(back.next('notification', 300), /no notification/, 'one message: the second replaced the first');
    } finally {
      await back.close();
    }
  } finally {
    await server.close();
  }
});

test('members are listed and sent to by their stable push URL, kept from when they were added; after a secret rotation, the new secret\'s', { skip: skipOnRedis('rotates the secret file') }, async () => {
  const server = await startTestServer();
  const key = vapid();
  const { ua, subs } = await userAgent(server, 1);
  const restricted = await ua.register(randomUUID(), key.publicKey);
  try {
    const url = (await call('POST', `${server.url}/aggregate`, key, set([subs[0]!.push, restricted.pushEndpoint as string]))).headers.get('location')!;
    const listed = async () => Object.keys((await call('GET', url, key)).json.members).sort();
    const tickled = async () => {
      const sent = await call('POST', url, key);
      for (let i = 0; i < 2; i++) {
        const n = await ua.next('notification');
        ua.ack(n.channelID as string, n.version as string);
      }
      return Object.keys(sent.json.members).sort();
    };
    const before = await listed();
    assert.deepEqual(before.map((u) => u.split('/')[4]), ['v1', 'v2']);
    assert.deepEqual(await tickled(), before, 'a send names each member by the URL it is listed by');
    rotateSecrets(server.dataDir);
    assert.ok(server.reload());
    const after = await listed();
    assert.equal(after.filter((u) => before.includes(u)).length, 0, 'sealed by the new secret');
    assert.deepEqual(await tickled(), after);
    for (const push of after) assert.equal((await call('POST', push, key)).status, 201, 'each names its subscription');
  } finally {
    await ua.close();
    await server.close();
  }
});

test('an aggregate unused for --aggregate-expiry-seconds is gone, and the sweep deletes it', async () => {
  const server = await startTestServer({ aggregateExpirySeconds: 1 });
  try {
    const key = vapid();
    const used = (await call('POST', `${server.url}/aggregate`, key)).headers.get('location')!;
    const idle = (await call('POST', `${server.url}/aggregate`, key)).headers.get('location')!;
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal((await call('POST', used, key)).status, 202, 'a send is a use');
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal((await call('GET', used, key)).status, 200);
    assert.deepEqual((await call('GET', idle, key)).json.errno, 144);
    await server.sweep();
    assert.match(await server.metrics.text(), /webpushd_aggregates 1/);
    if (!onRedis) assert.equal(statSync(join(server.dataDir, 'aggregates.db')).mode & 0o777, 0o600, 'a file of the data dir: 0600');
  } finally {
    await server.close();
  }
});

test('a fan-out to 3,000 members is written in chunks: a push sent meanwhile is answered before it ends; the dashboard shows it in progress', async () => {
  const server = await startTestServer({ aggregateMaxMembers: 5000, aggregateChunk: 100, adminPort: 0 });
  const uas: TestUserAgent[] = [];
  try {
    const key = vapid();
    // 3 user agents of 1,000 subscriptions (--max-channels), registered without waiting for each answer
    const urls: string[] = [];
    for (let u = 0; u < 3; u++) {
      const ua = await TestUserAgent.connect(server.wsUrl);
      uas.push(ua);
      await ua.hello();
      for (let i = 0; i < 1000; i++) ua.send({ messageType: 'register', channelID: randomUUID() });
      for (let i = 0; i < 1000; i++) urls.push((await ua.next('register')).pushEndpoint as string);
    }
    const url = (await call('POST', `${server.url}/aggregate`, key)).headers.get('location')!;
    for (let i = 0; i < urls.length; i += 1000) {
      assert.equal((await call('PATCH', url, key, set(urls.slice(i, i + 1000)), 'application/merge-patch+json')).status, 200);
    }
    const bystander = await userAgent(server, 1);
    uas.push(bystander.ua);
    let fanoutDone = 0;
    const fanout = call('POST', url, key).then((r) => {
      fanoutDone = Date.now();
      return r;
    });
    await until(() => server.metrics.text().then((t) => /webpushd_fanouts_in_progress 1/.test(t)), 'the fan-out started');
    // the dashboard shows it
    const stats = (await (await fetch(`${server.adminUrl}/api/stats`)).json()) as { fanoutsInProgress: number; aggregates: number };
    assert.deepEqual([stats.fanoutsInProgress, stats.aggregates], [1, 1]);
    const push = await fetch(bystander.subs[0]!.push, { method: 'POST', headers: { ttl: '60' } });
    const pushDone = Date.now();
    assert.equal(push.status, 201);
    const r = await fanout;
    assert.equal(r.json.stored, 3000);
    assert.ok(pushDone < fanoutDone, 'the single push was answered while the fan-out was being written');
    assert.equal(((await (await fetch(`${server.adminUrl}/api/stats`)).json()) as { fanoutsInProgress: number }).fanoutsInProgress, 0);
    await bystander.ua.next('notification');
    for (const ua of uas.slice(0, 3)) await until(() => ua.pending().filter((f) => f.messageType === 'notification').length === 1000, 'every member got its message');
  } finally {
    await Promise.all(uas.map((ua) => ua.close()));
    await server.close();
  }
});
