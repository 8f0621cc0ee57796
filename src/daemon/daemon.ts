// The sync daemon: wires the kernel side, the caches, the sync mode, the
// channel and the control socket together (conntrackd's run.c + sync-mode.c).
// Each part sits behind an interface (ports.ts, SyncMode, Channel), so this
// class is the only one that knows them all.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { CtsyncConfig } from '../config/index.js';
import { createChannel, type Channel } from '../channel/index.js';
import { MultiChannel } from '../channel/multi.js';
import { SecureChannel } from '../channel/secure.js';
import { ExternalCache } from '../cache/external.js';
import { InternalCache, ORIGIN, type Origin } from '../cache/internal.js';
import { OBJ_STATE, type CacheObject } from '../cache/types.js';
import { compileFilter, localAddresses, type CompiledFilter } from '../filter/filter.js';
import { EVENT, type Conntrack, type EventKind, type Expectation } from '../model/conntrack.js';
import { Ftfw } from '../sync/ftfw.js';
import { Notrack } from '../sync/notrack.js';
import { createWireCodec } from '../sync/wire-codec.js';
import type { SyncHost, SyncMode } from '../sync/types.js';
import { MSG } from '../wire/header.js';
import { ControlServer } from '../control/server.js';
import { sendRequest } from '../control/client.js';
import { CTL } from '../control/codes.js';
import { RateLimitedLog } from '../log/logger.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { CtsyncError } from '../errors.js';
import { commitExternal, toKernelEntry, type CommitReport } from './commit.js';
import { LockFile } from './lock.js';
import { NetlinkEvents, NetlinkTable } from './kernel.js';
import { filterFromConfig, linksFromConfig } from './options.js';
import type { ConntrackTable, KernelEventHandler, KernelEventSource } from './ports.js';
import { CommandHandler } from './commands.js';
import { FastPath, type FastPathSettings } from './fast-path.js';
import { settleFields } from '../util/shape.js';

export interface DaemonDeps {
  log: Logger;
  clock?: Clock;
  /** Fakes for unit tests; the real netlink and channel otherwise. */
  table?: ConntrackTable;
  events?: KernelEventSource;
  channel?: Channel;
  /** The sync engine's alive/ACK timer period (default 1 s, as conntrackd's): the warm-up's scratch pair makes it fire. */
  aliveIntervalMs?: number;
}

/** Counters of the kernel side for -s runtime ("netlink stats"). */
export interface KernelCounters {
  eventsReceived: number;
  eventsFiltered: number;
  overruns: number;
  flushKernelTable: number;
  resyncWithKernel: number;
  reconcileFailures: number;
  injectFailed: number;
}

/** Smallest event-socket receive buffer (see the constructor). */
const EVENT_BUFFER_FLOOR = 64 * 1024 * 1024;

/**
 * Peer entries from which a commit mutes NEW events: below it, the events cost less than the
 * table dump that must follow.
 */
const COMMIT_MUTE_MIN = 1024;

/** Minimum time between two dump-and-reconcile runs caused by overruns. */
const OVERRUN_RECONCILE_MIN_MS = 1000;

const PEER_KIND: Record<number, EventKind> = {
  [MSG.CT_NEW]: EVENT.NEW,
  [MSG.CT_UPD]: EVENT.UPDATE,
  [MSG.CT_DEL]: EVENT.DESTROY,
  [MSG.EXP_NEW]: EVENT.NEW,
  [MSG.EXP_UPD]: EVENT.UPDATE,
  [MSG.EXP_DEL]: EVENT.DESTROY,
};

/**
 * Events for the operations layer: 'role' says which side keepalived's notify
 * commands (or the FIFO) put this node on; 'resync-requested' marks a -n.
 */
export interface DaemonEvents {
  exit: [code: number];
  commit: [report: CommitReport];
  role: [role: 'master' | 'backup'];
  'resync-requested': [];
}

