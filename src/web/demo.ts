// The demo on the public port, for an application developer's first start (README "Demo and
// dashboard"): a page at /demo/ that subscribes the browser through this service, and a tiny
// application server behind it that sends a test notification with the project's SDK. Routed by
// the public request listener (src/http/app.ts) unless `--demo off`: its responses are counted
// like every other, POST /demo/send takes the per-address rate limit, and its errors have the
// push endpoint's JSON shape.
//   GET  /demo, /demo/     the page (src/web/pages/demo.html)
//   GET  /demo/demo.js     its script
//   GET  /demo/sw.js       the service worker (scope /demo/)
//   GET  /demo/key         {"publicKey": …, "endpointPrefix": …, "serverURL": …}: the demo application
//                          server's VAPID public key, how this service's push URLs start, and the
//                          dom.push.serverURL that makes Firefox subscribe through this service
//   POST /demo/send        {"subscription": {…}, "text": "…"}: sends `text` to the subscription
// The VAPID key pair is made once and kept in the data dir (demo-vapid.json). /demo/send only
// sends to push URLs of this service's own public URL, judged once normalised (as requested), so
// it can neither push elsewhere nor reach another path of this service.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AnyRequest, AnyResponse } from '../http/listener.ts';
import { sendNotification } from '../sdk/send.ts';
import { generateVAPIDKeys } from '../sdk/vapid.ts';
import type { PushSubscription } from '../sdk/types.ts';
import { page, PAGE_HEADERS } from './static.ts';
import { readBody } from '../http/body.ts';
import { Errno, methodNotAllowed, PushError } from '../common/push-error.ts';

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

const PAGES: Record<string, string> = {
  '/demo/': 'demo.html',
  '/demo/demo.js': 'demo.js',
  '/demo/sw.js': 'sw.js',
};

/**
 * The value of Firefox's dom.push.serverURL for the service at `publicUrl`: its WebSocket URL
 * (ws:// also needs dom.push.testing.allowInsecureServerURL).
 */
export function firefoxServerUrl(publicUrl: string): string {
  const { protocol, host } = new URL(publicUrl);
  return `${protocol === 'https:' ? 'wss' : 'ws'}://${host}/`;
}

/** True for the paths the demo answers. */
export const isDemoPath = (path: string): boolean => path === '/demo' || path.startsWith('/demo/');

export type DemoHandler = (req: AnyRequest, res: AnyResponse, path: string) => Promise<void>;

/** The demo's handler for a request on a demo path; refusals are thrown as PushErrors. */
export function createDemo(o: DemoOptions): DemoHandler {
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
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
      if (path === '/demo/key') return json(res, 200, { publicKey: vapid.publicKey, endpointPrefix: allowed, serverURL: firefoxServerUrl(base) });
      const { body, type } = page(file!);
      const headers: Record<string, string | number> = { ...PAGE_HEADERS, 'content-type': type, 'content-length': body.length };
      if (file === 'sw.js') headers['service-worker-allowed'] = '/demo/';
      res.writeHead(200, headers);
      return void res.end(method === 'HEAD' ? '' : body);
    }
    if (path !== '/demo/send') throw new PushError(404, Errno.notFound, 'Not found');
    if (method !== 'POST') throw methodNotAllowed('POST');
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
      throw new PushError(415, Errno.demoRequest, 'Send application/json');
    }
    const parsed = parseSend(await readBody(req, MAX_SEND_BODY), allowed);
    if (typeof parsed === 'string') throw new PushError(400, Errno.demoRequest, parsed);
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
      throw new PushError(502, Errno.demoRequest, `The push service answered ${status ?? (err as Error).message}`);
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
  const endpoint = pushUrlOf(sub.endpoint, allowedPrefix);
  if (endpoint === null) return `Only endpoints of this push service (${allowedPrefix}…) are accepted`;
  const { p256dh, auth } = sub.keys ?? {};
  if (typeof p256dh !== 'string' || typeof auth !== 'string') return 'subscription.keys (p256dh, auth) are missing';
  const text = d.text === undefined ? 'Hello from webpushd' : d.text;
  if (typeof text !== 'string' || text.length > MAX_TEXT) return `text must be a string of at most ${MAX_TEXT} characters`;
  return { subscription: { endpoint, keys: { p256dh, auth } }, text };
}

/** What follows the push URL prefix: the version and one token, nothing else (no query, no fragment). */
const PUSH_TOKEN = /^v[12]\/[A-Za-z0-9_-]+$/;

/**
 * The URL the demo would request, when it is a push URL of this service; else null. Checked
 * after parsing, as the request will be made: `…/wpush/../subscribe`, `%2e%2e` or `\` segments
 * start with the prefix as strings but reach other paths once normalised.
 */
function pushUrlOf(endpoint: string, allowedPrefix: string): string | null {
  let href: string;
  try {
    href = new URL(endpoint).href;
  } catch {
    return null;
  }
  const prefix = new URL(allowedPrefix).href;
  return href.startsWith(prefix) && PUSH_TOKEN.test(href.slice(prefix.length)) ? href : null;
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

function json(res: AnyResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
