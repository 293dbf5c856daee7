// Drives Debian's firefox-esr in headless mode as a real push client (see
// /work/shared/spec/firefox-client.md): a throwaway profile whose prefs point Firefox's push
// client at the server under test, and a child process that is always cleaned up.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const FIREFOX_BIN = '/usr/bin/firefox-esr';

type Prefs = Record<string, string | number | boolean>;

/** The prefs the README tells a person to set: a ws:// push service, nothing else. */
function readmePrefs(serverUrl: string): Prefs {
  return {
    'dom.push.serverURL': serverUrl,
    'dom.push.testing.allowInsecureServerURL': true,
  };
}

/** What the push client needs to talk to a local ws:// server without prompts. */
function pushPrefs(serverUrl: string): Prefs {
  return {
    ...readmePrefs(serverUrl),
    'dom.push.connection.enabled': true,
    'dom.push.testing.ignorePermission': true,
    'permissions.default.desktop-notification': 1,
    'dom.serviceWorkers.testing.enabled': true,
  };
}

// The machine has no internet: silence what we can of Firefox's background traffic and first-run
// UI (list adapted from the prefs Firefox's own remote agent recommends for automation).
const QUIET_PREFS: Prefs = {
  'app.normandy.enabled': false,
  'app.normandy.api_url': '',
  'app.update.enabled': false,
  'app.update.disabledForTesting': true,
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage_override.mstone': 'ignore',
  'browser.startup.page': 0,
  'browser.startup.homepage': 'about:blank',
  'startup.homepage_welcome_url': 'about:blank',
  'startup.homepage_welcome_url.additional': '',
  'browser.aboutwelcome.enabled': false,
  'browser.newtabpage.enabled': false,
  'browser.newtabpage.activity-stream.feeds.system.topstories': false,
  'browser.newtabpage.activity-stream.feeds.topsites': false,
  'browser.topsites.contile.enabled': false,
  'browser.pagethumbnails.capturing_disabled': true,
  // A relaunch must open only the URL given, not restore the previous session's tab too.
  'browser.sessionstore.resume_from_crash': false,
  'browser.startup.couldRestoreSession.count': -1,
  'toolkit.startup.max_resumed_crashes': -1,
  'browser.tabs.warnOnClose': false,
  'browser.warnOnQuit': false,
  'browser.safebrowsing.blockedURIs.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'browser.safebrowsing.downloads.remote.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.passwords.enabled': false,
  'browser.safebrowsing.provider.google4.updateURL': '',
  'browser.safebrowsing.provider.mozilla.updateURL': '',
  'browser.search.update': false,
  'browser.region.network.url': '',
  'browser.region.update.enabled': false,
  'browser.uitour.enabled': false,
  'browser.urlbar.suggest.searches': false,
  'browser.urlbar.merino.endpointURL': '',
  'browser.discovery.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.policy.dataSubmissionPolicyBypassNotification': true,
  'datareporting.healthreport.uploadEnabled': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.server': '',
  'extensions.update.enabled': false,
  'extensions.getAddons.cache.enabled': false,
  'extensions.blocklist.enabled': false,
  'extensions.systemAddon.update.enabled': false,
  'extensions.autoDisableScopes': 0,
  'extensions.enabledScopes': 5,
  'media.gmp-manager.updateEnabled': false,
  'media.gmp-manager.url': '',
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'network.predictor.enabled': false,
  'network.http.speculative-parallel-limit': 0,
  'network.trr.mode': 5,
  'geo.provider.network.url': '',
  'identity.fxaccounts.enabled': false,
  'security.remote_settings.crlite_filters.enabled': false,
  'security.remote_settings.intermediates.enabled': false,
  'security.certerrors.mitm.priming.enabled': false,
  'services.settings.server': 'data:,#remote-settings-dummy/v1',
  'dom.ipc.reportProcessHangs': false,
};

/** Firefox's own push client log on stdout: only for diagnosing, it is very chatty. */
const DEBUG_PREFS: Prefs = {
  'dom.push.loglevel': 'Debug',
  'devtools.console.stdout.chrome': true,
};

/**
 * Marionette on a free port (written to the profile's MarionetteActivePort), without the prefs it
 * would otherwise apply for automation: they turn the push connection off.
 */
const MARIONETTE_PREFS: Prefs = {
  'marionette.port': 0,
  'remote.prefs.recommended': false,
};

export interface ProfileOptions {
  /** The push service's WebSocket URL, e.g. `ws://127.0.0.1:8080/`. */
  serverUrl: string;
  /** Add Firefox's push debug log to its output. */
  debug?: boolean;
  /** Let a test read the page (marionette()); launch with `{ marionette: true }`. */
  marionette?: boolean;
  /**
   * Only the README's push prefs, as a person would set them: no permission shortcuts, so a page
   * must ask for the notification permission and someone must answer the prompt (PageReader.chrome).
   */
  readmeOnly?: boolean;
}

