// A plain WebSocket user agent for protocol tests: send frames, await frames and the close.
import WebSocket from 'ws';

export interface Closed {
  code: number;
  reason: string;
}

export class TestUserAgent {
  readonly ws: WebSocket;
  readonly closed: Promise<Closed>;
  readonly #inbox: Record<string, unknown>[] = [];
  #waiter: (() => void) | null = null;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.#waiter?.();
      }),
    );
    ws.on('message', (data) => {
      this.#inbox.push(JSON.parse(data.toString()) as Record<string, unknown>);
      this.#waiter?.();
    });
    ws.on('error', () => {});
  }

  /** `options` go to the `ws` client, e.g. `{ ca }` to trust a test certificate for wss. */
  static async connect(
    url: string,
    protocol: string | undefined = 'push-notification',
    options: WebSocket.ClientOptions = {},
  ): Promise<TestUserAgent> {
    const ws = new WebSocket(url, protocol ? [protocol] : [], options);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new TestUserAgent(ws);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame (optionally of one messageType), waiting up to `ms`. */
  async next(messageType?: string, ms = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.#inbox.findIndex((m) => messageType === undefined || m.messageType === messageType);
      if (i >= 0) return this.#inbox.splice(i, 1)[0]!;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`connection closed while waiting for ${messageType ?? 'a frame'}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${messageType ?? 'frame'} within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Frames received and not yet taken by next(). */
  pending(): Record<string, unknown>[] {
    return [...this.#inbox];
  }

  async hello(uaid?: string): Promise<string> {
    this.send({ messageType: 'hello', use_webpush: true, broadcasts: {}, ...(uaid ? { uaid } : {}) });
    return (await this.next('hello')).uaid as string;
  }

  async register(channelID: string, key?: string): Promise<Record<string, unknown>> {
    this.send({ messageType: 'register', channelID, ...(key ? { key } : {}) });
    return this.next('register');
  }

  ack(channelID: string, version: string, code = 100): void {
    this.send({ messageType: 'ack', updates: [{ channelID, version, code }] });
  }

  close(): Promise<Closed> {
    this.ws.close();
    return this.closed;
  }
}
