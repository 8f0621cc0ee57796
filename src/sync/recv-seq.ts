// Receive-side sequence tracking (conntrackd network.c nethdr_track_seq),
// plus a guard against a stalled baseline (ctsync's improvement).
import { seqAfter } from '../wire/header.js';
import { rdI32BE } from '../util/bytes.js';
import { settleFields } from '../util/shape.js';

export const SEQ = {
  UNSET: 0,
  IN_SYNC: 1,
  AFTER: 2,
  BEFORE: 3,
} as const;
export type SeqResult = (typeof SEQ)[keyof typeof SEQ];

export class RecvSeq {
  isSet = false;
  /** Last accepted sequence number from the peer. */
  last = 0;
  /** "Packets lost" with conntrackd's arithmetic (seq − last + 1: over-counts by 2 per gap). */
  lostQuirk = 0;
  /** Messages really missing: seq − expected per gap. */
  lostActual = 0;
  /** "Packets before": delayed, duplicated or replayed messages dropped. */
  before = 0;

  constructor() {
    // These first change at the first lost or late message, in the middle of the work a lossy
    // link brings; a forged seq far ahead adds up to 2^32 (see settleFields).
    settleFields(this, { mutable: ['before'], double: ['lostQuirk', 'lostActual'] });
  }

  get expected(): number {
    return (this.last + 1) >>> 0;
  }

  /** Classifies `seq` and counts lost/before; does not move `last` (see update). */
  track(seq: number): SeqResult {
    if (!this.isSet) return SEQ.UNSET;
    const exp = this.expected;
    if (seq === exp) return SEQ.IN_SYNC;
    if (seqAfter(seq, exp)) {
      this.lostQuirk += (seq - this.last + 1) >>> 0;
      this.lostActual += (seq - exp) >>> 0;
      return SEQ.AFTER;
    }
    this.before++;
    return SEQ.BEFORE;
  }

  update(seq: number): void {
    this.isSet = true;
    this.last = seq >>> 0;
  }
}

export interface StallGuardOptions {
  /** Reset after this many progressing "before" messages in a row. Default 50. */
  maxMessages?: number;
  /** ... or once this long has passed since the first of them (and at least 2 progressed). Default 3000 ms. */
  maxMs?: number;
}

/**
 * conntrackd drops every message whose seq is before the last accepted one.
 * One forged (or corrupted) far-ahead seq therefore makes it ignore the real
 * peer until the peer's counter catches up, possibly for ever. The guard
 * notices the peer's real stream: consecutive dropped messages, with no
 * accepted message in between, whose seqs keep increasing among themselves
 * and were never accepted before. Duplicates and replays of recent traffic
 * (found in a small ring of recently accepted seqs) do not count, so a link
 * that duplicates a bulk datagram cannot trip it. After enough of them the
 * caller adopts the peer's current seq.
 */
export class SeqStallGuard {
  private static readonly RING = 256;
  private readonly maxMessages: number;
  private readonly maxMs: number;
  private readonly recent = new Uint32Array(SeqStallGuard.RING);
  /** Content fingerprints beside the seqs: a restarted peer reuses seqs (they are seeded with Unix time), a copy reuses content too. */
  private readonly recentHash = new Uint32Array(SeqStallGuard.RING);
  private recentN = 0;
  private run = 0;
  private since = 0;
  private shadow = 0;

  constructor(opts: StallGuardOptions = {}) {
    this.maxMessages = Math.max(1, opts.maxMessages ?? 50);
    this.maxMs = opts.maxMs ?? 3000;
  }

  /** A message was accepted: the stream is healthy. */
  accepted(seq: number, hash = 0): void {
    this.run = 0;
    const i = this.recentN++ & (SeqStallGuard.RING - 1);
    this.recent[i] = seq;
    this.recentHash[i] = hash;
  }

  /** A message was dropped as "before"; true means: adopt `seq` as the new baseline. */
  dropped(seq: number, now: number, hash = 0): boolean {
    if (this.wasAccepted(seq, hash)) return false;
    if (this.run === 0) {
      this.run = 1;
      this.since = now;
      this.shadow = seq;
    } else {
      // Only progress counts (a gap is fine: loss); replays don't.
      if (!seqAfter(seq, this.shadow)) return false;
      this.shadow = seq;
      this.run++;
    }
    if (this.run >= this.maxMessages || (this.run >= 2 && now - this.since >= this.maxMs)) {
      this.run = 0;
      return true;
    }
    return false;
  }

