// Adapts the sync wire codec (wire/conntrack.ts, wire/expectation.ts) to the
// engines' ObjectCodec seam.
import type { CacheObject } from '../cache/types.js';
import type { Conntrack, Expectation } from '../model/conntrack.js';
import { decodeConntrackMsg, encodeConntrackMsg } from '../wire/conntrack.js';
import { decodeExpectationMsg, encodeExpectationMsg } from '../wire/expectation.js';
import { MSG, type NetHdr } from '../wire/header.js';
import type { ObjectCodec } from './codec.js';

export interface WireCodecOptions {
  /** TCPWindowTracking on: send the TCP window-scale attributes. */
  tcpWindowTracking?: boolean;
  /** CommitTimeout set: omit NTA_TIMEOUT / EXP_TIMEOUT. */
  omitTimeout?: boolean;
}

export function createWireCodec(opts: WireCodecOptions = {}): ObjectCodec {
  const encOpts = { tcpWindowTracking: opts.tcpWindowTracking ?? false, omitTimeout: opts.omitTimeout ?? false };
  return {
    encode(buf: Buffer, off: number, limit: number, type: number, flags: number, seq: number, obj: CacheObject): number {
      return obj.kind === 'exp'
        ? encodeExpectationMsg(buf, off, type, flags, seq, obj.value as Expectation, encOpts, limit)
        : encodeConntrackMsg(buf, off, type, flags, seq, obj.value as Conntrack, encOpts, limit, obj);
    },
    decode(buf: Buffer, off: number, hdr: NetHdr): Conntrack | Expectation {
      return hdr.type <= MSG.CT_DEL ? decodeConntrackMsg(buf, off, hdr.len) : decodeExpectationMsg(buf, off, hdr.len);
    },
  };
}
