// What an application server asks for about receipts on a push request (RFC 8030 5.1):
// `Prefer: respond-async` (a new receipt subscription unless one is named) and/or
// `Link: <receipt subscription>; rel="urn:ietf:params:push:receipt"` (reuse that one).
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Errno, PushError } from '../common/push-error.ts';
import type { ReceiptTarget } from '../store/types.ts';
import type { Capabilities } from '../tokens/capabilities.ts';
import { Rel, parseLinks, resourceToken, targetsOf } from './links.ts';
import { prefersRespondAsync } from './prefer.ts';

export interface ReceiptRequest {
  target: ReceiptTarget;
  /** `Prefer: respond-async`: answer 202 instead of 201. */
  respondAsync: boolean;
}

const invalid = (why: string) => new PushError(400, Errno.invalidReceipts, why);

/** null when the request asks for no receipt (the common case costs two property reads). */
export function parseReceiptRequest(headers: IncomingHttpHeaders, capabilities: Capabilities): ReceiptRequest | null {
  if (headers.prefer === undefined && headers.link === undefined) return null;
  const respondAsync = prefersRespondAsync(headers.prefer);
  const links = parseLinks(headers.link);
  if (links === null) throw invalid('The Link header is not valid (RFC 8288)');
  const named = targetsOf(links, Rel.receipt);
  if (named.length > 1) throw invalid('Name one receipt subscription, not several');
  if (named.length === 1) {
    const token = resourceToken(named[0]!, 'r');
    const id = token === null ? null : capabilities.openReceiptsToken(token);
    if (!id) throw invalid('The receipt subscription in the Link header is not one of this push service');
    return { target: { id, create: false }, respondAsync };
  }
  return respondAsync ? { target: { id: randomBytes(16), create: true }, respondAsync } : null;
}
