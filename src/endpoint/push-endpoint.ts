// The application-server door: POST /wpush/{v1,v2}/{token} sends a message, DELETE /m/{token}
// cancels one (or, from an RFC 8030 user agent, acknowledges it). Answers 201 (202 when a
// receipt was asked with Prefer: respond-async) only after the message is committed.
import type { Logger } from 'pino';
import { Errno, PushError } from '../common/push-error.ts';
import type { Pipeline } from '../core/pipeline.ts';
import { readBody } from '../http/body.ts';
import type { AnyRequest, AnyResponse } from '../http/listener.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import { Rel, formatLink } from '../rfc8030/links.ts';
import { parseReceiptRequest } from '../rfc8030/receipt-request.ts';
import type { Capabilities, PushTarget } from '../tokens/capabilities.ts';
import { verifiedVapidKey, vapidUnauthorized } from '../vapid/request-key.ts';
import { publicKeyHash, type VapidVerifier } from '../vapid/verify.ts';
import { ENCRYPTION_HEADERS_ALLOWANCE, checkBody, parseEncoding, parsePushHeaders, storedHeaderBytes } from './push-headers.ts';

export interface PushEndpointOptions {
  capabilities: Capabilities;
  pipeline: Pipeline;
  vapid: VapidVerifier;
  /** Base of the URLs handed out, without a trailing slash. */
  publicUrl: string;
  maxBodyBytes: number;
  maxTtl: number;
  /** Refuse anonymous senders (401) for every subscription, not only restricted ones. */
  requireVapid?: boolean;
  log: Logger;
  /** Per-subscription rate limit (429 with Retry-After). */
  rateLimiter?: RateLimiter;
}

const invalidToken = () => new PushError(404, Errno.invalidToken, 'Invalid token');
const gone = () => new PushError(410, Errno.noSubscription, 'No such subscription');

export class PushEndpoint {
  readonly #o: PushEndpointOptions;

  constructor(options: PushEndpointOptions) {
    this.#o = options;
  }

  /** `stable`: the one URL of an RFC 8030 subscription (see Capabilities.pushToken). */
  pushUrl(target: PushTarget, stable = false): string {
    return `${this.#o.publicUrl}/wpush/${target.keyHash ? 'v2' : 'v1'}/${this.#o.capabilities.pushToken(target, stable)}`;
  }

  async push(req: AnyRequest, res: AnyResponse, version: string, token: string): Promise<void> {
    const o = this.#o;
    if (version !== 'v1' && version !== 'v2') throw invalidToken();
    const target = o.capabilities.openPushToken(token, version === 'v2');
    if (!target) throw invalidToken();
    o.rateLimiter?.checkSubscription(target.uaid, target.chid);
    const headers = parsePushHeaders(req.headers, o.maxTtl);
    // RFC 8030 5.1; a TTL 0 message is never stored, so never acknowledged: it gets no receipt
    const receipt = headers.ttl > 0 ? parseReceiptRequest(req.headers, o.capabilities) : null;
    this.#checkVapid(req, target);
    const body = await readBody(req, o.maxBodyBytes);
    const encoding = body.length > 0 ? parseEncoding(req.headers) : null;
    // stored and forwarded with the body, so they count with it past what a valid aesgcm needs
    const headerBytes = storedHeaderBytes(encoding);
    const maxStored = o.maxBodyBytes + ENCRYPTION_HEADERS_ALLOWANCE;
    if (body.length + headerBytes > maxStored) {
      throw new PushError(
        413,
        Errno.payloadTooLarge,
        `Message body and its Encryption and Crypto-Key headers must be at most ${maxStored} bytes together (the headers take ${headerBytes})`,
      );
    }
    checkBody(body, encoding);
    const message = {
      uaid: target.uaid,
      chid: target.chid,
      ttl: headers.ttl,
      topic: headers.topic,
      urgency: headers.urgency,
      headers: encoding,
      body,
      createdAt: Date.now(),
    };
    const result = await o.pipeline.accept(message, receipt?.target);
    switch (result.outcome) {
      case 'no-subscription':
        throw gone();
      case 'too-many-stored':
        // one answer for the subscription's cap and the user agent's: it tells nothing of other subscriptions
        throw new PushError(429, Errno.tooManyStored, 'Too many messages waiting; retry later', {
          'retry-after': '60',
        });
      case 'store-full':
        throw new PushError(507, Errno.storeFull, `Cannot store more messages: ${result.why}; retry later`, { 'retry-after': '60' });
      case 'no-receipt-subscription':
        throw new PushError(400, Errno.invalidReceipts, 'The receipt subscription in the Link header has expired or never existed');
      case 'ephemeral':
      case 'stored': {
        const id = result.outcome === 'stored' ? result.message.id : result.id;
        const location = `${o.publicUrl}/m/${o.capabilities.messageToken({ uaid: target.uaid, chid: target.chid, id })}`;
        const reply: Record<string, string | number> = { location, ttl: String(headers.ttl), 'content-length': 0 };
        if (receipt) reply.link = formatLink(`${o.publicUrl}/r/${o.capabilities.receiptsToken(receipt.target.id)}`, Rel.receipt);
        res.writeHead(receipt?.respondAsync ? 202 : 201, reply);
        res.end();
      }
    }
  }

  async cancel(res: AnyResponse, token: string): Promise<void> {
    const ref = this.#o.capabilities.openMessageToken(token);
    if (!ref) throw invalidToken();
    if (!(await this.#o.pipeline.remove(ref.uaid, ref.chid, ref.id))) {
      throw new PushError(410, Errno.noSubscription, 'No such message: delivered, expired or cancelled');
    }
    res.writeHead(204);
    res.end();
  }

  /** Verifies VAPID when present; a restricted subscription requires it, with its own key. */
  #checkVapid(req: AnyRequest, target: PushTarget): void {
    const key = verifiedVapidKey(req.headers, this.#o.vapid);
    if (key === null) {
      if (target.keyHash) throw vapidUnauthorized('this subscription requires VAPID');
      if (this.#o.requireVapid) throw vapidUnauthorized('this service requires VAPID');
      return;
    }
    if (target.keyHash && !publicKeyHash(key).equals(target.keyHash)) {
      throw new PushError(403, Errno.vapid, 'VAPID key does not match the key this subscription was created with');
    }
  }

}
