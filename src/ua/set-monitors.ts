// Receiving over RFC 8030 (section 6): a GET kept open on each subscription set, or on each
// subscription outside a set; the messages come as push promises on the session. A GET that ends
// is issued again: at once after a healthy one, with backoff after failures. One that ends with
// 404 or 410 says the push service dropped those subscriptions.
//
// Timers: one per GET waiting to be issued again.
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { Http2Connection } from './http2-connection.ts';
import { reconnectDelay, type ReconnectOptions, type TransportHandlers, type UaLogger } from './transport.ts';
import { URGENCY_LEVELS, isUrgencyLevel, type UrgencyLevel } from './urgency.ts';

const { NGHTTP2_CANCEL } = http2.constants;

/** A GET that lasted this long (or delivered something) was fine: issue it again at once when it ends. */
const HEALTHY_GET_MS = 1_000;

/** A GET kept open on a subscription set (or a lone subscription). */
interface Monitor {
  url: string;
  stream: ClientHttp2Stream | null;
  retryTimer: NodeJS.Timeout | null;
  /** Consecutive GETs that ended badly (an error status, or at once). */
  failures: number;
  openedAt: number;
  pushes: number;
  /** `nowait`: answered 200/204, so everything waiting was pushed; not issued again. */
  answered: boolean;
}

export interface SetMonitorsOptions {
  connection: Http2Connection;
  handlers: Pick<TransportHandlers, 'subscriptions' | 'gone'>;
  log: UaLogger;
  reconnect: ReconnectOptions;
  /** The lowest urgency wanted at first (the GETs' Urgency header); null: all messages. */
  urgency: UrgencyLevel | null;
  /** `Prefer: wait=0` (RFC 8030 6.1): each GET gets what waits and is answered; `answered` is told once all were. */
  nowait?: boolean;
  answered?: () => void;
}

export class SetMonitors {
  readonly #o: SetMonitorsOptions;
  #urgency: UrgencyLevel | null;
  #receiving = false;
  /** By the URL of the set or subscription they GET. */
  readonly #monitors = new Map<string, Monitor>();
  /** Subscription URLs being deleted: their GET ending with 404 is expected. */
  readonly #unsubscribing = new Set<string>();

  constructor(o: SetMonitorsOptions) {
    this.#o = o;
    this.#urgency = o.urgency;
  }

  get urgency(): UrgencyLevel | null {
    return this.#urgency;
  }

