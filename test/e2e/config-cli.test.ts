// `webpushd serve --config/--print-config` from the outside, secret rotation across restarts,
// and SIGHUP reloads (token secrets, TLS certificate) in a running server.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect as connectTls } from 'node:tls';
import { startServerProcess } from '../helpers/server-process.ts';
import { createTestCertificate } from '../helpers/tls.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const BIN = new URL('../../bin/webpushd', import.meta.url).pathname;

function webpushd(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEBPUSHD_')));
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 10_000, env: { ...clean, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--print-config shows file values overridden by the environment and by flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webpushd-config-'));
  const file = join(dir, 'f.json');
  writeFileSync(file, JSON.stringify({ port: 9000, host: '10.0.0.1', maxTtl: 60, deliveryBatch: 7, broadcasts: { remote: 'v1' } }));
  const r = webpushd(['serve', '--config', file, '--print-config', '--port', '9002'], { WEBPUSHD_PORT: '9001', WEBPUSHD_HOST: '10.0.0.2' });
  assert.equal(r.status, 0, r.stderr);
  const printed = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(printed.port, 9002, 'flag over env and file');
  assert.equal(printed.host, '10.0.0.2', 'env over file');
  assert.equal(printed.maxTtl, 60, 'file over default');
  assert.equal(printed.deliveryBatch, 7);
  assert.deepEqual(printed.broadcasts, { remote: 'v1' });
  assert.equal(printed.sync, 'full', 'default');

  // WEBPUSHD_CONFIG names the file too
  const viaEnv = webpushd(['serve', '--print-config'], { WEBPUSHD_CONFIG: file });
  assert.equal(viaEnv.status, 0, viaEnv.stderr);
  assert.equal((JSON.parse(viaEnv.stdout) as Record<string, unknown>).port, 9000);
});

test('a bad or unknown key in the file: one line naming it, exit 2, no stack', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webpushd-config-'));
  for (const [json, expected] of [
    [{ prot: 9000 }, /^config error: prot: unknown option \(from .*bad\.json\)\n$/],
    [{ port: 70000 }, /^config error: port: expected an integer from 0 to 65535 \(from .*bad\.json\)\n$/],
  ] as const) {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify(json));
    const r = webpushd(['serve', '--config', file, '--data-dir', dir]);
    assert.equal(r.status, 2, JSON.stringify(json));
    assert.match(r.stderr, expected);
    assert.equal(r.stdout, '');
  }
});

async function register(url: string, channel: string): Promise<string> {
  const ua = await TestUserAgent.connect(`${url.replace('http', 'ws')}/`);
  await ua.hello();
  const { pushEndpoint } = await ua.register(channel);
  await ua.close();
  return (pushEndpoint as string).replace('localhost', '127.0.0.1');
}

const push = async (endpoint: string) => (await fetch(endpoint, { method: 'POST', headers: { TTL: '60' } })).status;

test('secret rotate keeps old push URLs working; retire --keep 1 invalidates them', async () => {
  const first = await startServerProcess();
  const oldUrl = await register(first.url, '1b4e2c8a-3f6d-4a9b-8c7e-5d2f1a0b9c31');
  assert.equal(await push(oldUrl), 201);
  await first.stop();

  const rotated = webpushd(['secret', 'rotate', '--data-dir', first.dataDir]);
  assert.equal(rotated.status, 0, rotated.stderr);
  const secretFile = join(first.dataDir, 'secret.key');
  assert.equal(readFileSync(secretFile, 'utf8').trim().split('\n').length, 2);
  assert.equal(statSync(secretFile).mode & 0o777, 0o600);

  const second = await startServerProcess({ dataDir: first.dataDir, port: first.port });
  let newUrl: string;
  try {
    assert.equal(await push(oldUrl), 201, 'the old URL still opens with the old secret');
    newUrl = await register(second.url, '2c5f3d9b-4a7e-4bac-9d8f-6e3a2b1c0d42');
    assert.notEqual(newUrl, oldUrl);
    assert.equal(await push(newUrl), 201);
  } finally {
    await second.stop();
  }

  const retired = webpushd(['secret', 'retire', '--data-dir', first.dataDir, '--keep', '1']);
  assert.equal(retired.status, 0, retired.stderr);
  assert.equal(readFileSync(secretFile, 'utf8').trim().split('\n').length, 1);

  const third = await startServerProcess({ dataDir: first.dataDir, port: first.port });
  try {
    assert.equal(await push(oldUrl), 404, 'sealed by the retired secret');
    assert.equal(await push(newUrl), 201);
  } finally {
    await third.stop();
  }
});

