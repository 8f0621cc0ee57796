// Conntrack message codec: the builder's emission rules and quirks (§2.2),
// NAT derived from kernel reply tuples, and the receiver's rejection rules
// (§2.1), byte by byte.
import { describe, expect, it } from 'vitest';
import { WireError } from '../../src/errors.js';
import { AF_INET, AF_INET6, IPS, type Conntrack, type L3Family } from '../../src/model/conntrack.js';
import { MSG, NTA, NTA_FIXED_LEN, NTA_MAX_LEN, decodeConntrackMsg, encodeConntrackMsg } from '../../src/wire/index.js';
import { captureAvailable, frame, hex, messagesOf } from '../helpers/pcap.js';

const ZERO_SP = { its: 0, isn: 0, tsoff: 0 };

function enc(ct: Conntrack, opts?: Parameters<typeof encodeConntrackMsg>[6]): Buffer {
  const buf = Buffer.alloc(4096);
  const len = encodeConntrackMsg(buf, 0, MSG.CT_NEW, 0, 1, ct, opts);
  return buf.subarray(0, len);
}

/** The attributes of a message as [id, payload hex]. */
function attrs(msg: Buffer): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  let p = 8;
  while (p + 4 <= msg.length) {
    const l = msg.readUInt16BE(p);
    out.push([msg.readUInt16BE(p + 2), msg.subarray(p + 4, p + l).toString('hex')]);
    p += (l + 3) & ~3;
  }
  return out;
}

function attr(msg: Buffer, id: number): string | undefined {
  return attrs(msg).find(([i]) => i === id)?.[1];
}

/** A message made of a header and raw attribute bytes. */
function msg(...parts: string[]): Buffer {
  const body = hex(parts.join(' '));
  const b = Buffer.alloc(8 + body.length);
  b.writeUInt8(0x10, 0);
  b.writeUInt16BE(8 + body.length, 2);
  body.copy(b, 8);
  return b;
}

const IPV4_AB = '00 0c 00 00 0a 00 00 01 0a 00 00 02';
const UDP = '00 05 00 02 11 00 00 00';

function decodeErr(b: Buffer): WireError {
  try {
    decodeConntrackMsg(b, 0, b.length);
  } catch (e) {
    expect(e).toBeInstanceOf(WireError);
    expect((e as WireError).code).toBe('CTSYNC_ERR_WIRE_DECODE');
    return e as WireError;
  }
  throw new Error('expected a WireError');
}

const tcp = (over: Partial<Conntrack> = {}): Conntrack => ({
  orig: { l3: AF_INET, src: '10.99.0.2', dst: '10.99.0.1', proto: 6, sport: 40000, dport: 80 },
  status: IPS.CONFIRMED | IPS.ASSURED,
  tcp: { state: 3, wscaleOrig: 7, wscaleReply: 9 },
  timeout: 120,
  ...over,
});

describe('attribute tables', () => {
  it('list 33 conntrack ids with fixed or maximum sizes', () => {
    expect(Object.keys(NTA)).toHaveLength(33);
    expect(NTA_FIXED_LEN).toHaveLength(33);
    expect(NTA_MAX_LEN).toHaveLength(33);
    for (let id = 0; id < 33; id++) expect((NTA_FIXED_LEN[id]! === 0) !== (NTA_MAX_LEN[id]! === 0)).toBe(true);
    expect([NTA_MAX_LEN[NTA.HELPER_NAME], NTA_MAX_LEN[NTA.LABELS]]).toEqual([16, 1028]);
  });
});

