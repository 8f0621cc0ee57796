// prom-client implementation of the metrics seam. Every metric except the
// commit histogram has a collect() callback that copies a value out of ONE
// snapshot taken per scrape, so the daemon's hot paths cost nothing extra and
// all values in a scrape are mutually consistent.
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { peerUp, DEFAULT_PEER_TIMEOUT_MS } from '../ops/readiness.js';
import type { Metrics, MetricsSnapshot, MetricsSource } from './types.js';

export const CONNTRACK_COUNT_PATH = '/proc/sys/net/netfilter/nf_conntrack_count';

export interface PrometheusMetricsOptions {
  source: MetricsSource;
  /** Same threshold as readiness, so ctsync_peer_up and /readyz agree. */
  peerTimeoutMs?: number;
  /** Where to read nf_conntrack_count when the snapshot does not carry it; null disables. */
  conntrackCountPath?: string | null;
  /** Also export prom-client's process/Node metrics (event-loop lag matters for the protocol timers). */
  processMetrics?: boolean;
  registry?: Registry;
}

type Labels = Record<string, string>;

export class PrometheusMetrics implements Metrics {
  readonly registry: Registry;
  private snap: MetricsSnapshot | undefined;
  private readonly commitDuration: Histogram;
  private readonly commitEntries: Counter;

