// `webpushd cancel --location URL` (an application server takes back a message it sent) and
// `webpushd ack --url URL` (an RFC 8030 user agent acknowledges one, after `ua listen --no-ack`):
// both are a DELETE of the message URL (RFC 8030 6.2), which the push service cannot tell apart.
// Prints one JSON line. Exit codes: 0 done, 1 already gone (410) or refused, 2 bad arguments.
import { Command, Option } from 'commander';
import { PushClient } from '../sdk/client.ts';
import { WebPushError } from '../sdk/errors.ts';
import { caOption, httpUrl, timeoutOption } from './args.ts';
import { traceOf, traceOptions } from './trace.ts';

interface DeleteOpts {
  url: string;
  ca?: Buffer;
  timeout: number;
  trace?: boolean;
  traceSecrets?: boolean;
}

function deleteCommand(name: string, flag: string, done: string, description: string): Command {
  const cmd = new Command(name)
    .description(description)
    .addOption(new Option(`${flag} <url>`, 'the message URL (a send\'s "location"; for a user agent, the "version" `ua listen` printed)').argParser(httpUrl('a message')).makeOptionMandatory())
    .addOption(caOption())
    .addOption(timeoutOption(30_000));
  return traceOptions(cmd)
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .action(async (o: DeleteOpts & Record<string, unknown>) => {
      const url = (o.location ?? o.url) as string;
      const trace = traceOf(o);
      const client = new PushClient(trace ? { trace } : {});
      const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
      try {
        const deleted = await client.cancelNotification(url, { timeout: o.timeout, ...(o.ca ? { tls: { ca: o.ca } } : {}) });
        if (deleted) print({ [done]: true });
        else {
          print({ [done]: false, statusCode: 410, note: 'the message is already gone: delivered, expired or cancelled' });
          process.exitCode = 1;
        }
      } catch (err) {
        process.exitCode = 1;
        if (err instanceof WebPushError) print({ [done]: false, statusCode: err.statusCode, body: err.body });
        else print({ [done]: false, error: (err as Error).message });
      } finally {
        await client.close();
      }
    });
}

export function cancelCommand(): Command {
  return deleteCommand('cancel', '--location', 'cancelled', 'Cancel a message not yet delivered: DELETE on its URL (the "location" `send` printed)');
}

export function ackCommand(): Command {
  return deleteCommand('ack', '--url', 'acknowledged', 'Acknowledge a message received over RFC 8030 (`ua listen --no-ack`): DELETE on its URL');
}
