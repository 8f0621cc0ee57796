// Netlink, nfnetlink and ctnetlink numbers (linux/netlink.h,
// linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h). Kept in one place so
// the native side stays free of protocol knowledge.

export const NETLINK_NETFILTER = 12;

/** nlmsghdr: len u32, type u16, flags u16, seq u32, pid u32, all host-endian. */
export const NLMSG_HDRLEN = 16;
/** nfgenmsg: family u8, version u8, res_id u16 (big-endian). */
export const NFGENMSG_LEN = 4;
export const NFNETLINK_V0 = 0;
/** Version 1 asks ctnetlink to honour nfgen_family on a flush (otherwise every family is flushed). */
export const NFNETLINK_V1 = 1;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
/** Types below this are netlink control messages, not protocol messages. */
export const NLMSG_MIN_TYPE = 0x10;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP_FILTERED = 0x20;
// GET modifiers
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_ATOMIC = 0x400;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// NEW modifiers
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
// ACK flags (set on NLMSG_ERROR replies)
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

/** Extended-ACK TLVs after a capped/uncapped nlmsgerr. */
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_NO_CHECK = 11;
export const SO_PEERCRED = 17;
export const SO_BINDTODEVICE = 25;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;

export const SOL_NETLINK = 270;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_DROP_MEMBERSHIP = 2;
export const NETLINK_PKTINFO = 3;
export const NETLINK_BROADCAST_ERROR = 4;
export const NETLINK_NO_ENOBUFS = 5;
export const NETLINK_LISTEN_ALL_NSID = 8;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

export const NFNL_SUBSYS_CTNETLINK = 1;
export const NFNL_SUBSYS_CTNETLINK_EXP = 2;

export const IPCTNL_MSG_CT_NEW = 0;
export const IPCTNL_MSG_CT_GET = 1;
export const IPCTNL_MSG_CT_DELETE = 2;
export const IPCTNL_MSG_CT_GET_CTRZERO = 3;
export const IPCTNL_MSG_CT_GET_STATS_CPU = 4;
export const IPCTNL_MSG_CT_GET_STATS = 5;
export const IPCTNL_MSG_CT_GET_DYING = 6;
export const IPCTNL_MSG_CT_GET_UNCONFIRMED = 7;

export const IPCTNL_MSG_EXP_NEW = 0;
export const IPCTNL_MSG_EXP_GET = 1;
export const IPCTNL_MSG_EXP_DELETE = 2;
export const IPCTNL_MSG_EXP_GET_STATS_CPU = 3;

/** nfnetlink message type: subsystem in the high byte. */
export function nfnlType(subsys: number, msg: number): number {
  return (subsys << 8) | msg;
}

export const CT_NEW = nfnlType(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW);
export const CT_GET = nfnlType(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET);
export const CT_DELETE = nfnlType(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_DELETE);
export const EXP_NEW = nfnlType(NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_NEW);
export const EXP_GET = nfnlType(NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_GET);
export const EXP_DELETE = nfnlType(NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_DELETE);

/** Multicast group numbers (NFNLGRP_*). */
export const NFNLGRP_CONNTRACK_NEW = 1;
export const NFNLGRP_CONNTRACK_UPDATE = 2;
export const NFNLGRP_CONNTRACK_DESTROY = 3;
export const NFNLGRP_CONNTRACK_EXP_NEW = 4;
export const NFNLGRP_CONNTRACK_EXP_UPDATE = 5;
export const NFNLGRP_CONNTRACK_EXP_DESTROY = 6;

/** bind() nl_groups bit for a group number below 32. */
export function groupBit(group: number): number {
  return 1 << (group - 1);
}

export const NF_NETLINK_CONNTRACK_NEW = groupBit(NFNLGRP_CONNTRACK_NEW);
export const NF_NETLINK_CONNTRACK_UPDATE = groupBit(NFNLGRP_CONNTRACK_UPDATE);
export const NF_NETLINK_CONNTRACK_DESTROY = groupBit(NFNLGRP_CONNTRACK_DESTROY);
export const NF_NETLINK_CONNTRACK_EXP_NEW = groupBit(NFNLGRP_CONNTRACK_EXP_NEW);
export const NF_NETLINK_CONNTRACK_EXP_UPDATE = groupBit(NFNLGRP_CONNTRACK_EXP_UPDATE);
export const NF_NETLINK_CONNTRACK_EXP_DESTROY = groupBit(NFNLGRP_CONNTRACK_EXP_DESTROY);
export const CT_EVENT_GROUPS = NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_UPDATE | NF_NETLINK_CONNTRACK_DESTROY;
export const EXP_EVENT_GROUPS = NF_NETLINK_CONNTRACK_EXP_NEW | NF_NETLINK_CONNTRACK_EXP_UPDATE |
  NF_NETLINK_CONNTRACK_EXP_DESTROY;

/** Errno values the engine branches on (Linux numbering). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EAGAIN: 11,
  ENOMEM: 12,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOSPC: 28,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  ENOBUFS: 105,
  ETIME: 62,
} as const;
