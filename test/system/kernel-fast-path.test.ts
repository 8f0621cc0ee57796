// The addon's lone-event fast path (native/src/fastpath.c) against events the
// kernel really sends. Unit tests feed it hand-built messages; only a real
// kernel shows which attributes, orders and paddings events carry (NAT reply
// tuples, protoinfo of live TCP, counters, zones), so (A) records the events
// of varied real flows and compares the C encoding with the TS path's message
// byte for byte, and (B) runs a ctsync pair whose sender takes the fast path,
// to see the messages it sends filed, acknowledged and resent like the JS
// path's own.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileFilter, type FilterConfig } from '../../src/filter/filter.js';
import { loadNative, type NativeBinding, type NativeHandle } from '../../src/netlink/native.js';
import { FP, referenceMessage, testConf, type RefSettings } from '../helpers/fast-path-ref.js';
import { have, isRoot, Lab, waitFor, type Netns } from '../helpers/netns.js';
import { makePair, renderConfig, type Pair } from '../helpers/syncpair.js';

const NETLINK_NETFILTER = 12;
const CT_GROUPS = 7; // NEW | UPDATE | DESTROY
const SOL_SOCKET = 1;
const SO_RCVBUFFORCE = 33;
const CT_NEW_TYPE = 0x0100;
const NEW_FLAGS = 0x600; // NLM_F_CREATE | NLM_F_EXCL

const tools = isRoot && have('conntrack') && have('iptables') && have('socat') && have('ping');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What was compared, for whoever extends the cases: FAST_PATH_TALLY=1 prints it. */
const report = (text: string): void => {
  if (process.env.FAST_PATH_TALLY !== undefined) console.log(text);
};

/** Attributes of a netlink attribute stream, type without the nested/byte-order bits. */
function* nlattrs(b: Buffer, start: number, end: number): Generator<{ type: number; start: number; end: number }> {
  for (let o = start; o + 4 <= end;) {
    const len = b.readUInt16LE(o);
    if (len < 4 || o + len > end) return;
    yield { type: b.readUInt16LE(o + 2) & 0x3fff, start: o + 4, end: o + len };
    o += (len + 3) & ~3;
  }
}

const PROTO_NAME: Record<number, string> = { 47: 'GRE', 132: 'SCTP', 33: 'DCCP', 136: 'UDP-Lite', 58: 'ICMPv6' };

/**
 * Why the fast path must leave an event to JS, read from the raw attributes
 * independently of both decoders (null: a shape it encodes). Keeps the C
 * side's refusals honest: a SHAPE refusal of a supported shape is a bug too.
 */
function unsupportedShape(msg: Buffer): string | null {
  const family = msg[16];
  if (family !== 2) return family === 10 ? 'IPv6' : `family ${family}`;
  const end = msg.readUInt32LE(0);
  let proto = -1;
  for (const a of nlattrs(msg, 20, end)) {
    switch (a.type) {
      case 5: return 'helper (CTA_HELP)';
      case 6: case 13: return 'NAT attributes';
      case 14: return 'master tuple';
      case 15: case 16: return 'seqadj';
      case 22: return 'labels';
      case 1: case 2:
        for (const t of nlattrs(msg, a.start, a.end)) {
          if (t.type === 3) return 'tuple zone';
          if (t.type === 2 && a.type === 1) {
            for (const p of nlattrs(msg, t.start, t.end)) if (p.type === 1) proto = msg[p.start]!;
          }
        }
        break;
      default:
        break;
    }
  }
  if (proto !== 1 && proto !== 6 && proto !== 17) return `protocol ${PROTO_NAME[proto] ?? proto}`;
  return null;
}

const hex = (b: Buffer): string => b.toString('hex');

const CTA_NAME: Record<number, string> = {
  1: 'TUPLE_ORIG', 2: 'TUPLE_REPLY', 3: 'STATUS', 4: 'PROTOINFO', 5: 'HELP', 7: 'TIMEOUT', 8: 'MARK', 9: 'COUNTERS_ORIG',
  10: 'COUNTERS_REPLY', 11: 'USE', 12: 'ID', 14: 'TUPLE_MASTER', 17: 'SECMARK', 18: 'ZONE', 20: 'TIMESTAMP', 24: 'SYNPROXY', 27: 'TIMESTAMP_EVENT',
};

/** What a NEW event carries that the encoder must get right: its attributes, and NAT seen in the reply tuple. */
function features(msg: Buffer): string[] {
  const out: string[] = [];
  const tuples: string[] = [];
  for (const a of nlattrs(msg, 20, msg.readUInt32LE(0))) {
    out.push(CTA_NAME[a.type] ?? `CTA_${a.type}`);
    if (a.type === 1 || a.type === 2) tuples.push(msg.subarray(a.start, a.end).toString('hex'));
    if (a.type === 4) {
      for (const p of nlattrs(msg, a.start, a.end)) {
        for (const t of nlattrs(msg, p.start, p.end)) if (t.type === 2 || t.type === 3) out.push('TCP wscale');
      }
    }
  }
  if (tuples.length === 2 && !isMirror(msg)) out.push('NAT reply tuple');
  return [...new Set(out)];
}

