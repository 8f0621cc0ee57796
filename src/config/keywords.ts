// Which conntrackd.conf keywords ctsync acts on, which it accepts but ignores,
// and which words conntrackd 1.4.7 knows at all.
//
// Why the split matters: an operator points ctsync at the conntrackd.conf that
// already runs in production. Anything conntrackd 1.4.7 accepts must therefore
// parse, but silently dropping a setting would hide a behaviour change, so every
// keyword ctsync does not act on produces a ConfigWarning naming its line.

/** Every reserved word of the conntrackd 1.4.7 lexer (keywords are case-sensitive). */
export const CONNTRACKD_KEYWORDS: ReadonlySet<string> = new Set([
  'UNIX', 'IPv4_address', 'IPv6_address', 'IPv4_Destination_Address', 'IPv6_Destination_Address',
  'IPv4_interface', 'IPv6_interface', 'Interface', 'Multicast', 'UDP', 'TCP', 'HashSize', 'RefreshTime',
  'CacheTimeout', 'CommitTimeout', 'HashLimit', 'Path', 'Backlog', 'Group', 'Port', 'LogFile', 'Syslog',
  'LockFile', 'General', 'Sync', 'Stats', 'SocketBufferSize', 'SocketBufferSizeMaxGrown',
  'SocketBufferSizeMaxGrowth', 'NetlinkBufferSize', 'NetlinkBufferSizeMaxGrowth', 'Mode', 'ResendQueueSize',
  'Checksum', 'ACKWindowSize', 'for', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT',
  'LAST_ACK', 'TIME_WAIT', 'CLOSE', 'CLOSED', 'LISTEN', 'SndSocketBuffer', 'RcvSocketBuffer', 'Filter',
  'Protocol', 'Address', 'State', 'Accept', 'Ignore', 'PurgeTimeout', 'From', 'Userspace', 'Kernelspace',
  'EventIterationLimit', 'Default', 'PollSecs', 'NetlinkOverrunResync', 'Nice', 'Scheduler', 'Type',
  'Priority', 'NetlinkEventsReliable', 'DisableInternalCache', 'DisableExternalCache', 'Options',
  'TCPWindowTracking', 'ExpectationSync', 'ErrorQueueLength', 'Helper', 'QueueNum', 'QueueLen', 'Policy',
  'ExpectMax', 'ExpectTimeout', 'Systemd', 'StartupResync', 'Setup',
]);

/**
 * Keywords of older conntrackd releases that 1.4.7 no longer accepts. conntrackd
 * would refuse the file; ctsync skips them with a warning that says so, because
 * a stale keyword in an old config is more likely than a real mistake.
 */
export const REMOVED_KEYWORDS: ReadonlySet<string> = new Set([
  'IgnoreProtocol', 'IgnoreTrafficFor', 'StripNAT', 'RelaxTransitions', 'DelayDestroyMessages', 'ListenTo',
  'Family', 'ResendBufferSize', 'Replicate', 'CacheWriteThrough', 'LogFileBufferSize', 'DestroyTimeout',
  'McastSndSocketBuffer', 'McastRcvSocketBuffer',
]);

/** Keywords of the ctsync-only `Ctsync { ... }` section. */
export const CTSYNC_KEYWORDS: ReadonlySet<string> = new Set([
  'Ctsync', 'Metrics', 'IgnoreOwnAddresses', 'KeyFile', 'TLS', 'CAFile', 'CertFile', 'AcceptOnlyPeer',
  'ReadyFile', 'NotifyFifo', 'PeerTimeout', 'ReconcileInterval', 'SendWindow', 'FastPath',
]);

/**
 * Accepted, parsed, validated and stored in the config object, but not acted on
 * by ctsync. Each reason is what the operator reads in the warning.
 * Key: "Section.Keyword" (the section path as it appears in the file).
 */
export const IGNORED: Readonly<Record<string, string>> = {
  'General.Nice':
    'deprecated in conntrackd too; set the priority with nice(1) or the systemd unit (Nice=)',
  'General.HashSize':
    'ctsync caches are dynamically sized maps with no fixed bucket count; HashLimit still bounds them',
  'General.PollSecs':
    'ctsync always follows kernel events (plus NetlinkOverrunResync); polling mode is not implemented',
  'General.UNIX.Backlog':
    'deprecated in conntrackd too (ignored there as well)',
  'Link.IPv6_interface':
    'conntrackd ignores it too: the IPv6 multicast interface comes from Interface',
  'Helper':
    'user-space conntrack helpers (NFQUEUE) are not implemented by ctsync; the section is parsed and ignored',
  'Stats':
    'ctsync is a state-sync daemon; the statistics-only Stats mode is parsed but not implemented',
};

