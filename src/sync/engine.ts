// Plumbing shared by the FTFW and NOTRACK engines: the tx queue, transmit
// rounds batched into datagrams, the alive timer, object pinning and the
// receive loop that frames, counts and delivers data. Each mode supplies the
// per-message receive logic and what happens to an item once sent.
//
// Pin protocol: an object holds one pin (obj.pins++) from its first enqueue
// until the sync layer is done with it (acknowledged, sent for NOTRACK,
// dropped by rs-queue overflow, a peer HELLO, or stop()). Then the pin is
// removed first, and host.release(obj) is called only if the object is DEAD,
// so a host may free a DEAD object whose pins reached 0 (the internal cache
// takes and drops its own pin for DEAD objects the same way).
import { NO_SPACE } from '../wire/attrs.js';
import type { CacheObject } from '../cache/types.js';
import { OBJ_STATE } from '../cache/types.js';
import { WireError } from '../errors.js';
import { silentLogger, RateLimitedLog, type Logger } from '../log/logger.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { settleFields } from '../util/shape.js';
import { newRecvCounters, walkDatagram, type RecvCounters } from '../wire/datagram.js';
import { ACK_SIZE, FLAG, HEADER_SIZE, MSG, hasAckExtension, writeAck, writeHeader, type NetHdr } from '../wire/header.js';
import { msgTypeOf, type ObjectCodec } from './codec.js';
import { AgeIndex } from './age.js';
import { ctlItem, isObjItem, ItemPool, SyncQueue, type ObjItem, type SyncItem } from './queue.js';
import { PeerSession, RecvSeq, type PeerSource } from './recv-seq.js';
import { DatagramWriter, SeqCounter, type MessageSource } from './tx.js';
import { FAST_STATE, type SyncHost, type SyncStats } from './types.js';

/** conntrackd's ALIVE_INT (hard-coded 1 s). */
export const ALIVE_INTERVAL_MS = 1000;

export interface EngineOptions {
  host: SyncHost;
  clock: Clock;
  codec: ObjectCodec;
  /**
   * Runs a transmit round "soon": every enqueue in the same tick lands in one
   * round. Default setImmediate (one round per event-loop turn, like
   * conntrackd's select loop). Tests pass a FakeClock-driven one.
   */
  schedule?: (fn: () => void) => void;
  /** Alive/ACK timer period. Default 1000 ms (not configurable in conntrackd). */
  aliveIntervalMs?: number;
  /** Queue one RESYNC at start() (StartupResync on). */
  startupResync?: boolean;
  log?: Logger;
}

/** What the per-mode receive logic made of one message. */
export const RECV = { DATA: 0, CTL: 1, BAD: 2, DROP: 3 } as const;
export type RecvResult = (typeof RECV)[keyof typeof RECV];

/** SyncStats plus ctsync's extra counters (additive; see types.ts). */
export interface EngineStats extends SyncStats {
  /** Messages really missing (seq − expected per gap), unlike seqLost's conntrackd arithmetic. */
  seqLostActual: number;
  /** Times the receive baseline was re-adopted after a stall (FTFW guard). */
  seqResets: number;
  /** -s network "send: Malformed messages": objects that could not be encoded (dropped). */
  sendMalformed: number;
  /** Exceptions thrown by host callbacks (or any receive-path bug), caught and counted. */
  hostErrors: number;
  datagramsSent: number;
  /** Datagrams received while not started. */
  ignoredStopped: number;
  fastAdopted: number;
  fastOrphans: number;
  fastDeclined: number;
  fastSendErrors: number;
  /** Receive-side framing counters (-s network "recv:"). */
  recv: RecvCounters;
}

const EMPTY = Buffer.alloc(0);
/** Recycled queue items kept (~90 bytes each): more than FTFW's default send window holds. */
const ITEM_POOL_MAX = 8192;
/** Objects a bulk send moves into the tx queue at a time (see refill). */
const BULK_BATCH = 2048;
/** Refill-and-send passes per transmit round during a bulk send, before yielding to the event loop. */
const BULK_PASSES = 8;
const defaultSchedule = (fn: () => void): void => {
  setImmediate(fn);
};

