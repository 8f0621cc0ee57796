// Two ctsync daemons in namespaces over a TCP sync link with mutual TLS
// (Ctsync { TLS { CAFile CertFile KeyFile } }), certificates made by openssl
// at test time. fw1, fw2 and an attacker namespace att share one bridge.
// AcceptOnlyPeer is off so that the source filter lets att's connections
// through to the TLS layer: TLS alone must keep att out. Entries injected on
// fw1 replicate to fw2; att with a self-signed certificate claiming fw1's
// address, with a certificate from another CA, and in plaintext, gets
// nothing into fw2, and fw2 counts and logs each refusal.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { have, isRoot, waitFor } from '../helpers/netns.js';
import { makeSegmentPair, renderConfig, type SegmentPair, type SyncNode } from '../helpers/syncpair.js';
import { injectBulk, tcpEntries } from '../helpers/bulk.js';
import { TlsFixtures, haveOpenssl } from '../fixtures/tls/gen.js';
import { encodeConntrackMsg } from '../../src/wire/conntrack.js';
import { FLAG, MSG } from '../../src/wire/header.js';
import { AF_INET, IPPROTO, IPS, type Conntrack } from '../../src/model/conntrack.js';
import type { TlsFiles } from '../../src/channel/tls.js';

const FW1 = '172.30.1.1';
const FW2 = '172.30.1.2';
const ATT = '172.30.1.66';
const PORT = 3790;

interface Lan extends SegmentPair {
  fx: TlsFixtures;
  /** fw2's own files (what its config names). */
  f2: TlsFiles;
  evil: TlsFiles;
  otherCa: TlsFiles;
}

/** renderConfig's UDP block turned into a TCP one, and the Ctsync section with TLS. */
function tcpTlsConfig(node: SyncNode, files: TlsFiles): string {
  const text = renderConfig(node.cfg, node.dir).replace('\tUDP {', '\tTCP {');
  if (!text.includes('\tTCP {')) throw new Error('config template changed: no UDP block to turn into TCP');
  return `${text}Ctsync {
\tAcceptOnlyPeer off
\tTLS {
\t\tCAFile ${files.caFile}
\t\tCertFile ${files.certFile}
\t\tKeyFile ${files.keyFile}
\t}
}
`;
}

function makeLan(tag: string): Lan {
  const seg = makeSegmentPair(tag, () => ({ a: { port: PORT }, b: { port: PORT } }));
  try {
    const fx = new TlsFixtures(join(seg.dir, 'pki'));
    fx.ca('site');
    fx.ca('other');
    const f1 = fx.leaf('fw1', 'site', { ips: [FW1] });
    const f2 = fx.leaf('fw2', 'site', { ips: [FW2] });
    const evil = fx.selfSigned('evil', [FW1]);
    const otherCa = fx.leaf('other-fw1', 'other', { ips: [FW1] });
    writeFileSync(seg.a.confPath, tcpTlsConfig(seg.a, f1));
    writeFileSync(seg.b.confPath, tcpTlsConfig(seg.b, f2));
    return { ...seg, fx, f2, evil, otherCa };
  } catch (e) {
    void seg.cleanup();
    throw e;
  }
}

/** A forged entry: 10.66.0.x → 198.51.100.66:22, ESTABLISHED. */
function forged(i: number): Conntrack {
  return {
    orig: { l3: AF_INET, src: `10.66.0.${i}`, dst: '198.51.100.66', proto: IPPROTO.TCP, sport: 40000 + i, dport: 22 },
    reply: { l3: AF_INET, src: '198.51.100.66', dst: `10.66.0.${i}`, proto: IPPROTO.TCP, sport: 22, dport: 40000 + i },
    status: IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED, timeout: 3600, tcp: { state: 3 },
  };
}

/** One FTFW datagram of CT_NEW messages with HELLO (what a receiver takes without a sequence check). */
function forgedDatagram(first: number, n: number): Buffer {
  const buf = Buffer.alloc(1400);
  let off = 0;
  for (let k = 0; k < n; k++) off += encodeConntrackMsg(buf, off, MSG.CT_NEW, FLAG.HELLO, 1 + k, forged(first + k));
  return Buffer.from(buf.subarray(0, off));
}

