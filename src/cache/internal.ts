// The internal cache: ctsync's mirror of the local kernel table (conntrackd's
// internal_cache.c), fed by ctnetlink events and dumps, read by the sync layer.
//
// State machine per object (spec ftfw.md §2.3, §3.2):
//   kernel NEW            → state NEW   (a NEW for a known identity re-creates it in place)
//   kernel UPDATE         → state ALIVE (an UPDATE for an unknown or DEAD identity creates it, state NEW)
//   kernel DESTROY        → state DEAD, pinned, hidden from -i; it stays in the table
//                           until the sync layer is done with its CT_DEL and calls release().
// Every change of an object the peer must hear about goes to onChange(obj)
// (wired by the daemon to sync.enqueue). The object identity is kept stable
// for as long as the flow exists, including a re-creation while DEAD, so the
// sync layer never holds two objects for one flow and only ever sends the
// newest state.
//
// Pin protocol (the contract with the sync layer, see types.ts `pins` and
// src/sync/engine.ts): the sync layer holds one pin from enqueue until it is
// done with the object, drops it, then calls SyncHost.release(obj) for a DEAD
// object, which the daemon forwards to InternalCache.release(obj). The cache
// takes one pin of its own when it reports an object DEAD, so a DEAD object
// is kept even if the sync layer had never pinned it; release() drops the
// cache's pin and removes the object once no pins are left. release() of an
// object that is not DEAD, or no longer in the table, does nothing. Objects
// the cache drops without a report (flush(), FLUSH/COMMIT-origin destroys)
// go to onDrop, which the daemon wires to sync.forget(obj).
import { EVENT, type Conntrack, type EventKind, type Expectation, type TcpInfo } from '../model/conntrack.js';
import { keptReply } from '../model/nat.js';
import type { Clock } from '../util/clock.js';
import { conntrackIdentity, expectationIdentity, type IdentityOps } from './hash.js';
import { CacheTable, isCacheEntry, type CacheEntry, type NoSpaceHandler } from './table.js';
import { OBJ_STATE, type CacheObject, type CacheStats } from './types.js';

/** Who caused a kernel event (conntrackd's origin.h). */
export const ORIGIN = {
  /** The kernel or another process: mirrored and sent to the peer. */
  NOT_ME: 0,
  /** Our own commit (the commit handle's port id): mirrored, never sent back. */
  COMMIT: 1,
  /** Our own selective kernel flush (-F / -t): DESTROY drops the object without a CT_DEL (§5.4). */
  FLUSH: 2,
  /** Our own direct injection (DisableExternalCache): ignored entirely. */
  INJECT: 3,
} as const;
export type Origin = (typeof ORIGIN)[keyof typeof ORIGIN];

export interface InternalCacheOptions<T> {
  clock: Clock;
  /** A change the peer must hear about: the daemon wires it to sync.enqueue(obj). */
  onChange?: (obj: CacheObject<T>) => void;
  /** Initial bucket count (General HashSize). */
  hashSize?: number;
  /** Maximum entries, DEAD ones included (General HashLimit). */
  limit?: number;
  /** Fires on every insert refused for lack of space (already counted in stats.noSpace). */
  onNoSpace?: NoSpaceHandler;
  /** Keep DEAD objects until release() (default: true when onChange is set, since only a sync layer releases). */
  pinDead?: boolean;
  /** An object left the cache without a report (flush, FLUSH/COMMIT-origin destroy): wire to sync.forget(obj). */
  onDrop?: (obj: CacheObject<T>) => void;
}

/** Outcome of reconcile(), for the log line after an overrun resync. */
export interface ReconcileResult {
  created: number;
  updated: number;
  unchanged: number;
  deleted: number;
  /** Dump entries that found no room (also in stats.noSpace). */
  failed: number;
}

interface ValueOps<T> {
  kind: 'ct' | 'exp';
  /** Drops what a stored value need not keep (a conntrack's plain reply tuple: see keptReply). */
  compact(v: T): void;
  identity: IdentityOps<T>;
  merge(dst: T, src: T): void;
  sameState(cur: T, next: T): boolean;
  /** The kernel id of the flow when known (a different id under the same tuple is a new flow). */
  id(v: T): number | undefined;
}

