// The create message of a plain entry (IPv4/IPv6, TCP/UDP/UDP-Lite, no NAT,
// zone, master, helper, labels or seqadj: nearly every entry of a
// failover commit) written straight into the writer's buffer. The generic
// writeConntrackAttrs makes ~30 attribute calls per entry, each with its
// Buffer bounds checks, and parses every address twice (orig, then the
// inverted reply); at 100k entries that was more CPU than the kernel's insert.
// The bytes are exactly the generic path's (test/unit/netlink-write-fast.test.ts).
import { AF_INET, AF_INET6, IPPROTO, IPS, type Conntrack, type Synproxy, type TcpInfo } from '../model/conntrack.js';
import { CTA, CTA_IP, CTA_PROTO, CTA_PROTOINFO, CTA_PROTOINFO_TCP, CTA_SYNPROXY, CTA_TUPLE } from './ct-attrs.js';
import { DEFAULT_CREATE_TIMEOUT, STATUS_KERNEL_OWNED, writeConntrackAttrs } from './ct-codec.js';
import { NLA_F_NESTED, ipv4Value, writeIpv6, type NlWriter } from './nlattr.js';
import { wrU16BE, wrU16LE, wrU32BE } from '../util/bytes.js';
import { settleSample } from '../util/shape.js';

/** Upper bound of one plain create's attributes (IPv6, every TCP field, synproxy). */
const FAST_MAX_BYTES = 2 * (4 + 4 + 2 * 20 + 28) + 3 * 8 + 4 + 4 + 4 * 8 + 2 * 8 + 4 + 3 * 8;

/** The entries writeCreateFast can write; anything else goes the generic way. */
export function isPlainCreate(ct: Conntrack): boolean {
  const o = ct.orig;
  if (o.l3 !== AF_INET && o.l3 !== AF_INET6) return false;
  if (o.proto !== IPPROTO.TCP && o.proto !== IPPROTO.UDP && o.proto !== IPPROTO.UDPLITE) return false;
  if (o.zone !== undefined || ct.zone !== undefined || ct.master !== undefined || ct.labels !== undefined ||
    ct.helper !== undefined || ct.seqAdjOrig !== undefined || ct.seqAdjReply !== undefined ||
    ct.sctp !== undefined || ct.dccp !== undefined) return false;
  const r = ct.reply;
  if (r === undefined) {
    return ct.snatAddr === undefined && ct.snatPort === undefined && ct.dnatAddr === undefined && ct.dnatPort === undefined;
  }
  // No NAT by the same rule as natOf(): the reply is the plain inverse of orig.
  return r.zone === undefined && r.dst === o.src && r.src === o.dst &&
    (r.dport === undefined || r.dport === o.sport) && (r.sport === undefined || r.sport === o.dport);
}

function attr(b: Buffer, p: number, len: number, type: number): void {
  wrU16LE(b, p, len);
  wrU16LE(b, p + 2, type);
}

function u8(b: Buffer, p: number, type: number, v: number): number {
  attr(b, p, 5, type);
  b[p + 4] = v & 0xff;
  b[p + 5] = 0;
  b[p + 6] = 0;
  b[p + 7] = 0;
  return p + 8;
}

function u16be(b: Buffer, p: number, type: number, v: number): number {
  attr(b, p, 6, type);
  wrU16BE(b, p + 4, v);
  b[p + 6] = 0;
  b[p + 7] = 0;
  return p + 8;
}

function u32be(b: Buffer, p: number, type: number, v: number): number {
  attr(b, p, 8, type);
  wrU32BE(b, p + 4, v);
  return p + 8;
}

/** struct nf_ct_tcp_flags { flags; mask }: a mask of 0 or none means all bits, as in the generic path. */
function tcpFlags(b: Buffer, p: number, type: number, flags: number, mask: number | undefined): number {
  attr(b, p, 6, type);
  b[p + 4] = flags & 0xff;
  b[p + 5] = mask === undefined || mask === 0 ? 0xff : mask & 0xff;
  b[p + 6] = 0;
  b[p + 7] = 0;
  return p + 8;
}

