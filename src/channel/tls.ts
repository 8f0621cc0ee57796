// Mutual TLS for the TCP sync link (Ctsync { TLS { CAFile CertFile KeyFile } }).
// Both ends present a certificate issued by the configured CA and verify the
// other's; TLS 1.3 only. The peer's identity is its address: the certificate
// must carry an IP subjectAltName equal to the link's destination address
// (the configuration names the peer by address only, so a DNS name could only
// be checked by resolving it at handshake time, which a failover path should
// not depend on; DNS SANs are therefore not consulted). This holds in both
// directions: the server checks the client's certificate against its own
// configured destination, which is the client's address.
//
// This module loads and checks the files (clear errors naming the file; a key
// file readable by group or others is refused, as the sealed link's key file)
// and classifies handshake errors for counting and logging; tcp.ts drives the
// sockets.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { ConfigError } from '../errors.js';

/** The three files of `Ctsync { TLS { ... } }` (config.ctsync.tls). */
export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export const TLS_MIN_VERSION = 'TLSv1.3' as const;
/** A connection that has not finished its handshake by then is dropped and counted. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Handshakes in progress on the server side at once; more are refused (and counted). */
export const TLS_MAX_PENDING = 4;

export interface TlsMaterial {
  readonly files: TlsFiles;
  /** Built once per load (client side). */
  readonly context: tls.SecureContext;
  /**
   * The same material as options (tls.Server builds its own context from these
   * and ignores `secureContext`). Kept off JSON/inspect output.
   */
  readonly options: Pick<tls.TlsOptions, 'ca' | 'cert' | 'key' | 'minVersion'>;
  /** Our certificate (for logs: subject, validity). */
  readonly cert: X509Certificate;
}

export interface TlsLoadOptions {
  /** Refuse a key file with any group or other permission bits (default true). */
  checkMode?: boolean;
}

type Role = 'CA file' | 'certificate file' | 'key file';

function readPem(path: string, role: Role, checkMode: boolean): string {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new ConfigError('CTSYNC_ERR_CONFIG_IO', `TLS ${role} is not a regular file`, path, undefined);
    if (role === 'key file' && checkMode && (st.mode & 0o077) !== 0) {
      throw new ConfigError('CTSYNC_ERR_CONFIG_INVALID',
        `TLS key file is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run chmod 600 ${path}`,
        path, undefined);
    }
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError('CTSYNC_ERR_CONFIG_IO', `cannot read TLS ${role} (${code})`, path, undefined, { errno: code });
  }
  return text;
}

function invalid(path: string, message: string): ConfigError {
  return new ConfigError('CTSYNC_ERR_CONFIG_INVALID', message, path, undefined);
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function parseCerts(path: string, text: string, role: Role): X509Certificate[] {
  const blocks = text.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) throw invalid(path, `TLS ${role}: no PEM certificate (-----BEGIN CERTIFICATE-----) in file`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw invalid(path, `TLS ${role}: certificate ${i + 1} does not parse (${(e as Error).message})`);
    }
  });
}

/**
 * Reads and checks the CA, certificate and key files and builds the TLS
 * context. Throws ConfigError naming the offending file: unreadable
 * (CTSYNC_ERR_CONFIG_IO), key readable by others, no/garbled PEM, an
 * encrypted key, a CA file whose certificates are not CAs, or a certificate
 * that does not belong to the key (CTSYNC_ERR_CONFIG_INVALID). Error messages
 * never contain key material.
 */
export function loadTls(files: TlsFiles, opts: TlsLoadOptions = {}): TlsMaterial {
  const checkMode = opts.checkMode ?? true;
  const caText = readPem(files.caFile, 'CA file', checkMode);
  const certText = readPem(files.certFile, 'certificate file', checkMode);
  const keyText = readPem(files.keyFile, 'key file', checkMode);

  const cas = parseCerts(files.caFile, caText, 'CA file');
  for (const [i, c] of cas.entries()) {
    if (!c.ca) throw invalid(files.caFile, `TLS CA file: certificate ${i + 1} (${c.subject.replace(/\n/g, ', ')}) is not a CA certificate`);
  }
  const chain = parseCerts(files.certFile, certText, 'certificate file');
  const cert = chain[0]!;

  if (/ENCRYPTED/.test(keyText)) {
    throw invalid(files.keyFile, 'TLS key file: the private key is encrypted; ctsync has no passphrase source, store it unencrypted (mode 0600)');
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyText)) {
    throw invalid(files.keyFile, 'TLS key file: no PEM private key (-----BEGIN PRIVATE KEY-----) in file');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyText);
  } catch {
    throw invalid(files.keyFile, 'TLS key file: the private key does not parse');
  }
  if (!cert.checkPrivateKey(key)) {
    throw invalid(files.certFile, `TLS certificate does not match the private key in ${files.keyFile}`);
  }
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext({ ca: caText, cert: certText, key: keyText, minVersion: TLS_MIN_VERSION });
  } catch (e) {
    throw invalid(files.certFile, `TLS setup from ${files.caFile}, ${files.certFile}, ${files.keyFile} failed: ${(e as Error).message}`);
  }
  const options = { ca: caText, cert: certText, key: keyText, minVersion: TLS_MIN_VERSION };
  const m = { files, context, cert } as TlsMaterial;
  Object.defineProperty(m, 'options', { value: options, enumerable: false });
  return m;
}

/** Strips an IPv6 zone and the IPv4-mapped prefix (as udp.ts normalizeAddress). */
function bareAddress(a: string): string {
  let s = a.toLowerCase();
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (s.startsWith('::ffff:') && s.includes('.')) s = s.slice(7);
  return s;
}

/**
 * Checks that `cert` names the peer: an IP subjectAltName equal to `peerAddress`
 * (the link's configured destination). Returns the error, or undefined.
 */
export function checkPeerIdentity(peerAddress: string, cert: tls.PeerCertificate | null | undefined): Error | undefined {
  const addr = bareAddress(peerAddress);
  if (!cert || Object.keys(cert).length === 0) return new Error('peer presented no certificate');
  if (!isIP(addr)) return new Error(`peer identity ${peerAddress} is not an IP address`);
  // Node compares IP hosts against IP Address SANs only (canonicalised, so IPv6 spellings agree).
  return tls.checkServerIdentity(addr, cert);
}

/** X.509 verification results as Node names them (authorizationError / error.code). */
const CERT_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD', 'CERT_REVOKED',
  'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_CHAIN_TOO_LONG',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', 'HOSTNAME_MISMATCH',
]);

export interface TlsFailure {
  /** Short reason for logs: an OpenSSL/Node code, with the message when it says more. */
  reason: string;
  /** The peer's certificate was missing, untrusted, out of its validity period or named someone else. */
  rejectedPeer: boolean;
}

/** Classifies a handshake error; `authorizationError` is the socket's, when Node recorded one. */
export function classifyTlsError(err: Error & { code?: string }, authorizationError?: string | Error | null): TlsFailure {
  const authz = typeof authorizationError === 'string' ? authorizationError : authorizationError?.message;
  if (authz) return { reason: authz, rejectedPeer: true };
  const code = err.code ?? '';
  if (CERT_CODES.has(code)) {
    return { reason: code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? `${code}: ${err.message}` : code, rejectedPeer: true };
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_HTTP_REQUEST') {
    return { reason: `${code} (not a TLS client: plaintext on a TLS link?)`, rejectedPeer: false };
  }
  return { reason: code || err.message, rejectedPeer: false };
}
