// A tiny web site for the browser under test: serves the push test page and its service worker
// (test/e2e/fixtures/push-page/) on 127.0.0.1 (a secure context for push) and collects what they
// report, for tests to await.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const FIXTURES = new URL('../e2e/fixtures/push-page/', import.meta.url);
const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: HTML },
  '/index.html': { file: 'index.html', type: HTML },
  '/page.js': { file: 'page.js', type: JS },
  '/sw.js': { file: 'sw.js', type: JS },
};
/** How long a page's GET /command is held open before it is told to ask again. */
const LONG_POLL_MS = 20_000;
const NO_STORE = { 'cache-control': 'no-store' };

export interface SubscriptionJSON {
  endpoint: string;
  expirationTime?: number | null;
  keys: { p256dh: string; auth: string };
}

export interface SubscriptionReport {
  /** True when the page found a subscription (getSubscription) instead of creating one. */
  existing: boolean;
  subscription: SubscriptionJSON;
}

export interface PushTestPage {
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  /** The page URL that subscribes with this VAPID public key (base64url). */
  pageUrl(applicationServerKey: string): string;
  /** The next subscription the page reports (new or found after a relaunch). */
  nextSubscription(timeoutMs?: number): Promise<SubscriptionReport>;
  /** The text of the next push event the service worker saw (null: a push without data). */
  nextPush(timeoutMs?: number): Promise<string | null>;
  /** Makes the open page unsubscribe; resolves with PushSubscription.unsubscribe()'s result. */
  unsubscribe(timeoutMs?: number): Promise<boolean>;
  /** Everything the page and service worker reported, with times, for failure diagnostics. */
  log(): string;
  close(): Promise<void>;
}

type Report = Record<string, unknown>;

/** A queue of reports of one kind that a test can await one by one. */
class Inbox {
  private readonly items: Report[] = [];
  private readonly waiters: Array<(item: Report) => void> = [];

  put(item: Report): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(what: string, timeoutMs: number, context: () => string): Promise<Report> {
    const queued = this.items.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const waiter = (item: Report) => {
        clearTimeout(timer);
        resolve(item);
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no ${what} reported within ${timeoutMs} ms; page log:\n${context()}`));
      }, timeoutMs);
      // A wait abandoned by a cancelled test must not keep the process alive.
      timer.unref();
      this.waiters.push(waiter);
    });
  }
}

export async function startPushTestPage(): Promise<PushTestPage> {
  const started = Date.now();
  const lines: string[] = [];
  const note = (line: string) => lines.push(`+${((Date.now() - started) / 1000).toFixed(1)}s ${line}`);
  const log = () => lines.join('\n') || '(nothing reported)';
  const inboxes = new Map<string, Inbox>();
  const inbox = (kind: string) => inboxes.get(kind) ?? inboxes.set(kind, new Inbox()).get(kind)!;
  const commands = new CommandQueue();

  const server = createServer((req, res) => {
    route(req, res, { inbox, note, commands }).catch((err: unknown) => {
      note(`test server error on ${req.method} ${req.url}: ${String(err)}`);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const failIfError = (what: string, report: Report) => {
    if (typeof report.error === 'string') throw new Error(`page could not ${what}: ${report.error}\npage log:\n${log()}`);
    return report;
  };
  return {
    origin,
    pageUrl: (key) => `${origin}/index.html?key=${encodeURIComponent(key)}`,
    async nextSubscription(timeoutMs = 60_000) {
      const report = await inbox('subscription').next('subscription', timeoutMs, log);
      return failIfError('subscribe', report) as unknown as SubscriptionReport;
    },
    async nextPush(timeoutMs = 30_000) {
      const report = await inbox('push').next('push event', timeoutMs, log);
      return report.text as string | null;
    },
    async unsubscribe(timeoutMs = 30_000) {
      commands.send({ action: 'unsubscribe' });
      const report = await inbox('unsubscribed').next('unsubscribe result', timeoutMs, log);
      return failIfError('unsubscribe', report).ok === true;
    },
    log,
    close: () => {
      commands.close();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface RouteContext {
  inbox(kind: string): Inbox;
  note(line: string): void;
  commands: CommandQueue;
}

async function route(req: IncomingMessage, res: ServerResponse, ctx: RouteContext): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const file = STATIC[path];
  if (req.method === 'GET' && file) {
    // no-store: a relaunched Firefox must not run a stale copy of the page or service worker.
    res.writeHead(200, { ...NO_STORE, 'content-type': file.type });
    res.end(readFileSync(new URL(file.file, FIXTURES)));
  } else if (req.method === 'GET' && path === '/command') {
    ctx.commands.poll(res);
  } else if (req.method === 'POST' && path.startsWith('/report/')) {
    const kind = path.slice('/report/'.length);
    const body = await readJson(req);
    ctx.note(`${kind} ${JSON.stringify(body)}`);
    ctx.inbox(kind).put(body);
    res.writeHead(204).end();
  } else {
    res.writeHead(404).end();
  }
}

async function readJson(req: IncomingMessage): Promise<Report> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Report;
}

/** Commands for the page, handed out through long-polled GET /command requests. */
class CommandQueue {
  private readonly queued: object[] = [];
  private readonly polls = new Set<ServerResponse>();

  send(command: object): void {
    const [poll] = this.polls;
    if (poll) this.answer(poll, command);
    else this.queued.push(command);
  }

  poll(res: ServerResponse): void {
    const command = this.queued.shift();
    if (command) return this.answer(res, command);
    this.polls.add(res);
    const timer = setTimeout(() => this.polls.delete(res) && res.writeHead(204, NO_STORE).end(), LONG_POLL_MS);
    res.once('close', () => {
      clearTimeout(timer);
      this.polls.delete(res);
    });
  }

  close(): void {
    for (const res of this.polls) res.destroy();
    this.polls.clear();
  }

  private answer(res: ServerResponse, command: object): void {
    this.polls.delete(res);
    res.writeHead(200, { ...NO_STORE, 'content-type': 'application/json' });
    res.end(JSON.stringify(command));
  }
}
