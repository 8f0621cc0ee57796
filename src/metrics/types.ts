// The metrics seam (js-libp2p style): the daemon hands out one snapshot
// callback and calls observeCommit() after each commit; everything else is
// read lazily at scrape time. Hot paths (netlink events, datagrams) never
// touch a metrics object: they bump the plain counters the components keep
// anyway (SyncStats, CacheStats, ChannelStats) and the snapshot copies them.
import type { ChannelStats, LinkStatus } from '../channel/types.js';
import type { SyncStats } from '../sync/types.js';

/** One cache (internal = local kernel mirror, external = the peer's state). */
export interface CacheSnapshot {
  /** Objects currently held (CacheStats.active). */
  active: number;
  /** Configured HashLimit; 0 = no limit. */
  limit: number;
  /** Inserts refused because the cache was full (CacheStats.noSpace). */
  noSpace: number;
}

export interface LinkSnapshot {
  /** Interface name (or another stable label) of this dedicated link. */
  name: string;
  kind: 'UDP' | 'multicast' | 'TCP';
  /** The link the sync layer currently sends on. */
  active: boolean;
  status: LinkStatus;
  datagramsSent: number;
  datagramsRecv: number;
  bytesSent: number;
  bytesRecv: number;
  errorsSent: number;
  errorsRecv: number;
}

export interface SyncSnapshot {
  mode: 'ftfw' | 'notrack' | 'alarm';
  /**
   * Age (ms) of the oldest data message (an entry's state) not yet
   * acknowledged by the peer (SyncStats.oldestUnackedAgeMs); 0 when all are.
   */
  oldestUnackedAgeMs: number;
  /** ms since the last message of any kind (data, ACK, NACK, ALIVE) from the peer; null = never since start. */
  lastRecvAgeMs: number | null;
  /** ms since the last ALIVE from the peer; null = never, or the mode does not track it. */
  lastAliveAgeMs: number | null;
  /**
   * FTFW HELLO/HELLO_BACK exchange completed with the peer's current
   * incarnation. undefined = not tracked (readiness then relies on
   * lastRecvAgeMs alone).
   */
  helloDone?: boolean;
  /**
   * A resync is outstanding: we asked the peer for its table (startup or -n)
   * and its bulk transfer is not known to be complete. Readiness waits for it.
   */
  resyncPending: boolean;
  rsQueueLen: number;
  /** ResendQueueSize; 0 = not applicable. */
  rsQueueMax: number;
  rsQueueOverflow: number;
  txQueueLen: number;
  msgsSent: number;
  msgsRecv: number;
  nacksSent: number;
  nacksRecv: number;
  acksSent: number;
  acksRecv: number;
  resends: number;
  /** conntrackd's "Packets lost" arithmetic (over-counts; kept for parity with -s network). */
  seqLost: number;
  /** Messages really missing (sum of the gaps). */
  seqLostActual: number;
  seqBefore: number;
  peerRestarts: number;
  /** Received messages that did not decode, by reason (e.g. RecvCounters fields minus the total). */
  malformed: Record<string, number>;
  /** Objects we could not encode (dropped before sending). */
  sendMalformed: number;
  /** The addon's lone-event fast path: sent (and filed), orphan, declined (left to JS), send_error. */
  fastPath: Record<string, number>;
}

export interface NetlinkSnapshot {
  /** Events received from ctnetlink, by kind ('new', 'update', 'destroy', ...). */
  events: Record<string, number>;
  /** Events dropped by the Filter section. */
  eventsFiltered: number;
  /** ENOBUFS on the event socket (events lost in the kernel). */
  overruns: number;
  /** Full re-dumps of the kernel table that followed an overrun. */
  resyncs: number;
}

