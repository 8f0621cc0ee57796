// The typed configuration every other module reads, its defaults (conntrackd
// 1.4.7's own, spec ftfw.md §3.7 and §6), and the semantic checks that need
// the whole file (mixed link kinds, two Default links...).
//
// Line numbers are kept where a later check or a runtime message needs to
// point the operator back at the file.

import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import type { TcpStateName } from './keywords.js';

export type { TcpStateName } from './keywords.js';

export interface ConfigWarning { file: string; line: number; keyword: string; message: string }

export type SyncModeName = 'ftfw' | 'alarm' | 'notrack';
export type LinkKind = 'udp' | 'multicast' | 'tcp';
export type SyslogFacility = 'daemon' | 'local0' | 'local1' | 'local2' | 'local3' | 'local4' | 'local5' | 'local6' | 'local7';
export type FilterPolicy = 'accept' | 'ignore';

/** One dedicated link block (UDP / Multicast / TCP). */
export interface LinkConfig {
  kind: LinkKind;
  /** Marked `Default` (the link used first by the multichannel). */
  isDefault: boolean;
  /** Line of the block's keyword. */
  line: number;
  /** Local bind address (UDP/TCP) or multicast group (Multicast). */
  ipv4Address?: string;
  ipv6Address?: string;
  /** Peer address, IPv4_Destination_Address or IPv6_Destination_Address (UDP/TCP). */
  destination?: string;
  /** UDP/TCP `Port`, Multicast `Group`. */
  port: number;
  interface: string;
  sndBuf?: number;
  rcvBuf?: number;
  /** UDP checksum on the sync datagrams; default on. */
  checksum: boolean;
  /** TCP only; default 128. */
  errorQueueLength?: number;
  /** Multicast only: local address of the interface that joins the group. */
  ipv4Interface?: string;
}

export interface SyncConfig {
  mode: SyncModeName;
  /** Line of the `Mode` keyword; undefined when FTFW was assumed. */
  modeLine?: number;
  resendQueueSize: number;
  /** Seconds; undefined = estimate from the entry's timeout (conntrackd's default). */
  commitTimeout?: number;
  purgeTimeout: number;
  ackWindowSize: number;
  disableExternalCache: boolean;
  disableInternalCache: boolean;
  startupResync: boolean;
  /** ALARM mode. */
  refreshTime: number;
  /** ALARM mode. */
  cacheTimeout: number;
  links: LinkConfig[];
  /** Index into `links` of the Default link (0 when none is marked). */
  defaultLink: number;
  tcpWindowTracking: boolean;
  /** enabled=false: off. helpers=null: every expectation; a list: only those helpers'. */
  expectationSync: { enabled: boolean; helpers: string[] | null };
}

export interface CidrEntry { address: string; prefix: number; line: number }

export interface FilterConfig {
  /** Where conntrackd applies the filter; plain `Filter` = userspace. */
  from: 'userspace' | 'kernelspace';
  protocol?: { policy: FilterPolicy; protocols: number[]; line: number };
  address?: { policy: FilterPolicy; ipv4: CidrEntry[]; ipv6: CidrEntry[]; line: number };
  state?: { policy: FilterPolicy; tcpStates: TcpStateName[]; line: number };
}

export interface GeneralConfig {
  systemd: boolean;
  nice?: number;
  hashSize: number;
  hashLimit: number;
  /** null = off. `LogFile on` = /var/log/conntrackd.log. */
  logFile: string | null;
  /** null = off. `Syslog on` = daemon. */
  syslog: SyslogFacility | null;
  lockFile: string;
  unix: { path: string | null; backlog?: number };
  netlinkBufferSize?: number;
  netlinkBufferSizeMaxGrowth?: number;
  /** Seconds before resyncing after an event overrun; null = off. */
  netlinkOverrunResync: number | null;
  netlinkEventsReliable: boolean;
  pollSecs?: number;
  eventIterationLimit: number;
  /** Absent: conntrackd's default, SCHED_RR at the highest priority (src/ops/scheduler.ts). */
  scheduler?: { type?: 'RR' | 'FIFO' | 'OTHER'; priority?: number };
  /** null when there is no Filter block. */
  filter: FilterConfig | null;
}

export interface StatsConfig {
  /** null = off. `LogFile on` = /var/log/conntrackd-stats.log. */
  logFile: string | null;
  syslog: SyslogFacility | null;
  line: number;
}

