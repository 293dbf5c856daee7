// The live doors of the fuzz suite, each a fixture around a running server plus an async
// property over one case: the WebSocket door (raw frames), the push endpoint over HTTP/1.1,
// the RFC 8030 resources over HTTP/2. runLive() wraps one in the suite's invariants: the
// process never exits, every answer is documented, the canaries keep receiving.
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import fc from 'fast-check';
import { H2Client, REL_RECEIPT, links } from '../helpers/h2-client.ts';
import {
  KEY_A,
  applyEdit,
  describeFrame,
  asPath,
  signedTokens,
  type H2Case,
  type HttpPushCase,
  type PathCase,
  type SignedToken,
  type WebSocketCase,
} from './arbitraries.ts';
import { RawWebSocket, SUCCESS, TargetAgent, httpRequest, textWireFrame, within, type Answers, type Canary, type FuzzServer } from './live.ts';

export interface Door<C> {
  readonly name: string;
  readonly arbitrary: fc.Arbitrary<C>;
  run(c: C): Promise<void>;
  /** Checks that span cases (called every few cases and at the end). */
  check(): Promise<void>;
  close(): Promise<void>;
  /** What the cases did, for the report. */
  stats(): Record<string, number>;
}

const count = (stats: Record<string, number>, key: string) => (stats[key] = (stats[key] ?? 0) + 1);

export interface LiveRun {
  cases: number;
  canaryChecks: number;
  stats: Record<string, number>;
}

/**
 * Runs `door` for `params.numRuns` cases. Every `every` cases, and at the end: the process is
 * alive, each canary gets a message sent to it, the door's own checks hold. At the end: no
 * error-level line in the server's log.
 */
export async function runLive<C>(s: FuzzServer, door: Door<C>, canaries: Canary[], params: fc.Parameters<unknown>, every = 10): Promise<LiveRun> {
  let cases = 0;
  let canaryChecks = 0;
  const checkpoint = async () => {
    s.assertAlive();
    try {
      for (const canary of canaries) {
        await within(canary.check(), 10_000, `${canary.name} after ${cases} ${door.name} cases`);
        canaryChecks++;
      }
      await door.check();
    } catch (err) {
      await s.assertSurvived();
      throw err;
    }
  };
  await checkpoint();
  const fuzzed = fc.assert(
    fc.asyncProperty(door.arbitrary, async (c) => {
      s.assertAlive();
      try {
        await door.run(c);
      } catch (err) {
        await s.assertSurvived(); // a dead server explains the failure better than its symptom
        throw err;
      }
      s.assertAlive();
      if (++cases % every === 0) await checkpoint();
    }),
    params as fc.Parameters<[C]>,
  );
  // the long run reports how far a failing door got
  await fuzzed.catch((err: unknown) => {
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { casesRun: cases });
  });
  await checkpoint();
  assert.deepEqual(s.errorLines(), [], 'no error in the server log');
  return { cases, canaryChecks, stats: door.stats() };
}

// ---------------------------------------------------------------------------------------------
// WebSocket

const HELLO = JSON.stringify({ messageType: 'hello', use_webpush: true, broadcasts: {} });

