// Cost of preparing one push request (aes128gcm encryption + VAPID signature + headers):
// the SDK's generateRequestDetails against web-push's, same machine, same process, same
// subscription, VAPID keys and 100-byte payload. Rounds alternate between the two so drift
// (other load, CPU frequency) hits both alike; the median round is reported.
//
//   node_modules/.bin/node bench/sdk-prepare.ts [--iterations 5000] [--warmup 2000] [--rounds 7] [--payload 100]
import { createECDH, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import webpush from 'web-push';
import { decryptMessage, encryptMessage } from '../src/crypto/webpush.ts';
import { generateRequestDetails, generateVAPIDKeys } from '../src/index.ts';

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: '5000' },
    warmup: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '7' },
    payload: { type: 'string', default: '100' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('usage: node bench/sdk-prepare.ts [--iterations N] [--warmup N] [--rounds N] [--payload BYTES]');
  process.exit(0);
}
const iterations = Number(values.iterations);
const warmup = Number(values.warmup);
const rounds = Number(values.rounds);
const payload = Buffer.from('x'.repeat(Number(values.payload)));

const ua = createECDH('prime256v1');
ua.generateKeys();
const auth = randomBytes(16);
const subscription = {
  endpoint: 'https://push.example.net/wpush/v2/gAAAAABkZ3JlYXQtdG9rZW4tZm9yLWJlbmNobWFya2luZw',
  keys: { p256dh: ua.getPublicKey().toString('base64url'), auth: auth.toString('base64url') },
};
const vapidDetails = { subject: 'mailto:bench@example.com', ...generateVAPIDKeys() };
const options = { TTL: 60, vapidDetails };

// Both produce a request a user agent can read, with the same header names.
const sdkDetails = generateRequestDetails(subscription, payload, options);
const wpDetails = webpush.generateRequestDetails(subscription, payload, options);
for (const [name, d] of [['sdk', sdkDetails], ['web-push', wpDetails]] as const) {
  const plain = decryptMessage(d.body as Buffer, { encoding: 'aes128gcm' }, {
    publicKey: ua.getPublicKey(),
    privateKey: ua.getPrivateKey(),
    auth,
  });
  if (!plain.equals(payload)) throw new Error(`${name}: the body does not decrypt to the payload`);
}
if (Object.keys(sdkDetails.headers).join() !== Object.keys(wpDetails.headers).join()) {
  throw new Error(`header names differ: ${Object.keys(sdkDetails.headers).join()} / ${Object.keys(wpDetails.headers).join()}`);
}

type Case = { name: string; run: () => unknown };
const cases: Case[] = [
  { name: 'sdk generateRequestDetails', run: () => generateRequestDetails(subscription, payload, options) },
  { name: 'web-push generateRequestDetails', run: () => webpush.generateRequestDetails(subscription, payload, options) },
  // Where the SDK's time goes: the encryption alone (the VAPID token is cached per origin).
  { name: 'sdk encryptMessage only', run: () => encryptMessage(payload, { p256dh: ua.getPublicKey(), auth }) },
  // The floor RFC 8291 sets: a fresh P-256 key pair per message and one ECDH with the subscriber.
  { name: 'floor: ephemeral key pair + ECDH', run: ephemeralEcdh },
];

const uaKey = createPublicKey({
  key: { kty: 'EC', crv: 'P-256', x: ua.getPublicKey().subarray(1, 33).toString('base64url'), y: ua.getPublicKey().subarray(33).toString('base64url') },
  format: 'jwk',
});
function ephemeralEcdh(): Buffer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  publicKey.export({ format: 'raw-public' });
  return diffieHellman({ privateKey, publicKey: uaKey });
}

/**
 * One round of n requests, prepared in chunks of CHUNK with an event-loop turn between chunks,
 * as a sender does between its sends (and as the SDK's sender-key pool needs to refill).
 * Main-thread time is the time spent inside the chunks; CPU time (process.cpuUsage) also
 * counts the thread pool, where the SDK generates its ephemeral keys.
 */
const CHUNK = 32;
async function timeRound(c: Case, n: number): Promise<{ main: number; cpu: number }> {
  let busy = 0n;
  const cpu = process.cpuUsage();
  for (let done = 0; done < n; done += CHUNK) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < CHUNK; i++) c.run();
    busy += process.hrtime.bigint() - start;
    await new Promise((resolve) => setImmediate(resolve));
  }
  const used = process.cpuUsage(cpu);
  const count = Math.ceil(n / CHUNK) * CHUNK;
  return { main: Number(busy) / 1000 / count, cpu: (used.user + used.system) / count }; // µs per request
}

for (const c of cases) await timeRound(c, warmup);
const samples = new Map<string, { main: number; cpu: number }[]>(cases.map((c) => [c.name, []]));
for (let r = 0; r < rounds; r++) {
  // alternate the order so neither side always runs first
  for (const c of r % 2 === 0 ? cases : [...cases].reverse()) samples.get(c.name)!.push(await timeRound(c, iterations));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results = cases.map((c) => {
  const xs = samples.get(c.name)!;
  const main = xs.map((x) => x.main);
  return { name: c.name, median: median(main), min: Math.min(...main), max: Math.max(...main), cpu: median(xs.map((x) => x.cpu)) };
});

console.log(
  `Node ${process.versions.node}, OpenSSL ${process.versions.openssl}; ${payload.length}-byte payload, aes128gcm + VAPID; ` +
    `${rounds} rounds x ${iterations} requests after ${warmup} warm-up each, in chunks of ${CHUNK} between event-loop turns`,
);
console.log('| | main thread µs per request (median round) | min – max round | CPU µs per request, all threads (median) | requests/s on the main thread |');
console.log('|---|---:|---:|---:|---:|');
for (const r of results) {
  console.log(
    `| ${r.name} | ${r.median.toFixed(1)} | ${r.min.toFixed(1)} – ${r.max.toFixed(1)} | ${r.cpu.toFixed(1)} | ${Math.round(1e6 / r.median).toLocaleString('en-US')} |`,
  );
}
const ratio = results[1]!.median / results[0]!.median;
const cpuRatio = results[1]!.cpu / results[0]!.cpu;
console.log(`\nweb-push / sdk: ${ratio.toFixed(2)}x on the main thread, ${cpuRatio.toFixed(2)}x in CPU time (aim: >= 4x)`);
