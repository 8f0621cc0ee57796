// Commit: the external cache (the peer's connections) into the local kernel
// table, on failover. Same rules as conntrackd 1.4.7 (spec ftfw.md §5.2):
// entries without a master first, then related ones; the remaining timeout is
// derived from the last update; EXPECTED is cleared; TCP window tracking is
// relaxed ("be liberal") unless both sides track windows; an existing entry is
// replaced. Differences: it reports how many and how long to the caller.
import { IPS, IPPROTO, type Conntrack, type TcpInfo } from '../model/conntrack.js';
import type { CacheObject } from '../cache/types.js';
import { COMMIT_FALLBACK_TIMEOUT, remainingTimeout } from '../cache/external.js';
import { DEFAULT_BATCH_SIZE } from '../netlink/client.js';
import { ZERO_SYNPROXY } from '../netlink/ct-codec.js';
import { newPlainV4Create, writeCreate, writeCreateV4, type PlainV4Create } from '../netlink/ct-write-fast.js';
import type { NlWriter } from '../netlink/nlattr.js';
import { TCP_STATE_ONLY } from '../wire/conntrack.js';
import { CTF, type CtFields } from '../wire/ct-fields.js';
import type { ConntrackTable, WriteResult } from './ports.js';

/** IP_CT_TCP_FLAG_BE_LIBERAL: ignore window checks until the window is learnt again. */
const TCP_FLAG_BE_LIBERAL = 0x08;
/** Entries per batch handed to the kernel side (one sendmsg each). */
const COMMIT_BATCH = 2048;

export interface CommitOptions {
  /** CommitTimeout: a fixed timeout for committed entries, if configured. */
  commitTimeout?: number;
  tcpWindowTracking: boolean;
  /** clock.now() in ms, to age the last-known timeout. */
  now: number;
}

export interface CommitReport {
  committed: number;
  failed: number;
  seconds: number;
  /** errno → count, for the log line an operator reads after a failover. */
  errors: Record<number, number>;
}

/**
 * The kernel-bound copy of one external-cache entry. Built field by field
 * (no spread, no `delete`): a deleted property turns the object into a slow
 * dictionary for every later read, and this runs 100k times per failover.
 * Counters, ids and use counts are the peer kernel's and are not copied.
 */
export function toKernelEntry(obj: CacheObject<Conntrack>, opts: CommitOptions): Conntrack {
  const ct = obj.value;
  const out: Conntrack = {
    orig: ct.orig, timeout: kernelTimeout(ct.timeout, obj.lastUpdate, opts), status: kernelStatus(ct.status ?? 0),
  };
  if (ct.reply !== undefined) out.reply = ct.reply;
  if (ct.mark !== undefined) out.mark = ct.mark;
  if (ct.zone !== undefined) out.zone = ct.zone;
  if (ct.labels !== undefined) out.labels = ct.labels;
  if (ct.helper !== undefined) out.helper = ct.helper;
  if (ct.sctp !== undefined) out.sctp = ct.sctp;
  if (ct.dccp !== undefined) out.dccp = ct.dccp;
  if (ct.seqAdjOrig !== undefined) out.seqAdjOrig = ct.seqAdjOrig;
  if (ct.seqAdjReply !== undefined) out.seqAdjReply = ct.seqAdjReply;
  if (ct.synproxy !== undefined) out.synproxy = ct.synproxy;
  if (ct.snatAddr !== undefined) out.snatAddr = ct.snatAddr;
  if (ct.snatPort !== undefined) out.snatPort = ct.snatPort;
  if (ct.dnatAddr !== undefined) out.dnatAddr = ct.dnatAddr;
  if (ct.dnatPort !== undefined) out.dnatPort = ct.dnatPort;
  if (ct.master !== undefined) out.master = ct.master;
  const tcp = kernelTcp(ct.orig.proto, ct.tcp, opts);
  if (tcp !== undefined) out.tcp = tcp;
  return out;
}

// The rules of §5.2, one place for both ways of committing (toKernelEntry, plainCreate).

