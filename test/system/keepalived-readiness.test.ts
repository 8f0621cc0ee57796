// The readiness track file under keepalived: a restarted node must not take
// the VIPs back before its external cache holds the peer's state.
//
// Topology: scripts/lib/topology.mjs (client, switch, fw1, fw2, server; a TCP
// counter stream from the client through the outside VIP's DNAT to the
// server; nf_conntrack_tcp_loose=0 and INVALID dropped, so a firewall without
// the stream's conntrack entry kills the stream). Both ctsyncs run with
// `Ctsync { ReadyFile … PeerTimeout 5 }` and StartupResync on. With
// `trackFile`, keepalived tracks that file (track_file, weight 1,
// init_file -253 overwrite, sync_group_tracking_weight on the sync group):
// not ready = -253 → priority max(1, 150 - 253) = 1, which loses against the
// synced fw2 (100) but still wins when alone; ready = 0 → fw1 is back at 150
// and, preempting (the default for state BACKUP), takes the VIPs at once.
//
// Scenario (the same sequence with and without the track file):
//   1. fw1 master, the stream replicated to fw2's external cache;
//   2. fw1 restarts completely: keepalived and ctsync stopped, fw1's kernel
//      conntrack table flushed (what a reboot leaves); fw2 takes over through
//      `ctsync notify master` and the stream carries on;
//   3. fw1 comes back: keepalived first, ctsync RESTART_LAG_MS later (a slow
//      daemon start or a long bulk transfer: keepalived is up before ctsync
//      has the peer's state, as on a boot where both start together).
// With the track file, fw1 must hold still while its file says -253, become
// ready only once `ctsync -e` shows the stream's entry, then preempt, commit
// and carry the stream (second failover). Without it (negative control), fw1
// preempts ~1 s after keepalived starts, with no external cache to commit,
// and the stream dies: the test can fail.
//
// Starts per scenario: 5 namespaces, keepalived ×2 (+1 restart), ctsync ×2
// (+1 restart), two stream processes.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { ADDR, currentStall, startTopology, type HaTopology, type Stream } from '../helpers/topology.js';
import { isRoot, waitFor } from '../helpers/netns.js';

const RESTART_LAG_MS = 3000;
const MARGIN_MS = 500;
const haveKeepalived = spawnSync('sh', ['-c', 'command -v keepalived']).status === 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Sample { t: number; vip: boolean; track: string | null; fw2Track: string | null }
const report: string[] = [];

/** The stream's flow (orig tuple client → outside VIP:8080) in firewall i's external cache; false when ctsync is down. */
function extHas(t: HaTopology, i: 0 | 1, sport: string): boolean {
  const r = t.ctsync(i, ['-e'], true);
  return r.status === 0 && r.stdout.split('\n')
    .some((l) => l.includes(`src=${ADDR.client} dst=${ADDR.outVip} sport=${sport} dport=${ADDR.dnatPort}`));
}

function holdsVip(t: HaTopology, i: 0 | 1): boolean {
  return t.exec(t.ns.fw[i], 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'out0'], { allowFail: true }).stdout.includes(`${ADDR.outVip}/`);
}

/** Largest receiver gap overlapping [from, to] (finished gaps ≥ 150 ms and the one open now). */
function stallIn(s: Stream, from: number, to: number): number {
  const st = s.status()!;
  let m = 0;
  for (const g of st.gaps) if (g.end >= from && g.start <= to) m = Math.max(m, g.ms);
  if (st.lastReadAt <= to) m = Math.max(m, Math.min(to, Date.now()) - Math.max(from, st.lastReadAt));
  return m;
}

