// The single loader for the native addon (better-sqlite3 style): an explicit
// binding object or path wins, then $CTSYNC_NATIVE, then the node-gyp output
// under the package root. Everything above this file talks to NativeBinding,
// so unit tests substitute a fake.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetlinkError } from '../errors.js';

/** Opaque socket handle owned by the addon. */
export type NativeHandle = object;

export interface NativeStats {
  datagrams: number;
  wakeups: number;
  enobufs: number;
  pollRestarts: number;
  bytes: number;
  truncated: number;
  fd: number;
}

/**
 * Called once per wakeup with all datagrams read, packed back to back into the
 * socket's persistent buffer: only its first `len` bytes are this wakeup's, and
 * only until the callback returns. errno is 0, ENOBUFS, EMSGSIZE or a fatal errno.
 */
export type NativeReadCallback = (buf: Buffer | null, errno: number, len?: number) => void;

export interface NativeBinding {
  open(protocol: number, netnsPath?: string | null): NativeHandle;
  bind(h: NativeHandle, groupsMask: number): number;
  setsockopt(h: NativeHandle, level: number, name: number, value: number | Buffer): void;
  getsockopt(h: NativeHandle, level: number, name: number): number;
  send(h: NativeHandle, buf: Buffer): number;
  /** Non-blocking read until EAGAIN or maxBytes; null when nothing is queued. Throws (errno) on ENOBUFS/MSG_TRUNC. */
  drain(h: NativeHandle, maxBytes?: number): Buffer | null;
  start(h: NativeHandle, cb: NativeReadCallback): void;
  stop(h: NativeHandle): void;
  close(h: NativeHandle): void;
  stats(h: NativeHandle): NativeStats;
  setsockoptFd(fd: number, level: number, name: number, value: number | Buffer): void;
  getsockoptFd(fd: number, level: number, name: number): number;
  getsockoptFd(fd: number, level: number, name: number, size: number): Buffer;
  sendUnixDatagram(path: string, buf: Buffer): number;
  /** sched_setscheduler(0, policy, {priority}) for the calling (JS main) thread; throws the errno. */
  setScheduler(policy: number, priority: number): void;
  /** malloc_trim(0): the C heap's free memory back to the kernel; true if any was released. Absent in older builds. */
  mallocTrim?(): boolean;
  /** AES-256-GCM session key (32 bytes) for gcmSeal/gcmOpen (src/channel/aead.ts). Absent without OpenSSL's headers. */
  gcmKey?(key: Buffer): unknown;
  /** Encrypts buf[aadLen, +len) in place and writes the 16-byte tag after it. */
  gcmSeal?(key: unknown, buf: Buffer, aadLen: number, len: number, nonce: Buffer): void;
  /** Decrypts buf[aadLen, +len) into out and checks the tag after it; false on a mismatch. */
  gcmOpen?(key: unknown, buf: Buffer, aadLen: number, len: number, nonce: Buffer, out: Buffer): boolean;
}

/** Shape of errors the addon throws. */
export interface NativeErrno extends Error {
  errno: number;
  code: string;
}

export function errnoOf(e: unknown): number {
  const n = (e as { errno?: unknown } | null)?.errno;
  return typeof n === 'number' ? Math.abs(n) : 0;
}

const ADDON_REL = join('native', 'build', 'Release', 'ctsync_netlink.node');

/** Walks up from this module (src/netlink or dist/src/netlink) to the directory holding package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native'))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new NetlinkError('CTSYNC_ERR_NETLINK_NATIVE', 'cannot find the ctsync package root (package.json next to native/)');
}

let cached: NativeBinding | undefined;

export interface LoadNativeOptions {
  /** A binding object (tests) or a path to a .node file. */
  nativeBinding?: NativeBinding | string;
}

export function loadNative(opts: LoadNativeOptions = {}): NativeBinding {
  if (typeof opts.nativeBinding === 'object') return opts.nativeBinding;
  const explicit = opts.nativeBinding ?? process.env.CTSYNC_NATIVE;
  if (!explicit && cached) return cached;
  const path = explicit ? resolve(explicit) : join(packageRoot(), ADDON_REL);
  const require = createRequire(import.meta.url);
  let binding: NativeBinding;
  try {
    binding = require(path) as NativeBinding;
  } catch (e) {
    throw new NetlinkError('CTSYNC_ERR_NETLINK_NATIVE',
      `cannot load the native netlink addon from ${path} (run \`npm run build:native\`): ${(e as Error).message}`, 0,
      { path });
  }
  if (!explicit) cached = binding;
  return binding;
}
