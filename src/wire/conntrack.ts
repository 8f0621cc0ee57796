// Conntrack sync messages (CT_NEW / CT_UPD / CT_DEL): the builder and parser
// of conntrackd 1.4.7 (spec ftfw.md §2.1–§2.3), byte for byte.
//
// Encode is on the hot path (every kernel event, every bulk entry): it writes
// straight into the caller's buffer and allocates nothing. Decode allocates
// only the resulting Conntrack; it keeps sub-fields in locals until the end
// because attribute order on the wire is free.
import {
  AF_INET, AF_INET6, IPPROTO, IPS,
  type Conntrack, type L3Family, type SeqAdj, type TcpInfo, type Tuple,
} from '../model/conntrack.js';
import { ipv4Value as textIpv4Value, writeIpv6 } from '../netlink/nlattr.js';
import { ipv4Text, ipv6Text } from './addr-text.js';
import {
  NTA, NTA_FIXED_LEN, NTA_HDRLEN, NTA_MAX, NTA_MAX_LEN,
  checkAttr, checkMessage, decodeError, encodeFailure, noSpace, ntaAlign,
  putAddr, putAddrPair, putIpv4Pair, putPorts, putString, putU16BE, putU16LE, putU32BE, putU8, readCString, u32be,
} from './attrs.js';
import { HEADER_SIZE, writeHeader } from './header.js';
import { rdU16BE, rdU16LE, rdU32BE, wrU32BE } from '../util/bytes.js';

export interface WireEncodeOptions {
  /** `Options { TCPWindowTracking on }`: also send TCP_WSCALE_ORIG/REPL. */
  tcpWindowTracking?: boolean;
  /** The sender has `CommitTimeout` configured: omit TIMEOUT. */
  omitTimeout?: boolean;
}

const NO_OPTS: WireEncodeOptions = {};

/**
 * Where an encoder may keep the orig tuple's IPv4 addresses as numbers (a
 * cache entry's `src4`/`dst4`): 0 while not known. A bulk send then writes
 * them as they are instead of parsing the text again (a resync of 100k
 * distinct sources missed the text cache on every entry: ~9% of its sender).
 */
export interface Ipv4Memo {
  src4?: number;
  dst4?: number;
}

/**
 * Writes header + attributes of one CT_NEW/CT_UPD/CT_DEL message at buf[off];
 * returns its length (multiple of 4). Throws WireError('CTSYNC_ERR_WIRE_ENCODE',
 * 'no-space') if it does not fit before `limit` (default buf.length), and
 * 'bad-value' for values that cannot be put on the wire (bad address text,
 * out-of-range integers). On a throw, bytes in [off, limit) may have been written.
 * NAT comes from `ct.reply` when present (kernel entries, libnetfilter_conntrack's
 * is-SNAT/DNAT/SPAT/DPAT tests), else from snatAddr/snatPort/dnatAddr/dnatPort.
 * `memo`: where the orig IPv4 addresses are kept as numbers once parsed (they
 * are the entry's identity, so they never change under it).
 */
