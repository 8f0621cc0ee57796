// Property tests: decode(encode(x)) = x for generated wire-form entries and
// expectations, and no input (random bytes, truncated or mutated real
// messages, nonsense entries) makes the codec throw anything but WireError.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WireError } from '../../src/errors.js';
import {
  AF_INET, AF_INET6, IPPROTO, type Conntrack, type Expectation, type L3Family, type Tuple,
} from '../../src/model/conntrack.js';
import { readIpv4, readIpv6 } from '../../src/netlink/nlattr.js';
import {
  MSG, decodeConntrackMsg, decodeExpectationMsg, encodeConntrackMsg, encodeExpectationMsg, isDataType,
} from '../../src/wire/index.js';
import { captureAvailable, captureFrames, messagesOf } from '../helpers/pcap.js';

const RUNS = 400;

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });

const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => readIpv4(Buffer.from(b), 0));
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => readIpv6(Buffer.from(b), 0));
const addr = (l3: L3Family): fc.Arbitrary<string> => (l3 === AF_INET ? ipv4 : ipv6);
const family = fc.constantFrom<L3Family>(AF_INET, AF_INET6);
const name = (max: number): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_.'.split('')), { maxLength: max }).map((a) => a.join(''));

const PROTOS = [IPPROTO.TCP, IPPROTO.UDP, IPPROTO.SCTP, IPPROTO.DCCP, IPPROTO.ICMP, IPPROTO.ICMPV6,
  IPPROTO.GRE, IPPROTO.UDPLITE, 0, 2, 255] as const;

/** Sets only the keys whose value is defined, as decode does. */
function defined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
}

/** Kernel-style label bytes: 4·k bytes, the last word non-zero (what the wire can carry back). */
const labels = fc.integer({ min: 1, max: 8 }).chain((k) =>
  fc.tuple(fc.uint8Array({ minLength: 4 * k - 4, maxLength: 4 * k - 4 }), fc.uint8Array({ minLength: 4, maxLength: 4 })
    .filter((w) => w.some((x) => x !== 0)))
    .map(([a, b]) => Buffer.concat([Buffer.from(a), Buffer.from(b)])));

const seqAdj = fc.record({ correctionPos: u32, offsetBefore: u32, offsetAfter: u32 });

interface Gen { ct: Conntrack; windowTracking: boolean }

const conntrack: fc.Arbitrary<Gen> = fc.record({ l3: family, proto: fc.constantFrom(...PROTOS), windowTracking: fc.boolean() })
  .chain(({ l3, proto, windowTracking }) => fc.record({
    src: addr(l3), dst: addr(l3), sport: u16, dport: u16,
    icmp: opt(fc.tuple(u8, u8, u16)),
    status: u32, timeout: opt(u32), mark: opt(u32),
    tcp: opt(fc.record({ state: u8, wscaleOrig: u8, wscaleReply: u8 })),
    sctp: opt(fc.record({ state: u8, vtagOrig: u32, vtagReply: u32 })),
    dccp: opt(fc.record({ state: u8, role: u8 })),
    master: opt(family.chain((ml3) => fc.record({
      l3: fc.constant(ml3), src: addr(ml3), dst: addr(ml3), proto: u8, ports: opt(fc.tuple(u16, u16)),
    }))),
    snatAddr: opt(addr(l3)), dnatAddr: opt(addr(l3)), snatPort: opt(u16), dnatPort: opt(u16),
    seqAdj: opt(fc.tuple(seqAdj, seqAdj)),
    helper: opt(name(11)), labels: opt(labels),
    synproxy: opt(fc.record({ its: u32, isn: u32, tsoff: u32 })), zone: opt(u16),
  }).map((g): Gen => {
    const orig: Tuple = { l3, src: g.src, dst: g.dst, proto };
    const ported = proto === IPPROTO.TCP || proto === IPPROTO.UDP || proto === IPPROTO.SCTP || proto === IPPROTO.DCCP;
    if (ported) {
      orig.sport = g.sport;
      orig.dport = g.dport;
    }
    if ((proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) && g.icmp) {
      [orig.icmpType, orig.icmpCode, orig.icmpId] = g.icmp;
    }
    const ct: Conntrack = defined({
      orig, status: g.status, timeout: g.timeout, mark: g.mark,
      tcp: proto === IPPROTO.TCP && g.tcp
        ? (windowTracking ? g.tcp : { state: g.tcp.state }) : undefined,
      sctp: proto === IPPROTO.SCTP ? g.sctp : undefined,
      dccp: proto === IPPROTO.DCCP ? g.dccp : undefined,
      master: g.master && defined<Tuple>({
        l3: g.master.l3, src: g.master.src, dst: g.master.dst, proto: g.master.proto,
        sport: g.master.ports?.[0], dport: g.master.ports?.[1],
      }),
      snatAddr: g.snatAddr, dnatAddr: g.dnatAddr, snatPort: g.snatPort, dnatPort: g.dnatPort,
      seqAdjOrig: g.seqAdj?.[0], seqAdjReply: g.seqAdj?.[1],
      helper: g.helper, labels: g.labels, synproxy: g.synproxy, zone: g.zone,
    });
    return { ct, windowTracking };
  }));

