// The external cache's conntrack table, kept in columns (typed arrays indexed
// by slot) instead of one object graph per entry.
//
// Why: this table only ever receives. A resync or a replication burst inserts
// 100k+ entries that live until a commit or a flush, and as objects each cost
// three allocations (entry, Conntrack, tuple; ~320 bytes) for the GC to copy
// and then mark on every major collection: measured 25-33% of the receiver's
// time in GC and twice conntrackd's peak RSS. In columns an entry is ~84 bytes
// of typed arrays the GC never looks into, and the common message (IPv4 with
// ports or ICMP ids, status, timeout, mark, TCP state, zone, NAT, an all-zero
// synproxy) goes from the datagram into the columns without any object at all
// (wire/ct-fields.ts).
//
// Anything else (IPv6, helper, labels, master tuple, ...) is kept as the
// decoded Conntrack in `objs[slot]`, with its identity also in the columns for
// IPv4 (so a fast message finds it). Readers get Conntrack values built on
// demand: -e, commit and tests, none of them on the receive path.
//
// Semantics are the object table's (cache/table.ts + external.ts): identity
// = orig tuple + zone, insertion order for -e and commit, the same counters,
// a hard limit reported through onNoSpace. Entries are never DEAD here.
import { AF_INET, IPPROTO, type Conntrack, type EventKind, EVENT } from '../model/conntrack.js';
import { ipv4Value } from '../netlink/nlattr.js';
import { CTF, CtFields, conntrackFromFields, fieldsL4Word } from '../wire/ct-fields.js';
import { conntrackIdentityEquals, ctZone, hashConntrack, hashV4Identity, l4Word } from './hash.js';
import { mergeConntrack } from './internal.js';
import { DEFAULT_HASH_LIMIT, DEFAULT_HASH_SIZE, emptyStats, pow2AtLeast, type NoSpaceHandler } from './table.js';
import { OBJ_STATE, type CacheObject, type CacheStats, type ObjState } from './types.js';
import { settleFields } from '../util/shape.js';

const NIL = -1;
/** Fields that belong to the orig tuple: mergeConntrack never changes it. */
const IDENTITY_BITS = CTF.PORTS | CTF.ICMP_TYPE | CTF.ICMP_CODE | CTF.ICMP_ID;
/** Fields that make a create more than the plain one (ct-write-fast.ts isPlainCreate). */
const NOT_PLAIN = CTF.ZONE | CTF.SNAT_ADDR | CTF.SNAT_PORT | CTF.DNAT_ADDR | CTF.DNAT_PORT;
const MIN_SLOTS = 1024;

/** A column of `n` slots keeping the first `keep` of `a`. */
function resized<T extends Int32Array | Uint32Array | Uint16Array | Uint8Array | Float64Array>(a: T, n: number, keep: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  if (keep > 0) b.set(a.subarray(0, keep));
  return b;
}

export interface ExternalCtTableOptions {
  hashSize?: number;
  limit?: number;
  onNoSpace?: NoSpaceHandler;
}

export class ExternalCtTable {
  readonly limit: number;
  readonly stats: CacheStats = emptyStats();
  private readonly onNoSpace: NoSpaceHandler | undefined;
  private readonly maxBuckets: number;

  private buckets: Int32Array;
  private mask: number;
  private count = 0;
  private cap = 0;
  /** Slots below this index have been handed out at least once. */
  private used = 0;
  /** Free slots, linked through hnext. */
  private freeHead = NIL;
  private head = NIL;
  private tail = NIL;

  // Bookkeeping columns.
  private hash = new Int32Array(0);
  private hnext = new Int32Array(0);
  private lprev = new Int32Array(0);
  private lnext = new Int32Array(0);
  private firstSeen = new Float64Array(0);
  private lastUpdate = new Float64Array(0);
  private state = new Uint8Array(0);
  // Identity: l3 is 0 for a free slot; for IPv6 entries only l3 and hash are set (the rest is in objs).
  private l3 = new Uint8Array(0);
  private src = new Int32Array(0);
  private dst = new Int32Array(0);
  private proto = new Uint8Array(0);
  /** Ports, or ICMP type/code/id (cache/hash.ts l4Word). */
  private l4 = new Int32Array(0);
  /** The identity zone (ctZone); for a column entry with CTF.ZONE, also its zone. */
  private zone = new Uint16Array(0);
  // Values of column entries (objs[slot] undefined).
  private bits = new Uint16Array(0);
  private status = new Uint32Array(0);
  private timeout = new Uint32Array(0);
  private mark = new Uint32Array(0);
  private tcpState = new Uint8Array(0);
  private snatAddr = new Uint32Array(0);
  private dnatAddr = new Uint32Array(0);
  private snatPort = new Uint16Array(0);
  private dnatPort = new Uint16Array(0);
  /** Entries kept as objects (attributes beyond CtFields, or given as objects). */
  private objs: (Conntrack | undefined)[] = [];

