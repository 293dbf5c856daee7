// `webpushd send`: one Web Push message to one subscription (or, with --subscriptions, to each
// of a file's), through the application-server SDK. Prints the outcome as one JSON line per
// subscription (and a summary line for many). Exit codes: 0 sent, 1 the push service refused it
// (or could not be reached; for many: any one), 2 bad arguments.
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { MAX_AESGCM_PLAINTEXT_LENGTH } from '../crypto/aesgcm.ts';
import { MAX_PLAINTEXT_LENGTH } from '../crypto/webpush.ts';
import { PushClient } from '../sdk/client.ts';
import { DEFAULT_CONCURRENCY, type SendManyProgress, type SendManyResult } from '../sdk/send-many.ts';
import { WebPushError, WebPushValidationError } from '../sdk/errors.ts';
import { DEFAULT_TTL } from '../sdk/options.ts';
import type { PushSubscription, RequestOptions, Urgency, VapidDetails } from '../sdk/types.ts';
import { httpUrl, integer } from './args.ts';
import { listenUntilStopped } from './receipts.ts';
import { traceOf, traceOptions } from './trace.ts';

const EXIT_REFUSED = 1;
const EXIT_USAGE = 2;

function topic(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(value)) throw new InvalidArgumentError('expected 1 to 32 characters of A-Z a-z 0-9 - _');
  return value;
}

function header(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const colon = value.indexOf(':');
  if (colon <= 0) throw new InvalidArgumentError('expected NAME:VALUE');
  return { ...previous, [value.slice(0, colon).trim()]: value.slice(colon + 1).trim() };
}

