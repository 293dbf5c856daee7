// The user agents' door: WebSocket upgrades on any path of the public port (Firefox uses its
// configured dom.push.serverURL as it is), subprotocol push-notification.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { ConnectionLimiter } from '../limits/connection-limiter.ts';
import { Session, type SessionContext } from './session.ts';

/** Client frames are small; 64 KiB leaves room for a large ack batch. */
const MAX_FRAME = 64 * 1024;

export class UserAgentServer {
  readonly #wss: WebSocketServer;
  readonly #ctx: SessionContext;
  readonly #limiter: ConnectionLimiter | undefined;
  readonly #clientAddress: (req: IncomingMessage) => string | undefined;

  /**
   * `limiter`: connections per client address; one too many is answered 429 before the upgrade.
   * `clientAddress`: the address it counts (default: the peer's).
   */
  constructor(ctx: SessionContext, limiter?: ConnectionLimiter, clientAddress = (req: IncomingMessage) => req.socket.remoteAddress) {
    this.#ctx = ctx;
    this.#limiter = limiter;
    this.#clientAddress = clientAddress;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME,
      perMessageDeflate: false,
      clientTracking: true,
      handleProtocols: (protocols) => (protocols.has('push-notification') ? 'push-notification' : false),
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const limiter = this.#limiter;
    const address = this.#clientAddress(req);
    if (limiter) {
      if (!limiter.acquire(address)) {
        this.#ctx.log.warn({ address, max: limiter.max }, 'WebSocket refused: too many connections from this address');
        socket.end('HTTP/1.1 429 Too Many Requests\r\nRetry-After: 60\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        socket.once('finish', () => socket.destroy());
        return;
      }
      // exempt and unlimited addresses need no listener: idle connections stay small
      if (limiter.counts(address)) socket.once('close', () => limiter.release(address));
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => new Session(ws, this.#ctx, socket, address));
  }

  get clients(): number {
    return this.#wss.clients.size;
  }

  /** Closes every connection with `code` and stops accepting; resolves once all have closed. */
  close(code: number, reason: string): Promise<void> {
    for (const ws of this.#wss.clients) ws.close(code, reason);
    return new Promise((resolve) => this.#wss.close(() => resolve()));
  }

  /** Cuts the connections still open (their clients did not finish the closing handshake). */
  terminate(): void {
    for (const ws of this.#wss.clients) ws.terminate();
  }
}