  private readonly scratch = new CtFields();
  /** The identity of the entry being looked up or inserted (locateFields / locateObject fill it). */
  private readonly key = { h: 0, src: 0, dst: 0, proto: 0, l4: 0, zone: 0 };

  constructor(opts: ExternalCtTableOptions = {}) {
    this.limit = Math.max(1, opts.limit ?? DEFAULT_HASH_LIMIT);
    this.onNoSpace = opts.onNoSpace;
    const initialBuckets = pow2AtLeast(opts.hashSize ?? DEFAULT_HASH_SIZE);
    this.maxBuckets = Math.max(initialBuckets, pow2AtLeast(this.limit));
    this.buckets = new Int32Array(initialBuckets).fill(NIL);
    this.mask = initialBuckets - 1;
    this.resize(Math.min(this.limit, Math.max(MIN_SLOTS, Math.min(initialBuckets, 65536))));
    // The first flush or removal changes these while the receive path is hot;
    // addresses from 64.0.0.0 up are not small integers: see settleFields.
    settleFields(this, { mutable: ['objs', 'freeHead', 'head', 'tail', 'used', 'cap', 'count', 'buckets', 'mask'] });
    settleFields(this.key, { double: ['src', 'dst'] });
  }

  get size(): number {
    return this.count;
  }

  get bucketCount(): number {
    return this.buckets.length;
  }

  // ---- applying peer messages ----

  /** A message in CtFields form (from scanConntrackFields). */
  applyFields(kind: EventKind, f: CtFields, now: number): number {
    return this.apply(kind, this.locateFields(f), f, null, now);
  }

  /** A message as a decoded Conntrack (any family, any attributes). */
  applyObject(kind: EventKind, ct: Conntrack, now: number): number {
    return this.apply(kind, this.locateObject(ct), null, ct, now);
  }

  /**
   * One message on the entry `key` names (slot `i`, or -1 when absent), given
   * either as fields (`f`) or as an object (`ct`): the other one is null.
   */
  private apply(kind: EventKind, i: number, f: CtFields | null, ct: Conntrack | null, now: number): number {
    switch (kind) {
      case EVENT.NEW:
        if (i === NIL) return this.insert(f, ct, now);
        this.setValue(i, f, ct);
        this.replaced(i, now);
        return i;
      case EVENT.UPDATE:
        if (i === NIL) return this.insert(f, ct, now);
        this.mergeValue(i, f, ct);
        this.touched(i, now);
        return i;
      case EVENT.DESTROY:
        if (i === NIL) this.stats.deleteNotFound++;
        else this.remove(i);
        return NIL;
      default:
        return NIL;
    }
  }

  /** The slot holding the identity of `ct`, or -1. */
  find(ct: Conntrack): number {
    return this.locateObject(ct);
  }

  // ---- reading ----

  /** The entry at `slot` as a CacheObject (a snapshot: later changes do not show in it). */
  snapshot(slot: number): CacheObject<Conntrack> {
    return {
      kind: 'ct', value: this.valueOf(slot), state: this.state[slot] as ObjState,
      firstSeen: this.firstSeen[slot]!, lastUpdate: this.lastUpdate[slot]!, sync: null, pins: 0,
    };
  }

  /** The entry's Conntrack: its own object, or one built from its columns. */
  valueOf(slot: number): Conntrack {
    return this.objs[slot] ?? conntrackFromFields(this.fieldsOf(slot));
  }

  /** True when the entry at `slot` is a related connection (has a master tuple). */
  isRelated(slot: number): boolean {
    return this.objs[slot]?.master !== undefined;
  }

  /**
   * Commit order: slots of entries without a master tuple, then of related
   * ones, each in insertion order. A plan, not a snapshot: by the time a slot
   * is read the entry may be gone (isLive false) or the slot reused.
   */
  commitSlots(): Int32Array {
    const out = new Int32Array(this.count);
    let n = 0;
    for (let i = this.head; i !== NIL; i = this.lnext[i]!) if (!this.isRelated(i)) out[n++] = i;
    for (let i = this.head; i !== NIL; i = this.lnext[i]!) if (this.isRelated(i)) out[n++] = i;
    return out;
  }

