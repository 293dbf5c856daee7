// The VAPID check every door of the application-server API shares (push URLs, aggregates):
// the request's credentials parsed and verified, or a 401 that says why.
import type { IncomingHttpHeaders } from 'node:http';
import { Errno, PushError } from '../common/push-error.ts';
import { parseVapidAuthorization } from './authorization.ts';
import { VapidError, type VapidVerifier } from './verify.ts';

export function vapidUnauthorized(why: string): PushError {
  return new PushError(401, Errno.vapid, `VAPID authentication failed: ${why}`);
}

/** The public key (base64url) of the request's valid VAPID signature; null when it is unsigned; 401 when invalid. */
export function verifiedVapidKey(headers: IncomingHttpHeaders, vapid: VapidVerifier): string | null {
  const creds = parseVapidAuthorization(headers.authorization, headers['crypto-key'] as string | undefined);
  if (creds === null) return null;
  if ('error' in creds) throw vapidUnauthorized(creds.error);
  try {
    vapid.verify(creds);
  } catch (err) {
    if (err instanceof VapidError) throw vapidUnauthorized(err.reason);
    throw err;
  }
  return creds.publicKey;
}
