import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DeadlineWheel, type HasDeadline } from '../../src/common/deadline-wheel.ts';

const TICK = 100;

class Item implements HasDeadline {
  deadline = 0;
  deadlineTick = 0;
  fired: number[] = [];
  /** Runs inside onDeadline (a handler that schedules or cancels). */
  then: ((now: number) => void) | null = null;
  onDeadline(now: number): void {
    this.fired.push(now);
    this.then?.(now);
  }
}

function fakeWheel(start: number) {
  const clock = { now: start };
  const wheel = new DeadlineWheel<Item>({ tickMs: TICK, now: () => clock.now });
  return { clock, wheel };
}

test('deadlines fire once, at or after their time; rescheduled and cancelled ones follow the latest call', () => {
  const { clock, wheel } = fakeWheel(10_000);
  const [a, b, c] = [new Item(), new Item(), new Item()];
  wheel.schedule(a, clock.now + 250);
  wheel.schedule(b, clock.now + 250);
  wheel.schedule(c, clock.now + 250);
  wheel.schedule(b, clock.now + 1000); // moved later
  wheel.cancel(c);
  assert.equal(wheel.size, 2, 'a moved or cancelled item leaves no entry behind');
  clock.now += 200;
  wheel.advance();
  assert.deepEqual([a.fired, b.fired, c.fired], [[], [], []]);
  clock.now += 100;
  wheel.advance();
  assert.deepEqual(a.fired, [10_300]);
  assert.deepEqual(b.fired, []);
  clock.now += 800;
  wheel.advance();
  assert.deepEqual(b.fired, [11_100]);
  clock.now += 5000;
  wheel.advance();
  assert.deepEqual([a.fired.length, b.fired.length, c.fired.length], [1, 1, 0]);
  assert.equal(wheel.buckets, 0);
  wheel.stop();
});

test('a deadline at or before now fires on the next tick', () => {
  const { clock, wheel } = fakeWheel(5_000);
  const [past, now] = [new Item(), new Item()];
  wheel.advance();
  wheel.schedule(past, clock.now - 1000);
  wheel.schedule(now, clock.now);
  clock.now += TICK;
  wheel.advance();
  assert.equal(past.fired.length, 1);
  assert.equal(now.fired.length, 1);
  assert.equal(wheel.buckets, 0);
  wheel.stop();
});

test('a deadline scheduled from a handler within the tick being run still fires (pong timeout under a tick)', () => {
  // the keepalive pattern: the ping deadline fires, its handler schedules the pong deadline 30 ms on
  const { clock, wheel } = fakeWheel(1_000);
  const session = new Item();
  let pongDue = 0;
  session.then = (now) => {
    session.then = null;
    pongDue = now + 30;
    wheel.schedule(session, pongDue);
  };
  wheel.schedule(session, 1_050);
  clock.now = 1_150; // the ping fires late in the tick after its own
  wheel.advance();
  assert.equal(session.fired.length, 1);
  assert.equal(wheel.size, 1);
  clock.now = pongDue + TICK;
  wheel.advance();
  assert.equal(session.fired.length, 2, 'the pong deadline fired at most one tick late');
  assert.ok(session.fired[1]! - pongDue <= TICK);
  assert.equal(wheel.buckets, 0);
  wheel.stop();
});

test('a handler scheduling at "now" over and over runs once per tick, never in a loop', () => {
  const { clock, wheel } = fakeWheel(0);
  const storm = new Item();
  storm.then = (now) => wheel.schedule(storm, now);
  wheel.schedule(storm, 0);
  clock.now = 10 * TICK; // ten ticks behind
  wheel.advance();
  assert.ok(storm.fired.length <= 11, `ran ${storm.fired.length} times`);
  assert.equal(wheel.size, 1);
  storm.then = null;
  clock.now += TICK;
  wheel.advance();
  assert.equal(wheel.size, 0);
  assert.equal(wheel.buckets, 0);
  wheel.stop();
});

test('a handler may cancel or move another item of the bucket being run', () => {
  const { clock, wheel } = fakeWheel(0);
  const [a, b, c] = [new Item(), new Item(), new Item()];
  a.then = (now) => {
    wheel.cancel(b);
    wheel.schedule(c, now + 5 * TICK);
  };
  for (const item of [a, b, c]) wheel.schedule(item, 50);
  clock.now = TICK;
  wheel.advance();
  assert.deepEqual([a.fired.length, b.fired.length, c.fired.length], [1, 0, 0]);
  assert.equal(wheel.size, 1);
  clock.now = 7 * TICK;
  wheel.advance();
  assert.equal(c.fired.length, 1);
  assert.equal(wheel.buckets, 0);
  wheel.stop();
});

