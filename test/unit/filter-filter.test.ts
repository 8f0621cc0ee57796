import { describe, expect, it } from 'vitest';
import { AF_INET, AF_INET6, IPPROTO, TCP_STATE, type Conntrack } from '../../src/model/conntrack.js';
import { compileFilter, expectationHelperAccepted, localAddresses, protoNumber } from '../../src/filter/filter.js';

function flow(src: string, dst: string, opts: { proto?: number; replySrc?: string; state?: number } = {}): Conntrack {
  const l3 = src.includes(':') ? AF_INET6 : AF_INET;
  const proto = opts.proto ?? IPPROTO.TCP;
  const rs = opts.replySrc ?? dst;
  return {
    orig: { l3, src, dst, proto, sport: 1000, dport: 80 },
    reply: { l3, src: rs, dst: src, proto, sport: 80, dport: 1000 },
    ...(opts.state !== undefined ? { tcp: { state: opts.state } } : {}),
  };
}

describe('Filter', () => {
  it('no filter accepts everything', () => {
    const f = compileFilter();
    expect(f.accepts(flow('10.0.0.1', '10.0.0.2'))).toBe(true);
    expect(f.accepts(flow('fd00::1', 'fd00::2'))).toBe(true);
  });

  it('Protocol Accept / Ignore', () => {
    const acc = compileFilter({ protocol: { policy: 'accept', protos: [IPPROTO.TCP, IPPROTO.UDP] } });
    expect(acc.accepts(flow('10.0.0.1', '10.0.0.2'))).toBe(true);
    expect(acc.accepts(flow('10.0.0.1', '10.0.0.2', { proto: IPPROTO.UDP }))).toBe(true);
    expect(acc.accepts(flow('10.0.0.1', '10.0.0.2', { proto: IPPROTO.ICMP }))).toBe(false);
    expect(acc.accepts(flow('fd00::1', 'fd00::2', { proto: IPPROTO.ICMPV6 }))).toBe(false);
    const ign = compileFilter({ protocol: { policy: 'ignore', protos: [IPPROTO.UDP] } });
    expect(ign.accepts(flow('10.0.0.1', '10.0.0.2', { proto: IPPROTO.UDP }))).toBe(false);
    expect(ign.accepts(flow('10.0.0.1', '10.0.0.2'))).toBe(true);
  });

  it('protoNumber resolves names and numbers', () => {
    expect(protoNumber('TCP')).toBe(6);
    expect(protoNumber('udp')).toBe(17);
    expect(protoNumber('ipv6-icmp')).toBe(58);
    expect(protoNumber('sctp')).toBe(132);
    expect(protoNumber('47')).toBe(47);
    expect(protoNumber('256')).toBeUndefined();
    expect(protoNumber('bogus')).toBeUndefined();
  });

  it('Address Ignore matches orig src and reply src (not orig dst)', () => {
    const f = compileFilter({ address: { policy: 'ignore', cidrs: ['192.168.0.0/16', '10.9.9.9'] } });
    expect(f.accepts(flow('192.168.1.1', '8.8.8.8'))).toBe(false); // orig src in a net
    expect(f.accepts(flow('8.8.8.8', '192.168.1.1'))).toBe(false); // reply src (= dst, no NAT) in a net
    expect(f.accepts(flow('10.9.9.9', '8.8.8.8'))).toBe(false); // host
    expect(f.accepts(flow('8.8.4.4', '8.8.8.8'))).toBe(true);
    // DNAT: orig dst is the public VIP, reply src the real server
    expect(f.accepts(flow('8.8.4.4', '10.9.9.9', { replySrc: '172.16.0.5' }))).toBe(true);
    expect(f.accepts(flow('8.8.4.4', '1.2.3.4', { replySrc: '192.168.7.7' }))).toBe(false);
  });

  it('host entries and own addresses from 128.0.0.0 up match (kept as signed words)', () => {
    const hosts = compileFilter({ address: { policy: 'ignore', cidrs: ['192.168.1.1', '255.255.255.255', '128.0.0.0'] } });
    expect(hosts.accepts(flow('192.168.1.1', '8.8.8.8'))).toBe(false);
    expect(hosts.accepts(flow('8.8.8.8', '255.255.255.255'))).toBe(false);
    expect(hosts.accepts(flow('128.0.0.0', '8.8.8.8'))).toBe(false);
    expect(hosts.accepts(flow('192.168.1.2', '8.8.8.8'))).toBe(true);
    expect(hosts.accepts(flow('127.255.255.255', '8.8.8.8'))).toBe(true);
    // Without conntrackd's quirk (with it, a host-only Accept list accepts nothing: see below).
    const acc = compileFilter({ address: { policy: 'accept', cidrs: ['203.0.113.9'] } }, { conntrackdAcceptQuirk: false });
    expect(acc.accepts(flow('203.0.113.9', '8.8.8.8'))).toBe(true);
    expect(acc.accepts(flow('203.0.113.8', '8.8.8.8'))).toBe(false);
    const own = compileFilter(undefined, { ownAddresses: ['192.0.2.1', '255.255.255.255'] });
    expect(own.accepts(flow('192.0.2.1', '8.8.8.8'))).toBe(false);
    expect(own.accepts(flow('8.8.8.8', '255.255.255.255'))).toBe(false);
    expect(own.accepts(flow('192.0.2.2', '8.8.8.8'))).toBe(true);
  });

  it('an address that does not parse matches no host, not even 255.255.255.255 (both are -1 as signed words)', () => {
    const hosts = compileFilter({ address: { policy: 'ignore', cidrs: ['255.255.255.255'] } });
    expect(hosts.accepts(flow('not-an-address', '8.8.8.8'))).toBe(true);
    const own = compileFilter(undefined, { ownAddresses: ['255.255.255.255'] });
    expect(own.accepts(flow('not-an-address', '8.8.8.8'))).toBe(true);
  });

  it('CIDR edges: /0, /32, /128', () => {
    const all = compileFilter({ address: { policy: 'ignore', cidrs: ['0.0.0.0/0'] } });
    expect(all.accepts(flow('1.2.3.4', '5.6.7.8'))).toBe(false);
    expect(all.accepts(flow('fd00::1', 'fd00::2'))).toBe(true); // IPv4 entries don't touch IPv6 flows
    const h32 = compileFilter({ address: { policy: 'ignore', cidrs: ['10.0.0.1/32'] } });
    expect(h32.accepts(flow('10.0.0.1', '5.6.7.8'))).toBe(false);
    expect(h32.accepts(flow('10.0.0.2', '5.6.7.8'))).toBe(true);
    const h128 = compileFilter({ address: { policy: 'ignore', cidrs: ['fd00::1/128', '2001:db8::/32'] } });
    expect(h128.accepts(flow('fd00::1', 'fd00::2'))).toBe(false);
    expect(h128.accepts(flow('fd00::3', 'fd00::2'))).toBe(true);
    expect(h128.accepts(flow('fd00::3', '2001:db8:ffff::1'))).toBe(false);
    const all6 = compileFilter({ address: { policy: 'ignore', cidrs: ['::/0'] } });
    expect(all6.accepts(flow('fd00::3', 'fd00::2'))).toBe(false);
    expect(all6.accepts(flow('1.2.3.4', '5.6.7.8'))).toBe(true);
  });

  it('v4-mapped IPv6 flows are matched by IPv6 entries only', () => {
    const v4 = compileFilter({ address: { policy: 'ignore', cidrs: ['10.0.0.0/8'] } });
    expect(v4.accepts(flow('::ffff:10.0.0.5', 'fd00::2'))).toBe(true);
    const mapped = compileFilter({ address: { policy: 'ignore', cidrs: ['::ffff:10.0.0.0/104'] } });
    expect(mapped.accepts(flow('::ffff:10.0.0.5', 'fd00::2'))).toBe(false);
    expect(mapped.accepts(flow('::ffff:a00:5', 'fd00::2'))).toBe(false);
    expect(mapped.accepts(flow('10.0.0.5', '10.0.0.6'))).toBe(true);
  });

  it('Address Accept: conntrackd semantics (netmask AND host test) by default', () => {
    const both = compileFilter({ address: { policy: 'accept', cidrs: ['10.0.0.0/8', '10.1.1.1'] } });
    expect(both.accepts(flow('10.1.1.1', '10.2.2.2'))).toBe(true); // net hit (both) and host hit
    expect(both.accepts(flow('10.5.5.5', '10.2.2.2'))).toBe(false); // net hit only → rejected
    const netsOnly = compileFilter({ address: { policy: 'accept', cidrs: ['10.0.0.0/8'] } });
    expect(netsOnly.accepts(flow('10.5.5.5', '10.2.2.2'))).toBe(false); // empty host list rejects all
    // fixed semantics on request: any entry matching accepts
    const fixed = compileFilter({ address: { policy: 'accept', cidrs: ['10.0.0.0/8', 'fd00::1'] } }, { conntrackdAcceptQuirk: false });
    expect(fixed.accepts(flow('10.5.5.5', '8.8.8.8'))).toBe(true);
    expect(fixed.accepts(flow('8.8.4.4', '8.8.8.8'))).toBe(false);
    expect(fixed.accepts(flow('fd00::1', 'fd00::9'))).toBe(true);
    expect(fixed.accepts(flow('fd00::2', 'fd00::9'))).toBe(false);
  });

  it('State filter applies to TCP only', () => {
    const acc = compileFilter({ state: { policy: 'accept', tcpStates: [TCP_STATE.ESTABLISHED, TCP_STATE.CLOSE] } });
    expect(acc.accepts(flow('1.1.1.1', '2.2.2.2', { state: TCP_STATE.ESTABLISHED }))).toBe(true);
    expect(acc.accepts(flow('1.1.1.1', '2.2.2.2', { state: TCP_STATE.SYN_SENT }))).toBe(false);
    expect(acc.accepts(flow('1.1.1.1', '2.2.2.2'))).toBe(true); // TCP without state: no opinion
    expect(acc.accepts(flow('1.1.1.1', '2.2.2.2', { proto: IPPROTO.UDP }))).toBe(true);
    const udpWithState: Conntrack = { ...flow('1.1.1.1', '2.2.2.2', { proto: IPPROTO.SCTP }), sctp: { state: 1 } };
    expect(acc.accepts(udpWithState)).toBe(true);
    const ign = compileFilter({ state: { policy: 'ignore', tcpStates: [TCP_STATE.SYN_SENT, TCP_STATE.SYN_SENT2] } });
    expect(ign.accepts(flow('1.1.1.1', '2.2.2.2', { state: TCP_STATE.SYN_SENT }))).toBe(false);
    expect(ign.accepts(flow('1.1.1.1', '2.2.2.2', { state: TCP_STATE.SYN_SENT2 }))).toBe(false);
    expect(ign.accepts(flow('1.1.1.1', '2.2.2.2', { state: TCP_STATE.ESTABLISHED }))).toBe(true);
  });

  it('sections combine: each can reject', () => {
    const f = compileFilter({
      protocol: { policy: 'accept', protos: [6, 17] },
      address: { policy: 'ignore', cidrs: ['127.0.0.1', '::1'] },
      state: { policy: 'accept', tcpStates: [TCP_STATE.ESTABLISHED] },
    });
    expect(f.accepts(flow('1.1.1.1', '2.2.2.2', { state: TCP_STATE.ESTABLISHED }))).toBe(true);
    expect(f.accepts(flow('127.0.0.1', '2.2.2.2', { state: TCP_STATE.ESTABLISHED }))).toBe(false);
    expect(f.accepts(flow('::1', '::1', { state: TCP_STATE.ESTABLISHED }))).toBe(false);
    expect(f.accepts(flow('1.1.1.1', '2.2.2.2', { state: TCP_STATE.TIME_WAIT }))).toBe(false);
    expect(f.accepts(flow('1.1.1.1', '2.2.2.2', { proto: IPPROTO.GRE }))).toBe(false);
  });

  it('own addresses are ignored whatever the policy', () => {
    const own = ['192.168.100.1', 'fd00::fe', ...localAddresses()];
    const f = compileFilter({ address: { policy: 'accept', cidrs: ['0.0.0.0/0', '192.168.100.1', '::/0', 'fd00::fe'] } },
      { ownAddresses: own });
    expect(f.accepts(flow('192.168.100.1', '10.0.0.1'))).toBe(false);
    expect(f.accepts(flow('fd00::fe', 'fd00::1'))).toBe(false);
    expect(f.accepts(flow('127.0.0.1', '127.0.0.1'))).toBe(false); // loopback from localAddresses()
    const g = compileFilter({}, { ownAddresses: ['192.168.100.1'] });
    expect(g.accepts(flow('10.0.0.2', '10.0.0.1', { replySrc: '192.168.100.1' }))).toBe(false);
    expect(g.accepts(flow('10.0.0.2', '10.0.0.1'))).toBe(true);
  });

  it('invalid entries are skipped with a warning', () => {
    const f = compileFilter({ address: { policy: 'ignore', cidrs: ['10.0.0.0/33', 'bogus', '10.0.0.1'] } });
    expect(f.warnings.length).toBe(2);
    expect(f.accepts(flow('10.0.0.1', '1.1.1.1'))).toBe(false);
  });
});

describe('ExpectationSync helper filter', () => {
  const master = flow('10.0.0.1', '10.0.0.2').orig;
  const exp = (helper?: string) => ({ master, tuple: master, mask: master, ...(helper !== undefined ? { helper } : {}) });
  it('prefix, case-insensitive; no helper name → refused; no list → all', () => {
    expect(expectationHelperAccepted(exp('sip-5060'), ['SIP'])).toBe(true);
    expect(expectationHelperAccepted(exp('ftp'), ['sip', 'ftp'])).toBe(true);
    expect(expectationHelperAccepted(exp('ftp'), ['sip'])).toBe(false);
    expect(expectationHelperAccepted(exp(), ['ftp'])).toBe(false);
    expect(expectationHelperAccepted(exp(), undefined)).toBe(true);
  });
});
