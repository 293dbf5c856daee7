// Sockets cut when their deadline passes, checked by one sweep for all: a timer or a socket
// timeout per connection would leave state behind on every idle connection (~0.2 kB each).
// A socket is dropped from the set once destroyed (no close listener needed).
import type { Duplex } from 'node:stream';

export class SocketDeadlines {
  /** Each socket's deadline (ms since the epoch), or 0 while its clock has not started. */
  readonly #deadlines = new Map<Duplex, number>();
  readonly #timeoutMs: number;
  readonly #startsWhen: ((socket: Duplex) => boolean) | undefined;
  readonly #timer: NodeJS.Timeout;

  /**
   * `timeoutMs`: how long a watched socket may live. `startsWhen`: for sockets watched with
   * their clock stopped, the sweep starts it once this holds.
   */
  constructor(timeoutMs: number, startsWhen?: (socket: Duplex) => boolean) {
    this.#timeoutMs = timeoutMs;
    this.#startsWhen = startsWhen;
    this.#timer = setInterval(() => this.#sweep(), Math.max(50, Math.min(1000, Math.floor(timeoutMs / 4))));
    this.#timer.unref();
  }

  watch(socket: Duplex, started = true): void {
    this.#deadlines.set(socket, started ? Date.now() + this.#timeoutMs : 0);
  }

  forget(socket: Duplex): void {
    this.#deadlines.delete(socket);
  }

  destroyAll(): void {
    for (const socket of this.#deadlines.keys()) socket.destroy();
    this.#deadlines.clear();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [socket, deadline] of this.#deadlines) {
      if (socket.destroyed) this.#deadlines.delete(socket);
      else if (deadline === 0) {
        if (this.#startsWhen?.(socket)) this.#deadlines.set(socket, now + this.#timeoutMs);
      } else if (deadline <= now) {
        this.#deadlines.delete(socket);
        socket.destroy();
      }
    }
  }
}
