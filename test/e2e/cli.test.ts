// `webpushd serve` refuses bad options with one clear line naming the option, and no stack.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const BIN = new URL('../../bin/webpushd', import.meta.url).pathname;

function serve(args: string[], env: Record<string, string> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'webpushd-cli-'));
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEBPUSHD_')));
  const r = spawnSync(BIN, ['serve', '--host', '127.0.0.1', '--data-dir', dataDir, ...args], { encoding: 'utf8', timeout: 10_000, env: { ...clean, ...env } });
  return { status: r.status, output: r.stdout + r.stderr };
}

test('bad option values name the option and exit 2 (docs/CONFIGURATION.md)', () => {
  for (const [args, pattern, env] of [
    [['--port', 'abc'], /--port/],
    [['--port', '70000'], /--port/],
    [['--max-message-size', '100'], /--max-message-size.*4096/],
    [['--sync', 'sometimes'], /--sync/],
    [['--broadcast', 'novalue'], /--broadcast/],
    [['--tls-cert', '/tmp/x.pem'], /--tls-cert and --tls-key/],
    // commander's own refusals too
    [['--prot', '8443'], /unknown option '--prot'/],
    [['--port'], /option '--port <port>' argument missing/],
    // a bad variable is an error even when the flag wins
    [['--port', '8443', '--print-config'], /^config error: WEBPUSHD_PORT: expected an integer from 0 to 65535 \(from the environment\)\n$/, { WEBPUSHD_PORT: 'abc' }],
  ] as const) {
    const what = `${env ? `${JSON.stringify(env)} ` : ''}${args.join(' ')}`;
    const r = serve([...args], env);
    assert.equal(r.status, 2, what);
    assert.match(r.output, pattern, what);
    assert.doesNotMatch(r.output, /\n\s+at /, 'no stack trace');
  }
});

test('a port in use stops the start with one clear line', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    const r = serve(['--port', String(port)]);
    assert.equal(r.status, 1);
    assert.match(r.output, /could not start.*EADDRINUSE|EADDRINUSE.*could not start/);
  } finally {
    blocker.close();
  }
});
