// The live side of the fuzz suite: a real `webpushd serve` child process (so a crash shows as
// the process exiting), the answers the docs allow, a raw WebSocket client that can send any
// frame, and well-behaved user agents on their own connections that must keep receiving.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type WebSocket from 'ws';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { H2Client, type Monitor } from '../helpers/h2-client.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import type { WireFrame } from './arbitraries.ts';

// ---------------------------------------------------------------------------------------------
// What the docs allow

const docs = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');

/** The internal failures: documented, but never an answer to anything a client sends. */
export const INTERNAL_STATUS = 500;
export const INTERNAL_CLOSE = 1011;

/** status -> errnos, from the tables of docs/ERRORS.md and docs/RFC8030.md. */
export function documentedErrors(): Map<number, Set<number>> {
  const out = new Map<number, Set<number>>();
  for (const text of [docs('ERRORS.md'), docs('RFC8030.md')]) {
    for (const m of text.matchAll(/^\| (\d{3}) \| (\d+) \|/gm)) {
      const status = Number(m[1]);
      if (!out.has(status)) out.set(status, new Set());
      out.get(status)!.add(Number(m[2]));
    }
  }
  assert.ok(out.get(400)?.has(110) && out.get(404)?.has(102), 'the error tables of docs/ERRORS.md were read');
  return out;
}

/** The close codes of the table under "## Close codes" in docs/PROTOCOL.md. */
export function documentedCloseCodes(): Set<number> {
  const section = docs('PROTOCOL.md').split(/^## Close codes$/m)[1]?.split(/^## /m)[0] ?? '';
  const codes = new Set([...section.matchAll(/^\| (\d{4}) \|/gm)].map((m) => Number(m[1])));
  assert.ok(codes.has(1002) && codes.has(4774), 'the close codes of docs/PROTOCOL.md were read');
  return codes;
}

/** Successful answers (docs/RFC8030.md resources, docs/ERRORS.md): 200/204 monitors and deletes, 201/202 sends and subscribes. */
export const SUCCESS = new Set([200, 201, 202, 204]);
/** HTTP/1.1 request heads above --max-header-size (docs/CONFIGURATION.md): a plain 431, no JSON. */
export const HEADERS_TOO_LARGE = 431;

export class Answers {
  readonly errors = documentedErrors();
  readonly closeCodes = documentedCloseCodes();

  /** An HTTP answer: a documented status; an error in autopush's JSON shape with a documented errno. */
  http(status: number, headers: http.IncomingHttpHeaders, body: Buffer, what: string): void {
    assert.notEqual(status, INTERNAL_STATUS, `${what}: 500 ${body.toString()}`);
    if (SUCCESS.has(status)) return;
    if (status === HEADERS_TOO_LARGE) return;
    const errnos = this.errors.get(status);
    assert.ok(errnos, `${what}: status ${status} is not documented (${body.toString().slice(0, 200)})`);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(body.toString()) as Record<string, unknown>;
    } catch {
      assert.fail(`${what}: ${status} without a JSON body: ${JSON.stringify(body.toString().slice(0, 200))}`);
    }
    assert.equal(json.code, status, `${what}: body code`);
    assert.ok(errnos.has(json.errno as number), `${what}: ${status} errno ${String(json.errno)} is not documented (${String(json.message)})`);
    assert.equal(typeof json.message, 'string');
    if (status === 405) assert.ok(headers.allow, `${what}: 405 names what is allowed`);
    if (status === 429) assert.ok(headers['retry-after'], `${what}: 429 says when to retry`);
  }

  /** A close code the server chose. */
  close(code: number, what: string): void {
    assert.notEqual(code, INTERNAL_CLOSE, `${what}: closed with 1011 (internal error)`);
    assert.ok(this.closeCodes.has(code), `${what}: close code ${code} is not documented in docs/PROTOCOL.md`);
  }
}

// ---------------------------------------------------------------------------------------------
// The server

export interface FuzzServer {
  readonly server: ServerProcess;
  readonly url: string;
  readonly wsUrl: string;
  /** Throws, with the end of its output, when the process is gone. */
  assertAlive(): void;
  /** After a failure: gives a dying process up to `ms` to exit, then assertAlive(). */
  assertSurvived(ms?: number): Promise<void>;
  /** Log lines at error level or above (pino level >= 50). */
  errorLines(): string[];
  /** SIGTERM; asserts a clean exit; removes the data dir. */
  stop(): Promise<void>;
}

