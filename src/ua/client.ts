// PushUserAgent: a Web Push user agent as a library. It subscribes through a push service, keeps
// the keys in a state file, receives and decrypts messages and acknowledges them after the
// application handled them.
//
// Delivery: messages are handed to the 'message' listeners (or the messages() iterator) one at
// a time, in the order the push service sent them. A message is acknowledged (code 100) after
// every listener returned, or its promise settled (unless one threw RetryLater); one that cannot
// be decrypted is acknowledged with 101 and reported as 'messageError'. Messages that arrive while nobody listens are held
// (not acknowledged) until a listener is added. A message the service sends again (because its
// acknowledgement was lost in a dropped connection) is recognised by its version, like Firefox
// does, and acknowledged again without a second delivery.
import { ECDH, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { generateUserAgentKeys } from '../crypto/webpush.ts';
import { DecryptionError, decodeNotification, type PushMessage } from './message.ts';
import { StateError, readState, writeState, type StoredSubscription, type UaState } from './state.ts';
import {
  silentLogger,
  type AckCode,
  type AckUpdate,
  type ConnectionEvent,
  type IncomingNotification,
  type ReconnectOptions,
  type Transport,
  type TransportHandlers,
  type UaLogger,
} from './transport.ts';
import { WebSocketTransport, toWebSocketUrl } from './websocket-client.ts';

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
  /** The push service: ws(s):// or http(s):// base URL. Optional when `statePath` names an existing state. */
  server?: string;
  /** Keeps the uaid and the subscriptions' keys across runs (JSON, mode 0600). Without it they live in memory. */
  statePath?: string;
  /** Certificate authorities to trust besides the system's (PEM), e.g. a test server's self-signed certificate. */
  ca?: Buffer | string;
  log?: UaLogger;
  /** Only 'websocket' (the Firefox/autopush protocol) for now. */
  protocol?: 'websocket';
  reconnect?: Partial<ReconnectOptions>;
  /** Connecting, and each subscribe/unsubscribe answer (10 s). */
  requestTimeoutMs?: number;
  /** A connection silent this long is probed (10 min). */
  idleTimeoutMs?: number;
}

export interface ConnectEvent {
  url: string;
  uaid: string;
}

export type ConnectingEvent = Omit<Extract<ConnectionEvent, { type: 'connecting' }>, 'type'>;
export type DisconnectEvent = Omit<Extract<ConnectionEvent, { type: 'disconnected' }>, 'type'>;

/** The push service no longer knows this user agent: its subscriptions are gone. */
export interface ResetEvent {
  previousUaid: string;
  uaid: string;
  /** Dropped from the state; the application servers holding them will get 404/410. */
  dropped: { channelID: string; endpoint: string }[];
}

export interface MessageErrorEvent {
  channelID: string;
  version: string;
  endpoint?: string;
  /** What the message was acknowledged with: 101 decryption failed, 102 no such subscription. */
  code: 101 | 102;
  error: Error;
}

export interface PushUserAgentEvents {
  message: [message: PushMessage];
  messageError: [event: MessageErrorEvent];
  connecting: [event: ConnectingEvent];
  connect: [event: ConnectEvent];
  disconnect: [event: DisconnectEvent];
  reset: [event: ResetEvent];
  /** A listener threw, or the state could not be written. Only emitted when someone listens. */
  error: [error: Error];
  newListener: [eventName: string | symbol, listener: unknown];
}

/** A 'message' listener threw or rejected: the message was acknowledged anyway and a nack (301) sent. */
export class ListenerError extends Error {
  override name = 'ListenerError';
}

/**
 * Throw (or reject with) this from a 'message' listener that could not take the message (e.g.
 * its output is gone): the message is not acknowledged, and the push service sends it again on
 * the next connection. Delivery goes on with the next message meanwhile. Any other error from a
 * listener counts as handled (acknowledged, like Firefox does when a service worker throws).
 */
export class RetryLater extends Error {
  override name = 'RetryLater';
}

/** True for a base64url (padding allowed) uncompressed P-256 public key, the form VAPID keys take. */
export function isVapidPublicKey(key: string): boolean {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(key)) return false;
  const raw = Buffer.from(key.replace(/=+$/, ''), 'base64url');
  if (raw.length !== 65 || raw[0] !== 4) return false;
  try {
    ECDH.convertKey(raw, 'prime256v1');
    return true;
  } catch {
    return false;
  }
}

function toJSON(s: StoredSubscription): PushSubscriptionJSON {
  return { endpoint: s.endpoint, expirationTime: null, keys: { p256dh: s.keys.p256dh, auth: s.keys.auth } };
}

