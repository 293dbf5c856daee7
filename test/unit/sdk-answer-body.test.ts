// The SDK's bound on what it keeps of an answer's body (both HTTP versions use it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnswerBody, MAX_RESPONSE_BODY } from '../../src/sdk/http1.ts';

test('keeps the whole body up to the bound, then its beginning and says so', () => {
  const b = new AnswerBody(10);
  b.add('abcd');
  b.add('efghij');
  assert.equal(b.text, 'abcdefghij');
  assert.equal(b.truncated, false, 'exactly the bound is whole');
  b.add('k');
  assert.equal(b.text, 'abcdefghij');
  assert.equal(b.truncated, true);
  const c = new AnswerBody(5);
  c.add('abc');
  c.add('defgh');
  assert.equal(c.text, 'abcde', 'a chunk across the bound is cut at it');
  assert.equal(c.truncated, true);
});

test('the default bound is MAX_RESPONSE_BODY', () => {
  const b = new AnswerBody();
  b.add('x'.repeat(MAX_RESPONSE_BODY + 1));
  assert.equal(b.text.length, MAX_RESPONSE_BODY);
  assert.equal(b.truncated, true);
});
