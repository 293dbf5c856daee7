// Reads a request body into one Buffer, refusing more than `limit` bytes early.
import type { AnyRequest } from './listener.ts';
import { Errno, PushError } from '../common/push-error.ts';

/** The client went away before its body was complete: nobody is left to answer. */
export class RequestAborted extends Error {
  override name = 'RequestAborted';
}

export function readBody(req: AnyRequest, limit: number): Promise<Buffer> {
  const tooLarge = () => new PushError(413, Errno.payloadTooLarge, `Message body must be at most ${limit} bytes`);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ECONNRESET' ? new RequestAborted('client aborted the request') : err));
    // an HTTP/2 stream reset by the client (or cut at shutdown) closes without an error
    req.once('close', () => req.readableEnded || reject(new RequestAborted('client aborted the request')));
  });
}
