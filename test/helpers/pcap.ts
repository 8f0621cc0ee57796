// Minimal classic-pcap reader for tests: Ethernet (optionally 802.1Q) →
// IPv4/IPv6 → UDP. Enough for the capture in shared/spec/vectors; not a
// general dissector (no IP fragments, no IPv6 extension headers).
import { existsSync, readFileSync } from 'node:fs';
import { readIpv4, readIpv6 } from '../../src/netlink/nlattr.js';
import { readHeader, walkDatagram, newRecvCounters, type NetHdr, type RecvCounters } from '../../src/wire/index.js';

export interface UdpFrame {
  /** 1-based frame number, as tcpdump/wireshark count (every record, UDP or not). */
  frame: number;
  /** Capture time, seconds (fractional). */
  time: number;
  family: 4 | 6;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** UDP header checksum field as captured (0 = none sent). */
  checksum: number;
  payload: Buffer;
}

const LINKTYPE_ETHERNET = 1;

export function readPcapUdp(path: string): UdpFrame[] {
  return parsePcapUdp(readFileSync(path));
}

export function parsePcapUdp(file: Buffer): UdpFrame[] {
  if (file.length < 24) throw new Error('pcap: file shorter than its global header');
  const magicLE = file.readUInt32LE(0);
  let le: boolean;
  let nano: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nano = magicLE === 0xa1b23c4d;
  } else if (file.readUInt32BE(0) === 0xa1b2c3d4 || file.readUInt32BE(0) === 0xa1b23c4d) {
    le = false;
    nano = file.readUInt32BE(0) === 0xa1b23c4d;
  } else {
    throw new Error('pcap: not a classic pcap file (pcapng is not supported)');
  }
  const u32 = (o: number): number => (le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  const linktype = u32(20);
  if (linktype !== LINKTYPE_ETHERNET) throw new Error(`pcap: link type ${linktype} not supported`);

  const out: UdpFrame[] = [];
  let off = 24;
  let frame = 0;
  while (off + 16 <= file.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    const start = off + 16;
    off = start + incl;
    if (off > file.length) throw new Error(`pcap: record ${frame + 1} truncated`);
    frame++;
    const udp = parseEthernet(file.subarray(start, start + incl));
    if (udp === undefined) continue;
    out.push({ frame, time: sec + frac / (nano ? 1e9 : 1e6), ...udp });
  }
  return out;
}

function parseEthernet(pkt: Buffer): Omit<UdpFrame, 'frame' | 'time'> | undefined {
  let p = 12;
  if (pkt.length < 14) return undefined;
  let etherType = pkt.readUInt16BE(p);
  p += 2;
  while (etherType === 0x8100 || etherType === 0x88a8) {
    if (pkt.length < p + 4) return undefined;
    etherType = pkt.readUInt16BE(p + 2);
    p += 4;
  }
  let family: 4 | 6;
  let src: string;
  let dst: string;
  let l4: number;
  let end: number;
  if (etherType === 0x0800) {
    if (pkt.length < p + 20) return undefined;
    const ihl = (pkt[p]! & 0x0f) * 4;
    family = 4;
    l4 = pkt[p + 9]!;
    src = readIpv4(pkt, p + 12);
    dst = readIpv4(pkt, p + 16);
    end = Math.min(pkt.length, p + pkt.readUInt16BE(p + 2));
    p += ihl;
  } else if (etherType === 0x86dd) {
    if (pkt.length < p + 40) return undefined;
    family = 6;
    l4 = pkt[p + 6]!;
    src = readIpv6(pkt, p + 8);
    dst = readIpv6(pkt, p + 24);
    end = Math.min(pkt.length, p + 40 + pkt.readUInt16BE(p + 4));
    p += 40;
  } else {
    return undefined;
  }
  if (l4 !== 17 || end < p + 8) return undefined;
  const udpLen = pkt.readUInt16BE(p + 4);
  return {
    family, src, dst,
    sport: pkt.readUInt16BE(p),
    dport: pkt.readUInt16BE(p + 2),
    checksum: pkt.readUInt16BE(p + 6),
    payload: pkt.subarray(p + 8, Math.min(end, p + udpLen)),
  };
}

// ---------------------------------------------------------------------------
// The shared FTFW capture (shared/spec/vectors/ftfw-session1.pcap), split into
// sync messages, for the wire tests.

export const CAPTURE_PATH = process.env.CTSYNC_SPEC_DIR
  ? `${process.env.CTSYNC_SPEC_DIR}/vectors/ftfw-session1.pcap`
  : '/work/shared/spec/vectors/ftfw-session1.pcap';

export const captureAvailable = existsSync(CAPTURE_PATH);

export interface CapturedMsg {
  frame: number;
  /** Offset of the message in the datagram. */
  off: number;
  hdr: NetHdr;
  /** The datagram (UDP payload). */
  dgram: Buffer;
  /** This message's bytes. */
  bytes: Buffer;
}

let cache: UdpFrame[] | undefined;

export function captureFrames(): UdpFrame[] {
  cache ??= readPcapUdp(CAPTURE_PATH);
  return cache;
}

export function frame(n: number): UdpFrame {
  const f = captureFrames().find((x) => x.frame === n);
  if (f === undefined) throw new Error(`no UDP frame ${n} in capture`);
  return f;
}

/** Messages of one datagram, with the counters walkDatagram left. */
export function messagesOf(dgram: Buffer, frameNo = 0): { msgs: CapturedMsg[]; counters: RecvCounters } {
  const counters = newRecvCounters();
  const msgs: CapturedMsg[] = [];
  const hdr: NetHdr = { version: 0, type: 0, flags: 0, len: 0, seq: 0 };
  walkDatagram(dgram, counters, hdr, (h, off) => {
    const copy: NetHdr = { version: 0, type: 0, flags: 0, len: 0, seq: 0 };
    readHeader(dgram, off, copy);
    msgs.push({ frame: frameNo, off, hdr: copy, dgram, bytes: dgram.subarray(off, off + h.len) });
  });
  return { msgs, counters };
}

export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/[^0-9a-fA-F]/g, ''), 'hex');
}
