// The contract between the caches and the sync layer. An internal-cache
// object carries its sync state (NEW/ALIVE/DEAD, conntrackd's cache status);
// the sync layer keeps its own per-object bookkeeping in `sync` and pins a
// DEAD object until the peer has acknowledged its deletion.
import type { Conntrack, Expectation } from '../model/conntrack.js';

export const OBJ_STATE = {
  NEW: 0,
  ALIVE: 1,
  DEAD: 2,
} as const;
export type ObjState = (typeof OBJ_STATE)[keyof typeof OBJ_STATE];

export interface CacheObject<T = Conntrack | Expectation> {
  readonly kind: 'ct' | 'exp';
  /** The newest state seen (from the kernel for the internal cache, from the peer for the external). */
  value: T;
  state: ObjState;
  /** clock.now() of the first insert, for "[active since Ns]". */
  firstSeen: number;
  /** clock.now() of the last change; commit derives the remaining timeout from it. */
  lastUpdate: number;
  /** Owned by the sync layer (queue membership, last sequence number); null when untouched. */
  sync: unknown;
  /** > 0 while the sync layer still needs this object (a queued CT_DEL); the cache keeps it, hidden. */
  pins: number;
  /**
   * Owned by the wire encoder: the orig tuple's IPv4 source and destination as
   * int32, 0 while not known (wire/conntrack.ts Ipv4Memo). A table's entries
   * have them from birth; a one-off object may leave them out.
   */
  src4?: number;
  dst4?: number;
}

/** Counters in the layout of `conntrackd -s cache` (spec ftfw.md §7.3). */
export interface CacheStats {
  active: number;
  total: number;
  createOk: number;
  createFailed: number;
  noMemory: number;
  noSpace: number;
  updateOk: number;
  updateFailed: number;
  updateNotFound: number;
  deleteOk: number;
  deleteFailed: number;
  deleteNotFound: number;
}
