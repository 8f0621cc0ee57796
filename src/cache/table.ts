// A bounded hash table of cache objects, the ctsync counterpart of conntrackd's
// hashtable.c + cache.c. Both caches (internal and external, ct and exp) are
// built on it.
//
// Layout, chosen for the kernel event rate:
// - separate chaining through a field of the entry itself (`hnext`), so an
//   insert allocates exactly one object (the entry) and a lookup allocates
//   nothing;
// - the hash is computed once per operation by the caller and stored in the
//   entry, so chain walks and rehashing compare numbers before tuples;
// - every entry is also on an intrusive insertion-ordered list, which gives
//   -i / bulk sends / commit a stable order that does not change when the
//   bucket array grows, and O(1) unlinking;
// - the bucket array starts at `hashSize` (conntrackd's HashSize) and grows
//   fourfold once there are as many entries as buckets, so a small HashSize
//   does not turn the table into a list at 250k entries. A load of at most 1
//   keeps a missed lookup (every CT_NEW of a resync) to about one cache miss
//   per probe, and growing 4x rehashes a third as often as doubling; the
//   buckets cost 8 bytes each, small beside the entries.
// The size limit (conntrackd's HashLimit) is hard: an insert beyond it fails,
// is counted as noSpace and reported through `onNoSpace`, never dropped quietly.
import { OBJ_STATE, type CacheObject, type CacheStats, type ObjState } from './types.js';
import type { IdentityOps } from './hash.js';
import { settleCounters, settleSample } from '../util/shape.js';

/** conntrackd defaults (General { HashSize, HashLimit }). */
export const DEFAULT_HASH_SIZE = 65536;
export const DEFAULT_HASH_LIMIT = 262144;

/** Called on every insert refused because the table is full; the daemon rate-limits its log line. */
export type NoSpaceHandler = (cacheName: string, limit: number, noSpaceTotal: number) => void;

export function emptyStats(): CacheStats {
  return {
    active: 0, total: 0,
    createOk: 0, createFailed: 0, noMemory: 0, noSpace: 0,
    updateOk: 0, updateFailed: 0, updateNotFound: 0,
    deleteOk: 0, deleteFailed: 0, deleteNotFound: 0,
  };
}
// Some counters first move long after the start (the first flush, the first
// failure): see settleFields.
settleCounters(emptyStats());

/**
 * A CacheObject as the tables store it. The extra fields are the table's own
 * bookkeeping: read them if useful, never write them outside src/cache/.
 */
export interface CacheEntry<T> extends CacheObject<T> {
  readonly kind: 'ct' | 'exp';
  value: T;
  state: ObjState;
  firstSeen: number;
  lastUpdate: number;
  sync: unknown;
  pins: number;
  /**
   * @internal identity hash, kept as a signed 32-bit int (`hash | 0`): an
   * unsigned value above 2^31 is not a small integer to V8, so the field would
   * hold a boxed number per entry (16 bytes more, and one more pointer to chase
   * on every chain step).
   */
  hash: number;
  /** @internal next entry in the same bucket. */
  hnext: CacheEntry<T> | null;
  /** @internal insertion-order list. A removed entry keeps `lnext`, so an iteration standing on it can go on. */
  lprev: CacheEntry<T> | null;
  lnext: CacheEntry<T> | null;
  /** @internal false once removed from its table (release/flush of such an entry is a no-op). */
  linked: boolean;
  /** @internal reconcile epoch of the last dump that contained this entry. */
  epoch: number;
  /** @internal true while `pins` includes the internal cache's own pin (taken when it reports the object DEAD). */
  cachePin: boolean;
  /** Not the table's: the wire encoder's memo (CacheObject.src4), present from birth so every entry keeps one hidden class. */
  src4: number;
  dst4: number;
}

/**
 * A new entry, as an object literal rather than a class instance: V8 tracks
 * the allocation site of a literal and, when its objects keep surviving (a
 * bulk insert: resync, replication, a kernel dump), allocates them straight
 * in the old generation instead of copying each one through the young
 * generation twice (measured: insert cost halved). One literal, so every
 * entry has the same shape.
 */
