// The user-agent library (src/ua) against an in-process webpushd: the `web-push` npm library
// encrypts and signs (generateRequestDetails), fetch sends, PushUserAgent receives and decrypts.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import webpush from 'web-push';
import WebSocket, { WebSocketServer } from 'ws';
import {
  PushUserAgent,
  RetryLater,
  type MessageErrorEvent,
  type PushUserAgentOptions,
  type PushSubscriptionJSON,
  type ResetEvent,
} from '../../src/ua/client.ts';
import { StateError, readState } from '../../src/ua/state.ts';
import { DEFAULT_RECONNECT, reconnectDelay } from '../../src/ua/transport.ts';
import { createSubscriberKeys } from '../helpers/decrypt.ts';
import { skipOnRedis, startTestServer, type TestServer } from '../helpers/server.ts';
import { inbox } from '../helpers/inbox.ts';
import { until } from '../helpers/wait.ts';

type Encoding = 'aes128gcm' | 'aesgcm';

const vapidKeys = webpush.generateVAPIDKeys();
const vapidDetails = { subject: 'mailto:ua@example.com', ...vapidKeys };
const TEXT = 'Hello, user agent: ünïcödé ✓ 🚀 "quotes" & <tags>\n';
/** Fast reconnects for the tests. */
const RECONNECT = { initialDelayMs: 50, maxDelayMs: 400, jitter: 0 };

let dir: string;
let server: TestServer;
const clients = new Set<PushUserAgent>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webpushd-ua-'));
  server = await startTestServer();
});

afterEach(async () => {
  for (const c of clients) await c.close();
  clients.clear();
});

after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let stateCounter = 0;
const newStatePath = () => join(dir, `state-${++stateCounter}.json`);

async function open(options: PushUserAgentOptions): Promise<PushUserAgent> {
  const client = await PushUserAgent.open({ server: server.url, reconnect: RECONNECT, ...options });
  clients.add(client);
  return client;
}