describe('encode: emission order and conditions', () => {
  it('TCP: IPV4, STATUS, L4PROTO, PORT, TCP_STATE, TIMEOUT; wscales only with TCPWindowTracking', () => {
    expect(attrs(enc(tcp())).map(([i]) => i)).toEqual([NTA.IPV4, NTA.STATUS, NTA.L4PROTO, NTA.PORT, NTA.TCP_STATE, NTA.TIMEOUT]);
    const w = enc(tcp(), { tcpWindowTracking: true });
    expect(attrs(w).map(([i]) => i)).toEqual([NTA.IPV4, NTA.STATUS, NTA.L4PROTO, NTA.PORT, NTA.TCP_STATE,
      NTA.TCP_WSCALE_ORIG, NTA.TCP_WSCALE_REPL, NTA.TIMEOUT]);
    expect(decodeConntrackMsg(w, 0, w.length).tcp).toEqual({ state: 3, wscaleOrig: 7, wscaleReply: 9 });
  });

  it('TCP without state still sends PORT (1.4.7); CommitTimeout omits TIMEOUT', () => {
    const m = enc(tcp({ tcp: undefined }), { omitTimeout: true });
    expect(attrs(m)).toEqual([[NTA.IPV4, '0a6300020a630001'], [NTA.STATUS, '0000000c'], [NTA.L4PROTO, '06'], [NTA.PORT, '9c400050']]);
  });

  it('status is always sent (0 when unknown), padding bytes are zero', () => {
    const buf = Buffer.alloc(64, 0xee);
    const len = encodeConntrackMsg(buf, 0, MSG.CT_UPD, 0, 7, { orig: { l3: AF_INET, src: '1.2.3.4', dst: '5.6.7.8', proto: 47 } });
    expect(buf.subarray(0, len)).toEqual(hex('11 00 00 24 00 00 00 07 00 0c 00 00 01 02 03 04 05 06 07 08 00 08 00 05 00 00 00 00 00 05 00 02 2f 00 00 00'));
  });

  it('SCTP, DCCP, UDP-Lite, ICMPv6 protocol parts', () => {
    const base = { l3: AF_INET as L3Family, src: '1.1.1.1', dst: '2.2.2.2', sport: 1, dport: 2 };
    expect(attrs(enc({ orig: { ...base, proto: 132 }, status: 0, sctp: { state: 3, vtagOrig: 0xdeadbeef, vtagReply: 5 } })).slice(3))
      .toEqual([[NTA.PORT, '00010002'], [NTA.SCTP_STATE, '03'], [NTA.SCTP_VTAG_ORIG, 'deadbeef'], [NTA.SCTP_VTAG_REPL, '00000005']]);
    expect(attrs(enc({ orig: { ...base, proto: 33 }, status: 0, dccp: { state: 4, role: 1 } })).slice(3))
      .toEqual([[NTA.PORT, '00010002'], [NTA.DCCP_STATE, '04'], [NTA.DCCP_ROLE, '01']]);
    // UDP-Lite has no builder in conntrackd: no PORT.
    expect(attrs(enc({ orig: { ...base, proto: 136 }, status: 0 })).slice(3)).toEqual([]);
    const v6 = enc({ orig: { l3: AF_INET6, src: 'fe80::1', dst: 'fe80::2', proto: 58, icmpType: 128, icmpCode: 0, icmpId: 0x1234 }, status: 8 });
    expect(attrs(v6).slice(3)).toEqual([[NTA.ICMP_TYPE, '80'], [NTA.ICMP_CODE, '00'], [NTA.ICMP_ID, '3412']]);
  });

  it('full order: …TIMEOUT, MARK, master, NAT, SEQ_ADJ, HELPER, LABELS, SYNPROXY, ZONE', () => {
    const labels = Buffer.alloc(16);
    labels[0] = 0x08; // label 3
    const m = enc({
      ...tcp(),
      mark: 1,
      master: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 6, sport: 1000, dport: 21 },
      snatAddr: '192.0.2.1', dnatAddr: '192.0.2.2', snatPort: 1, dnatPort: 2,
      seqAdjOrig: { correctionPos: 1, offsetBefore: 2, offsetAfter: 3 },
      seqAdjReply: { correctionPos: 4, offsetBefore: 5, offsetAfter: 6 },
      helper: 'ftp', labels, synproxy: { its: 1, isn: 2, tsoff: 3 }, zone: 0x1234,
    });
    expect(attrs(m).slice(5)).toEqual([
      [NTA.TIMEOUT, '00000078'], [NTA.MARK, '00000001'],
      [NTA.MASTER_IPV4, '0a0000010a000002'], [NTA.MASTER_L4PROTO, '06'], [NTA.MASTER_PORT, '03e80015'],
      [NTA.SNAT_IPV4, 'c0000201'], [NTA.DNAT_IPV4, 'c0000202'], [NTA.SPAT_PORT, '0100'], [NTA.DPAT_PORT, '0200'],
      [NTA.NAT_SEQ_ADJ, '000000010000000200000003000000040000000500000006'],
      [NTA.HELPER_NAME, '66747000'], [NTA.LABELS, '00000008'],
      [NTA.SYNPROXY, '000000010000000200000003'], [NTA.ZONE, '1234'],
    ]);
    // HELPER_NAME: nta_len = 4 + strlen + 1, zero padded.
    expect(m.includes(hex('00 08 00 1b 66 74 70 00'))).toBe(true);
    expect(m.includes(hex('00 06 00 20 12 34 00 00'))).toBe(true);
  });

  it('master without ports: no MASTER_PORT; IPv6 master', () => {
    const m = enc({ ...tcp(), master: { l3: AF_INET6, src: '::1', dst: '::2', proto: 1 } });
    expect(attrs(m).slice(6).map(([i]) => i)).toEqual([NTA.MASTER_IPV6, NTA.MASTER_L4PROTO]);
  });
});