function newEntry<T>(kind: 'ct' | 'exp', value: T, hash: number, now: number): CacheEntry<T> {
  return {
    kind, value, state: OBJ_STATE.NEW as ObjState, firstSeen: now, lastUpdate: now, sync: null, pins: 0,
    hash: hash | 0, hnext: null, lprev: null, lnext: null, linked: false, epoch: 0, cachePin: false, src4: 0, dst4: 0,
  };
}

// An entry's state first changes at the first DESTROY, its links at the first
// collision or removal, often in the middle of a burst: see settleFields.
settleSample(newEntry('ct', null, 0, 0), {
  mutable: ['value', 'state', 'firstSeen', 'lastUpdate', 'sync', 'pins', 'hnext', 'lprev', 'lnext', 'linked', 'epoch', 'cachePin', 'src4', 'dst4'],
});

/** True for an object a CacheTable made (the sync layer hands objects back as CacheObjects). */
export function isCacheEntry<T>(o: CacheObject<T>): o is CacheEntry<T> {
  return typeof (o as Partial<CacheEntry<T>>).linked === 'boolean' && 'cachePin' in o;
}

export interface TableOptions<T> {
  /** "internal" / "external": for stats lines and the noSpace report. */
  name: string;
  kind: 'ct' | 'exp';
  ops: IdentityOps<T>;
  /** Initial number of buckets (rounded up to a power of two). Default 65536. */
  hashSize?: number;
  /** Maximum number of entries, DEAD ones included (conntrackd counts them too). Default 262144. */
  limit?: number;
  onNoSpace?: NoSpaceHandler;
}

/** The smallest power of two ≥ n (at least 16, at most 2^30). */
export function pow2AtLeast(n: number): number {
  let p = 16;
  while (p < n && p < 1 << 30) p <<= 1;
  return p;
}

export class CacheTable<T> {
  readonly name: string;
  readonly kind: 'ct' | 'exp';
  readonly limit: number;
  /** Live counters in the layout of `-s cache`; the cache layers bump the update/delete ones. */
  readonly stats: CacheStats = emptyStats();
  private readonly ops: IdentityOps<T>;
  private readonly onNoSpace: NoSpaceHandler | undefined;
  private buckets: (CacheEntry<T> | null)[];
  private mask: number;
  private readonly maxBuckets: number;
  private count = 0;
  private head: CacheEntry<T> | null = null;
  private tail: CacheEntry<T> | null = null;

  constructor(opts: TableOptions<T>) {
    this.name = opts.name;
    this.kind = opts.kind;
    this.ops = opts.ops;
    this.limit = Math.max(1, opts.limit ?? DEFAULT_HASH_LIMIT);
    this.onNoSpace = opts.onNoSpace;
    const size = pow2AtLeast(opts.hashSize ?? DEFAULT_HASH_SIZE);
    // Never more buckets than needed for a load of ~1 at the limit.
    this.maxBuckets = Math.max(size, pow2AtLeast(this.limit));
    this.buckets = new Array<CacheEntry<T> | null>(size).fill(null);
    this.mask = size - 1;
  }

  /** Entries in the table, DEAD ones included. */
  get size(): number {
    return this.count;
  }

  get bucketCount(): number {
    return this.buckets.length;
  }

  hashOf(value: T): number {
    return this.ops.hash(value);
  }

  /** The entry with the identity of `value`, DEAD ones included, or null. */
  find(value: T): CacheEntry<T> | null {
    return this.lookup(value, this.ops.hash(value));
  }

  /** As find, with the hash already computed (one hash per event). */
  lookup(value: T, hash: number): CacheEntry<T> | null {
    const equals = this.ops.equals;
    const h = hash | 0;
    for (let e = this.buckets[h & this.mask] ?? null; e !== null; e = e.hnext) {
      if (e.hash === h && equals(e.value, value)) return e;
    }
    return null;
  }

  /**
   * Adds a new entry (the caller checked it is absent). Returns null when the
   * table is full: createFailed and noSpace are counted and onNoSpace fires.
   */
  insert(value: T, hash: number, now: number): CacheEntry<T> | null {
    if (this.count >= this.limit) {
      this.stats.createFailed++;
      this.stats.noSpace++;
      this.onNoSpace?.(this.name, this.limit, this.stats.noSpace);
      return null;
    }
    if (this.count >= this.buckets.length && this.buckets.length < this.maxBuckets) this.grow();
    const e = newEntry<T>(this.kind, value, hash, now);
    const i = hash & this.mask;
    e.hnext = this.buckets[i] ?? null;
    this.buckets[i] = e;
    e.lprev = this.tail;
    if (this.tail !== null) this.tail.lnext = e;
    else this.head = e;
    this.tail = e;
    e.linked = true;
    this.count++;
    this.stats.total = this.count;
    this.stats.active++;
    this.stats.createOk++;
    return e;
  }