export function encodeConntrackMsg(buf: Buffer, off: number, type: number, flags: number, seq: number,
  ct: Conntrack, opts: WireEncodeOptions = NO_OPTS, limit: number = buf.length, memo?: Ipv4Memo): number {
  const lim = limit < buf.length ? limit : buf.length;
  try {
    if (off + HEADER_SIZE > lim) throw noSpace(off + HEADER_SIZE, lim);
    const o = ct.orig;
    const v6 = o.l3 === AF_INET6;
    const proto = o.proto;
    let p = off + HEADER_SIZE;

    // 1–3: orig addresses, status, L4 protocol: always.
    if (v6) {
      p = putAddrPair(buf, p, NTA.IPV6, true, o.src, o.dst, lim);
    } else {
      // 0 is "not known" (0.0.0.0 is parsed every time: rare, and still right).
      let s = memo?.src4 ?? 0;
      let d = memo?.dst4 ?? 0;
      if (s === 0 || d === 0) {
        s = textIpv4Value(o.src) | 0;
        d = textIpv4Value(o.dst) | 0;
        if (memo !== undefined && memo.src4 !== undefined) {
          memo.src4 = s;
          memo.dst4 = d;
        }
      }
      p = putIpv4Pair(buf, p, NTA.IPV4, s, d, lim);
    }
    p = putU32BE(buf, p, NTA.STATUS, ct.status ?? 0, lim);
    p = putU8(buf, p, NTA.L4PROTO, proto, lim);

    // 4: protocol part. 1.4.7 sends PORT even when the state is unknown.
    switch (proto) {
      case IPPROTO.TCP: {
        p = putPorts(buf, p, NTA.PORT, o.sport ?? 0, o.dport ?? 0, lim);
        const tcp = ct.tcp;
        if (tcp !== undefined) {
          p = putU8(buf, p, NTA.TCP_STATE, tcp.state, lim);
          if (opts.tcpWindowTracking === true) {
            p = putU8(buf, p, NTA.TCP_WSCALE_ORIG, tcp.wscaleOrig ?? 0, lim);
            p = putU8(buf, p, NTA.TCP_WSCALE_REPL, tcp.wscaleReply ?? 0, lim);
          }
        }
        break;
      }
      case IPPROTO.SCTP: {
        p = putPorts(buf, p, NTA.PORT, o.sport ?? 0, o.dport ?? 0, lim);
        const sctp = ct.sctp;
        if (sctp !== undefined) {
          p = putU8(buf, p, NTA.SCTP_STATE, sctp.state, lim);
          p = putU32BE(buf, p, NTA.SCTP_VTAG_ORIG, sctp.vtagOrig ?? 0, lim);
          p = putU32BE(buf, p, NTA.SCTP_VTAG_REPL, sctp.vtagReply ?? 0, lim);
        }
        break;
      }
      case IPPROTO.DCCP: {
        p = putPorts(buf, p, NTA.PORT, o.sport ?? 0, o.dport ?? 0, lim);
        const dccp = ct.dccp;
        if (dccp !== undefined) {
          p = putU8(buf, p, NTA.DCCP_STATE, dccp.state, lim);
          p = putU8(buf, p, NTA.DCCP_ROLE, dccp.role ?? 0, lim);
        }
        break;
      }
      case IPPROTO.UDP: // UDP-Lite (136) gets no PORT: conntrackd has no builder for it.
        p = putPorts(buf, p, NTA.PORT, o.sport ?? 0, o.dport ?? 0, lim);
        break;
      case IPPROTO.ICMP:
      case IPPROTO.ICMPV6:
        if (o.icmpType !== undefined) {
          p = putU8(buf, p, NTA.ICMP_TYPE, o.icmpType, lim);
          p = putU8(buf, p, NTA.ICMP_CODE, o.icmpCode ?? 0, lim);
          p = putU16LE(buf, p, NTA.ICMP_ID, o.icmpId ?? 0, lim);
        }
        break;
      default:
        break;
    }

    // 5–6
    if (ct.timeout !== undefined && opts.omitTimeout !== true) p = putU32BE(buf, p, NTA.TIMEOUT, ct.timeout, lim);
    if (ct.mark !== undefined) p = putU32BE(buf, p, NTA.MARK, ct.mark, lim);

    // 7: master tuple of an expected connection.
    const m = ct.master;
    if (m !== undefined) {
      const m6 = m.l3 === AF_INET6;
      p = putAddrPair(buf, p, m6 ? NTA.MASTER_IPV6 : NTA.MASTER_IPV4, m6, m.src, m.dst, lim);
      p = putU8(buf, p, NTA.MASTER_L4PROTO, m.proto, lim);
      if (m.sport !== undefined && m.dport !== undefined) p = putPorts(buf, p, NTA.MASTER_PORT, m.sport, m.dport, lim);
    }

    // 8: NAT, derived from the reply tuple when we have one (kernel entries),
    // else taken from the wire-form fields (entries received from a peer).
    p = ct.reply !== undefined ? putNatFromReply(buf, p, ct, o, ct.reply, v6, lim) : putNatFromFields(buf, p, ct, v6, lim);

    // 9–13
    if (ct.seqAdjOrig !== undefined && ct.seqAdjReply !== undefined) p = putSeqAdj(buf, p, ct.seqAdjOrig, ct.seqAdjReply, lim);
    if (ct.helper !== undefined) p = putString(buf, p, NTA.HELPER_NAME, ct.helper, lim);
    if (ct.labels !== undefined) p = putLabels(buf, p, ct.labels, lim);
    const sp = ct.synproxy;
    if (sp !== undefined) {
      if (p + 16 > lim) throw noSpace(p + 16, lim);
      u32be(buf, p, 0x0010_0000 | NTA.SYNPROXY);
      // Wire order is its, isn, tsoff (struct nta_attr_synproxy).
      u32be(buf, p + 4, sp.its);
      u32be(buf, p + 8, sp.isn);
      u32be(buf, p + 12, sp.tsoff);
      p += 16;
    }
    if (ct.zone !== undefined) p = putU16BE(buf, p, NTA.ZONE, ct.zone, lim);

    const len = p - off;
    writeHeader(buf, off, type, flags, len, seq);
    return len;
  } catch (err) {
    throw encodeFailure(err);
  }
}

