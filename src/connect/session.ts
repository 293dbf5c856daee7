// One user agent's WebSocket connection as an explicit state machine:
// unidentified (waiting for hello) -> identified (registered with the router) -> closed.
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { DeadlineWheel, HasDeadline } from '../common/deadline-wheel.ts';
import { formatChannelId, formatUaid, newUaid, parseUaid } from '../common/ids.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Connection, Delivery, Router } from '../router/router.ts';
import { StoreUnavailable } from '../store/errors.ts';
import type { Store } from '../store/types.ts';
import type { Pipeline } from '../core/pipeline.ts';
import { publicKeyHash } from '../vapid/verify.ts';
import type { BroadcastListener, BroadcastTable, Versions } from './broadcasts.ts';
import {
  Close,
  PING_REPLY,
  closeReason,
  ProtocolViolation,
  helloReply,
  notificationMessage,
  parseClientMessage,
  registerReply,
  unregisterReply,
  broadcastMessage,
  type ClientMessage,
} from './protocol.ts';

export interface SessionSettings {
  handshakeTimeoutMs: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  /** Two client pings closer than this close the connection (autopush: 45 s). */
  minClientPingIntervalMs: number;
  /** Stored messages sent at once; the next batch goes when all are acknowledged. */
  batchSize: number;
  /** Bytes sent and not yet taken by the user agent beyond which live delivery and reading pause. */
  maxBufferedBytes: number;
  /** Frames waiting to be handled beyond which the connection is no longer read. */
  maxPendingFrames: number;
}

export interface SessionContext {
  store: Store;
  pipeline: Pipeline;
  router: Router;
  wheel: DeadlineWheel<Session>;
  broadcasts: BroadcastTable;
  settings: SessionSettings;
  log: Logger;
  /** Counts deliveries (and their latency from accept); optional. */
  metrics?: Metrics | null;
  /** The push endpoint URL for a new registration. */
  endpointUrl(uaid: Buffer, chid: Buffer, keyHash: Buffer | null): string;
  /** Whether the client address may create one more subscription now (the registration rate). */
  admitRegistration?(address: string | undefined): boolean;
}

type State = 'unidentified' | 'identified' | 'closed';

/**
 * The `version` a user agent acknowledges: a stored message's id in base 36. Ephemeral ones
 * (id <= 0) get a form outside base 36 (`e-…`): a bare `e…` is also the version of a stored id
 * (`e1` = 505), so acking the ephemeral message would delete that stored one. Their counter
 * restarts with the process, so a per-process prefix keeps a new one from repeating a version
 * the user agent saw before a restart (Firefox drops repeated versions).
 */
const EPHEMERAL_PREFIX = `e-${randomBytes(4).toString('hex')}-`;
const versionOf = (id: number): string => (id > 0 ? id.toString(36) : EPHEMERAL_PREFIX + (-id).toString(36));
const idOfVersion = (version: string): number => (/^[0-9a-z]{1,11}$/.test(version) ? parseInt(version, 36) : 0);

/** The session of a socket, for the listeners every connection shares (`this` is the socket). */
const SESSION = Symbol('session');
type SessionSocket = WebSocket & { [SESSION]: Session };
const sessionOf = (ws: WebSocket): Session => (ws as SessionSocket)[SESSION];

/** Where a connection's frame queue starts when it holds no frame (an idle one holds no promise). */
const IDLE: Promise<void> = Promise.resolve();

/** The write's result, or null when the store cannot write now (the request is answered 503, the connection goes on). */
async function unlessUnavailable<T>(write: Promise<T>): Promise<T | null> {
  try {
    return await write;
  } catch (err) {
    if (err instanceof StoreUnavailable) return null;
    throw err;
  }
}

export class Session implements Connection, HasDeadline, BroadcastListener {
  deadline = 0;
  deadlineTick = 0;
  readonly #ws: WebSocket;
  readonly #ctx: SessionContext;
  #state: State = 'unidentified';
  #uaid: Buffer | null = null;
  #awaitingPong = false;
  #lastClientPing = 0;
  /** Highest stored message id sent on this connection. */
  #lastSentId = 0;
  /** A read of stored messages is under way; something it may have missed asks for another. */
  #reading = false;
  #readAgain = false;
  /** While stored messages are being caught up: the ids of the batch not yet acknowledged. */
  #unackedBatch: Set<number> | null = new Set();
  /** Frames are handled one at a time, in order, even when one waits for the store; null when none is. */
  #queue: Promise<void> | null = null;
  /** Frames received and not yet handled: past the limit the socket is paused (TCP back-pressure). */
  #pendingFrames = 0;
  #paused = false;
  /** Waiting for the socket to take what was written (the user agent is not reading). */
  #waitingForDrain = false;
  readonly #socket: Duplex;
  readonly #address: string | undefined;
  /** The broadcast ids this user agent subscribed to (it hears of their changes). */
  #broadcastIds: Set<string> | null = null;

