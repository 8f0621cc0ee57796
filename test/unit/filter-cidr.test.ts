import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BlockList, isIPv6 } from 'node:net';
import { cidr4Contains, cidr6Contains, ipv4Mask, parseCidr, parseIPv4, parseIPv6Into } from '../../src/filter/cidr.js';

function v6(s: string): number[] {
  const w = new Uint32Array(4);
  if (!parseIPv6Into(s, w)) throw new Error(`bad ${s}`);
  return [...w];
}

describe('cidr', () => {
  it('parses IPv4', () => {
    expect(parseIPv4('0.0.0.0')).toBe(0);
    expect(parseIPv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIPv4('10.1.2.3')).toBe(0x0a010203);
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1..2.3', '1.2.3.', 'a.b.c.d', '1.2.3.4 ', '1234.1.1.1']) {
      expect(parseIPv4(bad)).toBe(-1);
    }
  });

  it('parses IPv6 forms', () => {
    expect(v6('::')).toEqual([0, 0, 0, 0]);
    expect(v6('::1')).toEqual([0, 0, 0, 1]);
    expect(v6('fd00::1')).toEqual([0xfd000000, 0, 0, 1]);
    expect(v6('1:2:3:4:5:6:7:8')).toEqual([0x00010002, 0x00030004, 0x00050006, 0x00070008]);
    expect(v6('1:2:3:4:5:6:7::')).toEqual([0x00010002, 0x00030004, 0x00050006, 0x00070000]);
    expect(v6('::ffff:10.0.0.1')).toEqual([0, 0, 0xffff, 0x0a000001]);
    expect(v6('::ffff:a00:1')).toEqual([0, 0, 0xffff, 0x0a000001]);
    expect(v6('FE80::ABCD%eth0')).toEqual([0xfe800000, 0, 0, 0xabcd]);
    const w = new Uint32Array(4);
    for (const bad of ['', ':', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', '1:2', 'g::1', '1:2:3:4:5:6:7:8::', '::1.2.3']) {
      expect(parseIPv6Into(bad, w)).toBe(false);
    }
  });

  it('agrees with node:net on random addresses', () => {
    fc.assert(fc.property(fc.ipV6(), (s) => {
      expect(isIPv6(s)).toBe(true);
      const w = new Uint32Array(4);
      expect(parseIPv6Into(s, w)).toBe(true);
      // Oracle: node's BlockList must see our 8 expanded groups as the same address.
      const full = [...w].flatMap((x) => [(x >>> 16).toString(16), (x & 0xffff).toString(16)]).join(':');
      const bl = new BlockList();
      bl.addAddress(s, 'ipv6');
      expect(bl.check(full, 'ipv6')).toBe(true);
    }), { numRuns: 500 });
  });

  it('edges /0 /32 /128', () => {
    const all4 = parseCidr('0.0.0.0/0');
    expect(all4.family).toBe(4);
    if (all4.family === 4) {
      expect(all4.host).toBe(false);
      expect(cidr4Contains(all4, parseIPv4('255.255.255.255'))).toBe(true);
      expect(cidr4Contains(all4, 0)).toBe(true);
    }
    const h = parseCidr('10.0.0.1/32');
    expect(h.host).toBe(true);
    if (h.family === 4) {
      expect(cidr4Contains(h, parseIPv4('10.0.0.1'))).toBe(true);
      expect(cidr4Contains(h, parseIPv4('10.0.0.2'))).toBe(false);
    }
    const n = parseCidr('10.0.0.77/24'); // host bits are masked off
    if (n.family === 4) {
      expect(cidr4Contains(n, parseIPv4('10.0.0.255'))).toBe(true);
      expect(cidr4Contains(n, parseIPv4('10.0.1.0'))).toBe(false);
    }
    const hi = parseCidr('128.0.0.0/1');
    if (hi.family === 4) {
      expect(cidr4Contains(hi, parseIPv4('200.1.1.1'))).toBe(true);
      expect(cidr4Contains(hi, parseIPv4('127.255.255.255'))).toBe(false);
    }
    expect(ipv4Mask(0)).toBe(0);
    expect(ipv4Mask(32)).toBe(-1);
    const all6 = parseCidr('::/0');
    const w = new Uint32Array(4);
    parseIPv6Into('ffff::ffff', w);
    if (all6.family === 6) expect(cidr6Contains(all6, w)).toBe(true);
    const h6 = parseCidr('fd00::1/128');
    expect(h6.host).toBe(true);
    const n6 = parseCidr('fd00:0:0:1::/63');
    if (n6.family === 6) {
      parseIPv6Into('fd00:0:0:1:ffff::1', w);
      expect(cidr6Contains(n6, w)).toBe(true);
      parseIPv6Into('fd00:0:0:2::1', w);
      expect(cidr6Contains(n6, w)).toBe(false);
    }
    expect(parseCidr('fd00::').host).toBe(true);
  });

  it('rejects bad prefixes', () => {
    for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '10.0.0.0/x', 'nonsense', '10.0.0/8']) {
      expect(() => parseCidr(bad)).toThrow(/not a valid network/);
    }
  });
});
