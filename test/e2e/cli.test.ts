// `webpushd serve` refuses bad options with one clear line naming the option, and no stack.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const BIN = new URL('../../bin/webpushd', import.meta.url).pathname;

function serve(...args: string[]) {
  const dataDir = mkdtempSync(join(tmpdir(), 'webpushd-cli-'));
  const r = spawnSync(BIN, ['serve', '--host', '127.0.0.1', '--data-dir', dataDir, ...args], { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, output: r.stdout + r.stderr };
}

test('bad option values name the option', () => {
  for (const [args, pattern] of [
    [['--port', 'abc'], /--port/],
    [['--port', '70000'], /--port/],
    [['--max-message-size', '100'], /--max-message-size.*4096/],
    [['--sync', 'sometimes'], /--sync/],
    [['--broadcast', 'novalue'], /--broadcast/],
    [['--tls-cert', '/tmp/x.pem'], /--tls-cert and --tls-key/],
  ] as const) {
    const r = serve(...args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.output, pattern, args.join(' '));
    assert.doesNotMatch(r.output, /\n\s+at /, 'no stack trace');
  }
});

test('a port in use stops the start with one clear line', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    const r = serve('--port', String(port));
    assert.equal(r.status, 1);
    assert.match(r.output, /could not start.*EADDRINUSE|EADDRINUSE.*could not start/);
  } finally {
    blocker.close();
  }
});
