// The transports against the real kernel: two namespaces joined by two veth
// links (sync1: 10.77.1.0/24, sync2: 10.77.2.0/24), each side running the
// channel code in its own node process (sysfs and sockets must belong to the
// namespace). The channel sources are transpiled once into a temp dir and
// driven over a JSON-lines protocol on stdin/stdout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import ts from 'typescript';
import { Lab, have, isRoot, waitFor, type Netns } from '../helpers/netns.js';

const ROOT = resolve(__dirname, '../..');

/** Transpiles src/channel/index.ts, the native loader and everything they import (type-free, no checking). */
function buildChildTree(): string {
  const out = mkdtempSync(join(tmpdir(), 'ctsync-chan-'));
  const todo = [join(ROOT, 'src/channel/index.ts'), join(ROOT, 'src/netlink/native.ts')];
  const seen = new Set<string>();
  while (todo.length) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)\.js'/g)) {
      const dep = resolve(dirname(file), `${m[1]}.ts`);
      if (existsSync(dep)) todo.push(dep);
    }
    const js = ts.transpileModule(text, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const dest = join(out, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
  }
  // native.ts finds the addon from the package root: package.json next to native/.
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  symlinkSync(join(ROOT, 'native'), join(out, 'native'));
  symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'));
  writeFileSync(join(out, 'child.mjs'), CHILD);
  return out;
}

const CHILD = `
import { createInterface } from 'node:readline';
import { createChannel } from './src/channel/index.js';
const spec = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const chans = {};
for (const [name, cfg] of Object.entries(spec.channels)) {
  const ch = createChannel(cfg, {}, { pollMs: spec.pollMs ?? 1000 });
  ch.onMessage((d, from) => out({ ev: 'msg', ch: name, hex: d.toString('hex'), from: from.address, at: Date.now() }));
  try { await ch.open(); } catch (e) { out({ ev: 'error', ch: name, message: String(e && e.message) }); process.exit(1); }
  chans[name] = ch;
}
out({ ev: 'ready', max: Object.fromEntries(Object.entries(chans).map(([n, c]) => [n, c.maxDatagram])) });
const snap = (name) => { const c = chans[name]; return { ev: 'stats', ch: name, ifname: c.ifname, status: c.status(), stats: c.stats(), links: c.linkStats ? c.linkStats() : null }; };
createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  if (c.cmd === 'send') {
    const ch = chans[c.ch];
    let i = 0;
    const one = () => {
      const b = Buffer.from(c.hex, 'hex');
      if (b.length >= 8) b.writeUInt32BE(i, 4);
      ch.send(b);
      if (++i < c.count) setTimeout(one, c.intervalMs ?? 0); else out({ ev: 'sent', ch: c.ch, n: i });
    };
    one();
  } else if (c.cmd === 'stats') out(snap(c.ch));
  else if (c.cmd === 'exit') Promise.all(Object.values(chans).map((x) => x.close())).then(() => process.exit(0));
});
`;

interface Ev { ev: string; ch?: string; hex?: string; from?: string; at?: number; [k: string]: unknown }

/** One node process in a namespace, holding named channels. */
class Node {
  readonly events: Ev[] = [];
  private readonly p: ChildProcess;
  stderr = '';

  constructor(lab: Lab, ns: Netns, dir: string, channels: Record<string, unknown>, pollMs = 1000) {
    this.p = lab.spawn(ns, process.execPath, [join(dir, 'child.mjs'), JSON.stringify({ channels, pollMs })], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.p.stdout! }).on('line', (l) => this.events.push(JSON.parse(l) as Ev));
    this.p.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString(); });
  }

  async ready(): Promise<Ev> {
    const e = await waitFor(() => {
      const e = this.events.find((x) => x.ev === 'ready' || x.ev === 'error');
      if (e?.ev === 'error') throw new Error(`channel ${e.ch} failed to open: ${String(e.message)}`);
      return e;
    }, `child ready ${this.stderr}`, 15_000);
    return e!;
  }

  cmd(c: object): void {
    this.p.stdin!.write(`${JSON.stringify(c)}\n`);
  }

  send(ch: string, hex: string, count = 1, intervalMs = 0): void {
    this.cmd({ cmd: 'send', ch, hex, count, intervalMs });
  }

  msgs(ch?: string): Ev[] {
    return this.events.filter((e) => e.ev === 'msg' && (!ch || e.ch === ch));
  }

  async stats(ch: string): Promise<Ev> {
    const before = this.events.length;
    this.cmd({ cmd: 'stats', ch });
    const e = await waitFor(() => this.events.slice(before).find((x) => x.ev === 'stats' && x.ch === ch), 'stats');
    return e!;
  }

  async exit(): Promise<void> {
    this.cmd({ cmd: 'exit' });
    await waitFor(() => this.p.exitCode !== null || this.p.signalCode !== null, 'child exit', 5000);
  }
}

/** A valid-looking CTL header (version 1, type 10, len 8) with room for a sequence number. */
const HDR = '1a000008' + '00000000';

