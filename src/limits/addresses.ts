// Client addresses as the limits key them.

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export function isExempt(address: string, exemptLoopback: boolean): boolean {
  return exemptLoopback && isLoopback(address);
}