  /** Marks an entry DEAD (hidden from -i/-e, still in the table). Counts a deletion. */
  markDead(e: CacheEntry<T>): void {
    if (e.state === OBJ_STATE.DEAD) return;
    e.state = OBJ_STATE.DEAD;
    this.stats.active--;
    this.stats.deleteOk++;
  }

  /** Brings a DEAD entry back (a new flow with the same identity). Counts a creation. */
  revive(e: CacheEntry<T>, value: T, now: number): void {
    if (e.state === OBJ_STATE.DEAD) this.stats.active++;
    else this.stats.deleteOk++; // replacing a live one: conntrackd counts destroyed + created
    this.stats.createOk++;
    e.value = value;
    e.state = OBJ_STATE.NEW;
    e.firstSeen = now;
    e.lastUpdate = now;
  }

  /** Unlinks an entry. A live (non-DEAD) entry counts as a deletion. Returns false if it was not in the table. */
  remove(e: CacheEntry<T>): boolean {
    if (!e.linked) return false;
    const i = e.hash & this.mask;
    let p = this.buckets[i] ?? null;
    if (p === e) {
      this.buckets[i] = e.hnext;
    } else {
      while (p !== null && p.hnext !== e) p = p.hnext;
      if (p === null) return false; // not reachable: linked entries are always in their bucket
      p.hnext = e.hnext;
    }
    e.hnext = null;
    if (e.lprev !== null) e.lprev.lnext = e.lnext;
    else this.head = e.lnext;
    if (e.lnext !== null) e.lnext.lprev = e.lprev;
    else this.tail = e.lprev;
    e.lprev = null; // lnext is kept on purpose: see CacheEntry.lnext
    e.linked = false;
    this.count--;
    this.stats.total = this.count;
    if (e.state !== OBJ_STATE.DEAD) {
      this.stats.active--;
      this.stats.deleteOk++;
    }
    return true;
  }

  /** First entry in insertion order (walk with `e.lnext`, skipping entries whose `linked` is false). */
  first(): CacheEntry<T> | null {
    return this.head;
  }

  /** All entries in insertion order, DEAD ones included. Safe against removal of the current entry. */
  *entries(): IterableIterator<CacheEntry<T>> {
    for (let e = this.head; e !== null;) {
      const next = e.lnext;
      if (e.linked) yield e;
      // If `e` was removed during the yield, its kept lnext still leads on.
      e = e.linked ? e.lnext : next;
    }
  }

  /**
   * Removes everything; live entries count as deletions. `onEach` sees every
   * removed entry once the table is consistent again. Returns the number removed.
   */
  clear(onEach?: (e: CacheEntry<T>) => void): number {
    const n = this.count;
    const first = this.head;
    for (let e = first; e !== null; e = e.lnext) {
      if (e.state !== OBJ_STATE.DEAD) {
        this.stats.active--;
        this.stats.deleteOk++;
      }
      e.linked = false;
      e.hnext = null;
      e.lprev = null;
    }
    this.buckets.fill(null);
    this.head = this.tail = null;
    this.count = 0;
    this.stats.total = 0;
    if (onEach !== undefined) {
      for (let e = first; e !== null;) {
        const next = e.lnext;
        onEach(e);
        e = next;
      }
    }
    return n;
  }

  /** Longest bucket chain (for tests and the benchmark). */
  maxChain(): number {
    let max = 0;
    for (const b of this.buckets) {
      let n = 0;
      for (let e = b; e !== null; e = e.hnext) n++;
      if (n > max) max = n;
    }
    return max;
  }

  private grow(): void {
    const size = Math.min(this.buckets.length * 4, this.maxBuckets);
    const buckets = new Array<CacheEntry<T> | null>(size).fill(null);
    const mask = size - 1;
    for (let e = this.head; e !== null; e = e.lnext) {
      const i = e.hash & mask;
      e.hnext = buckets[i] ?? null;
      buckets[i] = e;
    }
    this.buckets = buckets;
    this.mask = mask;
  }
}
