// Fuzz of the pure RFC 8030 header code: Prefer (src/rfc8030/prefer.ts), Link
// (src/rfc8030/links.ts) and the receipt request of a push (src/rfc8030/receipt-request.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatLink, parseLinks } from '../../src/rfc8030/links.ts';
import { REL_RECEIPT, REL_SET, headerNoise, linkHeader, mutated, preferValue } from './arbitraries.ts';
import { linkProperty, preferProperty, receiptFixture, receiptRequestProperty } from './properties.ts';
import { fuzzParameters } from './settings.ts';

const someUrl = fc.constantFrom('https://push.example.net/r/abc', '/set/x_-1', 'r/y', 'https://[::1]:8080/s/z');

test('Prefer never throws; its helpers agree with the parsed preferences', () => {
  const value = fc.oneof(fc.option(preferValue, { nil: undefined }), fc.array(preferValue, { maxLength: 3 }), headerNoise);
  fc.assert(fc.property(value, preferProperty), fuzzParameters(3000));
});

test('Link never throws; parsed relation types are lower-case words', () => {
  const value = fc.oneof(fc.option(linkHeader(someUrl), { nil: undefined }), fc.string({ unit: 'binary', maxLength: 40 }));
  fc.assert(fc.property(value, linkProperty), fuzzParameters(3000));
});

test('Link: a formatted link parses back to itself', () => {
  const uri = fc.string({ maxLength: 30 }).filter((s) => !s.includes('>') && s === s.trim());
  const rel = fc.constantFrom(REL_RECEIPT, REL_SET, 'next');
  fc.assert(
    fc.property(fc.array(fc.tuple(uri, rel), { minLength: 1, maxLength: 3 }), (links) => {
      assert.deepEqual(parseLinks(links.map(([u, r]) => formatLink(u, r)).join(', ')), links.map(([u, r]) => ({ uri: u, rels: [r] })));
    }),
    fuzzParameters(1000),
  );
});

test('receipt requests: only 400 errno 121; a named receipt subscription is one of this service', () => {
  const f = receiptFixture();
  const targets = fc.constantFrom(...f.receipts.map((r) => r.url), ...f.receipts.map((r) => new URL(r.url).pathname));
  fc.assert(
    fc.property(fc.option(mutated(preferValue, 1), { nil: undefined }), fc.option(linkHeader(targets), { nil: undefined }), (prefer, link) =>
      receiptRequestProperty(f, prefer, link),
    ),
    fuzzParameters(3000),
  );
});
