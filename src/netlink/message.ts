// nlmsghdr + nfgenmsg framing and a zero-allocation walker over a buffer of
// packed netlink messages (one native read may hold many datagrams, each
// holding many messages). Decode failures are NetlinkError DECODE with the
// offset, never an out-of-range read.
import { NetlinkError } from '../errors.js';
import type { NlWriter } from './nlattr.js';
import {
  NFGENMSG_LEN, NFNETLINK_V0, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK_TLVS, NLM_F_CAPPED,
  NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS,
} from './nl-constants.js';
import { rdI32LE, rdU16LE, rdU32LE, wrU16BE, wrU16LE, wrU32LE } from '../util/bytes.js';

export function nlmsgAlign(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Writes nlmsghdr + nfgenmsg at the writer's position and returns the
 * message start; the length is patched by endMessage once attributes are in.
 */
export function beginMessage(w: NlWriter, type: number, flags: number, seq: number, family: number, resId = 0,
  version = NFNETLINK_V0): number {
  const at = w.raw(NLMSG_HDRLEN + NFGENMSG_LEN);
  const b = w.buf;
  wrU32LE(b, at, 0);
  wrU16LE(b, at + 4, type);
  wrU16LE(b, at + 6, flags);
  wrU32LE(b, at + 8, seq >>> 0);
  wrU32LE(b, at + 12, 0);
  b[at + 16] = family;
  b[at + 17] = version;
  wrU16BE(b, at + 18, resId);
  return at;
}

export function endMessage(w: NlWriter, start: number): void {
  const aligned = nlmsgAlign(w.off);
  w.ensure(aligned - w.off);
  while (w.off < aligned) w.buf[w.off++] = 0;
  wrU32LE(w.buf, start, w.off - start);
}

/** Rewrites the flags of a finished message (e.g. NLM_F_ACK on the last of a batch). */
export function setMessageFlags(w: NlWriter, start: number, flags: number): void {
  wrU16LE(w.buf, start + 6, flags);
}

/** The parsed body of an NLMSG_ERROR: errno > 0 is a failure, 0 an ACK. */
export interface NlErrorInfo {
  errno: number;
  origType: number;
  origSeq: number;
  extack?: string;
  /** Offset of the offending attribute in the original message, when the kernel says. */
  extackOffset?: number;
}

function decodeError(what: string, at: number, ctx: Record<string, unknown> = {}): NetlinkError {
  return new NetlinkError('CTSYNC_ERR_NETLINK_DECODE', `malformed netlink message: ${what} at offset ${at}`, 0,
    { offset: at, ...ctx });
}

// Error messages are built out of line: as template literals in next() and
// attrsStart(), run per message, TurboFan turned their numbers into strings
// on the path that does not throw (a NumberToString call per message).

/** `len` < 0: fewer than a header's bytes were left. */
function headerError(at: number, left: number, len: number): NetlinkError {
  if (len < 0) return decodeError(`truncated header (${left} bytes left)`, at);
  if (len < NLMSG_HDRLEN) return decodeError(`length ${len} below header size`, at);
  return decodeError(`length ${len} runs past the buffer (${left} left)`, at);
}

function noNfgenmsg(at: number, len: number, type: number): NetlinkError {
  return decodeError(`nfnetlink message of ${len} bytes has no nfgenmsg`, at, { type });
}

/**
 * Cursor over packed messages. One instance is reused for every buffer: the
 * fields describe the current message, so walking allocates nothing.
 */
export class MessageReader {
  buf: Buffer = Buffer.alloc(0);
  private end = 0;
  private nextOff = 0;
  /** Current message. */
  start = 0;
  len = 0;
  type = 0;
  flags = 0;
  seq = 0;
  pid = 0;

  reset(buf: Buffer, start = 0, end = buf.length): this {
    this.buf = buf;
    this.end = end;
    this.nextOff = start;
    this.start = start;
    this.len = 0;
    return this;
  }

  /** Advances to the next message; false at the end. Throws DECODE on a bad header. */
  next(): boolean {
    const off = this.nextOff;
    if (off >= this.end) return false;
    if (this.end - off < NLMSG_HDRLEN) throw headerError(off, this.end - off, -1);
    const b = this.buf;
    const len = rdU32LE(b, off);
    if (len < NLMSG_HDRLEN || len > this.end - off) throw headerError(off, this.end - off, len);
    this.start = off;
    this.len = len;
    this.type = rdU16LE(b, off + 4);
    this.flags = rdU16LE(b, off + 6);
    this.seq = rdU32LE(b, off + 8);
    this.pid = rdU32LE(b, off + 12);
    this.nextOff = off + nlmsgAlign(len);
    return true;
  }

  get msgEnd(): number {
    return this.start + this.len;
  }

  /** Start of the payload after nlmsghdr. */
  get payload(): number {
    return this.start + NLMSG_HDRLEN;
  }

  /** Start of the attributes after nfgenmsg; throws DECODE when the message is too short for nfgenmsg. */
  attrsStart(): number {
    if (this.len < NLMSG_HDRLEN + NFGENMSG_LEN) throw noNfgenmsg(this.start, this.len, this.type);
    return this.start + NLMSG_HDRLEN + NFGENMSG_LEN;
  }

  /** nfgenmsg.nfgen_family of the current message. */
  family(): number {
    return this.buf[this.attrsStart() - NFGENMSG_LEN]!;
  }

  /** Parses the current NLMSG_ERROR (or the status of NLMSG_DONE). */
  error(): NlErrorInfo {
    return parseErrorPayload(this.buf, this.start, this.len, this.flags, this.type);
  }
}

/** nlmsgerr { s32 error; nlmsghdr orig; [orig payload]; [ext-ack TLVs] }, all host-endian. */
export function parseErrorPayload(buf: Buffer, start: number, len: number, flags: number, type = NLMSG_ERROR): NlErrorInfo {
  const p = start + NLMSG_HDRLEN;
  const end = start + len;
  if (end - p < 4) throw decodeError(`${type === NLMSG_DONE ? 'NLMSG_DONE' : 'NLMSG_ERROR'} without an error code`, start);
  const err = rdI32LE(buf, p);
  if (type === NLMSG_DONE) return { errno: err < 0 ? -err : 0, origType: 0, origSeq: 0 };
  if (end - p < 4 + NLMSG_HDRLEN) throw decodeError('NLMSG_ERROR without the original header', start);
  const orig = p + 4;
  const info: NlErrorInfo = {
    errno: err < 0 ? -err : err,
    origType: rdU16LE(buf, orig + 4),
    origSeq: rdU32LE(buf, orig + 8),
  };
  if (flags & NLM_F_ACK_TLVS) {
    // Capped errors omit the echoed request; uncapped ones carry it whole.
    const origLen = rdU32LE(buf, orig);
    let tlv = flags & NLM_F_CAPPED ? orig + NLMSG_HDRLEN : orig + nlmsgAlign(origLen);
    while (tlv + 4 <= end) {
      const alen = rdU16LE(buf, tlv);
      if (alen < 4 || tlv + alen > end) break; // a broken ext-ack must not hide the errno
      const atype = rdU16LE(buf, tlv + 2) & 0x3fff;
      if (atype === NLMSGERR_ATTR_MSG) {
        let e = tlv + alen;
        while (e > tlv + 4 && buf[e - 1] === 0) e--;
        info.extack = buf.toString('utf8', tlv + 4, e);
      } else if (atype === NLMSGERR_ATTR_OFFS && alen >= 8) {
        info.extackOffset = rdU32LE(buf, tlv + 4);
      }
      tlv += nlmsgAlign(alen);
    }
  }
  return info;
}
