// PushUserAgent: a Web Push user agent as a library. It subscribes through a push service, keeps
// the keys in a state file (state-keeper.ts), receives and decrypts messages and acknowledges
// them after the application handled them (delivery.ts). Two protocols: the WebSocket protocol
// of Firefox/autopush (websocket-client.ts) and RFC 8030 over HTTP/2 (http2-client.ts).
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { generateUserAgentKeys } from '../crypto/webpush.ts';
import { Delivery } from './delivery.ts';
import {
  SafeEmitter,
  type ConnectingEvent,
  type DisconnectEvent,
  type PushUserAgentEvents,
  type ResetEvent,
} from './events.ts';
import { Http2Transport } from './http2-client.ts';
import type { PushMessage } from './message.ts';
import { messageIterator } from './message-iterator.ts';
import { StateKeeper } from './state-keeper.ts';
import type { StoredSubscription, UaProtocol } from './state.ts';
import { silentLogger, type ReconnectOptions, type Transport, type TransportHandlers, type UaLogger } from './transport.ts';
import { URGENCY_LEVELS, isUrgencyLevel, type UrgencyLevel } from './urgency.ts';
import type { Trace } from '../sdk/trace.ts';
import { isVapidPublicKey } from './vapid-key.ts';
import { WebSocketTransport } from './websocket-client.ts';

export {
  ListenerError,
  RetryLater,
  type ConnectEvent,
  type ConnectingEvent,
  type DisconnectEvent,
  type MessageErrorEvent,
  type PushUserAgentEvents,
  type ResetEvent,
} from './events.ts';
export { isVapidPublicKey };
export type { UaProtocol, UrgencyLevel };

/** What a browser's `PushSubscription.toJSON()` gives the application server. */
export interface PushSubscriptionJSON {
  endpoint: string;
  expirationTime: null;
  keys: {
    /** base64url */
    p256dh: string;
    /** base64url */
    auth: string;
  };
}

export interface PushUserAgentOptions {
  /**
   * The push service: ws(s):// or http(s):// base URL. Optional when `statePath` names an
   * existing state. Over RFC 8030, `POST <server>/subscribe` subscribes (ws(s):// counts as http(s)://).
   */
  server?: string;
  /** Keeps the uaid and the subscriptions' keys across runs (JSON, mode 0600). Without it they live in memory. */
  statePath?: string;
  /** Certificate authorities to trust besides the system's (PEM), e.g. a test server's self-signed certificate. */
  ca?: Buffer | string;
  log?: UaLogger;
  /**
   * 'websocket' (the Firefox/autopush protocol) or 'http2' (RFC 8030: HTTP/2 server push, over
   * TLS with ALPN h2 or cleartext h2c). Default: the state file's, else 'websocket'. A state file
   * belongs to one protocol.
   */
  protocol?: UaProtocol;
  /**
   * http2 only: the lowest urgency wanted now (RFC 8030 5.3), sent as the Urgency header of the
   * GET that receives; less urgent messages wait at the push service. Default: all. Changeable
   * with setUrgency().
   */
  urgency?: UrgencyLevel | null;
  reconnect?: Partial<ReconnectOptions>;
  /** Connecting, and each subscribe/unsubscribe answer (10 s). */
  requestTimeoutMs?: number;
  /** A connection silent this long is probed (10 min). */
  idleTimeoutMs?: number;
  /**
   * http2 only: take the messages waiting now (`Prefer: wait=0`, RFC 8030 6.1) instead of holding
   * the GETs open; 'drained' is emitted once each GET was answered and its messages handled.
   */
  nowait?: boolean;
  /** false: messages are not acknowledged after the listeners ran; they stay at the push service until acknowledged otherwise (e.g. `webpushd ack`). Default true. */
  ack?: boolean;
  /** Told what goes over the wire: WebSocket frames; HTTP/2 header blocks, pushes, DATA lengths, GOAWAY, resets; TLS. */
  trace?: Trace;
}

function toJSON(s: StoredSubscription): PushSubscriptionJSON {
  return { endpoint: s.endpoint, expirationTime: null, keys: { p256dh: s.keys.p256dh, auth: s.keys.auth } };
}

/** What a reset event says of the subscriptions it dropped. */
const dropped = (subscriptions: StoredSubscription[]) => subscriptions.map(({ channelID, endpoint }) => ({ channelID, endpoint }));

/** How long close() lets a running listener finish so that its message is acknowledged. */
const CLOSE_GRACE_MS = 1_000;

export class PushUserAgent extends EventEmitter<PushUserAgentEvents> {
  readonly #log: UaLogger;
  readonly #events: SafeEmitter;
  readonly #state: StateKeeper;
  readonly #transport: Transport;
  readonly #http2: Http2Transport | null;
  readonly #delivery: Delivery;
  #started = false;
  #closed = false;
  #closing: Promise<void> | null = null;
  readonly #iteratorStops = new Set<() => void>();

