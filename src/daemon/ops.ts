// Operator-facing wiring around a started Daemon: the metrics snapshot, the
// Prometheus/HTTP endpoint, keepalived readiness (track file), sd_notify and
// keepalived's notify_fifo. Nothing here sits on a hot path: the snapshot is
// built at scrape/tick time from counters the components keep anyway.
//
//   const ops = await startOps(daemon, log);   // after daemon.start()
//   ...
//   await ops.stop();                          // before daemon.stop()/exit
import type { Logger } from '../log/logger.js';
import type { CtsyncConfig } from '../config/index.js';
import type { CommitReport } from './commit.js';
import type { SyncMode, SyncStats } from '../sync/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { linkSnapshotFrom, syncSnapshotFrom, type Metrics, type MetricsSnapshot, type MetricsSource, noopMetrics } from '../metrics/types.js';
import type { PrometheusMetrics } from '../metrics/prometheus.js';
import type { MetricsHttpServer } from '../metrics/http.js';
import { NotifyFifoReader, ReadinessTracker, evaluateReadiness, peerUp, type VrrpTransition } from '../ops/readiness.js';
import { SdNotifier, type SdNotifierOptions } from '../ops/systemd.js';

/**
 * The part of Daemon that ops uses (Daemon satisfies it structurally), so
 * the wiring is unit-testable with a fake.
 */
export interface OpsDaemon {
  readonly config: CtsyncConfig;
  readonly clock: Clock;
  readonly startedAt: number;
  readonly sync: SyncMode;
  readonly internal: { readonly stats: { readonly noSpace: number }; readonly activeCount: number; readonly limit: number };
  readonly external: { readonly ctStats: { readonly active: number; readonly noSpace: number }; readonly ctSize: number };
  readonly kernel: { eventsReceived: number; eventsFiltered: number; overruns: number; resyncWithKernel: number };
  readonly initialDumpDone: boolean;
  lastCommit: CommitReport | null;
  linkReports(): Parameters<typeof linkSnapshotFrom>[0][];
  commit(): Promise<CommitReport>;
  on(event: 'commit', fn: (report: CommitReport) => void): unknown;
  off(event: 'commit', fn: (report: CommitReport) => void): unknown;
  on(event: 'role', fn: (role: 'master' | 'backup') => void): unknown;
  off(event: 'role', fn: (role: 'master' | 'backup') => void): unknown;
  on(event: 'resync-requested', fn: () => void): unknown;
  off(event: 'resync-requested', fn: () => void): unknown;
  serialize<T>(fn: () => Promise<T>): Promise<T>;
  cancelKernelPurge(): void;
  flushInternal(): number;
  flushExternal(): number;
  populateFromKernel(): Promise<number>;
  bulkSend(): number;
  scheduleKernelPurge(): void;
}

/** Optional engine getters (additive; used when the sync mode has them). */
interface SyncExtrasProbe {
  /** clock.now() of the last ALIVE from the peer, -1 = never. */
  lastAliveAt?: number;
  /** FTFW HELLO/HELLO_BACK exchange done. */
  helloDone?: boolean;
  /** A RESYNC we requested is outstanding. */
  resyncPending?: boolean;
}

export interface OpsOptions {
  /** Tests: sd_notify sender/env. */
  notifier?: SdNotifierOptions;
  /** Tick for the STATUS line, the resync watch and the readiness track file (ms). */
  tickMs?: number;
  /** Upper bound on how long a requested resync counts as pending (ms). */
  resyncMaxMs?: number;
  /** NotifyFifoReader re-check interval (tests). */
  fifoCheckMs?: number;
}

export interface Ops {
  readonly source: MetricsSource;
  readonly metrics: Metrics;
  readonly prometheus: PrometheusMetrics | null;
  readonly http: MetricsHttpServer | null;
  readonly readiness: ReadinessTracker | null;
  readonly notifier: SdNotifier | null;
  readonly fifo: NotifyFifoReader | null;
  /** Bound address of the HTTP endpoint, when started. */
  readonly httpAddress: { address: string; port: number } | null;
  /** Runs a keepalived transition in-process (what the notify_fifo reader calls). */
  transition(state: 'master' | 'backup' | 'fault'): Promise<void>;
  /** Marks a resync as requested now (ops tracks it until the peer's bulk has settled). */
  noteResyncRequested(): void;
  stop(): Promise<void>;
}

/**
 * Tracks "a resync is outstanding" from the outside: the engine does not say
 * when the peer's bulk transfer is complete, so we call it complete once a
 * message arrived after the request and the external cache size has been
 * stable for two ticks, or after a hard bound.
 */
class ResyncWatch {
  private since: number | null = null;
  private lastSize = -1;
  private stableTicks = 0;

  constructor(private readonly maxMs: number) {}

  request(now: number): void {
    this.since = now;
    this.lastSize = -1;
    this.stableTicks = 0;
  }

  get pending(): boolean {
    return this.since !== null;
  }