// --- NAT -------------------------------------------------------------------

const scratch = Buffer.alloc(32);

/**
 * The address half of libnetfilter_conntrack's is-SNAT/is-DNAT tests. Since
 * libnetfilter_conntrack 1.0.6 (Debian bookworm ships 1.0.9) IPv6 addresses
 * are compared in full (memcmp of 16 bytes). NOTE: spec ftfw.md §2.2 item 8
 * says only the first 32 bits are compared; that was true of libraries
 * before 1.0.6 only, so a bookworm conntrackd sends IPv6 NAT inside one /32.
 */
function sameAddr(a: string, b: string, v6: boolean): boolean {
  if (a === b) return true;
  if (v6) {
    writeIpv6(scratch, 0, a);
    writeIpv6(scratch, 16, b);
    return scratch.compare(scratch, 0, 16, 16, 32) === 0;
  }
  // Text differs: still compare values, so "010.0.0.1"-style input cannot fake a NAT.
  return textIpv4Value(a) === textIpv4Value(b);
}

function isIcmp(proto: number): boolean {
  return proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6;
}

/**
 * The raw 16-bit "source port" slot of libnetfilter_conntrack's tuple, read as
 * a network-order number: the port, or the echo id for ICMP. The port tests
 * compare these slots whatever the protocol [QUIRK].
 */
function slotSrc(t: Tuple, icmp: boolean): number {
  return icmp ? t.icmpId ?? 0 : t.sport ?? t.greKeySrc ?? 0;
}

/** The "destination port" slot: the port, or ICMP type (high byte) and code (low byte). */
function slotDst(t: Tuple, icmp: boolean): number {
  return icmp ? ((t.icmpType ?? 0) << 8) | (t.icmpCode ?? 0) : t.dport ?? t.greKeyDst ?? 0;
}

function putNatFromReply(buf: Buffer, p: number, ct: Conntrack, o: Tuple, r: Tuple, v6: boolean, lim: number): number {
  const st = ct.status;
  // "STATUS unknown" passes the status half of each test, as in the library.
  const srcDone = st === undefined || (st & IPS.SRC_NAT_DONE) !== 0;
  const dstDone = st === undefined || (st & IPS.DST_NAT_DONE) !== 0;
  const icmp = isIcmp(o.proto);
  if (srcDone && !sameAddr(r.dst, o.src, v6)) p = putAddr(buf, p, v6 ? NTA.SNAT_IPV6 : NTA.SNAT_IPV4, v6, r.dst, lim);
  if (dstDone && !sameAddr(r.src, o.dst, v6)) p = putAddr(buf, p, v6 ? NTA.DNAT_IPV6 : NTA.DNAT_IPV4, v6, r.src, lim);
  if (srcDone) {
    const v = slotDst(r, icmp);
    if (v !== slotSrc(o, icmp)) p = putU16LE(buf, p, NTA.SPAT_PORT, v, lim);
  }
  if (dstDone) {
    const v = slotSrc(r, icmp);
    if (v !== slotDst(o, icmp)) p = putU16LE(buf, p, NTA.DPAT_PORT, v, lim);
  }
  return p;
}

