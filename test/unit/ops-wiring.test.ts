// startOps() against a fake daemon: the snapshot it builds, the HTTP endpoint
// (127.0.0.1, ephemeral port), the commit observation, keepalived transitions
// run in-process (directly and through a real FIFO), the track file, and
// sd_notify through an injected sender.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, constants as fsc } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parser.js';
import { startOps, type Ops, type OpsDaemon } from '../../src/daemon/ops.js';
import { EventEmitter } from 'node:events';
import type { CommitReport } from '../../src/daemon/commit.js';
import type { SyncMode, SyncStats } from '../../src/sync/types.js';
import { silentLogger } from '../../src/log/logger.js';
import { FakeClock, systemClock, type Clock } from '../../src/util/clock.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus.js';
import type { Daemon } from '../../src/daemon/daemon.js';

// Compile-time: the real Daemon is what startOps() takes (`startOps(daemon, log)` in cli/main.ts).
export const daemonIsOpsDaemon = (d: Daemon): OpsDaemon => d;

const BASE = `Sync {
 Mode FTFW { ResendQueueSize 1000 }
 UDP { IPv4_address 10.0.0.1
  IPv4_Destination_Address 10.0.0.2
  Port 3780
  Interface eth0 }
}
General { UNIX { Path /run/x.ctl } Systemd off }
`;

function stats(over: Partial<SyncStats> = {}): SyncStats {
  return {
    seqLost: 0, seqBefore: 0, msgsSent: 0, msgsRecv: 0, resends: 0, nacksSent: 0, nacksRecv: 0, acksSent: 0, acksRecv: 0,
    rsQueueLen: 0, rsQueueOverflow: 0, txQueueLen: 0, peerRestarts: 0, lastRecvAt: -1, oldestUnackedAgeMs: 0, ...over,
  };
}

class FakeDaemon extends EventEmitter<{ commit: [report: CommitReport] }> implements OpsDaemon {
  readonly calls: string[] = [];
  readonly startedAt: number;
  st = stats();
  initialDumpDone = true;
  lastCommit: CommitReport | null = null;
  internal = { stats: { noSpace: 0 }, activeCount: 0, limit: 300 };
  external = { ctStats: { active: 0, noSpace: 0 }, ctSize: 0 };
  kernel = { eventsReceived: 0, eventsFiltered: 0, overruns: 0, resyncWithKernel: 1 };
  readonly sync: SyncMode;

  constructor(readonly config: ReturnType<typeof parseConfig>['config'], readonly clock: Clock) {
    super();
    this.startedAt = clock.now();
    const self = this;
    this.sync = {
      name: 'ftfw', start() {}, stop() {}, enqueue() {}, enqueueAll() {}, receive() {}, rsQueueLines: () => [],
      requestResync() { self.calls.push('requestResync'); },
      stats: () => this.st,
    };
  }

  linkReports() {
    return [{ kind: 'UDP' as const, ifname: 'eth0', status: 'RUNNING' as const, active: true,
      stats: { packetsSent: 5, packetsRecv: 6, bytesSent: 50, bytesRecv: 60, errorsSent: 0, errorsRecv: 0 } as never }];
  }

  async commit(): Promise<CommitReport> {
    this.calls.push('commit');
    this.lastCommit = { committed: 42, failed: 0, seconds: 0.02, errors: {} };
    this.emit('commit', this.lastCommit);
    return this.lastCommit;
  }

  serialize<T>(fn: () => Promise<T>): Promise<T> { return fn(); }
  cancelKernelPurge(): void { this.calls.push('cancelKernelPurge'); }
  flushInternal(): number { this.calls.push('flushInternal'); return 0; }
  flushExternal(): number { this.calls.push('flushExternal'); return 0; }
  async populateFromKernel(): Promise<number> { this.calls.push('populateFromKernel'); return 0; }
  bulkSend(): number { this.calls.push('bulkSend'); return 0; }
  scheduleKernelPurge(): void { this.calls.push('scheduleKernelPurge'); }
}

let dir: string;
let ops: Ops | null = null;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'ctsync-ops-')); });
afterEach(async () => {
  await ops?.stop();
  ops = null;
  rmSync(dir, { recursive: true, force: true });
});

