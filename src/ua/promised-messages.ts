// Over RFC 8030 each message comes as an HTTP/2 server push (section 6): the PUSH_PROMISE names
// the message (its URL, which acknowledging deletes), the promised response carries it. The
// responses are read here and handed over complete, in the order of their promises however
// their streams interleave, as the push service sent them.
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { header } from './http2-connection.ts';
import type { EncodingHeaders, UaLogger } from './transport.ts';

const { NGHTTP2_CANCEL } = http2.constants;

/** A pushed message larger than this is refused (RFC 8030 services keep them to 4096 bytes or so). */
const MAX_MESSAGE_BYTES = 64 * 1024;

/** A pushed message, in the order of its PUSH_PROMISE. */
interface Pushed {
  version: string;
  state: 'pending' | 'done' | 'failed';
  status: number;
  headers: IncomingHttpHeaders;
  chunks: Buffer[];
  size: number;
  error?: string;
}

/** A promised response read to its end, with status 200. */
export interface PromisedMessage {
  /** The push message's URL (RFC 8030 6.2: deleting it acknowledges). */
  version: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface PromisedMessagesOptions {
  /** The session's origin: what a promise leaves out of its URL. */
  origin: string;
  log: UaLogger;
  /** False between sessions: a message finished then is not handed over. */
  live(): boolean;
  deliver(message: PromisedMessage): void;
  /** Told after each hand-over pass, e.g. to see whether all promised messages were handed over. */
  flushed?: () => void;
}

export class PromisedMessages {
  readonly #o: PromisedMessagesOptions;
  /** Not yet handed over, in promise order. */
  #queue: Pushed[] = [];

  constructor(o: PromisedMessagesOptions) {
    this.#o = o;
  }

  /** Reads the message promised on `pushed`; false (and refused) when the promise names no usable URL. */
  read(pushed: ClientHttp2Stream, request: IncomingHttpHeaders): boolean {
    const { origin, log } = this.#o;
    const scheme = header(request, ':scheme') ?? new URL(origin).protocol.slice(0, -1);
    const authority = header(request, ':authority') ?? new URL(origin).host;
    const path = header(request, ':path') ?? '/';
    let version: string;
    try {
      version = new URL(`${scheme}://${authority}${path}`).toString();
    } catch {
      log.warn({ path }, 'a push promise with an unusable URL: refused');
      pushed.close(NGHTTP2_CANCEL);
      return false;
    }
    const p: Pushed = { version, state: 'pending', status: 0, headers: {}, chunks: [], size: 0 };
    this.#queue.push(p);
    pushed.on('push', (h: IncomingHttpHeaders) => {
      p.status = Number(h[':status']);
      p.headers = h;
    });
    pushed.on('data', (chunk: Buffer) => {
      if (p.state !== 'pending') return;
      p.size += chunk.length;
      if (p.size > MAX_MESSAGE_BYTES) {
        p.state = 'failed';
        p.error = `larger than ${MAX_MESSAGE_BYTES} bytes`;
        pushed.close(NGHTTP2_CANCEL);
        this.#flush();
        return;
      }
      p.chunks.push(chunk);
    });
    pushed.on('end', () => {
      if (p.state === 'pending') p.state = 'done';
      this.#flush();
    });
    pushed.on('error', (err) => {
      p.error ??= err.message;
    });
    pushed.on('close', () => {
      if (p.state === 'pending') {
        p.state = 'failed';
        p.error ??= `the pushed stream was reset (code ${pushed.rstCode})`;
      }
      this.#flush();
    });
    return true;
  }

  /** Promised messages not yet handed over (read, or being read). */
  get pending(): number {
    return this.#queue.length;
  }

  /** Forgets what was not handed over yet: unacknowledged, it comes again on the next session. */
  clear(): void {
    this.#queue = [];
  }

  /** Hands over the finished messages at the head of the queue, keeping the order of the promises. */
  #flush(): void {
    const { log } = this.#o;
    while (this.#queue.length > 0 && this.#queue[0]!.state !== 'pending') {
      const p = this.#queue.shift()!;
      if (!this.#o.live()) return;
      if (p.state === 'failed') {
        // not acknowledged, so the push service sends it again on the next GET
        log.warn({ err: p.error }, 'a pushed message was not received completely');
        continue;
      }
      if (p.status !== 200) {
        log.warn({ status: p.status }, 'a pushed response that is not a message (status is not 200): ignored');
        continue;
      }
      this.#o.deliver({ version: p.version, headers: p.headers, body: Buffer.concat(p.chunks) });
    }
    this.#o.flushed?.();
  }
}

/** The encryption headers of a pushed message; null when it says no content encoding. */
export function encodingHeaders(h: IncomingHttpHeaders): EncodingHeaders | null {
  const encoding = header(h, 'content-encoding');
  if (encoding === undefined || encoding === '' || encoding.toLowerCase() === 'identity') return null;
  const headers: EncodingHeaders = { encoding: encoding.toLowerCase() };
  const encryption = header(h, 'encryption');
  const cryptoKey = header(h, 'crypto-key');
  if (encryption !== undefined) headers.encryption = encryption;
  if (cryptoKey !== undefined) headers.cryptoKey = cryptoKey;
  return headers;
}
