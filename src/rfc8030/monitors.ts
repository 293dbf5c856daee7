// The router's Connection for a user agent (a set) watched over HTTP/2: it holds every open
// monitor of the uaid (one GET per subscription, one for the whole set, or several) and gives
// each the messages of its own subscriptions. The hub keeps one such connection per uaid, with
// the push URLs its monitors looked up.
import type { Connection, Delivery, Router } from '../router/router.ts';
import type { Monitor } from './monitor.ts';
import type { PushUrls } from './push-urls.ts';

class Monitors implements Connection {
  readonly monitors = new Set<Monitor>();
  readonly pushUrls: PushUrls;
  readonly #onReplaced: () => void;

  constructor(pushUrls: PushUrls, onReplaced: () => void) {
    this.pushUrls = pushUrls;
    this.#onReplaced = onReplaced;
  }

  deliver(message: Delivery): boolean {
    let taken = false;
    for (const m of this.monitors) if (m.deliver(message)) taken = true;
    return taken;
  }

  /** A WebSocket session said hello with this uaid: the newest connection wins, as between sessions. */
  replacedByNewer(): void {
    this.#onReplaced();
    for (const m of [...this.monitors]) m.abort();
  }

  removed(_chid: Buffer, id: number): void {
    for (const m of this.monitors) m.removed(id);
  }

  unsubscribed(chid: Buffer | null): void {
    this.pushUrls.delete(chid);
    for (const m of [...this.monitors]) m.unsubscribed(chid);
  }
}

export class MonitorHub {
  readonly #router: Router;
  readonly #newPushUrls: (uaid: Buffer) => PushUrls;
  readonly #byUserAgent = new Map<string, Monitors>();

  constructor(router: Router, newPushUrls: (uaid: Buffer) => PushUrls) {
    this.#router = router;
    this.#newPushUrls = newPushUrls;
  }

  /** The push URLs `uaid`'s open monitors share; new ones, for a monitor to `add` in this turn, when none is open. */
  pushUrls(uaid: Buffer): PushUrls {
    return this.#byUserAgent.get(uaid.toString('latin1'))?.pushUrls ?? this.#newPushUrls(uaid);
  }

  /** Registers a monitor for live delivery (before it reads the store); it leaves when it ends. */
  add(monitor: Monitor): void {
    const key = monitor.uaid.toString('latin1');
    let conn = this.#byUserAgent.get(key);
    if (!conn) {
      const created = new Monitors(monitor.pushUrls, () => {
        if (this.#byUserAgent.get(key) === created) this.#byUserAgent.delete(key);
      });
      conn = created;
      this.#byUserAgent.set(key, conn);
      this.#router.attach(monitor.uaid, conn);
    }
    conn.monitors.add(monitor);
    const owner = conn;
    monitor.onClosed = () => {
      owner.monitors.delete(monitor);
      if (owner.monitors.size > 0 || this.#byUserAgent.get(key) !== owner) return;
      this.#byUserAgent.delete(key);
      this.#router.detach(monitor.uaid, owner);
    };
  }

  get size(): number {
    let n = 0;
    for (const conn of this.#byUserAgent.values()) n += conn.monitors.size;
    return n;
  }

  /** Server shutdown: every monitor's stream ends (the sessions already got GOAWAY). */
  close(): void {
    for (const conn of [...this.#byUserAgent.values()]) for (const m of [...conn.monitors]) m.abort();
  }
}
