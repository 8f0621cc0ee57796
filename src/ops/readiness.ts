// Readiness, computed from the same snapshot the metrics use, and its
// keepalived side: a track_file whose value lowers this node's VRRP priority
// while its copy of the peer's state cannot be trusted, so a freshly booted
// node does not preempt the master before its external cache is synced.
//
// keepalived track_file semantics (keepalived.conf(5), checked against 2.2.7):
// the file holds an integer; with a non-zero weight it is multiplied by the
// weight and added to the instance priority (effective priority clamped to
// [1,254]); if the product is below -253 the instance goes to FAULT; with
// weight 0 any non-zero value means FAULT. keepalived watches the file with
// inotify, so we replace it atomically (write + rename) and only on change.
//
// Our default not-ready value is -253 (with weight 1): the lowest priority
// that is NOT a fault. An unsynced node loses every election against a synced
// peer, yet still becomes master when it is alone (the peer is dead, so there
// is nothing to wait for). Write -254 (or use weight 0) for a hard FAULT.
//
//   track_file ctsync_synced {
//       file "/run/ctsync/keepalived.track"
//       weight 1
//       init_file -253 overwrite    # not ready until ctsync says so
//   }
//   vrrp_instance VI_1 {
//       ...
//       track_file {
//           ctsync_synced
//       }
//       notify_fifo /run/keepalived/notify.fifo   # read by NotifyFifoReader
//   }
//
// In a vrrp_sync_group keepalived requires weight 0 on a tracked file unless
// sync_group_tracking_weight is set; weight 0 turns not-ready into FAULT.
import { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { closeSync, constants as fsc, fstatSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import type { MetricsSnapshot, MetricsSource } from '../metrics/types.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

export interface ReadinessOptions {
  /** The peer counts as present while its last message is at most this old. ALIVE goes out every second when idle. */
  peerTimeoutMs?: number;
  /** Optional: not ready while the oldest unacknowledged message is older than this. */
  maxUnackedAgeMs?: number;
}

export const DEFAULT_PEER_TIMEOUT_MS = 5000;

export interface Readiness {
  ready: boolean;
  /** Machine-readable reasons, empty when ready. */
  reasons: string[];
}

export function peerUp(s: MetricsSnapshot, peerTimeoutMs = DEFAULT_PEER_TIMEOUT_MS): boolean {
  const age = s.sync.lastRecvAgeMs;
  return age !== null && age <= peerTimeoutMs;
}

/** /readyz and the track file: initial dump done AND in sync with a live peer AND no resync outstanding. */
export function evaluateReadiness(s: MetricsSnapshot, opts: ReadinessOptions = {}): Readiness {
  const reasons: string[] = [];
  if (!s.running) reasons.push('not-running');
  if (!s.initialDumpDone) reasons.push('initial-dump-pending');
  if (s.sync.helloDone === false) reasons.push('hello-pending');
  if (!peerUp(s, opts.peerTimeoutMs)) reasons.push(s.sync.lastRecvAgeMs === null ? 'peer-never-seen' : 'peer-silent');
  if (s.sync.resyncPending) reasons.push('resync-pending');
  if (opts.maxUnackedAgeMs !== undefined && s.sync.oldestUnackedAgeMs > opts.maxUnackedAgeMs) reasons.push('unacked-too-old');
  return { ready: reasons.length === 0, reasons };
}

// ---------------------------------------------------------------------------

export interface ReadinessTrackerOptions extends ReadinessOptions {
  source: MetricsSource;
  /** keepalived track_file path; undefined = compute readiness only. */
  trackFile?: string;
  /** Written when ready. */
  readyValue?: number;
  /** Written when not ready (see the header comment for the choice of -253). */
  notReadyValue?: number;
  /**
   * While keepalived reports this node MASTER (via noteTransition), write the
   * ready value whatever the sync state: the master's kernel table is the
   * authoritative copy, and demoting it when the peer vanishes would let a
   * returning, unsynced peer win the tie. Default true.
   */
  masterIsReady?: boolean;
  intervalMs?: number;
  clock?: Clock;
  log?: Logger;
}

export class ReadinessTracker {
  private timer: TimerHandle | null = null;
  private written: string | null = null;
  private last: Readiness = { ready: false, reasons: ['not-evaluated'] };
  /** Instance/group name → is MASTER. */
  private readonly master = new Map<string, boolean>();
  private readonly log: Logger;

  constructor(private readonly opts: ReadinessTrackerOptions) {
    this.log = opts.log ?? silentLogger;
  }

  start(): void {
    if (this.timer) return;
    this.update();
    this.timer = (this.opts.clock ?? systemClock).setInterval(() => this.update(), this.opts.intervalMs ?? 1000);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** Feed keepalived transitions (from NotifyFifoReader) so a MASTER node stays ready. */
  noteTransition(t: VrrpTransition): void {
    this.master.set(`${t.kind}:${t.name}`, t.state === 'MASTER');
    this.update();
  }

  isMaster(): boolean {
    for (const m of this.master.values()) if (m) return true;
    return false;
  }

  current(): Readiness {
    return this.last;
  }

  /** Re-evaluates and rewrites the track file if its value changes. Returns the readiness. */
  update(): Readiness {
    let r: Readiness;
    try {
      r = evaluateReadiness(this.opts.source(), this.opts);
    } catch (e) {
      r = { ready: false, reasons: ['snapshot-failed'] };
      this.log.warn({ err: e }, 'readiness: snapshot failed');
    }
    this.last = r;
    // A master stays ready while it runs (it holds the only copy of the state); a daemon on
    // its way down is never ready, master or not.
    const running = !r.reasons.includes('not-running') && !r.reasons.includes('snapshot-failed');
    const effective = r.ready || ((this.opts.masterIsReady ?? true) && this.isMaster() && running);
    if (this.opts.trackFile) {
      const value = String(effective ? (this.opts.readyValue ?? 0) : (this.opts.notReadyValue ?? -253));
      // Also rewrite when the file no longer holds our value: a restarted keepalived's
      // `init_file ... overwrite` resets it, and would otherwise stay in force for good.
      if (value !== this.written || !fileHolds(this.opts.trackFile, `${value}\n`)) {
        try {
          writeAtomic(this.opts.trackFile, `${value}\n`);
          this.written = value;
          this.log.info({ value, reasons: r.reasons }, 'keepalived track file updated');
        } catch (e) {
          // Retried at the next tick; keepalived keeps the previous value meanwhile.
          this.log.warn({ err: e, file: this.opts.trackFile }, 'cannot write keepalived track file');
        }
      }
    }
    return r;
  }
}

function fileHolds(path: string, data: string): boolean {
  try {
    return readFileSync(path, 'utf8') === data;
  } catch {
    return false;
  }
}

/** Write + rename so keepalived (inotify) never reads a half-written number. */
function writeAtomic(path: string, data: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, data, { mode: 0o644 });
  renameSync(tmp, path);
}

// ---------------------------------------------------------------------------
// keepalived notify_fifo: one line per transition, e.g.
//   INSTANCE "VI_1" MASTER 100
//   GROUP "G1" BACKUP 0
// (keepalived also writes lines for checkers, e.g. VS/RS, which we ignore).

export type VrrpState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP' | 'DELETED' | 'MASTER_RX_LOWER_PRI' | string;

export interface VrrpTransition {
  kind: 'INSTANCE' | 'GROUP';
  name: string;
  state: VrrpState;
  priority: number | null;
}

const LINE_RE = /^(INSTANCE|GROUP) "((?:[^"\\]|\\.)*)" (\S+)(?: (-?\d+))?\s*$/;