test('a handler that throws is reported and the others still run', () => {
  const errors: unknown[] = [];
  let now = 0;
  const wheel = new DeadlineWheel<Item>({ tickMs: TICK, now: () => now, onError: (err) => errors.push(err) });
  const [bad, good] = [new Item(), new Item()];
  bad.then = () => {
    throw new Error('boom');
  };
  wheel.schedule(bad, 10);
  wheel.schedule(good, 10);
  now = TICK;
  wheel.advance();
  assert.equal(errors.length, 1);
  assert.equal(good.fired.length, 1);
  wheel.stop();
});

test('a clock that jumps far ahead runs what is due without walking every tick', () => {
  const { clock, wheel } = fakeWheel(0);
  const a = new Item();
  wheel.schedule(a, 500);
  clock.now = 1e15; // ~30,000 years of 100 ms ticks
  wheel.advance();
  assert.equal(a.fired.length, 1);
  wheel.stop();
});

// Against a reference model: each item has at most one pending deadline (the latest schedule),
// and fires once, no earlier than it and at most one tick after it (or after the call, for a
// deadline already past), whatever handlers do meanwhile.
test('property: the wheel matches a model of "latest deadline, fired once, at most one tick late"', () => {
  const ITEMS = 6;
  const op = fc.oneof(
    fc.record({ kind: fc.constant('schedule' as const), item: fc.nat(ITEMS - 1), offset: fc.integer({ min: -300, max: 800 }) }),
    fc.record({ kind: fc.constant('cancel' as const), item: fc.nat(ITEMS - 1) }),
    fc.record({ kind: fc.constant('advance' as const), by: fc.integer({ min: 0, max: 350 }) }),
    // from inside a handler: item `item` reschedules `other` when it fires
    fc.record({ kind: fc.constant('onFire' as const), item: fc.nat(ITEMS - 1), other: fc.nat(ITEMS - 1), offset: fc.integer({ min: -50, max: 250 }) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 10_000 }), fc.array(op, { maxLength: 60 }), (start, ops) => {
      const { clock, wheel } = fakeWheel(start);
      const items = Array.from({ length: ITEMS }, () => new Item());
      /** The model: each item's pending deadline and the earliest time it may fire (null: none). */
      const due: ({ at: number; earliest: number; scheduledAt: number } | null)[] = items.map(() => null);
      const schedule = (i: number, at: number) => {
        due[i] = { at, earliest: at, scheduledAt: clock.now };
        wheel.schedule(items[i]!, at);
      };
      items.forEach((item, i) => {
        item.onDeadline = (now) => {
          const d = due[i];
          assert.ok(d, `item ${i} fired with no deadline pending`);
          assert.ok(now >= d.at, `item ${i} fired at ${now}, before ${d.at}`);
          due[i] = null;
          item.fired.push(now);
          item.then?.(now);
        };
      });
      try {
        for (const o of ops) {
          if (o.kind === 'schedule') schedule(o.item, clock.now + o.offset);
          else if (o.kind === 'cancel') {
            due[o.item] = null;
            wheel.cancel(items[o.item]!);
          } else if (o.kind === 'onFire') {
            items[o.item]!.then = (now) => schedule(o.other, now + o.offset);
          } else {
            clock.now += o.by;
            wheel.advance();
          }
          // after an advance, whatever is still pending became due in the current tick or later
          if (o.kind === 'advance') {
            for (const [i, d] of due.entries()) {
              const dueTick = d && Math.floor(Math.max(d.at, d.scheduledAt) / TICK);
              assert.ok(!d || dueTick! >= Math.floor(clock.now / TICK), `item ${i} due at ${d?.at} has not fired at ${clock.now}`);
            }
          }
          assert.equal(wheel.size, due.filter(Boolean).length, 'one entry per pending item, none for the others');
        }
        for (const item of items) item.then = null;
        clock.now += 2000;
        wheel.advance();
        assert.equal(wheel.size, 0);
        assert.equal(wheel.buckets, 0, 'no bucket left behind');
      } finally {
        wheel.stop();
      }
    }),
    { seed: Number(process.env.FUZZ_SEED ?? 1), numRuns: 300 },
  );
});