export class Daemon extends EventEmitter<DaemonEvents> implements SyncHost, KernelEventHandler {
  /** Replaced on SIGHUP (filters, keys); the data path keeps what it was built with. */
  config: CtsyncConfig;
  readonly log: Logger;
  readonly clock: Clock;
  readonly startedAt: number;
  readonly internal: InternalCache<Conntrack>;
  readonly internalExp: InternalCache<Expectation> | null;
  readonly external: ExternalCache;
  /** Created in start(): the engine sizes its datagrams from the opened link's MTU. */
  sync!: SyncMode;
  readonly channel: Channel;
  readonly table: ConntrackTable;
  readonly events: KernelEventSource;
  readonly kernel: KernelCounters = {
    eventsReceived: 0, eventsFiltered: 0, overruns: 0, flushKernelTable: 0, resyncWithKernel: 0,
    reconcileFailures: 0, injectFailed: 0,
  };
  filter: CompiledFilter;
  /** The initial kernel dump is in the internal cache (readiness). */
  initialDumpDone = false;
  lastCommit: CommitReport | null = null;

  private readonly rl: RateLimitedLog;
  private readonly lock: LockFile;
  private readonly control: ControlServer;
  private readonly commands: CommandHandler;
  private readonly disableExternal: boolean;
  private readonly bypassInternal: boolean;
  private reconcileTimer: TimerHandle | null = null;
  private lastReconcileAt = -Infinity;
  private reconciling: Promise<void> | null = null;
  private purgeTimer: TimerHandle | null = null;
  private periodicTimer: TimerHandle | null = null;
  /** Serialises commit, flush and resync commands: one at a time, in arrival order. */
  private opChain: Promise<unknown> = Promise.resolve();
  private injectQueue: { kind: EventKind; ct: Conntrack }[] = [];
  private injectScheduled = false;
  private stopped = false;
  private readonly aliveIntervalMs: number | undefined;
  /** The request socket's netlink port id: kernel events that name it are our own commits, flushes, injections. */
  private readonly ownPortId: number;
  /** The addon's lone-event fast path, while on (Ctsync { FastPath }, see fast-path.ts). */
  private fast: FastPath | null = null;

