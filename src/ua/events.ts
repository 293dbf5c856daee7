// The events a PushUserAgent emits, and emitting them so that a throwing listener cannot break
// the connection handling.
import type { EventEmitter } from 'node:events';
import type { PushMessage } from './message.ts';
import type { ConnectionEvent, UaLogger } from './transport.ts';

export interface ConnectEvent {
  url: string;
  /** null over RFC 8030 (it has no user-agent ID). */
  uaid: string | null;
}

export type ConnectingEvent = Omit<Extract<ConnectionEvent, { type: 'connecting' }>, 'type'>;
export type DisconnectEvent = Omit<Extract<ConnectionEvent, { type: 'disconnected' }>, 'type'>;

/**
 * The push service no longer knows this user agent (WebSocket: it answered hello with another
 * uaid), or some of its subscriptions (RFC 8030: the GET on their set or subscription ended with
 * 404): those subscriptions are gone.
 */
export interface ResetEvent {
  /** WebSocket; null over RFC 8030. */
  previousUaid: string | null;
  /** WebSocket; null over RFC 8030. */
  uaid: string | null;
  /** Dropped from the state; the application servers holding them will get 404/410. */
  dropped: { channelID: string; endpoint: string }[];
  /** RFC 8030: what told (e.g. "the subscription set answered 404"). */
  reason?: string;
}

export interface MessageErrorEvent {
  /** '' when the push service named a subscription the state does not have (code 102). */
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
  /** `nowait` (RFC 8030): every GET was answered and every message it brought was handled; close() now. */
  drained: [];
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

/** The ListenerError for a listener of `event` that threw `err`. */
export function listenerError(event: string, err: unknown): ListenerError {
  return new ListenerError(`a '${event}' listener failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

export class SafeEmitter {
  readonly #emitter: EventEmitter<PushUserAgentEvents>;
  readonly #log: UaLogger;

  constructor(emitter: EventEmitter<PushUserAgentEvents>, log: UaLogger) {
    this.#emitter = emitter;
    this.#log = log;
  }

  /** Emits; a listener that throws is reported, not passed on. */
  emit<K extends keyof PushUserAgentEvents>(event: K, ...args: PushUserAgentEvents[K]): void {
    const emitter = this.#emitter;
    try {
      (emitter.emit as (event: K, ...args: PushUserAgentEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      if (event === 'error') this.#log.warn({ err: (err as Error).message }, "an 'error' listener threw");
      else this.reportError(listenerError(String(event), err));
    }
  }

  /** To the 'error' listeners; to the log when there are none (an unheard 'error' event would throw). */
  reportError(err: Error): void {
    if (this.#emitter.listenerCount('error') > 0) this.emit('error', err);
    else this.#log.warn({ err: err.message }, 'push client error');
  }
}
