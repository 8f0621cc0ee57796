// One end of an in-memory sync link, for running real daemons in one process
// without sockets: the start-up JIT warm-up (src/daemon/warmup.ts) and the
// in-process benchmark (bench/events.ts). Unlike the test FakeChannel it
// keeps no datagram unless asked (`record`), and it delivers as a socket
// does: on a later event-loop turn, everything that arrived meanwhile in one
// go.
import type { Channel, ChannelStats, LinkStatus } from './types.js';

type MessageCb = (d: Buffer, from: { address: string; port: number }) => void;

export class MemLink implements Channel {
  readonly kind = 'UDP' as const;
  readonly ifname: string;
  readonly maxDatagram: number;
  peer: MemLink | null = null;
  /** Copies of the datagrams this end sends, while non-null (a bench replays them into a fresh receiver). */
  record: Buffer[] | null = null;
  /** performance.now() of the last send() (a bench's single-event latency). */
  lastSendAt = 0;
  /** While true, what this end sends is lost on the way (the warm-up's silent peer). */
  muted = false;
  private cb: MessageCb | null = null;
  private inbox: Buffer[] = [];
  private scheduled = false;
  private readonly from: { address: string; port: number };
  private readonly counters: ChannelStats = { bytesSent: 0, bytesRecv: 0, packetsSent: 0, packetsRecv: 0, errorsSent: 0, errorsRecv: 0 };

  constructor(address: string, opts: { maxDatagram?: number; ifname?: string } = {}) {
    this.from = { address, port: 3780 };
    this.maxDatagram = opts.maxDatagram ?? 1471;
    this.ifname = opts.ifname ?? 'mem0';
  }

  async open(): Promise<void> {}

  async close(): Promise<void> {
    this.cb = null;
    this.inbox = [];
  }

  send(d: Buffer): void {
    this.lastSendAt = performance.now();
    this.counters.packetsSent++;
    this.counters.bytesSent += d.length;
    // The engine reuses its datagram buffer once send() returns, as a socket may.
    const copy = Buffer.from(d);
    this.record?.push(copy);
    if (!this.muted) this.peer?.post(copy);
  }

  /** Hands `d` to this end's receiver now, as if it came off the wire from the peer. */
  deliver(d: Buffer): void {
    this.counters.packetsRecv++;
    this.counters.bytesRecv += d.length;
    this.cb?.(d, this.peer?.from ?? this.from);
  }

  private post(d: Buffer): void {
    this.inbox.push(d);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.drain);
  }

  private readonly drain = (): void => {
    this.scheduled = false;
    const q = this.inbox;
    this.inbox = [];
    for (const d of q) this.deliver(d);
  };

  onMessage(cb: MessageCb): void {
    this.cb = cb;
  }

  stats(): ChannelStats {
    return { ...this.counters };
  }

  status(): LinkStatus {
    return 'RUNNING';
  }
}
