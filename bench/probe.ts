// The latency probe, forked by bench/push-throughput.ts: one user agent of its own and an
// application server posting numbered messages to it at a low fixed rate, timing each from the
// start of its POST to the notification's arrival on the WebSocket (both clocks in this process).
//   connect {url, postTo?}        -> {endpoint}; with postTo (an origin), posts go there instead
//                                    of the node the probe is connected to (cross-node latency)
//   start {rate}                  -> starts posting
//   stop {drainMs}                -> stops, waits for late notifications, returns the samples
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { aes128gcmBody, seqOfBody, serveRequests } from './common.ts';

let ws: WebSocket | null = null;
let endpoint: URL | null = null;
const agent = new Agent({ keepAlive: true, maxSockets: 32 });

/** seq -> POST start time, for messages not yet received. */
const inflight = new Map<number, number>();
let seq = 0;
let samples: number[] = [];
let responseTimes: number[] = [];
let statusErrors = 0;
let lastError = '';
let timer: NodeJS.Timeout | null = null;

function onNotification(m: Record<string, unknown>): void {
  const at = performance.now();
  ws!.send(JSON.stringify({ messageType: 'ack', updates: [{ channelID: m.channelID, version: m.version, code: 100 }] }));
  if (typeof m.data !== 'string') return;
  const n = seqOfBody(Buffer.from(m.data, 'base64url'));
  const started = inflight.get(n);
  if (started === undefined) return;
  inflight.delete(n);
  samples.push(at - started);
}

async function connect(url: string, postTo?: string): Promise<{ endpoint: string }> {
  const socket = new WebSocket(url, ['push-notification'], { perMessageDeflate: false });
  ws = socket;
  return new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('open', () => socket.send('{"messageType":"hello","use_webpush":true,"broadcasts":{}}'));
    socket.on('message', (data) => {
      const m = JSON.parse((data as Buffer).toString()) as Record<string, unknown>;
      if (m.messageType === 'notification') return onNotification(m);
      if (m.messageType === 'hello') socket.send(JSON.stringify({ messageType: 'register', channelID: randomUUID() }));
      if (m.messageType === 'register') {
        if (m.status !== 200 || typeof m.pushEndpoint !== 'string') return reject(new Error(`register: ${JSON.stringify(m)}`));
        endpoint = new URL(m.pushEndpoint);
        if (postTo) endpoint.host = new URL(postTo).host;
        resolve({ endpoint: m.pushEndpoint });
      }
    });
  });
}

function postOne(): void {
  const n = ++seq;
  const body = aes128gcmBody(n);
  const started = performance.now();
  inflight.set(n, started);
  const req = request(
    {
      agent,
      host: endpoint!.hostname,
      port: endpoint!.port,
      path: endpoint!.pathname,
      method: 'POST',
      headers: { TTL: '60', 'Content-Encoding': 'aes128gcm', 'Content-Length': body.length },
    },
    (res) => {
      responseTimes.push(performance.now() - started);
      if (res.statusCode !== 201) {
        statusErrors++;
        lastError = `status ${res.statusCode}`;
        inflight.delete(n);
      }
      res.resume();
    },
  );
  req.on('error', (err) => {
    statusErrors++;
    lastError = err.message;
    inflight.delete(n);
  });
  req.end(body);
}

serveRequests(async (req) => {
  switch (req.type) {
    case 'connect':
      return connect(req.url as string, req.postTo as string | undefined);
    case 'start': {
      samples = [];
      responseTimes = [];
      statusErrors = 0;
      inflight.clear();
      const rate = req.rate as number;
      timer = setInterval(postOne, 1000 / rate);
      return { started: true };
    }
    case 'stop': {
      if (timer) clearInterval(timer);
      timer = null;
      const deadline = Date.now() + (req.drainMs as number);
      while (inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const lost = inflight.size;
      inflight.clear();
      return { samples, responseTimes, lost, statusErrors, lastError };
    }
    case 'close':
      ws?.terminate();
      agent.destroy();
      return { closed: true };
    default:
      throw new Error(`unknown request ${String(req.type)}`);
  }
});