  /**
   * Loads (or creates) the state; throws StateError when the file is unreadable or corrupt,
   * or when it is missing and no `server` is given. Add listeners, then connect().
   */
  constructor(options: PushUserAgentOptions) {
    super();
    this.#log = options.log ?? silentLogger;
    this.#events = new SafeEmitter(this, this.#log);
    if (options.protocol !== undefined && options.protocol !== 'websocket' && options.protocol !== 'http2') {
      throw new TypeError(`unsupported protocol ${String(options.protocol)} (expected websocket or http2)`);
    }
    if (options.urgency != null && !isUrgencyLevel(options.urgency)) {
      throw new TypeError(`urgency must be one of ${URGENCY_LEVELS.join(', ')}`);
    }
    this.#state = new StateKeeper({
      ...(options.server !== undefined ? { server: options.server } : {}),
      ...(options.statePath !== undefined ? { statePath: options.statePath } : {}),
      ...(options.protocol !== undefined ? { protocol: options.protocol } : {}),
      log: this.#log,
      reportError: (err) => this.#events.reportError(err),
      merged: () => this.#transport.subscriptionsChanged(),
    });

    const handlers: TransportHandlers = {
      uaid: () => this.#state.uaid,
      session: (uaid) => this.#onSession(uaid),
      notification: (n) => this.#delivery.receive(n),
      status: (e) => {
        const { type, ...event } = e;
        if (type === 'connecting') this.#events.emit('connecting', event as ConnectingEvent);
        else this.#events.emit('disconnect', event as DisconnectEvent);
      },
      subscriptions: () => this.#state.subscriptions,
      channelFor: (endpoint) => this.#state.find((s) => s.endpoint === endpoint)?.channelID ?? null,
      gone: (channelIDs, reason) => this.#onGone(channelIDs, reason),
      drained: () => {
        void this.#delivery
          .idle()
          .then(() => this.#http2?.acknowledged())
          .then(() => this.#events.emit('drained'));
      },
    };
    const common = {
      url: this.#state.server,
      log: this.#log,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.reconnect ? { reconnect: options.reconnect } : {}),
      ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
      ...(options.trace !== undefined ? { trace: options.trace } : {}),
    };
    if (this.protocol === 'http2') {
      this.#http2 = new Http2Transport(handlers, { ...common, urgency: options.urgency ?? null, nowait: options.nowait === true });
      this.#transport = this.#http2;
    } else {
      if (options.urgency != null) throw new TypeError('urgency needs protocol http2 (the WebSocket protocol has no urgency filter)');
      if (options.nowait) throw new TypeError('nowait needs protocol http2 (the WebSocket protocol never says that nothing more waits)');
      this.#http2 = null;
      this.#transport = new WebSocketTransport(handlers, common);
    }
    this.#delivery = new Delivery({
      client: this,
      events: this.#events,
      transport: this.#transport,
      state: this.#state,
      log: this.#log,
      closed: () => this.#closed,
      ack: options.ack ?? true,
    });
    this.on('newListener', (event) => {
      if (event !== 'message') return;
      queueMicrotask(() => {
        if (this.#closed) return;
        // RFC 8030: the GET that receives is issued once someone listens (`ua subscribe` never does).
        if (this.#started) this.#transport.receive();
        this.#state.watch();
        void this.#delivery.pump();
      });
    });
  }

  /** new PushUserAgent(options) + connect(): resolves once the push service said hello. */
  static async open(options: PushUserAgentOptions & { retry?: boolean }): Promise<PushUserAgent> {
    const client = new PushUserAgent(options);
    try {
      await client.connect({ retry: options.retry ?? false });
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  /**
   * Connects and resolves at the first session. `retry` false (default): a failed first attempt
   * rejects with a ConnectionError. true: keeps trying with backoff. Either way, once connected,
   * a dropped connection is re-established until close().
   */
  async connect(options: { retry?: boolean } = {}): Promise<void> {
    if (this.#closed) throw new Error('the client is closed');
    if (this.#started) throw new Error('connect() was already called');
    this.#started = true;
    if (this.listenerCount('message') > 0) this.#transport.receive();
    await this.#transport.start(options.retry ?? false);
  }

  /** The push service as named in the state. */
  get server(): string {
    return this.#state.server;
  }

  get protocol(): UaProtocol {
    return this.#state.protocol;
  }

  /** The WebSocket protocol's user-agent ID; always null over RFC 8030. */
  get uaid(): string | null {
    return this.#state.uaid;
  }

  /** http2: the lowest urgency received now (null: all). */
  get urgency(): UrgencyLevel | null {
    return this.#http2?.urgency ?? null;
  }

  /**
   * http2: changes the lowest urgency received (null or 'very-low': all). The GET is issued again
   * with the new Urgency header, so messages that waited at the push service come now.
   */
  setUrgency(urgency: UrgencyLevel | null): void {
    if (!this.#http2) throw new TypeError('urgency needs protocol http2 (the WebSocket protocol has no urgency filter)');
    this.#http2.setUrgency(urgency);
  }

  get connected(): boolean {
    return this.#transport.ready;
  }

  subscriptions(): (PushSubscriptionJSON & { channelID: string })[] {
    return this.#state.subscriptions.map((s) => ({ channelID: s.channelID, ...toJSON(s) }));
  }

  /** Creates a subscription (restricted to `vapidKey` when given) and stores its keys. */
  async subscribe(options: { vapidKey?: string } = {}): Promise<PushSubscriptionJSON> {
    this.#assertUsable();
    const { vapidKey } = options;
    if (vapidKey !== undefined && !isVapidPublicKey(vapidKey)) {
      throw new TypeError('vapidKey must be an uncompressed P-256 public key in base64url');
    }
    const channelID = randomUUID();
    const keys = generateUserAgentKeys();
    // RFC 8030: join the set of the earlier subscriptions, so that one GET receives for all.
    const setUrl = this.#state.subscriptions.findLast((s) => s.setUrl !== undefined)?.setUrl;
    const { endpoint, subscriptionUrl, setUrl: newSetUrl } = await this.#transport.register(channelID, vapidKey, setUrl);
    const subscription: StoredSubscription = {
      channelID,
      endpoint,
      ...(subscriptionUrl !== undefined ? { subscriptionUrl } : {}),
      ...(newSetUrl !== undefined ? { setUrl: newSetUrl } : {}),
      ...(vapidKey !== undefined ? { vapidKey } : {}),
      keys: {
        p256dh: keys.publicKey.toString('base64url'),
        auth: keys.auth.toString('base64url'),
        privateKey: keys.privateKey.toString('base64url'),
      },
    };
    this.#state.add(subscription);
    this.#state.save(true);
    this.#transport.subscriptionsChanged();
    return toJSON(subscription);
  }

  /** Deletes a subscription at the push service and from the state. */
  async unsubscribe(endpointOrChannelId: string): Promise<void> {
    this.#assertUsable();
    const subscription = this.#state.find((s) => s.endpoint === endpointOrChannelId || s.channelID === endpointOrChannelId.toLowerCase());
    if (!subscription) throw new Error(`no subscription with endpoint or channelID ${endpointOrChannelId}`);
    await this.#transport.unregister(subscription);
    const { channelID } = subscription;
    this.#state.remove((s) => s.channelID === channelID);
    this.#delivery.forgetVersions(channelID);
    this.#state.save(true);
    this.#transport.subscriptionsChanged();
  }

  /**
   * The messages as an async iterator. Each one is acknowledged when the loop asks for the next
   * (so after the loop body ran), or when the loop ends. Ends when the client is closed.
   */
  messages(): AsyncIterableIterator<PushMessage> {
    return messageIterator(this, () => this.#closed, this.#iteratorStops);
  }

  /**
   * Stops: ends the iterators, lets a running listener finish (briefly) so its message is
   * acknowledged, and closes the connection. Messages not yet handled are delivered again on
   * the next connection.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#state.stopWatching();
      for (const stop of [...this.#iteratorStops]) stop();
      const handling = this.#delivery.stop(CLOSE_GRACE_MS);
      if (handling) await handling;
      await this.#transport.close();
    })();
    return this.#closing;
  }

  #onSession(uaid: string | null): void {
    const previous = this.#state.uaid;
    let reset: ResetEvent | null = null;
    if (previous === uaid) {
      this.#delivery.sessionStarted(true);
    } else {
      // A new uaid: the push service does not know us (any more). Firefox drops its subscriptions.
      if (previous !== null && this.#state.subscriptions.length > 0) {
        reset = { previousUaid: previous, uaid, dropped: dropped(this.#state.remove(() => true)) };
        this.#delivery.forget(null);
      }
      this.#delivery.sessionStarted(false);
      this.#state.uaid = uaid;
      this.#state.save(false);
    }
    this.#events.emit('connect', { url: this.#transport.url, uaid });
    if (reset) {
      this.#log.warn({ previousUaid: reset.previousUaid, uaid, dropped: reset.dropped.length }, 'the push service reset this user agent');
      this.#events.emit('reset', reset);
    }
  }

  /** RFC 8030: the push service no longer has these subscriptions. */
  #onGone(channelIDs: string[], reason: string): void {
    const gone = new Set(channelIDs);
    const removed = this.#state.remove((s) => gone.has(s.channelID));
    if (removed.length === 0) return;
    this.#delivery.forget(gone);
    this.#state.save(false);
    this.#log.warn({ dropped: removed.length, reason }, 'the push service no longer has some subscriptions');
    this.#events.emit('reset', { previousUaid: null, uaid: null, dropped: dropped(removed), reason });
  }

  #assertUsable(): void {
    if (this.#closed) throw new Error('the client is closed');
    if (!this.#started) throw new Error('not connected: call connect() first');
  }
}
