// Token buckets and the connection limiter, with an injected clock; the client address behind
// trusted proxies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBuckets } from '../../src/limits/token-bucket.ts';
import { ConnectionLimiter } from '../../src/limits/connection-limiter.ts';
import { RateLimiter } from '../../src/limits/rate-limiter.ts';
import { isLoopback } from '../../src/limits/addresses.ts';
import { ClientAddresses, isAddressOrRange } from '../../src/limits/client-address.ts';

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

test('a bucket allows the burst, then refuses with the seconds until a token', () => {
  const c = clock();
  const b = new TokenBuckets({ rate: 2, burst: 3, now: c.now });
  assert.deepEqual([b.take('a'), b.take('a'), b.take('a')], [0, 0, 0]);
  assert.equal(b.take('a'), 1, 'half a second to the next token: ceil to 1');
  c.t += 499;
  assert.equal(b.take('a'), 1);
  c.t += 1;
  assert.equal(b.take('a'), 0, 'one token after 500 ms at 2/s');
  assert.equal(b.take('a'), 1);
});

test('Retry-After is the ceiling of the wait at a slow rate', () => {
  const c = clock();
  const b = new TokenBuckets({ rate: 1, burst: 1, now: c.now });
  assert.equal(b.take('k'), 0);
  assert.equal(b.take('k'), 1);
  c.t += 200;
  assert.equal(b.take('k'), 1, '0.8 s left: 1');
  c.t += 800;
  assert.equal(b.take('k'), 0);
});

test('keys are independent', () => {
  const c = clock();
  const b = new TokenBuckets({ rate: 1, burst: 1, now: c.now });
  assert.equal(b.take('a'), 0);
  assert.equal(b.take('a'), 1);
  assert.equal(b.take('b'), 0);
});

test('refill stops at the burst', () => {
  const c = clock();
  const b = new TokenBuckets({ rate: 10, burst: 2, now: c.now });
  b.take('a');
  c.t += 3_600_000;
  assert.deepEqual([b.take('a'), b.take('a'), b.take('a')], [0, 0, 1]);
});

test('idle (full) buckets are evicted and the map is bounded', () => {
  const c = clock();
  const b = new TokenBuckets({ rate: 1, burst: 1, maxKeys: 3, now: c.now });
  for (let i = 0; i < 10; i++) b.take(`k${i}`);
  assert.ok(b.size <= 4, `size ${b.size}`);
  c.t += 1000;
  b.take('fresh');
  assert.equal(b.size, 1, 'buckets full again carry no state');
});

test('rate 0 is off', () => {
  const b = new TokenBuckets({ rate: 0, burst: 1 });
  for (let i = 0; i < 100; i++) assert.equal(b.take('a'), 0);
  assert.equal(b.size, 0);
});

test('the rate limiter throws 429 with errno 124 and Retry-After; loopback can be exempt', () => {
  const c = clock();
  const opts = { perSubscriptionRate: 1, perSubscriptionBurst: 1, perAddressRate: 1, perAddressBurst: 1, now: c.now };
  const exempt = new RateLimiter({ ...opts, exemptLoopback: true });
  exempt.checkAddress('127.0.0.1');
  exempt.checkAddress('127.0.0.1');
  exempt.checkAddress('203.0.113.5');
  assert.throws(
    () => exempt.checkAddress('203.0.113.5'),
    (e: { status: number; errno: number; headers: Record<string, string> }) =>
      e.status === 429 && e.errno === 124 && e.headers['retry-after'] === '1',
  );
  const limited = new RateLimiter({ ...opts, exemptLoopback: false });
  limited.checkAddress('::1');
  assert.throws(() => limited.checkAddress('::1'));
  const uaid = Buffer.alloc(16, 1);
  limited.checkSubscription(uaid, Buffer.alloc(16, 2));
  assert.throws(() => limited.checkSubscription(uaid, Buffer.alloc(16, 2)));
  limited.checkSubscription(uaid, Buffer.alloc(16, 3));
});

test('the connection limiter counts per address and releases', () => {
  const l = new ConnectionLimiter(2, true);
  assert.ok(l.acquire('10.0.0.1'));
  assert.ok(l.acquire('10.0.0.1'));
  assert.ok(!l.acquire('10.0.0.1'));
  assert.ok(l.acquire('10.0.0.2'));
  l.release('10.0.0.1');
  assert.ok(l.acquire('10.0.0.1'));
  for (let i = 0; i < 10; i++) assert.ok(l.acquire('127.0.0.1'), 'loopback exempt');
  assert.ok(new ConnectionLimiter(0, false).acquire('10.0.0.1'));
  assert.ok(isLoopback('::ffff:127.0.0.1') && isLoopback('::1') && !isLoopback('10.0.0.1'));
});

test('trusted-proxy entries: addresses and CIDR ranges of either family', () => {
  for (const ok of ['127.0.0.1', '10.0.0.0/8', '0.0.0.0/0', '::1', 'fd00::/8', '::ffff:10.0.0.1']) assert.ok(isAddressOrRange(ok), ok);
  for (const bad of ['', 'proxy.local', '10.0.0.0/33', '::/129', '10.0.0.1/', '10.0.0.1/8/8', '10.0.0.0/x', '300.1.1.1']) assert.ok(!isAddressOrRange(bad), bad);
});

test('the client address: the peer, or behind a trusted proxy the first untrusted X-Forwarded-For hop from the right', () => {
  const none = new ClientAddresses([]);
  assert.equal(none.of('127.0.0.1', '203.0.113.7'), '127.0.0.1', 'no trusted proxy: the header is ignored');
  const c = new ClientAddresses(['127.0.0.0/8', '::1', '10.1.2.3']);
  assert.equal(c.of('127.0.0.1', '203.0.113.7'), '203.0.113.7');
  assert.equal(c.of('::ffff:127.0.0.1', '203.0.113.7'), '203.0.113.7', 'an IPv4-mapped peer');
  assert.equal(c.of('::1', ['198.51.100.1', '203.0.113.7']), '203.0.113.7', 'repeated headers read as one list');
  assert.equal(c.of('127.0.0.1', '198.51.100.9, 203.0.113.7, 10.1.2.3'), '203.0.113.7', 'past the trusted hops, and no further');
  assert.equal(c.of('127.0.0.1', '10.1.2.3, 127.0.0.2'), '10.1.2.3', 'all trusted: the leftmost');
  assert.equal(c.of('127.0.0.1', 'unknown, 203.0.113.7'), '203.0.113.7');
  assert.equal(c.of('127.0.0.1', '203.0.113.7:4711'), '127.0.0.1', 'not an address: the peer');
  assert.equal(c.of('127.0.0.1', undefined), '127.0.0.1');
  assert.equal(c.of('198.51.100.2', '203.0.113.7'), '198.51.100.2', 'an untrusted peer cannot name another client');
  assert.equal(c.of(undefined, '203.0.113.7'), undefined);
});
