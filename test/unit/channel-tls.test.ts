// Mutual TLS on the TCP sync link, on loopback with certificates made by
// openssl at test time: both ends verify each other against the CA and the
// peer's address; wrong-CA, certificate-less, plaintext, expired,
// not-yet-valid and wrong-identity peers are refused, counted and logged;
// loading the files fails clearly, naming the file.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import tls from 'node:tls';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { TcpChannel, type TcpLinkConfig } from '../../src/channel/tcp.js';
import { loadTls, type TlsFiles } from '../../src/channel/tls.js';
import type { LinkReader } from '../../src/channel/link.js';
import type { SockoptBinding } from '../../src/channel/sockopt.js';
import { ConfigError } from '../../src/errors.js';
import { waitFor } from '../helpers/netns.js';
import { TlsFixtures, haveOpenssl } from '../fixtures/tls/gen.js';

const A = '127.0.0.1';
const B = '127.0.0.2';
const DAY = 86_400_000;

function msg(len: number, tag: number): Buffer {
  const b = Buffer.alloc(len, tag & 0xff);
  b[0] = 0x10;
  b.writeUInt16BE(len, 2);
  b.writeUInt32BE(tag, 4);
  return b;
}

const lo: LinkReader = { info: (ifname) => ({ ifname, ifindex: 1, mtu: 1500 }), status: () => 'RUNNING' };
const so = async (): Promise<SockoptBinding> => ({ setsockoptFd: () => {} });

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

const open: { close(): unknown }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

interface Logged { lines: Record<string, unknown>[] }

function chan(self: string, peer: string, port: number, files: TlsFiles | null, log?: Logged): TcpChannel {
  const cfg: TcpLinkConfig = { kind: 'tcp', ipv4Address: self, destination: peer, port, interface: 'lo', ...(files ? { tls: files } : {}) };
  const logger = log ? pino({ level: 'warn' }, { write: (s: string) => { log.lines.push(JSON.parse(s) as Record<string, unknown>); } }) : undefined;
  const c = new TcpChannel(cfg, { sockopt: so, links: lo, ...(logger ? { log: logger } : {}) });
  open.push(c);
  return c;
}

/** A raw TLS client from `from` to B:port with the given files; resolves with what happened. */
function rawClient(port: number, from: string, f: Partial<TlsFiles>, payload?: Buffer): Promise<{ secure: boolean; error?: string }> {
  return new Promise((resolve) => {
    let secure = false;
    let error: string | undefined;
    const c = tls.connect({
      host: B, port, localAddress: from, minVersion: 'TLSv1.3',
      ca: readFileSync(f.caFile ?? fx.dir + '/main.ca.pem'),
      ...(f.certFile ? { cert: readFileSync(f.certFile), key: readFileSync(f.keyFile!) } : {}),
      // The attacker does not care who the server is.
      rejectUnauthorized: false,
    } as tls.ConnectionOptions);
    open.push({ close: () => c.destroy() });
    c.on('secureConnect', () => { secure = true; if (payload) c.write(payload); });
    c.on('error', (e: Error & { code?: string }) => { error = e.code ?? e.message; });
    c.on('close', () => resolve({ secure, ...(error ? { error } : {}) }));
    c.on('data', () => {});
    setTimeout(() => c.destroy(), 3000);
  });
}

let fx: TlsFixtures;
let files: Record<string, TlsFiles>;

