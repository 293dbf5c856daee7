// The user-agent library (src/ua) over RFC 8030 (HTTP/2 server push): first against an
// in-process webpushd (the `web-push` npm library encrypts and signs with generateRequestDetails,
// fetch sends, PushUserAgent receives over h2c and decrypts), then against a scripted RFC 8030
// service for what webpushd cannot be made to do (out-of-order bodies, missing links, GOAWAY...).
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import webpush from 'web-push';
import {
  PushUserAgent,
  RetryLater,
  type MessageErrorEvent,
  type PushSubscriptionJSON,
  type PushUserAgentOptions,
  type ResetEvent,
  type UrgencyLevel,
} from '../../src/ua/client.ts';
import { PUSH_REL, SET_REL, parseLinks, toHttpUrl } from '../../src/ua/http2-client.ts';
import { Http2Connection } from '../../src/ua/http2-connection.ts';
import { StateError, readState } from '../../src/ua/state.ts';
import { skipOnRedis, startTestServer, type TestServer } from '../helpers/server.ts';
import { createTestCertificate } from '../helpers/tls.ts';
import { inbox } from '../helpers/inbox.ts';
import { until } from '../helpers/wait.ts';

type Encoding = 'aes128gcm' | 'aesgcm';

const vapidKeys = webpush.generateVAPIDKeys();
const vapidDetails = { subject: 'mailto:ua-http2@example.com', ...vapidKeys };
const TEXT = 'Hello over HTTP/2: ünïcödé ✓ 🚀 "quotes" & <tags>\n';
/** Fast reconnects for the tests. */
const RECONNECT = { initialDelayMs: 50, maxDelayMs: 400, jitter: 0 };

let dir: string;
const clients = new Set<PushUserAgent>();

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'webpushd-ua-h2-'));
});

