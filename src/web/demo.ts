// The demo on the public port, for an application developer's first start (README "Demo and
// dashboard"): a page at /demo/ that subscribes the browser through this service, and a tiny
// application server behind it that sends a test notification with the project's SDK.
//   GET  /demo, /demo/     the page (src/web/pages/demo.html)
//   GET  /demo/demo.js     its script
//   GET  /demo/sw.js       the service worker (scope /demo/)
//   GET  /demo/key         {"publicKey": …, "endpointPrefix": …}: the demo application server's VAPID
//                          public key, and how this service's push URLs start
//   POST /demo/send        {"subscription": {…}, "text": "…"}: sends `text` to the subscription
// The VAPID key pair is made once and kept in the data dir (demo-vapid.json). /demo/send only
// sends to endpoints on this service's own public URL, so it cannot be used to push elsewhere.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AnyRequest, AnyResponse } from '../http/listener.ts';
import { sendNotification } from '../sdk/send.ts';
import { generateVAPIDKeys } from '../sdk/vapid.ts';
import type { PushSubscription } from '../sdk/types.ts';
import { page, PAGE_HEADERS } from './static.ts';
import { readBody } from '../http/body.ts';
import { PushError } from '../common/push-error.ts';

export const DEMO_KEY_FILE = 'demo-vapid.json';
/** The largest POST /demo/send body. */
export const MAX_SEND_BODY = 4096;
/** The longest notification text. */
export const MAX_TEXT = 1000;

export interface DemoOptions {
  /** The service's public base URL, e.g. http://127.0.0.1:8080 (no trailing slash). */
  publicUrl: string;
  dataDir: string;
  log: Logger;
}

type Handler = (req: AnyRequest, res: AnyResponse) => void;

const PAGES: Record<string, string> = {
  '/demo/': 'demo.html',
  '/demo/demo.js': 'demo.js',
  '/demo/sw.js': 'sw.js',
};

/** A request handler that answers /demo and /demo/…, and hands everything else to `next`. */
export function withDemo(next: Handler, o: DemoOptions): Handler {
  const demo = createDemo(o);
  return (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (path !== '/demo' && !path.startsWith('/demo/')) return next(req, res);
    demo(req, res, path).catch((err: unknown) => {
      o.log.error({ err }, 'demo request failed');
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
    });
  };
}

export function createDemo(o: DemoOptions) {
  const vapid = loadOrCreateKeys(o.dataDir);
  const base = o.publicUrl.replace(/\/+$/, '');
  const allowed = `${base}/wpush/`;

  return async function demo(req: AnyRequest, res: AnyResponse, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    if (path === '/demo') {
      res.writeHead(301, { location: '/demo/', 'content-length': 0 });
      return void res.end();
    }
    const file = PAGES[path];
    if (file || path === '/demo/key') {
      if (method !== 'GET' && method !== 'HEAD') return json(res, 405, { error: 'Use GET' }, { allow: 'GET, HEAD' });
      if (path === '/demo/key') return json(res, 200, { publicKey: vapid.publicKey, endpointPrefix: allowed });
      const { body, type } = page(file!);
      const headers: Record<string, string | number> = { ...PAGE_HEADERS, 'content-type': type, 'content-length': body.length };
      if (file === 'sw.js') headers['service-worker-allowed'] = '/demo/';
      res.writeHead(200, headers);
      return void res.end(method === 'HEAD' ? '' : body);
    }
    if (path !== '/demo/send') return json(res, 404, { error: 'Not found' });
    if (method !== 'POST') return json(res, 405, { error: 'Use POST' }, { allow: 'POST' });
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return json(res, 415, { error: 'Send application/json' });
    }
    const body = await readBody(req, MAX_SEND_BODY).catch((err: unknown) => {
      if (err instanceof PushError && err.status === 413) return null;
      throw err;
    });
    if (body === null) return json(res, 413, { error: `The body must be at most ${MAX_SEND_BODY} bytes` });
    const parsed = parseSend(body, allowed);
    if (typeof parsed === 'string') return json(res, 400, { error: parsed });
    try {
      const result = await sendNotification(parsed.subscription, parsed.text, {
        vapidDetails: { subject: 'mailto:demo@webpushd.invalid', ...vapid },
        TTL: 300,
        urgency: 'high',
      });
      o.log.info({ status: result.statusCode }, 'demo notification sent');
      return json(res, 200, { status: result.statusCode });
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      o.log.info({ status }, 'demo notification refused');
      return json(res, 502, { error: `the push service answered ${status ?? (err as Error).message}`, status });
    }
  };
}

/** The subscription and text of a POST /demo/send body, or what is wrong with it. */
export function parseSend(body: Buffer, allowedPrefix: string): { subscription: PushSubscription; text: string } | string {
  let data: unknown;
  try {
    data = JSON.parse(body.toString('utf8'));
  } catch {
    return 'The body is not JSON';
  }
  const d = data as { subscription?: { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } }; text?: unknown };
  const sub = d?.subscription;
  if (typeof sub?.endpoint !== 'string') return 'subscription.endpoint is missing';
  let origin = '';
  try {
    origin = new URL(sub.endpoint).origin;
  } catch {
    // not a URL: refused below
  }
  if (!sub.endpoint.startsWith(allowedPrefix) || origin !== new URL(allowedPrefix).origin) return `Only endpoints of this push service (${allowedPrefix}…) are accepted`;
  const { p256dh, auth } = sub.keys ?? {};
  if (typeof p256dh !== 'string' || typeof auth !== 'string') return 'subscription.keys (p256dh, auth) are missing';
  const text = d.text === undefined ? 'Hello from webpushd' : d.text;
  if (typeof text !== 'string' || text.length > MAX_TEXT) return `text must be a string of at most ${MAX_TEXT} characters`;
  return { subscription: { endpoint: sub.endpoint, keys: { p256dh, auth } }, text };
}

function loadOrCreateKeys(dataDir: string): { publicKey: string; privateKey: string } {
  const file = join(dataDir, DEMO_KEY_FILE);
  if (existsSync(file)) {
    try {
      const k = JSON.parse(readFileSync(file, 'utf8')) as { publicKey?: unknown; privateKey?: unknown };
      if (typeof k.publicKey === 'string' && typeof k.privateKey === 'string') return { publicKey: k.publicKey, privateKey: k.privateKey };
    } catch {
      // unreadable: make a new pair
    }
  }
  const keys = generateVAPIDKeys();
  writeFileSync(file, JSON.stringify(keys) + '\n', { mode: 0o600 });
  return keys;
}

function json(res: AnyResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