function config(tail = '', general = '') {
  const { config } = parseConfig(BASE.replace('Systemd off', `Systemd off ${general}`) + tail, 'test.conf');
  return config;
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3000) });
  return { status: r.status, body: await r.text() };
}

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('config', () => {
  it('parses NotifyFifo and PeerTimeout; Systemd is acted on (no warning)', () => {
    const { config: c, warnings } = parseConfig(`${BASE}Ctsync {\n NotifyFifo /run/ka.fifo\n PeerTimeout 3\n}\n`, 't.conf');
    expect(c.ctsync.notifyFifo).toBe('/run/ka.fifo');
    expect(c.ctsync.peerTimeout).toBe(3);
    expect(c.general.systemd).toBe(false);
    expect(warnings.filter((w) => w.keyword === 'Systemd')).toEqual([]);
    expect(parseConfig(BASE, 't.conf').config.ctsync).toMatchObject({ notifyFifo: null, peerTimeout: 5 });
    expect(() => parseConfig(`${BASE}Ctsync { PeerTimeout 0 }\n`, 't.conf')).toThrow();
    expect(parseConfig(`${BASE}Ctsync { SendWindow 2000 }\n`, 't.conf').config.ctsync.sendWindow).toBe(2000);
    expect(parseConfig(BASE, 't.conf').config.ctsync.sendWindow).toBe(4096);
    expect(() => parseConfig(`${BASE}Ctsync {\n SendWindow -1\n}\n`, 't.conf')).toThrow(/^t\.conf:\d+: expected a number after 'SendWindow', found '-1'/);
  });
});

