// NAT as the two forms ctsync meets it: the kernel's (an orig tuple plus a
// translated reply tuple) and conntrackd's wire form (orig tuple plus
// snat/dnat address and port, no reply tuple). These helpers convert between
// them so the sync layer can send wire form and the commit path can rebuild
// what the kernel needs.

import { IPPROTO, type Conntrack, type Tuple } from './conntrack.js';

export interface NatInfo {
  /** Translated source: the reply tuple's destination. */
  snatAddr?: string;
  snatPort?: number;
  /** Translated destination: the reply tuple's source. */
  dnatAddr?: string;
  dnatPort?: number;
}

/** Protocols whose tuple has ports (the ones NAT can remap a port for). */
export function hasPorts(proto: number): boolean {
  return proto === IPPROTO.TCP || proto === IPPROTO.UDP || proto === IPPROTO.UDPLITE ||
    proto === IPPROTO.SCTP || proto === IPPROTO.DCCP;
}

// The kernel inverts an ICMP tuple's type (echo request <-> reply ...) and
// refuses a tuple whose type has no inverse; these are its pairs.
const ICMP_INVERSE: Readonly<Record<number, number>> = { 8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17 };
const ICMPV6_INVERSE: Readonly<Record<number, number>> = { 128: 129, 129: 128, 139: 140, 140: 139 };

/**
 * The reply tuple the kernel would compute without NAT: addresses and ports
 * swapped, ICMP type inverted, GRE keys swapped. The zone is not copied: a
 * directional tuple zone applies to one direction only.
 */
export function invertTuple(t: Tuple): Tuple {
  const r: Tuple = { l3: t.l3, src: t.dst, dst: t.src, proto: t.proto };
  if (t.sport !== undefined || t.dport !== undefined) {
    if (t.dport !== undefined) r.sport = t.dport;
    if (t.sport !== undefined) r.dport = t.sport;
  }
  if (t.icmpType !== undefined) {
    const inv = (t.proto === IPPROTO.ICMPV6 ? ICMPV6_INVERSE : ICMP_INVERSE)[t.icmpType];
    r.icmpType = inv ?? t.icmpType;
  }
  if (t.icmpCode !== undefined) r.icmpCode = t.icmpCode;
  if (t.icmpId !== undefined) r.icmpId = t.icmpId;
  if (t.greKeyDst !== undefined) r.greKeySrc = t.greKeyDst;
  if (t.greKeySrc !== undefined) r.greKeyDst = t.greKeySrc;
  return r;
}

/**
 * NAT of an entry in wire form. With a kernel reply tuple: SNAT when the
 * reply goes back to something other than the original source (address or,
 * for port protocols, port), DNAT when the reply comes from something other
 * than the original destination. Without a reply tuple the entry's own
 * snat/dnat fields are returned. Address and port are reported separately,
 * as conntrackd does (NTA_SNAT_IPV4 vs NTA_SPAT_PORT): a port-only mapping
 * has no address.
 */
export function natOf(ct: Conntrack): NatInfo {
  const out: NatInfo = {};
  const o = ct.orig;
  const r = ct.reply;
  if (r === undefined) {
    if (ct.snatAddr !== undefined) out.snatAddr = ct.snatAddr;
    if (ct.snatPort !== undefined) out.snatPort = ct.snatPort;
    if (ct.dnatAddr !== undefined) out.dnatAddr = ct.dnatAddr;
    if (ct.dnatPort !== undefined) out.dnatPort = ct.dnatPort;
    return out;
  }
  if (r.dst !== o.src) out.snatAddr = r.dst;
  if (r.src !== o.dst) out.dnatAddr = r.src;
  if (hasPorts(o.proto)) {
    if (r.dport !== undefined && r.dport !== o.sport) out.snatPort = r.dport;
    if (r.sport !== undefined && r.sport !== o.dport) out.dnatPort = r.sport;
  }
  return out;
}

/**
 * True when `r` is exactly the reply tuple the kernel derives from `o` without
 * NAT, for the port-based protocols (ICMP, GRE and zoned tuples are never
 * "plain"): replyFromNat rebuilds such a reply from `o` alone.
 */
export function isPlainReply(o: Tuple, r: Tuple): boolean {
  return r.src === o.dst && r.dst === o.src && r.sport === o.dport && r.dport === o.sport &&
    r.sport !== undefined && r.dport !== undefined && r.proto === o.proto && r.l3 === o.l3 &&
    r.zone === undefined && r.icmpType === undefined && r.icmpCode === undefined && r.icmpId === undefined &&
    r.greKeySrc === undefined && r.greKeyDst === undefined;
}

/**
 * The reply tuple worth keeping for `ct`: none when it is plain (see
 * isPlainReply). The internal cache keeps kernel entries that way, one tuple
 * object less per connection (~7 MB at 100k entries, measured); every reader
 * of a cached entry's reply goes through natOf or replyFromNat, which treat a
 * missing reply as no NAT.
 */
export function keptReply(ct: Conntrack): Tuple | undefined {
  const r = ct.reply;
  return r !== undefined && isPlainReply(ct.orig, r) ? undefined : r;
}

/**
 * The reply tuple of an entry: the inverted orig tuple with its NAT applied
 * (reply dst = SNAT target, reply src = DNAT target). Used by commit and for
 * display of wire-form entries.
 */
export function replyFromNat(ct: Conntrack): Tuple {
  const nat = natOf(ct);
  const r = invertTuple(ct.orig);
  if (nat.snatAddr !== undefined) r.dst = nat.snatAddr;
  if (nat.dnatAddr !== undefined) r.src = nat.dnatAddr;
  if (nat.snatPort !== undefined) r.dport = nat.snatPort;
  if (nat.dnatPort !== undefined) r.sport = nat.dnatPort;
  return r;
}
