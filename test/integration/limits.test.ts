// Protection against abusive clients, against in-process servers with small limits: rate limits
// (429 + Retry-After, errno 124), connections per address, header size and slow clients.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import http2 from 'node:http2';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { createTestCertificate, type TestCertificate } from '../helpers/tls.ts';
import { within } from '../helpers/wait.ts';

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

  test('an HTTP/2 session beyond the limit gets GOAWAY ENHANCE_YOUR_CALM, no response, and is closed at once', async () => {
    const ua = await TestUserAgent.connect(server.wsUrl);
    const ub = await TestUserAgent.connect(server.wsUrl);
    const session = http2.connect(server.url);
    session.on('error', () => {});
    let goaway: number | undefined;
    session.on('goaway', (code) => (goaway = code));
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const req = session.request({ ':method': 'POST', ':path': '/subscribe' });
    let status: number | undefined;
    req.on('response', (h) => (status = h[':status']));
    req.on('error', () => {});
    req.end();
    try {
      // the refusal closes the session itself: an admitted one would idle for http2IdleTimeoutMs (120 s)
      await within(closed, 'the refused session closed', 2000);
      assert.equal(goaway, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      assert.equal(status, undefined, 'the request got no response');
    } finally {
      session.destroy();
      await Promise.all([ua.close(), ub.close()]);
    }
  });
});

describe('behind a trusted reverse proxy (X-Forwarded-For)', () => {
  let server: TestServer;
  before(async () => {
    // loopback stays exempt (the default): only the forwarded client addresses are limited
    server = await startTestServer({ trustedProxies: ['127.0.0.1', '::1'], rateLimitAddress: 1, rateLimitAddressBurst: 1, maxConnectionsPerAddress: 1 });
  });
  after(() => server.close());

  const subscribeAs = async (client: string) => (await fetch(`${server.url}/subscribe`, { method: 'POST', headers: { 'x-forwarded-for': client } })).status;
  const connectAs = (client: string) =>
    new Promise<{ status: number; ws?: WebSocket }>((resolve) => {
      const ws = new WebSocket(server.wsUrl, ['push-notification'], { headers: { 'x-forwarded-for': client } });
      ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode! }));
      ws.once('open', () => resolve({ status: 101, ws }));
      ws.once('error', () => {});
    });

  test('the per-address rate limit keys the forwarded client, not the proxy', async () => {
    assert.equal(await subscribeAs('203.0.113.7'), 201);
    assert.equal(await subscribeAs('203.0.113.7'), 429, 'the same client, over its rate');
    assert.equal(await subscribeAs('198.51.100.1, 203.0.113.8'), 201, 'another client (the rightmost untrusted hop)');
    assert.equal(await subscribeAs('203.0.113.8, 127.0.0.1'), 429, 'past a trusted hop: the same client as before');
    assert.equal((await subscribe(server)).status, 201, 'no header: the proxy itself, loopback, exempt');
  });

  test('connections per address count the forwarded client', async () => {
    const first = await connectAs('203.0.113.20');
    assert.equal(first.status, 101);
    assert.equal((await connectAs('203.0.113.20')).status, 429);
    const other = await connectAs('203.0.113.21');
    assert.equal(other.status, 101);
    first.ws!.close();
    other.ws!.close();
  });
});

