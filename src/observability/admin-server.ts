// The admin listener: a plain HTTP/1.1 server on its own address and port (config adminHost,
// adminPort), apart from the public one, serving what operators and their tools read:
//   GET /metrics   Prometheus text format
//   GET /health    liveness: 200 {"status":"OK"} while the process serves requests
//   GET /ready     readiness: 200 {"status":"OK"}, or 503 {"status":"UNAVAILABLE","reason":…}
//   GET /dashboard      the dashboard page (src/web/pages/dashboard.html), live without reload
//   GET /api/stats      what the dashboard polls every second (src/web/stats.ts)
//   GET /broadcasts, PUT /broadcasts/<id>   the broadcast versions (./broadcasts-api.ts); always
//                       with `Authorization: Bearer <token>` (--admin-token, else <data dir>/admin.token)
// Nothing here is reachable from the public port. A request whose Host names neither an IP
// address, `localhost`, the listen address nor one of `hosts` is refused 403: a page of another
// site whose name was made to resolve to this address (DNS rebinding) reads nothing. With a
// `token`, /metrics and /api/stats also need `Authorization: Bearer <token>` (401 without);
// /health, /ready and the page itself stay open to probes and browsers.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { isLoopback } from '../limits/addresses.ts';
import { page, PAGE_HEADERS } from '../web/static.ts';
import { StatsSampler } from '../web/stats.ts';
import { broadcastsRequest, type BroadcastsApi } from './broadcasts-api.ts';
import type { Metrics } from './metrics.ts';

/** Resolves null when ready, or why not. */
export type ReadyCheck = () => Promise<string | null>;

export interface AdminServerOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  metrics: Metrics;
  ready: ReadyCheck;
  log: Logger;
  /** Host names the listener answers to besides IP addresses, `localhost` and `host` (--admin-hosts). */
  hosts?: readonly string[];
  /** When set, /metrics and /api/stats need it as a bearer token (--admin-token). */
  token?: string | undefined;
  /** The broadcasts resource, and the token it always needs. */
  broadcasts?: { api: BroadcastsApi; token: string };
}

export interface AdminServer {
  /** http://host:port, the port being the one actually bound. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting and ends its connections. */
  close(): Promise<void>;
}

const JSON_TYPE = { 'content-type': 'application/json', 'cache-control': 'no-store' };

export async function startAdminServer(o: AdminServerOptions): Promise<AdminServer> {
  const sampler = new StatsSampler(o.metrics);
  const guard = new AdminGuard(o);
  const server = createServer((req, res) => {
    const refusal = guard.refusal(req);
    if (refusal) return send(res, refusal.status, JSON.stringify(refusal.body), { ...JSON_TYPE, ...refusal.headers });
    handle(o, sampler, req, res).catch((err: unknown) => {
      o.log.error({ err, route: adminRoute(req.url) }, 'admin request failed');
      if (res.headersSent) return void res.destroy();
      send(res, 500, '{"status":"ERROR"}', JSON_TYPE);
    });
  });
  // a scraper's keep-alive connection must not hold up shutdown
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => o.log.error({ err }, 'admin listener failed'));
  if (o.token === undefined && !isLoopback(o.host) && o.host !== 'localhost') {
    o.log.warn({ host: o.host }, 'admin listener beyond loopback without --admin-token: whoever reaches it reads /metrics and /api/stats');
  }
  sampler.start();
  const port = (server.address() as AddressInfo).port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host === '0.0.0.0' || o.host === '' ? '127.0.0.1' : o.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        sampler.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** What needs the token: the numbers. The pages hold none, and probes must not need it. */
const GUARDED = new Set(['/metrics', '/api/stats']);
/** Refused requests are logged at most this often: a rebinding page polls without end. */
const WARN_EVERY_MS = 60_000;

interface Refusal {
  status: number;
  body: { status: string; reason: string };
  headers?: Record<string, string>;
}

/** The Host check and the bearer token. */
class AdminGuard {
  readonly #hosts: Set<string>;
  readonly #tokenHash: Buffer | null;
  readonly #writeTokenHash: Buffer | null;
  readonly #log: Logger;
  #warnedAt = -Infinity;

  constructor(o: AdminServerOptions) {
    this.#hosts = new Set(['localhost', ...(o.hosts ?? []), o.host].map(normalHost));
    this.#tokenHash = o.token === undefined ? null : sha256(o.token);
    this.#writeTokenHash = o.broadcasts ? sha256(o.broadcasts.token) : null;
    this.#log = o.log;
  }

