// A throwaway self-signed certificate for 127.0.0.1 (P-256, one day), made with the openssl CLI.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  /** Paths of the PEM files (for `--tls-cert`/`--tls-key`, `--ca`). */
  certFile: string;
  keyFile: string;
  /** The PEM contents: `cert` is also the CA to trust. */
  cert: Buffer;
  key: Buffer;
  /** Removes the files. */
  remove(): void;
}

export function createTestCertificate(commonName = '127.0.0.1'): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'webpushd-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const san = /^[\d.]+$|:/.test(commonName) ? `IP:${commonName}` : `DNS:${commonName}`;
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-subj', `/CN=${commonName}`, '-addext', `subjectAltName=${san}`, '-days', '1',
      '-keyout', keyFile, '-out', certFile,
    ],
    { stdio: 'pipe' },
  );
  return {
    certFile,
    keyFile,
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