export async function startFuzzServer(args: string[] = []): Promise<FuzzServer> {
  // No per-subscription rate limit: a fuzz run sends hundreds of messages to one subscription,
  // and a 429 before the headers are read would hide what the headers do.
  const server = await startServerProcess({ args: ['--sync', 'normal', '--rate-limit-subscription', '0', ...args] });
  const tail = () => server.output().split('\n').slice(-40).join('\n');
  const exited = new Promise<void>((resolve) => {
    if (server.proc.exitCode !== null || server.proc.signalCode !== null) resolve();
    server.proc.once('exit', () => resolve());
  });
  const assertAlive = () => {
    const { exitCode, signalCode } = server.proc;
    if (exitCode !== null || signalCode !== null) {
      assert.fail(`webpushd exited (code ${String(exitCode)}, signal ${String(signalCode)}); its last output:\n${tail()}`);
    }
  };
  return {
    server,
    url: server.url,
    wsUrl: `${server.url.replace(/^http/, 'ws')}/`,
    assertAlive,
    async assertSurvived(ms = 1000) {
      // a socket cut by a crash closes before the parent sees the child exit
      await within(exited, ms, 'exit').catch(() => {});
      assertAlive();
    },
    errorLines() {
      return server
        .output()
        .split('\n')
        .filter((line) => {
          try {
            return (JSON.parse(line) as { level?: number }).level! >= 50;
          } catch {
            return false;
          }
        });
    },
    async stop() {
      const wasAlive = server.proc.exitCode === null && server.proc.signalCode === null;
      await server.stop();
      rmSync(server.dataDir, { recursive: true, force: true });
      if (wasAlive) assert.equal(server.proc.exitCode, 0, `webpushd did not shut down cleanly:\n${tail()}`);
    },
  };
}

/** Rejects after `ms` (a bound on a wait for an event, never a stand-in for one). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Well-behaved user agents

/** Something that must keep receiving while the fuzz goes on: check() sends it a message and awaits it. */
export interface Canary {
  readonly name: string;
  readonly received: number;
  check(): Promise<void>;
  close(): Promise<void>;
}

async function post(url: string, headers: Record<string, string>, body?: Buffer): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers, ...(body ? { body } : {}) });
  await res.arrayBuffer();
  return res.status;
}

/** A WebSocket user agent (Firefox's protocol) subscribed before the fuzz, on its own connection. */
export async function webSocketCanary(s: FuzzServer): Promise<Canary> {
  const ua = await TestUserAgent.connect(s.wsUrl);
  await ua.hello();
  const channelID = randomUUID();
  const reg = await ua.register(channelID);
  assert.equal(reg.status, 200);
  const endpoint = String(reg.pushEndpoint);
  let received = 0;
  return {
    name: 'WebSocket user agent',
    get received() {
      return received;
    },
    async check() {
      const status = await post(endpoint, { ttl: '60', topic: `t${received % 7}` });
      assert.equal(status, 201, 'the canary send is accepted');
      const m = await ua.next('notification', 5000);
      assert.equal(m.channelID, channelID);
      ua.ack(channelID, String(m.version));
      received++;
    },
    async close() {
      await ua.close();
    },
  };
}

/** An RFC 8030 user agent with a monitor held open on its own HTTP/2 session. */
export async function http2Canary(s: FuzzServer): Promise<Canary> {
  const client = await H2Client.connect(s.url);
  const sub = await client.subscribe();
  const monitor: Monitor = client.monitor(sub.url);
  let received = 0;
  return {
    name: 'HTTP/2 user agent',
    get received() {
      return received;
    },
    async check() {
      const status = await post(sub.push, { ttl: '60', urgency: 'high' });
      assert.equal(status, 201, 'the canary send is accepted');
      const pushed = await monitor.next(5000);
      assert.equal(pushed.status, 200);
      assert.equal(await client.ack(pushed.url), 204, 'the canary acknowledges');
      received++;
    },
    async close() {
      monitor.close();
      await client.close();
    },
  };
}

