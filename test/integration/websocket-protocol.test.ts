// The user-agent side of the WebSocket push protocol (the one Firefox speaks), end to end
// against an in-process server: every client message type, every server frame, every error.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import WebSocket from 'ws';
import type { Config } from '../../src/config.ts';
import { generateVapidKeys, signVapidToken, vapidAuthorization } from '../../src/vapid/sign.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

type Frame = Record<string, unknown>;

const HEX32 = /^[0-9a-f]{32}$/;
const Close = { protocolError: 1002, unsupportedData: 1003, abnormal: 1006, tooBig: 1009, backoff: 4774 } as const;

/** Every WebSocket opened by a test; the suite's after hook ends those still open. */
const sockets = new Set<WebSocket>();

/** One server for the enclosing describe block, closed (and its data dir removed) after it. */
function useServer(overrides: Partial<Config> = {}): () => TestServer {
  let server: TestServer | undefined;
  before(async () => {
    server = await startTestServer(overrides);
  });
  after(async () => {
    for (const ws of sockets) ws.terminate();
    sockets.clear();
    if (!server) return;
    await server.close();
    rmSync(server.dataDir, { recursive: true, force: true });
  });
  return () => {
    assert.ok(server, 'server not started');
    return server;
  };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await delay(20);
  }
}

async function connect(s: TestServer, protocol = 'push-notification'): Promise<TestUserAgent> {
  const ua = await TestUserAgent.connect(s.wsUrl, protocol);
  sockets.add(ua.ws);
  return ua;
}

async function helloUa(s: TestServer, uaid?: string): Promise<{ ua: TestUserAgent; uaid: string }> {
  const ua = await connect(s);
  return { ua, uaid: await ua.hello(uaid) };
}

interface Subscribed {
  ua: TestUserAgent;
  uaid: string;
  channelID: string;
  endpoint: string;
}

/** A connected user agent with one subscription. */
async function subscribed(s: TestServer): Promise<Subscribed> {
  const { ua, uaid } = await helloUa(s);
  const channelID = randomUUID();
  const reply = await ua.register(channelID);
  assert.equal(reply.status, 200);
  return { ua, uaid, channelID, endpoint: reply.pushEndpoint as string };
}

async function expectClose(ua: TestUserAgent, code: number, ms = 3000): Promise<void> {
  const closed = await within(ua.closed, ms, `close ${code}`);
  assert.equal(closed.code, code, `closed with ${closed.code} (${closed.reason}), expected ${code}`);
}

/** Nothing arrives for `ms`. */
async function quiet(ua: TestUserAgent, ms = 200): Promise<void> {
  await delay(ms);
  assert.deepEqual(ua.pending(), []);
}

async function ping(ua: TestUserAgent): Promise<void> {
  ua.send({});
  assert.deepEqual(await ua.next(undefined, 2000), {});
  assert.equal(ua.ws.readyState, WebSocket.OPEN);
}

/** A structurally valid aes128gcm body whose record ends with `marker` (salt, rs 4096, keyid). */
function aes128gcmBody(marker = 'payload'): Buffer {
  const rs = Buffer.alloc(4);
  rs.writeUInt32BE(4096);
  const key = Buffer.concat([Buffer.of(0x04), randomBytes(64)]);
  return Buffer.concat([randomBytes(16), rs, Buffer.of(65), key, Buffer.from(marker.padEnd(17, '.'))]);
}

const markerOf = (n: Frame): string =>
  Buffer.from(n.data as string, 'base64url').subarray(86).toString().replace(/\.+$/, '');

interface PushOptions {
  ttl?: number;
  body?: Buffer;
  headers?: Record<string, string>;
}

/** POSTs to a push endpoint; a body is sent as aes128gcm unless headers say otherwise. */
async function push(endpoint: string, { ttl = 60, body, headers = {} }: PushOptions = {}): Promise<number> {
  const h: Record<string, string> = { ttl: String(ttl) };
  if (body && body.length > 0) h['content-encoding'] = 'aes128gcm';
  const res = await fetch(endpoint, { method: 'POST', headers: { ...h, ...headers }, body: body ?? null });
  await res.arrayBuffer();
  return res.status;
}

/** Pushes a marked message and expects 201. */
async function pushMarked(endpoint: string, marker: string, opts: PushOptions = {}): Promise<void> {
  assert.equal(await push(endpoint, { body: aes128gcmBody(marker), ...opts }), 201);
}

