// Text of every `-s` reply, byte for byte as conntrackd 1.4.7 prints it
// (spec ftfw.md §7; golden files in spec/vectors/outputs). Scripts parse
// these with awk and fixed columns, so widths, tabs and blank lines are part
// of the interface. Pure functions: the daemon fills a StatsSnapshot and
// picks the formatter for the request code.
import type { CacheStats } from '../../cache/types.js';
import type { ChannelStats, LinkStatus } from '../../channel/types.js';
import { CTL } from '../codes.js';
import { formatStatsJson, type StatsSection } from './json.js';

export type ChannelKind = 'UDP' | 'multicast' | 'TCP';

/** One sync link, as `-s link` lists it and `-s` shows the active one. */
export interface LinkSnapshot {
  kind: ChannelKind;
  ifname: string;
  status: LinkStatus;
  /** The link currently carrying the sync traffic (role=ACTIVE), else BACKUP. */
  active: boolean;
  stats: ChannelStats;
  /** TCP only: whether the server and client sides are connected (shown in the -s header). */
  tcp?: { serverConnected: boolean; clientConnected: boolean };
}

/** Receive-side rejections of the sync protocol (spec §1.7), `-s network` "recv:" block. */
export interface NetworkRecvCounters {
  /** Malformed messages, total (also "Malformed msgs" of -s). */
  malformed: number;
  wrongVersion: number;
  malformedHeader: number;
  malformedPayload: number;
  badType: number;
  truncated: number;
  badSize: number;
}

/** `-s runtime` "netlink stats:" block. */
export interface NetlinkStatsSnapshot {
  eventsReceived: number;
  eventsFiltered: number;
  eventsUnknownType: number;
  catchEventFailed: number;
  dumpUnknownType: number;
  overrun: number;
  flushKernelTable: number;
  resyncWithKernel: number;
  /** Current netlink socket receive buffer, bytes. */
  bufferSize: number;
}

/** `-s runtime` "runtime stats:" block. */
export interface RuntimeStatsSnapshot {
  childProcessFailed: number;
  childProcessSegfault: number;
  childProcessTermsig: number;
  selectFailed: number;
  waitFailed: number;
  localReadFailed: number;
  localUnknownRequest: number;
}

export interface QueueSnapshot {
  name: string;
  current: number;
  max: number;
  noSpaceErrors: number;
}

/** `-s queue`: queues in the order printed (conntrackd: txqueue, errorq, rsqueue). */
export interface QueuesSnapshot {
  allocatedNodes: number;
  queues: QueueSnapshot[];
}

export interface ProcessEntry {
  pid: number;
  type: string;
}

/** Everything the `-s` family prints. The daemon builds one per request. */
export interface StatsSnapshot {
  internal: CacheStats;
  external: CacheStats;
  /** Sum of orig+reply counters of destroyed flows ("traffic processed"). */
  traffic: { bytes: number; packets: number };
  /** The active sync link (its header line and counters appear in -s and -s network). */
  channel: LinkSnapshot;
  network: {
    recv: NetworkRecvCounters;
    sendMalformed: number;
    /** The addon's lone-event fast path (--json only): sent, orphan, declined, sendError. */
    fastPath?: { sent: number; orphan: number; declined: number; sendError: number };
  };
  /** Sequence tracking: "Packets lost" (also "Lost msgs" of -s) and "Packets before". */
  seq: { lost: number; before: number };
  uptimeSec: number;
  netlink: NetlinkStatsSnapshot;
  runtime: RuntimeStatsSnapshot;
  links: LinkSnapshot[];
  queues: QueuesSnapshot;
  /** `-s rsqueue` lines after the header, without newlines. */
  rsqueue: string[];
  processes: ProcessEntry[];
}

/** printf("%Nu"): right-aligned, widened (never cut) when the number is longer. */
function u(n: number | bigint, width: number): string {
  return String(n).padStart(width, ' ');
}

/** `-s` (STATS): both caches, traffic, the active link, message tracking. */
export function formatStats(s: StatsSnapshot): string {
  return formatCacheSummary('internal', s.internal) +
    formatCacheSummary('external', s.external) +
    'traffic processed:\n' +
    `${u(s.traffic.bytes, 20)} Bytes      ${u(s.traffic.packets, 20)} Pckts\n\n` +
    formatActiveChannel(s.channel) +
    'message tracking:\n' +
    `${u(s.network.recv.malformed, 20)} Malformed msgs ${u(s.seq.lost, 20)} Lost msgs\n\n`;
}

