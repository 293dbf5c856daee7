// GET / on the public port: what this service is, for a person who opens its URL (HTML) or a
// tool (JSON, by Accept): a Web Push service, the dom.push.serverURL that makes Firefox use it,
// where application servers send, and the demo when it is on.
import { methodNotAllowed } from '../common/push-error.ts';
import type { AnyRequest, AnyResponse } from '../http/listener.ts';
import { firefoxServerUrl } from './demo.ts';
import { PAGE_HEADERS } from './static.ts';

export interface HomeOptions {
  /** The service's public base URL (no trailing slash). */
  publicUrl: string;
  demo: boolean;
}

export type HomeHandler = (req: AnyRequest, res: AnyResponse) => void;

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function createHome(o: HomeOptions): HomeHandler {
  const info = {
    service: 'webpushd',
    description: 'A Web Push service (RFC 8030, RFC 8291, VAPID RFC 8292) speaking the WebSocket protocol of Mozilla autopush',
    firefox: { 'dom.push.serverURL': firefoxServerUrl(o.publicUrl) },
    pushUrls: `${o.publicUrl}/wpush/`,
    health: `${o.publicUrl}/health`,
    ...(o.demo ? { demo: `${o.publicUrl}/demo/` } : {}),
  };
  const json = Buffer.from(`${JSON.stringify(info)}\n`);
  const serverUrl = escape(info.firefox['dom.push.serverURL']);
  const html = Buffer.from(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>webpushd</title>
<style>body { font: 15px/1.5 system-ui, sans-serif; max-width: 720px; margin: 40px auto; padding: 0 20px; color: #1d2330; } code { background: #f0f2f5; padding: 1px 4px; border-radius: 3px; }</style>
</head>
<body>
<h1>webpushd</h1>
<p>${escape(info.description)}. Browsers subscribe through it; application servers send encrypted messages to the push URLs it hands out (<code>${escape(info.pushUrls)}…</code>), which it stores until the browser takes them.</p>
<p>Firefox uses it with <code>dom.push.serverURL</code> = <code>${serverUrl}</code> in <code>about:config</code>${serverUrl.startsWith('ws:') ? ' (and <code>dom.push.testing.allowInsecureServerURL</code> = <code>true</code>)' : ''}, then a restart.</p>
${o.demo ? `<p><a href="/demo/">The demo</a>: subscribe this browser, send a test notification, see it arrive.</p>\n` : ''}</body>
</html>
`);

  return function home(req: AnyRequest, res: AnyResponse): void {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
    const asHtml = /\btext\/html\b/.test(String(req.headers.accept ?? ''));
    const body = asHtml ? html : json;
    res.writeHead(200, {
      ...PAGE_HEADERS,
      'content-type': asHtml ? 'text/html; charset=utf-8' : 'application/json',
      'content-length': body.length,
      vary: 'accept',
    });
    res.end(method === 'HEAD' ? '' : body);
  };
}
