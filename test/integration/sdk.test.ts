// The application-server SDK (src/sdk) against an in-process webpushd over HTTP/1.1 and HTTPS,
// against small HTTP/2 and HTTP/1.1 test servers (session reuse, GOAWAY, retries, timeouts),
// and against web-push's validation messages. What the user agent receives is decrypted with
// src/crypto's decryptMessage; generateRequestDetails' output also with `http_ece`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID, type ECDH } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import webpush from 'web-push';
import {
  PushClient,
  SubscriptionGoneError,
  WebPushError,
  WebPushValidationError,
  generateRequestDetails,
  generateVAPIDKeys,
  type PushSubscription,
  type RequestOptions,
} from '../../src/index.ts';
import { decryptMessage } from '../../src/crypto/webpush.ts';
import { createSubscriberKeys, decryptWithHttpEce, privateKeyOf } from '../helpers/decrypt.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { createTestCertificate, type TestCertificate } from '../helpers/tls.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';

interface Service {
  server: TestServer;
  ua: TestUserAgent;
}

interface Receiver {
  service: Service;
  channelID: string;
  ecdh: ECDH;
  subscription: PushSubscription & { keys: { p256dh: string; auth: string } };
}

const SUBJECT = 'mailto:sdk@example.com';
const TEXT = 'Hello from the SDK: ünïcödé ✓ 🚀 "quotes" & <tags>\n';
const vapidKeys = generateVAPIDKeys();
const vapidDetails = { subject: SUBJECT, ...vapidKeys };

let cert: TestCertificate;
let plain: Service;
let secure: Service;
let client: PushClient;

async function startService(tls: boolean): Promise<Service> {
  const server = await startTestServer(tls ? { tlsCert: cert.certFile, tlsKey: cert.keyFile } : {});
  const ua = await TestUserAgent.connect(server.wsUrl, 'push-notification', tls ? { ca: cert.cert } : {});
  await ua.hello();
  return { server, ua };
}

before(async () => {
  cert = createTestCertificate();
  [plain, secure] = await Promise.all([startService(false), startService(true)]);
  client = new PushClient();
});

after(async () => {
  await client?.close();
  for (const s of [plain, secure]) {
    if (s?.ua.ws.readyState === s.ua.ws.OPEN) await s.ua.close();
    await s?.server.close();
  }
  cert?.remove();
});

async function subscribe(service: Service, restrictTo?: string): Promise<Receiver> {
  const channelID = randomUUID();
  const reply = await service.ua.register(channelID, restrictTo);
  assert.equal(reply.status, 200);
  const { ecdh, keys } = createSubscriberKeys();
  return { service, channelID, ecdh, subscription: { endpoint: reply.pushEndpoint as string, keys } };
}

/** The receiver's next notification, acknowledged and decrypted (undefined: no data). */
async function receive(r: Receiver): Promise<string | undefined> {
  const n = await r.service.ua.next('notification');
  r.service.ua.ack(n.channelID as string, n.version as string);
  assert.equal(n.channelID, r.channelID);
  if (n.data === undefined) return undefined;
  const headers = n.headers as Record<string, string>;
  const plaintext = decryptMessage(
    Buffer.from(n.data as string, 'base64url'),
    { encoding: headers.encoding!, encryption: headers.encryption, cryptoKey: headers.crypto_key },
    { publicKey: r.ecdh.getPublicKey(), privateKey: privateKeyOf(r.ecdh), auth: Buffer.from(r.subscription.keys.auth, 'base64url') },
  );
  return plaintext.toString('utf8');
}

function tlsFor(service: Service): RequestOptions {
  return service === secure ? { tls: { ca: cert.cert } } : {};
}