/**
 * Runs in att: connects to fw2's sync port (TLS with `files`, or plaintext when null),
 * writes the forged datagrams a few times, and reports what it saw.
 */
function attack(lan: Lan, files: TlsFiles | null, data: Buffer): { secure: boolean; error?: string } {
  const script = `
const net = require('node:net'); const tls = require('node:tls'); const fs = require('node:fs');
const [filesJson, hex] = process.argv.slice(1);
const files = JSON.parse(filesJson);
const data = Buffer.from(hex, 'hex');
const out = { secure: false };
const opts = { host: '${FW2}', port: ${PORT}, localAddress: '${ATT}' };
const s = files
  ? tls.connect({ ...opts, minVersion: 'TLSv1.3', rejectUnauthorized: false, ca: fs.readFileSync(files.caFile),
      cert: fs.readFileSync(files.certFile), key: fs.readFileSync(files.keyFile) })
  : net.connect(opts);
const burst = () => { for (let i = 0; i < 5; i++) s.write(data); };
s.on(files ? 'secureConnect' : 'connect', () => { out.secure = !!files; burst(); setTimeout(() => { if (!s.destroyed) burst(); }, 300); });
s.on('error', (e) => { out.error = e.code || e.message; });
s.on('data', () => {});
s.on('close', () => { console.log(JSON.stringify(out)); process.exit(0); });
setTimeout(() => s.destroy(), 3000);
`;
  const r = lan.att.run(process.execPath, ['-e', script, JSON.stringify(files), data.toString('hex')], { timeoutMs: 30_000 });
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { secure: boolean; error?: string };
}

/** Runs in att: the CN of the certificate fw2's sync port presents (fw2 then refuses att, which has none). */
function serverCertName(lan: Lan): string {
  const script = `
const tls = require('node:tls');
const s = tls.connect({ host: '${FW2}', port: ${PORT}, localAddress: '${ATT}', minVersion: 'TLSv1.3', rejectUnauthorized: false });
s.on('secureConnect', () => { console.log(s.getPeerCertificate().subject.CN); process.exit(0); });
s.on('error', (e) => { console.log('error ' + (e.code || e.message)); process.exit(0); });
setTimeout(() => { console.log('timeout'); process.exit(0); }, 5000);
`;
  return lan.att.run(process.execPath, ['-e', script], { timeoutMs: 30_000 }).stdout.trim().split('\n').pop()!;
}

function externalLines(node: SyncNode, match: string): string[] {
  return node.cli(['-e']).stdout.split('\n').filter((l) => l.includes(match));
}

function linkCounters(node: SyncNode): Record<string, number> {
  return (JSON.parse(node.cli(['-s', '--json']).stdout) as { channel: Record<string, number> }).channel;
}

