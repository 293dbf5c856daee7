// The user agent's state as this process holds it, kept in step with the state file
// (state.ts), which another process may write meanwhile: `webpushd ua subscribe` adds
// subscriptions while `webpushd ua listen` runs. What another process added is merged in; what
// this one dropped is never merged back.
import { statSync } from 'node:fs';
import { toWebSocketUrl } from './server-url.ts';
import { StateError, readState, writeState, type StoredSubscription, type UaProtocol, type UaState } from './state.ts';
import type { UaLogger } from './transport.ts';

/** RFC 8030 listeners look at the state file this often for subscriptions another process added. */
const STATE_POLL_MS = 1_000;

export interface StateKeeperOptions {
  server?: string;
  /** Without it the state lives in memory only. */
  statePath?: string;
  protocol?: UaProtocol;
  log: UaLogger;
  /** A state file that could not be written where no caller can be told. */
  reportError(err: Error): void;
  /** Subscriptions came in from the file (called in a microtask). */
  merged(): void;
}

export class StateKeeper {
  readonly #path: string | undefined;
  readonly #log: UaLogger;
  readonly #reportError: (err: Error) => void;
  readonly #merged: () => void;
  readonly #state: UaState;
  /** Channels this client unsubscribed, or lost: never merged back from the file. */
  readonly #removed = new Set<string>();
  #watch: NodeJS.Timeout | null = null;

  /**
   * Loads (or creates) the state; throws StateError when the file is unreadable, corrupt, for
   * another server or protocol, or missing while no `server` is given.
   */
  constructor(o: StateKeeperOptions) {
    this.#path = o.statePath;
    this.#log = o.log;
    this.#reportError = o.reportError;
    this.#merged = o.merged;
    const server = o.server;
    if (server !== undefined) toWebSocketUrl(server); // throws TypeError for a bad URL
    const stored = this.#path ? readState(this.#path) : null;
    if (stored) {
      if (server !== undefined && toWebSocketUrl(server) !== toWebSocketUrl(stored.server)) {
        throw new StateError(`state file ${this.#path} belongs to ${stored.server}, not ${server}`);
      }
      const storedProtocol = stored.protocol ?? 'websocket';
      if (o.protocol !== undefined && o.protocol !== storedProtocol) {
        throw new StateError(`state file ${this.#path} is for protocol ${storedProtocol}, not ${o.protocol}`);
      }
      this.#state = stored;
    } else {
      if (server === undefined) {
        throw new StateError(this.#path ? `state file ${this.#path} does not exist (subscribe first, naming the server)` : 'no server given');
      }
      this.#state = { server, protocol: o.protocol ?? 'websocket', uaid: null, subscriptions: [] };
      // Creating the file now surfaces a bad path at once, not at the first hello.
      if (this.#path) writeState(this.#path, this.#state);
    }
  }

  get server(): string {
    return this.#state.server;
  }

  get protocol(): UaProtocol {
    return this.#state.protocol ?? 'websocket';
  }

  get uaid(): string | null {
    return this.#state.uaid;
  }

  set uaid(uaid: string | null) {
    this.#state.uaid = uaid;
  }

  get subscriptions(): readonly StoredSubscription[] {
    return this.#state.subscriptions;
  }

  /** Whether this process holds the subscription (the file is not looked at). */
  has(channelID: string): boolean {
    return this.#state.subscriptions.some((s) => s.channelID === channelID);
  }

  /** The first subscription matching, looking in the file too when this process holds none. */
  find(match: (s: StoredSubscription) => boolean): StoredSubscription | undefined {
    const found = this.#state.subscriptions.find(match);
    if (found) return found;
    // Perhaps another process (`webpushd ua subscribe`) added it to the file meanwhile.
    this.#mergeFromDisk();
    return this.#state.subscriptions.find(match);
  }

  add(subscription: StoredSubscription): void {
    this.#state.subscriptions.push(subscription);
  }

  /** Drops the subscriptions matching for good, and returns them. */
  remove(match: (s: StoredSubscription) => boolean): StoredSubscription[] {
    const removed = this.#state.subscriptions.filter(match);
    if (removed.length === 0) return removed;
    for (const s of removed) this.#removed.add(s.channelID);
    this.#state.subscriptions = this.#state.subscriptions.filter((s) => !match(s));
    return removed;
  }

  /** Writes the state (taking in what another process added first); `throwing` false reports a failure instead. */
  save(throwing: boolean): void {
    if (!this.#path) return;
    this.#mergeFromDisk();
    try {
      writeState(this.#path, this.#state);
    } catch (err) {
      if (throwing) throw err;
      this.#reportError(err as Error);
    }
  }

  /**
   * RFC 8030, while listening: picks up subscriptions another process (`webpushd ua subscribe`)
   * adds to the state file, so that their set is received too. (Over WebSocket the push service
   * hands the session over, which tells.)
   */
  watch(): void {
    const path = this.#path;
    if (this.#watch || !path || this.protocol !== 'http2') return;
    // Every write replaces the file (a new inode), so comparing the stat catches each one.
    const version = () => {
      try {
        const st = statSync(path, { throwIfNoEntry: false });
        return st ? `${st.ino}:${st.mtimeMs}:${st.size}` : '';
      } catch {
        return '';
      }
    };
    let seen = version();
    this.#mergeFromDisk(); // what was written before `seen` was taken
    this.#watch = setInterval(() => {
      const now = version();
      if (now === seen) return;
      seen = now;
      this.#mergeFromDisk();
    }, STATE_POLL_MS);
    this.#watch.unref();
  }

  stopWatching(): void {
    if (this.#watch) clearInterval(this.#watch);
  }

  /**
   * Takes in subscriptions another process added to the state file: for the same uaid
   * (WebSocket), or for the same push service (RFC 8030).
   */
  #mergeFromDisk(): void {
    if (!this.#path) return;
    const http2 = this.protocol === 'http2';
    if (!http2 && this.#state.uaid === null) return;
    let disk: UaState | null;
    try {
      disk = readState(this.#path);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'cannot re-read the state file');
      return;
    }
    if (!disk || (disk.protocol ?? 'websocket') !== this.protocol) return;
    if (http2 ? toWebSocketUrl(disk.server) !== toWebSocketUrl(this.#state.server) : disk.uaid !== this.#state.uaid) return;
    let added = false;
    for (const s of disk.subscriptions) {
      if (this.#removed.has(s.channelID) || this.has(s.channelID)) continue;
      this.#state.subscriptions.push(s);
      added = true;
    }
    if (added) queueMicrotask(this.#merged);
  }
}
