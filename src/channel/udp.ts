// UDP unicast transport (§1.1): a receiver bound to self:Port and a separate
// sender that sends to destination:Port. Beyond conntrackd: both sockets are
// bound to the configured interface (SO_BINDTODEVICE), and datagrams from
// addresses other than the peer are dropped and counted (`acceptFrom`), so a
// host on the sync segment cannot inject state by spoofing nothing more than
// a port number.
import dgram from 'node:dgram';
import type { ChannelDeps, LinkConfig } from './index.js';
import { DatagramChannel } from './datagram.js';
import { loadSockoptBinding, setIntOpt, socketFd, SO_RCVBUFFORCE } from './sockopt.js';
import {
  applyCommon, applySender, bindSocket, isV6Config, scoped, sourceFilter, UDP4_OVERHEAD, UDP6_OVERHEAD,
} from './udp-util.js';
import { ChannelError } from '../errors.js';

export * from './udp-util.js';

export class UdpChannel extends DatagramChannel {
  readonly kind = 'UDP' as const;
  private readonly v6: boolean;

  constructor(cfg: LinkConfig, deps: ChannelDeps = {}) {
    if (!cfg.destination) throw new ChannelError('UDP link: destination address is mandatory', { ifname: cfg.interface });
    const dest = scoped(cfg.destination, cfg.interface);
    super(cfg, deps, 'udp', () => dest, sourceFilter(cfg.acceptFrom, cfg.destination));
    this.v6 = isV6Config(cfg);
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
    this.attach(rx, tx);
  }
}
