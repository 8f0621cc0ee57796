// The main job, end to end: two firewalls (namespaces) under keepalived, ctsync
// replicating conntrack state between them over a dedicated sync link, and a
// long-lived TCP counter stream from a client through the outside VIP's DNAT
// port forward to a server. fw1 fails; fw2 takes the VIPs, keepalived's
// notify runs `ctsync notify master` (commit, flush, resync, bulk) and the
// stream must carry on: no reset, every byte in order, and a stall no longer
// than the takeover plus 0.5 s.
//
// Takeover = failure → fw2's notify script has finished `ctsync notify
// master` (logged with its own clock by conf/ctsync-notify.sh); the VRRP
// transition alone (notify start) is reported too. The firewalls run
// nf_conntrack_tcp_loose=0 and drop INVALID, so without the committed entry
// fw2 drops the stream: the negative control (no ctsync) shows it.
//
// The client's TCP stack uses thin-stream linear timeouts (with cubic: under
// BBR the kernel never treats a stream as thin) and rto_min 350 ms
// (topology.mjs), so for the first ~2.4 s of an outage a retransmission
// leaves every 0.35 s instead of after an exponential backoff of several
// seconds; the 0.5 s margin covers that one retransmission interval.
//
// Starts: 5 network namespaces per scenario (client, server, switch, fw1,
// fw2), keepalived ×2, ctsync ×2, two small Node stream processes.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADDR, currentStall, startTopology, type HaTopology, type Stream } from '../helpers/topology.js';
import { Lab, isRoot, waitFor } from '../helpers/netns.js';
import { REPO_ROOT } from '../helpers/syncpair.js';

const MARGIN_MS = 500;
const haveKeepalived = spawnSync('sh', ['-c', 'command -v keepalived']).status === 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Figures {
  scenario: string;
  /** Failure → fw2 notify start (keepalived's MASTER transition). */
  vrrpMs: number;
  /** Failure → fw2 notify finished (commit done): the takeover. */
  takeoverMs: number;
  /** Largest gap between reads at the receiver. */
  stallMs: number;
  bytes: number;
}
const figures: Figures[] = [];

/** Runs one failover of fw1 with the stream running; returns the topology (caller cleans up) and the times. */
async function failover(t: HaTopology, how: 'links' | 'keepalived'): Promise<{ s: Stream; t0: number; sport: string }> {
  const s = await t.startStream();
  const sport = /:(\d+)$/.exec(String(s.sendEvents.find((e) => e.ev === 'connected')?.local))?.[1] ?? '';
  expect(sport).not.toBe('');
  if (t.opts.ctsync) {
    // The flow is replicated to fw2's external cache (orig tuple: client → outside VIP:8080).
    await waitFor(() => t.ctsync(1, ['-e']).stdout.split('\n')
      .some((l) => l.includes(`src=${ADDR.client} dst=${ADDR.outVip} sport=${sport} dport=${ADDR.dnatPort}`)),
    'the stream flow in fw2 external cache', 10_000);
    // Address Ignore keeps the sync link's and the firewalls' own traffic out of replication.
    const ext = t.ctsync(1, ['-e']).stdout;
    expect(ext).not.toMatch(/172\.30\.1\.|10\.(10|20)\.0\.[23] /);
  }
  await sleep(500);
  expect(s.error()).toBeNull();
  expect(s.status()!.maxGapMs).toBeLessThan(400);
  const t0 = Date.now();
  if (how === 'links') t.failLinks(0);
  else await t.stopKeepalived(0);
  await waitFor(() => t.master() === 1, 'fw2 to hold the VIPs', 10_000, 20);
  return { s, t0, sport };
}

function notifyTimes(t: HaTopology, t0: number): { vrrpMs: number; takeoverMs: number } {
  const begin = t.notifyEvent(1, /MASTER: begin/, t0);
  const end = t.notifyEvent(1, /MASTER: end/, t0);
  return { vrrpMs: begin ? begin.t - t0 : NaN, takeoverMs: end ? end.t - t0 : NaN };
}

