// TCP: the stream is cut back into whole messages whatever the read
// boundaries are, and the channel connects, queues while disconnected,
// filters peers and reconnects (on loopback, with a sockopt fake).
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import fc from 'fast-check';
import { StreamReassembler, TcpChannel } from '../../src/channel/tcp.js';
import type { LinkReader } from '../../src/channel/link.js';
import type { SockoptBinding } from '../../src/channel/sockopt.js';
import type { Channel } from '../../src/channel/types.js';
import { waitFor } from '../helpers/netns.js';

/** A message of `len` bytes (len ≥ 8, multiple of 4) whose body bytes encode `tag`. */
function msg(len: number, tag: number): Buffer {
  const b = Buffer.alloc(len, tag & 0xff);
  b[0] = 0x10;
  b[1] = 0;
  b.writeUInt16BE(len, 2);
  b.writeUInt32BE(tag, 4);
  return b;
}

/** Splits the delivered datagrams back into messages, checking each datagram holds whole ones. */
function messagesOf(datagrams: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const d of datagrams) {
    let off = 0;
    while (off < d.length) {
      const len = d.readUInt16BE(off + 2);
      expect(off + len).toBeLessThanOrEqual(d.length);
      out.push(d.subarray(off, off + len));
      off += len;
    }
  }
  return out;
}

function collect(): { r: StreamReassembler; got: Buffer[]; corrupt: number[] } {
  const got: Buffer[] = [];
  const corrupt: number[] = [];
  const r = new StreamReassembler((d) => got.push(Buffer.from(d)), (len) => corrupt.push(len));
  return { r, got, corrupt };
}

describe('StreamReassembler', () => {
  const msgs = [msg(8, 1), msg(76, 2), msg(12, 3), msg(100, 4), msg(8, 5)];
  const stream = Buffer.concat(msgs);

  it('delivers whole messages when the stream is split in two at every byte boundary', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const { r, got, corrupt } = collect();
      r.push(stream.subarray(0, cut));
      r.push(stream.subarray(cut));
      expect(messagesOf(got)).toEqual(msgs);
      expect(corrupt).toEqual([]);
      expect(r.buffered).toBe(0);
    }
  });

  it('delivers whole messages when split in three at every pair of boundaries', () => {
    const small = Buffer.concat([msg(8, 1), msg(20, 2), msg(12, 3), msg(8, 4)]);
    let failures = 0;
    for (let i = 0; i <= small.length; i++) {
      for (let j = i; j <= small.length; j++) {
        const { r, got } = collect();
        r.push(small.subarray(0, i));
        r.push(small.subarray(i, j));
        r.push(small.subarray(j));
        if (!Buffer.concat(messagesOf(got)).equals(small) || r.buffered !== 0) failures++;
      }
    }
    expect(failures).toBe(0);
  });

  it('delivers whole messages one byte at a time', () => {
    const { r, got } = collect();
    for (let i = 0; i < stream.length; i++) r.push(stream.subarray(i, i + 1));
    expect(got).toEqual(msgs);
  });

  it('holds any random chunking of any message sequence (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 2, max: 400 }), { minLength: 1, maxLength: 30 }),
      fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 60 }),
      (words, cuts) => {
        const ms = words.map((w, i) => msg(w * 4, i));
        const s = Buffer.concat(ms);
        const { r, got } = collect();
        let off = 0;
        for (const c of cuts) {
          if (off >= s.length) break;
          r.push(s.subarray(off, off + c));
          off += c;
        }
        if (off < s.length) r.push(s.subarray(off));
        expect(messagesOf(got)).toEqual(ms);
      }), { numRuns: 50 });
  });

  it('reports a length below the header size as corruption and delivers what came before', () => {
    const { r, got, corrupt } = collect();
    const bad = msg(8, 9);
    bad.writeUInt16BE(4, 2);
    r.push(Buffer.concat([msg(8, 1), bad, msg(8, 2)]));
    expect(got).toEqual([msg(8, 1)]);
    expect(corrupt).toEqual([4]);
    // In the straddling path too.
    const c2 = collect();
    c2.r.push(bad.subarray(0, 3));
    c2.r.push(bad.subarray(3));
    expect(c2.corrupt).toEqual([4]);
  });
});

const lo: LinkReader = { info: (ifname) => ({ ifname, ifindex: 1, mtu: 1500 }), status: () => 'RUNNING' };
const so = async (): Promise<SockoptBinding> => ({ setsockoptFd: () => {} });

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