describe('startOps with a fake daemon', () => {
  it('serves /metrics, /healthz and /readyz from the daemon state and observes commits', async () => {
    const c = config('Ctsync {\n Metrics { Address 127.0.0.1 Port 9999 }\n PeerTimeout 2\n}\n');
    c.ctsync.metrics!.port = 0;
    const clock = new FakeClock();
    const d = new FakeDaemon(c, clock);
    clock.advance(10_000);
    d.internal.activeCount = 7;
    d.external.ctSize = 3;
    d.kernel.eventsReceived = 11;
    ops = await startOps(d, silentLogger);
    const port = ops.httpAddress!.port;

    // Never heard from the peer: not ready, peer down.
    let m = await get(port, '/metrics');
    expect(m.body).toMatch(/^ctsync_peer_up 0$/m);
    expect(m.body).toMatch(/^ctsync_cache_entries\{cache="internal"\} 7$/m);
    expect(m.body).toMatch(/^ctsync_cache_entries\{cache="external"\} 3$/m);
    expect(m.body).toMatch(/^ctsync_netlink_events_total\{kind="all"\} 11$/m);
    expect(m.body).toMatch(/^ctsync_resend_queue_max 1000$/m);
    expect(m.body).toMatch(/^ctsync_link_datagrams_total\{link="eth0",direction="sent"\} 5$/m);
    expect(m.body).toMatch(/^ctsync_uptime_seconds 10$/m);
    const r0 = await get(port, '/readyz');
    expect(r0.status).toBe(503);
    expect(JSON.parse(r0.body).reasons).toContain('peer-never-seen');
    expect((await get(port, '/healthz')).status).toBe(200);

    // A message 1 s ago, with 1.5 s of unacknowledged data: ready, lag exported.
    d.st = stats({ lastRecvAt: clock.now() - 1000, oldestUnackedAgeMs: 1500, seqLostActual: 4, seqLost: 9 });
    m = await get(port, '/metrics');
    expect(m.body).toMatch(/^ctsync_peer_up 1$/m);
    expect(m.body).toMatch(/^ctsync_replication_lag_seconds 1.5$/m);
    expect(m.body).toMatch(/^ctsync_messages_lost_total\{method="actual"\} 4$/m);
    expect((await get(port, '/readyz')).status).toBe(200);

    // Silent for longer than PeerTimeout 2 s.
    clock.advance(2_500);
    m = await get(port, '/metrics');
    expect(m.body).toMatch(/^ctsync_peer_up 0$/m);
    expect(m.body).toMatch(/^ctsync_peer_last_message_age_seconds 3.5$/m);
    expect(JSON.parse((await get(port, '/readyz')).body).reasons).toEqual(['peer-silent']);

    // Commits through daemon.commit() (the control socket's path) land in the histogram.
    await d.commit();
    m = await get(port, '/metrics');
    expect(m.body).toMatch(/^ctsync_commit_duration_seconds_count 1$/m);
    expect(m.body).toMatch(/^ctsync_commit_entries_total 42$/m);

    await ops.stop();
    ops = null;
    await expect(get(port, '/healthz')).rejects.toThrow();
  });

  it('runs the keepalived transitions in-process, in primary-backup.sh order', async () => {
    const clock = new FakeClock();
    const d = new FakeDaemon(config(), clock);
    ops = await startOps(d, silentLogger);
    await ops.transition('master');
    expect(d.calls).toEqual(['commit', 'cancelKernelPurge', 'flushInternal', 'flushExternal', 'populateFromKernel', 'bulkSend']);
    d.calls.length = 0;
    await ops.transition('backup');
    expect(d.calls).toEqual(['scheduleKernelPurge', 'requestResync']);
    d.calls.length = 0;
    await ops.transition('fault');
    expect(d.calls).toEqual(['scheduleKernelPurge']);
  });

  it('keeps a requested resync pending until the peer answered and the external cache settled', async () => {
    const clock = new FakeClock();
    const d = new FakeDaemon(config(), clock);
    clock.advance(5000);
    d.st = stats({ lastRecvAt: clock.now() });
    ops = await startOps(d, silentLogger, { tickMs: 1000 });
    expect(ops.source().sync.resyncPending).toBe(false);
    await ops.transition('backup');
    expect(ops.source().sync.resyncPending).toBe(true);
    // The peer's bulk arrives over three ticks, then stops growing.
    for (const size of [100, 200, 300]) {
      d.external.ctSize = size;
      d.st = stats({ lastRecvAt: clock.now() + 1 });
      clock.advance(1000);
      expect(ops.source().sync.resyncPending).toBe(true);
    }
    clock.advance(1000);
    clock.advance(1000);
    expect(ops.source().sync.resyncPending).toBe(false);
  });

  it('StartupResync starts pending; a peer that never answers is given up on after the bound', async () => {
    const clock = new FakeClock();
    const c = config();
    c.sync!.startupResync = true;
    const d = new FakeDaemon(c, clock);
    ops = await startOps(d, silentLogger, { tickMs: 1000, resyncMaxMs: 10_000 });
    expect(ops.source().sync.resyncPending).toBe(true);
    clock.advance(9_000);
    expect(ops.source().sync.resyncPending).toBe(true);
    clock.advance(3_000);
    expect(ops.source().sync.resyncPending).toBe(false);
  });

  it('Systemd on: READY=1 with a STATUS line, STATUS updates, WATCHDOG while healthy, STOPPING=1', async () => {
    const sent: string[] = [];
    const clock = new FakeClock();
    const d = new FakeDaemon(config('', '\n Systemd on'), clock);
    d.internal.activeCount = 12;
    ops = await startOps(d, silentLogger, {
      tickMs: 1000,
      notifier: { env: { NOTIFY_SOCKET: '/run/fake.sock', WATCHDOG_USEC: '100000' }, send: (_p, b) => void sent.push(b.toString()) },
    });
    expect(sent[0]).toMatch(/^READY=1\nSTATUS=internal 12, external 0, peer down, not ready \(peer-never-seen\)\n$/);
    d.st = stats({ lastRecvAt: clock.now() });
    clock.advance(1000);
    expect(sent.at(-1)).toBe('STATUS=internal 12, external 0, peer up, synced\n');
    const n = sent.length;
    clock.advance(1000); // unchanged: no new STATUS
    expect(sent.length).toBe(n);
    await until(() => sent.includes('WATCHDOG=1\n'));
    await ops.stop();
    ops = null;
    expect(sent.at(-1)).toBe('STOPPING=1\nSTATUS=stopping\n');
  });

  it('Systemd off: no sd_notify at all', async () => {
    const sent: string[] = [];
    const d = new FakeDaemon(config(), new FakeClock());
    ops = await startOps(d, silentLogger, { notifier: { env: { NOTIFY_SOCKET: '/run/fake.sock' }, send: (_p, b) => void sent.push(b.toString()) } });
    expect(ops.notifier).toBeNull();
    await ops.stop();
    expect(sent).toEqual([]);
  });

  it('NotifyFifo: keepalived lines run the transition once per state; the ready file follows', async () => {
    const fifo = join(dir, 'notify.fifo');
    const ready = join(dir, 'ready');
    execFileSync('mkfifo', [fifo]);
    const d = new FakeDaemon(config(`Ctsync {\n NotifyFifo ${fifo}\n ReadyFile ${ready}\n}\n`), systemClock);
    ops = await startOps(d, silentLogger, { tickMs: 50, fifoCheckMs: 50 });
    expect(readFileSync(ready, 'utf8')).toBe('-253\n');
    d.st = stats({ lastRecvAt: systemClock.now() });
    await until(() => readFileSync(ready, 'utf8') === '0\n');
    const w = openSync(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK);
    try {
      writeSync(w, 'INSTANCE "VI_1" MASTER 100\nINSTANCE "VI_2" MASTER 100\n');
      await until(() => d.calls.includes('bulkSend'));
      expect(d.calls.filter((c) => c === 'commit')).toHaveLength(1);
      d.calls.length = 0;
      writeSync(w, 'GROUP "G1" BACKUP 0\nINSTANCE "VI_1" FAULT 0\n');
      await until(() => d.calls.includes('requestResync'));
      await new Promise((r) => setTimeout(r, 100));
      // Once a GROUP line was seen, instance lines no longer drive transitions.
      expect(d.calls).toEqual(['scheduleKernelPurge', 'requestResync']);
    } finally {
      closeSync(w);
    }
    // The peer goes silent past PeerTimeout (5 s): simulate by moving lastRecvAt back.
    d.st = stats({ lastRecvAt: systemClock.now() - 6000 });
    ops.readiness!.noteTransition({ kind: 'GROUP', name: 'G1', state: 'BACKUP', priority: 0 });
    ops.readiness!.noteTransition({ kind: 'INSTANCE', name: 'VI_1', state: 'BACKUP', priority: 0 });
    ops.readiness!.noteTransition({ kind: 'INSTANCE', name: 'VI_2', state: 'BACKUP', priority: 0 });
    await until(() => readFileSync(ready, 'utf8') === '-253\n');
    expect(existsSync(ready)).toBe(true);
  });
});

