// ctnetlink conntrack attribute codec: the bytes of an IPCTNL_MSG_CT_* body
// after the 4-byte nfgenmsg, to and from the shared Conntrack model.
//
// Decoding runs for every kernel event (target 400k/s), so the reader walks
// attributes with its own inline loops (no visitor closures), keeps the tuple
// being decoded in module-level scratch variables and allocates only the
// objects that end up in the result. Integers in payloads are big-endian
// (spec netlink.md pitfall 9); attribute types are masked with 0x3fff; the
// next attribute starts at the 4-aligned length (pitfall 10).

import {
  AF_INET, AF_INET6, IPPROTO, IPS,
  type Conntrack, type Counters, type DccpInfo, type L3Family, type SctpInfo, type SeqAdj,
  type Synproxy, type TcpInfo, type Tuple,
} from '../model/conntrack.js';
import { hasPorts, invertTuple, natOf } from '../model/nat.js';
import { NetlinkError } from '../errors.js';
import { NLA_TYPE_MASK, readIpv4, readIpv6, type NlWriter } from './nlattr.js';
import {
  CTA, CTA_COUNTERS, CTA_HELP, CTA_IP, CTA_NAT, CTA_PROTO, CTA_PROTOINFO, CTA_PROTOINFO_DCCP,
  CTA_PROTOINFO_SCTP, CTA_PROTOINFO_TCP, CTA_PROTONAT, CTA_SEQADJ, CTA_SYNPROXY, CTA_TUPLE,
} from './ct-attrs.js';
import { rdU16BE, rdU16LE, rdU32BE } from '../util/bytes.js';

/**
 * What a message is for; decides which attributes are sent (pitfall 5):
 * - create: orig + reply (inverse of orig; the kernel derives the translated
 *   reply from CTA_NAT_*), status with IPS_CONFIRMED and without NAT bits,
 *   timeout (default DEFAULT_CREATE_TIMEOUT), NAT ranges, master, helper, and
 *   every settable field present.
 * - update: orig tuple + settable fields present: status (kernel-owned bits
 *   stripped, CONFIRMED set, EXPECTED kept; clearing SEEN_REPLY or ASSURED
 *   gets EBUSY from the kernel), timeout, mark, zone, labels with an all-ones
 *   mask, protoinfo, seqadj, synproxy. No reply, NAT, helper or master: the
 *   kernel refuses to change those on an existing entry.
 * - delete / get: orig tuple + zone only.
 */
export type CtWriteMode = 'create' | 'update' | 'delete' | 'get';

/**
 * Timeout (seconds) sent on create when the entry carries none. The kernel
 * requires CTA_TIMEOUT on create; 120 s is long enough for the next sync
 * update or kernel packet to refresh it and short enough that a stale
 * injected entry goes away on its own.
 */
export const DEFAULT_CREATE_TIMEOUT = 120;

/**
 * Status bits the kernel owns and ignores (or refuses) when set through
 * ctnetlink: NAT is expressed with CTA_NAT_*, CONFIRMED/DYING/EXPECTED track
 * the entry's lifecycle, the rest are internal. Stripped before sending
 * (CONFIRMED, and EXPECTED on update, are then put back as the kernel wants).
 */
export const STATUS_KERNEL_OWNED =
  IPS.EXPECTED | IPS.CONFIRMED | IPS.DYING | IPS.SRC_NAT | IPS.DST_NAT | IPS.SRC_NAT_DONE |
  IPS.DST_NAT_DONE | IPS.SEQ_ADJUST | IPS.TEMPLATE | IPS.UNTRACKED | IPS.OFFLOAD | IPS.HW_OFFLOAD;

// ---------------------------------------------------------------- errors
// The helpers below are exported for exp-codec.ts only (@internal): they are
// not part of the codec's API.

/** Throws the decode error every ctnetlink reader uses (exported for exp-codec). */
export function fail(reason: string, offset: number): never {
  throw new NetlinkError('CTSYNC_ERR_NETLINK_DECODE', `ctnetlink decode: ${reason} at offset ${offset}`, 0,
    { reason, offset });
}

export function short(what: string, need: number, have: number, offset: number): never {
  return fail(`${what} payload is ${have} bytes, needs ${need}`, offset);
}

// ---------------------------------------------------------------- primitive reads
// Bounds are checked by the caller (attribute length against `end`), so these
// index the buffer directly instead of paying for Buffer.read*'s checks.

function attrLen(buf: Buffer, off: number): number {
  return rdU16LE(buf, off);
}

export function attrType(buf: Buffer, off: number): number {
  return rdU16LE(buf, off + 2) & NLA_TYPE_MASK;
}

/** Validates the attribute header at `off` and returns its total length. */
export function checkedLen(buf: Buffer, off: number, end: number, where: string): number {
  const len = attrLen(buf, off);
  if (len < 4 || off + len > end) badLen(buf, off, end, where, len);
  return len;
}

/** Out of line, as the other error messages: a template literal in checkedLen cost every attribute a NumberToString. */
function badLen(buf: Buffer, off: number, end: number, where: string, len: number): never {
  if (len < 4) fail(`${where}: attribute length ${len} shorter than its header`, off);
  return fail(`${where}: attribute (type ${attrType(buf, off)}, length ${len}) runs past end ${end}`, off);
}

