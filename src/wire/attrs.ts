// Attribute ids and size limits of conntrackd 1.4.7's sync payload (spec
// ftfw.md §2.1, §2.2, §2.4), plus the TLV write primitives shared by the
// conntrack and expectation codecs. Sizes are `nta_len` values, i.e. the 4-byte
// TLV header included and padding excluded, because that is what the receiver
// compares against.
import { WireError } from '../errors.js';
import { writeIpv4, writeIpv6 } from '../netlink/nlattr.js';
import { rdU16BE, wrU16BE, wrU16LE, wrU32BE } from '../util/bytes.js';

/** TLV header: nta_len (u16 BE) + nta_attr (u16 BE). */
export const NTA_HDRLEN = 4;

export function ntaAlign(n: number): number {
  return (n + 3) & ~3;
}

/** Conntrack attribute ids (CT_NEW / CT_UPD / CT_DEL). */
export const NTA = {
  IPV4: 0,
  IPV6: 1,
  L4PROTO: 2,
  PORT: 3,
  TCP_STATE: 4,
  STATUS: 5,
  TIMEOUT: 6,
  MARK: 7,
  MASTER_IPV4: 8,
  MASTER_IPV6: 9,
  MASTER_L4PROTO: 10,
  MASTER_PORT: 11,
  SNAT_IPV4: 12,
  DNAT_IPV4: 13,
  SPAT_PORT: 14,
  DPAT_PORT: 15,
  NAT_SEQ_ADJ: 16,
  SCTP_STATE: 17,
  SCTP_VTAG_ORIG: 18,
  SCTP_VTAG_REPL: 19,
  DCCP_STATE: 20,
  DCCP_ROLE: 21,
  ICMP_TYPE: 22,
  ICMP_CODE: 23,
  ICMP_ID: 24,
  TCP_WSCALE_ORIG: 25,
  TCP_WSCALE_REPL: 26,
  HELPER_NAME: 27,
  LABELS: 28,
  SNAT_IPV6: 29,
  DNAT_IPV6: 30,
  SYNPROXY: 31,
  ZONE: 32,
} as const;

/** Ids at or above this are rejected by a 1.4.7 receiver (a 1.4.6 one stops at 32). */
export const NTA_MAX = 33;

/**
 * Exact nta_len per conntrack attribute id; 0 = variable (see NTA_MAX_LEN).
 * A receiver rejects the whole message when a fixed-size attribute differs.
 */
export const NTA_FIXED_LEN = [
  12, // IPV4
  36, // IPV6
  5, // L4PROTO
  8, // PORT
  5, // TCP_STATE
  8, // STATUS
  8, // TIMEOUT
  8, // MARK
  12, // MASTER_IPV4
  36, // MASTER_IPV6
  5, // MASTER_L4PROTO
  8, // MASTER_PORT
  8, // SNAT_IPV4
  8, // DNAT_IPV4
  6, // SPAT_PORT
  6, // DPAT_PORT
  28, // NAT_SEQ_ADJ
  5, // SCTP_STATE
  8, // SCTP_VTAG_ORIG
  8, // SCTP_VTAG_REPL
  5, // DCCP_STATE
  5, // DCCP_ROLE
  5, // ICMP_TYPE
  5, // ICMP_CODE
  6, // ICMP_ID
  5, // TCP_WSCALE_ORIG
  5, // TCP_WSCALE_REPL
  0, // HELPER_NAME
  0, // LABELS
  20, // SNAT_IPV6
  20, // DNAT_IPV6
  16, // SYNPROXY
  6, // ZONE
] as const satisfies readonly number[];

/**
 * Largest nta_len accepted for variable-size conntrack attributes; 0 = fixed.
 * HELPER_NAME's limit is conntrackd's NFCT_HELPER_NAME_MAX (16) applied to
 * nta_len, header included, so names longer than 11 characters are rejected
 * [QUIRK]. LABELS: 1024 bytes of bitmap.
 */
