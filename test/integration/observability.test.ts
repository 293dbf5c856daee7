// Observability (docs/OPERATIONS.md): the admin listener's /metrics, /health and /ready, the
// metrics moving with real traffic over both user-agent doors, nothing internal on the public
// port, and log lines free of capability URLs and payloads.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect as connectTcp } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { DEFAULTS, type Config } from '../../src/config.ts';
import { REDACTED, redacting } from '../../src/observability/logging.ts';
import { startServer } from '../../src/server.ts';
import { aes128gcmBody } from '../helpers/bodies.ts';
import { H2Client } from '../helpers/h2-client.ts';
import { onRedis, startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

type Samples = Map<string, number>;

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|[Nn]a[Nn]|[+-]Inf)$/;
// (prom-client writes NaN as `Nan`; Prometheus parses floats case-insensitively)

/**
 * Parses the Prometheus text format strictly: every line a HELP, a TYPE or a sample; every
 * sample of a family announced by TYPE. Keys are `name` or `name{labels}` as written.
 */
function parsePrometheus(text: string): { samples: Samples; types: Map<string, string> } {
  const samples: Samples = new Map();
  const types = new Map<string, string>();
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      assert.ok(!types.has(m[1]!), `one TYPE line for ${m[1]}`);
      types.set(m[1]!, m[2]!);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    m = SAMPLE.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const name = m[1]!;
    const family = [name, name.replace(/_(bucket|sum|count|total)$/, '')].find((n) => types.has(n));
    assert.ok(family, `${name}: sample without a TYPE`);
    const key = name + (m[2] ?? '');
    assert.ok(!samples.has(key), `duplicate sample ${key}`);
    samples.set(key, Number(m[3]));
  }
  return { samples, types };
}

async function scrape(s: TestServer): Promise<Samples> {
  const r = await fetch(`${s.adminUrl}/metrics`);
  assert.equal(r.status, 200);
  return parsePrometheus(await r.text()).samples;
}

const value = (samples: Samples, key: string): number => samples.get(key) ?? 0;

/**
 * Waits until every metric in `expected` moved by at least its delta since `before`, then
 * asserts each moved by exactly that much. Returns the final scrape.
 */
async function expectDeltas(s: TestServer, before: Samples, expected: Record<string, number>, ms = 3000): Promise<Samples> {
  const deadline = Date.now() + ms;
  let now = await scrape(s);
  const reached = () => Object.entries(expected).every(([k, d]) => value(now, k) - value(before, k) >= d);
  while (!reached() && Date.now() < deadline) {
    await delay(20);
    now = await scrape(s);
  }
  const actual = Object.fromEntries(Object.keys(expected).map((k) => [k, value(now, k) - value(before, k)]));
  assert.deepEqual(actual, expected);
  return now;
}

/** One server with an admin listener for the enclosing describe block. */
function useServer(overrides: Partial<Config> = {}): () => TestServer {
  let server: TestServer | undefined;
  before(async () => {
    server = await startTestServer({ adminPort: 0, ...overrides });
  });
  after(async () => {
    if (!server) return;
    await server.close();
    rmSync(server.dataDir, { recursive: true, force: true });
  });
  return () => {
    assert.ok(server, 'server not started');
    return server;
  };
}

const ACCEPTED = 'webpushd_messages_accepted_total';
const STORED_TOTAL = 'webpushd_messages_stored_total';
const STORED_NOW = 'webpushd_messages_stored';
const DELIVERED_WS = 'webpushd_messages_delivered_total{transport="websocket"}';
const DELIVERED_H2 = 'webpushd_messages_delivered_total{transport="http2"}';
const ACKED = 'webpushd_messages_acknowledged_total';
const EXPIRED = 'webpushd_messages_expired_total';
const LATENCY_COUNT = 'webpushd_delivery_latency_seconds_count';
const COMMITS = 'webpushd_store_commit_seconds_count';
const COMMIT_WRITES = 'webpushd_store_commit_writes_sum';
const WS_CONNECTIONS = 'webpushd_connections{kind="websocket"}';
const H2_MONITORS = 'webpushd_connections{kind="http2_monitor"}';
const code = (c: number) => `webpushd_http_responses_total{code="${c}"}`;

