// Aggregates on Redis with two nodes behind one public URL: an aggregate created on one node is
// read, changed and sent to on the other, and a fan-out posted to node A reaches members whose
// user agents are connected to A and to B (the pipeline stores, the cluster router hints).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { generateVAPIDKeys, vapidHeaders } from '../../src/sdk/vapid.ts';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const skip = skipWithoutRedis();
/** What both nodes hand out (a load balancer's name in a deployment): requests go to a node's port. */
const PUBLIC = 'http://push.test';
let redis: RedisServer | undefined;
const nodes: TestServer[] = [];
before(async () => {
  if (skip) return;
  redis = await startRedisServer();
  // one after the other: the first creates the token secrets in Redis, the second reads them
  for (let i = 0; i < 2; i++) nodes.push(await startTestServer({ store: redis.url, publicUrl: PUBLIC }));
});
after(async () => {
  for (const n of nodes) await n.close();
  await redis?.stop();
});

const key = { subject: 'mailto:ops@example.com', ...generateVAPIDKeys() };

/** `url` (of the public name) sent to `node`, signed for the public origin. */
async function call(node: TestServer, method: string, url: string, body?: unknown, type = 'application/json') {
  const headers: Record<string, string> = { ttl: '60', authorization: vapidHeaders(key, url, 'aes128gcm').authorization };
  if (body !== undefined) headers['content-type'] = type;
  const res = await fetch(`http://127.0.0.1:${node.port}${new URL(url).pathname}${new URL(url).search}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, location: res.headers.get('location'), json: text ? JSON.parse(text) : null };
}

async function subscribed(node: TestServer) {
  const ua = await TestUserAgent.connect(`ws://127.0.0.1:${node.port}/`);
  await ua.hello();
  const channelID = randomUUID();
  const r = await ua.register(channelID);
  return { ua, channelID, push: r.pushEndpoint as string };
}

test('an aggregate made on one node is used on the other; its fan-out reaches user agents on both', { skip }, async () => {
  const [a, b] = nodes as [TestServer, TestServer];
  const onA = await subscribed(a);
  const onB = await subscribed(b);
  const later = await subscribed(b);
  try {
    assert.ok(onA.push.startsWith(`${PUBLIC}/wpush/`));
    const created = await call(a, 'POST', `${PUBLIC}/aggregate`, { members: { [onA.push]: true, [onB.push]: true } });
    assert.equal(created.status, 201);
    const url = created.location!;
    assert.ok(url.startsWith(`${PUBLIC}/a/`));
    assert.equal((await call(b, 'PATCH', url, { members: { [later.push]: true } }, 'application/merge-patch+json')).json.members, 3);
    assert.equal((await call(b, 'GET', url)).json.count, 3);

    const sent = await call(a, 'POST', url);
    assert.equal(sent.status, 202);
    assert.equal(sent.json.stored, 3);
    for (const s of [onA, onB, later]) assert.equal((await s.ua.next('notification')).channelID, s.channelID);

    assert.equal((await call(b, 'DELETE', url)).status, 204);
    assert.equal((await call(a, 'GET', url)).json.errno, 144);
  } finally {
    await Promise.all([onA, onB, later].map((s) => s.ua.close()));
  }
});
