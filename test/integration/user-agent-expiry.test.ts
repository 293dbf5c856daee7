// Idle user agents expire (userAgentExpiryDays): one not seen for the expiry is deleted by the
// sweep with its subscriptions and messages (its push URLs answer 410, its uaid is unknown at
// the next hello); one connected all along, or seen since, stays. "Not seen for 60 days" is
// made by moving seen_at back in the real SQLite file through a second connection.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { DB_FILE } from '../../src/server.ts';
import { aes128gcmBody } from '../helpers/bodies.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) {
    await s.close();
    rmSync(s.dataDir, { recursive: true, force: true });
  }
});

const DAY_MS = 86_400_000;
const post = async (endpoint: string) =>
  (await fetch(endpoint, { method: 'POST', headers: { ttl: '600', 'content-encoding': 'aes128gcm' }, body: aes128gcmBody() })).status;

/** A user agent with one subscription; returns it still connected. */
async function subscribed(server: TestServer): Promise<{ ua: TestUserAgent; uaid: string; endpoint: string }> {
  const ua = await TestUserAgent.connect(server.wsUrl);
  const uaid = await ua.hello();
  const reg = await ua.register(randomUUID());
  return { ua, uaid, endpoint: String(reg.pushEndpoint) };
}

/** Moves every user agent's last-seen time `days` back, as if that much time had passed. */
function age(server: TestServer, days: number): void {
  const db = new DatabaseSync(join(server.dataDir, DB_FILE));
  try {
    db.exec('PRAGMA busy_timeout = 5000');
    db.prepare('UPDATE user_agents SET seen_at = seen_at - ?').run(days * DAY_MS);
  } finally {
    db.close();
  }
}

/** Waits for the server's presence writes (fire-and-forget) to reach the file. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

test('a user agent not seen for the expiry is deleted with its subscriptions and messages; connected or recently seen ones stay', async () => {
  const server = await startTestServer({ userAgentExpiryDays: 60, adminPort: 0 });
  servers.push(server);
  const gone = await subscribed(server);
  const connected = await subscribed(server);
  const returning = await subscribed(server);
  await gone.ua.close();
  await returning.ua.close();
  assert.equal(await post(gone.endpoint), 201, 'a message waits for the offline user agent');
  await settle();

  age(server, 61);
  // one comes back (seen now), then leaves again
  const back = await TestUserAgent.connect(server.wsUrl);
  assert.equal(await back.hello(returning.uaid), returning.uaid);
  await back.close();
  await settle();

  const swept = await server.sweep();
  assert.equal(swept.userAgents, 1);
  assert.equal(await post(gone.endpoint), 410, 'its push URL is gone');
  assert.equal(await post(connected.endpoint), 201, 'connected all along: not idle');
  assert.equal(await post(returning.endpoint), 201, 'seen again since');
  const metrics = await (await fetch(`${server.adminUrl}/metrics`)).text();
  assert.match(metrics, /^webpushd_user_agents_expired_total 1$/m);

  // the deleted uaid is unknown now: a hello with it gets a new one (Firefox then re-subscribes)
  const again = await TestUserAgent.connect(server.wsUrl);
  assert.notEqual(await again.hello(gone.uaid), gone.uaid);
  await again.close();
  await connected.ua.close();
  assert.equal((await server.sweep()).userAgents, 0, 'nothing more to expire');
});

test('userAgentExpiryDays 0 never expires a user agent', async () => {
  const server = await startTestServer({ userAgentExpiryDays: 0 });
  servers.push(server);
  const { ua, endpoint } = await subscribed(server);
  await ua.close();
  age(server, 10_000);
  assert.equal((await server.sweep()).userAgents, 0);
  assert.equal(await post(endpoint), 201);
});
