// One RFC 8030 monitor: a user agent's GET on a subscription or on a set, over HTTP/2 (6, 6.1).
// Every message goes out as a PUSH_PROMISE for `GET /m/<message token>` with the message as
// the promised 200 response. Ordering is the WebSocket session's (src/connect/session.ts):
// stored messages oldest first in batches (the next batch once the current one is acknowledged
// or otherwise gone), then, once a batch comes back short, live ones as they are committed,
// skipping ids already pushed. A monitor owns no timer.
import { constants, type Http2ServerResponse, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { Errno, PushError } from '../common/push-error.ts';
import { sendError } from '../http/respond.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Delivery } from '../router/router.ts';
import { URGENCIES, type MessageFilter, type Store, type Urgency } from '../store/types.ts';
import type { Capabilities } from '../tokens/capabilities.ts';
import { Rel, formatLink } from './links.ts';
import { push, type PushOrigin } from './server-push.ts';

export interface MonitorContext {
  store: Store;
  capabilities: Capabilities;
  /** Stored messages pushed at once before waiting for their acknowledgements. */
  batchSize: number;
  log: Logger;
  /** Counts deliveries (and their latency from accept); optional. */
  metrics?: Metrics | null;
}

export interface MonitorOptions {
  uaid: Buffer;
  /** The subscription monitored; null: every subscription of the set (the user agent). */
  chid: Buffer | null;
  /** RFC 8030 5.3: the request's Urgency, the least urgent message wanted now; null: all. */
  minUrgency: Urgency | null;
  /** Each subscription's push URL (keyed by chid in latin1), for the pushed responses' Link. */
  pushUrls: Map<string, string>;
  stream: ServerHttp2Stream;
  res: Http2ServerResponse;
  origin: PushOrigin;
}

export const chidKey = (chid: Buffer): string => chid.toString('latin1');

export class Monitor {
  readonly uaid: Buffer;
  readonly chid: Buffer | null;
  readonly #ctx: MonitorContext;
  readonly #o: MonitorOptions;
  readonly #filter: MessageFilter = {};
  readonly #minUrgency: number;
  /** Highest stored message id pushed on this stream. */
  #lastSentId = 0;
  /** While stored messages are caught up: the pushed ids (-> chid) not yet acknowledged. */
  #batch: Map<number, string> | null = new Map();
  #closed = false;
  /** Told once when the monitor ends, whichever way. */
  onClosed: () => void = () => {};

  constructor(ctx: MonitorContext, o: MonitorOptions) {
    this.#ctx = ctx;
    this.#o = o;
    this.uaid = o.uaid;
    this.chid = o.chid;
    if (o.chid) this.#filter.chid = o.chid;
    if (o.minUrgency) this.#filter.minUrgency = o.minUrgency;
    this.#minUrgency = o.minUrgency ? URGENCIES.indexOf(o.minUrgency) : 0;
    o.stream.once('close', () => this.#end(null));
  }

  /** Holds the stream open: stored messages in batches, then live ones (register it first). */
  async run(): Promise<void> {
    await this.#nextBatch();
  }

  /** `Prefer: wait=0`: pushes every waiting message, then answers 200, or 204 when there was none. */
  async drain(): Promise<void> {
    const { store, batchSize } = this.#ctx;
    let pushed = 0;
    for (;;) {
      const page = await store.pendingMessages(this.uaid, this.#lastSentId, batchSize, this.#filter);
      if (this.#closed) return;
      for (const m of page) {
        this.#lastSentId = m.id;
        if (this.#push(m)) pushed++;
      }
      if (page.length < batchSize) break;
    }
    const res = this.#o.res;
    this.#end(() => {
      res.writeHead(pushed > 0 ? 200 : 204, pushed > 0 ? { 'content-length': 0 } : {});
      res.end();
    });
  }

  /** A live message (from the router): pushed now when it is this monitor's and its turn. */
  deliver(m: Delivery): boolean {
    if (this.#closed) return false;
    if (this.chid && !m.chid.equals(this.chid)) return false;
    if (URGENCIES.indexOf(m.urgency) < this.#minUrgency) return false;
    if (m.id <= 0) return this.#push(m);
    // While catching up, the store hands out messages in order; later ones wait their batch.
    if (this.#batch || m.id <= this.#lastSentId) return true;
    this.#lastSentId = m.id;
    return this.#push(m);
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
    if (this.chid) return;
    const key = chidKey(chid);
    this.#o.pushUrls.delete(key);
    const batch = this.#batch;
    if (!batch || batch.size === 0) return;
    for (const [id, k] of batch) if (k === key) batch.delete(id);
    if (batch.size === 0) this.#next();
  }

  /** A subscription joined the set while its monitor is open. */
  subscribed(chid: Buffer, pushUrl: string): void {
    if (this.chid === null) this.#o.pushUrls.set(chidKey(chid), pushUrl);
  }

  /** Ends the stream without an answer (RST_STREAM NO_ERROR): server shutdown, or taken over. */
  abort(): void {
    this.#end(() => this.#o.stream.close(constants.NGHTTP2_NO_ERROR));
  }

  #next(): void {
    this.#nextBatch().catch((err: unknown) => {
      this.#ctx.log.error({ err }, 'reading stored messages for a monitor failed');
      this.#fail(new PushError(500, Errno.internal, 'Internal server error'));
    });
  }

  async #nextBatch(): Promise<void> {
    const batch = this.#batch;
    if (!batch || this.#closed) return;
    const { store, batchSize } = this.#ctx;
    const messages = await store.pendingMessages(this.uaid, this.#lastSentId, batchSize, this.#filter);
    if (this.#closed || this.#batch !== batch) return;
    // no await from the read to the switch below: no live message can slip in between
    for (const m of messages) {
      batch.set(m.id, chidKey(m.chid));
      this.#lastSentId = m.id;
      this.#push(m);
    }
    // A short batch holds every stored message: later ones can go out live, still in order.
    if (messages.length < batchSize) this.#batch = null;
  }

  #push(m: Delivery): boolean {
    const { capabilities } = this.#ctx;
    // a TTL 0 message has no row: it gets the URL the sender's Location named (id 0)
    const token = capabilities.messageToken({ uaid: m.uaid, chid: m.chid, id: m.id > 0 ? m.id : 0 });
    const headers: OutgoingHttpHeaders = {
      'content-type': 'application/octet-stream',
      'last-modified': new Date(m.createdAt).toUTCString(),
    };
    const pushUrl = this.#o.pushUrls.get(chidKey(m.chid));
    if (pushUrl) headers.link = formatLink(pushUrl, Rel.push);
    if (m.headers) {
      headers['content-encoding'] = m.headers.encoding;
      if (m.headers.encryption !== undefined) headers.encryption = m.headers.encryption;
      if (m.headers.cryptoKey !== undefined) headers['crypto-key'] = m.headers.cryptoKey;
    }
    const promised = push(this.#o.stream, this.#o.origin, `/m/${token}`, { status: 200, headers, body: m.body });
    if (promised) this.#ctx.metrics?.delivered('http2', m.createdAt);
    return promised;
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
    this.onClosed();
    if (finish && !this.#o.stream.closed && !this.#o.stream.destroyed) finish();
  }
}