function putNatFromFields(buf: Buffer, p: number, ct: Conntrack, v6: boolean, lim: number): number {
  if (ct.snatAddr !== undefined) p = putAddr(buf, p, v6 ? NTA.SNAT_IPV6 : NTA.SNAT_IPV4, v6, ct.snatAddr, lim);
  if (ct.dnatAddr !== undefined) p = putAddr(buf, p, v6 ? NTA.DNAT_IPV6 : NTA.DNAT_IPV4, v6, ct.dnatAddr, lim);
  if (ct.snatPort !== undefined) p = putU16LE(buf, p, NTA.SPAT_PORT, ct.snatPort, lim);
  if (ct.dnatPort !== undefined) p = putU16LE(buf, p, NTA.DPAT_PORT, ct.dnatPort, lim);
  return p;
}

// --- seqadj, labels ----------------------------------------------------------

function putSeqAdj(buf: Buffer, p: number, a: SeqAdj, b: SeqAdj, lim: number): number {
  if (p + 28 > lim) throw noSpace(p + 28, lim);
  wrU32BE(buf, p, 0x001c_0000 | NTA.NAT_SEQ_ADJ);
  u32be(buf, p + 4, a.correctionPos);
  u32be(buf, p + 8, a.offsetBefore);
  u32be(buf, p + 12, a.offsetAfter);
  u32be(buf, p + 16, b.correctionPos);
  u32be(buf, p + 20, b.offsetBefore);
  u32be(buf, p + 24, b.offsetAfter);
  return p + 28;
}

/**
 * `labels` holds the kernel's CTA_LABELS bytes: a bitmap of host-endian
 * (little-endian) longs, label n = byte n>>3 bit n&7. The wire carries 32-bit
 * BE words, word i bit b = label 32i+b, up to the word holding the highest set
 * label, and nothing at all when no label is set. So each 4-byte group is
 * byte-reversed.
 */
function putLabels(buf: Buffer, p: number, labels: Buffer, lim: number): number {
  let last = labels.length - 1;
  while (last >= 0 && labels[last] === 0) last--;
  if (last < 0) return p;
  const words = (last >> 2) + 1;
  const ntaLen = NTA_HDRLEN + words * 4;
  if (p + ntaLen > lim) throw noSpace(p + ntaLen, lim);
  buf.writeUInt32BE(((ntaLen << 16) | NTA.LABELS) >>> 0, p);
  for (let i = 0; i < words * 4; i += 4) {
    const q = p + NTA_HDRLEN + i;
    buf[q] = labels[i + 3] ?? 0;
    buf[q + 1] = labels[i + 2] ?? 0;
    buf[q + 2] = labels[i + 1] ?? 0;
    buf[q + 3] = labels[i] ?? 0;
  }
  return p + ntaLen;
}

// --- decode ------------------------------------------------------------------

const U32 = (buf: Buffer, at: number): number => rdU32BE(buf, at);

/**
 * The TcpInfo of a message with a TCP state and no window scales (nearly all
 * of them): one frozen object per state, shared by every decoded message, so
 * a cached entry does not carry its own copy. Decoded values are therefore
 * read-only; the external cache replaces rather than updates them.
 */
export const TCP_STATE_ONLY: readonly TcpInfo[] = Array.from({ length: 256 }, (_, state) => Object.freeze({ state }));

function readSeqAdj(buf: Buffer, at: number): SeqAdj {
  return { correctionPos: U32(buf, at), offsetBefore: U32(buf, at + 4), offsetAfter: U32(buf, at + 8) };
}

/**
 * Decodes the attributes of the data message at buf[off..off+len) (header
 * included) into wire form: orig tuple, NAT as snat/dnat fields, no reply
 * tuple. Follows the 1.4.7 receiver: any malformed attribute rejects the
 * whole message (WireError 'attr-len' | 'attr-id' | 'fixed-size' | 'max-size');
 * duplicates: the last wins; a LABELS payload of 0 bytes or not a multiple of
 * 4 is ignored. Beyond conntrackd, a message without orig addresses or L4
 * protocol ('missing-tuple'), or with half a master tuple ('missing-master'),
 * is rejected, because no cache can key it.
 * TCP window scales, SCTP vtags and the DCCP role are kept only with their
 * state attribute (conntrackd never sends them without it).
 */
