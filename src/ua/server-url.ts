// The push service's URL in the form each protocol connects with: the user names one base URL,
// ws(s):// or http(s)://, whichever protocol the client speaks.

/** The WebSocket URL of a push service given as ws(s):// or http(s):// (any path is kept). */
export function toWebSocketUrl(server: string): string {
  return withScheme(server, { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' }, 'a ws://, wss://, http:// or https://');
}

/** The http(s):// URL of a push service given as http(s):// or ws(s):// (any path is kept). */
export function toHttpUrl(server: string): string {
  return withScheme(server, { 'ws:': 'http:', 'wss:': 'https:', 'http:': 'http:', 'https:': 'https:' }, 'an http://, https://, ws:// or wss://');
}

/** `server` with its scheme replaced as `schemes` maps it, without a fragment; TypeError for another scheme. */
function withScheme(server: string, schemes: Record<string, string>, expected: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new TypeError(`not a URL: ${server}`);
  }
  const scheme = schemes[url.protocol];
  if (!scheme) throw new TypeError(`expected ${expected} URL, got ${url.protocol}//`);
  // new URL() keeps a special scheme's parsing when switching between ws/http, so this is safe
  url.protocol = scheme;
  url.hash = '';
  return url.toString();
}
