/**
 * Extracts VAPID credentials (RFC 8292) from a push request's headers. Syntax only: the token
 * and key are checked by verify.ts.
 */

export type VapidCredentials = {
  token: string;
  /** base64url, no padding */
  publicKey: string;
  /** `webpush`: the token in `WebPush <jwt>` or `Bearer <jwt>` with the key in Crypto-Key. */
  scheme: 'vapid' | 'webpush';
};

export type VapidParseError = { error: string };

type Param = { name: string; value: string };

// RFC 9110 token characters: an auth-scheme or parameter name.
const TCHAR = "[A-Za-z0-9!#$%&'*+.^_`|~-]";
const TOKEN = new RegExp(`^${TCHAR}+$`);
const SCHEME_PREFIX = new RegExp(`^${TCHAR}{1,20}`);

/**
 * Returns null when there is no Authorization header at all (an unrestricted send), the
 * credentials for `vapid t=..., k=...` (RFC 8292), or for the early drafts' `WebPush <jwt>` and
 * `Bearer <jwt>` with `Crypto-Key: p256ecdsa=...` (autopush accepts all three; scheme names are
 * case-insensitive), and an error for anything else.
 */
export function parseVapidAuthorization(
  authorization: string | undefined,
  cryptoKey: string | undefined,
): VapidCredentials | null | VapidParseError {
  if (authorization === undefined) return null;
  const value = authorization.trim();
  const space = value.search(/\s/);
  const scheme = space === -1 ? value : value.slice(0, space);
  const rest = space === -1 ? '' : value.slice(space + 1).trim();
  switch (scheme.toLowerCase()) {
    case 'vapid':
      return parseVapid(rest);
    case 'webpush':
    case 'bearer':
      return parseWebPush(scheme, rest, cryptoKey);
    case '':
      return { error: 'Authorization header is empty' };
    default:
      return { error: `Authorization scheme ${describeScheme(scheme)} is not vapid, WebPush or Bearer` };
  }
}

function parseVapid(rest: string): VapidCredentials | VapidParseError {
  const params = new Map<string, string>();
  for (const element of rest.split(',')) {
    if (element.trim() === '') continue; // list syntax allows empty elements
    const param = parseParam(element);
    if (param === null) return { error: 'vapid Authorization has a parameter that is not name=value' };
    if (/\s/.test(param.value)) {
      return { error: `vapid Authorization has whitespace inside ${param.name}= (separate parameters with commas)` };
    }
    if (params.has(param.name)) return { error: `vapid Authorization repeats ${param.name}=` };
    params.set(param.name, param.value);
  }
  const token = params.get('t');
  const key = params.get('k')?.replace(/=+$/, '');
  if (token === undefined) return { error: 'vapid Authorization lacks t=' };
  if (key === undefined) return { error: 'vapid Authorization lacks k=' };
  if (token === '') return { error: 'vapid Authorization has an empty t=' };
  if (key === '') return { error: 'vapid Authorization has an empty k=' };
  return { token, publicKey: key, scheme: 'vapid' };
}

function parseWebPush(scheme: string, token: string, cryptoKey: string | undefined): VapidCredentials | VapidParseError {
  const name = scheme.toLowerCase() === 'bearer' ? 'Bearer' : 'WebPush';
  if (token === '') return { error: `${name} Authorization lacks the token` };
  if (/[\s,]/.test(token)) return { error: `${name} Authorization must hold only the token` };
  if (cryptoKey === undefined) return { error: `${name} Authorization needs a Crypto-Key header with p256ecdsa=` };
  const key = findCryptoKeyParam(cryptoKey, 'p256ecdsa');
  if (key === undefined) return { error: 'Crypto-Key lacks p256ecdsa=' };
  if (key === null) return { error: 'Crypto-Key repeats p256ecdsa= with different values' };
  const publicKey = key.replace(/=+$/, '');
  if (publicKey === '') return { error: 'Crypto-Key has an empty p256ecdsa=' };
  return { token, publicKey, scheme: 'webpush' };
}

/**
 * Crypto-Key is a list of entries of `;`-separated params (`dh=...;p256ecdsa=...`). Entries we
 * cannot parse belong to the message encryption, not to us, so they are skipped.
 * Returns undefined when absent, null when given twice with different values.
 */
function findCryptoKeyParam(header: string, name: string): string | undefined | null {
  let found: string | undefined;
  for (const element of header.split(/[,;]/)) {
    const param = parseParam(element);
    if (param === null || param.name !== name) continue;
    if (found !== undefined && found !== param.value) return null;
    found = param.value;
  }
  return found;
}

/** `name = value` or `name="value"`; the name is lower-cased. Null when malformed. */
function parseParam(element: string): Param | null {
  const eq = element.indexOf('=');
  if (eq === -1) return null;
  const name = element.slice(0, eq).trim();
  const value = unquote(element.slice(eq + 1).trim());
  if (!TOKEN.test(name) || value === null) return null;
  return { name: name.toLowerCase(), value };
}

function unquote(value: string): string | null {
  if (!value.startsWith('"')) return value.includes('"') ? null : value;
  if (value.length < 2 || !value.endsWith('"')) return null;
  const inner = value.slice(1, -1);
  return inner.includes('"') ? null : inner;
}

/** The scheme name for an error message, without echoing a credential that may follow it. */
function describeScheme(scheme: string): string {
  const name = SCHEME_PREFIX.exec(scheme)?.[0];
  return name === undefined ? '(malformed)' : `"${name}"`;
}
