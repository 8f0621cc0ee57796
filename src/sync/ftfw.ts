// FTFW ("fault-tolerant firewall") reliable sync, wire-compatible with
// conntrackd 1.4.7 (spec ftfw.md §3). Sent data objects and ACK/NACK/RESYNC
// wait in the resend queue until the peer acknowledges them; gaps in the
// peer's sequence numbers are NACKed and resent with new numbers.
import type { CacheObject } from '../cache/types.js';
import { FLAG, MSG, isDataType, seqAfter, seqBefore, type NetHdr } from '../wire/header.js';
import { RECV, SyncEngine, type EngineOptions, type EngineStats, type RecvResult } from './engine.js';
import { SyncQueue, type SyncItem } from './queue.js';
import { messageHash, SEQ, SeqStallGuard, type StallGuardOptions } from './recv-seq.js';
import type { SyncMode } from './types.js';
import { rdU32BE } from '../util/bytes.js';
import { settleFields } from '../util/shape.js';

export const DEFAULT_RESEND_QUEUE_SIZE = 131072;
export const DEFAULT_ACK_WINDOW_SIZE = 300;
export const DEFAULT_SEND_WINDOW = 4096;

export interface FtfwOptions extends EngineOptions {
  /** ResendQueueSize: the oldest entry is dropped (and counted) beyond it. Default 131072. */
  resendQueueSize?: number;
  /** ACKWindowSize: force an ACK after this many in-sync messages. Default 300. */
  ackWindowSize?: number;
  /**
   * ctsync improvement: while more than this many messages are queued, at
   * most this many sent ones wait for the peer's acknowledgment; further data
   * stays in the tx queue until ACKs arrive (or an alive interval passes
   * without one). A burst (bulk resync: 100k
   * messages at once) then cannot overrun the peer's socket buffer and turn
   * into NACKs and resends. Default 4096 (~240 full datagrams at MTU 1500);
   * 0 = unlimited, conntrackd's behaviour.
   */
  sendWindow?: number;
  /**
   * ctsync improvement: re-adopt the peer's sequence after a stall (a forged
   * far-ahead seq would otherwise make us drop the real peer for ever), count
   * it in seqResets and request a resync. `false` = conntrackd behaviour.
   */
  seqRecovery?: false | StallGuardOptions;
}

const HELLO_INIT = 0;
const HELLO_SAY = 1;
const HELLO_DONE = 2;

const DATA_ONLY_FLAGS = FLAG.HELLO | FLAG.HELLO_BACK;

export class Ftfw extends SyncEngine implements SyncMode {
  readonly name = 'ftfw' as const;
  private readonly rs = new SyncQueue('rsqueue');
  private readonly rsMax: number;
  private readonly windowSize: number;
  private readonly sendWindow: number;
  /** Extra window granted after alive intervals without acknowledgment progress. */
  private stallCredit = 0;
  /** clock.now() since which the send window has been full without an acknowledgment, or -1. */
  private fullSince = -1;
  private readonly guard: SeqStallGuard | null;
  private window: number;
  private ackFrom = 0;
  private ackFromSet = false;
  private helloState = HELLO_INIT;
  private sayHelloBack = false;
  /** The peer's messages currently carry HELLO (one restart = one such episode). */
  private peerSaysHello = false;
  private helloRangeSet = false;
  private helloFirst = 0;
  private helloLast = 0;
  private peerRestarts = 0;
  /**
   * clock.now() of the peer's last keep-alive, -1 before any. Idle FTFW peers
   * keep each other alive with timer ACKs, not ALIVEs (spec §3.3), so both count.
   */
  lastAliveAt = -1;
  private rsOverflow = 0;
  private seqResets = 0;

  /** Our HELLO was answered: the peer knows our sequence (readiness). */
  get helloDone(): boolean {
    return this.helloState === HELLO_DONE;
  }

