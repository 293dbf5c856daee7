// Messages are handed to the 'message' listeners (or the messages() iterator) one at a time, in
// the order the push service sent them. A message is acknowledged (code 100) after every
// listener returned, or its promise settled (unless one threw RetryLater); one that cannot be
// decrypted is acknowledged with 101 and reported as 'messageError'. Messages that arrive while
// nobody listens are held (not acknowledged) until a listener is added. A message the service
// sends again (because its acknowledgement was lost in a dropped connection) is recognised by its
// version, like Firefox does, and acknowledged again without a second delivery.
import type { EventEmitter } from 'node:events';
import { RetryLater, listenerError, type PushUserAgentEvents, type SafeEmitter } from './events.ts';
import { DecryptionError, decodeNotification, type PushMessage } from './message.ts';
import type { StateKeeper } from './state-keeper.ts';
import type { AckCode, AckUpdate, IncomingNotification, Transport, UaLogger } from './transport.ts';

/** Versions remembered per subscription to recognise a message sent again (Firefox keeps 10). */
const RECENT_VERSIONS = 10;

export interface DeliveryOptions {
  /** Whose 'message' listeners take the messages (called with it as `this`). */
  client: EventEmitter<PushUserAgentEvents>;
  events: SafeEmitter;
  transport: Transport;
  state: StateKeeper;
  log: UaLogger;
  closed(): boolean;
  /** false: handled messages are not acknowledged (they stay at the push service; the application acknowledges them itself). */
  ack?: boolean;
}

export class Delivery {
  readonly #o: DeliveryOptions;
  /** Received, not yet handled, in order. */
  #queue: IncomingNotification[] = [];
  /** `channelID version` of the queued messages and the one being handled. */
  readonly #inFlight = new Set<string>();
  readonly #recent = new Map<string, { version: string; code: AckCode }[]>();
  /** Acknowledgements made while disconnected: sent when the same session resumes. */
  #unsentAcks: AckUpdate[] = [];
  #pumping = false;
  #current: Promise<void> | null = null;

  constructor(o: DeliveryOptions) {
    this.#o = o;
  }

  receive(n: IncomingNotification): void {
    if (this.#o.closed()) return;
    const key = `${n.channelID} ${n.version}`;
    if (this.#inFlight.has(key)) return; // sent again while still being handled: acknowledged when done
    const seen = this.#recent.get(n.channelID)?.find((r) => r.version === n.version);
    if (seen) {
      if (this.#o.ack === false) return; // not acknowledged on purpose: handled once is enough
      this.#o.log.debug({ channelID: n.channelID, version: n.version }, 'message sent again: acknowledged without delivery');
      this.#ack({ channelID: n.channelID, version: n.version, code: seen.code });
      return;
    }
    this.#inFlight.add(key);
    this.#queue.push(n);
    void this.pump();
  }

  /** Delivers the queued messages while someone listens. */
  async pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#o.closed() && this.#queue.length > 0 && this.#o.client.listenerCount('message') > 0) {
        const n = this.#queue.shift()!;
        this.#current = this.#handle(n);
        await this.#current;
        this.#current = null;
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** A session began: the acknowledgements made meanwhile are sent if it resumes the last one, else dropped. */
  sessionStarted(resumed: boolean): void {
    const acks = this.#unsentAcks;
    this.#unsentAcks = [];
    if (resumed) this.#o.transport.ack(acks);
  }

  /** Forgets the queued messages and remembered versions of these subscriptions (null: all): they are gone. */
  forget(channelIDs: ReadonlySet<string> | null): void {
    const matches = (channelID: string) => channelIDs === null || channelIDs.has(channelID);
    for (const channelID of [...this.#recent.keys()]) if (matches(channelID)) this.#recent.delete(channelID);
    for (const n of this.#queue) if (matches(n.channelID)) this.#inFlight.delete(`${n.channelID} ${n.version}`);
    this.#queue = this.#queue.filter((n) => !matches(n.channelID));
  }

  /** Forgets the versions remembered for a subscription (unsubscribed). */
  forgetVersions(channelID: string): void {
    this.#recent.delete(channelID);
  }

  /**
   * For close(): drops the queue (unacknowledged, those messages come again on the next
   * connection) and lets the message being handled finish, for at most `graceMs`, so that it is
   * acknowledged. Undefined when none is.
   */
  stop(graceMs: number): Promise<void> | undefined {
    this.#queue = [];
    const current = this.#current;
    if (!current) return undefined;
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([current, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]).then(() => clearTimeout(timer));
  }

  async #handle(n: IncomingNotification): Promise<void> {
    let code: AckCode = 100;
    try {
      const subscription = this.#o.state.find((s) => s.channelID === n.channelID);
      if (!subscription) {
        code = 102;
        const which = n.channelID === '' && n.endpoint ? `endpoint ${n.endpoint}` : `channelID ${n.channelID}`;
        this.#messageError(n, 102, new Error(`no subscription with ${which} in the state`), n.endpoint);
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
          if (outcome === 'failed') this.#o.transport.nack(n.version, 301);
        }
      }
    } catch (err) {
      // Not expected (the decryption module failing in an unforeseen way): never crash the client.
      code = 101;
      this.#messageError(n, 101, err instanceof Error ? err : new Error(String(err)));
    }
    this.#inFlight.delete(`${n.channelID} ${n.version}`);
    this.#noteRecent(n.channelID, n.version, code);
    if (code !== 100 || this.#o.ack !== false) this.#ack({ channelID: n.channelID, version: n.version, code });
  }

  /** Resolves once every message received so far was handled (and its acknowledgement sent). */
  async idle(): Promise<void> {
    while (!this.#o.closed() && (this.#queue.length > 0 || this.#pumping)) {
      await (this.#current ?? new Promise<void>((resolve) => setImmediate(resolve)));
    }
  }

  /** Runs every 'message' listener in turn, awaiting each. */
  async #runListeners(message: PushMessage): Promise<'ok' | 'failed' | 'retry'> {
    let outcome: 'ok' | 'failed' | 'retry' = 'ok';
    for (const listener of this.#o.client.rawListeners('message')) {
      try {
        await (listener as (m: PushMessage) => unknown).call(this.#o.client, message);
      } catch (err) {
        if (err instanceof RetryLater) {
          outcome = 'retry';
          continue;
        }
        if (outcome === 'ok') outcome = 'failed';
        this.#o.events.reportError(listenerError('message', err));
      }
    }
    return outcome;
  }

  #messageError(n: IncomingNotification, code: 101 | 102, error: Error, endpoint?: string): void {
    this.#o.log.warn({ channelID: n.channelID, version: n.version, code, err: error.message }, 'message not delivered');
    this.#o.events.emit('messageError', { channelID: n.channelID, version: n.version, ...(endpoint ? { endpoint } : {}), code, error });
  }

  #ack(update: AckUpdate): void {
    if (!this.#o.transport.ack([update])) this.#unsentAcks.push(update);
  }

  #noteRecent(channelID: string, version: string, code: AckCode): void {
    if (!this.#o.state.has(channelID)) return;
    const list = this.#recent.get(channelID) ?? [];
    list.unshift({ version, code });
    list.length = Math.min(list.length, RECENT_VERSIONS);
    this.#recent.set(channelID, list);
  }
}
