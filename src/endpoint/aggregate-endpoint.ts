// Aggregates: one send, many subscriptions (docs/RFC8030.md "Aggregates"). POST /aggregate with
// VAPID creates one owned by that key; its URL /a/{token} takes GET (members, in pages), PATCH (a
// JSON Merge Patch of the member set), DELETE, and POST: a send to every member, either an empty
// message (a tickle) or a batch of one encrypted body per member. Each member's message is an
// ordinary push through the pipeline, written --aggregate-chunk members per event-loop turn so
// that a large fan-out never holds up other requests.
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import { memberId, type AggregateStore, type Member } from '../aggregates/types.ts';
import { Errno, methodNotAllowed, PushError, storeUnavailableError } from '../common/push-error.ts';
import type { Pipeline } from '../core/pipeline.ts';
import { readBody } from '../http/body.ts';
import type { AnyRequest, AnyResponse } from '../http/listener.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import type { TokenBuckets } from '../limits/token-bucket.ts';
import type { FanoutResult, Metrics } from '../observability/metrics.ts';
import { StoreUnavailable } from '../store/errors.ts';
import type { EncodingHeaders, Store } from '../store/types.ts';
import type { Capabilities, PushTarget } from '../tokens/capabilities.ts';
import { verifiedVapidKey, vapidUnauthorized } from '../vapid/request-key.ts';
import { publicKeyHash, type VapidVerifier } from '../vapid/verify.ts';
import { BATCH_TYPE, MERGE_PATCH_TYPE, mediaType, parseBatch, parseMembers, type BatchEntry } from './aggregate-documents.ts';
import { parsePushHeaders, type PushHeaders } from './push-headers.ts';

export interface AggregateEndpointOptions {
  aggregates: AggregateStore;
  /** Members are checked to exist when added. */
  subscriptions: Pick<Store, 'getSubscription'>;
  capabilities: Capabilities;
  pipeline: Pipeline;
  vapid: VapidVerifier;
  /** Base of the URLs handed out, without a trailing slash. */
  publicUrl: string;
  /** A subscription's stable push URL (how members are listed). */
  pushUrl: (target: PushTarget) => string;
  maxMessageBytes: number;
  maxTtl: number;
  maxBodyBytes: number;
  /** Members written per event-loop turn, and listed per page. */
  chunk: number;
  /** Chunks waiting for their commit at once: the next turn's chunk need not wait for the last one's. */
  chunksInFlight: number;
  /** Fan-outs per VAPID key (keyed by its hash). */
  fanouts: TokenBuckets;
  /** The per-subscription rate limit of single pushes, applied to each member's message. */
  rateLimiter?: RateLimiter;
  metrics?: Metrics;
  log: Logger;
}

export interface MemberResult {
  result: FanoutResult;
  status: number;
  location?: string;
  errno?: number;
  reason?: string;
}

const JSON_TYPE = { 'content-type': 'application/json' };
const invalidToken = () => new PushError(404, Errno.invalidToken, 'Invalid token');
const noAggregate = () => new PushError(404, Errno.noAggregate, 'No such aggregate: deleted, or expired unused');
const refusal = (err: PushError): MemberResult => ({ result: 'refused', status: err.status, errno: err.errno, reason: err.message });
const gone: MemberResult = { result: 'gone', status: 410, errno: Errno.noSubscription, reason: 'No such subscription' };

export class AggregateEndpoint {
  readonly #o: AggregateEndpointOptions;
  readonly #pushPrefix: string;

  constructor(o: AggregateEndpointOptions) {
    this.#o = o;
    this.#pushPrefix = `${o.publicUrl}/wpush/`;
  }

  /** POST /aggregate (`token` undefined) and /a/{token}. */
  async route(req: AnyRequest, res: AnyResponse, method: string, token: string | undefined): Promise<void> {
    if (token === undefined) {
      if (method !== 'POST') throw methodNotAllowed('POST');
      return this.#create(req, res);
    }
    const id = this.#o.capabilities.openAggregateToken(token);
    if (!id) throw invalidToken();
    switch (method) {
      case 'GET':
        return this.#list(req, res, id);
      case 'PATCH':
        return this.#patch(req, res, id);
      case 'DELETE':
        await this.#owned(req, id);
        await this.#o.aggregates.delete(id);
        res.writeHead(204);
        res.end();
        return;
      case 'POST':
        return this.#send(req, res, id);
      default:
        throw methodNotAllowed('GET, PATCH, DELETE, POST');
    }
  }

