// The baseline the benchmark compares webpushd with: the least a push relay can do on Node.
// POST /push/:id hands the body to that user agent's WebSocket at once and answers 201; the
// user agent acks. No storage, no validation, no tokens, no timers. It speaks just enough of the
// WebSocket protocol (hello, register, notification, ack) for the same load generator to drive it.
// PUT /broadcasts/:id (body: the version) sends a broadcast frame to every user agent that named
// the id in its hello: the least a megaphone can do, for bench/broadcast-fanout.ts.
// GET /metrics gives its event-loop delay as webpushd's admin /metrics does (prom-client's
// default metric, the same sampling), reset on each read, so the benchmark compares like with like.
//
//   node bench/baseline-relay.ts --host 127.0.0.1 --port 8090
import { createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';

const { values } = parseArgs({
  options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '8090' } },
});
const host = values.host;
const port = Number(values.port);
const base = `http://${host}:${port}`;

interface Client {
  ws: WebSocket;
  channelID: string;
}

/** Per broadcast id, the connections that named it in their hello. */
const broadcastListeners = new Map<string, Set<WebSocket>>();

const clients = new Map<string, Client>();
let nextId = 0;
let nextVersion = 0;
let acks = 0;

/** prom-client's sampling (eventLoopMonitoringPrecision 10 ms). */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });

wss.on('connection', (ws) => {
  const id = (++nextId).toString(16).padStart(32, '0');
  ws.on('message', (data) => {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse((data as Buffer).toString()) as Record<string, unknown>;
    } catch {
      return ws.close(1002);
    }
    switch (m.messageType) {
      case 'hello':
        clients.set(id, { ws, channelID: '' });
        for (const b of Object.keys((m.broadcasts as Record<string, string> | undefined) ?? {})) {
          let set = broadcastListeners.get(b);
          if (!set) broadcastListeners.set(b, (set = new Set()));
          set.add(ws);
          ws.once('close', () => set.delete(ws));
        }
        ws.send(JSON.stringify({ messageType: 'hello', uaid: id, status: 200, use_webpush: true, broadcasts: {} }));
        return;
      case 'register': {
        const channelID = String(m.channelID);
        const client = clients.get(id);
        if (client) client.channelID = channelID;
        ws.send(JSON.stringify({ messageType: 'register', channelID, status: 200, pushEndpoint: `${base}/push/${id}` }));
        return;
      }
      case 'ack':
        acks++;
        return;
    }
  });
  ws.on('close', () => clients.delete(id));
  ws.on('error', () => {});
});

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`{"status":"OK","clients":${clients.size},"acks":${acks}}`);
    return;
  }
  if (url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`nodejs_eventloop_lag_p99_seconds ${loopDelay.percentile(99) / 1e9}\nnodejs_eventloop_lag_max_seconds ${loopDelay.max / 1e9}\n`);
    loopDelay.reset();
    return;
  }
  if (req.method === 'PUT' && url.startsWith('/broadcasts/')) {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = decodeURIComponent(url.slice('/broadcasts/'.length));
      const frame = JSON.stringify({ messageType: 'broadcast', broadcasts: { [id]: Buffer.concat(chunks).toString() } });
      for (const ws of broadcastListeners.get(id) ?? []) ws.send(frame);
      res.writeHead(200, { 'content-length': 0 });
      res.end();
    });
    return;
  }
  if (req.method !== 'POST' || !url.startsWith('/push/')) {
    res.writeHead(404, { 'content-length': 0 });
    res.end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const client = clients.get(url.slice('/push/'.length));
    if (!client) {
      res.writeHead(410, { 'content-length': 0 });
      res.end();
      return;
    }
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const version = (++nextVersion).toString(36);
    client.ws.send(
      JSON.stringify({
        messageType: 'notification',
        channelID: client.channelID,
        version,
        data: body.toString('base64url'),
        headers: { encoding: 'aes128gcm' },
      }),
    );
    res.writeHead(201, { location: `${base}/m/${version}`, ttl: '60', 'content-length': 0 });
    res.end();
  });
});

server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
server.listen(port, host, () => console.log(JSON.stringify({ msg: 'listening', url: base })));

const stop = () => {
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