describe.skipIf(!isRoot || !haveKeepalived)('keepalived failover with ctsync (5 namespaces, keepalived, ctsync, TCP stream through DNAT)', () => {
  afterAll(() => {
    if (figures.length === 0) return;
    const lines = figures.map((f) => `  ${f.scenario.padEnd(34)} vrrp ${String(f.vrrpMs).padStart(5)} ms  takeover ${String(f.takeoverMs).padStart(5)} ms  stall ${String(f.stallMs).padStart(5)} ms  bytes ${f.bytes}`);
    process.stdout.write(`keepalived failover figures (bound: stall ≤ takeover + ${MARGIN_MS} ms):\n${lines.join('\n')}\n`);
  });

  for (const how of ['links', 'keepalived'] as const) {
    const label = how === 'links' ? 'fw1 LAN links down' : 'fw1 keepalived stopped';
    it(`keeps the stream alive when ${label}`, async () => {
      const t = await startTopology({ tag: how === 'links' ? 'kl' : 'kk' });
      try {
        const { s, t0, sport } = await failover(t, how);
        await waitFor(() => t.notifyEvent(1, /MASTER: end ctsync notify master ok/, t0), 'fw2 notify master to finish', 10_000);
        const { vrrpMs, takeoverMs } = notifyTimes(t, t0);
        // The stream resumes: bytes read after the commit.
        await waitFor(() => (s.status()?.lastReadAt ?? 0) > t0 + takeoverMs, 'the stream to resume through fw2', 10_000);
        await sleep(700);
        expect(s.error()).toBeNull();
        const { sent, end } = await s.finish();
        expect(end, 'receiver saw a clean end').not.toBeNull();
        expect(end!.ev).toBe('end');
        expect(end!.ok, `first wrong byte at ${String(end!.firstBad)}`).toBe(true);
        expect(end!.bytes).toBe(sent.bytes);
        const stallMs = Number(end!.maxGapMs);
        figures.push({ scenario: `${label} (ctsync)`, vrrpMs, takeoverMs, stallMs, bytes: Number(end!.bytes) });
        expect(stallMs).toBeLessThanOrEqual(takeoverMs + MARGIN_MS);

        // The committed entry in fw2's kernel carries the DNAT (reply from server:80).
        const k = t.exec(t.ns.fw[1], 'conntrack', ['-L', '-p', 'tcp', '--orig-port-src', sport], { allowFail: true }).stdout;
        expect(k).toContain(`src=${ADDR.server} dst=${ADDR.client} sport=${ADDR.serverPort} dport=${sport}`);
        if (how === 'links') {
          expect(t.notifyEvent(0, /FAULT: end ctsync notify fault ok/, t0)).not.toBeNull();
        } else {
          expect(t.notifyEvent(0, /STOP: nothing to do/, t0)).not.toBeNull();
          // fw1's ctsync still runs: the new master's bulk send fills its external cache.
          await waitFor(() => t.ctsync(0, ['-e']).stdout.includes(`sport=${sport} dport=${ADDR.dnatPort}`),
            'the flow in fw1 external cache after fw2 bulk send', 10_000);
        }
      } catch (e) {
        process.stdout.write(`--- fw2 ctsync log ---\n${t.ctsyncLog(1).slice(-3000)}\n--- fw2 notify ---\n${t.notifyLog(1).map((l) => l.text).join('\n')}\n`);
        throw e;
      } finally {
        await t.cleanup();
        t.removeDir();
      }
    });
  }

  it('negative control: without ctsync the same failover stalls the stream for good', async () => {
    const t = await startTopology({ tag: 'kn', ctsync: false });
    try {
      const { s, t0 } = await failover(t, 'links');
      // The notify script still runs (and logs that ctsync cannot be reached).
      await waitFor(() => t.notifyEvent(1, /MASTER: end ctsync notify master failed/, t0), 'fw2 notify master to finish', 10_000);
      const { vrrpMs, takeoverMs } = notifyTimes(t, t0);
      const bound = takeoverMs + MARGIN_MS;
      // Wait well past the bound (plus two linear retransmission rounds).
      await sleep(Math.max(0, t0 + bound + 2000 - Date.now()));
      const st = s.status()!;
      const stallMs = currentStall(st);
      figures.push({ scenario: 'fw1 LAN links down (no ctsync)', vrrpMs, takeoverMs, stallMs, bytes: st.bytes });
      const recovered = s.error() === null && stallMs <= bound;
      expect(recovered, `stall ${stallMs} ms, bound ${bound} ms`).toBe(false);
      // fw2 saw the stream's packets and dropped them as INVALID (no conntrack entry, tcp_loose=0).
      expect(st.lastReadAt).toBeLessThan(t0 + vrrpMs);
      const k = t.exec(t.ns.fw[1], 'conntrack', ['-L', '-p', 'tcp'], { allowFail: true }).stdout;
      expect(k).not.toContain(`dport=${ADDR.dnatPort}`);
    } finally {
      await t.cleanup();
      t.removeDir();
    }
  });
});