test('without trusted proxies X-Forwarded-For is ignored: a client cannot pick its address', async () => {
  const server = await startTestServer({ rateLimitAddress: 1, rateLimitAddressBurst: 1, loopbackLimits: 'limited' });
  try {
    const as = async (client: string) => (await fetch(`${server.url}/subscribe`, { method: 'POST', headers: { 'x-forwarded-for': client } })).status;
    assert.equal(await as('203.0.113.30'), 201);
    assert.equal(await as('203.0.113.31'), 429, 'both are 127.0.0.1');
  } finally {
    await server.close();
  }
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

/** A TLS connection offering `alpn` (none: no ALPN extension), once its handshake is done. */
async function tlsConnected(port: number, ca: Buffer, alpn?: string[]): Promise<TLSSocket> {
  const socket = connectTls({ port, host: '127.0.0.1', ca, ...(alpn ? { ALPNProtocols: alpn } : {}) });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  return socket;
}

describe('HTTP/1.1 over TLS: slow clients (the TLS front enforces headersTimeout itself)', () => {
  let cert: TestCertificate;
  let server: TestServer;
  before(async () => {
    cert = createTestCertificate();
    // requestTimeoutMs and keepAliveTimeoutMs stay at their defaults (30 s, 5 s): only the headers
    // timeout can cut these connections within the bounds asserted below
    server = await startTestServer({ tlsCert: cert.certFile, tlsKey: cert.keyFile, headersTimeoutMs: 500 });
  });
  after(async () => {
    await server.close();
    cert.remove();
  });

  test('a slowloris client (ALPN http/1.1, request line trickled in) gets 408 and is disconnected after headersTimeout', async () => {
    const socket = await tlsConnected(server.port, cert.cert, ['http/1.1']);
    assert.equal(socket.alpnProtocol, 'http/1.1');
    const closed = closedAfter(socket, Date.now());
    let open = true;
    void closed.then(() => (open = false));
    // a head that would take 8 s to send, never complete (no empty line)
    const head = 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(80);
    let sent = 0;
    for (; sent < 80 && open; sent++) {
      socket.write(head[sent]!);
      await sleep(100);
    }
    if (open) socket.destroy();
    const { ms, data } = await closed;
    assert.ok(sent < 80, `the server kept the connection open while ${sent} bytes trickled in for ${ms} ms`);
    assert.ok(ms >= 300 && ms < 5000, `closed after ${ms} ms`);
    assert.match(data, /^HTTP\/1\.1 408 /);
  });

  for (const alpn of [undefined, ['http/1.1']]) {
    test(`a TLS connection (${alpn ? 'ALPN http/1.1' : 'no ALPN'}) that completes the handshake and sends nothing is cut after headersTimeout`, async () => {
      const socket = await tlsConnected(server.port, cert.cert, alpn);
      assert.equal(socket.alpnProtocol, alpn ? 'http/1.1' : false);
      const closed = closedAfter(socket, Date.now());
      const giveUp = setTimeout(() => socket.destroy(), 5000);
      const { ms, data } = await closed;
      clearTimeout(giveUp);
      assert.ok(ms >= 300 && ms < 5000, `closed after ${ms} ms`);
      assert.match(data, /^HTTP\/1\.1 408 /);
    });
  }
});

describe('HTTP/2 header size', () => {
  let cert: TestCertificate;
  let h2c: TestServer;
  let h2: TestServer;
  before(async () => {
    cert = createTestCertificate();
    h2c = await startTestServer({ maxHeaderBytes: 16384 });
    h2 = await startTestServer({ maxHeaderBytes: 16384, tlsCert: cert.certFile, tlsKey: cert.keyFile });
  });
  after(async () => {
    await Promise.all([h2c.close(), h2.close()]);
    cert.remove();
  });

  /** The response's status, or the code of the stream's reset when there was no response. */
  function get(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders = {}): Promise<{ status?: number; rstCode?: number }> {
    return new Promise((resolve) => {
      const req = session.request({ ':method': 'GET', ':path': '/health', ...headers });
      let status: number | undefined;
      req.on('response', (h) => (status = h[':status']));
      req.on('error', () => {});
      req.resume();
      req.once('close', () => resolve(status === undefined ? { rstCode: req.rstCode } : { status }));
      req.end();
    });
  }

  for (const transport of ['h2c (prior knowledge)', 'h2 over TLS'] as const) {
    test(`${transport}: a request whose headers exceed maxHeaderBytes is reset with ENHANCE_YOUR_CALM; the session keeps working`, async () => {
      const server = transport === 'h2 over TLS' ? h2 : h2c;
      // Node's client sends header blocks up to its maxSendHeaderBlockLength (64 KiB by default)
      // whatever the server advertises: the 20 KiB header below goes out on the wire.
      const session = http2.connect(server.url, transport === 'h2 over TLS' ? { ca: cert.cert } : {});
      let goaway: number | undefined;
      session.on('goaway', (code) => (goaway = code));
      session.on('error', () => {});
      try {
        await new Promise((resolve) => session.once('remoteSettings', resolve));
        assert.equal(session.remoteSettings.maxHeaderListSize, 16384);
        // no response (the handler never saw it): the server resets the stream
        const refused = await get(session, { 'x-big': 'a'.repeat(20 * 1024) });
        assert.deepEqual(refused, { rstCode: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM });
        // just under the limit passes, on the same session
        assert.deepEqual(await get(session, { 'x-big': 'a'.repeat(15 * 1024) }), { status: 200 });
        assert.deepEqual(await get(session), { status: 200 });
        assert.equal(goaway, undefined);
        assert.ok(!session.closed && !session.destroyed);
      } finally {
        session.close();
      }
    });
  }
});

describe('HTTP/2 sessions that say nothing, or never hang up', () => {
  const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  const frame = (type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)) => {
    const head = Buffer.alloc(9);
    head.writeUIntBE(payload.length, 0, 3);
    head[3] = type;
    head[4] = flags;
    head.writeUInt32BE(stream, 5);
    return Buffer.concat([head, payload]);
  };
  const SETTINGS = frame(0x4, 0, 0);
  // GET /health on stream 1 (HPACK: :method GET, :scheme http, literals :path /health, :authority a)
  const GET_HEALTH = frame(
    0x1,
    0x5 /* END_STREAM | END_HEADERS */,
    1,
    Buffer.concat([Buffer.from([0x82, 0x86, 0x04, 7]), Buffer.from('/health'), Buffer.from([0x01, 1]), Buffer.from('a')]),
  );

  /**
   * A raw h2c peer that reads everything but never closes its side. Once the server has ended
   * its side (GOAWAY, then FIN), the peer keeps sending PINGs: they go unnoticed while the
   * server's socket is half-open, and are reset once it is really closed. Resolves with what the
   * peer got and when it was cut.
   */
  async function stubbornPeer(server: TestServer, opening: Buffer): Promise<{ ms: number; received: Buffer }> {
    const socket = connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {});
    let pings: NodeJS.Timeout | undefined;
    socket.once('end', () => (pings = setInterval(() => socket.write(frame(0x6, 0, 0, Buffer.alloc(8))), 50)));
    const t0 = Date.now();
    socket.write(Buffer.concat([PREFACE, opening]));
    await new Promise((resolve) => socket.once('close', resolve));
    clearInterval(pings);
    return { ms: Date.now() - t0, received: Buffer.concat(chunks) };
  }

  /** Frame types in what the server sent. */
  function frameTypes(data: Buffer): number[] {
    const types: number[] = [];
    for (let i = 0; i + 9 <= data.length; i += 9 + data.readUIntBE(i, 3)) types.push(data[i + 3]!);
    return types;
  }

  test('a session that opens no stream within headersTimeout gets GOAWAY; a peer that never hangs up is cut after the keep-alive timeout', { timeout: 10_000 }, async () => {
    const server = await startTestServer({ headersTimeoutMs: 300, keepAliveTimeoutMs: 300, http2IdleTimeoutMs: 60_000 });
    try {
      const { ms, received } = await stubbornPeer(server, SETTINGS);
      assert.ok(frameTypes(received).includes(0x7), 'GOAWAY was sent first');
      assert.ok(ms >= 550 && ms < 5000, `cut after ${ms} ms: the timeout and the linger`);
    } finally {
      await server.close();
    }
  });

  test('an idle session (its request done) gets GOAWAY after http2IdleTimeout; a peer that never hangs up is cut', { timeout: 10_000 }, async () => {
    const server = await startTestServer({ headersTimeoutMs: 10_000, keepAliveTimeoutMs: 300, http2IdleTimeoutMs: 300 });
    try {
      const { ms, received } = await stubbornPeer(server, Buffer.concat([SETTINGS, GET_HEALTH]));
      const types = frameTypes(received);
      assert.ok(types.includes(0x1), `the request was answered (HEADERS): ${types.join()}`);
      assert.ok(types.indexOf(0x7) > types.indexOf(0x1), 'then GOAWAY');
      assert.ok(ms >= 550 && ms < 5000, `cut after ${ms} ms: the timeout and the linger`);
    } finally {
      await server.close();
    }
  });

  test('TLS with ALPN h2: a session that opens no stream is closed after headersTimeout', { timeout: 10_000 }, async () => {
    const cert = createTestCertificate();
    const server = await startTestServer({ headersTimeoutMs: 300, keepAliveTimeoutMs: 300, tlsCert: cert.certFile, tlsKey: cert.keyFile });
    try {
      const socket = connectTls({ port: server.port, host: '127.0.0.1', ca: cert.cert, ALPNProtocols: ['h2'] });
      socket.on('error', () => {});
      socket.resume();
      await new Promise((resolve) => socket.once('secureConnect', resolve));
      assert.equal(socket.alpnProtocol, 'h2');
      const t0 = Date.now();
      socket.write(Buffer.concat([PREFACE, SETTINGS]));
      await new Promise((resolve) => socket.once('close', resolve));
      const ms = Date.now() - t0;
      assert.ok(ms >= 250 && ms < 5000, `closed after ${ms} ms`);
    } finally {
      await server.close();
      cert.remove();
    }
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