export const NTA_MAX_LEN = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  16, // HELPER_NAME
  4 + 1024, // LABELS
  0, 0, 0, 0,
] as const satisfies readonly number[];

/** Expectation attribute ids (EXP_NEW / EXP_UPD / EXP_DEL). */
export const NTA_EXP = {
  MASTER_IPV4: 0,
  MASTER_IPV6: 1,
  MASTER_L4PROTO: 2,
  MASTER_PORT: 3,
  EXPECT_IPV4: 4,
  EXPECT_IPV6: 5,
  EXPECT_L4PROTO: 6,
  EXPECT_PORT: 7,
  MASK_IPV4: 8,
  MASK_IPV6: 9,
  MASK_L4PROTO: 10,
  MASK_PORT: 11,
  TIMEOUT: 12,
  FLAGS: 13,
  CLASS: 14,
  NAT_IPV4: 15,
  NAT_PORT: 16,
  NAT_L4PROTO: 17,
  NAT_DIR: 18,
  HELPER_NAME: 19,
  FN: 20,
} as const;

export const NTA_EXP_MAX = 21;

export const NTA_EXP_FIXED_LEN = [
  12, 36, 5, 8, // master IPV4, IPV6, L4PROTO, PORT
  12, 36, 5, 8, // expected
  12, 36, 5, 8, // mask
  8, // TIMEOUT
  8, // FLAGS
  8, // CLASS
  12, // NAT_IPV4
  8, // NAT_PORT
  5, // NAT_L4PROTO
  8, // NAT_DIR
  0, // HELPER_NAME
  0, // FN
] as const satisfies readonly number[];

export const NTA_EXP_MAX_LEN = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  16, // HELPER_NAME (NFCT_HELPER_NAME_MAX, header included: ≤ 11 chars)
  32, // FN ("artificial limit" in conntrackd: ≤ 27 chars)
] as const satisfies readonly number[];

/** Bytes of label bitmap a receiver accepts in one LABELS attribute. */
export const NTA_LABELS_MAX_PAYLOAD = 1024;

// ---------------------------------------------------------------------------
// TLV writers. Each writes one attribute (header, payload, zero padding) at
// buf[p] and returns the offset after it. They check `limit` themselves so a
// full buffer is a WireError, never a RangeError from Buffer.

/**
 * "Does not fit" is routine control flow (every full datagram ends with one),
 * so it is one shared error: no allocation and no stack capture per datagram.
 * Callers that need the sizes have them at hand.
 */
export const NO_SPACE: WireError = new WireError('CTSYNC_ERR_WIRE_ENCODE', 'message does not fit before the limit', 'no-space');

export function noSpace(_need: number, _limit: number): WireError {
  return NO_SPACE;
}

function room(p: number, total: number, limit: number): void {
  if (p + total > limit) throw noSpace(p + total, limit);
}

function tlvHeader(buf: Buffer, p: number, id: number, ntaLen: number): void {
  wrU16BE(buf, p, ntaLen);
  wrU16BE(buf, p + 2, id);
}

// The integer stores below index the buffer directly (room() has checked the
// bounds) and refuse exactly what Buffer's write*() refuse (value > max or
// < min; a fraction or NaN is stored truncated, as Buffer does): the same
// bytes and the same bad-value errors, without a bounds-checked call each.

function outOfRange(v: number, max: number): RangeError {
  return new RangeError(`The value of "value" is out of range. It must be >= 0 and <= ${max}. Received ${v}`);
}

export function putU8(buf: Buffer, p: number, id: number, v: number, limit: number): number {
  room(p, 8, limit);
  if (v > 0xff || v < 0) throw outOfRange(v, 0xff);
  tlvHeader(buf, p, id, 5);
  buf[p + 4] = v;
  buf[p + 5] = 0;
  buf[p + 6] = 0;
  buf[p + 7] = 0;
  return p + 8;
}

