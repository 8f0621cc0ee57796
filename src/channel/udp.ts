// UDP unicast transport (§1.1): a receiver bound to self:Port and a separate
// sender with a kernel-chosen source port that sends to destination:Port.
// Beyond conntrackd: both sockets are bound to the configured interface
// (SO_BINDTODEVICE), and datagrams from addresses other than the peer are
// dropped and counted (`acceptFrom`), so a host on the sync segment cannot
// inject state by spoofing nothing more than a port number.
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Channel, ChannelStats, LinkStatus } from './types.js';
import type { ChannelDeps, LinkConfig } from './index.js';
import { sysfsLinks, type LinkReader } from './link.js';
import {
  bindToDevice, loadSockoptBinding, setIntOpt, socketFd, SO_NO_CHECK, SO_RCVBUFFORCE, SO_SNDBUFFORCE,
  type SockoptBinding,
} from './sockopt.js';
import { ChannelError } from '../errors.js';
import { RateLimitedLog, silentLogger } from '../log/logger.js';

/** IPv4 + UDP header (what conntrackd subtracts for both families). */
export const UDP4_OVERHEAD = 28;
/**
 * IPv6 + UDP header. conntrackd uses 28 for IPv6 too, which lets a full buffer
 * exceed the MTU and fragment; ctsync sizes IPv6 datagrams by the real header.
 * Receivers are unaffected (any size up to 64 KiB is read).
 */
export const UDP6_OVERHEAD = 48;

/** Strips an IPv6 zone and the IPv4-mapped prefix so addresses compare by value. */
export function normalizeAddress(a: string): string {
  let s = a.toLowerCase();
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (s.startsWith('::ffff:') && s.includes('.')) s = s.slice(7);
  return s;
}

/** The allow-list for a link, or null for "accept from anyone". */
export function sourceFilter(acceptFrom: string[] | 'any' | undefined, destination: string | undefined): Set<string> | null {
  if (acceptFrom === 'any') return null;
  const list = acceptFrom ?? (destination ? [destination] : []);
  if (list.length === 0) return null;
  return new Set(list.map(normalizeAddress));
}

/** IPv6 link-local addresses need the interface as scope to be usable. */
export function scoped(addr: string, ifname: string): string {
  return isIPv6(addr) && /^fe[89ab]/i.test(addr) && !addr.includes('%') ? `${addr}%${ifname}` : addr;
}

export function isV6Config(c: LinkConfig): boolean {
  return !!c.ipv6Address || (!!c.destination && isIPv6(c.destination));
}

/** Stats every transport keeps; the extra counter is ctsync's (source filtering). */
export interface ChannelCounters extends ChannelStats {
  rejectedSource: number;
}

export function newCounters(): ChannelCounters {
  return { bytesSent: 0, bytesRecv: 0, packetsSent: 0, packetsRecv: 0, errorsSent: 0, errorsRecv: 0, rejectedSource: 0 };
}

type MessageCb = (datagram: Buffer, from: { address: string; port: number }) => void;

export class UdpChannel implements Channel {
  readonly kind = 'UDP' as const;
  readonly ifname: string;
  maxDatagram = 0;
  private readonly counters = newCounters();
  private readonly v6: boolean;
  private readonly dest: string;
  private readonly allow: Set<string> | null;
  private readonly links: LinkReader;
  private readonly rlog: RateLimitedLog;
  private rx: dgram.Socket | null = null;
  private tx: dgram.Socket | null = null;
  private cb: MessageCb | null = null;
  // One callback for every send, created once: the send path allocates no closures.
  private readonly afterSend = (err: Error | null, bytes?: number): void => {
    if (err) {
      this.counters.errorsSent++;
      this.rlog.warn('udp-send', { ifname: this.ifname, err: err.message }, 'sync link send failed');
    } else {
      this.counters.bytesSent += bytes ?? 0;
      this.counters.packetsSent++;
    }
  };

  constructor(private readonly cfg: LinkConfig, private readonly deps: ChannelDeps = {}) {
    this.ifname = cfg.interface;
    this.v6 = isV6Config(cfg);
    if (!cfg.destination) throw new ChannelError('UDP link: destination address is mandatory', { ifname: cfg.interface });
    this.dest = scoped(cfg.destination, cfg.interface);
    this.allow = sourceFilter(cfg.acceptFrom, cfg.destination);
    this.links = deps.links ?? sysfsLinks;
    this.rlog = new RateLimitedLog(deps.log ?? silentLogger);
  }

  async open(): Promise<void> {
    if (this.rx) return;
    const { mtu } = this.links.info(this.ifname);
    this.maxDatagram = mtu - (this.v6 ? UDP6_OVERHEAD : UDP4_OVERHEAD) - 1;
    const so = await (this.deps.sockopt ?? loadSockoptBinding)();
    const type = this.v6 ? 'udp6' : 'udp4';
    const local = this.v6 ? this.cfg.ipv6Address ?? '::' : this.cfg.ipv4Address ?? '0.0.0.0';
    const rx = dgram.createSocket({ type, reuseAddr: true });
    const tx = dgram.createSocket({ type });
    try {
      await bindSocket(rx, scoped(local, this.ifname), this.cfg.port);
      applyCommon(so, rx, this.ifname);
      if (this.cfg.rcvBuf) setIntOpt(so, socketFd(rx), SO_RCVBUFFORCE, this.cfg.rcvBuf, 'SO_RCVBUFFORCE');
      // Unlike conntrackd, the sender binds the local address (any port), so the
      // peer sees a source it can filter on whatever route the kernel picks.
      await bindSocket(tx, scoped(local, this.ifname), 0);
      applyCommon(so, tx, this.ifname);
      applySender(so, tx, this.cfg);
    } catch (e) {
      rx.close();
      tx.close();
      throw e instanceof ChannelError ? e : new ChannelError(`UDP link ${this.ifname}: ${(e as Error).message}`,
        { ifname: this.ifname, port: this.cfg.port }, { cause: e });
    }
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
      tx.send(datagram, 0, datagram.length, this.cfg.port, this.dest, this.afterSend);
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
      this.rlog.warn('udp-source', { ifname: this.ifname, from: rinfo.address }, 'dropped sync datagram from unexpected source');
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
    this.rlog.warn('udp-recv', { ifname: this.ifname, err: err.message }, 'sync link receive error');
  }
}

export function bindSocket(s: dgram.Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error): void => reject(e);
    s.once('error', onErr);
    s.bind({ address, port, exclusive: true }, () => {
      s.off('error', onErr);
      resolve();
    });
  });
}

/** Options every sync socket gets: stay on the configured interface. */
export function applyCommon(so: SockoptBinding, s: dgram.Socket, ifname: string): void {
  bindToDevice(so, socketFd(s), ifname);
}

/** Sender options: checksum (set explicitly either way, as conntrackd does) and send buffer. */
export function applySender(so: SockoptBinding, s: dgram.Socket, cfg: LinkConfig): void {
  const fd = socketFd(s);
  setIntOpt(so, fd, SO_NO_CHECK, cfg.checksum === false ? 1 : 0, 'SO_NO_CHECK');
  if (cfg.sndBuf) setIntOpt(so, fd, SO_SNDBUFFORCE, cfg.sndBuf, 'SO_SNDBUFFORCE');
}
