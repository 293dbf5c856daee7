// Changing broadcast versions from outside: the admin listener's /broadcasts (always behind a
// token) and `webpushd broadcast list|set`, which talks to it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ADMIN_TOKEN_FILE, readAdminToken } from '../../src/tokens/admin-token.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const run = promisify(execFile);
const ID = 'remote-settings/monitor_changes';

let s: TestServer;
let token: string;
before(async () => {
  s = await startTestServer({ adminPort: 0, broadcasts: new Map([[ID, 'v1']]) });
  token = readAdminToken(s.dataDir);
});
after(() => s.close());

const api = (path: string, init: RequestInit = {}) => fetch(`${s.adminUrl}${path}`, init);
const auth = (t = token) => ({ authorization: `Bearer ${t}` });

describe('the admin API', () => {
  test('without --admin-token a token is made in the data dir (0600); every /broadcasts request needs it', async () => {
    assert.equal(statSync(join(s.dataDir, ADMIN_TOKEN_FILE)).mode & 0o777, 0o600);
    for (const init of [{}, { headers: auth('wrong-token-of-sufficient-length') }]) {
      assert.equal((await api('/broadcasts', init)).status, 401);
      assert.equal((await api(`/broadcasts/${encodeURIComponent(ID)}`, { ...init, method: 'PUT', body: 'v9' })).status, 401);
    }
    assert.deepEqual(s.broadcasts()[ID], 'v1', 'nothing changed');
    const listed = await api('/broadcasts', { headers: auth() });
    assert.equal(listed.status, 200);
    assert.deepEqual(await listed.json(), { broadcasts: { [ID]: 'v1' } });
  });

  test('PUT sets a version (text or JSON); a connected user agent that subscribed hears it at once', async () => {
    const ua = await TestUserAgent.connect(s.wsUrl);
    ua.send({ messageType: 'hello', use_webpush: true, broadcasts: { [ID]: 'v1' } });
    await ua.next('hello');
    const put = await api(`/broadcasts/${encodeURIComponent(ID)}`, { method: 'PUT', headers: auth(), body: 'v2' });
    assert.equal(put.status, 200);
    assert.deepEqual(await put.json(), { broadcasts: { [ID]: 'v2' }, changed: true });
    assert.deepEqual((await ua.next('broadcast', 2000)).broadcasts, { [ID]: 'v2' });
    const json = await api('/broadcasts/another', { method: 'PUT', headers: { ...auth(), 'content-type': 'application/json' }, body: '{"version":"a1"}' });
    assert.equal(json.status, 200);
    assert.equal(s.broadcasts().another, 'a1');
    await ua.close();
  });

  test('bad requests are refused with a reason', async () => {
    const bad: [string, RequestInit, number][] = [
      ['/broadcasts/ok', { method: 'PUT', body: '' }, 400],
      ['/broadcasts/ok', { method: 'PUT', body: 'has space' }, 400],
      ['/broadcasts/ok', { method: 'PUT', body: 'x'.repeat(2000) }, 413],
      ['/broadcasts/ok', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{' }, 400],
      [`/broadcasts/${'%20'}`, { method: 'PUT', body: 'v' }, 400],
      ['/broadcasts/ok', { method: 'DELETE' }, 405],
      ['/broadcasts', { method: 'POST', body: '{}' }, 405],
    ];
    for (const [path, init, status] of bad) {
      const res = await api(path, { ...init, headers: { ...auth(), ...(init.headers as Record<string, string>) } });
      assert.equal(res.status, status, `${init.method} ${path}`);
      await res.arrayBuffer();
    }
    assert.equal(s.broadcasts().ok, undefined);
  });
});

describe('webpushd broadcast', () => {
  test('set changes versions through the admin API (the token read from --data-dir); list prints them', async () => {
    const common = ['--admin-url', s.adminUrl!, '--data-dir', s.dataDir];
    const set = await run(process.execPath, [MAIN, 'broadcast', 'set', `${ID}=v7`, 'b=1', ...common]);
    assert.deepEqual(JSON.parse(set.stdout).broadcasts[ID], 'v7');
    assert.equal(s.broadcasts().b, '1');
    const list = await run(process.execPath, [MAIN, 'broadcast', 'list', ...common]);
    assert.deepEqual(JSON.parse(list.stdout).broadcasts, s.broadcasts());
    await assert.rejects(run(process.execPath, [MAIN, 'broadcast', 'list', '--admin-url', s.adminUrl!, '--token', 'not-the-token-at-all']), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /^error: 401/);
      return true;
    });
    await assert.rejects(run(process.execPath, [MAIN, 'broadcast', 'set', 'novalue', ...common]), (err: { code: number }) => err.code !== 0);
  });
});
