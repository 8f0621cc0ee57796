// General { Syslog on|<facility> }: log lines to the local syslog socket
// (/dev/log, AF_UNIX datagrams) without a syslog library: Node has no unix
// datagram sockets, so the native addon sends them.
import { Writable } from 'node:stream';
import { loadNative } from '../netlink/native.js';

const FACILITY: Record<string, number> = {
  daemon: 3, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

/** pino level → syslog severity (RFC 5424). */
function severity(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

export interface SyslogOptions {
  facility: string;
  /** Default /dev/log. */
  path?: string;
  tag?: string;
  /** Tests: where datagrams go instead of the native sender. */
  send?: (path: string, datagram: Buffer) => void;
}

/** A pino destination: one syslog datagram per log line; failures are counted, never thrown. */
export class SyslogStream extends Writable {
  failures = 0;
  private readonly pri: number;
  private readonly path: string;
  private readonly tag: string;
  private readonly sendFn: (path: string, datagram: Buffer) => void;

  constructor(opts: SyslogOptions) {
    super();
    this.pri = (FACILITY[opts.facility] ?? FACILITY.daemon!) * 8;
    this.path = opts.path ?? '/dev/log';
    this.tag = opts.tag ?? 'ctsync';
    this.sendFn = opts.send ?? ((p, d) => loadNative().sendUnixDatagram(p, d));
  }

  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      let level = 30;
      try {
        level = (JSON.parse(line) as { level?: number }).level ?? 30;
      } catch {
        // Not JSON: send it as info.
      }
      try {
        this.sendFn(this.path, Buffer.from(`<${this.pri + severity(level)}>${this.tag}[${process.pid}]: ${line}`));
      } catch {
        // No syslog daemon listening: the file or stdout destination still has the line.
        this.failures++;
      }
    }
    cb();
  }
}
