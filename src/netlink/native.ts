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
 * `fastSeq`: on an event socket with the fast path on, the sequence number the
 * addon sent the read's one event under (src/daemon/fast-path.ts), else -1.
 */
export type NativeReadCallback = (buf: Buffer | null, errno: number, len?: number, fastSeq?: number) => void;

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
  /** mallopt(M_MMAP_THRESHOLD, bytes) (see ops/malloc.ts); true if glibc took it. Absent in older builds. */
  mallocMmapThreshold?(bytes: number): boolean;
  /**
   * The lone-event fast path on an event socket (src/daemon/fast-path.ts): `state` is the shared
   * block of int32 words, `conf` the configuration; `state` null turns it off. Absent in older builds.
   */
  fastPath?(h: NativeHandle, state: Buffer | null, conf?: Buffer): void;
  /** The fast path's encoder alone: the CT_NEW message for one netlink message, its length or a negative refusal. */
  fastEncode?(conf: Buffer, msg: Buffer, seq: number, out: Buffer): number;
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

/**
 * A Buffer the addon makes (napi_create_external_buffer, napi_create_buffer_copy)
 * is a Uint8Array given Buffer's prototype afterwards, and V8 gives it a hidden
 * class of its own, not the one of Buffers made in JS (`%HaveSameMap` says
 * false). Every reader that sees both (the byte readers and the decoders: kernel
 * events come from the addon, peer datagrams as JS subarrays, the warm-up's
 * synthetic events from JS) then holds two maps, and its compiled code was
 * thrown away ("wrong map") the first time the second one turned up, in the
 * middle of a burst. A JS view over the same memory has the one class of all
 * Buffers: made once per persistent read buffer, once per dump chunk.
 */
function asJsBuffer(b: Buffer): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** The read callback, handed JS views of the addon's persistent buffer (one view per buffer, not per wakeup). */
function jsBufferCallback(cb: NativeReadCallback): NativeReadCallback {
  let raw: Buffer | null = null;
  let view: Buffer | null = null;
  return (buf, errno, len, fastSeq) => {
    if (buf !== null && buf !== raw) {
      raw = buf;
      view = asJsBuffer(buf);
    }
    cb(buf === null ? null : view, errno, len, fastSeq);
  };
}

/**
 * The addon's binding (its prototype: every function stays reachable) with the Buffers of its read
 * paths seen through asJsBuffer: start()'s persistent buffer and drain()'s chunks. getsockopt's
 * small replies, read once at setup, stay as the addon makes them.
 */
function withJsBuffers(b: NativeBinding): NativeBinding {
  // Defined, not assigned: the addon's own properties are read-only, and so would be an assignment's target.
  const start: NativeBinding['start'] = (h, cb) => b.start(h, jsBufferCallback(cb));
  const drain: NativeBinding['drain'] = (h, maxBytes) => {
    const r = b.drain(h, maxBytes);
    return r === null ? null : asJsBuffer(r);
  };
  return Object.create(b, { start: { value: start, enumerable: true }, drain: { value: drain, enumerable: true } }) as NativeBinding;
}

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
  binding = withJsBuffers(binding);
  if (!explicit) cached = binding;
  return binding;
}
