// Protection against abusive clients, against in-process servers with small limits: rate limits
// (429 + Retry-After, errno 124), connections per address, header size and slow clients.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import http2 from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { createTestCertificate } from '../helpers/tls.ts';

const REL_PUSH = 'urn:ietf:params:push';

async function subscribe(server: TestServer): Promise<{ status: number; push: string | undefined }> {
  const r = await fetch(`${server.url}/subscribe`, { method: 'POST' });
  await r.arrayBuffer();
  const link = r.headers.get('link') ?? '';
  const push = new RegExp(`<([^>]+)>; rel="${REL_PUSH}"`).exec(link)?.[1];
  return { status: r.status, push };
}

async function send(push: string): Promise<{ status: number; retryAfter: string | null; body: Record<string, unknown> }> {
  const r = await fetch(push, { method: 'POST', headers: { ttl: '60' } });
  const text = await r.text();
  return { status: r.status, retryAfter: r.headers.get('retry-after'), body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe('rate limit per subscription', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ rateLimitSubscription: 1, rateLimitSubscriptionBurst: 2 });
  });
  after(() => server.close());

  test('over the rate: 429 with Retry-After and errno 124; another subscription is unaffected; after Retry-After it works', async () => {
    const a = (await subscribe(server)).push!;
    const b = (await subscribe(server)).push!;
    assert.equal((await send(a)).status, 201);
    assert.equal((await send(a)).status, 201);
    const refused = await send(a);
    assert.equal(refused.status, 429);
    assert.equal(refused.retryAfter, '1');
    assert.equal(refused.body.errno, 124);
    assert.equal(refused.body.code, 429);
    assert.equal((await send(b)).status, 201, 'another subscription has its own bucket');
    await sleep(Number(refused.retryAfter) * 1000 + 50);
    assert.equal((await send(a)).status, 201);
  });
});

describe('rate limit per client address', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ rateLimitAddress: 1, rateLimitAddressBurst: 2, loopbackLimits: 'limited' });
  });
  after(() => server.close());

  test('POST /subscribe over the rate gets 429 with Retry-After', async () => {
    assert.equal((await subscribe(server)).status, 201);
    assert.equal((await subscribe(server)).status, 201);
    const r = await fetch(`${server.url}/subscribe`, { method: 'POST' });
    const body = (await r.json()) as Record<string, unknown>;
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.equal(body.errno, 124);
  });

  test('loopback is exempt by default', async () => {
    const exempt = await startTestServer({ rateLimitAddress: 1, rateLimitAddressBurst: 1 });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await subscribe(exempt)).status, 201);
    } finally {
      await exempt.close();
    }
  });
});

describe('connections per client address', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ maxConnectionsPerAddress: 2, loopbackLimits: 'limited' });
  });
  after(() => server.close());

  test('the N+1th WebSocket is refused with 429 while the others keep working; a closed one frees its place', async () => {
    const a = await TestUserAgent.connect(server.wsUrl);
    const b = await TestUserAgent.connect(server.wsUrl);
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(server.wsUrl, ['push-notification']);
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode!));
      ws.once('open', () => reject(new Error('the third connection was accepted')));
      ws.once('error', () => {});
    });
    assert.equal(status, 429);
    assert.match(await a.hello(), /^[0-9a-f]{32}$/);
    assert.match(await b.hello(), /^[0-9a-f]{32}$/);
    await a.close();
    await sleep(50);
    const c = await TestUserAgent.connect(server.wsUrl);
    await c.hello();
    await Promise.all([b.close(), c.close()]);
  });

  test('an HTTP/2 session beyond the limit is refused', async () => {
    const ua = await TestUserAgent.connect(server.wsUrl);
    const ub = await TestUserAgent.connect(server.wsUrl);
    const session = http2.connect(server.url);
    session.on('error', () => {});
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const req = session.request({ ':method': 'POST', ':path': '/subscribe' });
    req.on('error', () => {});
    req.end();
    await closed;
    await Promise.all([ua.close(), ub.close()]);
  });
});

/** Resolves when the socket is closed by the server, with the milliseconds it took. */
function closedAfter(socket: Socket, start: number): Promise<{ ms: number; data: string }> {
  let data = '';
  socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
  socket.on('error', () => {});
  return new Promise((resolve) => socket.once('close', () => resolve({ ms: Date.now() - start, data })));
}

describe('header size and slow clients', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ maxHeaderBytes: 2048, headersTimeoutMs: 400, keepAliveTimeoutMs: 300, requestTimeoutMs: 2000 });
  });
  after(() => server.close());

  test('an over-size request head gets 431', async () => {
    const r = await fetch(`${server.url}/health`, { headers: { 'x-big': 'a'.repeat(4096) } });
    assert.equal(r.status, 431);
  });

  test('a slowloris client (request line trickled in) is disconnected after headersTimeout', async () => {
    const start = Date.now();
    const socket = connect(server.port, '127.0.0.1');
    const closed = closedAfter(socket, start);
    let stop = false;
    void closed.then(() => (stop = true));
    const line = 'GET /health HTTP/1.1\r\nHost: x\r\n';
    for (let i = 0; i < line.length && !stop; i++) {
      socket.write(line[i]!);
      await sleep(100);
    }
    const { ms } = await closed;
    assert.ok(stop, 'the server closed the connection before the head was complete');
    assert.ok(ms < 3000, `closed after ${ms} ms`);
  });

  test('a connection that sends nothing is closed', async () => {
    const socket = connect(server.port, '127.0.0.1');
    const { ms } = await closedAfter(socket, Date.now());
    assert.ok(ms < 3000, `closed after ${ms} ms`);
  });

  test('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    const start = Date.now();
    const socket = connect(server.port, '127.0.0.1');
    const closed = closedAfter(socket, start);
    socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    const { ms, data } = await closed;
    assert.match(data, /^HTTP\/1\.1 200/);
    assert.ok(ms >= 250 && ms < 3000, `closed after ${ms} ms`);
  });
});

describe('TLS handshake timeout', () => {
  test('a client that opens TCP and never completes the TLS handshake is cut', async () => {
    const cert = createTestCertificate();
    const server = await startTestServer({ tlsCert: cert.certFile, tlsKey: cert.keyFile, tlsHandshakeTimeoutMs: 300 });
    try {
      const socket = connect(server.port, '127.0.0.1');
      const { ms } = await closedAfter(socket, Date.now());
      assert.ok(ms >= 200 && ms < 3000, `closed after ${ms} ms`);
    } finally {
      await server.close();
    }
  });
});