async function post(url: string, body: Buffer | null, ttl = 60): Promise<Response> {
  const headers: Record<string, string> = { ttl: String(ttl) };
  if (body) headers['content-encoding'] = 'aes128gcm';
  return fetch(url, { method: 'POST', headers, ...(body ? { body } : {}) });
}

describe('the admin listener', () => {
  const server = useServer();

  test('binds its own port and serves /health, /ready and /metrics', async () => {
    const s = server();
    assert.ok(s.adminUrl, 'adminUrl is set when adminPort is');
    const admin = new URL(s.adminUrl);
    assert.equal(admin.hostname, '127.0.0.1');
    assert.notEqual(Number(admin.port), s.port);
    assert.notEqual(Number(admin.port), 0);

    const health = await fetch(`${s.adminUrl}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'OK' });
    const ready = await fetch(`${s.adminUrl}/ready`);
    assert.equal(ready.status, 200);
    assert.match(ready.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await ready.json(), { status: 'OK' });

    const metrics = await fetch(`${s.adminUrl}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const { samples, types } = parsePrometheus(await metrics.text());
    const expectedTypes: Record<string, string> = {
      webpushd_connections: 'gauge',
      webpushd_messages_accepted_total: 'counter',
      webpushd_messages_stored_total: 'counter',
      webpushd_messages_stored: 'gauge',
      webpushd_messages_rejected_total: 'counter',
      webpushd_messages_delivered_total: 'counter',
      webpushd_messages_acknowledged_total: 'counter',
      webpushd_messages_expired_total: 'counter',
      webpushd_http_responses_total: 'counter',
      webpushd_delivery_latency_seconds: 'histogram',
      webpushd_store_commit_seconds: 'histogram',
      webpushd_store_commit_writes: 'histogram',
    };
    for (const [name, type] of Object.entries(expectedTypes)) assert.equal(types.get(name), type, name);
    // known label values are there from the start
    for (const key of [WS_CONNECTIONS, H2_MONITORS, DELIVERED_WS, DELIVERED_H2, 'webpushd_messages_rejected_total{reason="too_many_stored"}']) {
      assert.equal(samples.get(key), 0, key);
    }
    // the process metrics of prom-client come along
    assert.ok(samples.has('process_cpu_user_seconds_total'));

    const head = await fetch(`${s.adminUrl}/ready`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal((await fetch(`${s.adminUrl}/metrics`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${s.adminUrl}/wpush/v1/x`)).status, 404);
    assert.equal((await fetch(`${s.adminUrl}/`)).status, 404);
  });

  test('nothing internal on the public port: /metrics and /ready are 404, /health stays', async () => {
    const s = server();
    const before = await scrape(s);
    for (const path of ['/metrics', '/ready', '/metrics?x=1']) {
      const r = await fetch(`${s.url}${path}`);
      assert.equal(r.status, 404, path);
      assert.doesNotMatch(await r.text(), /webpushd_|# TYPE/);
    }
    const health = await fetch(`${s.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'OK' });
    // responses of the public port are counted, the admin port's are not
    await expectDeltas(s, before, { [code(404)]: 3, [code(200)]: 1 });
  });

  test('two servers in one process keep their own registries', async () => {
    const other = await startTestServer({ adminPort: 0 });
    try {
      const s = server();
      const mine = await scrape(s);
      const r = await fetch(`${other.url}/nope`);
      assert.equal(r.status, 404);
      const theirs = await expectDeltas(other, new Map(), { [code(404)]: 1 });
      assert.ok(theirs.size > 0);
      await expectDeltas(s, mine, { [code(404)]: 0 });
    } finally {
      await other.close();
      rmSync(other.dataDir, { recursive: true, force: true });
    }
  });
});

describe('metrics follow the traffic', () => {
  const server = useServer();

  test('WebSocket: send, deliver, acknowledge move their counters by exactly one', async () => {
    const s = server();
    const ua = await TestUserAgent.connect(s.wsUrl);
    try {
      await ua.hello();
      const channelID = randomUUID();
      const reg = await ua.register(channelID);
      assert.equal(reg.status, 200);
      const endpoint = String(reg.pushEndpoint);
      const before = await expectDeltas(s, new Map(), { [WS_CONNECTIONS]: 1 });

      const sent = await post(endpoint, aes128gcmBody('metrics'));
      assert.equal(sent.status, 201);
      const note = await ua.next('notification');
      await expectDeltas(s, before, {
        [ACCEPTED]: 1,
        [STORED_TOTAL]: 1,
        [STORED_NOW]: 1,
        [DELIVERED_WS]: 1,
        [DELIVERED_H2]: 0,
        [LATENCY_COUNT]: 1,
        [ACKED]: 0,
        [code(201)]: 1,
      });

      ua.ack(channelID, String(note.version));
      const acked = await expectDeltas(s, before, {
        [ACCEPTED]: 1,
        [STORED_TOTAL]: 1,
        [STORED_NOW]: 0,
        [DELIVERED_WS]: 1,
        [ACKED]: 1,
        [EXPIRED]: 0,
        // one write each: the message saved, the message deleted by the ack (SQLite's group commits)
        ...(onRedis ? {} : { [COMMIT_WRITES]: 2 }),
      });
      const commits = value(acked, COMMITS) - value(before, COMMITS);
      assert.ok(onRedis ? commits === 0 : commits >= 1 && commits <= 2, `commits: ${commits}`);
      const latency = value(acked, 'webpushd_delivery_latency_seconds_sum') - value(before, 'webpushd_delivery_latency_seconds_sum');
      assert.ok(latency >= 0 && latency < 5, `latency ${latency}`);

      // TTL 0: accepted and handed on, never stored
      const ephemeral = await post(endpoint, aes128gcmBody('now-or-never'), 0);
      assert.equal(ephemeral.status, 201);
      await ua.next('notification');
      await expectDeltas(s, acked, { [ACCEPTED]: 1, [STORED_TOTAL]: 0, [DELIVERED_WS]: 1, [LATENCY_COUNT]: 1, ...(onRedis ? {} : { [COMMIT_WRITES]: 0 }) });
    } finally {
      await ua.close();
    }
    await expectDeltas(s, new Map(), { [WS_CONNECTIONS]: 0 });
  });

  test('refused sends count by reason and status code', async () => {
    const s = server();
    const ua = await TestUserAgent.connect(s.wsUrl);
    let endpoint: string;
    try {
      await ua.hello();
      const channelID = randomUUID();
      endpoint = String((await ua.register(channelID)).pushEndpoint);
      ua.send({ messageType: 'unregister', channelID });
      await ua.next('unregister');
    } finally {
      await ua.close();
    }
    const before = await scrape(s);
    assert.equal((await post(endpoint, aes128gcmBody())).status, 410);
    assert.equal((await post(`${s.url}/wpush/v1/not-a-token`, aes128gcmBody())).status, 404);
    assert.equal((await fetch(endpoint)).status, 405);
    await expectDeltas(s, before, {
      'webpushd_messages_rejected_total{reason="no_subscription"}': 1,
      [ACCEPTED]: 0,
      [code(410)]: 1,
      [code(404)]: 1,
      [code(405)]: 1,
      [code(201)]: 0,
    });
  });

  test('RFC 8030 over HTTP/2: monitor, push, acknowledge', async () => {
    const s = server();
    const c = await H2Client.connect(s.url);
    try {
      const sub = await c.subscribe();
      const before = await scrape(s);
      const monitor = c.monitor(sub.url);
      await expectDeltas(s, before, { [H2_MONITORS]: 1 });
      const sent = await c.send(sub.push, { body: aes128gcmBody('h2') });
      assert.equal(sent.status, 201);
      const pushed = await monitor.next();
      assert.equal(pushed.status, 200);
      assert.equal(await c.ack(pushed.url), 204);
      await expectDeltas(s, before, {
        [H2_MONITORS]: 1,
        [ACCEPTED]: 1,
        [DELIVERED_H2]: 1,
        [DELIVERED_WS]: 0,
        [ACKED]: 1,
        [STORED_NOW]: 0,
        [code(201)]: 1,
        [code(204)]: 1,
      });
      monitor.close();
      await expectDeltas(s, before, { [H2_MONITORS]: 0 });
    } finally {
      await c.close();
    }
  });

  test('expired messages are counted when swept', async () => {
    const s = server();
    const ua = await TestUserAgent.connect(s.wsUrl);
    let endpoint: string;
    try {
      await ua.hello();
      endpoint = String((await ua.register(randomUUID())).pushEndpoint);
    } finally {
      await ua.close();
    }
    const before = await scrape(s);
    assert.equal((await post(endpoint, aes128gcmBody('short-lived'), 1)).status, 201);
    await expectDeltas(s, before, { [STORED_NOW]: 1, [EXPIRED]: 0 });
    await delay(1100);
    const swept = await s.sweep();
    assert.equal(swept.expired.length, 1);
    await expectDeltas(s, before, { [STORED_NOW]: 0, [EXPIRED]: 1, [DELIVERED_WS]: 0 });
  });
});

describe('protection limits are counted by limit', () => {
  const server = useServer({
    rateLimitSubscription: 1,
    rateLimitSubscriptionBurst: 1,
    rateLimitAddress: 1,
    rateLimitAddressBurst: 3,
    maxConnectionsPerAddress: 1,
    loopbackLimits: 'limited',
  });
  const LIMITED = (limit: string) => `webpushd_limited_total{limit="${limit}"}`;

  test('subscription rate, address rate and connections per address each move their own counter', async () => {
    const s = server();
    const before = await scrape(s);
    for (const limit of ['subscription_rate', 'address_rate', 'address_connections']) {
      assert.ok(before.has(LIMITED(limit)), `${limit} is exported from the start`);
    }
    const ua = await TestUserAgent.connect(s.wsUrl);
    try {
      await ua.hello();
      const reg = await ua.register(randomUUID());
      // the second WebSocket from this address is one too many
      await assert.rejects(TestUserAgent.connect(s.wsUrl), /429/);
      // burst 1 per subscription: the second send is over it; the third is over the address's burst of 3
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await post(String(reg.pushEndpoint), null)).status);
      assert.deepEqual(statuses, [201, 429, 429]);
      await expectDeltas(s, before, {
        [LIMITED('subscription_rate')]: 2,
        [LIMITED('address_rate')]: 0,
        [LIMITED('address_connections')]: 1,
        [code(429)]: 2,
      });
      assert.equal((await post(String(reg.pushEndpoint), null)).status, 429);
      await expectDeltas(s, before, { [LIMITED('subscription_rate')]: 2, [LIMITED('address_rate')]: 1, [code(429)]: 3 });
      // the dashboard's totals too
      const stats = (await (await fetch(`${s.adminUrl}/api/stats`)).json()) as { messages: { limited: number } };
      assert.equal(stats.messages.limited, 4);
    } finally {
      await ua.close();
    }
  });
});

describe('readiness', () => {
  test('/ready is 503 with a reason once the store is unreachable; /health stays 200', async () => {
    const s = await startTestServer({ adminPort: 0 });
    try {
      assert.equal((await fetch(`${s.adminUrl}/ready`)).status, 200);
      await s.store.close();
      const r = await fetch(`${s.adminUrl}/ready`);
      assert.equal(r.status, 503);
      const body = (await r.json()) as { status: string; reason: string };
      assert.equal(body.status, 'UNAVAILABLE');
      assert.match(body.reason, /^store unreachable: /);
      assert.equal((await fetch(`${s.adminUrl}/health`)).status, 200);
      assert.equal((await fetch(`${s.url}/health`)).status, 200);
    } finally {
      // the store is closed already: closing it again fails, after everything else closed
      await s.close().catch(() => {});
      rmSync(s.dataDir, { recursive: true, force: true });
    }
  });

  test('no admin listener without adminPort', async () => {
    const s = await startTestServer();
    try {
      assert.equal(s.adminUrl, undefined);
      assert.equal((await fetch(`${s.url}/metrics`)).status, 404);
    } finally {
      await s.close();
      rmSync(s.dataDir, { recursive: true, force: true });
    }
  });

  test('a taken admin port fails the start', async () => {
    const first = await startTestServer({ adminPort: 0 });
    try {
      const adminPort = Number(new URL(first.adminUrl!).port);
      await assert.rejects(startTestServer({ adminPort }), /EADDRINUSE/);
    } finally {
      await first.close();
      rmSync(first.dataDir, { recursive: true, force: true });
    }
  });
});

/** A server logging at debug level into `lines` (one JSON line each). */
async function startLoggedServer(): Promise<{ s: TestServer; lines: string[]; dataDir: string }> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'webpushd-test-'));
  const config: Config = { ...DEFAULTS, host: '127.0.0.1', port: 0, sync: 'normal', dataDir, adminPort: 0 };
  const server = await startServer(config, pino({ level: 'debug' }, sink));
  return { s: Object.assign(server, { dataDir, wsUrl: `${server.url.replace(/^http/, 'ws')}/` }), lines, dataDir };
}

