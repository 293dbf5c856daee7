// Idle user agents expire (userAgentExpiryDays): one not seen for the expiry is deleted by the
// sweep with its subscriptions and messages (its push URLs answer 410, its uaid is unknown at
// the next hello); one connected all along, or seen since, stays. "Not seen for 60 days" is
// made by moving seen_at back in the real SQLite file through a second connection.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type SQLInputValue, type SQLOutputValue } from 'node:sqlite';
import { after, test } from 'node:test';
import { DB_FILE } from '../../src/server.ts';
import { aes128gcmBody } from '../helpers/bodies.ts';
import { skipOnRedis, startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';

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

/**
 * Runs `query` on the server's SQLite file through a second connection. The server runs in this
 * process: a busy timeout would block the very commit that frees the lock, so a locked file is
 * tried again after yielding to it.
 */
async function sql(server: TestServer, query: string, ...params: SQLInputValue[]): Promise<Record<string, SQLOutputValue> | undefined> {
  const db = new DatabaseSync(join(server.dataDir, DB_FILE));
  try {
    const statement = db.prepare(query);
    let result: Record<string, SQLOutputValue> | undefined;
    await until(() => {
      try {
        result = statement.columns().length > 0 ? statement.get(...params) : void statement.run(...params);
        return true;
      } catch (err) {
        if ((err as { errcode?: number }).errcode !== 5 /* SQLITE_BUSY */) throw err;
        return false;
      }
    }, 'the server released the database');
    return result;
  } finally {
    db.close();
  }
}

/** Moves every user agent's last-seen time `days` back, as if that much time had passed. */
const age = (server: TestServer, days: number) => sql(server, 'UPDATE user_agents SET seen_at = seen_at - ?', days * DAY_MS);

/** When the server last recorded the user agent as seen (ms). */
const seenAt = async (server: TestServer, uaid: string) =>
  Number((await sql(server, 'SELECT seen_at FROM user_agents WHERE uaid = ?', Buffer.from(uaid, 'hex')))!.seen_at);

/**
 * Closes the user agents and waits until the server recorded each disconnect (a presence write it
 * does not wait for): their last-seen times are zeroed first, so any later time is that write.
 */
async function disconnect(server: TestServer, ...agents: { ua: TestUserAgent; uaid: string }[]): Promise<void> {
  for (const { uaid } of agents) await sql(server, 'UPDATE user_agents SET seen_at = 0 WHERE uaid = ?', Buffer.from(uaid, 'hex'));
  await Promise.all(agents.map(({ ua }) => ua.close()));
  await until(async () => (await Promise.all(agents.map(({ uaid }) => seenAt(server, uaid)))).every((t) => t > 0), 'the disconnects recorded');
}

test('a user agent not seen for the expiry is deleted with its subscriptions and messages; connected or recently seen ones stay', { skip: skipOnRedis('moves seen_at back in the database file (Redis: test/e2e/redis-sweeps.test.ts)') }, async () => {
  const server = await startTestServer({ userAgentExpiryDays: 60, adminPort: 0 });
  servers.push(server);
  const gone = await subscribed(server);
  const connected = await subscribed(server);
  const returning = await subscribed(server);
  // their hellos' presence writes were committed before the register replies (in order)
  await disconnect(server, gone, returning);
  assert.equal(await post(gone.endpoint), 201, 'a message waits for the offline user agent');

  await age(server, 61);
  // one comes back (seen now), then leaves again
  const back = await TestUserAgent.connect(server.wsUrl);
  assert.equal(await back.hello(returning.uaid), returning.uaid);
  // its hello's presence write first, so that only the disconnect's can follow the zeroing
  await until(async () => (await seenAt(server, returning.uaid)) > Date.now() - DAY_MS, 'the return recorded');
  await disconnect(server, { ua: back, uaid: returning.uaid });

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
  // seen at its disconnect: not idle either
  await disconnect(server, connected);
  assert.equal((await server.sweep()).userAgents, 0, 'nothing more to expire');
});

test('userAgentExpiryDays 0 never expires a user agent', { skip: skipOnRedis('moves seen_at back in the database file') }, async () => {
  const server = await startTestServer({ userAgentExpiryDays: 0 });
  servers.push(server);
  const { ua, endpoint } = await subscribed(server);
  await ua.close();
  await age(server, 10_000);
  assert.equal((await server.sweep()).userAgents, 0);
  assert.equal(await post(endpoint), 201);
});
