// Chaos on a cluster: three `webpushd serve` processes on one private Redis (appendfsync
// always) under a steady load of posts spread over the nodes (with and without Topic, some short
// TTLs) for WebSocket user agents and RFC 8030 monitors, while on a fixed schedule nodes are
// killed -9 and restarted, Redis's pub/sub connections are killed (CLIENT KILL TYPE pubsub) and
// Redis itself is killed -9 and restarted from its AOF. User agents reconnect to another node and
// acknowledge what they get. The checker then proves, from what the senders were answered and
// what the user agents received:
// - every message answered 201 is delivered (at least once), unless a newer one of its Topic
//   replaced it or it had a short TTL;
// - nothing is delivered that was never sent, or refused otherwise than by a 503;
// - per subscription the first deliveries come in the order sent (redeliveries of messages not
//   yet acknowledged are ignored);
// - no message is delivered after a newer one of its Topic was answered 201, nor after its TTL;
// - every 503 carries Retry-After, and the store holds nothing at the end.
// What a sender makes of a 503 (Redis down): the message was not accepted; it sends a new one
// later (a 503 is never counted as accepted). A 503 or a request cut by a kill may still have been
// stored (Redis made the write and was killed before it answered): such a message may be
// delivered, but need not be.
// CHAOS_SEED=<n> repeats a run's choices (which node each post goes to, the waits between posts,
// which node a user agent reconnects to first); the schedule of faults is fixed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { aes128gcmBody, markerOf } from '../helpers/bodies.ts';
import { on, startCluster, wsUrl, type Cluster } from '../helpers/cluster.ts';
import { H2Client } from '../helpers/h2-client.ts';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';

const run = promisify(execFile);

const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);
const LOAD_MS = 30_000;
const WS_AGENTS = 6;
const CHANNELS_PER_AGENT = 2;
const H2_SUBSCRIPTIONS = 3;
/** A post's wait after the previous one to its subscription (ms): about 100 messages/s in all. */
const THINK_MS: [number, number] = [80, 220];
const SHORT_TTL_S = 1;
/** Time between a fact the sender saw (a 201, a TTL's end) and a delivery still excused by it. */
const SLACK_MS = 250;
/** Longer than the short TTL and the offline time: expired messages stay stored a while, so only the read's own expiry check keeps them from a user agent that comes back. */
const SWEEP_MS = 3_000;
/** Every other WebSocket user agent goes offline now and then (a phone losing its network): stored delivery, expiry and replacement meanwhile. */
const ONLINE_MS: [number, number] = [2_000, 5_000];
const OFFLINE_MS = 1_500;

/** The faults, in ms from the start of the load; node numbers are rotated by the seed. */
const SCHEDULE: { at: number; fault: 'node' | 'pubsub' | 'redis'; node?: number }[] = [
  { at: 3_000, fault: 'node', node: 0 },
  { at: 7_000, fault: 'pubsub' },
  { at: 10_000, fault: 'redis' },
  { at: 15_000, fault: 'node', node: 1 },
  { at: 18_000, fault: 'pubsub' },
  { at: 21_000, fault: 'redis' },
  { at: 26_000, fault: 'node', node: 2 },
];
const NODE_DOWN_MS = 1_000;
const REDIS_DOWN_MS = 1_500;

/** mulberry32: a small seeded generator, so a failing run can be repeated. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Sub {
  index: number;
  /** The push URL (any node takes its path). */
  push: string;
  topics: boolean;
  shortTtl: boolean;
}

interface Sent {
  sub: number;
  seq: number;
  topic: string | null;
  ttl: number;
  answeredAt: number;
  /** The HTTP status, or 0: the request failed, its outcome is unknown. */
  status: number;
  retryAfter: string | null;
}