const CT_OPS: ValueOps<Conntrack> = {
  kind: 'ct',
  compact: (v) => {
    // The daemon's event decoder already leaves plain replies out (one property check here);
    // kernel dumps (-R, reconcile) and other callers bring them. Set, not deleted: the entry
    // keeps its hidden class.
    if (v.reply !== undefined && keptReply(v) === undefined) v.reply = undefined;
  },
  identity: conntrackIdentity,
  merge: mergeConntrack,
  sameState: conntrackSameState,
  id: (v) => v.id,
};

const EXP_OPS: ValueOps<Expectation> = {
  kind: 'exp',
  compact: () => undefined,
  identity: expectationIdentity,
  merge: mergeExpectation,
  sameState: expectationSameState,
  id: (v) => v.id,
};

export class InternalCache<T extends Conntrack | Expectation = Conntrack> {
  private readonly table: CacheTable<T>;
  private readonly clock: Clock;
  private readonly onChange: ((obj: CacheObject<T>) => void) | undefined;
  private readonly pinDead: boolean;
  private readonly onDrop: ((obj: CacheObject<T>) => void) | undefined;
  private readonly vops: ValueOps<T>;
  private epoch = 0;

  static forConntracks(opts: InternalCacheOptions<Conntrack>): InternalCache<Conntrack> {
    return new InternalCache<Conntrack>(CT_OPS, opts);
  }

  static forExpectations(opts: InternalCacheOptions<Expectation>): InternalCache<Expectation> {
    return new InternalCache<Expectation>(EXP_OPS, opts);
  }

  private constructor(vops: ValueOps<T>, opts: InternalCacheOptions<T>) {
    this.vops = vops;
    this.clock = opts.clock;
    this.onChange = opts.onChange;
    this.pinDead = opts.pinDead ?? opts.onChange !== undefined;
    this.onDrop = opts.onDrop;
    this.table = new CacheTable<T>({
      name: 'internal',
      kind: vops.kind,
      ops: vops.identity,
      ...(opts.hashSize !== undefined ? { hashSize: opts.hashSize } : {}),
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
      ...(opts.onNoSpace !== undefined ? { onNoSpace: opts.onNoSpace } : {}),
    });
  }

  get kind(): 'ct' | 'exp' {
    return this.vops.kind;
  }

  /**
   * Entry times in whole milliseconds, as the external cache keeps them: a
   * small integer is stored in the entry itself, a fractional clock reading
   * is a separate heap number (two per entry, ~3 MiB at 100k entries).
   */
  private nowMs(): number {
    return Math.floor(this.clock.now());
  }

  /** Entries in the table, DEAD ones included (-s cache "total"). */
  get size(): number {
    return this.table.size;
  }

  /** Visible (non-DEAD) entries. */
  get activeCount(): number {
    return this.table.stats.active;
  }

  get limit(): number {
    return this.table.limit;
  }

  /** Live counters (do not modify). */
  get stats(): Readonly<CacheStats> {
    return this.table.stats;
  }

  /**
   * Applies one kernel event. Returns the object it touched, or null when
   * nothing was stored (unknown DESTROY, INJECT origin, or no space: counted
   * and reported through onNoSpace).
   */
  event(kind: EventKind, value: T, origin: Origin = ORIGIN.NOT_ME): CacheObject<T> | null {
    if (origin === ORIGIN.INJECT) return null;
    const notify = origin === ORIGIN.NOT_ME;
    switch (kind) {
      case EVENT.NEW:
        return this.onNew(value, notify);
      case EVENT.UPDATE:
        return this.onUpdate(value, notify);
      case EVENT.DESTROY:
        return this.onDestroy(value, notify); // FLUSH and COMMIT origins: dropped without a CT_DEL
      default:
        return null;
    }
  }

  /**
   * A dump entry for -R (conntrackd's populate): stored like an UPDATE,
   * nothing is reported (`-B` sends the cache afterwards).
   */
  populate(value: T): CacheObject<T> | null {
    return this.onUpdate(value, false);
  }

