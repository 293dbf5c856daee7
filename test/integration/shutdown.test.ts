// Graceful shutdown (WebPushServer.close): a request in flight is answered before the store
// closes, and clients that never finish (a request body that never ends, a WebSocket that never
// answers the close frame, an HTTP/2 session that never hangs up) cannot hold the shutdown past
// shutdownTimeoutMs: then they are cut and the store still closes cleanly.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect as connectH2, type ClientHttp2Session } from 'node:http2';
import { connect as connectTcp, type Socket } from 'node:net';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { aes128gcmBody } from '../helpers/bodies.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { createTestCertificate } from '../helpers/tls.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const GRACE_MS = 700;
const cert = createTestCertificate();
after(() => cert.remove());

/** Closes the server, timing it; removes its data dir. */
async function timedClose(server: TestServer): Promise<number> {
  const t0 = Date.now();
  await server.close();
  rmSync(server.dataDir, { recursive: true, force: true });
  return Date.now() - t0;
}

/** A subscription's push URL, made over the WebSocket protocol. */
async function pushUrl(server: TestServer, options: WebSocket.ClientOptions = {}): Promise<{ ua: TestUserAgent; endpoint: string }> {
  const ua = await TestUserAgent.connect(server.wsUrl, undefined, options);
  ua.send({ messageType: 'hello', use_webpush: true });
  await ua.next('hello');
  ua.send({ messageType: 'register', channelID: '2d0c8f4b-7f1a-4d4e-9c1b-3c9a9f7e5a11' });
  const reg = (await ua.next('register')) as { pushEndpoint: string };
  return { ua, endpoint: reg.pushEndpoint };
}

const ignoreErrors = (...emitters: { on(e: 'error', f: () => void): unknown }[]) => {
  for (const e of emitters) e.on('error', () => {});
};

test('stuck clients are cut when the grace runs out: HTTP/1.1 and h2c bodies that never end, a WebSocket that never closes', { timeout: 20_000 }, async () => {
  const server = await startTestServer({ shutdownTimeoutMs: GRACE_MS });
  const { endpoint } = await pushUrl(server);
  const path = new URL(endpoint).pathname;

  // HTTP/1.1: 10 of 100 announced body bytes
  const h1: Socket = connectTcp(server.port, '127.0.0.1');
  h1.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nTTL: 60\r\nContent-Encoding: aes128gcm\r\nContent-Length: 100\r\n\r\n0123456789`);
  // h2c: a stream whose body never ends
  const h2: ClientHttp2Session = connectH2(server.url);
  const stream = h2.request({ ':method': 'POST', ':path': path, ttl: '60', 'content-encoding': 'aes128gcm' });
  stream.write(Buffer.alloc(10));
  // a WebSocket client that ignores the close frame (never answers it)
  const ws = new WebSocket(server.wsUrl, ['push-notification']);
  await new Promise((resolve) => ws.once('open', resolve));
  (ws as unknown as { _socket: Socket })._socket.removeAllListeners('data');
  ignoreErrors(h1, h2, stream, ws);
  const h1Closed = new Promise((resolve) => h1.once('close', resolve));
  const h2Closed = new Promise((resolve) => h2.once('close', resolve));
  h1.resume();
  await new Promise((resolve) => setTimeout(resolve, 100));

  const ms = await timedClose(server);
  assert.ok(ms >= GRACE_MS - 50, `closed after ${ms} ms: the stuck clients were given the grace`);
  assert.ok(ms < GRACE_MS + 3000, `closed after ${ms} ms: not held by the stuck clients`);
  await h1Closed;
  await h2Closed;
});

test('TLS: an HTTP/2 session with a request that never ends is cut after the grace', { timeout: 20_000 }, async () => {
  const server = await startTestServer({ tlsCert: cert.certFile, tlsKey: cert.keyFile, shutdownTimeoutMs: GRACE_MS });
  const { endpoint } = await pushUrl(server, { ca: cert.cert });
  const h2 = connectH2(server.url, { ca: cert.cert });
  const stream = h2.request({ ':method': 'POST', ':path': new URL(endpoint).pathname, ttl: '60', 'content-encoding': 'aes128gcm' });
  stream.write(Buffer.alloc(10));
  ignoreErrors(h2, stream);
  const h2Closed = new Promise((resolve) => h2.once('close', resolve));
  await new Promise((resolve) => h2.once('remoteSettings', resolve));

  const ms = await timedClose(server);
  assert.ok(ms >= GRACE_MS - 50, `closed after ${ms} ms`);
  assert.ok(ms < GRACE_MS + 3000, `closed after ${ms} ms: not held by the stuck session`);
  await h2Closed;
});

test('a request in flight at shutdown is answered (201), then its connection closed; new connections are refused meanwhile', async () => {
  const server = await startTestServer({ shutdownTimeoutMs: 10_000 });
  const { ua, endpoint } = await pushUrl(server);
  ua.ws.close();
  const path = new URL(endpoint).pathname;
  const body = aes128gcmBody('in flight');
  const socket = connectTcp(server.port, '127.0.0.1');
  ignoreErrors(socket);
  socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nTTL: 60\r\nContent-Encoding: aes128gcm\r\nContent-Length: ${body.length}\r\n\r\n`);
  socket.write(body.subarray(0, 10));
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString()));
  const ended = new Promise((resolve) => socket.once('close', resolve));
  await new Promise((resolve) => setTimeout(resolve, 100));

  const closing = server.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const refused = connectTcp(server.port, '127.0.0.1');
  const error = await new Promise<NodeJS.ErrnoException>((resolve) => refused.once('error', resolve));
  assert.equal(error.code, 'ECONNREFUSED');
  socket.write(body.subarray(10));
  await closing;
  await ended;
  rmSync(server.dataDir, { recursive: true, force: true });
  assert.match(answer, /^HTTP\/1\.1 201 /);
});
