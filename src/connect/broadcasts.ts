// Broadcasts ("megaphone"): service-wide ids with a version, e.g. Firefox's
// remote-settings/monitor_changes. A user agent names the versions it has; it is told the ids
// whose version differs. The table is set by configuration and fixed while the server runs.

export class BroadcastTable {
  readonly #versions: ReadonlyMap<string, string>;

  constructor(versions: ReadonlyMap<string, string>) {
    this.#versions = versions;
  }

  /** The known ids whose version differs from the client's. */
  changed(client: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [id, version] of Object.entries(client)) {
      const current = this.#versions.get(id);
      if (current !== undefined && current !== version) out[id] = current;
    }
    return out;
  }

  /** Like `changed`, plus unknown ids reported under `errors`. */
  subscribe(client: Record<string, string>): Record<string, unknown> {
    const out: Record<string, unknown> = this.changed(client);
    const unknown = Object.keys(client).filter((id) => !this.#versions.has(id));
    if (unknown.length > 0) out.errors = Object.fromEntries(unknown.map((id) => [id, 'Broadcast not found']));
    return out;
  }
}
