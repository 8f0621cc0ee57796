// The common conntrack sync message as plain numbers, for the receive path
// that never builds a Conntrack (cache/external-ct.ts). Nearly every message
// a firewall pair exchanges is IPv4 with ports or ICMP ids, status, timeout,
// mark, TCP state, maybe a zone, NAT and an all-zero SYNPROXY: every one of
// those fits in a number. Anything else (IPv6, master tuple, helper, labels,
// SCTP/DCCP, window scales, sequence adjustment, a real synproxy) is left to
// decodeConntrackMsg.
//
// Validation is decodeConntrackMsg's, attribute by attribute (checkMessage,
// checkAttr, missing-tuple), so a message is rejected with the same reason
// whichever path reads it.
import { AF_INET, IPPROTO, type Conntrack, type L3Family, type Tuple } from '../model/conntrack.js';
import { NTA, NTA_FIXED_LEN, NTA_HDRLEN, NTA_MAX, NTA_MAX_LEN, checkAttr, checkMessage, decodeError, ntaAlign } from './attrs.js';
import { ZERO_SYNPROXY } from '../netlink/ct-codec.js';
import { ipv4Text } from './addr-text.js';
import { TCP_STATE_ONLY } from './conntrack.js';
import { HEADER_SIZE } from './header.js';
import { rdU16BE, rdU16LE, rdU32BE, wrU32BE } from '../util/bytes.js';
import { settleFields } from '../util/shape.js';

/** Which optional fields of CtFields a message (or an entry) carries. */
export const CTF = {
  PORTS: 1 << 0,
  STATUS: 1 << 1,
  TIMEOUT: 1 << 2,
  MARK: 1 << 3,
  TCP_STATE: 1 << 4,
  ZONE: 1 << 5,
  SNAT_ADDR: 1 << 6,
  SNAT_PORT: 1 << 7,
  DNAT_ADDR: 1 << 8,
  DNAT_PORT: 1 << 9,
  ICMP_TYPE: 1 << 10,
  ICMP_CODE: 1 << 11,
  ICMP_ID: 1 << 12,
  /**
   * A SYNPROXY attribute of zeros: the kernel reports the synproxy extension
   * for every connection once the synproxy target is in use anywhere, and a
   * connection it did not proxy has all three values 0. Others are objects.
   */
  SYNPROXY_ZERO: 1 << 13,
} as const;

/** An IPv4 conntrack message's fields; addresses are u32 in network order read big-endian. */
export class CtFields {
  bits = 0;
  src = 0;
  dst = 0;
  proto = 0;
  sport = 0;
  dport = 0;
  status = 0;
  timeout = 0;
  mark = 0;
  tcpState = 0;
  zone = 0;
  snatAddr = 0;
  snatPort = 0;
  dnatAddr = 0;
  dnatPort = 0;
  icmpType = 0;
  icmpCode = 0;
  icmpId = 0;

  constructor() {
    // A scratch record: every field changes, some first at a later event (a NAT
    // entry, a commit). u32 words: an address from 64.0.0.0 up, or a mark that
    // large, is not a small integer. See settleFields.
    settleFields(this, { mutable: Object.keys(this), double: ['src', 'dst', 'snatAddr', 'dnatAddr', 'mark'] });
  }
}

/**
 * Reads the data message at buf[off..off+len) into `out` when it has only
 * attributes CtFields holds and returns true; returns false, with `out`
 * meaningless, for any other message (decode it with decodeConntrackMsg).
 * Throws decodeConntrackMsg's WireError for a malformed message it reads
 * to the end.
 */