/** Whether the reply tuple only swaps the original's addresses and ports (IPv4, TCP/UDP/ICMP echo). */
function isMirror(msg: Buffer): boolean {
  const t: { src?: string; dst?: string; sport?: number; dport?: number; id?: number }[] = [];
  for (const a of nlattrs(msg, 20, msg.readUInt32LE(0))) {
    if (a.type !== 1 && a.type !== 2) continue;
    const x: (typeof t)[number] = {};
    for (const part of nlattrs(msg, a.start, a.end)) {
      for (const f of nlattrs(msg, part.start, part.end)) {
        if (part.type === 1 && f.type === 1) x.src = hex(msg.subarray(f.start, f.end));
        if (part.type === 1 && f.type === 2) x.dst = hex(msg.subarray(f.start, f.end));
        if (part.type === 2 && f.type === 2) x.sport = msg.readUInt16BE(f.start);
        if (part.type === 2 && f.type === 3) x.dport = msg.readUInt16BE(f.start);
        if (part.type === 2 && f.type === 4) x.id = msg.readUInt16BE(f.start);
      }
    }
    t.push(x);
  }
  const [o, r] = t;
  return o !== undefined && r !== undefined && o.src === r.dst && o.dst === r.src && o.sport === r.dport && o.dport === r.sport && o.id === r.id;
}

