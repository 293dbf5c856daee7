// Fuzz of the push request validation (src/endpoint/push-headers.ts): TTL, Urgency, Topic,
// Content-Encoding, Encryption, Crypto-Key and bodies shaped like aes128gcm/aesgcm ones.
import { test } from 'node:test';
import type { IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { pushBody, pushHeaders } from './arbitraries.ts';
import { pushHeadersProperty } from './properties.ts';
import { fuzzParameters } from './settings.ts';

test('push headers and bodies: only 400 with the documented errnos, and what passes is in range', () => {
  const maxTtl = fc.constantFrom(2_592_000, 60, 1);
  fc.assert(
    fc.property(pushHeaders(null), pushBody, maxTtl, (headers, body, max) => pushHeadersProperty(headers as IncomingHttpHeaders, body, max)),
    fuzzParameters(3000),
  );
});