for (const name of ['http', 'https'] as const) {
  describe(`SDK -> webpushd over ${name === 'http' ? 'HTTP/1.1' : 'HTTPS (HTTP/2 by ALPN)'}`, () => {
    const service = () => (name === 'http' ? plain : secure);

    for (const encoding of ['aes128gcm', 'aesgcm'] as const) {
      for (const vapid of [true, false]) {
        test(`${encoding} ${vapid ? 'with VAPID (restricted subscription)' : 'without VAPID'}`, async () => {
          const r = await subscribe(service(), vapid ? vapidKeys.publicKey : undefined);
          const options: RequestOptions = {
            TTL: 60,
            contentEncoding: encoding,
            ...tlsFor(service()),
            ...(vapid ? { vapidDetails } : {}),
          };
          for (const text of [TEXT, 'second message, same VAPID token']) {
            const result = await client.sendNotification(r.subscription, text, options);
            assert.equal(result.statusCode, 201);
            assert.equal(result.httpVersion, name === 'http' ? '1.1' : '2');
            assert.equal(result.attempts, 1);
            assert.equal(result.headers.ttl, '60');
            assert.ok(result.location?.startsWith(`${service().server.url}/m/`), result.location);
            assert.equal(await receive(r), text);
          }
        });
      }
    }

    test('no payload: a message without data', async () => {
      const r = await subscribe(service());
      const result = await client.sendNotification(r.subscription, null, { TTL: 30, ...tlsFor(service()) });
      assert.equal(result.statusCode, 201);
      assert.equal(await receive(r), undefined);
    });

    test('keys in padded base64 (as some browsers serialise them) work too', async () => {
      const r = await subscribe(service());
      const padded = {
        endpoint: r.subscription.endpoint,
        keys: {
          p256dh: r.ecdh.getPublicKey().toString('base64'),
          auth: Buffer.from(r.subscription.keys.auth, 'base64url').toString('base64'),
        },
      };
      assert.match(padded.keys.auth, /=$/);
      await client.sendNotification(padded, TEXT, tlsFor(service()));
      assert.equal(await receive(r), TEXT);
    });

    test('after the user agent unregisters: SubscriptionGoneError 410 with the autopush body', async () => {
      const r = await subscribe(service());
      service().ua.send({ messageType: 'unregister', channelID: r.channelID, code: 200 });
      assert.equal((await service().ua.next('unregister')).status, 200);
      await assert.rejects(client.sendNotification(r.subscription, TEXT, tlsFor(service())), (err: unknown) => {
        assert.ok(err instanceof SubscriptionGoneError, String(err));
        assert.ok(err instanceof WebPushError);
        assert.equal(err.statusCode, 410);
        assert.equal(err.endpoint, r.subscription.endpoint);
        assert.equal(err.headers['cache-control'], 'max-age=86400');
        assert.equal(err.attempts, 1);
        const body = JSON.parse(err.body) as Record<string, unknown>;
        assert.equal(body.code, 410);
        assert.equal(body.errno, 106);
        return true;
      });
    });

    test('a tampered push URL: SubscriptionGoneError 404 (errno 102)', async () => {
      const r = await subscribe(service());
      const url = new URL(r.subscription.endpoint);
      const token = url.pathname.split('/').pop()!;
      const flipped = token.slice(0, 10) + (token[10] === 'A' ? 'B' : 'A') + token.slice(11);
      url.pathname = url.pathname.replace(token, flipped);
      const tampered = { ...r.subscription, endpoint: url.toString() };
      await assert.rejects(client.sendNotification(tampered, TEXT, tlsFor(service())), (err: unknown) => {
        assert.ok(err instanceof SubscriptionGoneError, String(err));
        assert.equal(err.statusCode, 404);
        assert.equal((JSON.parse(err.body) as { errno: number }).errno, 102);
        return true;
      });
    });

    test('400 (a bad Urgency header): WebPushError with the autopush body, not retried', async () => {
      const r = await subscribe(service());
      const sleeps: number[] = [];
      const sleep = async (ms: number) => void sleeps.push(ms);
      await assert.rejects(
        client.sendNotification(r.subscription, TEXT, { headers: { Urgency: 'urgent' }, sleep, ...tlsFor(service()) }),
        (err: unknown) => {
          assert.ok(err instanceof WebPushError, String(err));
          assert.ok(!(err instanceof SubscriptionGoneError));
          assert.equal(err.statusCode, 400);
          assert.equal(err.attempts, 1);
          const body = JSON.parse(err.body) as Record<string, unknown>;
          assert.deepEqual([body.code, body.errno, body.error], [400, 115, 'Bad Request']);
          return true;
        },
      );
      assert.deepEqual(sleeps, []);
    });

    test('a wrong VAPID key on a restricted subscription: WebPushError 403', async () => {
      const r = await subscribe(service(), vapidKeys.publicKey);
      const other = { subject: SUBJECT, ...generateVAPIDKeys() };
      await assert.rejects(client.sendNotification(r.subscription, TEXT, { vapidDetails: other, ...tlsFor(service()) }), {
        name: 'WebPushError',
        statusCode: 403,
      });
    });
  });
}

