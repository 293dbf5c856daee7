// `webpushd secret rotate|retire`: manage the token secrets in <data dir>/secret.key. A running
// server reads the file again on SIGHUP (or at its next start).
import { Command, InvalidArgumentError, Option } from 'commander';
import { join } from 'node:path';
import { SECRET_FILE, retireSecrets, rotateSecrets } from '../tokens/secret-file.ts';
import { resolveDataDir } from './data-dir.ts';

// no default here: the same one as `serve` (./data in a checkout, else a state directory)
const dataDirOption = () => new Option('--data-dir <dir>', 'the data dir of the server (default: as for serve)').env('WEBPUSHD_DATA_DIR');
/** An empty variable counts as unset, as for serve. */
const dataDirOf = (o: { dataDir?: string }) => resolveDataDir(o.dataDir || undefined);

function run(action: () => string): void {
  try {
    process.stdout.write(`${action()}\n`);
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

export function secretCommand(): Command {
  const secret = new Command('secret').description(`Rotate the secrets that seal push URLs (<data dir>/${SECRET_FILE})`);
  secret
    .command('rotate')
    .description('Add a new secret that seals new URLs once the server reloads (SIGHUP) or restarts; old URLs keep working')
    .addOption(dataDirOption())
    .action((o: { dataDir?: string }) =>
      run(() => {
        const dir = dataDirOf(o);
        const n = rotateSecrets(dir);
        return `added a new secret to ${join(dir, SECRET_FILE)} (${n} in all); send the server SIGHUP (or restart it) to use it`;
      }),
    );
  secret
    .command('retire')
    .description('Drop all but the newest N secrets: URLs sealed by the dropped ones become invalid (404)')
    .addOption(dataDirOption())
    .addOption(
      new Option('--keep <n>', 'how many of the newest secrets to keep').makeOptionMandatory().argParser((v: string) => {
        if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('expected an integer of at least 1');
        return Number(v);
      }),
    )
    .action((o: { dataDir?: string; keep: number }) =>
      run(() => {
        const dir = dataDirOf(o);
        const dropped = retireSecrets(dir, o.keep);
        return `dropped ${dropped} secret(s) from ${join(dir, SECRET_FILE)}, kept ${o.keep}; send the server SIGHUP (or restart it) to apply`;
      }),
    );
  return secret;
}
