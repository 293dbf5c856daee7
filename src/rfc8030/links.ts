// Link header fields (RFC 8288) as RFC 8030 uses them: the three push relation types, parsing
// of one or several header fields (each may hold a comma-separated list), and formatting.
// Pure: strings in, values out.

export const Rel = {
  push: 'urn:ietf:params:push',
  set: 'urn:ietf:params:push:set',
  receipt: 'urn:ietf:params:push:receipt',
} as const;

export interface Link {
  /** The target as written between `<` and `>` (absolute or relative). */
  uri: string;
  /** The relation types of `rel`, lower-cased. */
  rels: string[];
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
/** Unquoted values are read leniently: `rel=urn:ietf:params:push` is common, though not a token. */
const BARE_VALUE = /[^\s;,"]+/y;

/** Every link of the header field(s); null when the syntax is broken. */
export function parseLinks(value: string | readonly string[] | undefined): Link[] | null {
  if (value === undefined) return [];
  const t = typeof value === 'string' ? value : value.join(', ');
  const n = t.length;
  let i = 0;
  const skipSpace = () => {
    while (i < n && (t[i] === ' ' || t[i] === '\t')) i++;
  };
  const token = (re = TOKEN): string | null => {
    re.lastIndex = i;
    const m = re.exec(t);
    if (!m) return null;
    i += m[0].length;
    return m[0];
  };
  const quoted = (): string | null => {
    let out = '';
    for (i++; i < n; i++) {
      if (t[i] === '"') {
        i++;
        return out;
      }
      if (t[i] === '\\') i++;
      out += t[i] ?? '';
    }
    return null;
  };
  const links: Link[] = [];
  for (;;) {
    skipSpace();
    while (t[i] === ',') {
      i++;
      skipSpace();
    }
    if (i >= n) return links;
    if (t[i] !== '<') return null;
    const close = t.indexOf('>', i);
    if (close < 0) return null;
    const uri = t.slice(i + 1, close).trim();
    i = close + 1;
    const params = new Map<string, string>();
    for (;;) {
      skipSpace();
      if (i >= n || t[i] === ',') break;
      if (t[i] !== ';') return null;
      i++;
      skipSpace();
      if (i >= n || t[i] === ',' || t[i] === ';') continue; // an empty parameter
      const name = token();
      if (name === null) return null;
      skipSpace();
      let v = '';
      if (t[i] === '=') {
        i++;
        skipSpace();
        const value = t[i] === '"' ? quoted() : token(BARE_VALUE);
        if (value === null) return null;
        v = value;
      }
      const key = name.toLowerCase();
      if (!params.has(key)) params.set(key, v); // RFC 8288 3.3: only the first rel counts
    }
    links.push({ uri, rels: (params.get('rel') ?? '').toLowerCase().split(/[ \t]+/).filter((r) => r !== '') });
  }
}

/** The distinct targets of the links with relation `rel`. */
export function targetsOf(links: readonly Link[], rel: string): string[] {
  return [...new Set(links.filter((l) => l.rels.includes(rel)).map((l) => l.uri))];
}

export function formatLink(uri: string, rel: string): string {
  return `<${uri}>; rel="${rel}"`;
}

/**
 * The token of one of this service's resource URLs, `…/<segment>/<token>` (absolute, or a
 * path), or null. Only the path matters: the token is the capability, whatever the host.
 */
export function resourceToken(uri: string, segment: string): string | null {
  let path: string;
  try {
    path = new URL(uri, 'http://relative.invalid').pathname;
  } catch {
    return null;
  }
  const m = /\/([^/]+)\/([A-Za-z0-9_-]+)$/.exec(path);
  return m && m[1] === segment ? m[2]! : null;
}
