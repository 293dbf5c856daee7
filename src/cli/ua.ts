// `webpushd ua`: a user agent on the command line. `subscribe` prints the subscription an
// application server needs; `listen` prints each message as one JSON line on stdout and keeps
// running (reconnecting) until SIGINT/SIGTERM, or with --nowait (RFC 8030) until what waited was
// printed. Diagnostics (and --trace) go to stderr as JSON lines. Either protocol: the WebSocket
// one of Firefox/autopush, or RFC 8030 over HTTP/2.
import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { PushUserAgent, RetryLater, isVapidPublicKey, type UaProtocol, type UrgencyLevel } from '../ua/client.ts';
import { URGENCY_LEVELS } from '../ua/http2-client.ts';
import type { PushMessage } from '../ua/message.ts';
import { toWebSocketUrl } from '../ua/websocket-client.ts';
import { caOption } from './args.ts';
import { traceOf, traceOptions } from './trace.ts';

function parseServer(value: string): string {
  try {
    toWebSocketUrl(value);
  } catch {
    throw new InvalidArgumentError('expected a ws://, wss://, http:// or https:// URL');
  }
  return value;
}

function parseVapidKey(value: string): string {
  if (!isVapidPublicKey(value)) throw new InvalidArgumentError('expected a VAPID public key: an uncompressed P-256 point in base64url');
  return value;
}