  /**
   * After a netlink overrun: brings the cache in line with a full dump of the
   * kernel table. Entries absent from the dump become DEAD (and are reported,
   * so the peer gets a CT_DEL); new entries are created (NEW), entries whose
   * state differs are updated (ALIVE), each reported once. Unchanged entries
   * are not reported unless `reportAll` (conntrackd's resync re-sends every
   * dumped entry). `entries` must already be filtered by the daemon.
   *
   * `since` is the clock time the dump started. The dump is read while events
   * keep arriving, so an object an event touched at or after `since` knows
   * more than the dump: it is neither overwritten, revived nor deleted.
   */
  reconcile(entries: Iterable<T>, opts: { reportAll?: boolean; since?: number } = {}): ReconcileResult {
    const reportAll = opts.reportAll === true;
    const since = sinceMs(opts.since ?? Infinity);
    const res: ReconcileResult = { created: 0, updated: 0, unchanged: 0, deleted: 0, failed: 0 };
    const epoch = ++this.epoch;
    const now = this.nowMs();
    const t = this.table;
    for (const v of entries) {
      // Compacted as events are, so sameState compares like with like.
      this.vops.compact(v);
      const h = t.hashOf(v);
      const e = t.lookup(v, h);
      if (e === null) {
        const n = t.insert(v, h, now);
        if (n === null) {
          res.failed++;
          continue;
        }
        n.epoch = epoch;
        res.created++;
        this.onChange?.(n);
      } else if (e.epoch === epoch) {
        // The same flow twice in one dump: the later snapshot wins, already reported.
        this.vops.merge(e.value, v);
      } else if (e.lastUpdate >= since) {
        // An event newer than the dump already brought this object up to date (or killed it).
        e.epoch = epoch;
        res.unchanged++;
      } else if (e.state === OBJ_STATE.DEAD || this.isOtherFlow(e.value, v)) {
        dropCachePin(e);
        t.revive(e, v, now);
        e.epoch = epoch;
        res.created++;
        this.onChange?.(e);
      } else if (!reportAll && this.vops.sameState(e.value, v)) {
        this.vops.merge(e.value, v);
        e.epoch = epoch;
        res.unchanged++;
      } else {
        this.vops.merge(e.value, v);
        e.state = OBJ_STATE.ALIVE;
        e.lastUpdate = now;
        e.epoch = epoch;
        t.stats.updateOk++;
        res.updated++;
        this.onChange?.(e);
      }
    }
    for (let e = t.first(); e !== null;) {
      const next = e.lnext;
      if (e.linked && e.epoch !== epoch && e.state !== OBJ_STATE.DEAD && e.lastUpdate < since) {
        this.kill(e, true);
        res.deleted++;
      }
      e = next;
    }
    return res;
  }

  /** The sync layer is done with `obj` (its CT_DEL was acknowledged or dropped). */
  release(obj: CacheObject<T>): void {
    if (!isCacheEntry(obj) || !obj.linked || obj.state !== OBJ_STATE.DEAD) return;
    const e = obj;
    dropCachePin(e);
    if (e.pins === 0) this.table.remove(e);
  }

  /** The visible object with the identity of `value`, or null (DEAD objects are not found). */
  get(value: T): CacheObject<T> | null {
    const e = this.table.find(value);
    return e !== null && e.state !== OBJ_STATE.DEAD ? e : null;
  }

  /** Any object with the identity of `value`, DEAD ones included. */
  lookup(value: T): CacheObject<T> | null {
    return this.table.find(value);
  }

  /** An event touched `obj` at or after clock time `since` (a dump's start): it knows more than that dump. */
  touchedSince(obj: CacheObject<T>, since: number): boolean {
    return obj.lastUpdate >= sinceMs(since);
  }

  /** `-i`: visible objects in a stable (insertion) order. */
  *visible(): IterableIterator<CacheObject<T>> {
    for (const e of this.table.entries()) if (e.state !== OBJ_STATE.DEAD) yield e;
  }

  /** Bulk send (RESYNC, -B): every object, DEAD-but-unacknowledged ones included (§3.5). */
  all(): IterableIterator<CacheObject<T>> {
    return this.table.entries();
  }

  /**
   * `-f` / `-f internal`: empties the cache. Objects still held by the sync
   * layer stay valid for it; their later release() is a no-op. Returns the
   * number of objects removed.
   */
  flush(): number {
    return this.table.clear(this.flushed);
  }

  private readonly flushed = (e: CacheEntry<T>): void => {
    dropCachePin(e);
    this.onDrop?.(e);
  };

  private isOtherFlow(cur: T, next: T): boolean {
    const a = this.vops.id(cur);
    const b = this.vops.id(next);
    return a !== undefined && b !== undefined && a !== b;
  }

  private onNew(value: T, notify: boolean): CacheObject<T> | null {
    this.vops.compact(value);
    const t = this.table;
    const h = t.hashOf(value);
    const now = this.nowMs();
    let e = t.lookup(value, h);
    if (e === null) {
      e = t.insert(value, h, now);
      if (e === null) return null;
    } else {
      // Same identity again: a new flow replaced the old one (conntrackd
      // deletes and re-creates). Kept as the same object so a queued older
      // state of it can never be sent after the new one.
      dropCachePin(e);
      t.revive(e, value, now);
    }
    if (notify) this.onChange?.(e);
    return e;
  }

