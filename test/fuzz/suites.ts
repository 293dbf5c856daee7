// Every fuzz property of the project, by name, with the number of cases CI runs: the test
// files run them (test/fuzz/*.test.ts) and so does the long run (bench/fuzz.ts, --runs N).
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { formatLink, parseLinks } from '../../src/rfc8030/links.ts';
import {
  AUDIENCE,
  NOW,
  REL_RECEIPT,
  REL_SET,
  clientFrameText,
  h2Case,
  headerNoise,
  httpPushCase,
  hugeString,
  linkHeader,
  mutated,
  preferValue,
  pushBody,
  pushHeaders,
  signedTokens,
  vapidCase,
  webSocketCase,
} from './arbitraries.ts';
import { h2Door, h2Resources, httpPushDoor, pushTargets, runLive, webSocketDoor, type LiveRun } from './doors.ts';
import { Answers, http2Canary, startFuzzServer, webSocketCanary, type Canary } from './live.ts';
import {
  clientMessageProperty,
  linkProperty,
  preferProperty,
  pushHeadersProperty,
  receiptFixture,
  receiptRequestProperty,
  vapidAuthorizationProperty,
  vapidEndpointFixture,
  vapidEndpointProperty,
} from './properties.ts';

export interface PureSuite {
  name: string;
  /** Cases in CI. */
  runs: number;
  /** Built on demand: some need fixtures (keys, sealers). */
  property(): fc.IProperty<never> | fc.IAsyncProperty<never>;
}

const pure = <T extends unknown[]>(name: string, runs: number, property: () => fc.IProperty<T> | fc.IAsyncProperty<T>): PureSuite => ({
  name,
  runs,
  property: property as PureSuite['property'],
});

const someUrl = fc.constantFrom('https://push.example.net/r/abc', '/set/x_-1', 'r/y', 'https://[::1]:8080/s/z');

export const PURE: PureSuite[] = [
  pure('parseClientMessage throws only ProtocolViolation, and what it accepts is well-formed', 3000, () =>
    fc.property(clientFrameText, clientMessageProperty),
  ),
  pure('parseClientMessage on huge and multibyte fields', 50, () =>
    fc.property(
      fc
        .tuple(fc.constantFrom('messageType', 'channelID', 'uaid', 'version', 'key'), hugeString, fc.constantFrom('hello', 'register', 'nack', 'ack'))
        .map(([field, value, type]) => JSON.stringify({ messageType: type, [field]: value })),
      clientMessageProperty,
    ),
  ),
  pure('push headers and bodies: only 400 with the documented errnos, and what passes is in range', 3000, () =>
    fc.property(pushHeaders(null), pushBody, fc.constantFrom(2_592_000, 60, 1), (headers, body, max) =>
      pushHeadersProperty(headers as IncomingHttpHeaders, body, max),
    ),
  ),
  pure('parseVapidAuthorization never throws, on spelled-out and random headers', 3000, () =>
    fc.property(
      fc.oneof(
        vapidCase(signedTokens(AUDIENCE, NOW)).map((c) => [c.authorization, c.cryptoKey] as const),
        fc.tuple(fc.option(headerNoise, { nil: undefined }), fc.option(headerNoise, { nil: undefined })),
      ),
      ([authorization, cryptoKey]) => vapidAuthorizationProperty(authorization, cryptoKey),
    ),
  ),
  pure('VAPID at the push endpoint: only 401/403 errno 109, never a changed signature or another key accepted', 1500, () => {
    const fixture = vapidEndpointFixture();
    return fc.asyncProperty(vapidCase(fixture.pool), fc.boolean(), (c, restricted) => vapidEndpointProperty(fixture, c, restricted));
  }),
  pure('Prefer never throws; its helpers agree with the parsed preferences', 3000, () =>
    fc.property(fc.oneof(fc.option(preferValue, { nil: undefined }), fc.array(preferValue, { maxLength: 3 }), headerNoise), preferProperty),
  ),
  pure('Link never throws; parsed relation types are lower-case words', 3000, () =>
    fc.property(fc.oneof(fc.option(linkHeader(someUrl), { nil: undefined }), fc.string({ unit: 'binary', maxLength: 40 })), linkProperty),
  ),
  pure('Link: a formatted link parses back to itself', 1000, () => {
    const uri = fc.string({ maxLength: 30 }).filter((s) => !s.includes('>') && s === s.trim());
    return fc.property(fc.array(fc.tuple(uri, fc.constantFrom(REL_RECEIPT, REL_SET, 'next')), { minLength: 1, maxLength: 3 }), (links) => {
      assert.deepEqual(parseLinks(links.map(([u, r]) => formatLink(u, r)).join(', ')), links.map(([u, r]) => ({ uri: u, rels: [r] })));
    });
  }),
  pure('receipt requests: only 400 errno 121; a named receipt subscription is one of this service', 3000, () => {
    const f = receiptFixture();
    const targets = fc.constantFrom(...f.receipts.map((r) => r.url), ...f.receipts.map((r) => new URL(r.url).pathname));
    return fc.property(fc.option(mutated(preferValue, 1), { nil: undefined }), fc.option(linkHeader(targets), { nil: undefined }), (prefer, link) =>
      receiptRequestProperty(f, prefer, link),
    );
  }),
];

