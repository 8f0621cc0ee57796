// The event decoder's dropPlainReply: a reply tuple that is the plain inverse
// of the orig one is left out (no object built), anything else is kept, and
// the entry means the same (replyFromNat rebuilds the reply, the sync encoder
// writes the same bytes).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AF_INET, IPPROTO, IPS, type Conntrack, type Tuple } from '../../src/model/conntrack.js';
import { invertTuple, isPlainReply, replyFromNat } from '../../src/model/nat.js';
import { readConntrack, writeConntrackAttrs, writeTupleAttrs } from '../../src/netlink/ct-codec.js';
import { CTA } from '../../src/netlink/ct-attrs.js';
import { beginMessage, endMessage } from '../../src/netlink/message.js';
import { CT_NEW, NLM_F_CREATE, NFGENMSG_LEN, NLMSG_HDRLEN } from '../../src/netlink/nl-constants.js';
import { NlWriter } from '../../src/netlink/nlattr.js';
import { encodeConntrackMsg } from '../../src/wire/conntrack.js';
import { MSG } from '../../src/wire/header.js';

const tcpOrig: Tuple = { l3: AF_INET, src: '10.2.0.9', dst: '192.0.2.80', proto: IPPROTO.TCP, sport: 40123, dport: 443 };

/** A kernel event as ctnetlink lays it out: orig tuple first, then the rest, the reply tuple, the id. */
function event(orig: Tuple, reply: Tuple, opts: { synproxy?: boolean; replyFirst?: boolean } = {}): Buffer {
  const w = new NlWriter(1024);
  const at = beginMessage(w, CT_NEW, NLM_F_CREATE, 0, orig.l3);
  const ct: Conntrack = {
    orig, status: IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED, timeout: 120, mark: 3,
    ...(orig.proto === IPPROTO.TCP ? { tcp: { state: 3 } } : {}),
    ...(opts.synproxy ? { synproxy: { isn: 0, its: 0, tsoff: 0 } } : {}),
  };
  if (opts.replyFirst) writeTupleAttrs(w, CTA.TUPLE_REPLY, reply);
  writeConntrackAttrs(w, ct, 'update'); // orig tuple, status, timeout, mark, protoinfo, synproxy
  if (!opts.replyFirst) writeTupleAttrs(w, CTA.TUPLE_REPLY, reply);
  w.u32be(CTA.ID, 0xdeadbeef);
  endMessage(w, at);
  return Buffer.from(w.view());
}

const decode = (b: Buffer, drop: boolean): Conntrack => readConntrack(b, NLMSG_HDRLEN + NFGENMSG_LEN, b.length, drop);

describe('readConntrack with dropPlainReply', () => {
  it('leaves out a plain reply, on the common event\'s fast path and off it', () => {
    for (const synproxy of [true, false]) {
      const b = event(tcpOrig, invertTuple(tcpOrig), { synproxy });
      const full = decode(b, false);
      const lean = decode(b, true);
      expect(full.reply).toEqual(invertTuple(tcpOrig));
      expect(lean.reply).toBeUndefined();
      expect({ ...lean, reply: full.reply }).toEqual(full);
      expect(replyFromNat(lean)).toEqual(full.reply);
      const x = Buffer.alloc(256);
      const y = Buffer.alloc(256);
      expect(x.subarray(0, encodeConntrackMsg(x, 0, MSG.CT_NEW, 0, 1, lean)))
        .toEqual(y.subarray(0, encodeConntrackMsg(y, 0, MSG.CT_NEW, 0, 1, full)));
    }
  });

  it('keeps every reply that says more than the orig tuple', () => {
    const snat: Tuple = { ...invertTuple(tcpOrig), dst: '198.51.100.1', dport: 61000 };
    const dnat: Tuple = { ...invertTuple(tcpOrig), src: '10.9.9.9' };
    const zoned: Tuple = { ...invertTuple(tcpOrig), zone: 4 };
    const icmp: Tuple = { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.ICMP, icmpType: 8, icmpCode: 0, icmpId: 77 };
    for (const [o, r] of [[tcpOrig, snat], [tcpOrig, dnat], [tcpOrig, zoned], [icmp, invertTuple(icmp)]] as const) {
      expect(decode(event(o, r), true).reply).toEqual(decode(event(o, r), false).reply);
      expect(decode(event(o, r), true).reply).toBeDefined();
    }
  });

  it('drops exactly the replies isPlainReply calls plain (the decoder checks its scratch fields, not a Tuple)', () => {
    const addr = fc.constantFrom('10.0.0.1', '10.0.0.2', '192.0.2.7');
    const port = fc.constantFrom(53, 443, 40000);
    const proto = fc.constantFrom(IPPROTO.TCP, IPPROTO.UDP, IPPROTO.SCTP, IPPROTO.GRE, IPPROTO.ICMP);
    const tuple = fc.record({ src: addr, dst: addr, proto, sport: port, dport: port, zone: fc.option(fc.constant(3), { nil: undefined }) })
      .map(({ src, dst, proto: p, sport, dport, zone }): Tuple => {
        const t: Tuple = p === IPPROTO.ICMP ? { l3: AF_INET, src, dst, proto: p, icmpType: 8, icmpCode: 0, icmpId: sport }
          : p === IPPROTO.GRE ? { l3: AF_INET, src, dst, proto: p, greKeySrc: sport, greKeyDst: dport }
            : { l3: AF_INET, src, dst, proto: p, sport, dport };
        if (zone !== undefined) t.zone = zone;
        return t;
      });
    fc.assert(fc.property(tuple, tuple, fc.boolean(), (o0, r, inverse) => {
      const o: Tuple = { ...o0 };
      delete o.zone;
      const reply = inverse ? { ...invertTuple(o), ...(r.zone !== undefined ? { zone: r.zone } : {}) } : r;
      const full = decode(event(o, reply), false);
      const lean = decode(event(o, reply), true);
      expect(lean.reply === undefined).toBe(isPlainReply(full.orig, full.reply!));
      expect(lean.reply ?? replyFromNat(lean)).toEqual(full.reply);
    }), { numRuns: 500 });
  });

  it('keeps the reply when it comes before the orig tuple (nothing to compare it with yet)', () => {
    expect(decode(event(tcpOrig, invertTuple(tcpOrig), { replyFirst: true }), true).reply).toEqual(invertTuple(tcpOrig));
  });
});
