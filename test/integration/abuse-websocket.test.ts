// Attacks on the WebSocket door by one client (docs/SECURITY.md): frames sent faster than they
// are handled, a user agent that stops reading while its own application server floods it, and
// Pongs nobody asked for. The server runs as a child process so its memory is its own.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { aes128gcmBody, markerOf } from '../helpers/bodies.ts';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { BOUNDED_YOUNG_GENERATION, bystander, underAttack as underAttackWith } from '../helpers/abuse.ts';
import { freePort } from '../helpers/net.ts';
import { startTestServer } from '../helpers/server.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const MIB = 1024 * 1024;
const ATTACK_MS = 4000;

let server: ServerProcess;
before(async () => {
  server = await startServerProcess({ args: ['--sync', 'normal'], env: BOUNDED_YOUNG_GENERATION });
});
after(() => server.stop());

/** The attack with a WebSocket bystander (test/helpers/abuse.ts). */
async function underAttack(server: ServerProcess, name: string, attack: (end: number) => Promise<void>): Promise<number> {
  const good = await bystander(server.url);
  try {
    return await underAttackWith(server, name, [good], ATTACK_MS, attack);
  } finally {
    await good.close();
  }
}

describe('frames sent faster than the server handles them', () => {
  test('the socket stops being read (TCP back-pressure): memory stays bounded, others keep their service', async (t) => {
    const attacker = await TestUserAgent.connect(`ws://127.0.0.1:${server.port}/`);
    await attacker.hello();
    // a valid register padded to 60 kB: each waits for a group commit
    const frame = JSON.stringify({ messageType: 'register', channelID: randomUUID(), pad: 'x'.repeat(60_000) });
    let sent = 0;
    const grown = await underAttack(server, 'a frame flood', async (end) => {
      while (Date.now() < end && attacker.ws.readyState === WebSocket.OPEN) {
        // what the server does not read stays in this process: keep a few MB in flight
        if (attacker.ws.bufferedAmount < 8 * MIB) {
          attacker.ws.send(frame);
          sent++;
        } else await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
    t.diagnostic(`${sent} frames of 60 kB sent; server RSS grew ${(grown / MIB).toFixed(0)} MB`);
    assert.ok(sent > 100, `only ${sent} frames sent`);
    // what is left is garbage of the frames handled (each a 60 kB string) that V8 has not collected
    // yet, more of it on a loaded machine (75-155 MB seen); queued without a bound it was 723 MB
    assert.ok(grown < 250 * MIB, `server RSS grew ${(grown / MIB).toFixed(0)} MB`);
    await attacker.close();
  });
});

describe('a user agent that stops reading while it is sent messages', () => {
  // large messages, so that what an unbounded server would buffer dwarfs its other memory
  const BODY = 30_000;
  let big: ServerProcess;
  let adminPort: number;
  before(async () => {
    adminPort = await freePort();
    big = await startServerProcess({ args: ['--sync', 'normal', '--max-message-size', String(BODY + 200), '--admin-port', String(adminPort)], env: BOUNDED_YOUNG_GENERATION });
  });
  after(() => big.stop());

  test('live delivery stops (TTL 0 dropped, stored ones wait), memory stays bounded; once it reads, it gets what was stored', async (t) => {
    const server = big;
    const attacker = await TestUserAgent.connect(`ws://127.0.0.1:${server.port}/`);
    const uaid = await attacker.hello();
    const channels: { channelID: string; endpoint: string }[] = [];
    for (let i = 0; i < 40; i++) {
      const channelID = randomUUID();
      channels.push({ channelID, endpoint: String((await attacker.register(channelID)).pushEndpoint) });
    }
    attacker.ws.pause(); // reads nothing more
    const body = aes128gcmBody('f'.repeat(BODY), BODY + 200);
    let accepted = 0;
    const grown = await underAttack(server, 'a flood to a user agent that does not read', async (end) => {
      await Promise.all(
        Array.from({ length: 16 }, async (_, worker) => {
          for (let i = worker; Date.now() < end; i += 16) {
            const { endpoint } = channels[i % channels.length]!;
            // TTL 0, and Topic messages that replace each other: the store stays small
            const headers: Record<string, string> =
              i % 2 ? { ttl: '0', 'content-encoding': 'aes128gcm' } : { ttl: '600', topic: 'flood', 'content-encoding': 'aes128gcm' };
            const res = await fetch(endpoint, { method: 'POST', headers, body });
            await res.arrayBuffer();
            if (res.status === 201) accepted++;
          }
        }),
      );
    });
    t.diagnostic(`${accepted} pushes accepted; server RSS grew ${(grown / MIB).toFixed(0)} MB`);
    assert.ok(accepted > 1000, `only ${accepted} pushes accepted`);
    assert.ok(grown < 60 * MIB, `server RSS grew ${(grown / MIB).toFixed(0)} MB`);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const held = Number(/^webpushd_limited_total\{limit="slow_reader"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(held > 0, 'live deliveries held back are counted');
    // it reads again: every channel's last Topic message comes (from the store), none lost
    attacker.ws.resume();
    await attacker.close();
    const withTopic = new Set(channels.filter((_, i) => i % 2 === 0).map((c) => c.channelID));
    const again = await TestUserAgent.connect(`ws://127.0.0.1:${server.port}/`);
    assert.equal(await again.hello(uaid), uaid);
    const seen = new Set<string>();
    while (seen.size < withTopic.size) {
      const n = await again.next('notification', 10_000);
      assert.equal(markerOf(Buffer.from(String(n.data), 'base64url')), 'f'.repeat(BODY));
      seen.add(String(n.channelID));
      again.ack(String(n.channelID), String(n.version));
    }
    assert.deepEqual([...seen].sort(), [...withTopic].sort());
    await again.close();
  });
});

describe('Pongs nobody asked for', () => {
  test('change nothing: the heap stays flat (each used to add an entry to the deadline wheel)', async (t) => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const local = await startTestServer();
    try {
      const attacker = new WebSocket(local.wsUrl, ['push-notification']);
      await new Promise<void>((resolve, reject) => {
        attacker.once('open', () => resolve());
        attacker.once('error', reject);
      });
      const hello = new Promise<void>((resolve) => attacker.once('message', () => resolve()));
      attacker.send(JSON.stringify({ messageType: 'hello', use_webpush: true }));
      await hello;
      gc();
      const before = process.memoryUsage().heapUsed;
      const PONGS = 1_000_000;
      for (let sent = 0; sent < PONGS; sent += 1000) {
        for (let i = 0; i < 1000; i++) attacker.pong();
        // let the server read them as they come
        while (attacker.bufferedAmount > 0) await new Promise((resolve) => setImmediate(resolve));
      }
      // one ping round trip after the last pong: the server has read them all
      attacker.send('{}');
      await new Promise((resolve) => attacker.once('message', resolve));
      gc();
      const grown = process.memoryUsage().heapUsed - before;
      t.diagnostic(`${PONGS} pongs; heap grew ${(grown / MIB).toFixed(1)} MB`);
      assert.ok(grown < 3 * MIB, `heap grew ${(grown / MIB).toFixed(1)} MB`);
      attacker.close();
    } finally {
      await local.close();
    }
  });
});