describe('encode: quirks, byte level', () => {
  it('ICMP_ID, SPAT_PORT and DPAT_PORT are little-endian; ZONE, PORT, MASTER_PORT big-endian', () => {
    const icmp = enc({ orig: { l3: AF_INET, src: '10.99.0.2', dst: '10.99.0.1', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 5550 }, status: 10 });
    expect(icmp.includes(hex('00 06 00 18 ae 15 00 00'))).toBe(true);
    const nat = enc({ ...tcp(), snatPort: 61000, dnatPort: 8080, zone: 5 });
    expect(nat.includes(hex('00 06 00 0e 48 ee 00 00'))).toBe(true);
    expect(nat.includes(hex('00 06 00 0f 90 1f 00 00'))).toBe(true);
    expect(nat.includes(hex('00 06 00 20 00 05 00 00'))).toBe(true);
    expect(nat.includes(hex('00 08 00 03 9c 40 00 50'))).toBe(true);
  });

  it('SYNPROXY: all-zero attribute as observed, and wire order its, isn, tsoff', () => {
    expect(enc({ ...tcp(), synproxy: ZERO_SP }).subarray(-16)).toEqual(hex('00 10 00 1f 00 00 00 00 00 00 00 00 00 00 00 00'));
    const m = enc({ ...tcp(), synproxy: { isn: 0x11111111, its: 0x22222222, tsoff: 0x33333333 } });
    expect(m.subarray(-16)).toEqual(hex('00 10 00 1f 22 22 22 22 11 11 11 11 33 33 33 33'));
    expect(decodeConntrackMsg(m, 0, m.length).synproxy).toEqual({ isn: 0x11111111, its: 0x22222222, tsoff: 0x33333333 });
  });

  it('LABELS: kernel LE bitmap → BE words up to the highest set label; none when empty', () => {
    const k = Buffer.alloc(16);
    k[4] = 0x02; // label 33
    k[0] = 0x01; // label 0
    const m = enc({ ...tcp(), labels: k });
    expect(m.subarray(-12)).toEqual(hex('00 0c 00 1c 00 00 00 01 00 00 00 02'));
    expect(decodeConntrackMsg(m, 0, m.length).labels).toEqual(k.subarray(0, 8));
    expect(attr(enc({ ...tcp(), labels: Buffer.alloc(16) }), NTA.LABELS)).toBeUndefined();
    const hi = Buffer.alloc(16);
    hi[15] = 0x80; // label 127
    expect(attr(enc({ ...tcp(), labels: hi }), NTA.LABELS)).toBe('000000000000000000000000' + '80000000');
  });
});