export abstract class SyncEngine implements MessageSource<SyncItem> {
  protected readonly host: SyncHost;
  protected readonly clock: Clock;
  protected readonly codec: ObjectCodec;
  protected readonly tx = new SyncQueue('txqueue');
  /** Entry order of held items, for the oldest-unacked age in O(1). */
  private readonly ages = new AgeIndex();
  /** Queue items of objects the sync layer let go (see ItemPool). */
  protected readonly items = new ItemPool(ITEM_POOL_MAX);
  protected readonly seq: SeqCounter;
  protected readonly writer: DatagramWriter;
  protected readonly recvSeq = new RecvSeq();
  /** The peer's incarnation, told by the source of its datagrams. */
  protected readonly session = new PeerSession();
  protected readonly recvCounters: RecvCounters = newRecvCounters();
  protected readonly rlog: RateLimitedLog;
  protected readonly log: Logger;
  private readonly scheduleFn: (fn: () => void) => void;
  protected readonly aliveMs: number;
  private readonly startupResync: boolean;
  /** The rest of a bulk send (enqueueAll), or null. */
  private bulk: Iterator<CacheObject> | null = null;
  private readonly hdr: NetHdr = { version: 0, type: 0, flags: 0, len: 0, seq: 0 };
  private cur: Buffer = EMPTY;
  /** clock.now() when the datagram being read arrived. */
  private rxAt = 0;
  /** During a bulk refill: the whole-ms time stamped on every object of the batch, else -1. */
  private batchAt = -1;
  private curFlags = 0;
  private aliveTimer: TimerHandle | null = null;
  /** clock.now() at which the alive timer is due (see armAlive). */
  private aliveDue = 0;
  private scheduled = false;
  /** Between beginBatch() and endBatch(): kicks wait for the batch's end. */
  private inBatch = false;
  private batchKicked = false;
  protected running = false;
  /** The fast path's shared state block (FAST_STATE words), while attached. */
  private fast: Int32Array | null = null;
  /** The number the fast path sent the current batch's event under, -1 when none (see adoptFast). */
  private fastSeq = -1;
  private fastAdopted = 0;
  private fastOrphans = 0;

  protected msgsSent = 0;
  protected msgsRecv = 0;
  protected acksSent = 0;
  protected nacksSent = 0;
  protected acksRecv = 0;
  protected nacksRecv = 0;
  protected resends = 0;
  protected sendMalformed = 0;
  protected hostErrors = 0;
  protected lastRecvAt = -1;
  protected ignoredStopped = 0;