  /** `socket`: the connection under `ws` (its 'drain' says the user agent read); `address`: the client's. */
  constructor(ws: WebSocket, ctx: SessionContext, socket: Duplex, address?: string) {
    this.#ws = ws;
    this.#ctx = ctx;
    this.#socket = socket;
    this.#address = address;
    ctx.wheel.schedule(this, Date.now() + ctx.settings.handshakeTimeoutMs);
    (ws as SessionSocket)[SESSION] = this;
    const on = Session.#listeners;
    ws.on('message', on.message);
    ws.on('pong', on.pong);
    ws.on('close', on.close);
    ws.on('error', on.error);
  }

  /** One set of listeners for every connection: closures of its own cost an idle connection ~0.3 kB. */
  static readonly #listeners = {
    message(this: WebSocket, data: RawData, isBinary: boolean): void {
      sessionOf(this).#received(data as Buffer, isBinary);
    },
    pong(this: WebSocket): void {
      sessionOf(this).#onPong();
    },
    close(this: WebSocket, code: number): void {
      const session = sessionOf(this);
      session.#ctx.log.debug({ code, identified: session.#uaid !== null }, 'user agent connection closed');
      session.#onClosed();
    },
    error(this: WebSocket, err: Error): void {
      sessionOf(this).#ctx.log.debug({ err: err.message }, 'websocket error');
    },
  };

  #received(data: Buffer, isBinary: boolean): void {
    if (isBinary) return this.close(Close.unsupportedData, 'binary frames are not supported');
    const text = data.toString('utf8');
    if (++this.#pendingFrames >= this.#ctx.settings.maxPendingFrames) this.#pause();
    // the chain's end is caught: a failure ends this connection, never the process
    this.#queue = (this.#queue ?? IDLE)
      .then(() => this.#onText(text))
      .catch((err: unknown) => this.#failed(err))
      .then(() => this.#frameDone());
  }

  get uaid(): Buffer | null {
    return this.#uaid;
  }

  /** Never throws: a reason too long for a close frame is cut, a socket that cannot close is cut off. */
  close(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#ctx.log.debug({ code, reason }, 'closing user agent connection');
    this.#onClosed();
    try {
      this.#ws.close(code, closeReason(reason));
    } catch (err) {
      this.#ctx.log.warn({ err: (err as Error).message, code }, 'closing a user agent connection failed: terminating it');
      this.#ws.terminate();
    }
  }

  /** A frame's handling failed: logged once, and only this connection ends. */
  #failed(err: unknown): void {
    if (err instanceof StoreUnavailable) {
      this.#ctx.log.warn({ err: err.message }, 'user agent message failed: store unavailable');
      return this.close(Close.tryAgainLater, 'store unavailable, try again later');
    }
    this.#ctx.log.error({ err }, 'user agent message failed');
    this.close(Close.serverError, 'internal error');
  }

  onDeadline(now: number): void {
    if (this.#state === 'unidentified') return this.close(Close.protocolError, 'no hello in time');
    if (this.#awaitingPong) {
      this.#ws.terminate();
      return this.#onClosed();
    }
    this.#awaitingPong = true;
    this.#ws.ping();
    this.#ctx.wheel.schedule(this, now + this.#ctx.settings.pongTimeoutMs);
  }

  replacedByNewer(): void {
    this.close(Close.backoff, 'another connection took over this uaid');
  }

  deliver(m: Delivery): boolean {
    if (this.#state !== 'identified') return false;
    if (m.id <= 0) {
      // TTL 0 is "now or never": a user agent that does not read gets never
      if (this.#backlogged()) {
        this.#ctx.metrics?.limited('slow-reader');
        return false;
      }
      this.#send(m);
      return true;
    }
    // While catching up, the store hands out messages in order; later ones wait their batch.
    if (m.id <= this.#lastSentId) return true;
    if (this.#unackedBatch) {
      if (this.#reading) this.#readAgain = true;
      return true;
    }
    if (this.#backlogged()) {
      // it stays stored: once the user agent has read what it was sent, the store sends it
      this.#ctx.metrics?.limited('slow-reader');
      this.#unackedBatch = new Set();
      this.#awaitDrain();
      return true;
    }
    this.#lastSentId = m.id;
    this.#send(m);
    return true;
  }

  #backlogged(): boolean {
    return this.#ws.bufferedAmount > this.#ctx.settings.maxBufferedBytes;
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#ws.pause();
  }

  /** Reads frames again once few are pending and the user agent takes what it is sent. */
  #resumeIfClear(): void {
    if (!this.#paused || this.#state === 'closed') return;
    if (this.#pendingFrames >= this.#ctx.settings.maxPendingFrames || this.#backlogged()) return;
    this.#paused = false;
    this.#ws.resume();
  }

  #frameDone(): void {
    // the last frame queued is done: the queue starts again from IDLE
    if (--this.#pendingFrames === 0) this.#queue = null;
    // replies nobody reads must not pile up either: no more frames until they are taken
    if (this.#backlogged()) {
      this.#pause();
      this.#awaitDrain();
    } else this.#resumeIfClear();
  }

  #awaitDrain(): void {
    if (this.#waitingForDrain) return;
    this.#waitingForDrain = true;
    this.#socket.once('drain', () => this.#drained());
  }

  #drained(): void {
    this.#waitingForDrain = false;
    if (this.#state === 'closed') return;
    if (this.#backlogged()) return this.#awaitDrain();
    this.#resumeIfClear();
    // live delivery stopped with nothing outstanding: go on from the store
    if (this.#unackedBatch?.size === 0) this.#sendNextBatch().catch((err: unknown) => this.#failed(err));
  }

  #send(m: Delivery): void {
    this.#ws.send(notificationMessage(formatChannelId(m.chid), versionOf(m.id), m.body, m.headers));
    this.#ctx.metrics?.delivered('websocket', m.createdAt);
  }

  #onPong(): void {
    // an unsolicited Pong (RFC 6455 5.5.3 allows them) changes nothing
    if (!this.#awaitingPong) return;
    this.#awaitingPong = false;
    if (this.#state === 'identified') this.#ctx.wheel.schedule(this, Date.now() + this.#ctx.settings.pingIntervalMs);
  }

  #onClosed(): void {
    if (this.#state === 'closed') return;
    if (this.#uaid) this.#ctx.router.detach(this.#uaid, this);
    this.#state = 'closed';
    this.#ctx.wheel.cancel(this);
    if (this.#broadcastIds) this.#ctx.broadcasts.unlisten(this, this.#broadcastIds);
  }

  broadcastsChanged(changes: Versions): void {
    if (this.#state === 'identified') this.#reply(broadcastMessage(changes));
  }

  /** Replies what differs (and the unknown ids), and listens to the known ones from now on. */
  #subscribeBroadcasts(client: Versions): Record<string, unknown> {
    const table = this.#ctx.broadcasts;
    const fresh = Object.keys(client).filter((id) => !this.#broadcastIds?.has(id));
    for (const id of table.listen(this, fresh)) (this.#broadcastIds ??= new Set()).add(id);
    return table.subscribe(client);
  }

  async #onText(text: string): Promise<void> {
    if (this.#state === 'closed') return;
    let msg: ClientMessage;
    try {
      msg = parseClientMessage(text);
      if ((msg.messageType === 'hello') !== (this.#state === 'unidentified')) {
        throw new ProtocolViolation(this.#state === 'unidentified' ? 'hello must come first' : 'hello was already sent');
      }
    } catch (err) {
      if (!(err instanceof ProtocolViolation)) throw err;
      return this.close(Close.protocolError, err.message);
    }
    await this.#handle(msg);
  }

  async #handle(msg: ClientMessage): Promise<void> {
    switch (msg.messageType) {
      case 'hello':
        return this.#hello(msg.uaid, msg.broadcasts);
      case 'register':
        return this.#register(msg.channelID, msg.chid, msg.key);
      case 'unregister': {
        // unregistering an unknown channel is fine (200) too
        const removed = await unlessUnavailable(this.#ctx.pipeline.unsubscribe(this.#uaid!, msg.chid));
        return this.#reply(unregisterReply(msg.channelID, removed === null ? 503 : 200));
      }
      case 'ack':
        return this.#ack(msg.updates);
      case 'nack':
        this.#ctx.log.info({ code: msg.code }, 'user agent could not deliver a message');
        return;
      case 'broadcast_subscribe': {
        const reply = this.#subscribeBroadcasts(msg.broadcasts);
        if (Object.keys(reply).length > 0) this.#reply(broadcastMessage(reply));
        return;
      }
      case 'ping':
        return this.#ping();
    }
  }

  async #hello(requested: unknown, broadcasts: Record<string, string>): Promise<void> {
    const known = parseUaid(requested);
    const stored = known !== null && (await this.#ctx.store.hasUserAgent(known));
    const uaid = stored ? known : newUaid();
    if (this.#state !== 'unidentified') return;
    this.#uaid = uaid;
    this.#state = 'identified';
    this.#ctx.router.attach(uaid, this);
    this.#ctx.wheel.schedule(this, Date.now() + this.#ctx.settings.pingIntervalMs);
    this.#reply(helloReply(formatUaid(uaid), this.#subscribeBroadcasts(broadcasts)));
    // a new uaid has no push URL yet, so nothing stored to catch up on: live at once, no read
    if (!stored) this.#unackedBatch = null;
    else await this.#sendNextBatch();
  }

  async #register(channelID: string, chid: Buffer, key: string | undefined): Promise<void> {
    if (this.#ctx.admitRegistration && !this.#ctx.admitRegistration(this.#address)) {
      return this.#reply(registerReply(channelID, 429));
    }
    let keyHash: Buffer | null = null;
    if (key !== undefined) {
      try {
        keyHash = publicKeyHash(key);
      } catch {
        return this.#reply(registerReply(channelID, 400));
      }
    }
    const uaid = this.#uaid!;
    const stored = await unlessUnavailable(this.#ctx.store.putSubscription({ uaid, chid, keyHash }));
    if (stored === null) return this.#reply(registerReply(channelID, 503));
    if (!stored) {
      // the user agent holds as many subscriptions as it may
      this.#ctx.metrics?.limited('channels');
      return this.#reply(registerReply(channelID, 429));
    }
    this.#reply(registerReply(channelID, 200, this.#ctx.endpointUrl(uaid, chid, keyHash)));
  }

  async #ack(updates: { chid: Buffer; version: string }[]): Promise<void> {
    const uaid = this.#uaid!;
    const removals: Promise<unknown>[] = [];
    for (const u of updates) {
      const id = idOfVersion(u.version);
      if (id <= 0) continue;
      // a failed delete leaves the message stored: it is sent again on the next connection
      removals.push(
        this.#ctx.pipeline.remove(uaid, u.chid, id).catch((err: unknown) => {
          this.#ctx.log.warn({ err: (err as Error).message }, 'acknowledgement not stored: the message stays and comes again');
        }),
      );
      this.#unackedBatch?.delete(id);
    }
    if (this.#unackedBatch?.size === 0) {
      await Promise.all(removals);
      await this.#sendNextBatch();
    }
  }

  /** Sends the next stored messages, or switches to live delivery when none are left. */
  async #sendNextBatch(): Promise<void> {
    // one read at a time; a second caller makes the running one read again
    if (this.#reading) {
      this.#readAgain = true;
      return;
    }
    this.#reading = true;
    try {
      for (;;) {
        const batch = this.#unackedBatch;
        if (!batch || this.#state !== 'identified') return;
        this.#readAgain = false;
        const { batchSize } = this.#ctx.settings;
        const messages = await this.#ctx.store.pendingMessages(this.#uaid!, this.#lastSentId, batchSize);
        for (const m of messages) {
          batch.add(m.id);
          this.#lastSentId = m.id;
          this.#send(m);
        }
        if (messages.length === batchSize) return; // the next batch once this one is acknowledged
        // A short batch held every stored message, unless one was committed while the store
        // was read (an asynchronous store): read again, then later ones go out live, in order.
        if (!this.#readAgain) {
          this.#unackedBatch = null;
          return;
        }
      }
    } finally {
      this.#reading = false;
    }
  }

  #ping(): void {
    const now = Date.now();
    if (now - this.#lastClientPing < this.#ctx.settings.minClientPingIntervalMs) {
      return this.close(Close.backoff, 'too many pings');
    }
    this.#lastClientPing = now;
    this.#reply(PING_REPLY);
  }

  #reply(text: string): void {
    if (this.#state !== 'closed') this.#ws.send(text);
  }
}