export interface LiveSuite {
  name: string;
  runs: number;
  /** Starts its own server and canaries, runs the door, stops everything. */
  run(params: fc.Parameters<unknown>): Promise<LiveRun>;
}

async function withServer(canaryKinds: ('websocket' | 'http2')[], body: (s: Awaited<ReturnType<typeof startFuzzServer>>, canaries: Canary[]) => Promise<LiveRun>): Promise<LiveRun> {
  const server = await startFuzzServer();
  const canaries: Canary[] = [];
  let failed = false;
  try {
    for (const kind of canaryKinds) canaries.push(kind === 'websocket' ? await webSocketCanary(server) : await http2Canary(server));
    return await body(server, canaries);
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    for (const c of canaries) await c.close().catch(() => {});
    // a failed run reports its own failure, not the unclean exit that may follow from it
    await server.stop().catch((err: unknown) => {
      if (!failed) throw err;
    });
  }
}

export const LIVE: LiveSuite[] = [
  {
    name: 'WebSocket frames: documented close codes only, the process lives, other user agents keep receiving',
    runs: 250,
    run: (params) =>
      withServer(['websocket', 'http2'], (s, canaries) => runLive(s, webSocketDoor(s, new Answers(), webSocketCase), canaries, params)),
  },
  {
    name: 'push requests over HTTP/1.1: documented statuses and errnos only, accepted messages arrive, the process lives, another user agent keeps receiving',
    runs: 300,
    run: (params) =>
      withServer(['websocket'], async (s, canaries) => {
        const targets = await pushTargets(s);
        const receipts = fc.constantFrom(targets.receipt, new URL(targets.receipt).pathname, `${s.url}/r/AAAA`);
        const door = httpPushDoor(s, new Answers(), targets, httpPushCase(targets.pool, receipts));
        try {
          return await runLive(s, door, canaries, params);
        } finally {
          await door.close();
        }
      }),
  },
  {
    name: 'RFC 8030 requests over HTTP/2: documented statuses and errnos only, the process lives, other user agents keep receiving',
    runs: 300,
    run: (params) =>
      withServer(['http2', 'websocket'], async (s, canaries) => {
        const r = await h2Resources(s);
        const sets = fc.constantFrom(...r.sets, ...r.sets.map((u) => new URL(u).pathname), `${s.url}/set/AAAA`);
        const receipts = fc.constantFrom(...r.receipts, `${s.url}/r/AAAA`);
        const door = h2Door(s, new Answers(), r, h2Case(signedTokens(s.url, Date.now() / 1000), sets, receipts));
        try {
          return await runLive(s, door, canaries, params);
        } finally {
          await door.close();
        }
      }),
  },
];

export function liveSuite(prefix: string): LiveSuite {
  const suite = LIVE.find((s) => s.name.startsWith(prefix));
  assert.ok(suite, `no live suite ${prefix}`);
  return suite;
}

export function pureSuite(prefix: string): PureSuite {
  const suite = PURE.find((s) => s.name.startsWith(prefix));
  assert.ok(suite, `no pure suite ${prefix}`);
  return suite;
}
