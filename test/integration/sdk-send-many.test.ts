// PushClient.sendMany against a scripted HTTP/2 push service (429 then 201, 410, 500, bounded
// concurrency, one session; the trace of a request, a reset and a GOAWAY) and against webpushd over HTTPS (many user agents, a gone
// subscription, one shared receipt subscription and its receipts, cancelling a message).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { PushClient, WebPushValidationError, listenReceipts, type PushSubscription, type Receipt, type SendManyProgress, type TraceEvent } from '../../src/index.ts';
import { createSubscriberKeys } from '../helpers/decrypt.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { createTestCertificate, type TestCertificate } from '../helpers/tls.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';

let cert: TestCertificate;
before(() => {
  cert = createTestCertificate();
});
after(() => cert?.remove());

const keys = () => createSubscriberKeys().keys;

describe('sendMany against a scripted push service', () => {
  let server: http2.Http2SecureServer;
  let origin: string;
  let sessions = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const seen = new Map<string, number>();

  before(async () => {
    server = http2.createSecureServer({ cert: cert.cert, key: cert.key });
    server.on('session', () => (sessions += 1));
    server.on('stream', (stream, headers) => {
      const path = String(headers[':path']);
      const n = (seen.get(path) ?? 0) + 1;
      seen.set(path, n);
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      stream.resume();
      stream.on('error', () => {}); // the reset this server makes itself
      stream.on('end', () =>
        setTimeout(() => {
          inFlight -= 1;
          if (path.startsWith('/reset')) {
            stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
            stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR);
            return;
          }
          if (path.startsWith('/gone')) stream.respond({ ':status': 410 });
          else if (path.startsWith('/down')) stream.respond({ ':status': 500 });
          else if (path.startsWith('/flaky') && n === 1) stream.respond({ ':status': 429, 'retry-after': '0' });
          else stream.respond({ ':status': 201, location: `/m${path}` });
          stream.end();
        }, 5),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('a result per subscription in input order, gone ones listed, retries, at most `concurrency` in flight on one session', async () => {
    const paths = Array.from({ length: 40 }, (_, i) => (i % 10 === 3 ? `/gone/${i}` : i % 10 === 5 ? `/down/${i}` : i % 10 === 7 ? `/flaky/${i}` : `/ok/${i}`));
    const subs: PushSubscription[] = paths.map((p) => ({ endpoint: `${origin}${p}`, keys: keys() }));
    const progress: SendManyProgress[] = [];
    const client = new PushClient();
    try {
      const summary = await client.sendMany(subs, 'hi', {
        TTL: 60,
        tls: { ca: cert.cert },
        concurrency: 4,
        retries: 1,
        sleep: () => Promise.resolve(),
        onResult: (_, p) => progress.push(p),
      });
      assert.deepEqual(
        { total: summary.total, done: summary.done, sent: summary.sent, gone: summary.gone, failed: summary.failed },
        { total: 40, done: 40, sent: 32, gone: 4, failed: 4 },
      );
      assert.deepEqual(summary.results.map((r) => r.index), paths.map((_, i) => i));
      for (const r of summary.results) {
        const path = paths[r.index]!;
        assert.equal(r.subscription, subs[r.index]);
        if (path.startsWith('/gone')) assert.deepEqual([r.outcome, r.statusCode, r.attempts], ['gone', 410, 1], path);
        else if (path.startsWith('/down')) assert.deepEqual([r.outcome, r.statusCode, r.attempts], ['failed', 500, 2], path);
        else if (path.startsWith('/flaky')) assert.deepEqual([r.outcome, r.statusCode, r.attempts, r.location], ['sent', 201, 2, `${origin}/m${path}`], path);
        else assert.deepEqual([r.outcome, r.statusCode, r.attempts, r.location], ['sent', 201, 1, `${origin}/m${path}`], path);
      }
      assert.deepEqual(summary.goneSubscriptions, subs.filter((_, i) => paths[i]!.startsWith('/gone')));
      assert.deepEqual(progress.map((p) => p.done), paths.map((_, i) => i + 1), 'progress told once per subscription');
      assert.deepEqual(progress.at(-1), { total: 40, done: 40, sent: 32, gone: 4, failed: 4 });
      assert.equal(maxInFlight, 4, 'the workers kept 4 requests in flight, never more');
      assert.equal(sessions, 1, 'one HTTP/2 session for all');
    } finally {
      await client.close();
    }
  });

  test('an invalid subscription fails alone (nothing sent for it); bad options refuse the whole send', async () => {
    const before = [...seen.values()].reduce((a, b) => a + b, 0);
    const client = new PushClient();
    try {
      const summary = await client.sendMany(
        [{ endpoint: `${origin}/ok/a`, keys: keys() }, { endpoint: 'not a url' }, { endpoint: `${origin}/ok/b`, keys: { p256dh: 'short', auth: 'x' } }],
        'hi',
        { tls: { ca: cert.cert } },
      );
      assert.deepEqual(summary.results.map((r) => [r.outcome, r.attempts]), [['sent', 1], ['failed', 0], ['failed', 0]]);
      assert.ok(summary.results[1]!.error instanceof WebPushValidationError);
      await assert.rejects(client.sendMany([{ endpoint: `${origin}/ok/c` }], null, { TTL: -1 }), WebPushValidationError);
      await assert.rejects(client.sendMany([{ endpoint: `${origin}/ok/c` }], null, { concurrency: 0 }), /concurrency/);
      assert.equal([...seen.values()].reduce((a, b) => a + b, 0), before + 1, 'only the valid one was sent');
    } finally {
      await client.close();
    }
  });

  test('trace: each request and response header block, DATA lengths and the TLS handshake', async () => {
    const events: TraceEvent[] = [];
    const client = new PushClient({ trace: (e) => events.push(e) });
    try {
      await client.sendNotification({ endpoint: `${origin}/ok/traced`, keys: keys() }, 'hi', { TTL: 60, tls: { ca: cert.cert } });
      const tls = events.find((e) => e.event === 'tls');
      assert.equal(tls?.alpn, 'h2');
      assert.deepEqual((tls?.peer as { subject: string }).subject, '127.0.0.1');
      const request = events.find((e) => e.event === 'request')!;
      const h = request.headers as Record<string, string>;
      assert.equal(h[':method'], 'POST');
      assert.equal(h[':path'], '/ok/traced');
      assert.equal(h['content-encoding'], 'aes128gcm');
      const sent = events.find((e) => e.event === 'data' && e.sent !== undefined);
      assert.equal(sent?.sent, Number(h['content-length']));
      const response = events.find((e) => e.event === 'response')!;
      assert.equal((response.headers as Record<string, unknown>)[':status'], 201);
      assert.equal(typeof request.stream, 'number');
      assert.equal(response.stream, request.stream);

      // a reset stream and the GOAWAY after it, with their codes
      events.length = 0;
      await assert.rejects(client.sendNotification({ endpoint: `${origin}/reset/traced` }, null, { TTL: 60, tls: { ca: cert.cert }, retries: 0 }));
      const reset = events.find((e) => e.event === 'rst_stream');
      assert.deepEqual([typeof reset?.stream, reset?.code], ['number', http2.constants.NGHTTP2_INTERNAL_ERROR]);
      await until(() => events.some((e) => e.event === 'goaway'), 'the GOAWAY traced', 2_000);
      assert.equal(events.find((e) => e.event === 'goaway')!.code, http2.constants.NGHTTP2_NO_ERROR);
    } finally {
      await client.close();
    }
  });
});

describe('sendMany against webpushd (HTTPS, HTTP/2)', () => {
  const AGENTS = 20;
  const PER_AGENT = 10;
  let server: TestServer;
  const agents: TestUserAgent[] = [];

  before(async () => {
    server = await startTestServer({ tlsCert: cert.certFile, tlsKey: cert.keyFile });
    for (let i = 0; i < AGENTS; i++) {
      const ua = await TestUserAgent.connect(server.wsUrl, 'push-notification', { ca: cert.cert });
      await ua.hello();
      agents.push(ua);
    }
  });
  after(async () => {
    for (const ua of agents) await ua.close();
    await server?.close();
  });

  test('every user agent gets its messages; an unsubscribed one is gone; one receipt subscription for all, and its receipts', async () => {
    const subs: (PushSubscription & { ua: TestUserAgent; channelID: string })[] = [];
    for (const ua of agents) {
      for (let i = 0; i < PER_AGENT; i++) {
        const channelID = randomUUID();
        const reply = await ua.register(channelID);
        subs.push({ endpoint: reply.pushEndpoint as string, keys: keys(), ua, channelID });
      }
    }
    const dropped = subs[7]!;
    dropped.ua.send({ messageType: 'unregister', channelID: dropped.channelID });
    await dropped.ua.next('unregister');

    const client = new PushClient();
    try {
      const summary = await client.sendMany(subs, (_, i) => `message ${i}`, { TTL: 600, tls: { ca: cert.cert }, receipt: true });
      assert.equal(summary.sent, AGENTS * PER_AGENT - 1, JSON.stringify(summary.results.filter((r) => r.outcome !== 'sent' && r.index !== 7).map((r) => [r.index, r.statusCode, r.error?.message])));
      assert.deepEqual(summary.goneSubscriptions, [dropped]);
      assert.equal(summary.results[7]!.statusCode, 410);
      const receiptUrls = new Set(summary.results.filter((r) => r.outcome === 'sent').map((r) => r.receiptSubscription));
      assert.equal(receiptUrls.size, 1, 'one receipt subscription, asked by the first send and named by the others');
      const [receiptUrl] = [...receiptUrls] as [string];
      assert.ok(receiptUrl.startsWith(`${server.url}/r/`), receiptUrl);
      assert.equal(client.http2Sessions, 1, 'one HTTP/2 session for all');

      // each user agent acknowledges what it got, but the last message of the first one is cancelled first
      const cancelled = summary.results.find((r) => r.subscription === subs[PER_AGENT - 1])!;
      // the user agent may already hold it: cancel before it acknowledges, then it is gone for the ack
      assert.equal(await client.cancelNotification(cancelled.location!, { tls: { ca: cert.cert } }), true);
      assert.equal(await client.cancelNotification(cancelled.location!, { tls: { ca: cert.cert } }), false, 'a second cancel: 410');
      for (const ua of agents) {
        const expected = ua === dropped.ua ? PER_AGENT - 1 : PER_AGENT;
        for (let i = 0; i < expected; i++) {
          const n = await ua.next('notification');
          ua.ack(n.channelID as string, n.version as string);
        }
      }
      // receipts are at least once: one pushed as a GET ended may come again on the next
      const receipts = new Map<string, Receipt>();
      const deadline = Date.now() + 5_000;
      while (receipts.size < summary.sent && Date.now() < deadline) {
        await listenReceipts(receiptUrl, { nowait: true, tls: { ca: cert.cert }, onReceipt: (r) => receipts.set(r.message, r) });
      }
      const locations = new Set(summary.results.filter((r) => r.outcome === 'sent').map((r) => r.location));
      assert.deepEqual(new Set(receipts.keys()), locations);
      assert.ok([...receipts.values()].every((r) => r.status === 204 && r.delivered), 'acknowledged and cancelled messages are 204');

      // held open: a receipt comes as the message is acknowledged, however long after the GET
      const live: Receipt[] = [];
      const controller = new AbortController();
      const listening = listenReceipts(receiptUrl, { tls: { ca: cert.cert }, connectTimeout: 300, signal: controller.signal, onReceipt: (r) => live.push(r) });
      const later = await client.sendNotification(subs[0]!, 'later', { TTL: 600, tls: { ca: cert.cert }, receipt: receiptUrl });
      assert.equal(later.receiptSubscription, receiptUrl, 'the named receipt subscription is echoed');
      await new Promise((resolve) => setTimeout(resolve, 500));
      const n = await subs[0]!.ua.next('notification');
      subs[0]!.ua.ack(n.channelID as string, n.version as string);
      await until(() => live.length > 0, 'the live receipt', 5_000);
      assert.deepEqual(live, [{ status: 204, delivered: true, message: later.location }]);
      controller.abort();
      assert.deepEqual(await listening, { receipts: 1, ended: 'aborted' });
    } finally {
      await client.close();
    }
  });
});
