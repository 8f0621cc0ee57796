// An attacker on the sync segment. fw1, fw2 and att share one bridge; att
// holds fw1's address (without answering ARP for it, so fw2 keeps talking to the real fw1) and sends
// forged, replayed, bit-flipped, truncated, minimal and reordered datagrams and
// a far-ahead HELLO to fw2's sync port with fw1's source address.
// With `Ctsync { KeyFile }` on both sides none of it reaches fw2's external
// cache or, after a commit, its kernel table, and replication carries on;
// a key rotation while entries replicate loses none.
// Without a key the source filter (AcceptOnlyPeer) stops att's own address,
// but a spoofed peer address gets through: the reason the key exists.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isRoot, waitFor, type Netns } from '../helpers/netns.js';
import { makeSegmentPair, type SegmentPair, type SyncNode } from '../helpers/syncpair.js';
import { injectBulk, tcpEntries } from '../helpers/bulk.js';
import { readPcapUdp } from '../helpers/pcap.js';
import { encodeConntrackMsg } from '../../src/wire/conntrack.js';
import { FLAG, MSG, writeHeader } from '../../src/wire/header.js';
import { AF_INET, IPPROTO, IPS, type Conntrack } from '../../src/model/conntrack.js';
import { SECURE_HEADER_SIZE, SECURE_MAGIC } from '../../src/channel/secure.js';

const FW1 = '172.30.1.1';
const FW2 = '172.30.1.2';
const ATT = '172.30.1.66';
const PORT = 3780;
const KEY1 = `1 ${'5e'.repeat(32)}\n`;
const KEY2 = `2 ${'c3'.repeat(32)}\n`;

type Lan = SegmentPair;

/** fw1, fw2 and att on one bridge; att also owns fw1's address, silently. */
function makeLan(tag: string, tail: ((node: 'a' | 'b', dir: string) => string) | null): Lan {
  const lan = makeSegmentPair(tag, (dir) => (tail ? { a: { tail: tail('a', dir) }, b: { tail: tail('b', dir) } } : {}));
  try {
    // The spoofed address, on att's loopback: with arp_ignore=1 att never answers ARP for it
    // (so fw2 keeps fw1's MAC) yet can send from it on the segment.
    lan.att.run('sysctl', ['-qw', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.eth0.arp_ignore=1',
      'net.ipv4.conf.all.arp_announce=2', 'net.ipv4.conf.eth0.arp_announce=2']);
    lan.att.run('ip', ['addr', 'add', `${FW1}/32`, 'dev', 'lo']);
  } catch (e) {
    void lan.cleanup();
    throw e;
  }
  return lan;
}

