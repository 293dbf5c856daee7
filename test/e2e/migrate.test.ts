// `webpushd migrate`: a real `webpushd serve` on SQLite gets WebSocket and RFC 8030 subscriptions,
// stored messages (one with a Topic), a receipt subscription with a queued receipt and a message
// still waiting for its own; migrate refuses while that server runs, copies once it stopped,
// refuses a second run into a Redis with data unless --merge (which copies nothing twice). Two
// nodes on the Redis then take the old URLs: push URLs deliver, the stored messages come on
// reconnect in their order with a new one after them, a Topic still replaces, a pending message
// URL acknowledges, both receipts reach a monitor of the old receipt URL, and an aggregate URL
// made on SQLite sends to its members.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { createAggregate, generateVAPIDKeys, sendToAggregate } from '../../src/sdk/index.ts';
import { aes128gcmBody, markerOf } from '../helpers/bodies.ts';
import { on, wsUrl } from '../helpers/cluster.ts';
import { H2Client, REL_RECEIPT, links } from '../helpers/h2-client.ts';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const skip = skipWithoutRedis();

function migrate(dataDir: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, 'migrate', '--data-dir', dataDir, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

const push = (url: string, marker: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { TTL: '600', 'content-encoding': 'aes128gcm', ...headers }, body: aes128gcmBody(marker) });

let redis: RedisServer;
const started: ServerProcess[] = [];
before(async () => {
  if (!skip) redis = await startRedisServer();
});
after(async () => {
  for (const node of started) {
    await node.stop();
    rmSync(node.dataDir, { recursive: true, force: true });
  }
  await redis?.stop();
});

