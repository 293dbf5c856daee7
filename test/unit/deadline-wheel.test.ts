import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeadlineWheel, type HasDeadline } from '../../src/common/deadline-wheel.ts';

class Item implements HasDeadline {
  deadline = 0;
  fired: number[] = [];
  onDeadline(now: number): void {
    this.fired.push(now);
  }
}

test('deadlines fire once, at or after their time; rescheduled and cancelled ones follow the latest call', () => {
  let now = 10_000;
  const wheel = new DeadlineWheel<Item>(100, () => now);
  const [a, b, c] = [new Item(), new Item(), new Item()];
  wheel.schedule(a, now + 250);
  wheel.schedule(b, now + 250);
  wheel.schedule(c, now + 250);
  wheel.schedule(b, now + 1000); // moved later
  wheel.cancel(c);
  now += 200;
  wheel.advance();
  assert.deepEqual([a.fired, b.fired, c.fired], [[], [], []]);
  now += 100;
  wheel.advance();
  assert.deepEqual(a.fired, [10_300]);
  assert.deepEqual(b.fired, []);
  now += 800;
  wheel.advance();
  assert.deepEqual(b.fired, [11_100]);
  now += 5000;
  wheel.advance();
  assert.deepEqual([a.fired.length, b.fired.length, c.fired.length], [1, 1, 0]);
  wheel.stop();
});

test('a deadline already in the past fires on the next tick', () => {
  let now = 5_000;
  const wheel = new DeadlineWheel<Item>(100, () => now);
  const a = new Item();
  wheel.advance();
  wheel.schedule(a, now - 1000);
  now += 100;
  wheel.advance();
  assert.equal(a.fired.length, 1);
  wheel.stop();
});
