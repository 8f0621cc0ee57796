// Commit: the external cache (the peer's connections) into the local kernel
// table, on failover. Same rules as conntrackd 1.4.7 (spec ftfw.md §5.2):
// entries without a master first, then related ones; the remaining timeout is
// derived from the last update; EXPECTED is cleared; TCP window tracking is
// relaxed ("be liberal") unless both sides track windows; an existing entry is
// replaced. Differences: it reports how many and how long to the caller.
import { IPS, IPPROTO, type Conntrack } from '../model/conntrack.js';
import type { CacheObject } from '../cache/types.js';
import { commitTimeout, COMMIT_FALLBACK_TIMEOUT } from '../cache/external.js';
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
  // The remaining lifetime as the external cache computes it (§5.2); 60 s when it is unknown.
  const timeout = commitTimeout(obj, opts.now, opts.commitTimeout) ?? COMMIT_FALLBACK_TIMEOUT;
  const out: Conntrack = { orig: ct.orig, timeout, status: (ct.status ?? 0) & ~IPS.EXPECTED };
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
  const tcp = ct.tcp;
  if (!opts.tcpWindowTracking && ct.orig.proto === IPPROTO.TCP) {
    out.tcp = {
      state: tcp?.state ?? 3,
      flagsOrig: (tcp?.flagsOrig ?? 0) | TCP_FLAG_BE_LIBERAL,
      flagsMaskOrig: (tcp?.flagsMaskOrig ?? 0) | TCP_FLAG_BE_LIBERAL,
      flagsReply: (tcp?.flagsReply ?? 0) | TCP_FLAG_BE_LIBERAL,
      flagsMaskReply: (tcp?.flagsMaskReply ?? 0) | TCP_FLAG_BE_LIBERAL,
    };
    if (tcp?.wscaleOrig !== undefined) out.tcp.wscaleOrig = tcp.wscaleOrig;
    if (tcp?.wscaleReply !== undefined) out.tcp.wscaleReply = tcp.wscaleReply;
  } else if (tcp !== undefined) {
    out.tcp = tcp;
  }
  return out;
}

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
