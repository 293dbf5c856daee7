// Live fuzz of the RFC 8030 door of a real webpushd process over HTTP/2 (h2c): subscribe with
// set Links and options bodies, monitors with Prefer and Urgency, deletes of messages,
// subscriptions and sets, and sends asking for receipts, to good and edited resource URLs.
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { h2Case } from './arbitraries.ts';
import { h2Door, h2Resources, runLive, type H2Resources } from './doors.ts';
import { Answers, http2Canary, startFuzzServer, webSocketCanary, type Canary, type FuzzServer } from './live.ts';
import { signedTokens } from './arbitraries.ts';
import { fuzzParameters } from './settings.ts';

let server: FuzzServer;
let resources: H2Resources;
const canaries: Canary[] = [];

before(async () => {
  server = await startFuzzServer();
  canaries.push(await http2Canary(server), await webSocketCanary(server));
  resources = await h2Resources(server);
});

after(async () => {
  for (const c of canaries) await c.close();
  await server?.stop();
});

test('RFC 8030 requests over HTTP/2: documented statuses and errnos only, the process lives, other user agents keep receiving', async () => {
  const sets = fc.constantFrom(...resources.sets, ...resources.sets.map((u) => new URL(u).pathname), `${server.url}/set/AAAA`);
  const receipts = fc.constantFrom(...resources.receipts, `${server.url}/r/AAAA`);
  const door = h2Door(server, new Answers(), resources, h2Case(signedTokens(server.url, Date.now() / 1000), sets, receipts));
  try {
    const run = await runLive(server, door, canaries, fuzzParameters(300, { live: true }));
    console.log(JSON.stringify(run));
  } finally {
    await door.close();
  }
});