describe('encode: NAT derived from the kernel reply tuple (libnetfilter_conntrack tests)', () => {
  it.runIf(captureAvailable)('reproduces frames 44 (SNAT), 940 (DNAT+DPAT) and 943 (SNAT+SPAT) from kernel-form entries', () => {
    const sp = { synproxy: ZERO_SP, mark: 0 };
    const cases: Array<[number, Conntrack]> = [
      [44, {
        orig: { l3: AF_INET, src: '10.99.0.2', dst: '203.0.113.10', proto: 6, sport: 40001, dport: 443 },
        reply: { l3: AF_INET, src: '203.0.113.10', dst: '10.99.0.1', proto: 6, sport: 443, dport: 40001 },
        status: 0x198, tcp: { state: 1 }, timeout: 100, ...sp,
      }],
      [940, {
        orig: { l3: AF_INET, src: '10.99.0.2', dst: '198.51.100.20', proto: 6, sport: 40100, dport: 80 },
        reply: { l3: AF_INET, src: '10.99.0.1', dst: '10.99.0.2', proto: 6, sport: 8080, dport: 40100 },
        status: 0x1ae, tcp: { state: 3 }, timeout: 300, ...sp,
      }],
      [943, {
        orig: { l3: AF_INET, src: '10.99.0.2', dst: '198.51.100.21', proto: 17, sport: 40200, dport: 53 },
        reply: { l3: AF_INET, src: '198.51.100.21', dst: '10.99.0.1', proto: 17, sport: 53, dport: 61000 },
        status: 0x198, timeout: 60, ...sp,
      }],
    ];
    for (const [n, ct] of cases) {
      const m = messagesOf(frame(n).payload, n).msgs[0]!;
      const buf = Buffer.alloc(200);
      const len = encodeConntrackMsg(buf, 0, m.hdr.type, m.hdr.flags, m.hdr.seq, ct);
      expect(buf.subarray(0, len), `frame ${n}`).toEqual(m.bytes);
    }
  });

  const v4 = (st: number | undefined, replyDst: string, replyDport: number): Conntrack => ({
    orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: 1000, dport: 53 },
    reply: { l3: AF_INET, src: '10.0.0.2', dst: replyDst, proto: 17, sport: 53, dport: replyDport },
    status: st,
  });

  it('NAT_DONE bits gate the tests; unknown status passes them', () => {
    expect(attr(enc(v4(IPS.CONFIRMED, '192.0.2.1', 1000)), NTA.SNAT_IPV4)).toBeUndefined();
    expect(attr(enc(v4(IPS.SRC_NAT_DONE, '192.0.2.1', 1000)), NTA.SNAT_IPV4)).toBe('c0000201');
    const unknown = enc(v4(undefined, '192.0.2.1', 2000));
    expect(attr(unknown, NTA.SNAT_IPV4)).toBe('c0000201');
    expect(attr(unknown, NTA.SPAT_PORT)).toBe('d007');
    expect(attr(unknown, NTA.STATUS)).toBe('00000000');
  });

  it('IPv6: the whole address is compared (libnetfilter_conntrack >= 1.0.6), not the first 32 bits', () => {
    // ftfw.md §2.2 item 8 claims a first-32-bit comparison; libnetfilter_conntrack
    // 1.0.9 (Debian bookworm) memcmp()s all 16 bytes, so NAT inside one /32 is sent.
    const ct = (replyDst: string): Conntrack => ({
      orig: { l3: AF_INET6, src: '2001:db8::2', dst: '2001:db8::1', proto: 17, sport: 1, dport: 2 },
      reply: { l3: AF_INET6, src: '2001:db8::1', dst: replyDst, proto: 17, sport: 2, dport: 1 },
      status: IPS.SRC_NAT_DONE | IPS.DST_NAT_DONE,
    });
    expect(attrs(enc(ct('2001:db8::2'))).map(([i]) => i)).toEqual([NTA.IPV6, NTA.STATUS, NTA.L4PROTO, NTA.PORT]);
    expect(attrs(enc(ct('2001:0db8:0:0::2'))).map(([i]) => i)).toEqual([NTA.IPV6, NTA.STATUS, NTA.L4PROTO, NTA.PORT]);
    const same32 = enc(ct('2001:db8::99'));
    expect(attrs(same32).slice(4)).toEqual([[NTA.SNAT_IPV6, '20010db8000000000000000000000099']]);
    expect(same32.includes(hex('00 14 00 1d 20 01 0d b8'))).toBe(true);
    expect(attr(enc(ct('2001:db9::99')), NTA.SNAT_IPV6)).toBe('20010db9000000000000000000000099');
    // IPv4: the whole (32-bit) address, as always.
    const v4 = enc({
      orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: 1, dport: 2 },
      reply: { l3: AF_INET, src: '10.0.0.3', dst: '10.0.0.1', proto: 17, sport: 2, dport: 1 },
      status: IPS.DST_NAT_DONE,
    });
    expect(attrs(v4).slice(4)).toEqual([[NTA.DNAT_IPV4, '0a000003']]);
  });

  it('ICMP: the port tests compare the raw slots (echo id vs reply type/code) [QUIRK]', () => {
    const m = enc({
      orig: { l3: AF_INET, src: '10.0.0.1', dst: '8.8.8.8', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 5550 },
      reply: { l3: AF_INET, src: '8.8.8.8', dst: '192.0.2.1', proto: 1, icmpType: 0, icmpCode: 0, icmpId: 5550 },
      status: IPS.SRC_NAT_DONE | IPS.CONFIRMED,
    });
    // SNAT address, plus a meaningless SPAT = reply type/code slot (0) because it differs from the id.
    expect(attrs(m).slice(-2)).toEqual([[NTA.SNAT_IPV4, 'c0000201'], [NTA.SPAT_PORT, '0000']]);
    const d = enc({
      orig: { l3: AF_INET, src: '10.0.0.1', dst: '8.8.8.8', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 5550 },
      reply: { l3: AF_INET, src: '8.8.8.8', dst: '10.0.0.1', proto: 1, icmpType: 0, icmpCode: 0, icmpId: 5550 },
      status: IPS.DST_NAT_DONE,
    });
    // DPAT: reply id slot (5550) vs orig type/code slot (0x0800) → sent, little-endian.
    expect(attrs(d).slice(-1)).toEqual([[NTA.DPAT_PORT, 'ae15']]);
  });

  it('a reply tuple wins over wire-form NAT fields', () => {
    const m = enc({ ...v4(IPS.CONFIRMED, '10.0.0.1', 1000), snatAddr: '192.0.2.9' });
    expect(attr(m, NTA.SNAT_IPV4)).toBeUndefined();
  });
});

