// Live fuzz of the user-agent WebSocket door of a real webpushd process: raw frames before and
// after hello (text, binary, not UTF-8, control frames, reserved bits and opcodes, fragments,
// oversize), carrying client messages with wrong types and huge or multibyte strings.
import { test } from 'node:test';
import { liveSuite } from './suites.ts';
import { fuzzParameters } from './settings.ts';

const suite = liveSuite('WebSocket frames');
test(suite.name, async (t) => {
  const run = await suite.run(fuzzParameters(suite.runs, { live: true }));
  t.diagnostic(JSON.stringify(run));
});
