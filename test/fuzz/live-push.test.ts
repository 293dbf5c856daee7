// Live fuzz of the application-server door of a real webpushd process over HTTP/1.1: push
// requests with TTL, Urgency, Topic, Content-Encoding, Encryption, Crypto-Key, Authorization
// (VAPID), Prefer and Link headers shaped like real ones and edited, bodies around the
// aes128gcm layout and the size limit, to good and edited push URLs and other paths.
import { test } from 'node:test';
import { liveSuite } from './suites.ts';
import { fuzzParameters } from './settings.ts';

const suite = liveSuite('push requests');
test(suite.name, async (t) => {
  const run = await suite.run(fuzzParameters(suite.runs, { live: true }));
  t.diagnostic(JSON.stringify(run));
});
