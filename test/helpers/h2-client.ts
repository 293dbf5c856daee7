// A small RFC 8030 client over node:http2 for the tests: subscribe, monitor (collecting the
// server pushes in promise order), acknowledge, send. Pushes carry no parent stream id in
// Node's API, so a client collects every push of its session: open one monitor per client.
import http2 from 'node:http2';

export interface H2Response {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

export interface Pushed {
  /** The promised request's `:path`, and the whole promised request. */
  path: string;
  request: http2.IncomingHttpHeaders;
  /** `:scheme://:authority:path` of the promised request. */
  url: string;
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

export interface Subscription {
  /** The subscription (Location). */
  url: string;
  /** The push URL (Link rel="urn:ietf:params:push"). */
  push: string;
  /** The set (Link rel="urn:ietf:params:push:set"). */
  set: string;
  response: H2Response;
}

export const REL_PUSH = 'urn:ietf:params:push';
export const REL_SET = 'urn:ietf:params:push:set';
export const REL_RECEIPT = 'urn:ietf:params:push:receipt';

/** Link header field(s) -> rel -> target (a deliberately independent little parser). */
export function links(value: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of value === undefined ? [] : Array.isArray(value) ? value : [value]) {
    for (const m of v.matchAll(/<([^>]*)>\s*;\s*rel="?([^",;]+)"?/g)) out.set(m[2]!, m[1]!);
  }
  return out;
}

export class H2Client {
  readonly session: http2.ClientHttp2Session;
  readonly #pushes: Promise<Pushed>[] = [];
  #read = 0;
  #arrived: (() => void) | null = null;

  private constructor(session: http2.ClientHttp2Session) {
    this.session = session;
    session.on('error', () => {});
    session.on('stream', (stream, request) => {
      const pushed = new Promise<Pushed>((resolve, reject) => {
        let head: http2.IncomingHttpHeaders | null = null;
        const chunks: Buffer[] = [];
        stream.on('push', (headers) => (head = headers));
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if (!head) return reject(new Error(`push of ${String(request[':path'])} ended without a response`));
          const path = String(request[':path']);
          resolve({
            path,
            request,
            url: `${String(request[':scheme'])}://${String(request[':authority'])}${path}`,
            status: Number(head[':status']),
            headers: head,
            body: Buffer.concat(chunks),
          });
        });
        stream.on('error', reject);
      });
      pushed.catch(() => {});
      this.#pushes.push(pushed);
      this.#arrived?.();
    });
  }

  /** `origin`: http://host:port (h2c by prior knowledge) or https://… (ALPN h2; pass `ca`). */
  static async connect(origin: string, options: http2.SecureClientSessionOptions = {}): Promise<H2Client> {
    const session = http2.connect(origin, options);
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
    return new H2Client(session);
  }

  /** One request; `url` absolute (its path is used) or a path. */
  request(method: string, url: string, o: { headers?: http2.OutgoingHttpHeaders; body?: Buffer | string } = {}): Promise<H2Response> {
    const path = url.startsWith('/') ? url : new URL(url).pathname;
    return new Promise((resolve, reject) => {
      const req = this.session.request({ ':method': method, ':path': path, ...o.headers });
      let head: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      req.on('response', (h) => (head = h));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }));
      req.on('error', reject);
      req.end(o.body);
    });
  }

  /** POST /subscribe; `set`: join that set; `vapid`: a restricted subscription. */
  async subscribe(o: { set?: string; vapid?: string } = {}): Promise<Subscription> {
    const headers: http2.OutgoingHttpHeaders = {};
    if (o.set) headers.link = `<${o.set}>; rel="${REL_SET}"`;
    let body: string | undefined;
    if (o.vapid) {
      headers['content-type'] = 'application/webpush-options+json';
      body = JSON.stringify({ vapid: o.vapid });
    }
    const response = await this.request('POST', '/subscribe', { headers, ...(body ? { body } : {}) });
    if (response.status !== 201) throw new Error(`subscribe: ${response.status} ${response.body.toString()}`);
    const l = links(response.headers.link);
    return { url: String(response.headers.location), push: l.get(REL_PUSH)!, set: l.get(REL_SET)!, response };
  }

  /** POST to a push URL: TTL 60 and, with a body, Content-Encoding aes128gcm unless overridden. */
  send(pushUrl: string, o: { body?: Buffer; headers?: http2.OutgoingHttpHeaders } = {}): Promise<H2Response> {
    const headers: http2.OutgoingHttpHeaders = { ttl: '60' };
    if (o.body && o.body.length > 0) headers['content-encoding'] = 'aes128gcm';
    return this.request('POST', pushUrl, { headers: { ...headers, ...o.headers }, ...(o.body ? { body: o.body } : {}) });
  }

  /** DELETE a message URL (the acknowledgement); the status. */
  async ack(messageUrl: string): Promise<number> {
    return (await this.request('DELETE', messageUrl)).status;
  }

  /** GET a subscription, set or receipt subscription: a monitor whose pushes this client collects. */
  monitor(url: string, headers: http2.OutgoingHttpHeaders = {}): Monitor {
    const req = this.session.request({ ':method': 'GET', ':path': new URL(url, 'http://x').pathname, ...headers });
    req.end();
    return new Monitor(this, req);
  }

  /** The next push of this session, in promise order. */
  async nextPush(ms: number): Promise<Pushed> {
    const deadline = Date.now() + ms;
    while (this.#read >= this.#pushes.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no push within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#arrived = () => {
          clearTimeout(t);
          this.#arrived = null;
          resolve();
        };
      });
    }
    return this.#pushes[this.#read++]!;
  }

  /** Promises seen so far and not yet read. */
  get unread(): number {
    return this.#pushes.length - this.#read;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.session.closed || this.session.destroyed) return resolve();
      this.session.close(() => resolve());
      // monitors still open would hold a graceful close forever
      setTimeout(() => this.session.destroy(), 200).unref();
    });
  }
}

export class Monitor {
  readonly client: H2Client;
  readonly stream: http2.ClientHttp2Stream;
  /** The GET's answer; `status` 0 when the stream ended without one (RST_STREAM or GOAWAY). */
  readonly done: Promise<H2Response>;
  #responded = false;

  constructor(client: H2Client, stream: http2.ClientHttp2Stream) {
    this.client = client;
    this.stream = stream;
    this.done = new Promise((resolve) => {
      let head: http2.IncomingHttpHeaders | null = null;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        head = h;
        this.#responded = true;
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', () => {});
      stream.on('close', () => resolve({ status: head ? Number(head[':status']) : 0, headers: head ?? {}, body: Buffer.concat(chunks) }));
    });
  }

  /** True once the GET got its response headers (a held-open monitor has none). */
  get responded(): boolean {
    return this.#responded;
  }

  next(ms = 3000): Promise<Pushed> {
    return this.client.nextPush(ms);
  }

  async take(n: number, ms = 3000): Promise<Pushed[]> {
    const out: Pushed[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next(ms));
    return out;
  }

  /** Resolves if nothing is pushed for `ms`; throws with the path of a push otherwise. */
  async quiet(ms = 300): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    if (this.client.unread > 0) {
      const p = await this.client.nextPush(0);
      throw new Error(`unexpected push ${p.path} (${p.status})`);
    }
  }

  close(): void {
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}
