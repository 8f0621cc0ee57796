import { describe, expect, it } from 'vitest';
import { AF_INET, AF_INET6, IPPROTO, type Conntrack, type Tuple } from '../../src/model/conntrack.js';
import {
  conntrackIdentityEquals, expectationIdentityEquals, hashConntrack, hashExpectation, hashTuple, tupleEquals,
} from '../../src/cache/hash.js';
import { CacheTable } from '../../src/cache/table.js';
import { conntrackIdentity } from '../../src/cache/hash.js';

const tcp = (src: string, dst: string, sport: number, dport: number, zone?: number): Conntrack => ({
  orig: { l3: AF_INET, src, dst, proto: IPPROTO.TCP, sport, dport },
  ...(zone !== undefined ? { zone } : {}),
});

describe('identity hash and equality', () => {
  it('same tuple in another zone is another identity', () => {
    const a = tcp('10.0.0.1', '10.0.0.2', 1000, 80);
    const b = tcp('10.0.0.1', '10.0.0.2', 1000, 80, 5);
    const c = tcp('10.0.0.1', '10.0.0.2', 1000, 80, 0);
    expect(conntrackIdentityEquals(a, b)).toBe(false);
    expect(hashConntrack(a)).not.toBe(hashConntrack(b));
    // zone 0 is the default zone: same as no zone
    expect(conntrackIdentityEquals(a, c)).toBe(true);
    expect(hashConntrack(a)).toBe(hashConntrack(c));
    // a directional orig zone counts when CTA_ZONE is absent
    const d: Conntrack = { orig: { ...a.orig, zone: 5 } };
    expect(conntrackIdentityEquals(b, d)).toBe(true);
    expect(hashConntrack(b)).toBe(hashConntrack(d));
  });

  it('every identity field matters, non-identity fields do not', () => {
    const base = tcp('10.0.0.1', '10.0.0.2', 1000, 80);
    const variants: Conntrack[] = [
      tcp('10.0.0.3', '10.0.0.2', 1000, 80), tcp('10.0.0.1', '10.0.0.3', 1000, 80),
      tcp('10.0.0.1', '10.0.0.2', 1001, 80), tcp('10.0.0.1', '10.0.0.2', 1000, 81),
      tcp('10.0.0.2', '10.0.0.1', 80, 1000),
      { orig: { ...base.orig, proto: IPPROTO.UDP } },
    ];
    for (const v of variants) {
      expect(conntrackIdentityEquals(base, v)).toBe(false);
      expect(hashConntrack(base)).not.toBe(hashConntrack(v));
    }
    const same: Conntrack = { ...tcp('10.0.0.1', '10.0.0.2', 1000, 80), mark: 7, status: 14, timeout: 99, id: 3 };
    expect(conntrackIdentityEquals(base, same)).toBe(true);
    expect(hashConntrack(base)).toBe(hashConntrack(same));
  });

  it('does not confuse address boundaries', () => {
    const a: Tuple = { l3: AF_INET, src: '1.2.3.4', dst: '5.6.7.8', proto: 6, sport: 1, dport: 2 };
    const b: Tuple = { l3: AF_INET, src: '1.2.3.45', dst: '.6.7.8', proto: 6, sport: 1, dport: 2 };
    expect(hashTuple(a, 0)).not.toBe(hashTuple(b, 0));
    expect(tupleEquals(a, b)).toBe(false);
  });

  it('IPv6', () => {
    const a: Conntrack = { orig: { l3: AF_INET6, src: 'fd00::1', dst: 'fd00::2', proto: IPPROTO.UDP, sport: 5, dport: 53 } };
    const b: Conntrack = { orig: { ...a.orig, dst: 'fd00::3' } };
    const c: Conntrack = { orig: { ...a.orig, l3: AF_INET } };
    expect(conntrackIdentityEquals(a, { orig: { ...a.orig } })).toBe(true);
    expect(conntrackIdentityEquals(a, b)).toBe(false);
    expect(conntrackIdentityEquals(a, c)).toBe(false);
    expect(hashConntrack(a)).not.toBe(hashConntrack(b));
  });

  it('ICMP by type, code and id; ports ignored', () => {
    const icmp = (type: number, code: number, id: number): Conntrack => ({
      orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.ICMP, icmpType: type, icmpCode: code, icmpId: id },
    });
    const a = icmp(8, 0, 100);
    for (const v of [icmp(0, 0, 100), icmp(8, 1, 100), icmp(8, 0, 101)]) {
      expect(conntrackIdentityEquals(a, v)).toBe(false);
      expect(hashConntrack(a)).not.toBe(hashConntrack(v));
    }
    const withPorts: Conntrack = { orig: { ...a.orig, sport: 9, dport: 9 } };
    expect(conntrackIdentityEquals(a, withPorts)).toBe(true);
    expect(hashConntrack(a)).toBe(hashConntrack(withPorts));
    const v6: Conntrack = { orig: { ...a.orig, l3: AF_INET6, src: 'fd00::1', dst: 'fd00::2', proto: IPPROTO.ICMPV6 } };
    const v6b: Conntrack = { orig: { ...v6.orig, icmpId: 7 } };
    expect(conntrackIdentityEquals(v6, v6b)).toBe(false);
  });

  it('expectations: master and expected tuple', () => {
    const master: Tuple = { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 6, sport: 4000, dport: 21 };
    const t1: Tuple = { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 6, sport: 0, dport: 5000 };
    const t2: Tuple = { ...t1, dport: 5001 };
    const mask: Tuple = { l3: AF_INET, src: '255.255.255.255', dst: '255.255.255.255', proto: 6, sport: 0, dport: 0xffff };
    const a = { master, tuple: t1, mask };
    expect(expectationIdentityEquals(a, { master, tuple: { ...t1 }, mask, timeout: 3 })).toBe(true);
    expect(expectationIdentityEquals(a, { master, tuple: t2, mask })).toBe(false);
    expect(hashExpectation(a)).not.toBe(hashExpectation({ master, tuple: t2, mask }));
  });

  it('spreads a realistic key set over the buckets', () => {
    const t = new CacheTable<Conntrack>({ name: 't', kind: 'ct', ops: conntrackIdentity, hashSize: 65536, limit: 1 << 20 });
    let n = 0;
    for (let i = 0; i < 100_000; i++) {
      const ct = tcp(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, '192.168.1.1', 1024 + (i % 50000), 443);
      if (t.insert(ct, t.hashOf(ct), 0)) n++;
    }
    expect(n).toBe(100_000);
    expect(t.maxChain()).toBeLessThan(12);
  });
});
