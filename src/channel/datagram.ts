// What the UDP and multicast transports share: a receiving and a sending
// datagram socket, the source allow-list, counters, and rate-limited logs.
// Subclasses only decide how the sockets are opened and where datagrams go.
import type dgram from 'node:dgram';
import type { Channel, DirectTarget, LinkStatus } from './types.js';
import type { ChannelDeps, LinkConfig } from './index.js';
import { sysfsLinks, type LinkReader } from './link.js';
import { newCounters, normalizeAddress, type ChannelCounters } from './udp-util.js';
import { NativeUdpReceiver, type NativeUdpBinding } from './native-udp.js';
import { RateLimitedLog, silentLogger } from '../log/logger.js';

const EAGAIN = 11;
const ENOBUFS = 105;

/** Sends straight through the addon: sendto() on the fd under the Node socket, to a fixed sockaddr. */
export interface FastSender {
  b: Pick<NativeUdpBinding, 'sendToFd'>;
  fd: number;
  dest: Buffer;
}

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
  /** The addon's receive socket, when it serves this link instead of rx. */
  protected nativeRx: NativeUdpReceiver | null = null;
  private fast: FastSender | null = null;
  /** Datagrams handed to Node's queue (the kernel buffer was full) and not yet sent. */
  private queued = 0;
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

  /**
   * Wires the opened sockets in; subclasses call it at the end of open(). `rx`
   * is a Node socket or the addon's receiver (built with `deliver` as its sink);
   * `fast`, when given, sends through the addon on tx's fd.
   */
  protected attach(rx: dgram.Socket | NativeUdpReceiver, tx: dgram.Socket, fast: FastSender | null = null): void {
    if (rx instanceof NativeUdpReceiver) {
      this.nativeRx = rx;
      rx.start();
    } else {
      rx.on('message', (msg, rinfo) => this.receive(msg, rinfo));
      rx.on('error', (err) => this.recvError(err));
      this.rx = rx;
    }
    tx.on('error', (err) => this.afterSend(err));
    this.tx = tx;
    this.fast = fast;
  }

  /** The native receiver's sink: every datagram, with its source. */
  protected readonly deliver = (msg: Buffer, from: { address: string; port: number }): void => this.receive(msg, from);

  /** The native receiver's socket errors (a truncated datagram: EMSGSIZE). */
  protected readonly recvErrno = (errno: number): void => this.recvError(new Error(`receive failed: errno ${errno}`));

  /**
   * No copy: the datagram goes to the kernel synchronously when the socket
   * buffer has room (the normal case), through the addon when it serves this
   * link. When the kernel pushes back (EAGAIN), or without the addon, Node's
   * dgram takes a copy (libuv queues what it is given by reference until the
   * send callback, and the caller reuses its buffer: Channel.send); later
   * datagrams go the same way until that queue is empty, so none overtakes
   * another.
   */
  send(datagram: Buffer): void {
    const tx = this.tx;
    if (!tx) {
      this.counters.errorsSent++;
      return;
    }
    const fast = this.fast;
    if (fast !== null && this.queued === 0) {
      const n = fast.b.sendToFd(fast.fd, datagram, datagram.length, fast.dest);
      if (n >= 0) {
        this.counters.bytesSent += n;
        this.counters.packetsSent++;
        return;
      }
      if (n !== -EAGAIN && n !== -ENOBUFS) {
        this.afterSend(new Error(`sendto failed: errno ${-n}`));
        return;
      }
    }
    try {
      this.queued++;
      tx.send(Buffer.from(datagram), 0, datagram.length, this.cfg.port, this.destAddress(), this.afterQueued);
    } catch (e) {
      // dgram throws synchronously for closed sockets and bad arguments.
      this.afterQueued(e as Error);
    }
  }

  private readonly afterQueued = (err: Error | null, bytes?: number): void => {
    if (this.queued > 0) this.queued--;
    this.afterSend(err, bytes);
  };

  directTarget(): DirectTarget | null {
    const f = this.fast;
    return f === null ? null : { fd: f.fd, dest: f.dest };
  }

  countDirect(bytes: number): void {
    this.counters.bytesSent += bytes;
    this.counters.packetsSent++;
  }

  onMessage(cb: MessageCb): void {
    this.cb = cb;
  }

  async close(): Promise<void> {
    const socks = [this.rx, this.tx];
    this.rx = this.tx = null;
    this.fast = null;
    this.nativeRx?.close();
    this.nativeRx = null;
    await Promise.all(socks.map((s) => s && new Promise<void>((r) => s.close(() => r()))));
  }

  stats(): ChannelCounters {
    return { ...this.counters };
  }

  status(): LinkStatus {
    return this.links.status(this.ifname);
  }

  private receive(msg: Buffer, rinfo: { address: string; port: number }): void {
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
