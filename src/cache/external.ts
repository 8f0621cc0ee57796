// The external cache: what the peer told us (conntrackd's external_cache.c),
// held until a commit writes it to the kernel (spec ftfw.md §5.1, §5.2).
//
//   CT_NEW  an existing entry is replaced (counted destroyed + created), else created
//   CT_UPD  attributes present in the message overwrite the entry's, or the entry is created
//   CT_DEL  the entry is removed if present
// Expectations (EXP_NEW/UPD/DEL) alike, in their own table. Objects here are
// never DEAD: a deletion removes at once (no sync layer holds them). Entries
// are NEW when created and ALIVE once updated, for -e and for tests.
import { EVENT, type Conntrack, type EventKind, type Expectation } from '../model/conntrack.js';
import type { Clock } from '../util/clock.js';
import { CtFields, scanConntrackFields } from '../wire/ct-fields.js';
import { decodeConntrackMsg } from '../wire/conntrack.js';
import { ExternalCtTable } from './external-ct.js';
import { expectationIdentity } from './hash.js';
import { mergeExpectation } from './internal.js';
import { CacheTable, type CacheEntry, type NoSpaceHandler } from './table.js';
import { OBJ_STATE, type CacheObject, type CacheStats } from './types.js';

export interface ExternalCacheOptions {
  clock: Clock;
  hashSize?: number;
  /** Per table (conntracks and expectations each). */
  limit?: number;
  onNoSpace?: NoSpaceHandler;
}

/** The commit fallback when the estimated remaining timeout is negative (§5.2). */
export const COMMIT_FALLBACK_TIMEOUT = 60;

export class ExternalCache {
  private readonly clock: Clock;
  /** Conntracks in columns (external-ct.ts): the bulk of what a backup holds. */
  private readonly ct: ExternalCtTable;
  private readonly exp: CacheTable<Expectation>;
  private readonly fields = new CtFields();

  constructor(opts: ExternalCacheOptions) {
    this.clock = opts.clock;
    const common = {
      name: 'external',
      ...(opts.hashSize !== undefined ? { hashSize: opts.hashSize } : {}),
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
      ...(opts.onNoSpace !== undefined ? { onNoSpace: opts.onNoSpace } : {}),
    };
    this.ct = new ExternalCtTable(common);
    this.exp = new CacheTable<Expectation>({ ...common, kind: 'exp', ops: expectationIdentity });
  }

  /**
   * A peer CT_NEW / CT_UPD / CT_DEL (as EVENT.NEW / UPDATE / DESTROY). Returns
   * a snapshot of the entry, or null if removed/absent/no space.
   */
  applyCt(kind: EventKind, value: Conntrack): CacheObject<Conntrack> | null {
    const slot = this.ct.applyObject(kind, value, wholeMs(this.clock.now()));
    return slot < 0 ? null : this.ct.snapshot(slot);
  }

  /**
   * The receive path: the CT_NEW / CT_UPD / CT_DEL message at buf[off..off+len),
   * applied without building a Conntrack when its attributes allow (nearly all
   * do). Throws the decoder's WireError for a malformed message, changing nothing.
   * `at`: the clock time it arrived, if the caller has read the clock already.
   */
  applyCtMessage(kind: EventKind, buf: Buffer, off: number, len: number, at: number = this.clock.now()): void {
    const now = wholeMs(at);
    if (scanConntrackFields(buf, off, len, this.fields)) this.ct.applyFields(kind, this.fields, now);
    else this.ct.applyObject(kind, decodeConntrackMsg(buf, off, len), now);
  }

  /** A peer EXP_NEW / EXP_UPD / EXP_DEL. */
  applyExp(kind: EventKind, value: Expectation): CacheObject<Expectation> | null {
    return apply(this.exp, kind, value, wholeMs(this.clock.now()), mergeExpectation);
  }

  /** A snapshot of the entry with the identity of `value`, or null. */
  getCt(value: Conntrack): CacheObject<Conntrack> | null {
    const slot = this.ct.find(value);
    return slot < 0 ? null : this.ct.snapshot(slot);
  }

  hasCt(value: Conntrack): boolean {
    return this.ct.find(value) >= 0;
  }

  getExp(value: Expectation): CacheObject<Expectation> | null {
    return this.exp.find(value);
  }

  /** `-e`: conntrack entries (snapshots) in a stable (insertion) order; nothing may change the cache meanwhile. */
  *cts(): IterableIterator<CacheObject<Conntrack>> {
    for (const slot of this.ct.slots()) yield this.ct.snapshot(slot);
  }

  /** `-e expect`. */
  exps(): IterableIterator<CacheObject<Expectation>> {
    return this.exp.entries();
  }