  /** See ExternalCache.plainFieldsAt. */
  plainFields(slot: number): CtFields | null {
    if (this.objs[slot] !== undefined || this.l3[slot] !== AF_INET) return null;
    const p = this.proto[slot]!;
    if (p !== IPPROTO.TCP && p !== IPPROTO.UDP && p !== IPPROTO.UDPLITE) return null;
    if ((this.bits[slot]! & NOT_PLAIN) !== 0) return null;
    return this.fieldsOf(slot);
  }

  lastUpdateOf(slot: number): number {
    return this.lastUpdate[slot]!;
  }

  familyOf(slot: number): number {
    return this.l3[slot]!;
  }

  /** True while `slot` holds an entry. */
  isLive(slot: number): boolean {
    return slot >= 0 && slot < this.used && this.l3[slot] !== 0;
  }

  /** Slots in insertion order. The table must not change while the walk goes on. */
  *slots(): IterableIterator<number> {
    for (let i = this.head; i !== NIL;) {
      const next = this.lnext[i]!;
      yield i;
      i = next;
    }
  }

  /** Removes everything; every entry counts as a deletion. Returns how many. */
  clear(): number {
    const n = this.count;
    this.stats.active -= n;
    this.stats.deleteOk += n;
    this.count = 0;
    this.stats.total = 0;
    this.head = this.tail = this.freeHead = NIL;
    this.used = 0;
    this.objs = [];
    // The columns and buckets keep their size: a flush (-f) is normally followed by the
    // resync (-n) that fills them again, and shrunk back to the initial size they were
    // regrown, doubling and copying, while that resync came in (measured on the sync
    // bench's 100k resync: the receiver at 0.8-1.7 µs per entry, with a major GC of the
    // discarded columns in the middle; 0.8-0.9 keeping them). Memory stays at the
    // table's peak, as a C daemon's heap would; slots are handed out from 0 again.
    this.buckets.fill(NIL);
    return n;
  }

  // ---- internals ----

  /** Sets `key` to the identity of a message in CtFields form; returns its slot or -1. */
  private locateFields(f: CtFields): number {
    const k = this.key;
    k.src = f.src | 0;
    k.dst = f.dst | 0;
    k.proto = f.proto;
    k.l4 = fieldsL4Word(f);
    k.zone = f.bits & CTF.ZONE ? f.zone : 0;
    k.h = hashV4Identity(k.src, k.dst, k.proto, k.l4, k.zone) | 0;
    return this.findV4();
  }

  /**
   * Sets `key` to the identity of `ct`; returns its slot or -1. IPv4 is keyed
   * by numbers like a column entry; other families by the object's identity.
   */
  private locateObject(ct: Conntrack): number {
    const k = this.key;
    const o = ct.orig;
    k.proto = o.proto;
    k.zone = ctZone(ct);
    if (o.l3 !== AF_INET) {
      k.src = k.dst = k.l4 = 0;
      k.h = hashConntrack(ct) | 0;
      return this.findOther(ct);
    }
    k.src = ipv4Value(o.src) | 0;
    k.dst = ipv4Value(o.dst) | 0;
    k.l4 = l4Word(o);
    k.h = hashV4Identity(k.src, k.dst, k.proto, k.l4, k.zone) | 0;
    return this.findV4();
  }

  private findV4(): number {
    const k = this.key;
    const h = k.h;
    for (let i = this.buckets[h & this.mask]!; i !== NIL; i = this.hnext[i]!) {
      if (this.hash[i] === h && this.l3[i] === AF_INET && this.src[i] === k.src && this.dst[i] === k.dst &&
        this.proto[i] === k.proto && this.l4[i] === k.l4 && this.zone[i] === k.zone) return i;
    }
    return NIL;
  }

  private findOther(ct: Conntrack): number {
    const h = this.key.h;
    for (let i = this.buckets[h & this.mask]!; i !== NIL; i = this.hnext[i]!) {
      if (this.hash[i] === h && this.l3[i] !== AF_INET && conntrackIdentityEquals(this.objs[i]!, ct)) return i;
    }
    return NIL;
  }

