// Fuzz of the pure RFC 8030 header code: Prefer (src/rfc8030/prefer.ts), Link
// (src/rfc8030/links.ts) and the receipt request of a push (src/rfc8030/receipt-request.ts).
import { test } from 'node:test';
import fc from 'fast-check';
import { pureSuite } from './suites.ts';
import { fuzzParameters } from './settings.ts';

for (const suite of [pureSuite('Prefer'), pureSuite('Link never'), pureSuite('Link: a formatted'), pureSuite('receipt requests')]) {
  test(suite.name, async () => {
    await fc.assert(suite.property(), fuzzParameters(suite.runs));
  });
}