async function notifications(ua: TestUserAgent, n: number): Promise<Frame[]> {
  const out: Frame[] = [];
  for (let i = 0; i < n; i++) out.push(await ua.next('notification', 3000));
  return out;
}

function ackAll(ua: TestUserAgent, ns: Frame[]): void {
  ua.send({ messageType: 'ack', updates: ns.map((n) => ({ channelID: n.channelID, version: n.version, code: 100 })) });
}

const commonPrefix = (a: string, b: string): number => {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return i;
};

const tokenOf = (endpoint: string): string => endpoint.slice(endpoint.lastIndexOf('/') + 1);

describe('hello', () => {
  const server = useServer();

  it('issues a new uaid with exactly the reply Firefox expects', async () => {
    const ua = await connect(server());
    ua.send({ messageType: 'hello', use_webpush: true, broadcasts: {} });
    const reply = await ua.next();
    assert.match(reply.uaid as string, HEX32);
    assert.deepEqual(reply, { messageType: 'hello', uaid: reply.uaid, status: 200, use_webpush: true, broadcasts: {} });
    const other = await helloUa(server());
    assert.notEqual(other.uaid, reply.uaid);
  });

  it('gives a known uaid (one with a subscription) back, with its subscriptions', async () => {
    const first = await subscribed(server());
    await first.ua.close();
    const { ua, uaid } = await helloUa(server(), first.uaid);
    assert.equal(uaid, first.uaid);
    await pushMarked(first.endpoint, 'still-subscribed');
    const n = await ua.next('notification');
    assert.equal(n.channelID, first.channelID);
    assert.equal(markerOf(n), 'still-subscribed');
  });

  for (const bad of ['nope', 123, '', 'x'.repeat(32), { uaid: 'a' }]) {
    it(`answers a malformed uaid (${JSON.stringify(bad)}) with a fresh one`, async () => {
      const ua = await connect(server());
      ua.send({ messageType: 'hello', use_webpush: true, uaid: bad, broadcasts: {} });
      const reply = await ua.next('hello');
      assert.equal(reply.status, 200);
      assert.match(reply.uaid as string, HEX32);
      assert.notEqual(reply.uaid, bad);
    });
  }

  it('answers an unknown well-formed uaid with a fresh one', async () => {
    const unknown = randomBytes(16).toString('hex');
    const { uaid } = await helloUa(server(), unknown);
    assert.match(uaid, HEX32);
    assert.notEqual(uaid, unknown);
  });

  it('closes with 1002 on a second hello', async () => {
    const { ua, uaid } = await helloUa(server());
    ua.send({ messageType: 'hello', use_webpush: true, uaid, broadcasts: {} });
    await expectClose(ua, Close.protocolError);
  });

  const beforeHello: [string, Frame][] = [
    ['register', { messageType: 'register', channelID: randomUUID() }],
    ['ping', {}],
    ['ack', { messageType: 'ack', updates: [] }],
    ['broadcast_subscribe', { messageType: 'broadcast_subscribe', broadcasts: {} }],
  ];
  for (const [name, frame] of beforeHello) {
    it(`closes with 1002 on ${name} before hello`, async () => {
      const ua = await connect(server());
      ua.send(frame);
      await expectClose(ua, Close.protocolError);
      assert.deepEqual(ua.pending(), []);
    });
  }
});

describe('hello: handshake timeout', () => {
  const server = useServer({ handshakeTimeoutMs: 200 });

  it('closes a connection that sends no hello in time with 1002, not one that did', async () => {
    const started = Date.now();
    const silent = await connect(server());
    const { ua: greeted } = await helloUa(server());
    // opened last, so its deadline is the latest: once it is closed, the greeted one's has passed
    const last = await connect(server());
    // The deadline wheel ticks each second, not in phase with whole seconds: up to 2 s late. The
    // bound leaves room for a slow machine and stays under the 5 s default, so the configured
    // 200 ms is the timeout that fired.
    await expectClose(silent, Close.protocolError, 4500);
    assert.ok(Date.now() - started >= 200, 'not before the timeout');
    await expectClose(last, Close.protocolError, 4500);
    await ping(greeted);
  });
});