/** Steps 1 and 2: fw1 master with the stream replicated, then fw1 stopped completely and fw2 master. */
async function firstFailover(t: HaTopology): Promise<{ s: Stream; sport: string; t0: number }> {
  const s = await t.startStream();
  const sport = /:(\d+)$/.exec(String(s.sendEvents.find((e) => e.ev === 'connected')?.local))?.[1] ?? '';
  expect(sport).not.toBe('');
  await waitFor(() => extHas(t, 1, sport), 'the stream flow in fw2 external cache', 10_000, 200);
  expect(t.master()).toBe(0);
  await sleep(300);
  expect(s.error()).toBeNull();
  const t0 = Date.now();
  await Promise.all([t.stopKeepalived(0), t.stopCtsync(0)]);
  // A rebooted node's kernel table is empty.
  t.exec(t.ns.fw[0], 'conntrack', ['-F'], { allowFail: true });
  await waitFor(() => t.master() === 1, 'fw2 to hold the VIPs', 10_000, 20);
  await waitFor(() => t.notifyEvent(1, /MASTER: end ctsync notify master ok/, t0), 'fw2 notify master to finish', 10_000);
  await waitFor(() => (s.status()?.lastReadAt ?? 0) > Date.now() - 200, 'the stream to resume through fw2', 10_000);
  expect(s.error()).toBeNull();
  // ctsync's shutdown leaves fw1's track file at not-ready.
  expect(t.readyValue(0)).toBe('-253');
  return { s, sport, t0 };
}

/** Step 3: keepalived on fw1 now, ctsync RESTART_LAG_MS later. Resolves with t1 (keepalived start). */
function restartFw1(t: HaTopology): { t1: number; ctsyncUp: Promise<number> } {
  const t1 = Date.now();
  t.startKeepalived(0);
  const ctsyncUp = sleep(RESTART_LAG_MS).then(async () => {
    const at = Date.now();
    await t.startCtsync(0);
    return at;
  });
  ctsyncUp.catch(() => undefined);
  return { t1, ctsyncUp };
}