const PORTED = new Set<number>([IPPROTO.TCP, IPPROTO.UDP, IPPROTO.SCTP, IPPROTO.DCCP]);

const expectation: fc.Arbitrary<Expectation> = fc.record({
  l3: family, mproto: fc.constantFrom(...PROTOS), eproto: fc.constantFrom(...PROTOS),
}).chain(({ l3, mproto, eproto }) => {
  const tuple = (proto: number, fam: L3Family = l3): fc.Arbitrary<Tuple> =>
    fc.record({ src: addr(fam), dst: addr(fam), sport: u16, dport: u16 }).map((t) => {
      const out: Tuple = { l3: fam, src: t.src, dst: t.dst, proto };
      // [QUIRK] ports travel iff the *master* protocol has ports.
      if (PORTED.has(mproto)) {
        out.sport = t.sport;
        out.dport = t.dport;
      }
      return out;
    });
  return fc.record({
    master: tuple(mproto), tuple: tuple(eproto), mask: tuple(eproto),
    timeout: opt(u32), flags: u32, class: opt(u32),
    nat: opt(fc.record({ dir: u32, tuple: tuple(eproto, AF_INET) })),
    helper: opt(name(11)), fn: opt(name(27)),
  }).map((e) => defined<Expectation>({ ...e }));
});

function onlyWireErrors(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
  }
}

