// The sync link's UDP datagrams through the native addon instead of Node's
// dgram, where the addon can: a receive socket read in batches (recvmmsg, one
// JS call per wakeup, no Buffer per datagram) and sends as one sendto() on the
// fd under Node's sending socket. Measured per datagram on this machine:
// Node's receive ~6 µs of user CPU plus a JS callback through async hooks,
// its send ~3 µs (lookup, nextTick, a send request); a sync datagram carries
// ~13 messages, and during a bulk resync the sender is CPU-bound on them.
// IPv4 only: an IPv6 link keeps Node's sockets (address text and scopes).
import { ChannelError } from '../errors.js';
import type { NativeHandle, NativeReadCallback } from '../netlink/native.js';
import { rdU16BE, rdU32BE, rdU32LE, wrU16BE, wrU16LE } from '../util/bytes.js';
import { settleFields } from '../util/shape.js';

/** The addon functions this module needs (checked at open: an older addon lacks them). */
export interface NativeUdpBinding {
  udpOpen(family: 4 | 6): NativeHandle;
  udpBind(h: NativeHandle, sockaddr: Buffer): void;
  setsockopt(h: NativeHandle, level: number, name: number, value: number | Buffer): void;
  start(h: NativeHandle, cb: NativeReadCallback): void;
  close(h: NativeHandle): void;
  stats(h: NativeHandle): { fd: number };
  /** sendto(fd, buf[0..len), MSG_DONTWAIT): bytes sent, or −errno (never throws for the socket's errors). */
  sendToFd(fd: number, buf: Buffer, len: number, sockaddr: Buffer): number;
}

/** The addon can read a UDP socket itself (and send through one). */
export function hasNativeUdp(b: object): b is NativeUdpBinding {
  const n = b as Partial<NativeUdpBinding>;
  return typeof n.udpOpen === 'function' && typeof n.udpBind === 'function' && typeof n.sendToFd === 'function' &&
    typeof n.start === 'function' && typeof n.setsockopt === 'function' && typeof n.stats === 'function' &&
    typeof n.close === 'function';
}

/** The addon can send on a Node socket's fd (the fast send path alone). */
export function hasFastSend(b: object): b is Pick<NativeUdpBinding, 'sendToFd'> {
  return typeof (b as Partial<NativeUdpBinding>).sendToFd === 'function';
}

const AF_INET = 2;
/** Record header of the addon's UDP reader: u32le length, port (BE), family, 0, 16 address bytes. */
const REC_HDR = 24;

/** struct sockaddr_in for an IPv4 address and port (the bytes bind() and sendto() take). */
export function sockaddrIn(address: string, port: number): Buffer {
  const parts = address.split('.');
  if (parts.length !== 4) throw new ChannelError(`not an IPv4 address: ${address}`, { address });
  const sa = Buffer.alloc(16);
  wrU16LE(sa, 0, AF_INET);
  wrU16BE(sa, 2, port);
  for (let i = 0; i < 4; i++) {
    const v = Number(parts[i]);
    if (!Number.isInteger(v) || v < 0 || v > 255 || parts[i] === '') throw new ChannelError(`not an IPv4 address: ${address}`, { address });
    sa[4 + i] = v;
  }
  return sa;
}

export type DatagramSink = (datagram: Buffer, from: { address: string; port: number }) => void;

/**
 * A bound IPv4 UDP socket owned by the addon, delivering each datagram to
 * `sink` as a view into the addon's buffer (valid during the call only, as
 * the Channel contract allows) with its source. The source object is reused
 * while the same peer keeps sending: one sender, one object.
 */
export class NativeUdpReceiver {
  private h: NativeHandle | null;
  private lastAddr = -1;
  private lastPort = -1;
  private from: { address: string; port: number } = { address: '', port: 0 };

  constructor(private readonly b: NativeUdpBinding, private readonly sink: DatagramSink,
    private readonly onError: (errno: number) => void) {
    this.h = b.udpOpen(4);
    // An IPv4 address as a u32 (from 64.0.0.0 up, not a small integer): see settleFields.
    settleFields(this, { double: ['lastAddr'] });
  }

  /** setsockopt on the receive socket (SO_REUSEADDR, SO_BINDTODEVICE, SO_RCVBUFFORCE). */
  setsockopt(level: number, name: number, value: number | Buffer): void {
    this.b.setsockopt(this.handle(), level, name, value);
  }

  bind(address: string, port: number): void {
    this.b.udpBind(this.handle(), sockaddrIn(address, port));
  }

  start(): void {
    this.b.start(this.handle(), this.onData);
  }

  get fd(): number {
    return this.b.stats(this.handle()).fd;
  }

  close(): void {
    const h = this.h;
    this.h = null;
    if (h) this.b.close(h);
  }

  private handle(): NativeHandle {
    if (!this.h) throw new ChannelError('native UDP socket is closed');
    return this.h;
  }

  private readonly onData = (buf: Buffer | null, errno: number, len?: number): void => {
    if (buf) {
      const end = len ?? buf.length;
      let off = 0;
      while (off + REC_HDR <= end) {
        const n = rdU32LE(buf, off);
        const start = off + REC_HDR;
        if (start + n > end) break;
        this.deliver(buf, off, start, n);
        off = start + ((n + 3) & ~3);
      }
    }
    // EMSGSIZE: a datagram larger than a read slot (64 KiB) was dropped; anything else is the socket's error.
    if (errno !== 0) this.onError(errno);
  };

  private deliver(buf: Buffer, rec: number, start: number, n: number): void {
    const port = rdU16BE(buf, rec + 4);
    const addr = rdU32BE(buf, rec + 8);
    if (addr !== this.lastAddr || port !== this.lastPort) {
      this.lastAddr = addr;
      this.lastPort = port;
      this.from = { address: `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`, port };
    }
    this.sink(buf.subarray(start, start + n), this.from);
  }
}