test('a SQLite data dir copied into Redis keeps its URLs, messages, order, topics, receipts and aggregates', { skip }, async () => {
  const sqlite = await startServerProcess();
  started.push(sqlite);

  // WebSocket: a user agent with stored messages (m2 under a Topic), then gone
  const ua = await TestUserAgent.connect(wsUrl(sqlite));
  const uaid = await ua.hello();
  const channelID = randomUUID();
  const endpoint = (await ua.register(channelID)).pushEndpoint as string;
  await ua.close();
  for (const [marker, headers] of [['m1', {}], ['m2', { topic: 'news' }], ['m3', { urgency: 'high' }]] as const) {
    assert.equal((await push(endpoint, marker, headers)).status, 201);
  }

  // RFC 8030: a receipt subscription with one receipt queued (acknowledged) and one message waiting
  const h2 = await H2Client.connect(sqlite.url);
  const sub = await h2.subscribe();
  await h2.close();
  const first = await push(sub.push, 'r1', { prefer: 'respond-async' });
  assert.equal(first.status, 202);
  const receiptUrl = links(first.headers.get('link') ?? undefined).get(REL_RECEIPT)!;
  assert.ok(receiptUrl);
  assert.equal((await fetch(first.headers.get('location')!, { method: 'DELETE' })).status, 204);
  const second = await push(sub.push, 'r2', { prefer: 'respond-async', link: `<${receiptUrl}>; rel="${REL_RECEIPT}"` });
  assert.equal(second.status, 202);
  const pendingMessageUrl = second.headers.get('location')!;

  // an aggregate of two members: the user agent above and one of its own
  const vapidDetails = { subject: 'mailto:ops@example.com', ...generateVAPIDKeys() };
  const member = await TestUserAgent.connect(wsUrl(sqlite));
  const memberUaid = await member.hello();
  const memberChannel = randomUUID();
  const memberEndpoint = (await member.register(memberChannel)).pushEndpoint as string;
  await member.close();
  const aggregate = await createAggregate(sqlite.url, [endpoint, memberEndpoint], { vapidDetails });
  assert.equal(aggregate.members, 2);

  const busy = migrate(sqlite.dataDir, '--store', redis.url);
  assert.equal(busy.status, 1);
  assert.match(busy.err, /is in use \(a running webpushd serve\?\): stop it first/);
  await sqlite.stop();

  const copied = migrate(sqlite.dataDir, '--store', redis.url);
  assert.equal(copied.status, 0, copied.err);
  assert.match(copied.out, /token secrets: 1\n/);
  assert.match(copied.out, /user agents: 3 \(3 subscriptions, 4 stored messages\)/);
  assert.match(copied.out, /aggregates: 1 \(2 members\)\n/);
  assert.match(copied.out, /receipt subscriptions: 1\n/);
  assert.match(copied.out, /queued receipts: 1\n/);
  const again = migrate(sqlite.dataDir, '--store', redis.url);
  assert.equal(again.status, 1);
  assert.match(again.err, /Redis holds webpushd data already/);
  const merged = migrate(sqlite.dataDir, '--store', redis.url, '--merge');
  assert.equal(merged.status, 0, merged.err);
  assert.match(merged.out, /token secrets: 0\n/);
  assert.match(merged.out, /user agents: 0 \(0 subscriptions, 0 stored messages\), 3 Redis held already/);
  assert.match(merged.out, /aggregates: 0 \(0 members\), 1 Redis held already\n/);
  assert.match(merged.out, /queued receipts: 0\n/, 'a receipt is queued once');

  const [a, b] = await Promise.all([startServerProcess({ args: ['--store', redis.url] }), startServerProcess({ args: ['--store', redis.url] })]);
  started.push(a!, b!);
  for (const node of [a!, b!]) assert.match(node.output(), /\(token secrets in Redis, keeping earlier push URLs valid\)/);

  // the old push URL on A; its Topic replaces the copied m2
  assert.equal((await push(on(a!, endpoint), 'm4', { topic: 'news' })).status, 201);
  const back = await TestUserAgent.connect(wsUrl(b!));
  try {
    assert.equal(await back.hello(uaid), uaid);
    const got: { marker: string; id: number }[] = [];
    for (let i = 0; i < 3; i++) {
      const n = await back.next('notification', 3000);
      assert.equal(n.channelID, channelID);
      got.push({ marker: markerOf(Buffer.from(n.data as string, 'base64url')), id: parseInt(n.version as string, 36) });
      back.ack(channelID, n.version as string);
    }
    assert.deepEqual(
      got.map((g) => g.marker),
      ['m1', 'm3', 'm4'],
    );
    assert.deepEqual(
      got.map((g) => g.id),
      got.map((g) => g.id).sort((x, y) => x - y),
      'in their order, the new one after the copied ones',
    );
    assert.equal(back.pending().length, 0);
  } finally {
    await back.close();
  }

  // the aggregate URL made on SQLite, on B: stored for both members, delivered to one on A
  const fanout = await sendToAggregate(on(b!, aggregate.url), { vapidDetails, TTL: 600 });
  assert.deepEqual([fanout.stored, fanout.gone, fanout.refused], [2, 0, 0]);
  const tickled = await TestUserAgent.connect(wsUrl(a!));
  try {
    assert.equal(await tickled.hello(memberUaid), memberUaid);
    assert.equal((await tickled.next('notification', 3000)).channelID, memberChannel);
  } finally {
    await tickled.close();
  }

  // the waiting message on a monitor of A; both receipts on a monitor of B's old receipt URL
  const client = await H2Client.connect(a!.url);
  const app = await H2Client.connect(b!.url);
  try {
    const monitor = client.monitor(on(a!, sub.url));
    const pushed = await monitor.next(3000);
    assert.equal(markerOf(pushed.body), 'r2');
    const receipts = app.monitor(on(b!, receiptUrl));
    assert.equal((await receipts.next(3000)).status, 204, 'the receipt queued before the copy');
    assert.equal((await fetch(on(b!, pendingMessageUrl), { method: 'DELETE' })).status, 204, 'the old message URL acknowledges');
    assert.equal((await receipts.next(3000)).status, 204, 'the receipt of the message acknowledged after the copy');
    monitor.close();
    receipts.close();
  } finally {
    await client.close();
    await app.close();
  }
});
