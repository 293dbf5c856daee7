// --trace's shortening of secrets (src/cli/trace.ts): capability tokens in URLs and headers,
// VAPID and encryption parameters, uaids, keys and payloads; everything else as it was.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redact, tracePrinter } from '../../src/cli/trace.ts';

const TOKEN = 'gAAAAABmZ3V0b2tlbi1vZi1hLXB1c2gtdXJsLXRoYXQtaXMtbG9uZw';
const JWT = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2gifQ.c2lnbmF0dXJl';
const KEY = 'BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs';

test('capability URLs keep their first 8 token characters, wherever they are', () => {
  assert.deepEqual(
    redact({
      url: `https://push.example/wpush/v1/${TOKEN}`,
      headers: { ':path': `/m/${TOKEN}`, location: `https://push.example/s/${TOKEN}`, link: `<https://push.example/r/${TOKEN}>; rel="urn:ietf:params:push:receipt"` },
      frame: { pushEndpoint: `https://push.example/wpush/v2/${TOKEN}?x=1` },
      aggregate: `https://push.example/a/${TOKEN}`,
    }),
    {
      url: 'https://push.example/wpush/v1/gAAAAABm…',
      headers: { ':path': '/m/gAAAAABm…', location: 'https://push.example/s/gAAAAABm…', link: '<https://push.example/r/gAAAAABm…>; rel="urn:ietf:params:push:receipt"' },
      frame: { pushEndpoint: 'https://push.example/wpush/v2/gAAAAABm…?x=1' },
      aggregate: 'https://push.example/a/gAAAAABm…',
    },
  );
});

test('VAPID, Crypto-Key and Encryption parameters, uaids, keys and payloads are shortened; other fields are not', () => {
  assert.deepEqual(
    redact({
      Authorization: `vapid t=${JWT}, k=${KEY}`,
      legacy: { authorization: `WebPush ${JWT}` },
      'crypto-key': `dh=${KEY};p256ecdsa=${KEY}`,
      encryption: 'salt=c2FsdHNhbHRzYWx0c2FsdA',
      frame: { messageType: 'hello', uaid: '2157ed395c90fcd86efef7a93d93d8ed', channelID: '37a91e30-315f-4940-af6f-1924182d2baf', data: 'SY38gjcJabcdefghijkl' },
      keys: { p256dh: KEY, auth: 'c2VjcmV0c2VjcmV0c2VjcmV0' },
      ttl: '60',
      ':path': '/subscribe',
    }),
    {
      Authorization: `vapid t=eyJ0eXAi…, k=BA1Hxzyi…`,
      legacy: { authorization: 'WebPush eyJ0eXAi…' },
      'crypto-key': 'dh=BA1Hxzyi…;p256ecdsa=BA1Hxzyi…',
      encryption: 'salt=c2FsdHNh…',
      frame: { messageType: 'hello', uaid: '2157ed39…', channelID: '37a91e30-315f-4940-af6f-1924182d2baf', data: 'SY38gjcJ…' },
      keys: { p256dh: 'BA1Hxzyi…', auth: 'c2VjcmV0…' },
      ttl: '60',
      ':path': '/subscribe',
    },
  );
});

test('the printer writes one JSON line per event, whole with secrets', () => {
  const out: string[] = [];
  const sink = { write: (s: string) => out.push(s) } as unknown as NodeJS.WritableStream;
  tracePrinter(false, sink)({ event: 'request', stream: 1, headers: { ':path': `/m/${TOKEN}` } });
  tracePrinter(true, sink)({ event: 'request', stream: 3, headers: { ':path': `/m/${TOKEN}` } });
  assert.deepEqual(out, [
    '{"trace":"request","stream":1,"headers":{":path":"/m/gAAAAABm…"}}\n',
    `{"trace":"request","stream":3,"headers":{":path":"/m/${TOKEN}"}}\n`,
  ]);
});
