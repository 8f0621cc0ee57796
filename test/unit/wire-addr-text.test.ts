import { describe, expect, it } from 'vitest';
import { readIpv4, readIpv6 } from '../../src/netlink/nlattr.js';
import { ipv4Text, ipv6Text } from '../../src/wire/addr-text.js';

// Deterministic pseudo-random bytes (xorshift), so a failure replays.
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

describe('interned address text', () => {
  it('gives readIpv4 text for any 4 bytes, and the same string for the same bytes', () => {
    const b = bytes(4 * 50_000, 7);
    const wrong: string[] = [];
    for (let at = 0; at < b.length; at += 4) if (ipv4Text(b, at) !== readIpv4(b, at)) wrong.push(readIpv4(b, at));
    expect(wrong).toEqual([]);
    const c = Buffer.from(b.subarray(0, 4));
    expect(ipv4Text(c, 0)).toBe(ipv4Text(b, 0));
    for (const a of [[0, 0, 0, 0], [255, 255, 255, 255], [10, 0, 0, 1], [192, 168, 1, 10]]) {
      expect(ipv4Text(Buffer.from(a), 0)).toBe(a.join('.'));
    }
  });

  it('gives readIpv6 text for any 16 bytes, zero runs included', () => {
    const b = bytes(16 * 20_000, 11);
    // Zero out some hextets so the "::" compression is exercised.
    for (let at = 0; at < b.length; at += 16) if ((at >> 4) % 3 === 0) b.fill(0, at + 2 * ((at >> 4) % 5), at + 10);
    const wrong: string[] = [];
    for (let at = 0; at < b.length; at += 16) if (ipv6Text(b, at) !== readIpv6(b, at)) wrong.push(readIpv6(b, at));
    expect(wrong).toEqual([]);
    expect(ipv6Text(Buffer.alloc(16), 0)).toBe('::');
  });

  it('a slot collision never returns another address', () => {
    // Many distinct addresses through a 16k-slot table: every answer is still exact.
    const b = Buffer.alloc(4);
    const wrong: string[] = [];
    for (let v = 0; v < 200_000; v += 3) {
      b.writeUInt32BE(Math.imul(v, 2654435761) >>> 0, 0);
      if (ipv4Text(b, 0) !== readIpv4(b, 0)) wrong.push(readIpv4(b, 0));
    }
    expect(wrong).toEqual([]);
  });
});
