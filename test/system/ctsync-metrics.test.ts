// A ctsync pair with the Ctsync { Metrics ReadyFile PeerTimeout } section, each
// daemon in its own namespace. /metrics, /readyz and the keepalived track
// file are read while entries replicate and while the sync link is cut for
// ~4 s (iptables DROP on the sync port in both namespaces): the lag and
// peer_up must move, /readyz must go 503 and the track file must flip, and
// after recovery the loss counters show the repair and everything converges.
//
// The HTTP endpoint binds 127.0.0.1 inside each namespace, so it is scraped
// by a short `node -e fetch(...)` run inside that namespace.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, constants as fsc } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makePair, type Pair, type SyncNode } from '../helpers/syncpair.js';
import { waitFor, type Netns } from '../helpers/netns.js';
import { injectBulk, kernelCount, tcpEntries } from '../helpers/bulk.js';

const PORT = 9469;

interface Scrape { status: number; body: string }

/** One HTTP GET on 127.0.0.1 inside `ns`, bounded by a 3 s abort and a 10 s process timeout. */
function scrape(ns: Netns, path: string): Scrape {
  const js = `fetch('http://127.0.0.1:${PORT}${path}',{signal:AbortSignal.timeout(3000)})` +
    '.then(async r=>process.stdout.write(JSON.stringify({status:r.status,body:await r.text()})))' +
    '.catch(e=>{process.stderr.write(String(e));process.exit(2)})';
  const r = ns.run(process.execPath, ['-e', js], { timeoutMs: 10_000, allowFail: true });
  if (r.status !== 0) throw new Error(`scrape ${path} in ${ns.name} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Scrape;
}

/** The value of one sample line (`name{labels} value`), exact match on name+labels. */
function sample(body: string, series: string): number {
  for (const line of body.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return NaN;
}

function metrics(ns: Netns): string {
  const r = scrape(ns, '/metrics');
  expect(r.status).toBe(200);
  return r.body;
}

/** Kernel entries of the generated flows (tcpEntries: towards 192.0.2.1) in `ns`; the scrapes' own 127.0.0.1 flows are not counted. */
function generated(ns: Netns): number {
  const r = ns.run('conntrack', ['-L', '-d', '192.0.2.1'], { allowFail: true, timeoutMs: 20_000 });
  return r.stdout.split('\n').filter((l) => l.includes('dst=192.0.2.1 ')).length;
}

function cutSyncLink(ns: Netns, on: boolean): void {
  ns.run('iptables', [on ? '-I' : '-D', 'INPUT', '-p', 'udp', '--dport', '3780', '-j', 'DROP']);
}

/** The real binary, with the ops wiring (metrics, readiness, sd_notify) main.ts adds. */
async function startNode(node: SyncNode, _dir: string, env: Record<string, string> = {}): Promise<void> {
  await node.start({ CTSYNC_LOG_LEVEL: 'info', ...env });
}

describe('ctsync metrics, /readyz and the track file (ctsync pair in namespaces, kernel conntrack)', () => {
  let pair: Pair | null = null;
  let dir: string | null = null;

  afterEach(async () => {
    await pair?.cleanup();
    pair = null;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  it('shows replication, a sync-link outage and the recovery', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ctsync-metrics-'));
    const readyA = join(dir, 'ready-a');
    const readyB = join(dir, 'ready-b');
    const section = (ready: string): string =>
      `Ctsync {\n\tMetrics {\n\t\tAddress 127.0.0.1\n\t\tPort ${PORT}\n\t}\n\tReadyFile ${ready}\n\tPeerTimeout 2\n}\n`;
    pair = makePair('ctsync', 'ctsync', 'met', { a: { tail: section(readyA) }, b: { tail: section(readyB) } });
    const { fw1, fw2, a, b } = pair;
    await startNode(a, dir);
    await startNode(b, dir);

    // --- synced: both ready, the track files say 0.
    await waitFor(() => scrape(fw1, '/readyz').status === 200 && scrape(fw2, '/readyz').status === 200, 'both /readyz 200', 15_000, 250);
    expect(scrape(fw1, '/healthz')).toEqual({ status: 200, body: '{"status":"ok"}\n' });
    await waitFor(() => readFileSync(readyA, 'utf8') === '0\n' && readFileSync(readyB, 'utf8') === '0\n', 'track files 0', 5_000, 100);
    let mb = metrics(fw2);
    expect(sample(mb, 'ctsync_peer_up')).toBe(1);
    expect(sample(mb, 'ctsync_initial_dump_done')).toBe(1);
    expect(sample(mb, 'ctsync_up')).toBe(1);

    // --- replication: counted on both sides, events move.
    const n = 2_000;
    const eventsBefore = sample(metrics(fw1), 'ctsync_netlink_events_total{kind="all"}');
    expect(await injectBulk(fw1, tcpEntries(n))).toBe(n);
    await waitFor(() => sample(metrics(fw2), 'ctsync_cache_entries{cache="external"}') === n, `${n} external entries on B`, 30_000, 250);
    let ma = metrics(fw1);
    expect(sample(ma, 'ctsync_cache_entries{cache="internal"}')).toBeGreaterThanOrEqual(n);
    expect(sample(ma, 'ctsync_netlink_events_total{kind="all"}')).toBeGreaterThanOrEqual(eventsBefore + n);
    expect(sample(ma, 'ctsync_messages_total{direction="sent"}')).toBeGreaterThan(0);
    expect(sample(ma, 'ctsync_link_datagrams_total{link="sync0",direction="sent"}')).toBeGreaterThan(0);
    await waitFor(() => sample(metrics(fw1), 'ctsync_replication_lag_seconds') === 0, 'A fully acknowledged', 10_000, 250);
    mb = metrics(fw2);
    const lostBefore = sample(mb, 'ctsync_messages_lost_total{method="actual"}');
    const nacksBefore = sample(mb, 'ctsync_nacks_total{direction="sent"}');

    // --- outage: drop the sync port both ways, and change entries meanwhile.
    cutSyncLink(fw1, true);
    cutSyncLink(fw2, true);
    const cutAt = Date.now();
    try {
      const m = 500;
      expect(await injectBulk(fw1, tcpEntries(m, n))).toBe(m);
      await waitFor(() => scrape(fw2, '/readyz').status === 503, 'B /readyz 503', 6_000, 200);
      const rz = JSON.parse(scrape(fw2, '/readyz').body) as { ready: boolean; reasons: string[] };
      expect(rz).toEqual({ ready: false, reasons: ['peer-silent'] });
      mb = metrics(fw2);
      expect(sample(mb, 'ctsync_peer_up')).toBe(0);
      expect(sample(mb, 'ctsync_peer_last_message_age_seconds')).toBeGreaterThan(2);
      await waitFor(() => readFileSync(readyB, 'utf8') === '-253\n', 'B track file -253', 3_000, 100);
      await waitFor(() => sample(metrics(fw1), 'ctsync_replication_lag_seconds') > 1, 'A lag > 1 s', 4_000, 200);
      ma = metrics(fw1);
      expect(sample(ma, 'ctsync_peer_up')).toBe(0);
      expect(sample(ma, 'ctsync_resend_queue_length')).toBeGreaterThan(0);
      expect(scrape(fw1, '/readyz').status).toBe(503);
      expect(readFileSync(readyA, 'utf8')).toBe('-253\n');
      const left = 4_000 - (Date.now() - cutAt);
      if (left > 0) await new Promise((r) => setTimeout(r, left));
    } finally {
      cutSyncLink(fw1, false);
      cutSyncLink(fw2, false);
    }

    // --- recovery: ready again, converged, the loss is visible.
    await waitFor(() => scrape(fw1, '/readyz').status === 200 && scrape(fw2, '/readyz').status === 200, 'both /readyz 200 again', 15_000, 250);
    await waitFor(() => sample(metrics(fw2), 'ctsync_cache_entries{cache="external"}') === n + 500, `${n + 500} external entries on B`, 30_000, 250);
    await waitFor(() => sample(metrics(fw1), 'ctsync_replication_lag_seconds') === 0, 'A acknowledged again', 15_000, 250);
    await waitFor(() => readFileSync(readyA, 'utf8') === '0\n' && readFileSync(readyB, 'utf8') === '0\n', 'track files 0 again', 5_000, 100);
    mb = metrics(fw2);
    expect(sample(mb, 'ctsync_peer_up')).toBe(1);
    expect(sample(mb, 'ctsync_messages_lost_total{method="actual"}')).toBeGreaterThan(lostBefore);
    expect(sample(mb, 'ctsync_nacks_total{direction="sent"}')).toBeGreaterThan(nacksBefore);
    expect(sample(metrics(fw1), 'ctsync_resends_total')).toBeGreaterThan(0);

    // --- stop: the track file goes back to not-ready.
    await b.stop();
    expect(readFileSync(readyB, 'utf8')).toBe('-253\n');
  });

  it('NotifyFifo: keepalived lines commit on MASTER and purge + resync on BACKUP, in-process', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ctsync-fifo-'));
    const fifo = join(dir, 'notify.fifo');
    execFileSync('mkfifo', [fifo]);
    const metricsOnly = `Ctsync {\n\tMetrics {\n\t\tAddress 127.0.0.1\n\t\tPort ${PORT}\n\t}\n}\n`;
    pair = makePair('ctsync', 'ctsync', 'fifo', {
      a: { tail: metricsOnly },
      b: { tail: `Ctsync {\n\tMetrics {\n\t\tAddress 127.0.0.1\n\t\tPort ${PORT}\n\t}\n\tNotifyFifo ${fifo}\n}\n` },
    });
    const { fw1, fw2, a, b } = pair;
    await startNode(a, dir);
    await startNode(b, dir);
    const n = 1_000;
    expect(await injectBulk(fw1, tcpEntries(n))).toBe(n);
    await waitFor(() => sample(metrics(fw2), 'ctsync_cache_entries{cache="external"}') === n, `${n} external entries on B`, 30_000, 250);
    const before = await kernelCount(fw2);
    expect(generated(fw2)).toBe(0);

    // The namespace does not matter for a FIFO: it is a file both sides open.
    const w = openSync(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK);
    try {
      writeSync(w, 'INSTANCE "VI_1" MASTER 100\n');
      await waitFor(() => sample(metrics(fw2), 'ctsync_commit_duration_seconds_count') === 1, 'B committed once', 15_000, 250);
      const mb = metrics(fw2);
      expect(sample(mb, 'ctsync_commit_entries_total')).toBe(n);
      expect(await kernelCount(fw2)).toBeGreaterThanOrEqual(before + n);
      expect(generated(fw2)).toBe(n);
      // MASTER flushed the caches and re-read the kernel: B's internal cache now holds the committed entries.
      await waitFor(() => sample(metrics(fw2), 'ctsync_cache_entries{cache="internal"}') >= n, 'B internal cache repopulated', 10_000, 250);
      expect(sample(metrics(fw2), 'ctsync_cache_entries{cache="external"}')).toBe(0);

      writeSync(w, 'INSTANCE "VI_1" BACKUP 100\n');
      // A resync request goes to A; pending until A's answer has settled.
      await waitFor(() => sample(metrics(fw2), 'ctsync_resync_pending') === 1, 'B resync pending', 5_000, 100);
      await waitFor(() => sample(metrics(fw2), 'ctsync_resync_pending') === 0, 'B resync settled', 20_000, 250);
      await waitFor(() => sample(metrics(fw2), 'ctsync_cache_entries{cache="external"}') === n, 'B external refilled by the resync', 20_000, 250);
      // PurgeTimeout 5: the kernel entries B committed are flushed.
      await waitFor(() => generated(fw2) === 0, 'B kernel table purged of the committed entries', 15_000, 500);
    } finally {
      closeSync(w);
    }
    expect(b.log()).toContain('keepalived transition to MASTER handled');
  });

  it('General { Systemd on }: READY=1 after the initial dump, STATUS lines, STOPPING=1, through $NOTIFY_SOCKET', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ctsync-sdn-'));
    const sock = join(dir, 'notify.sock');
    pair = makePair('ctsync', 'ctsync', 'sdn', { b: { generalExtra: ['Systemd on'] } });
    const { lab, a, b } = pair;
    // socat prints every datagram it receives (Node cannot bind AF_UNIX datagram sockets); a filesystem socket
    // is reachable from any network namespace.
    const socat = lab.spawn(null, 'socat', ['-u', `UNIX-RECV:${sock}`, '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let got = '';
    socat.stdout!.on('data', (d: Buffer) => { got += d.toString(); });
    await waitFor(() => existsSync(sock), 'socat NOTIFY_SOCKET', 5_000, 50);
    await startNode(a, dir);
    await startNode(b, dir, { NOTIFY_SOCKET: sock });
    await waitFor(() => got.includes('READY=1'), 'READY=1', 10_000, 100);
    expect(got).toMatch(/READY=1\nSTATUS=internal \d+, external \d+, peer (up|down), /);
    await waitFor(() => /STATUS=internal \d+, external \d+, peer up, synced/.test(got), 'STATUS synced', 10_000, 100);
    await b.stop();
    await waitFor(() => got.includes('STOPPING=1'), 'STOPPING=1', 5_000, 100);
  });
});
