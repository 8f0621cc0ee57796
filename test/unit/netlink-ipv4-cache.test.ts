// The IPv4 text caches of nlattr.ts: decode shares strings, encode and the
// filter reuse the decoded value, and a cache never changes what text means.
import { describe, expect, it } from 'vitest';
import { cachedIpv4, ipv4Value, readIpv4, rememberIpv4, writeIpv4 } from '../../src/netlink/nlattr.js';
import { parseIPv4 } from '../../src/filter/cidr.js';

const bytes = (...b: number[]): Buffer => Buffer.from(b);

describe('IPv4 text caches', () => {
  it('decoding the same address twice returns the same string; its value is then cached by text', () => {
    const a = readIpv4(bytes(10, 100, 255, 254), 0);
    expect(a).toBe('10.100.255.254');
    expect(readIpv4(bytes(10, 100, 255, 254), 0)).toBe(a);
    expect(cachedIpv4(a)).toBe(0x0a64fffe);
    expect(parseIPv4(a)).toBe(0x0a64fffe);
    const out = Buffer.alloc(4);
    writeIpv4(out, 0, a);
    expect([...out]).toEqual([10, 100, 255, 254]);
  });

  it('colliding addresses never return each other\'s text or value', () => {
    const seen = new Map<number, string>();
    for (let k = 0; k < 20000; k++) {
      const v = (0xc0a80000 + k * 7919) >>> 0;
      const s = readIpv4(bytes(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255), 0);
      expect(s).toBe(`${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`);
      seen.set(v, s);
    }
    for (const [v, s] of seen) {
      const c = cachedIpv4(s);
      expect(c === -1 || c === v).toBe(true);
      expect(parseIPv4(s)).toBe(v);
    }
  });

  it('non-canonical or bad text is parsed (or refused) as before', () => {
    readIpv4(bytes(10, 0, 0, 1), 0);
    expect(cachedIpv4('010.0.0.1')).toBe(-1);
    const out = Buffer.alloc(4);
    writeIpv4(out, 0, '010.0.0.1');
    expect([...out]).toEqual([10, 0, 0, 1]);
    expect(() => writeIpv4(out, 0, 'not-an-ip')).toThrow(TypeError);
    expect(() => writeIpv4(out, 0, '')).toThrow(TypeError);
    expect(cachedIpv4('')).toBe(-1);
    rememberIpv4('1.2.3.4', 0x01020304);
    expect(cachedIpv4('1.2.3.4')).toBe(0x01020304);
  });

  it('parses what any dotted quad means and refuses everything else, cached or not', () => {
    for (let k = 0; k < 5000; k++) {
      const v = Math.imul(k + 1, 0x9e3779b1) >>> 0;
      const parts = [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
      expect(ipv4Value(parts.join('.'))).toBe(v);
      // Leading zeros, up to three digits a part, as the parser always took them.
      expect(ipv4Value(parts.map((p) => String(p).padStart(3, '0')).join('.'))).toBe(v);
    }
    for (const bad of ['1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.256', '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.4 ', ' 1.2.3.4',
      '1.2.3.0255', '1.2.3.-4', '1,2.3.4', 'a.b.c.d', '1.2.3.4/8', '::1']) {
      expect(() => ipv4Value(bad), bad).toThrow(TypeError);
      const out = Buffer.alloc(4);
      expect(() => writeIpv4(out, 0, bad), bad).toThrow(TypeError);
    }
  });
});
