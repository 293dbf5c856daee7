// The requests a user agent makes of an RFC 8030 push service: subscribe (POST /subscribe,
// joining a subscription set), unsubscribe (DELETE the subscription) and acknowledge (DELETE the
// message), with what their answers mean.
import type { Http2Connection, Response } from './http2-connection.ts';
import { header } from './http2-connection.ts';
import { PUSH_REL, SET_REL, findLink, parseLinks } from './link-header.ts';
import { PushServiceError, type Registration, type UaLogger } from './transport.ts';

/** The media type of a subscribe request's options (RFC 8292 4.1: `{"vapid": key}`). */
const WEBPUSH_OPTIONS_TYPE = 'application/webpush-options+json';

/** What a DELETE may answer when it did its job; 404/410: the resource was gone already, which is what was asked for. */
const DELETED = [200, 202, 204, 404, 410];

export class PushServiceRequests {
  readonly #connection: Pick<Http2Connection, 'url' | 'request'>;
  readonly #log: UaLogger;
  /** POST <push service>/subscribe subscribes. */
  readonly #subscribeUrl: string;
  /** Acknowledgements in flight. */
  readonly #acks = new Set<Promise<void>>();

  constructor(connection: Pick<Http2Connection, 'url' | 'request'>, log: UaLogger) {
    this.#connection = connection;
    this.#log = log;
    const base = new URL(connection.url);
    this.#subscribeUrl = new URL(`${base.pathname.replace(/\/+$/, '')}/subscribe`, base).toString();
  }

  /** Creates a subscription, restricted to `vapidKey` when given, in the set `setUrl` when given. */
  async subscribe(vapidKey: string | undefined, setUrl: string | undefined): Promise<Registration> {
    const subscribeUrl = this.#subscribeUrl;
    const headers: Record<string, string> = {};
    let body: string | undefined;
    if (vapidKey !== undefined) {
      headers['content-type'] = WEBPUSH_OPTIONS_TYPE;
      body = JSON.stringify({ vapid: vapidKey });
    }
    let res = await this.#connection.request('POST', subscribeUrl, setUrl ? { ...headers, link: `<${setUrl}>; rel="${SET_REL}"` } : headers, body);
    if (res.status === 400 && setUrl) {
      // RFC 8030 4.1: an invalid (e.g. expired) set is refused with 400. Start a new set.
      this.#log.warn({ status: res.status, error: errorText(res) }, 'the push service refused to add the subscription to the set: subscribing without it');
      res = await this.#connection.request('POST', subscribeUrl, headers, body);
    }
    if (res.status !== 201) {
      const what = res.status === 400 && vapidKey !== undefined ? 'the subscription (or its VAPID key)' : 'the subscription';
      throw new PushServiceError(`the push service refused ${what} (status ${res.status}${detail(res)})`, res.status);
    }
    const location = header(res.headers, 'location');
    const links = parseLinks(res.headers.link, subscribeUrl);
    const endpoint = findLink(links, PUSH_REL);
    if (!location || !URL.canParse(location, subscribeUrl)) {
      throw new PushServiceError('the push service answered 201 without a Location (the subscription URL)', res.status);
    }
    if (!endpoint) throw new PushServiceError(`the push service answered 201 without a Link rel="${PUSH_REL}" (the push URL)`, res.status);
    const newSet = findLink(links, SET_REL);
    return {
      endpoint,
      subscriptionUrl: new URL(location, subscribeUrl).toString(),
      ...(newSet !== undefined ? { setUrl: newSet } : {}),
    };
  }

  /** Deletes the subscription at `subscriptionUrl`. */
  async unsubscribe(subscriptionUrl: string): Promise<void> {
    const res = await this.#connection.request('DELETE', subscriptionUrl);
    if (!DELETED.includes(res.status)) {
      throw new PushServiceError(`the push service refused to unsubscribe (status ${res.status}${detail(res)})`, res.status);
    }
  }

  /** Acknowledges by deleting the message (RFC 8030 6.2). A failure is only logged: the message comes again. */
  acknowledge(version: string): void {
    const ack = this.#connection.request('DELETE', version).then(
      (res) => {
        // 404/410: expired, or acknowledged before a reconnect
        if (!DELETED.includes(res.status)) {
          this.#log.warn({ status: res.status, error: errorText(res) }, 'the push service refused an acknowledgement');
        }
      },
      (err: Error) => this.#log.debug({ err: err.message }, 'acknowledgement not sent: the message will come again'),
    );
    this.#acks.add(ack);
    void ack.finally(() => this.#acks.delete(ack));
  }

  /** Resolves once the acknowledgements sent so far were answered (or failed). */
  async acknowledged(): Promise<void> {
    await Promise.all([...this.#acks]);
  }
}

function errorText(res: Response): string {
  const text = res.body.toString('utf8').trim();
  if (!text) return '';
  try {
    const json = JSON.parse(text) as { message?: unknown; error?: unknown };
    if (typeof json.message === 'string') return json.message;
    if (typeof json.error === 'string') return json.error;
  } catch {
    // not JSON
  }
  return text.slice(0, 200);
}

function detail(res: Response): string {
  const text = errorText(res);
  return text ? `: ${text}` : '';
}