export function putU16BE(buf: Buffer, p: number, id: number, v: number, limit: number): number {
  room(p, 8, limit);
  if (v > 0xffff || v < 0) throw outOfRange(v, 0xffff);
  tlvHeader(buf, p, id, 6);
  wrU16BE(buf, p + 4, v);
  buf[p + 6] = 0;
  buf[p + 7] = 0;
  return p + 8;
}

/** SPAT_PORT, DPAT_PORT, ICMP_ID: little-endian between x86 peers (§2.2 byte-order quirk). */
export function putU16LE(buf: Buffer, p: number, id: number, v: number, limit: number): number {
  room(p, 8, limit);
  if (v > 0xffff || v < 0) throw outOfRange(v, 0xffff);
  tlvHeader(buf, p, id, 6);
  wrU16LE(buf, p + 4, v);
  buf[p + 6] = 0;
  buf[p + 7] = 0;
  return p + 8;
}

/** A u32 BE payload word at buf[p], no header (bounds already checked by the caller). */
export function u32be(buf: Buffer, p: number, v: number): void {
  if (v > 0xffffffff || v < 0) throw outOfRange(v, 0xffffffff);
  wrU32BE(buf, p, v);
}

export function putU32BE(buf: Buffer, p: number, id: number, v: number, limit: number): number {
  room(p, 8, limit);
  u32be(buf, p + 4, v);
  tlvHeader(buf, p, id, 8);
  return p + 8;
}

/** Two u16 BE (a port pair). */
export function putPorts(buf: Buffer, p: number, id: number, a: number, b: number, limit: number): number {
  room(p, 8, limit);
  if (a > 0xffff || a < 0) throw outOfRange(a, 0xffff);
  if (b > 0xffff || b < 0) throw outOfRange(b, 0xffff);
  tlvHeader(buf, p, id, 8);
  buf[p + 4] = a >>> 8;
  buf[p + 5] = a;
  buf[p + 6] = b >>> 8;
  buf[p + 7] = b;
  return p + 8;
}

/** One address: 4 bytes (v4) or 16 bytes (v6), network order. */
export function putAddr(buf: Buffer, p: number, id: number, v6: boolean, a: string, limit: number): number {
  if (v6) {
    room(p, 20, limit);
    tlvHeader(buf, p, id, 20);
    writeIpv6(buf, p + 4, a);
    return p + 20;
  }
  room(p, 8, limit);
  tlvHeader(buf, p, id, 8);
  writeIpv4(buf, p + 4, a);
  return p + 8;
}

/** An address pair (src, dst), as IPV4/IPV6 and their master/expect/mask twins. */
export function putAddrPair(buf: Buffer, p: number, id: number, v6: boolean, src: string, dst: string,
  limit: number): number {
  if (v6) {
    room(p, 36, limit);
    tlvHeader(buf, p, id, 36);
    writeIpv6(buf, p + 4, src);
    writeIpv6(buf, p + 20, dst);
    return p + 36;
  }
  room(p, 12, limit);
  tlvHeader(buf, p, id, 12);
  writeIpv4(buf, p + 4, src);
  writeIpv4(buf, p + 8, dst);
  return p + 12;
}

/** An IPv4 pair whose values are known already (u32 or its int32). */
export function putIpv4Pair(buf: Buffer, p: number, id: number, src: number, dst: number, limit: number): number {
  room(p, 12, limit);
  tlvHeader(buf, p, id, 12);
  wrU32BE(buf, p + 4, src >>> 0);
  wrU32BE(buf, p + 8, dst >>> 0);
  return p + 12;
}

/** NUL-terminated string; nta_len = 4 + bytes + 1, as conntrackd sends it. */
export function putString(buf: Buffer, p: number, id: number, s: string, limit: number): number {
  const n = Buffer.byteLength(s);
  const ntaLen = NTA_HDRLEN + n + 1;
  const total = ntaAlign(ntaLen);
  room(p, total, limit);
  tlvHeader(buf, p, id, ntaLen);
  buf.write(s, p + 4);
  buf.fill(0, p + 4 + n, p + total);
  return p + total;
}

