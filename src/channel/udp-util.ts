// Helpers shared by the datagram and TCP transports: address normalisation,
// the peer allow-list, MTU overheads, socket binding and the sockopts every
// sync socket gets.
import type dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { ChannelStats } from './types.js';
import type { LinkConfig } from './index.js';
import { bindToDevice, setIntOpt, socketFd, SO_NO_CHECK, SO_SNDBUFFORCE, type SockoptBinding } from './sockopt.js';
import { settleCounters } from '../util/shape.js';

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
// Errors first count long after the start, byte counts pass 2^30 after a GiB: see settleFields.
settleCounters(newCounters(), ['bytesSent', 'bytesRecv']);

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
