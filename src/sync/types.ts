// The sync-mode seam (conntrackd's struct sync_mode): FTFW and NOTRACK
// implement SyncMode; the daemon is the SyncHost that owns the caches and the
// channel. Both sides are interfaces so either can be faked in unit tests.
import type { CacheObject } from '../cache/types.js';
import type { Conntrack, Expectation } from '../model/conntrack.js';
import type { RecvCounters } from '../wire/datagram.js';

export interface SyncHost {
  /** Sends one datagram on the active link. */
  send(datagram: Buffer): void;
  /**
   * True when send() is done with the datagram once it returns, as every
   * Channel is (see Channel.send): the engine then hands it a view of its one
   * reused datagram buffer instead of a copy per datagram. Hosts that keep
   * what they are given (test recorders) leave it unset and get copies.
   */
  readonly sendIsDoneOnReturn?: boolean;
  /** Largest datagram the link takes (conntrackd: MTU − 28, and messages are added while strictly below). */
  readonly maxDatagram: number;
  /** A decoded data message from the peer (type is a wire MSG.* data type). */
  onPeerData(type: number, value: Conntrack | Expectation): void;
  /**
   * Optional: the data message at buf[off..off+len) before any decoding.
   * Returns true when the host took it (then onPeerData is not called), false
   * to have it decoded and handed to onPeerData. A WireError thrown here counts
   * as a malformed payload, as a decode failure would. The buffer is the
   * channel's: read it now, keep nothing that points into it. `at` is the
   * clock time the datagram arrived.
   */
  onPeerMessage?(type: number, buf: Buffer, off: number, len: number, at: number): boolean;
  /** The peer asked for everything (RESYNC): the host enqueues every internal-cache object. */
  onResyncRequest(): void;
  /** The sync layer no longer needs `obj` (its CT_DEL/EXP_DEL was acknowledged, or it was dropped). */
  release(obj: CacheObject): void;
}

export interface SyncStats {
  /** "Packets lost" and "Packets before" of -s network (conntrackd's own arithmetic). */
  seqLost: number;
  seqBefore: number;
  msgsSent: number;
  msgsRecv: number;
  resends: number;
  nacksSent: number;
  nacksRecv: number;
  acksSent: number;
  acksRecv: number;
  rsQueueLen: number;
  rsQueueOverflow: number;
  txQueueLen: number;
  peerRestarts: number;
  /** ms timestamp of the last message from the peer, or -1. */
  lastRecvAt: number;
  /** Age (ms) of the oldest unacknowledged data message (our ACKs waiting for the peer's do not count), or 0. */
  oldestUnackedAgeMs: number;
  // Additive (sync engineer): always filled by Ftfw/Notrack, optional for fakes.
  /** Messages really missing (seq − expected per gap); seqLost keeps conntrackd's over-count. */
  seqLostActual?: number;
  /** FTFW: times a stalled receive baseline was re-adopted (forged far-ahead seq recovery). */
  seqResets?: number;
  /** -s network "send: Malformed messages": objects that could not be encoded (dropped). */
  sendMalformed?: number;
  /** Exceptions thrown by SyncHost callbacks, caught and counted. */
  hostErrors?: number;
  datagramsSent?: number;
  /**
   * The addon's fast path (src/daemon/fast-path.ts): messages it sent that the
   * engine filed, ones it sent that the JS path did not take (should stay 0),
   * lone NEW events of a shape it leaves to JS, and sends that failed (JS sent those).
   */
  fastAdopted?: number;
  fastOrphans?: number;
  fastDeclined?: number;
  fastSendErrors?: number;
  /** -s network "recv:" framing counters (the mode walks each datagram, ftfw.md §1.7). */
  recv?: RecvCounters;
}

export interface SyncMode {
  readonly name: 'ftfw' | 'notrack';
  start(): void;
  stop(): void;
  /** A local change to an internal-cache object: (re)queue it for sending at the next transmit round. */
  enqueue(obj: CacheObject): void;
  /**
   * A bulk send (resync, -B): every object `objects` yields, taken from it as
   * they can go out rather than queued all at once. The iterable is walked
   * across event-loop turns, so it must tolerate the cache changing meanwhile
   * (the caches' all() does). A second call restarts from the new iterable.
   */
  enqueueAll(objects: Iterable<CacheObject>): void;
  /** A datagram from the channel and its source. Never throws: malformed input is counted. */
  receive(datagram: Buffer, from?: { address: string; port: number }): void;
  /** `-n`: ask the peer for a full resync. */
  requestResync(): void;
  stats(): SyncStats;
  /** Lines of `-s rsqueue` after the "resent queue (len=N)" header. */
  rsQueueLines(): string[];
  /**
   * Additive: the cache dropped `obj` (flush, purge): take it out of any sync
   * queue without sending it and drop the sync layer's pin (no release() call).
   */
  forget?(obj: CacheObject): void;
  /**
   * A batch of local changes starts (one read of kernel events): rounds its
   * enqueues would schedule wait for endBatch(), which runs one transmit round
   * at once instead of on the next event-loop turn. A lone event then leaves
   * in the same callback that read it: after idle, the turn's setImmediate
   * machinery cost ~35 µs of a single flow's latency (bench/events.ts).
   */
  beginBatch?(): void;
  endBatch?(): void;
  /**
   * Additive: the addon's lone-event fast path (src/daemon/fast-path.ts) sends
   * through this engine's sequence. `state` is the block of FAST_STATE words
   * it shares with the addon: the engine's counter moves into it, and the
   * engine keeps its gate word saying whether a data message may go out now.
   * null detaches. Modes that cannot take part leave the gate closed.
   */
  attachFastPath?(state: Int32Array | null): void;
  /** The coming batch's one event was sent by the fast path as `seq`: its enqueue files it as sent (adoption). */
  fastSent?(seq: number): void;
}

/**
 * Words of the state block shared with the addon's fast path, in the order
 * native/src/fastpath.h numbers them (FPS_*). Int32 words, host order.
 */
export const FAST_STATE = {
  /** Written by the sync engine: 1 while a data message may go out at once. */
  ENGINE: 0,
  /** The sync engine's sequence counter (the next number, as u32). */
  SEQ: 1,
  /** Written by the addon: messages it sent, the length of the last, lone NEW events it left to JS, failed sends. */
  SENT: 2,
  LEN: 3,
  DECLINED: 4,
  SEND_ERR: 5,
  /** Written by the daemon: 1 while the link and the internal cache let the fast path run. */
  DAEMON: 6,
  WORDS: 8,
} as const;
