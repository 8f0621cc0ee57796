// The native UDP seam without the addon: the record format the addon's
// reader packs (length, source, payload) read back into datagrams and
// sources, sockaddr bytes, and the send path's fallback to Node's queue when
// the kernel pushes back (order kept, errors counted). The real addon runs
// in test/system/kernel-channel-native-udp.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { NativeUdpReceiver, sockaddrIn, type NativeUdpBinding } from '../../src/channel/native-udp.js';
import { UdpChannel } from '../../src/channel/udp.js';
import type { SockoptBinding } from '../../src/channel/sockopt.js';
import type { NativeReadCallback } from '../../src/netlink/native.js';
import { ChannelError } from '../../src/errors.js';
import { freeUdpPort, loopbackLinks } from '../helpers/loopback.js';
import { waitFor } from '../helpers/netns.js';

/** One record as the addon packs it: u32le length, port (BE), family, 0, 16 address bytes, payload padded to 4. */
function record(addr: string, port: number, payload: Buffer): Buffer {
  const r = Buffer.alloc(24 + ((payload.length + 3) & ~3));
  r.writeUInt32LE(payload.length, 0);
  r.writeUInt16BE(port, 4);
  r[6] = 4;
  addr.split('.').forEach((o, i) => { r[8 + i] = Number(o); });
  payload.copy(r, 24);
  return r;
}

function fakeBinding(): { b: NativeUdpBinding; feed: NativeReadCallback | null; calls: string[] } {
  const st = { feed: null as NativeReadCallback | null, calls: [] as string[] };
  const b: NativeUdpBinding = {
    udpOpen: (fam) => { st.calls.push(`open ${fam}`); return {}; },
    udpBind: (_h, sa) => { st.calls.push(`bind ${sa.toString('hex')}`); },
    setsockopt: (_h, level, name, value) => { st.calls.push(`setsockopt ${level} ${name} ${String(value)}`); },
    start: (_h, cb) => { st.feed = cb; },
    close: () => { st.calls.push('close'); },
    stats: () => ({ fd: 42 }),
    sendToFd: () => 0,
  };
  return { b, get feed() { return st.feed; }, calls: st.calls };
}

describe('NativeUdpReceiver: the addon records back into datagrams', () => {
  it('delivers each record with its source, reusing the source object for the same peer', () => {
    const f = fakeBinding();
    const got: { d: string; from: { address: string; port: number } }[] = [];
    const errs: number[] = [];
    const rx = new NativeUdpReceiver(f.b, (d, from) => got.push({ d: d.toString(), from }), (e) => errs.push(e));
    rx.bind('192.0.2.1', 3780);
    rx.start();
    const buf = Buffer.concat([
      record('192.0.2.2', 3780, Buffer.from('hello')),
      record('192.0.2.2', 3780, Buffer.from('abcd')),
      record('198.51.100.7', 999, Buffer.from('x')),
      record('198.51.100.7', 1000, Buffer.from('y')),
      Buffer.alloc(64),
    ]);
    const used = buf.length - 64;
    f.feed!(buf, 0, used);
    expect(got.map((g) => g.d)).toEqual(['hello', 'abcd', 'x', 'y']);
    expect(got[0]!.from).toEqual({ address: '192.0.2.2', port: 3780 });
    expect(got[1]!.from).toBe(got[0]!.from);
    expect(got[2]!.from).toEqual({ address: '198.51.100.7', port: 999 });
    expect(got[3]!.from).toEqual({ address: '198.51.100.7', port: 1000 });
    expect(errs).toEqual([]);
    expect(f.calls).toContain(`bind ${sockaddrIn('192.0.2.1', 3780).toString('hex')}`);
  });

  it('stops at a record that runs past the bytes used, and reports the errno it was given', () => {
    const f = fakeBinding();
    const got: string[] = [];
    const errs: number[] = [];
    const rx = new NativeUdpReceiver(f.b, (d) => got.push(d.toString()), (e) => errs.push(e));
    rx.start();
    const buf = Buffer.concat([record('10.0.0.1', 1, Buffer.from('ok')), record('10.0.0.1', 1, Buffer.from('cut short'))]);
    f.feed!(buf, 90, buf.length - 4);
    expect(got).toEqual(['ok']);
    expect(errs).toEqual([90]);
    f.feed!(null, 11, 0);
    expect(errs).toEqual([90, 11]);
  });

  it('builds sockaddr_in bytes and refuses what is not a dotted quad', () => {
    expect(sockaddrIn('10.1.2.3', 3780).toString('hex')).toBe('02000ec40a010203' + '00'.repeat(8));
    for (const bad of ['10.1.2', '10.1.2.256', 'fe80::1', '10..2.3']) expect(() => sockaddrIn(bad, 1)).toThrow(ChannelError);
  });

  it('close() closes the socket once; later use is an error, not a crash', () => {
    const f = fakeBinding();
    const rx = new NativeUdpReceiver(f.b, () => undefined, () => undefined);
    rx.close();
    rx.close();
    expect(f.calls.filter((c) => c === 'close')).toHaveLength(1);
    expect(() => rx.start()).toThrow(ChannelError);
  });
});



