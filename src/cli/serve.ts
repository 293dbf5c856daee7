// `webpushd serve`: every option is a flag, an environment variable WEBPUSHD_<NAME> and a key of
// the optional JSON config file (--config, WEBPUSHD_CONFIG); see src/config/schema.ts and
// docs/CONFIGURATION.md. Precedence: flag > environment > file > default.
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { DEFAULTS, type Config } from '../config.ts';
import { CONFIG_ENV, ConfigError, ENV_PREFIX, configToJson, loadConfig } from '../config/load.ts';
import { OPTIONS } from '../config/schema.ts';
import { startServer } from '../server.ts';
import { firefoxServerUrl } from '../web/demo.ts';
import { resolveDataDir } from './data-dir.ts';

export function serveCommand(): Command {
  const cmd = new Command('serve').description(
    'Run the push service (WebSocket for user agents and HTTP API for application servers on one port)',
  );
  cmd.addOption(new Option('--config <file>', `JSON config file (env ${CONFIG_ENV})`));
  cmd.addOption(new Option('--print-config', 'print the effective configuration as JSON and exit'));
  const attribute = new Map<keyof Config, string>();
  for (const spec of OPTIONS) {
    const shown = shownDefault(DEFAULTS[spec.key]);
    const option = new Option(
      `--${spec.flag} <${spec.arg}>`,
      `${spec.help} (env ${ENV_PREFIX}${spec.env}${shown === undefined ? '' : `; default ${String(shown)}`})`,
    );
    if (spec.kind.type === 'broadcasts') option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    attribute.set(spec.key, option.attributeName());
    cmd.addOption(option);
  }
  // an unknown option or a missing value is a bad option like any other: exit 2 (help: 0)
  cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
  return cmd.action(async (o: Record<string, unknown>) => {
    let config: Config;
    const flags: Partial<Record<keyof Config, string | string[]>> = {};
    for (const [key, name] of attribute) if (o[name] !== undefined) flags[key] = o[name] as string | string[];
    const load = () => loadConfig({ flags, env: process.env, configFile: o.config as string | undefined });
    try {
      const loaded = load();
      config = loaded.config;
      // absolute, and a default that does not depend on the directory it is started from
      config.dataDir = resolveDataDir(loaded.sources.dataDir === 'default' ? undefined : config.dataDir);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`config error: ${err.message}\n`);
      process.exit(2);
    }
    if (o.printConfig) {
      process.stdout.write(`${JSON.stringify(configToJson(config), null, 2)}\n`);
      process.exit(0);
    }
    const log = pino({ level: config.logLevel });
    // whatever the service creates (database, WAL, secrets, demo keys) is for its own user only
    process.umask(0o077);
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      server = await startServer(config, log);
    } catch (err) {
      // e.g. the port is taken or the certificate is unreadable: one clear line, no stack
      log.fatal({ err: (err as Error).message }, 'could not start');
      process.exit(1);
    }
    const newSecret = server.secretsCreated;
    const inRedis = config.store !== undefined && config.secrets === 'store';
    if (newSecret && inRedis) log.info('created a new token secret in Redis: a new set of push URLs for every node');
    else if (newSecret) log.info({ dataDir: config.dataDir }, 'created a new token secret: a new set of push URLs (those of any other data dir answer 404 here)');
    process.stderr.write(`${startLine(server.url, config.demo === 'on', config.dataDir, newSecret, inRedis)}\n`);
    let stopping = false;
    const stop = (signal: string) => {
      // A repeated signal (impatient supervisor, Ctrl-C twice) must not kill the process
      // before the last commit: keep the handler and let the first shutdown finish.
      if (stopping) return void log.info({ signal }, 'already shutting down');
      stopping = true;
      log.info({ signal }, 'shutting down');
      server.close().then(
        () => {
          log.info('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    // token secrets after `webpushd secret rotate|retire`, a renewed TLS certificate: without
    // dropping a connection
    process.on('SIGHUP', () => {
      server.reload();
      // the configured broadcast versions (flags, environment, file) are applied again
      let broadcasts: Map<string, string>;
      try {
        broadcasts = load().config.broadcasts;
      } catch (err) {
        return void log.error({ err: (err as Error).message }, 'reloading the configuration failed: the broadcast versions in use stay');
      }
      server.setBroadcasts(Object.fromEntries(broadcasts)).catch((err: unknown) => log.error({ err }, 'applying the configured broadcast versions failed'));
    });
  });
}

/**
 * The line for a person starting the service (the JSON log is on stdout, this on stderr): where
 * the demo is, what Firefox's dom.push.serverURL must be, and which data dir (or Redis) holds the secret.
 */
export function startLine(url: string, demo: boolean, dataDir: string, newSecret: boolean, secretsInRedis = false): string {
  const ws = firefoxServerUrl(url);
  return [
    `webpushd serves ${url}`,
    demo ? `demo ${url}/demo/` : 'demo off',
    `Firefox about:config dom.push.serverURL = ${ws}${ws.startsWith('wss:') ? '' : ' (and dom.push.testing.allowInsecureServerURL = true)'}`,
    secretsInRedis
      ? `data dir ${dataDir} (token secrets in Redis${newSecret ? ': NEW secret created, a new set of push URLs' : ', keeping earlier push URLs valid'})`
      : `data dir ${dataDir} ${newSecret ? '(NEW secret created: a new set of push URLs; those of any other data dir answer 404 here)' : '(its secret keeps earlier push URLs valid)'}`,
  ].join(' | ');
}

/** A default as --help shows it (as the flag would spell it); undefined for none. */
function shownDefault(value: Config[keyof Config]): string | undefined {
  if (value instanceof Map) return [...value].map(([k, v]) => `${k}=${v}`).join(',') || undefined;
  if (Array.isArray(value)) return value.join(',') || undefined;
  return value === undefined ? undefined : String(value);
}
