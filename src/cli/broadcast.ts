// `webpushd broadcast list|set`: read and change the broadcast versions of a running service
// through its admin listener (GET /broadcasts, PUT /broadcasts/<id>); connected user agents that
// subscribed to a changed id hear of it at once.
import { Command, InvalidArgumentError, Option } from 'commander';
import { ADMIN_TOKEN_FILE, readAdminToken } from '../tokens/admin-token.ts';
import { resolveDataDir } from './data-dir.ts';

interface Common {
  adminUrl: string;
  token?: string;
  dataDir?: string;
}

const common = (cmd: Command): Command =>
  cmd
    .addOption(new Option('--admin-url <url>', "the service's admin listener, e.g. http://127.0.0.1:9100").env('WEBPUSHD_ADMIN_URL').makeOptionMandatory())
    .addOption(new Option('--token <token>', `the admin token (default: the server's ${ADMIN_TOKEN_FILE} in --data-dir)`).env('WEBPUSHD_ADMIN_TOKEN'))
    .addOption(new Option('--data-dir <dir>', 'the data dir of the server, for its admin token (default: as for serve)').env('WEBPUSHD_DATA_DIR'));

function parsePair(value: string, previous: [string, string][] = []): [string, string][] {
  const eq = value.indexOf('=');
  if (eq < 1 || eq === value.length - 1) throw new InvalidArgumentError('expected <id>=<version>');
  return [...previous, [value.slice(0, eq), value.slice(eq + 1)]];
}

async function call(o: Common, path: string, init: RequestInit = {}): Promise<unknown> {
  let token = o.token;
  const dataDir = resolveDataDir(o.dataDir || undefined);
  try {
    token ??= readAdminToken(dataDir);
  } catch (err) {
    throw new Error(`no --token, and no admin token in ${dataDir}: ${(err as Error).message}`, { cause: err });
  }
  const res = await fetch(new URL(path, o.adminUrl), { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${res.status}: ${String(body.reason ?? body.status ?? res.statusText)}`);
  return body;
}

async function run(action: () => Promise<unknown>): Promise<void> {
  try {
    process.stdout.write(`${JSON.stringify(await action())}\n`);
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

export function broadcastCommand(): Command {
  const broadcast = new Command('broadcast').description('Read or change the broadcast versions of a running service (its admin listener)');
  common(broadcast.command('list').description('Print the broadcast versions as JSON')).action((o: Common) => run(() => call(o, '/broadcasts')));
  common(
    broadcast
      .command('set')
      .description('Set broadcast versions; the user agents that subscribed to a changed id are told at once')
      .argument('<id=version...>', 'one or more broadcast ids with their new version', (v: string, prev: [string, string][] | undefined) => parsePair(v, prev)),
  ).action((pairs: [string, string][], o: Common) =>
    run(async () => {
      let last: unknown;
      for (const [id, version] of pairs) {
        last = await call(o, `/broadcasts/${encodeURIComponent(id)}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version }) });
      }
      return last;
    }),
  );
  return broadcast;
}
