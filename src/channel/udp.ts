// UDP unicast transport (§1.1): a receiver bound to self:Port and a separate
// sender that sends to destination:Port. Beyond conntrackd: both sockets are
// bound to the configured interface (SO_BINDTODEVICE), and datagrams from
// addresses other than the peer are dropped and counted (`acceptFrom`), so a
// host on the sync segment cannot inject state by spoofing nothing more than
// a port number.
import dgram from 'node:dgram';
import type { ChannelDeps, LinkConfig } from './index.js';
import { DatagramChannel, type FastSender } from './datagram.js';
import { hasFastSend, hasNativeUdp, NativeUdpReceiver, sockaddrIn } from './native-udp.js';
import { bindToDevice, loadSockoptBinding, setIntOpt, socketFd, SOL_SOCKET, SO_RCVBUFFORCE, SO_REUSEADDR } from './sockopt.js';
import {
  applyCommon, applySender, bindSocket, isV6Config, scoped, sourceFilter, UDP4_OVERHEAD, UDP6_OVERHEAD,
} from './udp-util.js';
import { ChannelError } from '../errors.js';

export * from './udp-util.js';

export class UdpChannel extends DatagramChannel {
  readonly kind = 'UDP' as const;
  private readonly v6: boolean;
  private readonly dest: string;

  constructor(cfg: LinkConfig, deps: ChannelDeps = {}) {
    if (!cfg.destination) throw new ChannelError('UDP link: destination address is mandatory', { ifname: cfg.interface });
    const dest = scoped(cfg.destination, cfg.interface);
    super(cfg, deps, 'udp', () => dest, sourceFilter(cfg.acceptFrom, cfg.destination));
    this.v6 = isV6Config(cfg);
    this.dest = dest;
  }

  /** True when the addon reads this link's datagrams (IPv4 links, an addon that can). */
  get nativeReceive(): boolean {
    return this.nativeRx !== null;
  }

  async open(): Promise<void> {
    if (this.rx || this.nativeRx) return;
    const { mtu } = this.links.info(this.ifname);
    this.maxDatagram = mtu - (this.v6 ? UDP6_OVERHEAD : UDP4_OVERHEAD) - 1;
    const so = await (this.deps.sockopt ?? loadSockoptBinding)();
    const type = this.v6 ? 'udp6' : 'udp4';
    const local = this.v6 ? this.cfg.ipv6Address ?? '::' : this.cfg.ipv4Address ?? '0.0.0.0';
    const nb = !this.v6 && hasNativeUdp(so) ? so : null;
    let rx: dgram.Socket | NativeUdpReceiver | null = null;
    let fast: FastSender | null = null;
    const tx = dgram.createSocket({ type });
    try {
      if (nb) {
        const nrx = new NativeUdpReceiver(nb, this.deliver, this.recvErrno);
        rx = nrx;
        nrx.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
        nrx.bind(local, this.cfg.port);
        bindToDevice(so, nrx.fd, this.ifname);
        if (this.cfg.rcvBuf) setIntOpt(so, nrx.fd, SO_RCVBUFFORCE, this.cfg.rcvBuf, 'SO_RCVBUFFORCE');
      } else {
        const drx = dgram.createSocket({ type, reuseAddr: true });
        rx = drx;
        await bindSocket(drx, scoped(local, this.ifname), this.cfg.port);
        applyCommon(so, drx, this.ifname);
        if (this.cfg.rcvBuf) setIntOpt(so, socketFd(drx), SO_RCVBUFFORCE, this.cfg.rcvBuf, 'SO_RCVBUFFORCE');
      }
      // Unlike conntrackd, the sender binds the local address (any port), so the
      // peer sees a source it can filter on whatever route the kernel picks.
      await bindSocket(tx, scoped(local, this.ifname), 0);
      applyCommon(so, tx, this.ifname);
      applySender(so, tx, this.cfg);
      if (!this.v6 && hasFastSend(so)) fast = { b: so, fd: socketFd(tx), dest: sockaddrIn(this.dest, this.cfg.port) };
    } catch (e) {
      rx?.close();
      tx.close();
      throw e instanceof ChannelError ? e : new ChannelError(`UDP link ${this.ifname}: ${(e as Error).message}`,
        { ifname: this.ifname, port: this.cfg.port }, { cause: e });
    }
    this.attach(rx, tx, fast);
  }
}
