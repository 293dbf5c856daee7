// Chooses the HTTP version per request: HTTP/2 for https endpoints whose service offers it
// (ALPN), HTTP/1.1 otherwise (http:// endpoints, a caller-supplied Agent, http2: false).
import { createHash } from 'node:crypto';
import type { Agent } from 'node:http';
import { Http1Pool, type TransportRequest, type TransportResponse } from './http1.ts';
import { Http2Pool } from './http2-pool.ts';
import type { Trace } from './trace.ts';
import type { PushTlsOptions } from './types.ts';

export type { TransportResponse } from './http1.ts';

export interface TransportOptions {
  /** Close an HTTP/2 session after this many ms without requests (default 30000). */
  idleTimeout?: number;
  /** Most simultaneous HTTP/1.1 connections to one origin (default 64). */
  maxSocketsPerOrigin?: number;
  /** Told every header block, DATA length, GOAWAY, RST_STREAM and TLS handshake (consoles, debugging). */
  trace?: Trace;
}

export interface SendRequest {
  method?: TransportRequest['method'];
  url: URL;
  headers: Record<string, string>;
  body: Buffer | null;
  timeoutMs: number | undefined;
  tls: PushTlsOptions | undefined;
  agent: Agent | undefined;
  http2: boolean;
  maxResponseBytes?: number;
}

const CONNECT_TIMEOUT_MS = 30_000;

export function timeoutError(): Error {
  return Object.assign(new Error('Socket timeout'), { code: 'ETIMEDOUT' });
}

export class Transport {
  readonly #http1: Http1Pool;
  readonly #http2: Http2Pool;
  readonly #trace: Trace | undefined;
  // Connections with different TLS settings are never shared: each settings object gets an id.
  /** Connections are shared by equal TLS settings, not only by the same options object. */
  readonly #tlsKeys = new WeakMap<object, string>();

  constructor(options: TransportOptions = {}) {
    this.#http1 = new Http1Pool({ maxSocketsPerOrigin: options.maxSocketsPerOrigin ?? 64 });
    this.#trace = options.trace;
    this.#http2 = new Http2Pool({ idleTimeoutMs: options.idleTimeout ?? 30_000, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  }

  /** Open HTTP/2 sessions. */
  get http2Sessions(): number {
    return this.#http2.sessionCount;
  }

  #tlsKey(tls: PushTlsOptions | undefined): string {
    if (!tls) return '0';
    let key = this.#tlsKeys.get(tls);
    if (key === undefined) {
      key = tlsFingerprint(tls);
      this.#tlsKeys.set(tls, key);
    }
    return key;
  }

  async request(req: SendRequest): Promise<TransportResponse> {
    const controller = new AbortController();
    const timer = req.timeoutMs ? setTimeout(() => controller.abort(timeoutError()), req.timeoutMs) : undefined;
    const r = { ...req, signal: controller.signal, trace: this.#trace };
    try {
      const tlsKey = this.#tlsKey(req.tls);
      if (req.http2 && !req.agent && req.url.protocol === 'https:') {
        const key = `${req.url.origin}|${tlsKey}`;
        if (!this.#http2.knowsHttp1(key)) {
          const res = await this.#http2.request(key, r, req.timeoutMs);
          if (res !== null) return res;
        }
      }
      return await this.#http1.request(r, tlsKey);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes HTTP/2 sessions and idle HTTP/1.1 sockets; the transport stays usable. */
  async close(): Promise<void> {
    this.#http1.close();
    await this.#http2.close();
  }
}

function tlsFingerprint(tls: PushTlsOptions): string {
  const hash = createHash('sha256');
  for (const name of ['ca', 'cert', 'key', 'servername', 'rejectUnauthorized'] as const) {
    hash.update(`${name}:`);
    for (const part of [tls[name]].flat()) hash.update(part === undefined ? '-' : typeof part === 'boolean' ? String(part) : part);
    hash.update('\n');
  }
  return hash.digest('base64url');
}
