// The external cache's column table (cache/external-ct.ts) against the rules
// it replaces: every peer message decoded to a Conntrack and applied to a map
// of objects (CT_NEW replaces, CT_UPD merges with mergeConntrack or creates,
// CT_DEL removes). Random message sequences over a small identity space (so
// the same connection comes back often), mixing the messages the columns hold
// (IPv4, ports/ICMP, status, timeout, mark, TCP state, zone, NAT, a zero
// synproxy) with those kept as objects (IPv6, helper, window scales, SCTP,
// master tuple, a real synproxy).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExternalCache } from '../../src/cache/external.js';
import { ctZone, l4Word } from '../../src/cache/hash.js';
import { mergeConntrack } from '../../src/cache/internal.js';
import { WireError } from '../../src/errors.js';
import { AF_INET, AF_INET6, EVENT, IPPROTO, type Conntrack, type EventKind, type L3Family } from '../../src/model/conntrack.js';
import { FakeClock } from '../../src/util/clock.js';
import { CtFields, scanConntrackFields, conntrackFromFields } from '../../src/wire/ct-fields.js';
import { HEADER_SIZE } from '../../src/wire/header.js';
import { MSG, decodeConntrackMsg, encodeConntrackMsg } from '../../src/wire/index.js';

const TYPE: Record<EventKind, number> = { [EVENT.NEW]: MSG.CT_NEW, [EVENT.UPDATE]: MSG.CT_UPD, [EVENT.DESTROY]: MSG.CT_DEL };
const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });

interface Msg { kind: EventKind; ct: Conntrack; windowTracking: boolean; omitTimeout: boolean }

const message: fc.Arbitrary<Msg> = fc.record({
  kind: fc.constantFrom<EventKind>(EVENT.NEW, EVENT.UPDATE, EVENT.UPDATE, EVENT.DESTROY),
  l3: fc.constantFrom<L3Family>(AF_INET, AF_INET, AF_INET, AF_INET6),
  a: fc.integer({ min: 1, max: 2 }),
  proto: fc.constantFrom(IPPROTO.TCP, IPPROTO.TCP, IPPROTO.UDP, IPPROTO.ICMP, IPPROTO.SCTP, IPPROTO.GRE),
  port: fc.integer({ min: 1, max: 2 }),
  icmp: opt(fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 1 }))),
  status: fc.integer({ min: 0, max: 0xffffffff }),
  timeout: opt(fc.integer({ min: 0, max: 500 })),
  mark: opt(fc.integer({ min: 0, max: 0xffffffff })),
  tcp: opt(fc.record({ state: fc.integer({ min: 0, max: 9 }), wscaleOrig: fc.integer({ min: 0, max: 14 }), wscaleReply: fc.integer({ min: 0, max: 14 }) })),
  windowTracking: fc.boolean(),
  omitTimeout: fc.boolean(),
  zone: opt(fc.integer({ min: 0, max: 1 })),
  snat: opt(fc.tuple(fc.constantFrom('192.0.2.1', '192.0.2.2'), opt(fc.integer({ min: 0, max: 0xffff })))),
  dnat: opt(fc.tuple(fc.constantFrom('198.51.100.1', '198.51.100.2'), opt(fc.integer({ min: 0, max: 0xffff })))),
  helper: fc.constantFrom(undefined, undefined, undefined, 'ftp'),
  sctp: opt(fc.record({ state: fc.integer({ min: 0, max: 7 }), vtagOrig: fc.integer({ min: 0, max: 9 }), vtagReply: fc.integer({ min: 0, max: 9 }) })),
  master: fc.constantFrom(false, false, false, true),
  synproxy: fc.constantFrom(undefined, undefined, 0, 7),
}).map((g) => {
  const v6 = g.l3 === AF_INET6;
  const ct: Conntrack = {
    orig: { l3: g.l3, src: v6 ? `fd00::${g.a}` : `10.0.0.${g.a}`, dst: v6 ? 'fd00::9' : '10.0.0.9', proto: g.proto },
    status: g.status,
  };
  if (g.proto === IPPROTO.ICMP) {
    if (g.icmp) [ct.orig.icmpType, ct.orig.icmpCode, ct.orig.icmpId] = g.icmp;
  } else {
    ct.orig.sport = 1000 + g.port;
    ct.orig.dport = 80;
  }
  if (g.timeout !== undefined) ct.timeout = g.timeout;
  if (g.mark !== undefined) ct.mark = g.mark;
  if (g.proto === IPPROTO.TCP && g.tcp) ct.tcp = g.tcp;
  if (g.proto === IPPROTO.SCTP && g.sctp) ct.sctp = g.sctp;
  if (g.zone !== undefined) ct.zone = g.zone;
  if (!v6 && g.snat) {
    ct.snatAddr = g.snat[0];
    if (g.snat[1] !== undefined) ct.snatPort = g.snat[1];
  }
  if (!v6 && g.dnat) {
    ct.dnatAddr = g.dnat[0];
    if (g.dnat[1] !== undefined) ct.dnatPort = g.dnat[1];
  }
  if (g.helper) ct.helper = g.helper;
  if (g.synproxy !== undefined) ct.synproxy = { isn: g.synproxy, its: 0, tsoff: 0 };
  if (g.master) ct.master = { l3: AF_INET, src: '10.9.9.9', dst: '10.0.0.9', proto: IPPROTO.TCP, sport: 4000, dport: 21 };
  return { kind: g.kind, ct, windowTracking: g.windowTracking, omitTimeout: g.omitTimeout };
});

