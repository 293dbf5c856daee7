// The published packages as a user gets them: `npm pack` of each workspace (its prepack builds
// dist/ from src/), the tarballs installed into throwaway projects with `npm install <tarball>`
// (dependencies from the npm cache or registry, nothing else), then `npx webpushd serve`,
// `npx webpushd vapid generate`, a user agent made by `npx webpushd ua`, and a script of a second
// project that installed only the SDK sending to that server. Also: what the tarballs carry, that
// every import of the built JavaScript is a declared dependency, that a consumer's TypeScript
// checks against the .d.ts, and the one-line answer of the CLI on a too-old Node.js.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { within } from '../helpers/wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const PACKAGES = ['webpushd', 'webpushd-sdk', 'webpushd-client'] as const;
// Installed bins start with `#!/usr/bin/env node`: the Node.js running the tests comes first, as
// a user's own Node.js would.
const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
const run = async (cmd: string, args: string[], cwd: string) => {
  try {
    return (await promisify(execFile)(cmd, args, { cwd, env, maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: err });
  }
};
const npx = (cwd: string, ...args: string[]) => run('npx', ['--no', 'webpushd', ...args], cwd);

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  engines?: { node?: string };
  files?: string[];
}

describe('the published packages', { timeout: 180_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'webpushd-package-'));
  const tarballs = new Map<string, string>();
  const service = join(work, 'service');
  const sender = join(work, 'sender');
  let server: ServerProcess | undefined;

  before(async () => {
    const packed = JSON.parse(await run('npm', ['pack', '--workspaces', '--json', '--pack-destination', work], ROOT)) as { name: string; filename: string }[];
    for (const p of packed) tarballs.set(p.name, join(work, p.filename));
  });

  after(async () => {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('each tarball carries its built JavaScript, types and manifest, nothing of the checkout', async () => {
    assert.deepEqual([...tarballs.keys()].sort(), [...PACKAGES].sort());
    for (const [name, tarball] of tarballs) {
      const files = (await run('tar', ['-tzf', tarball], work)).trim().split('\n');
      const outside = files.filter((f) => !/^package\/(dist\/|bin\/webpushd\.js$|package\.json$|README\.md$)/.test(f));
      assert.deepEqual(outside, [], `${name} carries more than dist/, its bin and manifest`);
      assert.ok(files.some((f) => f.endsWith('.d.ts')), `${name} has no .d.ts`);
      const sources = files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
      assert.deepEqual(sources, [], `${name} ships TypeScript sources Node.js will not strip under node_modules`);
    }
  });

  it('installs into a project with `npm install <tarball>` (no node binary; the SDK without dependencies)', async () => {
    for (const [dir, names] of [[service, PACKAGES], [sender, ['webpushd-sdk']]] as const) {
      mkdirSync(dir);
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${dir.slice(-6)}`, private: true, type: 'module' }));
      await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...names.map((n) => tarballs.get(n)!)], dir);
    }
    assert.ok(!existsSync(join(service, 'node_modules', 'node')), 'a node package was installed into the consumer');
    // an application server that only sends gets the SDK and nothing else
    assert.deepEqual(readdirSync(join(sender, 'node_modules')).filter((d) => !d.startsWith('.')), ['webpushd-sdk']);
    const manifests = Object.fromEntries(
      PACKAGES.map((n) => [n, JSON.parse(readFileSync(join(service, 'node_modules', n, 'package.json'), 'utf8')) as Manifest]),
    );
    assert.deepEqual(Object.keys(manifests['webpushd-client']!.dependencies ?? {}), ['ws']);
    for (const m of Object.values(manifests)) {
      assert.match(m.engines?.node ?? '', /^>=\d+\.\d+/, `${m.name} states no engines.node`);
      assert.equal(m.dependencies?.node, undefined, `${m.name} depends on a node binary`);
      // every package its JavaScript imports is one of its dependencies
      const imported = new Set<string>();
      for (const file of readdirSync(join(service, 'node_modules', m.name, 'dist'), { recursive: true, encoding: 'utf8' })) {
        if (!file.endsWith('.js') || file.includes('web/pages')) continue;
        const text = readFileSync(join(service, 'node_modules', m.name, 'dist', file), 'utf8');
        // a specifier's quotes match (a text ending in "from" before another string is no import)
        for (const [, , spec] of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)(['"])([^'".][^'"]*)\1/g)) {
          if (!spec!.startsWith('node:')) imported.add(spec!.startsWith('@') ? spec!.split('/').slice(0, 2).join('/') : spec!.split('/')[0]!);
        }
      }
      assert.deepEqual([...imported].sort(), Object.keys(m.dependencies ?? {}).sort(), `${m.name}: imports vs dependencies`);
    }
  });

  it('`npx webpushd vapid generate` prints a key pair', async () => {
    const keys = JSON.parse(await npx(service, 'vapid', 'generate')) as { publicKey: string; privateKey: string };
    assert.match(keys.publicKey, /^B[A-Za-z0-9_-]{86}$/);
    assert.match(keys.privateKey, /^[A-Za-z0-9_-]{43}$/);
    writeFileSync(join(sender, 'vapid.json'), JSON.stringify(keys));
  });

  it('`npx webpushd serve` runs the service (with its demo pages)', async () => {
    server = await startServerProcess({ command: ['npx', '--no', 'webpushd'], cwd: service, env });
    const demo = await fetch(`${server.url}/demo/`);
    assert.equal(demo.status, 200);
    assert.match(await demo.text(), /webpushd demo/);
  });

  it('a script importing webpushd-sdk sends to a user agent of `npx webpushd ua`, which receives it', async () => {
    const state = join(service, 'ua.json');
    const subscription = await npx(service, 'ua', 'subscribe', '--server', server!.url, '--state', state);
    writeFileSync(join(sender, 'subscription.json'), subscription);
    writeFileSync(
      join(sender, 'send.js'),
      `import { readFileSync } from 'node:fs';
import { sendNotification } from 'webpushd-sdk';
const keys = JSON.parse(readFileSync('vapid.json', 'utf8'));
const result = await sendNotification(JSON.parse(readFileSync('subscription.json', 'utf8')), 'hello from a package', {
  vapidDetails: { subject: 'mailto:test@example.org', ...keys },
});
console.log(JSON.stringify({ statusCode: result.statusCode, location: result.location }));
`,
    );
    const sent = JSON.parse(await run(process.execPath, ['send.js'], sender)) as { statusCode: number; location: string };
    assert.equal(sent.statusCode, 201);
    assert.ok(sent.location.startsWith(`${server!.url}/m/`), sent.location);
    // its own process group: npx does not pass SIGTERM on
    const listen = spawn('npx', ['--no', 'webpushd', 'ua', 'listen', '--state', state], { cwd: service, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    try {
      const line = await within(
        new Promise<string>((resolve) => {
          let out = '';
          listen.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
          });
        }),
        'the message at `ua listen`',
        20_000,
      );
      assert.equal((JSON.parse(line) as { text: string }).text, 'hello from a package');
    } finally {
      process.kill(-listen.pid!, 'SIGTERM');
    }
  });

  it("a consumer's TypeScript checks against the SDK's .d.ts", async () => {
    writeFileSync(
      join(sender, 'check.ts'),
      `import { sendNotification, WebPushError, type PushSubscription, type SendResult } from 'webpushd-sdk';
const subscription: PushSubscription = { endpoint: 'https://push.example.org/x', keys: { p256dh: 'p', auth: 'a' } };
const result: Promise<SendResult> = sendNotification(subscription, 'hi', { TTL: 60 });
export const status = result.then((r) => r.statusCode, (e: unknown) => (e instanceof WebPushError ? e.statusCode : 0));
`,
    );
    writeFileSync(
      join(sender, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'es2022', module: 'nodenext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')] },
        files: ['check.ts'],
      }),
    );
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', sender], sender);
  });

  it('the server stopped cleanly through npx', async () => {
    await server!.stop();
    assert.match(server!.output(), /"msg":"stopped"/);
    server = undefined;
  });
});

// A Node.js older than the one needed, as after `npm ci --ignore-scripts` (no pinned node in
// node_modules: the system's is used) or with an old system node.
const OLD_NODE = '/usr/bin/node';
const oldNode = existsSync(OLD_NODE) && Number(/^v(\d+)/.exec(await promisify(execFile)(OLD_NODE, ['--version']).then((r) => r.stdout))?.[1]) < 24;

describe('the CLI on a too-old Node.js', { skip: oldNode ? false : `needs an older Node.js at ${OLD_NODE}` }, () => {
  const NEEDED = /^webpushd needs Node\.js 24\.15 or later; this is v\d+\.\d+\.\d+ \(.*\)\. .*npm ci.*\n$/;
  // bin/, the check and the manifest, laid out as in a checkout where the pinned node was never
  // installed: the old node is the first (and only) one on the PATH
  const checkout = mkdtempSync(join(tmpdir(), 'webpushd-oldnode-'));
  cpSync(join(ROOT, 'bin'), join(checkout, 'bin'), { recursive: true });
  mkdirSync(join(checkout, 'src/cli'), { recursive: true });
  cpSync(join(ROOT, 'src/cli/require-node.js'), join(checkout, 'src/cli/require-node.js'));
  cpSync(join(ROOT, 'package.json'), join(checkout, 'package.json'));
  after(() => rmSync(checkout, { recursive: true, force: true }));
  const tryRun = (cmd: string, args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(cmd, args, { cwd: checkout, env: { ...process.env, PATH: `${dirname(OLD_NODE)}${delimiter}/bin` } }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });

  it('bin/webpushd says in one line which Node.js is needed, and exits 1', async () => {
    const r = await tryRun(join(checkout, 'bin/webpushd'), ['serve']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, NEEDED);
    assert.equal(r.stdout, '');
  });

  it('`npm start` says the same', async () => {
    const r = await tryRun('npm', ['start', '--silent']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, NEEDED);
  });
});
