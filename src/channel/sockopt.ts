// The socket options Node's dgram/net cannot set (SO_BINDTODEVICE,
// SO_NO_CHECK, SO_{RCV,SND}BUFFORCE), applied to the fd under a Node socket
// through the native addon. The addon is imported lazily, on first use, so:
//  - unit tests can inject a recording fake and never touch native code;
//  - a daemon built without the sockopt functions fails one channel open()
//    with a ChannelError that says what is missing, instead of crashing at
//    import time.
import type { Socket as DgramSocket } from 'node:dgram';
import type { Server, Socket as NetSocket } from 'node:net';
import { ChannelError } from '../errors.js';

// Linux values (asm-generic/socket.h); ctsync runs on Linux only.
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_NO_CHECK = 11;
export const SO_BINDTODEVICE = 25;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;

/** The two functions this module needs from the native binding. */
export interface SockoptBinding {
  setsockoptFd(fd: number, level: number, name: number, value: number | Buffer): void;
  getsockoptFd?(fd: number, level: number, name: number, size?: number): number | Buffer;
}

/**
 * Builds a loader that imports the native module once and checks it has what
 * this module needs. `importNative` is a parameter so tests can hand in a
 * broken or partial module and see the ChannelError.
 */
export function makeSockoptLoader(importNative: () => Promise<unknown>, what = '../netlink/native.js'): SockoptSource {
  let cached: Promise<SockoptBinding> | undefined;
  return () => {
    cached ??= (async () => {
      let binding: unknown;
      try {
        const mod = (await importNative()) as { loadNative?: () => unknown } | null;
        if (typeof mod?.loadNative !== 'function') throw new Error(`${what} exports no loadNative()`);
        binding = mod.loadNative();
      } catch (e) {
        throw new ChannelError(`cannot load the native addon needed for socket options: ${(e as Error).message}`,
          { module: what }, { cause: e });
      }
      const b = binding as Partial<SockoptBinding> | null;
      if (!b || typeof b.setsockoptFd !== 'function') {
        throw new ChannelError('the native addon has no setsockoptFd(); rebuild it (npm run build:native) - ' +
          'SO_BINDTODEVICE / SO_NO_CHECK / SO_RCVBUFFORCE cannot be set without it', { module: what });
      }
      return b as SockoptBinding;
    })();
    // A failed load is not cached: a later open() may find a rebuilt addon.
    cached.catch(() => { cached = undefined; });
    return cached;
  };
}

// The specifier is a variable so the compiler does not resolve it at build
// time (the native module is owned and built separately); at run time import()
// resolves it relative to this file, in src/ under vitest and in dist/ after a build.
const nativeSpec = '../netlink/native.js';

/** The production loader: the lazily imported native addon. */
export const loadSockoptBinding: SockoptSource = makeSockoptLoader(() => import(nativeSpec));

/** What channels get: a binding source, replaceable in tests. */
export type SockoptSource = () => Promise<SockoptBinding>;

/**
 * The fd of a bound dgram socket, a listening server or a connected net socket.
 * Node has no public accessor; the fd lives on the internal libuv handle
 * (UDPWrap / TCPWrap expose `fd` on Unix). net keeps the handle at `_handle`;
 * dgram keeps it in its private state object (under a symbol described
 * 'state symbol'), and its `_handle` getter still works but prints a
 * deprecation warning (DEP0112), so dgram is read through the state object
 * first. The handle exists only after bind()/listen()/connect().
 */
export function socketFd(sock: DgramSocket | Server | NetSocket): number {
  const fd = handleOf(sock)?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new ChannelError('socket has no file descriptor yet (not bound, or closed)');
  }
  return fd;
}

type Handle = { fd?: unknown } | null | undefined;

function handleOf(sock: object): Handle {
  for (const sym of Object.getOwnPropertySymbols(sock)) {
    if (sym.description !== 'state symbol') continue;
    const state = (sock as Record<symbol, { handle?: Handle } | undefined>)[sym];
    if (state && 'handle' in state) return state.handle;
  }
  return (sock as { _handle?: Handle })._handle;
}

/** Sets one int option; wraps the native error in a ChannelError naming the option. */
export function setIntOpt(b: SockoptBinding, fd: number, name: number, value: number, what: string): void {
  try {
    b.setsockoptFd(fd, SOL_SOCKET, name, value);
  } catch (e) {
    throw new ChannelError(`setsockopt(${what}=${value}) failed: ${(e as Error).message}`, { fd, option: what, value },
      { cause: e });
  }
}

/** SO_BINDTODEVICE takes the interface name as a NUL-terminated string. */
export function bindToDevice(b: SockoptBinding, fd: number, ifname: string): void {
  try {
    b.setsockoptFd(fd, SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${ifname}\0`, 'latin1'));
  } catch (e) {
    throw new ChannelError(`SO_BINDTODEVICE ${ifname} failed: ${(e as Error).message}`, { fd, ifname }, { cause: e });
  }
}
