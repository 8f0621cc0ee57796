// UDP channel on loopback with a recording sockopt fake (no native addon):
// datagrams flow both ways, options land on the right sockets, foreign
// sources are dropped and counted, and nothing is thrown out of send/receive.
import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { UdpChannel } from '../../src/channel/udp.js';
import { createChannel } from '../../src/channel/index.js';
import { SO_BINDTODEVICE, SO_NO_CHECK, SO_RCVBUFFORCE, SO_SNDBUFFORCE, type SockoptBinding } from '../../src/channel/sockopt.js';
import type { Channel } from '../../src/channel/types.js';
import { ChannelError } from '../../src/errors.js';
import { freeUdpPort, loopbackLinks } from '../helpers/loopback.js';
import { waitFor } from '../helpers/netns.js';

type Call = { fd: number; level: number; name: number; value: number | Buffer };

function recorder(): { so: () => Promise<SockoptBinding>; calls: Call[] } {
  const calls: Call[] = [];
  const b: SockoptBinding = { setsockoptFd: (fd, level, name, value) => { calls.push({ fd, level, name, value }); } };
  return { so: async () => b, calls };
}



const open: Channel[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

async function pair(port: number, extra: { a?: object; b?: object } = {}) {
  const ra = recorder();
  const rb = recorder();
  const a = new UdpChannel({ kind: 'udp', ipv4Address: '127.0.0.1', destination: '127.0.0.2', port, interface: 'lo', checksum: false,
    rcvBuf: 262144, sndBuf: 131072, ...extra.a }, { sockopt: ra.so, links: loopbackLinks });
  const b = new UdpChannel({ kind: 'udp', ipv4Address: '127.0.0.2', destination: '127.0.0.1', port, interface: 'lo', ...extra.b },
    { sockopt: rb.so, links: loopbackLinks });
  await a.open();
  await b.open();
  open.push(a, b);
  return { a, b, ra, rb };
}

describe('UdpChannel on loopback', () => {
  it('sizes datagrams MTU - 28 - 1 for IPv4', async () => {
    const { a } = await pair(await freeUdpPort());
    expect(a.maxDatagram).toBe(1471);
    expect(a.kind).toBe('UDP');
    expect(a.ifname).toBe('lo');
  });

  it('sends and receives whole datagrams both ways, with stats', async () => {
    const { a, b } = await pair(await freeUdpPort());
    const gotA: Buffer[] = [];
    const gotB: { d: Buffer; from: string }[] = [];
    a.onMessage((d) => gotA.push(Buffer.from(d)));
    b.onMessage((d, from) => gotB.push({ d: Buffer.from(d), from: from.address }));
    const msg = Buffer.from([0x10, 0, 0, 8, 0, 0, 0, 1]);
    for (let i = 0; i < 5; i++) a.send(msg);
    b.send(Buffer.alloc(1471, 0x1a));
    await waitFor(() => gotB.length === 5 && gotA.length === 1, 'datagrams', 3000);
    expect(gotB[0]!.d).toEqual(msg);
    expect(gotB[0]!.from).toBe('127.0.0.1');
    expect(gotA[0]!.length).toBe(1471);
    await waitFor(() => a.stats().packetsSent === 5, 'send callbacks', 3000);
    expect(a.stats()).toMatchObject({ bytesSent: 40, packetsSent: 5, packetsRecv: 1, bytesRecv: 1471, errorsSent: 0 });
    expect(b.stats()).toMatchObject({ bytesRecv: 40, packetsRecv: 5, rejectedSource: 0 });
  });

  it('binds both sockets to the interface and sets SO_NO_CHECK / buffers on the right ones', async () => {
    const { ra, rb } = await pair(await freeUdpPort());
    const byName = (calls: Call[], name: number) => calls.filter((c) => c.name === name);
    const bind = byName(ra.calls, SO_BINDTODEVICE);
    expect(bind).toHaveLength(2);
    expect(bind.every((c) => Buffer.isBuffer(c.value) && c.value.toString('latin1') === 'lo\0')).toBe(true);
    expect(new Set(bind.map((c) => c.fd)).size).toBe(2);
    const rxFd = bind[0]!.fd;
    const txFd = bind[1]!.fd;
    expect(byName(ra.calls, SO_RCVBUFFORCE)).toEqual([{ fd: rxFd, level: 1, name: SO_RCVBUFFORCE, value: 262144 }]);
    expect(byName(ra.calls, SO_NO_CHECK)).toEqual([{ fd: txFd, level: 1, name: SO_NO_CHECK, value: 1 }]);
    expect(byName(ra.calls, SO_SNDBUFFORCE)).toEqual([{ fd: txFd, level: 1, name: SO_SNDBUFFORCE, value: 131072 }]);
    // Defaults: checksum on → SO_NO_CHECK 0; no buffer sizes → no FORCE calls.
    expect(byName(rb.calls, SO_NO_CHECK).map((c) => c.value)).toEqual([0]);
    expect(byName(rb.calls, SO_RCVBUFFORCE)).toHaveLength(0);
  });

  it('drops and counts datagrams from sources other than the peer', async () => {
    const port = await freeUdpPort();
    const { b } = await pair(port);
    const got: string[] = [];
    b.onMessage((_d, from) => got.push(from.address));
    const intruder = dgram.createSocket('udp4');
    await new Promise<void>((r) => intruder.bind(0, '127.0.0.3', () => r()));
    for (let i = 0; i < 3; i++) intruder.send(Buffer.from([0x10, 0, 0, 8, 0, 0, 0, 9]), port, '127.0.0.2');
    await waitFor(() => b.stats().rejectedSource === 3, 'rejections', 3000);
    intruder.close();
    expect(got).toEqual([]);
    expect(b.stats().packetsRecv).toBe(0);
  });

  it('accepts any source with acceptFrom "any" (conntrackd behaviour) or an explicit list', async () => {
    const port = await freeUdpPort();
    const { a, b } = await pair(port, { b: { acceptFrom: 'any' }, a: { acceptFrom: ['127.0.0.3'] } });
    const gotB: string[] = [];
    const gotA: string[] = [];
    b.onMessage((_d, from) => gotB.push(from.address));
    a.onMessage((_d, from) => gotA.push(from.address));
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.3', () => r()));
    s.send(Buffer.alloc(8), port, '127.0.0.2');
    s.send(Buffer.alloc(8), port, '127.0.0.1');
    b.send(Buffer.alloc(8)); // from 127.0.0.2: not on a's list
    await waitFor(() => gotB.length === 1 && gotA.length === 1 && a.stats().rejectedSource === 1, 'filtering', 3000);
    s.close();
    expect(gotB).toEqual(['127.0.0.3']);
    expect(gotA).toEqual(['127.0.0.3']);
  });

  it('works over IPv6 loopback (::1), sized MTU - 48 - 1', async () => {
    const port = await freeUdpPort('udp6');
    const r = recorder();
    const c = new UdpChannel({ kind: 'udp', ipv6Address: '::1', destination: '::1', port, interface: 'lo' }, { sockopt: r.so, links: loopbackLinks });
    await c.open();
    open.push(c);
    expect(c.maxDatagram).toBe(1451);
    const got: { d: Buffer; from: string }[] = [];
    c.onMessage((d, from) => got.push({ d: Buffer.from(d), from: from.address }));
    c.send(Buffer.from('0123456789abcdef'));
    await waitFor(() => got.length === 1, 'v6 datagram', 3000);
    expect(got[0]!.d.toString()).toBe('0123456789abcdef');
    expect(got[0]!.from).toBe('::1');
  });

  it('never throws out of send or receive: counts instead', async () => {
    const port = await freeUdpPort();
    const { a, b } = await pair(port);
    b.onMessage(() => { throw new Error('consumer bug'); });
    a.send(Buffer.alloc(8));
    await waitFor(() => b.stats().errorsRecv === 1, 'receive error counted', 3000);
    // Too big for UDP: the kernel refuses it, the channel counts it.
    a.send(Buffer.alloc(70000));
    await waitFor(() => a.stats().errorsSent === 1, 'send error counted', 3000);
    await a.close();
    expect(() => a.send(Buffer.alloc(8))).not.toThrow();
    expect(a.stats().errorsSent).toBe(2);
  });

  it('fails open() with a ChannelError when sockopts are unavailable, and frees the port', async () => {
    const port = await freeUdpPort();
    const broken = async (): Promise<SockoptBinding> => ({ setsockoptFd: () => { throw new Error('ENOPROTOOPT'); } });
    const c = new UdpChannel({ kind: 'udp', ipv4Address: '127.0.0.1', destination: '127.0.0.2', port, interface: 'lo' },
      { sockopt: broken, links: loopbackLinks });
    await expect(c.open()).rejects.toBeInstanceOf(ChannelError);
    await expect(c.open()).rejects.toThrow(/SO_BINDTODEVICE lo failed: ENOPROTOOPT/);
  });

  it('rejects a config without Interface or destination', () => {
    expect(() => createChannel({ kind: 'udp', destination: '127.0.0.1', port: 1, interface: '' })).toThrow(ChannelError);
    expect(() => createChannel({ kind: 'udp', port: 1, interface: 'lo' })).toThrow(/destination/);
  });
});
