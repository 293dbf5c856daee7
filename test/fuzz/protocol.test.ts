// Fuzz of the pure WebSocket protocol code (src/connect/protocol.ts): client frames shaped like
// Firefox's, mutated (wrong types, missing and extra fields, multibyte and huge strings).
import { test } from 'node:test';
import fc from 'fast-check';
import { clientFrameText, hugeString } from './arbitraries.ts';
import { clientMessageProperty } from './properties.ts';
import { fuzzParameters } from './settings.ts';

test('parseClientMessage throws only ProtocolViolation, and what it accepts is well-formed', () => {
  fc.assert(fc.property(clientFrameText, clientMessageProperty), fuzzParameters(3000));
});

test('parseClientMessage on huge and multibyte fields', () => {
  const frame = fc
    .tuple(fc.constantFrom('messageType', 'channelID', 'uaid', 'version', 'key'), hugeString, fc.constantFrom('hello', 'register', 'nack', 'ack'))
    .map(([field, value, type]) => JSON.stringify({ messageType: type, [field]: value }));
  fc.assert(fc.property(frame, clientMessageProperty), fuzzParameters(50));
});
