// The one error a Store raises for "cannot serve now" (disk full, I/O error, locked or
// unreadable database, an unreachable server): the doors answer it 503 + Retry-After (HTTP) or
// 1013 (WebSocket) instead of 500, and nothing of the failed write is kept.

export class StoreUnavailable extends Error {
  override name = 'StoreUnavailable';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
