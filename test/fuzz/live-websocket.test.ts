// Live fuzz of the user-agent WebSocket door of a real webpushd process: raw frames before and
// after hello (text, binary, not UTF-8, control frames, reserved bits and opcodes, fragments,
// oversize), carrying client messages with wrong types and huge or multibyte strings.
import { after, before, test } from 'node:test';
import { webSocketCase } from './arbitraries.ts';
import { runLive, webSocketDoor } from './doors.ts';
import { Answers, http2Canary, startFuzzServer, webSocketCanary, type Canary, type FuzzServer } from './live.ts';
import { fuzzParameters } from './settings.ts';

let server: FuzzServer;
const canaries: Canary[] = [];

before(async () => {
  server = await startFuzzServer();
  canaries.push(await webSocketCanary(server), await http2Canary(server));
});

after(async () => {
  for (const c of canaries) await c.close();
  await server?.stop();
});

test('WebSocket frames: documented close codes only, the process lives, other user agents keep receiving', async () => {
  const run = await runLive(server, webSocketDoor(server, new Answers(), webSocketCase), canaries, fuzzParameters(250, { live: true }));
  console.log(JSON.stringify(run));
});
