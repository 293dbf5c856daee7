// Live fuzz of the application-server door of a real webpushd process over HTTP/1.1: push
// requests with TTL, Urgency, Topic, Content-Encoding, Encryption, Crypto-Key, Authorization
// (VAPID), Prefer and Link headers shaped like real ones and edited, bodies around the
// aes128gcm layout and the size limit, to good and edited push URLs and other paths.
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { httpPushCase } from './arbitraries.ts';
import { httpPushDoor, pushTargets, runLive, type PushTargets } from './doors.ts';
import { Answers, startFuzzServer, webSocketCanary, type Canary, type FuzzServer } from './live.ts';
import { fuzzParameters } from './settings.ts';

let server: FuzzServer;
let targets: PushTargets;
const canaries: Canary[] = [];

before(async () => {
  server = await startFuzzServer();
  canaries.push(await webSocketCanary(server));
  targets = await pushTargets(server);
});

after(async () => {
  for (const c of canaries) await c.close();
  await server?.stop();
});

test('push requests: documented statuses and errnos only, accepted messages arrive, the process lives, another user agent keeps receiving', async () => {
  const receiptTargets = fc.constantFrom(targets.receipt, new URL(targets.receipt).pathname, `${server.url}/r/AAAA`);
  const door = httpPushDoor(server, new Answers(), targets, httpPushCase(targets.pool, receiptTargets));
  try {
    const run = await runLive(server, door, canaries, fuzzParameters(300, { live: true }));
    console.log(JSON.stringify(run));
  } finally {
    await door.close();
  }
});
