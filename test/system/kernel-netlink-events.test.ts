// Real TCP, UDP and ICMP flows (IPv4 and IPv6) forwarded through a router
// namespace produce the right NEW / UPDATE / DESTROY events on a
// CtEventListener bound in that namespace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AF_INET, AF_INET6, EVENT, IPPROTO, IPS, TCP_STATE, type Conntrack, type EventKind } from '../../src/model/conntrack.js';
import { CtEventListener } from '../../src/netlink/events.js';
import { isRoot, Lab, waitFor, type Netns } from '../helpers/netns.js';

interface Seen {
  kind: EventKind;
  ct: Conntrack;
}

describe.skipIf(!isRoot)('conntrack events from forwarded flows', () => {
  const lab = new Lab('e');
  let cli: Netns;
  let rtr: Netns;
  let srv: Netns;
  let listener: CtEventListener;
  const seen: Seen[] = [];

  beforeAll(async () => {
    ({ cli, rtr, srv } = lab.routed('10.1.0.', '10.2.0.', 'fd01::', 'fd02::'));
    // Short timeouts so DESTROY events arrive within the test.
    rtr.run('sysctl', ['-q', '-w', 'net.netfilter.nf_conntrack_tcp_timeout_time_wait=1',
      'net.netfilter.nf_conntrack_tcp_timeout_close=1', 'net.netfilter.nf_conntrack_tcp_timeout_fin_wait=1',
      'net.netfilter.nf_conntrack_tcp_timeout_last_ack=1', 'net.netfilter.nf_conntrack_tcp_timeout_close_wait=1',
      'net.netfilter.nf_conntrack_udp_timeout=2', 'net.netfilter.nf_conntrack_udp_timeout_stream=2',
      'net.netfilter.nf_conntrack_icmp_timeout=1', 'net.netfilter.nf_conntrack_icmpv6_timeout=1']);
    lab.enableConntrack(rtr);
    const server = `
      const net = require('net'), dgram = require('dgram');
      for (const h of ['10.2.0.2', 'fd02::2']) {
        net.createServer((c) => { c.on('data', (d) => c.write(d)); c.on('end', () => c.end()); c.on('error', () => {}); }).listen(8080, h);
        const u = dgram.createSocket(h.includes(':') ? 'udp6' : 'udp4');
        u.on('message', (m, r) => u.send(m, r.port, r.address));
        u.bind(5353, h);
      }
      setTimeout(() => process.exit(0), 110000);`;
    lab.spawn(srv, process.execPath, ['-e', server]);
    await waitFor(() => srv.run('ss', ['-ltn'], { allowFail: true }).stdout.includes('[fd02::2]:8080'), 'test servers');
    listener = new CtEventListener({ netns: rtr.path, bufferSize: 4 << 20 });
    listener.on('event', (kind, ct) => seen.push({ kind, ct }));
    listener.start();
  });

  afterAll(async () => {
    listener?.close();
    await lab.cleanup();
  });

  function eventsFor(l3: number, proto: number, dst: string): Seen[] {
    return seen.filter((s) => s.ct.orig.l3 === l3 && s.ct.orig.proto === proto && s.ct.orig.dst === dst);
  }

  async function lifecycle(l3: number, proto: number, dst: string): Promise<Seen[]> {
    const found = await waitFor(() => {
      const evs = eventsFor(l3, proto, dst);
      if (evs.some((e) => e.kind === EVENT.DESTROY)) return evs;
      // The GC worker may take up to a minute on a quiet table; a dump evicts expired entries at once.
      rtr.run('conntrack', ['-L'], { allowFail: true });
      return null;
    }, `DESTROY for proto ${proto} to ${dst}`, 20_000, 300);
    return found!;
  }

  it('TCP over IPv4 and IPv6: NEW in SYN_SENT, UPDATE to ESTABLISHED, DESTROY', async () => {
    cli.run('sh', ['-c', 'printf hello | socat -t1 - TCP4:10.2.0.2:8080']);
    cli.run('sh', ['-c', 'printf hello | socat -t1 - TCP6:[fd02::2]:8080']);
    for (const [l3, src, dst] of [[AF_INET, '10.1.0.2', '10.2.0.2'], [AF_INET6, 'fd01::2', 'fd02::2']] as const) {
      const evs = await lifecycle(l3, IPPROTO.TCP, dst);
      const first = evs[0]!;
      expect(first.kind).toBe(EVENT.NEW);
      expect(first.ct.orig).toMatchObject({ l3, src, dst, proto: IPPROTO.TCP, dport: 8080 });
      expect(first.ct.reply).toMatchObject({ src: dst, dst: src, sport: 8080, dport: first.ct.orig.sport });
      expect(first.ct.tcp?.state).toBe(TCP_STATE.SYN_SENT);
      const updates = evs.filter((e) => e.kind === EVENT.UPDATE);
      expect(updates.some((e) => e.ct.tcp?.state === TCP_STATE.ESTABLISHED)).toBe(true);
      expect(updates.some((e) => ((e.ct.status ?? 0) & IPS.ASSURED) !== 0)).toBe(true);
      expect(evs.at(-1)!.kind).toBe(EVENT.DESTROY);
      expect(evs.filter((e) => e.kind === EVENT.NEW).length).toBe(1);
      // every event is about the same connection
      expect(new Set(evs.map((e) => e.ct.orig.sport)).size).toBe(1);
    }
  });

  it('UDP over IPv4 and IPv6: NEW unreplied, UPDATE with SEEN_REPLY, DESTROY after the timeout', async () => {
    cli.run('sh', ['-c', 'printf hello | socat -t1 - UDP4:10.2.0.2:5353']);
    cli.run('sh', ['-c', 'printf hello | socat -t1 - UDP6:[fd02::2]:5353']);
    for (const [l3, src, dst] of [[AF_INET, '10.1.0.2', '10.2.0.2'], [AF_INET6, 'fd01::2', 'fd02::2']] as const) {
      const evs = await lifecycle(l3, IPPROTO.UDP, dst);
      expect(evs[0]!.kind).toBe(EVENT.NEW);
      expect(evs[0]!.ct.orig).toMatchObject({ src, dst, dport: 5353 });
      expect((evs[0]!.ct.status ?? 0) & IPS.SEEN_REPLY).toBe(0);
      expect(evs.some((e) => e.kind === EVENT.UPDATE && ((e.ct.status ?? 0) & IPS.SEEN_REPLY) !== 0)).toBe(true);
      expect(evs.at(-1)!.kind).toBe(EVENT.DESTROY);
    }
  });

  it('ICMP echo over IPv4 and ICMPv6: NEW with type/id, UPDATE on the reply, DESTROY', async () => {
    cli.run('ping', ['-c', '1', '-W', '2', '10.2.0.2']);
    cli.run('ping', ['-6', '-c', '1', '-W', '2', 'fd02::2']);
    const v4 = await lifecycle(AF_INET, IPPROTO.ICMP, '10.2.0.2');
    expect(v4[0]!.kind).toBe(EVENT.NEW);
    expect(v4[0]!.ct.orig).toMatchObject({ src: '10.1.0.2', icmpType: 8, icmpCode: 0 });
    expect(v4[0]!.ct.reply).toMatchObject({ src: '10.2.0.2', icmpType: 0, icmpId: v4[0]!.ct.orig.icmpId });
    expect(v4.some((e) => e.kind === EVENT.UPDATE)).toBe(true);
    const v6 = await lifecycle(AF_INET6, IPPROTO.ICMPV6, 'fd02::2');
    expect(v6[0]!.kind).toBe(EVENT.NEW);
    expect(v6[0]!.ct.orig).toMatchObject({ src: 'fd01::2', icmpType: 128 });
    expect(v6.at(-1)!.kind).toBe(EVENT.DESTROY);
  });

  it('kept count of what it saw and lost nothing', () => {
    expect(listener.stats.events).toBe(seen.length);
    expect(listener.stats.overruns).toBe(0);
    expect(listener.stats.decodeErrors).toBe(0);
    expect(listener.kernelBufferSize).toBeGreaterThanOrEqual(4 << 20);
  });
});
