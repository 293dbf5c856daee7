// The Prefer request header (RFC 7240) as RFC 8030 uses it: `respond-async` on a push
// request asks for a receipt (5.1), `wait=0` on a monitor asks for what is waiting, now (6).
// Pure.

/** The preferences, lower-cased names to values ('' for a bare token); first one wins. */
export function parsePrefer(value: string | readonly string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (value === undefined) return out;
  for (const pref of (typeof value === 'string' ? value : value.join(',')).split(',')) {
    const head = pref.split(';', 1)[0]!;
    const eq = head.indexOf('=');
    const name = (eq < 0 ? head : head.slice(0, eq)).trim().toLowerCase();
    if (name === '' || out.has(name)) continue;
    out.set(name, eq < 0 ? '' : head.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
  }
  return out;
}

export function prefersRespondAsync(value: string | readonly string[] | undefined): boolean {
  return value !== undefined && parsePrefer(value).has('respond-async');
}

/** `Prefer: wait=0`: answer as soon as what is waiting was pushed. Other waits are not honoured. */
export function prefersNoWait(value: string | readonly string[] | undefined): boolean {
  return value !== undefined && parsePrefer(value).get('wait') === '0';
}
