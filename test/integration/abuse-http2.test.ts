// Attacks on the RFC 8030 door over HTTP/2 (docs/SECURITY.md): a user agent that stops reading
// its socket while its own application server floods it, a monitor that accepts pushes but never
// reads them, hundreds of held-open monitors of a set of 10,000 on few sessions, and sets grown
// without end. The server runs as a child process so its memory and event loop are its own.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import http2 from 'node:http2';
import { createServer, connect, type Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { BOUNDED_YOUNG_GENERATION, bystander, underAttack as underAttackWith } from '../helpers/abuse.ts';
import { aes128gcmBody, markerOf } from '../helpers/bodies.ts';
import { H2Client, REL_PUSH, REL_RECEIPT, links } from '../helpers/h2-client.ts';
import { freePort } from '../helpers/net.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { skipOnRedis, startTestServer } from '../helpers/server.ts';
import { until, within } from '../helpers/wait.ts';

const MIB = 1024 * 1024;
const ATTACK_MS = 4000;
const SERVICE_MS = 5000;
// large messages, so that what an unbounded server would buffer dwarfs its other memory
const BODY = 30_000;

/** A server process; after the test, stopped (or killed, when its event loop is stuck). */
async function serverProcess(t: TestContext, args: string[], dataDir?: string): Promise<{ server: ServerProcess; adminPort: number }> {
  const adminPort = await freePort();
  const server = await startServerProcess({ args: ['--sync', 'normal', '--admin-port', String(adminPort), ...args], env: BOUNDED_YOUNG_GENERATION, ...(dataDir ? { dataDir } : {}) });
  t.after(async () => {
    await Promise.race([server.stop(), delay(5000)]);
    await server.kill9();
  });
  return { server, adminPort };
}

async function limited(adminPort: number, limit: string): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  return Number(new RegExp(`^webpushd_limited_total\\{limit="${limit}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
}

/** A well-behaved RFC 8030 user agent on its own session: a monitor that gets each message within a few seconds. */
async function h2Bystander(url: string) {
  const client = await H2Client.connect(url);
  const sub = await client.subscribe();
  const monitor = client.monitor(sub.url);
  let n = 0;
  return {
    async check(what: string) {
      const marker = `h2-bystander-${++n}`;
      const sent = await within(
        fetch(sub.push, { method: 'POST', headers: { ttl: '60', 'content-encoding': 'aes128gcm' }, body: aes128gcmBody(marker) }),
        `${what}: a push to the HTTP/2 bystander`,
        SERVICE_MS,
      );
      assert.equal(sent.status, 201, `${what}: a push to the HTTP/2 bystander`);
      const p = await monitor.next(SERVICE_MS);
      assert.equal(markerOf(p.body), marker, `${what}: the HTTP/2 bystander's message`);
      assert.equal(await client.ack(p.url), 204);
    },
    close: () => client.close(),
  };
}

/** The attack with a WebSocket and an HTTP/2 bystander (test/helpers/abuse.ts). */
async function underAttack(server: ServerProcess, name: string, attack: (end: number) => Promise<void>): Promise<number> {
  const ws = await bystander(server.url);
  const h2 = await h2Bystander(server.url);
  try {
    return await underAttackWith(server, name, [ws, h2], ATTACK_MS, attack);
  } finally {
    await ws.close();
    await h2.close();
  }
}

