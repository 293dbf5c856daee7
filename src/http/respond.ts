import type { AnyResponse } from './listener.ts';
import type { PushError } from '../common/push-error.ts';

export function sendError(res: AnyResponse, err: PushError): void {
  const body = err.body();
  if (err.status === 410) res.setHeader('cache-control', 'max-age=86400');
  // HTTP/1.1 would read the rest of a body it refused to reuse the connection: close it instead
  if (err.status === 413 && !res.stream) res.setHeader('connection', 'close');
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.writeHead(err.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
