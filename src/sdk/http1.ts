// HTTP/1.1 to push services: node:http / node:https with one keep-alive Agent per scheme and
// TLS settings, shared by all origins (each Agent pools sockets per origin).
import http, { type Agent, type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { markUnprocessed } from './errors.ts';
import type { Trace } from './trace.ts';
import type { PushTlsOptions } from './types.ts';

/** Bodies of error answers are small; a misbehaving service cannot make us buffer more. */
export const MAX_RESPONSE_BODY = 64 * 1024;

/** An answer's body as it arrives, kept up to a bound: a misbehaving service cannot make us buffer more. */
export class AnswerBody {
  text = '';
  /** More came than the bound: `text` is its beginning. */
  truncated = false;
  readonly #max: number;

  constructor(max = MAX_RESPONSE_BODY) {
    this.#max = max;
  }

  add(chunk: string): void {
    const room = this.#max - this.text.length;
    if (chunk.length <= room) this.text += chunk;
    else {
      if (room > 0) this.text += chunk.slice(0, room);
      this.truncated = true;
    }
  }
}

export interface TransportRequest {
  /** Default POST (a send); DELETE cancels a message; GET and PATCH for webpushd's aggregates. */
  method?: 'POST' | 'DELETE' | 'GET' | 'PATCH' | undefined;
  url: URL;
  headers: Record<string, string>;
  body: Buffer | null;
  tls?: PushTlsOptions | undefined;
  /** Use this Agent instead of the pool's (HTTP/1.1 only). */
  agent?: Agent | undefined;
  /** Aborting it destroys the request with the signal's reason. */
  signal?: AbortSignal | undefined;
  trace?: Trace | undefined;
  /** Characters of the answer's body kept (default MAX_RESPONSE_BODY). */
  maxResponseBytes?: number | undefined;
}

export interface TransportResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body was longer than `maxResponseBytes`: `body` is its beginning. */
  truncated: boolean;
  httpVersion: '1.1' | '2';
}

export class Http1Pool {
  readonly #agents = new Map<string, Agent>();
  readonly #maxSockets: number;

  constructor(options: { maxSocketsPerOrigin: number }) {
    this.#maxSockets = options.maxSocketsPerOrigin;
  }

  #agent(secure: boolean, tlsKey: string, tls: PushTlsOptions | undefined): Agent {
    const key = `${secure ? 'https' : 'http'}|${tlsKey}`;
    let agent = this.#agents.get(key);
    if (!agent) {
      const options = { keepAlive: true, maxSockets: this.#maxSockets, scheduling: 'lifo' as const };
      agent = secure ? new https.Agent({ ...options, ...tls }) : new http.Agent(options);
      this.#agents.set(key, agent);
    }
    return agent;
  }

  request(req: TransportRequest, tlsKey: string): Promise<TransportResponse> {
    const secure = req.url.protocol === 'https:';
    const agent = req.agent ?? this.#agent(secure, tlsKey, req.tls);
    const send = secure ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const method = req.method ?? 'POST';
      const r = send(req.url, { method, headers: req.headers, agent });
      req.trace?.({ event: 'request', httpVersion: '1.1', method, url: req.url.href, headers: req.headers });
      if (req.body) req.trace?.({ event: 'data', sent: req.body.length });
      let answered = false;
      const abort = () => r.destroy(req.signal!.reason as Error);
      req.signal?.addEventListener('abort', abort, { once: true });
      const done = () => req.signal?.removeEventListener('abort', abort);
      r.on('error', (err: NodeJS.ErrnoException) => {
        done();
        // A keep-alive socket the server closed while idle: the request never reached it.
        if (!answered && r.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) markUnprocessed(err);
        reject(err);
      });
      r.on('response', (res) => {
        answered = true;
        req.trace?.({ event: 'response', httpVersion: '1.1', status: res.statusCode, headers: res.headers });
        const body = new AnswerBody(req.maxResponseBytes);
        let finished = false;
        const finish = () => {
          if (finished) return;
          finished = true;
          done();
          if (body.text.length > 0) req.trace?.({ event: 'data', received: Buffer.byteLength(body.text) });
          resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: body.text, truncated: body.truncated, httpVersion: '1.1' });
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body.add(chunk);
          // past the bound nothing more is read: a service that never ends its answer cannot hold us
          if (body.truncated) {
            finish();
            res.destroy();
          }
        });
        res.on('error', (err) => (finished ? undefined : reject(err)));
        res.on('end', finish);
      });
      if (req.signal?.aborted) abort();
      r.end(req.body ?? undefined);
    });
  }

  close(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }
}
