// Fuzz of VAPID (src/vapid/authorization.ts, src/vapid/verify.ts), the second through the real
// push endpoint in process: Authorization and Crypto-Key headers around signed tokens, with the
// tokens' claims, headers, parts, signatures and keys edited.
import { test } from 'node:test';
import fc from 'fast-check';
import { pureSuite } from './suites.ts';
import { fuzzParameters } from './settings.ts';

for (const suite of [pureSuite('parseVapidAuthorization'), pureSuite('VAPID at the push endpoint')]) {
  test(suite.name, async () => {
    await fc.assert(suite.property(), fuzzParameters(suite.runs));
  });
}