describe('register', () => {
  const server = useServer();

  it('echoes the channelID with status 200 and a v1 push endpoint that delivers', async () => {
    const { ua } = await helloUa(server());
    const channelID = randomUUID();
    ua.send({ messageType: 'register', channelID });
    const reply = await ua.next();
    assert.deepEqual(Object.keys(reply).sort(), ['channelID', 'messageType', 'pushEndpoint', 'status']);
    assert.equal(reply.messageType, 'register');
    assert.equal(reply.channelID, channelID);
    assert.equal(reply.status, 200);
    const endpoint = reply.pushEndpoint as string;
    assert.ok(endpoint.startsWith(`${server().url}/wpush/v1/`), endpoint);
    assert.ok(tokenOf(endpoint).length > 0);
    assert.equal(await push(endpoint), 201);
    assert.equal((await ua.next('notification')).channelID, channelID);
  });

  it('gives a v2 endpoint, restricted to the key, for a VAPID key (plain and =-padded)', async () => {
    const keys = generateVapidKeys();
    assert.equal(keys.publicKey.length, 87);
    const { ua } = await helloUa(server());
    const aud = new URL(server().url).origin;
    for (const key of [keys.publicKey, `${keys.publicKey}=`]) {
      const channelID = randomUUID();
      const reply = await ua.register(channelID, key);
      assert.equal(reply.status, 200, `key ${key}`);
      assert.equal(reply.channelID, channelID);
      const endpoint = reply.pushEndpoint as string;
      assert.ok(endpoint.startsWith(`${server().url}/wpush/v2/`), endpoint);
      // bound to that key: no VAPID is refused, VAPID with the key is delivered
      assert.equal(await push(endpoint), 401);
      const token = signVapidToken({ aud, exp: Math.floor(Date.now() / 1000) + 3600, sub: 'mailto:t@example.com' }, keys);
      assert.equal(await push(endpoint, { headers: { authorization: vapidAuthorization(token, keys.publicKey) } }), 201);
      assert.equal((await ua.next('notification')).channelID, channelID);
    }
  });

  const onCurveX = Buffer.alloc(32);
  onCurveX[31] = 1;
  const badKeys: [string, string][] = [
    ['not base64url', 'BNot+base64/url!'],
    ['wrong length', Buffer.concat([Buffer.of(4), randomBytes(40)]).toString('base64url')],
    ['compressed point', Buffer.concat([Buffer.of(2), randomBytes(32)]).toString('base64url')],
    ['not on the curve', Buffer.concat([Buffer.of(4), onCurveX, onCurveX]).toString('base64url')],
    ['empty', ''],
  ];
  for (const [name, key] of badKeys) {
    it(`answers a bad key (${name}) with 400 and keeps the connection`, async () => {
      const { ua } = await helloUa(server());
      const channelID = randomUUID();
      ua.send({ messageType: 'register', channelID, key });
      assert.deepEqual(await ua.next(), { messageType: 'register', channelID, status: 400 });
      const later = await ua.register(randomUUID());
      assert.equal(later.status, 200);
      assert.ok((later.pushEndpoint as string).startsWith(`${server().url}/wpush/v1/`));
    });
  }

  const badChannels: [string, unknown][] = [
    ['upper-case', randomUUID().toUpperCase()],
    ['no dashes', randomUUID().replaceAll('-', '')],
    ['missing', undefined],
    ['a number', 12345],
    ['not a UUID', 'channel-1'],
  ];
  for (const [name, channelID] of badChannels) {
    it(`closes with 1002 on a channelID that is ${name}`, async () => {
      const { ua } = await helloUa(server());
      ua.send({ messageType: 'register', ...(channelID === undefined ? {} : { channelID }) });
      await expectClose(ua, Close.protocolError);
      assert.deepEqual(ua.pending(), []);
    });
  }

  it('hands out unlinkable endpoints, also for the same channel registered twice', async () => {
    const { ua } = await helloUa(server());
    const a = await ua.register(randomUUID());
    const b = await ua.register(randomUUID());
    const [ta, tb] = [tokenOf(a.pushEndpoint as string), tokenOf(b.pushEndpoint as string)];
    assert.notEqual(ta, tb);
    // a deterministic encoding of (uaid, channel) would share the uaid's bytes
    assert.ok(commonPrefix(ta, tb) < 8, `${ta} / ${tb}`);

    const channelID = randomUUID();
    const first = (await ua.register(channelID)).pushEndpoint as string;
    const second = (await ua.register(channelID)).pushEndpoint as string;
    assert.notEqual(first, second);
    assert.ok(commonPrefix(tokenOf(first), tokenOf(second)) < 8);
    for (const [endpoint, marker] of [
      [first, 'via-first'],
      [second, 'via-second'],
    ] as const) {
      await pushMarked(endpoint, marker);
      const n = await ua.next('notification');
      assert.equal(n.channelID, channelID);
      assert.equal(markerOf(n), marker);
    }
  });
});

