import { describe, expect, it } from 'vitest';
import { AF_INET, IPS, type Conntrack } from '../../src/model/conntrack.js';
import type { CacheStats } from '../../src/cache/types.js';
import { conntrackToJson, expectToJson, formatConntrackJson, formatExpectJson, formatStatsJson, statsToJson, statusNames } from '../../src/control/format/json.js';
import { formatCache, formatStats, renderStatsRequest, type StatsSnapshot } from '../../src/control/format/stats.js';
import { CTL } from '../../src/control/codes.js';

const cache = (active: number): CacheStats => ({
  active, total: active, createOk: 1, createFailed: 0, noMemory: 0, noSpace: 0, updateOk: 2, updateFailed: 0,
  updateNotFound: 0, deleteOk: 3, deleteFailed: 0, deleteNotFound: 0,
});
const stats = { bytesSent: 10, bytesRecv: 20, packetsSent: 1, packetsRecv: 2, errorsSent: 0, errorsRecv: 0 };
const s: StatsSnapshot = {
  internal: cache(3), external: cache(330),
  traffic: { bytes: 0, packets: 0 },
  channel: { kind: 'UDP', ifname: 'veth-ab', status: 'RUNNING', active: true, stats },
  network: { recv: { malformed: 0, wrongVersion: 0, malformedHeader: 0, malformedPayload: 0, badType: 0, truncated: 0, badSize: 0 }, sendMalformed: 0 },
  seq: { lost: 5, before: 1 },
  uptimeSec: 61,
  netlink: { eventsReceived: 690, eventsFiltered: 6, eventsUnknownType: 0, catchEventFailed: 0, dumpUnknownType: 0, overrun: 0, flushKernelTable: 3, resyncWithKernel: 1, bufferSize: 2097152 },
  runtime: { childProcessFailed: 0, childProcessSegfault: 0, childProcessTermsig: 0, selectFailed: 0, waitFailed: 0, localReadFailed: 0, localUnknownRequest: 0 },
  links: [{ kind: 'UDP', ifname: 'veth-ab', status: 'RUNNING', active: true, stats }],
  queues: { allocatedNodes: 1, queues: [{ name: 'rsqueue', current: 1, max: 131072, noSpaceErrors: 0 }] },
  rsqueue: ['control -> seq:1 flags:8'],
  processes: [],
};

describe('--json stats', () => {
  it('has stable field names per section', () => {
    expect(statsToJson(s, 'cache')).toEqual({ caches: {
      internal: { active: 3, total: 3, createOk: 1, createFailed: 0, createNoMemory: 0, createNoSpace: 0, updateOk: 2, updateFailed: 0, updateNotFound: 0, deleteOk: 3, deleteFailed: 0, deleteNotFound: 0 },
      external: { active: 330, total: 330, createOk: 1, createFailed: 0, createNoMemory: 0, createNoSpace: 0, updateOk: 2, updateFailed: 0, updateNotFound: 0, deleteOk: 3, deleteFailed: 0, deleteNotFound: 0 },
    } });
    expect(statsToJson(s, 'link')).toEqual({ links: [{ kind: 'UDP', ifname: 'veth-ab', status: 'RUNNING', role: 'ACTIVE', ...stats }] });
    expect(statsToJson(s, 'rsqueue')).toEqual({ rsqueue: { len: 1, entries: ['control -> seq:1 flags:8'] } });
    expect(statsToJson(s, 'runtime')).toMatchObject({ uptimeSec: 61, netlink: { eventsReceived: 690, bufferSize: 2097152 }, runtime: { localReadFailed: 0 } });
    expect(statsToJson(s, 'network')).toMatchObject({ sequence: { lost: 5, before: 1 }, network: { send: { malformed: 0 } } });
    expect(statsToJson(s, 'general')).toMatchObject({ messages: { malformed: 0, lost: 5 }, channel: { ifname: 'veth-ab' } });
    const all = statsToJson(s);
    expect(Object.keys(all).sort()).toEqual(['caches', 'channel', 'links', 'messages', 'netlink', 'network', 'processes', 'queues', 'rsqueue', 'runtime', 'sequence', 'traffic', 'uptimeSec']);
    expect(JSON.parse(formatStatsJson(s))).toEqual(all);
    expect(formatStatsJson(s).endsWith('}\n')).toBe(true);
  });

  it('renderStatsRequest dispatches -s codes in text and JSON', () => {
    expect(renderStatsRequest(CTL.STATS, s)).toBe(formatStats(s));
    expect(renderStatsRequest(CTL.STATS_CACHE, s)).toBe(formatCache('internal', s.internal) + formatCache('external', s.external));
    expect(renderStatsRequest(CTL.STATS_RSQUEUE, s)).toBe('resent queue (len=1)\ncontrol -> seq:1 flags:8\n');
    expect(renderStatsRequest(CTL.STATS_PROCESS, s)).toBe('');
    expect(JSON.parse(renderStatsRequest(CTL.STATS_LINK, s, true)!)).toEqual(statsToJson(s, 'link'));
    expect(renderStatsRequest(CTL.CT_DUMP_INTERNAL, s)).toBeUndefined();
    expect(renderStatsRequest(CTL.EXP_STATS, s)).toBeUndefined();
  });
});