export function webSocketDoor(s: FuzzServer, answers: Answers, arbitrary: fc.Arbitrary<WebSocketCase>): Door<WebSocketCase> {
  const stats: Record<string, number> = {};
  return {
    name: 'WebSocket',
    arbitrary,
    stats: () => stats,
    check: async () => {},
    close: async () => {},
    async run(c) {
      const ws = await RawWebSocket.connect(s.wsUrl, c.protocol);
      if (!(ws instanceof RawWebSocket)) {
        count(stats, `upgrade refused ${ws.refused}`);
        // docs/CONFIGURATION.md --max-connections-per-address: 429 before the upgrade
        assert.equal(ws.refused, 429, `upgrade refused with ${ws.refused}: ${ws.body}`);
        return;
      }
      try {
        if (c.hello) ws.send(textWireFrame(HELLO));
        let sentClose: number | null = null;
        for (const f of c.frames) {
          ws.send(f);
          if (f.kind === 'frame' && f.opcode === 8 && sentClose === null) sentClose = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
        }
        // Frames are handled in order, so an answer to this one means every frame before it was handled.
        const sentinel = randomUUID();
        ws.send(textWireFrame(JSON.stringify({ messageType: 'register', channelID: sentinel })));
        const answered = () => ws.frames.some((f) => f.opcode === 1 && f.payload.includes(sentinel));
        await ws.until(answered, 10_000, 'the frames after the fuzzed ones');
        s.assertAlive();
        const messages = ws.messages();
        for (const m of messages) {
          const ping = Object.keys(m).length === 0;
          assert.ok(ping || typeof m.messageType === 'string', `a server frame without messageType: ${JSON.stringify(m).slice(0, 200)}`);
        }
        if (ws.closeFrame) {
          const { code } = ws.closeFrame;
          count(stats, `closed ${code}`);
          if (code === INVALID_UTF8) {
            // documented for exactly that input: any other frame closed with it is a failure
            assert.ok(sentInvalidUtf8(c), `closed 1007 without invalid UTF-8 after ${describe(c)}`);
          } else if (sentClose === null || code !== sentClose) answers.close(code, `after ${describe(c)}`);
        } else if (answered()) {
          const reply = messages.find((m) => m.channelID === sentinel)!;
          assert.equal(reply.status, 200, `the register after the fuzzed frames: ${JSON.stringify(reply)}`);
          count(stats, 'answered');
        } else {
          assert.fail(`the connection was cut without a close frame after ${describe(c)}`);
        }
        assert.deepEqual(ws.problems, []);
      } finally {
        await ws.finish(5000);
      }
    },
  };
}

/** RFC 6455 7.4.1: "data within a message that was not consistent with the type of the message". */
const INVALID_UTF8 = 1007;

/** A text frame, continuation or close reason that is not UTF-8. */
function sentInvalidUtf8(c: WebSocketCase): boolean {
  return c.frames.some(
    (f) => f.kind === 'frame' && (((f.opcode === 0 || f.opcode === 1) && !isUtf8(f.payload)) || (f.opcode === 8 && !isUtf8(f.payload.subarray(2)))),
  );
}

/** A case without the bulk of its payloads, for messages. */
function describe(c: WebSocketCase): string {
  return `hello ${c.hello}, protocol ${JSON.stringify(c.protocol)}, ${c.frames.map(describeFrame).join(', ')}`;
}

// ---------------------------------------------------------------------------------------------
// The push endpoint over HTTP/1.1

export interface PushTargets {
  /** The target user agent's open and restricted (KEY_A) push URLs. */
  v1: string;
  v2: string;
  /** A receipt subscription of this server. */
  receipt: string;
  target: TargetAgent;
  pool: SignedToken[];
}

export async function pushTargets(s: FuzzServer): Promise<PushTargets> {
  const target = await TargetAgent.start(s, [undefined, KEY_A.publicKey]);
  const [v1, v2] = [...target.channels.values()] as [string, string];
  const res = await fetch(v1, { method: 'POST', headers: { ttl: '60', prefer: 'respond-async' } });
  assert.equal(res.status, 202);
  const receipt = links(res.headers.get('link') ?? undefined).get(REL_RECEIPT);
  assert.ok(receipt, 'a receipt subscription');
  return { v1, v2, receipt, target, pool: signedTokens(s.url, Date.now() / 1000) };
}

