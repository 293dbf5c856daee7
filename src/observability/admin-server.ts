// The admin listener: a plain HTTP/1.1 server on its own address and port (config adminHost,
// adminPort), apart from the public one, serving what operators and their tools read:
//   GET /metrics   Prometheus text format
//   GET /health    liveness: 200 {"status":"OK"} while the process serves requests
//   GET /ready     readiness: 200 {"status":"OK"}, or 503 {"status":"UNAVAILABLE","reason":…}
//   GET /dashboard      the dashboard page (src/web/pages/dashboard.html), live without reload
//   GET /api/stats      what the dashboard polls every second (src/web/stats.ts)
// Nothing here is reachable from the public port.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { page, PAGE_HEADERS } from '../web/static.ts';
import { StatsSampler } from '../web/stats.ts';
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
  const server = createServer((req, res) => {
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

const PAGES: Record<string, string> = {
  '/dashboard': 'dashboard.html',
  '/dashboard.js': 'dashboard.js',
};
const ROUTES = new Set(['/metrics', '/health', '/ready', '/api/stats', ...Object.keys(PAGES)]);

async function handle(o: AdminServerOptions, sampler: StatsSampler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0]!;
  const method = req.method ?? 'GET';
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
