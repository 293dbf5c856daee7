// RFC 8030 (Generic Event Delivery Using HTTP Push), the user agent's side, over HTTP/2:
// subscribe (POST /subscribe, joining a subscription set), receive (a GET on the set, or on a
// subscription, kept open: each message arrives as a PUSH_PROMISE), acknowledge (DELETE the
// message), unsubscribe (DELETE the subscription). One HTTP/2 session carries it all
// (http2-connection.ts); when it drops and comes back, the GETs are issued again.
import type { ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import { Http2Connection } from './http2-connection.ts';
import { PushServiceRequests } from './http2-requests.ts';
import { PUSH_REL, findLink, parseLinks } from './link-header.ts';
import { PromisedMessages, encodingHeaders, type PromisedMessage } from './promised-messages.ts';
import { toHttpUrl } from './server-url.ts';
import { SetMonitors } from './set-monitors.ts';
import type { StoredSubscription } from './state.ts';
import { DEFAULT_RECONNECT, silentLogger } from './transport.ts';
import type { AckUpdate, Registration, Transport, TransportHandlers, TransportOptions, UaLogger } from './transport.ts';
import { URGENCY_LEVELS, isUrgencyLevel, type UrgencyLevel } from './urgency.ts';

// What the tests and `webpushd ua` take from here.
export { PUSH_REL, SET_REL, parseLinks } from './link-header.ts';
export { URGENCY_LEVELS, toHttpUrl };

/** `url`: POST <url>/subscribe subscribes. */
export interface Http2TransportOptions extends TransportOptions {
  /** The lowest urgency wanted now (sent as the GETs' Urgency header); null: all messages. */
  urgency?: UrgencyLevel | null;
  /** `Prefer: wait=0`: take what waits, then tell `drained` instead of holding the GETs open. */
  nowait?: boolean;
}

export class Http2Transport implements Transport {
  /** The push service's base URL, http(s)://. */
  readonly url: string;
  readonly #handlers: TransportHandlers;
  readonly #log: UaLogger;
  readonly #connection: Http2Connection;
  readonly #requests: PushServiceRequests;
  readonly #monitors: SetMonitors;
  readonly #pushes: PromisedMessages;
  /** nowait: every GET was answered (what they pushed may still be arriving). */
  #answered = false;
  #drained = false;

  constructor(handlers: TransportHandlers, o: Http2TransportOptions) {
    this.url = toHttpUrl(o.url);
    if (o.urgency != null && !isUrgencyLevel(o.urgency)) throw new TypeError(`urgency must be one of ${URGENCY_LEVELS.join(', ')}`);
    this.#handlers = handlers;
    this.#log = o.log ?? silentLogger;
    const reconnect = { ...DEFAULT_RECONNECT, ...o.reconnect };
    this.#connection = new Http2Connection(
      { ...o, url: this.url, reconnect },
      {
        status: (e) => handlers.status(e),
        ready: () => {
          handlers.session(null);
          this.#monitors.sync();
        },
        ending: () => {
          this.#monitors.stopAll();
          this.#pushes.clear();
        },
        pushPromise: (pushed, request) => this.#onPushPromise(pushed, request),
      },
    );
    this.#requests = new PushServiceRequests(this.#connection, this.#log);
    this.#monitors = new SetMonitors({
      connection: this.#connection,
      handlers,
      log: this.#log,
      reconnect,
      urgency: o.urgency ?? null,
      nowait: o.nowait ?? false,
      answered: () => {
        this.#answered = true;
        this.#checkDrained();
      },
    });
    this.#pushes = new PromisedMessages({
      origin: this.#connection.origin,
      log: this.#log,
      live: () => this.#connection.ready,
      deliver: (m) => this.#deliver(m),
      flushed: () => this.#checkDrained(),
    });
  }

  #checkDrained(): void {
    if (!this.#answered || this.#drained || this.#pushes.pending > 0) return;
    this.#drained = true;
    this.#handlers.drained();
  }

  get ready(): boolean {
    return this.#connection.ready;
  }

  get urgency(): UrgencyLevel | null {
    return this.#monitors.urgency;
  }

  /** Changes the lowest urgency wanted: the GETs are issued again with the new Urgency header. */
  setUrgency(urgency: UrgencyLevel | null): void {
    this.#monitors.setUrgency(urgency);
  }

  start(retry: boolean): Promise<void> {
    return this.#connection.start(retry);
  }

  register(_channelID: string, vapidKey: string | undefined, setUrl?: string): Promise<Registration> {
    return this.#requests.subscribe(vapidKey, setUrl);
  }

  async unregister(subscription: StoredSubscription): Promise<void> {
    const url = subscription.subscriptionUrl;
    if (!url) throw new Error(`subscription ${subscription.channelID} has no subscription URL in the state`);
    await this.#monitors.unsubscribing(url, () => this.#requests.unsubscribe(url));
  }

  /** Acknowledges by deleting each message (RFC 8030 6.2); whatever the code, the message is done. */
  ack(updates: AckUpdate[]): boolean {
    if (updates.length === 0) return true;
    if (!this.#connection.ready) return false;
    for (const { version } of updates) this.#requests.acknowledge(version);
    return true;
  }

  /** RFC 8030 has no negative acknowledgement. */
  nack(): boolean {
    return true;
  }

  receive(): void {
    this.#monitors.receive();
  }

  /** Resolves once the acknowledgements sent so far were answered. */
  acknowledged(): Promise<void> {
    return this.#requests.acknowledged();
  }

  subscriptionsChanged(): void {
    this.#monitors.sync();
  }

  close(): Promise<void> {
    return this.#connection.close();
  }

  #onPushPromise(pushed: ClientHttp2Stream, request: IncomingHttpHeaders): void {
    if (this.#pushes.read(pushed, request)) this.#monitors.notePush();
  }

  #deliver(m: PromisedMessage): void {
    const endpoint = findLink(parseLinks(m.headers.link, m.version), PUSH_REL);
    let channelID: string | null = null;
    if (endpoint !== undefined) channelID = this.#handlers.channelFor(endpoint);
    else {
      // No Link: only a push service with a single subscription to watch leaves no doubt.
      const watched = this.#handlers.subscriptions().filter((s) => s.subscriptionUrl);
      if (watched.length === 1) channelID = watched[0]!.channelID;
    }
    this.#handlers.notification({
      channelID: channelID ?? '',
      ...(endpoint !== undefined ? { endpoint } : {}),
      version: m.version,
      body: m.body,
      headers: m.body.length === 0 ? null : encodingHeaders(m.headers),
    });
  }
}
