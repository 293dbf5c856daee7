// The user agents' door: WebSocket upgrades on any path of the public port (Firefox uses its
// configured dom.push.serverURL as it is), subprotocol push-notification.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { Session, type SessionContext } from './session.ts';

/** Client frames are small; 64 KiB leaves room for a large ack batch. */
const MAX_FRAME = 64 * 1024;

export class UserAgentServer {
  readonly #wss: WebSocketServer;
  readonly #ctx: SessionContext;

  constructor(ctx: SessionContext) {
    this.#ctx = ctx;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME,
      perMessageDeflate: false,
      clientTracking: true,
      handleProtocols: (protocols) => (protocols.has('push-notification') ? 'push-notification' : false),
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => new Session(ws, this.#ctx));
  }

  get clients(): number {
    return this.#wss.clients.size;
  }

  /** Closes every connection with `code` and stops accepting. */
  close(code: number, reason: string): Promise<void> {
    for (const ws of this.#wss.clients) ws.close(code, reason);
    return new Promise((resolve) => this.#wss.close(() => resolve()));
  }
}
