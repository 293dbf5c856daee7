// The keys of the per-address limits (src/limits/addresses.ts): an IPv6 client is its prefix
// (default /64, what one host is handed), whatever address in it and however it is spelled; an
// IPv4 one, or an IPv4-mapped IPv6 one, its address.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { limitKey } from '../../src/limits/addresses.ts';
import { ConnectionLimiter } from '../../src/limits/connection-limiter.ts';
import { RateLimiter } from '../../src/limits/rate-limiter.ts';

const groups = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });
const full = (g: number[]) => g.map((x) => x.toString(16).padStart(4, '0')).join(':');
/** The shortest spelling (RFC 5952), as the socket reports an address. */
const short = (g: number[]) => new URL(`http://[${full(g)}]/`).hostname.slice(1, -1);
const bits = (g: number[]) => g.map((x) => x.toString(2).padStart(16, '0')).join('');

test('two IPv6 addresses share a key exactly when their first `prefix` bits agree, in any spelling', () => {
  fc.assert(
    fc.property(groups, groups, fc.integer({ min: 16, max: 128 }), fc.integer({ min: 0, max: 128 }), (a, other, prefix, keep) => {
      // b shares the first `keep` bits of a
      const b = (bits(a).slice(0, keep) + bits(other).slice(keep)).match(/.{16}/g)!.map((s) => parseInt(s, 2));
      const mapped = a.slice(0, 6).join() === '0,0,0,0,0,65535' || b.slice(0, 6).join() === '0,0,0,0,0,65535';
      fc.pre(!mapped);
      const same = bits(a).slice(0, prefix) === bits(b).slice(0, prefix);
      assert.equal(limitKey(full(a), prefix) === limitKey(short(b), prefix), same);
      assert.equal(limitKey(short(a), prefix), limitKey(full(a).toUpperCase(), prefix));
    }),
  );
});

test('IPv4 and IPv4-mapped addresses are keyed by the address; anything else is left as it is', () => {
  assert.equal(limitKey('192.0.2.7', 64), '192.0.2.7');
  assert.equal(limitKey('::ffff:192.0.2.7', 64), '192.0.2.7');
  assert.equal(limitKey('2001:db8:1:2:aaaa::1', 64), limitKey('2001:db8:1:2::ffff', 64));
  assert.notEqual(limitKey('2001:db8:1:2::1', 64), limitKey('2001:db8:1:3::1', 64));
  assert.notEqual(limitKey('2001:db8:1:2::1', 128), limitKey('2001:db8:1:2::2', 128));
  assert.equal(limitKey('fe80::1%eth0', 64), limitKey('fe80::2', 64));
  assert.equal(limitKey('not an address', 64), 'not an address');
});

test('the connection limit and the rate limit count a /64 as one client', () => {
  const connections = new ConnectionLimiter(2, true);
  assert.ok(connections.acquire('2001:db8:1:2::1'));
  assert.ok(connections.acquire('2001:db8:1:2::2'));
  assert.ok(!connections.acquire('2001:db8:1:2:ffff::3'), 'a third address of the /64');
  assert.ok(connections.acquire('2001:db8:1:3::1'), 'another /64');
  connections.release('2001:db8:1:2::1');
  assert.ok(connections.acquire('2001:db8:1:2::9'), 'a release frees the /64');
  const perAddress = new ConnectionLimiter(1, true, undefined, 128);
  assert.ok(perAddress.acquire('2001:db8:1:2::1') && perAddress.acquire('2001:db8:1:2::2'), 'prefix 128: each address alone');

  const rates = new RateLimiter({ perSubscriptionRate: 0, perSubscriptionBurst: 1, perAddressRate: 1, perAddressBurst: 2, exemptLoopback: true, now: () => 0 });
  rates.checkAddress('2001:db8:1:2::1');
  rates.checkAddress('2001:db8:1:2::2');
  assert.throws(() => rates.checkAddress('2001:db8:1:2::3'), /Too many requests from this address/);
  rates.checkAddress('2001:db8:1:3::1');
});