  /** The hash of the request's verified VAPID key: the owner of what it creates or may use. */
  #owner(req: AnyRequest): Buffer {
    const key = verifiedVapidKey(req.headers, this.#o.vapid);
    if (key === null) throw vapidUnauthorized('aggregates require VAPID');
    return publicKeyHash(key);
  }

  /** The aggregate, if the request's VAPID key owns it: 403 for another key (it holds the URL already, it learns nothing). */
  async #owned(req: AnyRequest, id: Buffer) {
    const owner = this.#owner(req);
    const aggregate = await this.#o.aggregates.get(id);
    if (!aggregate) throw noAggregate();
    if (!aggregate.owner.equals(owner)) throw new PushError(403, Errno.vapid, 'VAPID key is not the key this aggregate was created with');
    return aggregate;
  }

  #aggregateUrl(id: Buffer): string {
    return `${this.#o.publicUrl}/a/${this.#o.capabilities.aggregateToken(id)}`;
  }

  /** The member's stable push URL: the token kept with it while its key is `key` (the sealing key's tag); else sealed again. */
  #stableUrl(m: Member, key: Buffer): string {
    if (m.pushToken?.key.equals(key)) return `${this.#pushPrefix}${m.keyHash ? 'v2' : 'v1'}/${m.pushToken.token}`;
    return this.#o.pushUrl(m);
  }

  /** A push URL of this service to the subscription it names, or why it cannot be a member. */
  #openPushUrl(url: string, owner: Buffer): Member | string {
    if (!url.startsWith(this.#pushPrefix)) return 'not a push URL of this service';
    const [version, token, ...rest] = url.slice(this.#pushPrefix.length).split('/');
    if (rest.length > 0 || (version !== 'v1' && version !== 'v2') || !token) return 'not a push URL of this service';
    const target = this.#o.capabilities.openPushToken(token, version === 'v2');
    if (!target) return 'invalid token';
    if (target.keyHash && !target.keyHash.equals(owner)) return 'the subscription is restricted to another VAPID key';
    return target;
  }

  /** Opens `urls`; those that are not (live, with `checkLive`) subscriptions of this service go to `refused` with why. */
  async #members(urls: readonly string[], owner: Buffer, refused: Record<string, string>, checkLive: boolean): Promise<Member[]> {
    const opened: { url: string; member: Member }[] = [];
    for (const url of urls) {
      const member = this.#openPushUrl(url, owner);
      if (typeof member === 'string') refused[url] = member;
      else opened.push({ url, member });
    }
    if (!checkLive) return opened.map((e) => e.member);
    const key = this.#o.capabilities.sealingKeyTag();
    const live: Member[] = [];
    for (let i = 0; i < opened.length; i += this.#o.chunk) {
      const chunk = opened.slice(i, i + this.#o.chunk);
      const subs = await Promise.all(chunk.map(({ member }) => this.#o.subscriptions.getSubscription(member.uaid, member.chid)));
      chunk.forEach(({ url, member }, j) => {
        // sealed once here, not at every send and listing
        if (subs[j]) live.push({ ...member, pushToken: { key, token: this.#o.capabilities.pushToken(member, true) } });
        else refused[url] = 'no such subscription';
      });
    }
    return live;
  }

  async #create(req: AnyRequest, res: AnyResponse): Promise<void> {
    const owner = this.#owner(req);
    const { add } = parseMembers(await readBody(req, this.#o.maxBodyBytes), false);
    const refused: Record<string, string> = {};
    const members = await this.#members(add, owner, refused, true);
    const created = await this.#o.aggregates.create(owner, members);
    if (!created.ok) throw this.#refusedChange(created.reason);
    res.writeHead(201, { ...JSON_TYPE, location: this.#aggregateUrl(created.id) });
    res.end(JSON.stringify({ members: members.length, refused }));
  }

  #refusedChange(reason: 'too-many-aggregates' | 'too-many-members' | 'no-aggregate'): PushError {
    switch (reason) {
      case 'too-many-aggregates':
        return new PushError(429, Errno.tooManyAggregates, 'This VAPID key holds as many aggregates as it may: delete one, or let one expire');
      case 'too-many-members':
        return new PushError(409, Errno.tooManyMembers, 'The aggregate would hold more members than it may');
      case 'no-aggregate':
        return noAggregate();
    }
  }

  async #list(req: AnyRequest, res: AnyResponse, id: Buffer): Promise<void> {
    const aggregate = await this.#owned(req, id);
    const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
    const cursor = query.get('cursor');
    if (cursor !== null && !/^[0-9a-f]{32}$/.test(cursor)) throw new PushError(400, Errno.invalidAggregateDocument, 'cursor must be one a previous page named');
    const page = await this.#o.aggregates.members(id, cursor, this.#o.chunk);
    const key = this.#o.capabilities.sealingKeyTag();
    const members = Object.fromEntries(page.members.map((m) => [this.#stableUrl(m, key), true]));
    const next = page.next === null ? {} : { next: `${this.#aggregateUrl(id)}?cursor=${page.next}` };
    res.writeHead(200, JSON_TYPE);
    res.end(JSON.stringify({ count: aggregate.members, members, ...next }));
  }

  async #patch(req: AnyRequest, res: AnyResponse, id: Buffer): Promise<void> {
    const aggregate = await this.#owned(req, id);
    if (mediaType(req.headers['content-type']) !== MERGE_PATCH_TYPE) {
      throw new PushError(415, Errno.invalidAggregateDocument, `PATCH takes a JSON Merge Patch (${MERGE_PATCH_TYPE}) of the member set`, { 'accept-patch': MERGE_PATCH_TYPE });
    }
    const { add, remove } = parseMembers(await readBody(req, this.#o.maxBodyBytes), true);
    const refused: Record<string, string> = {};
    const adding = await this.#members(add, aggregate.owner, refused, true);
    // one that is not a subscription now is not a member either: nothing to remove
    const removing = await this.#members(remove, aggregate.owner, {}, false);
    const changed = await this.#o.aggregates.change(id, adding, removing);
    if (!changed.ok) throw this.#refusedChange(changed.reason);
    res.writeHead(200, JSON_TYPE);
    res.end(JSON.stringify({ members: changed.members, refused }));
  }

  async #send(req: AnyRequest, res: AnyResponse, id: Buffer): Promise<void> {
    const o = this.#o;
    const aggregate = await this.#owned(req, id);
    const wait = o.fanouts.take(aggregate.owner.toString('hex'));
    if (wait > 0) throw new PushError(429, Errno.rateLimited, 'Too many sends to aggregates from this VAPID key; retry later', { 'retry-after': String(wait) });
    const headers = parsePushHeaders(req.headers, o.maxTtl);
    const body = await readBody(req, o.maxBodyBytes);
    let batch: BatchEntry[] | null = null;
    if (body.length > 0) {
      if (mediaType(req.headers['content-type']) !== BATCH_TYPE) {
        throw new PushError(
          415,
          Errno.aggregateBody,
          `A push message is encrypted for one user agent: send an aggregate an empty body (an empty message to every member) or a batch of one encrypted body per member (${BATCH_TYPE})`,
        );
      }
      batch = parseBatch(body, o.maxMessageBytes);
    }
    await o.aggregates.touch(id);
    const started = Date.now();
    o.metrics?.fanoutStarted();
    const results: Record<string, MemberResult> = {};
    const goneMembers: Member[] = [];
    try {
      const send = async (url: string, m: Member, message: { body: Buffer; encoding: EncodingHeaders | null }) => {
        const r = await this.#deliver(m, headers, message.body, message.encoding);
        results[url] = r;
        if (r.result === 'gone') goneMembers.push(m);
      };
      if (batch) await this.#sendBatch(id, aggregate.owner, batch, results, send);
      else {
        const tickle = { body: Buffer.alloc(0), encoding: null };
        const key = this.#o.capabilities.sealingKeyTag();
        const writing = new Chunks(o.chunksInFlight);
        let cursor: string | null = null;
        do {
          const page = await o.aggregates.members(id, cursor, o.chunk);
          await writing.add(Promise.all(page.members.map((m) => send(this.#stableUrl(m, key), m, tickle))));
          cursor = page.next;
          if (cursor !== null) await nextTurn();
        } while (cursor !== null);
        await writing.done();
      }
      // members whose subscription is gone leave the aggregate
      if (goneMembers.length > 0) await o.aggregates.change(id, [], goneMembers);
    } finally {
      o.metrics?.fanoutEnded();
    }
    const counts = { stored: 0, gone: 0, refused: 0 };
    for (const r of Object.values(results)) counts[r.result]++;
    for (const [result, n] of Object.entries(counts)) o.metrics?.fanoutMessages(result as FanoutResult, n);
    o.log.debug({ ...counts, batch: batch !== null, ms: Date.now() - started }, 'fan-out written');
    res.writeHead(202, JSON_TYPE);
    res.end(JSON.stringify({ ...counts, members: results }));
  }

  async #sendBatch(
    id: Buffer,
    owner: Buffer,
    batch: readonly BatchEntry[],
    results: Record<string, MemberResult>,
    send: (url: string, m: Member, message: { body: Buffer; encoding: EncodingHeaders | null }) => Promise<void>,
  ): Promise<void> {
    const writing = new Chunks(this.#o.chunksInFlight);
    // two push URLs of one subscription (WebSocket registrations hand out a new one each time) are one member: one message
    const named = new Set<string>();
    for (let i = 0; i < batch.length; i += this.#o.chunk) {
      if (i > 0) await nextTurn();
      const entries: { url: string; member: Member; message: { body: Buffer; encoding: EncodingHeaders | null } }[] = [];
      for (const { url, message } of batch.slice(i, i + this.#o.chunk)) {
        const member = this.#openPushUrl(url, owner);
        if (typeof member === 'string') {
          results[url] = { result: 'refused', status: 404, errno: Errno.invalidToken, reason: member };
          continue;
        }
        const key = memberId(member).toString('hex');
        if (message instanceof PushError) results[url] = refusal(message);
        else if (named.has(key)) results[url] = { result: 'refused', status: 400, errno: Errno.invalidAggregateDocument, reason: 'another entry of the batch names the same subscription' };
        else {
          named.add(key);
          entries.push({ url, member, message });
        }
      }
      const held = await this.#o.aggregates.has(id, entries.map((e) => e.member));
      await writing.add(
        Promise.all(
          entries.map((e, j) =>
            held[j] ? send(e.url, e.member, e.message) : ((results[e.url] = { result: 'refused', status: 404, errno: Errno.noSubscription, reason: 'not a member of this aggregate' }), undefined),
          ),
        ),
      );
    }
    await writing.done();
  }

  /** One member's message, as a push to its URL would be: rate limit, caps, TTL, Topic. */
  async #deliver(m: Member, h: PushHeaders, body: Buffer, encoding: EncodingHeaders | null): Promise<MemberResult> {
    const o = this.#o;
    try {
      o.rateLimiter?.checkSubscription(m.uaid, m.chid);
      const r = await o.pipeline.accept({ uaid: m.uaid, chid: m.chid, ttl: h.ttl, topic: h.topic, urgency: h.urgency, headers: encoding, body, createdAt: Date.now() });
      switch (r.outcome) {
        case 'stored':
        case 'ephemeral': {
          const msgId = r.outcome === 'stored' ? r.message.id : r.id;
          return { result: 'stored', status: 201, location: `${o.publicUrl}/m/${o.capabilities.messageToken({ uaid: m.uaid, chid: m.chid, id: msgId })}` };
        }
        case 'no-subscription':
          return gone;
        case 'too-many-stored':
          return refusal(new PushError(429, Errno.tooManyStored, 'Too many messages waiting; retry later'));
        case 'store-full':
          return refusal(new PushError(507, Errno.storeFull, `Cannot store more messages: ${r.why}; retry later`));
        case 'no-receipt-subscription':
          // no receipt is asked for a member's message
          throw new Error('unreachable: a fan-out names no receipt subscription');
      }
    } catch (err) {
      if (err instanceof PushError) return refusal(err);
      if (err instanceof StoreUnavailable) return refusal(storeUnavailableError());
      throw err;
    }
  }
}

/**
 * The chunks of one fan-out being written: up to `max` wait for their commits at once, so a
 * chunk's commit overlaps the next turn's work; past that, the fan-out waits for the oldest.
 */
class Chunks {
  readonly #max: number;
  readonly #pending: Promise<unknown>[] = [];
  #failure: unknown = null;

  constructor(max: number) {
    this.#max = max;
  }

  async add(chunk: Promise<unknown>): Promise<void> {
    // held here until done(): a chunk failing while an older one is awaited is not unhandled
    this.#pending.push(chunk.catch((err: unknown) => (this.#failure ??= err)));
    if (this.#pending.length >= this.#max) await this.#pending.shift();
  }

  async done(): Promise<void> {
    await Promise.all(this.#pending);
    if (this.#failure !== null) throw this.#failure;
  }
}
