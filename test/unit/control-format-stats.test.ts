import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import type { CacheStats } from '../../src/cache/types.js';
import {
  formatCache, formatLink, formatNetwork, formatProcess, formatQueue, formatRsqueue, formatRuntime, formatStats,
  formatUptime, formatActiveChannel, rsqueueControlLine, rsqueueObjectLine, type LinkSnapshot, type StatsSnapshot,
} from '../../src/control/format/stats.js';

const OUT = '/work/shared/spec/vectors/outputs';

/** The daemon's reply inside a golden file: without the "$ command" line and the "[exit status N]" line. */
function golden(name: string): string {
  const lines = fs.readFileSync(`${OUT}/${name}`, 'utf8').split('\n');
  expect(lines[0]!.startsWith('$ conntrackd')).toBe(true);
  const end = lines.findIndex((l) => l.startsWith('[exit status'));
  return lines.slice(1, end).map((l) => `${l}\n`).join('');
}

const cache = (c: Partial<CacheStats>): CacheStats => ({
  active: 0, total: 0, createOk: 0, createFailed: 0, noMemory: 0, noSpace: 0, updateOk: 0, updateFailed: 0,
  updateNotFound: 0, deleteOk: 0, deleteFailed: 0, deleteNotFound: 0, ...c,
});

const link = (ifname: string, s: Partial<LinkSnapshot['stats']>): LinkSnapshot => ({
  kind: 'UDP', ifname, status: 'RUNNING', active: true,
  stats: { bytesSent: 0, bytesRecv: 0, packetsSent: 0, packetsRecv: 0, errorsSent: 0, errorsRecv: 0, ...s },
});

function snapshot(over: Partial<StatsSnapshot>): StatsSnapshot {
  return {
    internal: cache({}), external: cache({}),
    traffic: { bytes: 0, packets: 0 },
    channel: link('eth0', {}),
    network: { recv: { malformed: 0, wrongVersion: 0, malformedHeader: 0, malformedPayload: 0, badType: 0, truncated: 0, badSize: 0 }, sendMalformed: 0 },
    seq: { lost: 0, before: 0 },
    uptimeSec: 0,
    netlink: { eventsReceived: 0, eventsFiltered: 0, eventsUnknownType: 0, catchEventFailed: 0, dumpUnknownType: 0, overrun: 0, flushKernelTable: 0, resyncWithKernel: 0, bufferSize: 0 },
    runtime: { childProcessFailed: 0, childProcessSegfault: 0, childProcessTermsig: 0, selectFailed: 0, waitFailed: 0, localReadFailed: 0, localUnknownRequest: 0 },
    links: [],
    queues: { allocatedNodes: 0, queues: [] },
    rsqueue: [],
    processes: [],
    ...over,
  };
}

// Numbers read off the real node-a / node-b captures.
const nodeA = snapshot({
  internal: cache({ active: 3, total: 3, createOk: 340, updateOk: 339, deleteOk: 337 }),
  external: cache({ active: 330, total: 330, createOk: 664, updateOk: 0, deleteOk: 334 }),
  channel: link('veth-ab', { bytesSent: 75900, bytesRecv: 55216, packetsSent: 668, packetsRecv: 326 }),
  uptimeSec: 4 * 60 + 17,
  netlink: { eventsReceived: 690, eventsFiltered: 6, eventsUnknownType: 0, catchEventFailed: 0, dumpUnknownType: 0, overrun: 0, flushKernelTable: 3, resyncWithKernel: 1, bufferSize: 2097152 },
  links: [link('veth-ab', { bytesSent: 75916, bytesRecv: 55216, packetsSent: 669, packetsRecv: 326 })],
  queues: { allocatedNodes: 1, queues: [
    { name: 'txqueue', current: 0, max: 2147483647, noSpaceErrors: 0 },
    { name: 'errorq', current: 0, max: 128, noSpaceErrors: 0 },
    { name: 'rsqueue', current: 1, max: 131072, noSpaceErrors: 0 },
  ] },
  rsqueue: [rsqueueControlLine(1795345053, 8)],
});