  /** Changes the lowest urgency wanted: the GETs are issued again with the new Urgency header. */
  setUrgency(urgency: UrgencyLevel | null): void {
    if (urgency !== null && !isUrgencyLevel(urgency)) throw new TypeError(`urgency must be one of ${URGENCY_LEVELS.join(', ')}`);
    if (urgency === this.#urgency) return;
    this.#urgency = urgency;
    for (const m of this.#monitors.values()) {
      this.#stop(m);
      m.failures = 0;
    }
    this.sync();
  }

  /** From now on the GETs are kept open. */
  receive(): void {
    if (this.#receiving) return;
    this.#receiving = true;
    this.sync();
  }

  /** Opens the GETs that are wanted and not open; ends those no longer wanted. */
  sync(): void {
    if (this.#o.connection.closed) return;
    const wanted = new Set<string>();
    for (const s of this.#o.handlers.subscriptions()) {
      const resource = s.setUrl ?? s.subscriptionUrl;
      if (resource) wanted.add(resource);
    }
    for (const [url, m] of this.#monitors) {
      if (wanted.has(url)) continue;
      this.#stop(m);
      this.#monitors.delete(url);
    }
    if (!this.#receiving) return;
    for (const url of wanted) {
      let m = this.#monitors.get(url);
      if (!m) {
        m = { url, stream: null, retryTimer: null, failures: 0, openedAt: 0, pushes: 0, answered: false };
        this.#monitors.set(url, m);
      }
      if (this.#o.connection.ready && !m.stream && !m.retryTimer && !m.answered) this.#open(m);
    }
    this.#checkAnswered();
  }

  #checkAnswered(): void {
    if (!this.#o.nowait || !this.#receiving || !this.#o.connection.ready) return;
    if ([...this.#monitors.values()].every((m) => m.answered)) this.#o.answered?.();
  }

  /** Ends every GET (the session is going); sync() issues them again. */
  stopAll(): void {
    for (const m of this.#monitors.values()) this.#stop(m);
  }

  /** A message was promised: the open GETs count as healthy. */
  notePush(): void {
    for (const m of this.#monitors.values()) if (m.stream) m.pushes++;
  }

  /** Runs `unsubscribe`, the DELETE of subscription `url`, so that its GET ending with 404 about then passes unreported. */
  async unsubscribing(url: string, unsubscribe: () => Promise<void>): Promise<void> {
    this.#unsubscribing.add(url);
    try {
      await unsubscribe();
    } finally {
      // its GET (when it has one of its own) ends with 404 about now
      setTimeout(() => this.#unsubscribing.delete(url), 1_000).unref();
    }
  }

  #open(m: Monitor): void {
    const session = this.#o.connection.session;
    if (!session) return;
    const target = new URL(m.url);
    if (target.origin !== this.#o.connection.origin) {
      this.#o.log.warn({ origin: target.origin }, 'a subscription set on another origin than the push service: not received');
      return;
    }
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(
        {
          ':method': 'GET',
          ':path': `${target.pathname}${target.search}`,
          ...(this.#urgency ? { urgency: this.#urgency } : {}),
          ...(this.#o.nowait ? { prefer: 'wait=0' } : {}),
        },
        { endStream: true },
      );
    } catch (err) {
      // the session is going away: its close handler takes over
      this.#o.log.debug({ err: (err as Error).message }, 'cannot issue the GET');
      return;
    }
    m.stream = stream;
    m.openedAt = Date.now();
    m.pushes = 0;
    let status = 0;
    let error: string | undefined;
    stream.on('response', (h) => {
      status = Number(h[':status']);
    });
    stream.resume(); // a final answer's body (if any) is not needed
    stream.on('error', (err) => {
      error = err.message;
    });
    stream.on('close', () => this.#onEnd(m, session, stream, status, error));
  }

  #onEnd(m: Monitor, session: ClientHttp2Session, stream: ClientHttp2Stream, status: number, error: string | undefined): void {
    if (m.stream !== stream) return; // replaced or stopped on purpose
    m.stream = null;
    if (!this.#o.connection.ready || this.#monitors.get(m.url) !== m) return;
    if (session !== this.#o.connection.session || session.closed || session.destroyed) return; // the session's end handles it
    if (status === 404 || status === 410) {
      this.#monitors.delete(m.url);
      if (this.#unsubscribing.has(m.url)) return;
      const gone = this.#o.handlers.subscriptions().filter((s) => (s.setUrl ?? s.subscriptionUrl) === m.url);
      const kind = gone.some((s) => s.setUrl === m.url) ? 'subscription set' : 'subscription';
      this.#o.log.warn({ status, subscriptions: gone.length }, `the push service no longer has this ${kind}`);
      if (gone.length > 0) this.#o.handlers.gone(gone.map((s) => s.channelID), `the ${kind} answered ${status}`);
      return;
    }
    if (this.#o.nowait && (status === 200 || status === 204)) {
      m.answered = true;
      this.#checkAnswered();
      return;
    }
    const healthy = (status === 200 || status === 204) && (m.pushes > 0 || Date.now() - m.openedAt >= HEALTHY_GET_MS);
    m.failures = healthy ? 0 : m.failures + 1;
    const delay = m.failures === 0 ? 0 : reconnectDelay(m.failures, status === 429, this.#o.reconnect);
    const level = healthy ? 'debug' : 'warn';
    this.#o.log[level]({ status, ...(error ? { err: error } : {}), retryInMs: delay }, 'the GET for messages ended: issuing it again');
    m.retryTimer = setTimeout(() => {
      m.retryTimer = null;
      if (this.#monitors.get(m.url) === m && !m.stream) this.#open(m);
    }, delay);
  }

  #stop(m: Monitor): void {
    if (m.retryTimer) clearTimeout(m.retryTimer);
    m.retryTimer = null;
    const stream = m.stream;
    m.stream = null;
    if (stream && !stream.closed && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
  }
}
