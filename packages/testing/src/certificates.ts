/** Throwaway certificates for TLS tests, made with openssl: a CA, a server cert for 127.0.0.1, client certs. */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCertificates {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** Issued by `ca`, subject CN=ci,O=Acme. */
  clientCert: string;
  clientKey: string;
  /** Issued by another CA, same subject. */
  strangerCert: string;
  strangerKey: string;
  /** A CA that issued neither the server's nor the client's certificate. */
  otherCa: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A P-256 key `dir/keyFile` and a self-signed certificate `dir/certFile` for `subject`, valid `days`. */
export function selfSignedP256(
  dir: string,
  files: { key: string; cert: string },
  subject: string,
  days: number,
): void {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    files.key,
    '-out',
    files.cert,
    '-days',
    String(days),
    '-subj',
    subject,
  ]);
}

/** P-256 keys (fast to make), one-day certificates. */
export function makeCertificates(dir: string): TestCertificates {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    openssl(dir, [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.pem`,
      '-days',
      '1',
      '-subj',
      `/CN=tufa test ${ca}`,
    ]);
  }
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  const issue = (name: string, subject: string, ca: string, ext: string) => {
    openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.pem`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-extfile',
      ext,
    ]);
  };
  issue('server', '/CN=127.0.0.1', 'ca', 'server.ext');
  issue('client', '/CN=ci/O=Acme', 'ca', 'client.ext');
  issue('stranger', '/CN=ci/O=Acme', 'other-ca', 'client.ext');
  const p = (f: string) => join(dir, f);
  return {
    dir,
    ca: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    strangerCert: p('stranger.pem'),
    strangerKey: p('stranger.key'),
    otherCa: p('other-ca.pem'),
  };
}

/** The PEM bodies of every private key made, to grep logs for. */
export function privateKeyTexts(certs: TestCertificates): string[] {
  return [certs.serverKey, certs.clientKey, certs.strangerKey].map((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('-----'))
      .join(''),
  );
}