describe('unregister', () => {
  const server = useServer();

  it('answers {messageType, channelID, status: 200}; the endpoint is then gone (410)', async () => {
    const { ua, channelID, endpoint } = await subscribed(server());
    const other = await ua.register(randomUUID());
    ua.send({ messageType: 'unregister', channelID, code: 200 });
    assert.deepEqual(await ua.next(), { messageType: 'unregister', channelID, status: 200 });
    assert.equal(await push(endpoint), 410);
    assert.equal(await push(endpoint, { ttl: 0 }), 410);
    // only that subscription is gone
    assert.equal(await push(other.pushEndpoint as string), 201);
    assert.equal((await ua.next('notification')).channelID, other.channelID);
    await quiet(ua);
  });

  it("drops the channel's stored messages, not the other channels'", async () => {
    const { ua, uaid, channelID, endpoint } = await subscribed(server());
    const kept = await ua.register(randomUUID());
    await ua.close();
    await pushMarked(endpoint, 'dropped-1');
    await pushMarked(kept.pushEndpoint as string, 'kept');
    await pushMarked(endpoint, 'dropped-2');
    assert.equal((await server().store.pendingMessages(Buffer.from(uaid, 'hex'), 0, 100)).length, 3);

    const again = (await helloUa(server(), uaid)).ua;
    assert.deepEqual((await notifications(again, 3)).map(markerOf), ['dropped-1', 'kept', 'dropped-2']);
    again.send({ messageType: 'unregister', channelID });
    assert.deepEqual(await again.next('unregister'), { messageType: 'unregister', channelID, status: 200 });
    const left = await server().store.pendingMessages(Buffer.from(uaid, 'hex'), 0, 100);
    assert.deepEqual(left.map((m) => m.body.subarray(86).toString().replace(/\.+$/, '')), ['kept']);
    await again.close();

    const third = (await helloUa(server(), uaid)).ua;
    const n = await third.next('notification');
    assert.equal(n.channelID, kept.channelID);
    assert.equal(markerOf(n), 'kept');
    await quiet(third);
  });
});

describe('notification delivery', () => {
  const server = useServer();

  it('sends an aes128gcm body as unpadded base64url with headers {encoding}', async () => {
    const { ua, channelID, endpoint } = await subscribed(server());
    const body = aes128gcmBody('x'.repeat(40));
    assert.equal(
      await push(endpoint, { body, headers: { topic: 'some-topic', urgency: 'high', 'content-encoding': 'aes128gcm' } }),
      201,
    );
    const n = await ua.next('notification');
    assert.deepEqual(Object.keys(n).sort(), ['channelID', 'data', 'headers', 'messageType', 'version']);
    assert.equal(n.channelID, channelID);
    assert.equal(typeof n.version, 'string');
    assert.ok((n.version as string).length > 0);
    assert.equal(n.data, body.toString('base64url'));
    assert.doesNotMatch(n.data as string, /[=+/]/);
    assert.deepEqual(Buffer.from(n.data as string, 'base64url'), body);
    assert.deepEqual(n.headers, { encoding: 'aes128gcm' });
  });

  it('sends aesgcm headers as encryption / crypto_key without quotes or = padding', async () => {
    const { ua, channelID, endpoint } = await subscribed(server());
    const salt = randomBytes(16).toString('base64url');
    const dh = Buffer.concat([Buffer.of(4), randomBytes(64)]).toString('base64url');
    const body = randomBytes(64);
    const status = await push(endpoint, {
      body,
      headers: { 'content-encoding': 'aesgcm', encryption: `salt="${salt}=="`, 'crypto-key': `dh=${dh}=` },
    });
    assert.equal(status, 201);
    const n = await ua.next('notification');
    assert.deepEqual(n, {
      messageType: 'notification',
      channelID,
      version: n.version,
      data: body.toString('base64url'),
      headers: { encoding: 'aesgcm', encryption: `salt=${salt}`, crypto_key: `dh=${dh}` },
    });
    assert.equal(typeof n.version, 'string');
  });

  it('sends an empty message without data or headers (and never ttl, topic, urgency)', async () => {
    const { ua, channelID, endpoint } = await subscribed(server());
    assert.equal(await push(endpoint, { ttl: 120, headers: { topic: 'empty', urgency: 'low' } }), 201);
    const n = await ua.next('notification');
    assert.deepEqual(n, { messageType: 'notification', channelID, version: n.version });
    assert.equal(typeof n.version, 'string');
    assert.ok((n.version as string).length > 0);
  });

  it('gives each message its own version', async () => {
    const { ua, endpoint } = await subscribed(server());
    for (let i = 0; i < 3; i++) assert.equal(await push(endpoint), 201);
    const versions = (await notifications(ua, 3)).map((n) => n.version);
    assert.equal(new Set(versions).size, 3);
  });
});

