// `--json` renderings (ctsync extension, request code | CTL_FLAG_JSON). The
// text layouts are for conntrackd compatibility; these are for monitoring.
// Field names are a stable interface: add fields, never rename or remove.
//
// Stats: one JSON object and a newline. Dumps: JSON Lines, one object per
// entry, so a large cache streams without building one huge array.
import { IPS, TCP_STATE_NAMES, type Conntrack, type Counters, type Expectation, type Tuple } from '../../model/conntrack.js';
import type { CacheStats } from '../../cache/types.js';
import type { LinkSnapshot, StatsSnapshot } from './stats.js';
import { l3Name, protoName, shownReply } from './dump.js';

/** Which part of the stats a JSON request asked for (mirrors -s sub-arguments). */
export type StatsSection = 'all' | 'general' | 'network' | 'cache' | 'runtime' | 'link' | 'rsqueue' | 'queue' | 'process';

function cacheJson(c: CacheStats): Record<string, number> {
  return {
    active: c.active, total: c.total,
    createOk: c.createOk, createFailed: c.createFailed, createNoMemory: c.noMemory, createNoSpace: c.noSpace,
    updateOk: c.updateOk, updateFailed: c.updateFailed, updateNotFound: c.updateNotFound,
    deleteOk: c.deleteOk, deleteFailed: c.deleteFailed, deleteNotFound: c.deleteNotFound,
  };
}

function linkJson(l: LinkSnapshot): Record<string, unknown> {
  return {
    kind: l.kind, ifname: l.ifname, status: l.status, role: l.active ? 'ACTIVE' : 'BACKUP',
    ...l.stats,
    ...(l.tcp ? { tcpServerConnected: l.tcp.serverConnected, tcpClientConnected: l.tcp.clientConnected } : {}),
  };
}

/** The stats as a plain object, restricted to `section` ('all' = everything). */
export function statsToJson(s: StatsSnapshot, section: StatsSection = 'all'): Record<string, unknown> {
  const parts: Record<Exclude<StatsSection, 'all'>, () => Record<string, unknown>> = {
    general: () => ({
      caches: { internal: cacheJson(s.internal), external: cacheJson(s.external) },
      traffic: { bytes: s.traffic.bytes, packets: s.traffic.packets },
      channel: linkJson(s.channel),
      messages: { malformed: s.network.recv.malformed, lost: s.seq.lost },
    }),
    network: () => ({
      network: {
        recv: { ...s.network.recv },
        send: { malformed: s.network.sendMalformed, ...(s.network.fastPath ? { fastPath: { ...s.network.fastPath } } : {}) },
      },
      sequence: { lost: s.seq.lost, before: s.seq.before },
      channel: linkJson(s.channel),
    }),
    cache: () => ({ caches: { internal: cacheJson(s.internal), external: cacheJson(s.external) } }),
    runtime: () => ({ uptimeSec: s.uptimeSec, netlink: { ...s.netlink }, runtime: { ...s.runtime } }),
    link: () => ({ links: s.links.map(linkJson) }),
    rsqueue: () => ({ rsqueue: { len: s.rsqueue.length, entries: [...s.rsqueue] } }),
    queue: () => ({ queues: { allocatedNodes: s.queues.allocatedNodes, queues: s.queues.queues.map((q) => ({ ...q })) } }),
    process: () => ({ processes: s.processes.map((p) => ({ ...p })) }),
  };
  if (section !== 'all') return parts[section]();
  return Object.assign({}, ...Object.values(parts).map((f) => f())) as Record<string, unknown>;
}

export function formatStatsJson(s: StatsSnapshot, section: StatsSection = 'all'): string {
  return `${JSON.stringify(statsToJson(s, section))}\n`;
}