/** A TCP relay to `port` that can stop reading what the server sends: the client behind it then reads nothing. */
async function stallingRelay(port: number) {
  const ups = new Set<Socket>();
  let stalled = false;
  const relay = createServer((down) => {
    const up = connect(port, '127.0.0.1');
    ups.add(up);
    down.pipe(up);
    up.on('data', (d: Buffer) => {
      if (!down.write(d)) up.pause();
    });
    down.on('drain', () => !stalled && up.resume());
    const gone = () => {
      up.destroy();
      down.destroy();
      ups.delete(up);
    };
    up.on('error', gone).on('close', gone);
    down.on('error', gone).on('close', gone);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(relay.address() as { port: number }).port}`,
    stall() {
      stalled = true;
      for (const up of ups) up.pause();
    },
    resume() {
      stalled = false;
      for (const up of ups) up.resume();
    },
    close() {
      for (const up of ups) up.destroy();
      relay.close();
    },
  };
}

/** Sends to `pushUrls` until `end` from 16 senders, half TTL 0, half TTL 600 with a Topic (the store stays tiny). */
async function flood(pushUrls: readonly string[], end: number): Promise<number> {
  const body = aes128gcmBody('f'.repeat(BODY), BODY + 200);
  let accepted = 0;
  await Promise.all(
    Array.from({ length: 16 }, async (_, worker) => {
      for (let i = worker; Date.now() < end; i += 16) {
        const headers: Record<string, string> =
          i % 2 ? { ttl: '0', 'content-encoding': 'aes128gcm' } : { ttl: '600', topic: 'flood', 'content-encoding': 'aes128gcm' };
        const res = await fetch(pushUrls[i % pushUrls.length]!, { method: 'POST', headers, body });
        await res.arrayBuffer();
        if (res.status === 201) accepted++;
      }
    }),
  );
  return accepted;
}

/** A set of `n` subscriptions made over `client`: their push URLs, and the set URL. */
async function setOf(client: H2Client, n: number): Promise<{ set: string; pushUrls: string[] }> {
  const first = await client.subscribe();
  const pushUrls = [first.push];
  for (let i = 1; i < n; i++) pushUrls.push((await client.subscribe({ set: first.set })).push);
  return { set: first.set, pushUrls };
}

describe('a user agent that stops reading while it is sent messages', () => {
  test('its pushes stop (TTL 0 dropped, stored ones wait), memory stays bounded; once it reads, it gets what was stored', { timeout: 60_000 }, async (t) => {
    const { server, adminPort } = await serverProcess(t, ['--max-message-size', String(BODY + 200)]);
    const relay = await stallingRelay(server.port);
    t.after(() => relay.close());
    const attacker = await H2Client.connect(relay.url);
    t.after(() => attacker.session.destroy());
    const { set, pushUrls } = await setOf(attacker, 40);
    const monitor = attacker.monitor(set);
    // the monitor is live: a message reaches it, then the client's socket is no longer read
    await (await fetch(pushUrls[0]!, { method: 'POST', headers: { ttl: '0' } })).arrayBuffer();
    await monitor.next(SERVICE_MS);
    relay.stall();
    let accepted = 0;
    const grown = await underAttack(server, 'a flood to a user agent that does not read', async (end) => {
      accepted = await flood(pushUrls, end);
    });
    t.diagnostic(`${accepted} pushes accepted; server RSS grew ${(grown / MIB).toFixed(0)} MB`);
    assert.ok(accepted > 1000, `only ${accepted} pushes accepted`);
    assert.ok(grown < 60 * MIB, `server RSS grew ${(grown / MIB).toFixed(0)} MB`);
    assert.ok((await limited(adminPort, 'slow_reader')) > 0, 'pushes held back are counted');

    // what is stored now: the last Topic message of each channel sent to
    const checker = await H2Client.connect(server.url);
    t.after(() => checker.close());
    const stored = checker.monitor(set, { prefer: 'wait=0' });
    assert.equal((await stored.done).status, 200);
    const expected = new Set<string>();
    while (checker.unread > 0) expected.add((await checker.nextPush(0)).path);
    assert.equal(expected.size, pushUrls.length / 2);
    // it reads again: the held-open monitor goes on from the store, and every one of them comes
    relay.resume();
    const got = new Set<string>();
    await until(
      async () => {
        while (attacker.unread > 0) got.add((await attacker.nextPush(0)).path);
        return [...expected].every((p) => got.has(p));
      },
      'the stored messages reach the monitor once its client reads',
      10_000,
    );
  });

  test('a monitor that accepts pushes but never reads them: at most --http2-max-pending-pushes are held, others keep their service', { timeout: 60_000 }, async (t) => {
    const { server, adminPort } = await serverProcess(t, ['--max-message-size', String(BODY + 200)]);
    const helper = await H2Client.connect(server.url);
    const { set, pushUrls } = await setOf(helper, 40);
    await helper.close();
    // reads its socket (and so answers PINGs), but opens no flow-control window for a pushed
    // stream: no push can finish, every body waits on the server
    const attacker = http2.connect(server.url, { settings: { initialWindowSize: 0 } });
    t.after(() => attacker.destroy());
    attacker.on('error', () => {});
    let promised = 0;
    attacker.on('stream', (stream) => {
      promised++;
      stream.on('error', () => {});
    });
    const get = attacker.request({ ':method': 'GET', ':path': new URL(set).pathname });
    get.on('error', () => {});
    get.end();
    let accepted = 0;
    const grown = await underAttack(server, 'a flood to a monitor that never reads its pushes', async (end) => {
      accepted = await flood(pushUrls, end);
    });
    t.diagnostic(`${accepted} pushes accepted, ${promised} promised; server RSS grew ${(grown / MIB).toFixed(0)} MB`);
    assert.ok(accepted > 1000, `only ${accepted} pushes accepted`);
    assert.ok(promised > 0 && promised <= 100, `${promised} pushes held for a client that takes none`);
    assert.ok(grown < 60 * MIB, `server RSS grew ${(grown / MIB).toFixed(0)} MB`);
    assert.ok((await limited(adminPort, 'slow_reader')) > 0, 'pushes held back are counted');
  });
});

describe('a session full of pushes, for a client that reads (--http2-max-pending-pushes 1)', () => {
  test('monitors still get every message in order (batches, live, wait=0), receipts too: each push waits for the one before', { timeout: 30_000 }, async (t) => {
    const s = await startTestServer({ http2MaxPendingPushes: 1, deliveryBatch: 5 });
    t.after(() => s.close());
    const ua = await H2Client.connect(s.url);
    t.after(() => ua.close());
    const app = await H2Client.connect(s.url);
    t.after(() => app.close());
    const a = await ua.subscribe();
    const b = await ua.subscribe({ set: a.set });
    const send = async (i: number, headers: http2.OutgoingHttpHeaders = {}) => {
      const r = await app.send(i % 2 ? b.push : a.push, { body: aes128gcmBody(`m${i}`), headers });
      assert.ok(r.status === 201 || r.status === 202, r.body.toString());
      return r;
    };
    const first = await send(0, { prefer: 'respond-async' });
    const receiptUrl = links(first.headers.link).get(REL_RECEIPT)!;
    const receiptLink = `<${receiptUrl}>; rel="${REL_RECEIPT}"`;
    for (let i = 1; i < 12; i++) await send(i, { link: receiptLink });
    // wait=0 on a second session: all twelve, then 200
    const other = await H2Client.connect(s.url);
    t.after(() => other.close());
    const drained = other.monitor(a.set, { prefer: 'wait=0' });
    assert.deepEqual((await drained.take(12)).map((p) => markerOf(p.body)), Array.from({ length: 12 }, (_, i) => `m${i}`));
    assert.equal((await drained.done).status, 200);
    // held open: batches of five, the next once these are acknowledged, then live
    const monitor = ua.monitor(a.set);
    for (const batch of [[0, 5], [5, 10], [10, 12]]) {
      const got = await monitor.take(batch[1]! - batch[0]!);
      assert.deepEqual(got.map((p) => markerOf(p.body)), Array.from({ length: batch[1]! - batch[0]! }, (_, i) => `m${batch[0]! + i}`));
      for (const p of got) assert.equal(await ua.ack(p.url), 204);
    }
    for (let i = 12; i < 16; i++) await send(i);
    assert.deepEqual((await monitor.take(4)).map((p) => markerOf(p.body)), ['m12', 'm13', 'm14', 'm15']);
    // the twelve acknowledged: twelve receipts, pushed one at a time
    const receipts = app.monitor(receiptUrl, { prefer: 'wait=0' });
    const got = await receipts.take(12);
    assert.ok(got.every((r) => r.status === 204));
    assert.equal((await receipts.done).status, 200);
  });
});

describe('held-open monitors of a large set', () => {
  const MEMBERS = 10_000;
  const SESSIONS = 5;
  const STREAMS = 100; // the default --http2-max-concurrent-streams

  test('a GET costs no work per member; the 101st stream of a session is refused; others keep their service', { timeout: 90_000, skip: skipOnRedis('the set is written into a data dir a server process then opens') }, async (t) => {
    // a set of 10,000 written straight into the store of a server on the same data dir
    const t0 = Date.now();
    const setup = await startTestServer({ maxChannelsPerUserAgent: MEMBERS });
    t.after(() => rmSync(setup.dataDir, { recursive: true, force: true }));
    const owner = await H2Client.connect(setup.url);
    const member = await owner.subscribe();
    await owner.close();
    const [uaid, ...others] = await setup.store.idleUserAgents(Date.now() + 86_400_000, 10);
    assert.ok(uaid && others.length === 0);
    await Promise.all(Array.from({ length: MEMBERS - 1 }, () => setup.store.putSubscription({ uaid, chid: randomBytes(16), keyHash: null })));
    t.diagnostic(`set of ${MEMBERS} written in ${Date.now() - t0} ms`);
    await setup.close();
    const { server } = await serverProcess(t, ['--max-channels', String(MEMBERS)], setup.dataDir);
    // the setup server's URLs, on this server
    const here = (url: string) => `${server.url}${new URL(url).pathname}`;

    const monitors: http2.ClientHttp2Stream[] = [];
    let promised = 0;
    const grown = await underAttack(server, `${SESSIONS * (STREAMS + 1)} monitors of a set of ${MEMBERS}`, async () => {
      for (let s = 0; s < SESSIONS; s++) {
        // a client that opens its streams before it has read the server's SETTINGS
        const session = http2.connect(server.url, { peerMaxConcurrentStreams: 10_000 });
        t.after(() => session.destroy());
        session.on('error', () => {});
        session.on('stream', (stream) => {
          promised++;
          stream.on('error', () => {});
          stream.resume();
        });
        for (let i = 0; i <= STREAMS; i++) {
          const get = session.request({ ':method': 'GET', ':path': new URL(member.set).pathname });
          get.on('error', () => {});
          get.end();
          monitors.push(get);
        }
        await delay(200);
      }
    });
    const refused = monitors.filter((m) => m.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM);
    t.diagnostic(`${refused.length} of ${monitors.length} monitors refused; server RSS grew ${(grown / MIB).toFixed(0)} MB`);
    assert.equal(refused.length, SESSIONS, 'one stream refused per session: the one past the limit');
    assert.ok(
      monitors.every((m, i) => (i % (STREAMS + 1) === STREAMS ? m.closed : !m.closed && m.sentHeaders)),
      'the others are held open',
    );
    assert.ok(grown < 100 * MIB, `server RSS grew ${(grown / MIB).toFixed(0)} MB`);
    // and they work: one message to a member reaches every one of them, naming its push URL
    const sent = await fetch(here(member.push), { method: 'POST', headers: { ttl: '0' } });
    assert.equal(sent.status, 201);
    await until(() => promised >= SESSIONS * STREAMS, 'the message pushed to every held-open monitor', SERVICE_MS);
  });
});

describe('sets grown without end', () => {
  test('joining a set that holds --max-channels subscriptions is 429 errno 127, and creates nothing', async () => {
    const s = await startTestServer({ maxChannelsPerUserAgent: 3 });
    try {
      const c = await H2Client.connect(s.url);
      const { set, pushUrls } = await setOf(c, 3);
      const refused = await c.request('POST', '/subscribe', { headers: { link: `<${set}>; rel="urn:ietf:params:push:set"` } });
      assert.equal(refused.status, 429);
      assert.equal(JSON.parse(refused.body.toString()).errno, 127);
      assert.equal(refused.headers['retry-after'], undefined, 'waiting changes nothing');
      assert.equal(refused.headers.location, undefined);
      // the set keeps its three, and only them: one message to each comes from three push URLs
      for (const url of pushUrls) assert.equal((await c.send(url)).status, 201);
      const monitor = c.monitor(set, { prefer: 'wait=0' });
      assert.equal((await monitor.done).status, 200);
      const pushed = await monitor.take(3);
      assert.deepEqual(new Set(pushed.map((p) => links(p.headers.link).get(REL_PUSH))), new Set(pushUrls));
      assert.equal(c.unread, 0);
      // a new set is another user agent: it has room
      assert.equal((await c.subscribe()).response.status, 201);
      await c.close();
    } finally {
      await s.close();
    }
  });
});
