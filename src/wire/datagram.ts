// Splits a received sync datagram into messages with the framing checks of
// conntrackd 1.4.7 (spec ftfw.md §1.7). A bad datagram is counted, never thrown.
import { ACK_SIZE, HEADER_SIZE, PROTOCOL_VERSION, hasAckExtension, readHeader, type NetHdr } from './header.js';
import { settleCounters } from '../util/shape.js';

export interface RecvCounters {
  malformed: number;
  badVersion: number;
  malformedHeader: number;
  malformedPayload: number;
  badType: number;
  truncated: number;
  badSize: number;
}

export function newRecvCounters(): RecvCounters {
  return { malformed: 0, badVersion: 0, malformedHeader: 0, malformedPayload: 0, badType: 0, truncated: 0, badSize: 0 };
}
// The first malformed datagram must not cost the receive path its compiled code: see settleFields.
settleCounters(newRecvCounters());

/**
 * Calls visit(hdr, offset) for each well-framed message of version 1. `hdr` is
 * one object reused for every message: copy what must outlive the call.
 * Stops at the first framing error, as conntrackd does; a wrong version skips
 * only that message.
 */
export function walkDatagram(buf: Buffer, counters: RecvCounters, hdr: NetHdr,
  visit: (hdr: NetHdr, off: number) => void): void {
  let off = 0;
  const end = buf.length;
  while (off < end) {
    const remain = end - off;
    if (remain < HEADER_SIZE) {
      counters.malformed++;
      counters.truncated++;
      return;
    }
    readHeader(buf, off, hdr);
    if (hdr.len === 0 || hdr.len > remain) {
      counters.malformed++;
      counters.badSize++;
      return;
    }
    if (hasAckExtension(hdr.type, hdr.flags)) {
      if (remain < ACK_SIZE) {
        counters.malformed++;
        counters.truncated++;
        return;
      }
      if (hdr.len < ACK_SIZE) {
        counters.malformed++;
        counters.badSize++;
        return;
      }
    } else if (hdr.len < HEADER_SIZE) {
      counters.malformed++;
      counters.badSize++;
      return;
    }
    if (hdr.version !== PROTOCOL_VERSION) {
      counters.malformed++;
      counters.badVersion++;
      off += hdr.len;
      continue;
    }
    visit(hdr, off);
    off += hdr.len;
  }
}