/** One diagnostic line on stderr; stdout carries only results. */
function diag(event: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function withDiagnostics(client: PushUserAgent): PushUserAgent {
  client.on('connecting', (e) => diag('connecting', { ...e }));
  client.on('connect', (e) => diag('connected', { ...e, protocol: client.protocol }));
  client.on('disconnect', (e) => {
    const fields: Record<string, unknown> = { ...e };
    if (e.code === 4774) fields.note = 'the push service asked to back off (is another client using the same state file?)';
    diag(e.retryInMs === null ? 'disconnected' : 'reconnecting', fields);
  });
  client.on('reset', (e) => diag('reset', { ...e, note: 'the push service no longer knows this user agent: its subscriptions were dropped' }));
  client.on('messageError', (e) => diag('message-error', { channelID: e.channelID, version: e.version, code: e.code, error: e.error.message }));
  client.on('error', (err) => diag('error', { error: err.message }));
  return client;
}

/** The line `listen` prints for a message. */
export function messageLine(m: PushMessage): string {
  const payload = m.empty ? { empty: true } : m.text !== undefined ? { text: m.text } : { base64: m.data.toString('base64') };
  return JSON.stringify({ channelID: m.channelID, endpoint: m.endpoint, version: m.version, ...payload });
}

interface CommonOptions {
  state: string;
  server?: string;
  ca?: Buffer;
  protocol?: UaProtocol;
  urgency?: UrgencyLevel;
  nowait?: boolean;
  ack?: boolean;
  trace?: boolean;
  traceSecrets?: boolean;
}

function createClient(cmd: Command, o: CommonOptions): PushUserAgent {
  try {
    return withDiagnostics(
      new PushUserAgent({
        statePath: o.state,
        server: o.server,
        ca: o.ca,
        ...(o.protocol !== undefined ? { protocol: o.protocol } : {}),
        ...(o.urgency !== undefined ? { urgency: o.urgency } : {}),
        ...(o.nowait ? { nowait: true } : {}),
        ...(o.ack === false ? { ack: false } : {}),
        ...(o.trace ? { trace: traceOf(o)! } : {}),
      }),
    );
  } catch (err) {
    cmd.error(`error: ${(err as Error).message}`);
  }
}

const STATE_HELP = 'the state file: protocol, subscriptions and their private keys (JSON, mode 0600)';

/** --protocol: no default in commander, so that an existing state file's protocol applies. */
function protocolOption(description: string): Option {
  return new Option('--protocol <protocol>', description).choices(['websocket', 'http2']);
}

export function uaCommand(): Command {
  const ua = new Command('ua').description('A user agent: subscribe through a push service and listen for messages');

  const subscribe = ua
    .command('subscribe')
    .description(
      'Subscribe and print the subscription JSON an application server needs, {"endpoint","expirationTime","keys":{"p256dh","auth"}}, on one line. ' +
        'The state file is created when missing. Over http2 the subscription joins the set of the earlier ones, ' +
        'and a running `ua listen` on the same state file picks it up; over websocket it pauses that listener for up to a minute.',
    )
    .requiredOption('--state <file>', STATE_HELP)
    .option('--server <url>', 'the push service, ws(s):// or http(s):// (required when the state file does not exist yet)', parseServer)
    .addOption(
      protocolOption(
        "websocket is Firefox/autopush's protocol, http2 is RFC 8030 (HTTP/2 server push; h2c for http://). " +
          "Default: the state file's, else websocket",
      ),
    )
    .option('--vapid-key <key>', "restrict the subscription to this application server's VAPID public key (base64url)", parseVapidKey)
    .addOption(caOption());
  traceOptions(subscribe).action(async function (this: Command, o: CommonOptions & { vapidKey?: string }) {
    if (o.server === undefined && !existsSync(o.state)) {
      this.error(`error: --server is required: state file ${o.state} does not exist yet`);
    }
    const client = createClient(this, o);
    try {
      await client.connect();
      const subscription = await client.subscribe(o.vapidKey !== undefined ? { vapidKey: o.vapidKey } : {});
      process.stdout.write(`${JSON.stringify(subscription)}\n`);
    } catch (err) {
      await client.close();
      this.error(`error: ${(err as Error).message}`);
    }
    await client.close();
  });

  const listen = ua
    .command('listen')
    .description(
      'Receive messages and print each as one JSON line: {"channelID","endpoint","version"} plus "text" (valid UTF-8), ' +
        '"base64" (other bytes) or "empty": true (no payload). Each is acknowledged after it was printed (unless --no-ack). ' +
        'Over http2 "version" is the message URL (what `webpushd ack --url` takes). ' +
        'The server and protocol come from the state file. ' +
        'Reconnects when the connection drops; stops on SIGINT/SIGTERM (exit 0). Diagnostics go to stderr as JSON lines.',
    )
    .requiredOption('--state <file>', `${STATE_HELP}; made by \`ua subscribe\``)
    .addOption(protocolOption("must match the state file's; default: the state file's"))
    .addOption(
      new Option(
        '--urgency <level>',
        'http2 only: receive only messages at least this urgent; the others wait at the push service (default: all)',
      ).choices(URGENCY_LEVELS),
    )
    .addOption(caOption())
    .option('--nowait', 'http2 only: print the messages waiting now, then exit (Prefer: wait=0)')
    .option('--no-ack', 'do not acknowledge: the messages stay at the push service (http2: `webpushd ack --url <version>` acknowledges one)');
  traceOptions(listen).action(async function (this: Command, o: CommonOptions) {
    const client = createClient(this, o);
    if (client.subscriptions().length === 0) diag('warning', { message: `state file ${o.state} holds no subscriptions` });
    // Acknowledged once written: a message that could not be written comes again next time.
    client.on('message', async (m) => {
      await new Promise<void>((resolve, reject) =>
        process.stdout.write(`${messageLine(m)}\n`, (err) => (err ? reject(new RetryLater(err.message)) : resolve())),
      );
    });
    let stopping = false;
    const stop = (why: Record<string, unknown>, exitCode = 0) => {
      if (stopping) return;
      stopping = true;
      diag('stopping', why);
      const exit = (): void => {
        process.exitCode = exitCode;
        // Everything is closed, so the process ends by itself; this is a safety net.
        setTimeout(() => process.exit(exitCode), 2_000).unref();
      };
      client.close().then(exit, (err: unknown) => {
        diag('error', { message: `closing failed: ${(err as Error).message}` });
        exit();
      });
    };
    client.on('drained', () => stop({ drained: true }));
    process.once('SIGINT', () => stop({ signal: 'SIGINT' }));
    process.once('SIGTERM', () => stop({ signal: 'SIGTERM' }));
    // The reader went away (`ua listen | head -1`): stop quietly; anything else is a failure.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => stop({ stdout: err.code ?? err.message }, err.code === 'EPIPE' ? 0 : 1));
    await client.connect({ retry: true }).catch(() => {
      // only when closed before the first session: the signal handler finishes the exit
    });
  });

  const unsubscribe = ua
    .command('unsubscribe')
    .description('Delete a subscription at the push service and from the state file')
    .requiredOption('--state <file>', STATE_HELP)
    .requiredOption('--endpoint <url>', 'the push endpoint of the subscription (or its channelID)')
    .addOption(protocolOption("must match the state file's; default: the state file's"))
    .addOption(caOption());
  traceOptions(unsubscribe).action(async function (this: Command, o: CommonOptions & { endpoint: string }) {
    const client = createClient(this, o);
    if (!client.subscriptions().some((s) => s.endpoint === o.endpoint || s.channelID === o.endpoint.toLowerCase())) {
      this.error(`error: --endpoint: state file ${o.state} has no subscription ${o.endpoint}`);
    }
    try {
      await client.connect();
      await client.unsubscribe(o.endpoint);
      diag('unsubscribed', { endpoint: o.endpoint });
    } catch (err) {
      await client.close();
      this.error(`error: ${(err as Error).message}`);
    }
    await client.close();
  });

  return ua;
}
