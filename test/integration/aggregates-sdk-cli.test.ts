// The application server's side of aggregates against a real webpushd: the SDK (create, members,
// change, delete; a tickle; a batch encrypted per member, decrypted by the user agents with
// http_ece; refusals as WebPushError; the trace hook) and `webpushd aggregate` (each subcommand,
// its JSON lines and exit codes, --trace on stderr with capability tokens shortened).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  aggregateMembers,
  changeAggregate,
  createAggregate,
  deleteAggregate,
  generateVAPIDKeys,
  sendBatchToAggregate,
  sendToAggregate,
  WebPushError,
  type TraceEvent,
} from '../../src/sdk/index.ts';
import { createSubscriberKeys, decryptWithHttpEce, type SubscriberKeys } from '../helpers/decrypt.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const BIN = new URL('../../bin/webpushd', import.meta.url).pathname;
let server: TestServer;
const uas: TestUserAgent[] = [];
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await Promise.all(uas.map((ua) => ua.close()));
  await server.close();
});

const vapidDetails = { subject: 'mailto:ops@example.com', ...generateVAPIDKeys() };

/** A user agent on its own connection with one subscription and its keys. */
async function member(): Promise<{ ua: TestUserAgent; channelID: string; push: string; keys: SubscriberKeys }> {
  const ua = await TestUserAgent.connect(server.wsUrl);
  uas.push(ua);
  await ua.hello();
  const channelID = randomUUID();
  const push = (await ua.register(channelID)).pushEndpoint as string;
  return { ua, channelID, push, keys: createSubscriberKeys() };
}

test('SDK: create, list, change, tickle, a batch encrypted per member, delete; refusals are WebPushError', async () => {
  const [a, b, c] = [await member(), await member(), await member()];
  const events: TraceEvent[] = [];
  const options = { vapidDetails, trace: (e: TraceEvent) => events.push(e) };
  const created = await createAggregate(server.url, [a.push, b.push, 'https://elsewhere.example/wpush/v1/x'], options);
  assert.match(created.url, /\/a\/[A-Za-z0-9_-]+$/);
  assert.deepEqual([created.members, Object.keys(created.refused)], [2, ['https://elsewhere.example/wpush/v1/x']]);
  assert.deepEqual(
    events.filter((e) => e.event === 'request' || e.event === 'response').map((e) => e.method ?? e.status),
    ['POST', 201],
  );

  assert.deepEqual(await changeAggregate(created.url, { add: [c.push], remove: [b.push] }, options), { members: 2, refused: {} });
  assert.equal((await aggregateMembers(created.url, options)).length, 2);

  const tickle = await sendToAggregate(created.url, { ...options, TTL: 60, urgency: 'high' });
  assert.deepEqual([tickle.stored, tickle.gone, tickle.refused], [2, 0, 0]);
  for (const m of [a, c]) {
    const n = await m.ua.next('notification');
    assert.equal(n.channelID, m.channelID);
    m.ua.ack(m.channelID, n.version as string);
  }

  const batch = await sendBatchToAggregate(
    created.url,
    [
      { subscription: { endpoint: a.push, keys: a.keys.keys }, payload: 'for a' },
      { subscription: { endpoint: c.push, keys: c.keys.keys }, payload: 'for c' },
    ],
    { ...options, TTL: 60, contentEncoding: 'aesgcm' },
  );
  assert.equal(batch.stored, 2);
  for (const [m, text] of [[a, 'for a'], [c, 'for c']] as const) {
    const n = await m.ua.next('notification');
    const h = n.headers as { encoding: 'aesgcm'; encryption: string; crypto_key: string };
    assert.equal(decryptWithHttpEce(Buffer.from(n.data as string, 'base64url'), h.encoding, m.keys.ecdh, m.keys.keys.auth, { encryption: h.encryption, cryptoKey: h.crypto_key }).toString(), text);
  }

  const other = { vapidDetails: { subject: 'mailto:x@example.com', ...generateVAPIDKeys() } };
  await assert.rejects(sendToAggregate(created.url, other), (err: unknown) => err instanceof WebPushError && err.statusCode === 403 && !err.message.includes(created.url.split('/a/')[1]!));
  await deleteAggregate(created.url, options);
  await assert.rejects(aggregateMembers(created.url, options), (err: unknown) => err instanceof WebPushError && err.statusCode === 404 && JSON.parse(err.body).errno === 144);
});

function cli(args: string[], vapidEnv = true): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = vapidEnv
    ? { ...process.env, WEBPUSHD_VAPID_SUBJECT: vapidDetails.subject, WEBPUSHD_VAPID_PUBLIC_KEY: vapidDetails.publicKey, WEBPUSHD_VAPID_PRIVATE_KEY: vapidDetails.privateKey }
    : process.env;
  return new Promise((resolve) => {
    execFile(BIN, ['aggregate', ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }));
  });
}
const lines = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

test('webpushd aggregate create|add|members|send|delete, with --trace', async () => {
  const [a, b] = [await member(), await member()];
  const created = await cli(['create', '--service', server.url, '--member', a.push, '--trace']);
  assert.equal(created.code, 0, created.stderr);
  const { url, members } = lines(created.stdout)[0] as { url: string; members: number };
  assert.equal(members, 1);
  const traced = lines(created.stderr);
  assert.ok(traced.some((t) => t.trace === 'request' && t.method === 'POST' && t.url === `${server.url}/aggregate`));
  assert.ok(traced.some((t) => t.trace === 'response' && t.status === 201));
  assert.ok(!created.stderr.includes(vapidDetails.publicKey), 'the VAPID key is shortened in the trace');

  const file = join(server.dataDir, 'members.txt');
  writeFileSync(file, `${b.push}\n`);
  assert.deepEqual(lines((await cli(['add', '--url', url, '--members', file])).stdout), [{ members: 2, refused: {} }]);
  assert.equal((await cli(['members', '--url', url])).stdout.trim().split('\n').length, 2);
  // the owner's key pair as `webpushd vapid generate` prints it, as `send` takes it
  const keys = join(server.dataDir, 'vapid.json');
  writeFileSync(keys, JSON.stringify(vapidDetails));
  assert.equal((await cli(['members', '--url', url, '--vapid-keys', keys], false)).stdout.trim().split('\n').length, 2);
  const keyless = await cli(['members', '--url', url], false);
  assert.equal(keyless.code, 2);
  assert.match(keyless.stdout, /an aggregate belongs to a VAPID key/);

  const subs = join(server.dataDir, 'subs.json');
  writeFileSync(subs, JSON.stringify([{ endpoint: b.push, keys: b.keys.keys }]));
  const sent = await cli(['send', '--url', url, '--subscriptions', subs, '--data', 'hello b', '--ttl', '60']);
  assert.equal(sent.code, 0, sent.stdout + sent.stderr);
  const out = lines(sent.stdout);
  assert.deepEqual(out.at(-1), { stored: 1, gone: 0, refused: 0 }, 'a member without an entry in the batch gets nothing');
  assert.equal(out[0]!.push, b.push);
  const n = await b.ua.next('notification');
  assert.equal(decryptWithHttpEce(Buffer.from(n.data as string, 'base64url'), 'aes128gcm', b.keys.ecdh, b.keys.keys.auth).toString(), 'hello b');

  assert.deepEqual(lines((await cli(['delete', '--url', url])).stdout), [{ deleted: true }]);
  const gone = await cli(['send', '--url', url]);
  assert.equal(gone.code, 1);
  assert.equal((lines(gone.stdout)[0]!.body as { errno: number }).errno, 144);
});
