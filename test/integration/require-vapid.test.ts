// --require-vapid: with it every push without valid VAPID is 401 errno 109 (TTL 0 and Topic
// sends too), and web-push's signed requests still go through; without it anonymous sends are
// accepted. The requests are web-push's own (generateRequestDetails), sent over plain HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import webpush from 'web-push';
import { createSubscriberKeys } from '../helpers/decrypt.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const vapidDetails = { subject: 'mailto:ops@example.com', ...webpush.generateVAPIDKeys() };

interface Door {
  server: TestServer;
  ua: TestUserAgent;
}

async function open(requireVapid: 'on' | 'off'): Promise<Door> {
  const server = await startTestServer({ requireVapid });
  const ua = await TestUserAgent.connect(server.wsUrl);
  await ua.hello();
  return { server, ua };
}

async function subscription(door: Door): Promise<webpush.PushSubscription> {
  const reply = await door.ua.register(randomUUID());
  assert.equal(reply.status, 200);
  return { endpoint: reply.pushEndpoint as string, keys: createSubscriberKeys().keys };
}

/** Builds the request with web-push and sends it; the status and the parsed body (if any). */
async function send(
  sub: webpush.PushSubscription,
  options: webpush.RequestOptions,
  payload = 'hello',
): Promise<{ status: number; body: Record<string, unknown> | null }> {
  const d = webpush.generateRequestDetails(sub, payload, options);
  const res = await fetch(d.endpoint, { method: d.method, headers: d.headers as Record<string, string>, body: d.body ?? null });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : null };
}

function assertRefused(r: { status: number; body: Record<string, unknown> | null }, what: string): void {
  assert.equal(r.status, 401, what);
  assert.equal(r.body?.errno, 109, what);
  assert.equal(r.body?.code, 401, what);
  assert.equal(r.body?.error, 'Unauthorized', what);
  assert.match(String(r.body?.message), /VAPID authentication failed: this service requires VAPID/, what);
}

describe('--require-vapid on', () => {
  let door: Door;
  before(async () => {
    door = await open('on');
  });
  after(async () => {
    await door?.ua.close();
    await door?.server.close();
  });

  test('a send without VAPID is 401 errno 109, also with TTL 0, a Topic or no payload', async () => {
    const sub = await subscription(door);
    assertRefused(await send(sub, { TTL: 60 }), 'TTL 60');
    assertRefused(await send(sub, { TTL: 0 }), 'TTL 0');
    assertRefused(await send(sub, { TTL: 60, topic: 'news' }), 'Topic');
    assertRefused(await send(sub, { TTL: 60 }, ''), 'empty message');
    assertRefused(await send(sub, { TTL: 60, contentEncoding: 'aesgcm' }), 'aesgcm');
  });

  test('VAPID signed by web-push is accepted, in both encodings, with TTL 0 and a Topic', async () => {
    const sub = await subscription(door);
    assert.equal((await send(sub, { TTL: 60, vapidDetails })).status, 201);
    assert.equal((await send(sub, { TTL: 60, vapidDetails, contentEncoding: 'aesgcm' })).status, 201);
    assert.equal((await send(sub, { TTL: 0, vapidDetails })).status, 201);
    assert.equal((await send(sub, { TTL: 60, vapidDetails, topic: 'news' })).status, 201);
  });

  test('VAPID that does not verify is still 401 (signed for another origin)', async () => {
    const sub = await subscription(door);
    const other = { ...sub, endpoint: sub.endpoint.replace('127.0.0.1', 'localhost') };
    const d = webpush.generateRequestDetails(other, 'hello', { TTL: 60, vapidDetails });
    const res = await fetch(sub.endpoint, { method: 'POST', headers: d.headers as Record<string, string>, body: d.body });
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 401);
    assert.equal(body.errno, 109);
    assert.match(String(body.message), /aud/);
  });
});

describe('--require-vapid off (the default)', () => {
  let door: Door;
  before(async () => {
    door = await open('off');
  });
  after(async () => {
    await door?.ua.close();
    await door?.server.close();
  });

  test('a send without VAPID is accepted, as one with', async () => {
    const sub = await subscription(door);
    assert.equal((await send(sub, { TTL: 60 })).status, 201);
    assert.equal((await send(sub, { TTL: 0 })).status, 201);
    assert.equal((await send(sub, { TTL: 60, vapidDetails })).status, 201);
  });
});
