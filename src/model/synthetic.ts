// Synthetic conntrack entries shaped as the kernel reports them, for code that
// must meet the hidden classes and number ranges of real events before real
// events come: the start-up JIT warm-up (daemon/warmup.ts) and the decoder's
// settled value shapes (netlink/ct-shapes.ts).
import { AF_INET, IPPROTO, IPS, type Conntrack } from './conntrack.js';

/**
 * Flow k of the synthetic traffic, shaped as the kernel reports it so the
 * compiled code meets the hidden classes and number ranges of real events:
 * mostly TCP, some UDP and ICMP; half the TCP flows carry the all-zero
 * CTA_SYNPROXY of entries created over ctnetlink (a failover's commit, a
 * resync), half not (flows the kernel saw); conntrack ids are 32-bit hashes,
 * often above 2^31. Addresses from the benchmarking range (198.18.0.0/15,
 * RFC 2544), never seen on a real network.
 */
export function syntheticFlow(k: number, tcpState = 3): Conntrack {
  const src = `198.18.${(k >>> 8) & 255}.${k & 255}`;
  const dst = `198.19.${(k >>> 12) & 15}.${(k >>> 4) & 255}`;
  const status = IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED;
  const id = Math.imul(k + 1, 0x9e3779b1) >>> 0;
  const kind = k % 20;
  if (kind === 0) {
    return { orig: { l3: AF_INET, src, dst, proto: IPPROTO.ICMP, icmpType: 8, icmpCode: 0, icmpId: k & 0xffff }, status, timeout: 30, mark: 0, id };
  }
  if (kind < 4) {
    return { orig: { l3: AF_INET, src, dst, proto: IPPROTO.UDP, sport: 1024 + (k % 60000), dport: 53 }, status, timeout: 120, mark: 0, id };
  }
  const ct: Conntrack = {
    orig: { l3: AF_INET, src, dst, proto: IPPROTO.TCP, sport: 1024 + (k % 60000), dport: 443 },
    status, timeout: 432000, mark: 0, id, tcp: { state: tcpState, wscaleOrig: 7, wscaleReply: 7, flagsOrig: 0x23, flagsReply: 0x23 },
  };
  if (kind & 1) ct.synproxy = { isn: 0, its: 0, tsoff: 0 };
  return ct;
}

/** Values of k whose flows are one of each kind: ICMP, UDP, TCP, TCP with CTA_SYNPROXY. */
export const ONE_FLOW_OF_EACH_KIND: readonly number[] = [0, 1, 4, 5];