function pathOf(p: PathCase, t: { v1: string; v2: string; message: string | null }): string {
  const edit = (url: string) => {
    const u = new URL(url).pathname;
    const cut = u.lastIndexOf('/') + 1;
    return u.slice(0, cut) + p.edits.reduce(applyEdit, u.slice(cut));
  };
  switch (p.kind) {
    case 'push-v1':
      return new URL(t.v1).pathname;
    case 'push-v2':
      return new URL(t.v2).pathname;
    case 'push-v1-edited':
      return edit(t.v1);
    case 'push-v2-edited':
      return edit(t.v2);
    case 'version':
      return `/wpush/${p.noise}/${new URL(t.v1).pathname.split('/').pop()}`;
    case 'message':
      return t.message ? (p.edits.length % 2 ? edit(t.message) : new URL(t.message).pathname) : '/m/x';
    case 'subscribe':
      return '/subscribe';
    case 'resource':
      return `/${p.noise.length % 3 === 0 ? 's' : p.noise.length % 3 === 1 ? 'set' : 'r'}/${p.noise}`;
    case 'random':
      return `/${p.noise}`;
  }
}

export function httpPushDoor(s: FuzzServer, answers: Answers, t: PushTargets, arbitrary: fc.Arbitrary<HttpPushCase>): Door<HttpPushCase> {
  const stats: Record<string, number> = {};
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let message: string | null = null;
  /** Accepted sends to the target without a Topic: each must reach it (a Topic may replace one). */
  let mustArrive = 0;
  return {
    name: 'push endpoint (HTTP/1.1)',
    arbitrary,
    stats: () => ({ ...stats, 'notifications received': t.target.notifications }),
    async run(c) {
      const path = asPath(pathOf(c.path, { v1: t.v1, v2: t.v2, message }));
      if (c.abort) {
        count(stats, 'aborted mid-body');
        await abortedRequest(s.url, c.method, path, c.headers, c.body);
        return;
      }
      let a;
      try {
        a = await httpRequest(agent, s.url, { method: c.method, path, headers: c.headers, body: c.body, chunked: c.chunked });
      } catch (err) {
        s.assertAlive();
        throw new Error(`${c.method} ${path}: ${(err as Error).message}`, { cause: err });
      }
      count(stats, `${c.method === 'POST' ? '' : `${c.method} `}${a.status}`);
      const what = `${c.method} ${c.path.kind} ${JSON.stringify(c.headers).slice(0, 600)} body ${c.body.length} bytes`;
      if (c.method === 'HEAD') assert.ok(a.status !== 500, what);
      else answers.http(a.status, a.headers, a.body, what);
      if ((a.status === 201 || a.status === 202) && c.path.kind !== 'subscribe') {
        const location = String(a.headers.location);
        assert.ok(location.startsWith(`${s.url}/m/`), `${what}: Location ${location}`);
        if (a.status === 202) assert.ok(links(a.headers.link).get(REL_RECEIPT), `${what}: 202 names its receipt subscription`);
        if (c.path.kind === 'push-v1' || c.path.kind === 'push-v2') {
          message = location;
          if (c.headers.topic === undefined) mustArrive++;
        }
      }
    },
    async check() {
      t.target.assertFine();
      const deadline = Date.now() + 10_000;
      // every accepted message reaches the connected target (bounded wait for the event)
      while (t.target.notifications < mustArrive) {
        if (Date.now() > deadline) assert.fail(`the target received ${t.target.notifications} of ${mustArrive} accepted messages`);
        await new Promise<void>((resolve) => t.target.ws.once('message', () => resolve()));
      }
    },
    async close() {
      agent.destroy();
      t.target.close();
    },
  };
}

/** Announces more body than it sends, sends half, and destroys its own connection. */
function abortedRequest(url: string, method: string, path: string, headers: Record<string, string | string[]>, body: Buffer): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const req = http.request({ agent: false, hostname, port, method, path, headers: { ...headers, 'content-length': String(body.length + 100) } });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.on('response', (res) => {
      res.resume(); // an early refusal (404, 401...) before the body is fine
      req.destroy();
    });
    req.write(body.subarray(0, body.length >> 1), () => req.destroy());
  });
}

// ---------------------------------------------------------------------------------------------
// RFC 8030 over HTTP/2

export interface H2Resources {
  client: H2Client;
  /** Subscriptions, sets, push URLs, receipt subscriptions and message URLs of this server. */
  subs: string[];
  sets: string[];
  pushes: string[];
  receipts: string[];
  messages: string[];
}

