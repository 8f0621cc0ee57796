// The channel factory: one link block of conntrackd.conf's Sync section
// (UDP / Multicast / TCP { ... }) becomes one Channel; several blocks become a
// MultiChannel (conntrackd's multichannel: ≤ 4 links, one Default).
import type { Logger } from '../log/logger.js';
import type { Clock } from '../util/clock.js';
import type { Channel } from './types.js';
import type { LinkReader } from './link.js';
import type { SockoptSource } from './sockopt.js';
import type { TlsFiles } from './tls.js';
import { ChannelError } from '../errors.js';
import { UdpChannel } from './udp.js';
import { MulticastChannel } from './multicast.js';
import { TcpChannel } from './tcp.js';
import { MultiChannel, MAX_LINKS } from './multi.js';

/**
 * One sync link, as the config parser maps it from conntrackd.conf.
 *
 * | field            | conntrackd.conf key                               |
 * |------------------|---------------------------------------------------|
 * | kind             | the block name: UDP / Multicast / TCP             |
 * | isDefault        | `Default` after the block name                    |
 * | ipv4Address      | IPv4_address (UDP/TCP: local bind; mcast: group)  |
 * | ipv6Address      | IPv6_address (same meaning, IPv6)                 |
 * | destination      | IPv4_Destination_Address / IPv6_Destination_Address |
 * | port             | Port (UDP/TCP) or Group (Multicast)               |
 * | interface        | Interface (mandatory)                             |
 * | sndBuf / rcvBuf  | SndSocketBuffer / RcvSocketBuffer (0 = system)    |
 * | checksum         | Checksum (default true)                           |
 * | errorQueueLength | ErrorQueueLength (TCP, default 128)               |
 * | ipv4Interface    | IPv4_interface (Multicast: local address to join on) |
 * | tls              | Ctsync { TLS { CAFile CertFile KeyFile } } (TCP only: mutual TLS 1.3, see tls.ts) |
 *
 * ctsync extension, no conntrackd key: `acceptFrom` — source addresses whose
 * datagrams (UDP) or connections (TCP) are accepted. Default: [destination].
 * 'any' restores conntrackd's accept-from-anyone behaviour. Multicast defaults
 * to 'any' (it has no destination to default to).
 */
export interface LinkConfig {
  kind: 'udp' | 'multicast' | 'tcp';
  isDefault?: boolean;
  ipv4Address?: string;
  ipv6Address?: string;
  destination?: string;
  port: number;
  interface: string;
  sndBuf?: number;
  rcvBuf?: number;
  checksum?: boolean;
  errorQueueLength?: number;
  ipv4Interface?: string;
  acceptFrom?: string[] | 'any';
  /** TCP only: mutual TLS with these files (ignored by UDP/multicast). */
  tls?: TlsFiles;
}

/** What channels take from outside; every field has a production default. */
export interface ChannelDeps {
  /** Native setsockopt source (default: the lazily loaded addon). */
  sockopt?: SockoptSource;
  /** Interface facts (default: sysfs). */
  links?: LinkReader;
  log?: Logger;
  clock?: Clock;
}

export interface MultiOptions {
  /** How often the active link's status is polled for failover (ms, default 1000). */
  pollMs?: number;
}

/**
 * Builds one channel from one link config, or a MultiChannel from a list
 * (pass a list even for one link to get MultiChannel.linkStats() for -s link).
 * Nothing is opened here: call open(), which rejects with a ChannelError when
 * the interface is missing, the port is taken or a socket option cannot be set.
 *
 * Buffer ownership: onMessage buffers are valid during the callback only.
 * send() never throws; UDP/multicast pass the caller's buffer to the kernel
 * without copying (see UdpChannel.send), TCP copies it.
 */
export function createChannel(config: LinkConfig | LinkConfig[], deps: ChannelDeps = {}, multi: MultiOptions = {}): Channel {
  const list = Array.isArray(config) ? config : [config];
  if (list.length === 0) throw new ChannelError('no sync link configured');
  if (list.length === 1 && !Array.isArray(config)) return createOne(list[0]!, deps);
  if (list.length > MAX_LINKS) throw new ChannelError(`at most ${MAX_LINKS} sync links (got ${list.length})`);
  if (new Set(list.map((c) => c.kind)).size > 1) {
    throw new ChannelError('all sync links must use one transport (UDP, Multicast or TCP)');
  }
  return new MultiChannel(list.map((c) => ({ channel: createOne(c, deps), isDefault: !!c.isDefault })),
    { clock: deps.clock, log: deps.log, pollMs: multi.pollMs });
}

function createOne(c: LinkConfig, deps: ChannelDeps): Channel {
  if (!c.interface) throw new ChannelError(`${c.kind} link: Interface is mandatory`);
  switch (c.kind) {
    case 'udp': return new UdpChannel(c, deps);
    case 'multicast': return new MulticastChannel(c, deps);
    case 'tcp': return new TcpChannel(c, deps);
    default: throw new ChannelError(`unknown link kind ${(c as { kind: string }).kind}`);
  }
}

export type { Channel, ChannelStats, DirectTarget, LinkStatus } from './types.js';
export type { LinkReader, LinkInfo } from './link.js';
export type { SockoptBinding, SockoptSource } from './sockopt.js';
export { UdpChannel, type ChannelCounters } from './udp.js';
export { MulticastChannel } from './multicast.js';
export { TcpChannel, StreamReassembler, type TcpCounters, type TcpLinkConfig } from './tcp.js';
// Types only: tls.ts loads node:tls and node:crypto, which a plain link never needs (import it directly).
export type { TlsFiles, TlsMaterial } from './tls.js';
export { MultiChannel, type LinkReport } from './multi.js';
export { createFakePair, FakeChannel } from './fake.js';
