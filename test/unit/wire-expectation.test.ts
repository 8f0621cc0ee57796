// Expectation messages (§2.4): emission order, the master-protocol port quirk,
// receiver rules. Source-derived: the capture has no EXP_* messages.
import { describe, expect, it } from 'vitest';
import { WireError } from '../../src/errors.js';
import { AF_INET, AF_INET6, type Expectation } from '../../src/model/conntrack.js';
import { MSG, NTA_EXP, decodeExpectationMsg, encodeExpectationMsg } from '../../src/wire/index.js';
import { hex } from '../helpers/pcap.js';

function enc(exp: Expectation, opts?: { omitTimeout?: boolean }): Buffer {
  const buf = Buffer.alloc(1024);
  return buf.subarray(0, encodeExpectationMsg(buf, 0, MSG.EXP_NEW, 0, 9, exp, opts));
}

function ids(msg: Buffer): number[] {
  const out: number[] = [];
  for (let p = 8; p + 4 <= msg.length; p += (msg.readUInt16BE(p) + 3) & ~3) out.push(msg.readUInt16BE(p + 2));
  return out;
}

const ftp: Expectation = {
  master: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 6, sport: 40000, dport: 21 },
  tuple: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 6, sport: 0, dport: 50000 },
  mask: { l3: AF_INET, src: '255.255.255.255', dst: '255.255.255.255', proto: 6, sport: 0, dport: 0xffff },
  timeout: 300, flags: 0, class: 0,
  nat: { dir: 1, tuple: { l3: AF_INET, src: '192.0.2.1', dst: '0.0.0.0', proto: 6, sport: 0, dport: 50001 } },
  helper: 'ftp', fn: 'nat-follow-master',
};

describe('expectation encode', () => {
  it('emits master, expected, mask, TIMEOUT, FLAGS, CLASS, NAT (IPV4, L4PROTO, PORT, DIR), HELPER, FN', () => {
    const m = enc(ftp);
    expect(m.subarray(0, 4)).toEqual(hex('13 00 00 ' + m.length.toString(16).padStart(2, '0')));
    expect(ids(m)).toEqual([0, 2, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15, 17, 16, 18, 19, 20]);
    expect(m.includes(hex('00 08 00 03 9c 40 00 15'))).toBe(true); // master ports BE
    expect(m.includes(hex('00 08 00 10 00 00 c3 51'))).toBe(true); // NAT port BE
    expect(m.includes(hex('00 08 00 12 00 00 00 01'))).toBe(true); // NAT_DIR
    expect(m.includes(Buffer.from('nat-follow-master\0'))).toBe(true);
    expect(decodeExpectationMsg(m, 0, m.length)).toEqual(ftp);
  });

  it('minimal: FLAGS always sent (0), TIMEOUT omitted with CommitTimeout, no CLASS/NAT/strings', () => {
    const m = enc({ master: ftp.master, tuple: ftp.tuple, mask: ftp.mask, timeout: 5 }, { omitTimeout: true });
    expect(ids(m)).toEqual([0, 2, 3, 4, 6, 7, 8, 10, 11, 13]);
    expect(m.subarray(-8)).toEqual(hex('00 08 00 0d 00 00 00 00'));
  });

  it('[QUIRK] ports of expected/mask/NAT follow the master protocol', () => {
    // ICMP master: no PORT anywhere, even for a TCP expected tuple.
    const icmpMaster: Expectation = { ...ftp, master: { l3: AF_INET, src: '1.1.1.1', dst: '2.2.2.2', proto: 1 } };
    expect(ids(enc(icmpMaster)).filter((i) => i === 3 || i === 7 || i === 11 || i === 16)).toEqual([]);
    // TCP master, ICMP expected tuple: PORT sent for it anyway (zeros when unset).
    const m = enc({ ...ftp, nat: undefined, tuple: { l3: AF_INET, src: '1.1.1.1', dst: '2.2.2.2', proto: 1 } });
    expect(m.includes(hex('00 05 00 06 01 00 00 00 00 08 00 07 00 00 00 00'))).toBe(true);
  });

  it('IPv6: no NAT address attribute exists; decode fills unspecified addresses', () => {
    const v6: Expectation = {
      master: { l3: AF_INET6, src: '2001:db8::1', dst: '2001:db8::2', proto: 17, sport: 1, dport: 2 },
      tuple: { l3: AF_INET6, src: '2001:db8::1', dst: '2001:db8::2', proto: 17, sport: 3, dport: 4 },
      mask: { l3: AF_INET6, src: 'ffff::', dst: 'ffff::', proto: 17, sport: 0, dport: 0xffff },
      flags: 2,
      nat: { dir: 0, tuple: { l3: AF_INET6, src: '2001:db8::9', dst: '::', proto: 17, sport: 0, dport: 9 } },
    };
    const m = enc(v6);
    expect(ids(m)).toEqual([1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 17, 16, 18]);
    expect(decodeExpectationMsg(m, 0, m.length).nat).toEqual({
      dir: 0, tuple: { l3: AF_INET6, src: '::', dst: '::', proto: 17, sport: 0, dport: 9 },
    });
  });

  it('no-space and bad values are WireErrors', () => {
    const buf = Buffer.alloc(1024);
    expect(() => encodeExpectationMsg(buf, 0, MSG.EXP_NEW, 0, 1, ftp, undefined, 40))
      .toThrow(expect.objectContaining({ code: 'CTSYNC_ERR_WIRE_ENCODE', reason: 'no-space' }));
    expect(() => encodeExpectationMsg(buf, 0, MSG.EXP_NEW, 0, 1, { ...ftp, flags: -5 }))
      .toThrow(expect.objectContaining({ reason: 'bad-value' }));
  });
});