describe('encode: buffer handling and errors', () => {
  it('writes at an offset and honours limit exactly', () => {
    const ct = tcp({ helper: 'sip' });
    const size = enc(ct).length;
    const buf = Buffer.alloc(300, 0xaa);
    expect(encodeConntrackMsg(buf, 100, MSG.CT_NEW, 0, 1, ct, undefined, 100 + size)).toBe(size);
    expect(buf.subarray(100, 100 + size)).toEqual(enc(ct));
    expect(buf[99]).toBe(0xaa);
    expect(buf[100 + size]).toBe(0xaa);
    for (const lim of [100, 107, 108, 100 + size - 1]) {
      expect(() => encodeConntrackMsg(buf, 100, MSG.CT_NEW, 0, 1, ct, undefined, lim))
        .toThrow(expect.objectContaining({ code: 'CTSYNC_ERR_WIRE_ENCODE', reason: 'no-space' }));
    }
    expect(() => encodeConntrackMsg(Buffer.alloc(40), 0, MSG.CT_NEW, 0, 1, ct))
      .toThrow(expect.objectContaining({ reason: 'no-space' }));
  });

  it('bad values become WireError bad-value, not TypeError/RangeError', () => {
    const bad: Conntrack[] = [
      tcp({ orig: { l3: AF_INET, src: 'not-an-ip', dst: '1.2.3.4', proto: 6 } }),
      tcp({ orig: { l3: AF_INET, src: '1.2.3.4', dst: '1.2.3.4', proto: 6, sport: 70000, dport: 1 } }),
      tcp({ orig: { l3: AF_INET6, src: '1.2.3.4', dst: '::1', proto: 6 } }),
      tcp({ status: -1 }),
      tcp({ timeout: 2 ** 32 }),
      tcp({ tcp: { state: 256 } }),
      tcp({ snatAddr: '2001:db8::1' }),
      tcp({ zone: 65536 }),
      tcp({ orig: { l3: AF_INET, src: '1.2.3.4', dst: '1.2.3.4', proto: 300 } }),
    ];
    for (const ct of bad) {
      expect(() => enc(ct)).toThrow(expect.objectContaining({ code: 'CTSYNC_ERR_WIRE_ENCODE', reason: 'bad-value' }));
    }
  });
});