  constructor(private readonly opts: PrometheusMetricsOptions) {
    this.registry = opts.registry ?? new Registry();
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'ctsync_' });
    this.commitDuration = new Histogram({
      name: 'ctsync_commit_duration_seconds',
      help: 'Time to commit the external cache into the kernel table (conntrackd -c, or on failover).',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
    this.commitEntries = new Counter({
      name: 'ctsync_commit_entries_total',
      help: 'Objects written to the kernel by commits.',
      registers: [this.registry],
    });
    this.define();
  }

  observeCommit(seconds: number, entries: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.commitDuration.observe(seconds);
    if (Number.isFinite(entries) && entries > 0) this.commitEntries.inc(entries);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text. Takes one snapshot for the whole scrape. */
  async metrics(): Promise<string> {
    this.snap = this.opts.source();
    try {
      return await this.registry.metrics();
    } finally {
      this.snap = undefined;
    }
  }

  /** The current scrape's snapshot; taken on demand when the registry is read directly (merged registries). */
  private s(): MetricsSnapshot {
    if (!this.snap) {
      this.snap = this.opts.source();
      // All collect() callbacks of one registry.metrics() run in the same tick.
      queueMicrotask(() => (this.snap = undefined));
    }
    return this.snap;
  }

  /** +Inf and NaN pass through: +Inf for "never", NaN for "unknown" (a silent 0 would lie). */
  private gauge(name: string, help: string, read: (s: MetricsSnapshot) => number): void {
    const self = this;
    new Gauge({
      name, help, registers: [this.registry],
      collect() {
        this.set(read(self.s()));
      },
    });
  }

  private labeledGauge(name: string, help: string, labelNames: string[], read: (s: MetricsSnapshot) => [Labels, number][]): void {
    const self = this;
    new Gauge({
      name, help, labelNames, registers: [this.registry],
      collect() {
        this.reset();
        for (const [l, v] of read(self.s())) if (Number.isFinite(v)) this.set(l, v);
      },
    });
  }

  /** A counter mirrored from a cumulative count the daemon keeps; reset() + inc() re-exposes it as is. */
  private counter(name: string, help: string, labelNames: string[], read: (s: MetricsSnapshot) => [Labels, number][]): void {
    const self = this;
    new Counter({
      name, help, labelNames, registers: [this.registry],
      collect() {
        this.reset();
        for (const [l, v] of read(self.s())) if (Number.isFinite(v) && v >= 0) this.inc(l, v);
      },
    });
  }

  private define(): void {
    const peerTimeout = this.opts.peerTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS;
    const one = (v: number): [Labels, number][] => [[{}, v]];
    // "Never" is +Inf, so `age > N` alerts also fire for a peer that was never heard from.
    const sec = (ms: number | null): number => (ms === null ? Infinity : ms / 1000);

    // --- liveness / readiness
    this.gauge('ctsync_up', 'Whether the daemon runs its event loops (1) or is starting/stopping (0).', (s) => (s.running ? 1 : 0));
    this.gauge('ctsync_initial_dump_done', 'Whether the initial kernel conntrack dump has been loaded (1) or not (0).',
      (s) => (s.initialDumpDone ? 1 : 0));
    this.gauge('ctsync_uptime_seconds', 'Seconds since the daemon started.', (s) => s.uptimeSeconds);

    // --- replication lag and peer
    this.gauge('ctsync_replication_lag_seconds',
      'Age of the oldest entry update queued for or sent to the peer and not yet acknowledged (0 when all are acknowledged).',
      (s) => s.sync.oldestUnackedAgeMs / 1000);
    this.gauge('ctsync_peer_last_message_age_seconds',
      'Seconds since the last message (data, ACK, NACK or ALIVE) from the peer; +Inf if none was ever received.',
      (s) => sec(s.sync.lastRecvAgeMs));
    this.gauge('ctsync_peer_last_alive_age_seconds', 'Seconds since the last ALIVE from the peer; +Inf if none was ever received.',
      (s) => sec(s.sync.lastAliveAgeMs));
    this.gauge('ctsync_peer_up', `Whether a message from the peer arrived within the last ${peerTimeout / 1000}s (1) or not (0).`,
      (s) => (peerUp(s, peerTimeout) ? 1 : 0));
    this.gauge('ctsync_resync_pending', 'Whether a resync with the peer is outstanding (1) or not (0).', (s) => (s.sync.resyncPending ? 1 : 0));
    this.counter('ctsync_peer_restarts_total', 'Times the peer was seen to restart (sequence reset).', [], (s) => one(s.sync.peerRestarts));

    // --- queues and FTFW reliability
    this.gauge('ctsync_resend_queue_length', 'Messages held for possible retransmission (FTFW resend queue depth).', (s) => s.sync.rsQueueLen);
    this.gauge('ctsync_resend_queue_max', 'Configured ResendQueueSize (0 when not applicable).', (s) => s.sync.rsQueueMax);
    this.counter('ctsync_resend_queue_overflows_total', 'Messages dropped because the resend queue was full.', [],
      (s) => one(s.sync.rsQueueOverflow));
    this.gauge('ctsync_tx_queue_length', 'Messages waiting for the next transmit round.', (s) => s.sync.txQueueLen);
    this.counter('ctsync_messages_total', 'Sync protocol messages sent to and received from the peer.', ['direction'],
      (s) => [[{ direction: 'sent' }, s.sync.msgsSent], [{ direction: 'received' }, s.sync.msgsRecv]]);
    this.counter('ctsync_nacks_total', 'NACKs (retransmission requests) sent to and received from the peer.', ['direction'],
      (s) => [[{ direction: 'sent' }, s.sync.nacksSent], [{ direction: 'received' }, s.sync.nacksRecv]]);
    this.counter('ctsync_acks_total', 'ACKs sent to and received from the peer.', ['direction'],
      (s) => [[{ direction: 'sent' }, s.sync.acksSent], [{ direction: 'received' }, s.sync.acksRecv]]);
    this.counter('ctsync_resends_total', 'Messages retransmitted to the peer.', [], (s) => one(s.sync.resends));
    this.counter('ctsync_messages_lost_total',
      'Messages from the peer missing in the sequence. method="conntrackd" is conntrackd\'s "Packets lost" arithmetic ' +
      '(over-counts); method="actual" is the real number of missing messages.', ['method'],
      (s) => [[{ method: 'conntrackd' }, s.sync.seqLost], [{ method: 'actual' }, s.sync.seqLostActual]]);
    this.counter('ctsync_messages_before_total', 'Messages from the peer with a sequence number before the expected one.', [],
      (s) => one(s.sync.seqBefore));
    this.counter('ctsync_malformed_messages_total', 'Received messages dropped because they did not decode, by reason.', ['reason'],
      (s) => Object.entries(s.sync.malformed).map(([reason, v]) => [{ reason }, v]));
    this.counter('ctsync_send_malformed_total', 'Local objects that could not be encoded for the peer (dropped).', [],
      (s) => one(s.sync.sendMalformed));
    this.counter('ctsync_fast_path_total',
      'Lone kernel NEW events and the addon\'s fast path: result="sent" sent by it before the JS path ran, "declined" ' +
      'left to the JS path (a shape it does not encode), "send_error" its send failed (the JS path sent it), "orphan" ' +
      'sent by it but not taken by the JS path (should stay 0).', ['result'],
      (s) => Object.entries(s.sync.fastPath).map(([result, v]) => [{ result }, v]));

    // --- kernel side
    this.counter('ctsync_netlink_events_total', 'Conntrack events received from the kernel, by kind.', ['kind'],
      (s) => Object.entries(s.netlink.events).map(([kind, v]) => [{ kind }, v]));
    this.counter('ctsync_netlink_events_filtered_total', 'Kernel events ignored by the Filter section.', [],
      (s) => one(s.netlink.eventsFiltered));
    this.counter('ctsync_netlink_overruns_total', 'Netlink event socket overruns (ENOBUFS: events lost in the kernel).', [],
      (s) => one(s.netlink.overruns));
    this.counter('ctsync_netlink_resyncs_total', 'Full re-dumps of the kernel table after an overrun.', [],
      (s) => one(s.netlink.resyncs));
    const countPath = this.opts.conntrackCountPath === undefined ? CONNTRACK_COUNT_PATH : this.opts.conntrackCountPath;
    this.gauge('ctsync_kernel_conntrack_entries', 'nf_conntrack_count: entries in the kernel table of the synced namespace (NaN when unreadable).',
      (s) => s.kernelConntrackCount ?? (countPath ? readCount(countPath) : NaN));

    // --- caches
    const caches = (pick: (c: MetricsSnapshot['cache']['internal']) => number) => (s: MetricsSnapshot): [Labels, number][] =>
      [[{ cache: 'internal' }, pick(s.cache.internal)], [{ cache: 'external' }, pick(s.cache.external)]];
    this.labeledGauge('ctsync_cache_entries', 'Objects in the cache (internal = local kernel mirror, external = peer state).', ['cache'],
      caches((c) => c.active));
    this.labeledGauge('ctsync_cache_limit', 'Configured cache size limit (HashLimit; 0 = unlimited).', ['cache'], caches((c) => c.limit));
    this.counter('ctsync_cache_no_space_total', 'Inserts refused because the cache was full.', ['cache'], caches((c) => c.noSpace));

    // --- links
    const perLink = (pick: (l: MetricsSnapshot['links'][number]) => number) => (s: MetricsSnapshot): [Labels, number][] =>
      s.links.map((l) => [{ link: l.name }, pick(l)]);
    const perLinkDir = (sent: (l: MetricsSnapshot['links'][number]) => number, recv: (l: MetricsSnapshot['links'][number]) => number) =>
      (s: MetricsSnapshot): [Labels, number][] =>
        s.links.flatMap((l) => [[{ link: l.name, direction: 'sent' }, sent(l)], [{ link: l.name, direction: 'received' }, recv(l)]] as [Labels, number][]);
    this.counter('ctsync_link_datagrams_total', 'Datagrams sent and received on each dedicated link.', ['link', 'direction'],
      perLinkDir((l) => l.datagramsSent, (l) => l.datagramsRecv));
    this.counter('ctsync_link_bytes_total', 'Bytes sent and received on each dedicated link.', ['link', 'direction'],
      perLinkDir((l) => l.bytesSent, (l) => l.bytesRecv));
    this.counter('ctsync_link_errors_total', 'Send and receive errors on each dedicated link.', ['link', 'direction'],
      perLinkDir((l) => l.errorsSent, (l) => l.errorsRecv));
    this.labeledGauge('ctsync_link_up', 'Whether the link is RUNNING (1) or NO-CARRIER/DOWN (0).', ['link'],
      perLink((l) => (l.status === 'RUNNING' ? 1 : 0)));
    this.labeledGauge('ctsync_link_active', 'Whether the sync layer currently sends on this link (1) or not (0).', ['link'],
      perLink((l) => (l.active ? 1 : 0)));
    this.labeledGauge('ctsync_link_info', 'Static link facts as labels; value is always 1.', ['link', 'kind'],
      (s) => s.links.map((l) => [{ link: l.name, kind: l.kind }, 1]));
    this.labeledGauge('ctsync_sync_mode_info', 'The configured sync mode as a label; value is always 1.', ['mode'],
      (s) => [[{ mode: s.sync.mode }, 1]]);
  }
}

/** A missing file (nf_conntrack not loaded) yields NaN rather than a false 0. */
function readCount(path: string): number {
  try {
    const n = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isFinite(n) ? n : NaN;
  } catch {
    return NaN;
  }
}