  private wasAccepted(seq: number, hash: number): boolean {
    const n = Math.min(this.recentN, SeqStallGuard.RING);
    for (let i = 0; i < n; i++) if (this.recent[i] === seq && this.recentHash[i] === hash) return true;
    return false;
  }
}

/**
 * A fingerprint of (at most) the first 64 bytes of a message: enough to tell a
 * copy from new content. It runs for every accepted message, so it reads
 * 32-bit words (messages are 4-byte aligned; a stray tail is read bytewise).
 * Only compared within this process, so the function itself is free to change.
 */
export function messageHash(buf: Buffer, off: number, len: number): number {
  let h = 0x811c9dc5;
  const end = off + Math.min(len, 64, buf.length - off);
  let i = off;
  for (; i + 4 <= end; i += 4) {
    const w = rdI32BE(buf, i);
    h = Math.imul(h ^ w, 0x01000193);
    h ^= h >>> 15;
  }
  for (; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}

/** Where a datagram came from, as the channel reports it. */
export interface PeerSource {
  address: string;
  port: number;
}

/**
 * The peer's session, told by the source of its datagrams. A conntrackd or
 * ctsync sender has no fixed source port (UDP: an unbound or port-0 socket;
 * TCP: a new connection), so a restarted peer always speaks from a new port,
 * while stale copies of its old messages keep the old one. That separates a
 * restart from a late copy where sequence numbers cannot: a peer restarted
 * within seconds seeds its counter (Unix seconds) inside or behind the range
 * it used before, and one restarted before its HELLO was answered never stops
 * saying HELLO in between.
 *
 * A source change without HELLO (a TCP reconnect, a switch to another link)
 * is the same session on a new path. Sources that a restart replaced are
 * dead: their late datagrams belong to the old incarnation and are dropped.
 * A peer sending from a fixed port gives no signal; the sequence heuristics
 * (HELLO episodes, stale-HELLO range, stall guard) then still apply. A dead
 * source is dead for DEAD_MS only: no late copy lives that long, and a later
 * incarnation may be given the same ephemeral port again.
 */
export class PeerSession {
  private static readonly DEAD = 4;
  static readonly DEAD_MS = 30_000;
  private set = false;
  private port = 0;
  private addr = '';
  private curPort = 0;
  private curAddr = '';
  /** The current datagram's source differs from the session's (computed once per datagram). */
  private differs = false;
  private dead = false;
  private known = false;
  /** The clock reading passed to see(): when a restart found by accepted() happened. */
  private seenAt = 0;
  private readonly deadPorts = new Int32Array(PeerSession.DEAD).fill(-1);
  private readonly deadAddrs: string[] = new Array<string>(PeerSession.DEAD).fill('');
  private readonly deadAt = new Float64Array(PeerSession.DEAD);
  private deadN = 0;

  constructor() {
    // A fractional clock reading from the first datagram on (see settleFields).
    settleFields(this, { double: ['seenAt'] });
  }

  /** The datagram about to be processed came from `from` (undefined: unknown, no signal) at clock time `now`. */
  see(from: PeerSource | undefined, now: number): void {
    this.known = from !== undefined;
    this.seenAt = now;
    if (from === undefined) {
      this.differs = this.dead = false;
      return;
    }
    this.curPort = from.port;
    this.curAddr = from.address;
    this.differs = this.set && (from.port !== this.port || from.address !== this.addr);
    this.dead = false;
    if (this.differs) {
      for (let i = 0; i < PeerSession.DEAD; i++) {
        if (this.deadPorts[i] === from.port && this.deadAddrs[i] === from.address && now - this.deadAt[i]! < PeerSession.DEAD_MS) {
          this.dead = true;
        }
      }
    }
  }

  /** The current datagram comes from a source other than the session's, and not a dead one. */
  get isNew(): boolean {
    return this.differs && !this.dead;
  }

  /** The current datagram comes from an incarnation of the peer that has since restarted. */
  get isDead(): boolean {
    return this.dead;
  }

  /** A message of the current datagram was accepted; `restart`: it began a new incarnation. */
  accepted(restart: boolean): void {
    if (!this.known) return;
    if (this.differs) {
      if (restart) {
        const i = this.deadN++ % PeerSession.DEAD;
        this.deadPorts[i] = this.port;
        this.deadAddrs[i] = this.addr;
        this.deadAt[i] = this.seenAt;
      }
      this.differs = false;
    } else if (this.set) {
      return;
    }
    this.set = true;
    this.port = this.curPort;
    this.addr = this.curAddr;
  }
}