  constructor(config: CtsyncConfig, deps: DaemonDeps) {
    super();
    const sync = config.sync;
    if (!sync) throw new CtsyncError('CTSYNC_ERR_DAEMON', `${config.file}: no Sync section (Stats mode is not supported by ctsync)`);
    if (sync.mode === 'alarm') throw new CtsyncError('CTSYNC_ERR_DAEMON', `${config.file}: Mode ALARM is not supported by ctsync; use FTFW or NOTRACK`);
    if (!config.general.unix.path) throw new CtsyncError('CTSYNC_ERR_DAEMON', `${config.file}: General { UNIX { Path } } is required`);
    this.config = config;
    this.aliveIntervalMs = deps.aliveIntervalMs;
    this.log = deps.log;
    this.clock = deps.clock ?? systemClock;
    this.startedAt = this.clock.now();
    this.rl = new RateLimitedLog(this.log);
    this.disableExternal = sync.disableExternalCache;
    // conntrackd's NOTRACK-only bypass: events go to the peer without being mirrored, and a bulk
    // send dumps the kernel table. FTFW needs the cache (resends send an object's newest state).
    this.bypassInternal = sync.disableInternalCache && sync.mode === 'notrack';
    if (sync.disableInternalCache && !this.bypassInternal) {
      this.log.warn({ file: config.file }, 'DisableInternalCache applies to Mode NOTRACK only: the internal cache stays on');
    }
    this.filter = this.buildFilter();

    const onNoSpace = (cache: string, limit: number, total: number): void => {
      this.rl.warn(`nospace-${cache}`, { cache, limit, noSpaceTotal: total }, `${cache} cache full (HashLimit ${limit}): entry not stored`);
    };
    // Both internal caches report changes to the sync layer and hand it the objects they drop.
    const internalOpts = {
      clock: this.clock,
      onChange: (obj: CacheObject) => this.sync?.enqueue(obj),
      onDrop: (obj: CacheObject) => this.sync?.forget?.(obj),
      hashSize: config.general.hashSize,
      limit: config.general.hashLimit,
      onNoSpace,
    };
    this.internal = InternalCache.forConntracks(internalOpts);
    this.internalExp = sync.expectationSync.enabled ? InternalCache.forExpectations(internalOpts) : null;
    this.external = new ExternalCache({ clock: this.clock, hashSize: config.general.hashSize, limit: config.general.hashLimit, onNoSpace });

    const link = deps.channel ?? createChannel(linksFromConfig(config), { log: this.log, clock: this.clock });
    // Ctsync { KeyFile }: every datagram sealed (AES-256-GCM); off by default so a conntrackd peer interoperates.
    this.channel = config.ctsync.keyFile
      ? new SecureChannel(link, { keyFile: config.ctsync.keyFile, log: this.log, clock: this.clock })
      : link;
    this.table = deps.table ?? new NetlinkTable();
    // Read per event: a number of the daemon's own, not a getter of whichever table class it has
    // (the warm-up's scratch pair has a fake one: its events compiled the read for that class).
    this.ownPortId = this.table.portId;
    // A JS reader pauses (GC, a large commit or dump) where conntrackd's C loop does not, so the
    // event socket starts with at least EVENT_BUFFER_FLOOR of headroom: kernel memory is only used
    // while a backlog exists. NetlinkBufferSize can raise it, not lower it below the floor.
    const bufferSize = Math.max(config.general.netlinkBufferSize ?? 0, EVENT_BUFFER_FLOOR);
    this.events = deps.events ?? new NetlinkEvents({
      bufferSize,
      maxBufferSize: Math.max(config.general.netlinkBufferSizeMaxGrowth ?? 0, bufferSize),
      expectations: sync.expectationSync.enabled,
      reliable: config.general.netlinkEventsReliable,
    });
    // Set in start(), after the start-up warm-up compiled the event path against a null: see settleFields.
    settleFields(this, { mutable: ['fast'] });
    this.lock = new LockFile(config.general.lockFile);
    this.commands = new CommandHandler(this);
    this.control = new ControlServer({
      path: config.general.unix.path,
      handler: (code, reply, ctx) => this.commands.handle(code, reply, ctx),
      log: this.log,
    });
  }

  private createSync(): SyncMode {
    const sync = this.config.sync!;
    const codec = createWireCodec({ tcpWindowTracking: sync.tcpWindowTracking, omitTimeout: sync.commitTimeout !== undefined });
    return sync.mode === 'notrack'
      ? new Notrack({ host: this, clock: this.clock, codec, startupResync: sync.startupResync, log: this.log, aliveIntervalMs: this.aliveIntervalMs })
      : new Ftfw({
        host: this, clock: this.clock, codec, startupResync: sync.startupResync, log: this.log, aliveIntervalMs: this.aliveIntervalMs,
        resendQueueSize: sync.resendQueueSize, ackWindowSize: sync.ackWindowSize,
        sendWindow: this.config.ctsync.sendWindow,
      });
  }

  get socketPath(): string {
    return this.config.general.unix.path!;
  }