interface Delivery {
  marker: string;
  at: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const markerFor = (sub: number, seq: number) => `s${sub}-${seq}`;

test('chaos: nodes, pub/sub and Redis killed under load; nothing answered 201 is lost', { skip: skipWithoutRedis(), timeout: 120_000 }, async () => {
  console.log(`chaos seed ${SEED} (CHAOS_SEED=${SEED} repeats it)`);
  const random = rng(SEED);
  const between = ([lo, hi]: [number, number]) => lo + Math.floor(random() * (hi - lo));
  const redis: RedisServer = await startRedisServer();
  let cluster: Cluster | undefined;
  const clients: { stop(): Promise<void> }[] = [];
  let stopping = false;
  try {
    cluster = await startCluster(redis.url, 3, ['--sweep-interval-ms', String(SWEEP_MS)]);
    const nodes = cluster.nodes;
    const down = new Set<number>();
    let redisDown = false;
    const liveNode = (start: number) => {
      for (let k = 0; k < nodes.length; k++) if (!down.has((start + k) % nodes.length)) return (start + k) % nodes.length;
      return start % nodes.length;
    };

    const subs: Sub[] = [];
    const deliveries = new Map<number, Delivery[]>();
    const received = (sub: number, marker: string) => deliveries.get(sub)!.push({ marker, at: Date.now() });
    const newSub = (push: string): Sub => {
      const index = subs.length;
      const sub = { index, push, topics: index % 3 === 1, shortTtl: index % 5 === 3 };
      subs.push(sub);
      deliveries.set(index, []);
      return sub;
    };

    // WebSocket user agents: registered on node i % 3, then connected in a loop, to the next live node after each close
    const channelSub = new Map<string, number>();
    for (let i = 0; i < WS_AGENTS; i++) {
      const setup = await TestUserAgent.connect(wsUrl(nodes[i % 3]!));
      const uaid = await setup.hello();
      for (let k = 0; k < CHANNELS_PER_AGENT; k++) {
        const channelID = randomUUID();
        channelSub.set(channelID, newSub((await setup.register(channelID)).pushEndpoint as string).index);
      }
      await setup.close();
      let current: TestUserAgent | null = null;
      let turn = Math.floor(random() * 3);
      const loop = (async () => {
        while (!stopping) {
          try {
            const ua = await TestUserAgent.connect(wsUrl(nodes[liveNode(turn++)]!));
            current = ua;
            // before the hello: stored messages may follow its answer in the same read
            ua.ws.on('message', (data) => {
              const m = JSON.parse(data.toString()) as Record<string, unknown>;
              if (m.messageType !== 'notification') return;
              received(channelSub.get(m.channelID as string)!, markerOf(Buffer.from(m.data as string, 'base64url')));
              ua.ack(m.channelID as string, m.version as string);
            });
            ua.send({ messageType: 'hello', use_webpush: true, broadcasts: {}, uaid });
            if (i % 2 === 1) await ua.closed;
            else if ((await Promise.race([ua.closed, sleep(between(ONLINE_MS))])) === undefined) {
              await ua.close();
              await sleep(OFFLINE_MS);
            }
          } catch {
            // refused (node down): the next one
          }
          current = null;
          await sleep(100);
        }
      })();
      clients.push({
        async stop() {
          stopping = true;
          await (current as TestUserAgent | null)?.close();
          await loop;
        },
      });
    }

    // RFC 8030 user agents: one subscription each, monitored in a loop, acknowledged on the monitor's session
    for (let i = 0; i < H2_SUBSCRIPTIONS; i++) {
      const setup = await H2Client.connect(nodes[i % 3]!.url);
      const created = await setup.subscribe();
      await setup.close();
      const sub = newSub(created.push);
      let current: H2Client | null = null;
      let turn = Math.floor(random() * 3);
      const loop = (async () => {
        while (!stopping) {
          try {
            const client = await H2Client.connect(nodes[liveNode(turn++)]!.url);
            current = client;
            const gone = new Promise<null>((resolve) => client.session.once('close', () => resolve(null)));
            const monitor = client.monitor(created.url);
            const ended = monitor.done.then(() => null);
            for (;;) {
              // short waits: a pending one would keep the test process alive after the end
              const pushed = await Promise.race([monitor.next(1000).catch(() => undefined), ended, gone]);
              if (pushed === null) break;
              if (pushed === undefined) continue;
              received(sub.index, markerOf(pushed.body));
              void client.ack(pushed.url).catch(() => {});
            }
            await client.close();
          } catch {
            // refused (node down) or cut: the next one
          }
          current = null;
          await sleep(100);
        }
      })();
      clients.push({
        async stop() {
          stopping = true;
          (current as H2Client | null)?.session.destroy();
          await loop;
        },
      });
    }

    // the senders: one loop per subscription, so its messages have an order
    const sent = new Map<string, Sent>();
    let sending = true;
    const sender = async (sub: Sub) => {
      for (let seq = 0; sending; seq++) {
        const topic = sub.topics ? `t${seq % 3}` : null;
        const ttl = sub.shortTtl && seq % 2 === 0 ? SHORT_TTL_S : 60;
        const node = nodes[liveNode(Math.floor(random() * 3))]!;
        const marker = markerFor(sub.index, seq);
        const record: Sent = { sub: sub.index, seq, topic, ttl, answeredAt: 0, status: 0, retryAfter: null };
        sent.set(marker, record);
        try {
          const res = await fetch(on(node, sub.push), {
            method: 'POST',
            headers: { TTL: String(ttl), 'content-encoding': 'aes128gcm', ...(topic ? { topic } : {}) },
            body: aes128gcmBody(marker),
            signal: AbortSignal.timeout(5_000),
          });
          await res.arrayBuffer();
          record.status = res.status;
          record.retryAfter = res.headers.get('retry-after');
        } catch {
          // cut by a kill: unknown outcome
        }
        record.answeredAt = Date.now();
        // after a refusal the application server waits before its next message, as Retry-After asks (shortened)
        await sleep(record.status === 201 ? between(THINK_MS) : 300);
      }
    };

    const started = Date.now();
    const senders = Promise.all(subs.map(sender));
    const rotate = SEED % 3;
    for (const step of SCHEDULE) {
      await sleep(Math.max(0, started + step.at - Date.now()));
      if (step.fault === 'node') {
        const i = (step.node! + rotate) % 3;
        down.add(i);
        await nodes[i]!.kill9();
        await sleep(NODE_DOWN_MS);
        await cluster.start(i);
        down.delete(i);
        console.log(`${Date.now() - started} ms: node ${i} killed -9 and restarted`);
      } else if (step.fault === 'pubsub') {
        const { stdout } = await run('redis-cli', ['-p', String(redis.port), 'CLIENT', 'KILL', 'TYPE', 'pubsub']);
        console.log(`${Date.now() - started} ms: CLIENT KILL TYPE pubsub: ${stdout.trim()} killed`);
        assert.ok(Number(stdout.trim()) >= 3, 'each node had a pub/sub connection');
      } else {
        redisDown = true;
        await redis.kill9();
        await sleep(REDIS_DOWN_MS);
        await redis.restart();
        redisDown = false;
        console.log(`${Date.now() - started} ms: Redis killed -9 and restarted from its AOF`);
      }
    }
    assert.equal(redisDown, false);
    await sleep(Math.max(0, started + LOAD_MS - Date.now()));
    sending = false;
    await senders;

    const records = [...sent.entries()];
    const accepted = records.filter(([, r]) => r.status === 201);
    const mayBeStored = (r: Sent) => r.status === 201 || r.status === 0 || r.status === 503;
    /** Replaced: a later message of its topic may have been stored. */
    const replaced = (r: Sent) =>
      r.topic !== null && records.some(([, o]) => o.sub === r.sub && o.topic === r.topic && o.seq > r.seq && mayBeStored(o));
    const mustArrive = accepted.filter(([, r]) => r.ttl !== SHORT_TTL_S && !replaced(r)).map(([m]) => m);
    const delivered = () => new Set([...deliveries.values()].flatMap((ds) => ds.map((d) => d.marker)));
    await until(() => {
      const got = delivered();
      return mustArrive.every((m) => got.has(m));
    }, 'every message answered 201 delivered', 20_000).catch(() => {});

    // let the last acknowledgements land and short TTLs be swept
    await sleep(SHORT_TTL_S * 1000 + SWEEP_MS * 2);
    let left: string[] = [];
    await until(async () => {
      const { stdout } = await run('redis-cli', ['-p', String(redis.port), '--scan', '--pattern', '{u:*}:[qmo]']);
      left = stdout.split('\n').filter(Boolean);
      return left.length === 0;
    }, 'store empty', 10_000).catch(() => {});
    stopping = true;
    await Promise.all(clients.map((c) => c.stop()));

    // ---- the checker ----
    const got = delivered();
    const statuses: Record<string, number> = {};
    for (const [, r] of records) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const all = [...deliveries.values()].flat();
    const stored503 = [...got].filter((m) => sent.get(m)!.status === 503).length;
    const expiredUnseen = accepted.filter(([m, r]) => r.ttl === SHORT_TTL_S && !got.has(m)).length;
    const replacedUnseen = accepted.filter(([m, r]) => r.ttl !== SHORT_TTL_S && replaced(r) && !got.has(m)).length;
    console.log(
      `seed ${SEED}: ${records.length} posts ${JSON.stringify(statuses)} (0: cut), ${accepted.length} accepted, ` +
        `${mustArrive.length} had to arrive; ${all.length} deliveries of ${got.size} messages (${all.length - got.size} redeliveries); ` +
        `not delivered: ${expiredUnseen} expired, ${replacedUnseen} replaced; delivered though answered 503: ${stored503}`,
    );
    const missing = mustArrive.filter((m) => !got.has(m));
    assert.deepEqual(missing, [], `answered 201 and never delivered (seed ${SEED})`);
    const neverSent = [...got].filter((m) => !sent.has(m));
    assert.deepEqual(neverSent, [], 'delivered but never sent');
    // a 503 may come from a write Redis made but could not answer (killed meanwhile): at least once
    const refusedButDelivered = [...got].filter((m) => ![0, 201, 503].includes(sent.get(m)!.status));
    assert.deepEqual(refusedButDelivered.map((m) => [m, sent.get(m)!.status]), [], 'refused, yet stored');
    const no503RetryAfter = records.filter(([, r]) => r.status === 503 && !(Number(r.retryAfter) > 0));
    assert.deepEqual(no503RetryAfter.map(([m]) => m), [], '503 without Retry-After');
    assert.ok((statuses['503'] ?? 0) > 0, 'Redis down was seen by the senders (503)');

    const disorder: string[] = [];
    const lateTopic: string[] = [];
    const lateTtl: string[] = [];
    for (const [sub, ds] of deliveries) {
      const seen = new Set<string>();
      let last = -1;
      for (const d of ds) {
        const r = sent.get(d.marker)!;
        if (!seen.has(d.marker)) {
          seen.add(d.marker);
          if (r.seq < last) disorder.push(`${d.marker} after s${sub}-${last}`);
          last = Math.max(last, r.seq);
        }
        if (d.at > r.answeredAt + r.ttl * 1000 + SLACK_MS) lateTtl.push(`${d.marker} ${d.at - r.answeredAt} ms after its 201 (TTL ${r.ttl} s)`);
        if (r.topic !== null) {
          const newer = accepted.find(([, o]) => o.sub === r.sub && o.topic === r.topic && o.seq > r.seq && d.at > o.answeredAt + SLACK_MS);
          if (newer) lateTopic.push(`${d.marker} delivered ${d.at - newer[1].answeredAt} ms after ${newer[0]} (topic ${r.topic}) was answered 201`);
        }
      }
    }
    assert.deepEqual(disorder, [], 'out of order');
    assert.deepEqual(lateTopic, [], 'replaced, yet delivered');
    assert.deepEqual(lateTtl, [], 'delivered after its TTL');
    // the run did what it is for: some messages expired, and some were replaced, before their user agent came back
    assert.ok(expiredUnseen > 0 && replacedUnseen > 0, 'messages expired and were replaced while their user agent was offline');
    assert.deepEqual(left, [], 'messages or outbox entries left in Redis after every acknowledgement and sweep');
  } finally {
    stopping = true;
    await Promise.allSettled(clients.map((c) => c.stop()));
    await cluster?.stop();
    await redis.stop();
  }
});