  /** Returns true when the watch just ended by timeout. */
  tick(now: number, lastRecvAt: number, externalSize: number): 'done' | 'timeout' | null {
    if (this.since === null) return null;
    if (now - this.since > this.maxMs) {
      this.since = null;
      return 'timeout';
    }
    if (lastRecvAt < this.since) return null;
    if (externalSize === this.lastSize) this.stableTicks++;
    else this.stableTicks = 0;
    this.lastSize = externalSize;
    if (this.stableTicks >= 2) {
      this.since = null;
      return 'done';
    }
    return null;
  }
}

export async function startOps(daemon: OpsDaemon, log: Logger, opts: OpsOptions = {}): Promise<Ops> {
  const cfg = daemon.config;
  const x = cfg.ctsync;
  const peerTimeoutMs = x.peerTimeout * 1000;
  const clock = daemon.clock;
  const tickMs = opts.tickMs ?? 1000;
  const resync = new ResyncWatch(opts.resyncMaxMs ?? 60_000);
  if (cfg.sync?.startupResync) resync.request(clock.now());
  let running = true;
  const timers: TimerHandle[] = [];

  const probe = (): SyncExtrasProbe => daemon.sync as unknown as SyncExtrasProbe;
  const syncStats = (): SyncStats => daemon.sync.stats();

  const source: MetricsSource = () => {
    const now = clock.now();
    const st = syncStats();
    const p = probe();
    const links = daemon.linkReports().map(linkSnapshotFrom);
    const snap: MetricsSnapshot = {
      running,
      initialDumpDone: daemon.initialDumpDone,
      uptimeSeconds: Math.max(0, (now - daemon.startedAt) / 1000),
      sync: syncSnapshotFrom(st, {
        mode: daemon.sync.name,
        now,
        ...(typeof p.lastAliveAt === 'number' ? { lastAliveAt: p.lastAliveAt } : {}),
        ...(typeof p.helloDone === 'boolean' ? { helloDone: p.helloDone } : {}),
        resyncPending: typeof p.resyncPending === 'boolean' ? p.resyncPending : resync.pending,
        rsQueueMax: cfg.sync?.mode === 'ftfw' ? cfg.sync.resendQueueSize : 0,
      }),
      netlink: {
        events: { all: daemon.kernel.eventsReceived },
        eventsFiltered: daemon.kernel.eventsFiltered,
        overruns: daemon.kernel.overruns,
        // The initial dump also counts as a resync with the kernel; only the ones after it are overrun repairs.
        resyncs: Math.max(0, daemon.kernel.resyncWithKernel - 1),
      },
      cache: {
        internal: { active: daemon.internal.activeCount, limit: daemon.internal.limit, noSpace: daemon.internal.stats.noSpace },
        external: { active: daemon.external.ctSize, limit: cfg.general.hashLimit, noSpace: daemon.external.ctStats.noSpace },
      },
      links,
    };
    return snap;
  };

  // --- metrics + commit observation
  let prometheus: PrometheusMetrics | null = null;
  let metrics: Metrics = noopMetrics;
  let http: MetricsHttpServer | null = null;
  let httpAddress: Ops['httpAddress'] = null;
  if (x.metrics) {
    // prom-client (~3 MiB of heap) is loaded only by daemons that serve metrics.
    const { PrometheusMetrics } = await import('../metrics/prometheus.js');
    prometheus = new PrometheusMetrics({ source, peerTimeoutMs, processMetrics: true });
    metrics = prometheus;
  }
  // Every commit (control socket -c, `ctsync notify`, the FIFO) is reported by the daemon's 'commit' event.
  const onCommit = (r: CommitReport): void => metrics.observeCommit(r.seconds, r.committed);
  daemon.on('commit', onCommit);

  const readiness = x.readyFile || x.notifyFifo
    ? new ReadinessTracker({ source, peerTimeoutMs, ...(x.readyFile ? { trackFile: x.readyFile } : {}), clock, log, intervalMs: tickMs })
    : null;

  // --- sd_notify
  const notifier = cfg.general.systemd
    ? new SdNotifier({ log, healthy: () => running && daemon.initialDumpDone, ...opts.notifier })
    : null;

  // Notify scripts drive the node through control commands rather than the FIFO: a commit
  // means master, -t means backup, -n a pending resync. Without this a lone master whose
  // peer went silent would mark itself not ready.
  const onRole = (role: 'master' | 'backup'): void => {
    readiness?.noteTransition({ kind: 'GROUP', name: '<control>', state: role === 'master' ? 'MASTER' : 'BACKUP', priority: null });
  };
  const onResyncRequested = (): void => resync.request(clock.now());
  daemon.on('role', onRole);
  daemon.on('resync-requested', onResyncRequested);

  const stopAll = async (): Promise<void> => {
    daemon.off('role', onRole);
    daemon.off('resync-requested', onResyncRequested);
    running = false;
    for (const t of timers) t.cancel();
    timers.length = 0;
    fifo?.stop();
    readiness?.stop();
    if (http) await http.stop().catch(() => undefined);
    daemon.off('commit', onCommit);
  };

  if (x.metrics) {
    // As prom-client: node:http (~0.7 MiB RSS) only for daemons that serve metrics.
    const { MetricsHttpServer } = await import('../metrics/http.js');
    http = new MetricsHttpServer({ host: x.metrics.address, port: x.metrics.port, source, exposition: prometheus!, log, peerTimeoutMs });
    try {
      const a = await http.start();
      httpAddress = { address: a.address, port: a.port };
      log.info({ address: a.address, port: a.port }, 'metrics endpoint listening');
    } catch (e) {
      await stopAll();
      log.error({ err: e, address: x.metrics.address, port: x.metrics.port }, 'cannot start the metrics endpoint');
      throw e;
    }
  }

  // --- keepalived transitions, in-process
  let chain: Promise<unknown> = Promise.resolve();
  const transition = (state: 'master' | 'backup' | 'fault'): Promise<void> => {
    const run = async (): Promise<void> => {
      const t0 = clock.now();
      if (state === 'master') {
        // primary-backup.sh: -c, -f, -R, -B. A failed commit must not stop the rest.
        try {
          await daemon.serialize(() => daemon.commit());
        } catch (e) {
          log.error({ err: e }, 'notify master: commit failed');
        }
        await daemon.serialize(async () => {
          daemon.cancelKernelPurge();
          daemon.flushInternal();
          daemon.flushExternal();
        });
        try {
          await daemon.serialize(() => daemon.populateFromKernel());
        } catch (e) {
          log.error({ err: e }, 'notify master: resync with the kernel table failed');
        }
        daemon.bulkSend();
      } else if (state === 'backup') {
        daemon.scheduleKernelPurge();
        daemon.sync.requestResync();
        resync.request(clock.now());
      } else {
        daemon.scheduleKernelPurge();
      }
      log.info({ state, ms: Math.round(clock.now() - t0) }, `keepalived transition to ${state.toUpperCase()} handled`);
      readiness?.update();
    };
    const p = chain.then(run, run);
    chain = p.catch(() => undefined);
    return p;
  };

  // --- notify_fifo
  let fifo: NotifyFifoReader | null = null;
  if (x.notifyFifo) {
    fifo = new NotifyFifoReader({ path: x.notifyFifo, log, ...(opts.fifoCheckMs ? { checkIntervalMs: opts.fifoCheckMs } : {}) });
    let sawGroup = false;
    let acted: string | null = null;
    fifo.on('transition', (t: VrrpTransition) => {
      readiness?.noteTransition(t);
      // With a vrrp_sync_group keepalived reports the group and each instance: follow the group only.
      if (t.kind === 'GROUP') sawGroup = true;
      else if (sawGroup) return;
      const s = t.state === 'MASTER' ? 'master' : t.state === 'BACKUP' ? 'backup' : t.state === 'FAULT' ? 'fault' : null;
      if (!s) {
        log.info({ kind: t.kind, name: t.name, state: t.state }, 'keepalived transition ignored');
        return;
      }
      // Several instances reporting the same state run the sequence once.
      if (s === acted) return;
      acted = s;
      log.info({ kind: t.kind, name: t.name, state: t.state }, 'keepalived transition received');
      void transition(s).catch((e) => log.error({ err: e, state: s }, 'keepalived transition failed'));
    });
    fifo.on('open', () => log.info({ path: x.notifyFifo }, 'reading keepalived notify_fifo'));
    fifo.start();
  }

  // --- periodic: resync watch, STATUS line
  let lastStatus = '';
  const statusLine = (): string => {
    const s = source();
    const r = evaluateReadiness(s, { peerTimeoutMs });
    return `internal ${s.cache.internal.active}, external ${s.cache.external.active}, peer ${peerUp(s, peerTimeoutMs) ? 'up' : 'down'}, ` +
      (r.ready ? 'synced' : `not ready (${r.reasons.join(',')})`);
  };
  const tick = (): void => {
    try {
      const r = resync.tick(clock.now(), syncStats().lastRecvAt, daemon.external.ctSize);
      if (r === 'timeout') log.warn('resync with the peer did not settle in time; no longer waiting for it');
      if (notifier?.enabled) {
        const line = statusLine();
        if (line !== lastStatus) {
          lastStatus = line;
          notifier.status(line);
        }
      }
    } catch (e) {
      log.warn({ err: e }, 'ops tick failed');
    }
  };
  timers.push(clock.setInterval(tick, tickMs));

  readiness?.start();
  if (notifier) {
    lastStatus = statusLine();
    notifier.ready(lastStatus);
    notifier.startWatchdog();
  }

  let stopped = false;
  return {
    source, metrics, prometheus, http, readiness, notifier, fifo, httpAddress, transition,
    noteResyncRequested: () => resync.request(clock.now()),
    async stop() {
      if (stopped) return;
      stopped = true;
      notifier?.stopping('stopping');
      await stopAll();
      if (x.readyFile) readiness?.update();
    },
  };
}
