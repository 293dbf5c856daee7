// Faults against the service as users run it (a child process with Node's default
// --unhandled-rejections mode, given explicitly): a frame built to crash it, and a data dir on a
// small tmpfs that fills up. The process must stay up, refuse clearly, and lose nothing it
// answered 201.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import { aes128gcmBody, markerOf } from '../helpers/bodies.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { freePort } from '../helpers/net.ts';
import { until } from '../helpers/wait.ts';

const STRICT = { NODE_OPTIONS: '--unhandled-rejections=strict' };

async function push(endpoint: string, marker: string): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { ttl: '600', 'content-encoding': 'aes128gcm' },
    body: aes128gcmBody(marker),
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

const alive = (p: ServerProcess) => p.proc.exitCode === null && p.proc.signalCode === null;

describe('a frame that once crashed the process', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess({ env: STRICT });
  });
  after(() => server.stop());

  test('a long multi-byte messageType before and after hello closes only that connection (1002, reason within 123 bytes)', async () => {
    const bystander = await TestUserAgent.connect(`ws://127.0.0.1:${server.port}/`);
    await bystander.hello();
    const channelID = randomUUID();
    const endpoint = (await bystander.register(channelID)).pushEndpoint as string;

    for (const identified of [false, true]) {
      const attacker = await TestUserAgent.connect(`ws://127.0.0.1:${server.port}/`);
      if (identified) await attacker.hello();
      attacker.send({ messageType: '€'.repeat(200) });
      const closed = await attacker.closed;
      assert.equal(closed.code, 1002);
      assert.ok(Buffer.byteLength(closed.reason) <= 123, closed.reason);
      assert.match(closed.reason, /^unknown messageType "€+$/);
    }
    assert.ok(alive(server), server.output());
    assert.equal((await push(endpoint, 'after-attack')).status, 201);
    assert.equal((await bystander.next('notification')).channelID, channelID);
    await bystander.close();
  });
});

/** A tmpfs of `size` mounted at a new dir, or null where this machine does not let us mount one. */
function mountTmpfs(size: string): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'webpushd-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

/** Writes filler until the file system is full. */
function fill(path: string): void {
  const chunk = Buffer.alloc(64 * 1024, 1);
  for (let i = 0; ; i++) {
    try {
      writeFileSync(`${path}.${i}`, chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
        // the last bytes too
        for (let j = 0; ; j++) {
          try {
            writeFileSync(`${path}.tail${j}`, Buffer.alloc(512, 1));
          } catch {
            return;
          }
        }
      }
      throw err;
    }
  }
}

const mountPoint = mountTmpfs('4m');

describe('a data dir whose disk fills up', { skip: mountPoint ? false : 'cannot mount a tmpfs here (the simulated store failures of test/integration/reliability.test.ts cover it)' }, () => {
  let server: ServerProcess;
  let adminPort: number;
  const filler = join(mountPoint ?? '', 'filler');
  before(async () => {
    adminPort = await freePort();
    const dataDir = join(mountPoint!, 'data');
    mkdirSync(dataDir);
    // the free-space quota (507 before the disk fills) is off: this is what happens when it is not enough
    server = await startServerProcess({ dataDir, env: STRICT, args: ['--admin-port', String(adminPort), '--sync', 'full', '--min-free-disk', '0'] });
  });
  after(async () => {
    await server?.stop();
    execFileSync('umount', [mountPoint!]);
    rmSync(mountPoint!, { recursive: true, force: true });
  });

  test('pushes and subscribes get 503 + Retry-After, acks fail softly, /ready reports it; after space is freed nothing answered 201 is lost', async () => {
    const ua = await TestUserAgent.connect(`ws://127.0.0.1:${server.port}/`);
    const uaid = await ua.hello();
    const channelID = randomUUID();
    const endpoint = (await ua.register(channelID)).pushEndpoint as string;
    // one message stored and delivered before the disk fills: its ack will fail
    assert.equal((await push(endpoint, 'before')).status, 201);
    const first = await ua.next('notification');

    fill(filler);
    const accepted: string[] = ['before'];
    let refused: Awaited<ReturnType<typeof push>> | undefined;
    // the WAL may still have room for a few writes; 4 KiB bodies use it up quickly
    for (let i = 0; i < 400 && !refused; i++) {
      const res = await push(endpoint, `m${i}`);
      if (res.status === 201) accepted.push(`m${i}`);
      else refused = res;
    }
    assert.ok(refused, 'a push was refused once the disk was full');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '30');
    assert.equal((JSON.parse(refused.body) as { errno: number }).errno, 201);

    // register gets a status, the connection goes on
    const reg = await ua.register(randomUUID());
    assert.equal(reg.status, 503);
    assert.equal(reg.pushEndpoint, undefined);
    // the ack cannot be stored: the connection goes on, the message stays
    ua.ack(channelID, first.version as string);
    ua.send({});
    assert.deepEqual(await ua.next(), {});

    const ready = await fetch(`http://127.0.0.1:${adminPort}/ready`);
    assert.equal(ready.status, 503);
    assert.match(((await ready.json()) as { reason: string }).reason, /^store cannot write: .*full/);
    assert.ok(alive(server), server.output());
    assert.match(server.output(), /store writes failing/);

    // space again: ready without any other traffic, pushes accepted
    execFileSync('sh', ['-c', `rm -f ${filler}.*`]);
    await until(async () => (await fetch(`http://127.0.0.1:${adminPort}/ready`)).status === 200, '/ready after space is freed');
    assert.equal((await push(endpoint, 'after')).status, 201);
    accepted.push('after');
    await ua.close();

    // every message answered 201, in order, and the unacknowledged first one again; none refused
    const again = await TestUserAgent.connect(`ws://127.0.0.1:${server.port}/`);
    assert.equal(await again.hello(uaid), uaid);
    const got: string[] = [];
    while (got.length < accepted.length) {
      const n = await again.next('notification');
      got.push(markerOf(Buffer.from(n.data as string, 'base64url')));
      again.ack(channelID, n.version as string);
    }
    assert.deepEqual(got, accepted);
    await assert.rejects(again.next('notification', 300));
    await again.close();
    assert.ok(alive(server));
  });
});
