// webpushd's aggregates from the application server's side (docs/RFC8030.md "Aggregates"):
// create one of push URLs, list, change (as a JSON Merge Patch) and delete it, and send to it:
// an empty message to every member, or a batch encrypted here for each member. Every request is
// signed with the owner's VAPID key. Webpushd-only: other push services have no aggregates (for
// them, sendMany).
import type { IncomingHttpHeaders } from 'node:http';
import { WebPushError } from './errors.ts';
import { checkOptions } from './options.ts';
import { buildRequest } from './request-details.ts';
import type { Trace } from './trace.ts';
import { Transport, type TransportResponse } from './transport.ts';
import type { PushContentEncoding, PushSubscription, PushTlsOptions, Urgency, VapidDetails } from './types.ts';
import { vapidHeaders } from './vapid.ts';

export interface AggregateOptions {
  /** The owner's key: the one that created the aggregate must sign every request on it. */
  vapidDetails: VapidDetails;
  tls?: PushTlsOptions;
  /** Milliseconds for the whole request. */
  timeout?: number;
  /** Told each request and response (header blocks and body lengths). */
  trace?: Trace;
}

export interface AggregateSendOptions extends AggregateOptions {
  TTL?: number;
  urgency?: Urgency;
  topic?: string;
}

export interface BatchSendOptions extends AggregateSendOptions {
  contentEncoding?: PushContentEncoding;
}

/** What a create or change did: the members now, and the push URLs refused with why. */
export interface AggregateChange {
  members: number;
  refused: Record<string, string>;
}

export interface CreatedAggregate extends AggregateChange {
  /** The aggregate's URL (a capability: keep it secret). */
  url: string;
}

export interface MemberResult {
  result: 'stored' | 'gone' | 'refused';
  status: number;
  /** The message URL (stored). */
  location?: string;
  errno?: number;
  reason?: string;
}

export interface FanoutResult {
  stored: number;
  gone: number;
  refused: number;
  /** By push URL. Gone members have left the aggregate. */
  members: Record<string, MemberResult>;
}

export interface BatchMessage {
  subscription: PushSubscription;
  /** Empty or absent: an empty message to that member. */
  payload?: string | Buffer | null;
}

export const MERGE_PATCH_TYPE = 'application/merge-patch+json';
export const BATCH_TYPE = 'application/webpush-batch+json';
/** An answer lists every member at most: far more than an error body, still bounded (characters). */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/** A signed request; a JSON answer, or WebPushError for one outside 2xx. */
async function call<T>(method: 'POST' | 'GET' | 'PATCH' | 'DELETE', url: string, o: AggregateOptions, extra: Record<string, string> = {}, body: unknown = undefined, type = 'application/json'): Promise<{ json: T; headers: IncomingHttpHeaders }> {
  const target = new URL(url);
  const headers: Record<string, string> = { authorization: vapidHeaders(checkOptions({ vapidDetails: o.vapidDetails }).vapid!, target.href, 'aes128gcm').authorization, ...extra };
  const text = body === undefined ? null : Buffer.from(JSON.stringify(body));
  if (text !== null) Object.assign(headers, { 'content-type': type, 'content-length': String(text.length) });
  // one transport per call: aggregate requests are few and large, nothing to keep open between them
  const transport = new Transport(o.trace ? { trace: o.trace } : {});
  let res: TransportResponse;
  try {
    res = await transport.request({ method, url: target, headers, body: text, timeoutMs: o.timeout, tls: o.tls, agent: undefined, http2: true, maxResponseBytes: MAX_ANSWER_BYTES });
  } finally {
    await transport.close();
  }
  const where = `${method} ${target.pathname.split('/', 2).join('/')}…`;
  if (res.truncated) throw new Error(`${where}: answer larger than ${MAX_ANSWER_BYTES} bytes`);
  if (res.statusCode < 200 || res.statusCode > 299) {
    throw new WebPushError(`${where} failed: ${res.statusCode} ${res.body}`, res.statusCode, res.headers, res.body, url);
  }
  return { json: (res.body ? JSON.parse(res.body) : null) as T, headers: res.headers };
}