export interface HelperPolicyConfig { name: string; expectMax?: number; expectTimeout?: number }
export interface HelperTypeConfig {
  name: string; l3: 'inet' | 'inet6'; l4: 'tcp' | 'udp'; queueNum?: number; queueLen?: number;
  policies: HelperPolicyConfig[]; line: number;
}
export interface HelperConfig { setup: boolean; types: HelperTypeConfig[]; line: number }

/** ctsync's own additions, from the top-level `Ctsync { ... }` section. */
export interface CtsyncExtensions {
  /** null = no metrics endpoint. */
  metrics: { address: string; port: number } | null;
  /** Add this host's own addresses to the Address Ignore filter automatically. Default off. */
  ignoreOwnAddresses: boolean;
  /** Pre-shared key file for sync-link authentication. */
  keyFile: string | null;
  tls: { caFile: string; certFile: string; keyFile: string } | null;
  /** Drop sync datagrams whose source is not a configured peer. Default on. */
  acceptOnlyPeer: boolean;
  /** Written when synced and ready (keepalived track_file); null = none. */
  readyFile: string | null;
  /** keepalived notify_fifo to read; transitions then run in-process. null = none. */
  notifyFifo: string | null;
  /** Seconds without any message from the peer before it counts as down (peer_up, /readyz, track file). */
  peerTimeout: number;
  /** Seconds between periodic dump-and-reconcile runs of the internal cache; 0 = off. */
  reconcileInterval: number;
  /**
   * FTFW: data messages sent and not yet acknowledged before the sender waits
   * (paces a bulk send to what the peer acknowledges); 0 = no limit. At least
   * twice ACKWindowSize is used (the peer acknowledges once per window).
   */
  sendWindow: number;
  /**
   * FTFW over a plain UDP link: a kernel NEW event read alone is encoded and
   * sent by the addon before the JS path runs (src/daemon/fast-path.ts).
   * Default on; off sends every event through the JS path.
   */
  fastPath: boolean;
}

export interface CtsyncConfig {
  /** The file the configuration was read from (as given). */
  file: string;
  /** Which daemon mode the file selects: a `Sync` or a `Stats` section. */
  role: 'sync' | 'stats';
  /** Present when role is 'sync'. */
  sync: SyncConfig | null;
  general: GeneralConfig;
  /** Present when role is 'stats'. */
  stats: StatsConfig | null;
  helper: HelperConfig | null;
  ctsync: CtsyncExtensions;
}

export const DEFAULTS = {
  resendQueueSize: 131072,
  purgeTimeout: 60,
  ackWindowSize: 300,
  refreshTime: 60,
  cacheTimeout: 180,
  hashSize: 65536,
  hashLimit: 262144,
  netlinkOverrunResync: 30,
  eventIterationLimit: 100,
  errorQueueLength: 128,
  logFile: '/var/log/conntrackd.log',
  statsLogFile: '/var/log/conntrackd-stats.log',
  syslogFacility: 'daemon' as SyslogFacility,
  lockFile: '/var/lock/conntrackd.lock',
  metricsAddress: '127.0.0.1',
  metricsPort: 9469,
  peerTimeout: 5,
  reconcileInterval: 300,
  sendWindow: 4096,
  fastPath: true,
  maxLinks: 4,
} as const;

export function defaultSync(): SyncConfig {
  return {
    mode: 'ftfw',
    resendQueueSize: DEFAULTS.resendQueueSize,
    purgeTimeout: DEFAULTS.purgeTimeout,
    ackWindowSize: DEFAULTS.ackWindowSize,
    disableExternalCache: false,
    disableInternalCache: false,
    startupResync: false,
    refreshTime: DEFAULTS.refreshTime,
    cacheTimeout: DEFAULTS.cacheTimeout,
    links: [],
    defaultLink: 0,
    tcpWindowTracking: false,
    expectationSync: { enabled: false, helpers: null },
  };
}

export function defaultGeneral(): GeneralConfig {
  return {
    // Debian's conntrackd is built with systemd support, which turns this on by default.
    systemd: true,
    hashSize: DEFAULTS.hashSize,
    hashLimit: DEFAULTS.hashLimit,
    logFile: null,
    syslog: null,
    lockFile: DEFAULTS.lockFile,
    unix: { path: null },
    netlinkOverrunResync: DEFAULTS.netlinkOverrunResync,
    netlinkEventsReliable: false,
    eventIterationLimit: DEFAULTS.eventIterationLimit,
    filter: null,
  };
}

