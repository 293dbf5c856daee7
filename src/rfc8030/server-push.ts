// HTTP/2 server pushes (RFC 8030 6) and what one session may have of them in flight. A push is
// a PUSH_PROMISE for `GET <path>` on a monitor's GET stream and, on the promised stream, a
// complete response. The PUSH_PROMISE frame is queued synchronously, so pushes made in order
// reach the client in order.
//
// Nothing in HTTP/2 bounds pushes: HEADERS and PUSH_PROMISE frames are not flow-controlled, a
// server-initiated stream is not refused by the session memory limit, and Node queues whatever
// the socket does not take. So a session counts its pushes until the client has taken them:
// - open: the promised stream has not closed (its body waits for a flow-control window the
//   client never opens, or the frames are still queued);
// - unconfirmed: no PING sent after it was answered yet (a client that answers has read the
//   socket up to the PING; one that stops reading answers nothing).
// Past `max` of either the session is full: monitors push nothing more until it has room again.
import { constants, type Http2Session, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';

/** Where the promised requests point: the `:scheme` and `:authority` of the monitor's request. */
export interface PushOrigin {
  scheme: string;
  authority: string;
}

export interface PushedResponse {
  status: number;
  headers?: OutgoingHttpHeaders;
  /** Absent: a response without a body (END_STREAM on the HEADERS frame). */
  body?: Buffer;
}

export class SessionPushes {
  readonly #session: Http2Session;
  readonly #max: number;
  /** Room again (and a PING asked for) at or below this: a woken monitor pushes a batch, not one message. */
  readonly #lowWater: number;
  #open = 0;
  #unconfirmed = 0;
  #pinging = false;
  /** Told (once each, in the order they waited) when the session has room again. */
  readonly #waiters = new Set<() => void>();

  /** `max`: pushes of the session in flight (open, or unconfirmed) before it is full. */
  constructor(session: Http2Session, max: number) {
    this.#session = session;
    this.#max = max;
    this.#lowWater = Math.floor(max / 2);
  }

  /** Pushes that fit now (0: full, the client has not taken the last `max` ones). */
  get room(): number {
    return Math.max(0, this.#max - Math.max(this.#open, this.#unconfirmed));
  }

  get full(): boolean {
    return this.room === 0;
  }

  /** Calls `waiter` once when the session has room again; waiting again moves it to the end. */
  whenRoom(waiter: () => void): void {
    this.#waiters.delete(waiter);
    this.#waiters.add(waiter);
  }

  cancel(waiter: () => void): void {
    this.#waiters.delete(waiter);
  }

  /**
   * Promises `GET <path>` on `parent` and sends `response` on the promised stream, even when the
   * session is full (callers check `full` first). `done` is told whether the response went out
   * whole (false: the client refused the push, or the stream or connection ended first).
   * Returns false when nothing could be promised at all.
   */
  push(parent: ServerHttp2Stream, origin: PushOrigin, path: string, response: PushedResponse, done?: (sent: boolean) => void): boolean {
    const request = { ':method': 'GET', ':scheme': origin.scheme, ':authority': origin.authority, ':path': path };
    this.#open++;
    this.#unconfirmed++;
    try {
      parent.pushStream(request, (err, stream) => {
        if (err) {
          this.#closed();
          return done?.(false);
        }
        // a client may refuse a push with RST_STREAM: that is its right, not our error
        stream.on('error', () => {});
        stream.once('close', () => {
          this.#closed();
          done?.(stream.rstCode === constants.NGHTTP2_NO_ERROR);
        });
        if (stream.destroyed || stream.closed) return;
        const headers = { ...response.headers, ':status': response.status };
        const body = response.body;
        if (body === undefined) {
          stream.respond(headers, { endStream: true });
        } else if (body.length === 0) {
          stream.respond({ ...headers, 'content-length': 0 }, { endStream: true });
        } else {
          stream.respond({ ...headers, 'content-length': body.length });
          stream.end(body);
        }
      });
    } catch {
      // the GET stream or its session is already closing
      this.#open--;
      this.#unconfirmed--;
      return false;
    }
    this.#ping();
    return true;
  }

  #closed(): void {
    this.#open--;
    this.#wake();
  }

  /** One PING at a time, once half of `max` pushes are unconfirmed. */
  #ping(): void {
    if (this.#pinging || this.#unconfirmed <= this.#lowWater || this.#session.destroyed) return;
    const confirms = this.#unconfirmed;
    try {
      this.#pinging = this.#session.ping((err) => {
        this.#pinging = false;
        // the session ended: its monitors end with it
        if (err) return;
        this.#unconfirmed -= confirms;
        this.#wake();
        this.#ping();
      });
    } catch {
      // the session is closing
    }
  }

  #wake(): void {
    if (this.#waiters.size === 0 || this.#open > this.#lowWater || this.#unconfirmed > this.#lowWater) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }
}
