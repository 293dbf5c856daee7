// One message to many subscriptions: a fixed number of workers take the next subscription, so
// at most `concurrency` requests are in flight whatever the list's length, and each worker's
// retries (429, 5xx) hold only its own slot. Results are kept in input order; gone
// subscriptions (404, 410) are collected for the caller to delete.
import { SubscriptionGoneError, WebPushError, WebPushValidationError } from './errors.ts';
import { checkOptions } from './options.ts';
import { checkPayload } from './subscription.ts';
import type { Payload } from './client.ts';
import type { PushSubscription, RequestOptions, SendResult } from './types.ts';

/** Requests in flight at once by default: below the 100 streams HTTP/2 servers commonly allow a session. */
export const DEFAULT_CONCURRENCY = 50;

export interface SendManyOptions extends RequestOptions {
  /** Most requests in flight at once, retries included (default 50). */
  concurrency?: number;
  /** Told each subscription's result as it is known (completion order) with the counts so far. */
  onResult?: (result: SendManyResult, progress: SendManyProgress) => void;
}

export interface SendManyResult {
  /** The subscription's position in the input. */
  index: number;
  subscription: PushSubscription;
  /** sent: 2xx; gone: 404/410, delete the subscription; failed: another status after retries, a network error, or an invalid subscription or payload (nothing sent). */
  outcome: 'sent' | 'gone' | 'failed';
  /** The final answer's status, when there was one. */
  statusCode?: number;
  /** The message's URL, when sent. */
  location?: string;
  /** The receipt subscription, when a receipt was asked and the service named it. */
  receiptSubscription?: string;
  /** Requests made for it (0 when it was invalid). */
  attempts: number;
  error?: Error;
}

export interface SendManyProgress {
  total: number;
  done: number;
  sent: number;
  gone: number;
  failed: number;
}

export interface SendManySummary extends SendManyProgress {
  /** One per subscription, in input order. */
  results: SendManyResult[];
  /** The subscriptions answered 404 or 410: delete them. */
  goneSubscriptions: PushSubscription[];
}

type SendOne = (subscription: PushSubscription, payload: Payload, options: RequestOptions) => Promise<SendResult>;

export async function sendMany(
  send: SendOne,
  subscriptions: Iterable<PushSubscription>,
  payload: Payload | ((subscription: PushSubscription, index: number) => Payload),
  options: SendManyOptions | null | undefined,
): Promise<SendManySummary> {
  const { concurrency = DEFAULT_CONCURRENCY, onResult, ...requestOptions } = options ?? {};
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new WebPushValidationError('concurrency', 'concurrency should be a positive integer');
  }
  if (onResult !== undefined && typeof onResult !== 'function') throw new WebPushValidationError('onResult', 'onResult must be a function.');
  // bad options or a bad shared payload fail every send alike: refuse before sending any
  checkOptions(requestOptions);
  if (typeof payload !== 'function') checkPayload(payload);

  const list = [...subscriptions];
  const results: SendManyResult[] = new Array<SendManyResult>(list.length);
  const progress: SendManyProgress = { total: list.length, done: 0, sent: 0, gone: 0, failed: 0 };
  const receipts = receiptSharing(requestOptions);
  let next = 0;

  const one = async (index: number): Promise<SendManyResult> => {
    const subscription = list[index]!;
    try {
      const body = typeof payload === 'function' ? payload(subscription, index) : payload;
      const result = await receipts(subscription, (o) => send(subscription, body, o));
      return {
        index,
        subscription,
        outcome: 'sent',
        statusCode: result.statusCode,
        attempts: result.attempts,
        ...(result.location !== undefined ? { location: result.location } : {}),
        ...(result.receiptSubscription !== undefined ? { receiptSubscription: result.receiptSubscription } : {}),
      };
    } catch (err) {
      const error = err as Error;
      if (err instanceof WebPushError) {
        const outcome = err instanceof SubscriptionGoneError ? 'gone' : 'failed';
        return { index, subscription, outcome, statusCode: err.statusCode, attempts: err.attempts, error };
      }
      return { index, subscription, outcome: 'failed', attempts: err instanceof WebPushValidationError ? 0 : 1, error };
    }
  };

  const worker = async (): Promise<void> => {
    while (next < list.length) {
      const result = await one(next++);
      results[result.index] = result;
      progress.done += 1;
      progress[result.outcome] += 1;
      onResult?.(result, { ...progress });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, list.length) }, worker));
  return { ...progress, results, goneSubscriptions: results.filter((r) => r.outcome === 'gone').map((r) => r.subscription) };
}

/**
 * `receipt: true` asks each push service (origin) for one receipt subscription, not one per
 * message: the first send to an origin asks for it, the others to that origin wait for its
 * answer and name the receipt subscription it got. If that send fails, the next one asks; if
 * the service named none, the others ask each for their own, as sendNotification would.
 */
function receiptSharing(options: RequestOptions): (subscription: PushSubscription, send: (o: RequestOptions) => Promise<SendResult>) => Promise<SendResult> {
  if (options.receipt !== true) return (_, send) => send(options);
  /** Per origin: the first send's answer, `null` when it failed. */
  const byOrigin = new Map<string, Promise<SendResult | null>>();
  return async (subscription, send) => {
    const origin = URL.canParse(subscription.endpoint) ? new URL(subscription.endpoint).origin : '';
    for (let known = byOrigin.get(origin); known !== undefined; known = byOrigin.get(origin)) {
      const first = await known;
      if (first !== null) return send(first.receiptSubscription === undefined ? options : { ...options, receipt: first.receiptSubscription });
      if (byOrigin.get(origin) === known) byOrigin.delete(origin);
    }
    const asking = send(options);
    byOrigin.set(
      origin,
      asking.catch(() => null),
    );
    return asking;
  };
}