function proto(b: Buffer, p: number, num: number, sport: number, dport: number): number {
  attr(b, p, 28, CTA_TUPLE.PROTO | NLA_F_NESTED);
  p = u8(b, p + 4, CTA_PROTO.NUM, num);
  p = u16be(b, p, CTA_PROTO.SRC_PORT, sport);
  return u16be(b, p, CTA_PROTO.DST_PORT, dport);
}

/** A create's attributes: the direct writer for plain entries (most of a commit), the generic codec for the rest. */
export function writeCreate(w: NlWriter, ct: Conntrack): void {
  if (!writeCreateFast(w, ct)) writeConntrackAttrs(w, ct, 'create');
}

/**
 * Appends the create attributes of a plain entry and returns true, or
 * returns false (nothing written) when `ct` is not plain. Throws TypeError on
 * an address that does not parse, like the generic path, with the writer's
 * position unchanged.
 */
export function writeCreateFast(w: NlWriter, ct: Conntrack): boolean {
  if (!isPlainCreate(ct)) return false;
  const o = ct.orig;
  if (o.l3 === AF_INET) {
    const c = v4Scratch;
    // Both addresses parse before anything is written (a bad one throws with the writer untouched).
    c.src = ipv4Value(o.src);
    c.dst = ipv4Value(o.dst);
    c.proto = o.proto;
    c.sport = o.sport ?? 0;
    c.dport = o.dport ?? 0;
    c.status = ct.status ?? 0;
    c.timeout = ct.timeout ?? DEFAULT_CREATE_TIMEOUT;
    c.mark = ct.mark ?? -1;
    c.tcp = ct.tcp;
    c.synproxy = ct.synproxy;
    writeCreateV4(w, c);
    return true;
  }
  // IPv6 (isPlainCreate admits no other family).
  const alen = 16;
  const ipLen = 4 + 2 * (4 + alen);
  const tupleLen = 4 + ipLen + 28;
  const sport = (o.sport ?? 0) & 0xffff;
  const dport = (o.dport ?? 0) & 0xffff;
  w.ensure(FAST_MAX_BYTES);
  const b = w.buf;
  let p = w.off;

  attr(b, p, tupleLen, CTA.TUPLE_ORIG | NLA_F_NESTED);
  attr(b, p + 4, ipLen, CTA_TUPLE.IP | NLA_F_NESTED);
  p += 8;
  const srcAt = p + 4;
  attr(b, p, 4 + alen, CTA_IP.V6_SRC);
  p += 4 + alen;
  const dstAt = p + 4;
  attr(b, p, 4 + alen, CTA_IP.V6_DST);
  p += 4 + alen;
  writeIpv6(b, srcAt, o.src);
  writeIpv6(b, dstAt, o.dst);
  p = proto(b, p, o.proto, sport, dport);

  // The reply tuple is the inverse: the addresses already parsed, swapped.
  attr(b, p, tupleLen, CTA.TUPLE_REPLY | NLA_F_NESTED);
  attr(b, p + 4, ipLen, CTA_TUPLE.IP | NLA_F_NESTED);
  p += 8;
  attr(b, p, 4 + alen, CTA_IP.V6_SRC);
  b.copyWithin(p + 4, dstAt, dstAt + alen);
  p += 4 + alen;
  attr(b, p, 4 + alen, CTA_IP.V6_DST);
  b.copyWithin(p + 4, srcAt, srcAt + alen);
  p += 4 + alen;
  p = proto(b, p, o.proto, dport, sport);

  w.off = writeTail(b, p, ct.status ?? 0, ct.timeout ?? DEFAULT_CREATE_TIMEOUT, ct.mark ?? -1, ct.tcp, ct.synproxy);
  return true;
}

/**
 * A plain IPv4 create given as numbers (addresses as u32): what a commit
 * writes for the entries the external cache keeps in columns, without a
 * Conntrack, a tuple or address text per entry. Same bytes as writeCreateFast.
 */
export interface PlainV4Create {
  src: number;
  dst: number;
  /** TCP, UDP or UDP-Lite. */
  proto: number;
  sport: number;
  dport: number;
  status: number;
  timeout: number;
  /** -1: no mark. */
  mark: number;
  tcp: TcpInfo | undefined;
  synproxy: Synproxy | undefined;
}

