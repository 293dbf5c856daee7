// Fuzz of the pure WebSocket protocol code (src/connect/protocol.ts): client frames shaped like
// Firefox's, mutated (wrong types, missing and extra fields, multibyte and huge strings).
import { test } from 'node:test';
import fc from 'fast-check';
import { pureSuite } from './suites.ts';
import { fuzzParameters } from './settings.ts';

for (const suite of [pureSuite('parseClientMessage throws'), pureSuite('parseClientMessage on huge')]) {
  test(suite.name, async () => {
    await fc.assert(suite.property(), fuzzParameters(suite.runs));
  });
}
