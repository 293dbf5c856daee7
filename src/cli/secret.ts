// `webpushd secret rotate|retire`: manage the token secrets, in <data dir>/secret.key (a running
// server reads the file again on SIGHUP, or at its next start) or, with --store, in Redis (every
// running node is told at once, and re-reads them within --cluster-refresh-interval-ms anyway).
import { Command, InvalidArgumentError, Option } from 'commander';
import { join } from 'node:path';
import { DEFAULTS } from '../config.ts';
import { announceChange } from '../router/cluster-router.ts';
import { RedisStore } from '../store/redis-store.ts';
import { SECRET_FILE, newSecretKey, retireSecrets, rotateSecrets } from '../tokens/secret-file.ts';
import { resolveDataDir } from './data-dir.ts';

interface Where {
  dataDir?: string;
  store?: string;
}

// no default here: the same one as `serve` (./data in a checkout, else a state directory)
const dataDirOption = () => new Option('--data-dir <dir>', 'the data dir of the server (default: as for serve)').env('WEBPUSHD_DATA_DIR');
const storeOption = () => new Option('--store <url>', 'the Redis the nodes share (their secrets are kept there): redis://…, rediss://…').env('WEBPUSHD_STORE');
/** An empty variable counts as unset, as for serve. */
const dataDirOf = (o: Where) => resolveDataDir(o.dataDir || undefined);

async function run(action: () => string | Promise<string>): Promise<void> {
  try {
    process.stdout.write(`${await action()}\n`);
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

/** Changes the secrets in Redis, then tells the running nodes. */
async function inRedis(url: string, change: (store: RedisStore) => Promise<string>): Promise<string> {
  const store = await RedisStore.open({ url, maxStoredPerUserAgent: DEFAULTS.maxStoredPerUserAgent });
  try {
    const done = await change(store);
    await announceChange(store, 'secrets');
    return done;
  } finally {
    await store.close();
  }
}

export function secretCommand(): Command {
  const secret = new Command('secret').description(`Rotate the secrets that seal push URLs (<data dir>/${SECRET_FILE}, or in Redis with --store)`);
  secret
    .command('rotate')
    .description('Add a new secret that seals new URLs (file: once the server reloads on SIGHUP or restarts; Redis: on every node at once); old URLs keep working')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .action((o: Where) =>
      run(() => {
        if (o.store) {
          return inRedis(o.store, async (store) => {
            const n = await store.rotateTokenSecrets(newSecretKey());
            return `added a new secret in Redis (${n} in all); the running nodes seal with it now`;
          });
        }
        const dir = dataDirOf(o);
        const n = rotateSecrets(dir);
        return `added a new secret to ${join(dir, SECRET_FILE)} (${n} in all); send the server SIGHUP (or restart it) to use it`;
      }),
    );
  secret
    .command('retire')
    .description('Drop all but the newest N secrets: URLs sealed by the dropped ones become invalid (404)')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(
      new Option('--keep <n>', 'how many of the newest secrets to keep').makeOptionMandatory().argParser((v: string) => {
        if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('expected an integer of at least 1');
        return Number(v);
      }),
    )
    .action((o: Where & { keep: number }) =>
      run(() => {
        if (o.store) {
          return inRedis(o.store, async (store) => {
            const dropped = await store.retireTokenSecrets(o.keep);
            return `dropped ${dropped} secret(s) in Redis, kept at most ${o.keep}; the running nodes apply it now`;
          });
        }
        const dir = dataDirOf(o);
        const dropped = retireSecrets(dir, o.keep);
        return `dropped ${dropped} secret(s) from ${join(dir, SECRET_FILE)}, kept ${o.keep}; send the server SIGHUP (or restart it) to apply`;
      }),
    );
  return secret;
}
