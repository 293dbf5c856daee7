// Fuzz of VAPID (src/vapid/authorization.ts, src/vapid/verify.ts) through the real push
// endpoint in process: Authorization and Crypto-Key headers around signed tokens, with the
// tokens' claims, headers, parts, signatures and keys edited.
import { test } from 'node:test';
import fc from 'fast-check';
import { headerNoise, signedTokens, vapidCase, AUDIENCE, NOW } from './arbitraries.ts';
import { vapidAuthorizationProperty, vapidEndpointFixture, vapidEndpointProperty } from './properties.ts';
import { fuzzParameters } from './settings.ts';

test('parseVapidAuthorization never throws, on spelled-out and random headers', () => {
  const cases = fc.oneof(
    vapidCase(signedTokens(AUDIENCE, NOW)).map((c) => [c.authorization, c.cryptoKey] as const),
    fc.tuple(fc.option(headerNoise, { nil: undefined }), fc.option(headerNoise, { nil: undefined })),
  );
  fc.assert(fc.property(cases, ([authorization, cryptoKey]) => vapidAuthorizationProperty(authorization, cryptoKey)), fuzzParameters(3000));
});

test('VAPID at the push endpoint: only 401/403 errno 109, never a changed signature or another key accepted', async () => {
  const fixture = vapidEndpointFixture();
  await fc.assert(
    fc.asyncProperty(vapidCase(fixture.pool), fc.boolean(), (c, restricted) => vapidEndpointProperty(fixture, c, restricted)),
    fuzzParameters(1500),
  );
});