function encode(m: Msg, seq: number): Buffer {
  const buf = Buffer.alloc(2048);
  const len = encodeConntrackMsg(buf, 0, TYPE[m.kind], 0, seq, m.ct, { tcpWindowTracking: m.windowTracking, omitTimeout: m.omitTimeout });
  return buf.subarray(0, len);
}

const identity = (ct: Conntrack): string => `${ct.orig.l3}|${ct.orig.src}|${ct.orig.dst}|${ct.orig.proto}|${l4Word(ct.orig)}|${ctZone(ct)}`;

/** The object rules, as the table of objects applied them. */
class Model {
  readonly entries = new Map<string, { value: Conntrack; firstSeen: number; lastUpdate: number }>();
  createOk = 0; deleteOk = 0; updateOk = 0; deleteNotFound = 0;

  apply(kind: EventKind, ct: Conntrack, now: number): void {
    const k = identity(ct);
    const e = this.entries.get(k);
    if (kind === EVENT.DESTROY) {
      if (e === undefined) this.deleteNotFound++;
      else {
        this.entries.delete(k);
        this.deleteOk++;
      }
    } else if (e === undefined) {
      this.entries.set(k, { value: ct, firstSeen: now, lastUpdate: now });
      this.createOk++;
    } else if (kind === EVENT.NEW) {
      this.entries.set(k, { value: ct, firstSeen: now, lastUpdate: now });
      this.createOk++;
      this.deleteOk++;
    } else {
      mergeConntrack(e.value, ct);
      e.lastUpdate = now;
      this.updateOk++;
    }
  }
}

