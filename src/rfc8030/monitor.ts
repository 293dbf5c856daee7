// One RFC 8030 monitor: a user agent's GET on a subscription or on a set, over HTTP/2 (6, 6.1).
// Every message goes out as a PUSH_PROMISE for `GET /m/<message token>` with the message as
// the promised 200 response. Ordering is the WebSocket session's (src/connect/session.ts):
// stored messages oldest first in batches (the next batch once the current one is acknowledged
// or otherwise gone), then, once a batch comes back short, live ones as they are committed,
// skipping ids already pushed. A monitor owns no timer.
//
// A message it cannot push live (the session is full: the client does not take its pushes; or
// its subscription's push URL is not looked up yet) stays stored: the monitor goes back to
// reading the store after the last id it pushed, and a TTL 0 one, "now or never", is dropped.
import { constants, type Http2ServerResponse, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { Errno, PushError, storeUnavailableError } from '../common/push-error.ts';
import { sendError } from '../http/respond.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Delivery } from '../router/router.ts';
import { StoreUnavailable } from '../store/errors.ts';
import { URGENCIES, type MessageFilter, type Store, type Urgency } from '../store/types.ts';
import type { Capabilities } from '../tokens/capabilities.ts';
import { Rel, formatLink } from './links.ts';
import type { PushUrls } from './push-urls.ts';
import type { PushOrigin, SessionPushes } from './server-push.ts';

export interface MonitorContext {
  store: Store;
  capabilities: Capabilities;
  /** Stored messages pushed at once before waiting for their acknowledgements. */
  batchSize: number;
  log: Logger;
  /** Counts deliveries (and their latency from accept), and live ones held back; optional. */
  metrics?: Metrics | null;
}

export interface MonitorOptions {
  uaid: Buffer;
  /** The subscription monitored; null: every subscription of the set (the user agent). */
  chid: Buffer | null;
  /** RFC 8030 5.3: the request's Urgency, the least urgent message wanted now; null: all. */
  minUrgency: Urgency | null;
  /** false: `Prefer: wait=0`, push what is waiting and answer; true: held open. */
  wait: boolean;
  /** The user agent's push URLs, for the pushed responses' Link. */
  pushUrls: PushUrls;
  /** The pushes of the GET's session. */
  pushes: SessionPushes;
  stream: ServerHttp2Stream;
  res: Http2ServerResponse;
  origin: PushOrigin;
}

export const chidKey = (chid: Buffer): string => chid.toString('latin1');

export class Monitor {
  readonly uaid: Buffer;
  readonly chid: Buffer | null;
  readonly pushUrls: PushUrls;
  readonly #ctx: MonitorContext;
  readonly #o: MonitorOptions;
  readonly #filter: MessageFilter = {};
  readonly #minUrgency: number;
  /** Highest stored message id pushed on this stream. */
  #lastSentId = 0;
  /**
   * While stored messages are caught up (held-open monitors only): the pushed ids (-> chid) of
   * the current batch not yet acknowledged. null: live.
   */
  #batch: Map<number, string> | null;
  /** One store read at a time; `#again`: read once more after it. */
  #reading = false;
  #again = false;
  /** A stored message of this monitor came live while it read the store: read again before going live. */
  #missed = false;
  /** Messages pushed (the `Prefer: wait=0` answer says whether there were any). */
  #pushed = 0;
  #closed = false;
  /** Told once when the monitor ends, whichever way. */
  onClosed: () => void = () => {};

  constructor(ctx: MonitorContext, o: MonitorOptions) {
    this.#ctx = ctx;
    this.#o = o;
    this.uaid = o.uaid;
    this.chid = o.chid;
    this.pushUrls = o.pushUrls;
    this.#batch = o.wait ? new Map() : null;
    if (o.chid) this.#filter.chid = o.chid;
    if (o.minUrgency) this.#filter.minUrgency = o.minUrgency;
    this.#minUrgency = o.minUrgency ? URGENCIES.indexOf(o.minUrgency) : 0;
    o.stream.once('close', () => this.#end(null));
  }

  /**
   * Held open (register it first): stored messages in batches, then live ones. `Prefer: wait=0`:
   * every waiting message, then the answer, 200, or 204 when there was none.
   */
  async start(): Promise<void> {
    await this.#read();
  }

  /** A live message (from the router): pushed now when it is this monitor's and its turn. */
  deliver(m: Delivery): boolean {
    if (this.#closed) return false;
    if (this.chid && !m.chid.equals(this.chid)) return false;
    if (URGENCIES.indexOf(m.urgency) < this.#minUrgency) return false;
    if (m.id <= 0) return this.#pushNow(m);
    // While catching up, the store hands out messages in order; later ones wait their batch.
    if (this.#batch) {
      if (m.id > this.#lastSentId) this.#missed = true;
      return true;
    }
    if (m.id <= this.#lastSentId) return true;
    const full = this.#o.pushes.full;
    if (full || this.pushUrls.get(m.chid) === undefined) {
      // it stays stored: read from the store once there is room, or to look its push URL up
      if (full) this.#ctx.metrics?.limited('slow-reader');
      this.#batch = new Map();
      this.#next();
      return true;
    }
    this.#lastSentId = m.id;
    this.#push(m);
    return true;
  }

  /** A message left the store (acknowledged, expired, replaced): it no longer holds up the batch. */
  removed(id: number): void {
    if (this.#batch?.delete(id) && this.#batch.size === 0) this.#next();
  }

  /** A subscription of this user agent was deleted (null: the whole set). */
  unsubscribed(chid: Buffer | null): void {
    if (chid === null || this.chid?.equals(chid)) {
      return this.#fail(new PushError(404, Errno.noSubscription, 'The subscription was deleted'));
    }
    const batch = this.#batch;
    if (this.chid || !batch || batch.size === 0) return;
    const key = chidKey(chid);
    for (const [id, k] of batch) if (k === key) batch.delete(id);
    if (batch.size === 0) this.#next();
  }

  /** Ends the stream without an answer (RST_STREAM NO_ERROR): server shutdown, or taken over. */
  abort(): void {
    this.#end(() => this.#o.stream.close(constants.NGHTTP2_NO_ERROR));
  }

  /** TTL 0: pushed at once, or never (no room). */
  #pushNow(m: Delivery): boolean {
    if (this.#o.pushes.full) {
      this.#ctx.metrics?.limited('slow-reader');
      return false;
    }
    if (this.pushUrls.get(m.chid) !== undefined) return this.#push(m);
    // the first message of this subscription on this monitor: its push URL is looked up first
    this.pushUrls
      .resolve([m])
      .then(() => {
        if (!this.#closed && !this.#o.pushes.full) this.#push(m);
      })
      .catch((err: unknown) => this.#failed(err));
    return true;
  }

  readonly #next = (): void => {
    this.#read().catch((err: unknown) => this.#failed(err));
  };

  #failed(err: unknown): void {
    // the store down is no server error: the user agent is told to come back (503 Retry-After)
    if (err instanceof StoreUnavailable) {
      this.#ctx.log.warn({ err: err.message }, 'a monitor ended: store unavailable');
      return this.#fail(storeUnavailableError());
    }
    this.#ctx.log.error({ err }, 'reading stored messages for a monitor failed');
    this.#fail(new PushError(500, Errno.internal, 'Internal server error'));
  }

  async #read(): Promise<void> {
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = true;
    try {
      do {
        this.#again = false;
        await this.#readOnce();
      } while (this.#again && !this.#closed);
    } finally {
      this.#reading = false;
    }
  }

  async #readOnce(): Promise<void> {
    const batch = this.#batch;
    if (this.#closed || (this.#o.wait && !batch)) return;
    const { store, batchSize } = this.#ctx;
    // a batch cut short by a full session is completed before it waits for acknowledgements
    const inBatch = batch ? batchSize - batch.size : batchSize;
    if (inBatch <= 0) return;
    const pushes = this.#o.pushes;
    if (pushes.full) return pushes.whenRoom(this.#next);
    // no more read than the session takes now
    const want = Math.min(inBatch, pushes.room);
    this.#missed = false;
    const messages = await store.pendingMessages(this.uaid, this.#lastSentId, want, this.#filter);
    await this.pushUrls.resolve(messages);
    if (this.#closed) return;
    for (const m of messages) {
      // other monitors of the session pushed meanwhile: the rest stays stored, read again later
      if (pushes.full) return pushes.whenRoom(this.#next);
      batch?.set(m.id, chidKey(m.chid));
      this.#lastSentId = m.id;
      if (this.#push(m)) this.#pushed++;
    }
    if (messages.length === want) {
      // more may be stored: read on once the session has room; a held-open monitor with a
      // whole batch out waits for its acknowledgements
      if (pushes.full) return pushes.whenRoom(this.#next);
      if (!batch) this.#again = true;
      return;
    }
    // A short read holds every stored message: later ones can go out live, still in order,
    // unless one came while the store was read.
    if (!batch) return this.#answer();
    if (this.#missed) this.#again = true;
    else this.#batch = null;
  }

  #push(m: Delivery): boolean {
    const { capabilities } = this.#ctx;
    // a TTL 0 message (id < 0) has no row: it gets the URL the sender's Location named
    const token = capabilities.messageToken({ uaid: m.uaid, chid: m.chid, id: m.id });
    const headers: OutgoingHttpHeaders = {
      'content-type': 'application/octet-stream',
      'last-modified': new Date(m.createdAt).toUTCString(),
    };
    const pushUrl = this.pushUrls.get(m.chid);
    if (pushUrl) headers.link = formatLink(pushUrl, Rel.push);
    if (m.headers) {
      headers['content-encoding'] = m.headers.encoding;
      if (m.headers.encryption !== undefined) headers.encryption = m.headers.encryption;
      if (m.headers.cryptoKey !== undefined) headers['crypto-key'] = m.headers.cryptoKey;
    }
    const promised = this.#o.pushes.push(this.#o.stream, this.#o.origin, `/m/${token}`, { status: 200, headers, body: m.body });
    if (promised) this.#ctx.metrics?.delivered('http2', m.createdAt);
    return promised;
  }

  /** `Prefer: wait=0`: everything waiting was pushed. */
  #answer(): void {
    const res = this.#o.res;
    const pushed = this.#pushed;
    this.#end(() => {
      res.writeHead(pushed > 0 ? 200 : 204, pushed > 0 ? { 'content-length': 0 } : {});
      res.end();
    });
  }

  #fail(err: PushError): void {
    const res = this.#o.res;
    this.#end(() => {
      if (res.headersSent) this.#o.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      else sendError(res, err);
    });
  }

  /** Marks the monitor closed (once), then runs `finish` (null: the stream already closed). */
  #end(finish: (() => void) | null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.pushes.cancel(this.#next);
    this.onClosed();
    if (finish && !this.#o.stream.closed && !this.#o.stream.destroyed) finish();
  }
}
