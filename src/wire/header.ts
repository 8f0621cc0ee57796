import { rdU16BE, rdU32BE, wrU16BE, wrU32BE } from '../util/bytes.js';
// The 8-byte message header of conntrackd's sync protocol (nethdr) and the
// 16-byte ACK/NACK/RESYNC form (nethdr_ack). See shared/spec/ftfw.md §1.
// All fields big-endian; byte 0 is version<<4 | type on every host.

export const PROTOCOL_VERSION = 1;
export const HEADER_SIZE = 8;
export const ACK_SIZE = 16;

/** Message types (low nibble of byte 0). */
export const MSG = {
  CT_NEW: 0,
  CT_UPD: 1,
  CT_DEL: 2,
  EXP_NEW: 3,
  EXP_UPD: 4,
  EXP_DEL: 5,
  CTL: 10,
} as const;
export type MsgType = (typeof MSG)[keyof typeof MSG];

/** Header flags (byte 1). */
export const FLAG = {
  RESYNC: 0x02,
  NACK: 0x04,
  ACK: 0x08,
  ALIVE: 0x10,
  HELLO: 0x20,
  HELLO_BACK: 0x40,
} as const;

/** Flags a data message may carry; anything else makes it "bad" (§1.3). */
export const DATA_FLAGS_MASK = FLAG.HELLO | FLAG.HELLO_BACK;

export interface NetHdr {
  version: number;
  type: number;
  flags: number;
  /** Length of this message, header and padded attributes included; a multiple of 4. */
  len: number;
  seq: number;
}

/** A control message with the ack extension (ACK, NACK, RESYNC). */
export interface NetHdrAck extends NetHdr {
  from: number;
  to: number;
}

export function readHeader(buf: Buffer, off: number, out: NetHdr): void {
  const b0 = buf[off]!;
  out.version = b0 >> 4;
  out.type = b0 & 0x0f;
  out.flags = buf[off + 1]!;
  out.len = rdU16BE(buf, off + 2);
  out.seq = rdU32BE(buf, off + 4);
}

export function writeHeader(buf: Buffer, off: number, type: number, flags: number, len: number, seq: number): void {
  buf[off] = (PROTOCOL_VERSION << 4) | (type & 0x0f);
  buf[off + 1] = flags & 0xff;
  wrU16BE(buf, off + 2, len);
  wrU32BE(buf, off + 4, seq >>> 0);
}

/** Writes a 16-byte ACK/NACK/RESYNC message; returns its length. */
export function writeAck(buf: Buffer, off: number, flags: number, seq: number, from: number, to: number): number {
  writeHeader(buf, off, MSG.CTL, flags, ACK_SIZE, seq);
  wrU32BE(buf, off + 8, from >>> 0);
  wrU32BE(buf, off + 12, to >>> 0);
  return ACK_SIZE;
}

export function isDataType(type: number): boolean {
  return type <= MSG.EXP_DEL;
}

/** True if a type-10 message carries the 16-byte ack extension. */
export function hasAckExtension(type: number, flags: number): boolean {
  return type === MSG.CTL && (flags & (FLAG.ACK | FLAG.NACK | FLAG.RESYNC)) !== 0;
}

/** Serial-number arithmetic on 32-bit sequence numbers: a before b. */
export function seqBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function seqAfter(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}
