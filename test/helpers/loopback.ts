// Loopback fixtures for channel tests: a link reader that calls every
// interface a running 1500-byte link, and a UDP port free at the moment.
import dgram from 'node:dgram';
import type { LinkReader } from '../../src/channel/link.js';

export const loopbackLinks: LinkReader = { info: (ifname) => ({ ifname, ifindex: 1, mtu: 1500 }), status: () => 'RUNNING' };

export async function freeUdpPort(type: 'udp4' | 'udp6' = 'udp4'): Promise<number> {
  const s = dgram.createSocket(type);
  await new Promise<void>((r) => s.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}
