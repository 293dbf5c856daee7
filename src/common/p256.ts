// P-256 public keys in their raw form, a 65-byte uncompressed point (0x04 || x || y), as Web Push
// (RFC 8291 p256dh) and VAPID (RFC 8292 k) carry them. Pure: no I/O.

export const P256_POINT_LENGTH = 65;

// P-256 domain parameters (SEC 2): y^2 = x^3 - 3x + b over GF(p).
const P256_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const P256_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

/** Why bytes are not an uncompressed P-256 point; each caller words its own error. */
export type P256PointProblem = 'compressed' | 'length' | 'prefix' | 'off-curve';

/**
 * Checks, in this order, that `point` is not a compressed point, is 65 bytes, starts with 0x04
 * and lies on the curve (so also not the point at infinity, which has no such encoding).
 */
export function p256PointProblem(point: Buffer): P256PointProblem | undefined {
  if (point.length === 33 && (point[0] === 2 || point[0] === 3)) return 'compressed';
  if (point.length !== P256_POINT_LENGTH) return 'length';
  if (point[0] !== 4) return 'prefix';
  return isOnP256(point) ? undefined : 'off-curve';
}

function isOnP256(point: Buffer): boolean {
  const x = BigInt(`0x${point.toString('hex', 1, 33)}`);
  const y = BigInt(`0x${point.toString('hex', 33, 65)}`);
  if (x >= P256_P || y >= P256_P) return false;
  const rhs = (((x * x) % P256_P) * x - 3n * x + P256_B) % P256_P;
  return ((y * y) % P256_P - rhs + P256_P) % P256_P === 0n;
}

/** The public JWK of a 65-byte uncompressed point (add `d` for the private key). */
export function p256Jwk(point: Buffer): { kty: 'EC'; crv: 'P-256'; x: string; y: string } {
  return {
    kty: 'EC',
    crv: 'P-256',
    x: point.subarray(1, 33).toString('base64url'),
    y: point.subarray(33).toString('base64url'),
  };
}