  /** Lock, control socket, kernel events, initial dump, sync link: in that order, so nothing is missed. */
  async start(): Promise<void> {
    const { recoveredStale } = await this.lock.acquire(() => this.daemonAnswers());
    if (recoveredStale) this.log.warn({ lockFile: this.lock.path }, 'stale lock file from a previous daemon recovered');
    try {
      // listen() recovers a stale socket file, and refuses one a live daemon answers on.
      await this.control.listen();
      this.channel.onMessage((datagram, from) => this.sync.receive(datagram, from));
      await this.channel.open();
      // The engine must run before the first datagram is delivered (a later turn of the event loop).
      this.sync = this.createSync();
      this.sync.start();
      // Subscribe before dumping: an event that races the dump is applied after it, as newer.
      this.events.start(this);
      await this.populateFromKernel();
      this.initialDumpDone = true;
      this.fast = this.openFastPath();
      this.updateFastGate();
      // Events can be lost without an overrun (a listener-less moment, NetlinkEventsReliable off):
      // a periodic dump-and-reconcile bounds how long the internal cache can stay wrong.
      const every = this.config.ctsync.reconcileInterval;
      if (every > 0) this.periodicTimer = this.clock.setInterval(() => void this.reconcile(), every * 1000);
      this.log.info({
        mode: this.sync.name, entries: this.internal.activeCount, link: this.channel.ifname, fastPath: this.fast?.native === true,
        // Which AES-256-GCM seals the link: 'native' (the addon) or 'node' (Node's crypto, slower).
        ...(this.channel instanceof SecureChannel ? { sealed: this.channel.aeadName } : {}),
      }, 'ctsync started');
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.reconcileTimer?.cancel();
    this.purgeTimer?.cancel();
    this.periodicTimer?.cancel();
    this.fast?.close();
    this.fast = null;
    try { this.sync?.stop(); } catch { /* best effort on the way down */ }
    try { await this.channel.close(); } catch { /* idem */ }
    try { this.events.stop(); } catch { /* idem */ }
    try { this.table.close(); } catch { /* idem */ }
    try { await this.control.close(); } catch { /* idem */ }
    this.lock.release();
    this.log.info('---- shutdown received ----');
  }

  /** Asks the daemon to exit (KILL command, signals); main() turns this into process exit. */
  requestExit(code = 0): void {
    void this.stop().then(() => this.emit('exit', code));
  }

  /** Runs `fn` after every earlier commit/flush/resync has finished. */
  serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.opChain.then(fn, fn);
    this.opChain = run.catch(() => undefined);
    return run;
  }

  private async daemonAnswers(): Promise<boolean> {
    try {
      await sendRequest(this.socketPath, CTL.STATS, { timeoutMs: 1000 });
      return true;
    } catch {
      return false;
    }
  }

  private buildFilter(): CompiledFilter {
    const own = this.config.ctsync.ignoreOwnAddresses ? localAddresses() : undefined;
    return compileFilter(filterFromConfig(this.config.general.filter), own ? { ownAddresses: own } : {});
  }

  /** SIGHUP: filters are rebuilt from a re-read config; caches are kept. */
  reloadFilter(config: CtsyncConfig): void {
    this.config = config;
    this.filter = this.buildFilter();
    if (this.fast !== null && !config.ctsync.fastPath) {
      this.fast.close();
      this.fast = null;
    }
    try {
      this.fast?.configure(this.fastSettings());
    } catch (e) {
      // The addon keeps the previous filter: turn it off rather than send what the new one drops.
      this.log.warn({ err: e }, 'fast path unavailable: every event takes the JS path');
      this.fast?.close();
      this.fast = null;
    }
  }

  /** The fast path's shared state block (warmup.ts plays the addon with it), or null. */
  get fastPathState(): Int32Array | null {
    return this.fast?.state ?? null;
  }

  /** FTFW with the internal cache (the addon sends when the link and the addon let it: fast-path.ts); null otherwise. */
  private openFastPath(): FastPath | null {
    if (!this.config.ctsync.fastPath || this.config.sync!.mode !== 'ftfw' || this.bypassInternal) return null;
    try {
      return FastPath.open(this.events, this.sync, this.channel, this.fastSettings());
    } catch (e) {
      this.log.warn({ err: e }, 'fast path unavailable: every event takes the JS path');
      return null;
    }
  }

