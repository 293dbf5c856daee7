// `webpushd aggregate create|members|add|remove|delete|send`: webpushd's aggregates (one send,
// many subscriptions; docs/RFC8030.md "Aggregates") through the SDK, every request signed with the
// owner's VAPID key. Prints JSON lines (members: one push URL a line). Exit codes: 0 done, 1 the
// push service refused it (or could not be reached; for send: any member not stored), 2 bad arguments.
import { Command, Option } from 'commander';
import {
  aggregateMembers,
  changeAggregate,
  createAggregate,
  deleteAggregate,
  sendBatchToAggregate,
  sendToAggregate,
  type AggregateOptions,
  type FanoutResult,
} from '../sdk/aggregates.ts';
import { WebPushError, WebPushValidationError } from '../sdk/errors.ts';
import { DEFAULT_TTL } from '../sdk/options.ts';
import type { PushSubscription, Urgency } from '../sdk/types.ts';
import { caOption, httpUrl, integer, timeoutOption } from './args.ts';
import { parseSubscriptions, readText, subscriptionsArg, vapidDetails, vapidOptions, type VapidOpts } from './send.ts';
import { traceOf, traceOptions } from './trace.ts';

const EXIT_REFUSED = 1;
const EXIT_USAGE = 2;

interface CommonOpts extends VapidOpts {
  ca?: Buffer;
  timeout: number;
  trace?: boolean;
  traceSecrets?: boolean;
}

/** `--members FILE`: push URLs one a line, or a subscriptions file (their endpoints). */
function membersFile(path: string): string[] {
  const text = readText(path, '--members');
  if (/^\s*[[{]/.test(text)) return parseSubscriptions(text, path).map((s) => s.endpoint);
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

const collect = (value: string, previous: string[] = []) => [...previous, httpUrl('a push URL')(value)];

/** The options every subcommand takes: the owner's VAPID key, TLS trust, timeout, trace. */
function common(cmd: Command): Command {
  return traceOptions(
    vapidOptions(cmd)
      .addOption(caOption())
      .addOption(timeoutOption(60_000)),
  ).exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE));
}

const aggregateUrl = () => new Option('--url <url>', 'the aggregate\'s URL (what create printed)').argParser(httpUrl('an aggregate')).makeOptionMandatory();
const memberOptions = (cmd: Command, verb: string) =>
  cmd
    .addOption(new Option('--member <push-url>', `a push URL to ${verb} (repeatable)`).argParser(collect))
    .addOption(new Option('--members <file>', `push URLs to ${verb}: one a line, or a subscriptions file (JSON array or lines)`).argParser(membersFile));

/** The SDK's options; the aggregate belongs to the VAPID key, so one is required (exit 2 without). */
function sdkOptions(o: CommonOpts): AggregateOptions {
  const invalid = (message: string): never => {
    throw new WebPushValidationError('vapidDetails', message);
  };
  const vapid = vapidDetails(o, invalid) ?? invalid('an aggregate belongs to a VAPID key: --vapid-keys, or --vapid-public-key and --vapid-private-key, with --vapid-subject');
  const trace = traceOf(o);
  return {
    vapidDetails: vapid,
    timeout: o.timeout,
    ...(o.ca ? { tls: { ca: o.ca } } : {}),
    ...(trace ? { trace } : {}),
  };
}

const print = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);

/** Runs `work`, printing a refusal or failure as one JSON line with exit code 1 (2 for invalid input). */
async function run(work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (err instanceof WebPushError) {
      process.exitCode = EXIT_REFUSED;
      let body: unknown = err.body;
      try {
        body = JSON.parse(err.body);
      } catch {
        // not JSON: printed as the text it is
      }
      print({ error: 'refused', statusCode: err.statusCode, body });
    } else if (err instanceof WebPushValidationError) {
      process.exitCode = EXIT_USAGE;
      print({ error: 'invalid', field: err.field, message: err.message });
    } else {
      process.exitCode = EXIT_REFUSED;
      print({ error: (err as Error).message });
    }
  }
}

/** One line per member, then the counts; exit 1 when any member's message was not stored. */
function printFanout(r: FanoutResult): void {
  for (const [push, m] of Object.entries(r.members)) print({ push, ...m });
  print({ stored: r.stored, gone: r.gone, refused: r.refused });
  if (r.gone + r.refused > 0) process.exitCode = EXIT_REFUSED;
}