  /**
   * Commit order (§5.2): first every entry without a master tuple, then the
   * related ones, so a master exists in the kernel before what it expects.
   * "Related" means a master tuple is set, as in conntrackd (the IPS_EXPECTED
   * bit alone does not count: commit clears it).
   *
   * The order is fixed when the walk starts; each entry is read (a snapshot)
   * only when the walk reaches it, so a commit builds its kernel entries a
   * batch at a time instead of holding 100k snapshots at once, and an entry
   * the peer deletes while the commit runs is skipped.
   */
  *commitOrder(): IterableIterator<CacheObject<Conntrack>> {
    const slots = this.ct.commitSlots();
    for (let k = 0; k < slots.length; k++) {
      const slot = slots[k]!;
      if (this.ct.isLive(slot)) yield this.ct.snapshot(slot);
    }
  }

  /**
   * commitOrder for a commit that writes column entries itself: the slots in
   * commit order, read with the *At methods (each checks isLiveAt first).
   */
  commitSlots(): Int32Array {
    return this.ct.commitSlots();
  }

  isLiveAt(slot: number): boolean {
    return this.ct.isLive(slot);
  }

  /**
   * The fields of the entry at `slot` when it is kept in columns and is a
   * plain IPv4 TCP/UDP/UDP-Lite connection (no NAT, no zone): what a commit
   * can write without a Conntrack. The table's scratch: read it at once.
   */
  plainFieldsAt(slot: number): CtFields | null {
    return this.ct.plainFields(slot);
  }

  lastUpdateAt(slot: number): number {
    return this.ct.lastUpdateOf(slot);
  }

  familyAt(slot: number): number {
    return this.ct.familyOf(slot);
  }

  snapshotAt(slot: number): CacheObject<Conntrack> {
    return this.ct.snapshot(slot);
  }

  /** Expectations to commit, after the conntracks. */
  expCommitOrder(): CacheObject<Expectation>[] {
    const out: CacheObject<Expectation>[] = [];
    for (let e = this.exp.first(); e !== null; e = e.lnext) out.push(e);
    return out;
  }

  /** Number of conntrack entries. */
  get ctSize(): number {
    return this.ct.size;
  }

  get expSize(): number {
    return this.exp.size;
  }

  get ctStats(): Readonly<CacheStats> {
    return this.ct.stats;
  }

  get expStats(): Readonly<CacheStats> {
    return this.exp.stats;
  }

  /** `-f external`: conntracks. Returns the number removed. */
  flushCt(): number {
    return this.ct.clear();
  }

  flushExp(): number {
    return this.exp.clear();
  }

  flush(): number {
    return this.ct.clear() + this.exp.clear();
  }
}

/**
 * Entry times are kept to the millisecond: a whole number of milliseconds is
 * a small integer stored in the entry itself, where a fractional clock
 * reading is a separate heap number (16 bytes and one more object per entry
 * for the GC to copy). The times are only ever shown or used in whole seconds.
 * (After ~24 days of uptime the readings outgrow small integers: still
 * correct, just boxed again.)
 */
function wholeMs(now: number): number {
  return Math.floor(now);
}

function apply<T>(t: CacheTable<T>, kind: EventKind, value: T, now: number, merge: (d: T, s: T) => void): CacheEntry<T> | null {
  const h = t.hashOf(value);
  const e = t.lookup(value, h);
  switch (kind) {
    case EVENT.NEW:
      if (e === null) return t.insert(value, h, now);
      t.revive(e, value, now); // destroyed + created, same slot
      return e;
    case EVENT.UPDATE:
      if (e === null) return t.insert(value, h, now);
      merge(e.value, value);
      e.state = OBJ_STATE.ALIVE;
      e.lastUpdate = now;
      t.stats.updateOk++;
      return e;
    case EVENT.DESTROY:
      if (e === null) {
        t.stats.deleteNotFound++;
        return null;
      }
      t.remove(e);
      return null;
    default:
      return null;
  }
}

/**
 * The timeout (seconds) a committed entry gets (§5.2): CommitTimeout when
 * configured, else the peer's last reported timeout minus the time since that
 * report, or 60 s when that is negative. undefined when the entry carries no
 * timeout (the kernel then applies its default).
 */
export function commitTimeout(obj: CacheObject<Conntrack>, nowMs: number, configured?: number): number | undefined {
  return remainingTimeout(obj.value.timeout, obj.lastUpdate, nowMs, configured);
}

/** commitTimeout from the numbers: the last reported timeout (s) and when it was reported (ms). */
export function remainingTimeout(t: number | undefined, lastUpdate: number, nowMs: number, configured?: number): number | undefined {
  if (configured !== undefined && configured > 0) return configured;
  if (t === undefined) return undefined;
  const left = t - Math.floor((nowMs - lastUpdate) / 1000);
  return left < 0 ? COMMIT_FALLBACK_TIMEOUT : left;
}