/** The first event of a kind, within `ms`. */
function nextEvent<T>(client: PushUserAgent, event: 'reset' | 'messageError' | 'connect' | 'error', ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} event within ${ms} ms`)), ms);
    client.once(event, (e: unknown) => {
      clearTimeout(t);
      resolve(e as T);
    });
  });
}

/** Encrypts (and signs) with web-push, sends with fetch; returns the push service's status. */
async function send(
  sub: PushSubscriptionJSON,
  payload: string | Buffer | null,
  o: { encoding?: Encoding; vapid?: boolean; ttl?: number } = {},
): Promise<number> {
  const details = webpush.generateRequestDetails(sub, payload ?? undefined, {
    TTL: o.ttl ?? 60,
    contentEncoding: o.encoding ?? 'aes128gcm',
    ...(o.vapid ? { vapidDetails } : {}),
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(details.headers)) if (k.toLowerCase() !== 'content-length') headers[k] = String(v);
  const res = await fetch(details.endpoint, { method: details.method, headers, body: details.body ?? undefined });
  await res.arrayBuffer();
  return res.status;
}

async function sendOk(sub: PushSubscriptionJSON, payload: string | Buffer | null, o: { encoding?: Encoding; vapid?: boolean; ttl?: number } = {}) {
  assert.equal(await send(sub, payload, o), 201);
}

type Frame = Record<string, unknown>;

/**
 * Runs `body` while recording the frames sent and received over `ws` (PushUserAgent uses the same
 * module). The in-process server does too: its sends are among `sent` (user agents alone send
 * acks), the frames it receives among `received` (user agents alone receive notifications).
 */
async function withFrames(body: (sent: Frame[], received: Frame[]) => Promise<void>): Promise<void> {
  const sent: Frame[] = [];
  const received: Frame[] = [];
  const { send, emit } = WebSocket.prototype;
  WebSocket.prototype.send = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
    if (typeof data === 'string') sent.push(JSON.parse(data) as Frame);
    return (send as (...a: unknown[]) => void).call(this, data, ...rest);
  } as typeof send;
  WebSocket.prototype.emit = function (this: WebSocket, event: string | symbol, ...args: unknown[]) {
    if (event === 'message' && args[1] === false) received.push(JSON.parse(String(args[0])) as Frame);
    return emit.call(this, event, ...args);
  };
  try {
    await body(sent, received);
  } finally {
    Object.assign(WebSocket.prototype, { send, emit });
  }
}

/** Messages the service still holds for a user agent (stored, not yet acknowledged). */
const stored = async (uaid: string | null) => (await server.store.pendingMessages(Buffer.from(uaid!, 'hex'), 0, 100)).length;

/** The ack frames among `frames`, each as its first (the client's only) update. */
function acks(frames: Frame[]): { version: string; code: number }[] {
  return frames.filter((f) => f.messageType === 'ack').map((f) => (f.updates as { version: string; code: number }[])[0]!);
}

/**
 * Runs `body` against a server of its own, which it can stop and start again: on the same port
 * and data dir, so at the same URL and with the same data (unless the test removes it).
 */
async function withOwnServer(
  body: (own: { url: string; dataDir: string; stop(): Promise<void>; start(): Promise<void> }) => Promise<void>,
): Promise<void> {
  let current = await startTestServer();
  const { url, port, dataDir } = current;
  try {
    await body({
      url,
      dataDir,
      stop: () => current.close(),
      start: async () => {
        current = await startTestServer({ port, dataDir });
      },
    });
  } finally {
    await current.close();
  }
}

const b64len = (s: string) => Buffer.from(s, 'base64url').length;

describe('subscribe', () => {
  test('returns a subscription like a browser: endpoint, expirationTime null, p256dh and auth in base64url', async () => {
    const statePath = newStatePath();
    const client = await open({ statePath });
    const sub = await client.subscribe();
    assert.deepEqual(Object.keys(sub), ['endpoint', 'expirationTime', 'keys']);
    assert.ok(sub.endpoint.startsWith(`${server.url}/wpush/v1/`), sub.endpoint);
    assert.equal(sub.expirationTime, null);
    assert.match(sub.keys.p256dh, /^[A-Za-z0-9_-]+$/);
    assert.match(sub.keys.auth, /^[A-Za-z0-9_-]+$/);
    assert.equal(b64len(sub.keys.p256dh), 65);
    assert.equal(b64len(sub.keys.auth), 16);

    const restricted = await client.subscribe({ vapidKey: vapidKeys.publicKey });
    assert.ok(restricted.endpoint.startsWith(`${server.url}/wpush/v2/`), restricted.endpoint);
    assert.notEqual(restricted.keys.p256dh, sub.keys.p256dh);

    // the state holds both, with their private keys, readable by the owner only
    assert.equal(statSync(statePath).mode & 0o777, 0o600);
    const state = readState(statePath)!;
    assert.equal(state.server, server.url);
    assert.equal(state.uaid, client.uaid);
    assert.match(state.uaid!, /^[0-9a-f]{32}$/);
    assert.deepEqual(
      state.subscriptions.map((s) => [s.endpoint, s.keys.p256dh, s.vapidKey]),
      [
        [sub.endpoint, sub.keys.p256dh, undefined],
        [restricted.endpoint, restricted.keys.p256dh, vapidKeys.publicKey],
      ],
    );
    for (const s of state.subscriptions) assert.equal(b64len(s.keys.privateKey), 32);
    assert.deepEqual(client.subscriptions().map((s) => s.endpoint), [sub.endpoint, restricted.endpoint]);
  });

  test('a bad VAPID key is refused before anything is sent', async () => {
    const client = await open({});
    await assert.rejects(client.subscribe({ vapidKey: 'not-a-key' }), /vapidKey/);
    const bad = Buffer.alloc(65, 1);
    bad[0] = 4; // the right form, not a point on the curve
    await assert.rejects(client.subscribe({ vapidKey: bad.toString('base64url') }), /vapidKey/);
  });

  test('unsubscribe: the endpoint is gone (410) and the state forgets it', async () => {
    const statePath = newStatePath();
    const client = await open({ statePath });
    const a = await client.subscribe();
    const b = await client.subscribe();
    await client.unsubscribe(a.endpoint);
    assert.equal(await send(a, 'gone?'), 410);
    assert.deepEqual(readState(statePath)!.subscriptions.map((s) => s.endpoint), [b.endpoint]);
    await client.unsubscribe(client.subscriptions()[0]!.channelID);
    assert.deepEqual(readState(statePath)!.subscriptions, []);
    await assert.rejects(client.unsubscribe(a.endpoint), /no subscription/);
  });
});

describe('receiving', () => {
  test('aes128gcm with VAPID and aesgcm without: decrypted to the exact text', async () => {
    const client = await open({});
    const messages = inbox(client);
    const restricted = await client.subscribe({ vapidKey: vapidKeys.publicKey });
    const open1 = await client.subscribe();
    for (const [sub, encoding, vapid] of [
      [restricted, 'aes128gcm', true],
      [open1, 'aes128gcm', false],
      [restricted, 'aesgcm', true],
      [open1, 'aesgcm', false],
    ] as const) {
      await sendOk(sub, TEXT, { encoding, vapid });
      const m = await messages.next();
      assert.equal(m.text, TEXT, encoding);
      assert.deepEqual(m.data, Buffer.from(TEXT));
      assert.equal(m.endpoint, sub.endpoint);
      assert.equal(m.encoding, encoding);
      assert.equal(m.empty, false);
      assert.equal(client.subscriptions().find((s) => s.endpoint === sub.endpoint)!.channelID, m.channelID);
    }
  });

  test('a binary payload (not UTF-8) comes as data without text; the largest one too', async () => {
    const client = await open({});
    const messages = inbox(client);
    const sub = await client.subscribe();
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, ...randomBytes(64)]);
    for (const encoding of ['aes128gcm', 'aesgcm'] as const) {
      await sendOk(sub, binary, { encoding });
      const m = await messages.next();
      assert.deepEqual(m.data, binary);
      assert.equal(m.text, undefined);
    }
    const largest = randomBytes(4096 - 86 - 17); // fills a 4096-byte aes128gcm body
    await sendOk(sub, largest);
    assert.deepEqual((await messages.next()).data, largest);
  });

  test('an empty message (no payload) is delivered as empty', async () => {
    const client = await open({});
    const messages = inbox(client);
    const sub = await client.subscribe();
    await sendOk(sub, null);
    const m = await messages.next();
    assert.equal(m.empty, true);
    assert.equal(m.data.length, 0);
    assert.equal(m.text, '');
    assert.equal(m.endpoint, sub.endpoint);
  });

  test('messages() iterates in order and acknowledges each after the loop body', () =>
    withFrames(async (frames) => {
      const client = await open({});
      const sub = await client.subscribe();
      for (const text of ['one', 'two', 'three']) await sendOk(sub, text);
      const seen: string[] = [];
      for await (const m of client.messages()) {
        const acked = () => frames.some((f) => f.messageType === 'ack' && JSON.stringify(f).includes(`"${m.version}"`));
        assert.equal(acked(), false, 'not acknowledged while the loop body runs');
        seen.push(m.text!);
        if (seen.length === 3) break;
      }
      assert.deepEqual(seen, ['one', 'two', 'three']);
      await until(() => acks(frames).length === 3);
    }));

  test('messages arriving before a listener is added are held, not lost', () =>
    withFrames(async (_sent, received) => {
      const statePath = newStatePath();
      const first = await open({ statePath });
      const sub = await first.subscribe();
      await first.close();
      await sendOk(sub, 'waiting');
      const client = await open({ statePath });
      await until(() => received.some((f) => f.messageType === 'notification'), 'the stored message reached the client');
      assert.equal((await inbox(client).next()).text, 'waiting');
    }));

  test('an acknowledged message is not delivered again on the next connection', async () => {
    const statePath = newStatePath();
    const first = await open({ statePath });
    const firstInbox = inbox(first);
    const sub = await first.subscribe();
    await sendOk(sub, 'once');
    assert.equal((await firstInbox.next()).text, 'once');
    await until(async () => (await stored(first.uaid)) === 0, 'the ack reached the service');
    await first.close();

    const again = await open({ statePath });
    const messages = inbox(again);
    await sendOk(sub, 'after');
    // order is kept, so a redelivered 'once' would come first
    assert.equal((await messages.next()).text, 'after');
  });

  test('restart: messages sent while the client was closed arrive in order; the uaid is kept', async () => {
    const statePath = newStatePath();
    const first = await open({ statePath });
    const sub = await first.subscribe({ vapidKey: vapidKeys.publicKey });
    const uaid = first.uaid;
    await first.close();

    await sendOk(sub, 'first while away', { vapid: true });
    await sendOk(sub, 'second while away', { vapid: true, encoding: 'aesgcm' });

    const reset: unknown[] = [];
    const client = new PushUserAgent({ statePath, reconnect: RECONNECT }); // the server URL comes from the state
    clients.add(client);
    client.on('reset', (e) => reset.push(e));
    const messages = inbox(client);
    await client.connect();
    assert.equal((await messages.next()).text, 'first while away');
    assert.equal((await messages.next()).text, 'second while away');
    assert.equal(client.uaid, uaid);
    assert.equal(readState(statePath)!.uaid, uaid);
    assert.deepEqual(reset, []);
  });

  test('a listener that throws: the message is acknowledged (100), a nack (301) sent, an error reported', () =>
    withFrames(async (frames) => {
      const client = await open({});
      const sub = await client.subscribe();
      client.on('message', (m) => {
        if (m.text === 'boom') throw new Error('listener failed');
      });
      const messages = inbox(client);
      const error = nextEvent<Error>(client, 'error');
      await sendOk(sub, 'boom');
      assert.match((await error).message, /listener failed/);
      assert.equal((await messages.next()).text, 'boom'); // the other listener still ran
      await sendOk(sub, 'fine');
      assert.equal((await messages.next()).text, 'fine');
      await until(() => acks(frames).length === 2);
      assert.deepEqual(acks(frames).map((a) => a.code), [100, 100]);
      assert.equal(frames.filter((f) => f.messageType === 'nack' && f.code === 301).length, 1);
    }));
  test('a listener throwing RetryLater leaves the message unacknowledged: it comes again on the next connection', async () => {
    const statePath = newStatePath();
    const first = await open({ statePath });
    const sub = await first.subscribe();
    const seen: string[] = [];
    first.on('message', (m) => {
      seen.push(m.text!);
      if (m.text === 'later') throw new RetryLater('output unavailable');
    });
    const errors: unknown[] = [];
    first.on('error', (e) => errors.push(e));
    await sendOk(sub, 'later');
    await sendOk(sub, 'now');
    await until(() => seen.length === 2);
    await until(async () => (await stored(first.uaid)) === 1, "'now' acknowledged at the service, 'later' kept");
    await first.close();
    assert.deepEqual(errors, [], 'RetryLater is not an error');

    const again = await open({ statePath });
    const messages = inbox(again);
    assert.equal((await messages.next()).text, 'later');
    // the fence is stored after 'later': a redelivered 'now' would come between them
    await sendOk(sub, 'fence');
    assert.equal((await messages.next()).text, 'fence', "'now' was acknowledged the first time");
  });
});

describe('failures', () => {
  test('a message that cannot be decrypted is acknowledged with 101 and reported; the client keeps working', () =>
    withFrames(async (frames) => {
      const statePath = newStatePath();
      const client = await open({ statePath });
      const messages = inbox(client);
      const sub = await client.subscribe();

      // Valid structure (web-push encrypts it properly) for the wrong keys.
      const { ecdh, keys } = createSubscriberKeys();
      const wrong = { ...sub, keys };
      for (const encoding of ['aes128gcm', 'aesgcm'] as const) {
        const reported = nextEvent<MessageErrorEvent>(client, 'messageError');
        await sendOk(wrong, 'unreadable', { encoding });
        const e = await reported;
        assert.equal(e.code, 101);
        assert.equal(e.endpoint, sub.endpoint);
        assert.match(e.error.message, new RegExp(encoding));
      }
      // A corrupted body with a well-formed aes128gcm header.
      const body = Buffer.concat([randomBytes(16), Buffer.from([0, 0, 16, 0, 65]), ecdh.getPublicKey(), randomBytes(40)]);
      const reported = nextEvent<MessageErrorEvent>(client, 'messageError');
      const res = await fetch(sub.endpoint, { method: 'POST', headers: { TTL: '60', 'Content-Encoding': 'aes128gcm' }, body });
      assert.equal(res.status, 201);
      assert.equal((await reported).code, 101);

      await sendOk(sub, 'still working');
      assert.equal((await messages.next()).text, 'still working');
      assert.equal(messages.received.length, 0);

      assert.deepEqual(acks(frames).map((a) => a.code), [101, 101, 101, 100]);

      // 101 ends the message: it is not sent again
      await client.close();
      const again = await open({ statePath });
      const later = inbox(again);
      await sendOk(sub, 'next');
      assert.equal((await later.next()).text, 'next');
    }));

  test('server restart: the client reconnects by itself and receives what is sent afterwards', { skip: skipOnRedis('a restart on the same data dir finds the same store') }, () =>
    withOwnServer(async (own) => {
      const statePath = newStatePath();
      const client = await open({ server: own.url, statePath });
      const messages = inbox(client);
      const disconnects: number[] = [];
      client.on('disconnect', (e) => disconnects.push(e.code));
      const sub = await client.subscribe();
      const uaid = client.uaid;

      await own.stop();
      await until(() => !client.connected);
      await own.start();
      await until(() => client.connected);
      assert.equal(client.uaid, uaid);
      assert.equal(disconnects[0], 1001, 'the server said it was going away');

      await sendOk(sub, 'after the restart');
      assert.equal((await messages.next()).text, 'after the restart');
    }));

  test('reset: a server that lost its data is detected; the subscriptions are dropped and reported', () =>
    withOwnServer(async (own) => {
      const statePath = newStatePath();
      const client = await open({ server: own.url, statePath });
      const a = await client.subscribe();
      const b = await client.subscribe();
      const uaid = client.uaid!;
      const reset = nextEvent<ResetEvent>(client, 'reset');

      await own.stop();
      rmSync(own.dataDir, { recursive: true, force: true });
      await own.start();

      const e = await reset;
      assert.equal(e.previousUaid, uaid);
      assert.notEqual(e.uaid, uaid);
      assert.deepEqual(e.dropped.map((d) => d.endpoint), [a.endpoint, b.endpoint]);
      assert.equal(client.uaid, e.uaid);
      assert.deepEqual(client.subscriptions(), []);
      const state = readState(statePath)!;
      assert.equal(state.uaid, e.uaid);
      assert.deepEqual(state.subscriptions, []);

      // and it can subscribe afresh
      const messages = inbox(client);
      const c = await client.subscribe();
      await sendOk(c, 'new life');
      assert.equal((await messages.next()).text, 'new life');
    }));

  test('a second client on the same state file (ua subscribe next to ua listen): the listener picks up its subscription', async () => {
    const statePath = newStatePath();
    const listener = await open({ statePath, reconnect: { ...RECONNECT, backoffDelayMs: 200 } });
    const messages = inbox(listener);
    const first = await listener.subscribe();
    const backoff = new Promise<{ code: number }>((resolve) => listener.once('disconnect', resolve));

    // another process: same uaid, so the service hands the session over (4774 for the listener)
    const other = await open({ statePath });
    assert.equal(other.uaid, listener.uaid);
    const added = await other.subscribe();
    await other.close();
    assert.equal((await backoff).code, 4774);
    assert.deepEqual(readState(statePath)!.subscriptions.map((s) => s.endpoint), [first.endpoint, added.endpoint]);

    await until(() => listener.connected);
    await sendOk(added, 'to the subscription added by the other process');
    assert.equal((await messages.next()).text, 'to the subscription added by the other process');
    // and the listener's own writes keep it
    await listener.unsubscribe(first.endpoint);
    assert.deepEqual(readState(statePath)!.subscriptions.map((s) => s.endpoint), [added.endpoint]);
  });

  test('state files: missing (without a server), corrupt, or of another server: a clear StateError', () => {
    const missing = join(dir, 'missing.json');
    assert.throws(() => new PushUserAgent({ statePath: missing }), (err: unknown) => {
      assert.ok(err instanceof StateError);
      assert.match(err.message, /missing\.json does not exist/);
      return true;
    });
    const corrupt = join(dir, 'corrupt.json');
    writeFileSync(corrupt, '{"server": "http://x", ');
    assert.throws(() => new PushUserAgent({ statePath: corrupt }), /corrupt\.json is not valid JSON/);
    writeFileSync(corrupt, JSON.stringify({ server: 'http://127.0.0.1:1', uaid: null, subscriptions: [{ channelID: 'x' }] }));
    assert.throws(() => new PushUserAgent({ statePath: corrupt }), /subscriptions\[0\]\.channelID/);
    writeFileSync(corrupt, JSON.stringify({ server: 'http://127.0.0.1:1', uaid: null, subscriptions: [] }));
    assert.throws(() => new PushUserAgent({ statePath: corrupt, server: 'http://127.0.0.1:2' }), /belongs to http:\/\/127\.0\.0\.1:1/);
    assert.throws(() => new PushUserAgent({ server: 'ftp://example.com' }), /ws:\/\/, wss:\/\/, http:\/\/ or https:\/\//);
  });

  test('an unreachable server: open() fails with a clear error', async () => {
    await assert.rejects(PushUserAgent.open({ server: 'ws://127.0.0.1:1/' }), /could not connect to ws:\/\/127\.0\.0\.1:1\/.*ECONNREFUSED/);
  });
});

/** A scripted push service: answers hello and register, records what the client sends. */
async function fakeService(options: { autoPong?: boolean; uaid?: string } = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', autoPong: options.autoPong ?? true });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const received: Frame[] = [];
  const sockets: WebSocket[] = [];
  wss.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as Frame;
      received.push(m);
      if (m.messageType === 'hello') {
        ws.send(JSON.stringify({ messageType: 'hello', uaid: options.uaid ?? 'f'.repeat(32), status: 200, use_webpush: true, broadcasts: {} }));
      } else if (m.messageType === 'register') {
        ws.send(JSON.stringify({ messageType: 'register', channelID: m.channelID, status: 200, pushEndpoint: `http://fake.example/${String(m.channelID)}` }));
      }
    });
  });
  const port = (wss.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}/`,
    received,
    sockets,
    acks: () => acks(received),
    send: (frame: unknown) => sockets.at(-1)!.send(JSON.stringify(frame)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of wss.clients) s.terminate();
        wss.close(() => resolve());
      }),
  };
}

describe('protocol details (against a scripted push service)', () => {
  test('a message sent again is acknowledged again but delivered once; an unknown channel gets 102', async () => {
    const fake = await fakeService();
    try {
      const client = await open({ server: fake.url });
      const messages = inbox(client);
      const errors: MessageErrorEvent[] = [];
      client.on('messageError', (e) => errors.push(e));
      await client.subscribe();
      const channelID = client.subscriptions()[0]!.channelID;
      // channel IDs are matched case-insensitively, like Firefox does
      fake.send({ messageType: 'notification', channelID, version: 'v1' });
      fake.send({ messageType: 'notification', channelID: channelID.toUpperCase(), version: 'v1' });
      fake.send({ messageType: 'notification', channelID, version: 'v2' });
      fake.send({ messageType: 'notification', channelID: '00000000-0000-4000-8000-000000000000', version: 'v3' });
      assert.equal((await messages.next()).version, 'v1');
      assert.equal((await messages.next()).version, 'v2');
      // the copy that came while v1 was being handled is covered by v1's acknowledgement
      await until(() => fake.acks().length === 3);
      // a copy after the acknowledgement (as after a connection lost before the ack arrived)
      fake.send({ messageType: 'notification', channelID, version: 'v1' });
      await until(() => fake.acks().length === 4);
      assert.deepEqual(
        fake.acks().map((a) => [a.version, a.code]),
        [
          ['v1', 100],
          ['v2', 100],
          ['v3', 102],
          ['v1', 100],
        ],
      );
      assert.equal(messages.received.length, 0);
      assert.deepEqual(errors.map((e) => [e.version, e.code]), [['v3', 102]]);
    } finally {
      await fake.close();
    }
  });

  test('a silent connection is probed and, without an answer, dropped and re-established', async () => {
    const fake = await fakeService({ autoPong: false });
    try {
      const client = await open({ server: fake.url, idleTimeoutMs: 100, requestTimeoutMs: 200 });
      const disconnect = new Promise<{ error?: string }>((resolve) => client.once('disconnect', resolve));
      assert.match((await disconnect).error ?? '', /stopped answering/);
      await until(() => client.connected && fake.sockets.length === 2);
    } finally {
      await fake.close();
    }
  });

  test('close code 4774 (back off): the client waits the back-off delay before reconnecting', async () => {
    const fake = await fakeService();
    try {
      const client = await open({ server: fake.url, reconnect: { ...RECONNECT, backoffDelayMs: 300 } });
      const disconnect = new Promise<{ code: number; retryInMs: number | null }>((resolve) => client.once('disconnect', resolve));
      const closedAt = Date.now();
      fake.sockets[0]!.close(4774, 'another connection took over this uaid');
      const e = await disconnect;
      assert.equal(e.code, 4774);
      assert.equal(e.retryInMs, 300);
      await until(() => fake.sockets.length === 2);
      assert.ok(Date.now() - closedAt >= 290, 'not before the back-off delay');
    } finally {
      await fake.close();
    }
  });

  test('backoff: 1 s doubling to 60 s; after 4774 at least 60 s; jitter within 20 %', () => {
    const o = { ...DEFAULT_RECONNECT, jitter: 0 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => reconnectDelay(n, false, o)),
      [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000],
    );
    assert.equal(reconnectDelay(1, true, o), 60000);
    assert.equal(reconnectDelay(1, false, DEFAULT_RECONNECT, () => 0), 800);
    assert.equal(reconnectDelay(1, false, DEFAULT_RECONNECT, () => 1), 1200);
  });
});
