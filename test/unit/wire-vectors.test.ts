// The decoded datagrams D1..D16 of shared/spec/vectors/README.md: each frame of
// the capture decodes to exactly the values the README gives (frame numbers
// are 1-based pcap frames).
import { describe, expect, it } from 'vitest';
import {
  ACK_SIZE, FLAG, MSG, decodeConntrackMsg, encodeConntrackMsg, writeAck, writeHeader,
} from '../../src/wire/index.js';
import { AF_INET, AF_INET6, IPS, TCP_STATE } from '../../src/model/conntrack.js';
import { captureAvailable, frame, hex, messagesOf } from '../helpers/pcap.js';

const A = '172.30.1.1';
const B = '172.30.1.2';
const ZERO_SYNPROXY = { its: 0, isn: 0, tsoff: 0 };

function only(n: number) {
  const f = frame(n);
  const { msgs, counters } = messagesOf(f.payload, n);
  expect(Object.values(counters).every((v) => v === 0)).toBe(true);
  return { f, msgs };
}

function ct(n: number, i = 0) {
  const { msgs } = only(n);
  const m = msgs[i]!;
  return { m, ct: decodeConntrackMsg(m.dgram, m.off, m.hdr.len) };
}

describe.runIf(captureAvailable)('vectors README D1..D16', () => {
  it('D1 frame 1: ALIVE|HELLO, 8 bytes', () => {
    const { f, msgs } = only(1);
    expect(f.payload).toEqual(hex('1a 30 00 08 6b 02 c5 d5'));
    expect([f.src, f.dst, f.dport]).toEqual([A, B, 3780]);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]!.hdr).toEqual({ version: 1, type: MSG.CTL, flags: FLAG.ALIVE | FLAG.HELLO, len: 8, seq: 1795343829 });
    const out = Buffer.alloc(8);
    writeHeader(out, 0, MSG.CTL, FLAG.ALIVE | FLAG.HELLO, 8, 1795343829);
    expect(out).toEqual(f.payload);
  });

  it('D2 frame 2 and frame 3: ACK|HELLO|HELLO_BACK, then ACK|HELLO_BACK', () => {
    const f2 = only(2).f;
    expect(f2.payload).toEqual(hex('1a 68 00 10 6b 02 c5 d5 6b 02 c5 d5 6b 02 c5 d5'));
    expect([f2.src, f2.dst]).toEqual([B, A]);
    const m = only(2).msgs[0]!;
    expect(m.hdr).toEqual({ version: 1, type: MSG.CTL, flags: 0x68, len: 16, seq: 1795343829 });
    expect([m.bytes.readUInt32BE(8), m.bytes.readUInt32BE(12)]).toEqual([1795343829, 1795343829]);
    const out = Buffer.alloc(ACK_SIZE);
    writeAck(out, 0, FLAG.ACK | FLAG.HELLO | FLAG.HELLO_BACK, 1795343829, 1795343829, 1795343829);
    expect(out).toEqual(f2.payload);
    const f3 = only(3).f;
    expect(f3.payload).toEqual(hex('1a 48 00 10 6b 02 c5 d6 6b 02 c5 d5 6b 02 c5 d5'));
    writeAck(out, 0, FLAG.ACK | FLAG.HELLO_BACK, 1795343830, 1795343829, 1795343829);
    expect(out).toEqual(f3.payload);
  });

  it('D3 frame 37: CT_NEW TCP from conntrack -I, 84 bytes', () => {
    const { f } = only(37);
    expect(f.payload).toEqual(hex(`
      10 00 00 54 6b 02 c5 e7
      00 0c 00 00 0a 63 00 02 0a 63 00 01
      00 08 00 05 00 00 00 0c
      00 05 00 02 06 00 00 00
      00 08 00 03 9c 40 00 50
      00 05 00 04 03 00 00 00
      00 08 00 06 00 00 00 78
      00 08 00 07 00 00 00 07
      00 10 00 1f 00 00 00 00 00 00 00 00 00 00 00 00`));
    const { m, ct: c } = ct(37);
    expect(m.hdr).toMatchObject({ type: MSG.CT_NEW, flags: 0, len: 84, seq: 1795343847 });
    expect(c).toEqual({
      orig: { l3: AF_INET, src: '10.99.0.2', dst: '10.99.0.1', proto: 6, sport: 40000, dport: 80 },
      status: IPS.CONFIRMED | IPS.ASSURED,
      tcp: { state: TCP_STATE.ESTABLISHED },
      timeout: 120,
      mark: 7,
      synproxy: ZERO_SYNPROXY,
    });
  });

  it('D4 frame 40: CT_NEW UDP in zone 5', () => {
    const { f } = only(40);
    expect(f.payload).toEqual(hex(`10 00 00 54 6b 02 c5 e9 00 0c 00 00 0a 63 00 02 0a 63 00 01 00 08 00 05 00 00 00 08
      00 05 00 02 11 00 00 00 00 08 00 03 13 88 00 35 00 08 00 06 00 00 00 3c 00 08 00 07 00 00 00 00
      00 10 00 1f 00 00 00 00 00 00 00 00 00 00 00 00 00 06 00 20 00 05 00 00`));
    expect(ct(40).ct).toEqual({
      orig: { l3: AF_INET, src: '10.99.0.2', dst: '10.99.0.1', proto: 17, sport: 5000, dport: 53 },
      status: IPS.CONFIRMED, timeout: 60, mark: 0, synproxy: ZERO_SYNPROXY, zone: 5,
    });
  });

  it('D5 frame 44: CT_NEW with source NAT, 92 bytes', () => {
    const { m, ct: c } = ct(44);
    expect(m.hdr).toMatchObject({ type: MSG.CT_NEW, len: 92, seq: 0x6b02c5eb });
    expect(m.bytes.subarray(8, 20)).toEqual(hex('00 0c 00 00 0a 63 00 02 cb 00 71 0a'));
    expect(m.bytes.subarray(68, 76)).toEqual(hex('00 08 00 0c 0a 63 00 01'));
    expect(c).toEqual({
      orig: { l3: AF_INET, src: '10.99.0.2', dst: '203.0.113.10', proto: 6, sport: 40001, dport: 443 },
      status: 0x198,
      tcp: { state: TCP_STATE.SYN_SENT },
      timeout: 100, mark: 0,
      snatAddr: '10.99.0.1',
      synproxy: ZERO_SYNPROXY,
    });
    expect(c.status).toBe(IPS.CONFIRMED | IPS.SRC_NAT | IPS.SRC_NAT_DONE | IPS.DST_NAT_DONE);
    expect(c.snatPort).toBeUndefined();
  });

  it('D6 frame 59: CT_UPD from real traffic, 60 bytes, no MARK, no SYNPROXY', () => {
    const { f } = only(59);
    expect(f.payload).toEqual(hex(`11 00 00 3c 6b 02 c5 f3 00 0c 00 00 0a 63 00 02 0a 63 00 01 00 08 00 05 00 00 00 0e
      00 05 00 02 06 00 00 00 00 08 00 03 a4 8c 1f 90 00 05 00 04 03 00 00 00 00 08 00 06 00 06 97 80`));
    expect(ct(59).ct).toEqual({
      orig: { l3: AF_INET, src: '10.99.0.2', dst: '10.99.0.1', proto: 6, sport: 42124, dport: 8080 },
      status: 0x0e, tcp: { state: TCP_STATE.ESTABLISHED }, timeout: 432000,
    });
  });

  it('D7 frame 68: CT_UPD ICMP, ICMP_ID little-endian', () => {
    const { f } = only(68);
    expect(f.payload).toEqual(hex(`11 00 00 44 6b 02 c5 f9 00 0c 00 00 0a 63 00 02 0a 63 00 01 00 08 00 05 00 00 00 0a
      00 05 00 02 01 00 00 00 00 05 00 16 08 00 00 00 00 05 00 17 00 00 00 00 00 06 00 18 ae 15 00 00
      00 08 00 06 00 00 00 1e`));
    expect(ct(68).ct).toEqual({
      orig: { l3: AF_INET, src: '10.99.0.2', dst: '10.99.0.1', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 5550 },
      status: 0x0a, timeout: 30,
    });
  });

  it('D8 frame 87: CT_DEL payload byte-identical to D4', () => {
    const d4 = only(40).msgs[0]!;
    const { m, ct: c } = ct(87);
    expect(m.bytes.subarray(0, 8)).toEqual(hex('12 00 00 54 6b 02 c6 03'));
    expect(m.bytes.subarray(8)).toEqual(d4.bytes.subarray(8));
    expect(c).toEqual(decodeConntrackMsg(d4.dgram, d4.off, d4.hdr.len));
  });

  it('D9 frame 188: RESYNC from B, from=to=0', () => {
    const { f } = only(188);
    expect(f.payload).toEqual(hex('1a 02 00 10 6b 02 c6 2f 00 00 00 00 00 00 00 00'));
    expect([f.src, f.dst]).toEqual([B, A]);
  });

  it('D10 frame 189: bulk answer, 4 concatenated messages', () => {
    const { f, msgs } = only(189);
    expect(f.payload.length).toBe(304);
    expect(msgs.map((m) => [m.off, m.bytes.subarray(0, 8).toString('hex')])).toEqual([
      [0, '110000546b02c636'], [84, '1100003c6b02c637'], [144, '1000005c6b02c638'], [236, '110000446b02c639'],
    ]);
    const cts = msgs.map((m) => decodeConntrackMsg(m.dgram, m.off, m.hdr.len));
    expect(cts[0]).toMatchObject({ orig: { sport: 40000, dport: 80 }, tcp: { state: 3 }, mark: 9, synproxy: ZERO_SYNPROXY });
    expect(cts[1]).toMatchObject({ orig: { sport: 42124, dport: 8080 }, tcp: { state: TCP_STATE.TIME_WAIT } });
    expect(cts[2]).toMatchObject({ orig: { dst: '203.0.113.10' }, tcp: { state: 1 }, snatAddr: '10.99.0.1' });
    expect(cts[3]).toMatchObject({ orig: { proto: 1, icmpId: 5550 } });
  });

  it('D11 frames 230-237: loss, ALIVE, NACK, retransmission with new seqs', () => {
    expect(only(230).msgs[0]!.bytes.subarray(0, 8)).toEqual(hex('10 00 00 4c 6b 02 c6 52'));
    expect(ct(230).ct.orig).toMatchObject({ proto: 17, sport: 6001, dport: 161 });
    expect(only(231).msgs[0]!.bytes.subarray(0, 8)).toEqual(hex('10 00 00 4c 6b 02 c6 53'));
    expect(ct(231).ct.orig).toMatchObject({ sport: 6002, dport: 162 });
    expect(only(233).f.payload).toEqual(hex('1a 08 00 10 6b 02 c6 54 6b 02 c6 43 6b 02 c6 43'));
    expect(only(234).f.payload).toEqual(hex('1a 10 00 08 6b 02 c6 44'));
    expect(only(236).f.payload).toEqual(hex('1a 04 00 10 6b 02 c6 45 6b 02 c6 52 6b 02 c6 54'));
    const { f, msgs } = only(237);
    expect(f.payload.length).toBe(168);
    expect(msgs.map((m) => m.bytes.subarray(0, 8).toString('hex'))).toEqual([
      '1000004c6b02c656', '1000004c6b02c657', '1a0800106b02c658',
    ]);
    expect(msgs[2]!.bytes).toEqual(hex('1a 08 00 10 6b 02 c6 58 6b 02 c6 43 6b 02 c6 43'));
    // Retransmitted payloads are identical to the lost ones; only the seq changed.
    expect(msgs[0]!.bytes.subarray(8)).toEqual(only(230).msgs[0]!.bytes.subarray(8));
    expect(msgs[1]!.bytes.subarray(8)).toEqual(only(231).msgs[0]!.bytes.subarray(8));
  });

  it('D12 frames 270-271: RESYNC|HELLO from restarted B, bulk with HELLO_BACK on the first data message', () => {
    const { f } = only(270);
    expect(f.payload).toEqual(hex('1a 22 00 10 6b 02 c6 56 00 00 00 00 00 00 00 00'));
    expect(f.sport).toBe(49567);
    const { f: f271, msgs } = only(271);
    expect(f271.payload.length).toBe(296);
    expect(msgs[0]!.bytes.subarray(0, 8)).toEqual(hex('11 40 00 54 6b 02 c6 6b'));
    expect(msgs.map((m) => [m.hdr.type, m.hdr.flags])).toEqual([
      [MSG.CT_UPD, FLAG.HELLO_BACK], [MSG.CT_NEW, 0], [MSG.CT_NEW, 0], [MSG.CT_UPD, 0],
    ]);
    // A data message with HELLO_BACK re-encodes with the same flag.
    const out = Buffer.alloc(200);
    const m0 = msgs[0]!;
    const len = encodeConntrackMsg(out, 0, m0.hdr.type, m0.hdr.flags, m0.hdr.seq, decodeConntrackMsg(m0.dgram, m0.off, m0.hdr.len));
    expect(out.subarray(0, len)).toEqual(m0.bytes);
  });

  it('D13 frame 487: Checksum off → UDP checksum 0; A keeps 0x5a69 on 16-byte datagrams', () => {
    const { f } = only(487);
    expect(f.payload).toEqual(hex('1a 08 00 10 6b 02 c6 81 6b 02 c7 8a 6b 02 c8 03'));
    expect([f.src, f.sport, f.checksum]).toEqual([B, 37876, 0]);
    expect(only(235).f.checksum).toBe(0x5a69);
  });

  it('D14 frame 455: 1444 bytes = 19 CT_NEW of 76 bytes, consecutive seqs', () => {
    const { f, msgs } = only(455);
    expect(f.payload.length).toBe(1444);
    expect(msgs).toHaveLength(19);
    for (let i = 0; i < 19; i++) {
      expect(msgs[i]!.hdr).toMatchObject({ type: MSG.CT_NEW, len: 76, seq: msgs[0]!.hdr.seq + i });
    }
    // A 20th message would reach 1520 >= MTU 1500 - 28.
    expect(1444 + 76).toBeGreaterThanOrEqual(1472);
  });

  it('D15 frames 940/943: DNAT+DPAT and SNAT+SPAT, ports little-endian', () => {
    const a = ct(940);
    expect(a.m.hdr.len).toBe(100);
    expect(a.m.bytes.includes(hex('00 08 00 0d 0a 63 00 01'))).toBe(true);
    expect(a.m.bytes.includes(hex('00 06 00 0f 90 1f 00 00'))).toBe(true);
    expect(a.m.bytes.subarray(20, 28)).toEqual(hex('00 08 00 05 00 00 01 ae'));
    expect(a.ct).toEqual({
      orig: { l3: AF_INET, src: '10.99.0.2', dst: '198.51.100.20', proto: 6, sport: 40100, dport: 80 },
      status: 0x1ae, tcp: { state: 3 }, timeout: 300, mark: 0,
      dnatAddr: '10.99.0.1', dnatPort: 8080, synproxy: ZERO_SYNPROXY,
    });
    const b = ct(943);
    expect(b.m.hdr.len).toBe(92);
    expect(b.m.bytes.includes(hex('00 08 00 0c 0a 63 00 01'))).toBe(true);
    expect(b.m.bytes.includes(hex('00 06 00 0e 48 ee 00 00'))).toBe(true);
    expect(b.ct).toEqual({
      orig: { l3: AF_INET, src: '10.99.0.2', dst: '198.51.100.21', proto: 17, sport: 40200, dport: 53 },
      status: 0x198, timeout: 60, mark: 0,
      snatAddr: '10.99.0.1', snatPort: 61000, synproxy: ZERO_SYNPROXY,
    });
  });

  it('D16 frame 958: IPv6 UDP, 100 bytes', () => {
    const { m, ct: c } = ct(958);
    expect(m.bytes.subarray(0, 8)).toEqual(hex('10 00 00 64 6b 02 ca 8b'));
    expect(m.bytes.subarray(8, 44)).toEqual(hex(`00 24 00 01 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01`));
    expect(c).toEqual({
      orig: { l3: AF_INET6, src: '2001:db8::2', dst: '2001:db8::1', proto: 17, sport: 5353, dport: 53 },
      status: IPS.CONFIRMED, timeout: 60, mark: 0, synproxy: ZERO_SYNPROXY,
    });
  });
});