  constructor(opts: FtfwOptions) {
    super(opts);
    this.rsMax = Math.max(1, opts.resendQueueSize ?? DEFAULT_RESEND_QUEUE_SIZE);
    this.windowSize = Math.max(1, opts.ackWindowSize ?? DEFAULT_ACK_WINDOW_SIZE);
    const sw = opts.sendWindow ?? DEFAULT_SEND_WINDOW;
    // Never below the peer's ACK window, or the peer would wait for data we hold back.
    this.sendWindow = sw <= 0 ? Infinity : Math.max(sw, 2 * this.windowSize);
    this.window = this.windowSize;
    this.guard = opts.seqRecovery === false ? null : new SeqStallGuard(opts.seqRecovery ?? {});
    // Changed first by a full send window (a bulk send), a peer's restart or
    // its first keep-alive, in the middle of the work: see settleFields.
    settleFields(this, {
      mutable: ['stallCredit', 'window', 'ackFrom', 'ackFromSet', 'helloState', 'sayHelloBack', 'peerSaysHello',
        'helloRangeSet', 'helloFirst', 'helloLast', 'peerRestarts', 'rsOverflow', 'seqResets'],
      double: ['fullSince', 'lastAliveAt'],
    });
  }

  protected queueObject(obj: CacheObject): void {
    const it = this.items.of(obj);
    if (it.owner === this.tx) return; // keeps its place; sent with its newest state
    const fresh = it.owner === null;
    this.pin(it);
    this.tx.push(it); // from the rs queue too: only the newest state is (re)sent
    if (fresh) this.entered(it);
  }

  stats(): EngineStats {
    return this.baseStats(this.rs.len, this.rsOverflow, this.peerRestarts, this.seqResets);
  }

  protected override heldCount(): number {
    return this.tx.len + this.rs.len;
  }

  rsQueueLines(): string[] {
    const out: string[] = [];
    for (const it of this.rs) {
      out.push(it.kind === 'ctl' ? `control -> seq:${it.seq} flags:${it.flags}` : `object -> seq:${it.seq}`);
    }
    return out;
  }

  // ---- transmit hooks ----

  protected override mayStartData(): boolean {
    // Only a backlog larger than the window (a bulk send) is paced: a steady
    // event stream goes out at once, as conntrackd sends it.
    if (this.rs.len < this.sendWindow + this.stallCredit || (!this.bulkPending && this.tx.len < this.sendWindow)) return true;
    // Full, and no acknowledgment for an alive interval: the peer may have
    // nothing left to acknowledge (its ACK was lost). Send on, one window at a
    // time, so its next window-full ACK comes, as conntrackd (which never
    // holds back) would. The alive timer's round comes back here.
    const now = this.clock.now();
    if (this.fullSince < 0) {
      this.fullSince = now;
      return false;
    }
    if (now - this.fullSince < this.aliveMs) return false;
    this.fullSince = -1;
    this.stallCredit += this.sendWindow;
    return true;
  }

  /**
   * The fast path's messages carry no flags and overtake nothing: only once
   * our HELLO is answered with no HELLO_BACK owed, and with nothing queued
   * (which also means no bulk send and an open send window).
   */
  protected override fastAllowed(): boolean {
    return this.helloState === HELLO_DONE && !this.sayHelloBack && this.tx.len === 0 && !this.bulkPending;
  }

  protected extraFlags(): number {
    let f = 0;
    if (this.helloState !== HELLO_DONE) f |= FLAG.HELLO;
    if (this.sayHelloBack) f |= FLAG.HELLO_BACK;
    return f;
  }

  protected afterSend(it: SyncItem, flags: number): void {
    if (this.helloState === HELLO_INIT) this.helloState = HELLO_SAY;
    if (flags & FLAG.HELLO_BACK) this.sayHelloBack = false;
    if (it.kind === 'ctl') {
      // conntrackd sets the hello bits in the queued message itself, so a resent ACK keeps them.
      it.flags = flags;
      if (!(flags & (FLAG.ACK | FLAG.NACK | FLAG.RESYNC))) return; // ALIVE is never kept
    } else {
      it.helloSent = (flags & FLAG.HELLO) !== 0;
    }
    this.rsAdd(it);
  }

  protected onAlive(): void {
    if (this.ackFromSet && this.recvSeq.isSet) {
      this.queueCtl(FLAG.ACK, this.ackFrom, this.recvSeq.last);
      this.ackFromSet = false;
    } else {
      this.queueCtl(FLAG.ALIVE, 0, 0);
    }
  }

