// docs/openapi.json against the real server: requests that bring about every documented answer
// of every operation; each answer must be documented for its operation (status), carry the
// documented required headers, and have the documented media type and required body members.
// Both ways: an answer the description does not list fails, and so does a listed answer that no
// request produced.
import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { generateRequestDetails, generateVAPIDKeys } from '../../src/index.ts';
import { vapidHeaders } from '../../src/sdk/vapid.ts';
import { StoreUnavailable } from '../../src/store/errors.ts';
import { H2Client, links, REL_RECEIPT, type H2Response } from '../helpers/h2-client.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

interface Schema {
  $ref?: string;
  required?: string[];
}
interface Operation {
  operationId: string;
  responses: Record<string, { $ref?: string; headers?: Record<string, { $ref?: string; required?: boolean }>; content?: Record<string, { schema: Schema }> }>;
}
interface Spec {
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, Record<string, unknown>>;
}

const spec = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8')) as Spec;
const resolve = <T>(o: T & { $ref?: string }): T => {
  if (!o.$ref) return o;
  const [, , kind, name] = o.$ref.split('/');
  return spec.components[kind!]![name!] as T;
};
const operations = new Map<string, { method: string; path: RegExp; op: Operation }>();
for (const [template, methods] of Object.entries(spec.paths)) {
  for (const [method, op] of Object.entries(methods)) {
    operations.set(op.operationId, { method: method.toUpperCase(), path: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`), op });
  }
}
/** "operationId status" of every answer seen. */
const seen = new Set<string>();

/** Checks one answer against the description of `operationId`. */
function check(operationId: string, method: string, url: string, res: H2Response): void {
  const o = operations.get(operationId);
  assert.ok(o, `${operationId} is not in docs/openapi.json`);
  const path = new URL(url, 'http://x').pathname;
  assert.equal(method, o.method, `${operationId}: method`);
  assert.match(path, o.path, `${operationId}: ${path} is not its path`);
  const documented = o.op.responses[String(res.status)];
  assert.ok(documented, `${operationId} answered ${res.status} (${res.body.toString().slice(0, 200)}), which docs/openapi.json does not list`);
  for (const [name, header] of Object.entries(documented.headers ?? {})) {
    if (resolve(header).required) assert.ok(res.headers[name.toLowerCase()] !== undefined, `${operationId} ${res.status}: no ${name} header`);
  }
  const type = String(res.headers['content-type'] ?? '');
  if (documented.content) {
    assert.ok(Object.keys(documented.content).includes(type), `${operationId} ${res.status}: content-type ${type} is not documented`);
    const schema = resolve(documented.content[type]!.schema);
    if (type === 'application/json') {
      const body = JSON.parse(res.body.toString()) as Record<string, unknown>;
      for (const key of schema.required ?? []) assert.ok(key in body, `${operationId} ${res.status}: body without ${key}`);
      if (documented.content[type]!.schema.$ref === '#/components/schemas/Error') assert.equal(body.code, res.status);
    }
  } else {
    assert.equal(res.body.length, 0, `${operationId} ${res.status}: a body the description does not list`);
  }
  seen.add(`${operationId} ${res.status}`);
}

let server: TestServer;
let full: TestServer;
let broken: TestServer;
let h2: H2Client;

before(async () => {
  server = await startTestServer({ maxStoredPerSubscription: 1, maxChannelsPerUserAgent: 2, aggregateMaxPerKey: 1, aggregateMaxMembers: 1, aggregateFanoutBurst: 2, aggregateMaxBodyBytes: 4096 });
  // no free disk is ever enough for this one: 507
  full = await startTestServer({ minFreeDiskMib: 1 << 30, store: undefined }); // the disk quota is SQLite's
  broken = await startTestServer();
  h2 = await H2Client.connect(server.url);
});

after(async () => {
  await h2?.close();
  for (const s of [server, full, broken]) {
    await s?.close().catch(() => {});
    if (s) rmSync(s.dataDir, { recursive: true, force: true });
  }
});

/** One request over HTTP/2, checked as `operationId`. */
async function call(client: H2Client, operationId: string, method: string, url: string, o: Parameters<H2Client['request']>[2] = {}): Promise<H2Response> {
  const res = await client.request(method, url, o);
  check(operationId, method, url, res);
  return res;
}

/** A user agent's keys: the service never decrypts, any valid pair will do. */
function uaKeys() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') };
}

/** The headers and body of a send of `text` to `endpoint`, as an application server makes it. */
function sendRequest(endpoint: string, text: string, extra: Record<string, string> = {}, vapid?: { publicKey: string; privateKey: string }) {
  const d = generateRequestDetails({ endpoint, keys: uaKeys() }, text, {
    TTL: 600,
    ...(vapid ? { vapidDetails: { subject: 'mailto:test@example.org', ...vapid } } : {}),
  });
  const headers = Object.fromEntries(Object.entries(d.headers).filter(([k]) => k !== 'Content-Length').map(([k, v]) => [k.toLowerCase(), String(v)]));
  return { headers: { ...headers, ...extra }, body: d.body ?? Buffer.alloc(0) };
}

async function subscribe(client: H2Client, o: { vapid?: string; set?: string } = {}) {
  const headers: Record<string, string> = {};
  if (o.set) headers.link = `<${o.set}>; rel="urn:ietf:params:push:set"`;
  if (o.vapid) headers['content-type'] = 'application/webpush-options+json';
  const res = await call(client, 'subscribe', 'POST', '/subscribe', { headers, ...(o.vapid ? { body: JSON.stringify({ vapid: o.vapid }) } : {}) });
  const l = links(res.headers.link);
  return { url: String(res.headers.location), push: l.get('urn:ietf:params:push')!, set: l.get('urn:ietf:params:push:set')!, res };
}

/** A GET with Prefer: wait=0 (answered at once), checked as `operationId`. */
async function monitorOnce(operationId: string, url: string, headers: Record<string, string> = {}): Promise<H2Response> {
  const res = await h2.monitor(url, { prefer: 'wait=0', ...headers }).done;
  check(operationId, 'GET', url, res);
  return res;
}

/** An HTTP/1.1 request (fetch), checked as `operationId`. */
async function http1(operationId: string, method: string, url: string, headers: Record<string, string> = {}): Promise<H2Response> {
  const r = await fetch(new URL(url, server.url), { method, headers });
  const res = { status: r.status, headers: Object.fromEntries(r.headers), body: Buffer.from(await r.arrayBuffer()) };
  check(operationId, method, url, res);
  return res;
}

test('every documented answer of every operation, as the server gives it', async () => {
  await http1('service', 'GET', '/');
  await http1('health', 'GET', '/health');

  // sendMessage
  const a = await subscribe(h2);
  const sent = await call(h2, 'sendMessage', 'POST', a.push, sendRequest(a.push, 'one'));
  assert.equal(sent.status, 201);
  await call(h2, 'sendMessage', 'POST', a.push, sendRequest(a.push, 'two')); // --max-stored-per-subscription 1: 429
  const b = await subscribe(h2);
  const receipted = await call(h2, 'sendMessage', 'POST', b.push, sendRequest(b.push, 'receipt please', { prefer: 'respond-async' }));
  assert.equal(receipted.status, 202);
  await call(h2, 'sendMessage', 'POST', b.push, { headers: { 'content-encoding': 'aes128gcm' }, body: randomBytes(100) }); // no TTL: 400
  await call(h2, 'sendMessage', 'POST', b.push, { headers: { ttl: '60', 'content-encoding': 'aes128gcm' }, body: randomBytes(5000) }); // 413
  const vapid = generateVAPIDKeys();
  const restricted = await subscribe(h2, { vapid: vapid.publicKey });
  await call(h2, 'sendMessage', 'POST', restricted.push, sendRequest(restricted.push, 'no vapid')); // 401
  await call(h2, 'sendMessage', 'POST', restricted.push, sendRequest(restricted.push, 'other key', {}, generateVAPIDKeys())); // 403
  assert.equal((await call(h2, 'sendMessage', 'POST', restricted.push, sendRequest(restricted.push, 'right key', {}, vapid))).status, 201);
  await call(h2, 'sendMessage', 'POST', '/wpush/v1/forged', sendRequest(`${server.url}/wpush/v1/forged`, 'x')); // 404
  for (const [target, status] of [[full, 507], [broken, 503]] as const) {
    const client = await H2Client.connect(target.url);
    try {
      const s = await subscribe(client);
      // the store cannot write (a full disk, as test/integration/reliability.test.ts has it): 503
      if (target === broken) (target.store as unknown as Record<string, unknown>).saveMessage = () => Promise.reject(new StoreUnavailable('database or disk is full'));
      const res = await call(client, 'sendMessage', 'POST', s.push, sendRequest(s.push, 'x'));
      assert.equal(res.status, status);
    } finally {
      await client.close();
    }
  }

  // monitors and acknowledgements
  const pushed = await monitorOnce('monitorSubscription', a.url); // the stored "one": 200
  assert.equal(pushed.status, 200);
  const message = await h2.nextPush(5_000);
  await call(h2, 'deleteMessage', 'DELETE', message.url); // 204
  await call(h2, 'deleteMessage', 'DELETE', message.url); // 410
  await call(h2, 'deleteMessage', 'DELETE', '/m/forged'); // 404
  await monitorOnce('monitorSubscription', a.url); // nothing waits: 204
  await monitorOnce('monitorSubscription', a.url, { urgency: 'urgent' }); // 400
  await http1('monitorSubscription', 'GET', a.url); // HTTP/1.1: 400
  await monitorOnce('monitorSet', a.set); // b's message is in another set: 204
  await call(h2, 'sendMessage', 'POST', a.push, sendRequest(a.push, 'for the set'));
  assert.equal((await monitorOnce('monitorSet', a.set)).status, 200);
  await call(h2, 'deleteMessage', 'DELETE', (await h2.nextPush(5_000)).url);
  await http1('monitorSet', 'GET', a.set);

  // receipts: none yet, then the acknowledgement's
  const receiptUrl = links(receipted.headers.link).get(REL_RECEIPT)!;
  assert.equal((await monitorOnce('monitorReceipts', receiptUrl)).status, 204);
  const receiptMonitor = await monitorOnce('monitorSubscription', b.url);
  assert.equal(receiptMonitor.status, 200);
  await call(h2, 'deleteMessage', 'DELETE', (await h2.nextPush(5_000)).url);
  assert.equal((await monitorOnce('monitorReceipts', receiptUrl)).status, 200);
  await h2.nextPush(5_000);
  await http1('monitorReceipts', 'GET', receiptUrl);
  await monitorOnce('monitorReceipts', '/r/forged'); // 404

  // subscribe refusals: a set that is no set, a set that is full (--max-channels 2)
  await call(h2, 'subscribe', 'POST', '/subscribe', { headers: { link: `<${server.url}/set/forged>; rel="urn:ietf:params:push:set"` } }); // 400
  await subscribe(h2, { set: a.set });
  await call(h2, 'subscribe', 'POST', '/subscribe', { headers: { link: `<${a.set}>; rel="urn:ietf:params:push:set"` } }); // 429

  // unsubscribing
  await call(h2, 'deleteSubscription', 'DELETE', b.url); // 204
  await call(h2, 'deleteSubscription', 'DELETE', b.url); // 404
  await call(h2, 'sendMessage', 'POST', b.push, sendRequest(b.push, 'gone')); // 410
  await monitorOnce('monitorSubscription', b.url); // 404
  await call(h2, 'deleteSet', 'DELETE', a.set); // 204
  await call(h2, 'deleteSet', 'DELETE', a.set); // 404
  await monitorOnce('monitorSet', a.set); // 404

  // aggregates (--aggregate-max-per-key 1, --aggregate-max-members 1, --aggregate-fanout-burst 2, --aggregate-max-body 4096)
  const owner = generateVAPIDKeys();
  const other = generateVAPIDKeys();
  const signed = (url: string, key = owner, type?: string) => ({
    authorization: vapidHeaders({ subject: 'mailto:test@example.org', ...key }, new URL(url, server.url).href, 'aes128gcm').authorization,
    ...(type ? { 'content-type': type } : {}),
  });
  const members = (m: Record<string, true | null> | null) => JSON.stringify({ members: m });
  const [m1, m2] = [await subscribe(h2), await subscribe(h2)];
  const created = await call(h2, 'createAggregate', 'POST', '/aggregate', { headers: signed('/aggregate', owner, 'application/json'), body: members({ [m1.push]: true }) });
  assert.equal(created.status, 201);
  await call(h2, 'createAggregate', 'POST', '/aggregate', { headers: signed('/aggregate') }); // 429
  await call(h2, 'createAggregate', 'POST', '/aggregate', {}); // 401
  await call(h2, 'createAggregate', 'POST', '/aggregate', { headers: signed('/aggregate', other, 'application/json'), body: '[]' }); // 400
  await call(h2, 'createAggregate', 'POST', '/aggregate', { headers: signed('/aggregate', other, 'application/json'), body: members({ [m1.push]: true, [m2.push]: true }) }); // 409
  await call(h2, 'createAggregate', 'POST', '/aggregate', { headers: signed('/aggregate', other, 'application/json'), body: 'x'.repeat(5000) }); // 413
  const aggregate = String(created.headers.location);
  await call(h2, 'listAggregate', 'GET', aggregate, { headers: signed(aggregate) }); // 200
  await call(h2, 'listAggregate', 'GET', aggregate, {}); // 401
  await call(h2, 'listAggregate', 'GET', aggregate, { headers: signed(aggregate, other) }); // 403
  await call(h2, 'listAggregate', 'GET', '/a/forged', { headers: signed('/a/forged') }); // 404
  await call(h2, 'changeAggregate', 'PATCH', aggregate, { headers: signed(aggregate, owner, 'application/json'), body: members({}) }); // 415
  await call(h2, 'changeAggregate', 'PATCH', aggregate, { headers: signed(aggregate, owner, 'application/merge-patch+json'), body: members(null) }); // 400
  await call(h2, 'changeAggregate', 'PATCH', aggregate, { headers: signed(aggregate, owner, 'application/merge-patch+json'), body: members({ [m2.push]: true }) }); // 409
  await call(h2, 'changeAggregate', 'PATCH', aggregate, { headers: signed(aggregate, owner, 'application/merge-patch+json'), body: members({ [m1.push]: null, [m2.push]: true }) }); // 200
  await call(h2, 'sendToAggregate', 'POST', aggregate, { headers: { ...signed(aggregate, owner, 'application/octet-stream'), ttl: '60', 'content-encoding': 'aes128gcm' }, body: randomBytes(100) }); // 415
  await call(h2, 'sendToAggregate', 'POST', aggregate, { headers: { ...signed(aggregate), ttl: '60' } }); // 202
  await call(h2, 'sendToAggregate', 'POST', aggregate, { headers: { ...signed(aggregate), ttl: '60' } }); // 429
  await call(h2, 'deleteAggregate', 'DELETE', aggregate, { headers: signed(aggregate) }); // 204
  await call(h2, 'deleteAggregate', 'DELETE', aggregate, { headers: signed(aggregate) }); // 404

  const documented = [...operations].flatMap(([id, o]) => Object.keys(o.op.responses).map((status) => `${id} ${status}`));
  assert.deepEqual(documented.filter((d) => !seen.has(d)), [], 'documented answers no request produced');
});