  /** The columns of a column entry as CtFields (the table's scratch: use before the next call). */
  private fieldsOf(i: number): CtFields {
    const f = this.scratch;
    const b = this.bits[i]!;
    const l4 = this.l4[i]!;
    f.bits = b;
    f.src = this.src[i]! >>> 0;
    f.dst = this.dst[i]! >>> 0;
    f.proto = this.proto[i]!;
    f.sport = l4 >>> 16;
    f.dport = l4 & 0xffff;
    f.icmpType = l4 >>> 24;
    f.icmpCode = (l4 >>> 16) & 0xff;
    f.icmpId = l4 & 0xffff;
    f.status = this.status[i]!;
    f.timeout = this.timeout[i]!;
    f.mark = this.mark[i]!;
    f.tcpState = this.tcpState[i]!;
    f.zone = this.zone[i]!;
    f.snatAddr = this.snatAddr[i]!;
    f.snatPort = this.snatPort[i]!;
    f.dnatAddr = this.dnatAddr[i]!;
    f.dnatPort = this.dnatPort[i]!;
    return f;
  }

  /** The entry becomes exactly this message: its fields in the columns, or the object. */
  private setValue(i: number, f: CtFields | null, ct: Conntrack | null): void {
    if (f !== null) this.writeFields(i, f);
    else {
      this.objs[i] = ct!;
      this.bits[i] = 0;
    }
  }

  /**
   * mergeConntrack's rule: what the message carries overwrites the entry's. In
   * the columns when both are fields; otherwise on the entry's object (a
   * column entry becomes one).
   */
  private mergeValue(i: number, f: CtFields | null, ct: Conntrack | null): void {
    let cur = this.objs[i];
    if (f !== null && cur === undefined) {
      this.mergeFields(i, f);
      return;
    }
    if (cur === undefined) {
      cur = conntrackFromFields(this.fieldsOf(i));
      this.objs[i] = cur;
      this.bits[i] = 0;
    }
    mergeConntrack(cur, f !== null ? conntrackFromFields(f) : ct!);
  }

  /** Every value column from `f`. */
  private writeFields(i: number, f: CtFields): void {
    // Written only over an object: objs stays as short as the highest object slot.
    if (this.objs[i] !== undefined) this.objs[i] = undefined;
    this.bits[i] = f.bits;
    this.status[i] = f.status;
    this.timeout[i] = f.timeout;
    this.mark[i] = f.mark;
    this.tcpState[i] = f.tcpState;
    this.snatAddr[i] = f.snatAddr;
    this.snatPort[i] = f.snatPort;
    this.dnatAddr[i] = f.dnatAddr;
    this.dnatPort[i] = f.dnatPort;
  }

  /** The fields `f` carries overwrite the entry's (mergeConntrack's rule); identity fields are equal. */
  private mergeFields(i: number, f: CtFields): void {
    const b = f.bits;
    if (b & CTF.STATUS) this.status[i] = f.status;
    if (b & CTF.TIMEOUT) this.timeout[i] = f.timeout;
    if (b & CTF.MARK) this.mark[i] = f.mark;
    if (b & CTF.TCP_STATE) this.tcpState[i] = f.tcpState;
    if (b & CTF.SNAT_ADDR) this.snatAddr[i] = f.snatAddr;
    if (b & CTF.SNAT_PORT) this.snatPort[i] = f.snatPort;
    if (b & CTF.DNAT_ADDR) this.dnatAddr[i] = f.dnatAddr;
    if (b & CTF.DNAT_PORT) this.dnatPort[i] = f.dnatPort;
    // Ports and ICMP ids are the identity: equal, and the entry keeps the ones
    // it had (an absent one counts as 0 there, so a 0 may arrive that it lacks).
    this.bits[i] = this.bits[i]! | (b & ~IDENTITY_BITS);
  }

  private touched(i: number, now: number): void {
    this.state[i] = OBJ_STATE.ALIVE;
    this.lastUpdate[i] = now;
    this.stats.updateOk++;
  }

  /** CT_NEW over an existing entry (its values already written): conntrackd counts it destroyed + created. */
  private replaced(i: number, now: number): void {
    this.state[i] = OBJ_STATE.NEW;
    this.firstSeen[i] = now;
    this.lastUpdate[i] = now;
    this.stats.deleteOk++;
    this.stats.createOk++;
  }