  private fastSettings(): Omit<FastPathSettings, 'target'> {
    const sync = this.config.sync!;
    return { ownPortId: this.ownPortId, filter: this.filter, tcpWindowTracking: sync.tcpWindowTracking, omitTimeout: sync.commitTimeout !== undefined };
  }

  /**
   * The daemon's half of the fast path's gate: open while the internal cache has room for the
   * event's entry (a full cache stores nothing, and nothing would be sent). Written at the end of
   * every kernel read and cache refill. Datagrams of ours waiting in Node's send queue (the
   * socket's buffer was full) are not looked at: the addon's send then fails alike and leaves the
   * event to JS, and were it to pass, the peer would NACK the ones it overtook.
   */
  private updateFastGate(): void {
    const f = this.fast;
    if (f !== null) f.gate(this.internal.size < this.internal.limit);
  }

  // ---- kernel side -------------------------------------------------------

  /** Initial dump and -R: the kernel table into the internal cache, nothing sent. */
  async populateFromKernel(): Promise<number> {
    if (this.bypassInternal) return 0;
    const entries = await this.table.dump();
    let n = 0;
    for (const ct of entries) {
      if (!this.filter.accepts(ct)) continue;
      this.internal.populate(ct);
      n++;
    }
    if (this.internalExp) {
      for (const exp of await this.table.dumpExpectations()) this.internalExp.populate(exp);
    }
    this.kernel.resyncWithKernel++;
    this.updateFastGate();
    return n;
  }

  onConntrack(kind: EventKind, ct: Conntrack, originPortId: number): void {
    this.kernel.eventsReceived++;
    if (!this.filter.accepts(ct)) {
      this.kernel.eventsFiltered++;
      return;
    }
    const origin = this.originOf(kind, originPortId);
    if (origin === ORIGIN.INJECT) return;
    if (this.bypassInternal) {
      if (origin === ORIGIN.NOT_ME) this.sync.enqueue(this.transient(kind, ct));
      return;
    }
    this.internal.event(kind, ct, origin);
  }

  /** DisableInternalCache: a one-shot object the sync layer sends and drops. */
  private transient(kind: EventKind, ct: Conntrack): CacheObject<Conntrack> {
    const now = this.clock.now();
    const state = kind === EVENT.NEW ? OBJ_STATE.NEW : kind === EVENT.DESTROY ? OBJ_STATE.DEAD : OBJ_STATE.ALIVE;
    return { kind: 'ct', value: ct, state, firstSeen: now, lastUpdate: now, sync: null, pins: 0 };
  }

  onExpectation(kind: EventKind, exp: Expectation, originPortId: number): void {
    this.kernel.eventsReceived++;
    if (!this.internalExp) return;
    const origin = this.originOf(kind, originPortId);
    if (origin === ORIGIN.INJECT) return;
    this.internalExp.event(kind, exp, origin);
  }

  /**
   * Events caused by our own request socket: commits are mirrored but not
   * sent back, our flushes drop entries silently, and direct injections of
   * peer entries (DisableExternalCache) are not ours to replicate at all.
   */
  private originOf(kind: EventKind, portid: number): Origin {
    if (portid === 0 || portid !== this.ownPortId) return ORIGIN.NOT_ME;
    if (this.disableExternal) return ORIGIN.INJECT;
    return kind === EVENT.DESTROY ? ORIGIN.FLUSH : ORIGIN.COMMIT;
  }

  /** The events of one kernel read go out in one transmit round, run as the read ends (SyncMode.beginBatch). */
  onBatchStart(): void {
    this.sync?.beginBatch?.();
  }

  onBatchEnd(): void {
    this.sync?.endBatch?.();
    this.updateFastGate();
  }

  onFastSent(seq: number): void {
    this.fast?.sent(seq);
  }