export async function h2Resources(s: FuzzServer): Promise<H2Resources> {
  const client = await H2Client.connect(s.url);
  const plain = await client.subscribe();
  const restricted = await client.subscribe({ set: plain.set, vapid: KEY_A.publicKey });
  const sent = await client.send(plain.push, { headers: { prefer: 'respond-async' } });
  assert.equal(sent.status, 202);
  return {
    client,
    subs: [plain.url, restricted.url],
    sets: [plain.set],
    pushes: [plain.push, restricted.push],
    receipts: [links(sent.headers.link).get(REL_RECEIPT)!],
    messages: [String(sent.headers.location)],
  };
}

/** HTTP/2 field values: visible ASCII inside, no leading or trailing whitespace (RFC 9113 8.2.1). */
export function h2Safe(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const clean = (v: string) => v.replace(/[^\x20-\x7e]/g, '?').trim();
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map(clean) : clean(value);
  }
  return out;
}

export function h2Door(s: FuzzServer, answers: Answers, r: H2Resources, arbitrary: fc.Arbitrary<H2Case>): Door<H2Case> {
  const stats: Record<string, number> = {};
  let client = r.client;
  const request = (method: string, path: string, headers: http2.OutgoingHttpHeaders, body: Buffer) =>
    new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer; reset: number | null }>((resolve, reject) => {
      const req = client.session.request({ ':method': method, ':path': path, ...headers });
      let head: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      const answer = (reset: number | null) => resolve({ status: Number(head[':status'] ?? 0), headers: head, body: Buffer.concat(chunks), reset });
      req.on('response', (h) => (head = h));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => answer(null));
      // closed before its end: reset (resolve is a no-op when the end came first)
      req.on('close', () => answer(req.rstCode ?? -1));
      req.on('error', () => {});
      req.on('frameError', () => reject(new Error('frame error')));
      // node ends a GET's or HEAD's writable side itself: a body there would be a write after end
      if (!req.writableEnded) req.end(body);
    });
  const resourcePath = (c: H2Case) => {
    const pool = r[c.resource];
    const url = pool[c.pick % pool.length]!;
    const path = new URL(url).pathname;
    if (!c.edited) return path;
    const cut = path.lastIndexOf('/') + 1;
    return asPath(path.slice(0, cut) + c.path.edits.reduce(applyEdit, path.slice(cut)));
  };
  return {
    name: 'RFC 8030 (HTTP/2)',
    arbitrary,
    stats: () => stats,
    check: async () => {},
    async close() {
      await client.close();
    },
    async run(c) {
      if (client.session.closed || client.session.destroyed) {
        count(stats, 'reconnect');
        client = await H2Client.connect(s.url);
      }
      let method = c.method;
      let path: string;
      const headers = { ...h2Safe(c.headers) } as http2.OutgoingHttpHeaders;
      switch (c.kind) {
        case 'subscribe':
          method = 'POST';
          path = '/subscribe';
          break;
        case 'monitor':
          method = 'GET';
          path = resourcePath({ ...c, resource: (['subs', 'sets', 'receipts'] as const)[c.pick % 3]! });
          // first preference wins (RFC 7240): the fuzzed ones after it never make the GET wait
          headers.prefer = `wait=0${headers.prefer ? `, ${String(headers.prefer)}` : ''}`;
          break;
        case 'delete':
          method = 'DELETE';
          path = resourcePath({ ...c, resource: (['messages', 'subs', 'sets', 'messages'] as const)[c.pick % 4]! });
          break;
        case 'send':
          method = 'POST';
          path = resourcePath({ ...c, resource: 'pushes' });
          break;
        case 'other':
          path = asPath(`/${c.path.noise}`);
          break;
        case 'abort':
          path = resourcePath({ ...c, resource: 'pushes', edited: false });
          break;
        case 'hold':
          path = resourcePath({ ...c, resource: (['subs', 'sets', 'receipts'] as const)[c.pick % 3]!, edited: false });
          break;
      }
      if (c.kind === 'abort' || c.kind === 'hold') {
        const status = await within(cutShort(c.kind === 'abort' ? 'POST' : 'GET', path, headers, c.body), 10_000, `${c.kind} ${path}`);
        count(stats, `${c.kind} ${status ?? 'cut'}`);
        // an answer that came before the cut is still one of the documented ones
        if (status !== null) assert.ok(status !== 500 && (SUCCESS.has(status) || answers.errors.has(status)), `${c.kind} ${path}: ${status}`);
        return;
      }
      let a;
      try {
        a = await within(request(method, path, headers, c.body), 10_000, `${method} ${path}`);
      } catch (err) {
        s.assertAlive();
        throw err;
      }
      const what = `HTTP/2 ${c.kind} ${method} ${path} ${JSON.stringify(headers).slice(0, 600)}`;
      if (a.reset !== null && a.status === 0) {
        count(stats, `reset ${a.reset}`);
        // docs/CONFIGURATION.md --max-header-size: a header list too large is reset with ENHANCE_YOUR_CALM
        assert.equal(a.reset, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `${what}: stream reset ${a.reset} without an answer`);
        return;
      }
      count(stats, `${c.kind} ${a.status}`);
      if (method === 'HEAD') assert.ok(a.status !== 500, what);
      else answers.http(a.status, a.headers, a.body, what);
      // keep the pool alive: what a case deleted is replaced
      if (a.status === 204 && method === 'DELETE' && !c.edited && c.kind === 'delete') await refill(path);
      if (a.status === 201 && c.kind === 'subscribe') {
        const l = links(a.headers.link);
        r.subs.push(String(a.headers.location));
        r.pushes.push(l.get('urn:ietf:params:push')!);
        r.sets.push(l.get('urn:ietf:params:push:set')!);
        for (const pool of [r.subs, r.pushes, r.sets]) if (pool.length > 8) pool.splice(2, 1);
      }
      if ((a.status === 201 || a.status === 202) && c.kind === 'send') {
        r.messages.push(String(a.headers.location));
        if (r.messages.length > 8) r.messages.splice(1, 1);
        const receipt = links(a.headers.link).get(REL_RECEIPT);
        if (receipt && !r.receipts.includes(receipt)) r.receipts.push(receipt);
        if (r.receipts.length > 4) r.receipts.splice(1, 1);
      }
    },
  };

  /** A request cancelled (RST_STREAM CANCEL) after half its body, or at once for a GET; its status if one came first. */
  function cutShort(method: string, path: string, headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<number | null> {
    return new Promise((resolve) => {
      const req = client.session.request({ ':method': method, ':path': path, ...headers, ...(method === 'POST' ? { 'content-length': String(body.length + 100) } : {}) });
      let status: number | null = null;
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('error', () => {});
      req.on('close', () => resolve(status));
      req.resume();
      if (method === 'POST') req.write(body.subarray(0, body.length >> 1), () => req.close(http2.constants.NGHTTP2_CANCEL));
      else setImmediate(() => req.close(http2.constants.NGHTTP2_CANCEL));
    });
  }

  async function refill(path: string): Promise<void> {
    if (!path.startsWith('/s/') && !path.startsWith('/set/')) return;
    const sub = await client.subscribe();
    const replace = (pool: string[], url: string) => {
      const i = pool.findIndex((u) => new URL(u).pathname === path);
      if (i >= 0) pool[i] = url;
    };
    replace(r.subs, sub.url);
    replace(r.sets, sub.set);
    // the subscriptions of a deleted set are gone too: their push URLs answer 410, which is fine to keep fuzzing
    r.subs.push(sub.url);
    r.pushes.push(sub.push);
    if (r.subs.length > 8) r.subs.splice(0, r.subs.length - 8);
    if (r.pushes.length > 8) r.pushes.splice(0, r.pushes.length - 8);
  }
}