/** A fresh profile folder whose user.js points the push client at `serverUrl`. */
export function createProfile(opts: ProfileOptions): string {
  const dir = mkdtempSync(join(tmpdir(), 'webpushd-firefox-'));
  const push = opts.readmeOnly ? readmePrefs(opts.serverUrl) : pushPrefs(opts.serverUrl);
  const prefs = { ...QUIET_PREFS, ...push, ...(opts.debug ? DEBUG_PREFS : {}), ...(opts.marionette ? MARIONETTE_PREFS : {}) };
  const lines = Object.entries(prefs).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`);
  writeFileSync(join(dir, 'user.js'), lines.join('\n') + '\n');
  return dir;
}

export interface Firefox {
  readonly profileDir: string;
  readonly proc: ChildProcess;
  /** The last part of what Firefox wrote to stdout and stderr. */
  output(): string;
  /** SIGTERM (a clean shutdown that saves the profile), SIGKILL if it lingers; waits for exit. */
  close(): Promise<void>;
}

const OUTPUT_TAIL = 64 * 1024;
const GRACEFUL_MS = 8_000;
const GONE_MS = 5_000;
const live = new Set<ChildProcess>();

/** Starts Firefox on `profileDir` (fresh or reused, for a relaunch) showing `pageUrl`. */
export function launchFirefox(profileDir: string, pageUrl: string, opts: { marionette?: boolean } = {}): Firefox {
  installExitGuard();
  // detached: Firefox leads its own process group, so its content processes can be killed together.
  // With Marionette, system access lets PageReader.chrome answer prompts as a person would.
  const proc = spawn(FIREFOX_BIN, ['--headless', '--no-remote', ...(opts.marionette ? ['--marionette', '-remote-allow-system-access'] : []), '--profile', profileDir, pageUrl], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MOZ_HEADLESS: '1', MOZ_CRASHREPORTER_DISABLE: '1', MOZ_DISABLE_AUTO_SAFE_MODE: '1' },
  });
  live.add(proc);
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-OUTPUT_TAIL));
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const close = () => terminate(proc, exited).finally(() => live.delete(proc));
  return { profileDir, proc, output: () => out, close };
}

/** A page's window, read through Marionette: scripts run in the page and return what it shows. */
export interface PageReader {
  execute<T>(script: string): Promise<T>;
  /** A real click (trusted mouse events: a user gesture for the page) on the first element matching `selector`. */
  click(selector: string): Promise<void>;
  /** Runs `script` in the browser's own window (its chrome: prompts, prefs, permissions). */
  chrome<T>(script: string): Promise<T>;
  /** Loads the page again. */
  refresh(): Promise<void>;
  close(): void;
}

/**
 * Connects to the Marionette of a Firefox launched with `{ marionette: true }` on a profile made
 * with `{ marionette: true }`, in the window it opened. Its protocol: `length:JSON` packets,
 * commands `[0, id, name, params]`, answers `[1, id, error, result]`.
 */
export async function marionette(profileDir: string, ms = 30_000): Promise<PageReader> {
  const portFile = join(profileDir, 'MarionetteActivePort');
  const deadline = Date.now() + ms;
  while (!existsSync(portFile) || readFileSync(portFile, 'utf8').trim() === '') {
    if (Date.now() > deadline) throw new Error(`Marionette did not start within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(Number(readFileSync(portFile, 'utf8').trim()), '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  let buffered = Buffer.alloc(0);
  const packets: unknown[] = [];
  let arrived: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    // the length counts the bytes of the UTF-8 JSON
    for (let colon = buffered.indexOf(':'); colon > 0; colon = buffered.indexOf(':')) {
      const start = colon + 1;
      const end = start + Number(buffered.subarray(0, colon).toString());
      if (buffered.length < end) break;
      packets.push(JSON.parse(buffered.subarray(start, end).toString('utf8')));
      buffered = buffered.subarray(end);
    }
    arrived?.();
  });
  const next = async (): Promise<unknown> => {
    while (packets.length === 0) {
      if (socket.destroyed) throw new Error('Marionette connection closed');
      await new Promise<void>((resolve) => (arrived = resolve));
    }
    return packets.shift();
  };
  await next(); // the greeting
  let id = 0;
  const command = async (name: string, params: unknown): Promise<unknown> => {
    const text = JSON.stringify([0, ++id, name, params]);
    socket.write(`${Buffer.byteLength(text)}:${text}`);
    const [, , error, result] = (await next()) as [number, number, { message?: string } | null, unknown];
    if (error) throw new Error(`Marionette ${name}: ${error.message ?? JSON.stringify(error)}`);
    return result;
  };
  await command('WebDriver:NewSession', { capabilities: {} });
  const execute = async <T>(script: string) => ((await command('WebDriver:ExecuteScript', { script, args: [] })) as { value: T }).value;
  return {
    execute,
    async click(selector) {
      const { value } = (await command('WebDriver:FindElement', { using: 'css selector', value: selector })) as { value: Record<string, string> };
      await command('WebDriver:ElementClick', { id: Object.values(value)[0] });
    },
    async chrome<T>(script: string) {
      await command('Marionette:SetContext', { value: 'chrome' });
      try {
        return await execute<T>(script);
      } finally {
        await command('Marionette:SetContext', { value: 'content' });
      }
    },
    refresh: async () => void (await command('WebDriver:Refresh', {})),
    close: () => socket.destroy(),
  };
}

