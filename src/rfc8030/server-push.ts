// One HTTP/2 server push on a monitor's GET stream (RFC 8030 6): a PUSH_PROMISE for
// `GET <path>` and, on the promised stream, a complete response. The PUSH_PROMISE frame is
// queued synchronously, so pushes made in order reach the client in order.
import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';

/** Where the promised requests point: the `:scheme` and `:authority` of the monitor's request. */
export interface PushOrigin {
  scheme: string;
  authority: string;
}

export interface PushedResponse {
  status: number;
  headers?: OutgoingHttpHeaders;
  /** Absent: a response without a body (END_STREAM on the HEADERS frame). */
  body?: Buffer;
}

/**
 * Promises `GET <path>` on `parent` and sends `response` on the promised stream. `done` is told
 * whether the response went out whole (false: the client refused the push, or the stream or
 * connection ended first). Returns false when nothing could be promised at all.
 */
export function push(
  parent: ServerHttp2Stream,
  origin: PushOrigin,
  path: string,
  response: PushedResponse,
  done?: (sent: boolean) => void,
): boolean {
  const request = { ':method': 'GET', ':scheme': origin.scheme, ':authority': origin.authority, ':path': path };
  try {
    parent.pushStream(request, (err, stream) => {
      if (err) return done?.(false);
      // a client may refuse a push with RST_STREAM: that is its right, not our error
      stream.on('error', () => {});
      if (done) stream.once('close', () => done(stream.rstCode === constants.NGHTTP2_NO_ERROR));
      if (stream.destroyed || stream.closed) return;
      const headers = { ...response.headers, ':status': response.status };
      const body = response.body;
      if (body === undefined) {
        stream.respond(headers, { endStream: true });
      } else if (body.length === 0) {
        stream.respond({ ...headers, 'content-length': 0 }, { endStream: true });
      } else {
        stream.respond({ ...headers, 'content-length': body.length });
        stream.end(body);
      }
    });
    return true;
  } catch {
    // the GET stream or its session is already closing
    return false;
  }
}