/** Parses one notify_fifo line; null for lines that are not VRRP transitions. */
export function parseNotifyLine(line: string): VrrpTransition | null {
  const m = LINE_RE.exec(line);
  if (!m) return null;
  return { kind: m[1] as 'INSTANCE' | 'GROUP', name: m[2]!, state: m[3]!, priority: m[4] !== undefined ? Number(m[4]) : null };
}

/** Splits a byte stream into lines, keeping a partial tail across chunks. Bounded: an endless line is dropped. */
export class LineSplitter {
  private tail = '';
  constructor(private readonly maxLine = 4096) {}

  push(chunk: string): string[] {
    const parts = (this.tail + chunk).split('\n');
    this.tail = parts.pop()!;
    if (this.tail.length > this.maxLine) this.tail = '';
    return parts.map((l) => l.replace(/\r$/, '')).filter((l) => l.length > 0 && l.length <= this.maxLine);
  }

  reset(): void {
    this.tail = '';
  }
}

export interface NotifyFifoReaderOptions {
  path: string;
  /** How often to check that the FIFO still exists and is the one we hold open (keepalived recreates it). */
  checkIntervalMs?: number;
  log?: Logger;
}

export interface NotifyFifoReaderEvents {
  transition: [VrrpTransition];
  /** A line that is not an INSTANCE/GROUP transition (checker lines, garbage). */
  other: [string];
  /** The FIFO was (re)opened. */
  open: [];
}

