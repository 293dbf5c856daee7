// What `webpushd serve` tells a person on start (one line on stderr, besides the JSON log): the
// demo URL, the exact dom.push.serverURL, the absolute data dir and whether a new secret was
// made; and where the data dir is when none is given.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startServerProcess } from '../helpers/server-process.ts';
import { until } from '../helpers/wait.ts';

const BIN = new URL('../../bin/webpushd', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'webpushd-start-'));
after(() => rmSync(work, { recursive: true, force: true }));
const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEBPUSHD_') && k !== 'STATE_DIRECTORY'));

test('the start line names the demo, dom.push.serverURL, the absolute data dir and a new secret', async () => {
  const line = async (): Promise<string> => {
    // a relative --data-dir, from another directory: the line shows where it really is
    const server = await startServerProcess({ dataDir: 'state', command: [BIN], cwd: work });
    try {
      await until(() => server.output().includes('webpushd serves'), 'the start line');
      return server.output().split('\n').find((l) => l.startsWith('webpushd serves'))!;
    } finally {
      await server.stop();
    }
  };
  const first = await line();
  const port = /http:\/\/127\.0\.0\.1:(\d+)/.exec(first)![1];
  assert.equal(
    first,
    `webpushd serves http://127.0.0.1:${port} | demo http://127.0.0.1:${port}/demo/ | ` +
      `Firefox about:config dom.push.serverURL = ws://127.0.0.1:${port}/ (and dom.push.testing.allowInsecureServerURL = true) | ` +
      `data dir ${join(work, 'state')} (NEW secret created: a new set of push URLs; those of any other data dir answer 404 here)`,
  );
  const again = await line();
  assert.match(again, new RegExp(`\\| data dir ${join(work, 'state')} \\(its secret keeps earlier push URLs valid\\)$`));
});

test('without --data-dir, outside a checkout: the state directory, for serve and secret alike', () => {
  const state = join(work, 'xdg');
  const env = { ...clean, XDG_STATE_HOME: state };
  const printed = spawnSync(BIN, ['serve', '--print-config'], { cwd: work, env, encoding: 'utf8' });
  assert.equal(printed.status, 0, printed.stderr);
  assert.equal((JSON.parse(printed.stdout) as { dataDir: string }).dataDir, join(state, 'webpushd'));
  // secret rotate finds the same one: there is none yet, so it says so
  const rotate = spawnSync(BIN, ['secret', 'rotate'], { cwd: work, env, encoding: 'utf8' });
  assert.equal(rotate.status, 1);
  assert.match(rotate.stderr, new RegExp(`${join(state, 'webpushd', 'secret.key')}`));
  assert.equal(existsSync(join(work, 'data')), false, 'no ./data made in the current directory');
});