  private onUpdate(value: T, notify: boolean): CacheObject<T> | null {
    this.vops.compact(value);
    const t = this.table;
    const h = t.hashOf(value);
    const now = this.nowMs();
    let e = t.lookup(value, h);
    if (e === null) {
      e = t.insert(value, h, now);
      if (e === null) return null;
    } else if (e.state === OBJ_STATE.DEAD) {
      dropCachePin(e);
      t.revive(e, value, now);
    } else {
      this.vops.merge(e.value, value);
      e.state = OBJ_STATE.ALIVE;
      e.lastUpdate = now;
      t.stats.updateOk++;
    }
    if (notify) this.onChange?.(e);
    return e;
  }

  private onDestroy(value: T, notify: boolean): CacheObject<T> | null {
    const e = this.table.find(value);
    if (e === null) {
      // Not ours (filtered, or created before we started): nothing to tell the peer.
      this.table.stats.deleteNotFound++;
      return null;
    }
    if (e.state === OBJ_STATE.DEAD) return e;
    this.kill(e, notify);
    return e;
  }

  /** DEAD + report + pin, or straight removal when nobody will release it. */
  private kill(e: CacheEntry<T>, notify: boolean): void {
    this.table.markDead(e);
    e.lastUpdate = this.nowMs();
    if (notify && this.onChange !== undefined) {
      if (this.pinDead && !e.cachePin) {
        e.pins++;
        e.cachePin = true;
      }
      this.onChange(e);
      if (!this.pinDead) this.table.remove(e);
    } else {
      this.table.remove(e);
      this.onDrop?.(e);
    }
  }
}

function dropCachePin<T>(e: CacheEntry<T>): void {
  if (e.cachePin) {
    e.cachePin = false;
    if (e.pins > 0) e.pins--;
  }
}

// ---------------------------------------------------------------------------
// Merging partial updates, comparing snapshots (shared with external.ts).
//
// Both caches merge rather than replace on UPDATE (conntrackd copies the
// attributes set in the update over the cached object): a kernel UPDATE event
// only carries what changed (protoinfo, helper, labels... depend on the event
// bits) and a peer's CT_UPD only what it chose to send. Fields are listed
// explicitly instead of looping over keys: straight-line code, no allocation
// on the event path.

/**
 * Entry times are whole ms (nowMs), a dump's start is a fractional clock
 * reading: an object touched in the dump's first millisecond counts as
 * touched during it (kept as it is rather than overwritten or removed).
 */
function sinceMs(since: number): number {
  return Math.floor(since);
}

/**
 * Copies every field set in `src` onto `dst` (identity fields included: they are equal). Nested protoinfo is merged field by field.
 * The internal cache compacts `src` first (CT_OPS.compact), so a plain reply never arrives here from it.
 */
