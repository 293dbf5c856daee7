// What both transports keep about their one connection to the push service: its phase, the
// callers waiting for a session (start(), requests made while reconnecting), and the next
// attempt after it dropped, with backoff. The transports bring the wire: they call attempt()
// as they open a connection, established() once the push service accepted the session, and
// dropped() when it ended.
import { ConnectionError, DEFAULT_RECONNECT, reconnectDelay, type ConnectionEvent, type ReconnectOptions } from './transport.ts';

/** 'handshake': connected, the push service's answer awaited (WebSocket: hello). */
export type Phase = 'idle' | 'connecting' | 'handshake' | 'ready' | 'closed';

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | null;
}

export interface SessionLifecycleOptions {
  /** Names the push service in events and errors. */
  url: string;
  reconnect?: Partial<ReconnectOptions>;
  /** Connecting, and each request's answer, including the wait for a session (10 s). */
  requestTimeoutMs?: number;
  status(e: ConnectionEvent): void;
  /** Opens a connection: at start(), and after each backoff delay. */
  connect(): void;
}

const LIVENESS_CHECK_MS = 30_000;

/**
 * Runs `check` periodically to find a connection silent for `idleTimeoutMs`: coarsely, yet often
 * enough for short idle timeouts. The timer does not keep the process alive.
 */
export function startLivenessCheck(idleTimeoutMs: number, check: () => void): NodeJS.Timeout {
  const timer = setInterval(check, Math.min(LIVENESS_CHECK_MS, Math.max(10, idleTimeoutMs / 2)));
  timer.unref();
  return timer;
}

export class SessionLifecycle {
  readonly requestTimeoutMs: number;
  /** Why the current attempt failed, when known: said in the errors of the callers it fails. */
  lastError: string | undefined;
  readonly #url: string;
  readonly #reconnect: ReconnectOptions;
  readonly #status: (e: ConnectionEvent) => void;
  readonly #connect: () => void;
  #phase: Phase = 'idle';
  /** Consecutive attempts that ended without a session. */
  #failures = 0;
  #everReady = false;
  #retryForever = true;
  #retryTimer: NodeJS.Timeout | null = null;
  readonly #waiters = new Set<Waiter>();

  constructor(o: SessionLifecycleOptions) {
    this.#url = o.url;
    this.#reconnect = { ...DEFAULT_RECONNECT, ...o.reconnect };
    this.requestTimeoutMs = o.requestTimeoutMs ?? 10_000;
    this.#status = o.status;
    this.#connect = o.connect;
  }

  get phase(): Phase {
    return this.#phase;
  }

  get ready(): boolean {
    return this.#phase === 'ready';
  }

  start(retry: boolean): Promise<void> {
    if (this.#phase !== 'idle') return Promise.reject(new Error('the transport was already started'));
    this.#retryForever = retry;
    const session = this.whenReady(null);
    this.#connect();
    return session;
  }

  /** Begins an attempt to connect; false once closed. */
  attempt(): boolean {
    this.#retryTimer = null;
    if (this.#phase === 'closed') return false;
    this.#phase = 'connecting';
    this.lastError = undefined;
    this.#status({ type: 'connecting', url: this.#url, attempt: this.#failures + 1 });
    return true;
  }

  handshake(): void {
    this.#phase = 'handshake';
  }

  /** The push service accepted the session: whoever waits for one goes on. */
  established(): void {
    this.#phase = 'ready';
    this.#failures = 0;
    this.#everReady = true;
    for (const w of this.#waiters) this.#settle(w, null);
  }

  /**
   * The connection ended (once closed, nothing happens): the next attempt follows after the
   * backoff delay, unless there never was a session and start() was told not to retry. `why`
   * ends the error of the callers failed then.
   */
  dropped(e: { code: number; reason: string; error: string | undefined; backoff: boolean; why: string }): void {
    if (this.#phase === 'closed') return;
    this.#failures++;
    const giveUp = !this.#everReady && !this.#retryForever;
    const retryInMs = giveUp ? null : reconnectDelay(this.#failures, e.backoff, this.#reconnect);
    this.#phase = giveUp ? 'closed' : 'idle';
    this.#status({ type: 'disconnected', url: this.#url, code: e.code, reason: e.reason, ...(e.error ? { error: e.error } : {}), retryInMs });
    if (retryInMs === null) {
      this.#rejectWaiters(new ConnectionError(`could not connect to ${this.#url}: ${e.why}`));
      return;
    }
    this.#retryTimer = setTimeout(() => this.#connect(), retryInMs);
  }

  /** Stops for good: no further attempt, and whoever waits for a session fails. False when already closed. */
  close(): boolean {
    if (this.#phase === 'closed') return false;
    this.#phase = 'closed';
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#rejectWaiters(new ConnectionError('the client was closed'));
    return true;
  }

  /** Resolves when there is a session (at once if there is one); `deadline` null waits as long as it takes. */
  whenReady(deadline: number | null): Promise<void> {
    if (this.#phase === 'ready') return Promise.resolve();
    if (this.#phase === 'closed') return Promise.reject(new ConnectionError('the client is closed'));
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: null };
      if (deadline !== null) {
        w.timer = setTimeout(
          () => {
            const last = this.lastError ? ` (last error: ${this.lastError})` : '';
            this.#settle(w, new ConnectionError(`not connected to ${this.#url} within ${this.requestTimeoutMs} ms${last}`));
          },
          Math.max(0, deadline - Date.now()),
        );
      }
      this.#waiters.add(w);
    });
  }

  #rejectWaiters(err: Error): void {
    for (const w of this.#waiters) this.#settle(w, err);
  }

  #settle(w: Waiter, err: Error | null): void {
    if (!this.#waiters.delete(w)) return;
    if (w.timer) clearTimeout(w.timer);
    if (err) w.reject(err);
    else w.resolve();
  }
}
