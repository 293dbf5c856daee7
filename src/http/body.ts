// Reads a request body into one Buffer, refusing more than `limit` bytes early.
import type { AnyRequest } from './listener.ts';
import { Errno, PushError } from '../common/push-error.ts';

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
    req.on('error', reject);
  });
}