/** UDP checksum fields of every IPv4/UDP packet in a pcap (Ethernet link type). */
function udpChecksums(pcap: Buffer): { dport: number; sum: number }[] {
  const out: { dport: number; sum: number }[] = [];
  let off = 24;
  while (off + 16 <= pcap.length) {
    const caplen = pcap.readUInt32LE(off + 8);
    const pkt = pcap.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    if (pkt.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (pkt[14]! & 0x0f) * 4;
    if (pkt[14 + 9] !== 17) continue;
    const udp = 14 + ihl;
    out.push({ dport: pkt.readUInt16BE(udp + 2), sum: pkt.readUInt16BE(udp + 6) });
  }
  return out;
}

const can = isRoot && have('ip') && have('tcpdump');

describe.skipIf(!can)('channels in two namespaces over two veth links', () => {
  const lab = new Lab('ch');
  let a: Netns;
  let b: Netns;
  let dir: string;
  const nodes: Node[] = [];
  const node = (ns: Netns, channels: Record<string, unknown>, pollMs?: number): Node => {
    const n = new Node(lab, ns, dir, channels, pollMs);
    nodes.push(n);
    return n;
  };

  beforeAll(() => {
    dir = buildChildTree();
    a = lab.netns('a');
    b = lab.netns('b');
    lab.veth(a, 'sync1', b, 'sync1', ['10.77.1.1/24', 'fd77:1::1/64'], ['10.77.1.2/24', 'fd77:1::2/64']);
    lab.veth(a, 'sync2', b, 'sync2', ['10.77.2.1/24'], ['10.77.2.2/24']);
  });

  afterAll(async () => {
    await lab.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const udp = (self: string, peer: string, ifname: string, port: number, extra: object = {}) =>
    ({ kind: 'udp', ipv4Address: self, destination: peer, interface: ifname, port, ...extra });

  it('UDP: a link bound to sync1 receives what comes over sync1 and nothing from sync2', async () => {
    const rb = node(b, { wild: { kind: 'udp', destination: '10.77.1.1', interface: 'sync1', port: 3780, acceptFrom: 'any' } });
    const ra = node(a, { to1: udp('10.77.1.1', '10.77.1.2', 'sync1', 3780), to2: udp('10.77.2.1', '10.77.2.2', 'sync2', 3780) });
    const ready = await rb.ready();
    await ra.ready();
    expect(ready.max).toEqual({ wild: 1471 });
    ra.send('to2', HDR, 3);
    ra.send('to1', HDR, 3);
    await waitFor(() => rb.msgs().length >= 3, 'datagrams over sync1', 5000);
    await new Promise((r) => setTimeout(r, 300));
    expect(rb.msgs().map((m) => m.from)).toEqual(['10.77.1.1', '10.77.1.1', '10.77.1.1']);
    const st = await ra.stats('to2');
    expect((st.stats as { packetsSent: number }).packetsSent).toBe(3);
    await rb.exit();
    await ra.exit();
  });

  it('UDP over IPv6 between the namespaces, sized MTU - 48 - 1', async () => {
    const rb = node(b, { v6: { kind: 'udp', ipv6Address: 'fd77:1::2', destination: 'fd77:1::1', interface: 'sync1', port: 3785 } });
    const ra = node(a, { v6: { kind: 'udp', ipv6Address: 'fd77:1::1', destination: 'fd77:1::2', interface: 'sync1', port: 3785 } });
    expect((await rb.ready()).max).toEqual({ v6: 1451 });
    await ra.ready();
    ra.send('v6', HDR, 2);
    await waitFor(() => rb.msgs('v6').length === 2, 'v6 datagrams', 5000);
    expect(rb.msgs('v6')[0]!.from).toBe('fd77:1::1');
    await rb.exit();
    await ra.exit();
  });

  it('Checksum off puts 0x0000 in the UDP checksum on the wire; on leaves it non-zero', async () => {
    const pcapFile = join(dir, 'csum.pcap');
    const dump = lab.spawn(b, 'tcpdump', ['-i', 'sync1', '-n', '-U', '-w', pcapFile, '-c', '6', 'udp and (dst port 3781 or dst port 3782)']);
    let err = '';
    dump.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    await waitFor(() => err.includes('listening on'), 'tcpdump ready', 10_000);
    const ra = node(a, {
      off: udp('10.77.1.1', '10.77.1.2', 'sync1', 3781, { checksum: false }),
      on: udp('10.77.1.1', '10.77.1.2', 'sync1', 3782, { checksum: true }),
    });
    await ra.ready();
    ra.send('off', HDR + 'deadbeef', 3);
    ra.send('on', HDR + 'deadbeef', 3);
    await waitFor(() => dump.exitCode !== null, `tcpdump to capture 6 packets: ${err}`, 10_000);
    const sums = udpChecksums(readFileSync(pcapFile));
    expect(sums).toHaveLength(6);
    expect(sums.filter((s) => s.dport === 3781).map((s) => s.sum)).toEqual([0, 0, 0]);
    expect(sums.filter((s) => s.dport === 3782).every((s) => s.sum !== 0)).toBe(true);
    await ra.exit();
  });

  it('multicast between the namespaces, without hearing our own datagrams', async () => {
    const mc = (self: string) => ({ kind: 'multicast', ipv4Address: '239.77.0.1', port: 3790, ipv4Interface: self, interface: 'sync1' });
    const ra = node(a, { m: mc('10.77.1.1') });
    const rb = node(b, { m: mc('10.77.1.2') });
    await ra.ready();
    await rb.ready();
    ra.send('m', HDR, 3);
    rb.send('m', HDR, 2);
    await waitFor(() => rb.msgs('m').length === 3 && ra.msgs('m').length === 2, 'multicast datagrams', 5000);
    await new Promise((r) => setTimeout(r, 300));
    expect(rb.msgs('m').every((m) => m.from === '10.77.1.1')).toBe(true);
    expect(ra.msgs('m').every((m) => m.from === '10.77.1.2')).toBe(true);
    expect(ra.msgs('m')).toHaveLength(2);
    await ra.exit();
    await rb.exit();
  });

  it('multicast over IPv6 (group joined on the interface by scope)', async () => {
    const mc = { kind: 'multicast', ipv6Address: 'ff15::77', port: 3791, interface: 'sync1' };
    const ra = node(a, { m: mc });
    const rb = node(b, { m: mc });
    expect((await ra.ready()).max).toEqual({ m: 1451 });
    await rb.ready();
    ra.send('m', HDR, 3);
    await waitFor(() => rb.msgs('m').length === 3, 'v6 multicast datagrams', 5000);
    expect(rb.msgs('m')[0]!.from).toBe('fd77:1::1');
    expect(ra.msgs('m')).toHaveLength(0);
    await ra.exit();
    await rb.exit();
  });

  it('TCP: the client reconnects and delivers after the server side restarts', async () => {
    const tcp = (self: string, peer: string) => ({ kind: 'tcp', ipv4Address: self, destination: peer, interface: 'sync1', port: 3800 });
    const ra = node(a, { t: tcp('10.77.1.1', '10.77.1.2') });
    let rb = node(b, { t: tcp('10.77.1.2', '10.77.1.1') });
    expect((await ra.ready()).max).toEqual({ t: 1459 });
    await rb.ready();
    await waitFor(async () => ((await ra.stats('t')).stats as { connected: boolean }).connected, 'first connection', 5000);
    ra.send('t', HDR, 5);
    await waitFor(() => rb.msgs('t').length > 0 && Buffer.concat(rb.msgs('t').map((m) => Buffer.from(m.hex!, 'hex'))).length === 40,
      'messages before restart', 5000);
    await rb.exit();
    await waitFor(async () => !((await ra.stats('t')).stats as { connected: boolean }).connected, 'disconnect noticed', 5000);
    rb = node(b, { t: tcp('10.77.1.2', '10.77.1.1') });
    await rb.ready();
    const t0 = Date.now();
    await waitFor(async () => ((await ra.stats('t')).stats as { connected: boolean }).connected, 'reconnection', 5000);
    expect(Date.now() - t0).toBeLessThan(3000);
    ra.send('t', HDR, 3);
    await waitFor(() => Buffer.concat(rb.msgs('t').map((m) => Buffer.from(m.hex!, 'hex'))).length === 24, 'messages after restart', 5000);
    await ra.exit();
    await rb.exit();
  });

  it('multi-link: taking the active link down moves traffic to link 2 within ~2 s', async () => {
    const links = (self: number, peer: number) => [
      udp(`10.77.1.${self}`, `10.77.1.${peer}`, 'sync1', 3795, { isDefault: true }),
      udp(`10.77.2.${self}`, `10.77.2.${peer}`, 'sync2', 3795),
    ];
    const ra = node(a, { m: links(1, 2) });
    const rb = node(b, { m: links(2, 1) });
    await ra.ready();
    await rb.ready();
    ra.send('m', HDR, 200, 50); // 10 s at most
    await waitFor(() => rb.msgs('m').filter((m) => m.from === '10.77.1.1').length >= 5, 'traffic on link 1', 5000);
    const down = Date.now();
    a.run('ip', ['link', 'set', 'sync1', 'down']);
    try {
      const first = await waitFor(() => rb.msgs('m').find((m) => m.from === '10.77.2.1'), 'traffic on link 2', 5000);
      expect(first!.at! - down).toBeLessThan(2500);
      const st = await ra.stats('m');
      expect((st.links as { ifname: string; status: string; role: string }[]).map((l) => `${l.ifname}:${l.status}:${l.role}`))
        .toEqual(['sync1:DOWN:BACKUP', 'sync2:RUNNING:ACTIVE']);
      expect(st.ifname).toBe('sync2');
    } finally {
      a.run('ip', ['link', 'set', 'sync1', 'up']);
    }
    await ra.exit();
    await rb.exit();
  });
});
