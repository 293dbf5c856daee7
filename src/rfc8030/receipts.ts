// A monitor of a receipt subscription (RFC 8030 6.3): the application server's GET, over
// HTTP/2. Each receipt goes out as a PUSH_PROMISE for `GET /m/<message token>` (the Location
// the sender got for the message) with a header-only response: 204 when the user agent
// acknowledged the message, 410 when it expired, was replaced (Topic) or unsubscribed first.
// A receipt is deleted once pushed whole; one that could not be pushed waits for the next GET.
// While the session is full (its client does not take its pushes) the rest wait in the store.
import { constants, type Http2ServerResponse, type ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { Errno, PushError, storeUnavailableError } from '../common/push-error.ts';
import { sendError } from '../http/respond.ts';
import type { ReceiptWatcher, Router } from '../router/router.ts';
import { StoreUnavailable } from '../store/errors.ts';
import type { QueuedReceipt, Store } from '../store/types.ts';
import type { Capabilities } from '../tokens/capabilities.ts';
import type { PushOrigin, SessionPushes } from './server-push.ts';

export interface ReceiptMonitorContext {
  store: Store;
  router: Router;
  capabilities: Capabilities;
  log: Logger;
}

const PAGE = 100;

/** The GET a receipt monitor answers, and its session's pushes. */
export interface ReceiptStream {
  stream: ServerHttp2Stream;
  res: Http2ServerResponse;
  origin: PushOrigin;
  pushes: SessionPushes;
}

export class ReceiptMonitor implements ReceiptWatcher {
  readonly #ctx: ReceiptMonitorContext;
  readonly #id: Buffer;
  readonly #stream: ServerHttp2Stream;
  readonly #res: Http2ServerResponse;
  readonly #origin: PushOrigin;
  readonly #pushes: SessionPushes;
  /** Highest receipt seq pushed on this stream. */
  #lastSeq = 0;
  /** Receipts pushed (the `Prefer: wait=0` answer says whether there were any). */
  #pushed = 0;
  #draining = false;
  #again = false;
  #live = false;
  #closed = false;
  /** Told once when the monitor ends. */
  onClosed: () => void = () => {};

  constructor(ctx: ReceiptMonitorContext, id: Buffer, s: ReceiptStream) {
    this.#ctx = ctx;
    this.#id = id;
    this.#stream = s.stream;
    this.#res = s.res;
    this.#origin = s.origin;
    this.#pushes = s.pushes;
    s.stream.once('close', () => this.#end(null));
  }

  /** Holds the stream open: queued receipts now, new ones as they are committed. */
  async run(): Promise<void> {
    this.#live = true;
    this.#ctx.router.watchReceipts(this.#id, this);
    await this.#drain();
  }

  /** `Prefer: wait=0`: pushes every queued receipt, then answers 200, or 204 when there was none. */
  async drainOnce(): Promise<void> {
    await this.#drain();
  }

  readonly receiptsQueued = (): void => {
    this.#drain().catch((err: unknown) => {
      if (err instanceof StoreUnavailable) {
        this.#ctx.log.warn({ err: err.message }, 'a receipt monitor ended: store unavailable');
        return this.#fail(storeUnavailableError());
      }
      this.#ctx.log.error({ err }, 'reading receipts failed');
      this.#fail(new PushError(500, Errno.internal, 'Internal server error'));
    });
  };

  /** RFC 8030 7.3: the receipt subscription expired. */
  expired(): void {
    this.#fail(new PushError(404, Errno.noSubscription, 'The receipt subscription expired'));
  }

  abort(): void {
    this.#end(() => this.#stream.close(constants.NGHTTP2_NO_ERROR));
  }

  /**
   * One drain at a time; a notification during one makes it read again. `Prefer: wait=0` is
   * answered once everything queued was pushed (after waits for room).
   */
  async #drain(): Promise<void> {
    if (this.#draining) {
      this.#again = true;
      return;
    }
    this.#draining = true;
    try {
      do {
        this.#again = false;
        // the session is full: receiptsQueued goes on once it has room
        if (!(await this.#pushWaiting())) return;
      } while (this.#again && !this.#closed);
    } finally {
      this.#draining = false;
    }
    if (!this.#live) this.#answer();
  }

  /** Pushes what is queued; false when the session filled up first (then it waits for room). */
  async #pushWaiting(): Promise<boolean> {
    for (;;) {
      if (this.#closed) return true;
      if (this.#pushes.full) {
        this.#pushes.whenRoom(this.receiptsQueued);
        return false;
      }
      // no more read than the session takes now
      const want = Math.min(PAGE, this.#pushes.room);
      const page = await this.#ctx.store.pendingReceipts(this.#id, this.#lastSeq, want);
      if (this.#closed) return true;
      for (const r of page) {
        // other monitors of the session pushed meanwhile: the rest stays queued, read again later
        if (this.#pushes.full) {
          this.#pushes.whenRoom(this.receiptsQueued);
          return false;
        }
        this.#lastSeq = r.seq;
        if (this.#push(r)) this.#pushed++;
      }
      if (page.length < want) return true;
    }
  }

  #answer(): void {
    const pushed = this.#pushed;
    this.#end(() => {
      this.#res.writeHead(pushed > 0 ? 200 : 204, pushed > 0 ? { 'content-length': 0 } : {});
      this.#res.end();
    });
  }

  #push(r: QueuedReceipt): boolean {
    const { capabilities, store, log } = this.#ctx;
    const path = `/m/${capabilities.messageToken({ uaid: r.uaid, chid: r.chid, id: r.messageId })}`;
    return this.#pushes.push(this.#stream, this.#origin, path, { status: r.status }, (sent) => {
      if (!sent) return;
      store.deleteReceipt(r.seq).catch((err: unknown) => log.error({ err }, 'deleting a delivered receipt failed'));
    });
  }

  #fail(err: PushError): void {
    this.#end(() => {
      if (this.#res.headersSent) this.#stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      else sendError(this.#res, err);
    });
  }

  #end(finish: (() => void) | null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pushes.cancel(this.receiptsQueued);
    if (this.#live) this.#ctx.router.unwatchReceipts(this.#id, this);
    this.onClosed();
    if (finish && !this.#stream.closed && !this.#stream.destroyed) finish();
  }
}
