// `webpushd receipts listen --url URL`: an application server's view of its receipts (RFC 8030
// 6.3). Prints each receipt as one JSON line, {"status":204,"delivered":true,"message":URL}
// (410: never delivered), and keeps listening until SIGINT/SIGTERM, or with --nowait until the
// queued receipts were printed. A receipt subscription is made by a send asking for one:
// `send --receipt`, or `receipts subscribe` (registered by main.ts: it is `send`'s parser).
import { Command, Option } from 'commander';
import { WebPushError } from '../sdk/errors.ts';
import { listenReceipts } from '../sdk/receipts.ts';
import type { Trace } from '../sdk/trace.ts';
import type { PushTlsOptions } from '../sdk/types.ts';
import { caOption, httpUrl } from './args.ts';
import { traceOf, traceOptions } from './trace.ts';

interface ListenOpts {
  url: string;
  nowait?: boolean;
  ca?: Buffer;
  trace?: boolean;
  traceSecrets?: boolean;
}

export function receiptsCommand(): Command {
  const receipts = new Command('receipts').description('Receipts of messages sent with `send --receipt` or `receipts subscribe` (RFC 8030 receipts, over HTTP/2)');
  const listen = receipts
    .command('listen')
    .description(
      'Print each receipt as one JSON line: {"status":204,"delivered":true,"message":URL} when the user agent acknowledged the message ' +
        '(or its sender cancelled it), {"status":410,"delivered":false,...} when it expired, was replaced (Topic) or unsubscribed. ' +
        '"message" is the "location" the send printed. Runs until SIGINT/SIGTERM (exit 0).',
    )
    .addOption(new Option('--url <url>', 'the receipt subscription ("receiptSubscription" of `send --receipt`)').argParser(httpUrl('a receipt subscription (the "receiptSubscription" of `send --receipt`)')).makeOptionMandatory())
    .addOption(new Option('--nowait', 'print the receipts waiting now, then exit (Prefer: wait=0)'))
    .addOption(caOption())
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
  traceOptions(listen).action((o: ListenOpts) => listenUntilStopped(o.url, o.ca ? { ca: o.ca } : undefined, traceOf(o), o.nowait === true));
  return receipts;
}

/** Prints the receipts of `url` as JSON lines until SIGINT/SIGTERM (or, with `nowait`, until those queued were printed). */
export async function listenUntilStopped(url: string | undefined, tls: PushTlsOptions | undefined, trace: Trace | undefined, nowait = false): Promise<void> {
  if (url === undefined) return;
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await listenReceipts(url, {
      onReceipt: (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
      nowait,
      signal: controller.signal,
      ...(tls ? { tls } : {}),
      ...(trace ? { trace } : {}),
    });
  } catch (err) {
    process.exitCode = 1;
    const fields = err instanceof WebPushError ? { statusCode: err.statusCode, body: err.body } : {};
    process.stderr.write(`${JSON.stringify({ event: 'error', error: (err as Error).message, ...fields })}\n`);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
