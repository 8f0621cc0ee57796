// The exporter end to end: a real HTTP server on 127.0.0.1:0 fed by a fake
// snapshot; each scrape must reflect the snapshot of that moment.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetricsHttpServer } from '../../src/metrics/http.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus.js';
import type { MetricsSnapshot } from '../../src/metrics/types.js';
import { ageMs, linkSnapshotFrom, noopMetrics, syncSnapshotFrom } from '../../src/metrics/types.js';
import type { SyncStats } from '../../src/sync/types.js';

function baseSnapshot(): MetricsSnapshot {
  return {
    running: true,
    initialDumpDone: true,
    uptimeSeconds: 10,
    sync: {
      mode: 'ftfw', oldestUnackedAgeMs: 0, lastRecvAgeMs: 200, lastAliveAgeMs: 800, helloDone: true, resyncPending: false,
      rsQueueLen: 0, rsQueueMax: 131072, rsQueueOverflow: 0, txQueueLen: 0, msgsSent: 100, msgsRecv: 90,
      nacksSent: 0, nacksRecv: 0, acksSent: 5, acksRecv: 6, resends: 0, seqLost: 0, seqLostActual: 0, seqBefore: 0,
      peerRestarts: 0, malformed: { badVersion: 0, badSize: 0 }, sendMalformed: 0, fastPath: { sent: 3, orphan: 0, declined: 1, send_error: 0 },
    },
    netlink: { events: { new: 10, update: 20, destroy: 5 }, eventsFiltered: 3, overruns: 0, resyncs: 0 },
    cache: { internal: { active: 42, limit: 262144, noSpace: 0 }, external: { active: 40, limit: 262144, noSpace: 0 } },
    links: [{
      name: 'sync0', kind: 'UDP', active: true, status: 'RUNNING', datagramsSent: 50, datagramsRecv: 45,
      bytesSent: 5000, bytesRecv: 4500, errorsSent: 0, errorsRecv: 0,
    }],
  };
}