/** A file's text, or an argument error naming the option. */
export function readText(path: string, option: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`${option}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidArgumentError(`${what} is not valid JSON (${(err as Error).message})`);
  }
}

/** A JSON string (starting with `{`) or the path of a JSON file. */
function subscriptionArg(value: string): PushSubscription {
  const inline = value.trimStart().startsWith('{');
  const json = parseJson(inline ? value : readText(value, 'subscription file'), inline ? 'the subscription' : value);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidArgumentError('expected a subscription object {"endpoint", "keys": {"p256dh", "auth"}}');
  }
  return json as PushSubscription;
}

/** A file of subscriptions: a JSON array, or JSON lines (one subscription object per line). */
export function subscriptionsArg(path: string): PushSubscription[] {
  return parseSubscriptions(readText(path, '--subscriptions'), path);
}

/** The subscriptions of a file's text (`path` names it in errors). */
export function parseSubscriptions(text: string, path: string): PushSubscription[] {
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (text.trimStart().startsWith('[')) {
    const list = parseJson(text, path);
    if (!Array.isArray(list) || !list.every(isObject)) throw new InvalidArgumentError(`${path}: expected an array of subscription objects`);
    return list as PushSubscription[];
  }
  const list: PushSubscription[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const json = parseJson(line, `${path} line ${i + 1}`);
    if (!isObject(json)) throw new InvalidArgumentError(`${path} line ${i + 1}: expected a subscription object`);
    list.push(json as PushSubscription);
  }
  return list;
}

/** The file `webpushd vapid generate` prints: {"publicKey","privateKey"} (and optionally "subject"). */
function vapidKeysArg(path: string): Partial<VapidDetails> {
  const json = parseJson(readText(path, 'VAPID keys file'), path) as Record<string, unknown> | null;
  if (typeof json !== 'object' || json === null || typeof json.publicKey !== 'string' || typeof json.privateKey !== 'string') {
    throw new InvalidArgumentError(`${path} does not hold {"publicKey","privateKey"} (as printed by webpushd vapid generate)`);
  }
  return {
    publicKey: json.publicKey,
    privateKey: json.privateKey,
    ...(typeof json.subject === 'string' ? { subject: json.subject } : {}),
  };
}

/** The option to blame for an SDK validation error. */
const OPTION_OF_FIELD: [prefix: string, option: string][] = [
  ['subscription', '--subscription'],
  ['payload', '--data'],
  ['vapidDetails.subject', '--vapid-subject'],
  ['vapidDetails.publicKey', '--vapid-public-key'],
  ['vapidDetails.privateKey', '--vapid-private-key'],
  ['TTL', '--ttl'],
  ['topic', '--topic'],
  ['urgency', '--urgency'],
  ['contentEncoding', '--encoding'],
  ['headers', '--header'],
  ['timeout', '--timeout'],
  ['retries', '--retries'],
  ['receipt', '--receipt'],
];

/** The longest message of each encoding whose encrypted body fits the 4096 bytes every push service accepts (RFC 8030 7.2). */
export const MAX_MESSAGE_BYTES = { aes128gcm: MAX_PLAINTEXT_LENGTH, aesgcm: MAX_AESGCM_PLAINTEXT_LENGTH } as const;

interface SendOpts extends VapidOpts {
  subscription?: PushSubscription;
  subscriptions?: PushSubscription[];
  concurrency: number;
  receipt?: true | string;
  trace?: boolean;
  traceSecrets?: boolean;
  data?: string;
  file?: string;
  ttl: number;
  topic?: string;
  urgency?: Urgency;
  encoding: 'aes128gcm' | 'aesgcm';
  ca?: string;
  timeout: number;
  retries: number;
  header?: Record<string, string>;
  http2: boolean;
}

const VAPID_ENV_HELP = `The VAPID options also read WEBPUSHD_VAPID_SUBJECT, WEBPUSHD_VAPID_PUBLIC_KEY,
WEBPUSHD_VAPID_PRIVATE_KEY and WEBPUSHD_VAPID_KEYS (keep private keys off the command line).`;

const SEND_HELP = `
Prints one JSON line: {"ok":true,"statusCode":201,"location":"...","ttl":...} or
{"ok":false,"statusCode":410,"gone":true,"body":{...}}. With --subscriptions: one such line per
subscription (with its "index" in the file and its "endpoint"), in the order they finish, then
{"summary":{"total","sent","gone","failed","seconds"}}; a progress bar on stderr when it is a terminal.
Exit codes: 0 sent (every one), 1 refused by the push service (or unreachable; any one), 2 bad arguments.
${VAPID_ENV_HELP}`;

const RECEIPT_SUBSCRIBE_HELP = `
Prints the send's JSON line with "receiptSubscription" (the URL for \`send --receipt URL\` and
\`receipts listen --url\`), then one line per receipt, {"status":204,"delivered":true,"message":URL},
until SIGINT/SIGTERM (exit 0). Exit codes: 1 the send was refused (or the listening failed), 2 bad arguments.
${VAPID_ENV_HELP}`;

const vapidOpt = (flags: string, description: string, env: string) => new Option(flags, description).env(`WEBPUSHD_${env}`);

/** The VAPID options (also read from WEBPUSHD_VAPID_*): a key pair file, or the two keys, and the contact. */
export function vapidOptions(cmd: Command): Command {
  return cmd
    .addOption(vapidOpt('--vapid-subject <mailto-or-https>', 'VAPID contact: a mailto: address or https: URL', 'VAPID_SUBJECT'))
    .addOption(vapidOpt('--vapid-public-key <base64url>', 'VAPID public key (with --vapid-private-key)', 'VAPID_PUBLIC_KEY'))
    .addOption(vapidOpt('--vapid-private-key <base64url>', 'VAPID private key (with --vapid-public-key)', 'VAPID_PRIVATE_KEY'))
    .addOption(
      vapidOpt('--vapid-keys <file>', 'VAPID key pair file, as printed by `webpushd vapid generate`', 'VAPID_KEYS')
        .argParser(vapidKeysArg)
        .conflicts(['vapidPublicKey', 'vapidPrivateKey']),
    );
}

export interface VapidOpts {
  vapidSubject?: string;
  vapidPublicKey?: string;
  vapidPrivateKey?: string;
  vapidKeys?: Partial<VapidDetails>;
}

/**
 * `send`, or `receipts subscribe`: one send asking for a new receipt subscription (RFC 8030 5.1
 * makes one only with a message), printed, then its receipts as `receipts listen` prints them.
 */
export function sendCommand(mode: 'send' | 'receipt-subscribe' = 'send'): Command {
  const many = mode === 'send';
  const cmd = new Command(many ? 'send' : 'subscribe').description(
    many
      ? 'Send a Web Push message to a subscription, or to many (encrypted per RFC 8291 for each, optionally signed with VAPID)'
      : 'Send a message asking for a new receipt subscription, print it, then print its receipts as they come (as `receipts listen`)',
  );
  const subscription = new Option('--subscription <json-or-file>', 'the subscription JSON {"endpoint","keys":{"p256dh","auth"}}, inline or a file').argParser(
    subscriptionArg,
  );
  if (!many) cmd.addOption(subscription.makeOptionMandatory());
  else {
    cmd
      .addOption(subscription)
      .addOption(
        new Option('--subscriptions <file>', 'send to each subscription of this file: a JSON array, or JSON lines')
          .argParser(subscriptionsArg)
          .conflicts('subscription'),
      )
      .addOption(
        new Option('--concurrency <n>', 'with --subscriptions: most requests in flight at once').argParser(integer(1)).default(DEFAULT_CONCURRENCY),
      )
      .addOption(
        new Option(
          '--receipt [url]',
          'ask for a receipt (RFC 8030): into this receipt subscription, or without a URL into a new one (printed as "receiptSubscription")',
        ).argParser(httpUrl('a receipt subscription')),
      );
  }
  vapidOptions(cmd)
    .addOption(new Option('--data <text>', 'the message text (UTF-8); without --data or --file the message is empty').conflicts('file'))
    .addOption(new Option('--file <path>', 'send the bytes of this file as the message'))
    .addOption(new Option('--ttl <seconds>', 'how long the push service keeps the message').argParser(integer(0)).default(DEFAULT_TTL))
    .addOption(new Option('--topic <topic>', 'replaces an undelivered message with the same topic (<= 32 of A-Z a-z 0-9 - _)').argParser(topic))
    .addOption(new Option('--urgency <level>', 'delivery urgency (default: normal)').choices(['very-low', 'low', 'normal', 'high']))
    .addOption(new Option('--encoding <encoding>', 'content encoding').choices(['aes128gcm', 'aesgcm']).default('aes128gcm'))
    .addOption(new Option('--ca <file>', 'trust this PEM certificate (e.g. a test push service\'s self-signed one)'))
    .addOption(new Option('--header <name:value>', 'an extra request header (repeatable)').argParser(header))
    .addOption(new Option('--timeout <ms>', 'give up on an attempt after this many milliseconds').argParser(integer(1)).default(30_000))
    .addOption(new Option('--retries <n>', 'retries after 429 and 5xx answers').argParser(integer(0)).default(2))
    .addOption(new Option('--no-http2', 'use HTTP/1.1 even when the push service offers HTTP/2'));
  return traceOptions(cmd)
    .addHelpText(
      'after',
      many ? SEND_HELP : RECEIPT_SUBSCRIBE_HELP,
    )
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
    .action(async function (this: Command, o: SendOpts) {
      const fail = (message: string): never => this.error(`error: ${message}`, { exitCode: EXIT_USAGE });
      if (o.subscription === undefined && o.subscriptions === undefined) fail('--subscription or --subscriptions is required');
      if (!many) o.receipt = true;

      const vapid = vapidDetails(o, fail);
      const payload = o.file !== undefined ? readBytes(o.file, fail) : o.data;
      // checked here, before encrypting, against the size a push service answers 413 above
      const size = typeof payload === 'string' ? Buffer.byteLength(payload) : (payload?.length ?? 0);
      if (size > MAX_MESSAGE_BYTES[o.encoding]) {
        fail(
          `${o.file !== undefined ? '--file' : '--data'}: the message is ${size} bytes; with --encoding ${o.encoding} at most ` +
            `${MAX_MESSAGE_BYTES[o.encoding]} fit, as its encrypted body must fit the 4096 bytes push services accept (413 above)`,
        );
      }
      const options: RequestOptions = {
        TTL: o.ttl,
        contentEncoding: o.encoding,
        timeout: o.timeout,
        retries: o.retries,
        http2: o.http2,
        ...(o.topic ? { topic: o.topic } : {}),
        ...(o.urgency ? { urgency: o.urgency } : {}),
        ...(vapid ? { vapidDetails: vapid } : {}),
        ...(o.header ? { headers: o.header } : {}),
        ...(o.ca !== undefined ? { tls: { ca: readBytes(o.ca, fail, '--ca') } } : {}),
        ...(o.receipt !== undefined ? { receipt: o.receipt } : {}),
      };

      const trace = traceOf(o);
      const client = new PushClient(trace ? { trace } : {});
      try {
        if (o.subscriptions !== undefined) {
          await sendToMany(client, o.subscriptions, payload, options, o.concurrency);
          return;
        }
        const result = await client.sendNotification(o.subscription!, payload, options);
        const ttl = Number(result.headers.ttl ?? o.ttl);
        print({ ok: true, statusCode: result.statusCode, location: result.location, ttl, ...receiptOf(result) });
        if (!many) await listenUntilStopped(result.receiptSubscription, options.tls, trace);
      } catch (err) {
        if (err instanceof WebPushValidationError) {
          const option = OPTION_OF_FIELD.find(([prefix]) => err.field.startsWith(prefix))?.[1];
          fail(option ? `${option}: ${err.message}` : err.message);
        }
        process.exitCode = EXIT_REFUSED;
        if (err instanceof WebPushError) {
          print({
            ok: false,
            statusCode: err.statusCode,
            gone: err.statusCode === 404 || err.statusCode === 410,
            body: parseBody(err.body),
            ...(err.retryAfterMs !== undefined ? { retryAfter: err.retryAfterMs / 1000 } : {}),
          });
        } else {
          const e = err as NodeJS.ErrnoException;
          print({ ok: false, error: e.message, ...(e.code ? { code: e.code } : {}) });
        }
      } finally {
        await client.close();
      }
    });
}

/** The VAPID details the options give, none, or `fail` naming what is missing. */
export function vapidDetails(o: VapidOpts, fail: (message: string) => never): VapidDetails | undefined {
  const publicKey = o.vapidKeys?.publicKey ?? o.vapidPublicKey;
  const privateKey = o.vapidKeys?.privateKey ?? o.vapidPrivateKey;
  const subject = o.vapidSubject ?? o.vapidKeys?.subject;
  if (publicKey === undefined && privateKey === undefined) {
    if (subject !== undefined) fail('--vapid-subject needs a key pair: --vapid-keys, or --vapid-public-key and --vapid-private-key');
    return undefined;
  }
  if (publicKey === undefined) fail('--vapid-private-key needs --vapid-public-key');
  if (privateKey === undefined) fail('--vapid-public-key needs --vapid-private-key');
  if (subject === undefined) fail('--vapid-subject is required with VAPID keys (a mailto: address or https: URL)');
  return { subject: subject!, publicKey: publicKey!, privateKey: privateKey! };
}

function readBytes(path: string, fail: (message: string) => never, option = '--file'): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    return fail(`${option}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function parseBody(body: string): unknown {
  if (body === '') return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return body;
  }
}

function receiptOf(result: { receiptSubscription?: string }): Record<string, unknown> {
  return result.receiptSubscription !== undefined ? { receiptSubscription: result.receiptSubscription } : {};
}

/** The line printed for one subscription of --subscriptions. */
function resultLine(r: SendManyResult): Record<string, unknown> {
  const where = { index: r.index, endpoint: r.subscription.endpoint };
  if (r.outcome === 'sent') return { ...where, ok: true, statusCode: r.statusCode, location: r.location, ...receiptOf(r) };
  if (r.error instanceof WebPushError) {
    return { ...where, ok: false, statusCode: r.statusCode, gone: r.outcome === 'gone', body: parseBody(r.error.body) };
  }
  const e = r.error as NodeJS.ErrnoException;
  return { ...where, ok: false, error: e.message, ...(e.code ? { code: e.code } : {}) };
}

async function sendToMany(
  client: PushClient,
  subscriptions: PushSubscription[],
  payload: string | Buffer | undefined,
  options: RequestOptions,
  concurrency: number,
): Promise<void> {
  const started = performance.now();
  const bar = process.stderr.isTTY ? progressBar(process.stderr) : null;
  const summary = await client.sendMany(subscriptions, payload, {
    ...options,
    concurrency,
    onResult: (r, progress) => {
      print(resultLine(r));
      bar?.update(progress);
    },
  });
  bar?.done();
  const { total, sent, gone, failed } = summary;
  const seconds = Math.round((performance.now() - started) / 10) / 100;
  print({ summary: { total, sent, gone, failed, seconds } });
  if (sent < total) process.exitCode = EXIT_REFUSED;
}

/** One line on a terminal, redrawn at most every 100 ms: [#####-----] 500/1000 sent 498 gone 1 failed 1. */
function progressBar(tty: NodeJS.WriteStream): { update(p: SendManyProgress): void; done(): void } {
  const WIDTH = 30;
  let last = 0;
  let shown: SendManyProgress | null = null;
  const draw = (p: SendManyProgress) => {
    const filled = p.total === 0 ? WIDTH : Math.round((p.done / p.total) * WIDTH);
    tty.write(`\r[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${p.done}/${p.total} sent ${p.sent} gone ${p.gone} failed ${p.failed}`);
  };
  return {
    update(p) {
      shown = p;
      const now = performance.now();
      if (now - last < 100 && p.done < p.total) return;
      last = now;
      draw(p);
    },
    done() {
      if (shown) tty.write('\r\x1b[K');
    },
  };
}

function print(outcome: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}