/**
 * Reads keepalived's notify_fifo. The FIFO is opened read-write and
 * non-blocking: opening read-only would block until keepalived opens it, and
 * would then see EOF each time keepalived closes it (restart, reload). Holding
 * our own write end means the pipe never reports EOF; instead a timer checks
 * that the path still names the FIFO we hold, and reopens when keepalived
 * has removed and recreated it.
 */
export class NotifyFifoReader extends EventEmitter<NotifyFifoReaderEvents> {
  private sock: Socket | null = null;
  private ino: { dev: number; ino: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly split = new LineSplitter();
  private readonly log: Logger;
  private stopped = true;

  constructor(private readonly opts: NotifyFifoReaderOptions) {
    super();
    this.log = opts.log ?? silentLogger;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.tryOpen();
    this.timer = setInterval(() => this.check(), this.opts.checkIntervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.closeSock();
  }

  private check(): void {
    if (this.stopped) return;
    let st;
    try {
      st = statSync(this.opts.path);
    } catch {
      st = null;
    }
    if (!this.sock) {
      if (st?.isFIFO()) this.tryOpen();
      return;
    }
    if (!st || !st.isFIFO() || st.ino !== this.ino?.ino || st.dev !== this.ino?.dev) {
      this.log.info({ path: this.opts.path }, 'notify_fifo replaced; reopening');
      this.closeSock();
      if (st?.isFIFO()) this.tryOpen();
    }
  }

  private tryOpen(): void {
    let fd: number;
    try {
      fd = openSync(this.opts.path, fsc.O_RDWR | fsc.O_NONBLOCK);
    } catch (e) {
      // keepalived creates the FIFO when it starts; check() retries.
      this.log.debug({ err: e, path: this.opts.path }, 'notify_fifo not available yet');
      return;
    }
    const st = fstatSync(fd);
    if (!st.isFIFO()) {
      closeSync(fd);
      this.log.warn({ path: this.opts.path }, 'notify_fifo path is not a FIFO');
      return;
    }
    this.ino = { dev: st.dev, ino: st.ino };
    this.split.reset();
    // A net.Socket over the FIFO reads through epoll, not the fs thread pool.
    const sock = new Socket({ fd, readable: true, writable: false });
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('error', (e: Error) => {
      this.log.warn({ err: e, path: this.opts.path }, 'notify_fifo read error');
      if (this.sock === sock) this.closeSock();
    });
    sock.on('close', () => {
      if (this.sock === sock) this.sock = null;
    });
    this.sock = sock;
    this.emit('open');
  }

  private onData(chunk: string): void {
    for (const line of this.split.push(chunk)) {
      const t = parseNotifyLine(line);
      if (t) this.emit('transition', t);
      else this.emit('other', line);
    }
  }

  private closeSock(): void {
    const s = this.sock;
    this.sock = null;
    this.ino = null;
    this.split.reset();
    s?.destroy();
  }
}