describe('ack and stored delivery', () => {
  const server = useServer({ deliveryBatch: 3 });

  it('does not resend acked messages; resends unacked ones in order on reconnect', async () => {
    const { ua, uaid, endpoint } = await subscribed(server());
    for (const m of ['a', 'b', 'c']) await pushMarked(endpoint, m);
    const live = await notifications(ua, 3);
    assert.deepEqual(live.map(markerOf), ['a', 'b', 'c']);
    ua.ack(live[1]!.channelID as string, live[1]!.version as string);
    // an acknowledgement not yet committed when the user agent comes back may be sent again (at
    // least once): this is about one that was
    const stored = () => server().store.pendingMessages(Buffer.from(uaid, 'hex'), 0, 10);
    await within((async () => {
      while ((await stored()).length !== 2) await delay(20);
    })(), 10_000, 'the acknowledgement stored');
    await ua.close();

    const again = (await helloUa(server(), uaid)).ua;
    const resent = await notifications(again, 2);
    assert.deepEqual(resent.map(markerOf), ['a', 'c']);
    assert.deepEqual(resent.map((n) => n.version), [live[0]!.version, live[2]!.version]);
    ackAll(again, resent);
    await quiet(again);
    await again.close();

    const third = (await helloUa(server(), uaid)).ua;
    await quiet(third);
  });

  it('sends messages stored while offline right after hello, in the order sent', async () => {
    const { ua, uaid, endpoint } = await subscribed(server());
    await ua.close();
    for (const m of ['first', 'second', 'third']) await pushMarked(endpoint, m);
    const again = await connect(server());
    again.send({ messageType: 'hello', use_webpush: true, uaid, broadcasts: {} });
    const frames: Frame[] = [];
    for (let i = 0; i < 4; i++) frames.push(await again.next());
    assert.equal(frames[0]!.messageType, 'hello');
    assert.equal(frames[0]!.uaid, uaid);
    assert.deepEqual(frames.slice(1).map((f) => f.messageType), ['notification', 'notification', 'notification']);
    assert.deepEqual(frames.slice(1).map(markerOf), ['first', 'second', 'third']);
    ackAll(again, frames.slice(1));
  });

  it('sends a backlog in batches, the next one only when the previous is fully acked', async () => {
    const { ua, uaid, endpoint } = await subscribed(server());
    await ua.close();
    for (let i = 1; i <= 7; i++) await pushMarked(endpoint, `m${i}`);
    const again = (await helloUa(server(), uaid)).ua;

    const batch1 = await notifications(again, 3);
    assert.deepEqual(batch1.map(markerOf), ['m1', 'm2', 'm3']);
    await quiet(again);
    ackAll(again, batch1.slice(0, 2));
    await quiet(again);
    ackAll(again, batch1.slice(2));

    const batch2 = await notifications(again, 3);
    assert.deepEqual(batch2.map(markerOf), ['m4', 'm5', 'm6']);
    await quiet(again);
    for (const n of batch2) again.ack(n.channelID as string, n.version as string);

    const batch3 = await notifications(again, 1);
    assert.deepEqual(batch3.map(markerOf), ['m7']);
    ackAll(again, batch3);
    await quiet(again);

    // caught up: new messages go out at once
    await pushMarked(endpoint, 'live');
    assert.equal(markerOf(await again.next('notification', 2000)), 'live');
  });

  it('does not let live messages overtake a pending backlog', async () => {
    const { ua, uaid, endpoint } = await subscribed(server());
    await ua.close();
    for (let i = 1; i <= 5; i++) await pushMarked(endpoint, `s${i}`);
    const again = (await helloUa(server(), uaid)).ua;

    const batch1 = await notifications(again, 3);
    assert.deepEqual(batch1.map(markerOf), ['s1', 's2', 's3']);
    await pushMarked(endpoint, 'live1');
    await quiet(again);
    ackAll(again, batch1);

    const batch2 = await notifications(again, 3);
    assert.deepEqual(batch2.map(markerOf), ['s4', 's5', 'live1']);
    await pushMarked(endpoint, 'live2');
    await quiet(again);
    ackAll(again, batch2);
    assert.deepEqual((await notifications(again, 1)).map(markerOf), ['live2']);
  });
});