function formatCacheSummary(name: string, c: CacheStats): string {
  return `cache ${name}:\n` +
    `current active connections:\t${u(c.active, 12)}\n` +
    `connections created:\t\t${u(c.createOk, 12)}\tfailed:\t${u(c.createFailed, 12)}\n` +
    `connections updated:\t\t${u(c.updateOk, 12)}\tfailed:\t${u(c.updateFailed, 12)}\n` +
    `connections destroyed:\t\t${u(c.deleteOk, 12)}\tfailed:\t${u(c.deleteFailed, 12)}\n\n`;
}

function counterLines(st: ChannelStats): string {
  return `${u(st.bytesSent, 20)} Bytes sent ${u(st.bytesRecv, 20)} Bytes recv\n` +
    `${u(st.packetsSent, 20)} Pckts sent ${u(st.packetsRecv, 20)} Pckts recv\n` +
    `${u(st.errorsSent, 20)} Error send ${u(st.errorsRecv, 20)} Error recv\n\n`;
}

/** The active-link block of -s and -s network. */
export function formatActiveChannel(l: LinkSnapshot): string {
  let head: string;
  if (l.kind === 'TCP') {
    const srv = l.tcp?.serverConnected ? 'connected' : 'disconnected';
    const cli = l.tcp?.clientConnected ? 'connected' : 'disconnected';
    head = `TCP traffic (active device=${l.ifname}) server=${srv} client=${cli}:\n`;
  } else {
    head = `${l.kind} traffic (active device=${l.ifname}):\n`;
  }
  return head + counterLines(l.stats);
}

/** `-s network` (STATS_NETWORK). */
export function formatNetwork(s: StatsSnapshot): string {
  const r = s.network.recv;
  return 'network statistics:\n' +
    '\trecv:\n' +
    `\t\tMalformed messages:\t${u(r.malformed, 20)}\n` +
    `\t\tWrong protocol version:\t${u(r.wrongVersion, 20)}\n` +
    `\t\tMalformed header:\t${u(r.malformedHeader, 20)}\n` +
    `\t\tMalformed payload:\t${u(r.malformedPayload, 20)}\n` +
    `\t\tBad message type:\t${u(r.badType, 20)}\n` +
    `\t\tTruncated message:\t${u(r.truncated, 20)}\n` +
    `\t\tBad message size:\t${u(r.badSize, 20)}\n` +
    '\tsend:\n' +
    `\t\tMalformed messages:\t${u(s.network.sendMalformed, 20)}\n\n` +
    'sequence tracking statistics:\n' +
    '\trecv:\n' +
    `\t\tPackets lost:\t\t${u(s.seq.lost, 20)}\n` +
    `\t\tPackets before:\t\t${u(s.seq.before, 20)}\n\n` +
    formatActiveChannel(s.channel);
}

/** One cache's block of `-s cache` (STATS_CACHE prints internal then external). */
export function formatCache(name: string, c: CacheStats): string {
  return `cache:${name}\tactive objects:\t\t${u(c.active, 12)}\n` +
    `\tactive/total entries:\t\t${u(c.active, 12)}/${u(c.total, 12)}\n` +
    `\tcreation OK/failed:\t\t${u(c.createOk, 12)}/${u(c.createFailed, 12)}\n` +
    `\t\tno memory available:\t${u(c.noMemory, 12)}\n` +
    `\t\tno space left in cache:\t${u(c.noSpace, 12)}\n` +
    `\tupdate OK/failed:\t\t${u(c.updateOk, 12)}/${u(c.updateFailed, 12)}\n` +
    `\t\tentry not found:\t${u(c.updateNotFound, 12)}\n` +
    `\tdeletion created/failed:\t${u(c.deleteOk, 12)}/${u(c.deleteFailed, 12)}\n` +
    `\t\tentry not found:\t${u(c.deleteNotFound, 12)}\n\n`;
}

/** "4 min", "2 h 5 min", "1 day 0 min", "3 days 1 h 0 min". */
export function formatUptime(seconds: number): string {
  const total = Math.max(0, Math.floor(seconds));
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  let out = '';
  if (d > 0) out += `${d} day${d === 1 ? '' : 's'} `;
  if (h > 0) out += `${h} h `;
  return `${out}${m} min`;
}