export function defaultCtsync(): CtsyncExtensions {
  return { metrics: null, ignoreOwnAddresses: false, keyFile: null, tls: null, acceptOnlyPeer: true, readyFile: null,
    notifyFifo: null, peerTimeout: DEFAULTS.peerTimeout, reconcileInterval: DEFAULTS.reconcileInterval,
    sendWindow: DEFAULTS.sendWindow, fastPath: DEFAULTS.fastPath };
}

/** Facts about where things were in the file, for whole-file checks. */
export interface SectionLines {
  sync?: number;
  stats?: number;
  /** Lines of numeric settings checked here, keyed by keyword. */
  settings: Record<string, number>;
}

/**
 * Canonical text of an address (RFC 5952 for IPv6: lower case, longest zero run
 * compressed), so other modules can compare addresses as strings. Input must be valid.
 */
export function canonicalIp(addr: string): string {
  if (isIP(addr) !== 6) return addr;
  return new URL(`http://[${addr}]/`).hostname.slice(1, -1);
}

function invalid(file: string, line: number | undefined, message: string): ConfigError {
  return new ConfigError('CTSYNC_ERR_CONFIG_INVALID', message, file, line ?? 1);
}

function isMulticast(addr: string): boolean {
  if (isIP(addr) === 4) {
    const first = Number(addr.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  return addr.toLowerCase().startsWith('ff');
}

/** One link's own consistency. */
function checkLink(link: LinkConfig, file: string): void {
  const name = link.kind === 'multicast' ? 'Multicast' : link.kind.toUpperCase();
  const where = `${name} block`;
  if (!link.interface) {
    throw invalid(file, link.line, `${where} has no Interface (required: the sync link's network interface)`);
  }
  if (link.ipv4Address !== undefined && link.ipv6Address !== undefined) {
    throw invalid(file, link.line, `${where} has both IPv4_address and IPv6_address; expected one of them`);
  }
  const portWord = link.kind === 'multicast' ? 'Group' : 'Port';
  if (!Number.isInteger(link.port) || link.port < 1 || link.port > 65535) {
    throw invalid(file, link.line, link.port === 0
      ? `${where} has no ${portWord} (expected a port number 1..65535)`
      : `${where}: ${portWord} ${link.port} is out of range, expected 1..65535`);
  }
  if (link.kind === 'multicast') {
    const group = link.ipv4Address ?? link.ipv6Address;
    if (group === undefined) {
      throw invalid(file, link.line, `${where} has no IPv4_address or IPv6_address (the multicast group)`);
    }
    if (!isMulticast(group)) {
      throw invalid(file, link.line, `${where}: ${group} is not a multicast group address (expected 224.0.0.0/4 or ff00::/8)`);
    }
    if (link.ipv6Address !== undefined && link.ipv4Interface !== undefined) {
      throw invalid(file, link.line, `${where}: IPv4_interface given for an IPv6 multicast group`);
    }
  } else {
    if (link.destination === undefined) {
      throw invalid(file, link.line,
        `${where} has no IPv4_Destination_Address or IPv6_Destination_Address (the peer's address)`);
    }
    const local = link.ipv4Address ?? link.ipv6Address;
    if (local !== undefined && isIP(local) !== isIP(link.destination)) {
      throw invalid(file, link.line,
        `${where}: local address ${local} and destination ${link.destination} are of different IP families`);
    }
  }
  if (link.errorQueueLength !== undefined && link.errorQueueLength < 1) {
    throw invalid(file, link.line, `${where}: ErrorQueueLength must be at least 1`);
  }
}

/**
 * Whole-file checks and derived values. Mutates `config` (defaultLink) and
 * appends warnings; throws CTSYNC_ERR_CONFIG_INVALID.
 */
export function finalizeConfig(config: CtsyncConfig, lines: SectionLines, warnings: ConfigWarning[]): CtsyncConfig {
  const file = config.file;
  if (lines.sync !== undefined && lines.stats !== undefined) {
    throw invalid(file, Math.max(lines.sync, lines.stats),
      "cannot use both 'Sync' and 'Stats' sections; expected one of them");
  }
  if (lines.sync === undefined && lines.stats === undefined) {
    throw invalid(file, 1, "no 'Sync' section (nor 'Stats'); expected 'Sync { Mode FTFW { } UDP { ... } }'");
  }
  const sync = config.sync;
  if (sync) {
    const syncLine = lines.sync ?? 1;
    if (sync.modeLine === undefined) {
      warnings.push({ file, line: syncLine, keyword: 'Mode',
        message: 'no synchronization Mode given in Sync; defaulting to FTFW' });
    }
    if (sync.links.length === 0) {
      throw invalid(file, syncLine, 'Sync section has no dedicated link; expected a UDP, Multicast or TCP block');
    }
    if (sync.links.length > DEFAULTS.maxLinks) {
      throw invalid(file, sync.links[DEFAULTS.maxLinks]!.line,
        `too many dedicated links (maximum ${DEFAULTS.maxLinks})`);
    }
    const kind = sync.links[0]!.kind;
    for (const link of sync.links) {
      if (link.kind !== kind) {
        throw invalid(file, link.line,
          `cannot mix dedicated link kinds: ${link.kind} here, ${kind} at line ${sync.links[0]!.line}`);
      }
      checkLink(link, file);
    }
    const defaults = sync.links.filter((l) => l.isDefault);
    if (defaults.length > 1) {
      throw invalid(file, defaults[1]!.line, `second Default link; the first is at line ${defaults[0]!.line}`);
    }
    sync.defaultLink = defaults.length === 1 ? sync.links.indexOf(defaults[0]!) : 0;
    if (sync.ackWindowSize < 1) {
      throw invalid(file, lines.settings['ACKWindowSize'], 'ACKWindowSize must be at least 1');
    }
    if (sync.resendQueueSize < 1) {
      throw invalid(file, lines.settings['ResendQueueSize'], 'ResendQueueSize must be at least 1');
    }
    if (sync.purgeTimeout < 1) {
      throw invalid(file, lines.settings['PurgeTimeout'], 'PurgeTimeout must be at least 1 second');
    }
    if (sync.mode === 'alarm' && sync.refreshTime < 1) {
      throw invalid(file, lines.settings['RefreshTime'], 'RefreshTime must be at least 1 second');
    }
    if (sync.mode === 'alarm' && sync.cacheTimeout < 1) {
      throw invalid(file, lines.settings['CacheTimeout'], 'CacheTimeout must be at least 1 second');
    }
    if (sync.disableExternalCache && sync.commitTimeout !== undefined) {
      warnings.push({ file, line: lines.settings['CommitTimeout'] ?? syncLine, keyword: 'CommitTimeout',
        message: 'CommitTimeout has no effect with DisableExternalCache on (entries go straight to the kernel)' });
    }
    if (sync.mode !== 'alarm') {
      for (const kw of ['RefreshTime', 'CacheTimeout']) {
        const line = lines.settings[kw];
        if (line !== undefined) {
          warnings.push({ file, line, keyword: kw, message: `${kw} only applies to ALARM mode; ignored in ${sync.mode.toUpperCase()}` });
        }
      }
    }
  }
  const g = config.general;
  if (g.hashLimit < 1) throw invalid(file, lines.settings['HashLimit'], 'HashLimit must be at least 1');
  if (g.eventIterationLimit < 1) {
    throw invalid(file, lines.settings['EventIterationLimit'], 'EventIterationLimit must be at least 1');
  }
  if (g.netlinkBufferSize !== undefined && g.netlinkBufferSizeMaxGrowth !== undefined &&
      g.netlinkBufferSizeMaxGrowth < g.netlinkBufferSize) {
    warnings.push({ file, line: lines.settings['NetlinkBufferSizeMaxGrowth'] ?? 1, keyword: 'NetlinkBufferSizeMaxGrowth',
      message: `NetlinkBufferSizeMaxGrowth (${g.netlinkBufferSizeMaxGrowth}) is below NetlinkBufferSize (${g.netlinkBufferSize}); the buffer will not grow` });
  }
  const x = config.ctsync;
  if (x.keyFile !== null && x.tls !== null) {
    throw invalid(file, lines.settings['KeyFile'], "Ctsync: use either 'KeyFile' or 'TLS' to secure the sync link, not both");
  }
  if (x.tls !== null && sync && sync.links[0]!.kind !== 'tcp') {
    warnings.push({ file, line: lines.settings['TLS'] ?? 1, keyword: 'TLS',
      message: `TLS only applies to TCP dedicated links; the links here are ${sync.links[0]!.kind}` });
  }
  return config;
}