  /** Inserts the entry `key` names (the locate just missed it). */
  private insert(f: CtFields | null, ct: Conntrack | null, now: number): number {
    const i = this.insertSlot(f !== null ? AF_INET : ct!.orig.l3, now);
    if (i !== NIL) this.setValue(i, f, ct);
    return i;
  }

  private insertSlot(l3: number, now: number): number {
    if (this.count >= this.limit) {
      this.stats.createFailed++;
      this.stats.noSpace++;
      this.onNoSpace?.('external', this.limit, this.stats.noSpace);
      return NIL;
    }
    if (this.count >= this.buckets.length && this.buckets.length < this.maxBuckets) this.growBuckets();
    let i = this.freeHead;
    if (i !== NIL) {
      this.freeHead = this.hnext[i]!;
    } else {
      if (this.used === this.cap) this.resize(Math.min(this.limit, this.cap * 2));
      i = this.used++;
    }
    const k = this.key;
    const h = k.h;
    this.hash[i] = h;
    this.l3[i] = l3;
    this.src[i] = k.src;
    this.dst[i] = k.dst;
    this.proto[i] = k.proto;
    this.l4[i] = k.l4;
    this.zone[i] = k.zone;
    this.state[i] = OBJ_STATE.NEW;
    this.firstSeen[i] = now;
    this.lastUpdate[i] = now;
    const b = h & this.mask;
    this.hnext[i] = this.buckets[b]!;
    this.buckets[b] = i;
    this.lprev[i] = this.tail;
    this.lnext[i] = NIL;
    if (this.tail !== NIL) this.lnext[this.tail] = i;
    else this.head = i;
    this.tail = i;
    this.count++;
    this.stats.total = this.count;
    this.stats.active++;
    this.stats.createOk++;
    return i;
  }

  private remove(i: number): void {
    const b = this.hash[i]! & this.mask;
    let p = this.buckets[b]!;
    if (p === i) {
      this.buckets[b] = this.hnext[i]!;
    } else {
      while (p !== NIL && this.hnext[p] !== i) p = this.hnext[p]!;
      if (p !== NIL) this.hnext[p] = this.hnext[i]!;
    }
    const prev = this.lprev[i]!;
    const next = this.lnext[i]!;
    if (prev !== NIL) this.lnext[prev] = next;
    else this.head = next;
    if (next !== NIL) this.lprev[next] = prev;
    else this.tail = prev;
    this.l3[i] = 0;
    if (this.objs[i] !== undefined) this.objs[i] = undefined;
    this.hnext[i] = this.freeHead;
    this.freeHead = i;
    this.count--;
    this.stats.total = this.count;
    this.stats.active--;
    this.stats.deleteOk++;
  }

  private growBuckets(): void {
    const size = Math.min(this.buckets.length * 4, this.maxBuckets);
    const buckets = new Int32Array(size).fill(NIL);
    const mask = size - 1;
    for (let i = this.head; i !== NIL; i = this.lnext[i]!) {
      const b = this.hash[i]! & mask;
      this.hnext[i] = buckets[b]!;
      buckets[b] = i;
    }
    this.buckets = buckets;
    this.mask = mask;
  }

  /** Gives every column `n` slots, keeping the slots handed out so far. */
  private resize(n: number): void {
    const keep = Math.min(this.used, n);
    this.hash = resized(this.hash, n, keep);
    this.hnext = resized(this.hnext, n, keep);
    this.lprev = resized(this.lprev, n, keep);
    this.lnext = resized(this.lnext, n, keep);
    this.firstSeen = resized(this.firstSeen, n, keep);
    this.lastUpdate = resized(this.lastUpdate, n, keep);
    this.state = resized(this.state, n, keep);
    this.l3 = resized(this.l3, n, keep);
    this.src = resized(this.src, n, keep);
    this.dst = resized(this.dst, n, keep);
    this.proto = resized(this.proto, n, keep);
    this.l4 = resized(this.l4, n, keep);
    this.zone = resized(this.zone, n, keep);
    this.bits = resized(this.bits, n, keep);
    this.status = resized(this.status, n, keep);
    this.timeout = resized(this.timeout, n, keep);
    this.mark = resized(this.mark, n, keep);
    this.tcpState = resized(this.tcpState, n, keep);
    this.snatAddr = resized(this.snatAddr, n, keep);
    this.dnatAddr = resized(this.dnatAddr, n, keep);
    this.snatPort = resized(this.snatPort, n, keep);
    this.dnatPort = resized(this.dnatPort, n, keep);
    this.cap = n;
  }
}