describe('properties', () => {
  it('conntrack: decode(encode(x)) equals x for wire-form entries', () => {
    const buf = Buffer.alloc(4096);
    fc.assert(fc.property(conntrack, fc.integer({ min: 0, max: 64 }), fc.constantFrom(MSG.CT_NEW, MSG.CT_UPD, MSG.CT_DEL),
      ({ ct, windowTracking }, off, type) => {
        const len = encodeConntrackMsg(buf, off, type, 0, 42, ct, { tcpWindowTracking: windowTracking });
        expect(len % 4).toBe(0);
        expect(buf.readUInt16BE(off + 2)).toBe(len);
        expect(buf[off]).toBe(0x10 | type);
        expect(decodeConntrackMsg(buf, off, len)).toEqual(ct);
      }), { numRuns: RUNS });
  });

  it('expectation: decode(encode(x)) equals x', () => {
    const buf = Buffer.alloc(4096);
    fc.assert(fc.property(expectation, (exp) => {
      const len = encodeExpectationMsg(buf, 0, MSG.EXP_NEW, 0, 1, exp);
      expect(decodeExpectationMsg(buf, 0, len)).toEqual(exp);
    }), { numRuns: RUNS });
  });

  it('random bytes never throw anything but WireError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, fixHeader) => {
      const b = Buffer.from(bytes);
      if (fixHeader && b.length >= 4) b.writeUInt16BE(b.length, 2);
      onlyWireErrors(() => decodeConntrackMsg(b, 0, b.length));
      onlyWireErrors(() => decodeExpectationMsg(b, 0, b.length));
    }), { numRuns: RUNS * 2 });
  });

  it('random attribute soups never throw anything but WireError', () => {
    const attr = fc.record({ id: fc.integer({ min: 0, max: 40 }), len: fc.integer({ min: 0, max: 40 }), fill: u8 });
    fc.assert(fc.property(fc.array(attr, { maxLength: 20 }), (list) => {
      const parts = list.map(({ id, len, fill }) => {
        const a = Buffer.alloc((len + 3) & ~3, fill);
        if (a.length >= 4) {
          a.writeUInt16BE(len, 0);
          a.writeUInt16BE(id, 2);
        }
        return a;
      });
      const b = Buffer.concat([Buffer.alloc(8), ...parts]);
      b[0] = 0x10;
      b.writeUInt16BE(Math.min(b.length, 0xffff), 2);
      onlyWireErrors(() => decodeConntrackMsg(b, 0, b.length));
      onlyWireErrors(() => decodeExpectationMsg(b, 0, b.length));
    }), { numRuns: RUNS * 2 });
  });

  it.runIf(captureAvailable)('truncations and byte mutations of real messages only throw WireError', () => {
    const real = captureFrames().slice(0, 400).flatMap((f) => messagesOf(f.payload, f.frame).msgs)
      .filter((m) => isDataType(m.hdr.type)).map((m) => Buffer.from(m.bytes));
    // Every truncation of a sample of distinct messages, with the header len patched to match.
    const seen = new Set<number>();
    for (const m of real) {
      if (seen.has(m.length)) continue;
      seen.add(m.length);
      for (let cut = 0; cut <= m.length; cut++) {
        const b = Buffer.from(m.subarray(0, cut));
        onlyWireErrors(() => decodeConntrackMsg(b, 0, b.length));
        if (cut >= 4) b.writeUInt16BE(cut, 2);
        onlyWireErrors(() => decodeConntrackMsg(b, 0, b.length));
      }
    }
    fc.assert(fc.property(fc.constantFrom(...real), fc.array(fc.tuple(fc.nat(), u8), { minLength: 1, maxLength: 6 }),
      (m, flips) => {
        const b = Buffer.from(m);
        for (const [at, v] of flips) b[8 + (at % (b.length - 8))] = v;
        onlyWireErrors(() => decodeConntrackMsg(b, 0, b.length));
      }), { numRuns: RUNS * 2 });
  });

  it('encoding nonsense entries only throws WireError', () => {
    const junkNum = fc.oneof(u32, fc.integer(), fc.double(), fc.constant(NaN), fc.constant(-1));
    const junkAddr = fc.oneof(ipv4, ipv6, fc.string({ maxLength: 40 }));
    const buf = Buffer.alloc(256);
    fc.assert(fc.property(fc.record({
      l3: family, src: junkAddr, dst: junkAddr, proto: fc.oneof(fc.constantFrom(...PROTOS), junkNum),
      sport: junkNum, status: junkNum, mark: junkNum, helper: fc.string({ maxLength: 300 }), snat: junkAddr,
      limit: fc.integer({ min: 0, max: 256 }),
    }), (g) => {
      const ct = {
        orig: { l3: g.l3, src: g.src, dst: g.dst, proto: g.proto, sport: g.sport, dport: 1, icmpType: g.sport },
        status: g.status, mark: g.mark, helper: g.helper, snatAddr: g.snat, tcp: { state: g.sport },
        master: { l3: g.l3, src: g.dst, dst: g.src, proto: g.proto },
      } as Conntrack;
      onlyWireErrors(() => encodeConntrackMsg(buf, 0, MSG.CT_NEW, 0, 1, ct, undefined, g.limit));
      const exp = { master: ct.orig, tuple: ct.orig, mask: ct.master!, flags: g.status, fn: g.helper } as Expectation;
      onlyWireErrors(() => encodeExpectationMsg(buf, 0, MSG.EXP_NEW, 0, 1, exp, undefined, g.limit));
    }), { numRuns: RUNS });
  });
});