describe('TTL 0 and topics', () => {
  const server = useServer();

  it('delivers a TTL 0 message to a connected user agent (201)', async () => {
    const { ua, channelID, endpoint } = await subscribed(server());
    await pushMarked(endpoint, 'ephemeral', { ttl: 0 });
    const n = await ua.next('notification');
    assert.equal(n.channelID, channelID);
    assert.equal(markerOf(n), 'ephemeral');
    assert.equal(typeof n.version, 'string');
    assert.equal('ttl' in n, false);
  });

  it('does not store a TTL 0 message for an offline user agent (201)', async () => {
    const { ua, uaid, endpoint } = await subscribed(server());
    await ua.close();
    await pushMarked(endpoint, 'lost', { ttl: 0 });
    await pushMarked(endpoint, 'stored', { ttl: 60 });
    const again = (await helloUa(server(), uaid)).ua;
    assert.equal(markerOf(await again.next('notification')), 'stored');
    await quiet(again);
  });

  it('keeps only the newest message of a topic for an offline user agent', async () => {
    const { ua, uaid, endpoint } = await subscribed(server());
    await ua.close();
    await pushMarked(endpoint, 'old', { headers: { topic: 'news' } });
    await pushMarked(endpoint, 'other', { headers: { topic: 'sports' } });
    await pushMarked(endpoint, 'new', { headers: { topic: 'news' } });
    const again = (await helloUa(server(), uaid)).ua;
    const got = await notifications(again, 2);
    assert.deepEqual(got.map(markerOf), ['other', 'new']);
    for (const n of got) assert.equal('topic' in n, false);
    await quiet(again);
  });
});

describe('versions', () => {
  // A fresh server of its own: message ids and TTL 0 counters start from the beginning.
  const server = useServer();

  it('never gives a TTL 0 and a stored message the same version; acking one keeps the other', async () => {
    const s = server();
    // Another user agent's messages use up ids 1..504 (one row kept, by topic replacement).
    const sub = { uaid: randomBytes(16), chid: randomBytes(16), keyHash: null };
    await s.store.putSubscription(sub);
    const burns: Promise<unknown>[] = [];
    for (let i = 0; i < 504; i++) {
      const message = { ...sub, ttl: 600, topic: 'burn', urgency: 'normal' as const, headers: null };
      burns.push(s.store.saveMessage({ ...message, body: Buffer.alloc(0), createdAt: Date.now() }));
    }
    await Promise.all(burns);

    const { ua, uaid, endpoint } = await subscribed(s);
    const stored: Frame[] = [];
    for (let i = 0; i < 40; i++) {
      await pushMarked(endpoint, `stored-${i}`);
      stored.push(await ua.next('notification'));
    }
    const ephemeral: Frame[] = [];
    for (let i = 0; i < 40; i++) {
      await pushMarked(endpoint, `ephemeral-${i}`, { ttl: 0 });
      ephemeral.push(await ua.next('notification'));
    }
    const versions = [...stored, ...ephemeral].map((n) => n.version);
    for (const v of versions) assert.equal(typeof v, 'string');
    assert.equal(new Set(versions).size, versions.length, 'a version was handed out twice');

    // acking the TTL 0 messages must not remove the unacked stored ones
    ackAll(ua, ephemeral);
    await quiet(ua, 100);
    await ua.close();
    const again = (await helloUa(s, uaid)).ua;
    const resent = await notifications(again, 40);
    assert.deepEqual(resent.map(markerOf), stored.map(markerOf));
    assert.deepEqual(resent.map((n) => n.version), stored.map((n) => n.version));
    await quiet(again, 100);
  });
});

