// Broadcasts ("megaphone"): service-wide ids with a version, e.g. Firefox's
// remote-settings/monitor_changes. A user agent names the versions it has (in hello or
// broadcast_subscribe); it is told the ids whose version differs, and later every change of
// those ids while it stays connected. The table lives here; who persists and changes it is the
// composition root's business (the store, the admin API, a poller).

export type Versions = Record<string, string>;

/** A connection that hears of changes to the ids it subscribed to. */
export interface BroadcastListener {
  broadcastsChanged(changes: Versions): void;
}

export const BROADCAST_NOT_FOUND = 'Broadcast not found';

export class BroadcastTable {
  readonly #versions: Map<string, string>;
  /** Per id, the connections that subscribed to it: a change is one pass over its set. */
  readonly #listeners = new Map<string, Set<BroadcastListener>>();

  constructor(versions: ReadonlyMap<string, string> = new Map()) {
    this.#versions = new Map(versions);
  }

  /** Every id with its version. */
  all(): Versions {
    return Object.fromEntries(this.#versions);
  }

  /** The known ids whose version differs from the client's, and unknown ones under `errors`. */
  subscribe(client: Versions): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let unknown: string[] | undefined;
    for (const [id, version] of Object.entries(client)) {
      const current = this.#versions.get(id);
      if (current === undefined) (unknown ??= []).push(id);
      else if (current !== version) out[id] = current;
    }
    if (unknown) out.errors = Object.fromEntries(unknown.map((id) => [id, BROADCAST_NOT_FOUND]));
    return out;
  }

  /** `listener` hears of later changes to the known ones of `ids`; returns those (to unlisten on close). */
  listen(listener: BroadcastListener, ids: Iterable<string>): string[] {
    const known: string[] = [];
    for (const id of ids) {
      if (!this.#versions.has(id)) continue;
      let set = this.#listeners.get(id);
      if (!set) this.#listeners.set(id, (set = new Set()));
      set.add(listener);
      known.push(id);
    }
    return known;
  }

  unlisten(listener: BroadcastListener, ids: Iterable<string>): void {
    for (const id of ids) {
      const set = this.#listeners.get(id);
      if (!set) continue;
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(id);
    }
  }

  /** The entries of `versions` that differ from the table (what `set` would change). */
  changes(versions: Versions): Versions {
    return Object.fromEntries(Object.entries(versions).filter(([id, version]) => this.#versions.get(id) !== version));
  }

  /**
   * Sets versions (new ids are added) and tells each listener, in one frame, the changed ids it
   * subscribed to. Returns the ids whose version changed.
   */
  set(versions: Versions): string[] {
    const changed = Object.entries(this.changes(versions));
    for (const [id, version] of changed) this.#versions.set(id, version);
    const frames = new Map<BroadcastListener, Versions>();
    for (const [id, version] of changed) {
      for (const listener of this.#listeners.get(id) ?? []) {
        const frame = frames.get(listener);
        if (frame) frame[id] = version;
        else frames.set(listener, { [id]: version });
      }
    }
    for (const [listener, frame] of frames) listener.broadcastsChanged(frame);
    return changed.map(([id]) => id);
  }
}
