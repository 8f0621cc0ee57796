// What the JS path sends for one kernel event, as a function: the reference
// the addon's lone-event fast path (native/src/fastpath.c) must match byte for
// byte. The same steps as the daemon: the event listener's type and NEW test,
// readConntrack with plain replies left out, the daemon's origin check and
// filter, the internal cache's compaction, then the wire encoder with a fresh
// cache entry's address memo.
import { keptReply } from '../../src/model/nat.js';
import { readConntrack } from '../../src/netlink/ct-codec.js';
import { CT_NEW, NLM_F_CREATE, NLM_F_EXCL } from '../../src/netlink/nl-constants.js';
import { encodeConntrackMsg } from '../../src/wire/conntrack.js';
import { MSG } from '../../src/wire/header.js';
import { fastPathConf, type FastPathSettings } from '../../src/daemon/fast-path.js';

export type RefSettings = Omit<FastPathSettings, 'target'>;

/** Why the JS path sends nothing for an event, or the message it sends. */
export type RefResult = { kind: 'sent'; msg: Buffer } | { kind: 'not-new' | 'own' | 'undecodable' | 'filtered' };

/** `msg`: one netlink message, nlmsghdr first. */
export function referenceMessage(msg: Buffer, s: RefSettings, seq: number): RefResult {
  const len = msg.readUInt32LE(0);
  const type = msg.readUInt16LE(4);
  const flags = msg.readUInt16LE(6);
  const pid = msg.readUInt32LE(12);
  if (type !== CT_NEW || (flags & (NLM_F_CREATE | NLM_F_EXCL)) === 0) return { kind: 'not-new' };
  if (pid !== 0 && pid === s.ownPortId) return { kind: 'own' };
  let ct;
  try {
    ct = readConntrack(msg, 20, len, true);
  } catch {
    return { kind: 'undecodable' };
  }
  if (!s.filter.accepts(ct)) return { kind: 'filtered' };
  if (ct.reply !== undefined && keptReply(ct) === undefined) ct.reply = undefined;
  const out = Buffer.alloc(512);
  const n = encodeConntrackMsg(out, 0, MSG.CT_NEW, 0, seq, ct,
    { tcpWindowTracking: s.tcpWindowTracking, omitTimeout: s.omitTimeout }, out.length, { src4: 0, dst4: 0 });
  return { kind: 'sent', msg: out.subarray(0, n) };
}

/** The addon's configuration for these settings, with a target that is never sent to (fastEncode only encodes). */
export function testConf(s: RefSettings): Buffer {
  const dest = Buffer.alloc(16);
  dest.writeUInt16LE(2, 0);
  return fastPathConf({ ...s, target: { fd: -1, dest } });
}

/** fastEncode's refusals (native/src/fastpath.h FP_*). */
export const FP = { NOT_NEW: -1, OWN: -2, SHAPE: -3, MALFORMED: -4, FILTERED: -5, NO_ROOM: -6 } as const;