/** The value of one sample; labels must match exactly (order-insensitive). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const p of (m[2] ?? '').split(',').filter(Boolean)) {
      const [k, v] = p.split('=');
      got[k!] = JSON.parse(v!);
    }
    if (Object.keys(got).length !== Object.keys(labels).length) continue;
    if (!Object.entries(labels).every(([k, v]) => got[k] === v)) continue;
    return m[3] === '+Inf' ? Infinity : m[3] === 'Nan' || m[3] === 'NaN' ? NaN : Number(m[3]);
  }
  return undefined;
}

describe('PrometheusMetrics over HTTP', () => {
  let snap: MetricsSnapshot;
  let calls: number;
  let server: MetricsHttpServer;
  let metrics: PrometheusMetrics;
  let base: string;
  let dir: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ctsync-metrics-'));
    writeFileSync(join(dir, 'count'), '1234\n');
    snap = baseSnapshot();
    calls = 0;
    const source = () => {
      calls++;
      return structuredClone(snap);
    };
    metrics = new PrometheusMetrics({ source, conntrackCountPath: join(dir, 'count') });
    server = new MetricsHttpServer({ port: 0, source, exposition: metrics });
    const addr = await server.start();
    expect(addr.address).toBe('127.0.0.1');
    base = `http://127.0.0.1:${addr.port}`;
  });

  afterEach(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function scrape(): Promise<string> {
    const r = await fetch(`${base}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return r.text();
  }

  it('exposes ctsync_* metrics with HELP and TYPE, taking one snapshot per scrape', async () => {
    const text = await scrape();
    expect(calls).toBe(1);
    const names = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(30);
    for (const n of names) expect(n.startsWith('ctsync_')).toBe(true);
    for (const n of names) expect(text).toMatch(new RegExp(`^# HELP ${n} \\S.{10,}$`, 'm'));
    expect(text).toContain('# TYPE ctsync_nacks_total counter');
    expect(text).toContain('# TYPE ctsync_replication_lag_seconds gauge');
    expect(text).toContain('# TYPE ctsync_commit_duration_seconds histogram');

    expect(sample(text, 'ctsync_up')).toBe(1);
    expect(sample(text, 'ctsync_peer_up')).toBe(1);
    expect(sample(text, 'ctsync_peer_last_message_age_seconds')).toBeCloseTo(0.2);
    expect(sample(text, 'ctsync_peer_last_alive_age_seconds')).toBeCloseTo(0.8);
    expect(sample(text, 'ctsync_resend_queue_max')).toBe(131072);
    expect(sample(text, 'ctsync_netlink_events_total', { kind: 'update' })).toBe(20);
    expect(sample(text, 'ctsync_netlink_events_filtered_total')).toBe(3);
    expect(sample(text, 'ctsync_cache_entries', { cache: 'internal' })).toBe(42);
    expect(sample(text, 'ctsync_cache_limit', { cache: 'external' })).toBe(262144);
    expect(sample(text, 'ctsync_kernel_conntrack_entries')).toBe(1234);
    expect(sample(text, 'ctsync_link_bytes_total', { link: 'sync0', direction: 'sent' })).toBe(5000);
    expect(sample(text, 'ctsync_link_datagrams_total', { link: 'sync0', direction: 'received' })).toBe(45);
    expect(sample(text, 'ctsync_link_up', { link: 'sync0' })).toBe(1);
    expect(sample(text, 'ctsync_link_active', { link: 'sync0' })).toBe(1);
    expect(sample(text, 'ctsync_link_info', { link: 'sync0', kind: 'UDP' })).toBe(1);
    expect(sample(text, 'ctsync_sync_mode_info', { mode: 'ftfw' })).toBe(1);
  });

  it('follows a simulated peer outage: lag grows, peer_up drops, loss and resend counters rise', async () => {
    let text = await scrape();
    expect(sample(text, 'ctsync_replication_lag_seconds')).toBe(0);

    // The peer goes silent: nothing is acknowledged, the resend queue fills.
    for (const t of [1000, 4000, 9000]) {
      snap.sync.oldestUnackedAgeMs = t;
      snap.sync.lastRecvAgeMs = t + 200;
      snap.sync.lastAliveAgeMs = t + 800;
      snap.sync.rsQueueLen = t / 10;
      const prev = text;
      text = await scrape();
      expect(sample(text, 'ctsync_replication_lag_seconds')).toBe(t / 1000);
      expect(sample(text, 'ctsync_peer_last_message_age_seconds')!).toBeGreaterThan(sample(prev, 'ctsync_peer_last_message_age_seconds')!);
      expect(sample(text, 'ctsync_resend_queue_length')).toBe(t / 10);
    }
    expect(sample(text, 'ctsync_peer_up')).toBe(0); // 9.2 s > the 5 s default

    // It comes back: NACKs for what it missed, resends, gaps counted both ways.
    snap.sync.oldestUnackedAgeMs = 0;
    snap.sync.lastRecvAgeMs = 10;
    snap.sync.nacksRecv = 4;
    snap.sync.nacksSent = 2;
    snap.sync.resends = 900;
    snap.sync.seqLost = 37;
    snap.sync.seqLostActual = 30;
    snap.sync.malformed.badSize = 2;
    snap.netlink.overruns = 1;
    snap.netlink.resyncs = 1;
    snap.cache.external.noSpace = 7;
    snap.links[0]!.status = 'NO-CARRIER';
    text = await scrape();
    expect(sample(text, 'ctsync_peer_up')).toBe(1);
    expect(sample(text, 'ctsync_replication_lag_seconds')).toBe(0);
    expect(sample(text, 'ctsync_nacks_total', { direction: 'received' })).toBe(4);
    expect(sample(text, 'ctsync_nacks_total', { direction: 'sent' })).toBe(2);
    expect(sample(text, 'ctsync_resends_total')).toBe(900);
    expect(sample(text, 'ctsync_messages_lost_total', { method: 'conntrackd' })).toBe(37);
    expect(sample(text, 'ctsync_messages_lost_total', { method: 'actual' })).toBe(30);
    expect(sample(text, 'ctsync_malformed_messages_total', { reason: 'badSize' })).toBe(2);
    expect(sample(text, 'ctsync_netlink_overruns_total')).toBe(1);
    expect(sample(text, 'ctsync_netlink_resyncs_total')).toBe(1);
    expect(sample(text, 'ctsync_cache_no_space_total', { cache: 'external' })).toBe(7);
    expect(sample(text, 'ctsync_link_up', { link: 'sync0' })).toBe(0);
  });

  it('reports a never-seen peer as +Inf age and peer_up 0', async () => {
    snap.sync.lastRecvAgeMs = null;
    snap.sync.lastAliveAgeMs = null;
    const text = await scrape();
    expect(sample(text, 'ctsync_peer_last_message_age_seconds')).toBe(Infinity);
    expect(sample(text, 'ctsync_peer_last_alive_age_seconds')).toBe(Infinity);
    expect(sample(text, 'ctsync_peer_up')).toBe(0);
  });

  it('prefers the snapshot conntrack count and shows NaN when the proc file is unreadable', async () => {
    snap.kernelConntrackCount = 99;
    expect(sample(await scrape(), 'ctsync_kernel_conntrack_entries')).toBe(99);
    delete snap.kernelConntrackCount;
    rmSync(join(dir, 'count'));
    expect(sample(await scrape(), 'ctsync_kernel_conntrack_entries')).toBeNaN();
  });

  it('drops series of links that disappear', async () => {
    snap.links.push({ ...snap.links[0]!, name: 'sync1', active: false });
    let text = await scrape();
    expect(sample(text, 'ctsync_link_active', { link: 'sync1' })).toBe(0);
    snap.links.pop();
    text = await scrape();
    expect(sample(text, 'ctsync_link_active', { link: 'sync1' })).toBeUndefined();
  });

  it('observes commits in a histogram (the one push-style metric)', async () => {
    metrics.observeCommit(0.03, 1000);
    metrics.observeCommit(2, 50_000);
    metrics.observeCommit(NaN, -1); // ignored, not thrown
    const text = await scrape();
    expect(sample(text, 'ctsync_commit_duration_seconds_count')).toBe(2);
    expect(sample(text, 'ctsync_commit_duration_seconds_sum')).toBeCloseTo(2.03);
    expect(sample(text, 'ctsync_commit_duration_seconds_bucket', { le: '0.05' })).toBe(1);
    expect(sample(text, 'ctsync_commit_entries_total')).toBe(51_000);
  });

  it('is consistent when the registry is read directly (one snapshot per read)', async () => {
    calls = 0;
    const text = await metrics.registry.metrics();
    expect(calls).toBe(1);
    expect(sample(text, 'ctsync_cache_entries', { cache: 'internal' })).toBe(42);
  });
});

describe('seam helpers', () => {
  it('noopMetrics accepts commits', () => {
    expect(() => noopMetrics.observeCommit(1, 2)).not.toThrow();
  });
  it('ageMs maps the -1 "never" marker to null', () => {
    expect(ageMs(5000, -1)).toBeNull();
    expect(ageMs(5000, 4000)).toBe(1000);
    expect(ageMs(5000, 6000)).toBe(0);
  });
});

describe('adapters from the daemon stats', () => {
  const st: SyncStats = {
    seqLost: 9, seqBefore: 1, msgsSent: 10, msgsRecv: 11, resends: 2, nacksSent: 3, nacksRecv: 4, acksSent: 5, acksRecv: 6,
    rsQueueLen: 7, rsQueueOverflow: 0, txQueueLen: 1, peerRestarts: 0, lastRecvAt: 1000, oldestUnackedAgeMs: 250,
    recv: { malformed: 3, badVersion: 1, malformedHeader: 0, malformedPayload: 0, badType: 0, truncated: 2, badSize: 0 },
  };
  it('maps SyncStats, turning timestamps into ages and RecvCounters into reasons', () => {
    const s = syncSnapshotFrom(st, { mode: 'ftfw', now: 4000, resyncPending: false, rsQueueMax: 100, lastAliveAt: -1 });
    expect(s.lastRecvAgeMs).toBe(3000);
    expect(s.lastAliveAgeMs).toBeNull();
    expect(s.seqLostActual).toBe(9); // falls back to conntrackd's count
    expect(s.malformed).toEqual({ badVersion: 1, malformedHeader: 0, malformedPayload: 0, badType: 0, truncated: 2, badSize: 0 });
    expect('helloDone' in s).toBe(false);
    expect(syncSnapshotFrom({ ...st, lastRecvAt: -1 }, { mode: 'notrack', now: 1, resyncPending: true, rsQueueMax: 0, helloDone: true })
      .lastRecvAgeMs).toBeNull();
  });
  it('maps a link report', () => {
    const l = linkSnapshotFrom({ kind: 'UDP', ifname: 'eth1', status: 'RUNNING', active: false,
      stats: { bytesSent: 1, bytesRecv: 2, packetsSent: 3, packetsRecv: 4, errorsSent: 5, errorsRecv: 6 } });
    expect(l).toEqual({ name: 'eth1', kind: 'UDP', active: false, status: 'RUNNING', datagramsSent: 3, datagramsRecv: 4,
      bytesSent: 1, bytesRecv: 2, errorsSent: 5, errorsRecv: 6 });
  });
});
