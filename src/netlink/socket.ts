// A netlink socket over a native handle. The binding is injected so the
// request and event engines run against a fake in unit tests.
import { NetlinkError } from '../errors.js';
import { errnoOf, loadNative, type NativeBinding, type NativeHandle, type NativeReadCallback, type NativeStats } from './native.js';
import { NETLINK_NETFILTER } from './nl-constants.js';

export interface NlSocketOptions {
  protocol?: number;
  /** /var/run/netns/NAME (or any nsfs path): the socket lives in that netns for life. */
  netns?: string;
  binding?: NativeBinding;
}

function wrap(e: unknown, op: string, ctx: Record<string, unknown>): NetlinkError {
  const errno = errnoOf(e);
  return new NetlinkError('CTSYNC_ERR_NETLINK_NATIVE', `netlink ${op} failed: ${(e as Error)?.message ?? String(e)}`, errno,
    { op, ...ctx });
}

export class NlSocket {
  readonly binding: NativeBinding;
  readonly netns: string | undefined;
  private handle: NativeHandle | null;
  portid = 0;

  constructor(opts: NlSocketOptions = {}) {
    this.binding = opts.binding ?? loadNative();
    this.netns = opts.netns;
    try {
      this.handle = this.binding.open(opts.protocol ?? NETLINK_NETFILTER, opts.netns ?? null);
    } catch (e) {
      throw wrap(e, 'open', { netns: opts.netns });
    }
  }

  private h(): NativeHandle {
    if (!this.handle) throw new NetlinkError('CTSYNC_ERR_NETLINK_NATIVE', 'netlink socket is closed', 9 /* EBADF */);
    return this.handle;
  }

  get closed(): boolean {
    return this.handle === null;
  }

  bind(groups = 0): number {
    try {
      this.portid = this.binding.bind(this.h(), groups);
    } catch (e) {
      throw wrap(e, 'bind', { groups, netns: this.netns });
    }
    return this.portid;
  }

  setInt(level: number, name: number, value: number): void {
    try {
      this.binding.setsockopt(this.h(), level, name, value);
    } catch (e) {
      throw wrap(e, 'setsockopt', { level, name, value });
    }
  }

  getInt(level: number, name: number): number {
    try {
      return this.binding.getsockopt(this.h(), level, name);
    } catch (e) {
      throw wrap(e, 'getsockopt', { level, name });
    }
  }

  send(buf: Buffer): number {
    try {
      return this.binding.send(this.h(), buf);
    } catch (e) {
      throw wrap(e, 'send', { bytes: buf.length });
    }
  }

  /** Throws NetlinkError with errno ENOBUFS/EMSGSIZE when replies were lost. */
  drain(maxBytes?: number): Buffer | null {
    try {
      return this.binding.drain(this.h(), maxBytes);
    } catch (e) {
      throw wrap(e, 'recv', {});
    }
  }

  start(cb: NativeReadCallback): void {
    try {
      this.binding.start(this.h(), cb);
    } catch (e) {
      throw wrap(e, 'start', {});
    }
  }

  stop(): void {
    if (this.handle) this.binding.stop(this.handle);
  }

  /** The addon's lone-event fast path on this socket (see NativeBinding.fastPath); false when the addon has none. */
  fastPath(state: Buffer | null, conf?: Buffer): boolean {
    const b = this.binding;
    if (typeof b.fastPath !== 'function') return false;
    try {
      b.fastPath(this.h(), state, conf);
    } catch (e) {
      throw wrap(e, 'fastPath', {});
    }
    return true;
  }

  stats(): NativeStats {
    return this.binding.stats(this.h());
  }

  close(): void {
    if (!this.handle) return;
    const h = this.handle;
    this.handle = null;
    this.binding.close(h);
  }
}