describe.skipIf(!isRoot || !haveOpenssl || !have('ip'))('TCP sync link with mutual TLS between two ctsync daemons (namespaces)', () => {
  let lan: Lan | null = null;

  afterEach(async () => {
    if (lan) for (const n of [lan.a, lan.b]) if (n.proc?.exitCode !== null) console.error(n.output, n.log());
    await lan?.cleanup();
    lan = null;
  });

  it('replicates injected entries over TLS; an attacker with a self-signed, a foreign-CA or no certificate gets nothing in', async () => {
    lan = makeLan('tl');
    const l = lan;
    await l.a.start();
    await l.b.start();

    expect(await injectBulk(l.fw1, tcpEntries(200))).toBe(200);
    await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === 200, '200 entries on fw2 over TLS', 30_000, 250);
    const before = linkCounters(l.b);
    // The daemons run the TCP link with TLS (fails here if config.ctsync.tls is not passed to the channel).
    expect(before['tlsHandshakeFailures'], `fw2 link counters ${JSON.stringify(before)}`).toBeTypeOf('number');
    expect(before).toMatchObject({ connected: true, peerConnected: true });

    const selfSigned = attack(l, l.evil, forgedDatagram(1, 3));
    const foreign = attack(l, l.otherCa, forgedDatagram(10, 3));
    const plain = attack(l, null, forgedDatagram(20, 3));
    console.log('attacker results', JSON.stringify({ selfSigned, foreign, plain }));

    await waitFor(() => {
      const c = linkCounters(l.b);
      return c['tlsRejectedPeers']! - before['tlsRejectedPeers']! >= 2 && c['tlsHandshakeFailures']! - before['tlsHandshakeFailures']! >= 3;
    }, 'fw2 counted the three refused handshakes', 20_000, 250);
    const after = linkCounters(l.b);
    console.log('fw2 link counters after the attack', JSON.stringify(after));
    expect(after['tlsRejectedPeers']! - before['tlsRejectedPeers']!).toBe(2);
    expect(after['tlsHandshakeFailures']! - before['tlsHandshakeFailures']!).toBe(3);
    expect(externalLines(l.b, '10.66.')).toEqual([]);
    // Logged with the peer address and the reason (rate-limited: at least the first one).
    const log = l.b.log();
    expect(log).toMatch(new RegExp(`"peer":"${ATT.replace(/\./g, '\\.')}"`));
    expect(log).toMatch(/"reason":"(DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|ERR_SSL_WRONG_VERSION_NUMBER[^"]*)"/);

    // The real peer was never displaced, and replication carries on.
    expect(await injectBulk(l.fw1, tcpEntries(100, 200))).toBe(100);
    await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === 300, '300 entries on fw2 after the attack', 30_000, 250);
    expect(externalLines(l.b, '10.66.')).toEqual([]);
    for (const n of [l.a, l.b]) expect(n.proc?.exitCode).toBe(null);
    expect(readFileSync(l.b.confPath, 'utf8')).toContain('TCP {');
  });

  it('SIGHUP loads renewed certificates for new connections without dropping the link; a restarted peer reconnects', async () => {
    lan = makeLan('tr');
    const l = lan;
    await l.a.start();
    await l.b.start({ CTSYNC_LOG_LEVEL: 'info' }); // the reload is logged at info
    expect(await injectBulk(l.fw1, tcpEntries(100))).toBe(100);
    await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === 100, '100 entries on fw2 over TLS', 30_000, 250);
    expect(serverCertName(l)).toBe('fw2');

    // Renewal in place: a new certificate and key for fw2 under the same file names, then SIGHUP.
    const renewed = l.fx.leaf('fw2-renewed', 'site', { ips: [FW2] });
    copyFileSync(renewed.certFile, l.f2.certFile);
    copyFileSync(renewed.keyFile, l.f2.keyFile);
    process.kill(l.b.pid, 'SIGHUP');
    await waitFor(() => l.b.log().includes('TLS certificates reloaded'), 'fw2 logs the reload', 10_000, 100);
    expect(serverCertName(l)).toBe('fw2-renewed');
    // The connections that were up stay up, and carry on.
    expect(await injectBulk(l.fw1, tcpEntries(100, 100))).toBe(100);
    await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === 200, '200 entries on fw2 after the reload', 30_000, 250);

    // A broken renewal (a key that does not match the certificate) is refused; the old material stays.
    copyFileSync(l.evil.keyFile, l.f2.keyFile);
    process.kill(l.b.pid, 'SIGHUP');
    await waitFor(() => l.b.log().includes('certificate reload failed'), 'fw2 logs the failed reload', 10_000, 100);
    expect(serverCertName(l)).toBe('fw2-renewed');

    // fw1 restarts: it verifies fw2's renewed certificate and replication resumes.
    await l.a.stop();
    await l.a.start();
    expect(await injectBulk(l.fw1, tcpEntries(100, 200))).toBe(100);
    await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === 300, '300 entries on fw2 after fw1 restarted', 30_000, 250);
    for (const n of [l.a, l.b]) expect(n.proc?.exitCode).toBe(null);
  });
});