describe('logs', () => {
  test('capability URLs, tokens and payloads are censored', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = redacting(pino({ level: 'debug' }, sink));
    log.info({ endpoint: 'http://x/wpush/v1/SECRET', body: 'PAYLOAD', nested: { token: 'SECRET', payload: 'PAYLOAD' }, code: 1000 }, 'x');
    const line = JSON.parse(lines.join('')) as Record<string, unknown>;
    assert.equal(line.endpoint, REDACTED);
    assert.equal(line.body, REDACTED);
    assert.deepEqual(line.nested, { token: REDACTED, payload: REDACTED });
    assert.equal(line.code, 1000);
  });

  test('a server at debug level logs no push URL, token or payload', async () => {
    const { s, lines, dataDir } = await startLoggedServer();
    try {
      const ua = await TestUserAgent.connect(s.wsUrl);
      await ua.hello();
      const channelID = randomUUID();
      const endpoint = String((await ua.register(channelID)).pushEndpoint);
      assert.equal((await post(endpoint, aes128gcmBody('TOP-SECRET-PAYLOAD'))).status, 201);
      await ua.next('notification');
      assert.equal((await post(`${endpoint}x`, aes128gcmBody())).status, 404);
      ua.send('not json');
      const closed = await ua.closed;
      assert.equal(closed.code, 1002);
      await delay(50);
      const text = lines.join('');
      const token = new URL(endpoint).pathname.split('/').pop()!;
      assert.ok(!text.includes(token), 'no push token in the logs');
      assert.ok(!text.includes('/wpush/'), 'no push URL in the logs');
      assert.ok(!text.includes('TOP-SECRET'), 'no payload in the logs');
      const events = lines.map((l) => JSON.parse(l) as { msg: string; code?: number; status?: number; route?: string });
      assert.ok(events.some((e) => e.msg === 'admin listening (/metrics, /health, /ready, /dashboard)'));
      assert.ok(events.some((e) => e.msg === 'request refused' && e.status === 404 && e.route === 'wpush'));
      assert.ok(events.some((e) => e.msg === 'user agent connection closed' && e.code === 1002));
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a client that leaves in the middle of its body: a debug line, no error, no 500, nothing stored', async () => {
    const { s, lines, dataDir } = await startLoggedServer();
    try {
      const ua = await TestUserAgent.connect(s.wsUrl);
      await ua.hello();
      const path = new URL(String((await ua.register(randomUUID())).pushEndpoint)).pathname;
      await ua.close();
      const before = await scrape(s);
      // HTTP/1.1: 10 of 100 bytes, then the connection is gone
      const socket = connectTcp(s.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nTTL: 60\r\nContent-Encoding: aes128gcm\r\nContent-Length: 100\r\n\r\n0123456789`);
      // HTTP/2: a session gone before its stream's END_STREAM
      const h2 = await H2Client.connect(s.url);
      const stream = h2.session.request({ ':method': 'POST', ':path': path, ttl: '60', 'content-encoding': 'aes128gcm' });
      stream.on('error', () => {});
      stream.write(Buffer.alloc(10));
      await delay(100);
      socket.destroy();
      h2.session.destroy();
      await delay(200);
      const events = lines.map((l) => JSON.parse(l) as { level: number; msg: string });
      assert.equal(events.filter((e) => e.msg === 'request aborted by the client').length, 2);
      assert.deepEqual(events.filter((e) => e.level >= 50), [], 'nothing logged as an error');
      await expectDeltas(s, before, { [code(500)]: 0, [ACCEPTED]: 0, [STORED_NOW]: 0 });
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