export interface MetricsSnapshot {
  /** The daemon's loops run (/healthz). */
  running: boolean;
  /** The initial kernel dump has been loaded into the internal cache. */
  initialDumpDone: boolean;
  uptimeSeconds: number;
  sync: SyncSnapshot;
  netlink: NetlinkSnapshot;
  cache: { internal: CacheSnapshot; external: CacheSnapshot };
  /**
   * nf_conntrack_count as the daemon sees it (e.g. from the netns it syncs).
   * When omitted, the exporter reads /proc/sys/net/netfilter/nf_conntrack_count
   * itself, which reflects the namespace of the daemon's main thread.
   */
  kernelConntrackCount?: number;
  links: LinkSnapshot[];
}

/** Called at scrape (and probe) time; must be cheap and must not throw. */
export type MetricsSource = () => MetricsSnapshot;

/** What the daemon calls directly. Everything else comes from the snapshot. */
export interface Metrics {
  /** One commit of the external cache into the kernel (conntrackd -c) took `seconds` for `entries` objects. */
  observeCommit(seconds: number, entries: number): void;
}

/** For tests and for a daemon started without a Metrics section. */
export const noopMetrics: Metrics = {
  observeCommit() {},
};

/** ms since `at` (a clock.now() value), or null for the "never" marker (< 0), as SyncStats.lastRecvAt uses it. */
export function ageMs(now: number, at: number): number | null {
  return at < 0 ? null : Math.max(0, now - at);
}

// --- adapters: the daemon's existing stats objects → snapshot parts --------

/** What SyncStats does not know; the daemon fills it. */
export interface SyncExtras {
  mode: SyncSnapshot['mode'];
  /** clock.now() of the snapshot, to turn SyncStats.lastRecvAt into an age. */
  now: number;
  /** clock.now() of the last ALIVE from the peer, or -1 / undefined. */
  lastAliveAt?: number;
  helloDone?: boolean;
  resyncPending: boolean;
  rsQueueMax: number;
}

export function syncSnapshotFrom(st: SyncStats, x: SyncExtras): SyncSnapshot {
  const malformed: Record<string, number> = {};
  if (st.recv) {
    // `malformed` is the total of the others; exported per reason only.
    for (const [k, v] of Object.entries(st.recv)) if (k !== 'malformed') malformed[k] = v;
  }
  return {
    mode: x.mode,
    oldestUnackedAgeMs: st.oldestUnackedAgeMs,
    lastRecvAgeMs: ageMs(x.now, st.lastRecvAt),
    lastAliveAgeMs: x.lastAliveAt === undefined ? null : ageMs(x.now, x.lastAliveAt),
    ...(x.helloDone !== undefined ? { helloDone: x.helloDone } : {}),
    resyncPending: x.resyncPending,
    rsQueueLen: st.rsQueueLen,
    rsQueueMax: x.rsQueueMax,
    rsQueueOverflow: st.rsQueueOverflow,
    txQueueLen: st.txQueueLen,
    msgsSent: st.msgsSent,
    msgsRecv: st.msgsRecv,
    nacksSent: st.nacksSent,
    nacksRecv: st.nacksRecv,
    acksSent: st.acksSent,
    acksRecv: st.acksRecv,
    resends: st.resends,
    seqLost: st.seqLost,
    seqLostActual: st.seqLostActual ?? st.seqLost,
    seqBefore: st.seqBefore,
    peerRestarts: st.peerRestarts,
    malformed,
    sendMalformed: st.sendMalformed ?? 0,
    fastPath: {
      sent: st.fastAdopted ?? 0, orphan: st.fastOrphans ?? 0, declined: st.fastDeclined ?? 0, send_error: st.fastSendErrors ?? 0,
    },
  };
}

export function linkSnapshotFrom(l: { kind: LinkSnapshot['kind']; ifname: string; status: LinkStatus; active: boolean; stats: ChannelStats }): LinkSnapshot {
  return {
    name: l.ifname, kind: l.kind, active: l.active, status: l.status,
    datagramsSent: l.stats.packetsSent, datagramsRecv: l.stats.packetsRecv,
    bytesSent: l.stats.bytesSent, bytesRecv: l.stats.bytesRecv,
    errorsSent: l.stats.errorsSent, errorsRecv: l.stats.errorsRecv,
  };
}