/** The remaining lifetime as the external cache computes it; 60 s when it is unknown. */
function kernelTimeout(timeout: number | undefined, lastUpdate: number, opts: CommitOptions): number {
  return remainingTimeout(timeout, lastUpdate, opts.now, opts.commitTimeout) ?? COMMIT_FALLBACK_TIMEOUT;
}

/** EXPECTED is cleared: the master's expectation is not committed with it. */
function kernelStatus(status: number): number {
  return (status & ~IPS.EXPECTED) >>> 0;
}

/** TCP relaxed ("be liberal") unless both sides track windows. */
function kernelTcp(proto: number, tcp: TcpInfo | undefined, opts: CommitOptions): TcpInfo | undefined {
  return !opts.tcpWindowTracking && proto === IPPROTO.TCP ? liberal(tcp) : tcp;
}

/**
 * The be-liberal TcpInfo of a committed entry. Entries with nothing but a
 * state (what the wire carries without TCPWindowTracking) share one frozen
 * object per state, as commitExternal's plain entries do: nothing writes
 * into it, and a commit of 100k entries needs no TcpInfo of its own each.
 */
function liberal(tcp: TcpInfo | undefined): TcpInfo {
  const state = tcp?.state ?? 3;
  if (tcp === undefined || (tcp.flagsOrig === undefined && tcp.flagsMaskOrig === undefined && tcp.flagsReply === undefined &&
    tcp.flagsMaskReply === undefined && tcp.wscaleOrig === undefined && tcp.wscaleReply === undefined)) {
    return LIBERAL_BY_STATE[state & 0xff]!;
  }
  const out: TcpInfo = {
    state,
    flagsOrig: (tcp.flagsOrig ?? 0) | TCP_FLAG_BE_LIBERAL,
    flagsMaskOrig: (tcp.flagsMaskOrig ?? 0) | TCP_FLAG_BE_LIBERAL,
    flagsReply: (tcp.flagsReply ?? 0) | TCP_FLAG_BE_LIBERAL,
    flagsMaskReply: (tcp.flagsMaskReply ?? 0) | TCP_FLAG_BE_LIBERAL,
  };
  if (tcp.wscaleOrig !== undefined) out.wscaleOrig = tcp.wscaleOrig;
  if (tcp.wscaleReply !== undefined) out.wscaleReply = tcp.wscaleReply;
  return out;
}

const LIBERAL_BY_STATE: readonly TcpInfo[] = Array.from({ length: 256 }, (_, state) => Object.freeze({
  state,
  flagsOrig: TCP_FLAG_BE_LIBERAL,
  flagsMaskOrig: TCP_FLAG_BE_LIBERAL,
  flagsReply: TCP_FLAG_BE_LIBERAL,
  flagsMaskReply: TCP_FLAG_BE_LIBERAL,
}));

function addResult(report: CommitReport, r: WriteResult): void {
  report.committed += r.ok;
  report.failed += r.failed.length;
  for (const f of r.failed) report.errors[f.errno] = (report.errors[f.errno] ?? 0) + 1;
}

/**
 * Writes every entry of `objects` into the kernel, masters before related
 * connections, in batches. Yields to the event loop between batches so the
 * daemon keeps reading kernel events during a large commit.
 */
export async function commitConntracks(objects: Iterable<CacheObject<Conntrack>>, table: ConntrackTable,
  opts: CommitOptions, hrnow: () => number = () => performance.now()): Promise<CommitReport> {
  const start = hrnow();
  const report: CommitReport = { committed: 0, failed: 0, seconds: 0, errors: {} };
  const related: CacheObject<Conntrack>[] = [];
  let batch: Conntrack[] = [];
  for (const obj of objects) {
    if (obj.value.master) {
      related.push(obj);
      continue;
    }
    batch.push(toKernelEntry(obj, opts));
    if (batch.length >= COMMIT_BATCH) {
      addResult(report, await table.createOrReplace(batch));
      batch = [];
    }
  }
  if (batch.length > 0) addResult(report, await table.createOrReplace(batch));
  for (let i = 0; i < related.length; i += COMMIT_BATCH) {
    addResult(report, await table.createOrReplace(related.slice(i, i + COMMIT_BATCH).map((o) => toKernelEntry(o, opts))));
  }
  report.seconds = (hrnow() - start) / 1000;
  return report;
}

