// The aggregate API's documents (src/endpoint/aggregate-documents.ts): the member set and its JSON
// Merge Patch, and the batch, whose entries are each checked as a single push would be.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { PushError } from '../../src/common/push-error.ts';
import { mediaType, parseBatch, parseMembers } from '../../src/endpoint/aggregate-documents.ts';
import { aes128gcmBody } from '../helpers/bodies.ts';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const errnoOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PushError);
    return [err.status, err.errno];
  }
  assert.fail('no error');
};

test('members: true adds; in a merge patch null removes; anything else is refused', () => {
  assert.deepEqual(parseMembers(Buffer.alloc(0), false), { add: [], remove: [] }, 'an empty POST body: no members');
  assert.deepEqual(parseMembers(json({ members: { a: true, b: true } }), false), { add: ['a', 'b'], remove: [] });
  assert.deepEqual(parseMembers(json({ members: { a: true, b: null } }), true), { add: ['a'], remove: ['b'] });
  assert.deepEqual(parseMembers(json({}), true), { add: [], remove: [] }, 'a patch without members changes nothing');
  for (const [body, patch] of [
    [json({ members: { a: null } }), false],
    [json({ members: { a: false } }), true],
    [json({ members: { a: {} } }), true],
    [json({ members: null }), true],
    [json({ members: ['a'] }), true],
    [json({ members: {}, name: 'x' }), true],
    [json(['a']), false],
    [Buffer.from('{'), true],
  ] as const) {
    assert.deepEqual(errnoOf(() => parseMembers(body, patch)), [400, 143], body.toString());
  }
});

test('batch: each entry checked alone, as a single push is', () => {
  const ok = aes128gcmBody('x');
  const entries = parseBatch(
    json({
      messages: {
        good: { encoding: 'aes128gcm', body: ok.toString('base64url') },
        padded: { encoding: 'aes128gcm', body: ok.toString('base64').replace(/\+/g, '-').replace(/\//g, '_') },
        empty: { body: '' },
        noEncoding: { body: ok.toString('base64url') },
        rot13: { encoding: 'rot13', body: ok.toString('base64url') },
        aesgcmWithoutSalt: { encoding: 'aesgcm', body: randomBytes(40).toString('base64url') },
        aesgcm: { encoding: 'aesgcm', encryption: `salt=${randomBytes(16).toString('base64url')}`, crypto_key: `dh=${randomBytes(65).toString('base64url')}`, body: randomBytes(40).toString('base64url') },
        tooLarge: { encoding: 'aes128gcm', body: randomBytes(4097).toString('base64url') },
        notBase64: { encoding: 'aes128gcm', body: 'a+b/c' },
        extra: { encoding: 'aes128gcm', body: '', ttl: 60 },
        notObject: 'x',
      },
    }),
    4096,
  );
  const outcome = Object.fromEntries(entries.map((e) => [e.url, e.message instanceof PushError ? [e.message.status, e.message.errno] : e.message.encoding?.encoding ?? 'empty']));
  assert.deepEqual(outcome, {
    good: 'aes128gcm',
    padded: 'aes128gcm',
    empty: 'empty',
    noEncoding: [400, 110],
    rot13: [400, 110],
    aesgcmWithoutSalt: [400, 110],
    aesgcm: 'aesgcm',
    tooLarge: [413, 104],
    notBase64: [400, 143],
    extra: [400, 143],
    notObject: [400, 143],
  });
  assert.deepEqual(errnoOf(() => parseBatch(json({ messages: [] }), 4096)), [400, 143]);
  assert.deepEqual(errnoOf(() => parseBatch(json({ members: {} }), 4096)), [400, 143]);
});

test('media types are compared without parameters or case', () => {
  assert.equal(mediaType('Application/Merge-Patch+JSON; charset=utf-8'), 'application/merge-patch+json');
  assert.equal(mediaType(undefined), '');
});