describe.skipIf(!isRoot || !haveKeepalived)('keepalived track_file on the ctsync ReadyFile (5 namespaces, keepalived, ctsync, TCP stream through DNAT)', () => {
  afterAll(() => {
    if (report.length) process.stdout.write(`keepalived readiness figures:\n${report.map((l) => `  ${l}`).join('\n')}\n`);
  });

  it('a restarted fw1 waits, not ready, until its external cache holds fw2\'s state, then preempts and the stream survives both failovers', async () => {
    const t = await startTopology({ tag: 'kr', readyFile: true, trackFile: true });
    let ctsyncUp: Promise<number> | null = null;
    try {
      // Both synced: the track files say 0 (fw1 150 > fw2 100, fw1 master).
      await waitFor(() => t.readyValue(0) === '0' && t.readyValue(1) === '0', 'both track files 0', 15_000, 100);
      const { s, sport, t0 } = await firstFailover(t);

      const kaLogFrom = t.output.keepalived[0].length;
      const r = restartFw1(t);
      ctsyncUp = r.ctsyncUp;
      const { t1 } = r;
      // Watch fw1 (VIP, track file) until it takes the VIPs; check its external cache when it turns ready.
      const samples: Sample[] = [];
      let readyAt = 0;
      let extAtReady: boolean | null = null;
      let vipAt = 0;
      let extFirstAt = 0;
      let lastExtPoll = 0;
      const deadline = t1 + 30_000;
      while (Date.now() < deadline) {
        const vip = holdsVip(t, 0);
        const track = t.readyValue(0);
        const now = Date.now();
        samples.push({ t: now, vip, track, fw2Track: t.readyValue(1) });
        if (!readyAt && track === '0') {
          readyAt = now;
          extAtReady = extHas(t, 0, sport);
        }
        if (vip) { vipAt = now; break; }
        // When the entry first reached fw1's external cache (polled every ~300 ms once ctsync can be up,
        // until it turns ready: a poll in the iteration that saw it ready would date the entry after it).
        if (!readyAt && !extFirstAt && Date.now() - t1 >= RESTART_LAG_MS && Date.now() - lastExtPoll >= 300) {
          lastExtPoll = Date.now();
          if (extHas(t, 0, sport)) extFirstAt = lastExtPoll;
        }
        expect(s.error(), 'the stream broke while fw1 was coming back').toBeNull();
        await sleep(50);
      }
      const ctsyncStartAt = await ctsyncUp;
      expect(vipAt, 'fw1 took the VIPs back once ready').toBeGreaterThan(0);
      // Never the VIP while not ready: every sample before (and at) the takeover.
      const early = samples.filter((x) => x.vip && x.track !== '0');
      expect(early, 'fw1 held the VIP while its track file said not-ready').toEqual([]);
      // '' is a read inside keepalived's own init_file write (it truncates, then writes -253, as it starts).
      expect(samples.filter((x) => x.t < readyAt && (x.vip || (x.track !== '-253' && x.track !== ''))).map((x) => ({ ...x, t: x.t - t1 })),
        'samples before ready: fw1 without the VIP, its file -253').toEqual([]);
      expect(readyAt).toBeGreaterThan(ctsyncStartAt);
      // Ready only with fw2's entries in the external cache.
      expect(extAtReady, 'fw1 external cache held the stream flow when it turned ready').toBe(true);
      // fw1 stayed backup for the whole lag, although 150 > 100 would have preempted after ~1 s.
      expect(vipAt - t1).toBeGreaterThan(RESTART_LAG_MS);
      expect(vipAt).toBeGreaterThanOrEqual(readyAt);
      expect(vipAt - readyAt, 'preempts soon after turning ready').toBeLessThan(3000);
      // The stream kept flowing through fw2 meanwhile (a broken one stalls for good: see the negative control).
      expect(stallIn(s, t1, vipAt), 'the stream kept flowing through fw2 while fw1 was not ready').toBeLessThan(1000);
      // keepalived itself saw the file: priority 1 while not ready, 150 once ready.
      const kaLog = t.output.keepalived[0].slice(kaLogFrom);
      expect(kaLog).toMatch(/\(VI_OUT\) Changing effective priority from 150 to 1\n[^]*\(VI_OUT\) Changing effective priority from 1 to 150/);

      // Second failover (fw1 preempts): its notify master commits the external cache.
      await waitFor(() => t.notifyEvent(0, /MASTER: end ctsync notify master ok/, t1), 'fw1 notify master to finish', 10_000);
      await waitFor(() => t.notifyEvent(1, /BACKUP: end/, t1), 'fw2 notify backup', 10_000);
      const end1 = t.notifyEvent(0, /MASTER: end/, t1)!;
      const begin1 = t.notifyEvent(0, /MASTER: begin/, t1)!;
      await waitFor(() => (s.status()?.lastReadAt ?? 0) > end1.t, 'the stream to resume through fw1', 10_000);
      await sleep(700);
      expect(s.error()).toBeNull();
      const stall2 = stallIn(s, vipAt - 2000, Date.now());
      const { sent, end } = await s.finish();
      expect(end, 'receiver saw a clean end').not.toBeNull();
      expect(end!.ev).toBe('end');
      expect(end!.ok, `first wrong byte at ${String(end!.firstBad)}`).toBe(true);
      expect(end!.bytes).toBe(sent.bytes);
      // The preemption's own stall: bounded by fw1's takeover (VIP seen or notify start → notify
      // master done, i.e. committed) plus the margin, as in keepalived-failover.test.ts.
      const takeover2 = end1.t - Math.min(begin1.t, vipAt - 50);
      expect(stall2).toBeLessThanOrEqual(takeover2 + MARGIN_MS);
      // The committed entry in fw1's (flushed) kernel carries the DNAT.
      const k = t.exec(t.ns.fw[0], 'conntrack', ['-L', '-p', 'tcp', '--orig-port-src', sport], { allowFail: true }).stdout;
      expect(k).toContain(`src=${ADDR.server} dst=${ADDR.client} sport=${ADDR.serverPort} dport=${sport}`);

      const fw2NotReady = samples.filter((x) => x.fw2Track !== '0');
      report.push(`with track_file: fw1 down→up: stop at 0, keepalived restart at +${t1 - t0} ms, ctsync at +${ctsyncStartAt - t0} ms`);
      report.push(`  fw1 not ready (-253) from ctsync start for ${readyAt - ctsyncStartAt} ms (keepalived up ${readyAt - t1} ms before ready); ` +
        `took the VIPs ${vipAt - readyAt} ms after ready (${vipAt - t1} ms after keepalived start); ` +
        `stream entry first seen in its external cache ${extFirstAt ? `${extFirstAt - ctsyncStartAt} ms` : '(not polled in time)'} after ctsync start`);
      report.push(`  fw1 notify master ${end1.t - begin1.t} ms, takeover ${takeover2} ms; stall at preemption ${stall2} ms; stream max gap overall ${Number(end!.maxGapMs)} ms, ${Number(end!.bytes)} bytes`);
      report.push(`  fw2 (master meanwhile) track file not-ready in ${fw2NotReady.length}/${samples.length} samples` +
        (fw2NotReady.length ? ` (first at +${fw2NotReady[0]!.t - t0} ms after the stop)` : ''));
    } catch (e) {
      process.stdout.write(`--- fw1 ctsync log ---\n${t.ctsyncLog(0).slice(-3000)}\n--- fw1 keepalived ---\n${t.output.keepalived[0].slice(-2000)}\n` +
        `--- fw1 notify ---\n${t.notifyLog(0).map((l) => `${l.t} ${l.text}`).join('\n')}\n--- fw2 notify ---\n${t.notifyLog(1).map((l) => `${l.t} ${l.text}`).join('\n')}\n`);
      throw e;
    } finally {
      await ctsyncUp?.catch(() => undefined);
      await t.cleanup();
      t.removeDir();
    }
  }, 60_000);

  it('negative control: without the track_file the restarted fw1 preempts before it is synced and the stream dies', async () => {
    const t = await startTopology({ tag: 'kq', readyFile: true, trackFile: false });
    let ctsyncUp: Promise<number> | null = null;
    try {
      const { s, sport, t0 } = await firstFailover(t);
      const r = restartFw1(t);
      ctsyncUp = r.ctsyncUp;
      const { t1 } = r;
      await waitFor(() => holdsVip(t, 0), 'fw1 to take the VIPs back', 10_000, 20);
      const vipAt = Date.now();
      // At the takeover fw1's external cache lacks the stream (ctsync not even up yet), its file says not-ready.
      const extAtVip = extHas(t, 0, sport);
      const trackAtVip = t.readyValue(0);
      expect(extAtVip, 'fw1 external cache held the stream when it preempted').toBe(false);
      expect(trackAtVip).toBe('-253');
      expect(vipAt - t1).toBeLessThan(RESTART_LAG_MS);
      await waitFor(() => t.notifyEvent(0, /MASTER: end/, t1), 'fw1 notify master to finish', 10_000);
      // Wait well past what a working takeover needs: the stream does not come back.
      await sleep(3000);
      const st = s.status()!;
      const stall = currentStall(st);
      expect(s.error() !== null || stall > 2000, `stall ${stall} ms`).toBe(true);
      expect(st.lastReadAt).toBeLessThan(vipAt + 200);
      const ctsyncStartAt = await ctsyncUp;
      report.push(`without track_file: keepalived restart at +${t1 - t0} ms; fw1 took the VIPs ${vipAt - t1} ms after keepalived start ` +
        `(ctsync started ${ctsyncStartAt - vipAt} ms later), track file ${String(trackAtVip)}, stream stalled ${stall} ms and counting`);
    } catch (e) {
      process.stdout.write(`--- fw1 keepalived ---\n${t.output.keepalived[0].slice(-2000)}\n--- fw1 notify ---\n${t.notifyLog(0).map((l) => `${l.t} ${l.text}`).join('\n')}\n`);
      throw e;
    } finally {
      await ctsyncUp?.catch(() => undefined);
      await t.cleanup();
      t.removeDir();
    }
  }, 60_000);
});