describe('nack and ping', () => {
  const server = useServer({ minClientPingIntervalMs: 100 });

  it('accepts a nack without closing', async () => {
    const { ua, channelID, endpoint } = await subscribed(server());
    assert.equal(await push(endpoint), 201);
    const n = await ua.next('notification');
    assert.equal(n.channelID, channelID);
    ua.send({ messageType: 'nack', version: n.version, code: 301 });
    await ping(ua);
  });

  it('answers {} with {} when pings are far enough apart', async () => {
    const { ua } = await helloUa(server());
    await ping(ua);
    await delay(150);
    await ping(ua);
    ua.send({ messageType: 'ping' });
    // too soon after the last one: excessive
    await expectClose(ua, Close.backoff);
  });

  it('closes with 4774 on two quick pings', async () => {
    const { ua } = await helloUa(server());
    ua.send({});
    ua.send({});
    assert.deepEqual(await ua.next(undefined, 2000), {});
    await expectClose(ua, Close.backoff);
  });
});

describe('broadcasts', () => {
  const server = useServer({ broadcasts: new Map([['remote-settings/monitor_changes', 'v2']]) });

  it('tells a user agent with an old version the current one in the hello reply', async () => {
    const ua = await connect(server());
    ua.send({ messageType: 'hello', use_webpush: true, broadcasts: { 'remote-settings/monitor_changes': 'v1' } });
    const reply = await ua.next('hello');
    assert.deepEqual(reply.broadcasts, { 'remote-settings/monitor_changes': 'v2' });
  });

  it('tells a user agent with the current version nothing', async () => {
    const ua = await connect(server());
    ua.send({ messageType: 'hello', use_webpush: true, broadcasts: { 'remote-settings/monitor_changes': 'v2' } });
    assert.deepEqual((await ua.next('hello')).broadcasts, {});
  });

  it('answers broadcast_subscribe with current versions and errors for unknown ids', async () => {
    const { ua } = await helloUa(server());
    ua.send({
      messageType: 'broadcast_subscribe',
      broadcasts: { 'remote-settings/monitor_changes': 'v1', unknown: 'v9' },
    });
    assert.deepEqual(await ua.next(), {
      messageType: 'broadcast',
      broadcasts: { 'remote-settings/monitor_changes': 'v2', errors: { unknown: 'Broadcast not found' } },
    });
    await ping(ua);
  });
});

describe('ghosting', () => {
  const server = useServer();

  it('lets a second connection with the same uaid take over: the first is closed with 4774', async () => {
    const first = await subscribed(server());
    const { ua: second, uaid } = await helloUa(server(), first.uaid);
    assert.equal(uaid, first.uaid);
    await expectClose(first.ua, Close.backoff);
    await pushMarked(first.endpoint, 'to-second');
    const n = await second.next('notification');
    assert.equal(n.channelID, first.channelID);
    assert.equal(markerOf(n), 'to-second');
    assert.deepEqual(first.ua.pending(), []);
  });
});

describe('server keepalive', () => {
  const server = useServer({ pingIntervalMs: 300, pongTimeoutMs: 300 });

  it('pings every connection and drops one that does not answer with a pong', async () => {
    const { ua: good } = await helloUa(server());
    let goodPings = 0;
    good.ws.on('ping', () => goodPings++);

    const mute = new WebSocket(server().wsUrl, ['push-notification'], { autoPong: false });
    sockets.add(mute);
    let mutePings = 0;
    mute.on('ping', () => mutePings++);
    mute.on('error', () => {});
    const muteClosed = new Promise<number>((resolve) => mute.on('close', (code) => resolve(code)));
    const muteHello = new Promise<Frame>((resolve) => mute.once('message', (d) => resolve(JSON.parse(String(d)) as Frame)));
    await new Promise<void>((resolve, reject) => {
      mute.once('open', () => resolve());
      mute.once('error', reject);
    });
    mute.send(JSON.stringify({ messageType: 'hello', use_webpush: true, broadcasts: {} }));
    assert.equal((await within(muteHello, 2000, 'hello reply')).messageType, 'hello');

    // ping after 300 ms, drop 300 ms later; each deadline may run up to 2 s late (1 s wheel ticks)
    const code = await within(muteClosed, 6000, 'dropping the mute connection');
    assert.ok(mutePings >= 1, 'the mute connection was never pinged');
    assert.equal(code, Close.abnormal, 'dropped without a close handshake');
    await until(() => goodPings >= 2, 5000, 'a second ping to the answering connection');
    await ping(good);
  });
});