/** NUL-terminated (or attribute-terminated) string, latin1: helper names are ASCII. */
export function cstr(buf: Buffer, p: number, e: number): string {
  let n = p;
  while (n < e && buf[n] !== 0) n++;
  return buf.toString('latin1', p, n);
}

// ---------------------------------------------------------------- tuple decode
// Scratch for the tuple being decoded; reset by readTuple, consumed before it
// returns, so nested calls never see each other's state.

let sL3 = 0;
let sSrc = '';
let sDst = '';
let sProto = -1;
let sSport = -1;
let sDport = -1;
let sIcmpId = -1;
let sIcmpType = -1;
let sIcmpCode = -1;

function setFamily(l3: number, off: number): void {
  if (sL3 !== 0 && sL3 !== l3) fail('CTA_TUPLE_IP mixes IPv4 and IPv6 addresses', off);
  sL3 = l3;
}

function readTupleIp(buf: Buffer, start: number, end: number): void {
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_TUPLE_IP');
    const p = off + 4;
    const pl = len - 4;
    switch (attrType(buf, off)) {
      case CTA_IP.V4_SRC:
        if (pl < 4) short('CTA_IP_V4_SRC', 4, pl, off);
        setFamily(AF_INET, off);
        sSrc = readIpv4(buf, p);
        break;
      case CTA_IP.V4_DST:
        if (pl < 4) short('CTA_IP_V4_DST', 4, pl, off);
        setFamily(AF_INET, off);
        sDst = readIpv4(buf, p);
        break;
      case CTA_IP.V6_SRC:
        if (pl < 16) short('CTA_IP_V6_SRC', 16, pl, off);
        setFamily(AF_INET6, off);
        sSrc = readIpv6(buf, p);
        break;
      case CTA_IP.V6_DST:
        if (pl < 16) short('CTA_IP_V6_DST', 16, pl, off);
        setFamily(AF_INET6, off);
        sDst = readIpv6(buf, p);
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
}

function readTupleProto(buf: Buffer, start: number, end: number): void {
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_TUPLE_PROTO');
    const p = off + 4;
    const pl = len - 4;
    switch (attrType(buf, off)) {
      case CTA_PROTO.NUM:
        if (pl < 1) short('CTA_PROTO_NUM', 1, pl, off);
        sProto = buf[p]!;
        break;
      case CTA_PROTO.SRC_PORT:
        if (pl < 2) short('CTA_PROTO_SRC_PORT', 2, pl, off);
        sSport = rdU16BE(buf, p);
        break;
      case CTA_PROTO.DST_PORT:
        if (pl < 2) short('CTA_PROTO_DST_PORT', 2, pl, off);
        sDport = rdU16BE(buf, p);
        break;
      case CTA_PROTO.ICMP_ID:
      case CTA_PROTO.ICMPV6_ID:
        if (pl < 2) short('CTA_PROTO_ICMP_ID', 2, pl, off);
        sIcmpId = rdU16BE(buf, p);
        break;
      case CTA_PROTO.ICMP_TYPE:
      case CTA_PROTO.ICMPV6_TYPE:
        if (pl < 1) short('CTA_PROTO_ICMP_TYPE', 1, pl, off);
        sIcmpType = buf[p]!;
        break;
      case CTA_PROTO.ICMP_CODE:
      case CTA_PROTO.ICMPV6_CODE:
        if (pl < 1) short('CTA_PROTO_ICMP_CODE', 1, pl, off);
        sIcmpCode = buf[p]!;
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
}

/** Decodes the attributes inside a CTA_TUPLE_* nest (the nest's payload, not its header). */
export function readTuple(buf: Buffer, start: number, end: number): Tuple {
  parseTuple(buf, start, end);
  return buildTuple();
}

let sZone = -1;

/** Reads a tuple nest into the scratch fields (sL3 ... sZone), checking what every tuple needs. */
function parseTuple(buf: Buffer, start: number, end: number): void {
  if (start < 0 || end > buf.length || start > end) fail(`tuple region [${start}, ${end}) outside buffer of ${buf.length}`, start);
  sL3 = 0;
  sSrc = '';
  sDst = '';
  sProto = -1;
  sSport = -1;
  sDport = -1;
  sIcmpId = -1;
  sIcmpType = -1;
  sIcmpCode = -1;
  sZone = -1;
  let sawIp = false;
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'tuple');
    const p = off + 4;
    const pl = len - 4;
    switch (attrType(buf, off)) {
      case CTA_TUPLE.IP:
        sawIp = true;
        readTupleIp(buf, p, p + pl);
        break;
      case CTA_TUPLE.PROTO:
        readTupleProto(buf, p, p + pl);
        break;
      case CTA_TUPLE.ZONE:
        if (pl < 2) short('CTA_TUPLE_ZONE', 2, pl, off);
        sZone = rdU16BE(buf, p);
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
  if (!sawIp) fail('tuple has no CTA_TUPLE_IP', start);
  if (sL3 === 0 || sSrc === '' || sDst === '') fail('CTA_TUPLE_IP lacks a source or destination address', start);
  if (sProto < 0) fail('tuple has no CTA_PROTO_NUM', start);
}

/**
 * True when the scratch tuple is the plain inverse of `o` (model/nat.ts
 * isPlainReply, on the scratch fields): a reply the caller may leave out.
 */
function parsedIsPlainReplyOf(o: Tuple): boolean {
  return sSrc === o.dst && sDst === o.src && sSport === o.dport && sDport === o.sport && sSport >= 0 && sDport >= 0 &&
    sProto === o.proto && sL3 === o.l3 && sZone < 0 && sIcmpType < 0 && sIcmpCode < 0 && sIcmpId < 0 && hasPorts(sProto);
}

/** The scratch fields as a new Tuple. */
function buildTuple(): Tuple {
  const l3 = sL3 as L3Family;
  let t: Tuple;
  // One object literal per protocol family keeps the result's hidden classes few.
  if (sProto === IPPROTO.ICMP || sProto === IPPROTO.ICMPV6) {
    if (sIcmpType >= 0 && sIcmpCode >= 0 && sIcmpId >= 0) {
      t = { l3, src: sSrc, dst: sDst, proto: sProto, icmpType: sIcmpType, icmpCode: sIcmpCode, icmpId: sIcmpId };
    } else {
      // Never `delete`: it would turn the object into a slow dictionary.
      t = { l3, src: sSrc, dst: sDst, proto: sProto };
      if (sIcmpType >= 0) t.icmpType = sIcmpType;
      if (sIcmpCode >= 0) t.icmpCode = sIcmpCode;
      if (sIcmpId >= 0) t.icmpId = sIcmpId;
    }
  } else if (sProto === IPPROTO.GRE) {
    t = { l3, src: sSrc, dst: sDst, proto: sProto };
    if (sSport >= 0) t.greKeySrc = sSport;
    if (sDport >= 0) t.greKeyDst = sDport;
  } else if (sSport >= 0 && sDport >= 0) {
    t = { l3, src: sSrc, dst: sDst, proto: sProto, sport: sSport, dport: sDport };
  } else {
    t = { l3, src: sSrc, dst: sDst, proto: sProto };
    if (sSport >= 0) t.sport = sSport;
    if (sDport >= 0) t.dport = sDport;
  }
  if (sZone >= 0) t.zone = sZone;
  return t;
}

// ---------------------------------------------------------------- nested decoders

// Complete TcpInfo objects (what the kernel reports for every TCP entry) are
// shared: a table of 100k flows holds a handful of distinct values. Frozen,
// since entries share them (the caches' merge replaces rather than mutates).
// Direct-mapped by the packed fields; a miss just builds a new one.
const TCP_SLOTS = 256;
const tcpKeyA = new Int32Array(TCP_SLOTS).fill(-1);
const tcpKeyB = new Int32Array(TCP_SLOTS);
const tcpInfos: (TcpInfo | undefined)[] = new Array<TcpInfo | undefined>(TCP_SLOTS).fill(undefined);

function fullTcp(state: number, wsO: number, wsR: number, flO: number, mkO: number, flR: number, mkR: number): TcpInfo {
  // All fields are bytes: 8 bits each, state and window scales in the first key.
  const a = state | (wsO << 8) | (wsR << 16);
  const b = flO | (mkO << 8) | (flR << 16) | (mkR << 24);
  const slot = (Math.imul(a ^ Math.imul(b, 0x85ebca6b), 0x9e3779b1) >>> 24) & (TCP_SLOTS - 1);
  if (tcpKeyA[slot] === a && tcpKeyB[slot] === b) return tcpInfos[slot]!;
  const t: TcpInfo = Object.freeze({
    state, wscaleOrig: wsO, wscaleReply: wsR, flagsOrig: flO, flagsMaskOrig: mkO, flagsReply: flR, flagsMaskReply: mkR,
  });
  tcpKeyA[slot] = a;
  tcpKeyB[slot] = b;
  tcpInfos[slot] = t;
  return t;
}

function readTcp(buf: Buffer, start: number, end: number): TcpInfo {
  let state = 0;
  let wsO = -1;
  let wsR = -1;
  let flO = -1;
  let mkO = -1;
  let flR = -1;
  let mkR = -1;
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_PROTOINFO_TCP');
    const p = off + 4;
    const pl = len - 4;
    switch (attrType(buf, off)) {
      case CTA_PROTOINFO_TCP.STATE:
        if (pl < 1) short('CTA_PROTOINFO_TCP_STATE', 1, pl, off);
        state = buf[p]!;
        break;
      case CTA_PROTOINFO_TCP.WSCALE_ORIGINAL:
        if (pl < 1) short('CTA_PROTOINFO_TCP_WSCALE_ORIGINAL', 1, pl, off);
        wsO = buf[p]!;
        break;
      case CTA_PROTOINFO_TCP.WSCALE_REPLY:
        if (pl < 1) short('CTA_PROTOINFO_TCP_WSCALE_REPLY', 1, pl, off);
        wsR = buf[p]!;
        break;
      case CTA_PROTOINFO_TCP.FLAGS_ORIGINAL:
        if (pl < 2) short('CTA_PROTOINFO_TCP_FLAGS_ORIGINAL', 2, pl, off);
        flO = buf[p]!;
        mkO = buf[p + 1]!;
        break;
      case CTA_PROTOINFO_TCP.FLAGS_REPLY:
        if (pl < 2) short('CTA_PROTOINFO_TCP_FLAGS_REPLY', 2, pl, off);
        flR = buf[p]!;
        mkR = buf[p + 1]!;
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
  if (wsO >= 0 && wsR >= 0 && flO >= 0 && flR >= 0) return fullTcp(state, wsO, wsR, flO, mkO, flR, mkR);
  const tcp: TcpInfo = { state };
  if (wsO >= 0) tcp.wscaleOrig = wsO;
  if (wsR >= 0) tcp.wscaleReply = wsR;
  if (flO >= 0) {
    tcp.flagsOrig = flO;
    tcp.flagsMaskOrig = mkO;
  }
  if (flR >= 0) {
    tcp.flagsReply = flR;
    tcp.flagsMaskReply = mkR;
  }
  return tcp;
}

function readSctp(buf: Buffer, start: number, end: number): SctpInfo {
  const sctp: SctpInfo = { state: 0 };
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_PROTOINFO_SCTP');
    const p = off + 4;
    const pl = len - 4;
    switch (attrType(buf, off)) {
      case CTA_PROTOINFO_SCTP.STATE:
        if (pl < 1) short('CTA_PROTOINFO_SCTP_STATE', 1, pl, off);
        sctp.state = buf[p]!;
        break;
      case CTA_PROTOINFO_SCTP.VTAG_ORIGINAL:
        if (pl < 4) short('CTA_PROTOINFO_SCTP_VTAG_ORIGINAL', 4, pl, off);
        sctp.vtagOrig = rdU32BE(buf, p);
        break;
      case CTA_PROTOINFO_SCTP.VTAG_REPLY:
        if (pl < 4) short('CTA_PROTOINFO_SCTP_VTAG_REPLY', 4, pl, off);
        sctp.vtagReply = rdU32BE(buf, p);
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
  return sctp;
}

function readDccp(buf: Buffer, start: number, end: number): DccpInfo {
  const dccp: DccpInfo = { state: 0 };
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_PROTOINFO_DCCP');
    const p = off + 4;
    const pl = len - 4;
    switch (attrType(buf, off)) {
      case CTA_PROTOINFO_DCCP.STATE:
        if (pl < 1) short('CTA_PROTOINFO_DCCP_STATE', 1, pl, off);
        dccp.state = buf[p]!;
        break;
      case CTA_PROTOINFO_DCCP.ROLE:
        if (pl < 1) short('CTA_PROTOINFO_DCCP_ROLE', 1, pl, off);
        dccp.role = buf[p]!;
        break;
      case CTA_PROTOINFO_DCCP.HANDSHAKE_SEQ:
        if (pl < 8) short('CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ', 8, pl, off);
        dccp.handshakeSeq = buf.readBigUInt64BE(p);
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
  return dccp;
}

// Protoinfo is a nest of one per-protocol nest; the decoded result goes here.
let pTcp: TcpInfo | undefined;
let pSctp: SctpInfo | undefined;
let pDccp: DccpInfo | undefined;

function readProtoinfo(buf: Buffer, start: number, end: number): void {
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_PROTOINFO');
    const p = off + 4;
    switch (attrType(buf, off)) {
      case CTA_PROTOINFO.TCP:
        pTcp = readTcp(buf, p, off + len);
        break;
      case CTA_PROTOINFO.SCTP:
        pSctp = readSctp(buf, p, off + len);
        break;
      case CTA_PROTOINFO.DCCP:
        pDccp = readDccp(buf, p, off + len);
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
}

function readCounters(buf: Buffer, start: number, end: number): Counters {
  const c: Counters = { packets: 0n, bytes: 0n };
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_COUNTERS');
    const p = off + 4;
    const pl = len - 4;
    switch (attrType(buf, off)) {
      case CTA_COUNTERS.PACKETS:
        if (pl < 8) short('CTA_COUNTERS_PACKETS', 8, pl, off);
        c.packets = buf.readBigUInt64BE(p);
        break;
      case CTA_COUNTERS.BYTES:
        if (pl < 8) short('CTA_COUNTERS_BYTES', 8, pl, off);
        c.bytes = buf.readBigUInt64BE(p);
        break;
      // 32-bit forms from old kernels.
      case CTA_COUNTERS.PACKETS32:
        if (pl < 4) short('CTA_COUNTERS32_PACKETS', 4, pl, off);
        c.packets = BigInt(rdU32BE(buf, p));
        break;
      case CTA_COUNTERS.BYTES32:
        if (pl < 4) short('CTA_COUNTERS32_BYTES', 4, pl, off);
        c.bytes = BigInt(rdU32BE(buf, p));
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
  return c;
}

function readSeqAdj(buf: Buffer, start: number, end: number): SeqAdj {
  const s: SeqAdj = { correctionPos: 0, offsetBefore: 0, offsetAfter: 0 };
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_SEQ_ADJ');
    const p = off + 4;
    const pl = len - 4;
    const type = attrType(buf, off);
    if (type >= CTA_SEQADJ.CORRECTION_POS && type <= CTA_SEQADJ.OFFSET_AFTER) {
      if (pl < 4) short('CTA_SEQADJ', 4, pl, off);
      const v = rdU32BE(buf, p);
      if (type === CTA_SEQADJ.CORRECTION_POS) s.correctionPos = v;
      else if (type === CTA_SEQADJ.OFFSET_BEFORE) s.offsetBefore = v;
      else s.offsetAfter = v;
    }
    off += (len + 3) & ~3;
  }
  return s;
}

/**
 * The synproxy extension every ctnetlink-created entry carries, all zero. One
 * frozen object serves them all (it must still be present: conntrackd sends
 * NTA_SYNPROXY whenever the kernel reported it). Nothing mutates a decoded
 * synproxy; the freeze makes sure nothing starts to.
 */
export const ZERO_SYNPROXY: Synproxy = Object.freeze({ isn: 0, its: 0, tsoff: 0 });

function readSynproxy(buf: Buffer, start: number, end: number): Synproxy {
  let isn = 0;
  let its = 0;
  let tsoff = 0;
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_SYNPROXY');
    const p = off + 4;
    const pl = len - 4;
    const type = attrType(buf, off);
    if (type >= CTA_SYNPROXY.ISN && type <= CTA_SYNPROXY.TSOFF) {
      if (pl < 4) short('CTA_SYNPROXY', 4, pl, off);
      const v = rdU32BE(buf, p);
      if (type === CTA_SYNPROXY.ISN) isn = v;
      else if (type === CTA_SYNPROXY.ITS) its = v;
      else tsoff = v;
    }
    off += (len + 3) & ~3;
  }
  return (isn | its | tsoff) === 0 ? ZERO_SYNPROXY : { isn, its, tsoff };
}

function readHelpName(buf: Buffer, start: number, end: number): string | undefined {
  let off = start;
  let name: string | undefined;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_HELP');
    if (attrType(buf, off) === CTA_HELP.NAME) name = cstr(buf, off + 4, off + len);
    off += (len + 3) & ~3;
  }
  return name;
}

// CTA_NAT_SRC/DST only appear in requests (the kernel reports NAT through the
// reply tuple); decoding them lets tests and tools read back what we send.
let nAddr: string | undefined;
let nPort: number | undefined;

function readNatProto(buf: Buffer, start: number, end: number): void {
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_NAT_PROTO');
    const pl = len - 4;
    if (attrType(buf, off) === CTA_PROTONAT.PORT_MIN) {
      if (pl < 2) short('CTA_PROTONAT_PORT_MIN', 2, pl, off);
      nPort = rdU16BE(buf, off + 4);
    }
    off += (len + 3) & ~3;
  }
}

function readNat(buf: Buffer, start: number, end: number): void {
  nAddr = undefined;
  nPort = undefined;
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_NAT');
    const p = off + 4;
    const pl = len - 4;
    switch (attrType(buf, off)) {
      case CTA_NAT.V4_MINIP:
        if (pl < 4) short('CTA_NAT_V4_MINIP', 4, pl, off);
        nAddr = readIpv4(buf, p);
        break;
      case CTA_NAT.V6_MINIP:
        if (pl < 16) short('CTA_NAT_V6_MINIP', 16, pl, off);
        nAddr = readIpv6(buf, p);
        break;
      case CTA_NAT.PROTO:
        readNatProto(buf, p, off + len);
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
}

// ---------------------------------------------------------------- conntrack decode

/**
 * Decodes a conntrack message body (the attributes after nfgenmsg) in
 * [start, end). Throws NetlinkError(CTSYNC_ERR_NETLINK_DECODE) on malformed
 * or truncated input, or when there is no CTA_TUPLE_ORIG. Unknown attributes
 * are skipped (newer kernels add some). Buffers in the result (labels) are
 * copies: the receive buffer is reused.
 *
 * `dropPlainReply` (the event listener's choice): a reply tuple that is the
 * plain inverse of the orig one (no NAT; model/nat.ts isPlainReply) is left
 * out instead of built. The internal cache keeps no such tuple anyway, and
 * V8 allocates these literals straight in the old generation, so each one
 * would be old-space garbage for the major GC. Readers rebuild it with
 * replyFromNat; natOf and the wire encoder read a missing reply as no NAT.
 */
export function readConntrack(buf: Buffer, start: number, end: number, dropPlainReply = false): Conntrack {
  if (start < 0 || end > buf.length || start > end) fail(`region [${start}, ${end}) outside buffer of ${buf.length}`, start);
  let orig: Tuple | undefined;
  let reply: Tuple | undefined;
  let master: Tuple | undefined;
  let status = -1;
  let timeout = -1;
  let mark = -1;
  let zone = -1;
  let id = -1;
  let use = -1;
  let labels: Buffer | undefined;
  let helper: string | undefined;
  let seqO: SeqAdj | undefined;
  let seqR: SeqAdj | undefined;
  let synproxy: Synproxy | undefined;
  let cntO: Counters | undefined;
  let cntR: Counters | undefined;
  let snatAddr: string | undefined;
  let snatPort: number | undefined;
  let dnatAddr: string | undefined;
  let dnatPort: number | undefined;
  pTcp = undefined;
  pSctp = undefined;
  pDccp = undefined;

  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'conntrack');
    const p = off + 4;
    const pl = len - 4;
    switch (attrType(buf, off)) {
      case CTA.TUPLE_ORIG:
        orig = readTuple(buf, p, off + len);
        break;
      case CTA.TUPLE_REPLY:
        parseTuple(buf, p, off + len);
        // The kernel sends the orig tuple first; a plain reply then costs no object (see the doc above).
        reply = dropPlainReply && orig !== undefined && parsedIsPlainReplyOf(orig) ? undefined : buildTuple();
        break;
      case CTA.TUPLE_MASTER:
        master = readTuple(buf, p, off + len);
        break;
      case CTA.STATUS:
        if (pl < 4) short('CTA_STATUS', 4, pl, off);
        status = rdU32BE(buf, p);
        break;
      case CTA.TIMEOUT:
        if (pl < 4) short('CTA_TIMEOUT', 4, pl, off);
        timeout = rdU32BE(buf, p);
        break;
      case CTA.MARK:
        if (pl < 4) short('CTA_MARK', 4, pl, off);
        mark = rdU32BE(buf, p);
        break;
      case CTA.ZONE:
        if (pl < 2) short('CTA_ZONE', 2, pl, off);
        zone = rdU16BE(buf, p);
        break;
      case CTA.ID:
        if (pl < 4) short('CTA_ID', 4, pl, off);
        id = rdU32BE(buf, p);
        break;
      case CTA.USE:
        if (pl < 4) short('CTA_USE', 4, pl, off);
        use = rdU32BE(buf, p);
        break;
      case CTA.LABELS:
        labels = Buffer.allocUnsafe(pl);
        buf.copy(labels, 0, p, p + pl);
        break;
      case CTA.PROTOINFO:
        readProtoinfo(buf, p, off + len);
        break;
      case CTA.HELP:
        helper = readHelpName(buf, p, off + len);
        break;
      case CTA.SEQ_ADJ_ORIG:
        seqO = readSeqAdj(buf, p, off + len);
        break;
      case CTA.SEQ_ADJ_REPLY:
        seqR = readSeqAdj(buf, p, off + len);
        break;
      case CTA.SYNPROXY:
        synproxy = readSynproxy(buf, p, off + len);
        break;
      case CTA.COUNTERS_ORIG:
        cntO = readCounters(buf, p, off + len);
        break;
      case CTA.COUNTERS_REPLY:
        cntR = readCounters(buf, p, off + len);
        break;
      case CTA.NAT_SRC:
        readNat(buf, p, off + len);
        snatAddr = nAddr;
        snatPort = nPort;
        break;
      case CTA.NAT_DST:
        readNat(buf, p, off + len);
        dnatAddr = nAddr;
        dnatPort = nPort;
        break;
      default:
        // SECMARK, SECCTX, TIMESTAMP, request-only masks and future attributes.
        break;
    }
    off += (len + 3) & ~3;
  }
  if (orig === undefined) fail('conntrack message has no CTA_TUPLE_ORIG', start);
  // The kernel's two tuples are of one family; an entry with both would be encoded for the peer as
  // the orig's family with the reply's addresses, which no encoder can write.
  if (reply !== undefined && reply.l3 !== orig.l3) fail('CTA_TUPLE_REPLY is not of the orig tuple\'s family', start);

  // Every entry starts as one literal with the fields kernel events usually
  // carry, set or not (undefined): entries of every protocol, marked or not,
  // from packets or from other processes' requests share one hidden class, so
  // the code that reads them (filter, caches, hashes, the wire encoder) stays
  // monomorphic. Built field by field they had a class per combination, five
  // and more on a real firewall, and those readers went megamorphic (V8's
  // --log-ic, bench/README.md). One literal also spares the property store's
  // growth and copies. Rarer fields follow, in one fixed order.
  const ct: Conntrack = {
    orig, reply,
    status: status >= 0 ? status : undefined,
    timeout: timeout >= 0 ? timeout : undefined,
    mark: mark >= 0 ? mark : undefined,
    id: id >= 0 ? id : undefined,
    tcp: pTcp,
    synproxy,
  };
  if (zone >= 0) ct.zone = zone;
  if (use >= 0) ct.use = use;
  if (labels !== undefined) ct.labels = labels;
  if (helper !== undefined) ct.helper = helper;
  if (pSctp !== undefined) ct.sctp = pSctp;
  if (pDccp !== undefined) ct.dccp = pDccp;
  if (seqO !== undefined) ct.seqAdjOrig = seqO;
  if (seqR !== undefined) ct.seqAdjReply = seqR;
  if (cntO !== undefined) ct.countersOrig = cntO;
  if (cntR !== undefined) ct.countersReply = cntR;
  if (snatAddr !== undefined) ct.snatAddr = snatAddr;
  if (snatPort !== undefined) ct.snatPort = snatPort;
  if (dnatAddr !== undefined) ct.dnatAddr = dnatAddr;
  if (dnatPort !== undefined) ct.dnatPort = dnatPort;
  if (master !== undefined) ct.master = master;
  pTcp = undefined;
  pSctp = undefined;
  pDccp = undefined;
  return ct;
}

// ---------------------------------------------------------------- encode

function writeL4(w: NlWriter, t: Tuple, swap: boolean): void {
  const proto = t.proto;
  if (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) {
    // The kernel requires id, type and code together for ICMP tuples.
    const v6 = proto === IPPROTO.ICMPV6;
    w.u16be(v6 ? CTA_PROTO.ICMPV6_ID : CTA_PROTO.ICMP_ID, t.icmpId ?? 0);
    w.u8(v6 ? CTA_PROTO.ICMPV6_TYPE : CTA_PROTO.ICMP_TYPE, t.icmpType ?? 0);
    w.u8(v6 ? CTA_PROTO.ICMPV6_CODE : CTA_PROTO.ICMP_CODE, t.icmpCode ?? 0);
    return;
  }
  const src = proto === IPPROTO.GRE ? t.greKeySrc : t.sport;
  const dst = proto === IPPROTO.GRE ? t.greKeyDst : t.dport;
  const a = swap ? dst : src;
  const b = swap ? src : dst;
  // The kernel wants both ports of a port-based protocol: an entry from a
  // conntrackd peer that sent none (1.4.7 sends ports only for UDP among the
  // datagram protocols, so UDP-Lite arrives portless) is written with zeros,
  // as conntrackd's own commit does.
  const needPorts = hasPorts(proto) || proto === IPPROTO.GRE;
  if (a !== undefined || needPorts) w.u16be(CTA_PROTO.SRC_PORT, a ?? 0);
  if (b !== undefined || needPorts) w.u16be(CTA_PROTO.DST_PORT, b ?? 0);
}

function writeIp(w: NlWriter, t: Tuple, src: string, dst: string): void {
  w.beginNested(CTA_TUPLE.IP);
  if (t.l3 === AF_INET6) {
    w.ipv6(CTA_IP.V6_SRC, src);
    w.ipv6(CTA_IP.V6_DST, dst);
  } else {
    w.ipv4(CTA_IP.V4_SRC, src);
    w.ipv4(CTA_IP.V4_DST, dst);
  }
  w.endNested();
}

/** Writes `t` as a nested tuple attribute of type `attrType` (CTA_TUPLE_ORIG, CTA_EXPECT_MASK...). */
export function writeTupleAttrs(w: NlWriter, attrType: number, t: Tuple): void {
  w.beginNested(attrType);
  writeIp(w, t, t.src, t.dst);
  w.beginNested(CTA_TUPLE.PROTO);
  w.u8(CTA_PROTO.NUM, t.proto);
  writeL4(w, t, false);
  w.endNested();
  if (t.zone !== undefined) w.u16be(CTA_TUPLE.ZONE, t.zone);
  w.endNested();
}

/**
 * The untranslated reply tuple (orig inverted) without building it as an
 * object. `zone` is the reply direction's own tuple zone, if the entry has one.
 */
function writeInverseTuple(w: NlWriter, attrType: number, t: Tuple, zone: number | undefined): void {
  if (t.proto === IPPROTO.ICMP || t.proto === IPPROTO.ICMPV6) {
    // ICMP type inversion has a table; not worth duplicating for a rare case.
    const r = invertTuple(t);
    if (zone !== undefined) r.zone = zone;
    writeTupleAttrs(w, attrType, r);
    return;
  }
  w.beginNested(attrType);
  writeIp(w, t, t.dst, t.src);
  w.beginNested(CTA_TUPLE.PROTO);
  w.u8(CTA_PROTO.NUM, t.proto);
  writeL4(w, t, true);
  w.endNested();
  if (zone !== undefined) w.u16be(CTA_TUPLE.ZONE, zone);
  w.endNested();
}

function writeNat(w: NlWriter, attrType: number, l3: number, addr: string | undefined, port: number | undefined): void {
  w.beginNested(attrType);
  if (addr !== undefined) {
    if (l3 === AF_INET6) {
      w.ipv6(CTA_NAT.V6_MINIP, addr);
      w.ipv6(CTA_NAT.V6_MAXIP, addr);
    } else {
      w.ipv4(CTA_NAT.V4_MINIP, addr);
      w.ipv4(CTA_NAT.V4_MAXIP, addr);
    }
  }
  if (port !== undefined) {
    w.beginNested(CTA_NAT.PROTO);
    w.u16be(CTA_PROTONAT.PORT_MIN, port);
    w.u16be(CTA_PROTONAT.PORT_MAX, port);
    w.endNested();
  }
  w.endNested();
}

function writeProtoinfo(w: NlWriter, ct: Conntrack): void {
  if (ct.tcp !== undefined) {
    const t = ct.tcp;
    w.beginNested(CTA.PROTOINFO);
    w.beginNested(CTA_PROTOINFO.TCP);
    w.u8(CTA_PROTOINFO_TCP.STATE, t.state);
    if (t.wscaleOrig !== undefined) w.u8(CTA_PROTOINFO_TCP.WSCALE_ORIGINAL, t.wscaleOrig);
    if (t.wscaleReply !== undefined) w.u8(CTA_PROTOINFO_TCP.WSCALE_REPLY, t.wscaleReply);
    if (t.flagsOrig !== undefined) writeTcpFlags(w, CTA_PROTOINFO_TCP.FLAGS_ORIGINAL, t.flagsOrig, t.flagsMaskOrig);
    if (t.flagsReply !== undefined) writeTcpFlags(w, CTA_PROTOINFO_TCP.FLAGS_REPLY, t.flagsReply, t.flagsMaskReply);
    w.endNested();
    w.endNested();
  } else if (ct.sctp !== undefined) {
    // The kernel requires state and both vtags together.
    const s = ct.sctp;
    w.beginNested(CTA.PROTOINFO);
    w.beginNested(CTA_PROTOINFO.SCTP);
    w.u8(CTA_PROTOINFO_SCTP.STATE, s.state);
    w.u32be(CTA_PROTOINFO_SCTP.VTAG_ORIGINAL, s.vtagOrig ?? 0);
    w.u32be(CTA_PROTOINFO_SCTP.VTAG_REPLY, s.vtagReply ?? 0);
    w.endNested();
    w.endNested();
  } else if (ct.dccp !== undefined) {
    // The kernel requires state and role together.
    const d = ct.dccp;
    w.beginNested(CTA.PROTOINFO);
    w.beginNested(CTA_PROTOINFO.DCCP);
    w.u8(CTA_PROTOINFO_DCCP.STATE, d.state);
    w.u8(CTA_PROTOINFO_DCCP.ROLE, d.role ?? 0);
    if (d.handshakeSeq !== undefined) w.u64be(CTA_PROTOINFO_DCCP.HANDSHAKE_SEQ, d.handshakeSeq);
    w.endNested();
    w.endNested();
  }
}

/**
 * struct nf_ct_tcp_flags { u8 flags; u8 mask; }: the kernel sets only the
 * bits in mask. Kernel dumps report mask 0, so a mask of 0 or none means
 * "all bits as given" (0xff); otherwise the mask is sent as it is.
 */
function writeTcpFlags(w: NlWriter, type: number, flags: number, mask: number | undefined): void {
  const m = mask === undefined || mask === 0 ? 0xff : mask;
  w.bytes(type, tcpFlagsScratch(flags, m));
}

const flagsScratch = Buffer.alloc(2);
function tcpFlagsScratch(flags: number, mask: number): Buffer {
  flagsScratch[0] = flags & 0xff;
  flagsScratch[1] = mask & 0xff;
  return flagsScratch;
}

function writeSeqAdj(w: NlWriter, type: number, s: SeqAdj): void {
  w.beginNested(type);
  w.u32be(CTA_SEQADJ.CORRECTION_POS, s.correctionPos);
  w.u32be(CTA_SEQADJ.OFFSET_BEFORE, s.offsetBefore);
  w.u32be(CTA_SEQADJ.OFFSET_AFTER, s.offsetAfter);
  w.endNested();
}

let labelsMask = Buffer.alloc(16, 0xff);
function allOnes(n: number): Buffer {
  if (labelsMask.length !== n) labelsMask = Buffer.alloc(n, 0xff);
  return labelsMask;
}

/**
 * Appends the attributes of `ct` for a request of kind `mode` (see
 * CtWriteMode). The caller has written nlmsghdr and nfgenmsg. Throws
 * TypeError if an address does not parse for the tuple's family.
 */
export function writeConntrackAttrs(w: NlWriter, ct: Conntrack, mode: CtWriteMode): void {
  writeTupleAttrs(w, CTA.TUPLE_ORIG, ct.orig);
  if (mode === 'delete' || mode === 'get') {
    if (ct.zone !== undefined) w.u16be(CTA.ZONE, ct.zone);
    return;
  }
  const create = mode === 'create';
  if (create) {
    writeInverseTuple(w, CTA.TUPLE_REPLY, ct.orig, ct.reply?.zone);
    const nat = natOf(ct);
    if (nat.dnatAddr !== undefined || nat.dnatPort !== undefined) {
      writeNat(w, CTA.NAT_DST, ct.orig.l3, nat.dnatAddr, hasPorts(ct.orig.proto) ? nat.dnatPort : undefined);
    }
    if (nat.snatAddr !== undefined || nat.snatPort !== undefined) {
      writeNat(w, CTA.NAT_SRC, ct.orig.l3, nat.snatAddr, hasPorts(ct.orig.proto) ? nat.snatPort : undefined);
    }
    if (ct.master !== undefined) writeTupleAttrs(w, CTA.TUPLE_MASTER, ct.master);
    w.u32be(CTA.STATUS, ((ct.status ?? 0) & ~STATUS_KERNEL_OWNED) | IPS.CONFIRMED);
    w.u32be(CTA.TIMEOUT, ct.timeout ?? DEFAULT_CREATE_TIMEOUT);
  } else {
    // The kernel (6.18 measured) answers EBUSY when an update would flip
    // CONFIRMED, EXPECTED or DYING, or clear SEEN_REPLY/ASSURED; NAT and the
    // other owned bits it ignores. An updated entry is confirmed and keeps
    // its EXPECTED bit, so send exactly that.
    if (ct.status !== undefined) {
      w.u32be(CTA.STATUS, (ct.status & ~STATUS_KERNEL_OWNED) | IPS.CONFIRMED | (ct.status & IPS.EXPECTED));
    }
    if (ct.timeout !== undefined) w.u32be(CTA.TIMEOUT, ct.timeout);
  }
  if (ct.mark !== undefined) w.u32be(CTA.MARK, ct.mark);
  if (ct.zone !== undefined) w.u16be(CTA.ZONE, ct.zone);
  if (ct.labels !== undefined) {
    w.bytes(CTA.LABELS, ct.labels);
    // On update, replace the whole bitmap rather than OR into it.
    if (!create) w.bytes(CTA.LABELS_MASK, allOnes(ct.labels.length));
  }
  if (create && ct.helper !== undefined) {
    w.beginNested(CTA.HELP);
    w.cstring(CTA_HELP.NAME, ct.helper);
    w.endNested();
  }
  writeProtoinfo(w, ct);
  if (ct.seqAdjOrig !== undefined) writeSeqAdj(w, CTA.SEQ_ADJ_ORIG, ct.seqAdjOrig);
  if (ct.seqAdjReply !== undefined) writeSeqAdj(w, CTA.SEQ_ADJ_REPLY, ct.seqAdjReply);
  if (ct.synproxy !== undefined) {
    w.beginNested(CTA.SYNPROXY);
    w.u32be(CTA_SYNPROXY.ISN, ct.synproxy.isn);
    w.u32be(CTA_SYNPROXY.ITS, ct.synproxy.its);
    w.u32be(CTA_SYNPROXY.TSOFF, ct.synproxy.tsoff);
    w.endNested();
  }
}