  protected dropAll(): void {
    for (const q of [this.tx, this.rs]) {
      for (let it = q.shift(); it !== null; it = q.shift()) if (it.kind === 'obj') this.unpin(it, true);
    }
  }

  private rsAdd(it: SyncItem): void {
    if (this.rs.len >= this.rsMax) {
      const victim = this.rs.shift();
      this.rsOverflow++;
      if (victim?.kind === 'obj') this.unpin(victim, true);
      this.rlog.warn('rs-overflow', { max: this.rsMax }, 'resend queue full, oldest entry dropped');
    }
    this.rs.push(it);
  }

  // ---- receive ----

  protected recvMessage(hdr: NetHdr, buf: Buffer, off: number): RecvResult {
    const seq = hdr.seq;
    let ret: RecvResult;

    // A late datagram of an incarnation that has since restarted: its numbers mean nothing now.
    if (this.session.isDead) {
      this.recvSeq.before++;
      return RECV.DROP;
    }
    const hello = (hdr.flags & FLAG.HELLO) !== 0;
    // HELLO from a new source: the peer restarted (see PeerSession), whatever its seq, and even
    // if its previous incarnation was still saying HELLO when it went.
    const newSession = hello && this.session.isNew;
    // No HELLO_BACK for a HELLO we drop as stale: if it really is a peer that restarted within
    // its old HELLO range, it keeps saying HELLO, its seqs leave that range within seconds, and
    // its HELLO is then taken (answering now would end its HELLO phase while we still drop it).
    if (hello && !newSession && !this.peerSaysHello && this.isStaleHello(seq)) {
      // A delayed or duplicated copy of a HELLO message we already took (the link
      // reordered it past the end of the peer's HELLO episode): not a restart...
      if (this.guard === null || !this.guard.dropped(seq, this.clock.now(), messageHash(buf, off, hdr.len))) {
        this.recvSeq.before++;
        return RECV.DROP;
      }
      // ...unless such "copies" keep coming with progressing seqs: a peer restarted
      // within seconds of its previous start. Take it as the restart it is.
      this.seqResets++;
    }
    if (hello) this.sayHelloBack = true;
    if (hdr.flags & FLAG.HELLO_BACK && this.helloState === HELLO_SAY) {
      this.helloState = HELLO_DONE;
      this.resendHelloSent();
    }
    const episodeStart = hello && (newSession || !this.peerSaysHello);
    if (episodeStart) {
      // The first HELLO of a (re)started peer: its sequence starts afresh, so skip the check.
      this.peerSaysHello = true;
      this.peerRestarts++;
      // The peer knows nothing of what we sent before: restart our window and forget the rs queue.
      if (this.ackFromSet && seqBefore(seq, this.ackFrom)) {
        this.window = this.windowSize - 1;
        this.ackFrom = seq;
      }
      this.emptyRs();
      ret = this.inSync(hdr, buf, off);
    } else {
      // Improvement over conntrackd, which skips the sequence check on EVERY message carrying
      // HELLO: a peer repeats HELLO until our HELLO_BACK reaches it, and losses in that window
      // (a burst right after start, or a lost HELLO_BACK) would never be NACKed. Only the
      // first HELLO of an episode resets the sequence; the rest are checked like any message.
      if (!hello) this.peerSaysHello = false;
      switch (this.recvSeq.track(seq)) {
        case SEQ.AFTER: {
          const expected = this.recvSeq.expected;
          ret = this.digest(hdr, buf, off);
          if (ret === RECV.BAD) return ret;
          if (this.ackFromSet) {
            this.queueCtl(FLAG.ACK, this.ackFrom, expected - 1);
            this.ackFromSet = false;
          }
          this.queueCtl(FLAG.NACK, expected, seq - 1);
          this.window = this.windowSize - 1; // this message starts the new window
          this.ackFrom = seq;
          this.ackFromSet = true;
          break;
        }
        case SEQ.BEFORE:
          if (this.guard === null || !this.guard.dropped(seq, this.clock.now(), messageHash(buf, off, hdr.len))) return RECV.DROP;
          ret = this.adoptBaseline(hdr, buf, off);
          break;
        default:
          ret = this.inSync(hdr, buf, off);
      }
    }
    if (ret === RECV.DATA || ret === RECV.CTL) {
      this.session.accepted(episodeStart);
      this.recvSeq.update(seq);
      this.guard?.accepted(seq, this.guard ? messageHash(buf, off, hdr.len) : 0);
      if (hello) this.noteHello(seq, episodeStart);
    }
    return ret;
  }

