// The documents of the aggregate API (docs/RFC8030.md "Aggregates"), pure: JSON in, typed values
// or a PushError out. An aggregate's representation is `{"members": {"<push URL>": true, …}}`; a
// JSON Merge Patch (RFC 7386) of it adds a member with `true` and removes one with `null`. A batch
// (application/webpush-batch+json) is `{"messages": {"<push URL>": {"encoding", "body", …}}}`.
import { Errno, PushError } from '../common/push-error.ts';
import type { EncodingHeaders } from '../store/types.ts';
import { ENCRYPTION_HEADERS_ALLOWANCE, checkBody, parseEncoding, storedHeaderBytes } from './push-headers.ts';

export const MERGE_PATCH_TYPE = 'application/merge-patch+json';
export const BATCH_TYPE = 'application/webpush-batch+json';

const invalid = (why: string) => new PushError(400, Errno.invalidAggregateDocument, why);

/** The media type of a request, without parameters, lower case; '' when absent. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

function parseObject(body: Buffer, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid(`${what} is not JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid(`${what} must be a JSON object`);
  return doc as Record<string, unknown>;
}

/** The one member of the top-level object, `name`, as an object keyed by push URL. */
function keyedByUrl(doc: Record<string, unknown>, name: string, what: string): Record<string, unknown> {
  const extra = Object.keys(doc).filter((k) => k !== name);
  if (extra.length > 0) throw invalid(`${what} has only "${name}", not ${extra.map((k) => JSON.stringify(k)).join(', ')}`);
  const inner = doc[name];
  if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) throw invalid(`${what}: "${name}" must be an object keyed by push URL`);
  return inner as Record<string, unknown>;
}

/**
 * POST /aggregate's body (the aggregate's first representation) or a PATCH (a merge patch of it):
 * the URLs to add (`true`) and, in a patch, to remove (`null`). An empty POST body is an empty
 * aggregate. `members: null` (remove every member) is refused: DELETE the aggregate instead.
 */
export function parseMembers(body: Buffer, patch: boolean): { add: string[]; remove: string[] } {
  const what = patch ? 'The merge patch' : 'The aggregate';
  if (!patch && body.length === 0) return { add: [], remove: [] };
  const doc = parseObject(body, what);
  if (patch && !('members' in doc)) return { add: [], remove: [] };
  if (patch && doc.members === null) throw invalid('"members": null would remove every member: DELETE the aggregate instead');
  const add: string[] = [];
  const remove: string[] = [];
  for (const [url, value] of Object.entries(keyedByUrl(doc, 'members', what))) {
    if (value === true) add.push(url);
    else if (value === null && patch) remove.push(url);
    else throw invalid(`${what}: a member's value is true${patch ? ' (add) or null (remove)' : ''}`);
  }
  return { add, remove };
}

export interface BatchEntry {
  url: string;
  /** The checked message, or why it was refused (as a single push would be). */
  message: { body: Buffer; encoding: EncodingHeaders | null } | PushError;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Checks one entry as POST /wpush/… checks a push: encoding headers, sizes, body structure. */
function batchMessage(entry: unknown, maxBodyBytes: number): BatchEntry['message'] {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return invalid('an entry must be an object');
  const e = entry as Record<string, unknown>;
  const fields = ['encoding', 'encryption', 'crypto_key', 'body'] as const;
  if (Object.keys(e).some((k) => !(fields as readonly string[]).includes(k))) return invalid(`an entry has only ${fields.join(', ')}`);
  if (fields.some((k) => e[k] !== undefined && typeof e[k] !== 'string')) return invalid('an entry\'s fields are strings');
  const b64 = ((e.body as string | undefined) ?? '').replace(/=+$/, '');
  if (!BASE64URL.test(b64)) return invalid('"body" must be base64url');
  const body = Buffer.from(b64, 'base64url');
  if (body.length > maxBodyBytes) return new PushError(413, Errno.payloadTooLarge, `Message body must be at most ${maxBodyBytes} bytes`);
  try {
    const headers = { 'content-encoding': e.encoding as string | undefined, encryption: e.encryption as string | undefined, 'crypto-key': e.crypto_key as string | undefined };
    const encoding = body.length > 0 ? parseEncoding(headers) : null;
    const headerBytes = storedHeaderBytes(encoding);
    if (body.length + headerBytes > maxBodyBytes + ENCRYPTION_HEADERS_ALLOWANCE) {
      return new PushError(413, Errno.payloadTooLarge, `Message body and its encryption and crypto_key must be at most ${maxBodyBytes + ENCRYPTION_HEADERS_ALLOWANCE} bytes together`);
    }
    checkBody(body, encoding);
    return { body, encoding };
  } catch (err) {
    if (err instanceof PushError) return err;
    throw err;
  }
}

/** A batch: one entry per push URL, each checked on its own (a bad entry refuses that member only). */
export function parseBatch(body: Buffer, maxBodyBytes: number): BatchEntry[] {
  const messages = keyedByUrl(parseObject(body, 'The batch'), 'messages', 'The batch');
  return Object.entries(messages).map(([url, entry]) => ({ url, message: batchMessage(entry, maxBodyBytes) }));
}
