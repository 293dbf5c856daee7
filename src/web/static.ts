// The web pages' static files (src/web/pages/), read once and served from memory: plain HTML,
// CSS-in-HTML and browser scripts, no build step and nothing fetched from elsewhere.
import { readFileSync } from 'node:fs';

const PAGES = new URL('./pages/', import.meta.url);

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
};

export interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
}

const cache = new Map<string, StaticFile>();

/** A file of src/web/pages/ by its name (no folders). */
export function page(name: string): StaticFile {
  let file = cache.get(name);
  if (!file) {
    const ext = name.slice(name.lastIndexOf('.') + 1);
    file = { body: readFileSync(new URL(name, PAGES)), type: TYPES[ext] ?? 'application/octet-stream' };
    cache.set(name, file);
  }
  return file;
}

/** Headers for every page response: nothing loaded from or sent to other origins, no framing, no caching. */
export const PAGE_HEADERS: Record<string, string> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
};