export function ignoredReason(key: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(IGNORED, key) ? IGNORED[key] : undefined;
}

/**
 * Everything else conntrackd 1.4.7 accepts is acted on (documented here so the
 * daemon authors know what the config object promises):
 * - Sync: Mode (FTFW/ALARM/NOTRACK), ResendQueueSize, CommitTimeout, PurgeTimeout, ACKWindowSize,
 *   DisableExternalCache, DisableInternalCache, StartupResync, RefreshTime, CacheTimeout,
 *   UDP/Multicast/TCP links (all fields), Options { TCPWindowTracking ExpectationSync }.
 * - General: Systemd (sd_notify READY/STATUS/WATCHDOG/STOPPING when run with Type=notify; a no-op without
 *   $NOTIFY_SOCKET), HashLimit, LogFile, Syslog, LockFile, UNIX Path, NetlinkBufferSize(+MaxGrowth and aliases),
 *   NetlinkOverrunResync, NetlinkEventsReliable, EventIterationLimit, Filter.
 */

/** Mode names (case-insensitive); deprecated aliases map to the current name. */
export const MODE_NAMES: Readonly<Record<string, { mode: 'ftfw' | 'alarm' | 'notrack'; deprecated?: string }>> = {
  ftfw: { mode: 'ftfw' },
  alarm: { mode: 'alarm' },
  notrack: { mode: 'notrack' },
  nack: { mode: 'ftfw', deprecated: "mode 'NACK' is now called 'FTFW'" },
  persistent: { mode: 'alarm', deprecated: "mode 'PERSISTENT' is now called 'ALARM'" },
};

/** TCP states accepted in `State Accept|Ignore { ... for TCP }`, mapped to the canonical name. */
export const TCP_STATES: Readonly<Record<string, TcpStateName>> = {
  SYN_SENT: 'SYN_SENT', SYN_RECV: 'SYN_RECV', ESTABLISHED: 'ESTABLISHED', FIN_WAIT: 'FIN_WAIT',
  CLOSE_WAIT: 'CLOSE_WAIT', LAST_ACK: 'LAST_ACK', TIME_WAIT: 'TIME_WAIT', CLOSE: 'CLOSE', CLOSED: 'CLOSE',
  LISTEN: 'LISTEN',
};
export type TcpStateName =
  | 'SYN_SENT' | 'SYN_RECV' | 'ESTABLISHED' | 'FIN_WAIT' | 'CLOSE_WAIT' | 'LAST_ACK' | 'TIME_WAIT' | 'CLOSE' | 'LISTEN';

/**
 * Protocol names for `Protocol Accept|Ignore { ... }`. conntrackd resolves them
 * with getprotobyname(3) (/etc/protocols, where both "tcp" and "TCP" exist); a
 * fixed table keeps parsing independent of the host. Lookup is case-insensitive.
 */
export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  ip: 0, hopopt: 0, icmp: 1, igmp: 2, ggp: 3, ipencap: 4, st: 5, tcp: 6, egp: 8, igp: 9, pup: 12, udp: 17,
  hmp: 20, 'xns-idp': 22, rdp: 27, 'iso-tp4': 29, dccp: 33, xtp: 36, ddp: 37, 'idpr-cmtp': 38, ipv6: 41,
  'ipv6-route': 43, 'ipv6-frag': 44, idrp: 45, rsvp: 46, gre: 47, esp: 50, ah: 51, skip: 57, 'ipv6-icmp': 58,
  icmpv6: 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, rspf: 73, vmtp: 81, eigrp: 88, ospf: 89, 'ax.25': 93,
  ipip: 94, etherip: 97, encap: 98, pim: 103, ipcomp: 108, vrrp: 112, l2tp: 115, isis: 124, sctp: 132,
  fc: 133, 'mobility-header': 135, udplite: 136, 'mpls-in-ip': 137, manet: 138, hip: 139, shim6: 140,
  wesp: 141, rohc: 142, ethernet: 143,
};

export const SYSLOG_FACILITIES: ReadonlySet<string> = new Set([
  'daemon', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
]);
