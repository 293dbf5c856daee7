// A swarm of WebSocket user agents, forked by bench/push-throughput.ts. Each one says hello,
// registers one channel and then acknowledges every notification (one ack frame each, as
// Firefox does). Requests from the orchestrator:
//   connect {url, count, concurrency, returnEndpoints} -> {endpoints?, connected, ms}
//   expect {total, timeoutMs}  -> when `total` notifications were acked (or on timeout):
//                                 {acked, duplicates, firstAckAt, lastAckAt, perUaMin, perUaMax}
//   finish {}                  -> ends a pending `expect` now (it answers with what it counted)
//   close {}                   -> closes every connection
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { serveRequests } from './common.ts';

interface Agent {
  ws: WebSocket;
  notifications: number;
}

const agents: Agent[] = [];
let closes = 0;

/** Counting window of an `expect` request. */
let window: {
  total: number;
  acked: number;
  duplicates: number;
  seen: Set<string>;
  firstAckAt: number;
  lastAckAt: number;
  /** Ends the window now and answers the `expect` request. */
  finish: () => void;
} | null = null;

function connectOne(url: string): Promise<{ agent: Agent; endpoint: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['push-notification'], { perMessageDeflate: false });
    const agent: Agent = { ws, notifications: 0 };
    const channelID = randomUUID();
    let registered = false;
    const fail = (why: string) => {
      if (registered) return;
      registered = true;
      ws.terminate();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail('hello/register took more than 30 s'), 30_000);
    ws.on('open', () => ws.send('{"messageType":"hello","use_webpush":true,"broadcasts":{}}'));
    ws.on('error', (err) => fail(err.message));
    ws.on('close', (code) => {
      closes++;
      fail(`closed (${code}) before register completed`);
    });
    ws.on('message', (data) => {
      const m = JSON.parse((data as Buffer).toString()) as Record<string, unknown>;
      switch (m.messageType) {
        case 'notification': {
          const version = m.version as string;
          ws.send(JSON.stringify({ messageType: 'ack', updates: [{ channelID: m.channelID, version, code: 100 }] }));
          agent.notifications++;
          // message ids are per user agent on Redis: a version alone may repeat across agents
          onAck(`${channelID}:${version}`);
          return;
        }
        case 'hello':
          ws.send(JSON.stringify({ messageType: 'register', channelID }));
          return;
        case 'register':
          if (registered) return;
          registered = true;
          clearTimeout(timer);
          if (m.status !== 200 || typeof m.pushEndpoint !== 'string') {
            ws.terminate();
            return reject(new Error(`register answered ${JSON.stringify(m)}`));
          }
          resolve({ agent, endpoint: m.pushEndpoint });
          return;
      }
    });
  });
}

function onAck(key: string): void {
  const w = window;
  if (!w) return;
  const now = Date.now();
  if (w.seen.has(key)) {
    w.duplicates++;
    return;
  }
  w.seen.add(key);
  if (w.acked === 0) w.firstAckAt = now;
  w.acked++;
  w.lastAckAt = now;
  if (w.acked === w.total) setImmediate(w.finish);
}

async function connect(url: string, count: number, concurrency: number, returnEndpoints: boolean) {
  const started = Date.now();
  const endpoints: string[] = new Array<string>(count);
  let next = 0;
  let failures = 0;
  let lastError = '';
  const worker = async () => {
    while (next < count) {
      const i = next++;
      for (let attempt = 0; ; attempt++) {
        try {
          const { agent, endpoint } = await connectOne(url);
          agents.push(agent);
          endpoints[i] = endpoint;
          break;
        } catch (err) {
          failures++;
          lastError = (err as Error).message;
          if (attempt >= 4) throw new Error(`user agent ${i}: ${lastError}`, { cause: err });
          await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return {
    connected: count,
    retried: failures,
    lastError,
    ms: Date.now() - started,
    endpoints: returnEndpoints ? endpoints : undefined,
  };
}

function expect(total: number, timeoutMs: number) {
  for (const a of agents) a.notifications = 0;
  return new Promise<Record<string, unknown>>((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      const w = window;
      if (!w) return;
      window = null;
      let perUaMin = Number.POSITIVE_INFINITY;
      let perUaMax = 0;
      for (const a of agents) {
        perUaMin = Math.min(perUaMin, a.notifications);
        perUaMax = Math.max(perUaMax, a.notifications);
      }
      resolve({
        total,
        acked: w.acked,
        duplicates: w.duplicates,
        firstAckAt: w.firstAckAt,
        lastAckAt: w.lastAckAt,
        perUaMin,
        perUaMax,
        closes,
        timedOut: w.acked < total,
      });
    };
    const timer = setTimeout(finish, timeoutMs);
    window = { total, acked: 0, duplicates: 0, seen: new Set(), firstAckAt: 0, lastAckAt: 0, finish };
  });
}

serveRequests(async (req) => {
  switch (req.type) {
    case 'connect':
      return connect(req.url as string, req.count as number, req.concurrency as number, req.returnEndpoints === true);
    case 'expect':
      return expect(req.total as number, req.timeoutMs as number);
    case 'finish':
      window?.finish();
      return { finished: true };
    case 'close':
      for (const a of agents) a.ws.terminate();
      agents.length = 0;
      return { closed: true };
    default:
      throw new Error(`unknown request ${String(req.type)}`);
  }
});