/** `-s runtime` (STATS_RUNTIME). */
export function formatRuntime(s: StatsSnapshot): string {
  const n = s.netlink;
  const r = s.runtime;
  return `daemon uptime: ${formatUptime(s.uptimeSec)}\n\n` +
    'netlink stats:\n' +
    `\tevents received:\t${u(n.eventsReceived, 20)}\n` +
    `\tevents filtered:\t${u(n.eventsFiltered, 20)}\n` +
    `\tevents unknown type:\t\t${u(n.eventsUnknownType, 12)}\n` +
    `\tcatch event failed:\t\t${u(n.catchEventFailed, 12)}\n` +
    `\tdump unknown type:\t\t${u(n.dumpUnknownType, 12)}\n` +
    `\tnetlink overrun:\t\t${u(n.overrun, 12)}\n` +
    `\tflush kernel table:\t\t${u(n.flushKernelTable, 12)}\n` +
    `\tresync with kernel table:\t${u(n.resyncWithKernel, 12)}\n` +
    `\tcurrent buffer size (in bytes):\t${u(n.bufferSize, 12)}\n\n` +
    'runtime stats:\n' +
    `\tchild process failed:\t\t${u(r.childProcessFailed, 12)}\n` +
    `\t\tchild process segfault:\t${u(r.childProcessSegfault, 12)}\n` +
    `\t\tchild process termsig:\t${u(r.childProcessTermsig, 12)}\n` +
    `\tselect failed:\t\t\t${u(r.selectFailed, 12)}\n` +
    `\twait failed:\t\t\t${u(r.waitFailed, 12)}\n` +
    `\tlocal read failed:\t\t${u(r.localReadFailed, 12)}\n` +
    `\tlocal unknown request:\t\t${u(r.localUnknownRequest, 12)}\n\n`;
}

/** `-s link` (STATS_LINK): one block per configured link. */
export function formatLink(links: LinkSnapshot[]): string {
  return links.map((l) =>
    `${l.kind} traffic device=${l.ifname} status=${l.status} role=${l.active ? 'ACTIVE' : 'BACKUP'}:\n` +
    counterLines(l.stats)).join('');
}

/** `-s rsqueue` (STATS_RSQUEUE): header then one line per queued item; no trailing blank line. */
export function formatRsqueue(lines: string[], len: number = lines.length): string {
  return `resent queue (len=${len})\n` + lines.map((l) => `${l}\n`).join('');
}

/** One line of `-s rsqueue` for a queued control message (ACK/NACK/RESYNC). */
export function rsqueueControlLine(seq: number, flags: number): string {
  return `control -> seq:${seq >>> 0} flags:${flags}`;
}

/** One line of `-s rsqueue` for a queued data object. */
export function rsqueueObjectLine(seq: number): string {
  return `object -> seq:${seq >>> 0}`;
}

/** `-s queue` (STATS_QUEUE). */
export function formatQueue(q: QueuesSnapshot): string {
  return `allocated queue nodes:\t\t${u(q.allocatedNodes, 12)}\n\n` +
    q.queues.map((x) =>
      `queue ${x.name}:\n` +
      `current elements:\t\t${u(x.current, 12)}\n` +
      `maximum elements:\t\t${u(x.max, 12)}\n` +
      `not enough space errors:\t${u(x.noSpaceErrors, 12)}\n\n`).join('');
}

/** `-s process` (STATS_PROCESS): running children; empty when none. */
export function formatProcess(list: ProcessEntry[]): string {
  return list.map((p) => `PID=${p.pid} type=${p.type}\n`).join('');
}

/**
 * The reply to a `-s` family request code, or undefined when `code` is not
 * one of them. `json` selects the ctsync JSON rendering of the same section.
 * (EXP_STATS is not handled here: its output depends on ExpectationSync.)
 */
export function renderStatsRequest(code: number, s: StatsSnapshot, json = false): string | undefined {
  const section = statsSectionOf(code);
  if (section === undefined) return undefined;
  if (json) return formatStatsJson(s, section);
  switch (section) {
    case 'general': return formatStats(s);
    case 'network': return formatNetwork(s);
    case 'cache': return formatCache('internal', s.internal) + formatCache('external', s.external);
    case 'runtime': return formatRuntime(s);
    case 'link': return formatLink(s.links);
    case 'rsqueue': return formatRsqueue(s.rsqueue);
    case 'queue': return formatQueue(s.queues);
    case 'process': return formatProcess(s.processes);
  }
}

/** The -s section a request code asks for, or undefined when it is not a stats request. */
export function statsSectionOf(code: number): Exclude<StatsSection, 'all'> | undefined {
  return STATS_SECTIONS.get(code);
}

const STATS_SECTIONS = new Map<number, Exclude<StatsSection, 'all'>>([
  [CTL.STATS, 'general'],
  [CTL.STATS_NETWORK, 'network'],
  [CTL.STATS_CACHE, 'cache'],
  [CTL.STATS_RUNTIME, 'runtime'],
  [CTL.STATS_LINK, 'link'],
  [CTL.STATS_RSQUEUE, 'rsqueue'],
  [CTL.STATS_QUEUE, 'queue'],
  [CTL.STATS_PROCESS, 'process'],
]);