/** What commitExternal reads from the external cache (ExternalCache, or a fake). */
export interface CommitSource {
  /** Snapshots in commit order (the object way). */
  commitOrder(): Iterable<CacheObject<Conntrack>>;
  /** Slots in commit order (masters first). */
  commitSlots(): Int32Array;
  isLiveAt(slot: number): boolean;
  plainFieldsAt(slot: number): CtFields | null;
  lastUpdateAt(slot: number): number;
  familyAt(slot: number): number;
  snapshotAt(slot: number): CacheObject<Conntrack>;
}

/**
 * The commit of the external cache (`-c`). Entries kept in columns that are
 * plain (IPv4 TCP/UDP, no NAT, zone or master: nearly all) are written from
 * their numbers straight into the netlink batch, by the rules of
 * toKernelEntry; the rest go through toKernelEntry. Building a Conntrack,
 * a tuple and the address text per entry only to parse the text back cost
 * more than a third of a 100k commit. A table without createOrReplaceEncoded
 * (a test fake) gets the Conntracks.
 */
export async function commitExternal(src: CommitSource, table: ConntrackTable, opts: CommitOptions,
  hrnow: () => number = () => performance.now()): Promise<CommitReport> {
  if (table.createOrReplaceEncoded === undefined) return commitConntracks(src.commitOrder(), table, opts, hrnow);
  const start = hrnow();
  const report: CommitReport = { committed: 0, failed: 0, seconds: 0, errors: {} };
  const slots = src.commitSlots();
  const c = newPlainV4Create();
  const encode = (w: NlWriter, slot: number): void => {
    const f = src.plainFieldsAt(slot);
    if (f !== null) {
      plainCreate(c, f, src.lastUpdateAt(slot), opts);
      writeCreateV4(w, c);
    } else {
      writeCreate(w, toKernelEntry(src.snapshotAt(slot), opts));
    }
  };
  const family = (slot: number): number => src.familyAt(slot);
  const toConntrack = (slot: number): Conntrack | null => (src.isLiveAt(slot) ? toKernelEntry(src.snapshotAt(slot), opts) : null);
  // One netlink batch per call, encoded before its first await: the slots are read while they are checked live.
  const batch: number[] = [];
  for (let k = 0; k < slots.length;) {
    batch.length = 0;
    for (; k < slots.length && batch.length < ENCODED_BATCH; k++) if (src.isLiveAt(slots[k]!)) batch.push(slots[k]!);
    if (batch.length > 0) addResult(report, await table.createOrReplaceEncoded(batch, family, encode, toConntrack));
  }
  report.seconds = (hrnow() - start) / 1000;
  return report;
}

/**
 * The netlink client's own batch size: each call is then one request, all of
 * it encoded before the first await, while the slots were just checked live.
 */
const ENCODED_BATCH = DEFAULT_BATCH_SIZE;

/** toKernelEntry's rules on a plain column entry's numbers. */
function plainCreate(c: PlainV4Create, f: CtFields, lastUpdate: number, opts: CommitOptions): void {
  const b = f.bits;
  c.src = f.src;
  c.dst = f.dst;
  c.proto = f.proto;
  c.sport = b & CTF.PORTS ? f.sport : 0;
  c.dport = b & CTF.PORTS ? f.dport : 0;
  c.status = kernelStatus(b & CTF.STATUS ? f.status : 0);
  c.timeout = kernelTimeout(b & CTF.TIMEOUT ? f.timeout : undefined, lastUpdate, opts);
  c.mark = b & CTF.MARK ? f.mark : -1;
  c.tcp = kernelTcp(f.proto, b & CTF.TCP_STATE ? TCP_STATE_ONLY[f.tcpState]! : undefined, opts);
  c.synproxy = b & CTF.SYNPROXY_ZERO ? ZERO_SYNPROXY : undefined;
}
