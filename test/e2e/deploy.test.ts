// The deployment examples in deploy/: the sample configs are valid and name the unit's state
// directory as the data dir; the systemd unit has what a service on port 443 needs and passes
// systemd-analyze; the certbot deploy hook installs a renewed certificate that a running server
// then serves (SIGHUP) to new connections.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect as connectTls } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/load.ts';
import { startServerProcess } from '../helpers/server-process.ts';
import { createTestCertificate, type TestCertificate } from '../helpers/tls.ts';
import { until } from '../helpers/wait.ts';

const DEPLOY = new URL('../../deploy/', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'webpushd-deploy-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The unit's `Key=value` lines (the last one of a key wins, as for these keys in systemd). */
const unit = new Map(
  readFileSync(join(DEPLOY, 'webpushd.service'), 'utf8')
    .split('\n')
    .filter((line) => /^[A-Za-z]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
);

test('the systemd unit can bind 443 as its user, keeps its data in its state directory, and passes systemd-analyze', async (t) => {
  assert.equal(unit.get('User'), 'webpushd');
  assert.equal(unit.get('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
  assert.equal(unit.get('StateDirectory'), 'webpushd');
  assert.equal(unit.get('WorkingDirectory'), '/var/lib/webpushd');
  assert.equal(unit.get('UMask'), '0077');
  assert.ok(Number(unit.get('LimitNOFILE')) >= 65536, 'LimitNOFILE');
  assert.equal(unit.get('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.ok(Number(unit.get('TimeoutStopSec')) > 10, 'longer than the default --shutdown-timeout-ms');
  assert.equal(unit.get('Environment'), 'WEBPUSHD_CONFIG=/etc/webpushd/webpushd.json');
  if (!existsSync('/usr/bin/systemd-analyze')) return t.skip('no systemd-analyze here');
  // the installed command is not on this machine: everything else is checked as it is
  const copy = join(work, 'webpushd.service');
  writeFileSync(copy, readFileSync(join(DEPLOY, 'webpushd.service'), 'utf8').replace(/^ExecStart=.*$/m, 'ExecStart=/bin/true'));
  const { stderr } = await promisify(execFile)('systemd-analyze', ['verify', copy]);
  assert.equal(stderr, '', stderr);
});

test('the sample configs are valid and use the unit state directory as their absolute data dir', () => {
  for (const file of ['webpushd.json', 'webpushd-behind-proxy.json']) {
    const { config } = loadConfig({ configFile: join(DEPLOY, file), env: {} });
    assert.equal(config.dataDir, `/var/lib/${unit.get('StateDirectory')}`, file);
    assert.equal(config.demo, 'off', `${file}: no demo in production`);
    assert.equal(config.publicUrl, 'https://push.example.org', file);
  }
  const direct = loadConfig({ configFile: join(DEPLOY, 'webpushd.json'), env: {} }).config;
  assert.equal(direct.port, 443);
  // where the certbot hook puts them
  assert.equal(direct.tlsCert, '/etc/webpushd/tls/fullchain.pem');
  assert.equal(direct.tlsKey, '/etc/webpushd/tls/privkey.pem');
  const proxied = loadConfig({ configFile: join(DEPLOY, 'webpushd-behind-proxy.json'), env: {} }).config;
  assert.equal(proxied.host, '127.0.0.1');
  assert.match(readFileSync(join(DEPLOY, 'Caddyfile'), 'utf8'), new RegExp(`reverse_proxy ${proxied.host}:${proxied.port}\\b`));
});

test('the certbot deploy hook installs a renewed certificate, and the reload serves it to new connections', async () => {
  const tls = join(work, 'tls');
  /** A certbot lineage folder holding `cert`, then the hook run on it. */
  const renew = (name: string, cert: TestCertificate, reload: string) => {
    const lineage = join(work, name);
    mkdirSync(lineage);
    writeFileSync(join(lineage, 'fullchain.pem'), cert.cert);
    writeFileSync(join(lineage, 'privkey.pem'), cert.key);
    execFileSync(join(DEPLOY, 'certbot-deploy-hook.sh'), {
      env: { ...process.env, RENEWED_LINEAGE: lineage, WEBPUSHD_TLS_DIR: tls, WEBPUSHD_GROUP: String(process.getgid!()), WEBPUSHD_RELOAD: reload },
    });
  };
  const first = createTestCertificate();
  const renewed = createTestCertificate();
  try {
    renew('first', first, 'true');
    assert.equal(statSync(join(tls, 'privkey.pem')).mode & 0o777, 0o640);
    const server = await startServerProcess({ scheme: 'https', args: ['--tls-cert', join(tls, 'fullchain.pem'), '--tls-key', join(tls, 'privkey.pem')] });
    const fingerprint = (ca: Buffer) =>
      new Promise<string>((resolve, reject) => {
        const socket = connectTls({ host: '127.0.0.1', port: server.port, ca }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.end();
        });
        socket.once('error', reject);
      });
    try {
      const before = await fingerprint(first.cert);
      renew('renewed', renewed, `kill -HUP ${server.proc.pid}`);
      await until(() => server.output().includes('TLS certificate reloaded'), 'the reload');
      const now = await fingerprint(renewed.cert);
      assert.notEqual(now, before);
    } finally {
      await server.stop();
    }
  } finally {
    first.remove();
    renewed.remove();
  }
});