  refusal(req: IncomingMessage): Refusal | null {
    const host = req.headers.host;
    // no Host: not a browser (HTTP/1.0 tools); an IP address: no DNS name to rebind
    if (host !== undefined && !this.#allowed(host)) {
      return this.#refuse(req, 'host', {
        status: 403,
        body: { status: 'Forbidden', reason: 'this listener does not answer to that Host: add the name to --admin-hosts' },
      });
    }
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (this.#writeTokenHash && isBroadcastsPath(path) && !this.#authorized(req.headers.authorization, this.#writeTokenHash)) {
      return this.#refuse(req, 'token', {
        status: 401,
        body: { status: 'Unauthorized', reason: 'send the admin token (--admin-token, else <data dir>/admin.token) as Authorization: Bearer' },
        headers: { 'www-authenticate': 'Bearer realm="webpushd admin"' },
      });
    }
    if (this.#tokenHash && GUARDED.has(path) && !this.#authorized(req.headers.authorization, this.#tokenHash)) {
      return this.#refuse(req, 'token', {
        status: 401,
        body: { status: 'Unauthorized', reason: 'send the admin token (--admin-token) as Authorization: Bearer' },
        headers: { 'www-authenticate': 'Bearer realm="webpushd admin"' },
      });
    }
    return null;
  }

  #allowed(host: string): boolean {
    const name = normalHost(hostOf(host));
    return isIP(name) !== 0 || this.#hosts.has(name);
  }

  #authorized(authorization: string | undefined, tokenHash: Buffer): boolean {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    // hashes of equal length: the comparison takes the same time whatever was sent
    return m !== null && timingSafeEqual(sha256(m[1]!), tokenHash);
  }

  #refuse(req: IncomingMessage, why: 'host' | 'token', refusal: Refusal): Refusal {
    const now = Date.now();
    if (now - this.#warnedAt >= WARN_EVERY_MS) {
      this.#warnedAt = now;
      this.#log.warn({ why, route: adminRoute(req.url), status: refusal.status }, 'admin request refused (further refusals for a minute are not logged)');
    }
    return refusal;
  }
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/** `name`, `name:port`, `[v6]` or `[v6]:port` -> the name (brackets dropped). */
function hostOf(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(1, end);
  }
  const colon = host.indexOf(':');
  return colon === -1 || host.indexOf(':', colon + 1) !== -1 ? host : host.slice(0, colon);
}

const normalHost = (name: string): string => name.trim().toLowerCase().replace(/\.$/, '');

const PAGES: Record<string, string> = {
  '/dashboard': 'dashboard.html',
  '/dashboard.js': 'dashboard.js',
};
const ROUTES = new Set(['/metrics', '/health', '/ready', '/api/stats', ...Object.keys(PAGES)]);
const isBroadcastsPath = (path: string): boolean => path === '/broadcasts' || path.startsWith('/broadcasts/');

async function handle(o: AdminServerOptions, sampler: StatsSampler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0]!;
  const method = req.method ?? 'GET';
  if (o.broadcasts && isBroadcastsPath(path)) {
    const answer = (await broadcastsRequest(o.broadcasts.api, req, path))!;
    return send(res, answer.status, JSON.stringify(answer.body), JSON_TYPE, method === 'HEAD');
  }
  if (!ROUTES.has(path)) {
    return send(res, 404, '{"status":"Not found"}', JSON_TYPE);
  }
  if (method !== 'GET' && method !== 'HEAD') {
    return send(res, 405, '{"status":"Use GET"}', { ...JSON_TYPE, allow: 'GET, HEAD' });
  }
  const head = method === 'HEAD';
  const file = PAGES[path];
  if (file) {
    const { body, type } = page(file);
    res.writeHead(200, { ...PAGE_HEADERS, 'content-type': type, 'content-length': body.length });
    return void res.end(head ? undefined : body);
  }
  switch (path) {
    case '/api/stats':
      return send(res, 200, JSON.stringify(await sampler.stats()), JSON_TYPE, head);
    case '/health':
      return send(res, 200, '{"status":"OK"}', JSON_TYPE, head);
    case '/ready': {
      const reason = await o.ready();
      if (reason === null) return send(res, 200, '{"status":"OK"}', JSON_TYPE, head);
      o.log.warn({ reason }, 'not ready');
      return send(res, 503, JSON.stringify({ status: 'UNAVAILABLE', reason }), JSON_TYPE, head);
    }
    case '/metrics':
      return send(res, 200, await o.metrics.text(), { 'content-type': o.metrics.contentType, 'cache-control': 'no-store' }, head);
  }
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string>, head = false): void {
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

const adminRoute = (url: string | undefined): string => (url ?? '').split('?', 1)[0]!.slice(0, 32);
