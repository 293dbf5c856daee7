// The client address the per-address limits and log lines mean: the peer's, or, when the peer
// is a trusted reverse proxy, the address it forwarded in X-Forwarded-For (read right to left,
// past the trusted hops: the first untrusted one is the client; anything before it could be
// forged by the client itself).
import { BlockList, isIP } from 'node:net';
import { isLoopback } from './addresses.ts';

/** `a.b.c.d`, an IPv6 address, or either with a `/prefix`: the form of a trusted-proxy entry. */
export function isAddressOrRange(entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

export class ClientAddresses {
  readonly #trusted: BlockList | null;
  #onUntrustedProxy: ((peer: string) => void) | undefined;

  /**
   * `trusted`: proxies whose X-Forwarded-For is believed (entries as isAddressOrRange).
   * `onUntrustedProxy`: told once of the first loopback peer that sends X-Forwarded-For without
   * being trusted: most likely a proxy on this host that --trusted-proxies does not name.
   */
  constructor(trusted: readonly string[], onUntrustedProxy?: (peer: string) => void) {
    this.#onUntrustedProxy = onUntrustedProxy;
    if (trusted.length === 0) {
      this.#trusted = null;
      return;
    }
    const list = new BlockList();
    for (const entry of trusted) {
      const [address, prefix] = entry.split('/') as [string, string | undefined];
      const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) list.addAddress(address, type);
      else list.addSubnet(address, Number(prefix), type);
    }
    this.#trusted = list;
  }

  /** The client address behind `peer`, given the request's X-Forwarded-For header. */
  of(peer: string | undefined, forwarded: string | string[] | undefined): string | undefined {
    if (peer === undefined || forwarded === undefined) return peer;
    if (!this.#trusted || !this.#isTrusted(peer)) {
      if (this.#onUntrustedProxy && isLoopback(peer)) {
        this.#onUntrustedProxy(peer);
        this.#onUntrustedProxy = undefined;
      }
      return peer;
    }
    const hops = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded).split(',');
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!.trim();
      // not an address (a proxy that writes names or ports): stop at what is known
      if (isIP(hop) === 0) return client;
      client = hop;
      if (!this.#isTrusted(hop)) return hop;
    }
    return client;
  }

  #isTrusted(address: string): boolean {
    return this.#trusted!.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
}