/**
 * A WebSocket user agent that the fuzzed sends go to: it acknowledges everything, and every
 * frame it gets must be a well-formed notification of one of its channels.
 */
export class TargetAgent {
  readonly ws: WebSocket;
  readonly channels = new Map<string, string>();
  readonly problems: string[] = [];
  notifications = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
  }

  static async start(s: FuzzServer, keys: (string | undefined)[]): Promise<TargetAgent> {
    const ua = await TestUserAgent.connect(s.wsUrl);
    await ua.hello();
    const agent = new TargetAgent(ua.ws);
    for (const key of keys) {
      const channelID = randomUUID();
      const reg = await ua.register(channelID, key);
      assert.equal(reg.status, 200, `register: ${JSON.stringify(reg)}`);
      agent.channels.set(channelID, String(reg.pushEndpoint));
    }
    ua.ws.on('message', (data) => agent.#onFrame(data.toString()));
    ua.ws.on('close', (code) => agent.problems.push(`the target user agent was closed (${code})`));
    return agent;
  }

  #onFrame(text: string): void {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(text) as Record<string, unknown>;
    } catch {
      this.problems.push(`a frame that is not JSON: ${text.slice(0, 100)}`);
      return;
    }
    if (m.messageType !== 'notification') return;
    this.notifications++;
    const problem = notificationProblem(m, this.channels);
    if (problem) this.problems.push(`${problem}: ${text.slice(0, 300)}`);
    if (typeof m.channelID === 'string' && typeof m.version === 'string') {
      this.ws.send(JSON.stringify({ messageType: 'ack', updates: [{ channelID: m.channelID, version: m.version, code: 100 }] }));
    }
  }

  /** Throws the first problem seen so far. */
  assertFine(): void {
    assert.deepEqual(this.problems, [], 'the target user agent got only well-formed notifications');
  }

  close(): void {
    this.ws.removeAllListeners('close');
    this.ws.close();
  }
}