/** The open permission prompt for notifications (and push) of the page shown, as the browser's chrome script finds it. */
const NOTIFICATION_PROMPT = `const n = PopupNotifications.getNotification('web-notifications', gBrowser.selectedBrowser);
const shown = PopupNotifications.panel.state === 'open' && [...PopupNotifications.panel.children].find((c) => c.notification === n);`;

/** Whether the page has a notification permission prompt open. */
export function notificationPromptOpen(page: PageReader): Promise<boolean> {
  return page.chrome<boolean>(`${NOTIFICATION_PROMPT} return Boolean(shown);`);
}

/**
 * Waits for the page's notification permission prompt and answers it as a person does, with its
 * primary button (Allow) or secondary one (Always Block), once it has been shown for longer than
 * security.notification_enable_delay: Firefox ignores clicks that come sooner.
 */
export async function answerNotificationPrompt(page: PageReader, answer: 'allow' | 'block', ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await notificationPromptOpen(page))) {
    if (Date.now() > deadline) throw new Error(`no notification permission prompt within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const delay = await page.chrome<number>("return Services.prefs.getIntPref('security.notification_enable_delay', 500)");
  await new Promise((resolve) => setTimeout(resolve, delay + 500));
  await page.chrome(`${NOTIFICATION_PROMPT} shown.${answer === 'allow' ? 'button' : 'secondaryButton'}.click();`);
}

async function terminate(proc: ChildProcess, exited: Promise<void>): Promise<void> {
  const pid = proc.pid;
  if (pid === undefined) return;
  // Children are found before signalling: once the parent is gone they are re-parented.
  const children = descendants(pid);
  if (isRunning(proc)) {
    signalGroup(pid, 'SIGTERM');
    if (!(await within(exited, GRACEFUL_MS))) signalGroup(pid, 'SIGKILL');
    await exited;
  }
  signalGroup(pid, 'SIGKILL');
  for (const child of children) signal(child, 'SIGKILL');
  await waitGone(pid, children);
}

function isRunning(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([p.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  signal(-pid, sig);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // ESRCH: already gone.
  }
}

/** Waits until no process of Firefox's group or tree is left (zombies do not count). */
async function waitGone(group: number, children: number[]): Promise<void> {
  const deadline = Date.now() + GONE_MS;
  for (;;) {
    const left = processes().filter((p) => p.state !== 'Z' && (p.pgid === group || children.includes(p.pid)));
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`Firefox processes survived SIGKILL: ${left.map((p) => p.pid).join(' ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** All processes below `root`. */
function descendants(root: number): number[] {
  const all = processes();
  const found: number[] = [];
  const queue = [root];
  for (let parent = queue.shift(); parent !== undefined; parent = queue.shift()) {
    for (const p of all) {
      if (p.ppid !== parent) continue;
      found.push(p.pid);
      queue.push(p.pid);
    }
  }
  return found;
}

interface ProcessInfo {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
}

/** The system's processes, from /proc (Linux only, like the firefox-esr package). */
function processes(): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // /proc/PID/stat: "pid (comm) state ppid pgrp ...", where comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state = '', ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      found.push({ pid: Number(name), ppid: Number(ppid), pgid: Number(pgid), state });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

let guardInstalled = false;

/** Kills every Firefox still running when the test process ends, even on a failure or Ctrl-C. */
function installExitGuard(): void {
  if (guardInstalled) return;
  guardInstalled = true;
  const killAll = () => {
    for (const proc of live) if (proc.pid !== undefined) signalGroup(proc.pid, 'SIGKILL');
  };
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.kill(process.pid, sig);
    });
  }
}
