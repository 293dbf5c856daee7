// Micro-benchmark of the application-server hot path: message encryption and VAPID tokens,
// the implementation choices behind them, and web-push's cost for the same prepared request.
//   node bench/crypto-micro.ts [--quick]
import {
  createECDH,
  createHmac,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
} from 'node:crypto';
import webpush from 'web-push';
import { encryptMessage, decryptMessage, generateUserAgentKeys } from '../src/crypto/webpush.ts';
import { VapidSigner, generateVapidKeys, signVapidToken, vapidAuthorization } from '../src/vapid/sign.ts';

const scale = process.argv.includes('--quick') ? 0.1 : 1;

/** Mean microseconds per call over `iterations` after a warm-up of a tenth as many. */
function measure(name: string, iterations: number, fn: (i: number) => unknown): number {
  const n = Math.max(100, Math.round(iterations * scale));
  for (let i = 0; i < n / 10; i++) fn(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const us = Number(process.hrtime.bigint() - start) / 1000 / n;
  console.log(`${name.padEnd(58)} ${us.toFixed(2).padStart(8)} us  ${Math.round(1e6 / us).toLocaleString('en').padStart(10)}/s`);
  return us;
}

const ua = generateUserAgentKeys();
const subscription = { p256dh: ua.publicKey, auth: ua.auth };
const payload = randomBytes(100);

console.log('-- implementation choices');
const key32 = randomBytes(32);
const info = Buffer.from('Content-Encoding: aes128gcm\0\x01');
measure('HMAC-SHA-256, Buffer key', 100_000, () => createHmac('sha256', key32).update(info).digest());
measure('HMAC-SHA-256, createSecretKey + KeyObject key', 100_000, () =>
  createHmac('sha256', createSecretKey(key32)).update(info).digest(),
);
measure('HMAC-SHA-256, latin1 string key (used)', 100_000, () =>
  createHmac('sha256', key32.toString('latin1'), { encoding: 'latin1' }).update(info).digest(),
);
const sharedEcdh = createECDH('prime256v1');
measure('ECDH: generateKeys + computeSecret (reused ECDH object)', 10_000, () => {
  sharedEcdh.generateKeys();
  return sharedEcdh.computeSecret(ua.publicKey);
});
const uaKeyObject = createPublicKey({ key: ua.publicKey, format: 'raw-public', asymmetricKeyType: 'ec', namedCurve: 'P-256' });
measure('KeyObject: generateKeyPairSync + export + diffieHellman (used)', 10_000, () => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  pair.publicKey.export({ format: 'raw-public' });
  return diffieHellman({ privateKey: pair.privateKey, publicKey: uaKeyObject });
});
measure('  + createPublicKey of the peer (uncached)', 10_000, () =>
  createPublicKey({ key: ua.publicKey, format: 'raw-public', asymmetricKeyType: 'ec', namedCurve: 'P-256' }),
);

console.log('-- encryption');
const aes128gcm = measure('encryptMessage aes128gcm, 100 B, same subscription', 20_000, () =>
  encryptMessage(payload, subscription),
);
const largest = randomBytes(3993);
measure('encryptMessage aes128gcm, 3993 B', 20_000, () => encryptMessage(largest, subscription));
measure('encryptMessage aesgcm, 100 B', 20_000, () => encryptMessage(payload, subscription, { encoding: 'aesgcm' }));
const body = encryptMessage(payload, subscription).body;
measure('decryptMessage aes128gcm, 100 B', 10_000, () => decryptMessage(body, { encoding: 'aes128gcm' }, ua));

console.log('-- VAPID');
const vapidKeys = generateVapidKeys();
const details = { subject: 'mailto:ops@example.com', ...vapidKeys };
const endpoint = 'https://push.example.net/wpush/v2/gAAAAABk';
const signer = new VapidSigner(details);
const cached = measure('VapidSigner.token, cached', 1_000_000, () => signer.token(endpoint));
// A clock that jumps a full lifetime per call: every call signs anew.
let fakeNow = 1_700_000_000;
const renewing = new VapidSigner(details, { ttlSeconds: 3600, now: () => (fakeNow += 3600) });
measure('VapidSigner.token, uncached (signs)', 20_000, () => renewing.token(endpoint));
measure('signVapidToken (imported key memoized)', 20_000, () =>
  signVapidToken({ aud: 'https://push.example.net', exp: 1_700_000_000, sub: details.subject }, vapidKeys),
);

console.log('-- prepared request: encrypted body + Authorization');
const ours = measure('ours: encryptMessage + VapidSigner.token + header', 20_000, () => {
  const message = encryptMessage(payload, subscription);
  const { token, publicKey } = signer.token(endpoint);
  return [message.body, vapidAuthorization(token, publicKey)];
});
const webPushSubscription = {
  endpoint,
  keys: { p256dh: ua.publicKey.toString('base64url'), auth: ua.auth.toString('base64url') },
};
const theirs = measure('web-push: generateRequestDetails', 5_000, () =>
  webpush.generateRequestDetails(webPushSubscription, payload, { vapidDetails: details }),
);
console.log(`ratio web-push / ours: ${(theirs / ours).toFixed(2)}x (encryption alone ${aes128gcm.toFixed(1)} us, cached token ${cached.toFixed(2)} us)`);

// Last: 15k live Buffers slow every later measurement by ~10% (more ArrayBuffers for the GC).
console.log('-- many subscriptions');
// More subscriptions than the imported-key cache (4096) holds, cycled: every call misses.
const many = Array.from({ length: 5000 }, () => generateUserAgentKeys());
measure('encryptMessage aes128gcm, 100 B, 5000 subscriptions cycled', 20_000, (i) => {
  const keys = many[i % many.length]!;
  return encryptMessage(payload, { p256dh: keys.publicKey, auth: keys.auth });
});
measure('encryptMessage aes128gcm, 100 B, same subscription', 20_000, () => encryptMessage(payload, subscription));
