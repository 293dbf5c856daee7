// A push client: builds each request, sends it over pooled connections and retries 429/5xx.
import { SubscriptionGoneError, WebPushError, isUnprocessed } from './errors.ts';
import { buildRequest } from './request-details.ts';
import { backoffDelay, defaultSleep, isRetryableStatus, parseRetryAfter } from './retry.ts';
import { RECEIPT_REL, findLink, parseLinks } from '../ua/link-header.ts';
import { sendMany, type SendManyOptions, type SendManySummary } from './send-many.ts';
import { Transport, type TransportOptions } from './transport.ts';
import type { PushSubscription, PushTlsOptions, RequestDetails, RequestOptions, SendResult } from './types.ts';

export type PushClientOptions = TransportOptions;

/** Requests sent again at once when they failed before reaching the service (stale connection). */
const MAX_RESENDS = 2;

export type Payload = string | Buffer | Uint8Array | null | undefined;

export class PushClient {
  readonly #transport: Transport;

  constructor(options: PushClientOptions = {}) {
    this.#transport = new Transport(options);
  }

  /** Open HTTP/2 sessions (one per push-service origin). */
  get http2Sessions(): number {
    return this.#transport.http2Sessions;
  }

  generateRequestDetails(subscription: PushSubscription, payload?: Payload, options?: RequestOptions | null): RequestDetails {
    return buildRequest(subscription, payload, options).details;
  }

  /**
   * Encrypts, signs and sends one message. Resolves on a 2xx answer; rejects with
   * SubscriptionGoneError (404, 410), WebPushError (other statuses, after retries for 429 and
   * 5xx), WebPushValidationError (bad input: nothing sent) or a network error.
   */
  async sendNotification(subscription: PushSubscription, payload?: Payload, options?: RequestOptions | null): Promise<SendResult> {
    const { details, options: o } = buildRequest(subscription, payload, options);
    const sleep = o.sleep ?? defaultSleep;
    const url = new URL(details.endpoint);
    let resends = 0;
    for (let attempt = 1; ; attempt++) {
      let res;
      try {
        res = await this.#transport.request({
          url,
          headers: details.headers,
          body: details.body,
          timeoutMs: o.timeoutMs,
          tls: o.tls,
          agent: o.agent,
          http2: o.http2,
        });
      } catch (err) {
        if (isUnprocessed(err) && resends < MAX_RESENDS) {
          resends += 1;
          attempt -= 1;
          continue;
        }
        throw err;
      }
      const { statusCode, headers, body, httpVersion } = res;
      if (statusCode >= 200 && statusCode <= 299) {
        const result: SendResult = { statusCode, headers, body, httpVersion, attempts: attempt };
        // absolute, for cancelNotification; a Location that is no URL reference is passed on as it came
        const { location } = headers;
        if (location !== undefined) result.location = URL.canParse(location, url.href) ? new URL(location, url).href : location;
        const receipts = o.receipt ? findLink(parseLinks(headers.link, url.href), RECEIPT_REL) : undefined;
        if (receipts !== undefined) result.receiptSubscription = receipts;
        return result;
      }
      const retryAfterMs = parseRetryAfter(headers['retry-after']);
      const retry = attempt <= o.retries && isRetryableStatus(statusCode);
      if (!retry || (retryAfterMs !== undefined && retryAfterMs > o.maxRetryAfterMs)) {
        const extra = retryAfterMs === undefined ? { attempts: attempt } : { attempts: attempt, retryAfterMs };
        const Err = statusCode === 404 || statusCode === 410 ? SubscriptionGoneError : WebPushError;
        throw new Err(`Received unexpected response code ${statusCode}`, statusCode, headers, body, details.endpoint, extra);
      }
      await sleep(retryAfterMs ?? backoffDelay(attempt - 1, o.retryDelayMs, o.maxRetryAfterMs));
    }
  }

  /**
   * Sends one payload (or one per subscription: a function of it) to many subscriptions, at most
   * `concurrency` requests at a time, each encrypted for its subscription and retried as
   * sendNotification does. Never rejects for one subscription's failure: each gets a result
   * (`onResult` is told as they come), and the summary lists the gone ones to delete. Rejects
   * only for invalid options, before anything is sent.
   */
  sendMany(
    subscriptions: Iterable<PushSubscription>,
    payload?: Payload | ((subscription: PushSubscription, index: number) => Payload),
    options?: SendManyOptions | null,
  ): Promise<SendManySummary> {
    return sendMany((s, p, o) => this.sendNotification(s, p, o), subscriptions, payload, options);
  }

  /**
   * Cancels a message not yet delivered: DELETE on its URL (`SendResult.location`). Resolves
   * true (204: it will not be delivered; a receipt, if asked, says 204), false when it was
   * already gone (410: delivered, expired or cancelled); rejects with WebPushError otherwise.
   */
  async cancelNotification(location: string, options: { timeout?: number; tls?: PushTlsOptions; http2?: boolean } = {}): Promise<boolean> {
    const url = new URL(location);
    const res = await this.#transport.request({
      method: 'DELETE',
      url,
      headers: {},
      body: null,
      timeoutMs: options.timeout,
      tls: options.tls,
      agent: undefined,
      http2: options.http2 ?? true,
    });
    if (res.statusCode >= 200 && res.statusCode <= 299) return true;
    if (res.statusCode === 410) return false;
    throw new WebPushError(`Received unexpected response code ${res.statusCode}`, res.statusCode, res.headers, res.body, location);
  }

  /** Closes pooled connections (HTTP/2 sessions, idle keep-alive sockets); the client stays usable. */
  close(): Promise<void> {
    return this.#transport.close();
  }
}
