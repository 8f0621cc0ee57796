// Multicast transport (§1.1): the receiver binds the wildcard address on the
// Group port and joins the group on IPv4_interface (IPv6: on the configured
// interface); the sender sends to group:Group with loopback off, so a node
// never hears its own datagrams, and the multicast interface pinned.
import dgram from 'node:dgram';
import type { Channel, LinkStatus } from './types.js';
import type { ChannelDeps, LinkConfig } from './index.js';
import { sysfsLinks, type LinkReader } from './link.js';
import { loadSockoptBinding, setIntOpt, socketFd, SO_RCVBUFFORCE } from './sockopt.js';
import {
  applyCommon, applySender, bindSocket, newCounters, normalizeAddress, sourceFilter, UDP4_OVERHEAD, UDP6_OVERHEAD,
  type ChannelCounters,
} from './udp.js';
import { ChannelError } from '../errors.js';
import { RateLimitedLog, silentLogger } from '../log/logger.js';

type MessageCb = (datagram: Buffer, from: { address: string; port: number }) => void;

export class MulticastChannel implements Channel {
  readonly kind = 'multicast' as const;
  readonly ifname: string;
  maxDatagram = 0;
  private readonly counters = newCounters();
  private readonly v6: boolean;
  private readonly group: string;
  private readonly allow: Set<string> | null;
  private readonly links: LinkReader;
  private readonly rlog: RateLimitedLog;
  private rx: dgram.Socket | null = null;
  private tx: dgram.Socket | null = null;
  private cb: MessageCb | null = null;
  private readonly afterSend = (err: Error | null, bytes?: number): void => {
    if (err) {
      this.counters.errorsSent++;
      this.rlog.warn('mcast-send', { ifname: this.ifname, err: err.message }, 'sync link send failed');
    } else {
      this.counters.bytesSent += bytes ?? 0;
      this.counters.packetsSent++;
    }
  };

  constructor(private readonly cfg: LinkConfig, private readonly deps: ChannelDeps = {}) {
    this.ifname = cfg.interface;
    this.v6 = !!cfg.ipv6Address;
    const group = cfg.ipv6Address ?? cfg.ipv4Address;
    if (!group) throw new ChannelError('Multicast link: IPv4_address/IPv6_address (the group) is mandatory', { ifname: cfg.interface });
    this.group = group;
    if (!this.v6 && !cfg.ipv4Interface) {
      throw new ChannelError('Multicast link: IPv4_interface (local address to join on) is mandatory', { ifname: cfg.interface });
    }
    // No destination to default to: filter only if acceptFrom lists sources.
    this.allow = sourceFilter(cfg.acceptFrom ?? 'any', undefined);
    this.links = deps.links ?? sysfsLinks;
    this.rlog = new RateLimitedLog(deps.log ?? silentLogger);
  }

  async open(): Promise<void> {
    if (this.rx) return;
    const { mtu } = this.links.info(this.ifname);
    this.maxDatagram = mtu - (this.v6 ? UDP6_OVERHEAD : UDP4_OVERHEAD) - 1;
    const so = await (this.deps.sockopt ?? loadSockoptBinding)();
    const type = this.v6 ? 'udp6' : 'udp4';
    // IPv4 names the interface by a local address; IPv6 by scope (libuv maps "%if" to the ifindex).
    const iface = this.v6 ? `::%${this.ifname}` : this.cfg.ipv4Interface!;
    const rx = dgram.createSocket({ type, reuseAddr: true });
    const tx = dgram.createSocket({ type });
    try {
      await bindSocket(rx, this.v6 ? '::' : '0.0.0.0', this.cfg.port);
      applyCommon(so, rx, this.ifname);
      rx.addMembership(this.group, iface);
      if (this.cfg.rcvBuf) setIntOpt(so, socketFd(rx), SO_RCVBUFFORCE, this.cfg.rcvBuf, 'SO_RCVBUFFORCE');
      await bindSocket(tx, this.v6 ? '::' : this.cfg.ipv4Interface!, 0);
      applyCommon(so, tx, this.ifname);
      applySender(so, tx, this.cfg);
      tx.setMulticastLoopback(false);
      tx.setMulticastInterface(iface);
    } catch (e) {
      rx.close();
      tx.close();
      throw e instanceof ChannelError ? e : new ChannelError(`multicast link ${this.ifname}: ${(e as Error).message}`,
        { ifname: this.ifname, group: this.group, port: this.cfg.port }, { cause: e });
    }
    rx.on('message', (msg, rinfo) => this.receive(msg, rinfo));
    rx.on('error', (err) => this.recvError(err));
    tx.on('error', (err) => this.afterSend(err));
    this.rx = rx;
    this.tx = tx;
  }

  send(datagram: Buffer): void {
    const tx = this.tx;
    if (!tx) {
      this.counters.errorsSent++;
      return;
    }
    try {
      tx.send(datagram, 0, datagram.length, this.cfg.port, this.group, this.afterSend);
    } catch (e) {
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
      return;
    }
    this.counters.bytesRecv += msg.length;
    this.counters.packetsRecv++;
    try {
      this.cb?.(msg, rinfo);
    } catch (e) {
      this.recvError(e as Error);
    }
  }

  private recvError(err: Error): void {
    this.counters.errorsRecv++;
    this.rlog.warn('mcast-recv', { ifname: this.ifname, err: err.message }, 'sync link receive error');
  }
}
