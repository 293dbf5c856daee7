// The skip rule of tests that need an outside client: skipped where it is missing, except under
// CI, where a missing client is an error (so a green CI means the real clients ran).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { skipUnlessInstalled, underCi } from '../helpers/required-tool.ts';

const WHY = 'nghttp is not installed';

test('installed: the test runs, with or without CI', () => {
  assert.equal(skipUnlessInstalled(true, WHY, {}), false);
  assert.equal(skipUnlessInstalled(true, WHY, { CI: 'true' }), false);
});

test('missing outside CI: skipped, saying why', () => {
  for (const CI of [undefined, '', '0', 'false', 'FALSE']) assert.equal(skipUnlessInstalled(false, WHY, { CI }), WHY, `CI=${CI}`);
});

test('missing under CI: an error, not a skip', () => {
  for (const CI of ['true', '1', 'yes']) {
    assert.equal(underCi({ CI }), true, `CI=${CI}`);
    assert.throws(() => skipUnlessInstalled(false, WHY, { CI }), /nghttp is not installed: under CI this is a failure, not a skip/);
  }
});