export function mergeConntrack(dst: Conntrack, src: Conntrack): void {
  if (src.reply !== undefined) dst.reply = src.reply;
  if (src.status !== undefined) dst.status = src.status;
  if (src.timeout !== undefined) dst.timeout = src.timeout;
  if (src.mark !== undefined) dst.mark = src.mark;
  if (src.zone !== undefined) dst.zone = src.zone;
  if (src.id !== undefined) dst.id = src.id;
  if (src.use !== undefined) dst.use = src.use;
  if (src.labels !== undefined) dst.labels = src.labels;
  if (src.helper !== undefined) dst.helper = src.helper;
  if (src.tcp !== undefined) {
    // Both decoders (kernel events, peer messages) share one frozen TcpInfo
    // between entries in the same TCP state: such a one is replaced
    // (copy-on-write), never modified.
    const d = dst.tcp;
    const s = src.tcp;
    if (d === undefined || (s.wscaleOrig !== undefined && s.wscaleReply !== undefined && s.flagsOrig !== undefined &&
      s.flagsReply !== undefined && s.flagsMaskOrig !== undefined && s.flagsMaskReply !== undefined)) {
      dst.tcp = s;
    } else {
      // Peer updates (external cache) carry a partial, unshared TcpInfo: merged in place.
      const m: TcpInfo = Object.isFrozen(d) ? { ...d } : d;
      m.state = s.state;
      if (s.wscaleOrig !== undefined) m.wscaleOrig = s.wscaleOrig;
      if (s.wscaleReply !== undefined) m.wscaleReply = s.wscaleReply;
      if (s.flagsOrig !== undefined) m.flagsOrig = s.flagsOrig;
      if (s.flagsReply !== undefined) m.flagsReply = s.flagsReply;
      if (s.flagsMaskOrig !== undefined) m.flagsMaskOrig = s.flagsMaskOrig;
      if (s.flagsMaskReply !== undefined) m.flagsMaskReply = s.flagsMaskReply;
      dst.tcp = m;
    }
  }
  if (src.sctp !== undefined) {
    const d = dst.sctp;
    if (d === undefined) dst.sctp = src.sctp;
    else {
      const s = src.sctp;
      d.state = s.state;
      if (s.vtagOrig !== undefined) d.vtagOrig = s.vtagOrig;
      if (s.vtagReply !== undefined) d.vtagReply = s.vtagReply;
    }
  }
  if (src.dccp !== undefined) {
    const d = dst.dccp;
    if (d === undefined) dst.dccp = src.dccp;
    else {
      const s = src.dccp;
      d.state = s.state;
      if (s.role !== undefined) d.role = s.role;
      if (s.handshakeSeq !== undefined) d.handshakeSeq = s.handshakeSeq;
    }
  }
  if (src.seqAdjOrig !== undefined) dst.seqAdjOrig = src.seqAdjOrig;
  if (src.seqAdjReply !== undefined) dst.seqAdjReply = src.seqAdjReply;
  if (src.synproxy !== undefined) dst.synproxy = src.synproxy;
  if (src.countersOrig !== undefined) dst.countersOrig = src.countersOrig;
  if (src.countersReply !== undefined) dst.countersReply = src.countersReply;
  if (src.snatAddr !== undefined) dst.snatAddr = src.snatAddr;
  if (src.snatPort !== undefined) dst.snatPort = src.snatPort;
  if (src.dnatAddr !== undefined) dst.dnatAddr = src.dnatAddr;
  if (src.dnatPort !== undefined) dst.dnatPort = src.dnatPort;
  if (src.master !== undefined) dst.master = src.master;
}

/** Expectations change rarely (no kernel UPDATE events in practice): a generic per-key copy is enough. */
export function mergeExpectation(dst: Expectation, src: Expectation): void {
  const d = dst as unknown as Record<string, unknown>;
  const s = src as unknown as Record<string, unknown>;
  for (const k in s) {
    if (s[k] !== undefined) d[k] = s[k];
  }
}

function sameTupleLoose(a: Conntrack['reply'], b: Conntrack['reply']): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return a.src === b.src && a.dst === b.dst && a.proto === b.proto && a.l3 === b.l3 && a.sport === b.sport &&
    a.dport === b.dport && a.icmpType === b.icmpType && a.icmpCode === b.icmpCode && a.icmpId === b.icmpId &&
    a.greKeySrc === b.greKeySrc && a.greKeyDst === b.greKeyDst && a.zone === b.zone;
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/**
 * True when `next` (a dump entry) would tell the peer nothing new about
 * `cur`. The timeout, counters, use count and kernel id are left out: the
 * timeout ticks down every second and the kernel sends no event for that
 * either, counters are not replicated. Used by reconcile only (after an
 * overrun), never per event.
 */
export function conntrackSameState(cur: Conntrack, next: Conntrack): boolean {
  return cur.status === next.status && cur.mark === next.mark && cur.helper === next.helper &&
    sameTupleLoose(cur.reply, next.reply) && sameJson(cur.tcp?.state, next.tcp?.state) &&
    sameJson(cur.sctp?.state, next.sctp?.state) && sameJson(cur.dccp?.state, next.dccp?.state) &&
    sameJson(cur.labels, next.labels) && sameJson(cur.seqAdjOrig, next.seqAdjOrig) &&
    sameJson(cur.seqAdjReply, next.seqAdjReply) && sameJson(cur.synproxy, next.synproxy) &&
    (cur.tcp?.wscaleOrig ?? 0) === (next.tcp?.wscaleOrig ?? 0) &&
    (cur.tcp?.wscaleReply ?? 0) === (next.tcp?.wscaleReply ?? 0);
}

export function expectationSameState(cur: Expectation, next: Expectation): boolean {
  return cur.flags === next.flags && cur.class === next.class && cur.helper === next.helper &&
    cur.fn === next.fn && sameJson(cur.mask, next.mask) && sameJson(cur.nat, next.nat);
}
