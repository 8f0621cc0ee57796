// The ctnetlink event engine: a dedicated multicast socket (never the
// request socket: dump replies would mix with events), read in batches by the
// addon, decoded in place. An ENOBUFS means events were lost: it is surfaced
// as 'overrun' so the owner dumps and reconciles (spec pitfalls 1-2).
import { EventEmitter } from 'node:events';
import { NetlinkError } from '../errors.js';
import { EVENT, type Conntrack, type EventKind, type Expectation } from '../model/conntrack.js';
import { readConntrack } from './ct-codec.js';
import { readExpectation } from './exp-codec.js';
import { MessageReader } from './message.js';
import type { NativeBinding, NativeStats } from './native.js';
import {
  CT_DELETE, CT_EVENT_GROUPS, CT_NEW, ERRNO, EXP_DELETE, EXP_EVENT_GROUPS, EXP_NEW, NETLINK_ADD_MEMBERSHIP,
  NETLINK_BROADCAST_ERROR, NETLINK_DROP_MEMBERSHIP, NFNLGRP_CONNTRACK_NEW, NLM_F_CREATE, NLM_F_EXCL, SOL_NETLINK,
  SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE,
} from './nl-constants.js';
import { NlSocket } from './socket.js';
import { settleDecodedShapes } from './ct-shapes.js';

export interface CtEventListenerOptions {
  netns?: string;
  binding?: NativeBinding;
  /** Receive buffer requested with SO_RCVBUFFORCE (default 8 MiB). Size it to the expected burst. */
  bufferSize?: number;
  /** After an overrun the buffer doubles up to this (conntrackd NetlinkBufferSizeMaxGrowth); default: no growth. */
  maxBufferSize?: number;
  /** Subscribe to conntrack NEW/UPDATE/DESTROY (default true). */
  conntrack?: boolean;
  /** Subscribe to expectation NEW/UPDATE/DESTROY (default false). */
  expectations?: boolean;
  /**
   * NETLINK_BROADCAST_ERROR: a DESTROY this socket could not take is kept and
   * redelivered by the kernel (conntrackd NetlinkEventsReliable), at the cost
   * of back-pressure on the kernel.
   */
  reliable?: boolean;
  /**
   * Leave out a reply tuple that is the plain inverse of the orig one (no NAT):
   * see readConntrack. Default false: every event carries both tuples.
   */
  dropPlainReply?: boolean;
  /**
   * Direct sink for the hot path: when set, events go here instead of through
   * EventEmitter.emit, which costs about as much as decoding at storm rates.
   * 'overrun' and 'error' are still emitted.
   */
  handler?: CtEventHandler;
}

export interface CtEventHandler {
  onEvent(kind: EventKind, ct: Conntrack, portid: number): void;
  onExpectation?(kind: EventKind, exp: Expectation, portid: number): void;
  /** Around each batch of events read in one wakeup (what the owner may act on once per batch). */
  onBatchStart?(): void;
  onBatchEnd?(): void;
  /**
   * The addon's fast path already sent the batch's one event to the peer, as
   * sequence number `seq` (src/daemon/fast-path.ts); called after
   * onBatchStart, before the event itself.
   */
  onFastSent?(seq: number): void;
}

export interface OverrunInfo {
  /** Overruns so far, this one included. */
  overruns: number;
  /** ENOBUFS (lost events) or EMSGSIZE (a datagram larger than a read slot). */
  errno: number;
  /** Buffer size requested after this overrun (grown when allowed). */
  bufferSize: number;
}

export interface CtEventStats {
  events: number;
  expEvents: number;
  overruns: number;
  decodeErrors: number;
  /** Messages of other subsystems or control messages. */
  ignored: number;
  bufferSize: number;
}

export interface CtEventMap {
  /** portid: the netlink port whose request caused the change (0 for the kernel's own packet path). */
  event: [kind: EventKind, ct: Conntrack, portid: number];
  expectation: [kind: EventKind, exp: Expectation, portid: number];
  overrun: [info: OverrunInfo];
  error: [err: Error];
}

export class CtEventListener extends EventEmitter<CtEventMap> {
  readonly stats: CtEventStats;
  private readonly sock: NlSocket;
  private readonly reader = new MessageReader();
  private readonly maxBufferSize: number;
  private readonly handler: CtEventHandler | undefined;
  private readonly conntrack: boolean;
  private readonly dropPlainReply: boolean;
  private started = false;
  private newMuted = false;

  constructor(opts: CtEventListenerOptions = {}) {
    super();
    settleDecodedShapes();
    const bufferSize = opts.bufferSize ?? 8 * 1024 * 1024;
    this.maxBufferSize = Math.max(bufferSize, opts.maxBufferSize ?? bufferSize);
    this.handler = opts.handler;
    this.stats = { events: 0, expEvents: 0, overruns: 0, decodeErrors: 0, ignored: 0, bufferSize };
    this.conntrack = opts.conntrack !== false;
    this.dropPlainReply = opts.dropPlainReply === true;
    this.sock = new NlSocket({ netns: opts.netns, binding: opts.binding });
    try {
      this.setBuffer(bufferSize);
      if (opts.reliable) this.sock.setInt(SOL_NETLINK, NETLINK_BROADCAST_ERROR, 1);
      // NETLINK_NO_ENOBUFS is deliberately never set: it hides loss (pitfall 2).
      const groups = (this.conntrack ? CT_EVENT_GROUPS : 0) | (opts.expectations ? EXP_EVENT_GROUPS : 0);
      this.sock.bind(groups);
    } catch (e) {
      this.sock.close();
      throw e;
    }
  }

  /** Starts delivery from the event loop. */
  start(): void {
    if (this.started) return;
    this.sock.start(this.onData);
    this.started = true;
  }

