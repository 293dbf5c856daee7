// Two webpushd processes on one port (--reuse-port on) and one private Redis: the kernel spreads
// the user agents over both, and a push to the shared port reaches a user agent whichever node
// took its connection and whichever took the push. Without the option, a second process on
// the port fails to start.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../helpers/net.ts';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

/** The WebSocket sessions a node holds, from its admin /metrics. */
async function websockets(adminPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  return Number(/^webpushd_connections\{kind="websocket"\} (\d+)$/m.exec(text)?.[1]);
}

describe('two nodes sharing one port', { skip: skipWithoutRedis() }, () => {
  let redis: RedisServer;
  let port: number;
  const admin: number[] = [];
  const nodes: ServerProcess[] = [];
  before(async () => {
    redis = await startRedisServer();
    port = await freePort();
    for (let i = 0; i < 2; i++) {
      admin.push(await freePort());
      nodes.push(await startServerProcess({ port, args: ['--store', redis.url, '--reuse-port', 'on', '--admin-port', String(admin[i])] }));
    }
  });
  after(async () => {
    for (const node of nodes) await node.stop();
    await redis?.stop();
  });

  test('without --reuse-port a third process cannot listen there', async () => {
    await assert.rejects(startServerProcess({ port, args: ['--store', redis.url] }), /EADDRINUSE/);
  });

  test('user agents are spread over both; every push to the shared port arrives', async () => {
    const agents: { ua: TestUserAgent; channelID: string; endpoint: string }[] = [];
    try {
      for (let i = 0; i < 40; i++) {
        const ua = await TestUserAgent.connect(`ws://127.0.0.1:${port}/`);
        await ua.hello();
        const channelID = randomUUID();
        agents.push({ ua, channelID, endpoint: (await ua.register(channelID)).pushEndpoint as string });
      }
      const held = await Promise.all(admin.map(websockets));
      assert.equal(held[0]! + held[1]!, 40);
      // SO_REUSEPORT hashes each connection's address and port: 40 all on one node would be 2^-39
      assert.ok(held[0]! > 0 && held[1]! > 0, `connections per node: ${held.join(', ')}`);
      for (const { endpoint } of agents) {
        assert.equal((await fetch(endpoint, { method: 'POST', headers: { TTL: '60' } })).status, 201);
      }
      for (const { ua, channelID } of agents) {
        const n = await ua.next('notification', 5000);
        assert.equal(n.channelID, channelID);
      }
    } finally {
      for (const { ua } of agents) await ua.close();
    }
  });
});
