// Fuzz of the push request validation (src/endpoint/push-headers.ts): TTL, Urgency, Topic,
// Content-Encoding, Encryption, Crypto-Key and bodies shaped like aes128gcm/aesgcm ones.
import { test } from 'node:test';
import fc from 'fast-check';
import { pureSuite } from './suites.ts';
import { fuzzParameters } from './settings.ts';

const suite = pureSuite('push headers and bodies');
test(suite.name, async () => {
  await fc.assert(suite.property(), fuzzParameters(suite.runs));
});
