// Structured logs through pino. Quiet by default ('warn'); a repeated line is
// rate-limited per key so a hostile or broken peer cannot flood the log.
import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';
import { SyslogStream } from './syslog.js';

export type { Logger };

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** A file path, or undefined for stdout. */
  file?: string;
  name?: string;
  destination?: DestinationStream;
  /** A syslog facility (General { Syslog }): lines go there too. */
  syslog?: string;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return createReopenableLogger(opts).log;
}

/**
 * The daemon's logger: `reopen()` re-opens the log file (SIGHUP after
 * logrotate moved it), so lines never go on into a rotated-away file.
 */
export function createReopenableLogger(opts: LoggerOptions = {}): { log: Logger; reopen(): void } {
  const level = opts.level ?? (process.env.CTSYNC_LOG_LEVEL as LevelWithSilent | undefined) ?? 'warn';
  const file = !opts.destination && opts.file ? pino.destination({ dest: opts.file, mkdir: true, sync: false }) : null;
  const dest = opts.destination ?? file ?? pino.destination(1);
  const out = opts.syslog
    ? pino.multistream([{ stream: dest, level: 'trace' }, { stream: new SyslogStream({ facility: opts.syslog }), level: 'trace' }])
    : dest;
  const log = pino({ name: opts.name ?? 'ctsync', level, base: { pid: process.pid } }, out);
  return { log, reopen: () => file?.reopen() };
}

/** A logger that writes nothing: the default for library code and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * Lets one line per key through every `intervalMs`, and reports how many were
 * suppressed in between. Keys are few and static (a reason code), so the map
 * stays small.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly log: Logger, private readonly intervalMs = 5000, private readonly now: () => number = Date.now) {}

  warn(key: string, obj: Record<string, unknown>, msg: string): void {
    this.emit('warn', key, obj, msg);
  }

  error(key: string, obj: Record<string, unknown>, msg: string): void {
    this.emit('error', key, obj, msg);
  }

  info(key: string, obj: Record<string, unknown>, msg: string): void {
    this.emit('info', key, obj, msg);
  }

  private emit(level: 'warn' | 'error' | 'info', key: string, obj: Record<string, unknown>, msg: string): void {
    const t = this.now();
    const e = this.last.get(key);
    if (e && t - e.at < this.intervalMs) {
      e.suppressed++;
      return;
    }
    const suppressed = e?.suppressed ?? 0;
    this.last.set(key, { at: t, suppressed: 0 });
    this.log[level](suppressed > 0 ? { ...obj, suppressed } : obj, msg);
  }
}