describe('docs/metrics.md', () => {
  it('documents every metric of the registry, with its type, and nothing else', () => {
    const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    const m = new PrometheusMetrics({ source: () => { throw new Error('not scraped'); } });
    // getMetricsAsArray() lists the metric objects without collecting (no snapshot needed).
    const registered = m.registry.getMetricsAsArray().map((x) => ({ name: (x as unknown as { name: string }).name, type: String((x as unknown as { type: string }).type) }));
    expect(registered.length).toBeGreaterThan(30);
    for (const { name, type } of registered) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${name}`) && /^\| `[^`|{]+(\{[^`]*\})?` \|/.test(l));
      expect(row, `docs/metrics.md row for ${name}`).toBeDefined();
      expect(row!.split(/(?<!\\)\|/)[2]!.trim(), `type of ${name}`).toBe(type);
    }
    const documented = [...doc.matchAll(/^\| `(ctsync_[a-z_]+)/gm)].map((x) => x[1]);
    expect(documented.sort()).toEqual(registered.map((r) => r.name).sort());
  });
});

describe('docs/troubleshooting.md', () => {
  it('quotes messages that exist in the source', async () => {
    const { readdirSync } = await import('node:fs');
    const root = new URL('../../src/', import.meta.url).pathname;
    const src = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(join(root, f), 'utf8')).join('\n');
    const doc = readFileSync(new URL('../../docs/troubleshooting.md', import.meta.url), 'utf8');
    // Rendered forms and errno names, not literals in the source.
    const rendered = new Set(['TLS block is missing CAFile', 'EADDRINUSE', 'EADDRNOTAVAIL', 'ENETUNREACH',
      "[ERROR] can't connect: is conntrackd running? appropriate permissions?"]);
    let checked = 0;
    for (const line of doc.split('\n')) {
      if (!/^\| (`|warning|log)/.test(line)) continue;
      const first = line.split(/(?<!\\)\|/)[1]!;
      for (const [, msg] of first.matchAll(/`([^`]+)`/g)) {
        // Skip placeholders (<path>, N, …) and error codes.
        if (/[<…]|\b[NMSF]\b|errno|seq a|ENOENT|0644|\(got|^CTSYNC_/.test(msg!) || rendered.has(msg!)) continue;
        expect(src, `message "${msg}"`).toContain(msg);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });
});