export function newPlainV4Create(): PlainV4Create {
  return { src: 0, dst: 0, proto: 0, sport: 0, dport: 0, status: 0, timeout: 0, mark: -1, tcp: undefined, synproxy: undefined };
}
// A scratch record rewritten per entry; u32 addresses and marks are not small
// integers: see settleFields.
settleSample(newPlainV4Create(), {
  mutable: ['proto', 'sport', 'dport', 'status', 'timeout', 'tcp', 'synproxy'],
  double: ['src', 'dst', 'mark'],
});

const v4Scratch = newPlainV4Create();

export function writeCreateV4(w: NlWriter, c: PlainV4Create): void {
  const ipLen = 4 + 2 * 8;
  const tupleLen = 4 + ipLen + 28;
  const sport = c.sport & 0xffff;
  const dport = c.dport & 0xffff;
  w.ensure(FAST_MAX_BYTES);
  const b = w.buf;
  let p = w.off;
  attr(b, p, tupleLen, CTA.TUPLE_ORIG | NLA_F_NESTED);
  attr(b, p + 4, ipLen, CTA_TUPLE.IP | NLA_F_NESTED);
  p = u32be(b, p + 8, CTA_IP.V4_SRC, c.src);
  p = u32be(b, p, CTA_IP.V4_DST, c.dst);
  p = proto(b, p, c.proto, sport, dport);
  attr(b, p, tupleLen, CTA.TUPLE_REPLY | NLA_F_NESTED);
  attr(b, p + 4, ipLen, CTA_TUPLE.IP | NLA_F_NESTED);
  p = u32be(b, p + 8, CTA_IP.V4_SRC, c.dst);
  p = u32be(b, p, CTA_IP.V4_DST, c.src);
  p = proto(b, p, c.proto, dport, sport);
  w.off = writeTail(b, p, c.status, c.timeout, c.mark, c.tcp, c.synproxy);
}

/** Status, timeout, mark, TCP protoinfo and synproxy: the same in both writers. */
function writeTail(b: Buffer, p: number, status: number, timeout: number, mark: number, t: TcpInfo | undefined,
  sp: Synproxy | undefined): number {
  p = u32be(b, p, CTA.STATUS, ((status & ~STATUS_KERNEL_OWNED) | IPS.CONFIRMED) >>> 0);
  p = u32be(b, p, CTA.TIMEOUT, timeout >>> 0);
  if (mark >= 0) p = u32be(b, p, CTA.MARK, mark >>> 0);
  if (t !== undefined) {
    const tcpLen = 4 + 8 + (t.wscaleOrig !== undefined ? 8 : 0) + (t.wscaleReply !== undefined ? 8 : 0) +
      (t.flagsOrig !== undefined ? 8 : 0) + (t.flagsReply !== undefined ? 8 : 0);
    attr(b, p, 4 + tcpLen, CTA.PROTOINFO | NLA_F_NESTED);
    attr(b, p + 4, tcpLen, CTA_PROTOINFO.TCP | NLA_F_NESTED);
    p = u8(b, p + 8, CTA_PROTOINFO_TCP.STATE, t.state);
    if (t.wscaleOrig !== undefined) p = u8(b, p, CTA_PROTOINFO_TCP.WSCALE_ORIGINAL, t.wscaleOrig);
    if (t.wscaleReply !== undefined) p = u8(b, p, CTA_PROTOINFO_TCP.WSCALE_REPLY, t.wscaleReply);
    if (t.flagsOrig !== undefined) p = tcpFlags(b, p, CTA_PROTOINFO_TCP.FLAGS_ORIGINAL, t.flagsOrig, t.flagsMaskOrig);
    if (t.flagsReply !== undefined) p = tcpFlags(b, p, CTA_PROTOINFO_TCP.FLAGS_REPLY, t.flagsReply, t.flagsMaskReply);
  }
  // Kernel dumps carry an all-zero synproxy for every entry, and the wire keeps it.
  if (sp !== undefined) {
    attr(b, p, 4 + 3 * 8, CTA.SYNPROXY | NLA_F_NESTED);
    p = u32be(b, p + 4, CTA_SYNPROXY.ISN, sp.isn >>> 0);
    p = u32be(b, p, CTA_SYNPROXY.ITS, sp.its >>> 0);
    p = u32be(b, p, CTA_SYNPROXY.TSOFF, sp.tsoff >>> 0);
  }
  return p;
}