  constructor(opts: EngineOptions) {
    this.host = opts.host;
    this.clock = opts.clock;
    this.codec = opts.codec;
    this.scheduleFn = opts.schedule ?? defaultSchedule;
    this.aliveMs = opts.aliveIntervalMs ?? ALIVE_INTERVAL_MS;
    this.startupResync = opts.startupResync ?? false;
    this.log = opts.log ?? silentLogger;
    this.rlog = new RateLimitedLog(this.log, 5000, () => this.clock.now());
    this.seq = new SeqCounter(this.clock);
    this.writer = new DatagramWriter(this.host.maxDatagram, (d) => this.host.send(d), this.host.sendIsDoneOnReturn === true);
    // bulk and batchAt first change at the first bulk send, the NACK counters at the first loss,
    // the clock readings at the first datagram or timer: see settleFields.
    settleFields(this, {
      mutable: ['bulk', 'batchAt', 'nacksSent', 'nacksRecv', 'fast', 'fastSeq', 'fastAdopted', 'fastOrphans'],
      double: ['rxAt', 'lastRecvAt', 'aliveDue'],
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.armAlive();
    if (this.startupResync) this.requestResync();
    if (this.hasBacklog()) this.kick();
    this.updateFastGate();
  }

  stop(): void {
    this.running = false;
    this.updateFastGate();
    this.aliveTimer?.cancel();
    this.aliveTimer = null;
    this.writer.flush();
    this.bulk = null;
    this.dropAll();
  }

  enqueue(obj: CacheObject): void {
    if (this.fastSeq >= 0 && this.adoptFast(obj)) return;
    this.queueObject(obj);
    this.kick();
  }

  // ---- the addon's fast path ----

  attachFastPath(state: Int32Array | null): void {
    this.fast = state;
    this.seq.share(state, FAST_STATE.SEQ);
    this.updateFastGate();
  }

  fastSent(seq: number): void {
    // A small integer, as the engine's own numbers are (SeqCounter.peek): a boxed one stored in
    // a queue item's seq field made V8 rewrite QItem's hidden class in the middle of a burst and
    // throw away the whole compiled transmit and ACK path (--trace-deopt: "wrong map", then
    // "not a Smi" in seqBefore): +0.9 µs of sender CPU per event at 100k, for ~40 fast sends.
    this.fastSeq = seq >>> 0;
  }

  /**
   * May a data message go out now, with nothing of ours ahead of it? The
   * mode decides; by default never (the gate stays closed).
   */
  protected fastAllowed(): boolean {
    return false;
  }

  /** Writes the engine's gate word: after every round and every received datagram; a round scheduled for later closes it. */
  private updateFastGate(): void {
    const f = this.fast;
    if (f !== null) f[FAST_STATE.ENGINE] = this.running && this.fastAllowed() ? 1 : 0;
  }

  /**
   * The batch's one event went out through the fast path as `fastSeq`, and
   * `obj` is what the internal cache made of it: file it as sendItem() would
   * have, so ACKs release it and NACKs resend it. It carries the newest state,
   * so an older one still queued or waiting for its ACK is superseded. Only a
   * NEW conntrack can be the fast path's message; anything else (a cache that
   * disagreed) is counted, and the JS path sends it as usual.
   */
  private adoptFast(obj: CacheObject): boolean {
    const seq = this.fastSeq;
    this.fastSeq = -1;
    if (obj.kind !== 'ct' || obj.state !== OBJ_STATE.NEW) {
      this.fastOrphan(seq);
      return false;
    }
    const it = this.items.of(obj);
    const fresh = it.owner === null;
    it.owner?.remove(it);
    this.pin(it);
    if (fresh) this.entered(it);
    it.seq = seq;
    this.msgsSent++;
    this.writer.datagramsSent++;
    this.fastAdopted++;
    this.afterSend(it, 0);
    this.armAlive();
    return true;
  }

  private fastOrphan(seq: number): void {
    this.fastOrphans++;
    this.rlog.warn('fast-orphan', { seq, orphans: this.fastOrphans },
      'the fast path sent an event the JS path did not take as a new flow');
  }

  /** Puts `obj` in the tx queue (or leaves it where it waits already); no transmit round is scheduled. */
  protected abstract queueObject(obj: CacheObject): void;

  /**
   * Why not enqueue() them all: 100k objects queued at once need 100k queue
   * items alive at once, which lived just long enough to be promoted and cost
   * the sender a third of a resync in GC. Taken a batch at a time as the send
   * window opens, the items in flight stay within the recycled pool's size.
   */
  enqueueAll(objects: Iterable<CacheObject>): void {
    this.bulk = objects[Symbol.iterator]();
    this.kick();
  }

  /** Data waiting to go out: queued, or still in a bulk send's iterator. */
  protected hasBacklog(): boolean {
    return this.tx.len > 0 || this.bulkPending;
  }

  /** A bulk send still has objects to hand out (their number is unknown, and large). */
  protected get bulkPending(): boolean {
    return this.bulk !== null;
  }

  /** Moves up to BULK_BATCH objects from the bulk send into the tx queue. */
  private refill(): void {
    const src = this.bulk;
    if (src === null) return;
    this.batchAt = Math.floor(this.clock.now());
    try {
      for (let n = 0; n < BULK_BATCH; n++) {
        const r = src.next();
        if (r.done === true) {
          this.bulk = null;
          return;
        }
        this.queueObject(r.value);
      }
    } finally {
      this.batchAt = -1;
    }
  }

  requestResync(): void {
    this.queueCtl(FLAG.RESYNC, 0, 0);
  }

  /** Takes `obj` out of the sync layer without sending it (the cache dropped it). Additive API. */
  forget(obj: CacheObject): void {
    const it = obj.sync;
    if (!isObjItem(it) || it.obj !== obj) return;
    it.owner?.remove(it);
    this.unpin(it, false);
  }

  /**
   * Datagrams before start() or after stop() are ignored (counted): nothing
   * could answer them. `from` (the channel's source address and port) lets
   * FTFW tell a restarted peer from stale copies of its old messages.
   */
  receive(datagram: Buffer, from?: PeerSource): void {
    if (!this.running) {
      this.ignoredStopped++;
      return;
    }
    // One clock reading per datagram, not per message: performance.now() is ~0.1 µs,
    // a tenth of what the whole receive path now costs per message.
    const now = this.clock.now();
    this.rxAt = now;
    this.session.see(from, now);
    this.cur = datagram;
    try {
      walkDatagram(datagram, this.recvCounters, this.hdr, this.visit);
    } catch (err) {
      // A bug, not input: never let it escape the channel callback (counted with host errors).
      this.hostErrors++;
      this.rlog.error('sync-recv', { err }, 'sync receive failed');
    } finally {
      this.cur = EMPTY;
      this.updateFastGate();
    }
  }

  // ---- per-mode hooks ----

  /** Sequence/hello/ack logic for one framed message; the engine delivers DATA afterwards. */
  protected abstract recvMessage(hdr: NetHdr, buf: Buffer, off: number): RecvResult;
  /** Flags to add to the next outgoing message (FTFW: HELLO/HELLO_BACK). */
  protected abstract extraFlags(): number;
  /** `it` went out with `seq` and `flags`. */
  protected abstract afterSend(it: SyncItem, flags: number): void;
  /** May another data message go out now? (FTFW: its send window.) */
  protected mayStartData(): boolean {
    return true;
  }
  /** The alive timer fired. */
  protected abstract onAlive(): void;
  /** Drops everything queued (stop). */
  protected abstract dropAll(): void;

  // ---- queueing ----

  protected queueCtl(flags: number, from: number, to: number): void {
    const it = ctlItem(flags, from >>> 0, to >>> 0);
    this.tx.push(it);
    this.entered(it);
    this.kick();
  }

  /**
   * Stamps `it` (now queued) with its entry time into the sync layer. Only
   * data counts for the replication lag: our own ACKs wait in the resend
   * queue until the peer's next timer ACK covers them, so counting them
   * would make an idle, fully replicated pair show a lag swinging between
   * 0 and the alive interval.
   */
  protected entered(it: SyncItem): void {
    // Whole milliseconds: a small integer is stored in place, a fractional
    // clock reading would cost every queued item a boxed number. batchAt is
    // read once, outside the branch: read inside it, the load had no type
    // feedback until the first bulk send, whose first item then discarded the
    // compiled queueing path.
    const batchAt = this.batchAt;
    it.at = batchAt >= 0 ? batchAt : Math.floor(this.clock.now());
    if (it.kind === 'obj') this.ages.entered(it, this.heldCount());
  }

  /** Items held in the sync layer's queues (FTFW adds its resend queue). */
  protected heldCount(): number {
    return this.tx.len;
  }

  protected pin(it: ObjItem): void {
    if (it.pinned) return;
    it.pinned = true;
    it.obj.pins++;
  }

  /** Ends the sync layer's hold on an object; a DEAD one goes back to the host. */
  protected unpin(it: ObjItem, notify: boolean): void {
    if (!it.pinned) return;
    it.pinned = false;
    if (it.obj.pins > 0) it.obj.pins--;
    // Out of every queue: the object no longer carries its item. Kept, it would cost every
    // cached connection an idle item for its whole life (~9 MB at 100k, most of the sender's
    // heap growth); the pool hands it to the next object that changes.
    if (it.owner === null) this.items.release(it);
    if (notify && it.obj.state === OBJ_STATE.DEAD) {
      try {
        this.host.release(it.obj);
      } catch (err) {
        this.hostErrors++;
        this.rlog.error('sync-release', { err }, 'host.release failed');
      }
    }
  }

  protected kick(): void {
    if (this.scheduled || !this.running) return;
    if (this.inBatch) {
      // The batch's end runs the round (and writes the gate): the addon cannot run before it.
      this.batchKicked = true;
      return;
    }
    // Something waits to go out on a later turn: nothing may overtake it until that round.
    const f = this.fast;
    if (f !== null) f[FAST_STATE.ENGINE] = 0;
    this.scheduled = true;
    this.scheduleFn(this.round);
  }

  beginBatch(): void {
    this.inBatch = true;
  }

  endBatch(): void {
    this.inBatch = false;
    if (this.fastSeq >= 0) {
      // Sent, and the JS path filed nothing for it (filtered, no room, a decode error).
      this.fastOrphan(this.fastSeq);
      this.fastSeq = -1;
    }
    if (!this.batchKicked) return;
    this.batchKicked = false;
    if (this.running && !this.scheduled) this.transmit();
  }

  private readonly round = (): void => {
    this.scheduled = false;
    if (!this.running) return;
    this.transmit();
  };

  /**
   * One transmit round: everything queued, in order, then flush and re-arm
   * the alive timer. During a bulk send, batches are refilled from it while
   * they go out, for at most BULK_PASSES batches; a further round is then
   * scheduled, so kernel events and the peer's ACKs are read in between.
   */
  protected transmit(): void {
    let held = false;
    for (let pass = 0; pass < BULK_PASSES && !held; pass++) {
      this.refill();
      held = this.sendQueued();
      if (this.bulk === null) break;
    }
    this.writer.flush();
    this.armAlive();
    if (!held && this.bulk !== null) this.kick();
    else this.updateFastGate();
  }

  /** Sends the tx queue in order; returns true if the mode held data back. */
  private sendQueued(): boolean {
    // Data the mode holds back (mayStartData) stays queued in order; control
    // messages behind it still go out. Held data is walked past only while
    // control messages remain: a full window costs no walk of the queue.
    let held = false;
    for (let it = this.tx.head; it !== null;) {
      if (held && this.tx.ctl === 0) break;
      const next = it.next as SyncItem | null;
      if (it.kind === 'obj' && (held || !this.mayStartData())) {
        held = true;
      } else {
        this.tx.remove(it);
        this.sendItem(it);
      }
      it = next;
    }
    return held;
  }

  private sendItem(it: SyncItem): void {
    const flags = (it.kind === 'ctl' ? it.flags : 0) | this.extraFlags();
    this.curFlags = flags;
    try {
      this.writer.put(this, it);
    } catch (err) {
      // Only objects can fail to encode; conntrackd would loop for ever on an oversized one.
      this.sendMalformed++;
      this.rlog.warn('sync-encode', { err: err instanceof WireError ? err.reason : String(err) },
        'cannot encode sync message, dropped');
      if (it.kind === 'obj') this.unpin(it, true);
      return;
    }
    it.seq = this.seq.peek();
    this.seq.advance();
    this.msgsSent++;
    if (it.kind === 'ctl') {
      if (it.flags & FLAG.ACK) this.acksSent++;
      if (it.flags & FLAG.NACK) this.nacksSent++;
    }
    this.afterSend(it, flags);
  }

  /** MessageSource: writes `it` stamped with the pending seq and flags. */
  writeMessage(buf: Buffer, off: number, limit: number, it: SyncItem): number {
    const seq = this.seq.peek();
    if (it.kind === 'obj') return this.codec.encode(buf, off, limit, msgTypeOf(it.obj), this.curFlags, seq, it.obj);
    const len = hasAckExtension(MSG.CTL, this.curFlags) ? ACK_SIZE : HEADER_SIZE;
    if (off + len > limit) throw NO_SPACE;
    if (len === ACK_SIZE) return writeAck(buf, off, this.curFlags, seq, it.from, it.to);
    writeHeader(buf, off, MSG.CTL, this.curFlags, HEADER_SIZE, seq);
    return HEADER_SIZE;
  }

  /**
   * Pushes the alive deadline to aliveMs from now. Runs after every transmit
   * round, so it only moves the deadline: the one pending timer re-arms itself
   * for the remainder when it fires early, instead of a new timer per round.
   */
  private armAlive(): void {
    if (!this.running) return;
    this.aliveDue = this.clock.now() + this.aliveMs;
    if (this.aliveTimer === null) this.aliveTimer = this.clock.setTimeout(this.aliveFired, this.aliveMs);
  }

  private readonly aliveFired = (): void => {
    this.aliveTimer = null;
    if (!this.running) return;
    const left = this.aliveDue - this.clock.now();
    if (left > 0) {
      this.aliveTimer = this.clock.setTimeout(this.aliveFired, left);
      return;
    }
    this.onAlive();
    // Re-armed here as well as after the round, so a lost round cannot stop it.
    this.armAlive();
  };

  // ---- receive ----

  private readonly visit = (hdr: NetHdr, off: number): void => {
    this.msgsRecv++;
    this.lastRecvAt = this.rxAt;
    const r = this.recvMessage(hdr, this.cur, off);
    if (r === RECV.BAD) {
      this.recvCounters.malformed++;
      this.recvCounters.malformedHeader++;
      return;
    }
    if (r === RECV.DATA) this.deliver(hdr, off);
  };

  /** Decodes and hands a data message to the host; its seq has already been accepted. */
  private deliver(hdr: NetHdr, off: number): void {
    if (this.host.onPeerMessage !== undefined) {
      try {
        if (this.host.onPeerMessage(hdr.type, this.cur, off, hdr.len, this.rxAt)) return;
      } catch (err) {
        if (err instanceof WireError) this.malformedPayload(err, hdr);
        else {
          this.hostErrors++;
          this.rlog.error('sync-peer-data', { err }, 'host.onPeerMessage failed');
        }
        return;
      }
    }
    let value;
    try {
      value = this.codec.decode(this.cur, off, hdr);
    } catch (err) {
      this.malformedPayload(err, hdr);
      return;
    }
    try {
      this.host.onPeerData(hdr.type, value);
    } catch (err) {
      this.hostErrors++;
      this.rlog.error('sync-peer-data', { err }, 'host.onPeerData failed');
    }
  }

  private malformedPayload(err: unknown, hdr: NetHdr): void {
    this.recvCounters.malformed++;
    this.recvCounters.malformedPayload++;
    this.rlog.warn('sync-decode', { err: err instanceof WireError ? err.reason : String(err), seq: hdr.seq },
      'malformed sync payload');
  }

  /** Calls the host's resync hook, counting (never propagating) its failures. */
  protected resyncRequested(): void {
    this.rlog.info('sync-resync', {}, 'resync requested by other node');
    try {
      this.host.onResyncRequest();
    } catch (err) {
      this.hostErrors++;
      this.rlog.error('sync-resync-err', { err }, 'host.onResyncRequest failed');
    }
  }

  // ---- stats ----

  protected baseStats(rsQueueLen: number, rsQueueOverflow: number, peerRestarts: number, seqResets: number): EngineStats {
    const now = this.clock.now();
    const oldest = this.ages.oldest();
    return {
      seqLost: this.recvSeq.lostQuirk,
      seqBefore: this.recvSeq.before,
      msgsSent: this.msgsSent,
      msgsRecv: this.msgsRecv,
      resends: this.resends,
      nacksSent: this.nacksSent,
      nacksRecv: this.nacksRecv,
      acksSent: this.acksSent,
      acksRecv: this.acksRecv,
      rsQueueLen,
      rsQueueOverflow,
      txQueueLen: this.tx.len,
      peerRestarts,
      lastRecvAt: this.lastRecvAt,
      oldestUnackedAgeMs: oldest === Infinity ? 0 : Math.max(0, now - oldest),
      seqLostActual: this.recvSeq.lostActual,
      seqResets,
      sendMalformed: this.sendMalformed,
      hostErrors: this.hostErrors + this.writer.sendErrors,
      datagramsSent: this.writer.datagramsSent,
      ignoredStopped: this.ignoredStopped,
      fastAdopted: this.fastAdopted,
      fastOrphans: this.fastOrphans,
      fastDeclined: this.fast?.[FAST_STATE.DECLINED] ?? 0,
      fastSendErrors: this.fast?.[FAST_STATE.SEND_ERR] ?? 0,
      recv: { ...this.recvCounters },
    };
  }
}
