// Multicast transport (§1.1): the receiver binds the wildcard address on the
// Group port and joins the group on IPv4_interface (IPv6: on the configured
// interface); the sender sends to group:Group with loopback off, so a node
// never hears its own datagrams, and the multicast interface pinned.
import dgram from 'node:dgram';
import type { ChannelDeps, LinkConfig } from './index.js';
import { DatagramChannel } from './datagram.js';
import { loadSockoptBinding, setIntOpt, socketFd, SO_RCVBUFFORCE } from './sockopt.js';
import { applyCommon, applySender, bindSocket, sourceFilter, UDP4_OVERHEAD, UDP6_OVERHEAD } from './udp-util.js';
import { ChannelError } from '../errors.js';

export class MulticastChannel extends DatagramChannel {
  readonly kind = 'multicast' as const;
  private readonly v6: boolean;
  private readonly group: string;

  constructor(cfg: LinkConfig, deps: ChannelDeps = {}) {
    const group = cfg.ipv6Address ?? cfg.ipv4Address;
    if (!group) throw new ChannelError('Multicast link: IPv4_address/IPv6_address (the group) is mandatory', { ifname: cfg.interface });
    if (!cfg.ipv6Address && !cfg.ipv4Interface) {
      throw new ChannelError('Multicast link: IPv4_interface (local address to join on) is mandatory', { ifname: cfg.interface });
    }
    // No destination to default to: filter only if acceptFrom lists sources.
    super(cfg, deps, 'mcast', () => group, sourceFilter(cfg.acceptFrom ?? 'any', undefined));
    this.group = group;
    this.v6 = !!cfg.ipv6Address;
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
    this.attach(rx, tx);
  }
}
