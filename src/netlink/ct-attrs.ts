// ctnetlink attribute type numbers (the kernel's uapi nfnetlink_conntrack.h
// numbering; the numbers are ABI facts, the tables are ours). Grouped by the
// nest they live in: an id is only meaningful inside its parent attribute.

/** Top level of an IPCTNL_MSG_CT_* body. */
export const CTA = {
  TUPLE_ORIG: 1,
  TUPLE_REPLY: 2,
  STATUS: 3,
  PROTOINFO: 4,
  HELP: 5,
  NAT_SRC: 6,
  TIMEOUT: 7,
  MARK: 8,
  COUNTERS_ORIG: 9,
  COUNTERS_REPLY: 10,
  USE: 11,
  ID: 12,
  NAT_DST: 13,
  TUPLE_MASTER: 14,
  SEQ_ADJ_ORIG: 15,
  SEQ_ADJ_REPLY: 16,
  SECMARK: 17,
  ZONE: 18,
  SECCTX: 19,
  TIMESTAMP: 20,
  MARK_MASK: 21,
  LABELS: 22,
  LABELS_MASK: 23,
  SYNPROXY: 24,
  FILTER: 25,
  STATUS_MASK: 26,
  TIMESTAMP_EVENT: 27,
} as const;

/** Inside CTA_TUPLE_ORIG / _REPLY / _MASTER and CTA_EXPECT_{MASTER,TUPLE,MASK}. */
export const CTA_TUPLE = {
  IP: 1,
  PROTO: 2,
  ZONE: 3,
} as const;

/** Inside CTA_TUPLE_IP. */
export const CTA_IP = {
  V4_SRC: 1,
  V4_DST: 2,
  V6_SRC: 3,
  V6_DST: 4,
} as const;

/** Inside CTA_TUPLE_PROTO. GRE keys travel in the port slots. */
export const CTA_PROTO = {
  NUM: 1,
  SRC_PORT: 2,
  DST_PORT: 3,
  ICMP_ID: 4,
  ICMP_TYPE: 5,
  ICMP_CODE: 6,
  ICMPV6_ID: 7,
  ICMPV6_TYPE: 8,
  ICMPV6_CODE: 9,
} as const;

/** Inside CTA_PROTOINFO. */
export const CTA_PROTOINFO = {
  TCP: 1,
  DCCP: 2,
  SCTP: 3,
} as const;

/** Inside CTA_PROTOINFO_TCP. FLAGS_* payload is struct { u8 flags; u8 mask; }. */
export const CTA_PROTOINFO_TCP = {
  STATE: 1,
  WSCALE_ORIGINAL: 2,
  WSCALE_REPLY: 3,
  FLAGS_ORIGINAL: 4,
  FLAGS_REPLY: 5,
} as const;

/** Inside CTA_PROTOINFO_DCCP. */
export const CTA_PROTOINFO_DCCP = {
  STATE: 1,
  ROLE: 2,
  HANDSHAKE_SEQ: 3,
  PAD: 4,
} as const;

/** Inside CTA_PROTOINFO_SCTP. */
export const CTA_PROTOINFO_SCTP = {
  STATE: 1,
  VTAG_ORIGINAL: 2,
  VTAG_REPLY: 3,
} as const;

/** Inside CTA_COUNTERS_ORIG / _REPLY. */
export const CTA_COUNTERS = {
  PACKETS: 1,
  BYTES: 2,
  PACKETS32: 3,
  BYTES32: 4,
  PAD: 5,
} as const;

/** Inside CTA_TIMESTAMP. */
export const CTA_TIMESTAMP = {
  START: 1,
  STOP: 2,
  PAD: 3,
} as const;

/** Inside CTA_NAT_SRC / CTA_NAT_DST (and the NAT range of an expectation). */
export const CTA_NAT = {
  V4_MINIP: 1,
  V4_MAXIP: 2,
  PROTO: 3,
  V6_MINIP: 4,
  V6_MAXIP: 5,
} as const;

/** Inside CTA_NAT_PROTO. */
export const CTA_PROTONAT = {
  PORT_MIN: 1,
  PORT_MAX: 2,
} as const;

/** Inside CTA_SEQ_ADJ_ORIG / _REPLY. */
export const CTA_SEQADJ = {
  CORRECTION_POS: 1,
  OFFSET_BEFORE: 2,
  OFFSET_AFTER: 3,
} as const;

/** Inside CTA_SYNPROXY. */
export const CTA_SYNPROXY = {
  ISN: 1,
  ITS: 2,
  TSOFF: 3,
} as const;

/** Inside CTA_HELP. */
export const CTA_HELP = {
  NAME: 1,
  INFO: 2,
} as const;

/** Inside CTA_SECCTX. */
export const CTA_SECCTX = {
  NAME: 1,
} as const;

/** Top level of an IPCTNL_MSG_EXP_* body. */
export const CTA_EXPECT = {
  MASTER: 1,
  TUPLE: 2,
  MASK: 3,
  TIMEOUT: 4,
  ID: 5,
  HELP_NAME: 6,
  ZONE: 7,
  FLAGS: 8,
  CLASS: 9,
  NAT: 10,
  FN: 11,
} as const;

/** Inside CTA_EXPECT_NAT. */
export const CTA_EXPECT_NAT = {
  DIR: 1,
  TUPLE: 2,
} as const;
