// What the daemon needs from the kernel, as interfaces: the real ctnetlink
// client and event listener are adapted to these in kernel.ts; unit tests of
// the daemon logic use in-memory fakes.
import type { Conntrack, EventKind, Expectation } from '../model/conntrack.js';
import type { NlWriter } from '../netlink/nlattr.js';

export interface WriteFailure {
  index: number;
  /** Positive errno (17 EEXIST, 2 ENOENT, ...). */
  errno: number;
}

export interface WriteResult {
  ok: number;
  failed: WriteFailure[];
}

/** The local conntrack table, through a request socket. */
export interface ConntrackTable {
  /** Netlink port id of the request socket: kernel events caused by our own writes carry it. */
  readonly portId: number;
  dump(): Promise<Conntrack[]>;
  /** Creates entries; an existing one (EEXIST) is deleted and created once more, as conntrackd's commit does. */
  createOrReplace(entries: Conntrack[]): Promise<WriteResult>;
  /**
   * Optional, the fast way of the same: items the caller writes itself
   * (`encode` appends one item's netlink create attributes). A table without
   * it gets Conntracks (`toConntrack`, null for an item gone meanwhile) through createOrReplace.
   */
  createOrReplaceEncoded?<T>(items: readonly T[], family: (item: T) => number, encode: (w: NlWriter, item: T) => void,
    toConntrack: (item: T) => Conntrack | null): Promise<WriteResult>;
  /** Updates in place; ENOENT or other errors fall back to createOrReplace. */
  updateOrCreate(entries: Conntrack[]): Promise<WriteResult>;
  remove(entries: Conntrack[]): Promise<WriteResult>;
  dumpExpectations(): Promise<Expectation[]>;
  createExpectations(entries: Expectation[]): Promise<WriteResult>;
  removeExpectations(entries: Expectation[]): Promise<WriteResult>;
  close(): void;
}

export interface KernelEventHandler {
  onConntrack(kind: EventKind, ct: Conntrack, originPortId: number): void;
  onExpectation(kind: EventKind, exp: Expectation, originPortId: number): void;
  /** The event socket overran: events were lost, the table must be dumped and reconciled. */
  onOverrun(): void;
  /** Around the events of one read from the kernel (optional for sources that deliver one by one). */
  onBatchStart?(): void;
  onBatchEnd?(): void;
  /** The read's one event already went to the peer as sequence number `seq` (the addon's fast path). */
  onFastSent?(seq: number): void;
}

export interface EventSourceStats {
  events: number;
  overruns: number;
  decodeErrors: number;
  bufferSize: number;
  /** Events whose processing threw (a bug, counted so it is seen in -s --json). */
  handlerErrors?: number;
}

export interface KernelEventSource {
  start(handler: KernelEventHandler): void;
  stop(): void;
  stats(): EventSourceStats;
  /**
   * Stops NEW events only (UPDATE and DESTROY keep coming) until unmuteNew():
   * a bulk commit then costs the kernel no event per entry. NEWs of that
   * window are lost; the caller recovers them with a dump. Returns false when
   * nothing was muted. Optional: a source without it is never muted.
   */
  muteNew?(): boolean;
  unmuteNew?(): void;
  /**
   * The addon's lone-event fast path (src/daemon/fast-path.ts): `state` the
   * shared block, `conf` its configuration; null ends it. False when the
   * source cannot (a fake, an addon without it). Optional.
   */
  fastPath?(state: Buffer | null, conf?: Buffer): boolean;
}