export function decodeConntrackMsg(buf: Buffer, off: number, len: number): Conntrack {
  const msgLen = checkMessage(buf, off, len);
  let p = off + HEADER_SIZE;
  let rem = msgLen - HEADER_SIZE;

  let l3 = 0, src = '', dst = '', proto = -1;
  let sport = -1, dport = -1, icmpType = -1, icmpCode = -1, icmpId = -1;
  let status = -1, timeout = -1, mark = -1, zone = -1;
  let tcpState = -1, wsOrig = -1, wsReply = -1;
  let sctpState = -1, vtagOrig = -1, vtagReply = -1;
  let dccpState = -1, dccpRole = -1;
  let ml3 = 0, msrc = '', mdst = '', mproto = -1, msport = -1, mdport = -1;
  let snatAddr: string | undefined, dnatAddr: string | undefined;
  let snatPort = -1, dnatPort = -1;
  let seqAt = -1, synAt = -1;
  let helper: string | undefined;
  let labelsAt = -1, labelsLen = 0;

  while (rem > NTA_HDRLEN) {
    const ntaLen = checkAttr(buf, p, rem, NTA_MAX, NTA_FIXED_LEN, NTA_MAX_LEN);
    const id = buf[p + 3]!;
    const d = p + NTA_HDRLEN;
    switch (id) {
      case NTA.IPV4: l3 = AF_INET; src = ipv4Text(buf, d); dst = ipv4Text(buf, d + 4); break;
      case NTA.IPV6: l3 = AF_INET6; src = ipv6Text(buf, d); dst = ipv6Text(buf, d + 16); break;
      case NTA.L4PROTO: proto = buf[d]!; break;
      case NTA.PORT: sport = rdU16BE(buf, d); dport = rdU16BE(buf, d + 2); break;
      case NTA.TCP_STATE: tcpState = buf[d]!; break;
      case NTA.STATUS: status = U32(buf, d); break;
      case NTA.TIMEOUT: timeout = U32(buf, d); break;
      case NTA.MARK: mark = U32(buf, d); break;
      case NTA.MASTER_IPV4: ml3 = AF_INET; msrc = ipv4Text(buf, d); mdst = ipv4Text(buf, d + 4); break;
      case NTA.MASTER_IPV6: ml3 = AF_INET6; msrc = ipv6Text(buf, d); mdst = ipv6Text(buf, d + 16); break;
      case NTA.MASTER_L4PROTO: mproto = buf[d]!; break;
      case NTA.MASTER_PORT: msport = rdU16BE(buf, d); mdport = rdU16BE(buf, d + 2); break;
      case NTA.SNAT_IPV4: snatAddr = ipv4Text(buf, d); break;
      case NTA.DNAT_IPV4: dnatAddr = ipv4Text(buf, d); break;
      case NTA.SPAT_PORT: snatPort = rdU16LE(buf, d); break; // LE: §2.2 byte-order quirk
      case NTA.DPAT_PORT: dnatPort = rdU16LE(buf, d); break;
      case NTA.NAT_SEQ_ADJ: seqAt = d; break;
      case NTA.SCTP_STATE: sctpState = buf[d]!; break;
      case NTA.SCTP_VTAG_ORIG: vtagOrig = U32(buf, d); break;
      case NTA.SCTP_VTAG_REPL: vtagReply = U32(buf, d); break;
      case NTA.DCCP_STATE: dccpState = buf[d]!; break;
      case NTA.DCCP_ROLE: dccpRole = buf[d]!; break;
      case NTA.ICMP_TYPE: icmpType = buf[d]!; break;
      case NTA.ICMP_CODE: icmpCode = buf[d]!; break;
      case NTA.ICMP_ID: icmpId = rdU16LE(buf, d); break;
      case NTA.TCP_WSCALE_ORIG: wsOrig = buf[d]!; break;
      case NTA.TCP_WSCALE_REPL: wsReply = buf[d]!; break;
      case NTA.HELPER_NAME: helper = readCString(buf, d, p + ntaLen); break;
      case NTA.LABELS: {
        const n = ntaLen - NTA_HDRLEN;
        if (n !== 0 && (n & 3) === 0) {
          labelsAt = d;
          labelsLen = n;
        }
        break;
      }
      case NTA.SNAT_IPV6: snatAddr = ipv6Text(buf, d); break;
      case NTA.DNAT_IPV6: dnatAddr = ipv6Text(buf, d); break;
      case NTA.SYNPROXY: synAt = d; break;
      case NTA.ZONE: zone = rdU16BE(buf, d); break;
      default: break; // unreachable: checkAttr rejects ids >= NTA_MAX
    }
    const step = ntaAlign(ntaLen);
    p += step;
    rem -= step;
  }

  if (l3 === 0 || proto < 0) {
    throw decodeError('missing-tuple', 'message has no orig addresses or no L4 protocol', { hasAddr: l3 !== 0, proto });
  }
  // Objects are built whole from literals where possible: one allocation in
  // its final shape, and the common messages (ports; status, timeout, mark)
  // all share one shape, which keeps the cache's compare and merge monomorphic.
  let orig: Tuple;
  if (sport >= 0) {
    orig = { l3: l3 as L3Family, src, dst, proto, sport, dport };
  } else {
    orig = { l3: l3 as L3Family, src, dst, proto };
  }
  if (icmpType >= 0) orig.icmpType = icmpType;
  if (icmpCode >= 0) orig.icmpCode = icmpCode;
  if (icmpId >= 0) orig.icmpId = icmpId;

  let ct: Conntrack;
  if (status >= 0 && timeout >= 0 && mark >= 0) {
    ct = tcpState >= 0 && wsOrig < 0 && wsReply < 0
      ? { orig, status, timeout, mark, tcp: TCP_STATE_ONLY[tcpState]! }
      : { orig, status, timeout, mark };
  } else {
    ct = { orig };
    if (status >= 0) ct.status = status;
    if (timeout >= 0) ct.timeout = timeout;
    if (mark >= 0) ct.mark = mark;
  }
  if (tcpState >= 0 && ct.tcp === undefined) {
    if (wsOrig < 0 && wsReply < 0) {
      ct.tcp = TCP_STATE_ONLY[tcpState]!;
    } else {
      const tcp: TcpInfo = { state: tcpState };
      if (wsOrig >= 0) tcp.wscaleOrig = wsOrig;
      if (wsReply >= 0) tcp.wscaleReply = wsReply;
      ct.tcp = tcp;
    }
  }
  if (sctpState >= 0) {
    ct.sctp = { state: sctpState };
    if (vtagOrig >= 0) ct.sctp.vtagOrig = vtagOrig;
    if (vtagReply >= 0) ct.sctp.vtagReply = vtagReply;
  }
  if (dccpState >= 0) {
    ct.dccp = { state: dccpState };
    if (dccpRole >= 0) ct.dccp.role = dccpRole;
  }
  if (snatAddr !== undefined) ct.snatAddr = snatAddr;
  if (snatPort >= 0) ct.snatPort = snatPort;
  if (dnatAddr !== undefined) ct.dnatAddr = dnatAddr;
  if (dnatPort >= 0) ct.dnatPort = dnatPort;
  if (seqAt >= 0) {
    ct.seqAdjOrig = readSeqAdj(buf, seqAt);
    ct.seqAdjReply = readSeqAdj(buf, seqAt + 12);
  }
  if (helper !== undefined) ct.helper = helper;
  if (labelsAt >= 0) {
    // Back to the kernel's byte order (see putLabels).
    const lb = Buffer.allocUnsafe(labelsLen);
    for (let i = 0; i < labelsLen; i += 4) {
      lb[i] = buf[labelsAt + i + 3]!;
      lb[i + 1] = buf[labelsAt + i + 2]!;
      lb[i + 2] = buf[labelsAt + i + 1]!;
      lb[i + 3] = buf[labelsAt + i]!;
    }
    ct.labels = lb;
  }
  if (synAt >= 0) ct.synproxy = { its: U32(buf, synAt), isn: U32(buf, synAt + 4), tsoff: U32(buf, synAt + 8) };
  if (zone >= 0) ct.zone = zone;
  if (ml3 !== 0 || mproto >= 0 || msport >= 0) {
    if (ml3 === 0 || mproto < 0) {
      throw decodeError('missing-master', 'master tuple without addresses or L4 protocol', { hasAddr: ml3 !== 0, proto: mproto });
    }
    const master: Tuple = { l3: ml3 as L3Family, src: msrc, dst: mdst, proto: mproto };
    if (msport >= 0) {
      master.sport = msport;
      master.dport = mdport;
    }
    ct.master = master;
  }
  return ct;
}