describe('decode: receiver rules (§2.1)', () => {
  it('rejects nta_len < 4, nta_len > remaining, id >= 33, wrong fixed size', () => {
    expect(decodeErr(msg(IPV4_AB, '00 03 00 02 11 00 00 00')).reason).toBe('attr-len');
    expect(decodeErr(msg(IPV4_AB, '00 09 00 02 11 00 00 00')).reason).toBe('attr-len');
    expect(decodeErr(msg(IPV4_AB, UDP, '00 05 00 21 00 00 00 00')).reason).toBe('attr-id');
    expect(decodeErr(msg(IPV4_AB, UDP, '00 05 01 00 00 00 00 00')).reason).toBe('attr-id');
    expect(decodeErr(msg(IPV4_AB, '00 06 00 02 11 00 00 00')).reason).toBe('fixed-size');
    expect(decodeErr(msg(IPV4_AB, UDP, '00 0c 00 07 00 00 00 01 00 00 00 00')).reason).toBe('fixed-size');
  });

  it('helper name: nta_len ≤ 16 (11 chars) accepted, 17 rejected', () => {
    const ok = msg(IPV4_AB, UDP, '00 10 00 1b', Buffer.from('abcdefghijk\0').toString('hex'));
    expect(decodeConntrackMsg(ok, 0, ok.length).helper).toBe('abcdefghijk');
    const long = msg(IPV4_AB, UDP, '00 11 00 1b', Buffer.from('abcdefghijkl\0').toString('hex'), '00 00 00');
    expect(decodeErr(long).reason).toBe('max-size');
    // Encoding a 12-char name is what conntrackd does too; its receivers reject it.
    const m = enc({ ...tcp(), helper: 'abcdefghijkl' });
    expect(decodeErr(m).reason).toBe('max-size');
  });

  it('labels: payload 0 or not a multiple of 4 is ignored; > 1024 bytes rejects the message', () => {
    const zero = msg(IPV4_AB, UDP, '00 04 00 1c');
    expect(decodeConntrackMsg(zero, 0, zero.length).labels).toBeUndefined();
    const odd = msg(IPV4_AB, UDP, '00 07 00 1c 01 02 03 00');
    expect(decodeConntrackMsg(odd, 0, odd.length)).toEqual({ orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 17 } });
    const max = msg(IPV4_AB, UDP, '04 04 00 1c', '00'.repeat(1023) + '01');
    expect(decodeConntrackMsg(max, 0, max.length).labels!.length).toBe(1024);
    const over = msg(IPV4_AB, UDP, '04 08 00 1c', '00'.repeat(1028));
    expect(decodeErr(over).reason).toBe('max-size');
  });

  it('duplicates: the last one wins; order is free; ≤ 4 trailing bytes are ignored', () => {
    const b = msg('00 08 00 07 00 00 00 01', UDP, IPV4_AB, '00 08 00 07 00 00 00 02', '00 00 00 00');
    expect(decodeConntrackMsg(b, 0, b.length)).toEqual({ orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 17 }, mark: 2 });
  });

  it('uses the header len; a region shorter than it, or a header len < 8, is rejected', () => {
    const b = msg(IPV4_AB, UDP);
    expect(decodeErr(b.subarray(0, b.length - 4)).reason).toBe('bad-size');
    expect(() => decodeConntrackMsg(b, 0, 7)).toThrow(expect.objectContaining({ reason: 'truncated' }));
    expect(() => decodeConntrackMsg(b, 10, b.length)).toThrow(expect.objectContaining({ reason: 'truncated' }));
    const c = Buffer.from(b);
    c.writeUInt16BE(4, 2);
    expect(decodeErr(c).reason).toBe('bad-size');
  });

  it('rejects entries no cache can key: no orig addresses / no L4 protocol / half a master', () => {
    expect(decodeErr(msg(UDP)).reason).toBe('missing-tuple');
    expect(decodeErr(msg(IPV4_AB)).reason).toBe('missing-tuple');
    expect(decodeErr(msg(IPV4_AB, UDP, '00 05 00 0a 06 00 00 00')).reason).toBe('missing-master');
  });

  it('wscale/vtag/role without their state attribute are dropped', () => {
    const b = msg(IPV4_AB, '00 05 00 02 06 00 00 00', '00 05 00 19 07 00 00 00');
    expect(decodeConntrackMsg(b, 0, b.length).tcp).toBeUndefined();
  });
});

describe('encode: NAT address comparison parses values', () => {
  const ct = (replyDst: string): Conntrack => ({
    orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: 1, dport: 2 },
    reply: { l3: AF_INET, src: '10.0.0.2', dst: replyDst, proto: 17, sport: 2, dport: 1 },
    status: IPS.SRC_NAT_DONE,
  });
  it('equal values in different text are not NAT; malformed text is bad-value', () => {
    expect(attr(enc(ct('010.0.000.1')), NTA.SNAT_IPV4)).toBeUndefined();
    expect(attr(enc(ct('10.0.0.10')), NTA.SNAT_IPV4)).toBe('0a00000a');
    for (const bad of ['10.0.0', '10.0.0.256', '10.0.0.1.2', '10..0.1', '10.0.0.1x', '1000.0.0.1', '']) {
      expect(() => enc(ct(bad)), bad).toThrow(expect.objectContaining({ reason: 'bad-value' }));
    }
  });
});