/** docs/PROTOCOL.md "Server -> client": what a notification frame holds. */
function notificationProblem(m: Record<string, unknown>, channels: Map<string, string>): string | null {
  if (typeof m.channelID !== 'string' || !channels.has(m.channelID)) return 'a notification of another channel';
  if (typeof m.version !== 'string' || m.version === '') return 'a notification without version';
  if (m.data === undefined) return m.headers === undefined ? null : 'headers without data';
  if (typeof m.data !== 'string' || !/^[A-Za-z0-9_-]+$/.test(m.data)) return 'data is not base64url without padding';
  const h = m.headers as Record<string, unknown> | undefined;
  if (!h || (h.encoding !== 'aes128gcm' && h.encoding !== 'aesgcm')) return 'headers.encoding is not aes128gcm or aesgcm';
  for (const [name, param] of [
    ['encryption', 'salt'],
    ['crypto_key', 'dh'],
  ] as const) {
    const v = h[name];
    if (h.encoding === 'aes128gcm') {
      if (v !== undefined) return `aes128gcm with ${name}`;
      continue;
    }
    if (typeof v !== 'string') return `aesgcm without ${name}`;
    const value = new RegExp(`(?:^|[;,])\\s*${param}=([^;,]*)`, 'i').exec(v)?.[1];
    if (value === undefined || !/^[A-Za-z0-9_\-+/]+$/.test(value)) return `${name} ${param}= is not unquoted, unpadded base64`;
    if (name === 'crypto_key' && /p256ecdsa/i.test(v)) return 'crypto_key holds the VAPID key';
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 requests

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function httpRequest(
  agent: http.Agent,
  url: string,
  o: { method: string; path: string; headers: Record<string, string | string[]>; body: Buffer; chunked?: boolean },
): Promise<HttpAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    // chunked named explicitly: node frames a body of a GET or DELETE only when told how
    const headers = { ...o.headers, ...(o.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(o.body.length) }) };
    const req = http.request({ agent, hostname, port, method: o.method, path: o.path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

// ---------------------------------------------------------------------------------------------
// A raw WebSocket client: any frame on the wire, the server's frames parsed back

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

export function encodeFrame(f: WireFrame): Buffer {
  if (f.kind === 'oversize') {
    const head = Buffer.alloc(10);
    head[0] = 0x80 | f.opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(f.declared, 2);
    return Buffer.concat([head, randomBytes(4)]); // the mask key; no payload follows
  }
  const n = f.payload.length;
  const form = f.length === '16' && n > 0xffff ? '64' : f.length === 'min' ? (n < 126 ? '7' : n <= 0xffff ? '16' : '64') : f.length;
  const len = form === '7' ? Buffer.of(n) : form === '16' ? Buffer.of(126, n >> 8, n & 0xff) : Buffer.alloc(9);
  if (form === '64') {
    len[0] = 127;
    len.writeBigUInt64BE(BigInt(n), 1);
  }
  if (f.masked) len[0]! |= 0x80;
  const head = Buffer.of((f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode);
  if (!f.masked) return Buffer.concat([head, len, f.payload]);
  const mask = randomBytes(4);
  const body = Buffer.from(f.payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([head, len, mask, body]);
}

export const textWireFrame = (text: string): WireFrame => ({ kind: 'frame', fin: true, rsv: 0, opcode: 1, masked: true, length: 'min', payload: Buffer.from(text) });

export class RawWebSocket {
  readonly socket: net.Socket;
  readonly frames: ServerFrame[] = [];
  readonly problems: string[] = [];
  /** The first close frame the server sent. */
  closeFrame: { code: number; reason: string } | null = null;
  ended = false;
  #buf: Buffer;
  #wake: (() => void) | null = null;

  private constructor(socket: net.Socket, rest: Buffer) {
    this.socket = socket;
    this.#buf = rest;
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#parse();
    });
    socket.on('close', () => {
      this.ended = true;
      this.#wake?.();
    });
    socket.on('error', () => {});
    this.#parse();
  }

  /** The upgrade; an HTTP status when the server refused it. */
  static connect(url: string, protocol: string | null): Promise<RawWebSocket | { refused: number; body: string }> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), hostname);
      let head = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.off('error', reject);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head.toString('latin1'))?.[1] ?? 0);
        if (status !== 101) {
          socket.destroy();
          return resolve({ refused: status, body: head.toString('latin1', end + 4) });
        }
        resolve(new RawWebSocket(socket, head.subarray(end + 4)));
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.write(
          `GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
            (protocol === null ? '' : `Sec-WebSocket-Protocol: ${protocol}\r\n`) +
            '\r\n',
        );
      });
    });
  }

  #parse(): void {
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) break;
      let len = b[1]! & 0x7f;
      let off = 2;
      if (b[1]! & 0x80) this.problems.push('the server sent a masked frame');
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + len) break;
      const frame = { opcode: b[0]! & 0x0f, payload: b.subarray(off, off + len) };
      this.#buf = b.subarray(off + len);
      if (frame.opcode === 8 && !this.closeFrame) {
        const code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
        this.closeFrame = { code, reason: frame.payload.subarray(2).toString() };
      }
      this.frames.push(frame);
    }
    this.#wake?.();
  }

  send(f: WireFrame): void {
    if (!this.socket.destroyed) this.socket.write(encodeFrame(f));
  }

  /** Waits until `done()` holds, the server's close frame came, or the socket closed. */
  async until(done: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done() && !this.closeFrame && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: no answer and no close within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          this.#wake = null;
          resolve();
        };
      });
    }
  }

  /** Text frames as JSON (a frame that is not JSON is a problem). */
  messages(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const f of this.frames) {
      if (f.opcode !== 1) continue;
      try {
        out.push(JSON.parse(f.payload.toString()) as Record<string, unknown>);
      } catch {
        this.problems.push(`a text frame that is not JSON: ${f.payload.toString().slice(0, 100)}`);
      }
    }
    return out;
  }

  /** Our close handshake (if the server has not closed), then the socket is gone. */
  async finish(ms: number): Promise<void> {
    if (!this.closeFrame && !this.ended) {
      this.send({ kind: 'frame', fin: true, rsv: 0, opcode: 8, masked: true, length: 'min', payload: Buffer.of(0x03, 0xe8) });
      try {
        await this.until(() => false, ms, 'close handshake');
      } finally {
        this.socket.destroy();
      }
    }
    this.socket.destroy();
  }
}
