import assert from 'node:assert/strict';
import { createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { takeSenderKeyPair } from '../../src/crypto/sender-keys.ts';

const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });

test('every pair is fresh and consistent, from the pool or generated in line', async () => {
  takeSenderKeyPair(); // starts the pool filling
  await sleep(200);
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const { privateKey, publicKey } = takeSenderKeyPair();
    assert.equal(publicKey.length, 65);
    assert.equal(publicKey[0], 4);
    const id = publicKey.toString('hex');
    assert.ok(!seen.has(id), 'a key pair is never handed out twice');
    seen.add(id);
    // the public key belongs to the private key: both sides agree on the secret
    const mine = diffieHellman({ privateKey, publicKey: peer.publicKey });
    const theirs = diffieHellman({
      privateKey: peer.privateKey,
      publicKey: createPublicKey({ key: publicKey, format: 'raw-public', asymmetricKeyType: 'ec', namedCurve: 'P-256' } as never),
    });
    assert.deepEqual(mine, theirs);
  }
});