/** The members as the aggregate's representation (a merge patch of it, with `remove`). */
function memberDocument(add: readonly string[], remove: readonly string[] = []): { members: Record<string, true | null> } {
  const members: Record<string, true | null> = {};
  for (const url of add) members[url] = true;
  for (const url of remove) members[url] = null;
  return { members };
}

/** `service`: the push service's base URL (https://push.example.org). */
export async function createAggregate(service: string, members: readonly string[], options: AggregateOptions): Promise<CreatedAggregate> {
  const { json, headers } = await call<AggregateChange>('POST', new URL('/aggregate', service).href, options, {}, memberDocument(members));
  if (typeof headers.location !== 'string') throw new Error('the push service answered 2xx without a Location');
  return { url: headers.location, ...json };
}

/** Every member's push URL, following the pages. */
export async function aggregateMembers(url: string, options: AggregateOptions): Promise<string[]> {
  const out: string[] = [];
  let next: string | undefined = url;
  while (next !== undefined) {
    const { json }: { json: { members: Record<string, true>; next?: string } } = await call('GET', next, options);
    out.push(...Object.keys(json.members));
    next = json.next;
  }
  return out;
}

/** Adds and removes members in one JSON Merge Patch: applied whole, or refused whole. */
export async function changeAggregate(url: string, change: { add?: readonly string[]; remove?: readonly string[] }, options: AggregateOptions): Promise<AggregateChange> {
  return (await call<AggregateChange>('PATCH', url, options, {}, memberDocument(change.add ?? [], change.remove ?? []), MERGE_PATCH_TYPE)).json;
}

export async function deleteAggregate(url: string, options: AggregateOptions): Promise<void> {
  await call('DELETE', url, options);
}

function pushHeaders(options: AggregateSendOptions) {
  const o = checkOptions({ vapidDetails: options.vapidDetails, ...(options.TTL !== undefined ? { TTL: options.TTL } : {}), ...(options.urgency ? { urgency: options.urgency } : {}), ...(options.topic ? { topic: options.topic } : {}) });
  return { o, headers: { ttl: String(o.ttl), urgency: o.urgency, ...(o.topic ? { topic: o.topic } : {}) } };
}

/** An empty message to every member (a tickle: no encryption needed). */
export async function sendToAggregate(url: string, options: AggregateSendOptions): Promise<FanoutResult> {
  return (await call<FanoutResult>('POST', url, options, pushHeaders(options).headers)).json;
}

/**
 * One message per member, each encrypted here for its subscription's keys (RFC 8291), sent as one
 * batch. Throws WebPushValidationError before sending when a subscription or payload is invalid.
 */
export async function sendBatchToAggregate(url: string, messages: readonly BatchMessage[], options: BatchSendOptions): Promise<FanoutResult> {
  const { o, headers } = pushHeaders(options);
  const entries: Record<string, Record<string, string>> = {};
  for (const m of messages) {
    const { details } = buildRequest(m.subscription, m.payload ?? null, { TTL: o.ttl, vapidDetails: null, ...(options.contentEncoding ? { contentEncoding: options.contentEncoding } : {}) });
    const h = details.headers;
    entries[m.subscription.endpoint] = {
      ...(details.body ? { encoding: h['Content-Encoding']! } : {}),
      ...(h.Encryption ? { encryption: h.Encryption } : {}),
      ...(h['Crypto-Key'] ? { crypto_key: h['Crypto-Key'] } : {}),
      body: (details.body ?? Buffer.alloc(0)).toString('base64url'),
    };
  }
  return (await call<FanoutResult>('POST', url, options, headers, { messages: entries }, BATCH_TYPE)).json;
}