  /**
   * A HELLO inside the seq range of the peer's last HELLO episode is a stale
   * copy (the link delayed or duplicated it past the episode's end), not a
   * restart. A restarted peer seeds its counter with the current Unix time,
   * which lands in that range only if it restarts within seconds of its
   * previous start; the stall guard re-adopts its sequence quickly then.
   */
  private isStaleHello(seq: number): boolean {
    return this.helloRangeSet && !seqBefore(seq, this.helloFirst) && !seqAfter(seq, this.helloLast);
  }

  /** Tracks the seq range of HELLO-flagged messages accepted in the current episode. */
  private noteHello(seq: number, first: boolean): void {
    if (first || !this.helloRangeSet) {
      this.helloFirst = this.helloLast = seq;
      this.helloRangeSet = true;
    } else if (seqAfter(seq, this.helloLast)) {
      this.helloLast = seq;
    }
  }

  /** Step C of §3.4: digest, then account the message in the ack window. */
  private inSync(hdr: NetHdr, buf: Buffer, off: number): RecvResult {
    const ret = this.digest(hdr, buf, off);
    if (ret === RECV.BAD) return ret;
    if (!this.ackFromSet) {
      this.ackFromSet = true;
      this.ackFrom = hdr.seq;
    }
    this.window = (this.window - 1) >>> 0; // unsigned, as in conntrackd
    if (this.window === 0) {
      this.queueCtl(FLAG.ACK, this.ackFrom, hdr.seq);
      this.window = this.windowSize;
      this.ackFromSet = false;
    }
    return ret;
  }

  /**
   * The stall guard fired: take the peer's current seq as the new baseline,
   * then resync both ways. Ask for everything (we dropped its messages as
   * old), and send it everything too: a peer that restarted within seconds
   * reuses sequence numbers behind our baseline, so its own RESYNC request
   * (StartupResync, `-n`) was among the messages we dropped, and nothing
   * else would ever refill its empty external cache.
   */
  private adoptBaseline(hdr: NetHdr, buf: Buffer, off: number): RecvResult {
    this.seqResets++;
    this.rlog.warn('seq-reset', { last: this.recvSeq.last, seq: hdr.seq },
      'peer sequence stalled behind our baseline; adopting it and resyncing both ways');
    this.ackFromSet = false;
    this.window = this.windowSize;
    const ret = this.inSync(hdr, buf, off);
    this.requestResync();
    this.resyncRequested();
    return ret;
  }

  /** Step D of §3.4. */
  private digest(hdr: NetHdr, buf: Buffer, off: number): RecvResult {
    if (isDataType(hdr.type) && (hdr.flags & ~DATA_ONLY_FLAGS) === 0) return RECV.DATA;
    if (hdr.type !== MSG.CTL) return RECV.BAD;
    if (hdr.flags & FLAG.ACK) {
      const { from, to } = this.range(buf, off);
      if (seqBefore(to, from)) return RECV.BAD;
      this.acksRecv++;
      this.lastAliveAt = this.clock.now();
      this.rsRelease(from, to);
      return RECV.CTL;
    }
    if (hdr.flags & FLAG.NACK) {
      const { from, to } = this.range(buf, off);
      if (seqBefore(to, from)) return RECV.BAD;
      this.nacksRecv++;
      this.rsToTx(from, to);
      return RECV.CTL;
    }
    if (hdr.flags & FLAG.RESYNC) {
      this.resyncRequested();
      return RECV.CTL;
    }
    if (hdr.flags & FLAG.ALIVE) {
      this.lastAliveAt = this.clock.now();
      return RECV.CTL;
    }
    return RECV.BAD;
  }

