// User agents that subscribe to one broadcast id and note when each hears of a new version;
// forked by bench/broadcast-fanout.ts. Requests:
//   connect {url, count, id}   -> {connected, ms}   (hello with {id: "v0"}; a relay or webpushd)
//   arm {version}               -> {} once the swarm watches for `version`
//   result {timeoutMs}          -> {heard, first, last} once every user agent heard it (epoch ms
//                                  of the first and last), or on timeout
//   close {}
import WebSocket from 'ws';
import { serveRequests } from './common.ts';

const sockets: WebSocket[] = [];
let waiting: { version: string; heard: number; first: number; last: number; done: () => void } | null = null;
let armed: Promise<unknown> = Promise.resolve({});

function connectOne(url: string, id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['push-notification'], { perMessageDeflate: false });
    ws.on('open', () => ws.send(JSON.stringify({ messageType: 'hello', use_webpush: true, broadcasts: { [id]: 'v0' } })));
    ws.on('error', reject);
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { messageType: string; broadcasts?: Record<string, string> };
      if (m.messageType === 'hello') return resolve();
      const w = waiting;
      if (m.messageType !== 'broadcast' || !w || m.broadcasts?.[id] !== w.version) return;
      const now = Date.now();
      if (w.heard++ === 0) w.first = now;
      w.last = now;
      if (w.heard === sockets.length) w.done();
    });
    sockets.push(ws);
  });
}

serveRequests(async (req) => {
  switch (req.type) {
    case 'connect': {
      const started = Date.now();
      const count = Number(req.count);
      for (let i = 0; i < count; i += 100) {
        await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => connectOne(String(req.url), String(req.id))));
      }
      return { connected: sockets.length, ms: Date.now() - started };
    }
    case 'arm':
      armed = new Promise((resolve) => {
        const w = { version: String(req.version), heard: 0, first: 0, last: 0, done: () => {} };
        w.done = () => {
          waiting = null;
          resolve({ heard: w.heard, first: w.first, last: w.last });
        };
        waiting = w;
      });
      return {};
    case 'result': {
      const timer = setTimeout(() => waiting?.done(), Number(req.timeoutMs));
      const result = await armed;
      clearTimeout(timer);
      return result;
    }
    case 'close':
      for (const ws of sockets) ws.terminate();
      return {};
    default:
      throw new Error(`unknown request ${String(req.type)}`);
  }
});