describe.skipIf(!tools)('fast path on kernel events (starts client, router and server namespaces, kernel conntrack, iptables NAT)', () => {
  const lab = new Lab('fk');
  let cli: Netns;
  let rtr: Netns;
  let srv: Netns;
  let b: NativeBinding;
  let h: NativeHandle | null = null;
  /** Every ctnetlink message the router's event socket read, with the step that caused it. */
  const events: { step: string; msg: Buffer }[] = [];
  let helperOk = false;
  let synproxyOk = false;

  function drainInto(step: string): void {
    // Bounded: a socket that kept returning data would be a bug, not a reason to hang.
    for (let i = 0; i < 10_000; i++) {
      const buf = b.drain(h!);
      if (buf === null) return;
      for (let off = 0; off + 16 <= buf.length;) {
        const len = buf.readUInt32LE(off);
        if (len < 16 || off + len > buf.length) break;
        // A copy: the addon's read buffer is reused by the next drain.
        events.push({ step, msg: Buffer.from(buf.subarray(off, off + len)) });
        off += (len + 3) & ~3;
      }
    }
  }

  /** Runs `fn`, then files the events it caused under `step` (the kernel queues them before the command returns). */
  async function step(name: string, fn: () => void | Promise<void>): Promise<void> {
    drainInto('(stray)');
    await fn();
    // Flow events ride on packets in flight; a moment lets the last one land.
    await sleep(30);
    drainInto(name);
  }

  const ct = (args: string[]): void => {
    rtr.run('conntrack', ['-I', ...args]);
  };

  beforeAll(async () => {
    b = loadNative();
    expect(typeof b.fastEncode).toBe('function');
    ({ cli, rtr, srv } = lab.routed('10.77.1.', '10.77.2.', 'fd77:1::', 'fd77:2::'));
    // Accounting and timestamps on, as on many firewalls: whatever they add to NEW events
    // (on 6.x a CTA_TIMESTAMP_EVENT; counters only come with DESTROY) both decoders must step over.
    rtr.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1'], { allowFail: true });
    rtr.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_timestamp=1'], { allowFail: true });
    lab.enableConntrack(rtr);
    const ipt = (args: string[]): void => { rtr.run('iptables', args); };
    // DNAT with a port change: the reply tuple's source is the real server.
    ipt(['-t', 'nat', '-A', 'PREROUTING', '-d', '10.77.1.1', '-p', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', '10.77.2.2:8080']);
    ipt(['-t', 'nat', '-A', 'PREROUTING', '-d', '10.77.1.1', '-p', 'tcp', '--dport', '81', '-j', 'DNAT', '--to-destination', '10.77.2.2:8080']);
    ipt(['-t', 'nat', '-A', 'PREROUTING', '-d', '10.77.1.1', '-p', 'udp', '--dport', '53', '-j', 'DNAT', '--to-destination', '10.77.2.2:9999']);
    // SNAT flavours: masquerade with a port range, SNAT to an address and ports, and DNAT+SNAT together.
    ipt(['-t', 'nat', '-A', 'POSTROUTING', '-o', 's0', '-s', '10.77.1.0/24', '-p', 'tcp', '--dport', '5002', '-j', 'MASQUERADE', '--to-ports', '30000-30100']);
    ipt(['-t', 'nat', '-A', 'POSTROUTING', '-o', 's0', '-s', '10.77.1.0/24', '-p', 'udp', '--dport', '5353', '-j', 'SNAT', '--to-source', '10.77.2.1:40000-40100']);
    ipt(['-t', 'nat', '-A', 'POSTROUTING', '-o', 's0', '-m', 'conntrack', '--ctorigdstport', '81', '-p', 'tcp', '-j', 'MASQUERADE']);
    ipt(['-t', 'nat', '-A', 'POSTROUTING', '-o', 's0', '-s', '10.77.1.0/24', '-p', 'icmp', '-j', 'SNAT', '--to-source', '10.77.2.1']);
    // A connmark set by a rule: real flows carry CTA_MARK only when a mark is set (conntrack -I's always do).
    ipt(['-t', 'mangle', '-A', 'PREROUTING', '-i', 'c0', '-p', 'udp', '--dport', '9999', '-j', 'CONNMARK', '--set-mark', '0x2a']);
    // SYNPROXY answers the handshake itself and opens the server side: its entry carries CTA_SYNPROXY.
    synproxyOk = rtr.run('sh', ['-c', `
      sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0 &&
      iptables -t raw -A PREROUTING -i c0 -p tcp --dport 5003 --syn -j CT --notrack &&
      iptables -A FORWARD -i c0 -p tcp --dport 5003 -m conntrack --ctstate INVALID,UNTRACKED -j SYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460 &&
      iptables -A FORWARD -i c0 -p tcp --dport 5003 -m conntrack --ctstate INVALID -j DROP`], { allowFail: true }).status === 0;
    // A helper gives the event CTA_HELP: a shape the fast path leaves to JS.
    helperOk = rtr.run('iptables', ['-t', 'raw', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '21', '-j', 'CT', '--helper', 'ftp'], { allowFail: true }).status === 0;

    // Echo servers on every port the flows use: TCP on both families, UDP on IPv4.
    const server = lab.spawn(srv, process.execPath, ['-e', `
      const net = require('node:net'), dgram = require('node:dgram');
      let n = 0; const up = () => { if (++n === 7) console.log('ready'); };
      for (const p of [5001, 5002, 5003, 8080, 21]) net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(p, up);
      for (const p of [9999, 5353]) { const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(m, r.port, r.address)); u.bind(p, up); }
    `]);
    let out = '';
    server.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor(() => out.includes('ready'), 'echo servers in srv', 10_000);

    h = b.open(NETLINK_NETFILTER, rtr.path);
    b.setsockopt(h, SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20);
    b.bind(h, CT_GROUPS);

    const tcp = (ns: Netns, addr: string, port: number, allowFail = false): void => {
      ns.run('socat', ['-T', '2', '-', `TCP:${addr}:${port},connect-timeout=2`], { input: 'hello\n', allowFail, timeoutMs: 5000 });
    };
    const udp = (ns: Netns, addr: string, port: number): void => {
      ns.run('socat', ['-T', '0.3', '-', `UDP:${addr}:${port}`], { input: 'hello\n', allowFail: true, timeoutMs: 5000 });
    };

    // Entries made by hand: states, statuses, marks, zones, timeouts, explicit reply tuples.
    await step('conntrack -I tcp ESTABLISHED', () => ct(['-p', 'tcp', '-s', '10.50.0.2', '-d', '10.50.0.1', '--sport', '40001', '--dport', '443',
      '--state', 'ESTABLISHED', '-u', 'SEEN_REPLY,ASSURED', '-t', '300', '-m', '7']));
    await step('conntrack -I tcp SYN_SENT', () => ct(['-p', 'tcp', '-s', '10.50.0.2', '-d', '10.50.0.1', '--sport', '40002', '--dport', '22',
      '--state', 'SYN_SENT', '-t', '60']));
    await step('conntrack -I tcp TIME_WAIT big mark', () => ct(['-p', 'tcp', '-s', '10.50.0.3', '-d', '10.50.0.1', '--sport', '65535', '--dport', '1',
      '--state', 'TIME_WAIT', '-u', 'SEEN_REPLY', '-t', '120', '-m', '4294967295']));
    await step('conntrack -I tcp CLOSE_WAIT', () => ct(['-p', 'tcp', '-s', '10.50.0.4', '-d', '10.50.0.1', '--sport', '1', '--dport', '65535',
      '--state', 'CLOSE_WAIT', '-u', 'SEEN_REPLY,ASSURED', '-t', '3']));
    await step('conntrack -I tcp zone 5', () => ct(['-p', 'tcp', '-s', '10.50.0.5', '-d', '10.50.0.1', '--sport', '40005', '--dport', '80',
      '--state', 'ESTABLISHED', '-u', 'SEEN_REPLY,ASSURED', '-t', '300', '--zone', '5', '-m', '1']));
    await step('conntrack -I tcp reply tuple NAT', () => ct(['-p', 'tcp', '-s', '10.50.0.6', '-d', '192.0.2.80', '--sport', '40006', '--dport', '80',
      '-r', '10.60.0.9', '-q', '198.51.100.1', '--reply-port-src', '8080', '--reply-port-dst', '61000',
      '--state', 'ESTABLISHED', '-u', 'SEEN_REPLY,ASSURED', '-t', '300']));
    await step('conntrack -I udp', () => ct(['-p', 'udp', '-s', '10.50.0.2', '-d', '10.50.0.1', '--sport', '40007', '--dport', '53', '-t', '30']));
    await step('conntrack -I udp assured marked', () => ct(['-p', 'udp', '-s', '10.50.0.2', '-d', '10.50.0.1', '--sport', '40008', '--dport', '123',
      '-u', 'SEEN_REPLY,ASSURED', '-t', '180', '-m', '0x80000001']));
    await step('conntrack -I udp SNAT reply tuple', () => ct(['-p', 'udp', '-s', '10.50.0.2', '-d', '10.50.0.1', '--sport', '40009', '--dport', '53',
      '-r', '10.50.0.1', '-q', '203.0.113.5', '--reply-port-src', '53', '--reply-port-dst', '1024', '-t', '30']));
    await step('conntrack -I icmp echo', () => ct(['-p', 'icmp', '-s', '10.50.0.2', '-d', '10.50.0.1', '--icmp-type', '8', '--icmp-code', '0',
      '--icmp-id', '4242', '-t', '30', '-m', '3']));
    await step('conntrack -I icmp echo id 0', () => ct(['-p', 'icmp', '-s', '10.50.0.7', '-d', '10.50.0.1', '--icmp-type', '8', '--icmp-code', '0',
      '--icmp-id', '0', '-t', '30', '-u', 'SEEN_REPLY']));
    await step('conntrack -I tcp orig-zone (tuple zone)', () => ct(['-p', 'tcp', '-s', '10.50.0.8', '-d', '10.50.0.1', '--sport', '40010', '--dport', '80',
      '--state', 'ESTABLISHED', '-t', '300', '--orig-zone', '3']));
    await step('conntrack -I sctp', () => ct(['-p', 'sctp', '-s', '10.50.0.2', '-d', '10.50.0.1', '--sport', '40011', '--dport', '38412',
      '--state', 'ESTABLISHED', '--orig-vtag', '1', '--reply-vtag', '2', '-t', '300']));
    await step('conntrack -I gre', () => ct(['-p', 'gre', '-s', '10.50.0.2', '-d', '10.50.0.1', '--srckey', '5', '--dstkey', '6', '-t', '300']));
    await step('conntrack -I IPv6 tcp', () => ct(['-p', 'tcp', '-s', '2001:db8::2', '-d', '2001:db8::1', '--sport', '40012', '--dport', '443',
      '--state', 'ESTABLISHED', '-u', 'SEEN_REPLY,ASSURED', '-t', '300']));

    // Real flows through the router: NEW events from packets, with live TCP protoinfo, counters and NAT.
    await step('flow tcp forwarded', () => tcp(cli, '10.77.2.2', 5001));
    await step('flow tcp forwarded again', () => tcp(cli, '10.77.2.2', 8080));
    await step('flow tcp DNAT :80 -> :8080', () => tcp(cli, '10.77.1.1', 80));
    await step('flow tcp MASQUERADE to-ports', () => tcp(cli, '10.77.2.2', 5002));
    await step('flow tcp DNAT+MASQUERADE', () => tcp(cli, '10.77.1.1', 81));
    await step('flow tcp refused (RST)', () => tcp(cli, '10.77.2.2', 5999, true));
    await step('flow tcp from the router', () => tcp(rtr, '10.77.2.2', 5001));
    await step('flow tcp to the router (refused)', () => tcp(cli, '10.77.1.1', 5999, true));
    await step('flow udp forwarded', () => udp(cli, '10.77.2.2', 9999));
    await step('flow udp DNAT :53 -> :9999', () => udp(cli, '10.77.1.1', 53));
    await step('flow udp SNAT to-source ports', () => udp(cli, '10.77.2.2', 5353));
    await step('flow udp unanswered', () => udp(cli, '10.77.2.2', 7777));
    await step('flow icmp SNAT', () => { cli.run('ping', ['-c', '1', '-W', '2', '10.77.2.2']); });
    await step('flow icmp to the router', () => { cli.run('ping', ['-c', '1', '-W', '2', '10.77.1.1']); });
    await step('flow icmp from the router', () => { rtr.run('ping', ['-c', '1', '-W', '2', '10.77.2.2']); });
    if (synproxyOk) await step('flow tcp SYNPROXY', () => tcp(cli, '10.77.2.2', 5003));
    if (helperOk) await step('flow tcp ftp helper', () => tcp(cli, '10.77.2.2', 21));
    await step('flow IPv6 tcp', () => tcp(cli, '[fd77:2::2]', 5001));
    await step('flow IPv6 icmp', () => { cli.run('ping', ['-6', '-c', '1', '-W', '2', 'fd77:2::2']); });
    // A short burst of forwarded flows: more real events with different ports and protoinfo.
    await step('flows tcp x5', () => { for (let i = 0; i < 5; i++) tcp(cli, '10.77.2.2', 5001); });
  }, 60_000);

  afterAll(async () => {
    if (h !== null) b.close(h);
    await lab.cleanup();
  });

  const newEvents = (): { step: string; msg: Buffer }[] =>
    events.filter((e) => e.msg.readUInt16LE(4) === CT_NEW_TYPE && (e.msg.readUInt16LE(6) & NEW_FLAGS) !== 0);

  const settingsList = (filter = compileFilter({})): RefSettings[] => [
    { ownPortId: 0x7ffffff0, filter, tcpWindowTracking: false, omitTimeout: false },
    { ownPortId: 0x7ffffff0, filter, tcpWindowTracking: true, omitTimeout: false },
    { ownPortId: 0x7ffffff0, filter, tcpWindowTracking: false, omitTimeout: true },
    { ownPortId: 0x7ffffff0, filter, tcpWindowTracking: true, omitTimeout: true },
  ];
  const SEQS = [0, 1, 0x7fffffff, 0xfffffffe];

  /** fastEncode next to the reference; a problem line for every disagreement. */
  function compare(e: { step: string; msg: Buffer }, s: RefSettings, seq: number, problems: string[]): { c: number; ref: ReturnType<typeof referenceMessage> } {
    const out = Buffer.alloc(512);
    const c = b.fastEncode!(testConf(s), e.msg, seq, out);
    const ref = referenceMessage(e.msg, s, seq);
    const shape = unsupportedShape(e.msg);
    const where = `[${e.step}] wscale=${s.tcpWindowTracking} omitTimeout=${s.omitTimeout} seq=${seq} event=${hex(e.msg)}`;
    if (c >= 0) {
      if (ref.kind !== 'sent') problems.push(`C sent ${c} bytes where TS says ${ref.kind}: ${where} C=${hex(out.subarray(0, c))}`);
      else if (!out.subarray(0, c).equals(ref.msg)) problems.push(`bytes differ: ${where}\n  TS=${hex(ref.msg)}\n  C =${hex(out.subarray(0, c))}`);
      if (shape !== null) problems.push(`C encoded a ${shape} event: ${where}`);
    } else if (c === FP.SHAPE) {
      if (shape === null) problems.push(`C refused a supported shape (SHAPE), TS says ${ref.kind}: ${where}`);
    } else {
      const expected = { [FP.FILTERED]: 'filtered', [FP.OWN]: 'own', [FP.MALFORMED]: 'undecodable', [FP.NOT_NEW]: 'not-new' }[c];
      if (expected === undefined || ref.kind !== expected) problems.push(`C refused ${c}, TS says ${ref.kind}: ${where}`);
    }
    return { c, ref };
  }

  it('encodes the real NEW events byte for byte as the TS path does, and refuses only the shapes it must', () => {
    const news = newEvents();
    const problems: string[] = [];
    const refused = new Map<string, number>();
    const stepsEncoded = new Set<string>();
    const covered = new Map<string, number>();
    let encoded = 0;
    for (const e of news) {
      let first = true;
      for (const s of settingsList()) {
        for (const seq of SEQS) {
          const { c, ref } = compare(e, s, seq, problems);
          // Nothing filters here: the TS path sends every event, so C must encode all but the unsupported shapes.
          if (ref.kind !== 'sent') problems.push(`TS did not send (${ref.kind}) with no filter: [${e.step}] ${hex(e.msg)}`);
          if (!first) continue;
          first = false;
          if (c >= 0) {
            encoded++;
            stepsEncoded.add(e.step);
            for (const f of features(e.msg)) covered.set(f, (covered.get(f) ?? 0) + 1);
          } else {
            const why = c === FP.SHAPE ? unsupportedShape(e.msg) ?? 'SHAPE (unexplained)' : `code ${c}`;
            refused.set(why, (refused.get(why) ?? 0) + 1);
          }
        }
      }
    }
    const v4 = news.filter((e) => e.msg[16] === 2);
    const v4Supported = v4.filter((e) => unsupportedShape(e.msg) === null);
    report(`fast path vs TS on ${news.length} real NEW events (${events.length} ctnetlink messages in all): ` +
      `${encoded} encoded by C, refused: ${JSON.stringify(Object.fromEntries(refused))}; ` +
      `IPv4 ${v4.length}, of which supported shapes ${v4Supported.length}; ${news.length * 16} comparisons`);
    report(`attributes of the C-encoded events: ${JSON.stringify(Object.fromEntries(covered))}`);
    expect(problems).toEqual([]);
    // The shapes this file exists for must really have been among the compared events.
    // (NEW events carry no USE nor counters: the kernel adds those to dumps and DESTROY events.)
    for (const f of ['STATUS', 'TIMEOUT', 'MARK', 'ZONE', 'PROTOINFO', 'TCP wscale', 'ID', 'TUPLE_REPLY', ...(synproxyOk ? ['SYNPROXY'] : [])]) {
      expect(covered.get(f) ?? 0, `no encoded event with ${f}`).toBeGreaterThan(0);
    }
    expect(covered.get('NAT reply tuple') ?? 0).toBeGreaterThanOrEqual(6);
    // Every supported step must have produced a compared event, or the coverage claimed above is hollow.
    for (const want of ['conntrack -I tcp ESTABLISHED', 'conntrack -I tcp zone 5', 'conntrack -I tcp reply tuple NAT', 'conntrack -I udp',
      'conntrack -I icmp echo', 'flow tcp forwarded', 'flow tcp DNAT :80 -> :8080', 'flow tcp MASQUERADE to-ports', 'flow tcp DNAT+MASQUERADE',
      'flow tcp refused (RST)', 'flow tcp from the router', 'flow udp forwarded', 'flow udp DNAT :53 -> :9999', 'flow udp SNAT to-source ports',
      'flow icmp SNAT', 'flow icmp to the router', 'flows tcp x5', ...(synproxyOk ? ['flow tcp SYNPROXY'] : [])]) {
      expect(stepsEncoded, `no encoded event from step "${want}"`).toContain(want);
    }
    expect(encoded).toBeGreaterThanOrEqual(25);
    expect(encoded).toBe(v4Supported.length);
    expect(encoded / v4.length).toBeGreaterThan(0.75);
    // The refusals the kernel events should have shown: IPv6 (both ways), other protocols, tuple zones.
    expect(refused.get('IPv6') ?? 0).toBeGreaterThanOrEqual(3);
    expect(refused.get('tuple zone')).toBe(1);
    expect(refused.get('protocol SCTP')).toBe(1);
    expect(refused.get('protocol GRE')).toBe(1);
    if (helperOk) expect(refused.get('helper (CTA_HELP)')).toBeGreaterThanOrEqual(1);
  });

  it('refuses UPDATE and DESTROY events (NOT_NEW) as the TS path ignores them', () => {
    const rest = events.filter((e) => !(e.msg.readUInt16LE(4) === CT_NEW_TYPE && (e.msg.readUInt16LE(6) & NEW_FLAGS) !== 0));
    const problems: string[] = [];
    for (const e of rest) {
      const { c } = compare(e, settingsList()[1]!, 5, problems);
      if (c !== FP.NOT_NEW) problems.push(`C said ${c} for a non-NEW event: [${e.step}] ${hex(e.msg)}`);
    }
    report(`non-NEW ctnetlink messages compared: ${rest.length}`);
    expect(rest.length).toBeGreaterThan(10);
    expect(problems).toEqual([]);
  });

  it('says OWN for events the daemon\'s own request socket caused, as the TS path does', () => {
    // conntrack -I's events carry its netlink port id: the same test the daemon makes for its commits.
    const mine = newEvents().filter((e) => e.msg.readUInt32LE(12) !== 0);
    const problems: string[] = [];
    for (const e of mine) {
      const s = { ...settingsList()[0]!, ownPortId: e.msg.readUInt32LE(12) };
      const { c, ref } = compare(e, s, 9, problems);
      if (c !== FP.OWN || ref.kind !== 'own') problems.push(`own port: C ${c}, TS ${ref.kind}: [${e.step}] ${hex(e.msg)}`);
    }
    expect(mine.length).toBeGreaterThanOrEqual(10);
    expect(problems).toEqual([]);
  });

  it('filters exactly as the TS filter does (Address, Protocol and State sections)', () => {
    const filters: [string, FilterConfig, { conntrackdAcceptQuirk?: boolean }?][] = [
      ['Address Ignore client host', { address: { policy: 'ignore', cidrs: ['10.77.1.2'] } }],
      ['Address Ignore client net and a host', { address: { policy: 'ignore', cidrs: ['10.77.1.0/24', '10.50.0.2', 'fd77:1::/64'] } }],
      ['Address Accept (quirk: both lists)', { address: { policy: 'accept', cidrs: ['10.77.0.0/16', '10.77.2.2', '10.50.0.1'] } }],
      ['Address Accept (no quirk)', { address: { policy: 'accept', cidrs: ['10.77.0.0/16', '10.50.0.2'] } }, { conntrackdAcceptQuirk: false }],
      ['Protocol Accept tcp', { protocol: { policy: 'accept', protos: [6] } }],
      ['Protocol Ignore udp icmp', { protocol: { policy: 'ignore', protos: [17, 1] } }],
      ['State Ignore SYN_SENT TIME_WAIT', { state: { policy: 'ignore', tcpStates: [1, 7] } }],
      ['State Accept ESTABLISHED', { state: { policy: 'accept', tcpStates: [3] } }],
      ['all three', { address: { policy: 'ignore', cidrs: ['10.50.0.3'] }, protocol: { policy: 'ignore', protos: [1] }, state: { policy: 'accept', tcpStates: [3, 1] } }],
    ];
    const problems: string[] = [];
    const counts: Record<string, { filtered: number; sent: number }> = {};
    for (const [name, cfg, opts] of filters) {
      const filter = compileFilter(cfg, opts ?? {});
      const c = counts[name] = { filtered: 0, sent: 0 };
      const list = settingsList(filter);
      for (const e of newEvents()) {
        const supported = unsupportedShape(e.msg) === null;
        for (const s of [list[0]!, list[3]!]) {
          const r = compare(e, s, 77, problems);
          // Supported shapes: FILTERED exactly when the reference filters (others are SHAPE before any filtering).
          if (supported && (r.c === FP.FILTERED) !== (r.ref.kind === 'filtered')) {
            problems.push(`${name}: C ${r.c}, TS ${r.ref.kind}: [${e.step}] ${hex(e.msg)}`);
          }
          if (supported && s === list[0]) c[r.ref.kind === 'filtered' ? 'filtered' : 'sent']++;
        }
      }
    }
    report(`filters: ${JSON.stringify(counts)}`);
    expect(problems).toEqual([]);
    // Each filter must have split the events, or it tested nothing.
    for (const [name] of filters) {
      expect(counts[name]!.filtered, `${name} filtered nothing`).toBeGreaterThan(0);
      expect(counts[name]!.sent, `${name} passed nothing`).toBeGreaterThan(0);
    }
  });
});

/** `-s network --json`'s fast path counters. */
function fastStats(p: Pair, side: 'a' | 'b' = 'a'): { sent: number; orphan: number; declined: number; sendError: number } {
  const j = JSON.parse(p[side].cli(['-s', 'network', '--json']).stdout) as { network: { send: { fastPath?: { sent: number; orphan: number; declined: number; sendError: number } } } };
  return j.network.send.fastPath ?? { sent: 0, orphan: 0, declined: 0, sendError: 0 };
}

function seqLost(p: Pair): number {
  return (JSON.parse(p.b.cli(['-s', 'network', '--json']).stdout) as { sequence: { lost: number } }).sequence.lost;
}

/** One entry of the mixed set: its conntrack -I arguments and the token that finds its line in a dump. */
function entry(i: number, key: number): { args: string[]; token: string; proto: string; key: number } {
  return { key, ...entryArgs(i, key) };
}

function entryArgs(i: number, key: number): { args: string[]; token: string; proto: string } {
  const mark = String(i + 1);
  switch (i % 3) {
    case 0:
      return { proto: 'tcp', token: `sport=${key} `, args: ['-p', 'tcp', '-s', '10.98.0.2', '-d', '10.98.1.1', '--sport', String(key), '--dport', '443',
        '--state', i % 2 ? 'ESTABLISHED' : 'SYN_RECV', '-u', 'SEEN_REPLY,ASSURED', '-t', '600', '-m', mark] };
    case 1:
      return { proto: 'udp', token: `sport=${key} `, args: ['-p', 'udp', '-s', '10.98.0.3', '-d', '10.98.1.1', '--sport', String(key), '--dport', '53',
        '-t', '600', '-m', mark] };
    default:
      return { proto: 'icmp', token: `id=${key} `, args: ['-p', 'icmp', '-s', '10.98.0.4', '-d', '10.98.1.1', '--icmp-type', '8', '--icmp-code', '0',
        '--icmp-id', String(key), '-t', '600', '-m', mark] };
  }
}

/**
 * A dump line without what differs between fw1's internal and fw2's external
 * view of one flow for reasons of their own: the age, and a reply tuple that
 * only mirrors the original (the wire leaves it out; the peer prints none).
 */
function stable(line: string, key: number): string {
  const tuple = /src=\S+ dst=\S+ (?:sport=\d+ dport=\d+|type=\d+ code=\d+ id=\d+) /g;
  const tuples = line.match(tuple) ?? [];
  let l = line.replace(/\[active since \d+s\]/, '');
  if (tuples.length === 2) l = l.replace(tuples[1]!, '');
  return l.replaceAll(String(key), 'KEY').replace(/\s+/g, ' ').trim();
}

/** Data messages of fw1's resend queue (our own ACKs wait there too, for the peer's). */
function rsObjects(p: Pair): string[] {
  const j = JSON.parse(p.a.cli(['-s', 'rsqueue', '--json']).stdout) as { rsqueue: { entries: string[] } };
  return j.rsqueue.entries.filter((l) => l.startsWith('object'));
}

describe.skipIf(!isRoot || !have('conntrack') || !have('iptables'))('fast path in a ctsync pair (starts two ctsync daemons in namespaces, kernel conntrack)', () => {
  let pair: Pair;
  /** fw2's lines of the first batch (fast path), by index: the JS path's must read the same. */
  const fastLines: string[] = [];
  /** How long after the daemons' start the first fast path send came. */
  let openMs = 0;

  beforeAll(async () => {
    pair = makePair('ctsync', 'ctsync', 'fp', { a: { ignoreCidrs: ['172.30.1.0/24', '10.66.0.0/16'] } });
    await pair.a.start({ CTSYNC_LOG_LEVEL: 'info' });
    await pair.b.start({ CTSYNC_LOG_LEVEL: 'info' });
    await fastPathOpen(40900);
  }, 60_000);

  afterAll(async () => {
    await pair?.cleanup();
  });

  /**
   * Lone probe entries until the fast path takes one: the engine's gate opens
   * only once the peer has answered our HELLO, which waits for the peer's next
   * message, so a batch started right after the daemons would go to JS whole.
   */
  async function fastPathOpen(firstKey: number): Promise<void> {
    const t0 = Date.now();
    const base = fastStats(pair).sent;
    let n = 0;
    await waitFor(async () => {
      await inject([firstKey + n++]);
      return fastStats(pair).sent > base;
    }, 'the fast path to take a probe entry', 15_000, 100);
    openMs = Date.now() - t0;
    report(`fast path open after ${openMs} ms, ${n} probe entries`);
  }

  /** Entries `first`, `first` + 1, … of the mixed set, under the given keys. */
  async function inject(keys: number[], first = 0): Promise<ReturnType<typeof entry>[]> {
    const made: ReturnType<typeof entry>[] = [];
    for (const [i, key] of keys.entries()) {
      const e = entry(first + i, key);
      pair.fw1.run('conntrack', ['-I', ...e.args]);
      made.push(e);
      // Apart, so each event is read alone: the fast path takes lone events only.
      await sleep(20);
    }
    return made;
  }

  async function allInFw2(made: ReturnType<typeof entry>[], what: string, timeoutMs: number): Promise<string[]> {
    let missing: string[] = [];
    try {
      return await waitFor<string[] | false>(() => {
        const ext = pair.b.cli(['-e']).stdout.split('\n');
        missing = made.filter((e) => !ext.some((l) => l.startsWith(e.proto) && l.includes(e.token))).map((e) => e.token);
        return missing.length === 0 && ext;
      }, what, timeoutMs, 200) as string[];
    } catch (e) {
      throw new Error(`${(e as Error).message}; missing: ${missing.join(', ')}`);
    }
  }

  it('sends lone events on the fast path and the peer gets them with the right fields', async () => {
    const before = fastStats(pair);
    const lostBefore = seqLost(pair);
    const made = await inject(Array.from({ length: 40 }, (_, i) => 41000 + i));
    const ext = await allInFw2(made, '40 entries in fw2\'s external cache', 15_000);
    const internal = pair.a.cli(['-i']).stdout.split('\n');
    for (const [i, e] of made.entries()) {
      const there = ext.find((l) => l.startsWith(e.proto) && l.includes(e.token))!;
      const here = internal.find((l) => l.startsWith(e.proto) && l.includes(e.token));
      expect(there).toContain(`mark=${i + 1}`);
      if (e.proto === 'tcp') expect(there).toMatch(new RegExp(`^tcp\\s+6 ${i % 2 ? 'ESTABLISHED' : 'SYN_RECV'} src=10\\.98\\.0\\.2 dst=10\\.98\\.1\\.1 ${e.token}dport=443 `));
      if (e.proto === 'udp') expect(there).toMatch(new RegExp(`^udp\\s+17 src=10\\.98\\.0\\.3 dst=10\\.98\\.1\\.1 ${e.token}dport=53 `));
      if (e.proto === 'icmp') expect(there).toMatch(new RegExp(`^icmp\\s+1 src=10\\.98\\.0\\.4 dst=10\\.98\\.1\\.1 type=8 code=0 ${e.token}`));
      expect(here, `fw1 internal cache has ${e.token}`).toBeDefined();
      expect(stable(there, e.key)).toBe(stable(here!, e.key));
      fastLines.push(stable(there, e.key));
    }
    const fp = fastStats(pair);
    report(`pair, 40 lone entries: fastPath ${JSON.stringify(fp)} (before: ${JSON.stringify(before)})`);
    expect(fp.sent - before.sent).toBeGreaterThanOrEqual(30);
    // One sequence shared by the addon and the engine: a clean link shows the peer no gap.
    expect(seqLost(pair)).toBe(lostBefore);
    expect(fp.orphan).toBe(0);
    expect(fp.declined).toBe(0);
    expect(fp.sendError).toBe(0);
  });

  it('sends nothing for an entry the Address Ignore list filters', async () => {
    const before = fastStats(pair);
    pair.fw1.run('conntrack', ['-I', '-p', 'tcp', '-s', '10.66.0.9', '-d', '10.98.1.1', '--sport', '41999', '--dport', '443',
      '--state', 'ESTABLISHED', '-u', 'SEEN_REPLY,ASSURED', '-t', '600']);
    await sleep(20);
    // A marker behind it: once the marker is in fw2, the ignored entry would be too had it been sent.
    const marker = await inject([41998]);
    const ext = await allInFw2(marker, 'the marker entry in fw2', 10_000);
    expect(ext.some((l) => l.includes('10.66.0.9'))).toBe(false);
    expect(pair.a.cli(['-i']).stdout).not.toContain('10.66.0.9');
    const after = fastStats(pair);
    expect(after.orphan).toBe(0);
    expect(after.sent - before.sent).toBeLessThanOrEqual(1);
  });

  it('messages the fast path sent and the link lost are resent after NACKs', async () => {
    const before = fastStats(pair);
    const lostBefore = seqLost(pair);
    const rule = ['OUTPUT', '-p', 'udp', '--dport', '3780', '-m', 'statistic', '--mode', 'random', '--probability', '0.5', '-j', 'DROP'];
    pair.fw1.run('iptables', ['-A', ...rule]);
    let made: ReturnType<typeof entry>[];
    try {
      made = await inject(Array.from({ length: 40 }, (_, i) => 42000 + i));
    } finally {
      pair.fw1.run('iptables', ['-D', ...rule]);
    }
    const pending = rsObjects(pair).length;
    await allInFw2(made, '40 entries sent through a lossy link in fw2', 20_000);
    // Adopted messages are released by the peer's ACKs like the engine's own: nothing stays behind.
    await waitFor(() => rsObjects(pair).length === 0, 'fw1\'s resend queue emptied by ACKs', 15_000, 200);
    const after = fastStats(pair);
    const lost = seqLost(pair) - lostBefore;
    report(`pair, 40 entries over a lossy link: fastPath sent +${after.sent - before.sent}, fw2 saw ${lost} lost, ` +
      `${pending} messages awaiting ACK when the loss stopped`);
    expect(lost).toBeGreaterThan(0);
    expect(after.sent).toBeGreaterThan(before.sent);
    expect(after.orphan).toBe(0);
    expect(after.declined).toBe(0);
  });

  it('with Ctsync { FastPath off } the sender replicates on the JS path alone', async () => {
    await pair.a.stop();
    writeFileSync(pair.a.confPath, renderConfig({ ...pair.a.cfg, tail: 'Ctsync {\n\tFastPath off\n}\n' }, pair.a.dir));
    const t0 = Date.now();
    await pair.a.start({ CTSYNC_LOG_LEVEL: 'info' });
    const made = await inject(Array.from({ length: 20 }, (_, i) => 43000 + i));
    await allInFw2(made, '20 entries from the restarted sender in fw2', 15_000);
    // Past the time the handshake took with the fast path on: a sent count of 0 must not be a closed gate's.
    await sleep(Math.max(0, openMs + 500 - (Date.now() - t0)));
    made.push(...await inject(Array.from({ length: 20 }, (_, i) => 43020 + i), 20));
    const ext = await allInFw2(made, '40 entries from the restarted sender in fw2', 15_000);
    // The JS path's messages give fw2 the same entries as the fast path's did.
    for (const [i, e] of made.entries()) {
      expect(stable(ext.find((l) => l.startsWith(e.proto) && l.includes(e.token))!, e.key)).toBe(fastLines[i]);
    }
    const fp = fastStats(pair);
    report(`pair, FastPath off: fastPath ${JSON.stringify(fp)}`);
    expect(fp.sent).toBe(0);
    expect(fp.orphan).toBe(0);
  });
});