  private readonly rangeOut = { from: 0, to: 0 };

  private range(buf: Buffer, off: number): { from: number; to: number } {
    this.rangeOut.from = rdU32BE(buf, off + 8);
    this.rangeOut.to = rdU32BE(buf, off + 12);
    return this.rangeOut;
  }

  /**
   * ACK: the rs queue is in send order, so stop at the first entry after `to`.
   * Improvement over conntrackd, which leaves entries before `from` in the
   * queue for good: the peer acknowledges contiguous ranges, so a data entry
   * still queued before `from` was never acknowledged (its datagram, the
   * peer's NACK for it, or the peer's ACK for it was lost, or it was sent
   * before the peer took its first sequence baseline). It is resent; a
   * duplicate costs the peer one idempotent update, a loss would cost an entry.
   * A RESYNC request there is resent too; other control messages are dropped.
   */
  private rsRelease(from: number, to: number): void {
    let resent = 0;
    let released = 0;
    for (let it = this.rs.head; it !== null;) {
      const next = it.next as SyncItem | null;
      if (seqAfter(it.seq, to)) break;
      if (!seqBefore(it.seq, from)) {
        // Sent with HELLO: kept for resendHelloSent(), whatever the peer acknowledged.
        if (!it.helloSent) {
          this.rs.remove(it);
          released++;
          if (it.kind === 'obj') this.unpin(it, true);
        }
      } else if (it.kind === 'obj' || (it.flags & FLAG.RESYNC) !== 0) {
        this.tx.push(it);
        resent++;
      } else {
        // An old ACK/NACK of ours the peer never acknowledged: resending it is pointless (the
        // peer's own rule resends what it was about), and kept it would pin the lag for good.
        this.rs.remove(it);
      }
      it = next;
    }
    if (released > 0) {
      // The peer is taking our data: the send window slides (held-back data may go).
      this.fullSince = -1;
      this.stallCredit = 0;
      if (this.hasBacklog()) this.kick();
    }
    this.resent(resent);
  }

  /** Counts `n` items moved from the rs queue back to tx, and has them sent. */
  private resent(n: number): void {
    if (n === 0) return;
    this.resends += n;
    this.kick();
  }

  /** NACK: move the range back to tx; it goes out again with new seqs. */
  private rsToTx(from: number, to: number): void {
    let moved = 0;
    for (let it = this.rs.head; it !== null;) {
      const next = it.next as SyncItem | null;
      if (seqAfter(it.seq, to)) break;
      if (!seqBefore(it.seq, from)) {
        this.tx.push(it);
        moved++;
      }
      it = next;
    }
    this.resent(moved);
  }

  /**
   * Our HELLO phase has ended (the peer's HELLO_BACK came): data sent while it
   * lasted goes again, without HELLO. conntrackd skips the sequence check on
   * every HELLO-flagged message, so what it lost of a burst sent before our
   * HELLO was answered (a daemon that starts into a burst, its socket buffer
   * overrun) it never NACKs, and its ACKs cover those messages all the same.
   * Measured with the sync bench's mixed pair, ctsync → conntrackd 100k: 5
   * runs in 31 lost 8-727 entries for good (in one, conntrackd counted a gap
   * of 68 messages where 77 datagrams had not reached it); none in 34 since.
   * A ctsync peer checks them (recvMessage): to it the resends are idempotent
   * updates.
   */
  private resendHelloSent(): void {
    let moved = 0;
    for (let it = this.rs.head; it !== null;) {
      const next = it.next as SyncItem | null;
      if (it.helloSent) {
        this.tx.push(it);
        moved++;
      }
      it = next;
    }
    this.resent(moved);
  }

  /**
   * A (re)started peer will never acknowledge our earlier control messages:
   * drop them. Unlike conntrackd, which empties the whole queue, data objects
   * stay: the peer's next ACK starts after them, so rsRelease() resends them
   * (a peer that started while our burst was in flight still gets all of it).
   */
  private emptyRs(): void {
    for (let it = this.rs.head; it !== null;) {
      const next = it.next as SyncItem | null;
      if (it.kind !== 'obj') this.rs.remove(it);
      it = next;
    }
  }
}