describe('external cache columns vs the object rules', () => {
  it('random CT_NEW/CT_UPD/CT_DEL sequences leave the same entries, in the same order, with the same counters', () => {
    fc.assert(fc.property(fc.array(message, { minLength: 1, maxLength: 60 }), fc.boolean(), (msgs, viaObjects) => {
      const clock = new FakeClock();
      const ext = new ExternalCache({ clock, hashSize: 16 });
      const model = new Model();
      let seq = 1;
      for (const m of msgs) {
        clock.advance(7);
        const wire = encode(m, seq++);
        const decoded = decodeConntrackMsg(wire, 0, wire.length);
        model.apply(m.kind, decodeConntrackMsg(wire, 0, wire.length), Math.floor(clock.now()));
        // Either way in: the datagram path (columns where possible) or a decoded object.
        if (viaObjects && seq % 2 === 0) ext.applyCt(m.kind, decoded);
        else ext.applyCtMessage(m.kind, wire, 0, wire.length);
      }
      const got = [...ext.cts()];
      const want = [...model.entries.values()];
      expect(got.map((o) => o.value)).toEqual(want.map((e) => e.value));
      expect(got.map((o) => [o.firstSeen, o.lastUpdate])).toEqual(want.map((e) => [e.firstSeen, e.lastUpdate]));
      expect(ext.ctSize).toBe(model.entries.size);
      expect(ext.ctStats).toMatchObject({
        active: model.entries.size, total: model.entries.size,
        createOk: model.createOk, deleteOk: model.deleteOk, updateOk: model.updateOk, deleteNotFound: model.deleteNotFound,
      });
      for (const e of want) expect(ext.getCt(e.value)?.value).toEqual(e.value);
    }), { numRuns: Number(process.env.PROP_RUNS ?? 300) });
  });

  it('scanConntrackFields takes exactly the messages decodeConntrackMsg would read, and rebuilds the same Conntrack', () => {
    fc.assert(fc.property(message, (m) => {
      const wire = encode(m, 1);
      const f = new CtFields();
      const decoded = decodeConntrackMsg(wire, 0, wire.length);
      if (scanConntrackFields(wire, 0, wire.length, f)) expect(conntrackFromFields(f)).toEqual(decoded);
    }), { numRuns: 500 });
  });

  it('rejects a malformed message with the decoder\'s reason and changes nothing', () => {
    const ext = new ExternalCache({ clock: new FakeClock() });
    const ok = encode({ kind: EVENT.NEW, ct: { orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.TCP, sport: 1, dport: 2 }, status: 8 }, windowTracking: false, omitTimeout: false }, 1);
    const bad = Buffer.from(ok);
    bad.writeUInt16BE(3, HEADER_SIZE); // the first attribute's length below its header
    const reason = (b: Buffer): string => {
      try {
        decodeConntrackMsg(b, 0, b.length);
      } catch (e) {
        return (e as WireError).reason;
      }
      return 'none';
    };
    expect(() => ext.applyCtMessage(EVENT.NEW, bad, 0, bad.length)).toThrow(WireError);
    try {
      ext.applyCtMessage(EVENT.NEW, bad, 0, bad.length);
    } catch (e) {
      expect((e as WireError).reason).toBe(reason(bad));
    }
    expect(ext.ctSize).toBe(0);
    ext.applyCtMessage(EVENT.NEW, ok, 0, ok.length);
    expect(ext.ctSize).toBe(1);
  });

  it('grows past its first slots and buckets, frees and reuses slots, is empty after a flush and refills to its limit', () => {
    const clock = new FakeClock();
    const ext = new ExternalCache({ clock, hashSize: 16, limit: 5000 });
    const ct = (i: number): Conntrack => ({
      orig: { l3: AF_INET, src: `10.1.${i >> 8}.${i & 255}`, dst: '10.0.0.9', proto: IPPROTO.UDP, sport: i, dport: 53 }, status: 8, timeout: 30,
    });
    for (let i = 0; i < 5000; i++) {
      const w = encode({ kind: EVENT.NEW, ct: ct(i), windowTracking: false, omitTimeout: false }, i);
      ext.applyCtMessage(EVENT.NEW, w, 0, w.length);
    }
    expect(ext.ctSize).toBe(5000);
    expect(ext.applyCt(EVENT.NEW, ct(5001))).toBe(null); // the limit
    expect(ext.ctStats).toMatchObject({ noSpace: 1, createFailed: 1 });
    for (let i = 0; i < 5000; i += 2) ext.applyCt(EVENT.DESTROY, ct(i));
    expect(ext.ctSize).toBe(2500);
    for (let i = 0; i < 5000; i += 2) ext.applyCt(EVENT.UPDATE, ct(i)); // back, in freed slots
    expect(ext.ctSize).toBe(5000);
    const order = [...ext.cts()].map((o) => o.value.orig.sport);
    expect(order.slice(0, 3)).toEqual([1, 3, 5]);
    expect(order.slice(2500, 2503)).toEqual([0, 2, 4]);
    for (let i = 0; i < 5000; i++) expect(ext.getCt(ct(i))?.value.orig.sport).toBe(i);
    expect(ext.flushCt()).toBe(5000);
    expect(ext.ctSize).toBe(0);
    expect([...ext.cts()]).toEqual([]);
    for (let i = 0; i < 5000; i++) expect(ext.getCt(ct(i))).toBe(null);
    ext.applyCt(EVENT.NEW, ct(7));
    expect([...ext.cts()].map((o) => o.value.orig.sport)).toEqual([7]);
    // Refilled to the limit in the kept columns: every entry found, in insertion order again.
    for (let i = 0; i < 5000; i++) if (i !== 7) ext.applyCt(EVENT.NEW, ct(i));
    expect(ext.ctSize).toBe(5000);
    for (let i = 0; i < 5000; i++) expect(ext.getCt(ct(i))?.value.orig.sport).toBe(i);
    expect([...ext.cts()].slice(0, 3).map((o) => o.value.orig.sport)).toEqual([7, 0, 1]);
  });
});
