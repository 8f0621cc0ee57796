// The UDP link through the real native addon, on loopback: the addon reads the
// receive socket in batches (recvmmsg) and sends with sendto() on Node's
// socket. Datagrams of every size up to the MTU arrive whole, in order and
// with their source; a burst the socket buffer holds is not lost; foreign
// sources are still dropped and counted; closing stops reception.
import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { UdpChannel } from '../../src/channel/udp.js';
import { freeUdpPort, loopbackLinks } from '../helpers/loopback.js';
import { waitFor } from '../helpers/netns.js';



const open: UdpChannel[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

async function pair(port: number, bExtra: object = {}): Promise<{ a: UdpChannel; b: UdpChannel }> {
  const a = new UdpChannel({ kind: 'udp', ipv4Address: '127.0.0.1', destination: '127.0.0.2', port, interface: 'lo' }, { links: loopbackLinks });
  const b = new UdpChannel({ kind: 'udp', ipv4Address: '127.0.0.2', destination: '127.0.0.1', port, interface: 'lo',
    rcvBuf: 16 << 20, ...bExtra }, { links: loopbackLinks });
  await a.open();
  await b.open();
  open.push(a, b);
  return { a, b };
}

describe('UDP link through the native addon (loopback, real sockets)', () => {
  it('reads with the addon and delivers every size up to the MTU whole, in order, with the source', async () => {
    const { a, b } = await pair(await freeUdpPort());
    expect(a.nativeReceive && b.nativeReceive).toBe(true);
    const got: { n: number; len: number; ok: boolean; from: string }[] = [];
    b.onMessage((d, from) => {
      const n = d.readUInt32BE(0);
      got.push({ n, len: d.length, ok: d.subarray(4).every((x) => x === (n & 0xff)), from: `${from.address}:${from.port > 0}` });
    });
    const N = 1468;
    for (let i = 0; i < N; i++) {
      const d = Buffer.alloc(4 + i, i & 0xff);
      d.writeUInt32BE(i, 0);
      a.send(d);
      if ((i & 63) === 63) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => got.length === N, `${N} datagrams`, 5000);
    expect(got.map((g) => g.n)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(got.every((g, i) => g.len === 4 + i && g.ok && g.from === '127.0.0.1:true')).toBe(true);
    expect(a.stats()).toMatchObject({ packetsSent: N, errorsSent: 0 });
    expect(b.stats()).toMatchObject({ packetsRecv: N, errorsRecv: 0, rejectedSource: 0 });
  });

  it('loses nothing of a 20,000-datagram burst sent 256 at a time (one event-loop turn between)', async () => {
    const { a, b } = await pair(await freeUdpPort());
    let got = 0;
    let inOrder = true;
    b.onMessage((d) => {
      if (d.readUInt32BE(0) !== got) inOrder = false;
      got++;
    });
    const d = Buffer.alloc(1400);
    for (let i = 0; i < 20_000; i++) {
      d.writeUInt32BE(i, 0);
      a.send(Buffer.from(d));
      if ((i & 255) === 255) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => got === 20_000, 'the whole burst', 10_000);
    expect(inOrder).toBe(true);
  });

  it('drops and counts datagrams from other sources; "any" accepts them', async () => {
    const port = await freeUdpPort();
    const { b } = await pair(port);
    const intruder = dgram.createSocket('udp4');
    await new Promise<void>((r) => intruder.bind(0, '127.0.0.3', () => r()));
    try {
      const got: string[] = [];
      b.onMessage((_d, from) => got.push(from.address));
      for (let i = 0; i < 3; i++) intruder.send(Buffer.alloc(8), port, '127.0.0.2');
      await waitFor(() => b.stats().rejectedSource === 3, 'rejections', 3000);
      expect(got).toEqual([]);

      const port2 = await freeUdpPort();
      const { b: any } = await pair(port2, { acceptFrom: 'any' });
      const got2: string[] = [];
      any.onMessage((_d, from) => got2.push(from.address));
      intruder.send(Buffer.alloc(8), port2, '127.0.0.2');
      await waitFor(() => got2.length === 1, 'accepted', 3000);
      expect(got2).toEqual(['127.0.0.3']);
    } finally {
      intruder.close();
    }
  });

  it('closes: the port is free again and nothing more is delivered', async () => {
    const port = await freeUdpPort();
    const { a, b } = await pair(port);
    let got = 0;
    b.onMessage(() => { got++; });
    await b.close();
    a.send(Buffer.alloc(8));
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toBe(0);
    const again = new UdpChannel({ kind: 'udp', ipv4Address: '127.0.0.2', destination: '127.0.0.1', port, interface: 'lo' }, { links: loopbackLinks });
    await again.open();
    open.push(again);
    expect(again.nativeReceive).toBe(true);
  });
});