  /** Events were lost: dump the table and reconcile, never more than once a second. */
  onOverrun(): void {
    this.kernel.overruns++;
    this.rl.warn('overrun', { overruns: this.kernel.overruns }, 'netlink event overrun: events lost, resyncing with the kernel table');
    if (this.reconcileTimer) return;
    const wait = Math.max(0, this.lastReconcileAt + OVERRUN_RECONCILE_MIN_MS - this.clock.now());
    this.reconcileTimer = this.clock.setTimeout(() => {
      this.reconcileTimer = null;
      void this.reconcile();
    }, wait);
  }

  /**
   * Dump-and-reconcile: the internal cache becomes the kernel table; differences go to the peer.
   * `afterCommit`: the NEW events of a commit were muted (see commit()); dumped entries the peer
   * gave us are mirrored without a report, as their commit-origin NEW would have been, and a run
   * already under way is followed by a fresh one (its dump may predate the commit).
   */
  reconcile(opts: { afterCommit?: boolean } = {}): Promise<void> {
    if (this.bypassInternal) return Promise.resolve(); // nothing mirrored, nothing to repair
    if (this.reconciling) return opts.afterCommit ? this.reconciling.then(() => this.reconcile(opts)) : this.reconciling;
    this.reconciling = (async () => {
      this.lastReconcileAt = this.clock.now();
      try {
        // Events keep flowing while the dump is read: objects they touch from here on are newer than it.
        const since = this.clock.now();
        const entries = (await this.table.dump()).filter((ct) => this.filter.accepts(ct));
        if (opts.afterCommit) this.mirrorCommitted(entries, since);
        const r = this.internal.reconcile(entries, { since });
        this.kernel.resyncWithKernel++;
        this.updateFastGate();
        if (opts.afterCommit) this.log.debug({ ...r }, 'internal cache resynced with the kernel table after a commit');
        else this.log.info({ ...r }, 'internal cache reconciled with the kernel table');
      } catch (e) {
        this.kernel.reconcileFailures++;
        this.rl.error('reconcile', { err: e }, 'resync with the kernel table failed');
      } finally {
        this.reconciling = null;
      }
    })();
    return this.reconciling;
  }

  /**
   * The entries a muted commit wrote, stored silently (populate stamps them at or after `since`,
   * so the reconcile that follows keeps them and reports nothing). An object an event touched
   * after the dump started knows more than the dump and is left alone.
   */
  private mirrorCommitted(entries: readonly Conntrack[], since: number): void {
    for (const ct of entries) {
      if (!this.external.hasCt(ct)) continue;
      const cur = this.internal.lookup(ct);
      if (cur !== null && this.internal.touchedSince(cur, since)) continue;
      this.internal.populate(ct);
    }
  }

  /** -F / -t: remove every kernel entry the filter accepts (ignored ones stay, as in conntrackd). */
  async flushKernel(): Promise<number> {
    const victims = (await this.table.dump()).filter((ct) => this.filter.accepts(ct));
    const r = await this.table.remove(victims);
    this.kernel.flushKernelTable++;
    return r.ok;
  }

  /** -t: a kernel flush and an internal-cache flush after PurgeTimeout seconds. */
  scheduleKernelPurge(): void {
    if (this.purgeTimer) return;
    const secs = this.config.sync!.purgeTimeout;
    this.log.info({ seconds: secs }, `flushing conntrack table in ${secs} secs`);
    this.purgeTimer = this.clock.setTimeout(() => {
      this.purgeTimer = null;
      void this.serialize(async () => {
        this.log.info('flushing kernel conntrack table (scheduled)');
        await this.flushKernel();
        this.flushInternal();
      }).catch((e) => this.rl.error('purge', { err: e }, 'scheduled kernel flush failed'));
    }, secs * 1000);
  }

  cancelKernelPurge(): void {
    this.purgeTimer?.cancel();
    this.purgeTimer = null;
  }

  // ---- caches ------------------------------------------------------------

  /** The caches' onDrop hook takes flushed objects out of the sync queues. */
  flushInternal(): number {
    return this.internal.flush() + (this.internalExp?.flush() ?? 0);
  }

