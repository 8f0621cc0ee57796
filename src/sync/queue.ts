// Intrusive FIFO queues for the sync layer (conntrackd's queue.c). A queued
// item carries its own links, so moving an object between the tx and the
// resend queue allocates nothing, and "is it queued, and where" is one field
// read. An item is in at most one queue at a time.
import type { CacheObject } from '../cache/types.js';
import { objectArray, settleSample } from '../util/shape.js';

/**
 * A queue item: the links every item carries, and the fields of both kinds.
 *
 * One class for object and control items, not a class each: every queue
 * operation (push, remove, the transmit walk, the resend queue's release)
 * meets both kinds, and with two hidden classes its compiled code was
 * specialised to the kind it had met so far and thrown away ("wrong map",
 * `--trace-deopt`) when the other first came: the first ACK or ALIVE in the
 * middle of a burst discarded the whole inlined transmit path. Build items
 * with objItem() and ctlItem(); `kind` tells them apart.
 */
export class QItem {
  prev: SyncItem | null = null;
  next: SyncItem | null = null;
  /** The queue holding this item, or null. */
  owner: SyncQueue | null = null;
  /** Sequence number of the last transmission (valid once sent). */
  seq = 0;
  /** clock.now() when it was queued for sending, or last sent (for lag). */
  at = 0;
  /** Object items: true while the sync layer holds a pin (obj.pins) on the object. */
  pinned = false;
  /** Object items: last sent with HELLO, so an ACK for it proves nothing (see Ftfw.rsRelease). */
  helloSent = false;
  /**
   * 1 for a control item, else 0: what it adds to its queue's `ctl` count. A
   * branch on `kind` there would be first taken by the first control item to
   * leave the tx queue, and discard the compiled transmit path at that moment.
   */
  readonly ctlCount: 0 | 1;

  constructor(
    readonly kind: 'obj' | 'ctl',
    /** Object items: the object; an item back in its ItemPool is reassigned to the next object. Control items: null. */
    public obj: CacheObject | null,
    /** Control items: the message's flags and sequence range (0 for object items). */
    public flags: number,
    readonly from: number,
    readonly to: number,
  ) {
    this.ctlCount = kind === 'ctl' ? 1 : 0;
  }
}

/**
 * The sync layer's bookkeeping for one cache object, kept in `obj.sync` while
 * the sync layer holds the object (queued, or sent and not yet acknowledged),
 * so moving it between queues or requeueing it never allocates.
 */
export interface ObjItem extends QItem {
  readonly kind: 'obj';
  obj: CacheObject;
}

/** A control message waiting to be sent or acknowledged (ACK, NACK, RESYNC, ALIVE). */
export interface CtlItem extends QItem {
  readonly kind: 'ctl';
  obj: null;
}

export type SyncItem = ObjItem | CtlItem;

export function objItem(obj: CacheObject): ObjItem {
  return new QItem('obj', obj, 0, 0, 0) as ObjItem;
}

export function ctlItem(flags: number, from: number, to: number): CtlItem {
  return new QItem('ctl', null, flags, from, to) as CtlItem;
}

export function isObjItem(x: unknown): x is ObjItem {
  return x instanceof QItem && x.kind === 'obj';
}

// Made once of each kind at load, before any code is compiled: `obj` holds an
// object or null and `flags` changes on resends (see settleFields).
settleSample(objItem({} as CacheObject), { mutable: ['prev', 'next', 'owner', 'seq', 'at', 'pinned', 'helloSent', 'obj', 'flags'] });
settleSample(ctlItem(0, 0, 0), { mutable: [] });

/**
 * Items of objects the sync layer has let go, for the next objects to take.
 * A bulk send (resync, -B) puts 100k objects through the queues while only a
 * send window's worth is held at a time (SyncEngine.enqueueAll): recycled
 * items make that burst allocate next to nothing.
 */
export class ItemPool {
  private readonly free: ObjItem[] = objectArray<ObjItem>();

  constructor(private readonly max: number) {}

  /** The item of `obj`: its current one, a recycled one or a new one. */
  of(obj: CacheObject): ObjItem {
    const s = obj.sync;
    if (isObjItem(s) && s.obj === obj) return s;
    let it = this.free.pop();
    if (it === undefined) it = objItem(obj);
    else it.obj = obj;
    obj.sync = it;
    return it;
  }

  /** `it` is out of every queue and unpinned: its object lets go of it, and it waits here for reuse. */
  release(it: ObjItem): void {
    if (it.obj.sync === it) it.obj.sync = null;
    if (this.free.length >= this.max) return;
    it.seq = 0;
    it.at = 0;
    it.helloSent = false;
    this.free.push(it);
  }
}

export class SyncQueue {
  head: SyncItem | null = null;
  tail: SyncItem | null = null;
  len = 0;
  /** How many of the items are control messages (lets a transmit round stop early). */
  ctl = 0;

  constructor(readonly name: string) {}

  has(it: QItem): boolean {
    return it.owner === this;
  }

  push(it: SyncItem): void {
    if (it.owner !== null) it.owner.remove(it);
    it.owner = this;
    it.prev = this.tail;
    it.next = null;
    if (this.tail) this.tail.next = it;
    else this.head = it;
    this.tail = it;
    this.len++;
    this.ctl += it.ctlCount;
  }

  remove(it: SyncItem): void {
    if (it.owner !== this) return;
    if (it.prev) it.prev.next = it.next;
    else this.head = it.next as SyncItem | null;
    if (it.next) it.next.prev = it.prev;
    else this.tail = it.prev as SyncItem | null;
    it.prev = it.next = null;
    it.owner = null;
    this.len--;
    this.ctl -= it.ctlCount;
  }

  shift(): SyncItem | null {
    const it = this.head;
    if (it) this.remove(it);
    return it;
  }

  /** Iterates in order; the callback may remove the current item. */
  *[Symbol.iterator](): IterableIterator<SyncItem> {
    let it = this.head;
    while (it) {
      const next = it.next as SyncItem | null;
      yield it;
      it = next;
    }
  }
}