describe('conf/ctsync-notify.sh and conf/keepalived.conf (samples)', () => {
  const script = join(REPO_ROOT, 'conf', 'ctsync-notify.sh');

  it('maps keepalived notify arguments to `ctsync notify <state> -C <conf>` and logs every step', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctsync-notify-'));
    try {
      // A stand-in for the ctsync binary: records its arguments; exits 1 for "fault" to exercise the error path.
      const fake = join(dir, 'fake-ctsync');
      writeFileSync(fake, `#!/bin/sh\necho "$*" >> ${dir}/calls\necho "did $2"\n[ "$2" = fault ] && exit 1\nexit 0\n`);
      chmodSync(fake, 0o755);
      const log = join(dir, 'notify.log');
      const call = (...args: string[]): number =>
        spawnSync(script, ['-C', '/etc/x.conf', '-b', fake, '-l', log, ...args], { encoding: 'utf8' }).status ?? -1;
      expect(call('GROUP', 'G_FW', 'MASTER', '0')).toBe(0);
      expect(call('INSTANCE', 'VI_1', 'BACKUP', '100')).toBe(0);
      expect(call('primary')).toBe(0);
      expect(call('GROUP', 'G_FW', 'FAULT', '0')).toBe(1);
      expect(call('GROUP', 'G_FW', 'STOP', '0')).toBe(0);
      expect(call('sideways')).toBe(0);
      expect(readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n')).toEqual([
        'notify master -C /etc/x.conf', 'notify backup -C /etc/x.conf', 'notify master -C /etc/x.conf', 'notify fault -C /etc/x.conf',
      ]);
      const text = readFileSync(log, 'utf8');
      expect(text).toMatch(/^\d+\.\d+ ctsync-notify\[\d+\] info: GROUP G_FW MASTER: begin ctsync notify master \(config \/etc\/x\.conf\)$/m);
      expect(text).toMatch(/info: ctsync: did master$/m);
      expect(text).toMatch(/info: GROUP G_FW MASTER: end ctsync notify master ok$/m);
      expect(text).toMatch(/err: GROUP G_FW FAULT: end ctsync notify fault failed \(exit 1\)$/m);
      expect(text).toMatch(/info: GROUP G_FW STOP: nothing to do$/m);
      expect(text).toMatch(/warning: unknown state 'sideways' ignored/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!isRoot || !haveKeepalived)('conf/keepalived.conf passes keepalived --config-test (starts 1 namespace)', () => {
    const lab = new Lab('kc');
    try {
      const ns = lab.netns('fw');
      ns.sh('ip link add eth0 type veth peer name eth1 && ip link set eth0 up && ip link set eth1 up');
      const r = ns.run('keepalived', ['--config-test', '-f', join(REPO_ROOT, 'conf', 'keepalived.conf')], { allowFail: true });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/error|unknown keyword/i);
    } finally {
      lab.cleanupSync();
    }
  });
});
