// Link header fields (RFC 8288) as RFC 8030 uses them: a subscription's answer names its push
// URL and its set by relation type, and a pushed message names the subscription it is for.

/** The push URL of a subscription (RFC 8030 4). */
export const PUSH_REL = 'urn:ietf:params:push';
/** The subscription set a subscription belongs to (RFC 8030 4.1). */
export const SET_REL = 'urn:ietf:params:push:set';
/** A receipt subscription (RFC 8030 5.1): asked for by an application server, named in its answer. */
export const RECEIPT_REL = 'urn:ietf:params:push:receipt';

export interface Link {
  /** Absolute (resolved against the request's URL). */
  url: string;
  /** The relation types, lower-cased. */
  rels: string[];
}

/**
 * Parses Link header fields (RFC 8288): one or several headers, each possibly holding several
 * comma-separated links. Links whose target is not a URL are skipped.
 */
export function parseLinks(value: string | readonly string[] | undefined, base: string): Link[] {
  if (value === undefined) return [];
  const links: Link[] = [];
  for (const field of typeof value === 'string' ? [value] : value) {
    let i = 0;
    const n = field.length;
    const skipSpace = () => {
      while (i < n && (field[i] === ' ' || field[i] === '\t')) i++;
    };
    while (i < n) {
      skipSpace();
      if (field[i] === ',') {
        i++;
        continue;
      }
      if (field[i] !== '<') {
        // not a link: skip to the next comma outside quotes
        i = skipToComma(field, i);
        continue;
      }
      const end = field.indexOf('>', i + 1);
      if (end < 0) break;
      const target = field.slice(i + 1, end).trim();
      i = end + 1;
      const rels: string[] = [];
      // parameters: ; name[=value|"quoted"]
      for (;;) {
        skipSpace();
        if (field[i] !== ';') break;
        i++;
        skipSpace();
        const nameStart = i;
        while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(field[i]!)) i++;
        const name = field.slice(nameStart, i).toLowerCase();
        skipSpace();
        let paramValue = '';
        if (field[i] === '=') {
          i++;
          skipSpace();
          if (field[i] === '"') {
            i++;
            while (i < n && field[i] !== '"') {
              if (field[i] === '\\' && i + 1 < n) i++;
              paramValue += field[i];
              i++;
            }
            i++; // the closing quote
          } else {
            const valueStart = i;
            while (i < n && field[i] !== ';' && field[i] !== ',') i++;
            paramValue = field.slice(valueStart, i).trim();
          }
        }
        // the first rel parameter counts (RFC 8288 3.3)
        if (name === 'rel' && rels.length === 0) rels.push(...paramValue.toLowerCase().split(/\s+/).filter(Boolean));
      }
      i = skipToComma(field, i);
      let url: string;
      try {
        url = new URL(target, base).toString();
      } catch {
        continue;
      }
      links.push({ url, rels });
    }
  }
  return links;
}

function skipToComma(s: string, i: number): number {
  let quoted = false;
  for (; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ',') return i + 1;
  }
  return i;
}

/** The first link with relation `rel`, or undefined. */
export function findLink(links: Link[], rel: string): string | undefined {
  return links.find((l) => l.rels.includes(rel))?.url;
}
