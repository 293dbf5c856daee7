// The sockets under HTTP/2 sessions. A session closed gracefully (GOAWAY: idle, silent, or at
// shutdown) ends its socket's writable side and then waits for the peer to hang up, even once
// destroyed: a peer that never does would hold the socket for ever. A sweep cuts the sockets
// left half-closed longer than the linger time; destroyAll() ends a shutdown's grace.
import type { Duplex } from 'node:stream';

export class Http2Sockets {
  /** Each socket, and since when its writable side has been ended (0: not yet seen ended). */
  readonly #sockets = new Map<Duplex, number>();
  readonly #lingerMs: number;
  readonly #timer: NodeJS.Timeout;

  constructor(lingerMs: number) {
    this.#lingerMs = lingerMs;
    this.#timer = setInterval(() => this.#sweep(), Math.max(50, Math.min(1000, Math.floor(lingerMs / 4))));
    this.#timer.unref();
  }

  add(socket: Duplex): void {
    this.#sockets.set(socket, 0);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  destroyAll(): void {
    for (const socket of this.#sockets.keys()) socket.destroy();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [socket, endedAt] of this.#sockets) {
      if (!socket.writableEnded) continue;
      if (endedAt === 0) this.#sockets.set(socket, now);
      else if (now - endedAt >= this.#lingerMs) socket.destroy();
    }
  }
}