/** Versions remembered per subscription to recognise a message sent again (Firefox keeps 10). */
const RECENT_VERSIONS = 10;
/** How long close() lets a running listener finish so that its message is acknowledged. */
const CLOSE_GRACE_MS = 1_000;

export class PushUserAgent extends EventEmitter<PushUserAgentEvents> {
  readonly #statePath: string | undefined;
  readonly #log: UaLogger;
  readonly #transport: Transport;
  #state: UaState;
  /** Channels this client unsubscribed: never merged back from the file. */
  readonly #removed = new Set<string>();
  #started = false;
  #closed = false;
  #closing: Promise<void> | null = null;

  /** Received, not yet handled, in order. */
  #queue: IncomingNotification[] = [];
  /** `channelID version` of the queued messages and the one being handled. */
  readonly #inFlight = new Set<string>();
  readonly #recent = new Map<string, { version: string; code: AckCode }[]>();
  /** Acknowledgements made while disconnected: sent when the same session resumes. */
  #unsentAcks: AckUpdate[] = [];
  #pumping = false;
  #current: Promise<void> | null = null;
  readonly #iteratorStops = new Set<() => void>();

  /**
   * Loads (or creates) the state; throws StateError when the file is unreadable or corrupt,
   * or when it is missing and no `server` is given. Add listeners, then connect().
   */
  constructor(options: PushUserAgentOptions) {
    super();
    this.#statePath = options.statePath;
    this.#log = options.log ?? silentLogger;
    if ((options.protocol ?? 'websocket') !== 'websocket') throw new TypeError(`unsupported protocol ${options.protocol}`);
    const server = options.server;
    if (server !== undefined) toWebSocketUrl(server); // throws TypeError for a bad URL
    const stored = this.#statePath ? readState(this.#statePath) : null;
    if (stored) {
      if (server !== undefined && toWebSocketUrl(server) !== toWebSocketUrl(stored.server)) {
        throw new StateError(`state file ${this.#statePath} belongs to ${stored.server}, not ${server}`);
      }
      this.#state = stored;
    } else {
      if (server === undefined) {
        throw new StateError(
          this.#statePath ? `state file ${this.#statePath} does not exist (subscribe first, naming the server)` : 'no server given',
        );
      }
      this.#state = { server, uaid: null, subscriptions: [] };
      // Creating the file now surfaces a bad path at once, not at the first hello.
      if (this.#statePath) writeState(this.#statePath, this.#state);
    }

    const handlers: TransportHandlers = {
      uaid: () => this.#state.uaid,
      session: (uaid) => this.#onSession(uaid),
      notification: (n) => this.#onNotification(n),
      status: (e) => {
        const { type, ...event } = e;
        if (type === 'connecting') this.#emitSafe('connecting', event as ConnectingEvent);
        else this.#emitSafe('disconnect', event as DisconnectEvent);
      },
    };
    this.#transport = new WebSocketTransport(handlers, {
      url: this.#state.server,
      log: this.#log,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.reconnect ? { reconnect: options.reconnect } : {}),
      ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    });
    this.on('newListener', (event) => {
      if (event === 'message') queueMicrotask(() => void this.#pump());
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
    await this.#transport.start(options.retry ?? false);
  }

  /** The push service as named in the state. */
  get server(): string {
    return this.#state.server;
  }

  get uaid(): string | null {
    return this.#state.uaid;
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
    const endpoint = await this.#transport.register(channelID, vapidKey);
    const subscription: StoredSubscription = {
      channelID,
      endpoint,
      ...(vapidKey !== undefined ? { vapidKey } : {}),
      keys: {
        p256dh: keys.publicKey.toString('base64url'),
        auth: keys.auth.toString('base64url'),
        privateKey: keys.privateKey.toString('base64url'),
      },
    };
    this.#state.subscriptions.push(subscription);
    this.#save(true);
    return toJSON(subscription);
  }

  /** Deletes a subscription at the push service and from the state. */
  async unsubscribe(endpointOrChannelId: string): Promise<void> {
    this.#assertUsable();
    const find = () =>
      this.#state.subscriptions.find((s) => s.endpoint === endpointOrChannelId || s.channelID === endpointOrChannelId.toLowerCase());
    let subscription = find();
    if (!subscription) {
      this.#mergeFromDisk();
      subscription = find();
    }
    if (!subscription) throw new Error(`no subscription with endpoint or channelID ${endpointOrChannelId}`);
    await this.#transport.unregister(subscription.channelID);
    const { channelID } = subscription;
    this.#removed.add(channelID);
    this.#state.subscriptions = this.#state.subscriptions.filter((s) => s.channelID !== channelID);
    this.#recent.delete(channelID);
    this.#save(true);
  }

  /**
   * The messages as an async iterator. Each one is acknowledged when the loop asks for the next
   * (so after the loop body ran), or when the loop ends. Ends when the client is closed.
   */
  messages(): AsyncIterableIterator<PushMessage> {
    let handled: (() => void) | null = null;
    let cancelWait: (() => void) | null = null;
    let done = false;
    const release = () => {
      const h = handled;
      handled = null;
      h?.();
    };
    const end = (): IteratorResult<PushMessage> => {
      done = true;
      release();
      cancelWait?.();
      cancelWait = null;
      this.#iteratorStops.delete(stop);
      return { done: true, value: undefined };
    };
    const stop = () => void end();
    this.#iteratorStops.add(stop);
    const iterator: AsyncIterableIterator<PushMessage> = {
      [Symbol.asyncIterator]: () => iterator,
      next: () => {
        release();
        if (done || this.#closed) return Promise.resolve(end());
        return new Promise<IteratorResult<PushMessage>>((resolve) => {
          // Listening only while the loop waits: the dispatcher holds messages meanwhile.
          const listener = (m: PushMessage) =>
            new Promise<void>((r) => {
              handled = r;
              cancelWait = null;
              resolve({ done: false, value: m });
            });
          cancelWait = () => {
            this.off('message', listener);
            resolve({ done: true, value: undefined });
          };
          this.once('message', listener);
        });
      },
      return: () => Promise.resolve(end()),
    };
    return iterator;
  }

  /**
   * Stops: ends the iterators, lets a running listener finish (briefly) so its message is
   * acknowledged, and closes the connection. Messages not yet handled are delivered again on
   * the next connection.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      for (const stop of [...this.#iteratorStops]) stop();
      if (this.#current) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([this.#current, new Promise<void>((r) => (timer = setTimeout(r, CLOSE_GRACE_MS)))]);
        clearTimeout(timer);
      }
      this.#queue = [];
      await this.#transport.close();
    })();
    return this.#closing;
  }

  // --- session ---

  #onSession(uaid: string): void {
    const previous = this.#state.uaid;
    let reset: ResetEvent | null = null;
    if (previous === uaid) {
      const acks = this.#unsentAcks;
      this.#unsentAcks = [];
      this.#transport.ack(acks);
    } else {
      // A new uaid: the push service does not know us (any more). Firefox drops its subscriptions.
      if (previous !== null && this.#state.subscriptions.length > 0) {
        reset = {
          previousUaid: previous,
          uaid,
          dropped: this.#state.subscriptions.map(({ channelID, endpoint }) => ({ channelID, endpoint })),
        };
        for (const s of this.#state.subscriptions) this.#removed.add(s.channelID);
        this.#state.subscriptions = [];
        this.#recent.clear();
        for (const n of this.#queue) this.#inFlight.delete(`${n.channelID} ${n.version}`);
        this.#queue = [];
      }
      this.#unsentAcks = [];
      this.#state.uaid = uaid;
      this.#save(false);
    }
    this.#emitSafe('connect', { url: this.#transport.url, uaid });
    if (reset) {
      this.#log.warn({ previousUaid: reset.previousUaid, uaid, dropped: reset.dropped.length }, 'the push service reset this user agent');
      this.#emitSafe('reset', reset);
    }
  }

  // --- delivery ---

  #onNotification(n: IncomingNotification): void {
    if (this.#closed) return;
    const key = `${n.channelID} ${n.version}`;
    if (this.#inFlight.has(key)) return; // sent again while still being handled: acknowledged when done
    const seen = this.#recent.get(n.channelID)?.find((r) => r.version === n.version);
    if (seen) {
      this.#log.debug({ channelID: n.channelID, version: n.version }, 'message sent again: acknowledged without delivery');
      this.#ack({ channelID: n.channelID, version: n.version, code: seen.code });
      return;
    }
    this.#inFlight.add(key);
    this.#queue.push(n);
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#closed && this.#queue.length > 0 && this.listenerCount('message') > 0) {
        const n = this.#queue.shift()!;
        this.#current = this.#handle(n);
        await this.#current;
        this.#current = null;
      }
    } finally {
      this.#pumping = false;
    }
  }

  async #handle(n: IncomingNotification): Promise<void> {
    let code: AckCode = 100;
    try {
      const subscription = this.#findSubscription(n.channelID);
      if (!subscription) {
        code = 102;
        this.#messageError(n, 102, new Error(`no subscription with channelID ${n.channelID} in the state`));
      } else {
        let message: PushMessage | null = null;
        try {
          message = decodeNotification(n, subscription);
        } catch (err) {
          if (!(err instanceof DecryptionError)) throw err;
          code = 101;
          this.#messageError(n, 101, err, subscription.endpoint);
        }
        if (message) {
          const outcome = await this.#runListeners(message);
          if (outcome === 'retry') {
            this.#inFlight.delete(`${n.channelID} ${n.version}`);
            return;
          }
          if (outcome === 'failed') this.#transport.nack(n.version, 301);
        }
      }
    } catch (err) {
      // Not expected (the decryption module failing in an unforeseen way): never crash the client.
      code = 101;
      this.#messageError(n, 101, err instanceof Error ? err : new Error(String(err)));
    }
    this.#inFlight.delete(`${n.channelID} ${n.version}`);
    this.#noteRecent(n.channelID, n.version, code);
    this.#ack({ channelID: n.channelID, version: n.version, code });
  }

  /** Runs every 'message' listener in turn, awaiting each. */
  async #runListeners(message: PushMessage): Promise<'ok' | 'failed' | 'retry'> {
    let outcome: 'ok' | 'failed' | 'retry' = 'ok';
    for (const listener of this.rawListeners('message')) {
      try {
        await (listener as (m: PushMessage) => unknown).call(this, message);
      } catch (err) {
        if (err instanceof RetryLater) {
          outcome = 'retry';
          continue;
        }
        if (outcome === 'ok') outcome = 'failed';
        this.#reportError(new ListenerError(`a 'message' listener failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      }
    }
    return outcome;
  }

  #messageError(n: IncomingNotification, code: 101 | 102, error: Error, endpoint?: string): void {
    this.#log.warn({ channelID: n.channelID, version: n.version, code, err: error.message }, 'message not delivered');
    this.#emitSafe('messageError', { channelID: n.channelID, version: n.version, ...(endpoint ? { endpoint } : {}), code, error });
  }

  #ack(update: AckUpdate): void {
    if (!this.#transport.ack([update])) this.#unsentAcks.push(update);
  }

  #noteRecent(channelID: string, version: string, code: AckCode): void {
    if (!this.#state.subscriptions.some((s) => s.channelID === channelID)) return;
    const list = this.#recent.get(channelID) ?? [];
    list.unshift({ version, code });
    list.length = Math.min(list.length, RECENT_VERSIONS);
    this.#recent.set(channelID, list);
  }

  // --- state ---

  #findSubscription(channelID: string): StoredSubscription | undefined {
    const find = () => this.#state.subscriptions.find((s) => s.channelID === channelID);
    const found = find();
    if (found) return found;
    // Perhaps another process (`webpushd ua subscribe`) added it to the file meanwhile.
    this.#mergeFromDisk();
    return find();
  }

  /** Takes in subscriptions another process added to the state file for the same uaid. */
  #mergeFromDisk(): void {
    if (!this.#statePath || this.#state.uaid === null) return;
    let disk: UaState | null;
    try {
      disk = readState(this.#statePath);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'cannot re-read the state file');
      return;
    }
    if (!disk || disk.uaid !== this.#state.uaid) return;
    for (const s of disk.subscriptions) {
      if (this.#removed.has(s.channelID) || this.#state.subscriptions.some((m) => m.channelID === s.channelID)) continue;
      this.#state.subscriptions.push(s);
    }
  }

  #save(throwing: boolean): void {
    if (!this.#statePath) return;
    this.#mergeFromDisk();
    try {
      writeState(this.#statePath, this.#state);
    } catch (err) {
      if (throwing) throw err;
      this.#reportError(err as Error);
    }
  }

  #assertUsable(): void {
    if (this.#closed) throw new Error('the client is closed');
    if (!this.#started) throw new Error('not connected: call connect() first');
  }

  // --- events ---

  #reportError(err: Error): void {
    if (this.listenerCount('error') > 0) this.#emitSafe('error', err);
    else this.#log.warn({ err: err.message }, 'push client error');
  }

  /** Emits without letting a throwing listener break the connection handling. */
  #emitSafe<K extends keyof PushUserAgentEvents>(event: K, ...args: PushUserAgentEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: PushUserAgentEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      if (event === 'error') this.#log.warn({ err: (err as Error).message }, "an 'error' listener threw");
      else this.#reportError(new ListenerError(`a '${String(event)}' listener failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
    }
  }
}
