// The pure RFC 8030 header modules: Link (RFC 8288) parsing and formatting, Prefer (RFC 7240),
// and the receipt request of a push (RFC 8030 5.1).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { PushError } from '../../src/common/push-error.ts';
import { Rel, formatLink, parseLinks, resourceToken, targetsOf } from '../../src/rfc8030/links.ts';
import { parsePrefer, prefersNoWait, prefersRespondAsync } from '../../src/rfc8030/prefer.ts';
import { parseReceiptRequest } from '../../src/rfc8030/receipt-request.ts';
import { Capabilities } from '../../src/tokens/capabilities.ts';
import { Sealer } from '../../src/tokens/sealer.ts';

describe('Link', () => {
  test('one field, several fields, comma-joined lists, parameters in any order and case', () => {
    assert.deepEqual(parseLinks('<https://p.example/s/a>; rel="urn:ietf:params:push"'), [
      { uri: 'https://p.example/s/a', rels: [Rel.push] },
    ]);
    assert.deepEqual(parseLinks(['</a>; rel="urn:ietf:params:push"', '</b>;REL=URN:IETF:PARAMS:PUSH:SET']), [
      { uri: '/a', rels: [Rel.push] },
      { uri: '/b', rels: [Rel.set] },
    ]);
    assert.deepEqual(parseLinks(' </a> ; title="x, y; z" ; rel="next urn:ietf:params:push:receipt" ,, </b>; rel=next;'), [
      { uri: '/a', rels: ['next', Rel.receipt] },
      { uri: '/b', rels: ['next'] },
    ]);
    assert.deepEqual(parseLinks('</a>; rel="first"; rel="second"'), [{ uri: '/a', rels: ['first'] }], 'the first rel only');
    assert.deepEqual(parseLinks('</a>; anchor="\\"q\\""'), [{ uri: '/a', rels: [] }]);
    assert.deepEqual(parseLinks('</a,b>; rel=x'), [{ uri: '/a,b', rels: ['x'] }], 'a comma inside <> is part of the URI');
    assert.deepEqual(parseLinks(undefined), []);
    assert.deepEqual(parseLinks(''), []);
  });

  test('broken syntax is null', () => {
    for (const bad of ['https://a/; rel=x', '<https://a/', '</a> rel=x', '</a>; rel="x', '</a>; =x', '</a>; rel=']) {
      assert.equal(parseLinks(bad), null, bad);
    }
  });

  test('targets of a relation, distinct; formatting', () => {
    const links = parseLinks(`</a>; rel="${Rel.set}", </a>; rel="${Rel.set}", </b>; rel="${Rel.push}"`)!;
    assert.deepEqual(targetsOf(links, Rel.set), ['/a']);
    assert.deepEqual(targetsOf(links, Rel.receipt), []);
    assert.equal(formatLink('https://p/r/x', Rel.receipt), '<https://p/r/x>; rel="urn:ietf:params:push:receipt"');
    assert.deepEqual(parseLinks(formatLink('https://p/r/x', Rel.receipt)), [{ uri: 'https://p/r/x', rels: [Rel.receipt] }]);
  });

  test('resourceToken: the last segment after the resource name, absolute or relative', () => {
    assert.equal(resourceToken('https://push.example/set/abc_-1', 'set'), 'abc_-1');
    assert.equal(resourceToken('/prefix/set/abc', 'set'), 'abc');
    assert.equal(resourceToken('https://push.example/s/abc', 'set'), null);
    assert.equal(resourceToken('https://push.example/set/abc/', 'set'), null);
    assert.equal(resourceToken('https://push.example/set/a.b', 'set'), null);
    assert.equal(resourceToken('http://[bad', 'set'), null);
  });
});

describe('Prefer', () => {
  test('preferences and their values', () => {
    assert.deepEqual([...parsePrefer('respond-async, wait=0')], [['respond-async', ''], ['wait', '0']]);
    assert.deepEqual([...parsePrefer(['Wait="0"; foo=bar', 'wait=5'])], [['wait', '0']], 'first one wins');
    assert.equal(prefersRespondAsync('handling=lenient, RESPOND-ASYNC'), true);
    assert.equal(prefersRespondAsync('respond-asynchronously'), false);
    assert.equal(prefersRespondAsync(undefined), false);
    assert.equal(prefersNoWait('wait=0'), true);
    assert.equal(prefersNoWait('wait=10'), false);
    assert.equal(prefersNoWait('respond-async'), false);
  });
});

describe('receipt request of a push', () => {
  const caps = new Capabilities(new Sealer([randomBytes(32)]));
  const id = randomBytes(16);
  const url = `https://push.example/r/${caps.receiptsToken(id)}`;

  test('none asked: null without looking further', () => {
    assert.equal(parseReceiptRequest({}, caps), null);
    assert.equal(parseReceiptRequest({ prefer: 'wait=10', link: '</x>; rel=next' }, caps), null);
  });

  test('respond-async alone: a new receipt subscription; a Link: that one, with or without respond-async', () => {
    const fresh = parseReceiptRequest({ prefer: 'respond-async' }, caps)!;
    assert.equal(fresh.respondAsync, true);
    assert.equal(fresh.target.create, true);
    assert.equal(fresh.target.id.length, 16);
    assert.notDeepEqual(parseReceiptRequest({ prefer: 'respond-async' }, caps)!.target.id, fresh.target.id);
    const named = parseReceiptRequest({ prefer: 'respond-async', link: `<${url}>; rel="${Rel.receipt}"` }, caps)!;
    assert.deepEqual(named, { target: { id, create: false }, respondAsync: true });
    const linkOnly = parseReceiptRequest({ link: `<${new URL(url).pathname}>; rel="${Rel.receipt}"` }, caps)!;
    assert.deepEqual(linkOnly, { target: { id, create: false }, respondAsync: false });
    assert.equal(caps.receiptsToken(id), new URL(url).pathname.slice(3), 'one URL per receipt subscription');
  });

  test('an invalid receipt Link is a 400', () => {
    for (const link of [
      `<https://push.example/r/AAAA>; rel="${Rel.receipt}"`,
      `<https://push.example/set/${caps.setToken(id)}>; rel="${Rel.receipt}"`,
      `<https://push.example/r/${caps.setToken(id)}>; rel="${Rel.receipt}"`,
      `<${url}>; rel="${Rel.receipt}", <https://push.example/r/other>; rel="${Rel.receipt}"`,
      `${url}; rel="${Rel.receipt}"`,
    ]) {
      assert.throws(
        () => parseReceiptRequest({ link }, caps),
        (err: unknown) => err instanceof PushError && err.status === 400 && err.errno === 121,
        link,
      );
    }
  });
});
