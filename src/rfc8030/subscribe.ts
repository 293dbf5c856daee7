// POST /subscribe (RFC 8030 4, 4.1; RFC 8292 4.1): creates a subscription, in a new set (user
// agent) or in the set named by the request's Link. A body {"vapid": "<P-256 key>"} of type
// application/webpush-options+json restricts the subscription to senders with that VAPID key.
// A set holds at most --max-channels subscriptions (the store refuses one more): 429 errno 127.
import { randomBytes } from 'node:crypto';
import { newUaid } from '../common/ids.ts';
import { Errno, PushError } from '../common/push-error.ts';
import { readBody } from '../http/body.ts';
import type { AnyRequest, AnyResponse } from '../http/listener.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Store } from '../store/types.ts';
import type { Capabilities, PushTarget } from '../tokens/capabilities.ts';
import { VapidError, publicKeyHash } from '../vapid/verify.ts';
import { Rel, formatLink, parseLinks, resourceToken, targetsOf } from './links.ts';

export interface SubscribeContext {
  store: Store;
  capabilities: Capabilities;
  /** Base of the URLs handed out, without a trailing slash. */
  publicUrl: string;
  /** The stable push URL of a subscription. */
  pushUrl(target: PushTarget): string;
  /** Counts the subscriptions refused; optional. */
  metrics?: Metrics | null;
}

export const OPTIONS_TYPE = 'application/webpush-options+json';
/** A push message subscription options document is a few dozen bytes. */
const MAX_OPTIONS = 4096;

const badSet = (why: string) => new PushError(400, Errno.invalidSet, why);
const badOptions = (why: string) => new PushError(400, Errno.invalidOptions, why);

export async function subscribe(ctx: SubscribeContext, req: AnyRequest, res: AnyResponse): Promise<void> {
  const set = await requestedSet(ctx, req);
  const keyHash = await restriction(req);
  const target: PushTarget = { uaid: set ?? newUaid(), chid: randomBytes(16), keyHash };
  if (!(await ctx.store.putSubscription(target))) {
    ctx.metrics?.limited('channels');
    // no Retry-After: waiting changes nothing, deleting a subscription of the set does
    throw new PushError(429, Errno.tooManySubscriptions, 'The subscription set holds as many subscriptions as it may: delete one first');
  }
  const pushUrl = ctx.pushUrl(target);
  res.writeHead(201, {
    location: `${ctx.publicUrl}/s/${ctx.capabilities.subscriptionToken(target.uaid, target.chid)}`,
    // one field per relation (RFC 8288 allows either; some clients read only one value each)
    link: [formatLink(pushUrl, Rel.push), formatLink(`${ctx.publicUrl}/set/${ctx.capabilities.setToken(target.uaid)}`, Rel.set)],
    'content-length': 0,
  });
  res.end();
}

/** The uaid of the set the request names (RFC 8030 4.1), or null for a new one. */
async function requestedSet(ctx: SubscribeContext, req: AnyRequest): Promise<Buffer | null> {
  const links = parseLinks(req.headers.link);
  if (links === null) throw badSet('The Link header is not valid (RFC 8288)');
  const sets = targetsOf(links, Rel.set);
  if (sets.length === 0) return null;
  if (sets.length > 1) throw badSet('Name one subscription set, not several');
  const token = resourceToken(sets[0]!, 'set');
  const uaid = token === null ? null : ctx.capabilities.openSetToken(token);
  if (!uaid) throw badSet('The subscription set in the Link header is not one of this push service');
  if (!(await ctx.store.hasUserAgent(uaid))) throw badSet('The subscription set in the Link header no longer exists');
  return uaid;
}

/** The VAPID key hash of a restricted subscription (RFC 8292 4.1), or null. */
async function restriction(req: AnyRequest): Promise<Buffer | null> {
  const type = String(req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type !== OPTIONS_TYPE) {
    // other media types are ignored, body and all
    req.resume();
    return null;
  }
  const body = await readBody(req, MAX_OPTIONS);
  let options: unknown;
  try {
    options = JSON.parse(body.toString('utf8'));
  } catch {
    throw badOptions(`The ${OPTIONS_TYPE} body is not JSON`);
  }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw badOptions(`The ${OPTIONS_TYPE} body must be a JSON object`);
  }
  const vapid = (options as Record<string, unknown>).vapid;
  if (vapid === undefined) return null;
  if (typeof vapid !== 'string') throw badOptions('"vapid" must be a string: a base64url P-256 public key');
  try {
    return publicKeyHash(vapid);
  } catch (err) {
    if (err instanceof VapidError) throw badOptions(`"vapid" is not a usable key: ${err.reason}`);
    throw err;
  }
}
