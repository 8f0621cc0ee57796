// The addon itself against the kernel: netns-bound sockets, sockopts, errors
// with errno/code, the generic fd helpers and AF_UNIX datagrams.
import { createSocket } from 'node:dgram';
import { readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError } from '../../src/errors.js';
import { loadNative, type NativeBinding } from '../../src/netlink/native.js';
import {
  CT_EVENT_GROUPS, NETLINK_BROADCAST_ERROR, NETLINK_NETFILTER, SOL_NETLINK, SOL_SOCKET, SO_NO_CHECK, SO_RCVBUF,
  SO_RCVBUFFORCE,
} from '../../src/netlink/nl-constants.js';
import { NlSocket } from '../../src/netlink/socket.js';
import { socketFd } from '../../src/channel/sockopt.js';
import { isRoot, Lab, waitFor, type Netns } from '../helpers/netns.js';

describe.skipIf(!isRoot)('native netlink addon', () => {
  const lab = new Lab('n');
  let ns: Netns;
  let b: NativeBinding;

  beforeAll(() => {
    ns = lab.netns('nat');
    b = loadNative();
  });

  afterAll(async () => {
    await lab.cleanup();
  });

  it('loads once, and a bad explicit path is a typed NATIVE error', () => {
    expect(loadNative()).toBe(b);
    expect(() => loadNative({ nativeBinding: '/nonexistent/x.node' })).toThrow(NetlinkError);
    try {
      loadNative({ nativeBinding: '/nonexistent/x.node' });
    } catch (e) {
      expect((e as NetlinkError).code).toBe('CTSYNC_ERR_NETLINK_NATIVE');
    }
  });

  it('opens a socket inside a netns and leaves the thread in its own netns', () => {
    const own = readlinkSync('/proc/thread-self/ns/net');
    expect(ns.run('readlink', ['/proc/self/ns/net']).stdout.trim()).not.toBe(own);
    const h = b.open(NETLINK_NETFILTER, ns.path);
    expect(readlinkSync('/proc/thread-self/ns/net')).toBe(own);
    expect(b.bind(h, 0)).toBeGreaterThan(0);
    expect(b.stats(h).fd).toBeGreaterThan(2);
    b.close(h);
    expect(b.stats(h).fd).toBe(-1);
  });

  it('sets and reads int sockopts; SO_RCVBUFFORCE passes rmem_max', () => {
    const h = b.open(NETLINK_NETFILTER);
    b.setsockopt(h, SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20);
    expect(b.getsockopt(h, SOL_SOCKET, SO_RCVBUF)).toBe(128 << 20); // the kernel doubles it
    b.setsockopt(h, SOL_NETLINK, NETLINK_BROADCAST_ERROR, 1);
    expect(b.getsockopt(h, SOL_NETLINK, NETLINK_BROADCAST_ERROR)).toBe(1);
    b.close(h);
  });

  it('throws errors carrying errno and code', () => {
    const err = (fn: () => unknown): { errno: number; code: string } => {
      try {
        fn();
      } catch (e) {
        return e as { errno: number; code: string };
      }
      throw new Error('did not throw');
    };
    expect(err(() => b.open(NETLINK_NETFILTER, '/nonexistent/netns'))).toMatchObject({ errno: 2, code: 'ENOENT' });
    const h = b.open(NETLINK_NETFILTER);
    expect(err(() => b.setsockopt(h, SOL_SOCKET, 9999, 1))).toMatchObject({ code: 'ENOPROTOOPT' });
    b.close(h);
    expect(err(() => b.send(h, Buffer.alloc(16)))).toMatchObject({ errno: 9, code: 'EBADF' });
    expect(() => b.bind({} as never, 0)).toThrow(TypeError);
    // the TS wrapper turns them into NetlinkError with the errno
    const s = new NlSocket({});
    s.close();
    expect(() => s.send(Buffer.alloc(16))).toThrow(NetlinkError);
  });

  it('drain returns null on an empty socket, and a bound event socket starts and stops cleanly', async () => {
    const s = new NlSocket({ netns: ns.path });
    s.bind(CT_EVENT_GROUPS);
    expect(s.drain()).toBeNull();
    let calls = 0;
    s.start(() => calls++);
    expect(() => s.start(() => undefined)).toThrow(/already/);
    ns.run('conntrack', ['-I', '-s', '1.2.3.4', '-d', '5.6.7.8', '-p', 'udp', '--sport', '1', '--dport', '2', '-t', '30']);
    await waitFor(() => calls > 0, 'event callback');
    s.stop();
    s.close();
    expect(s.closed).toBe(true);
  });

  it('delivers every wakeup in one persistent buffer, with the length used', async () => {
    const s = new NlSocket({ netns: ns.path });
    s.bind(CT_EVENT_GROUPS);
    const bufs = new Set<Buffer>();
    const lens: number[] = [];
    let bytes = 0;
    const start = (): void => s.start(((buf: Buffer | null, errno: number, len?: number) => {
      expect(errno).toBe(0);
      if (!buf) return;
      bufs.add(buf);
      lens.push(len!);
      expect(len!).toBeGreaterThan(0);
      expect(len!).toBeLessThanOrEqual(buf.length);
      expect(buf.readUInt32LE(0)).toBeLessThanOrEqual(len!); // the first message lies within the used part
      bytes += len!;
    }) as Parameters<NlSocket['start']>[0]);
    start();
    for (let i = 0; i < 3; i++) {
      ns.run('conntrack', ['-I', '-s', '1.2.3.4', '-d', '5.6.7.8', '-p', 'udp', '--sport', String(100 + i), '--dport', '2', '-t', '30']);
      await waitFor(() => lens.length > i, `event ${i}`);
    }
    expect(bufs.size).toBe(1);
    // A restart gets a fresh buffer (the old one stays valid for whoever still holds it).
    s.stop();
    start();
    ns.run('conntrack', ['-I', '-s', '1.2.3.4', '-d', '5.6.7.8', '-p', 'udp', '--sport', '200', '--dport', '2', '-t', '30']);
    await waitFor(() => lens.length > 3, 'event after restart');
    expect(bufs.size).toBe(2);
    expect(s.stats().bytes).toBe(bytes);
    s.stop();
    s.close();
  });

  it('setsockoptFd/getsockoptFd work on a Node dgram socket fd', async () => {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const fd = socketFd(sock); // the project's accessor (no deprecated _handle)
    expect(fd).toBeGreaterThan(2);
    b.setsockoptFd(fd, SOL_SOCKET, SO_NO_CHECK, 1);
    expect(b.getsockoptFd(fd, SOL_SOCKET, SO_NO_CHECK)).toBe(1);
    const raw = b.getsockoptFd(fd, SOL_SOCKET, SO_RCVBUF, 4);
    expect(Buffer.isBuffer(raw) && raw.length === 4).toBe(true);
    b.setsockoptFd(fd, SOL_SOCKET, SO_RCVBUF, Buffer.from(Int32Array.of(65536).buffer));
    expect(b.getsockoptFd(fd, SOL_SOCKET, SO_RCVBUF)).toBe(131072);
    sock.close();
  });

  it('sendUnixDatagram reaches a path socket and an abstract one', async () => {
    const path = `/tmp/${lab.id}.sock`;
    const name = `${lab.id}-abs`;
    const got: string[] = [];
    for (const addr of [`UNIX-RECV:${path}`, `ABSTRACT-RECV:${name}`]) {
      const p = lab.spawn(null, 'socat', ['-u', addr, '-']);
      p.stdout!.on('data', (d: Buffer) => got.push(d.toString()));
    }
    await waitFor(() => {
      try {
        b.sendUnixDatagram(path, Buffer.from('READY=1\n'));
        b.sendUnixDatagram(`@${name}`, Buffer.from('STATUS=x\n'));
        return true;
      } catch {
        return false;
      }
    }, 'unix receivers');
    await waitFor(() => got.join('').includes('READY=1') && got.join('').includes('STATUS=x'), 'datagrams');
    expect(() => b.sendUnixDatagram('/nonexistent/sock', Buffer.from('x'))).toThrow(/ENOENT/);
  });
});

