// Domain model shared by every layer: the kernel codec (netlink/), the sync
// wire codec (wire/), the caches and the control output. One shape for a
// connection everywhere, so an entry crosses layers without conversion.
//
// Addresses are canonical text ("10.0.0.1", "fd00::1"): cheap enough to
// decode at the kernel's event rate (measured, see shared netlink.md) and
// directly comparable. Caches key on a numeric hash, never on these strings.

export const AF_INET = 2;
export const AF_INET6 = 10;
export type L3Family = typeof AF_INET | typeof AF_INET6;

export const IPPROTO = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  DCCP: 33,
  GRE: 47,
  ICMPV6: 58,
  SCTP: 132,
  UDPLITE: 136,
} as const;

/** nf_conntrack status bits (IPS_*). */
export const IPS = {
  EXPECTED: 0x1,
  SEEN_REPLY: 0x2,
  ASSURED: 0x4,
  CONFIRMED: 0x8,
  SRC_NAT: 0x10,
  DST_NAT: 0x20,
  SEQ_ADJUST: 0x40,
  SRC_NAT_DONE: 0x80,
  DST_NAT_DONE: 0x100,
  DYING: 0x200,
  FIXED_TIMEOUT: 0x400,
  TEMPLATE: 0x800,
  UNTRACKED: 0x1000,
  HELPER: 0x2000,
  OFFLOAD: 0x4000,
  HW_OFFLOAD: 0x8000,
} as const;

/** Conntrack TCP states as ctnetlink and the sync wire number them. */
export const TCP_STATE = {
  NONE: 0,
  SYN_SENT: 1,
  SYN_RECV: 2,
  ESTABLISHED: 3,
  FIN_WAIT: 4,
  CLOSE_WAIT: 5,
  LAST_ACK: 6,
  TIME_WAIT: 7,
  CLOSE: 8,
  SYN_SENT2: 9,
} as const;

export const TCP_STATE_NAMES = [
  'NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT',
  'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE', 'SYN_SENT2',
] as const;

/** One direction of a connection. Which L4 fields are set depends on proto. */
export interface Tuple {
  l3: L3Family;
  src: string;
  dst: string;
  proto: number;
  /** TCP, UDP, UDP-Lite, SCTP, DCCP; GRE keys are carried here too (16-bit halves are not used by GRE: see greKey). */
  sport?: number;
  dport?: number;
  icmpType?: number;
  icmpCode?: number;
  icmpId?: number;
  /** GRE (PPTP) call ids, carried in the port slots by the kernel. */
  greKeySrc?: number;
  greKeyDst?: number;
  /** CTA_TUPLE_ZONE when the zone is directional. */
  zone?: number;
}

export interface TcpInfo {
  state: number;
  wscaleOrig?: number;
  wscaleReply?: number;
  flagsOrig?: number;
  flagsReply?: number;
  /** The mask half of CTA_PROTOINFO_TCP_FLAGS_*; on create it says which flag bits to set. */
  flagsMaskOrig?: number;
  flagsMaskReply?: number;
}

export interface SctpInfo {
  state: number;
  vtagOrig?: number;
  vtagReply?: number;
}

export interface DccpInfo {
  state: number;
  role?: number;
  handshakeSeq?: bigint;
}

export interface SeqAdj {
  correctionPos: number;
  offsetBefore: number;
  offsetAfter: number;
}

export interface Synproxy {
  isn: number;
  its: number;
  tsoff: number;
}

export interface Counters {
  packets: bigint;
  bytes: bigint;
}

/**
 * A connection. `reply` is always present for entries read from the kernel; an
 * entry received over the sync wire has no reply tuple (conntrackd never sends
 * one) and carries NAT as snat/dnat fields instead, from which the reply tuple
 * is rebuilt at commit (see natFromTuples / replyFromNat in model/nat.ts).
 */
export interface Conntrack {
  orig: Tuple;
  reply?: Tuple;
  status?: number;
  /** Seconds left, as the kernel last reported. */
  timeout?: number;
  mark?: number;
  zone?: number;
  id?: number;
  use?: number;
  /** Label bitmap, as the kernel's bytes (CTA_LABELS). */
  labels?: Buffer;
  helper?: string;
  tcp?: TcpInfo;
  sctp?: SctpInfo;
  dccp?: DccpInfo;
  seqAdjOrig?: SeqAdj;
  seqAdjReply?: SeqAdj;
  synproxy?: Synproxy;
  countersOrig?: Counters;
  countersReply?: Counters;
  /** Wire-form NAT (sync messages): the translated source address and port (reply dst). */
  snatAddr?: string;
  snatPort?: number;
  /** Wire-form NAT: the translated destination address and port (reply src). */
  dnatAddr?: string;
  dnatPort?: number;
  /** Master connection's original tuple, for expected (related) connections. */
  master?: Tuple;
}

export interface ExpectationNat {
  dir: number;
  tuple: Tuple;
}

/** An entry of the kernel's expectation table (helpers such as FTP). */
export interface Expectation {
  master: Tuple;
  tuple: Tuple;
  mask: Tuple;
  timeout?: number;
  flags?: number;
  class?: number;
  helper?: string;
  fn?: string;
  nat?: ExpectationNat;
  zone?: number;
  id?: number;
}

/** Kernel event kinds, as both caches and the sync layer use them. */
export const EVENT = {
  NEW: 1,
  UPDATE: 2,
  DESTROY: 3,
} as const;
export type EventKind = (typeof EVENT)[keyof typeof EVENT];