  flushExternal(): number {
    return this.external.flush();
  }

  /** -B and the peer's RESYNC: every internal object goes to the peer again. */
  bulkSend(): number {
    if (this.bypassInternal) {
      // No cache to walk: the kernel table is the state (conntrackd does the same).
      void this.table.dump().then((entries) => {
        for (const ct of entries) if (this.filter.accepts(ct)) this.sync.enqueue(this.transient(EVENT.NEW, ct));
      }, (e) => this.rl.error('bulk', { err: e }, 'bulk send: kernel dump failed'));
      return 0;
    }
    this.sync.enqueueAll(this.everything());
    return this.internal.size + (this.internalExp?.size ?? 0);
  }

  /** What a bulk send walks: conntracks, then expectations (their masters first, as conntrackd). */
  private *everything(): IterableIterator<CacheObject> {
    yield* this.internal.all();
    if (this.internalExp) yield* this.internalExp.all();
  }

  /**
   * -c: the external cache into the kernel. A large commit runs with the NEW event group muted:
   * otherwise the kernel builds, and this thread decodes, one NEW event per committed entry while
   * the commit is still running (most of its cost). The internal cache is then brought in line by
   * a dump, queued right behind this command (before a following -f, -R or -B).
   */
  async commit(): Promise<CommitReport> {
    const sync = this.config.sync!;
    const muted = this.muteNewForCommit();
    let report: CommitReport;
    try {
      report = await commitExternal(this.external, this.table, {
        ...(sync.commitTimeout !== undefined ? { commitTimeout: sync.commitTimeout } : {}),
        tcpWindowTracking: sync.tcpWindowTracking,
        now: this.clock.now(),
      });
    } finally {
      if (muted) {
        this.unmuteNewAfterCommit();
        // Also after a failed commit: whatever reached the kernel is not mirrored yet. After a turn
        // of the event loop, so the reply to -c leaves before the dump's first chunks are decoded.
        void this.serialize(() => new Promise<void>((res) => setImmediate(res)).then(() => this.reconcile({ afterCommit: true })));
      }
    }
    if (this.internalExp) {
      const exps = this.external.expCommitOrder().map((o) => o.value);
      if (exps.length > 0) {
        const r = await this.table.createExpectations(exps);
        report.committed += r.ok;
        report.failed += r.failed.length;
      }
    }
    this.lastCommit = report;
    this.emit('commit', report);
    this.log.info({ committed: report.committed, failed: report.failed, seconds: report.seconds, errors: report.errors },
      `Committed ${report.committed} new entries`);
    return report;
  }

  /** Mutes NEW events for a commit when that pays: a big one, and an internal cache a dump can repair. */
  private muteNewForCommit(): boolean {
    if (this.bypassInternal || !this.events.muteNew || this.external.ctSize < COMMIT_MUTE_MIN) return false;
    try {
      const muted = this.events.muteNew();
      if (muted) this.log.debug({ entries: this.external.ctSize }, 'commit: conntrack NEW events muted until it ends');
      return muted;
    } catch (e) {
      this.log.debug({ err: e }, 'commit: cannot mute NEW events, committing with them');
      return false;
    }
  }

  private unmuteNewAfterCommit(): void {
    try {
      this.events.unmuteNew!();
      this.log.debug('commit: conntrack NEW events unmuted');
    } catch (e) {
      // Not transient (a membership setsockopt), so no retry. Without the NEW group no new flow
      // would reach the peer again: say so loudly (the periodic reconcile still mirrors the table).
      this.rl.error('unmute', { err: e }, 'cannot rejoin the conntrack NEW event group: new flows are not replicated');
    }
  }

  // ---- SyncHost ----------------------------------------------------------

  get maxDatagram(): number {
    return this.channel.maxDatagram;
  }

  /** Every Channel copies what it keeps (Channel.send), so the engine lends its datagram buffer. */
  readonly sendIsDoneOnReturn = true;

