// The configuration schema: precedence flag > env > file > default, validation errors that
// name the key and its source, unknown file keys, --print-config's JSON with secrets masked;
// and the secret file's rotate/retire.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULTS, type Config } from '../../src/config.ts';
import { ConfigError, configToJson, loadConfig, type LoadInput } from '../../src/config/load.ts';
import { OPTIONS } from '../../src/config/schema.ts';
import { loadOrCreateSecrets, retireSecrets, rotateSecrets } from '../../src/tokens/secret-file.ts';

const file = (json: unknown) => ({ configFile: 'webpushd.json', readFile: () => JSON.stringify(json) });

function error(input: LoadInput): string {
  try {
    loadConfig(input);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

test('nothing given: the defaults', () => {
  const { config, sources } = loadConfig();
  assert.deepEqual(config, DEFAULTS);
  assert.ok(Object.values(sources).every((s) => s === 'default'));
});

test('every Config field has a flag, an environment variable and a file key', () => {
  assert.deepEqual(OPTIONS.map((o) => o.key).sort(), Object.keys(DEFAULTS).sort());
  assert.equal(new Set(OPTIONS.map((o) => o.flag)).size, OPTIONS.length);
  assert.equal(new Set(OPTIONS.map((o) => o.env)).size, OPTIONS.length);
});

test('precedence: flag > env > file > default', () => {
  const { config, sources } = loadConfig({
    ...file({ port: 9000, maxTtl: 60, host: '10.0.0.1', deliveryBatch: 7 }),
    env: { WEBPUSHD_PORT: '9001', WEBPUSHD_HOST: '10.0.0.2' },
    flags: { port: '9002' },
  });
  assert.equal(config.port, 9002);
  assert.equal(sources.port, 'flag');
  assert.equal(config.host, '10.0.0.2');
  assert.equal(sources.host, 'env');
  assert.equal(config.maxTtl, 60);
  assert.equal(config.deliveryBatch, 7);
  assert.equal(sources.maxTtl, 'file');
  assert.equal(config.sync, 'full');
  assert.equal(sources.sync, 'default');
});

test('WEBPUSHD_CONFIG names the file; --config wins over it', () => {
  const read: string[] = [];
  const readFile = (p: string) => (read.push(p), '{"port": 1}');
  assert.equal(loadConfig({ env: { WEBPUSHD_CONFIG: 'a.json' }, readFile }).config.port, 1);
  loadConfig({ env: { WEBPUSHD_CONFIG: 'a.json' }, configFile: 'b.json', readFile });
  assert.deepEqual(read, ['a.json', 'b.json']);
});

test('the formerly fixed timers and the admin listener are settable', () => {
  const { config } = loadConfig({
    env: {
      WEBPUSHD_HANDSHAKE_TIMEOUT_MS: '1000',
      WEBPUSHD_PING_INTERVAL_MS: '60000',
      WEBPUSHD_PONG_TIMEOUT_MS: '2000',
      WEBPUSHD_MIN_CLIENT_PING_INTERVAL_MS: '0',
      WEBPUSHD_DELIVERY_BATCH: '10',
      WEBPUSHD_SWEEP_INTERVAL_MS: '500',
    },
    flags: { adminHost: '::1', adminPort: '9100' },
  });
  assert.deepEqual(
    [config.handshakeTimeoutMs, config.pingIntervalMs, config.pongTimeoutMs, config.minClientPingIntervalMs, config.deliveryBatch, config.sweepIntervalMs],
    [1000, 60000, 2000, 0, 10, 500],
  );
  assert.equal(config.adminHost, '::1');
  assert.equal(config.adminPort, 9100);
});

test('broadcasts: repeated flags, a comma-separated variable, an object in the file', () => {
  assert.deepEqual(loadConfig({ flags: { broadcasts: ['a=1', 'b=2'] } }).config.broadcasts, new Map([['a', '1'], ['b', '2']]));
  assert.deepEqual(loadConfig({ env: { WEBPUSHD_BROADCAST: 'a=1, b=2' } }).config.broadcasts, new Map([['a', '1'], ['b', '2']]));
  assert.deepEqual(loadConfig(file({ broadcasts: { a: '1' } })).config.broadcasts, new Map([['a', '1']]));
  assert.match(error({ flags: { broadcasts: ['novalue'] } }), /^--broadcast: expected ID=VERSION.*\(from the command line\)$/);
});

test('trusted proxies: a comma-separated flag or variable, an array in the file; each entry an address or CIDR range', () => {
  assert.deepEqual(loadConfig({}).config.trustedProxies, []);
  assert.deepEqual(loadConfig({ flags: { trustedProxies: '127.0.0.1, 10.0.0.0/8' } }).config.trustedProxies, ['127.0.0.1', '10.0.0.0/8']);
  assert.deepEqual(loadConfig({ env: { WEBPUSHD_TRUSTED_PROXIES: '::1,fd00::/8' } }).config.trustedProxies, ['::1', 'fd00::/8']);
  assert.deepEqual(loadConfig(file({ trustedProxies: ['192.168.1.10'] })).config.trustedProxies, ['192.168.1.10']);
  assert.match(error({ flags: { trustedProxies: 'proxy.local' } }), /^--trusted-proxies: expected IP addresses or CIDR ranges .*\(from the command line\)$/);
  assert.match(error(file({ trustedProxies: ['10.0.0.0/33'] })), /^trustedProxies: expected IP addresses or CIDR ranges .*\(from webpushd.json\)$/);
  assert.match(error(file({ trustedProxies: '10.0.0.1' })), /^trustedProxies: expected/);
});

test('bad values name the key as its source spells it, why, and where they came from', () => {
  assert.equal(error(file({ port: 70000 })), 'port: expected an integer from 0 to 65535 (from webpushd.json)');
  assert.equal(error(file({ port: '80' })), 'port: expected an integer from 0 to 65535 (from webpushd.json)');
  assert.equal(error({ env: { WEBPUSHD_PORT: 'abc' } }), 'WEBPUSHD_PORT: expected an integer from 0 to 65535 (from the environment)');
  assert.equal(error({ flags: { maxMessageBytes: '100' } }), '--max-message-size: expected an integer of at least 4096 (from the command line)');
  assert.equal(error({ flags: { sync: 'sometimes' } }), '--sync: expected one of full, normal (from the command line)');
  assert.equal(error({ flags: { logLevel: 'loud' } }), `--log-level: expected one of ${['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].join(', ')} (from the command line)`);
  assert.equal(error(file({ publicUrl: 'ftp://x' })), 'publicUrl: expected an http or https URL (from webpushd.json)');
  assert.equal(error(file({ deliveryBatch: 1.5 })), 'deliveryBatch: expected an integer from 1 to 10000 (from webpushd.json)');
  assert.match(error({ flags: { tlsCert: 'c.pem' } }), /^tlsKey: .*--tls-cert and --tls-key/);
});

test('a bad value is an error even where another source wins; an empty variable is unset', () => {
  assert.match(error({ ...file({ port: 1 }), env: { WEBPUSHD_PORT: 'x' } }), /^WEBPUSHD_PORT: .*\(from the environment\)$/);
  // the flag wins, the variable is still checked (docs/CONFIGURATION.md, Precedence)
  assert.equal(error({ env: { WEBPUSHD_PORT: 'abc' }, flags: { port: '8443' } }), 'WEBPUSHD_PORT: expected an integer from 0 to 65535 (from the environment)');
  assert.equal(error({ env: { WEBPUSHD_SYNC: 'sometimes' }, flags: { sync: 'full' } }), 'WEBPUSHD_SYNC: expected one of full, normal (from the environment)');
  // a losing file value is checked too
  assert.equal(error({ ...file({ port: 'abc' }), env: { WEBPUSHD_PORT: '9000' }, flags: { port: '8443' } }), 'port: expected an integer from 0 to 65535 (from webpushd.json)');
  // an empty variable counts as unset
  assert.equal(loadConfig({ env: { WEBPUSHD_PORT: '' } }).config.port, DEFAULTS.port);
});

test('the file: unknown keys, non-objects, bad JSON, unreadable', () => {
  assert.equal(error(file({ port: 1, prot: 2 })), 'prot: unknown option (from webpushd.json)');
  assert.match(error(file([1])), /^webpushd\.json: expected a JSON object/);
  assert.match(error({ configFile: 'x.json', readFile: () => '{port:' }), /^x\.json: not valid JSON/);
  assert.match(error({ configFile: '/nonexistent/x.json' }), /^\/nonexistent\/x\.json: cannot read the config file: ENOENT/);
  // null unsets an optional key (so --print-config output can be fed back)
  assert.equal(loadConfig(file({ publicUrl: null, adminPort: null })).config.publicUrl, undefined);
  assert.match(error(file({ port: null })), /^port: /);
});

test('--print-config JSON round-trips through the file, and secrets are masked', () => {
  const config: Config = { ...DEFAULTS, port: 1234, broadcasts: new Map([['x', '1']]), publicUrl: 'https://push.example' };
  const json = configToJson(config);
  assert.deepEqual(json.broadcasts, { x: '1' });
  assert.deepEqual(loadConfig(file(json)).config, config);

  const spec = OPTIONS.find((o) => o.key === 'publicUrl')!;
  spec.secret = true;
  try {
    assert.equal(configToJson(config).publicUrl, '********');
    assert.equal(configToJson(DEFAULTS).publicUrl, null, 'an unset secret shows as unset');
  } finally {
    delete spec.secret;
  }
});

test('secret rotate adds at the top, retire keeps the newest; files stay 0600, no temp left', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webpushd-secret-'));
  const [original] = loadOrCreateSecrets(dir);
  assert.equal(rotateSecrets(dir), 2);
  const after = loadOrCreateSecrets(dir);
  assert.equal(after.length, 2);
  assert.deepEqual(after[1], original, 'the old secret moves down and still opens');
  assert.equal(statSync(join(dir, 'secret.key')).mode & 0o777, 0o600);
  assert.equal(retireSecrets(dir, 5), 0, 'nothing to drop');
  assert.equal(retireSecrets(dir, 1), 1);
  assert.deepEqual(loadOrCreateSecrets(dir), [after[0]]);
  assert.deepEqual(readdirSync(dir), ['secret.key']);
  assert.match(readFileSync(join(dir, 'secret.key'), 'utf8'), /^[\w-]{43}\n$/);
  assert.throws(() => retireSecrets(dir, 0), /at least 1/);
});