  stop(): void {
    if (!this.started) return;
    this.sock.stop();
    this.started = false;
  }

  close(): void {
    this.stop();
    this.sock.close();
  }

  /**
   * Leaves the conntrack NEW group only (a bulk commit: the kernel then skips
   * building a NEW event per created entry, since nobody listens on that group).
   * UPDATE and DESTROY stay joined on purpose: with nf_conntrack_events=2 (the
   * default) the kernel gives a new entry its event extension only while some
   * ctnetlink group has a listener, and an entry created without one never
   * reports an UPDATE or DESTROY in its whole life. The owner must recover
   * the NEWs it missed (a dump) after unmuteNew(). Returns false when there
   * is nothing to mute (not subscribed, or already muted).
   */
  muteNew(): boolean {
    if (!this.conntrack || this.newMuted || this.sock.closed) return false;
    this.sock.setInt(SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, NFNLGRP_CONNTRACK_NEW);
    this.newMuted = true;
    return true;
  }

  /** Joins the conntrack NEW group again after muteNew(). */
  unmuteNew(): void {
    if (!this.newMuted || this.sock.closed) return;
    this.sock.setInt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_CONNTRACK_NEW);
    this.newMuted = false;
  }

  get isNewMuted(): boolean {
    return this.newMuted;
  }

  /** Effective kernel buffer (SO_RCVBUF reads back twice the requested size). */
  get kernelBufferSize(): number {
    return this.sock.getInt(SOL_SOCKET, SO_RCVBUF);
  }

  nativeStats(): NativeStats {
    return this.sock.stats();
  }

  /** Configures (or, with null, ends) the addon's lone-event fast path on this socket; false without addon support. */
  fastPath(state: Buffer | null, conf?: Buffer): boolean {
    return this.sock.fastPath(state, conf);
  }

  /**
   * Processes one batch of packed datagrams. Public so a test or a bench can
   * feed recorded bytes; the addon calls it once per wakeup with its one
   * persistent buffer and the length used (`len`): the bytes are only valid
   * during this call, so decoding must copy whatever it keeps (ct-codec
   * copies labels; strings and numbers are copies by nature).
   */
  readonly onData = (buf: Buffer | null, errno: number, len?: number, fastSeq?: number): void => {
    if (buf) {
      const h = this.handler;
      h?.onBatchStart?.();
      try {
        if (fastSeq !== undefined && fastSeq >= 0) h?.onFastSent?.(fastSeq);
        this.decode(buf, len === undefined ? buf.length : len);
      } finally {
        h?.onBatchEnd?.();
      }
    }
    if (errno === 0) return;
    if (errno === ERRNO.ENOBUFS || errno === ERRNO.EMSGSIZE) {
      this.overrun(errno);
    } else {
      this.started = false; // the addon stops on a fatal socket error
      this.emit('error', new NetlinkError('CTSYNC_ERR_NETLINK_NATIVE', `event socket failed: errno ${errno}`, errno));
    }
  };

  private decode(buf: Buffer, end: number): void {
    const r = this.reader.reset(buf, 0, end);
    try {
      while (r.next()) {
        const type = r.type;
        if (type === CT_NEW || type === CT_DELETE) {
          let ct: Conntrack;
          try {
            ct = readConntrack(buf, r.attrsStart(), r.msgEnd, this.dropPlainReply);
          } catch (e) {
            this.decodeFailed(e);
            continue;
          }
          this.stats.events++;
          const kind: EventKind = type === CT_DELETE ? EVENT.DESTROY
            : (r.flags & (NLM_F_CREATE | NLM_F_EXCL)) !== 0 ? EVENT.NEW : EVENT.UPDATE;
          if (this.handler) this.handler.onEvent(kind, ct, r.pid);
          else this.emit('event', kind, ct, r.pid);
        } else if (type === EXP_NEW || type === EXP_DELETE) {
          let exp: Expectation;
          try {
            exp = readExpectation(buf, r.attrsStart(), r.msgEnd);
          } catch (e) {
            this.decodeFailed(e);
            continue;
          }
          this.stats.expEvents++;
          const kind: EventKind = type === EXP_DELETE ? EVENT.DESTROY
            : (r.flags & (NLM_F_CREATE | NLM_F_EXCL)) !== 0 ? EVENT.NEW : EVENT.UPDATE;
          if (this.handler?.onExpectation) this.handler.onExpectation(kind, exp, r.pid);
          else this.emit('expectation', kind, exp, r.pid);
        } else {
          this.stats.ignored++;
        }
      }
    } catch (e) {
      // A bad message header: its length cannot be trusted, so the rest of this batch is unreadable.
      this.decodeFailed(e);
    }
  }

  private decodeFailed(e: unknown): void {
    if ((e as NetlinkError)?.code !== 'CTSYNC_ERR_NETLINK_DECODE') throw e; // a listener threw: not ours to hide
    this.stats.decodeErrors++;
  }

  private overrun(errno: number): void {
    this.stats.overruns++;
    if (this.stats.bufferSize < this.maxBufferSize) {
      const next = Math.min(this.stats.bufferSize * 2, this.maxBufferSize);
      try {
        this.setBuffer(next);
      } catch (e) {
        this.emit('error', e as Error);
      }
    }
    this.emit('overrun', { overruns: this.stats.overruns, errno, bufferSize: this.stats.bufferSize });
  }

  private setBuffer(size: number): void {
    try {
      this.sock.setInt(SOL_SOCKET, SO_RCVBUFFORCE, size);
    } catch {
      // Without CAP_NET_ADMIN: SO_RCVBUF, capped by net.core.rmem_max.
      this.sock.setInt(SOL_SOCKET, SO_RCVBUF, size);
    }
    this.stats.bufferSize = size;
  }
}