/** bigint counters as numbers while exact, as decimal strings beyond 2^53. */
function big(n: bigint): number | string {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

function countersJson(c: Counters): { packets: number | string; bytes: number | string } {
  return { packets: big(c.packets), bytes: big(c.bytes) };
}

function tupleJson(t: Tuple): Record<string, unknown> {
  const o: Record<string, unknown> = { src: t.src, dst: t.dst };
  if (t.sport !== undefined) o.sport = t.sport;
  if (t.dport !== undefined) o.dport = t.dport;
  if (t.icmpType !== undefined) o.icmpType = t.icmpType;
  if (t.icmpCode !== undefined) o.icmpCode = t.icmpCode;
  if (t.icmpId !== undefined) o.icmpId = t.icmpId;
  if (t.greKeySrc !== undefined) o.greKeySrc = t.greKeySrc;
  if (t.greKeyDst !== undefined) o.greKeyDst = t.greKeyDst;
  if (t.zone !== undefined) o.zone = t.zone;
  return o;
}

const STATUS_FLAGS = Object.entries(IPS) as Array<[string, number]>;

/** Names of the IPS_* bits set in `status`, e.g. ["SEEN_REPLY", "ASSURED", "CONFIRMED"]. */
export function statusNames(status: number): string[] {
  return STATUS_FLAGS.filter(([, bit]) => (status & bit) !== 0).map(([name]) => name);
}

export interface DumpJsonOptions {
  /** Include the reply tuple (internal cache). Default: whether ct.reply is set. */
  hasReply?: boolean;
}

/** One cache entry as a plain object. */
export function conntrackToJson(ct: Conntrack, activeSinceSec?: number, opts: DumpJsonOptions = {}): Record<string, unknown> {
  const o: Record<string, unknown> = {
    family: l3Name(ct.orig.l3),
    proto: protoName(ct.orig.proto),
    protonum: ct.orig.proto,
  };
  if (ct.tcp) o.state = TCP_STATE_NAMES[ct.tcp.state] ?? 'NONE';
  o.orig = tupleJson(ct.orig);
  const reply = shownReply(ct, opts);
  if (reply) o.reply = tupleJson(reply);
  if (ct.status !== undefined) {
    o.status = statusNames(ct.status);
    o.unreplied = (ct.status & IPS.SEEN_REPLY) === 0;
    o.assured = (ct.status & IPS.ASSURED) !== 0;
  }
  if (ct.mark !== undefined) o.mark = ct.mark >>> 0;
  if (ct.zone !== undefined) o.zone = ct.zone;
  if (ct.id !== undefined) o.id = ct.id >>> 0;
  if (ct.helper !== undefined) o.helper = ct.helper;
  if (ct.countersOrig || ct.countersReply) {
    o.counters = {
      ...(ct.countersOrig ? { orig: countersJson(ct.countersOrig) } : {}),
      ...(ct.countersReply ? { reply: countersJson(ct.countersReply) } : {}),
    };
  }
  if (ct.snatAddr !== undefined || ct.dnatAddr !== undefined) {
    o.nat = {
      ...(ct.snatAddr !== undefined ? { snatAddr: ct.snatAddr, snatPort: ct.snatPort } : {}),
      ...(ct.dnatAddr !== undefined ? { dnatAddr: ct.dnatAddr, dnatPort: ct.dnatPort } : {}),
    };
  }
  if (activeSinceSec !== undefined) o.activeSinceSec = Math.max(0, Math.floor(activeSinceSec));
  return o;
}

/** One JSON Lines record of a `-i --json` / `-e --json` dump, newline included. */
export function formatConntrackJson(ct: Conntrack, activeSinceSec?: number, opts: DumpJsonOptions = {}): string {
  return `${JSON.stringify(conntrackToJson(ct, activeSinceSec, opts))}\n`;
}

/** One expectation as a plain object (`-i expect --json`). */
export function expectToJson(exp: Expectation, activeSinceSec?: number): Record<string, unknown> {
  const o: Record<string, unknown> = {
    family: l3Name(exp.tuple.l3),
    proto: protoName(exp.tuple.proto),
    protonum: exp.tuple.proto,
    expected: tupleJson(exp.tuple),
    mask: tupleJson(exp.mask),
    master: tupleJson(exp.master),
  };
  if (exp.helper !== undefined) o.helper = exp.helper;
  if (exp.class !== undefined) o.class = exp.class;
  if (exp.zone !== undefined) o.zone = exp.zone;
  const flags = exp.flags ?? 0;
  o.flags = [[0x1, 'PERMANENT'], [0x2, 'INACTIVE'], [0x4, 'USERSPACE']]
    .filter(([bit]) => (flags & (bit as number)) !== 0).map(([, name]) => name);
  if (activeSinceSec !== undefined) o.activeSinceSec = Math.max(0, Math.floor(activeSinceSec));
  return o;
}

/** One JSON Lines record of an expectation dump, newline included. */
export function formatExpectJson(exp: Expectation, activeSinceSec?: number): string {
  return `${JSON.stringify(expectToJson(exp, activeSinceSec))}\n`;
}