function writeKeys(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Sends datagrams from att with source `src` to fw2's sync port, 2 ms apart. */
function attSend(lan: Lan, src: string, datagrams: Buffer[]): void {
  const file = join(lan.dir, `att-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(datagrams.map((d) => d.toString('hex'))));
  const script = `
const dgram = require('node:dgram');
const list = JSON.parse(require('node:fs').readFileSync(process.argv[1], 'utf8'));
const s = dgram.createSocket('udp4');
s.bind({ address: '${src}', port: 0 }, async () => {
  for (const h of list) {
    await new Promise((r) => s.send(Buffer.from(h, 'hex'), ${PORT}, '${FW2}', r));
    await new Promise((r) => setTimeout(r, 2));
  }
  s.close();
});`;
  lan.att.run(process.execPath, ['-e', script, file], { timeoutMs: 60_000 });
}

/** A forged entry: 10.66.0.x → 198.51.100.66:22, ESTABLISHED, the kind an attacker would plant. */
function forged(i: number): Conntrack {
  return {
    orig: { l3: AF_INET, src: `10.66.0.${i}`, dst: '198.51.100.66', proto: IPPROTO.TCP, sport: 40000 + i, dport: 22 },
    reply: { l3: AF_INET, src: '198.51.100.66', dst: `10.66.0.${i}`, proto: IPPROTO.TCP, sport: 22, dport: 40000 + i },
    status: IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED, timeout: 3600, tcp: { state: 3 },
  };
}

/** One plaintext FTFW datagram of CT_NEW messages (conntrackd's format). */
function plainNew(flags: number, seq: number, cts: Conntrack[]): Buffer {
  const buf = Buffer.alloc(1400);
  let off = 0;
  for (const [k, ct] of cts.entries()) off += encodeConntrackMsg(buf, off, MSG.CT_NEW, flags, seq + k, ct);
  return Buffer.from(buf.subarray(0, off));
}

/** The minimal CT_NEW: addresses, status, L4 protocol, ports, timeout (5 attributes). */
function minimalNew(i: number, seq: number): Buffer {
  const ct: Conntrack = { orig: { l3: AF_INET, src: `10.66.1.${i}`, dst: '198.51.100.66', proto: IPPROTO.UDP, sport: 5000 + i, dport: 53 }, status: 0, timeout: 3600 };
  return plainNew(FLAG.HELLO, seq, [ct]);
}

/** An ALIVE with HELLO and a sequence number far ahead: what stalls a plaintext receiver. */
function farHello(seq: number): Buffer {
  const b = Buffer.alloc(8);
  writeHeader(b, 0, MSG.CTL, FLAG.ALIVE | FLAG.HELLO, 8, seq);
  return b;
}

function externalLines(node: SyncNode, match: string): string[] {
  return node.cli(['-e']).stdout.split('\n').filter((l) => l.includes(match));
}

function kernelLines(ns: Netns, match: string): string[] {
  return ns.run('conntrack', ['-L'], { allowFail: true }).stdout.split('\n').filter((l) => l.includes(match));
}

/** Captures UDP to fw2's sync port on fw2 while `fn` runs; returns the datagrams fw1 sent. */
async function capture(lan: Lan, fn: () => Promise<void>): Promise<Buffer[]> {
  const file = join(lan.dir, `cap-${Date.now()}.pcap`);
  const p = lan.lab.spawn(lan.fw2, 'tcpdump', ['-i', 'sync0', '--immediate-mode', '-U', '-n', '-s', '0', '-w', file, 'udp', 'dst', 'port', String(PORT)]);
  let err = '';
  p.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  await waitFor(() => err.includes('listening'), 'tcpdump to start', 10_000);
  await fn();
  await new Promise((r) => setTimeout(r, 300));
  await new Promise<void>((res) => { p.once('exit', () => res()); p.kill('SIGINT'); });
  return readPcapUdp(file).filter((f) => f.src === FW1).map((f) => f.payload);
}

/** The active link's counters from `-s --json` (transport and, when keyed, secure-channel ones). */
function linkCounters(node: SyncNode): Record<string, number> {
  return (JSON.parse(node.cli(['-s', '--json']).stdout) as { channel: Record<string, number> }).channel;
}

const nodes = (lan: Lan): SyncNode[] => [lan.a, lan.b];

describe.skipIf(!isRoot)('secure sync link against an attacker on the segment (starts ctsync in namespaces)', () => {
  let lan: Lan | null = null;

  afterEach(async () => {
    if (lan) for (const n of nodes(lan)) if (n.proc?.exitCode !== null) console.error(n.output, n.log());
    await lan?.cleanup();
    lan = null;
  });

  it('with a key: nothing forged, replayed, flipped, truncated or reordered changes fw2; replication continues', async () => {
    lan = makeLan('sk', (node, dir) => {
      const f = join(dir, `${node}.keys`);
      writeKeys(f, `# sync link key\n${KEY1}`);
      return `Ctsync {\n\tKeyFile ${f}\n}\n`;
    });
    const l = lan;
    await l.a.start({ CTSYNC_LOG_LEVEL: 'info' });
    await l.b.start();
    // The daemons seal with the addon's AES-256-GCM (Node's own OpenSSL), not Node's crypto API.
    await waitFor(() => existsSync(join(l.a.dir, 'daemon.log')) && readFileSync(join(l.a.dir, 'daemon.log'), 'utf8').includes('"sealed":"native"'),
      'fw1 logs its sealed link as native', 10_000);

    // Legitimate traffic, recorded on the wire for replay.
    const recorded = await capture(l, async () => {
      expect(await injectBulk(l.fw1, tcpEntries(200))).toBe(200);
      await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === 200, '200 entries on fw2', 30_000, 250);
    });
    expect(recorded.length).toBeGreaterThan(0);
    // Every datagram fw1 sends is sealed (fails here if the daemon does not wrap its channel when KeyFile is set).
    for (const d of recorded) expect(d[0], 'first byte of a datagram from fw1').toBe(SECURE_MAGIC);
    const data = recorded.filter((d) => d.length > 200);
    expect(data.length).toBeGreaterThan(0);

    const attack: Buffer[] = [];
    // Forged plaintext: CT_NEW with HELLO (skips the sequence check), a 5-attribute minimum, a far-ahead HELLO.
    attack.push(plainNew(FLAG.HELLO, 1, [forged(1), forged(2), forged(3)]));
    attack.push(plainNew(0, 2_000_000_000, [forged(4)]));
    for (let i = 0; i < 5; i++) attack.push(minimalNew(i, 100 + i));
    attack.push(farHello(0x7fff_ff00));
    // Replays of fw1's sealed datagrams: verbatim, reordered, with the first message's HELLO bit flipped, truncated.
    attack.push(...data.slice(0, 20), ...data.slice(0, 20).reverse());
    for (const d of data.slice(0, 10)) {
      const f = Buffer.from(d);
      f[SECURE_HEADER_SIZE + 1]! ^= FLAG.HELLO;
      attack.push(f);
    }
    for (const d of data.slice(0, 5)) for (const n of [1, 8, 25, 26, 41, 42, d.length - 1]) attack.push(d.subarray(0, n));
    // Sealed-looking garbage under the right key id, and plaintext truncated mid-message.
    attack.push(Buffer.concat([Buffer.from([SECURE_MAGIC, 1]), Buffer.alloc(300, 0x41)]));
    attack.push(plainNew(FLAG.HELLO, 7, [forged(9)]).subarray(0, 20));
    attSend(l, FW1, attack);
    // From att's own address too (the source filter's job).
    attSend(l, ATT, [plainNew(FLAG.HELLO, 1, [forged(20)])]);

    // Replication goes on after the attack, and nothing of it landed.
    expect(await injectBulk(l.fw1, tcpEntries(100, 200))).toBe(100);
    await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === 300, '300 entries on fw2 after the attack', 30_000, 250);
    expect(externalLines(l.b, '10.66.')).toEqual([]);
    l.b.cli(['-c']);
    await waitFor(() => kernelLines(l.fw2, 'dst=192.0.2.1 ').length >= 300, 'committed entries in fw2 kernel', 30_000, 250);
    expect(kernelLines(l.fw2, '10.66.')).toEqual([]);
    // fw2 counted each kind of rejection (-s --json shows the secure channel's counters on the link)...
    const sec = linkCounters(l.b);
    console.log('fw2 secure link counters after the attack', JSON.stringify(sec));
    expect(sec['rejectedPlaintext']).toBe(9);
    const nd = (k: number): number => Math.min(k, data.length);
    // HELLO-flipped, truncated to ≥ 42 bytes (a full seal, wrong tag), the sealed-looking garbage.
    expect(sec['rejectedBadTag']).toBe(nd(10) + nd(5) * 2 + 1);
    expect(sec['rejectedReplayed']).toBe(nd(20) * 2); // verbatim and reordered replays
    expect(sec['rejectedMalformed']).toBe(nd(5) * 5); // truncated below the seal's size
    expect(sec['rejectedSource']).toBeGreaterThanOrEqual(1);
    // ...and logged them with the peer address and the reason.
    const log = l.b.log();
    expect(log).toMatch(/"reason":"plaintext"/);
    expect(log).toMatch(/"peer":"172\.30\.1\.1"/);

    // Rotation while entries replicate: add key 2 (second line), promote it, drop key 1. The key file is
    // re-read by itself within a second; no pause in between is needed for correctness beyond that.
    const fa = join(l.dir, 'a.keys');
    const fb = join(l.dir, 'b.keys');
    const steps = [`${KEY1}${KEY2}`, `${KEY2}${KEY1}`, KEY2];
    let next = 300;
    for (const text of steps) {
      const inject = injectBulk(l.fw1, tcpEntries(500, next));
      next += 500;
      writeKeys(fa, text);
      writeKeys(fb, text);
      expect(await inject).toBe(500);
      await new Promise((r) => setTimeout(r, 1500));
    }
    expect(await injectBulk(l.fw1, tcpEntries(500, next))).toBe(500);
    next += 500;
    await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === next, `${next} entries on fw2 after rotation`, 60_000, 250);
    // The new key is the one on the wire now.
    const after = await capture(l, async () => {
      expect(await injectBulk(l.fw1, tcpEntries(10, next))).toBe(10);
      await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === next + 10, 'the last 10', 30_000, 250);
    });
    expect(after.length).toBeGreaterThan(0);
    for (const d of after) expect([d[0], d[1]]).toEqual([SECURE_MAGIC, 2]);
    for (const n of nodes(l)) expect(n.proc?.exitCode).toBe(null);
  });

  it('with a key: a restarted fw1 sets up a new session; datagrams of its previous run are rejected', async () => {
    lan = makeLan('sr', (node, dir) => {
      const f = join(dir, `${node}.keys`);
      writeKeys(f, KEY1);
      return `Ctsync {\n\tKeyFile ${f}\n}\n`;
    });
    const l = lan;
    await l.a.start();
    await l.b.start();
    const old = await capture(l, async () => {
      expect(await injectBulk(l.fw1, tcpEntries(100))).toBe(100);
      await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === 100, '100 entries on fw2', 30_000, 250);
    });
    await l.a.stop();
    await l.a.start();
    expect(await injectBulk(l.fw1, tcpEntries(100, 100))).toBe(100);
    await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === 200, '200 entries on fw2 after fw1 restarted', 30_000, 250);
    expect(linkCounters(l.b)['sessionsEstablished']).toBe(2);
    attSend(l, FW1, old);
    await waitFor(() => linkCounters(l.b)['rejectedStaleEpoch'] === old.length, `${old.length} stale-epoch rejections`, 10_000, 100);
    expect(await injectBulk(l.fw1, tcpEntries(50, 200))).toBe(50);
    await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === 250, '250 entries on fw2', 30_000, 250);
  });

  it('without a key: a non-peer source is dropped, but a spoofed peer address gets through', async () => {
    lan = makeLan('sn', null);
    const l = lan;
    await l.a.start();
    await l.b.start();
    expect(await injectBulk(l.fw1, tcpEntries(50))).toBe(50);
    await waitFor(() => externalLines(l.b, 'dst=192.0.2.1 ').length === 50, '50 entries on fw2', 30_000, 250);

    attSend(l, ATT, [plainNew(FLAG.HELLO, 1, [forged(1)])]);
    await waitFor(() => linkCounters(l.b)['rejectedSource']! >= 1, 'the non-peer datagram counted as rejected', 10_000, 100);
    expect(externalLines(l.b, '10.66.')).toEqual([]);

    // The hole a key closes: same datagram, fw1's address. While fw1 itself still says HELLO, ctsync
    // sequence-checks HELLO messages and drops this one as old; once fw1's HELLO phase is over a
    // forged HELLO starts a "new episode" and is taken. So send it until it lands (bounded).
    await waitFor(() => {
      attSend(l, FW1, [plainNew(FLAG.HELLO, 1, [forged(2)])]);
      return externalLines(l.b, '10.66.0.2').length === 1;
    }, 'the forged entry in fw2 external cache', 15_000, 1_000);
    expect(readFileSync(l.b.confPath, 'utf8')).not.toContain('KeyFile');
  });
});
