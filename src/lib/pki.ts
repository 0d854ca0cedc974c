// A small certificate authority for serving TLS off loopback: `up` makes a CA once, keeps
// it in <data-dir>/pki, and signs a serving certificate for the addresses it listens on.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import forge from 'node-forge';

export interface ServingCerts {
  caPem: string;
  certPem: string;
  keyPem: string;
}

function newCertificate(publicKey: forge.pki.PublicKey, years: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = `01${forge.util.bytesToHex(forge.random.getBytesSync(15))}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + years * 365 * 24 * 3600 * 1000);
  return cert;
}

function loadOrCreateCa(dir: string): { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey; pem: string } {
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  if (existsSync(certFile) && existsSync(keyFile)) {
    const pem = readFileSync(certFile, 'utf8');
    return { cert: forge.pki.certificateFromPem(pem), key: forge.pki.privateKeyFromPem(readFileSync(keyFile, 'utf8')) as forge.pki.rsa.PrivateKey, pem };
  }
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = newCertificate(keys.publicKey, 10);
  const attrs = [{ name: 'commonName', value: 'k8s4ai-ca' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  const pem = forge.pki.certificateToPem(cert);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(certFile, pem);
  writeFileSync(keyFile, forge.pki.privateKeyToPem(keys.privateKey), { mode: 0o600 });
  return { cert, key: keys.privateKey, pem };
}

/** A serving certificate for `addresses` (plus localhost and this host), signed by the data dir's CA. */
export function servingCertificates(dir: string, addresses: string[]): ServingCerts {
  const ca = loadOrCreateCa(dir);
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = newCertificate(keys.publicKey, 1);
  cert.setSubject([{ name: 'commonName', value: 'k8s4ai-apiserver' }]);
  cert.setIssuer(ca.cert.subject.attributes);
  const names = [...new Set([...addresses, '127.0.0.1', 'localhost', hostname()])];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { caPem: ca.pem, certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}