type MemberOpts = CommonOpts & { url: string; member?: string[]; members?: string[] };
const urlsOf = (o: { member?: string[]; members?: string[] }) => [...(o.member ?? []), ...(o.members ?? [])];

export function aggregateCommand(): Command {
  const cmd = new Command('aggregate').description('Aggregates of a webpushd service: one send reaches many subscriptions (owned by your VAPID key)');

  cmd.addCommand(
    memberOptions(common(new Command('create').description('Create an aggregate of push URLs; prints {"url","members","refused"}')), 'put in it')
      .addOption(new Option('--service <url>', 'the push service\'s base URL (https://push.example.org)').argParser(httpUrl('the push service')).makeOptionMandatory())
      .action((o: CommonOpts & { service: string; member?: string[]; members?: string[] }) =>
        run(async () => {
          print(await createAggregate(o.service, urlsOf(o), sdkOptions(o)));
        }),
      ),
  );
  cmd.addCommand(
    common(new Command('members').description('Print the members\' push URLs, one a line'))
      .addOption(aggregateUrl())
      .action((o: CommonOpts & { url: string }) =>
        run(async () => {
          for (const url of await aggregateMembers(o.url, sdkOptions(o))) process.stdout.write(`${url}\n`);
        }),
      ),
  );
  for (const [name, verb] of [
    ['add', 'add'],
    ['remove', 'remove'],
  ] as const) {
    cmd.addCommand(
      memberOptions(common(new Command(name).description(`${name === 'add' ? 'Add members to' : 'Remove members from'} an aggregate (one JSON Merge Patch); prints {"members","refused"}`)), verb)
        .addOption(aggregateUrl())
        .action((o: MemberOpts) =>
          run(async () => {
            print(await changeAggregate(o.url, { [name]: urlsOf(o) }, sdkOptions(o)));
          }),
        ),
    );
  }
  cmd.addCommand(
    common(new Command('delete').description('Delete an aggregate'))
      .addOption(aggregateUrl())
      .action((o: CommonOpts & { url: string }) =>
        run(async () => {
          await deleteAggregate(o.url, sdkOptions(o));
          print({ deleted: true });
        }),
      ),
  );
  cmd.addCommand(
    common(
      new Command('send').description(
        'Send to every member: an empty message, or with --subscriptions and --data a message encrypted for each; prints a line per member and the counts',
      ),
    )
      .addOption(aggregateUrl())
      .addOption(new Option('--subscriptions <file>', 'the members\' subscriptions (with keys), a JSON array or lines: --data is encrypted for each').argParser(subscriptionsArg))
      .addOption(new Option('--data <text>', 'with --subscriptions: the message text (UTF-8)'))
      .addOption(new Option('--ttl <seconds>', 'how long the push service keeps each message').argParser(integer(0)).default(DEFAULT_TTL))
      .addOption(new Option('--topic <topic>', 'replaces an undelivered message of the same topic'))
      .addOption(new Option('--urgency <level>', 'delivery urgency (default: normal)').choices(['very-low', 'low', 'normal', 'high']))
      .addOption(new Option('--encoding <encoding>', 'with --subscriptions: content encoding').choices(['aes128gcm', 'aesgcm']).default('aes128gcm'))
      .action((o: CommonOpts & { url: string; subscriptions?: PushSubscription[]; data?: string; ttl: number; topic?: string; urgency?: Urgency; encoding: 'aes128gcm' | 'aesgcm' }) =>
        run(async () => {
          if (o.data !== undefined && !o.subscriptions) {
            process.exitCode = EXIT_USAGE;
            print({ error: 'invalid', message: '--data needs --subscriptions: a message is encrypted for each member\'s keys' });
            return;
          }
          const options = { ...sdkOptions(o), TTL: o.ttl, ...(o.topic ? { topic: o.topic } : {}), ...(o.urgency ? { urgency: o.urgency } : {}) };
          printFanout(
            o.subscriptions
              ? await sendBatchToAggregate(o.url, o.subscriptions.map((subscription) => ({ subscription, payload: o.data ?? null })), { ...options, contentEncoding: o.encoding })
              : await sendToAggregate(o.url, options),
          );
        }),
      ),
  );
  return cmd;
}
