// An in-memory channel pair for testing the layers above the transport: what
// one end send()s the other end receives, asynchronously (like a socket), with
// hooks to drop, duplicate or hold datagrams and a settable link status.
import type { Channel, ChannelStats, LinkStatus } from './types.js';

export interface FakeHooks {
  /** Return true to lose this datagram (counted as sent, never received). */
  drop?: (datagram: Buffer, index: number) => boolean;
  /** Return true to deliver this datagram twice. */
  dup?: (datagram: Buffer, index: number) => boolean;
  /** Deliver synchronously inside send() instead of on a later microtask. */
  sync?: boolean;
}

type MessageCb = (datagram: Buffer, from: { address: string; port: number }) => void;

export class FakeChannel implements Channel {
  readonly kind: 'UDP' | 'multicast' | 'TCP';
  maxDatagram: number;
  peer: FakeChannel | null = null;
  linkStatus: LinkStatus = 'RUNNING';
  hooks: FakeHooks;
  /** Every datagram handed to send(), copied, for assertions. */
  readonly sent: Buffer[] = [];
  private cb: MessageCb | null = null;
  private opened = false;
  private sentCount = 0;
  private readonly counters: ChannelStats = { bytesSent: 0, bytesRecv: 0, packetsSent: 0, packetsRecv: 0, errorsSent: 0, errorsRecv: 0 };

  constructor(readonly ifname = 'fake0', opts: { kind?: 'UDP' | 'multicast' | 'TCP'; maxDatagram?: number; hooks?: FakeHooks;
    address?: string } = {}) {
    this.kind = opts.kind ?? 'UDP';
    this.maxDatagram = opts.maxDatagram ?? 1471;
    this.hooks = opts.hooks ?? {};
    this.address = opts.address ?? '192.0.2.1';
  }

  readonly address: string;

  async open(): Promise<void> {
    this.opened = true;
  }

  async close(): Promise<void> {
    this.opened = false;
  }

  send(datagram: Buffer): void {
    const peer = this.peer;
    if (!this.opened || !peer || this.linkStatus !== 'RUNNING' || peer.linkStatus !== 'RUNNING') {
      this.counters.errorsSent++;
      return;
    }
    const copy = Buffer.from(datagram);
    const i = this.sentCount++;
    this.sent.push(copy);
    this.counters.bytesSent += copy.length;
    this.counters.packetsSent++;
    if (this.hooks.drop?.(copy, i)) return;
    const times = this.hooks.dup?.(copy, i) ? 2 : 1;
    for (let k = 0; k < times; k++) {
      if (this.hooks.sync) peer.deliver(copy, this.address);
      else queueMicrotask(() => peer.deliver(copy, this.address));
    }
  }

  /** Injects a datagram as if it came off the wire (also used by the peer). */
  deliver(datagram: Buffer, from = '192.0.2.2', port = 3780): void {
    if (!this.opened) {
      this.counters.errorsRecv++;
      return;
    }
    this.counters.bytesRecv += datagram.length;
    this.counters.packetsRecv++;
    this.cb?.(datagram, { address: from, port });
  }

  onMessage(cb: MessageCb): void {
    this.cb = cb;
  }

  stats(): ChannelStats {
    return { ...this.counters };
  }

  status(): LinkStatus {
    return this.linkStatus;
  }
}

/** Two connected fakes, as two firewalls joined by one sync link. */
export function createFakePair(hooks: { a?: FakeHooks; b?: FakeHooks } = {}, ifname = 'fake0'): [FakeChannel, FakeChannel] {
  const a = new FakeChannel(ifname, { hooks: hooks.a, address: '192.0.2.1' });
  const b = new FakeChannel(ifname, { hooks: hooks.b, address: '192.0.2.2' });
  a.peer = b;
  b.peer = a;
  return [a, b];
}
