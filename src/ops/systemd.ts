// sd_notify(3) without libsystemd: the protocol is one AF_UNIX datagram of
// newline-separated KEY=VALUE lines to $NOTIFY_SOCKET ('@' = abstract
// namespace). Node cannot send unix datagrams, so the native addon does the
// sendto(); tests inject a sender. Without NOTIFY_SOCKET (not under systemd,
// or Type=simple) every call is a no-op. A failed notification is logged and
// never thrown: systemd's opinion must not take the daemon down.
import { silentLogger, type Logger } from '../log/logger.js';
import { loadNative } from '../netlink/native.js';

export type DatagramSender = (path: string, buf: Buffer) => void;

export interface SdNotifierOptions {
  env?: NodeJS.ProcessEnv;
  /** Default: the native addon's sendUnixDatagram, loaded on first use. */
  send?: DatagramSender;
  /**
   * The watchdog is fed only while this returns true, so a daemon whose
   * loops are stuck or broken gets restarted by systemd (WatchdogSec=).
   */
  healthy?: () => boolean;
  log?: Logger;
}

export class SdNotifier {
  readonly socketPath: string | null;
  /** Half of WATCHDOG_USEC, in ms; null when systemd set no watchdog for us. */
  readonly watchdogIntervalMs: number | null;
  private timer: NodeJS.Timeout | null = null;
  private sender: DatagramSender | null;
  private readonly log: Logger;
  private failed = false;

  constructor(private readonly opts: SdNotifierOptions = {}) {
    const env = opts.env ?? process.env;
    this.log = opts.log ?? silentLogger;
    const sock = env.NOTIFY_SOCKET;
    // Only absolute paths and abstract names are valid (as in libsystemd).
    this.socketPath = sock && (sock.startsWith('/') || sock.startsWith('@')) && sock.length > 1 ? sock : null;
    this.sender = opts.send ?? null;
    this.watchdogIntervalMs = watchdogInterval(env);
  }

  get enabled(): boolean {
    return this.socketPath !== null;
  }

  /** After the initial kernel dump: systemd considers the unit started. */
  ready(status?: string): boolean {
    return this.notify({ READY: '1', ...(status !== undefined ? { STATUS: status } : {}) });
  }

  /** A one-line status for `systemctl status`. */
  status(text: string): boolean {
    return this.notify({ STATUS: text });
  }

  /** On SIGHUP; call ready() when the reload is done. */
  reloading(): boolean {
    const usec = process.hrtime.bigint() / 1000n; // CLOCK_MONOTONIC, as systemd expects
    return this.notify({ RELOADING: '1', MONOTONIC_USEC: String(usec) });
  }

  stopping(status?: string): boolean {
    this.stopWatchdog();
    return this.notify({ STOPPING: '1', ...(status !== undefined ? { STATUS: status } : {}) });
  }

  watchdog(): boolean {
    return this.notify({ WATCHDOG: '1' });
  }

  /** Starts WATCHDOG=1 pings at half of WATCHDOG_USEC; no-op if no watchdog was requested. */
  startWatchdog(): void {
    if (this.timer || this.watchdogIntervalMs === null || !this.enabled) return;
    this.timer = setInterval(() => {
      if (!this.opts.healthy || this.opts.healthy()) this.watchdog();
      else this.log.warn('unhealthy: withholding the systemd watchdog ping');
    }, this.watchdogIntervalMs);
    this.timer.unref();
  }

  stopWatchdog(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Sends the fields as one datagram. Returns false when nothing was sent. */
  notify(fields: Record<string, string>): boolean {
    if (!this.socketPath) return false;
    const lines = Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`);
    const buf = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
    try {
      this.resolveSender()(this.socketPath, buf);
      this.failed = false;
      return true;
    } catch (e) {
      // Logged once per outage, not per ping.
      if (!this.failed) this.log.warn({ err: e, socket: this.socketPath }, 'sd_notify failed');
      this.failed = true;
      return false;
    }
  }

  private resolveSender(): DatagramSender {
    if (!this.sender) {
      const native = loadNative();
      this.sender = (path, buf) => void native.sendUnixDatagram(path, buf);
    }
    return this.sender;
  }
}

/** WATCHDOG_USEC/2 in ms, honouring WATCHDOG_PID (the watchdog is meant for that pid only). */
export function watchdogInterval(env: NodeJS.ProcessEnv, pid = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}
