// The admin listener's broadcasts resource (never on the public port):
//   GET /broadcasts              {"broadcasts": {"<id>": "<version>"}}
//   PUT /broadcasts/<id>         body: the version as text, or {"version": "<version>"}; 200 with
//                                {"broadcasts": {...}, "changed": true|false}
// Both need `Authorization: Bearer <token>` (--admin-token, else <data dir>/admin.token).
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { PushError } from '../common/push-error.ts';
import { readBody } from '../http/body.ts';
import { StoreUnavailable } from '../store/errors.ts';
import type { Versions } from '../connect/broadcasts.ts';

export interface BroadcastsApi {
  all(): Versions;
  set(versions: Versions): Promise<string[]>;
}

/** What a broadcast id and version may be: printable, short (they go to every user agent). */
const ID = /^[A-Za-z0-9._~:/@+-]{1,200}$/;
const VERSION = /^[\x21-\x7e]{1,200}$/;
const MAX_BODY = 1024;

export interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

const Body = z.union([z.object({ version: z.string() }), z.string()]);

/** Answers a request under /broadcasts (the caller checked the token), or null for another path. */
export async function broadcastsRequest(api: BroadcastsApi, req: IncomingMessage, path: string): Promise<ApiAnswer | null> {
  const method = req.method ?? 'GET';
  if (path === '/broadcasts') {
    if (method !== 'GET' && method !== 'HEAD') return { status: 405, body: { status: 'Use GET' } };
    return { status: 200, body: { broadcasts: api.all() } };
  }
  if (!path.startsWith('/broadcasts/')) return null;
  if (method !== 'PUT') return { status: 405, body: { status: 'Use PUT' } };
  const id = decodeURIComponent(path.slice('/broadcasts/'.length));
  if (!ID.test(id)) return { status: 400, body: { status: 'Bad request', reason: 'a broadcast id is 1-200 of A-Z a-z 0-9 . _ ~ : / @ + -' } };
  let text: string;
  try {
    text = (await readBody(req, MAX_BODY)).toString('utf8');
  } catch (err) {
    if (err instanceof PushError) return { status: 413, body: { status: 'Too large', reason: `at most ${MAX_BODY} bytes` } };
    throw err;
  }
  let parsed: unknown = text.trim();
  if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
    try {
      parsed = JSON.parse(text);
    } catch {
      return { status: 400, body: { status: 'Bad request', reason: 'the body is not JSON' } };
    }
  }
  const body = Body.safeParse(parsed);
  const version = body.success ? (typeof body.data === 'string' ? body.data : body.data.version) : '';
  if (!VERSION.test(version)) {
    return { status: 400, body: { status: 'Bad request', reason: 'the body is the version (1-200 printable ASCII characters) or {"version": "…"}' } };
  }
  let changed: string[];
  try {
    changed = await api.set({ [id]: version });
  } catch (err) {
    if (err instanceof StoreUnavailable) return { status: 503, body: { status: 'UNAVAILABLE', reason: `the store cannot write: ${err.message}` } };
    throw err;
  }
  return { status: 200, body: { broadcasts: api.all(), changed: changed.length > 0 } };
}
