// The seam between the sync engines and the message payload codec, so the
// FTFW/NOTRACK state machines can be unit-tested with a trivial fake codec
// and the real TLV builder (wire/conntrack.ts) plugs in via wire-codec.ts.
import type { CacheObject } from '../cache/types.js';
import { OBJ_STATE } from '../cache/types.js';
import type { Conntrack, Expectation } from '../model/conntrack.js';
import { MSG, type NetHdr } from '../wire/header.js';

export interface ObjectCodec {
  /**
   * Writes one complete message (header with `type`, `flags`, `seq`, then the
   * payload of `obj.value`) at buf[off], never past `limit` (an absolute
   * offset). Returns the message length. Throws a WireError when the message
   * does not fit or the object cannot be encoded.
   */
  encode(buf: Buffer, off: number, limit: number, type: number, flags: number, seq: number, obj: CacheObject): number;
  /** Decodes the data message whose header `hdr` starts at buf[off]. Throws a WireError. */
  decode(buf: Buffer, off: number, hdr: NetHdr): Conntrack | Expectation;
}

/** The wire type for an object, chosen at transmit time from its cache state (ftfw.md §2.3). */
export function msgTypeOf(obj: CacheObject): number {
  const base = obj.kind === 'exp' ? MSG.EXP_NEW : MSG.CT_NEW;
  switch (obj.state) {
    case OBJ_STATE.NEW: return base;
    case OBJ_STATE.ALIVE: return base + 1;
    default: return base + 2;
  }
}