/** Turns anything a bad input value made Buffer or the address writers throw into a WireError. */
export function encodeFailure(err: unknown): WireError {
  if (err instanceof WireError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new WireError('CTSYNC_ERR_WIRE_ENCODE', `cannot encode: ${msg}`, 'bad-value');
}

export function decodeError(reason: string, message: string, context: Record<string, unknown> = {}): WireError {
  return new WireError('CTSYNC_ERR_WIRE_DECODE', message, reason, context);
}

/**
 * Validates the attribute at buf[p] against the receiver rules of §2.1
 * (`rem` = bytes left in the message) and returns its nta_len. Throws the
 * WireError a 1.4.7 receiver's rejection corresponds to.
 */
export function checkAttr(buf: Buffer, p: number, rem: number, maxId: number,
  fixed: readonly number[], maxLen: readonly number[]): number {
  const ntaLen = rdU16BE(buf, p);
  const id = rdU16BE(buf, p + 2);
  if (ntaLen > rem || ntaLen < NTA_HDRLEN || id >= maxId) throw attrError(id, ntaLen, rem, maxId, 0);
  const f = fixed[id]!;
  if (f !== 0 && ntaLen !== f) throw attrError(id, ntaLen, rem, maxId, f);
  const m = maxLen[id]!;
  if (m !== 0 && ntaLen > m) throw attrError(id, ntaLen, rem, maxId, -m);
  return ntaLen;
}

// The messages of checkAttr's and checkMessage's errors are built here, out of
// line. Written as template literals in those per-attribute functions, they
// cost every attribute a NumberToString call: TurboFan placed the conversion
// of ntaLen, shared by three throw sites, in the block that dominates them all,
// which is the hot path (perf of the receiver: Builtins_NumberToString 1.7%).

/** `f` > 0: the fixed size it missed; `f` < 0: minus the size limit it passed. */
function attrError(id: number, ntaLen: number, rem: number, maxId: number, f: number): WireError {
  if (ntaLen > rem) return decodeError('attr-len', `attribute ${id} runs past the message (${ntaLen} > ${rem})`, { id, ntaLen });
  if (ntaLen < NTA_HDRLEN) return decodeError('attr-len', `attribute ${id} shorter than its header`, { id, ntaLen });
  if (id >= maxId) return decodeError('attr-id', `unknown attribute id ${id}`, { id });
  if (f > 0) return decodeError('fixed-size', `attribute ${id} has nta_len ${ntaLen}, expected ${f}`, { id, ntaLen });
  return decodeError('max-size', `attribute ${id} has nta_len ${ntaLen}, limit ${-f}`, { id, ntaLen });
}

function messageError(off: number, len: number, msgLen: number): WireError {
  if (msgLen < 0) return decodeError('truncated', `message region [${off}, ${off + len}) does not hold a header`, { off, len });
  return decodeError('bad-size', `message len ${msgLen} outside [8, ${len}]`, { msgLen, len });
}

/**
 * Checks the message header at buf[off] against the region the caller passed
 * and returns the message length to parse (the header's own `len`, as
 * conntrackd uses it).
 */
export function checkMessage(buf: Buffer, off: number, len: number): number {
  if (off < 0 || len < 8 || off + len > buf.length) throw messageError(off, len, -1);
  const msgLen = rdU16BE(buf, off + 2);
  if (msgLen < 8 || msgLen > len) throw messageError(off, len, msgLen);
  return msgLen;
}

/** A C string payload: bytes up to the first NUL (or the payload end). */
export function readCString(buf: Buffer, start: number, end: number): string {
  let e = start;
  while (e < end && buf[e] !== 0) e++;
  return buf.toString('utf8', start, e);
}
