// The encoder's IPv4 memo: a cache entry keeps its orig addresses as numbers
// after the first encode, and later encodes (a bulk resync) write those.
import { describe, expect, it } from 'vitest';
import { WireError } from '../../src/errors.js';
import { AF_INET, AF_INET6, IPPROTO, IPS, type Conntrack } from '../../src/model/conntrack.js';
import { MSG } from '../../src/wire/header.js';
import { encodeConntrackMsg, type Ipv4Memo } from '../../src/wire/conntrack.js';
import { CacheTable } from '../../src/cache/table.js';
import { conntrackIdentity } from '../../src/cache/hash.js';

const ct = (src: string, dst: string): Conntrack => ({
  orig: { l3: AF_INET, src, dst, proto: IPPROTO.TCP, sport: 1234, dport: 80 },
  status: IPS.CONFIRMED, timeout: 60, tcp: { state: 3 },
});

function bytes(c: Conntrack, memo?: Ipv4Memo): Buffer {
  const buf = Buffer.alloc(512);
  const n = encodeConntrackMsg(buf, 0, MSG.CT_NEW, 0, 7, c, undefined, buf.length, memo);
  return buf.subarray(0, n);
}

describe('encodeConntrackMsg IPv4 memo', () => {
  it('fills an empty memo with the addresses as int32 and encodes the same bytes as without one', () => {
    const c = ct('10.100.1.2', '255.255.255.254');
    const memo = { src4: 0, dst4: 0 };
    expect(bytes(c, memo)).toEqual(bytes(c));
    expect(memo).toEqual({ src4: (10 << 24) | (100 << 16) | (1 << 8) | 2, dst4: 0xfffffffe | 0 });
  });

  it('writes the memo, not the text, once it is known', () => {
    const memo = { src4: (192 << 24 | 0 << 16 | 2 << 8 | 7) | 0, dst4: (198 << 24 | 51 << 16 | 100 << 8 | 1) | 0 };
    expect(bytes(ct('10.0.0.1', '10.0.0.2'), memo)).toEqual(bytes(ct('192.0.2.7', '198.51.100.1')));
  });

  it('parses every time where a value is 0 (0.0.0.0), and leaves alone an object without memo fields', () => {
    const memo = { src4: 0, dst4: 0 };
    expect(bytes(ct('0.0.0.0', '10.0.0.2'), memo)).toEqual(bytes(ct('0.0.0.0', '10.0.0.2')));
    expect(memo.src4).toBe(0);
    const bare: Ipv4Memo = {};
    bytes(ct('10.0.0.1', '10.0.0.2'), bare);
    expect(bare).toEqual({});
  });

  it('keeps no memo for IPv6 and still reports bad IPv4 text as a bad value', () => {
    const memo = { src4: 0, dst4: 0 };
    const v6: Conntrack = { orig: { l3: AF_INET6, src: '2001:db8::1', dst: '2001:db8::2', proto: IPPROTO.UDP, sport: 1, dport: 2 } };
    bytes(v6, memo);
    expect(memo).toEqual({ src4: 0, dst4: 0 });
    expect(() => bytes(ct('10.0.0.256', '10.0.0.2'), memo)).toThrow(WireError);
    expect(memo).toEqual({ src4: 0, dst4: 0 });
  });

  it('a cache table entry is born with an empty memo', () => {
    const t = new CacheTable<Conntrack>({ name: 'internal', kind: 'ct', ops: conntrackIdentity, hashSize: 16 });
    const c = ct('10.1.2.3', '10.3.2.1');
    const e = t.insert(c, t.hashOf(c), 0)!;
    expect([e.src4, e.dst4]).toEqual([0, 0]);
    bytes(e.value, e);
    expect([e.src4, e.dst4]).toEqual([(10 << 24 | 1 << 16 | 2 << 8 | 3) | 0, (10 << 24 | 3 << 16 | 2 << 8 | 1) | 0]);
  });
});
