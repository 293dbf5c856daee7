// The public HTTP surface: routes requests to the push endpoint, the RFC 8030 user-agent
// resources and the demo, and answers errors in autopush's JSON shape. Only the routes below
// exist on the public port: /metrics, /ready and the dashboard are on the admin listener
// (src/observability/admin-server.ts), never here.
import type { Logger } from 'pino';
import { Errno, methodNotAllowed, PushError, storeUnavailableError } from '../common/push-error.ts';
import type { AggregateEndpoint } from '../endpoint/aggregate-endpoint.ts';
import type { PushEndpoint } from '../endpoint/push-endpoint.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Rfc8030Resources } from '../rfc8030/resources.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import { isDemoPath, type DemoHandler } from '../web/demo.ts';
import type { HomeHandler } from '../web/home.ts';
import { abortResponse, remoteAddressOf, type AnyRequest, type AnyResponse } from './listener.ts';
import { StoreUnavailable } from '../store/errors.ts';
import { RequestAborted } from './body.ts';
import { sendError } from './respond.ts';

const PUSH = /^\/wpush\/([^/]+)\/([A-Za-z0-9_-]+)$/;
/** RST_STREAM code of an HTTP/2 request over a limit, as nghttp2 resets one over the header list size. */
const ENHANCE_YOUR_CALM = 11;
const MESSAGE = /^\/m\/([A-Za-z0-9_-]+)$/;
const AGGREGATE = /^\/a\/([A-Za-z0-9_-]+)$/;

/** The first path segment, for logs: never the path itself (it holds capability tokens). */
const routeOf = (url: string | undefined): string => /^\/([a-z]{1,16})(?:[/?]|$)/.exec(url ?? '')?.[1] ?? '?';


/** An HTTP/1.1 or HTTP/2 compatibility response, as an event emitter. */
interface CountedResponse {
  statusCode: number;
  once(event: 'finish', listener: (this: CountedResponse) => void): unknown;
}

export interface PublicRoutes {
  endpoint: PushEndpoint;
  /** POST /aggregate and /a/{token} (src/endpoint/aggregate-endpoint.ts). */
  aggregates?: AggregateEndpoint;
  rfc8030: Rfc8030Resources;
  log: Logger;
  metrics?: Metrics;
  limits?: RateLimiter;
  /** New subscriptions per client address (POST /subscribe). */
  registrations?: RateLimiter;
  /** The /demo pages and demo application server; absent with `--demo off`. */
  demo?: DemoHandler;
  /** GET /: what this service is (src/web/home.ts). */
  home?: HomeHandler;
  /** The client address the per-address limit keys (default: the peer's). */
  clientAddress?: (req: AnyRequest) => string | undefined;
  /** `--max-header-size`: an HTTP/2 header list larger than this has its stream reset. */
  maxHeaderBytes?: number;
}

/** RFC 9113 6.5.2: a header list's size is its names and values plus 32 bytes per field. */
export function headerListSize(rawHeaders: readonly string[]): number {
  let size = 0;
  for (const field of rawHeaders) size += Buffer.byteLength(field);
  return size + 32 * (rawHeaders.length / 2);
}

export function createRequestListener({
  endpoint,
  aggregates,
  rfc8030,
  log,
  metrics,
  limits,
  registrations,
  demo,
  home,
  clientAddress = (req) => remoteAddressOf(req.socket),
  maxHeaderBytes = Infinity,
}: PublicRoutes) {
  // one shared listener: counting a response allocates nothing per request
  function counted(this: CountedResponse): void {
    metrics!.response(this.statusCode);
  }

  async function route(req: AnyRequest, res: AnyResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const method = req.method ?? 'GET';
    let m: RegExpExecArray | null;
    if ((m = PUSH.exec(path))) {
      if (method !== 'POST') throw methodNotAllowed('POST');
      limits?.checkAddress(clientAddress(req));
      return endpoint.push(req, res, m[1]!, m[2]!);
    }
    if ((m = MESSAGE.exec(path))) {
      if (method !== 'DELETE') throw methodNotAllowed('DELETE');
      return endpoint.cancel(res, m[1]!);
    }
    if (aggregates && (path === '/aggregate' || (m = AGGREGATE.exec(path)))) {
      // creating one and sending to one take from the address's budget as a push does
      if (method === 'POST') limits?.checkAddress(clientAddress(req));
      return aggregates.route(req, res, method, path === '/aggregate' ? undefined : m![1]!);
    }
    if (path === '/subscribe' && method === 'POST') {
      limits?.checkAddress(clientAddress(req));
      registrations?.checkAddress(clientAddress(req));
    }
    const handled = rfc8030.route(req, res, path, method);
    if (handled) return handled;
    if (path === '/health' && (method === 'GET' || method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"OK"}');
      return;
    }
    if (home && path === '/') return home(req, res);
    if (demo && isDemoPath(path)) {
      // each /demo/send is a send: the same per-address budget as a POST to a push URL
      if (path === '/demo/send' && method === 'POST') limits?.checkAddress(clientAddress(req));
      return demo(req, res, path);
    }
    if (/^\/(wpush|m|s|set|r|a)\//.test(path)) throw new PushError(404, Errno.invalidToken, 'Invalid token');
    throw new PushError(404, Errno.notFound, 'Not found');
  }

  return (req: AnyRequest, res: AnyResponse): void => {
    // nghttp2 holds a client to SETTINGS_MAX_HEADER_LIST_SIZE only once it has acknowledged the
    // setting: the first requests of a session, sent before that, are held to it here
    if (res.stream && headerListSize(req.rawHeaders) > maxHeaderBytes) {
      log.debug({ method: req.method, route: routeOf(req.url) }, 'HTTP/2 request refused: header list over --max-header-size');
      return res.stream.close(ENHANCE_YOUR_CALM);
    }
    if (metrics) (res as unknown as CountedResponse).once('finish', counted);
    route(req, res).catch((err: unknown) => {
      if (err instanceof RequestAborted) {
        // the client left mid-body (or was cut at shutdown): not a server error, no one to answer
        log.debug({ method: req.method, route: routeOf(req.url) }, 'request aborted by the client');
        return abortResponse(res);
      }
      if (err instanceof StoreUnavailable) {
        log.debug({ method: req.method, route: routeOf(req.url), err: err.message }, 'request refused: store unavailable');
        err = storeUnavailableError();
      } else if (!(err instanceof PushError)) {
        log.error({ err, method: req.method, route: routeOf(req.url) }, 'request failed');
        err = new PushError(500, Errno.internal, 'Internal server error');
      } else if (log.isLevelEnabled('debug')) {
        const e = err as PushError;
        log.debug({ method: req.method, route: routeOf(req.url), status: e.status, errno: e.errno }, 'request refused');
      }
      if (res.headersSent) return abortResponse(res);
      sendError(res, err as PushError);
    });
  };
}
