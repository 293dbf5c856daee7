// Retakes the README's screenshots (demo-page.png, dashboard.png in this folder) with a real
// headless Firefox driven over Marionette, against a throwaway local webpushd:
//   node_modules/.bin/node docs/images/take-screenshots.ts [output dir]
// Needs firefox-esr (see test/helpers/firefox.ts).
import { spawn } from 'node:child_process';
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { createProfile, FIREFOX_BIN } from '../../test/helpers/firefox.ts';
import { startTestServer } from '../../test/helpers/server.ts';

const out = process.argv[2] ?? new URL('.', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Just enough of Firefox's Marionette protocol: length-prefixed JSON, one command at a time. */
class Marionette {
  #buf = Buffer.alloc(0);
  readonly #waiters: Array<(msg: unknown) => void> = [];
  #id = 0;
  readonly #socket: Socket;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (d: Buffer) => this.#read(d));
  }

  static async connect(port: number): Promise<Marionette> {
    for (let i = 0; i < 60; i++) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        });
        const m = new Marionette(socket);
        await m.#next(); // the server's greeting
        return m;
      } catch {
        await sleep(500);
      }
    }
    throw new Error(`no Marionette on port ${port}`);
  }

  async command(name: string, params: object): Promise<unknown> {
    const body = JSON.stringify([0, ++this.#id, name, params]);
    const reply = this.#next();
    this.#socket.write(`${Buffer.byteLength(body)}:${body}`);
    const [, , error, result] = (await reply) as [number, number, unknown, unknown];
    if (error) throw new Error(`${name}: ${JSON.stringify(error)}`);
    return result;
  }

  async screenshot(file: string): Promise<void> {
    const { value } = (await this.command('WebDriver:TakeScreenshot', { full: false })) as { value: string };
    writeFileSync(file, Buffer.from(value, 'base64'));
  }

  close(): void {
    this.#socket.destroy();
  }

  #next(): Promise<unknown> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #read(data: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, data]);
    for (;;) {
      const colon = this.#buf.indexOf(':');
      if (colon < 0) return;
      const len = Number(this.#buf.subarray(0, colon).toString());
      if (this.#buf.length < colon + 1 + len) return;
      const msg: unknown = JSON.parse(this.#buf.subarray(colon + 1, colon + 1 + len).toString());
      this.#buf = this.#buf.subarray(colon + 1 + len);
      this.#waiters.shift()?.(msg);
    }
  }
}

const server = await startTestServer({ adminPort: 0 });
const profile = createProfile({ serverUrl: server.wsUrl });
const port = 28000 + Math.floor(Math.random() * 1000);
appendFileSync(`${profile}/user.js`, `user_pref("marionette.port", ${port});\n`);
const firefox = spawn(FIREFOX_BIN, ['--headless', '--marionette', '--no-remote', '--profile', profile, 'about:blank'], {
  detached: true,
  stdio: 'ignore',
  env: { ...process.env, MOZ_HEADLESS: '1', MOZ_CRASHREPORTER_DISABLE: '1' },
});

try {
  const marionette = await Marionette.connect(port);
  await marionette.command('WebDriver:NewSession', {});
  await marionette.command('WebDriver:SetWindowRect', { width: 1200, height: 900 });

  // the demo page after a round trip (Subscribe, then autosend: send, receive; the profile has
  // the notification permission, so no prompt)
  await marionette.command('WebDriver:Navigate', { url: `${server.url}/demo/?autosend=1` });
  await sleep(4000);
  await marionette.command('WebDriver:ExecuteScript', { script: 'document.getElementById("subscribe").click()', args: [] });
  await sleep(6000);
  await marionette.screenshot(`${out}/demo-page.png`);

  // some traffic through the demo's application server, then the dashboard
  const { value: subscription } = (await marionette.command('WebDriver:ExecuteScript', {
    script: 'return JSON.parse(document.getElementById("subscription").textContent)',
    args: [],
  })) as { value: unknown };
  for (let i = 0; i < 40; i++) {
    const n = 1 + Math.round(3 + 3 * Math.sin(i / 5));
    await Promise.all(
      Array.from({ length: n }, (_, k) =>
        fetch(`${server.url}/demo/send`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ subscription, text: `load ${i}.${k}` }),
        }).then((r) => r.arrayBuffer()),
      ),
    );
    await sleep(700);
  }
  await marionette.command('WebDriver:Navigate', { url: `${server.adminUrl}/dashboard` });
  await sleep(3000);
  await marionette.screenshot(`${out}/dashboard.png`);
  await marionette.command('WebDriver:DeleteSession', {}).catch(() => {});
  marionette.close();
} finally {
  try {
    process.kill(-firefox.pid!, 'SIGTERM');
    await sleep(2000);
    process.kill(-firefox.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
  await server.close();
  rmSync(profile, { recursive: true, force: true });
  rmSync(server.dataDir, { recursive: true, force: true });
}
console.log(`screenshots written to ${out}`);
