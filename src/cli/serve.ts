// `webpushd serve`: every option also reads an environment variable WEBPUSHD_<NAME>.
import { Command, InvalidArgumentError, Option } from 'commander';
import { pino } from 'pino';
import { DEFAULTS, type Config } from '../config.ts';
import { startServer } from '../server.ts';

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

function broadcast(value: string, previous: Map<string, string>): Map<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected ID=VERSION');
  return new Map(previous).set(value.slice(0, eq), value.slice(eq + 1));
}

const opt = (flags: string, description: string, env: string) => new Option(flags, description).env(`WEBPUSHD_${env}`);

export function serveCommand(): Command {
  return new Command('serve')
    .description('Run the push service (WebSocket for user agents and HTTP API for application servers on one port)')
    .addOption(opt('--host <address>', 'address to listen on', 'HOST').default(DEFAULTS.host))
    .addOption(opt('--port <port>', 'port to listen on (0 = any free port)', 'PORT').argParser(integer(0, 65535)).default(DEFAULTS.port))
    .addOption(opt('--data-dir <dir>', 'holds the SQLite database and the token secret', 'DATA_DIR').default(DEFAULTS.dataDir))
    .addOption(opt('--public-url <url>', 'base of the URLs handed out (default: from host and port)', 'PUBLIC_URL'))
    .addOption(opt('--tls-cert <file>', 'PEM certificate: serve HTTPS and WSS', 'TLS_CERT'))
    .addOption(opt('--tls-key <file>', 'PEM private key for --tls-cert', 'TLS_KEY'))
    .addOption(
      opt('--max-stored <n>', 'messages stored per user agent before sends get 429', 'MAX_STORED')
        .argParser(integer(1))
        .default(DEFAULTS.maxStoredPerUserAgent),
    )
    .addOption(
      opt('--max-message-size <bytes>', 'largest message body accepted (at least 4096)', 'MAX_MESSAGE_SIZE')
        .argParser(integer(4096))
        .default(DEFAULTS.maxMessageBytes),
    )
    .addOption(opt('--max-ttl <seconds>', 'longest TTL kept', 'MAX_TTL').argParser(integer(1)).default(DEFAULTS.maxTtl))
    .addOption(
      opt('--sync <mode>', 'full: fsync every commit; normal: survive process crashes only', 'SYNC')
        .choices(['full', 'normal'])
        .default(DEFAULTS.sync),
    )
    .addOption(opt('--broadcast <id=version>', 'a broadcast version announced to user agents (repeatable)', 'BROADCAST').argParser(broadcast))
    .addOption(opt('--log-level <level>', 'trace, debug, info, warn, error', 'LOG_LEVEL').default(DEFAULTS.logLevel))
    .action(async function (this: Command, o: Record<string, unknown>) {
      if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) this.error('error: --tls-cert and --tls-key go together');
      const config: Config = {
        ...DEFAULTS,
        host: o.host as string,
        port: o.port as number,
        dataDir: o.dataDir as string,
        publicUrl: o.publicUrl as string | undefined,
        tlsCert: o.tlsCert as string | undefined,
        tlsKey: o.tlsKey as string | undefined,
        maxStoredPerUserAgent: o.maxStored as number,
        maxMessageBytes: o.maxMessageSize as number,
        maxTtl: o.maxTtl as number,
        sync: o.sync as Config['sync'],
        broadcasts: (o.broadcast as Map<string, string> | undefined) ?? new Map(),
        logLevel: o.logLevel as string,
      };
      const log = pino({ level: config.logLevel });
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        server = await startServer(config, log);
      } catch (err) {
        // e.g. the port is taken or the certificate is unreadable: one clear line, no stack
        log.fatal({ err: (err as Error).message }, 'could not start');
        process.exit(1);
      }
      const stop = (signal: string) => {
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
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
