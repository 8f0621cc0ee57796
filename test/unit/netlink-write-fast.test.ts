// The direct create writer must produce exactly the generic codec's bytes for
// every entry it accepts, and refuse (write nothing) for every other entry.
import { describe, expect, it } from 'vitest';
import { AF_INET, AF_INET6, IPPROTO, IPS, type Conntrack } from '../../src/model/conntrack.js';
import { writeConntrackAttrs } from '../../src/netlink/ct-codec.js';
import { isPlainCreate, writeCreateFast } from '../../src/netlink/ct-write-fast.js';
import { NlWriter } from '../../src/netlink/nlattr.js';

function generic(ct: Conntrack): Buffer {
  const w = new NlWriter(64);
  writeConntrackAttrs(w, ct, 'create');
  return Buffer.from(w.view());
}

function fast(ct: Conntrack): Buffer | null {
  const w = new NlWriter(64);
  w.raw(3); // an unaligned, non-zero start: the writer must only use its own position
  w.buf.fill(0xaa);
  if (!writeCreateFast(w, ct)) {
    expect(w.off).toBe(3);
    return null;
  }
  return Buffer.from(w.buf.subarray(3, w.off));
}

/** A deterministic pseudo-random corpus of plain entries. */
function corpus(n: number): Conntrack[] {
  let s = 12345;
  const rnd = (m: number): number => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s % m;
  };
  const out: Conntrack[] = [];
  for (let i = 0; i < n; i++) {
    const v6 = rnd(3) === 0;
    const proto = [IPPROTO.TCP, IPPROTO.UDP, IPPROTO.UDPLITE][rnd(3)]!;
    const src = v6 ? `2001:db8:${rnd(65536).toString(16)}::${rnd(65536).toString(16)}` : `10.${rnd(256)}.${rnd(256)}.${rnd(256)}`;
    const dst = v6 ? `fd00::${rnd(65536).toString(16)}` : `192.0.${rnd(256)}.${rnd(256)}`;
    const ct: Conntrack = { orig: { l3: v6 ? AF_INET6 : AF_INET, src, dst, proto, sport: rnd(65536), dport: rnd(65536) } };
    if (rnd(4) > 0) ct.reply = { l3: ct.orig.l3, src: dst, dst: src, proto, sport: ct.orig.dport!, dport: ct.orig.sport! };
    if (rnd(4) > 0) ct.status = rnd(2) ? IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED | IPS.SRC_NAT : 0xffffffff;
    if (rnd(4) > 0) ct.timeout = rnd(2) ? rnd(1_000_000) : 0xfffffff0;
    if (rnd(3) > 0) ct.mark = rnd(2) ? rnd(100) : 0xdeadbeef;
    if (proto === IPPROTO.TCP && rnd(5) > 0) {
      ct.tcp = { state: rnd(10) };
      if (rnd(2)) ct.tcp.wscaleOrig = rnd(15);
      if (rnd(2)) ct.tcp.wscaleReply = rnd(15);
      if (rnd(2)) { ct.tcp.flagsOrig = rnd(256); if (rnd(2)) ct.tcp.flagsMaskOrig = rnd(256); }
      if (rnd(2)) { ct.tcp.flagsReply = rnd(256); if (rnd(2)) ct.tcp.flagsMaskReply = rnd(256); }
    }
    if (rnd(3) === 0) ct.synproxy = rnd(2) ? { isn: 0, its: 0, tsoff: 0 } : { isn: 0xfffffffe, its: rnd(1000), tsoff: 7 };
    if (rnd(8) === 0) {
      // A peer that sent no ports: written as 0.
      delete ct.orig.sport;
      if (ct.reply) delete ct.reply.dport;
    }
    out.push(ct);
  }
  return out;
}

describe('writeCreateFast', () => {
  it('writes the generic bytes for 2000 plain entries (v4/v6, TCP/UDP/UDP-Lite, all TCP fields, synproxy)', () => {
    for (const ct of corpus(2000)) {
      expect(isPlainCreate(ct)).toBe(true);
      expect(fast(ct)?.toString('hex')).toBe(generic(ct).toString('hex'));
    }
  });

  it('refuses what it does not handle: NAT, zones, master, helper, labels, other protocols', () => {
    const base: Conntrack = {
      orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.TCP, sport: 1000, dport: 80 },
      reply: { l3: AF_INET, src: '10.0.0.2', dst: '10.0.0.1', proto: IPPROTO.TCP, sport: 80, dport: 1000 },
      status: IPS.CONFIRMED, timeout: 100,
    };
    expect(fast(base)).not.toBeNull();
    const variants: Conntrack[] = [
      { ...base, reply: { ...base.reply!, dst: '198.51.100.1' } },
      { ...base, reply: { ...base.reply!, sport: 8080 } },
      { ...base, reply: undefined, snatAddr: '198.51.100.1' },
      { ...base, zone: 3 },
      { ...base, orig: { ...base.orig, zone: 1 } },
      { ...base, reply: { ...base.reply!, zone: 2 } },
      { ...base, master: base.orig },
      { ...base, helper: 'ftp' },
      { ...base, labels: Buffer.alloc(16, 1) },
      { ...base, seqAdjOrig: { correctionPos: 1, offsetBefore: 2, offsetAfter: 3 } },
      { ...base, orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.ICMP, icmpType: 8, icmpCode: 0, icmpId: 1 }, reply: undefined },
      { ...base, orig: { ...base.orig, proto: IPPROTO.SCTP }, reply: undefined, sctp: { state: 3 } },
    ];
    for (const ct of variants) {
      if (ct.reply === undefined) delete ct.reply;
      expect(fast(ct), JSON.stringify(ct)).toBeNull();
    }
  });

  it('throws like the generic path on a bad address, with the position unchanged', () => {
    const w = new NlWriter(64);
    const ct: Conntrack = { orig: { l3: AF_INET, src: '10.0.0.300', dst: '10.0.0.2', proto: IPPROTO.UDP, sport: 1, dport: 2 } };
    expect(() => writeCreateFast(w, ct)).toThrow(TypeError);
    expect(w.off).toBe(0);
    expect(() => generic(ct)).toThrow(TypeError);
  });
});
