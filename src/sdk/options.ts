// Validation of sendNotification / generateRequestDetails options: web-push's option names,
// defaults and error messages, plus the SDK's retry and transport options.
import { Agent } from 'node:http';
import { WebPushValidationError } from './errors.ts';
import type { PushContentEncoding, PushTlsOptions, RequestOptions, Urgency, VapidDetails } from './types.ts';

/** Four weeks, as web-push. */
export const DEFAULT_TTL = 2_419_200;
export const DEFAULT_RETRIES = 2;
export const DEFAULT_RETRY_DELAY_MS = 500;
export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

export interface CheckedOptions {
  ttl: number;
  urgency: Urgency;
  topic: string | undefined;
  encoding: PushContentEncoding;
  vapid: VapidDetails | null;
  headers: Record<string, string>;
  timeoutMs: number | undefined;
  retries: number;
  retryDelayMs: number;
  maxRetryAfterMs: number;
  sleep: ((ms: number) => Promise<void>) | undefined;
  tls: PushTlsOptions | undefined;
  agent: Agent | undefined;
  http2: boolean;
  /** true: a new receipt subscription; a string: that one. */
  receipt: boolean | string;
}

const VALID_OPTIONS = [
  'headers',
  'vapidDetails',
  'TTL',
  'contentEncoding',
  'urgency',
  'topic',
  'timeout',
  'retries',
  'retryDelay',
  'maxRetryAfter',
  'sleep',
  'tls',
  'agent',
  'http2',
  'receipt',
];
const URGENCIES: readonly string[] = ['very-low', 'low', 'normal', 'high'];
const TOPIC = /^[A-Za-z0-9_-]+$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// The top-level options that are also headers: setting both is ambiguous.
const OPTION_HEADERS: Record<string, keyof RequestOptions> = { ttl: 'TTL', urgency: 'urgency', topic: 'topic' };

const invalid = (field: string, message: string) => new WebPushValidationError(field, message);

function nonNegative(field: string, value: unknown, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw invalid(field, `${field} should be a non-negative ${integer ? 'integer' : 'number'}`);
  }
  return value;
}

export function checkOptions(options: RequestOptions | undefined | null): CheckedOptions {
  const o: RequestOptions = options ?? {};
  if (typeof o !== 'object') throw invalid('options', 'Options must be an object.');
  for (const key of Object.keys(o)) {
    if (!VALID_OPTIONS.includes(key)) {
      throw invalid(key, `'${key}' is an invalid option. The valid options are ['${VALID_OPTIONS.join("', '")}'].`);
    }
  }

  let ttl = DEFAULT_TTL;
  if (o.TTL !== undefined) {
    ttl = Number(o.TTL);
    if (!Number.isFinite(ttl) || ttl < 0) throw invalid('TTL', 'TTL should be a number and should be at least 0');
    if (!Number.isInteger(ttl)) throw invalid('TTL', 'TTL should be a whole number of seconds');
  }

  let encoding: PushContentEncoding = 'aes128gcm';
  if (o.contentEncoding) {
    if (o.contentEncoding !== 'aes128gcm' && o.contentEncoding !== 'aesgcm') {
      throw invalid('contentEncoding', 'Unsupported content encoding specified.');
    }
    encoding = o.contentEncoding;
  }

  let urgency: Urgency = 'normal';
  if (o.urgency) {
    if (!URGENCIES.includes(o.urgency)) throw invalid('urgency', 'Unsupported urgency specified.');
    urgency = o.urgency;
  }

  let topic: string | undefined;
  if (o.topic) {
    if (typeof o.topic !== 'string' || !TOPIC.test(o.topic)) {
      throw invalid('topic', 'Unsupported characters set use the URL or filename-safe Base64 characters set');
    }
    if (o.topic.length > 32) {
      throw invalid('topic', 'use maximum of 32 characters from the URL or filename-safe Base64 characters set');
    }
    topic = o.topic;
  }

  const headers: Record<string, string> = {};
  if (o.headers) {
    if (typeof o.headers !== 'object') throw invalid('headers', "The 'headers' option must be an object.");
    const duplicates = Object.keys(o.headers).filter((name) => {
      const option = OPTION_HEADERS[name.toLowerCase()] ?? name;
      return (o as Record<string, unknown>)[option] !== undefined;
    });
    if (duplicates.length > 0) {
      throw invalid(
        'headers',
        `Duplicated headers defined [${duplicates.join(',')}]. Please either define the header in the ` +
          "top level options OR in the 'headers' key.",
      );
    }
    for (const [name, value] of Object.entries(o.headers)) {
      if (!HEADER_NAME.test(name)) throw invalid('headers', `Invalid header name '${name}'.`);
      if ((typeof value !== 'string' && typeof value !== 'number') || /[\r\n\0]/.test(String(value))) {
        throw invalid('headers', `Invalid value for header '${name}'.`);
      }
      headers[name] = String(value);
    }
  }

  const vapid = o.vapidDetails ? o.vapidDetails : null;
  if (vapid !== null && typeof vapid !== 'object') throw invalid('vapidDetails', 'vapidDetails must be an object.');

  if (o.timeout !== undefined) nonNegative('timeout', o.timeout, false);
  if (o.retries !== undefined) nonNegative('retries', o.retries, true);
  if (o.retryDelay !== undefined) nonNegative('retryDelay', o.retryDelay, false);
  if (o.maxRetryAfter !== undefined) nonNegative('maxRetryAfter', o.maxRetryAfter, false);
  if (o.sleep !== undefined && typeof o.sleep !== 'function') throw invalid('sleep', 'sleep must be a function.');
  if (o.tls !== undefined && (o.tls === null || typeof o.tls !== 'object')) throw invalid('tls', 'tls must be an object.');
  if (o.agent !== undefined && !(o.agent instanceof Agent)) {
    throw invalid('agent', 'agent must be an http.Agent or https.Agent.');
  }

  let receipt: boolean | string = false;
  if (o.receipt !== undefined && o.receipt !== false) {
    if (o.receipt !== true && !isHttpUrl(o.receipt)) throw invalid('receipt', 'receipt must be true or the URL of a receipt subscription.');
    receipt = o.receipt;
  }

  return {
    ttl,
    urgency,
    topic,
    encoding,
    vapid,
    headers,
    timeoutMs: o.timeout || undefined,
    retries: o.retries ?? DEFAULT_RETRIES,
    retryDelayMs: o.retryDelay ?? DEFAULT_RETRY_DELAY_MS,
    maxRetryAfterMs: o.maxRetryAfter ?? DEFAULT_MAX_RETRY_AFTER_MS,
    sleep: o.sleep,
    tls: o.tls,
    agent: o.agent,
    http2: o.http2 ?? true,
    receipt,
  };
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string' || !URL.canParse(value)) return false;
  const { protocol } = new URL(value);
  return protocol === 'https:' || protocol === 'http:';
}
