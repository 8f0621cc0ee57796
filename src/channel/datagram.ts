// What the UDP and multicast transports share: a receiving and a sending
// datagram socket, the source allow-list, counters, and rate-limited logs.
// Subclasses only decide how the sockets are opened and where datagrams go.
import type dgram from 'node:dgram';
import type { Channel, LinkStatus } from './types.js';
import type { ChannelDeps, LinkConfig } from './index.js';
import { sysfsLinks, type LinkReader } from './link.js';
import { newCounters, normalizeAddress, type ChannelCounters } from './udp-util.js';
import { RateLimitedLog, silentLogger } from '../log/logger.js';

type MessageCb = (datagram: Buffer, from: { address: string; port: number }) => void;

export abstract class DatagramChannel implements Channel {
  abstract readonly kind: 'UDP' | 'multicast';
  readonly ifname: string;
  maxDatagram = 0;
  protected readonly counters = newCounters();
  protected readonly links: LinkReader;
  protected readonly rlog: RateLimitedLog;
  protected rx: dgram.Socket | null = null;
  protected tx: dgram.Socket | null = null;
  private cb: MessageCb | null = null;
  // One callback for every send, created once: the send path allocates no closures.
  protected readonly afterSend = (err: Error | null, bytes?: number): void => {
    if (err) {
      this.counters.errorsSent++;
      this.rlog.warn(`${this.logTag}-send`, { ifname: this.ifname, err: err.message }, 'sync link send failed');
    } else {
      this.counters.bytesSent += bytes ?? 0;
      this.counters.packetsSent++;
    }
  };

  /**
   * @param destAddress where send() delivers (the peer, or the multicast group)
   * @param allow sources accepted, null for anyone
   */
  protected constructor(protected readonly cfg: LinkConfig, protected readonly deps: ChannelDeps,
    private readonly logTag: string, private readonly destAddress: () => string,
    private readonly allow: Set<string> | null) {
    this.ifname = cfg.interface;
    this.links = deps.links ?? sysfsLinks;
    this.rlog = new RateLimitedLog(deps.log ?? silentLogger);
  }

  abstract open(): Promise<void>;

  /** Wires the opened sockets in; subclasses call it at the end of open(). */
  protected attach(rx: dgram.Socket, tx: dgram.Socket): void {
    rx.on('message', (msg, rinfo) => this.receive(msg, rinfo));
    rx.on('error', (err) => this.recvError(err));
    tx.on('error', (err) => this.afterSend(err));
    this.rx = rx;
    this.tx = tx;
  }

  /**
   * No copy: Node hands the datagram to the kernel synchronously when the
   * socket buffer has room (the normal case); only when the kernel pushes back
   * does libuv queue it by reference until the send callback.
   */
  send(datagram: Buffer): void {
    const tx = this.tx;
    if (!tx) {
      this.counters.errorsSent++;
      return;
    }
    try {
      tx.send(datagram, 0, datagram.length, this.cfg.port, this.destAddress(), this.afterSend);
    } catch (e) {
      // dgram throws synchronously for closed sockets and bad arguments.
      this.afterSend(e as Error);
    }
  }

  onMessage(cb: MessageCb): void {
    this.cb = cb;
  }

  async close(): Promise<void> {
    const socks = [this.rx, this.tx];
    this.rx = this.tx = null;
    await Promise.all(socks.map((s) => s && new Promise<void>((r) => s.close(() => r()))));
  }

  stats(): ChannelCounters {
    return { ...this.counters };
  }

  status(): LinkStatus {
    return this.links.status(this.ifname);
  }

  private receive(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.allow && !this.allow.has(normalizeAddress(rinfo.address))) {
      this.counters.rejectedSource++;
      this.rlog.warn(`${this.logTag}-source`, { ifname: this.ifname, from: rinfo.address }, 'dropped sync datagram from unexpected source');
      return;
    }
    this.counters.bytesRecv += msg.length;
    this.counters.packetsRecv++;
    try {
      this.cb?.(msg, rinfo);
    } catch (e) {
      // A throwing consumer must not take the socket down with it.
      this.recvError(e as Error);
    }
  }

  private recvError(err: Error): void {
    this.counters.errorsRecv++;
    this.rlog.warn(`${this.logTag}-recv`, { ifname: this.ifname, err: err.message }, 'sync link receive error');
  }
}