const nodeB = snapshot({
  internal: cache({ active: 330, total: 330, createOk: 664, updateOk: 332, deleteOk: 334 }),
  external: cache({ active: 335, total: 335, createOk: 667, updateOk: 0, deleteOk: 332 }),
  channel: link('veth-ba', { bytesSent: 52536, bytesRecv: 52676, packetsSent: 158, packetsRecv: 359 }),
  uptimeSec: 2 * 60 + 59,
  netlink: { eventsReceived: 1000, eventsFiltered: 2, eventsUnknownType: 0, catchEventFailed: 0, dumpUnknownType: 0, overrun: 0, flushKernelTable: 0, resyncWithKernel: 1, bufferSize: 2097152 },
  links: [link('veth-ba', { bytesSent: 52536, bytesRecv: 52676, packetsSent: 158, packetsRecv: 359 })],
  queues: { allocatedNodes: 0, queues: [
    { name: 'txqueue', current: 0, max: 2147483647, noSpaceErrors: 0 },
    { name: 'errorq', current: 0, max: 128, noSpaceErrors: 0 },
    { name: 'rsqueue', current: 0, max: 131072, noSpaceErrors: 0 },
  ] },
});

describe('-s formats: golden files, byte for byte', () => {
  for (const [node, s] of [['node-a', nodeA], ['node-b', nodeB]] as const) {
    it(`${node} -s`, () => expect(formatStats(s)).toBe(golden(`${node}.stats.txt`)));
    it(`${node} -s network`, () => expect(formatNetwork(s)).toBe(golden(`${node}.stats-network.txt`)));
    it(`${node} -s cache`, () =>
      expect(formatCache('internal', s.internal) + formatCache('external', s.external)).toBe(golden(`${node}.stats-cache.txt`)));
    it(`${node} -s runtime`, () => expect(formatRuntime(s)).toBe(golden(`${node}.stats-runtime.txt`)));
    it(`${node} -s link`, () => expect(formatLink(s.links)).toBe(golden(`${node}.stats-link.txt`)));
    it(`${node} -s queue`, () => expect(formatQueue(s.queues)).toBe(golden(`${node}.stats-queue.txt`)));
    it(`${node} -s rsqueue`, () => expect(formatRsqueue(s.rsqueue)).toBe(golden(`${node}.stats-rsqueue.txt`)));
    it(`${node} -s process`, () => expect(formatProcess(s.processes)).toBe(golden(`${node}.stats-process.txt`)));
  }
});

describe('-s formats: other cases', () => {
  it('uptime: days, hours, minutes', () => {
    expect(formatUptime(0)).toBe('0 min');
    expect(formatUptime(59)).toBe('0 min');
    expect(formatUptime(3600)).toBe('1 h 0 min');
    expect(formatUptime(3600 * 2 + 5 * 60)).toBe('2 h 5 min');
    expect(formatUptime(86400)).toBe('1 day 0 min');
    expect(formatUptime(86400 * 3 + 3600 + 60)).toBe('3 days 1 h 1 min');
  });
  it('widens numbers wider than the column instead of cutting them', () => {
    const s = formatCache('internal', cache({ active: 1234567890123 }));
    expect(s.split('\n')[0]).toBe('cache:internal\tactive objects:\t\t1234567890123');
  });
  it('multicast and TCP headers', () => {
    const m: LinkSnapshot = { ...link('eth1', {}), kind: 'multicast' };
    expect(formatActiveChannel(m).split('\n')[0]).toBe('multicast traffic (active device=eth1):');
    const t: LinkSnapshot = { ...link('eth2', {}), kind: 'TCP', tcp: { serverConnected: true, clientConnected: false } };
    expect(formatActiveChannel(t).split('\n')[0]).toBe('TCP traffic (active device=eth2) server=connected client=disconnected:');
    expect(formatLink([{ ...m, status: 'NO-CARRIER', active: false }, { ...link('eth3', {}), status: 'DOWN' }]).split('\n').filter((l) => l.includes('traffic')))
      .toEqual(['multicast traffic device=eth1 status=NO-CARRIER role=BACKUP:', 'UDP traffic device=eth3 status=DOWN role=ACTIVE:']);
  });
  it('rsqueue lines and process list', () => {
    expect(formatRsqueue([rsqueueControlLine(5, 2), rsqueueObjectLine(0xffffffff)])).toBe(
      'resent queue (len=2)\ncontrol -> seq:5 flags:2\nobject -> seq:4294967295\n');
    expect(formatProcess([{ pid: 12, type: 'commit' }])).toBe('PID=12 type=commit\n');
  });
  it('message tracking shows malformed and lost', () => {
    const s = snapshot({ network: { ...nodeA.network, recv: { ...nodeA.network.recv, malformed: 3 } }, seq: { lost: 42726, before: 1 } });
    expect(formatStats(s)).toContain('message tracking:\n                   3 Malformed msgs                42726 Lost msgs\n\n');
  });
});