describe('expectation decode', () => {
  const base = enc({ master: ftp.master, tuple: ftp.tuple, mask: ftp.mask, flags: 0 });
  const withAttr = (a: string): Buffer => {
    const extra = hex(a);
    const b = Buffer.concat([base, extra]);
    b.writeUInt16BE(b.length, 2);
    return b;
  };
  const reason = (b: Buffer): string => {
    try {
      decodeExpectationMsg(b, 0, b.length);
    } catch (e) {
      expect(e).toBeInstanceOf(WireError);
      return (e as WireError).reason;
    }
    return 'ok';
  };

  it('rejects ids >= 21, wrong fixed sizes, helper > 16 and fn > 32 bytes of nta_len', () => {
    expect(reason(withAttr('00 08 00 15 00 00 00 00'))).toBe('attr-id');
    expect(reason(withAttr('00 08 00 0c 00 00 00 01'))).toBe('ok');
    expect(reason(withAttr('00 05 00 0c 00 00 00 00'))).toBe('fixed-size');
    expect(reason(withAttr('00 10 00 13 61 62 63 64 65 66 67 68 69 6a 6b 00'))).toBe('ok');
    expect(reason(withAttr('00 11 00 13 61 62 63 64 65 66 67 68 69 6a 6b 6c 00 00 00 00'))).toBe('max-size');
    expect(reason(withAttr('00 20 00 14' + ' 61'.repeat(27) + ' 00'))).toBe('ok');
    expect(reason(withAttr('00 21 00 14' + ' 61'.repeat(28) + ' 00 00 00 00'))).toBe('max-size');
    expect(reason(withAttr('00 02 00 0c'))).toBe('ok'); // ≤ 4 trailing bytes are not parsed
    expect(reason(withAttr('00 02 00 0c 00 00 00 00'))).toBe('attr-len');
  });

  it('requires master, expected and mask tuples', () => {
    const b = hex('13 00 00 18 00 00 00 01 00 0c 00 00 01 01 01 01 02 02 02 02 00 05 00 02 06 00 00 00');
    expect(reason(b)).toBe('missing-tuple');
  });

  it(`decodes ${NTA_EXP.TIMEOUT}/${NTA_EXP.CLASS} and keeps the last duplicate`, () => {
    const b = withAttr('00 08 00 0c 00 00 00 01 00 08 00 0e 00 00 00 07 00 08 00 0c 00 00 00 02');
    expect(decodeExpectationMsg(b, 0, b.length)).toMatchObject({ timeout: 2, class: 7, flags: 0 });
  });
});