/** Waits until the process has logged `msg` `count` times. */
async function logged(server: Awaited<ReturnType<typeof startServerProcess>>, msg: string, count = 1): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const lines = server.output().split('\n').filter((l) => l.includes(`"msg":"${msg}`));
    if (lines.length >= count) return lines[count - 1]!;
    if (Date.now() > deadline) throw new Error(`no "${msg}" logged:\n${server.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('SIGHUP reloads the secrets without a restart: rotate seals with the new one, retire drops the old; a bad file keeps the secrets in use', async () => {
  const server = await startServerProcess();
  try {
    const ua = await TestUserAgent.connect(`${server.url.replace('http', 'ws')}/`);
    await ua.hello();
    const oldUrl = await register(server.url, '3d6a4e0c-5b8f-4cbd-8e9a-7f4b3c2d1e53');

    assert.equal(webpushd(['secret', 'rotate', '--data-dir', server.dataDir]).status, 0);
    server.proc.kill('SIGHUP');
    assert.match(await logged(server, 'token secrets reloaded'), /"secrets":2/);
    const newUrl = await register(server.url, '4e7b5f1d-6c9a-4dce-9fab-8a5c4d3e2f64');
    assert.equal(await push(oldUrl), 201, 'the old secret still opens');
    assert.equal(await push(newUrl), 201);

    assert.equal(webpushd(['secret', 'retire', '--data-dir', server.dataDir, '--keep', '1']).status, 0);
    server.proc.kill('SIGHUP');
    assert.match(await logged(server, 'token secrets reloaded', 2), /"secrets":1/);
    assert.equal(await push(oldUrl), 404, 'sealed by the retired secret');
    assert.equal(await push(newUrl), 201, 'sealed by the new secret');

    const secretFile = join(server.dataDir, 'secret.key');
    const good = readFileSync(secretFile, 'utf8');
    writeFileSync(secretFile, 'not a secret\n');
    server.proc.kill('SIGHUP');
    await logged(server, 'reloading token secrets failed');
    assert.equal(await push(newUrl), 201, 'the secrets in use stay');
    writeFileSync(secretFile, good);

    // the user agent connected before all this was never disconnected
    assert.equal((await ua.register('5f8c6a2e-7dab-4edf-8abc-9b6d5e4f3a75')).status, 200);
    await ua.close();
  } finally {
    await server.stop();
  }
});

test('SIGHUP reloads a renewed TLS certificate for new connections; open ones stay; an unusable pair keeps the one in use', async () => {
  const first = createTestCertificate();
  const renewed = createTestCertificate();
  const dir = mkdtempSync(join(tmpdir(), 'webpushd-cert-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  writeFileSync(certFile, first.cert);
  writeFileSync(keyFile, first.key);
  const fingerprint = (ca: Buffer) =>
    new Promise<string>((resolve, reject) => {
      const socket = connectTls({ host: '127.0.0.1', port: server.port, ca }, () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      });
      socket.once('error', reject);
    });
  const server = await startServerProcess({ scheme: 'https', args: ['--tls-cert', certFile, '--tls-key', keyFile] });
  try {
    const before = await fingerprint(first.cert);
    const ua = await TestUserAgent.connect(`wss://127.0.0.1:${server.port}/`, undefined, { ca: first.cert });
    await ua.hello();

    writeFileSync(certFile, renewed.cert);
    writeFileSync(keyFile, renewed.key);
    server.proc.kill('SIGHUP');
    await logged(server, 'TLS certificate reloaded');
    const after = await fingerprint(renewed.cert);
    assert.notEqual(after, before, 'new connections get the renewed certificate');
    assert.equal((await ua.register('6a9d7b3f-8ebc-4f0a-9bcd-ac7e6f5a4b86')).status, 200, 'the open connection stayed');

    writeFileSync(keyFile, first.key); // does not match the renewed certificate
    server.proc.kill('SIGHUP');
    await logged(server, 'reloading the TLS certificate failed');
    assert.equal(await fingerprint(renewed.cert), after, 'the certificate in use stays');
    await ua.close();
  } finally {
    await server.stop();
    first.remove();
    renewed.remove();
    rmSync(dir, { recursive: true, force: true });
  }
});