  send(datagram: Buffer): void {
    this.channel.send(datagram);
  }

  onPeerData(type: number, value: Conntrack | Expectation): void {
    const kind = PEER_KIND[type];
    if (kind === undefined) return;
    if (type <= MSG.CT_DEL) {
      if (this.disableExternal) this.inject(kind, value as Conntrack);
      else this.external.applyCt(kind, value as Conntrack);
    } else if (this.internalExp) {
      this.external.applyExp(kind, value as Expectation);
    }
  }

  /** The receive path's fast way: conntrack messages straight into the external cache, no Conntrack built. */
  onPeerMessage(type: number, buf: Buffer, off: number, len: number, at: number): boolean {
    if (type > MSG.CT_DEL || this.disableExternal) return false;
    const kind = PEER_KIND[type];
    if (kind === undefined) return false;
    this.external.applyCtMessage(kind, buf, off, len, at);
    return true;
  }

  onResyncRequest(): void {
    this.log.info('resync requested by other node');
    this.bulkSend();
  }

  release(obj: CacheObject): void {
    if (obj.kind === 'exp') this.internalExp?.release(obj as CacheObject<Expectation>);
    else this.internal.release(obj as CacheObject<Conntrack>);
  }

  /** DisableExternalCache: peer entries go straight to the kernel, batched per event-loop turn. */
  private inject(kind: EventKind, ct: Conntrack): void {
    this.injectQueue.push({ kind, ct });
    if (this.injectScheduled) return;
    this.injectScheduled = true;
    setImmediate(() => void this.flushInjectQueue());
  }

  private async flushInjectQueue(): Promise<void> {
    this.injectScheduled = false;
    const q = this.injectQueue;
    this.injectQueue = [];
    const now = this.clock.now();
    const creates: Conntrack[] = [];
    const updates: Conntrack[] = [];
    const deletes: Conntrack[] = [];
    for (const { kind, ct } of q) {
      if (kind === EVENT.DESTROY) deletes.push(ct);
      else {
        const entry = toKernelEntry({ kind: 'ct', value: ct, state: 0, firstSeen: now, lastUpdate: now, sync: null, pins: 0 }, {
          tcpWindowTracking: this.config.sync!.tcpWindowTracking,
          now,
          ...(this.config.sync!.commitTimeout !== undefined ? { commitTimeout: this.config.sync!.commitTimeout } : {}),
        });
        (kind === EVENT.NEW ? creates : updates).push(entry);
      }
    }
    try {
      const results = await Promise.all([
        creates.length ? this.table.createOrReplace(creates) : null,
        updates.length ? this.table.updateOrCreate(updates) : null,
        deletes.length ? this.table.remove(deletes) : null,
      ]);
      for (const r of results) if (r) this.kernel.injectFailed += r.failed.length;
    } catch (e) {
      this.kernel.injectFailed += q.length;
      this.rl.error('inject', { err: e }, 'direct injection of peer entries failed');
    }
  }

  /** Links for -s link: one per configured link (the sealing layer's counters go with the active one). */
  linkReports(): { kind: Channel['kind']; ifname: string; status: ReturnType<Channel['status']>; active: boolean; stats: ReturnType<Channel['stats']> }[] {
    const sec = this.channel instanceof SecureChannel ? this.channel : null;
    const ch = sec ? sec.inner : this.channel;
    if (ch instanceof MultiChannel) {
      return ch.linkStats().map((l) => ({
        kind: l.kind, ifname: l.ifname, status: l.status, active: l.role === 'ACTIVE',
        stats: l.role === 'ACTIVE' && sec ? { ...l.stats, ...sec.secureStats() } : l.stats,
      }));
    }
    return [{ kind: this.channel.kind, ifname: this.channel.ifname, status: this.channel.status(), active: true, stats: this.channel.stats() }];
  }
}
