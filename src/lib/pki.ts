// A small certificate authority for serving TLS off loopback: `up` makes a CA once, keeps
// it in <data-dir>/pki, and signs a serving certificate for the addresses it listens on.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import forge from 'node-forge';

export interface ServingCerts {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** RSA keys from Node's native crypto (forge's pure-JS generation takes seconds). */
function newKeyPair(): { publicKey: forge.pki.PublicKey; privateKey: forge.pki.rsa.PrivateKey; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKey: forge.pki.publicKeyFromPem(publicKey), privateKey: forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey, privatePem: privateKey };
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
  const keys = newKeyPair();
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
  writeFileSync(keyFile, keys.privatePem, { mode: 0o600 });
  return { cert, key: keys.privateKey, pem };
}

/** A serving certificate for `addresses` (plus localhost and this host), signed by the data dir's CA. */
export function servingCertificates(dir: string, addresses: string[]): ServingCerts {
  const ca = loadOrCreateCa(dir);
  const names = [...new Set([...addresses, '127.0.0.1', 'localhost', hostname()])];
  const reused = reuseServing(dir, ca.pem, names);
  if (reused) return reused;
  const keys = newKeyPair();
  const cert = newCertificate(keys.publicKey, 1);
  cert.setSubject([{ name: 'commonName', value: 'k8s4ai-apiserver' }]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  const out = { caPem: ca.pem, certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem };
  writeFileSync(join(dir, 'apiserver.crt'), out.certPem);
  writeFileSync(join(dir, 'apiserver.key'), out.keyPem, { mode: 0o600 });
  return out;
}

/** The serving certificate from an earlier start, if it still covers these names for a while. */
function reuseServing(dir: string, caPem: string, names: string[]): ServingCerts | undefined {
  const certFile = join(dir, 'apiserver.crt');
  const keyFile = join(dir, 'apiserver.key');
  if (!existsSync(certFile) || !existsSync(keyFile)) return undefined;
  const certPem = readFileSync(certFile, 'utf8');
  const x509 = new X509Certificate(certPem);
  const san = x509.subjectAltName ?? '';
  const covers = names.every((n) => san.includes(isIP(n) ? `IP Address:${n}` : `DNS:${n}`));
  const fresh = Date.parse(x509.validTo) - Date.now() > 30 * 24 * 3600 * 1000;
  if (!covers || !fresh || !x509.checkIssued(new X509Certificate(caPem))) return undefined;
  return { caPem, certPem, keyPem: readFileSync(keyFile, 'utf8') };
}
