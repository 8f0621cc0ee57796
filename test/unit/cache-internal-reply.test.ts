// The internal cache keeps no reply tuple when it is the plain inverse of the
// orig tuple (model/nat.ts keptReply): one object less per cached connection.
// What must not change: NAT entries keep theirs, the sync messages are the
// same bytes, a kernel dump of unchanged entries reconciles as unchanged, and
// -i still shows the reply tuple in every format.
import { describe, expect, it } from 'vitest';
import { AF_INET, EVENT, IPPROTO, IPS, type Conntrack, type Tuple } from '../../src/model/conntrack.js';
import { isPlainReply, invertTuple } from '../../src/model/nat.js';
import { InternalCache } from '../../src/cache/internal.js';
import { FakeClock } from '../../src/util/clock.js';
import { encodeConntrackMsg } from '../../src/wire/conntrack.js';
import { MSG } from '../../src/wire/header.js';
import { formatConntrackPlain, formatConntrackXml } from '../../src/control/format/dump.js';
import { formatConntrackJson } from '../../src/control/format/json.js';

const orig = (k: number): Tuple => ({ l3: AF_INET, src: `10.1.0.${k}`, dst: '192.0.2.1', proto: IPPROTO.TCP, sport: 1000 + k, dport: 443 });
const kernel = (k: number, reply?: Tuple): Conntrack => {
  const o = orig(k);
  return {
    orig: o, reply: reply ?? invertTuple(o), status: IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED,
    timeout: 300, mark: 0, id: 7000 + k, tcp: { state: 3 },
  };
};
const snat = (k: number): Tuple => ({ ...invertTuple(orig(k)), dst: '198.51.100.7', dport: 40000 + k });

describe('isPlainReply', () => {
  it('is the kernel\'s reply without NAT, for port-based protocols only', () => {
    const o = orig(1);
    expect(isPlainReply(o, invertTuple(o))).toBe(true);
    expect(isPlainReply(o, snat(1))).toBe(false);
    expect(isPlainReply(o, { ...invertTuple(o), src: '203.0.113.9' })).toBe(false); // DNAT
    expect(isPlainReply(o, { ...invertTuple(o), sport: 8443 })).toBe(false); // port remap
    expect(isPlainReply(o, { ...invertTuple(o), zone: 2 })).toBe(false);
    expect(isPlainReply(o, { ...invertTuple(o), proto: IPPROTO.UDP })).toBe(false);
    const icmp: Tuple = { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.ICMP, icmpType: 8, icmpCode: 0, icmpId: 5 };
    expect(isPlainReply(icmp, invertTuple(icmp))).toBe(false);
  });
});

describe('internal cache and plain reply tuples', () => {
  const cache = (): InternalCache => InternalCache.forConntracks({ clock: new FakeClock() });

  it('stores a NEW or UPDATE without its plain reply, keeps a NAT one, and an update cannot bring a plain one back', () => {
    const c = cache();
    const a = c.event(EVENT.NEW, kernel(1))!;
    expect(a.value.reply).toBeUndefined();
    const b = c.event(EVENT.NEW, kernel(2, snat(2)))!;
    expect(b.value.reply).toEqual(snat(2));
    c.event(EVENT.UPDATE, kernel(1));
    expect(a.value.reply).toBeUndefined();
    const u = c.event(EVENT.UPDATE, kernel(3))!;
    expect(u.value.reply).toBeUndefined();
    c.populate(kernel(4));
    expect(c.get(kernel(4))!.value.reply).toBeUndefined();
  });

  it('sends the same bytes as the entry with its reply tuple', () => {
    const c = cache();
    const stored = c.event(EVENT.NEW, kernel(5))!.value;
    const a = Buffer.alloc(512);
    const b = Buffer.alloc(512);
    const la = encodeConntrackMsg(a, 0, MSG.CT_NEW, 0, 1, stored);
    const lb = encodeConntrackMsg(b, 0, MSG.CT_NEW, 0, 1, kernel(5));
    expect(a.subarray(0, la)).toEqual(b.subarray(0, lb));
    const n = c.event(EVENT.NEW, kernel(6, snat(6)))!.value;
    const ln = encodeConntrackMsg(a, 0, MSG.CT_NEW, 0, 1, n);
    const lk = encodeConntrackMsg(b, 0, MSG.CT_NEW, 0, 1, kernel(6, snat(6)));
    expect(a.subarray(0, ln)).toEqual(b.subarray(0, lk));
  });

  it('a kernel dump of the same entries reconciles as unchanged, not as updates', () => {
    const c = cache();
    for (let k = 1; k <= 5; k++) c.event(EVENT.NEW, kernel(k, k === 3 ? snat(3) : undefined));
    const r = c.reconcile([1, 2, 3, 4, 5].map((k) => kernel(k, k === 3 ? snat(3) : undefined)));
    expect(r).toMatchObject({ created: 0, updated: 0, unchanged: 5, deleted: 0 });
    // A NAT that appears (or goes) is a change.
    const r2 = c.reconcile([1, 2, 3, 4, 5].map((k) => kernel(k, k === 1 ? snat(1) : undefined)));
    expect(r2).toMatchObject({ updated: 2, unchanged: 3 });
  });

  it('-i shows the reply tuple in text, XML and JSON; -e (no reply) does not', () => {
    const c = cache();
    const stored = c.event(EVENT.NEW, kernel(7))!.value;
    const full = kernel(7);
    expect(formatConntrackPlain(stored, 3, { hasReply: true })).toBe(formatConntrackPlain(full, 3, { hasReply: true }));
    expect(formatConntrackPlain(stored, 3, { hasReply: true })).toMatch(/src=192\.0\.2\.1 dst=10\.1\.0\.7 sport=443 dport=1007/);
    expect(formatConntrackXml(stored, { hasReply: true })).toBe(formatConntrackXml(full, { hasReply: true }));
    expect(formatConntrackJson(stored, 3, { hasReply: true })).toBe(formatConntrackJson(full, 3, { hasReply: true }));
    expect(formatConntrackPlain(stored, 3, { hasReply: false })).not.toMatch(/src=192\.0\.2\.1 dst=10\.1\.0\.7/);
  });
});
