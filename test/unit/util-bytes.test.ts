// The index-based integer reads and writes (src/util/bytes.ts) must give
// exactly what Buffer's own methods give, for every value and alignment: the
// wire and netlink codecs switched to them for speed, not for other bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  rdI32BE, rdI32LE, rdU16BE, rdU16LE, rdU32BE, rdU32LE, wrU16BE, wrU16LE, wrU32BE, wrU32LE,
} from '../../src/util/bytes.js';

const bytes = fc.uint8Array({ minLength: 4, maxLength: 64 });

describe('util/bytes reads', () => {
  it('read what Buffer reads, at any offset', () => {
    fc.assert(fc.property(bytes, fc.nat(), (u8, at) => {
      const b = Buffer.from(u8);
      const p4 = at % (b.length - 3);
      const p2 = at % (b.length - 1);
      expect(rdU16BE(b, p2)).toBe(b.readUInt16BE(p2));
      expect(rdU16LE(b, p2)).toBe(b.readUInt16LE(p2));
      expect(rdU32BE(b, p4)).toBe(b.readUInt32BE(p4));
      expect(rdU32LE(b, p4)).toBe(b.readUInt32LE(p4));
      expect(rdI32BE(b, p4)).toBe(b.readInt32BE(p4));
      expect(rdI32LE(b, p4)).toBe(b.readInt32LE(p4));
    }), { numRuns: 500 });
  });

  it('read from a Buffer that is a slice of a larger one (byteOffset not 0)', () => {
    const whole = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05]);
    const b = whole.subarray(3);
    expect(rdU32BE(b, 1)).toBe(0x01020304);
    expect(rdU32LE(b, 0)).toBe(0x030201ef);
    expect(rdU16BE(b, 4)).toBe(0x0405);
  });

  it('give 0xffffffff, not -1, for the unsigned 32-bit reads', () => {
    const b = Buffer.alloc(4, 0xff);
    expect(rdU32BE(b, 0)).toBe(0xffffffff);
    expect(rdU32LE(b, 0)).toBe(0xffffffff);
    expect(rdI32BE(b, 0)).toBe(-1);
  });
});

describe('util/bytes writes', () => {
  it('write the bytes Buffer writes, leaving the neighbours alone', () => {
    fc.assert(fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 12 }), (v, at) => {
      const v16 = v & 0xffff;
      const cases: [(b: Buffer, p: number, x: number) => void, (b: Buffer, x: number, p: number) => void, number][] = [
        [wrU16BE, (b, x, p) => b.writeUInt16BE(x, p), v16],
        [wrU16LE, (b, x, p) => b.writeUInt16LE(x, p), v16],
        [wrU32BE, (b, x, p) => b.writeUInt32BE(x, p), v],
        [wrU32LE, (b, x, p) => b.writeUInt32LE(x, p), v],
      ];
      for (const [ours, theirs, x] of cases) {
        const a = Buffer.alloc(16, 0xa5);
        const b = Buffer.alloc(16, 0xa5);
        ours(a, at, x);
        theirs(b, x, at);
        expect(a.equals(b)).toBe(true);
      }
    }), { numRuns: 500 });
  });
});
