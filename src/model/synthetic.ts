// Synthetic conntrack entries shaped as the kernel reports them, for code that
// must meet the hidden classes and number ranges of real events before real
// events come: the start-up JIT warm-up (daemon/warmup.ts) and the decoder's
// settled value shapes (netlink/ct-shapes.ts).
import { AF_INET, IPPROTO, IPS, type Conntrack } from './conntrack.js';

/** A packet mark of the synthetic marked flows. */
const MARKED = 0x2a;

/**
 * Flow k of the synthetic traffic, shaped as the kernel reports it so the
 * compiled code meets the hidden classes and number ranges of real events
 * (measured with a real kernel's events, `--trace-deopt-verbose` on a daemon's
 * first burst after the warm-up): mostly TCP, some UDP and ICMP. Flows the
 * kernel saw in packets carry no CTA_MARK unless marked, and no CTA_SYNPROXY;
 * flows created over ctnetlink (a failover's commit, a resync, a generator)
 * carry CTA_MARK and the all-zero CTA_SYNPROXY, and their events name the
 * creating socket's port id (syntheticPortId). Conntrack ids are 32-bit
 * hashes, often above 2^31. Addresses from the benchmarking range
 * (198.18.0.0/15, RFC 2544), never seen on a real network.
 */
export function syntheticFlow(k: number, tcpState = 3): Conntrack {
  // Even flows' sources are 13 characters or more, as most public addresses are (the decoder
  // flattens those strings once: a branch of its own).
  const src = `198.18.${((k >>> 8) & 127) + ((k & 1) === 0 ? 128 : 0)}.${k & 255}`;
  const dst = `198.19.${(k >>> 12) & 15}.${(k >>> 4) & 255}`;
  const status = IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED;
  const id = Math.imul(k + 1, 0x9e3779b1) >>> 0;
  const kind = k % 20;
  if (kind === 0) {
    return { orig: { l3: AF_INET, src, dst, proto: IPPROTO.ICMP, icmpType: 8, icmpCode: 0, icmpId: k & 0xffff }, status, timeout: 30, id };
  }
  if (kind < 4) {
    const udp: Conntrack = { orig: { l3: AF_INET, src, dst, proto: IPPROTO.UDP, sport: 1024 + (k % 60000), dport: 53 }, status, timeout: 120, id };
    if (kind === 1) udp.mark = MARKED;
    return udp;
  }
  const ct: Conntrack = {
    orig: { l3: AF_INET, src, dst, proto: IPPROTO.TCP, sport: 1024 + (k % 60000), dport: 443 },
    status, timeout: 432000, id, tcp: { state: tcpState, wscaleOrig: 7, wscaleReply: 7, flagsOrig: 0x23, flagsReply: 0x23 },
  };
  if (kind & 1) {
    ct.mark = 0;
    ct.synproxy = { isn: 0, its: 0, tsoff: 0 };
  } else if (kind === 4) {
    ct.mark = MARKED;
  }
  return ct;
}

/**
 * The netlink port id an event for flow k names: the creating socket's for
 * flows created over ctnetlink (a large number, as the kernel's port ids for
 * user sockets are), 0 for flows the kernel saw in packets.
 */
export function syntheticPortId(k: number): number {
  const kind = k % 20;
  return kind >= 4 && (kind & 1) === 1 ? 0xa4d8_1c5c : 0;
}

/**
 * The DESTROY event of flow `f` as the kernel sends it: the tuples, status,
 * timeout and id, the protocol state alone, and the mark only when set.
 */
export function destroyEventOf(f: Conntrack, tcpState = 7): Conntrack {
  const ct: Conntrack = { orig: f.orig, status: f.status!, timeout: 0, id: f.id! };
  if (f.mark !== undefined && f.mark !== 0) ct.mark = f.mark;
  if (f.tcp !== undefined) ct.tcp = { state: tcpState };
  return ct;
}

/** The DESTROY event of flow k (destroyEventOf). */
export function syntheticDestroy(k: number, tcpState = 7): Conntrack {
  return destroyEventOf(syntheticFlow(k, tcpState), tcpState);
}

/** Values of k whose flows are one of each kind: ICMP, UDP marked and not, TCP marked, created over ctnetlink, and plain. */
export const ONE_FLOW_OF_EACH_KIND: readonly number[] = [0, 1, 2, 4, 5, 6];