test('HTTPS webpushd: one HTTP/2 session carries every send', async () => {
  const c = new PushClient();
  try {
    const r = await subscribe(secure);
    for (let i = 0; i < 3; i++) {
      const result = await c.sendNotification(r.subscription, `m${i}`, { tls: { ca: cert.cert } });
      assert.equal(result.httpVersion, '2');
      assert.equal(await receive(r), `m${i}`);
    }
    assert.equal(c.http2Sessions, 1);
  } finally {
    await c.close();
  }
});

test('an HTTPS push service without h2: the origin is remembered as HTTP/1.1, no HTTP/2 session is kept', async () => {
  const versions: string[] = [];
  const h1only = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    versions.push(req.httpVersion);
    req.resume();
    req.on('end', () => {
      res.writeHead(201, { location: 'https://127.0.0.1/m/x' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => h1only.listen(0, '127.0.0.1', resolve));
  const c = new PushClient();
  try {
    const endpoint = `https://127.0.0.1:${(h1only.address() as AddressInfo).port}/wpush/v1/x`;
    const { subscription } = await subscribe(plain);
    for (let i = 0; i < 3; i++) {
      const result = await c.sendNotification({ ...subscription, endpoint }, `m${i}`, { tls: { ca: cert.cert } });
      assert.equal(result.statusCode, 201);
      assert.equal(result.httpVersion, '1.1');
    }
    assert.deepEqual(versions, ['1.1', '1.1', '1.1']);
    assert.equal(c.http2Sessions, 0);
  } finally {
    await c.close();
    h1only.close();
  }
});

/** A server recording each request and answering from a script (then 201). */
async function scriptedServer(script: { status: number; headers?: Record<string, string>; body?: string; hang?: boolean }[]) {
  const requests: { headers: http.IncomingHttpHeaders; body: Buffer; url: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks), url: req.url ?? '' });
      const step = script.shift() ?? { status: 201, headers: { location: 'http://example/m/1' } };
      if (step.hang) return;
      res.writeHead(step.status, step.headers);
      res.end(step.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function fakeSubscription(endpoint: string): PushSubscription {
  return { endpoint, keys: createSubscriberKeys().keys };
}

describe('headers on the wire', () => {
  test('TTL, Urgency, Topic, encoding and VAPID headers as web-push sends them', async () => {
    const s = await scriptedServer([]);
    try {
      const sub = fakeSubscription(`${s.url}/push/abc`);
      await client.sendNotification(sub, TEXT, { TTL: 120, urgency: 'high', topic: 'news-1_a', vapidDetails });
      await client.sendNotification(sub, TEXT, { contentEncoding: 'aesgcm', vapidDetails, headers: { 'X-Extra': 'yes' } });
      await client.sendNotification(sub, null, {});
      const [a, b, c] = s.requests;
      assert.equal(a!.url, '/push/abc');
      assert.equal(a!.headers.ttl, '120');
      assert.equal(a!.headers.urgency, 'high');
      assert.equal(a!.headers.topic, 'news-1_a');
      assert.equal(a!.headers['content-encoding'], 'aes128gcm');
      assert.equal(a!.headers['content-type'], 'application/octet-stream');
      assert.equal(a!.headers['content-length'], String(a!.body.length));
      assert.equal(a!.body.length, 86 + Buffer.byteLength(TEXT) + 17);
      assert.match(a!.headers.authorization!, new RegExp(`^vapid t=[\\w-]+\\.[\\w-]+\\.[\\w-]+, k=${vapidKeys.publicKey}$`));
      const claims = JSON.parse(Buffer.from(a!.headers.authorization!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      assert.equal(claims.aud, s.url);
      assert.equal(claims.sub, SUBJECT);
      assert.ok(Math.abs((claims.exp as number) - (Date.now() / 1000 + 12 * 3600)) < 120, 'exp ~12 h ahead');

      assert.equal(b!.headers.ttl, '2419200', 'web-push default TTL');
      assert.equal(b!.headers.urgency, 'normal');
      assert.equal(b!.headers.topic, undefined);
      assert.equal(b!.headers['content-encoding'], 'aesgcm');
      assert.match(String(b!.headers.encryption), /^salt=[\w-]{22}$/);
      assert.match(String(b!.headers['crypto-key']), new RegExp(`^dh=[\\w-]{87};p256ecdsa=${vapidKeys.publicKey}$`));
      assert.match(b!.headers.authorization!, /^WebPush [\w-]+\.[\w-]+\.[\w-]+$/);
      assert.equal(b!.headers['x-extra'], 'yes');

      assert.equal(c!.headers['content-length'], '0');
      assert.equal(c!.headers['content-encoding'], undefined);
      assert.equal(c!.headers.authorization, undefined);
      assert.equal(c!.body.length, 0);
    } finally {
      await s.close();
    }
  });

  test('the VAPID token is signed once per audience and reused', async () => {
    const s1 = await scriptedServer([]);
    const s2 = await scriptedServer([]);
    try {
      const details = { subject: SUBJECT, ...generateVAPIDKeys() };
      for (const s of [s1, s1, s2, s2]) await client.sendNotification(fakeSubscription(`${s.url}/p/${randomUUID()}`), 'x', { vapidDetails: details });
      const [a, b] = s1.requests.map((r) => r.headers.authorization);
      const [c, d] = s2.requests.map((r) => r.headers.authorization);
      assert.equal(a, b);
      assert.equal(c, d);
      assert.notEqual(a, c, 'another origin, another aud');
    } finally {
      await Promise.all([s1.close(), s2.close()]);
    }
  });
});

describe('retries', () => {
  const recorder = () => {
    const sleeps: number[] = [];
    return { sleeps, sleep: async (ms: number) => void sleeps.push(ms) };
  };

  test('429 with Retry-After: 1, then 201: waits the 1 s the service asked for', async () => {
    const s = await scriptedServer([{ status: 429, headers: { 'retry-after': '1' }, body: '{"code":429,"errno":116}' }]);
    try {
      const { sleeps, sleep } = recorder();
      const result = await client.sendNotification(fakeSubscription(`${s.url}/p`), TEXT, { sleep });
      assert.equal(result.statusCode, 201);
      assert.equal(result.attempts, 2);
      assert.deepEqual(sleeps, [1000]);
      assert.equal(s.requests.length, 2);
      assert.deepEqual(s.requests[0]!.body, s.requests[1]!.body, 'the same encrypted message is sent again');
    } finally {
      await s.close();
    }
  });

  test('the real timer honours Retry-After', async () => {
    const s = await scriptedServer([{ status: 429, headers: { 'retry-after': '1' } }]);
    try {
      const started = Date.now();
      await client.sendNotification(fakeSubscription(`${s.url}/p`), TEXT);
      assert.ok(Date.now() - started >= 990, `${Date.now() - started} ms`);
    } finally {
      await s.close();
    }
  });

  test('Retry-After as an HTTP date', async () => {
    const when = new Date(Date.now() + 5000).toUTCString();
    const s = await scriptedServer([{ status: 503, headers: { 'retry-after': when } }]);
    try {
      const { sleeps, sleep } = recorder();
      await client.sendNotification(fakeSubscription(`${s.url}/p`), TEXT, { sleep });
      assert.equal(sleeps.length, 1);
      assert.ok(sleeps[0]! > 3000 && sleeps[0]! <= 5000, String(sleeps[0]));
    } finally {
      await s.close();
    }
  });

  test('503 twice, then 201: exponential backoff with jitter', async () => {
    const s = await scriptedServer([{ status: 503 }, { status: 503 }]);
    try {
      const { sleeps, sleep } = recorder();
      const result = await client.sendNotification(fakeSubscription(`${s.url}/p`), TEXT, { sleep });
      assert.equal(result.attempts, 3);
      assert.equal(sleeps.length, 2);
      assert.ok(sleeps[0]! >= 250 && sleeps[0]! <= 500, String(sleeps[0]));
      assert.ok(sleeps[1]! >= 500 && sleeps[1]! <= 1000, String(sleeps[1]));
    } finally {
      await s.close();
    }
  });

  test('retries exhausted: the last WebPushError; retries: 0 disables them', async () => {
    const s = await scriptedServer([{ status: 500 }, { status: 502 }, { status: 503, body: 'busy' }, { status: 504 }]);
    try {
      const { sleeps, sleep } = recorder();
      await assert.rejects(client.sendNotification(fakeSubscription(`${s.url}/p`), TEXT, { sleep }), {
        name: 'WebPushError',
        statusCode: 503,
        body: 'busy',
        attempts: 3,
      });
      assert.equal(sleeps.length, 2);
      await assert.rejects(client.sendNotification(fakeSubscription(`${s.url}/p`), TEXT, { sleep, retries: 0 }), {
        statusCode: 504,
        attempts: 1,
      });
      assert.equal(s.requests.length, 4);
    } finally {
      await s.close();
    }
  });

  test('a Retry-After longer than maxRetryAfter fails at once and reports it', async () => {
    const s = await scriptedServer([{ status: 429, headers: { 'retry-after': '3600' } }]);
    try {
      const { sleeps, sleep } = recorder();
      await assert.rejects(client.sendNotification(fakeSubscription(`${s.url}/p`), TEXT, { sleep }), {
        statusCode: 429,
        retryAfterMs: 3_600_000,
        attempts: 1,
      });
      assert.deepEqual(sleeps, []);
    } finally {
      await s.close();
    }
  });

  test('400, 404, 410 and 413 are not retried', async () => {
    const s = await scriptedServer([{ status: 400 }, { status: 404 }, { status: 410 }, { status: 413 }]);
    try {
      const { sleeps, sleep } = recorder();
      for (const status of [400, 404, 410, 413]) {
        await assert.rejects(client.sendNotification(fakeSubscription(`${s.url}/p`), TEXT, { sleep }), (err: unknown) => {
          assert.ok(err instanceof WebPushError);
          assert.equal(err.statusCode, status);
          assert.equal(err instanceof SubscriptionGoneError, status === 404 || status === 410);
          return true;
        });
      }
      assert.deepEqual(sleeps, []);
      assert.equal(s.requests.length, 4);
    } finally {
      await s.close();
    }
  });

  test('timeout: a service that never answers fails with "Socket timeout"', async () => {
    const s = await scriptedServer([{ status: 0, hang: true }]);
    try {
      const started = Date.now();
      await assert.rejects(client.sendNotification(fakeSubscription(`${s.url}/p`), TEXT, { timeout: 200 }), {
        message: 'Socket timeout',
        code: 'ETIMEDOUT',
      });
      assert.ok(Date.now() - started < 2000);
    } finally {
      await s.close();
    }
  });
});

describe('HTTP/2', () => {
  interface H2Request {
    headers: http2.IncomingHttpHeaders;
    httpVersion: string;
  }

  interface H2Server {
    url: string;
    sessions: http2.ServerHttp2Session[];
    requests: H2Request[];
    close(): Promise<void>;
  }

  /** HTTP/2 (and, through allowHTTP1, HTTP/1.1) server answering 201 unless `intercept` handles the request. */
  async function h2Server(intercept?: (req: http2.Http2ServerRequest, n: number) => boolean): Promise<H2Server> {
    const sessions: http2.ServerHttp2Session[] = [];
    const requests: H2Request[] = [];
    const server = http2.createSecureServer({ cert: cert.cert, key: cert.key, allowHTTP1: true });
    server.on('session', (session) => sessions.push(session));
    server.on('request', (req, res) => {
      requests.push({ headers: req.headers, httpVersion: req.httpVersion });
      req.resume();
      req.on('end', () => {
        if (intercept?.(req, requests.length)) return;
        res.writeHead(201, { location: `https://127.0.0.1/m/${requests.length}`, ttl: String(req.headers.ttl) });
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
      sessions,
      requests,
      close: () => {
        for (const s of sessions) s.destroy();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  test('one session per origin, reused by sequential and concurrent sends', async () => {
    const s = await h2Server();
    const c = new PushClient();
    try {
      const sub = fakeSubscription(`${s.url}/wpush/v1/abc?x=1`);
      const options: RequestOptions = { TTL: 77, urgency: 'low', topic: 't1', vapidDetails, tls: { ca: cert.cert } };
      for (let i = 0; i < 3; i++) {
        const result = await c.sendNotification(sub, TEXT, options);
        assert.equal(result.statusCode, 201);
        assert.equal(result.httpVersion, '2');
        assert.equal(result.location, `https://127.0.0.1/m/${i + 1}`);
        assert.equal(result.headers.ttl, '77');
      }
      const results = await Promise.all(Array.from({ length: 10 }, () => c.sendNotification(sub, TEXT, options)));
      assert.ok(results.every((r) => r.statusCode === 201 && r.httpVersion === '2'));
      assert.equal(s.sessions.length, 1, 'one TLS connection for 13 messages');
      assert.equal(c.http2Sessions, 1);
      assert.ok(s.requests.every((r) => r.httpVersion === '2.0'));
      const h = s.requests[0]!.headers;
      assert.equal(h[':method'], 'POST');
      assert.equal(h[':path'], '/wpush/v1/abc?x=1');
      assert.equal(h.ttl, '77');
      assert.equal(h.urgency, 'low');
      assert.equal(h.topic, 't1');
      assert.equal(h['content-encoding'], 'aes128gcm');
      assert.match(String(h.authorization), /^vapid t=.+, k=/);
    } finally {
      await c.close();
      await s.close();
    }
    assert.equal(c.http2Sessions, 0);
  });

  test('after GOAWAY the next send opens a new session', async () => {
    const s = await h2Server();
    const c = new PushClient();
    try {
      const sub = fakeSubscription(`${s.url}/p`);
      await c.sendNotification(sub, TEXT, { tls: { ca: cert.cert } });
      s.sessions[0]!.goaway();
      await until(() => c.http2Sessions === 0, 'the client let the session go after GOAWAY');
      const result = await c.sendNotification(sub, TEXT, { tls: { ca: cert.cert } });
      assert.equal(result.httpVersion, '2');
      assert.equal(s.sessions.length, 2);
    } finally {
      await c.close();
      await s.close();
    }
  });

  test('a refused stream is sent again on a new session; other stream errors are not', async () => {
    const s = await h2Server((req, n) => {
      if (n === 2) req.stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      if (n === 4) req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return n === 2 || n === 4;
    });
    const c = new PushClient();
    try {
      const sub = fakeSubscription(`${s.url}/p`);
      const o = { tls: { ca: cert.cert } };
      await c.sendNotification(sub, TEXT, o);
      const resent = await c.sendNotification(sub, TEXT, o);
      assert.equal(resent.statusCode, 201);
      assert.equal(resent.attempts, 1);
      assert.equal(s.requests.length, 3);
      await assert.rejects(c.sendNotification(sub, TEXT, o), /stream/i);
      assert.equal(s.requests.length, 4);
    } finally {
      await c.close();
      await s.close();
    }
  });

  test('an idle session is closed after idleTimeout', async () => {
    const s = await h2Server();
    const c = new PushClient({ idleTimeout: 100 });
    try {
      await c.sendNotification(fakeSubscription(`${s.url}/p`), TEXT, { tls: { ca: cert.cert } });
      assert.equal(c.http2Sessions, 1);
      // well before the 30 s default idle timeout
      await until(() => c.http2Sessions === 0 && (s.sessions[0]!.closed || s.sessions[0]!.destroyed), 'the idle session closed', 5000);
    } finally {
      await c.close();
      await s.close();
    }
  });

  test('http2: false (or an agent) uses HTTP/1.1 on the same server', async () => {
    const s = await h2Server();
    const c = new PushClient();
    try {
      const result = await c.sendNotification(fakeSubscription(`${s.url}/p`), TEXT, { tls: { ca: cert.cert }, http2: false });
      assert.equal(result.httpVersion, '1.1');
      assert.equal(s.requests[0]!.httpVersion, '1.1');
      const agent = new https.Agent({ ca: cert.cert });
      const viaAgent = await c.sendNotification(fakeSubscription(`${s.url}/p`), TEXT, { agent });
      agent.destroy();
      assert.equal(viaAgent.httpVersion, '1.1');
      assert.equal(c.http2Sessions, 0);
    } finally {
      await c.close();
      await s.close();
    }
  });

  test('an untrusted certificate is an error, not a fallback', async () => {
    const s = await h2Server();
    const c = new PushClient();
    try {
      await assert.rejects(c.sendNotification(fakeSubscription(`${s.url}/p`), TEXT), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    } finally {
      await c.close();
      await s.close();
    }
  });
});

describe('validation: the same errors as web-push', () => {
  const good = fakeSubscription('https://push.example.net/wpush/v1/abc');
  const cases: [string, unknown, unknown, Record<string, unknown> | undefined][] = [
    ['no subscription', undefined, 'x', undefined],
    ['no endpoint', { keys: good.keys }, 'x', undefined],
    ['endpoint not a string', { endpoint: 42, keys: good.keys }, 'x', undefined],
    ['payload without keys', { endpoint: good.endpoint }, 'x', undefined],
    ['p256dh not a string', { endpoint: good.endpoint, keys: { p256dh: 5, auth: good.keys!.auth } }, 'x', undefined],
    ['p256dh too short', { endpoint: good.endpoint, keys: { p256dh: 'AAAA', auth: good.keys!.auth } }, 'x', undefined],
    ['auth too short', { endpoint: good.endpoint, keys: { p256dh: good.keys!.p256dh, auth: 'AAAA' } }, 'x', undefined],
    ['payload of another type', good, 42, undefined],
    ['negative TTL', good, 'x', { TTL: -1 }],
    ['unknown urgency', good, 'x', { urgency: 'urgent' }],
    ['unknown encoding', good, 'x', { contentEncoding: 'gzip' }],
    ['topic with bad characters', good, 'x', { topic: 'no spaces!' }],
    ['topic too long', good, 'x', { topic: 'a'.repeat(33) }],
    ['header duplicating an option', good, 'x', { TTL: 5, headers: { TTL: 6 } }],
    ['VAPID subject missing', good, 'x', { vapidDetails: { ...vapidKeys } }],
    ['VAPID subject not https or mailto', good, 'x', { vapidDetails: { ...vapidDetails, subject: 'ftp://example.com' } }],
    ['VAPID subject not a URL', good, 'x', { vapidDetails: { ...vapidDetails, subject: 'nope' } }],
    ['VAPID public key missing', good, 'x', { vapidDetails: { ...vapidDetails, publicKey: '' } }],
    ['VAPID public key too short', good, 'x', { vapidDetails: { ...vapidDetails, publicKey: 'AAAA' } }],
    ['VAPID private key too short', good, 'x', { vapidDetails: { ...vapidDetails, privateKey: 'AAAA' } }],
  ];
  for (const [name, sub, payload, options] of cases) {
    test(name, async () => {
      let expected: string | undefined;
      try {
        webpush.generateRequestDetails(sub as webpush.PushSubscription, payload as string, options as webpush.RequestOptions);
      } catch (err) {
        expected = (err as Error).message;
      }
      assert.ok(expected, 'web-push throws');
      const check = (err: unknown) => {
        assert.ok(err instanceof WebPushValidationError, String(err));
        // web-push's message lacks a space in "in thetop level"
        assert.equal(err.message.replace('in the top', 'in thetop'), expected);
        return true;
      };
      assert.throws(() => generateRequestDetails(sub as PushSubscription, payload as string, options as RequestOptions), check);
      await assert.rejects(client.sendNotification(sub as PushSubscription, payload as string, options as RequestOptions), check);
    });
  }

  test('unknown options are named; SDK-only checks', () => {
    assert.throws(() => generateRequestDetails(good, 'x', { proxy: 'http://p' } as RequestOptions), {
      name: 'WebPushValidationError',
      field: 'proxy',
      message: /^'proxy' is an invalid option\. The valid options are \['headers', 'vapidDetails', 'TTL'/,
    });
    assert.throws(() => generateRequestDetails(good, 'x', { TTL: Number.NaN }), { field: 'TTL' });
    assert.throws(() => generateRequestDetails(good, 'x', { TTL: 1.5 }), { field: 'TTL' });
    assert.throws(() => generateRequestDetails(good, 'x', { retries: -1 }), { field: 'retries' });
    assert.throws(() => generateRequestDetails(good, 'x', { headers: { 'Bad Name': 'x' } }), { field: 'headers' });
    assert.throws(() => generateRequestDetails(good, 'x', { headers: { 'X-A': 'a\r\nb' } }), { field: 'headers' });
    assert.throws(() => generateRequestDetails({ endpoint: 'ftp://x/y' }, null), { field: 'subscription.endpoint' });
    assert.throws(
      () => generateRequestDetails(good, 'x', { vapidDetails: { ...vapidDetails, publicKey: generateVAPIDKeys().publicKey } }),
      { field: 'vapidDetails.publicKey', message: 'VAPID publicKey does not match privateKey' },
    );
    // no payload: keys are not needed
    assert.equal(generateRequestDetails({ endpoint: good.endpoint }).body, null);
  });
});

describe('generateRequestDetails', () => {
  test('the request web-push would build, decryptable by the subscriber', () => {
    const { ecdh, keys } = createSubscriberKeys();
    const { auth } = keys;
    const sub = { endpoint: 'https://push.example.net/wpush/v1/abc', keys };
    const d = generateRequestDetails(sub, TEXT, { TTL: 10, topic: 'abc', vapidDetails });
    assert.equal(d.method, 'POST');
    assert.equal(d.endpoint, sub.endpoint);
    assert.deepEqual(Object.keys(d.headers), ['TTL', 'Content-Length', 'Content-Type', 'Content-Encoding', 'Authorization', 'Urgency', 'Topic']);
    const w = webpush.generateRequestDetails(sub, TEXT, { TTL: 10, topic: 'abc', vapidDetails });
    assert.deepEqual(Object.keys(d.headers), Object.keys(w.headers));
    assert.equal(d.headers['Content-Length'], String(w.headers['Content-Length']));
    assert.equal(decryptWithHttpEce(d.body!, 'aes128gcm', ecdh, auth).toString(), TEXT);

    const g = generateRequestDetails(sub, TEXT, { contentEncoding: 'aesgcm' });
    const plain = decryptWithHttpEce(g.body!, 'aesgcm', ecdh, auth, {
      encryption: g.headers.Encryption,
      cryptoKey: g.headers['Crypto-Key'],
    });
    assert.equal(plain.toString(), TEXT);
  });
});