const open: Channel[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function tcp(self: string, peer: string, port: number, extra: object = {}): TcpChannel {
  const c = new TcpChannel({ kind: 'tcp', ipv4Address: self, destination: peer, port, interface: 'lo', ...extra }, { sockopt: so, links: lo });
  open.push(c);
  return c;
}

describe('TcpChannel on loopback', () => {
  it('sizes MTU - 40 - 1, connects both ways and delivers whole messages', async () => {
    const port = await freePort();
    const a = tcp('127.0.0.1', '127.0.0.2', port);
    const b = tcp('127.0.0.2', '127.0.0.1', port);
    await a.open();
    await b.open();
    expect(a.maxDatagram).toBe(1459);
    await waitFor(() => a.stats().connected && b.stats().connected, 'connections', 5000);
    const gotB: Buffer[] = [];
    const gotA: Buffer[] = [];
    b.onMessage((d, from) => { gotB.push(Buffer.from(d)); expect(from.address).toBe('127.0.0.1'); });
    a.onMessage((d) => gotA.push(Buffer.from(d)));
    const sent: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const m = msg(8 + (i % 50) * 4, i);
      sent.push(m);
      a.send(m);
    }
    b.send(msg(16, 7));
    // The caller may reuse its buffer as soon as send() returns.
    const reused = msg(8, 1000);
    a.send(reused);
    reused.fill(0xee);
    sent.push(msg(8, 1000));
    await waitFor(() => messagesOf(gotB).length === 201 && gotA.length === 1, 'messages', 5000);
    expect(messagesOf(gotB)).toEqual(sent);
    expect(a.stats()).toMatchObject({ packetsSent: 201, connected: true, errorsSent: 0 });
    expect(b.stats().bytesRecv).toBe(Buffer.concat(sent).length);
  });

  it('queues datagrams while the peer is away (bounded by errorQueueLength) and sends them on connect', async () => {
    const port = await freePort();
    const a = tcp('127.0.0.1', '127.0.0.2', port, { errorQueueLength: 3 });
    await a.open();
    for (let i = 0; i < 5; i++) a.send(msg(8, i));
    expect(a.stats()).toMatchObject({ errorQueue: 3, errorsSent: 2, connected: false });
    const b = tcp('127.0.0.2', '127.0.0.1', port);
    const got: Buffer[] = [];
    b.onMessage((d) => got.push(Buffer.from(d)));
    await b.open();
    // a's client retries at most once a second.
    await waitFor(() => messagesOf(got).length === 3, 'queued messages', 5000);
    expect(messagesOf(got)).toEqual([msg(8, 0), msg(8, 1), msg(8, 2)]);
    expect(a.stats().errorQueue).toBe(0);
  });

  it('reconnects after the peer restarts', async () => {
    const port = await freePort();
    const a = tcp('127.0.0.1', '127.0.0.2', port);
    let b = tcp('127.0.0.2', '127.0.0.1', port);
    await a.open();
    await b.open();
    await waitFor(() => a.stats().connected, 'first connection', 5000);
    await b.close();
    await waitFor(() => !a.stats().connected, 'disconnect seen', 5000);
    b = tcp('127.0.0.2', '127.0.0.1', port);
    const got: Buffer[] = [];
    b.onMessage((d) => got.push(Buffer.from(d)));
    await b.open();
    await waitFor(() => a.stats().connected, 'reconnection', 5000);
    a.send(msg(8, 42));
    await waitFor(() => got.length === 1, 'message after reconnect', 5000);
  });

  it('refuses connections from other sources, and drops a peer whose stream is corrupt', async () => {
    const port = await freePort();
    const b = tcp('127.0.0.2', '127.0.0.1', port);
    await b.open();
    const intruder = net.connect({ host: '127.0.0.2', port, localAddress: '127.0.0.3' });
    intruder.on('error', () => {});
    await waitFor(() => b.stats().rejectedSource === 1, 'rejection', 3000);
    intruder.destroy();
    const peer = net.connect({ host: '127.0.0.2', port, localAddress: '127.0.0.1' });
    peer.on('error', () => {});
    await new Promise((r) => peer.once('connect', r));
    await waitFor(() => b.stats().peerConnected, 'peer accepted', 3000);
    const bad = msg(8, 1);
    bad.writeUInt16BE(2, 2);
    peer.write(bad);
    await waitFor(() => b.stats().errorsRecv === 1 && !b.stats().peerConnected, 'corrupt stream dropped', 3000);
    peer.destroy();
  });
});