export function scanConntrackFields(buf: Buffer, off: number, len: number, out: CtFields): boolean {
  const msgLen = checkMessage(buf, off, len);
  let p = off + HEADER_SIZE;
  let rem = msgLen - HEADER_SIZE;
  let bits = 0;
  let hasAddr = false;
  let proto = -1;
  while (rem > NTA_HDRLEN) {
    const ntaLen = checkAttr(buf, p, rem, NTA_MAX, NTA_FIXED_LEN, NTA_MAX_LEN);
    const d = p + NTA_HDRLEN;
    switch (buf[p + 3]) {
      case NTA.IPV4: hasAddr = true; out.src = rdU32BE(buf, d); out.dst = rdU32BE(buf, d + 4); break;
      case NTA.L4PROTO: proto = buf[d]!; break;
      case NTA.PORT: bits |= CTF.PORTS; out.sport = rdU16BE(buf, d); out.dport = rdU16BE(buf, d + 2); break;
      case NTA.TCP_STATE: bits |= CTF.TCP_STATE; out.tcpState = buf[d]!; break;
      case NTA.STATUS: bits |= CTF.STATUS; out.status = rdU32BE(buf, d); break;
      case NTA.TIMEOUT: bits |= CTF.TIMEOUT; out.timeout = rdU32BE(buf, d); break;
      case NTA.MARK: bits |= CTF.MARK; out.mark = rdU32BE(buf, d); break;
      case NTA.ZONE: bits |= CTF.ZONE; out.zone = rdU16BE(buf, d); break;
      case NTA.SNAT_IPV4: bits |= CTF.SNAT_ADDR; out.snatAddr = rdU32BE(buf, d); break;
      case NTA.DNAT_IPV4: bits |= CTF.DNAT_ADDR; out.dnatAddr = rdU32BE(buf, d); break;
      case NTA.SPAT_PORT: bits |= CTF.SNAT_PORT; out.snatPort = rdU16LE(buf, d); break; // LE: §2.2 quirk
      case NTA.DPAT_PORT: bits |= CTF.DNAT_PORT; out.dnatPort = rdU16LE(buf, d); break;
      case NTA.ICMP_TYPE: bits |= CTF.ICMP_TYPE; out.icmpType = buf[d]!; break;
      case NTA.ICMP_CODE: bits |= CTF.ICMP_CODE; out.icmpCode = buf[d]!; break;
      case NTA.ICMP_ID: bits |= CTF.ICMP_ID; out.icmpId = rdU16LE(buf, d); break;
      case NTA.SYNPROXY:
        if ((rdU32BE(buf, d) | rdU32BE(buf, d + 4) | rdU32BE(buf, d + 8)) !== 0) return false;
        bits |= CTF.SYNPROXY_ZERO;
        break;
      default: return false;
    }
    const step = ntaAlign(ntaLen);
    p += step;
    rem -= step;
  }
  if (!hasAddr || proto < 0) {
    throw decodeError('missing-tuple', 'message has no orig addresses or no L4 protocol', { hasAddr, proto });
  }
  // Ports on an ICMP flow or ICMP ids on another: both land in one identity
  // word here (l4Word's), so such an odd message goes the object way.
  const icmp = proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6;
  if ((bits & (icmp ? CTF.PORTS : CTF.ICMP_TYPE | CTF.ICMP_CODE | CTF.ICMP_ID)) !== 0) return false;
  out.proto = proto;
  out.bits = bits;
  return true;
}

/**
 * The tuple's L4 identity word as cache/hash.ts's l4Word computes it from a
 * decoded tuple (ICMP type/code/id, else the ports; absent fields count as 0).
 */
export function fieldsL4Word(f: CtFields): number {
  if (f.proto === IPPROTO.ICMP || f.proto === IPPROTO.ICMPV6) {
    return ((f.bits & CTF.ICMP_TYPE ? f.icmpType & 0xff : 0) << 24) | ((f.bits & CTF.ICMP_CODE ? f.icmpCode & 0xff : 0) << 16) |
      (f.bits & CTF.ICMP_ID ? f.icmpId & 0xffff : 0);
  }
  return f.bits & CTF.PORTS ? ((f.sport & 0xffff) << 16) | (f.dport & 0xffff) : 0;
}

const ipv4Scratch = Buffer.alloc(4);

/** Dotted-quad text of a u32 address (interned like every decoded address). */
export function ipv4TextOf(v: number): string {
  wrU32BE(ipv4Scratch, 0, v >>> 0);
  return ipv4Text(ipv4Scratch, 0);
}

/**
 * The Conntrack decodeConntrackMsg returns for a message with exactly these
 * fields (same values, same shapes). Entries merged from several messages
 * come out as mergeConntrack would have left them, up to property order.
 */
export function conntrackFromFields(f: CtFields): Conntrack {
  const b = f.bits;
  const src = ipv4TextOf(f.src);
  const dst = ipv4TextOf(f.dst);
  const orig: Tuple = b & CTF.PORTS
    ? { l3: AF_INET as L3Family, src, dst, proto: f.proto, sport: f.sport, dport: f.dport }
    : { l3: AF_INET as L3Family, src, dst, proto: f.proto };
  if (b & CTF.ICMP_TYPE) orig.icmpType = f.icmpType;
  if (b & CTF.ICMP_CODE) orig.icmpCode = f.icmpCode;
  if (b & CTF.ICMP_ID) orig.icmpId = f.icmpId;
  const all = CTF.STATUS | CTF.TIMEOUT | CTF.MARK;
  let ct: Conntrack;
  if ((b & all) === all) {
    ct = b & CTF.TCP_STATE
      ? { orig, status: f.status, timeout: f.timeout, mark: f.mark, tcp: TCP_STATE_ONLY[f.tcpState]! }
      : { orig, status: f.status, timeout: f.timeout, mark: f.mark };
  } else {
    ct = { orig };
    if (b & CTF.STATUS) ct.status = f.status;
    if (b & CTF.TIMEOUT) ct.timeout = f.timeout;
    if (b & CTF.MARK) ct.mark = f.mark;
    if (b & CTF.TCP_STATE) ct.tcp = TCP_STATE_ONLY[f.tcpState]!;
  }
  if (b & CTF.SNAT_ADDR) ct.snatAddr = ipv4TextOf(f.snatAddr);
  if (b & CTF.SNAT_PORT) ct.snatPort = f.snatPort;
  if (b & CTF.DNAT_ADDR) ct.dnatAddr = ipv4TextOf(f.dnatAddr);
  if (b & CTF.DNAT_PORT) ct.dnatPort = f.dnatPort;
  if (b & CTF.SYNPROXY_ZERO) ct.synproxy = ZERO_SYNPROXY;
  if (b & CTF.ZONE) ct.zone = f.zone;
  return ct;
}