afterEach(async () => {
  for (const c of clients) await c.close();
  clients.clear();
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let stateCounter = 0;
const newStatePath = () => join(dir, `state-${++stateCounter}.json`);

async function openOn(server: string, options: Omit<PushUserAgentOptions, 'server'> = {}): Promise<PushUserAgent> {
  const client = await PushUserAgent.open({ server, protocol: 'http2', reconnect: RECONNECT, ...options });
  clients.add(client);
  return client;
}


function nextEvent<T>(client: PushUserAgent, event: 'reset' | 'messageError' | 'connect' | 'disconnect' | 'error', ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} event within ${ms} ms`)), ms);
    client.once(event, (e: unknown) => {
      clearTimeout(t);
      resolve(e as T);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SendOptions {
  encoding?: Encoding;
  vapid?: boolean;
  ttl?: number;
  urgency?: UrgencyLevel;
}

/** What web-push would send: encrypted (and signed) body and headers. */
function requestDetails(sub: PushSubscriptionJSON, payload: string | Buffer | null, o: SendOptions = {}) {
  const details = webpush.generateRequestDetails(sub, payload ?? undefined, {
    TTL: o.ttl ?? 60,
    contentEncoding: o.encoding ?? 'aes128gcm',
    ...(o.urgency ? { urgency: o.urgency } : {}),
    ...(o.vapid ? { vapidDetails } : {}),
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(details.headers)) if (k.toLowerCase() !== 'content-length') headers[k.toLowerCase()] = String(v);
  return { endpoint: details.endpoint, headers, body: details.body ? Buffer.from(details.body) : Buffer.alloc(0) };
}

/** Encrypts (and signs) with web-push, sends with fetch; returns the push service's status. */
async function send(sub: PushSubscriptionJSON, payload: string | Buffer | null, o: SendOptions = {}): Promise<number> {
  const details = requestDetails(sub, payload, o);
  const res = await fetch(details.endpoint, { method: 'POST', headers: details.headers, body: details.body });
  await res.arrayBuffer();
  return res.status;
}

async function sendOk(sub: PushSubscriptionJSON, payload: string | Buffer | null, o: SendOptions = {}) {
  assert.equal(await send(sub, payload, o), 201);
}

// ---------------------------------------------------------------------------------------------
// Against webpushd
// ---------------------------------------------------------------------------------------------

describe('against webpushd (h2c)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });
  const open = (options: Omit<PushUserAgentOptions, 'server'> = {}) => openOn(server.url, options);

  // The message URLs whose DELETE (the acknowledgement) the service answered, so that a test can
  // wait for an acknowledgement to be done before it closes the client.
  const acked = new Set<string>();
  const { request } = Http2Connection.prototype;
  before(() => {
    Http2Connection.prototype.request = async function (this: Http2Connection, ...args: Parameters<typeof request>) {
      const res = await request.apply(this, args);
      if (args[0] === 'DELETE') acked.add(args[1]);
      return res;
    };
  });
  after(() => {
    Http2Connection.prototype.request = request;
  });
  const acknowledged = (...versions: string[]) =>
    until(() => versions.every((v) => acked.has(v)), `the service answered the acknowledgement of ${versions.length} message(s)`);

  test('subscribe: a v1 and a restricted subscription, in one set; the state keeps the URLs', async () => {
    const statePath = newStatePath();
    const client = await open({ statePath });
    assert.equal(client.protocol, 'http2');
    assert.equal(client.uaid, null);
    const sub = await client.subscribe();
    assert.deepEqual(Object.keys(sub), ['endpoint', 'expirationTime', 'keys']);
    assert.ok(sub.endpoint.startsWith(`${server.url}/`), sub.endpoint);
    assert.equal(sub.expirationTime, null);
    assert.equal(Buffer.from(sub.keys.p256dh, 'base64url').length, 65);
    assert.equal(Buffer.from(sub.keys.auth, 'base64url').length, 16);
    const restricted = await client.subscribe({ vapidKey: vapidKeys.publicKey });
    assert.notEqual(restricted.endpoint, sub.endpoint);

    assert.equal(statSync(statePath).mode & 0o777, 0o600);
    const state = readState(statePath)!;
    assert.equal(state.protocol, 'http2');
    assert.equal(state.uaid, null);
    const [a, b] = state.subscriptions;
    assert.ok(a && b);
    assert.equal(a.endpoint, sub.endpoint);
    assert.equal(b.endpoint, restricted.endpoint);
    assert.equal(b.vapidKey, vapidKeys.publicKey);
    for (const s of [a, b]) {
      assert.ok(s.subscriptionUrl?.startsWith(`${server.url}/`), s.subscriptionUrl);
      assert.ok(s.setUrl?.startsWith(`${server.url}/`), s.setUrl);
    }
    assert.notEqual(a.subscriptionUrl, b.subscriptionUrl);
    assert.equal(a.setUrl, b.setUrl, 'the second subscription joined the set of the first');

    // a restricted subscription refuses sends without VAPID
    assert.equal(await send(restricted, 'no vapid'), 401);
    // a bad key is refused before anything is sent
    await assert.rejects(client.subscribe({ vapidKey: 'not-a-key' }), /vapidKey/);
  });

  test('receiving: aes128gcm and aesgcm, with and without VAPID, decrypted to the exact text', async () => {
    const client = await open({});
    const messages = inbox(client);
    const restricted = await client.subscribe({ vapidKey: vapidKeys.publicKey });
    const plain = await client.subscribe();
    for (const [sub, encoding, vapid] of [
      [restricted, 'aes128gcm', true],
      [plain, 'aes128gcm', false],
      [restricted, 'aesgcm', true],
      [plain, 'aesgcm', false],
    ] as const) {
      await sendOk(sub, TEXT, { encoding, vapid });
      const m = await messages.next();
      assert.equal(m.text, TEXT, encoding);
      assert.equal(m.encoding, encoding);
      assert.equal(m.endpoint, sub.endpoint);
      assert.equal(m.empty, false);
      assert.equal(client.subscriptions().find((s) => s.endpoint === sub.endpoint)!.channelID, m.channelID);
      assert.ok(m.version.startsWith(`${server.url}/`), m.version);
    }
    const binary = Buffer.concat([Buffer.from([0xff, 0x00, 0xc3, 0x28]), randomBytes(64)]);
    await sendOk(plain, binary);
    const b = await messages.next();
    assert.deepEqual(b.data, binary);
    assert.equal(b.text, undefined);
    await sendOk(plain, null);
    const e = await messages.next();
    assert.equal(e.empty, true);
  });

  test('acknowledged messages are not delivered again; restart from the state: stored messages arrive in order', async () => {
    const statePath = newStatePath();
    const first = await open({ statePath });
    const firstInbox = inbox(first);
    const sub = await first.subscribe({ vapidKey: vapidKeys.publicKey });
    await sendOk(sub, 'once', { vapid: true });
    const once = await firstInbox.next();
    assert.equal(once.text, 'once');
    await acknowledged(once.version);
    await first.close();

    for (const [i, encoding] of (['aes128gcm', 'aesgcm', 'aes128gcm', 'aesgcm', 'aes128gcm'] as const).entries()) {
      await sendOk(sub, `away ${i}`, { vapid: true, encoding });
    }
    const again = new PushUserAgent({ statePath, reconnect: RECONNECT }); // server and protocol from the state
    clients.add(again);
    assert.equal(again.protocol, 'http2');
    const messages = inbox(again);
    await again.connect();
    // in order, so a redelivered 'once' would have come first
    const away: string[] = [];
    for (let i = 0; i < 5; i++) {
      const m = await messages.next();
      assert.equal(m.text, `away ${i}`, "'once' was acknowledged the first time");
      away.push(m.version);
    }

    // and what this client acknowledged is not sent to the next one either (it would come first)
    await acknowledged(...away);
    await again.close();
    const third = await open({ statePath });
    const thirdInbox = inbox(third);
    await sendOk(sub, 'last', { vapid: true });
    assert.equal((await thirdInbox.next()).text, 'last');
  });

  test('urgency: a low message waits while the client wants high ones, and comes when it wants all', async () => {
    const client = await open({ urgency: 'high' });
    assert.equal(client.urgency, 'high');
    const messages = inbox(client);
    const sub = await client.subscribe();
    await sendOk(sub, 'low one', { urgency: 'low' });
    await sendOk(sub, 'urgent one', { urgency: 'high' });
    assert.equal((await messages.next()).text, 'urgent one');
    // pushes come in order: the low message, had it been pushed, would come before this one
    await sendOk(sub, 'urgent fence', { urgency: 'high' });
    assert.equal((await messages.next()).text, 'urgent fence', 'the low message waits');
    client.setUrgency('very-low');
    assert.equal(client.urgency, 'very-low');
    assert.equal((await messages.next()).text, 'low one');
    // and the urgent ones, pushed again if their acknowledgements were still on the way, are not delivered twice
    await sendOk(sub, 'last fence');
    assert.equal((await messages.next()).text, 'last fence');
  });

  test('unsubscribe: the sender gets 410, the state forgets it, the other subscription keeps working', async () => {
    const statePath = newStatePath();
    const client = await open({ statePath });
    const messages = inbox(client);
    const a = await client.subscribe();
    const b = await client.subscribe();
    const resets: ResetEvent[] = [];
    client.on('reset', (e) => resets.push(e));
    await client.unsubscribe(a.endpoint);
    assert.equal(await send(a, 'gone?'), 410);
    assert.deepEqual(readState(statePath)!.subscriptions.map((s) => s.endpoint), [b.endpoint]);
    await sendOk(b, 'still here');
    assert.equal((await messages.next()).text, 'still here');
    await assert.rejects(client.unsubscribe(a.endpoint), /no subscription/);
    assert.deepEqual(resets, []);
  });

  test('two subscriptions in one set are received over one GET', async () => {
    const client = await open({});
    const messages = inbox(client);
    const a = await client.subscribe();
    const b = await client.subscribe({ vapidKey: vapidKeys.publicKey });
    await sendOk(a, 'to a');
    await sendOk(b, 'to b', { vapid: true });
    await sendOk(a, 'to a again', { encoding: 'aesgcm' });
    const got = [await messages.next(), await messages.next(), await messages.next()];
    assert.deepEqual(
      got.map((m) => [m.text, m.endpoint]),
      [
        ['to a', a.endpoint],
        ['to b', b.endpoint],
        ['to a again', a.endpoint],
      ],
    );
  });

  test('a second subscribing client on the same state file joins the set; the listener receives for it', async () => {
    const statePath = newStatePath();
    const listener = await open({ statePath });
    const messages = inbox(listener);
    const first = await listener.subscribe();
    const other = await open({ statePath });
    const added = await other.subscribe();
    await other.close();
    const state = readState(statePath)!;
    assert.equal(state.subscriptions.length, 2);
    assert.equal(state.subscriptions[0]!.setUrl, state.subscriptions[1]!.setUrl);
    await sendOk(added, 'to the subscription added by the other client');
    const m = await messages.next();
    assert.equal(m.text, 'to the subscription added by the other client');
    assert.equal(m.endpoint, added.endpoint);
    await sendOk(first, 'and the first');
    assert.equal((await messages.next()).text, 'and the first');
  });

  test('RetryLater leaves a message unacknowledged: it comes again on the next connection; messages() iterates', async () => {
    const statePath = newStatePath();
    const first = await open({ statePath });
    const sub = await first.subscribe();
    const seen = new Map<string, string>();
    first.on('message', (m) => {
      seen.set(m.text!, m.version);
      if (m.text === 'later') throw new RetryLater('output unavailable');
    });
    await sendOk(sub, 'later');
    await sendOk(sub, 'now');
    await until(() => seen.has('now'));
    await acknowledged(seen.get('now')!);
    await first.close();

    const again = await open({ statePath });
    const texts: string[] = [];
    await sendOk(sub, 'third');
    for await (const m of again.messages()) {
      texts.push(m.text!);
      if (texts.length === 2) break;
    }
    assert.deepEqual(texts, ['later', 'third'], "'now' was acknowledged the first time");
  });

  test('over https (ALPN h2) with a CA', async () => {
    const cert = createTestCertificate();
    const tls = await startTestServer({ tlsCert: cert.certFile, tlsKey: cert.keyFile });
    const agent = new https.Agent({ ca: cert.cert });
    try {
      assert.ok(tls.url.startsWith('https://'), tls.url);
      const client = await openOn(tls.url, { ca: cert.cert });
      const messages = inbox(client);
      const sub = await client.subscribe({ vapidKey: vapidKeys.publicKey });
      assert.ok(sub.endpoint.startsWith(`${tls.url}/`), sub.endpoint);
      const result = await webpush.sendNotification(sub, TEXT, { TTL: 60, vapidDetails, agent });
      assert.equal(result.statusCode, 201);
      const m = await messages.next();
      assert.equal(m.text, TEXT);
      assert.ok(m.version.startsWith(`${tls.url}/m/`), m.version);
    } finally {
      agent.destroy();
      for (const c of clients) await c.close();
      clients.clear();
      await tls.close();
      cert.remove();
    }
  });

  test('server restart on the same data dir: the client reconnects and receives what was sent meanwhile and after', { skip: skipOnRedis('a restart on the same data dir finds the same store') }, async () => {
    let own = await startTestServer();
    const { url, port, dataDir } = own;
    try {
      const statePath = newStatePath();
      const client = await openOn(url, { statePath });
      const messages = inbox(client);
      const disconnects: number[] = [];
      client.on('disconnect', (e) => disconnects.push(e.code));
      const sub = await client.subscribe();
      await sendOk(sub, 'before');
      const delivered = await messages.next();
      assert.equal(delivered.text, 'before');
      await acknowledged(delivered.version);

      await own.close();
      await until(() => !client.connected);
      own = await startTestServer({ port, dataDir });
      await sendOk(sub, 'while reconnecting');
      await until(() => client.connected);
      assert.ok(disconnects.length >= 1);
      assert.equal((await messages.next()).text, 'while reconnecting');
      await sendOk(sub, 'after the restart');
      assert.equal((await messages.next()).text, 'after the restart');
    } finally {
      await own.close();
    }
  });

  test('a server that lost its data: the GET ends with 404, the subscriptions are dropped and reported', async () => {
    let own = await startTestServer();
    const { url, port, dataDir } = own;
    try {
      const statePath = newStatePath();
      const client = await openOn(url, { statePath });
      inbox(client);
      const a = await client.subscribe();
      const b = await client.subscribe();
      const reset = nextEvent<ResetEvent>(client, 'reset', 8000);
      await own.close();
      rmSync(dataDir, { recursive: true, force: true });
      own = await startTestServer({ port, dataDir });
      const e = await reset;
      assert.deepEqual(e.dropped.map((d) => d.endpoint).sort(), [a.endpoint, b.endpoint].sort());
      assert.deepEqual(client.subscriptions(), []);
      assert.deepEqual(readState(statePath)!.subscriptions, []);
      // and it can subscribe afresh
      const messages = inbox(client);
      const c = await client.subscribe();
      await sendOk(c, 'new life');
      assert.equal((await messages.next()).text, 'new life');
    } finally {
      await own.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// A scripted RFC 8030 service (HTTP/2 only), following the contract webpushd implements:
//   POST /subscribe -> 201, Location /s/<t>, Link </p/<t>>; rel=push, Link </set/<t>>; rel=push:set
//   GET /s/<t> | /set/<t> -> PUSH_PROMISE GET /m/<t> per message; 404 when gone
//   DELETE /m/<t> -> 204 (410 when gone); DELETE /s/<t> | /set/<t> -> 204
// ---------------------------------------------------------------------------------------------

const RANK: Record<UrgencyLevel, number> = { 'very-low': 0, low: 1, normal: 2, high: 3 };

interface FakeSub {
  token: string;
  set: FakeSet;
  vapid?: string;
}
interface FakeSet {
  token: string;
  subs: Set<FakeSub>;
}
interface FakeMessage {
  token: string;
  sub: FakeSub;
  body: Buffer;
  headers: Record<string, string>;
  urgency: UrgencyLevel;
}
interface FakeMonitor {
  stream: ServerHttp2Stream;
  target: FakeSub | FakeSet;
  covers(sub: FakeSub): boolean;
  urgency: UrgencyLevel;
  pushed: Set<string>;
}
interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface FakeOptions {
  tls?: { cert: Buffer; key: Buffer };
  /** 'joined': both links in one header field. */
  linkStyle?: 'separate' | 'joined';
  /** Leave out the pushed responses' Link. */
  noPushLink?: boolean;
  /** Delay before the n-th pushed body is sent (default 0). */
  bodyDelayMs?: (n: number) => number;
  /** Answer POST /subscribe carrying a set Link with 400. */
  refuseSets?: boolean;
}

async function fakeService(o: FakeOptions = {}) {
  const server = o.tls ? http2.createSecureServer({ ...o.tls }) : http2.createServer();
  const subs = new Map<string, FakeSub>();
  const sets = new Map<string, FakeSet>();
  const messages: FakeMessage[] = [];
  const monitors = new Set<FakeMonitor>();
  const requests: Recorded[] = [];
  const sessions = new Set<ServerHttp2Session>();
  let pushCount = 0;
  const sockets = new Set<Socket>();
  server.on(o.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const origin = `${o.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const token = () => randomBytes(12).toString('base64url');

  const push = (m: FakeMonitor, msg: FakeMessage) => {
    if (m.pushed.has(msg.token) || m.stream.closed || RANK[msg.urgency] < RANK[m.urgency]) return;
    m.pushed.add(msg.token);
    const n = pushCount++;
    m.stream.pushStream({ ':path': `/m/${msg.token}` }, (err, pushed) => {
      if (err) return;
      pushed.on('error', () => {});
      pushed.respond({
        ':status': 200,
        ...msg.headers,
        ...(o.noPushLink ? {} : { link: `</p/${msg.sub.token}>; rel="${PUSH_REL}"` }),
        'last-modified': new Date().toUTCString(),
      });
      const delay = o.bodyDelayMs?.(n) ?? 0;
      if (delay > 0) setTimeout(() => pushed.end(msg.body), delay);
      else pushed.end(msg.body);
    });
  };

  const handle = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, body: Buffer) => {
    const method = headers[':method']!;
    const path = headers[':path']!;
    requests.push({ method, path, headers, body: body.toString() });
    const [, kind, t] = path.split('/');
    const reply = (status: number, h: Record<string, string | string[]> = {}) => {
      stream.respond({ ':status': status, ...h });
      stream.end();
    };
    if (method === 'POST' && path === '/subscribe') {
      const link = parseLinks(headers.link, origin).find((l) => l.rels.includes(SET_REL));
      let set: FakeSet | undefined;
      if (link) {
        set = sets.get(new URL(link.url).pathname.split('/')[2] ?? '');
        if (!set || o.refuseSets) return reply(400);
      }
      if (!set) {
        set = { token: token(), subs: new Set() };
        sets.set(set.token, set);
      }
      const sub: FakeSub = { token: token(), set };
      if (headers['content-type'] === 'application/webpush-options+json') sub.vapid = (JSON.parse(body.toString()) as { vapid: string }).vapid;
      subs.set(sub.token, sub);
      set.subs.add(sub);
      const pushLink = `</p/${sub.token}>; rel="${PUSH_REL}"`;
      const setLink = `<${origin}/set/${set.token}>; rel="${SET_REL}"`;
      return reply(201, { location: `/s/${sub.token}`, link: o.linkStyle === 'joined' ? `${pushLink}, ${setLink}` : [pushLink, setLink] });
    }
    if (method === 'GET' && (kind === 's' || kind === 'set')) {
      const target = kind === 's' ? subs.get(t!) : sets.get(t!);
      if (!target) return reply(404);
      const urgency = (headers.urgency as UrgencyLevel | undefined) ?? 'very-low';
      const m: FakeMonitor = {
        stream,
        target,
        urgency,
        pushed: new Set(),
        covers: (sub) => (kind === 's' ? sub === target : (target as FakeSet).subs.has(sub)),
      };
      monitors.add(m);
      stream.on('close', () => monitors.delete(m));
      stream.on('error', () => {});
      for (const msg of messages) if (m.covers(msg.sub)) push(m, msg);
      return;
    }
    if (method === 'DELETE' && kind === 'm') {
      const i = messages.findIndex((m) => m.token === t);
      if (i < 0) return reply(410);
      messages.splice(i, 1);
      return reply(204);
    }
    if (method === 'DELETE' && kind === 's') {
      const sub = subs.get(t!);
      if (!sub) return reply(404);
      subs.delete(sub.token);
      sub.set.subs.delete(sub);
      reply(204);
      // a GET on the subscription itself ends: it is gone
      for (const m of monitors) {
        if (m.target !== sub || m.stream.closed) continue;
        m.stream.respond({ ':status': 404 });
        m.stream.end();
      }
      return;
    }
    return reply(404);
  };

  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => handle(stream, headers, Buffer.concat(chunks)));
  });

  return {
    url: origin,
    port,
    requests,
    subs,
    sets,
    messages,
    monitors,
    sessions,
    /** Stores a message for the subscription with this push endpoint and pushes it to the open GETs. */
    send(sub: PushSubscriptionJSON, payload: string | Buffer | null, so: SendOptions = {}): string {
      const details = requestDetails(sub, payload, so);
      const fakeSub = subs.get(new URL(details.endpoint).pathname.split('/')[2] ?? '');
      assert.ok(fakeSub, 'no such subscription at the fake');
      const headers: Record<string, string> = {};
      for (const name of ['content-encoding', 'encryption', 'crypto-key']) {
        const v = details.headers[name];
        // aesgcm with VAPID puts p256ecdsa= into Crypto-Key; the service strips it, keeping dh=
        if (v !== undefined) headers[name] = name === 'crypto-key' ? v.split(';').filter((p) => !p.startsWith('p256ecdsa=')).join(';') : v;
      }
      const msg: FakeMessage = { token: token(), sub: fakeSub, body: details.body, headers, urgency: so.urgency ?? 'normal' };
      messages.push(msg);
      for (const m of monitors) if (m.covers(fakeSub)) push(m, msg);
      return msg.token;
    },
    /** Pushes an arbitrary message on the open GETs (for what a real service would not send). */
    pushRaw(headers: Record<string, string>, body: Buffer): string {
      const msg: FakeMessage = { token: token(), sub: { token: 'none', set: { token: 'none', subs: new Set() } }, body, headers, urgency: 'normal' };
      messages.push(msg);
      for (const m of monitors) {
        m.pushed.add(msg.token);
        m.stream.pushStream({ ':path': `/m/${msg.token}` }, (err, pushed) => {
          if (err) return;
          pushed.respond({ ':status': 200, ...headers });
          pushed.end(body);
        });
      }
      return msg.token;
    },
    /** Ends every open GET with this status. */
    endGets(status: number) {
      for (const m of monitors) {
        if (m.stream.closed) continue;
        m.stream.respond({ ':status': status });
        m.stream.end();
      }
    },
    gets: () => requests.filter((r) => r.method === 'GET'),
    deletes: () => requests.filter((r) => r.method === 'DELETE').map((r) => r.path),
    /** GOAWAY (NO_ERROR) on every session, then ends the GETs as a server shutting down does. */
    goaway() {
      for (const s of sessions) s.goaway(http2.constants.NGHTTP2_NO_ERROR);
      for (const m of monitors) m.stream.close(http2.constants.NGHTTP2_NO_ERROR);
    },
    /** Cuts every connection without a word. */
    drop() {
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

type Fake = Awaited<ReturnType<typeof fakeService>>;

async function withFake(o: FakeOptions, body: (fake: Fake) => Promise<void>): Promise<void> {
  const fake = await fakeService(o);
  try {
    await body(fake);
  } finally {
    for (const c of clients) await c.close();
    clients.clear();
    await fake.close();
  }
}

describe('parseLinks', () => {
  const base = 'https://push.example/subscribe';
  test('one header per link, comma-joined links, relative targets, rel lists, odd parameters', () => {
    assert.deepEqual(parseLinks([`</p/a>; rel="${PUSH_REL}"`, `<https://push.example/set/b>;rel=${SET_REL}`], base), [
      { url: 'https://push.example/p/a', rels: [PUSH_REL] },
      { url: 'https://push.example/set/b', rels: [SET_REL] },
    ]);
    assert.deepEqual(
      parseLinks(`</p/a>; title="x, y; z"; rel="${PUSH_REL.toUpperCase()} other", <set/b> ; rel = "${SET_REL}"; anchor="#"`, base),
      [
        { url: 'https://push.example/p/a', rels: [PUSH_REL, 'other'] },
        { url: 'https://push.example/set/b', rels: [SET_REL] },
      ],
    );
    assert.deepEqual(parseLinks(`garbage, </p/c>; rel="a"; rel="${PUSH_REL}"`, base), [{ url: 'https://push.example/p/c', rels: ['a'] }]);
    assert.deepEqual(parseLinks(undefined, base), []);
    assert.deepEqual(parseLinks('<http://[bad>; rel="x"', base), []);
  });

  test('toHttpUrl takes ws(s):// as http(s)://', () => {
    assert.equal(toHttpUrl('ws://127.0.0.1:8080'), 'http://127.0.0.1:8080/');
    assert.equal(toHttpUrl('wss://push.example/base/'), 'https://push.example/base/');
    assert.throws(() => toHttpUrl('ftp://x'), /http:\/\/, https:\/\//);
  });
});

describe('against a scripted RFC 8030 service', () => {
  test('subscribe: POST /subscribe, the set Link on later subscriptions, the VAPID key as webpush-options+json', () =>
    withFake({ linkStyle: 'joined' }, async (fake) => {
      const statePath = newStatePath();
      const client = await openOn(fake.url, { statePath });
      const a = await client.subscribe();
      const b = await client.subscribe({ vapidKey: vapidKeys.publicKey });
      const posts = fake.requests.filter((r) => r.method === 'POST');
      assert.deepEqual(posts.map((r) => r.path), ['/subscribe', '/subscribe']);
      assert.equal(posts[0]!.headers.link, undefined);
      assert.equal(posts[0]!.body, '');
      const set = [...fake.sets.values()][0]!;
      assert.equal(posts[1]!.headers.link, `<${fake.url}/set/${set.token}>; rel="${SET_REL}"`);
      assert.equal(posts[1]!.headers['content-type'], 'application/webpush-options+json');
      assert.deepEqual(JSON.parse(posts[1]!.body), { vapid: vapidKeys.publicKey });
      assert.equal(fake.sets.size, 1);
      assert.equal(set.subs.size, 2);

      const state = readState(statePath)!;
      assert.equal(state.protocol, 'http2');
      assert.deepEqual(
        state.subscriptions.map((s) => [s.endpoint, s.setUrl, s.subscriptionUrl?.startsWith(`${fake.url}/s/`)]),
        [
          [a.endpoint, `${fake.url}/set/${set.token}`, true],
          [b.endpoint, `${fake.url}/set/${set.token}`, true],
        ],
      );
      assert.ok(a.endpoint.startsWith(`${fake.url}/p/`));
      // subscribing does not start receiving: no GET without a 'message' listener
      assert.equal(fake.gets().length, 0);
    }));

  test('a refused set (400): the subscription is made without it, in a new set that is received too', () =>
    withFake({ refuseSets: true }, async (fake) => {
      const client = await openOn(fake.url, {});
      const messages = inbox(client);
      const a = await client.subscribe();
      const b = await client.subscribe();
      assert.equal(fake.sets.size, 2);
      await until(() => fake.monitors.size === 2);
      fake.send(a, 'in the first set');
      assert.equal((await messages.next()).text, 'in the first set');
      fake.send(b, 'in the second set');
      assert.equal((await messages.next()).text, 'in the second set');
    }));

  test('messages are delivered in the order of their push promises, however their bodies arrive; each is DELETEd', () =>
    withFake({ bodyDelayMs: (n) => [150, 100, 50, 0][n] ?? 0 }, async (fake) => {
      const client = await openOn(fake.url, {});
      const sub = await client.subscribe();
      // stored before the GET: pushed together when it comes
      const tokens = ['one', 'two', 'three', 'four'].map((t, i) => fake.send(sub, t, { encoding: i % 2 ? 'aesgcm' : 'aes128gcm' }));
      const messages = inbox(client);
      const got = [];
      for (let i = 0; i < 4; i++) got.push(await messages.next());
      assert.deepEqual(got.map((m) => m.text), ['one', 'two', 'three', 'four']);
      assert.deepEqual(got.map((m) => m.version), tokens.map((t) => `${fake.url}/m/${t}`));
      await until(() => fake.messages.length === 0);
      assert.deepEqual(fake.deletes(), tokens.map((t) => `/m/${t}`));
      assert.equal(fake.gets().length, 1);
      assert.match(fake.gets()[0]!.path, /^\/set\//);
      assert.equal(fake.gets()[0]!.headers.urgency, undefined);
    }));

  test('without a Link on the pushed response: the only subscription; with several, acknowledged with 102', () =>
    withFake({ noPushLink: true }, async (fake) => {
      const client = await openOn(fake.url, {});
      const messages = inbox(client);
      const errors: MessageErrorEvent[] = [];
      client.on('messageError', (e) => errors.push(e));
      const a = await client.subscribe();
      fake.send(a, 'the only one');
      assert.equal((await messages.next()).endpoint, a.endpoint);
      await client.subscribe();
      fake.send(a, 'which one?');
      await until(() => errors.length === 1);
      assert.equal(errors[0]!.code, 102);
      assert.equal(errors[0]!.channelID, '');
      await until(() => fake.messages.length === 0, 'not sent again and again');
      assert.equal(messages.received.length, 0);
    }));

  test('a message for an unknown push URL, or undecryptable: reported (102, 101) and DELETEd; delivery goes on', () =>
    withFake({}, async (fake) => {
      const client = await openOn(fake.url, {});
      const messages = inbox(client);
      const errors: MessageErrorEvent[] = [];
      client.on('messageError', (e) => errors.push(e));
      const sub = await client.subscribe();
      await until(() => fake.monitors.size === 1);
      fake.pushRaw({ 'content-encoding': 'aes128gcm', link: `<${fake.url}/p/unknown>; rel="${PUSH_REL}"` }, randomBytes(100));
      fake.pushRaw({ 'content-encoding': 'aes128gcm', link: `<${sub.endpoint}>; rel="${PUSH_REL}"` }, randomBytes(100));
      fake.send(sub, 'fine');
      assert.equal((await messages.next()).text, 'fine');
      assert.deepEqual(errors.map((e) => [e.code, e.endpoint]), [
        [102, `${fake.url}/p/unknown`],
        [101, sub.endpoint],
      ]);
      await until(() => fake.messages.length === 0);
    }));

  test('urgency: sent as the GET Urgency header; setUrgency() issues the GET again', () =>
    withFake({}, async (fake) => {
      const client = await openOn(fake.url, { urgency: 'normal' });
      const messages = inbox(client);
      const sub = await client.subscribe();
      fake.send(sub, 'very low', { urgency: 'very-low' });
      fake.send(sub, 'high', { urgency: 'high' });
      assert.equal((await messages.next()).text, 'high');
      assert.deepEqual(fake.gets().map((g) => g.headers.urgency), ['normal']);
      client.setUrgency(null);
      assert.equal((await messages.next()).text, 'very low');
      assert.deepEqual(fake.gets().map((g) => g.headers.urgency), ['normal', undefined]);
      client.setUrgency('high');
      await until(() => fake.gets().length === 3);
      assert.equal(fake.gets()[2]!.headers.urgency, 'high');
      assert.throws(() => client.setUrgency('urgent' as UrgencyLevel), /urgency must be one of/);
      await until(() => fake.monitors.size === 1);
    }));

  test('a dropped connection: reconnects, issues the GET again; unacknowledged messages come again, delivered once', () =>
    withFake({}, async (fake) => {
      const client = await openOn(fake.url, {});
      const sub = await client.subscribe();
      let release: (() => void) | null = null;
      const seen: string[] = [];
      client.on('message', async (m) => {
        seen.push(m.text!);
        if (m.text === 'slow') await new Promise<void>((r) => (release = r));
      });
      fake.send(sub, 'slow');
      await until(() => seen.length === 1);
      const disconnect = nextEvent<{ code: number; retryInMs: number | null }>(client, 'disconnect');
      fake.drop(); // while 'slow' is being handled: its DELETE cannot go out now
      const e = await disconnect;
      assert.equal(e.code, 1006);
      assert.equal(e.retryInMs, 50);
      await until(() => client.connected && fake.monitors.size === 1);
      release!();
      // the acknowledgement made while disconnected is sent on the new session
      await until(() => fake.messages.length === 0);
      fake.send(sub, 'after');
      await until(() => seen.length === 2);
      assert.deepEqual(seen, ['slow', 'after']);
      assert.equal(fake.gets().length, 2);
    }));

  test('GOAWAY: the client ends its GET, reconnects and reports code 1001', () =>
    withFake({}, async (fake) => {
      const client = await openOn(fake.url, {});
      const messages = inbox(client);
      const sub = await client.subscribe();
      await until(() => fake.monitors.size === 1);
      const disconnect = nextEvent<{ code: number; reason: string }>(client, 'disconnect');
      fake.goaway();
      const e = await disconnect;
      assert.equal(e.code, 1001);
      assert.match(e.reason, /GOAWAY/);
      await until(() => client.connected && fake.monitors.size === 1);
      fake.send(sub, 'on the new connection');
      assert.equal((await messages.next()).text, 'on the new connection');
    }));

  test('a GET the service ends (200) is issued again; one ending with 404 drops its subscriptions (reset)', () =>
    withFake({}, async (fake) => {
      const statePath = newStatePath();
      const client = await openOn(fake.url, { statePath });
      inbox(client);
      const a = await client.subscribe();
      await until(() => fake.monitors.size === 1);
      fake.endGets(200);
      await until(() => fake.gets().length === 2 && fake.monitors.size === 1);
      const reset = nextEvent<ResetEvent>(client, 'reset');
      fake.sets.clear();
      fake.subs.clear();
      fake.endGets(200); // issued again, now answered 404
      const e = await reset;
      assert.deepEqual(e.dropped.map((d) => d.endpoint), [a.endpoint]);
      assert.match(e.reason ?? '', /subscription set answered 404/);
      assert.equal(e.previousUaid, null);
      assert.deepEqual(readState(statePath)!.subscriptions, []);
      // no event to wait for: a GET issued again would come within the reconnect backoff
      await sleep(2 * RECONNECT.maxDelayMs);
      assert.equal(fake.gets().length, 3, 'a gone set is not asked again');
    }));

  test('unsubscribe: DELETE of the subscription URL; an already gone one (404) is removed too', () =>
    withFake({}, async (fake) => {
      const statePath = newStatePath();
      const client = await openOn(fake.url, { statePath });
      const a = await client.subscribe();
      const b = await client.subscribe();
      const [sa, sb] = readState(statePath)!.subscriptions;
      await client.unsubscribe(a.endpoint);
      fake.subs.clear();
      await client.unsubscribe(b.endpoint);
      assert.deepEqual(fake.deletes(), [new URL(sa!.subscriptionUrl!).pathname, new URL(sb!.subscriptionUrl!).pathname]);
      assert.deepEqual(readState(statePath)!.subscriptions, []);
    }));

  test('a listener picks up a subscription another process adds to the state file, in a new set', () =>
    withFake({}, async (fake) => {
      const statePath = newStatePath();
      const listener = await openOn(fake.url, { statePath });
      const messages = inbox(listener);
      assert.deepEqual(listener.subscriptions(), []);
      const other = await openOn(fake.url, { statePath });
      const sub = await other.subscribe();
      await other.close();
      await until(() => fake.monitors.size === 1, 'the file is polled every second');
      fake.send(sub, 'picked up');
      assert.equal((await messages.next()).text, 'picked up');
    }));

  test('over TLS (ALPN h2) with a CA; an untrusted certificate fails clearly', async () => {
    const cert = createTestCertificate();
    try {
      await withFake({ tls: { cert: cert.cert, key: cert.key } }, async (fake) => {
        const client = await openOn(fake.url, { ca: cert.cert });
        const messages = inbox(client);
        const sub = await client.subscribe();
        fake.send(sub, TEXT);
        assert.equal((await messages.next()).text, TEXT);
        await assert.rejects(PushUserAgent.open({ server: fake.url, protocol: 'http2' }), /could not connect to https:\/\/127\.0\.0\.1:\d+\/: .*certificate/);
      });
    } finally {
      cert.remove();
    }
  });

  test('an HTTP/1.1-only server or none: open() fails with a clear error', async () => {
    const { createServer } = await import('node:http');
    const h1 = createServer((_req, res) => res.end('hi'));
    await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));
    try {
      const port = (h1.address() as AddressInfo).port;
      await assert.rejects(PushUserAgent.open({ server: `http://127.0.0.1:${port}`, protocol: 'http2', requestTimeoutMs: 2000 }), /could not connect to http:\/\/127\.0\.0\.1/);
    } finally {
      h1.closeAllConnections();
      h1.close();
    }
    await assert.rejects(PushUserAgent.open({ server: 'http://127.0.0.1:1', protocol: 'http2' }), /could not connect to http:\/\/127\.0\.0\.1:1\/.*ECONNREFUSED/);
  });

  test('options and state files: protocol mismatch, urgency without http2, older state files', () => {
    const ws = join(dir, 'ws-old.json');
    // a state file from before the protocol field: WebSocket
    writeFileSync(ws, JSON.stringify({ server: 'http://127.0.0.1:1', uaid: 'a'.repeat(32), subscriptions: [] }));
    assert.equal(new PushUserAgent({ statePath: ws }).protocol, 'websocket');
    assert.throws(() => new PushUserAgent({ statePath: ws, protocol: 'http2' }), (err: unknown) => {
      assert.ok(err instanceof StateError);
      assert.match(err.message, /is for protocol websocket, not http2/);
      return true;
    });
    assert.throws(() => new PushUserAgent({ server: 'http://127.0.0.1:1', urgency: 'high' }), /urgency needs protocol http2/);
    assert.throws(() => new PushUserAgent({ server: 'http://127.0.0.1:1', protocol: 'http2', urgency: 'soon' as UrgencyLevel }), /urgency must be one of/);
    assert.throws(() => new PushUserAgent({ server: 'http://127.0.0.1:1', protocol: 'spdy' as 'http2' }), /unsupported protocol spdy/);
    assert.throws(() => new PushUserAgent({ server: 'http://127.0.0.1:1' }).setUrgency('high'), /urgency needs protocol http2/);

    const h2 = join(dir, 'h2.json');
    const sub = {
      channelID: '00000000-0000-4000-8000-000000000000',
      endpoint: 'http://127.0.0.1:1/p/x',
      keys: {
        p256dh: Buffer.alloc(65, 4).toString('base64url'),
        auth: Buffer.alloc(16).toString('base64url'),
        privateKey: Buffer.alloc(32, 1).toString('base64url'),
      },
    };
    writeFileSync(h2, JSON.stringify({ server: 'http://127.0.0.1:1', protocol: 'http2', uaid: null, subscriptions: [sub] }));
    assert.throws(() => new PushUserAgent({ statePath: h2 }), /subscriptions\[0\]\.subscriptionUrl is required with protocol http2/);
    writeFileSync(h2, JSON.stringify({ server: 'http://127.0.0.1:1', protocol: 'h3', uaid: null, subscriptions: [] }));
    assert.throws(() => new PushUserAgent({ statePath: h2 }), /protocol must be "websocket" or "http2"/);
    writeFileSync(
      h2,
      JSON.stringify({ server: 'http://127.0.0.1:1', protocol: 'http2', uaid: null, subscriptions: [{ ...sub, subscriptionUrl: 'http://127.0.0.1:1/s/x' }] }),
    );
    const client = new PushUserAgent({ statePath: h2 });
    assert.equal(client.protocol, 'http2');
    assert.equal(client.urgency, null);
    assert.equal(JSON.parse(readFileSync(h2, 'utf8')).protocol, 'http2');
  });
});
