// The data dir's default does not follow the directory webpushd is started from (the secret of
// every push URL lives there): ./data in a checkout or where ./data already holds a secret, else
// the user's state directory.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveDataDir } from '../../src/cli/data-dir.ts';

const base = mkdtempSync(join(tmpdir(), 'webpushd-datadir-'));
after(() => rmSync(base, { recursive: true, force: true }));
const dir = (name: string) => {
  const d = join(base, name);
  mkdirSync(d, { recursive: true });
  return d;
};

test('a given data dir is made absolute against the current directory', () => {
  assert.equal(resolveDataDir('data', '/srv/app', {}), '/srv/app/data');
  assert.equal(resolveDataDir('../state', '/srv/app', {}), '/srv/state');
  assert.equal(resolveDataDir('/var/lib/webpushd', '/srv/app', { STATE_DIRECTORY: '/x' }), '/var/lib/webpushd');
});

test('in a webpushd checkout the default is its ./data', () => {
  const checkout = dir('checkout');
  writeFileSync(join(checkout, 'package.json'), JSON.stringify({ name: 'webpushd-workspace', private: true }));
  assert.equal(resolveDataDir(undefined, checkout, { XDG_STATE_HOME: '/state' }), join(checkout, 'data'));
});

test('elsewhere ./data is the default only when it already holds a secret', () => {
  const project = dir('project');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-app' }));
  assert.equal(resolveDataDir(undefined, project, { XDG_STATE_HOME: '/state' }), '/state/webpushd');
  mkdirSync(join(project, 'data'));
  assert.equal(resolveDataDir(undefined, project, { XDG_STATE_HOME: '/state' }), '/state/webpushd', 'an empty ./data is not one');
  writeFileSync(join(project, 'data', 'secret.key'), 'x\n');
  assert.equal(resolveDataDir(undefined, project, { XDG_STATE_HOME: '/state' }), join(project, 'data'));
});

test("the state directory: systemd's StateDirectory=, then $XDG_STATE_HOME, then ~/.local/state", () => {
  const cwd = dir('anywhere');
  assert.equal(resolveDataDir(undefined, cwd, { STATE_DIRECTORY: '/var/lib/webpushd:/var/lib/other', XDG_STATE_HOME: '/state' }), '/var/lib/webpushd');
  assert.equal(resolveDataDir(undefined, cwd, { XDG_STATE_HOME: '/state' }), '/state/webpushd');
  assert.equal(resolveDataDir(undefined, cwd, { XDG_STATE_HOME: 'relative' }), join(homedir(), '.local/state/webpushd'), 'a relative XDG_STATE_HOME is ignored');
  assert.equal(resolveDataDir(undefined, cwd, {}), join(homedir(), '.local/state/webpushd'));
});
