// Keep-alive HTTP/1.1 connections, so shutdown can end the idle ones at once and the busy ones
// after their response. (A server that did not listen itself, like the one behind the
// cleartext front, cannot do this with closeIdleConnections().) Upgraded connections (WebSocket)
// leave the tracker: the user-agent server closes them with a close frame.
import type { Duplex } from 'node:stream';
import type { AnyRequest, AnyResponse } from './listener.ts';

export class Http1Connections {
  /** Requests in flight per connection. */
  readonly #inFlight = new Map<Duplex, number>();
  #closing = false;

  add(socket: Duplex): void {
    this.#inFlight.set(socket, 0);
    socket.once('close', this.#onClose);
  }

  /** One listener shared by every socket (`this` is the socket), not a closure per connection. */
  readonly #onClose = ((inFlight: Map<Duplex, number>) =>
    function (this: Duplex) {
      inFlight.delete(this);
    })(this.#inFlight);

  request(req: AnyRequest, res: AnyResponse & { once(event: 'close', fn: () => void): unknown }): void {
    const socket = req.socket as Duplex;
    const count = this.#inFlight.get(socket);
    if (count === undefined) return;
    this.#inFlight.set(socket, count + 1);
    if (this.#closing) res.setHeader('connection', 'close');
    res.once('close', () => {
      const left = (this.#inFlight.get(socket) ?? 1) - 1;
      this.#inFlight.set(socket, left);
      if (this.#closing && left === 0) socket.destroy();
    });
  }

  upgraded(socket: Duplex): void {
    this.#inFlight.delete(socket);
    socket.off('close', this.#onClose);
  }

  /** Ends idle connections now and busy ones when their last response is done. */
  closeAll(): void {
    this.#closing = true;
    for (const [socket, count] of this.#inFlight) if (count === 0) socket.destroy();
  }

  /** Cuts every connection, busy or not. */
  destroyAll(): void {
    for (const socket of this.#inFlight.keys()) socket.destroy();
  }
}