describe('--json dumps', () => {
  const ct: Conntrack = {
    orig: { l3: AF_INET, src: '10.99.0.2', dst: '198.51.100.20', proto: 6, sport: 40100, dport: 80 },
    reply: { l3: AF_INET, src: '10.99.0.1', dst: '10.99.0.2', proto: 6, sport: 8080, dport: 40100 },
    status: IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED, tcp: { state: 3 }, mark: 0, id: 2441974853, timeout: 100,
    countersOrig: { packets: 1n, bytes: 2n ** 60n },
  };
  it('one object per entry with stable names', () => {
    expect(conntrackToJson(ct, 26)).toEqual({
      family: 'ipv4', proto: 'tcp', protonum: 6, state: 'ESTABLISHED',
      orig: { src: '10.99.0.2', dst: '198.51.100.20', sport: 40100, dport: 80 },
      reply: { src: '10.99.0.1', dst: '10.99.0.2', sport: 8080, dport: 40100 },
      status: ['SEEN_REPLY', 'ASSURED', 'CONFIRMED'], unreplied: false, assured: true,
      mark: 0, id: 2441974853, counters: { orig: { packets: 1, bytes: '1152921504606846976' } }, activeSinceSec: 26,
    });
    expect(conntrackToJson(ct, 1, { hasReply: false })).not.toHaveProperty('reply');
    const line = formatConntrackJson(ct, 26);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.split('\n')).toHaveLength(2);
  });
  it('status names', () => {
    expect(statusNames(0)).toEqual([]);
    expect(statusNames(IPS.EXPECTED | IPS.OFFLOAD)).toEqual(['EXPECTED', 'OFFLOAD']);
  });
  it('expectations', () => {
    const exp = {
      master: { l3: AF_INET, src: '10.0.0.2', dst: '10.0.0.1', proto: 6, sport: 36390, dport: 21 },
      tuple: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 6, sport: 0, dport: 41739 },
      mask: { l3: AF_INET, src: '255.255.255.255', dst: '255.255.255.255', proto: 6, sport: 0, dport: 65535 },
      flags: 1, helper: 'ftp', class: 0,
    } as const;
    expect(expectToJson({ ...exp, master: { ...exp.master }, tuple: { ...exp.tuple }, mask: { ...exp.mask } }, 4)).toEqual({
      family: 'ipv4', proto: 'tcp', protonum: 6,
      expected: { src: '10.0.0.1', dst: '10.0.0.2', sport: 0, dport: 41739 },
      mask: { src: '255.255.255.255', dst: '255.255.255.255', sport: 0, dport: 65535 },
      master: { src: '10.0.0.2', dst: '10.0.0.1', sport: 36390, dport: 21 },
      helper: 'ftp', class: 0, flags: ['PERMANENT'], activeSinceSec: 4,
    });
    expect(formatExpectJson({ ...exp, master: { ...exp.master }, tuple: { ...exp.tuple }, mask: { ...exp.mask } }).endsWith('}\n')).toBe(true);
  });
});