describe('UdpChannel send path through sendToFd, with Node as the fallback', () => {
  const open: UdpChannel[] = [];
  const helpers: dgram.Socket[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
    for (const h of helpers.splice(0)) h.close();
  });

  /**
   * A sockopt binding with a scripted sendToFd: it answers from `script` (a number: that
   * result, no datagram; 'send': the datagram really goes, through a helper socket).
   */
  async function sender(port: number, script: (number | 'send')[]) {
    const helper = dgram.createSocket('udp4');
    helpers.push(helper);
    await new Promise<void>((r) => helper.bind(0, '127.0.0.1', () => r()));
    const fastCalls: number[] = [];
    const b: SockoptBinding & { sendToFd(fd: number, buf: Buffer, len: number, sa: Buffer): number } = {
      setsockoptFd: () => undefined,
      sendToFd: (_fd, buf, len, sa) => {
        const step = script.shift() ?? 'send';
        fastCalls.push(buf.readUInt32BE(0));
        if (step !== 'send') return step;
        expect(sa).toEqual(sockaddrIn('127.0.0.2', port));
        helper.send(Buffer.from(buf.subarray(0, len)), port, '127.0.0.2');
        return len;
      },
    };
    const a = new UdpChannel({ kind: 'udp', ipv4Address: '127.0.0.1', destination: '127.0.0.2', port, interface: 'lo' },
      { sockopt: async () => b, links: loopbackLinks });
    const recv = new UdpChannel({ kind: 'udp', ipv4Address: '127.0.0.2', destination: '127.0.0.1', port, interface: 'lo', acceptFrom: 'any' },
      { sockopt: async () => ({ setsockoptFd: () => undefined }), links: loopbackLinks });
    await a.open();
    await recv.open();
    open.push(a, recv);
    const got: number[] = [];
    recv.onMessage((d) => got.push(d.readUInt32BE(0)));
    return { a, got, fastCalls };
  }

  const d = (n: number): Buffer => { const b = Buffer.alloc(8); b.writeUInt32BE(n, 0); return b; };

  it('sends through sendToFd and counts what it sent', async () => {
    const port = await freeUdpPort();
    const { a, got, fastCalls } = await sender(port, []);
    for (let i = 1; i <= 3; i++) a.send(d(i));
    await waitFor(() => got.length === 3, 'three datagrams', 3000);
    expect(fastCalls).toEqual([1, 2, 3]);
    expect(a.stats()).toMatchObject({ packetsSent: 3, bytesSent: 24, errorsSent: 0 });
  });

  it('on EAGAIN hands a copy to Node, and the next ones too until that queue is empty: none overtakes', async () => {
    const port = await freeUdpPort();
    const { a, got, fastCalls } = await sender(port, [-11]);
    // One buffer for all, rewritten after each send() returns, as the sync engine's writer does.
    const buf = Buffer.alloc(8);
    for (let n = 1; n <= 3; n++) {
      buf.writeUInt32BE(n, 0);
      a.send(buf); // 1: EAGAIN, queued in Node; 2, 3: Node's queue is not empty, Node again, behind 1
    }
    buf.writeUInt32BE(99, 0);
    expect(fastCalls).toEqual([1]);
    await waitFor(() => got.length === 3, 'queued datagrams', 3000);
    a.send(d(4)); // queue drained: straight through sendToFd again
    await waitFor(() => got.length === 4, 'fourth datagram', 3000);
    expect(got).toEqual([1, 2, 3, 4]);
    expect(fastCalls).toEqual([1, 4]);
    expect(a.stats()).toMatchObject({ packetsSent: 4, errorsSent: 0 });
  });

  it('counts any other sendto error and drops the datagram (as a socket error would)', async () => {
    const port = await freeUdpPort();
    const { a, got } = await sender(port, [-1, 'send']);
    a.send(d(1)); // EPERM (a firewall rule on the sync link): counted, not retried
    a.send(d(2));
    await waitFor(() => got.length === 1, 'second datagram', 3000);
    expect(got).toEqual([2]);
    expect(a.stats()).toMatchObject({ packetsSent: 1, errorsSent: 1 });
  });
});
