// The RFC 8030 user agent's and receipt resources on the public port:
//   POST /subscribe             new subscription (subscribe.ts)
//   GET|DELETE /s/<token>       a subscription: monitor (HTTP/2) | unsubscribe
//   GET|DELETE /set/<token>     a subscription set (user agent): monitor (HTTP/2) | delete all
//   GET /r/<token>              a receipt subscription: monitor (HTTP/2)
// Push URLs (/wpush/) and message URLs (/m/) stay with the push endpoint: one door for sends.
import type { Http2ServerRequest, Http2ServerResponse, Http2Session, ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { Errno, methodNotAllowed, PushError } from '../common/push-error.ts';
import type { Pipeline } from '../core/pipeline.ts';
import { parseUrgency } from '../endpoint/push-headers.ts';
import type { AnyRequest, AnyResponse } from '../http/listener.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Router } from '../router/router.ts';
import type { Store, Subscription, Urgency } from '../store/types.ts';
import type { Capabilities, PushTarget } from '../tokens/capabilities.ts';
import { Monitor } from './monitor.ts';
import { MonitorHub } from './monitors.ts';
import { prefersNoWait } from './prefer.ts';
import { PushUrls } from './push-urls.ts';
import { ReceiptMonitor } from './receipts.ts';
import { SessionPushes, type PushOrigin } from './server-push.ts';
import { subscribe, type SubscribeContext } from './subscribe.ts';

export interface Rfc8030Options {
  store: Store;
  pipeline: Pipeline;
  router: Router;
  capabilities: Capabilities;
  /** Base of the URLs handed out, without a trailing slash. */
  publicUrl: string;
  /** The stable push URL of a subscription (the push endpoint's). */
  pushUrl(target: PushTarget): string;
  /** Stored messages pushed at once before waiting for acknowledgements. */
  batchSize: number;
  /** Pushes one HTTP/2 session may have in flight (not yet taken by the client) before its monitors wait. */
  maxPendingPushes: number;
  log: Logger;
  /** Counts the monitors' deliveries; optional. */
  metrics?: Metrics | null;
}

const RESOURCE = /^\/(s|set|r)\/([A-Za-z0-9_-]+)$/;

const invalidToken = () => new PushError(404, Errno.invalidToken, 'Invalid token');

export class Rfc8030Resources {
  readonly #o: Rfc8030Options;
  readonly #subscribe: SubscribeContext;
  /** Message monitors held open, by uaid (the router's connections). */
  readonly #hub: MonitorHub;
  /** The other open monitors (`Prefer: wait=0` ones, receipt monitors), to end them on shutdown. */
  readonly #draining = new Set<Monitor>();
  readonly #receiptMonitors = new Set<ReceiptMonitor>();
  /** The pushes in flight of each HTTP/2 session with a monitor. */
  readonly #pushes = new WeakMap<Http2Session, SessionPushes>();

  constructor(options: Rfc8030Options) {
    this.#o = options;
    this.#hub = new MonitorHub(options.router, (uaid) => this.#newPushUrls(uaid));
    this.#subscribe = {
      store: options.store,
      capabilities: options.capabilities,
      publicUrl: options.publicUrl,
      pushUrl: options.pushUrl,
      metrics: options.metrics ?? null,
    };
  }

  /** Open monitors of every kind. */
  get monitors(): number {
    return this.#hub.size + this.#draining.size + this.#receiptMonitors.size;
  }

  /** Handles the request when its path is one of these resources; undefined otherwise. */
  route(req: AnyRequest, res: AnyResponse, path: string, method: string): Promise<void> | undefined {
    if (path === '/subscribe') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      return subscribe(this.#subscribe, req, res);
    }
    const m = RESOURCE.exec(path);
    if (!m) return undefined;
    const [, kind, token] = m as unknown as [string, 's' | 'set' | 'r', string];
    if (kind === 'r') {
      if (method !== 'GET') throw methodNotAllowed('GET');
      return this.#monitorReceipts(req, res, token);
    }
    if (method === 'GET') return this.#monitor(req, res, kind, token);
    if (method === 'DELETE') return kind === 's' ? this.#unsubscribe(res, token) : this.#deleteSet(res, token);
    throw methodNotAllowed('GET, DELETE');
  }

  /** Server shutdown: ends every monitor's stream (after the sessions got GOAWAY). */
  close(): void {
    this.#hub.close();
    for (const m of [...this.#draining]) m.abort();
    for (const r of [...this.#receiptMonitors]) r.abort();
  }

  async #unsubscribe(res: AnyResponse, token: string): Promise<void> {
    const sub = this.#o.capabilities.openSubscriptionToken(token);
    if (!sub) throw invalidToken();
    if (!(await this.#o.pipeline.unsubscribe(sub.uaid, sub.chid))) throw noSuchSubscription();
    res.writeHead(204);
    res.end();
  }

  async #deleteSet(res: AnyResponse, token: string): Promise<void> {
    const uaid = this.#o.capabilities.openSetToken(token);
    if (!uaid) throw invalidToken();
    if (!(await this.#o.pipeline.deleteUserAgent(uaid))) throw new PushError(404, Errno.noSubscription, 'No such subscription set');
    res.writeHead(204);
    res.end();
  }

  /** GET on a subscription or a set (RFC 8030 6, 6.1). */
  async #monitor(req: AnyRequest, res: AnyResponse, kind: 's' | 'set', token: string): Promise<void> {
    const h2 = http2Of(req, res, this.#o.publicUrl);
    const minUrgency: Urgency | null = req.headers.urgency === undefined ? null : parseUrgency(String(req.headers.urgency));
    const { capabilities, store } = this.#o;
    let uaid: Buffer;
    let chid: Buffer | null = null;
    let sub: Subscription | null = null;
    if (kind === 's') {
      const ref = capabilities.openSubscriptionToken(token);
      if (!ref) throw invalidToken();
      sub = await store.getSubscription(ref.uaid, ref.chid);
      if (!sub) throw noSuchSubscription();
      ({ uaid, chid } = ref);
    } else {
      const ua = capabilities.openSetToken(token);
      if (!ua) throw invalidToken();
      if (!(await store.hasUserAgent(ua))) throw new PushError(404, Errno.noSubscription, 'No such subscription set');
      uaid = ua;
    }
    // the client cancelled the GET meanwhile: a monitor would wait for a close already gone
    if (h2.stream.closed) return;
    const wait = !prefersNoWait(req.headers.prefer);
    // no work per member of a set here: push URLs are looked up as messages are pushed
    const pushUrls = wait ? this.#hub.pushUrls(uaid) : this.#newPushUrls(uaid);
    if (sub) pushUrls.add(sub);
    const ctx = { store, capabilities, batchSize: this.#o.batchSize, log: this.#o.log, metrics: this.#o.metrics ?? null };
    const pushes = this.#pushesOf(h2.stream);
    const monitor = new Monitor(ctx, { uaid, chid, minUrgency, wait, pushUrls, pushes, ...h2 });
    if (wait) this.#hub.add(monitor);
    else {
      this.#draining.add(monitor);
      monitor.onClosed = () => this.#draining.delete(monitor);
    }
    return monitor.start();
  }

  /** GET on a receipt subscription (RFC 8030 6.3). */
  async #monitorReceipts(req: AnyRequest, res: AnyResponse, token: string): Promise<void> {
    const h2 = http2Of(req, res, this.#o.publicUrl);
    const id = this.#o.capabilities.openReceiptsToken(token);
    if (!id) throw invalidToken();
    if (!(await this.#o.store.hasReceiptSubscription(id))) {
      throw new PushError(404, Errno.noSubscription, 'No such receipt subscription');
    }
    if (h2.stream.closed) return;
    const { store, router, capabilities, log } = this.#o;
    const pushes = this.#pushesOf(h2.stream);
    const monitor = new ReceiptMonitor({ store, router, capabilities, log }, id, { ...h2, pushes });
    this.#receiptMonitors.add(monitor);
    monitor.onClosed = () => this.#receiptMonitors.delete(monitor);
    return prefersNoWait(req.headers.prefer) ? monitor.drainOnce() : monitor.run();
  }

  #newPushUrls(uaid: Buffer): PushUrls {
    return new PushUrls(uaid, this.#o.store, this.#o.pushUrl);
  }

  #pushesOf(stream: ServerHttp2Stream): SessionPushes {
    const session = stream.session!;
    let pushes = this.#pushes.get(session);
    if (!pushes) {
      pushes = new SessionPushes(session, this.#o.maxPendingPushes);
      this.#pushes.set(session, pushes);
    }
    return pushes;
  }
}

function noSuchSubscription(): PushError {
  return new PushError(404, Errno.noSubscription, 'No such subscription');
}

/** A monitor needs HTTP/2 with server push; the stream, response and push origin of one. */
function http2Of(
  req: AnyRequest,
  res: AnyResponse,
  publicUrl: string,
): { stream: ServerHttp2Stream; res: Http2ServerResponse; origin: PushOrigin } {
  if (req.httpVersionMajor !== 2 || !res.stream) {
    throw new PushError(
      400,
      Errno.http2Required,
      'HTTP/2 is required: messages and receipts are delivered with HTTP/2 server push (RFC 8030 6)',
    );
  }
  const r = req as Http2ServerRequest;
  const stream = r.stream as ServerHttp2Stream;
  if (!stream.pushAllowed) {
    throw new PushError(400, Errno.http2Required, 'Server push is disabled on this connection (SETTINGS_ENABLE_PUSH = 0): enable it');
  }
  // promised requests name the authority the client used (RFC 9113 8.4: the server must be
  // authoritative for it); a request without one gets the public URL's
  const authority = r.headers[':authority'] ?? r.headers.host ?? new URL(publicUrl).host;
  return { stream, res: res as unknown as Http2ServerResponse, origin: { scheme: r.scheme, authority: String(authority) } };
}
