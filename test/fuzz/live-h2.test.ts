// Live fuzz of the RFC 8030 door of a real webpushd process over HTTP/2 (h2c): subscribe with
// set Links and options bodies, monitors with Prefer and Urgency, deletes of messages,
// subscriptions and sets, and sends asking for receipts, to good and edited resource URLs.
import { test } from 'node:test';
import { liveSuite } from './suites.ts';
import { fuzzParameters } from './settings.ts';

const suite = liveSuite('RFC 8030');
test(suite.name, async (t) => {
  const run = await suite.run(fuzzParameters(suite.runs, { live: true }));
  t.diagnostic(JSON.stringify(run));
});
