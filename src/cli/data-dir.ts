// Where the CLI keeps the data dir when none is given (--data-dir, WEBPUSHD_DATA_DIR, dataDir).
// The data dir holds the secret of every push URL: a service started on another, empty one makes
// a new secret, and every push URL handed out before answers 404. So the default must not follow
// whatever directory the command is started from: it is ./data only in a webpushd checkout (the
// quick start's `npm start`) or where ./data already holds a secret (a data dir made there
// before); anywhere else a state directory of the user: systemd's StateDirectory=
// ($STATE_DIRECTORY), else $XDG_STATE_HOME/webpushd, else ~/.local/state/webpushd.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { SECRET_FILE } from '../tokens/secret-file.ts';

/** The name of the root package of a webpushd checkout. */
const CHECKOUT_PACKAGE = 'webpushd-workspace';

/** The data dir, absolute: `given` (relative to `cwd`), or the default above when undefined. */
export function resolveDataDir(given: string | undefined, cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): string {
  if (given !== undefined) return resolve(cwd, given);
  const local = resolve(cwd, 'data');
  if (existsSync(join(local, SECRET_FILE)) || isCheckout(cwd)) return local;
  const systemd = env.STATE_DIRECTORY?.split(':')[0];
  if (systemd) return resolve(systemd);
  const xdg = env.XDG_STATE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'state'), 'webpushd');
}

function isCheckout(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === CHECKOUT_PACKAGE;
  } catch {
    return false;
  }
}