describe('malformed frames', () => {
  const server = useServer({ minClientPingIntervalMs: 0 });
  let bystander: Subscribed;

  before(async () => {
    bystander = await subscribed(server());
  });

  /** The bystander, connected all along, still answers a ping and gets a notification. */
  async function bystanderWorks(): Promise<void> {
    await ping(bystander.ua);
    await pushMarked(bystander.endpoint, 'bystander');
    const n = await bystander.ua.next('notification');
    assert.equal(markerOf(n), 'bystander');
    ackAll(bystander.ua, [n]);
  }

  const cases: { name: string; hello: boolean; send: (ws: WebSocket) => void; code: number }[] = [
    { name: 'bad JSON', hello: true, send: (ws) => ws.send('{"messageType":'), code: Close.protocolError },
    { name: 'a JSON array', hello: true, send: (ws) => ws.send('[]'), code: Close.protocolError },
    { name: 'a JSON string', hello: true, send: (ws) => ws.send('"hello"'), code: Close.protocolError },
    { name: 'JSON null', hello: true, send: (ws) => ws.send('null'), code: Close.protocolError },
    {
      name: 'a number messageType',
      hello: true,
      send: (ws) => ws.send(JSON.stringify({ messageType: 7 })),
      code: Close.protocolError,
    },
    {
      name: 'no messageType',
      hello: true,
      send: (ws) => ws.send(JSON.stringify({ channelID: randomUUID() })),
      code: Close.protocolError,
    },
    {
      name: 'ack updates that are not an array',
      hello: true,
      send: (ws) => ws.send(JSON.stringify({ messageType: 'ack', updates: { channelID: randomUUID(), version: '1' } })),
      code: Close.protocolError,
    },
    {
      name: 'an ack update without channelID',
      hello: true,
      send: (ws) => ws.send(JSON.stringify({ messageType: 'ack', updates: [{ version: '1', code: 100 }] })),
      code: Close.protocolError,
    },
    {
      name: 'broadcast_subscribe broadcasts that are not an object',
      hello: true,
      send: (ws) => ws.send(JSON.stringify({ messageType: 'broadcast_subscribe', broadcasts: 'x' })),
      code: Close.protocolError,
    },
    {
      name: 'hello broadcasts that are not an object',
      hello: false,
      send: (ws) => ws.send(JSON.stringify({ messageType: 'hello', use_webpush: true, broadcasts: ['a'] })),
      code: Close.protocolError,
    },
    {
      name: 'an unknown messageType',
      hello: true,
      send: (ws) => ws.send(JSON.stringify({ messageType: 'subscribe', channelID: randomUUID() })),
      code: Close.protocolError,
    },
    { name: 'a binary frame', hello: true, send: (ws) => ws.send(Buffer.from('{}')), code: Close.unsupportedData },
    {
      name: 'a frame bigger than 64 KiB',
      hello: true,
      send: (ws) => ws.send(JSON.stringify({ messageType: 'ping', pad: 'x'.repeat(64 * 1024) })),
      code: Close.tooBig,
    },
  ];
  for (const c of cases) {
    it(`closes only the offending connection on ${c.name} (${c.code})`, async () => {
      const offender = await connect(server());
      if (c.hello) await offender.hello();
      c.send(offender.ws);
      await expectClose(offender, c.code);
      assert.deepEqual(offender.pending(), []);
      await bystanderWorks();
    });
  }
});

describe('subprotocol', () => {
  const server = useServer();

  it('echoes push-notification when offered', async () => {
    const ua = await connect(server());
    assert.equal(ua.ws.protocol, 'push-notification');
    assert.match(await ua.hello(), HEX32);
  });

  it('accepts a client that offers no subprotocol', async () => {
    const ua = await connect(server(), '');
    assert.equal(ua.ws.protocol, '');
    assert.match(await ua.hello(), HEX32);
    const reply = await ua.register(randomUUID());
    assert.equal(reply.status, 200);
  });
});