describe.skipIf(!haveOpenssl)('TCP sync link over mutual TLS (loopback, openssl-made certificates)', () => {
  beforeAll(() => {
    fx = new TlsFixtures();
    fx.ca('main');
    fx.ca('other');
    const now = Date.now();
    files = {
      a: fx.leaf('a', 'main', { ips: [A] }),
      b: fx.leaf('b', 'main', { ips: [B] }),
      aOther: fx.leaf('a-other', 'other', { ips: [A] }),
      aExpired: fx.leaf('a-expired', 'main', { ips: [A], notBefore: new Date(now - 10 * DAY), notAfter: new Date(now - DAY) }),
      aFuture: fx.leaf('a-future', 'main', { ips: [A], notBefore: new Date(now + DAY), notAfter: new Date(now + 10 * DAY) }),
      aWrongIp: fx.leaf('a-wrongip', 'main', { ips: ['127.0.0.9'] }),
      bWrongIp: fx.leaf('b-wrongip', 'main', { ips: ['127.0.0.9'] }),
      evil: fx.selfSigned('evil', [A]),
    };
  }, 60_000);

  afterAll(() => fx?.cleanup());

  describe('loadTls', () => {
    it('loads matching files and builds a TLS 1.3 context', () => {
      const m = loadTls(files.a!);
      expect(m.cert.subjectAltName).toBe(`IP Address:${A}`);
      expect(m.files).toEqual(files.a);
    });

    it('names the file that cannot be read', () => {
      for (const k of ['caFile', 'certFile', 'keyFile'] as const) {
        const f = { ...files.a!, [k]: join(fx.dir, `missing-${k}.pem`) };
        expect(() => loadTls(f)).toThrow(ConfigError);
        expect(() => loadTls(f)).toThrow(`missing-${k}.pem: cannot read TLS`);
      }
    });

    it('refuses a key file readable by group or others, naming it', () => {
      const copy = join(fx.dir, 'loose.key');
      writeFileSync(copy, readFileSync(files.a!.keyFile));
      chmodSync(copy, 0o640);
      expect(() => loadTls({ ...files.a!, keyFile: copy })).toThrow(/loose\.key: TLS key file is accessible by group or others \(mode 0640\); run chmod 600/);
      chmodSync(copy, 0o604);
      expect(() => loadTls({ ...files.a!, keyFile: copy })).toThrow(/mode 0604/);
      expect(() => loadTls({ ...files.a!, keyFile: copy }, { checkMode: false })).not.toThrow();
    });

    it('refuses garbage, a non-CA CA file, an encrypted key and a certificate that is not the key\'s', () => {
      const junk = join(fx.dir, 'junk.pem');
      writeFileSync(junk, 'not a certificate\n');
      expect(() => loadTls({ ...files.a!, caFile: junk })).toThrow(/junk\.pem: TLS CA file: no PEM certificate/);
      expect(() => loadTls({ ...files.a!, certFile: junk })).toThrow(/junk\.pem: TLS certificate file: no PEM certificate/);
      const badKey = join(fx.dir, 'junk.key');
      writeFileSync(badKey, 'nothing here\n', { mode: 0o600 });
      expect(() => loadTls({ ...files.a!, keyFile: badKey })).toThrow(/junk\.key: TLS key file: no PEM private key/);
      expect(() => loadTls({ ...files.a!, caFile: files.b!.certFile })).toThrow(/b\.pem: TLS CA file: certificate 1 .* is not a CA certificate/);
      const enc = join(fx.dir, 'enc.key');
      writeFileSync(enc, '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n', { mode: 0o600 });
      expect(() => loadTls({ ...files.a!, keyFile: enc })).toThrow(/enc\.key: TLS key file: the private key is encrypted/);
      expect(() => loadTls({ ...files.a!, keyFile: files.b!.keyFile })).toThrow(/a\.pem: TLS certificate does not match the private key in .*b\.key/);
    });

    it('open() rejects with the loading error', async () => {
      const c = chan(A, B, await freePort(), { ...files.a!, keyFile: join(fx.dir, 'nope.key') });
      await expect(c.open()).rejects.toThrow(/nope\.key: cannot read TLS key file \(ENOENT\)/);
    });
  });

  it('authenticates both ways, carries data both ways, keeps MTU - 40 - 1 and plain-TCP stats shape plus TLS counters', async () => {
    const port = await freePort();
    const a = chan(A, B, port, files.a!);
    const b = chan(B, A, port, files.b!);
    const gotA: Buffer[] = [];
    const gotB: Buffer[] = [];
    a.onMessage((d) => gotA.push(Buffer.from(d)));
    b.onMessage((d, from) => { gotB.push(Buffer.from(d)); expect(from.address).toBe(A); });
    await a.open();
    await b.open();
    expect(a.maxDatagram).toBe(1459);
    await waitFor(() => a.stats().connected && b.stats().connected && a.stats().peerConnected && b.stats().peerConnected, 'TLS both ways', 8000);
    const sent: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      const m = msg(8 + (i % 40) * 4, i);
      sent.push(m);
      a.send(m);
    }
    // A datagram of maxDatagram bytes made of several messages arrives whole.
    const big = Buffer.concat([msg(1000, 500), msg(456, 501)]);
    expect(big.length).toBeLessThanOrEqual(a.maxDatagram);
    a.send(big);
    b.send(msg(16, 7));
    await waitFor(() => Buffer.concat(gotB).length === Buffer.concat([...sent, big]).length && gotA.length === 1, 'data both ways', 8000);
    expect(Buffer.concat(gotB).equals(Buffer.concat([...sent, big]))).toBe(true);
    expect(gotA[0]).toEqual(msg(16, 7));
    expect(a.stats()).toMatchObject({ packetsSent: 101, errorsSent: 0, tlsHandshakeFailures: 0, tlsRejectedPeers: 0 });
    expect(b.stats()).toMatchObject({ bytesRecv: Buffer.concat([...sent, big]).length, tlsHandshakeFailures: 0, tlsRejectedPeers: 0 });
  });

  it('queues while the peer is away and reconnects over TLS after the peer restarts', async () => {
    const port = await freePort();
    const a = chan(A, B, port, files.a!);
    await a.open();
    a.send(msg(8, 1));
    expect(a.stats()).toMatchObject({ errorQueue: 1, connected: false });
    let b = chan(B, A, port, files.b!);
    let got: Buffer[] = [];
    b.onMessage((d) => got.push(Buffer.from(d)));
    await b.open();
    await waitFor(() => got.length === 1, 'queued datagram after connect', 8000);
    await b.close();
    await waitFor(() => !a.stats().connected, 'disconnect seen', 5000);
    b = chan(B, A, port, files.b!);
    got = [];
    b.onMessage((d) => got.push(Buffer.from(d)));
    await b.open();
    await waitFor(() => a.stats().connected, 'reconnection', 8000);
    a.send(msg(8, 42));
    await waitFor(() => got.length === 1, 'message after reconnect', 5000);
    expect(got[0]).toEqual(msg(8, 42));
    expect(a.stats().tlsHandshakeFailures).toBe(0);
  });

  it('refuses a client whose certificate comes from another CA: counted and logged with address and reason', async () => {
    const port = await freePort();
    const log: Logged = { lines: [] };
    const b = chan(B, A, port, files.b!, log);
    const got: Buffer[] = [];
    b.onMessage((d) => got.push(Buffer.from(d)));
    await b.open();
    // A raw client, so that no retry muddies the count.
    const r = await rawClient(port, A, { caFile: files.b!.caFile, certFile: files.aOther!.certFile, keyFile: files.aOther!.keyFile }, msg(8, 666));
    await waitFor(() => b.stats().tlsRejectedPeers === 1, 'rejection counted', 5000);
    expect(b.stats()).toMatchObject({ tlsHandshakeFailures: 1, tlsRejectedPeers: 1, peerConnected: false, packetsRecv: 0 });
    expect(got).toEqual([]);
    expect(r.secure).toBe(true); // TLS 1.3: the client finishes first; the server then hangs up.
    const line = log.lines.find((l) => l['msg'] === 'refused sync connection: TLS handshake failed');
    expect(line).toMatchObject({ peer: A, reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', ifname: 'lo' });

    // A TcpChannel configured with the other CA fails from both sides: its server check fails too.
    const a = chan(A, B, port, files.aOther!);
    await a.open();
    await waitFor(() => (a.stats().tlsRejectedPeers ?? 0) >= 1, 'the other-CA client rejects our server certificate', 5000);
    expect(a.stats().connected).toBe(false);
    expect(b.stats().peerConnected).toBe(false);
  });

  it('refuses a client without a certificate', async () => {
    const port = await freePort();
    const b = chan(B, A, port, files.b!);
    await b.open();
    const r = await rawClient(port, A, { caFile: files.b!.caFile }, msg(8, 1));
    await waitFor(() => b.stats().tlsHandshakeFailures === 1, 'failure counted', 5000);
    expect(b.stats()).toMatchObject({ tlsRejectedPeers: 1, peerConnected: false, packetsRecv: 0 });
    expect(r.error).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
  });

  it('refuses a plain TCP client (a TcpChannel without TLS, and raw bytes): a handshake failure, not a rejected certificate', async () => {
    const port = await freePort();
    const log: Logged = { lines: [] };
    const b = chan(B, A, port, files.b!, log);
    const got: Buffer[] = [];
    b.onMessage((d) => got.push(Buffer.from(d)));
    await b.open();
    const raw = net.connect({ host: B, port, localAddress: A });
    raw.on('error', () => {});
    await new Promise((r) => raw.once('connect', r));
    raw.write(Buffer.concat([msg(8, 1), msg(8, 2)]));
    await waitFor(() => b.stats().tlsHandshakeFailures === 1, 'plaintext refused', 5000);
    await waitFor(() => raw.destroyed || raw.readableEnded, 'plaintext connection closed', 5000);
    const plain = chan(A, B, port, null);
    await plain.open();
    // OpenSSL reads the first 5 bytes as a record header: version byte 0x10 flags 0x01 is refused at once.
    // (Flags 0x03 would read as SSLv3 with a 2 KiB record: refused when 2 KiB arrived or at the handshake timeout.)
    plain.send(Buffer.concat([msg(8, 1), msg(8, 2)]));
    await waitFor(() => b.stats().tlsHandshakeFailures! >= 2, 'plain channel refused', 5000);
    expect(got).toEqual([]);
    expect(b.stats()).toMatchObject({ tlsRejectedPeers: 0, packetsRecv: 0, peerConnected: false });
    expect(log.lines.find((l) => l['peer'] === A)?.['reason']).toMatch(/ERR_SSL_WRONG_VERSION_NUMBER .*plaintext/);
    // The plain channel's own stats have no TLS fields.
    expect(Object.keys(plain.stats()).some((k) => k.startsWith('tls'))).toBe(false);
  });

  it('refuses an expired and a not-yet-valid client certificate', async () => {
    const port = await freePort();
    const log: Logged = { lines: [] };
    const b = chan(B, A, port, files.b!, log);
    await b.open();
    await rawClient(port, A, files.aExpired!, msg(8, 1));
    await waitFor(() => b.stats().tlsRejectedPeers === 1, 'expired refused', 5000);
    expect(log.lines.at(-1)).toMatchObject({ peer: A, reason: 'CERT_HAS_EXPIRED' });
    // The log is rate-limited per direction; the counters are exact.
    await rawClient(port, A, files.aFuture!, msg(8, 2));
    await waitFor(() => b.stats().tlsRejectedPeers === 2, 'not-yet-valid refused', 5000);
    expect(b.stats()).toMatchObject({ tlsHandshakeFailures: 2, peerConnected: false, packetsRecv: 0 });
  });

  it('a client refuses a server whose certificate is expired', async () => {
    const port = await freePort();
    const bExpired = fx.leaf('b-expired', 'main', { ips: [B], notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
    const b = chan(B, A, port, bExpired);
    await b.open();
    const log: Logged = { lines: [] };
    const a = chan(A, B, port, files.a!, log);
    await a.open();
    await waitFor(() => (a.stats().tlsRejectedPeers ?? 0) >= 1, 'client rejects expired server', 5000);
    expect(a.stats().connected).toBe(false);
    expect(log.lines[0]).toMatchObject({ peer: B, reason: 'CERT_HAS_EXPIRED' });
  });

  it('checks identity: the certificate must carry the configured peer address as an IP SAN, both directions', async () => {
    // Client cert from the right CA but for another address: the server refuses it.
    const port = await freePort();
    const log: Logged = { lines: [] };
    const b = chan(B, A, port, files.b!, log);
    await b.open();
    await rawClient(port, A, files.aWrongIp!, msg(8, 1));
    await waitFor(() => b.stats().tlsRejectedPeers === 1, 'wrong identity refused', 5000);
    expect(b.stats().peerConnected).toBe(false);
    expect(String(log.lines.at(-1)?.['reason'])).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list: 127\.0\.0\.9/);
    // Server cert for another address: the client refuses the server.
    const port2 = await freePort();
    const b2 = chan(B, A, port2, files.bWrongIp!);
    await b2.open();
    const a = chan(A, B, port2, files.a!);
    await a.open();
    await waitFor(() => (a.stats().tlsRejectedPeers ?? 0) >= 1, 'client rejects wrong-identity server', 5000);
    expect(a.stats().connected).toBe(false);
  });

  it('refuses a self-signed certificate claiming the peer address, and a client that never speaks is not the peer', async () => {
    const port = await freePort();
    const b = chan(B, A, port, files.b!);
    await b.open();
    const silent = net.connect({ host: B, port, localAddress: A });
    silent.on('error', () => {});
    await new Promise((r) => silent.once('connect', r));
    await rawClient(port, A, files.evil!, msg(8, 1));
    await waitFor(() => b.stats().tlsRejectedPeers === 1, 'self-signed refused', 5000);
    expect(b.stats().peerConnected).toBe(false);
    // The legitimate peer still gets in while the silent connection is pending.
    const a = chan(A, B, port, files.a!);
    await a.open();
    await waitFor(() => a.stats().connected && b.stats().peerConnected, 'real peer connected', 8000);
    silent.destroy();
  });
});
