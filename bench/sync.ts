// Replication benchmark: the same workloads against a conntrackd 1.4.7 FTFW
// pair, then a ctsync pair (fresh namespaces for every workload and daemon),
// in one invocation, printed as one table with the ratio ctsync/conntrackd.
// The machine is shared and noisy: read the ratios, not the absolute figures.
//
//   npm run build && node dist/bench/sync.js [--quick] [--only=repl,commit,latency,resync,loss]
//   [--rounds=N] (rounds of the 100k replicate and resync rows, median; default 3, --quick 1)
//   Profiling: [--kinds=ctsync] [--perf] (perf's split of each daemon's CPU by bucket, all
//   threads) [--sched=other] (for node --cpu-prof via CTSYNC_NODE_ARGS: its sampler starves
//   beside a real-time main thread).
//
// Needs root (namespaces, CAP_NET_ADMIN), conntrackd and iptables in PATH.
// All state queries go straight to each daemon's UNIX control socket (the
// conntrackd request protocol, one int32), so neither daemon pays a client
// process start per poll; kernel counts come from /proc/<pid>/net/stat.
import { execSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CTL } from '../src/control/codes.js';
import { CtClient } from '../src/netlink/client.js';
import { cleanupAllSync } from '../test/helpers/netns.js';
import { makePair as makeMixedPair, REPO_ROOT, type DaemonKind, type Pair, type SyncNode } from '../test/helpers/syncpair.js';
import { tcpEntries } from '../test/helpers/bulk.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A daemon kind, or [fw1's, fw2's] for a mixed pair. */
type PairKind = DaemonKind | readonly [DaemonKind, DaemonKind];
/** Both firewalls run the same daemon unless a pair is given; with a key file both seal the sync link (ctsync only). */
const makePair = (kind: PairKind, tag: string, keyFile?: string): Pair => {
  const tail = keyFile ? { tail: `Ctsync {\n\tKeyFile ${keyFile}\n}\n` } : {};
  const [a, b] = typeof kind === 'string' ? [kind, kind] : kind;
  // conntrackd's default scheduling, stated for both. `--sched=other` for profiling: V8's
  // sampler thread starves beside a real-time main thread, and a profile then misses most ticks.
  const sched = { generalExtra: SCHED_OTHER ? ['Scheduler {', '\tType OTHER', '}'] : ['Scheduler {', '\tType RR', '\tPriority 99', '}'] };
  return makeMixedPair(a, b, tag, { a: { ...tail, ...sched }, b: { ...tail, ...sched } });
};
import { cpuSeconds, kernelCount, machineCalibMs, mainThreadCpu, mainThreadCpuSeconds, mainThreadSched, peakRssMiB, quantile, quietCpu, systemCpuSeconds, udpCounters } from './lib/probe.js';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const SCHED_OTHER = argv.includes('--sched=other');
/**
 * `--perf`: ctsync's replicate runs under `perf record` (both daemons, all threads), and rows
 * split each one's CPU per event into kernel, optimized JS, TurboFan, GC... (scripts/perf-split.mjs).
 * The daemons get --perf-basic-prof (JIT frames named in /tmp/perf-<pid>.map); V8's code log goes
 * to /tmp instead of the working directory.
 */
const PERF = argv.includes('--perf');
if (PERF) {
  process.env.CTSYNC_NODE_ARGS = `${process.env.CTSYNC_NODE_ARGS ?? ''} --perf-basic-prof --logfile=/tmp/ctsync-bench-v8-%p.log --no-logfile-per-isolate`;
}
const ONLY = argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
/** `--kinds=ctsync` skips the conntrackd pair (profiling iterations; the table then has one column). */
const KINDS = (argv.find((a) => a.startsWith('--kinds='))?.slice(8).split(',') ?? ['conntrackd', 'ctsync']) as DaemonKind[];
/** `--sizes=100000` replaces the replicate sizes. */
/** Profiling aid: repeat the bulk resync this many times (the last one is measured). */
const RESYNC_REPEAT = Number(argv.find((a) => a.startsWith('--resync-repeat='))?.slice(16) ?? 1);
const SIZES = argv.find((a) => a.startsWith('--sizes='))?.slice(8).split(',').map(Number) ?? (QUICK ? [10_000] : [10_000, 100_000, 250_000]);
/** Entries of the warm-up burst before the steady-state replication rows. */
const WARM = 20_000;
const BIG = QUICK ? 10_000 : 100_000;
const LAT_SAMPLES = QUICK ? 40 : 300;
/** Latency rounds per daemon, alternating between them; the table shows per-figure medians. */
const LAT_ROUNDS = QUICK ? 1 : 3;
/**
 * Rounds of the rows with a CPU or rate target (replicate 100k, its warm twin, bulk resync):
 * alternating daemons, median per figure (`--rounds=N`). One round of each swung by ±30%
 * on this shared host from one run to the next, and before the launcher's
 * --initial-old-space-size=64 about one ctsync 100k burst in seven ran at half speed throughout
 * (both daemons, their kernel time, the bench's own creates; no loss, overrun or UDP drop, the
 * same datagrams, the machine probe normal before and after; none in 38 since): five rounds, so
 * that two such runs do not make the median.
 */
const CPU_ROUNDS = Number(argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? (QUICK ? 1 : 5));
const LAT_WARM_BURST = 20_000;
const LOSS_N = 10_000;
const FAILOVERS = QUICK ? 1 : 3;
const LOSS_BOUND_MS = QUICK ? 20_000 : 60_000;
/** Give up on replication when the count has not moved for this long. */
const STALL_MS = 15_000;
const now = (): number => performance.now();

const wants = (w: string): boolean => !ONLY || ONLY.includes(w);

// The HA topology (client, switch, fw1/fw2 under keepalived, server) is plain JS shared with the demo
// and the keepalived tests; loaded by path because tsc does not copy .mjs files into dist/.
interface HaStreamEnd { ev: string; ok: boolean; bytes: number; maxGapMs: number }
interface HaStream { finish(): Promise<{ sent: { bytes: number }; end: HaStreamEnd | null }>; error(): Error | null; status(): { lastReadAt: number; maxGapMs: number } | null }
interface HaTopologyLike {
  start(): Promise<void>; startStream(): Promise<HaStream>; failLinks(i: 0 | 1): void; master(): number;
  notifyEvent(i: 0 | 1, re: RegExp, since?: number): { t: number; text: string } | null;
  ctsync(i: 0 | 1, args: string[], allowFail?: boolean): { stdout: string };
  cleanup(): Promise<void>; cleanupSync(): void; removeDir(): void;
}
type HaTopologyCtor = new (opts: { tag: string; daemon: DaemonKind }) => HaTopologyLike;

process.on('SIGINT', () => { cleanupAllSync(); process.exit(130); });
process.on('SIGTERM', () => { cleanupAllSync(); process.exit(143); });
// Hard bound on the whole run: namespaces never outlive the bench.
setTimeout(() => { console.error('bench: global time bound (25 min) reached'); cleanupAllSync(); process.exit(2); }, 25 * 60_000).unref();

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function withPair<T>(kind: PairKind, tag: string, fn: (p: Pair) => Promise<T>, keyFile?: string): Promise<T> {
  await quietCpu(); // the previous pair's namespaces are still being torn down by the kernel
  const p = makePair(kind, tag, keyFile);
  try {
    await p.a.start();
    await p.b.start();
    await sleep(500); // FTFW hello/alive exchange
    return await fn(p);
  } finally {
    await p.cleanup();
  }
}

interface WaitResult { count: number; atMs: number | null; polls: number; lastChangeAt: number }

/**
 * Polls the node's external cache count until it reaches `target`. Gives up
 * after `boundMs` from `startMs`, or when the count has not changed for
 * STALL_MS once `quietFrom()` (e.g. the creates are done) is set.
 *
 * `fine`: the next poll comes after half the time the count's rate so far says
 * is left (at least 1 ms, at most `stepMs`), so the hit comes at most ~1 ms
 * after the arrival while the number of polls (each costs the daemon CPU)
 * stays about what `stepMs` alone gives. With `stepMs` alone, a 10 ms step
 * was 12% of a 100k resync's ~85 ms, and both daemons' rates came out on one
 * 10 ms grid. The arrival is taken at the hit's answer, not between it and the
 * last miss: a daemon busy with the transfer may answer a poll only at its end
 * (conntrackd does: its first poll of a resync is answered when it is over), so
 * an answer says when the count was read no better than "before this".
 */
async function waitExternal(node: SyncNode, target: number, opts: { startMs: number; boundMs: number; stepMs: number; quietFrom?: () => boolean; fine?: boolean }): Promise<WaitResult> {
  let last = -1;
  let lastChange = now();
  let polls = 0;
  for (;;) {
    const c = await node.cacheCount('external');
    polls++;
    const t = now();
    if (c >= target) return { count: c, atMs: t, polls, lastChangeAt: t };
    if (c !== last) { last = c; lastChange = t; }
    if (t - opts.startMs > opts.boundMs) return { count: c, atMs: null, polls, lastChangeAt: lastChange };
    if ((opts.quietFrom?.() ?? true) && t - lastChange > STALL_MS) return { count: c, atMs: null, polls, lastChangeAt: lastChange };
    let step = opts.stepMs;
    if (opts.fine && c > 0) {
      const leftMs = ((target - c) * (t - opts.startMs)) / c;
      step = Math.min(opts.stepMs, Math.max(1, leftMs / 2));
    }
    await sleep(step);
  }
}

async function inject(p: Pair, n: number, first = 0): Promise<void> {
  const c = new CtClient({ netns: p.fw1.path });
  try {
    const r = await c.create(tcpEntries(n, first));
    if (r.failed.length) throw new Error(`${r.failed.length} creates failed on fw1, first errno ${r.failed[0]!.errno}`);
  } finally {
    c.close();
  }
}

/* ---------------- workloads ---------------- */

/** CPU seconds one STATS request costs the daemon (polling overhead, subtracted from the receiver's CPU). */
async function statsCost(node: SyncNode, reqs = 100): Promise<number> {
  const c0 = cpuSeconds(node.pid);
  for (let i = 0; i < reqs; i++) await node.request(CTL.STATS, 10_000);
  return (cpuSeconds(node.pid) - c0) / reqs;
}

/** "Pckts sent" of a daemon's active sync link (`-s`, the same line for both daemons). */
async function packetsSent(node: SyncNode): Promise<number> {
  const m = /(\d+) Pckts sent/.exec(await node.request(CTL.STATS, 10_000));
  return m ? Number(m[1]) : NaN;
}

/** Counter blocks of both daemons, kept in the JSON when something went wrong. */
async function diagnostics(p: Pair): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const get = async (name: string, node: SyncNode, code: number): Promise<void> => {
    try { out[name] = await node.request(code, 10_000); } catch (e) { out[name] = `error: ${(e as Error).message}`; }
  };
  await get('fw1 -s', p.a, CTL.STATS);
  await get('fw1 -s runtime', p.a, CTL.STATS_RUNTIME);
  await get('fw1 -s queue', p.a, CTL.STATS_QUEUE);
  // ctsync's own counters of the protocol at work (ACKs, NACKs, resends, restarts), which -s cannot show.
  for (const [name, node] of [['fw1 -s --json', p.a], ['fw2 -s --json', p.b]] as const) {
    if (node.kind === 'ctsync') out[name] = node.cli(['-s', '--json'], true).stdout;
  }
  await get('fw2 -s', p.b, CTL.STATS);
  await get('fw2 -s network', p.b, CTL.STATS_NETWORK);
  await get('fw2 -s runtime', p.b, CTL.STATS_RUNTIME);
  return out;
}

interface ReplResult {
  convergeS: number | null; eventsPerS: number | null; lost: number; tailMs: number | null; createS: number;
  cpuSendUs: number; cpuRecvUs: number; cpuRecvRawUs: number; statsCostMs: number; polls: number;
  /** Kernel part of cpuSendUs / cpuRecvRawUs. */
  sysSendUs: number; sysRecvUs: number;
  /** Of each daemon's CPU, its main thread's (the rest: runtime helper threads, GC and JIT for Node). */
  mainSendUs: number; mainRecvUs: number;
  /** `--perf`: each daemon's CPU by bucket, in % of its samples. */
  perfSend?: Record<string, number>; perfRecv?: Record<string, number>;
  rssSendMiB: number; rssRecvMiB: number; fw1Internal: number; diag?: Record<string, string>;
}

/**
 * `warm`: first replicate that many other entries and delete them again (a
 * kernel flush on fw1, replicated as DESTROY events), so the measured burst
 * meets daemons in steady state: JIT-compiled paths, grown buffers. A fresh
 * daemon pays that once in its life; the cold rows show it, the warm rows
 * show what each further burst costs.
 */
async function replicate(kind: PairKind, n: number, keyFile?: string, warm = 0): Promise<ReplResult> {
  return withPair(kind, keyFile ? 'k' : 'r', async (p) => {
    const entries = tcpEntries(n);
    const statsCostS = await statsCost(p.b);
    const client = new CtClient({ netns: p.fw1.path });
    try {
      if (warm > 0) {
        await client.create(tcpEntries(warm, 2 * n + 1000));
        const w0 = await waitExternal(p.b, warm, { startMs: now(), boundMs: 60_000, stepMs: 20 });
        if (w0.atMs === null) log(`${p.a.kind}: warm-up stalled at ${w0.count}/${warm}`);
        await client.flush();
        const tf = now();
        while ((await p.b.cacheCount('external')) > 0 && now() - tf < 30_000) await sleep(20);
        await sleep(300);
      }
      const rec = PERF && p.a.kind === 'ctsync' && p.b.kind === 'ctsync' ? [perfStart(p.a.pid), perfStart(p.b.pid)] : null;
      if (rec) await sleep(300); // perf attaches to every thread before the burst
      const cpuA0 = cpuSeconds(p.a.pid);
      const cpuB0 = cpuSeconds(p.b.pid);
      const sysA0 = systemCpuSeconds(p.a.pid);
      const sysB0 = systemCpuSeconds(p.b.pid);
      const mainA0 = mainThreadCpuSeconds(p.a.pid);
      const mainB0 = mainThreadCpuSeconds(p.b.pid);
      let tCreated = 0;
      const udpA0 = udpCounters(p.a.pid);
      const udpB0 = udpCounters(p.b.pid);
      const schedA0 = mainThreadSched(p.a.pid);
      const schedB0 = mainThreadSched(p.b.pid);
      // Where the two daemons' main threads run during the burst: on a 2-CPU machine both on one
      // CPU (real-time, same priority) take turns, and their caches with them.
      let samples = 0;
      let sameCpu = 0;
      const sampler = setInterval(() => {
        try {
          samples++;
          if (mainThreadCpu(p.a.pid) === mainThreadCpu(p.b.pid)) sameCpu++;
        } catch { /* gone */ }
      }, 10);
      const t0 = now();
      const created = client.create(entries).then((r) => {
        tCreated = now();
        if (r.failed.length) throw new Error(`${r.failed.length} creates failed, first errno ${r.failed[0]!.errno}`);
      });
      const w = await waitExternal(p.b, n, { startMs: t0, boundMs: 60_000 + n / 2, stepMs: 20, quietFrom: () => tCreated > 0 });
      await created;
      clearInterval(sampler);
      const schedA = mainThreadSched(p.a.pid);
      const schedB = mainThreadSched(p.b.pid);
      const udpA = udpCounters(p.a.pid);
      const udpB = udpCounters(p.b.pid);
      const runCounters = {
        udpInRecv: udpB.inDatagrams - udpB0.inDatagrams, udpDroppedRecv: udpB.rcvbufErrors - udpB0.rcvbufErrors,
        udpInSend: udpA.inDatagrams - udpA0.inDatagrams, udpDroppedSend: udpA.rcvbufErrors - udpA0.rcvbufErrors,
        sameCpuShare: samples > 0 ? sameCpu / samples : null, cpuSamples: samples,
        preemptedSend: schedA.involuntary - schedA0.involuntary, waitedSend: schedA.voluntary - schedA0.voluntary,
        preemptedRecv: schedB.involuntary - schedB0.involuntary, waitedRecv: schedB.voluntary - schedB0.voluntary,
      };
      const cpuA = cpuSeconds(p.a.pid) - cpuA0;
      const cpuB = cpuSeconds(p.b.pid) - cpuB0;
      const sysA = systemCpuSeconds(p.a.pid) - sysA0;
      const sysB = systemCpuSeconds(p.b.pid) - sysB0;
      const mainA = mainThreadCpuSeconds(p.a.pid) - mainA0;
      const mainB = mainThreadCpuSeconds(p.b.pid) - mainB0;
      const perf = rec ? { perfSend: await perfSplit(rec[0]!, p.a.pid), perfRecv: await perfSplit(rec[1]!, p.b.pid) } : {};
      const convergeS = w.atMs === null ? null : (w.atMs - t0) / 1000;
      const lost = n - Math.min(n, w.count);
      // Per event that actually reached fw2 (a lossy run must not look cheaper).
      const replicated = Math.max(1, n - lost);
      return {
        convergeS,
        eventsPerS: convergeS === null ? null : n / convergeS,
        lost,
        tailMs: w.atMs === null ? null : w.atMs - tCreated,
        createS: (tCreated - t0) / 1000,
        cpuSendUs: (cpuA / replicated) * 1e6,
        cpuRecvUs: (Math.max(0, cpuB - w.polls * statsCostS) / replicated) * 1e6,
        cpuRecvRawUs: (cpuB / replicated) * 1e6,
        sysSendUs: (sysA / replicated) * 1e6,
        sysRecvUs: (sysB / replicated) * 1e6,
        mainSendUs: (mainA / replicated) * 1e6,
        mainRecvUs: (mainB / replicated) * 1e6,
        ...perf,
        statsCostMs: statsCostS * 1000,
        polls: w.polls,
        rssSendMiB: peakRssMiB(p.a.pid),
        rssRecvMiB: peakRssMiB(p.b.pid),
        fw1Internal: await p.a.cacheCount('internal'),
        runCounters,
        ...(p.a.kind === 'ctsync' ? { fw1Netlink: netlinkStats(p.a) } : {}),
        ...(lost > 0 ? { diag: await diagnostics(p) } : {}),
      };
    } finally {
      client.close();
    }
  }, keyFile);
}

/** A ctsync daemon's event-socket counters (-s runtime --json "netlink"): events, overruns, resyncs with the kernel. */
function netlinkStats(d: Pair['a']): { eventsReceived: number; overrun: number; resyncWithKernel: number } | null {
  try {
    const j = JSON.parse(d.cli(['-s', 'runtime', '--json'], true).stdout) as { netlink?: { eventsReceived: number; overrun: number; resyncWithKernel: number } };
    return j.netlink ? { eventsReceived: j.netlink.eventsReceived, overrun: j.netlink.overrun, resyncWithKernel: j.netlink.resyncWithKernel } : null;
  } catch {
    return null;
  }
}

/** `perf record` of one process, every thread, with the software clock (no hardware counters in VMs). */
function perfStart(pid: number): ChildProcess {
  return spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '4000', '-p', String(pid), '-o', `/tmp/ctsync-bench-${pid}.perf`],
    { stdio: 'ignore' });
}

/** Stops a perfStart recording and sorts its samples into buckets; the daemon must still run (its JIT symbol map). */
async function perfSplit(rec: ChildProcess, pid: number): Promise<Record<string, number>> {
  const exited = new Promise<void>((r) => { if (rec.exitCode !== null) r(); else rec.once('exit', () => r()); });
  rec.kill('SIGINT');
  await Promise.race([exited, sleep(10_000)]);
  const data = `/tmp/ctsync-bench-${pid}.perf`;
  try {
    // Also the symbols behind the buckets, for reading after the run (the JIT map goes with the daemon).
    const dir = join(REPO_ROOT, 'bench', 'results', 'partial');
    mkdirSync(dir, { recursive: true });
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'perf-split.mjs'), data, '--json', '--top', '25',
      '--report', join(dir, `perf-${pid}.txt`)], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`perf-split: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { buckets: Record<string, number> }).buckets;
  } finally {
    for (const f of [data, `/tmp/perf-${pid}.map`, `/tmp/ctsync-bench-v8-${pid}.log`]) rmSync(f, { force: true });
  }
}

/** A fresh key file (mode 0600, one AES-256 key) for the sealed-link row. */
function makeKeyFile(): string {
  const dir = mkdtempSync(join(os.tmpdir(), 'ctbench-key-'));
  const file = join(dir, 'sync.key');
  writeFileSync(file, `1 ${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return file;
}

/** Fills fw1 with n entries and waits for fw2's external cache; carries on with what arrived if replication stalls. */
async function prefill(p: Pair, n: number): Promise<number> {
  await inject(p, n);
  const w = await waitExternal(p.b, n, { startMs: now(), boundMs: 180_000, stepMs: 50 });
  if (w.atMs === null) log(`${p.a.kind}: only ${w.count}/${n} reached fw2's external cache (stalled); measuring with ${w.count}`);
  return w.count;
}

interface CommitResult { entries: number; kernelS: number | null; replyS: number | null; inKernel: number; perS: number | null }

/**
 * `fw1Down`: fw1's daemon is stopped before the commit, as when the master
 * failed. Both firewalls share one kernel here, and netlink_has_listeners()
 * is per protocol, not per namespace: a live fw1 daemon's NEW-event
 * subscription makes fw2's kernel build (and drop) an event for every
 * committed entry, a cost no real pair pays (measured: a frozen fw1 daemon,
 * SIGSTOP, keeps the cost; a stopped one removes it).
 */
async function commit(kind: DaemonKind, n: number, fw1Down: boolean): Promise<CommitResult> {
  return withPair(kind, 'c', async (p) => {
    const m = await prefill(p, n);
    await sleep(300);
    if (fw1Down) await p.a.stop();
    const base = kernelCount(p.b.pid);
    let replyAt: number | null = null;
    const t0 = now();
    // What `-c` sends (ALL_COMMIT); the reply is the end of the client's wait.
    const reply = p.b.request(CTL.ALL_COMMIT, 300_000).then(() => { replyAt = now(); }, (e: Error) => { log(`${kind} commit request: ${e.message}`); });
    let kernelAt: number | null = null;
    let count = 0;
    while (now() - t0 < 120_000) {
      count = kernelCount(p.b.pid) - base;
      if (count >= m) { kernelAt = now(); break; }
      await sleep(5);
    }
    await Promise.race([reply, sleep(Math.max(0, 120_000 - (now() - t0)))]);
    const kernelS = kernelAt === null ? null : (kernelAt - t0) / 1000;
    return { entries: m, kernelS, replyS: replyAt === null ? null : (replyAt - t0) / 1000, inKernel: count, perS: kernelS === null ? null : m / kernelS };
  });
}

/** Streams `tcpdump -tt` on fw2's sync0: arrival times (epoch ms) of data-carrying datagrams from fw1. */
class WireWatch {
  readonly arrivals: number[] = [];
  private buf = '';
  private waiters: (() => void)[] = [];
  private readonly proc: ReturnType<Pair['lab']['spawn']>;
  private ready: Promise<void>;

  constructor(p: Pair) {
    // ALIVE/ACK frames are < 70 bytes; a datagram carrying one conntrack is > 100.
    this.proc = p.lab.spawn(p.fw2, 'tcpdump', ['-i', 'sync0', '-n', '-tt', '-l', '--immediate-mode', '-Q', 'in',
      'udp and src host 172.30.1.1 and greater 100']);
    this.ready = new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('tcpdump did not start')), 10_000);
      this.proc.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('listening on')) { clearTimeout(t); resolve(); } });
      this.proc.once('exit', (c) => { clearTimeout(t); reject(new Error(`tcpdump exited ${c}`)); });
    });
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        const ts = Number(line.slice(0, line.indexOf(' ')));
        if (Number.isFinite(ts) && ts > 0) this.arrivals.push(ts * 1000);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  start(): Promise<void> { return this.ready; }

  /** First arrival at or after epochMs, or null after boundMs. */
  async firstAfter(epochMs: number, boundMs: number): Promise<number | null> {
    const end = now() + boundMs;
    for (;;) {
      const hit = this.arrivals.find((a) => a >= epochMs);
      if (hit !== undefined) return hit;
      const left = end - now();
      if (left <= 0) return null;
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  stop(): void { try { this.proc.kill('SIGTERM'); } catch { /* gone */ } }
}

interface LatencyResult {
  wireP50Ms: number; wireP99Ms: number; wireMissed: number;
  p50Ms: number; p99Ms: number; maxMs: number; missed: number; samples: number; pollMs: number; rttMs: number;
  statsCostMs: number; inCacheAfterWire: number;
}

/** Per daemon, each figure's median over the rounds; samples never seen are summed. */
function medianLatency(rounds: Partial<Record<DaemonKind, LatencyResult>>[]): Partial<Record<DaemonKind, LatencyResult>> {
  const out: Partial<Record<DaemonKind, LatencyResult>> = {};
  for (const k of KINDS) {
    const rs = rounds.map((x) => x[k]).filter((x): x is LatencyResult => x !== undefined);
    if (rs.length === 0) continue;
    const med = (f: (x: LatencyResult) => number): number => quantile(rs.map(f), 0.5);
    out[k] = {
      wireP50Ms: med((x) => x.wireP50Ms), wireP99Ms: med((x) => x.wireP99Ms), wireMissed: rs.reduce((a, x) => a + x.wireMissed, 0),
      p50Ms: med((x) => x.p50Ms), p99Ms: med((x) => x.p99Ms), maxMs: Math.max(...rs.map((x) => x.maxMs)),
      missed: rs.reduce((a, x) => a + x.missed, 0), samples: rs.reduce((a, x) => a + x.samples, 0),
      pollMs: med((x) => x.pollMs), rttMs: med((x) => x.rttMs), statsCostMs: med((x) => x.statsCostMs),
      inCacheAfterWire: med((x) => x.inCacheAfterWire),
    };
  }
  return out;
}

/**
 * Per daemon, the median of every numeric figure over the rounds; a figure that did not
 * converge (null) in most rounds stays null. Counts that must be 0 (`worst`) take their
 * largest value instead: one lossy round is not hidden by two clean ones. Anything else
 * (perf splits, diagnostics) comes from the first round.
 */
function medianRounds<T extends object>(rounds: Partial<Record<DaemonKind, T>>[], worst: readonly (keyof T)[] = []): Partial<Record<DaemonKind, T>> {
  const out: Partial<Record<DaemonKind, T>> = {};
  for (const k of KINDS) {
    const rs = rounds.map((x) => x[k]).filter((x): x is T => x !== undefined);
    if (rs.length === 0) continue;
    const m: Record<string, unknown> = { ...rs[0]!, rounds: rs.length };
    for (const key of Object.keys(rs[0]!) as (keyof T & string)[]) {
      const vs = rs.map((x) => x[key]);
      if (!vs.every((v) => typeof v === 'number' || v === null)) continue;
      const nums = vs.filter((v): v is number & T[keyof T & string] => typeof v === 'number');
      if (worst.includes(key)) m[key] = nums.length ? Math.max(...nums) : null;
      else m[key] = nums.length * 2 > vs.length ? quantile(nums, 0.5) : null;
    }
    out[k] = m as T;
  }
  return out;
}

/** `rounds` rounds of `fn` (each() alternates the daemons within one), their medianRounds. */
async function eachRounds<T extends object>(what: string, rounds: number, fn: (k: DaemonKind) => Promise<T>,
  worst: readonly (keyof T)[] = []): Promise<{ median: Partial<Record<DaemonKind, T>>; rounds: Partial<Record<DaemonKind, T>>[] }> {
  const all: Partial<Record<DaemonKind, T>>[] = [];
  for (let i = 0; i < rounds; i++) all.push(await each(rounds > 1 ? `${what}, round ${i + 1}/${rounds}` : what, fn));
  return { median: medianRounds(all, worst), rounds: all };
}

/**
 * Wall-clock time in ms with sub-ms resolution, on the clock tcpdump stamps packets with
 * (CLOCK_REALTIME). performance.timeOrigin + performance.now() is not: it is realtime at process
 * start advanced by the monotonic clock, and an NTP step or slew on the VM moves the two apart
 * (seen: a run where 291 of 300 datagrams seemed to arrive before their own create). So the
 * offset is taken afresh at a Date.now() tick before every sample (error: a few µs). The bench
 * may be preempted between its two clock reads (the daemons run at SCHED_RR 99), which can only
 * make an estimate too large (seen: 3 ms, a datagram "before" its create), so the smallest of
 * three is kept.
 */
let realtimeOffset = 0;
function anchorRealtime(): void {
  let best = Infinity;
  for (let k = 0; k < 3; k++) {
    const d0 = Date.now();
    let d = d0;
    let p = 0;
    for (let spins = 0; d === d0 && spins < 1_000_000; spins++) {
      p = performance.now();
      d = Date.now();
    }
    best = Math.min(best, d - p);
  }
  realtimeOffset = best;
}
const epochNow = (): number => realtimeOffset + performance.now();

async function latency(kind: DaemonKind, samples: number): Promise<LatencyResult> {
  return withPair(kind, 'l', async (p) => {
    const client = new CtClient({ netns: p.fw1.path });
    const wire = new WireWatch(p);
    try {
      await wire.start();
      // Steady state, not a cold start: a firewall's daemon has seen many events before the one that
      // matters, and ctsync's JIT compiles its event path only after a few thousand. Both daemons get
      // the same warm-up burst, replicated in full before the first sample.
      const warmRes = await client.create(tcpEntries(LAT_WARM_BURST, 500_000));
      if (warmRes.ok !== LAT_WARM_BURST) throw new Error(`warm-up creates failed: ${warmRes.failed.length}`);
      await waitExternal(p.b, LAT_WARM_BURST, { startMs: now(), boundMs: 30_000, stepMs: 50 });
      await sleep(1000);
      const warm = 10;
      let next = 0;
      // Phase 1: create → datagram on fw2's sync0 (kernel capture timestamps, µs; the daemons are not polled).
      const wl: number[] = [];
      let wireMissed = 0;
      for (let i = 0; i < warm + samples; i++) {
        anchorRealtime();
        const t0 = epochNow();
        const r = await client.create(tcpEntries(1, next++));
        if (r.ok !== 1) throw new Error(`create failed errno ${r.failed[0]?.errno}`);
        const at = await wire.firstAfter(t0, 2000);
        if (i >= warm) { if (at === null) wireMissed++; else wl.push(at - t0); }
        await sleep(5);
      }
      await sleep(200);
      const inCacheAfterWire = await p.b.cacheCount('external');

      // Phase 2: create → in fw2's external cache, by polling STATS (costs the daemon CPU: see statsCostMs).
      const lat: number[] = [];
      const pollRtt: number[] = [];
      const gaps: number[] = [];
      let missed = 0;
      let expected = inCacheAfterWire;
      for (let i = 0; i < samples; i++) {
        const t0 = now();
        const r = await client.create(tcpEntries(1, next++));
        if (r.ok !== 1) throw new Error(`create failed errno ${r.failed[0]?.errno}`);
        expected++;
        // The entry reached the cache after the daemon answered the last
        // miss and before it answered the hit; each answer is estimated at
        // the middle of its poll round trip, the latency at the middle of
        // the two (resolution: one poll interval, reported).
        let lastMiss = t0;
        let seenAt: number | null = null;
        while (now() - t0 < 5000) {
          const q0 = now();
          const c = await p.b.cacheCount('external');
          const q1 = now();
          pollRtt.push(q1 - q0);
          const answered = (q0 + q1) / 2;
          if (c >= expected) { seenAt = (lastMiss + answered) / 2; gaps.push(answered - lastMiss); break; }
          lastMiss = answered;
          await sleep(1);
        }
        if (seenAt === null) { missed++; expected = await p.b.cacheCount('external'); } else lat.push(seenAt - t0);
        await sleep(5);
      }
      return {
        wireP50Ms: quantile(wl, 0.5), wireP99Ms: quantile(wl, 0.99), wireMissed,
        p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99), maxMs: Math.max(...lat), missed, samples,
        pollMs: quantile(gaps, 0.5), rttMs: quantile(pollRtt, 0.5),
        statsCostMs: (await statsCost(p.b, 50)) * 1000,
        inCacheAfterWire,
      };
    } finally {
      wire.stop();
      client.close();
    }
  });
}

interface ResyncResult {
  entries: number; seconds: number | null; perS: number | null; got: number;
  /** CPU of each daemon from the -n until converged, per entry that arrived (µs; the receiver's includes its STATS polls). */
  cpuSendUs: number; cpuRecvUs: number;
  /** Kernel part (stime) of the two. */
  sysSendUs: number; sysRecvUs: number;
  /** Datagrams fw1 sent in the window ("Pckts sent" of its -s). */
  datagrams: number;
  /** STATS polls of fw2 in the window. */
  polls: number;
  /** `--perf`: each daemon's CPU by bucket (% of its samples; the window starts 0.3 s before the -n). */
  perfSend?: Record<string, number>; perfRecv?: Record<string, number>;
}

async function resync(kind: DaemonKind, n: number): Promise<ResyncResult> {
  return withPair(kind, 's', async (p) => {
    await prefill(p, n);
    for (let k = 1; k < RESYNC_REPEAT; k++) {
      await p.b.request(CTL.CT_FLUSH_EXT_CACHE, 60_000);
      await p.b.request(CTL.REQUEST_DUMP, 60_000);
      await waitExternal(p.b, n, { startMs: now(), boundMs: 120_000, stepMs: 50 });
    }
    await p.b.request(CTL.CT_FLUSH_EXT_CACHE, 60_000); // -f external
    const tf = now();
    while ((await p.b.cacheCount('external')) !== 0) {
      if (now() - tf > 30_000) throw new Error('external cache not empty 30 s after -f external');
      await sleep(20);
    }
    await sleep(200);
    const rec = PERF && p.a.kind === 'ctsync' ? [perfStart(p.a.pid), perfStart(p.b.pid)] : null;
    if (rec) await sleep(300); // perf attaches to every thread before the measured window
    const pk0 = await packetsSent(p.a);
    const cpuA0 = cpuSeconds(p.a.pid);
    const cpuB0 = cpuSeconds(p.b.pid);
    const sysA0 = systemCpuSeconds(p.a.pid);
    const sysB0 = systemCpuSeconds(p.b.pid);
    const t0 = now();
    await p.b.request(CTL.REQUEST_DUMP, 60_000); // -n
    const r = await waitExternal(p.b, n, { startMs: t0, boundMs: 120_000, stepMs: 10, fine: true });
    const got = Math.max(1, r.count);
    const cpuSendUs = ((cpuSeconds(p.a.pid) - cpuA0) / got) * 1e6;
    const cpuRecvUs = ((cpuSeconds(p.b.pid) - cpuB0) / got) * 1e6;
    const sysSendUs = ((systemCpuSeconds(p.a.pid) - sysA0) / got) * 1e6;
    const sysRecvUs = ((systemCpuSeconds(p.b.pid) - sysB0) / got) * 1e6;
    const datagrams = (await packetsSent(p.a)) - pk0;
    const perf = rec ? { perfSend: await perfSplit(rec[0]!, p.a.pid), perfRecv: await perfSplit(rec[1]!, p.b.pid) } : {};
    const seconds = r.atMs === null ? null : (r.atMs - t0) / 1000;
    // Not converged: the rate of what did arrive, up to its last change.
    const perS = r.count / ((r.lastChangeAt - t0) / 1000);
    return { entries: n, seconds, perS, got: r.count, polls: r.polls, cpuSendUs, cpuRecvUs, sysSendUs, sysRecvUs, datagrams, ...perf };
  });
}

interface LossResult { convergeS: number | null; missing: number }

async function lossy(kind: DaemonKind, n: number, boundMs: number): Promise<LossResult> {
  return withPair(kind, 'x', async (p) => {
    for (const ns of [p.fw1, p.fw2]) {
      ns.run('iptables', ['-w', '-A', 'INPUT', '-p', 'udp', '--dport', '3780', '-m', 'statistic', '--mode', 'random', '--probability', '0.2', '-j', 'DROP']);
    }
    const t0 = now();
    await inject(p, n);
    let count = 0;
    for (;;) {
      count = await p.b.cacheCount('external');
      if (count >= n) return { convergeS: (now() - t0) / 1000, missing: 0 };
      if (now() - t0 > boundMs) return { convergeS: null, missing: n - count };
      await sleep(50);
    }
  });
}

/** `--perf`: each ctsync daemon's CPU per event split by where perf found it (µs, its share of the CPU row). */
function perfRows(tag: string, c: { perfSend?: Record<string, number>; perfRecv?: Record<string, number> } | undefined,
  sendUs: number, recvUs: number, unit = 'event'): void {
  if (!c?.perfSend || !c.perfRecv) return;
  for (const [side, split, us] of [['sender', c.perfSend, sendUs], ['receiver', c.perfRecv, recvUs]] as const) {
    const total = Object.values(split).reduce((a, b) => a + b, 0) || 1;
    for (const [bucket, pct] of Object.entries(split).sort((x, y) => y[1] - x[1])) {
      rows.push({ workload: `CPU ${tag} (perf), ${side} per ${unit}: ${bucket}`, values: { ctsync: (us * pct) / total }, unit: 'µs', digits: 1, better: null });
    }
  }
}

/* ---------------- table ---------------- */

type Better = 'lower' | 'higher';
interface Row {
  workload: string;
  values: Partial<Record<DaemonKind, number | null>>;
  notes?: Partial<Record<DaemonKind, string>>;
  unit: string;
  digits: number;
  better: Better | null;
  /** Target description and check on (ctsync, conntrackd). */
  target?: { text: string; ok: (cts: number, ref: number) => boolean };
  text?: string;
}

const rows: Row[] = [];
const errors: string[] = [];

interface FailoverResult { takeoverMs: number; stallMs: number; worstStallMs: number; broken: number; runs: { takeoverMs: number; stallMs: number; bytes: number; ok: boolean }[] }

/**
 * The keepalived failover of the system test (test/system/keepalived-failover.test.ts), timed for
 * both daemons: a TCP counter stream client → outside VIP (DNAT) → server through fw1; fw1's LAN
 * links go down; keepalived moves the VIPs to fw2, whose notify runs `ctsync notify master` or,
 * for conntrackd, Debian's primary-backup.sh (-c, -f, -R, -B). The firewalls drop INVALID with
 * nf_conntrack_tcp_loose=0, so the stream resumes only once the committed entry is in fw2's kernel.
 */
async function failover(kind: DaemonKind, runs: number): Promise<FailoverResult> {
  const { HaTopology } = await import(join(REPO_ROOT, 'scripts', 'lib', 'topology.mjs')) as { HaTopology: HaTopologyCtor };
  const out: FailoverResult['runs'] = [];
  for (let i = 0; i < runs; i++) {
    await quietCpu();
    const t = new HaTopology({ tag: 'bf', daemon: kind });
    try {
      await t.start();
      const s = await t.startStream();
      // The stream's flow must be in fw2's external cache before fw1 fails.
      const until = now() + 10_000;
      while (!t.ctsync(1, ['-e'], true).stdout.includes('dport=8080') && now() < until) await sleep(50);
      await sleep(500);
      const t0 = Date.now();
      t.failLinks(0);
      let done: { t: number } | null = null;
      while (done === null && Date.now() - t0 < 15_000) {
        done = t.notifyEvent(1, /MASTER: end/, t0);
        if (done === null) await sleep(20);
      }
      if (done === null) throw new Error('fw2 notify master did not finish within 15 s');
      const resumeBy = Date.now() + 10_000;
      while ((s.status()?.lastReadAt ?? 0) <= done.t && Date.now() < resumeBy) await sleep(50);
      await sleep(700);
      const { sent, end } = await s.finish();
      const ok = s.error() === null && end !== null && end.ev === 'end' && end.ok && end.bytes === sent.bytes;
      out.push({ takeoverMs: done.t - t0, stallMs: end ? Number(end.maxGapMs) : NaN, bytes: end ? Number(end.bytes) : 0, ok });
    } finally {
      await t.cleanup();
      t.removeDir();
    }
  }
  const good = out.filter((r) => r.ok);
  return {
    takeoverMs: quantile(out.map((r) => r.takeoverMs), 0.5),
    stallMs: good.length ? quantile(good.map((r) => r.stallMs), 0.5) : NaN,
    worstStallMs: good.length ? Math.max(...good.map((r) => r.stallMs)) : NaN,
    broken: out.length - good.length,
    runs: out,
  };
}

function fmt(v: number | null | undefined, digits: number, unit: string): string {
  if (v === undefined) return 'n/a';
  if (v === null) return 'did not converge';
  const s = Math.abs(v) >= 10_000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(digits);
  return unit ? `${s} ${unit}` : s;
}

async function each<T>(what: string, fn: (k: DaemonKind) => Promise<T>): Promise<Partial<Record<DaemonKind, T>>> {
  const out: Partial<Record<DaemonKind, T>> = {};
  for (const k of KINDS) {
    log(`${what}: ${k} …`);
    const t = now();
    try {
      // The machine's own speed before and after (see machineCalibMs), for reading a run that
      // went slow: these have stayed alike around the runs that did so far.
      const c0 = machineCalibMs();
      out[k] = await fn(k);
      const c1 = machineCalibMs();
      log(`${what}: ${k} done in ${((now() - t) / 1000).toFixed(1)} s (machine probe ${c0.toFixed(1)} / ${c1.toFixed(1)} ms): ${JSON.stringify(out[k])}`);
    } catch (e) {
      const msg = `${what} / ${k}: ${(e as Error).message}`;
      errors.push(msg);
      log(`ERROR ${msg}`);
    }
  }
  return out;
}

function pick<T>(res: Partial<Record<DaemonKind, T>>, f: (r: T) => number | null): Partial<Record<DaemonKind, number | null>> {
  const o: Partial<Record<DaemonKind, number | null>> = {};
  for (const k of KINDS) if (res[k] !== undefined) o[k] = f(res[k]!);
  return o;
}

function noteShort(r: Partial<Record<DaemonKind, { entries: number }>>, n: number): Partial<Record<DaemonKind, string>> {
  return Object.fromEntries(KINDS.filter((k) => r[k] && r[k]!.entries < n).map((k) => [k, `on ${r[k]!.entries} entries (replication stalled short)`]));
}

const LE = (factor: number) => (c: number, r: number): boolean => c <= r * factor;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root');
  const started = new Date();
  const load0 = os.loadavg();
  const raw: Record<string, unknown> = {};
  // Compiled before it measures anything (its first runs are interpreted).
  for (let i = 0; i < 5; i++) machineCalibMs();

  if (wants('repl')) {
    for (const n of SIZES) {
      // The 100k rows carry the CPU target: median of CPU_ROUNDS rounds (see CPU_ROUNDS).
      const rounds = n === 100_000 ? CPU_ROUNDS : 1;
      const rr = await eachRounds(`replicate ${n}`, rounds, (k) => replicate(k, n), ['lost']);
      const r = rr.median;
      raw[`replicate_${n}`] = rounds > 1 ? rr : r;
      const tag = rounds > 1 ? `${n / 1000}k (median of ${rounds} rounds)` : `${n / 1000}k`;
      rows.push({ workload: `Replicate ${tag}: first create → all in fw2 external cache`, values: pick(r, (x) => x.convergeS), unit: 's', digits: 2, better: 'lower' });
      rows.push({ workload: `Replicate ${tag}: end-to-end rate`, values: pick(r, (x) => x.eventsPerS), unit: 'ev/s', digits: 0, better: 'higher' });
      rows.push({ workload: `Replicate ${tag}: entries lost`, values: pick(r, (x) => x.lost), unit: '', digits: 0, better: 'lower', target: { text: '0', ok: (c) => c === 0 } });
      rows.push({ workload: `Replicate ${tag}: last create → converged`, values: pick(r, (x) => x.tailMs), unit: 'ms', digits: 0, better: 'lower' });
      rows.push({ workload: `Replicate ${tag}: kernel create time (bench, for reference)`, values: pick(r, (x) => x.createS), unit: 's', digits: 2, better: null });
      rows.push({ workload: `CPU ${tag}: sender daemon per replicated event`, values: pick(r, (x) => x.cpuSendUs), unit: 'µs', digits: 1, better: 'lower', target: { text: '≤ 1×', ok: LE(1) } });
      rows.push({ workload: `CPU ${tag}: receiver daemon per replicated event (minus the STATS polls)`, values: pick(r, (x) => x.cpuRecvUs), unit: 'µs', digits: 1, better: 'lower', target: { text: '≤ 1×', ok: LE(1) } });
      rows.push({ workload: `CPU ${tag}: of which kernel time (syscalls), sender`, values: pick(r, (x) => x.sysSendUs), unit: 'µs', digits: 1, better: null });
      rows.push({ workload: `CPU ${tag}: of which kernel time (syscalls), receiver (polls included)`, values: pick(r, (x) => x.sysRecvUs), unit: 'µs', digits: 1, better: null });
      rows.push({ workload: `CPU ${tag}: of which main thread, sender (rest: GC/JIT helper threads)`, values: pick(r, (x) => x.mainSendUs), unit: 'µs', digits: 1, better: null });
      rows.push({ workload: `CPU ${tag}: of which main thread, receiver (polls included)`, values: pick(r, (x) => x.mainRecvUs), unit: 'µs', digits: 1, better: null });
      rows.push({ workload: `CPU ${tag}: sender+receiver per replicated event`, values: pick(r, (x) => x.cpuSendUs + x.cpuRecvUs), unit: 'µs', digits: 1, better: 'lower', target: { text: '≤ 1×', ok: LE(1) } });
      perfRows(tag, r.ctsync, r.ctsync?.cpuSendUs ?? 0, r.ctsync?.cpuRecvRawUs ?? 0);
      const rssTarget = n === 100_000 ? { text: '≤ 2×', ok: LE(2) } : undefined;
      rows.push({ workload: `Peak RSS ${tag}: sender (VmHWM)`, values: pick(r, (x) => x.rssSendMiB), unit: 'MiB', digits: 1, better: 'lower', ...(rssTarget ? { target: rssTarget } : {}) });
      rows.push({ workload: `Peak RSS ${tag}: receiver (VmHWM)`, values: pick(r, (x) => x.rssRecvMiB), unit: 'MiB', digits: 1, better: 'lower', ...(rssTarget ? { target: rssTarget } : {}) });
    }
    if (SIZES.includes(100_000) && !QUICK) {
      const n = 100_000;
      const rr = await eachRounds(`replicate ${n} after a ${WARM / 1000}k warm-up`, CPU_ROUNDS, (k) => replicate(k, n, undefined, WARM), ['lost']);
      const r = rr.median;
      raw[`replicate_${n}_warm`] = CPU_ROUNDS > 1 ? rr : r;
      const tag = `100k after a ${WARM / 1000}k warm-up burst${CPU_ROUNDS > 1 ? ` (median of ${CPU_ROUNDS} rounds)` : ''}`;
      rows.push({ workload: `Replicate ${tag}: entries lost`, values: pick(r, (x) => x.lost), unit: '', digits: 0, better: 'lower', target: { text: '0', ok: (c) => c === 0 } });
      rows.push({ workload: `CPU ${tag}: sender daemon per replicated event`, values: pick(r, (x) => x.cpuSendUs), unit: 'µs', digits: 1, better: 'lower' });
      rows.push({ workload: `CPU ${tag}: receiver daemon per replicated event (minus the STATS polls)`, values: pick(r, (x) => x.cpuRecvUs), unit: 'µs', digits: 1, better: 'lower' });
      rows.push({ workload: `CPU ${tag}: sender+receiver per replicated event`, values: pick(r, (x) => x.cpuSendUs + x.cpuRecvUs), unit: 'µs', digits: 1, better: 'lower' });
      perfRows(tag, r.ctsync, r.ctsync?.cpuSendUs ?? 0, r.ctsync?.cpuRecvRawUs ?? 0);
    }
  }
  if (wants('commit')) {
    const r = await each(`commit ${BIG}`, (k) => commit(k, BIG, true));
    const live = await each(`commit ${BIG} (fw1's daemon running)`, (k) => commit(k, BIG, false));
    raw.commit = r;
    raw.commitFw1Running = live;
    const tag = `${BIG / 1000}k`;
    // The target is on the rate: if ctsync's replication stalled short it commits fewer entries than conntrackd.
    rows.push({ workload: `Commit ${tag} on fw2 (fw1's daemon stopped, as after a failover): until all in kernel`, values: pick(r, (x) => x.kernelS), unit: 's', digits: 2, better: 'lower', notes: noteShort(r, BIG) });
    rows.push({ workload: `Commit ${tag} on fw2: rate (target: time ≤ 0.4×, i.e. rate ≥ 2.5×)`, values: pick(r, (x) => x.perS), unit: 'entries/s', digits: 0, better: 'higher',
      target: { text: '≥ 2.5×', ok: (c, ref) => c >= 2.5 * ref } });
    rows.push({ workload: `Commit ${tag} on fw2: until the -c request returns`, values: pick(r, (x) => x.replyS), unit: 's', digits: 2, better: 'lower' });
    rows.push({ workload: `Commit ${tag} on fw2 with fw1's daemon running (one kernel: fw2 builds an event per entry for fw1's listener): until all in kernel`,
      values: pick(live, (x) => x.kernelS), unit: 's', digits: 2, better: 'lower', notes: noteShort(live, BIG) });
  }
  if (wants('latency')) {
    // Rounds alternate between the daemons (conntrackd, ctsync, conntrackd, ...) and each figure is
    // the median over the rounds: the host's load drifts over minutes, and one round of each once
    // disagreed with the next on which daemon was faster.
    const rounds: Partial<Record<DaemonKind, LatencyResult>>[] = [];
    for (let i = 0; i < LAT_ROUNDS; i++) rounds.push(await each(`latency ×${LAT_SAMPLES}, round ${i + 1}/${LAT_ROUNDS}`, (k) => latency(k, LAT_SAMPLES)));
    const r = medianLatency(rounds);
    raw.latency = { median: r, rounds };
    rows.push({ workload: `Single-flow latency, create → datagram on fw2 sync0 (tcpdump), p50 (median of ${LAT_ROUNDS} rounds)`, values: pick(r, (x) => x.wireP50Ms), unit: 'ms', digits: 3, better: 'lower' });
    rows.push({ workload: `Single-flow latency, create → datagram on fw2 sync0 (tcpdump), p99 (median of ${LAT_ROUNDS} rounds)`, values: pick(r, (x) => x.wireP99Ms), unit: 'ms', digits: 3, better: 'lower', target: { text: '≤ 1×', ok: LE(1) } });
    rows.push({ workload: `Single-flow latency, create → in fw2 external cache (STATS poll), p50 (median of ${LAT_ROUNDS} rounds)`, values: pick(r, (x) => x.p50Ms), unit: 'ms', digits: 2, better: 'lower' });
    rows.push({ workload: `Single-flow latency, create → in fw2 external cache (STATS poll), p99 (median of ${LAT_ROUNDS} rounds)`, values: pick(r, (x) => x.p99Ms), unit: 'ms', digits: 2, better: 'lower', target: { text: '≤ 1×', ok: LE(1) } });
    rows.push({ workload: 'Single-flow latency: samples never seen (wire 2 s + cache 5 s)', values: pick(r, (x) => x.missed + x.wireMissed), unit: '', digits: 0, better: 'lower', target: { text: '0', ok: (c) => c === 0 } });
    rows.push({ workload: 'Single-flow latency (STATS poll): resolution (median interval between the last miss and the hit)', values: pick(r, (x) => x.pollMs), unit: 'ms', digits: 2, better: null });
    rows.push({ workload: 'Daemon CPU per STATS request (the poll\'s own cost)', values: pick(r, (x) => x.statsCostMs), unit: 'ms', digits: 3, better: 'lower' });
  }
  if (wants('resync')) {
    const rr = await eachRounds(`resync ${BIG}`, CPU_ROUNDS, (k) => resync(k, BIG));
    const r = rr.median;
    raw.resync = CPU_ROUNDS > 1 ? rr : r;
    const tag = CPU_ROUNDS > 1 ? `${BIG / 1000}k (median of ${CPU_ROUNDS} rounds)` : `${BIG / 1000}k`;
    rows.push({ workload: `Bulk resync ${tag} (fw2 -f external, -n): time`, values: pick(r, (x) => x.seconds), unit: 's', digits: 3, better: 'lower' });
    rows.push({ workload: `Bulk resync ${tag}: CPU per entry, sender (fw1)`, values: pick(r, (x) => x.cpuSendUs), unit: 'µs', digits: 1, better: 'lower' });
    rows.push({ workload: `Bulk resync ${tag}: CPU per entry, receiver (fw2, its STATS polls included)`, values: pick(r, (x) => x.cpuRecvUs), unit: 'µs', digits: 1, better: 'lower' });
    rows.push({ workload: `Bulk resync ${tag}: of which kernel time (syscalls), sender`, values: pick(r, (x) => x.sysSendUs), unit: 'µs', digits: 1, better: null });
    rows.push({ workload: `Bulk resync ${tag}: of which kernel time (syscalls), receiver`, values: pick(r, (x) => x.sysRecvUs), unit: 'µs', digits: 1, better: null });
    rows.push({ workload: `Bulk resync ${tag}: datagrams fw1 sent (its -s "Pckts sent")`, values: pick(r, (x) => x.datagrams), unit: '', digits: 0, better: null });
    rows.push({ workload: `Bulk resync ${tag}: rate`, values: pick(r, (x) => x.perS), unit: 'entries/s', digits: 0, better: 'higher', target: { text: '≥ 1×', ok: (c, ref) => c >= ref },
      notes: Object.fromEntries(KINDS.filter((k) => r[k] && r[k]!.got < BIG).map((k) => [k, `only ${r[k]!.got} arrived`])) });
    perfRows(`bulk resync ${tag}`, r.ctsync, r.ctsync?.cpuSendUs ?? 0, r.ctsync?.cpuRecvUs ?? 0, 'entry');
  }
  if (wants('loss')) {
    const r = await each(`loss 20% ${LOSS_N}`, (k) => lossy(k, LOSS_N, LOSS_BOUND_MS));
    raw.loss = r;
    rows.push({ workload: `20% sync-link loss, ${LOSS_N / 1000}k burst: time to converge`, values: pick(r, (x) => x.convergeS), unit: 's', digits: 2, better: 'lower' });
    rows.push({ workload: `20% sync-link loss, ${LOSS_N / 1000}k burst: missing after ${LOSS_BOUND_MS / 1000} s`, values: pick(r, (x) => x.missing), unit: '', digits: 0, better: 'lower', target: { text: '0', ok: (c) => c === 0 } });
  }
  if (wants('mixed') && KINDS.length === 2) {
    // Interoperability under load, both directions (the interop tests prove the contents).
    const r: Record<string, ReplResult> = {};
    for (const pk of [['conntrackd', 'ctsync'], ['ctsync', 'conntrackd']] as const) {
      log(`mixed pair ${pk[0]} → ${pk[1]} ${BIG} …`);
      try {
        r[`${pk[0]}->${pk[1]}`] = await replicate(pk, BIG);
      } catch (e) {
        errors.push(`mixed ${pk[0]} → ${pk[1]}: ${(e as Error).message}`);
      }
    }
    raw.mixed = r;
    const cell = (x: ReplResult | undefined): string => x === undefined ? 'error'
      : `${x.convergeS === null ? 'did not converge' : `${x.convergeS.toFixed(2)} s`}, lost ${x.lost}`;
    rows.push({ workload: `Mixed pair, ${BIG / 1000}k replicated (fw1 → fw2)`, values: {}, unit: '', digits: 0, better: null,
      text: `conntrackd → ctsync: ${cell(r['conntrackd->ctsync'])}; ctsync → conntrackd: ${cell(r['ctsync->conntrackd'])}` });
  }
  if (wants('seal')) {
    // Issue 7's target: sealing (Ctsync { KeyFile }) costs at most 15% of end-to-end events/s.
    const keyFile = makeKeyFile();
    try {
      log(`sealed link ${BIG}: ctsync plain then ctsync with KeyFile …`);
      const plain = await replicate('ctsync', BIG);
      const sealed = await replicate('ctsync', BIG, keyFile);
      raw.seal = { plain, sealed };
      const pr = plain.eventsPerS;
      const sr = sealed.eventsPerS;
      const slower = pr && sr ? (1 - sr / pr) * 100 : null;
      const cpu = (r: ReplResult): string => `${(r.cpuSendUs + r.cpuRecvUs).toFixed(1)} µs`;
      rows.push({ workload: `Sealed sync link, ${BIG / 1000}k (ctsync plain vs ctsync KeyFile)`, values: {}, unit: '', digits: 0, better: null,
        text: `plain ${fmt(pr, 0, 'ev/s')}, sealed ${fmt(sr, 0, 'ev/s')}: ${slower === null ? 'n/a' : `${slower.toFixed(1)}% slower`}`
          + ` (target ≤ 15%: ${slower !== null && slower <= 15 ? 'met' : '**missed**'}); CPU per event ${cpu(plain)} → ${cpu(sealed)};`
          + ` lost ${plain.lost} / ${sealed.lost}` });
    } finally {
      rmSync(dirname(keyFile), { recursive: true, force: true });
    }
  }
  if (wants('failover')) {
    const r = await each(`failover ×${FAILOVERS}`, (k) => failover(k, FAILOVERS));
    raw.failover = r;
    rows.push({ workload: `Failover (fw1 LAN links down, keepalived): takeover = fault → fw2 notify master done, median of ${FAILOVERS}`, values: pick(r, (x) => x.takeoverMs), unit: 'ms', digits: 0, better: 'lower' });
    rows.push({ workload: `Failover: live TCP stream (DNAT) stall at the receiver, median of ${FAILOVERS}`, values: pick(r, (x) => x.stallMs), unit: 'ms', digits: 0, better: 'lower' });
    rows.push({ workload: 'Failover: worst stall', values: pick(r, (x) => x.worstStallMs), unit: 'ms', digits: 0, better: 'lower' });
    rows.push({ workload: 'Failover: streams broken (reset, wrong or missing bytes)', values: pick(r, (x) => x.broken), unit: '', digits: 0, better: 'lower', target: { text: '0', ok: (c) => c === 0 } });
  }

  const load1 = os.loadavg();
  const md = render(started, load0, load1);
  process.stdout.write(md);
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  // Date and UTC time in the name: a later run (or a partial one) never overwrites a kept result.
  const stamp = `${started.toISOString().slice(0, 10)}-${started.toISOString().slice(11, 16).replace(':', '')}`;
  // Subsets (--only, --kinds, --sizes) are working runs: kept out of git (bench/results/partial/ is ignored).
  const partial = ONLY || argv.some((a) => a.startsWith('--kinds=') || a.startsWith('--sizes='));
  const base = join(partial ? join(dir, 'partial') : dir, `${stamp}-sync${QUICK ? '-quick' : ''}`);
  mkdirSync(dirname(base), { recursive: true });
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.json`, JSON.stringify({ started: started.toISOString(), command: commandLine(), machine: machine(load0, load1), quick: QUICK, rows: rows.map(jsonRow), raw, errors }, null, 2) + '\n');
  log(`written ${base}.md and .json`);
}

function commandLine(): string {
  return ['node', ...process.argv.slice(1).map((a) => a.replace(`${REPO_ROOT}/`, ''))].join(' ');
}

function machine(l0: number[], l1: number[]): Record<string, string> {
  const sh = (c: string): string => { try { return execSync(c, { encoding: 'utf8' }).trim(); } catch { return '?'; } };
  return {
    nproc: String(os.cpus().length),
    cpu: os.cpus()[0]?.model ?? '?',
    kernel: os.release(),
    node: process.version,
    conntrackd: sh('conntrackd -v 2>&1 | head -1'),
    loadBefore: l0.map((x) => x.toFixed(2)).join(' '),
    loadAfter: l1.map((x) => x.toFixed(2)).join(' '),
  };
}

function ratioOf(r: Row): number | null {
  const a = r.values.conntrackd;
  const b = r.values.ctsync;
  if (a == null || b == null) return null;
  if (a === 0) return b === 0 ? 1 : null;
  return b / a;
}

function verdict(r: Row): string {
  if (!r.target) return '';
  const a = r.values.conntrackd;
  const b = r.values.ctsync;
  if (b === undefined) return `${r.target.text}: not run`;
  if (b === null) return `${r.target.text}: **missed** (did not converge)`;
  if (a == null && r.target.text !== '0') return `${r.target.text}: n/a (no reference)`;
  return `${r.target.text}: ${r.target.ok(b, a ?? 0) ? 'met' : '**missed**'}`;
}

function jsonRow(r: Row): Record<string, unknown> {
  return { workload: r.workload, unit: r.unit, better: r.better, conntrackd: r.values.conntrackd ?? null, ctsync: r.values.ctsync ?? null, ratio: ratioOf(r), target: r.target?.text ?? null, verdict: verdict(r) || null, text: r.text ?? null };
}

function render(started: Date, l0: number[], l1: number[]): string {
  const m = machine(l0, l1);
  const lines: string[] = [];
  lines.push(`# ctsync vs conntrackd: sync benchmark${QUICK ? ' (--quick)' : ''}`, '');
  lines.push(`- date: ${started.toISOString()}`);
  lines.push(`- command: \`${commandLine()}\` (in ${REPO_ROOT})`);
  lines.push(`- machine: ${m.nproc} CPUs (${m.cpu}), kernel ${m.kernel}, node ${m.node}, ${m.conntrackd}`);
  lines.push(`- load average before: ${m.loadBefore}; after: ${m.loadAfter} (shared machine: compare ratios, not absolute figures)`);
  lines.push('- method: for every workload a fresh fw1/fw2 namespace pair per daemon (conntrackd first, then ctsync), started once the CPUs are ≥85% idle over 200 ms (the kernel tears deleted namespaces and their entries down after the delete returns), same generated FTFW/UDP config; entries created on fw1 in netlink batches by the bench; fw2 state read with the raw STATS request on the control socket ("cache external: current active connections"), kernel counts from /proc/<pid>/net/stat/nf_conntrack; CPU = utime+stime(+children) from /proc/<pid>/stat over the run; RSS = VmHWM at the end of the run.');
  lines.push('');
  lines.push('| workload | conntrackd | ctsync | ratio ctsync/conntrackd | better | target |');
  lines.push('|---|---|---|---|---|---|');
  for (const r of rows) {
    if (r.text) { lines.push(`| ${r.workload} | — | — | — | — | ${r.text} |`); continue; }
    const ratio = ratioOf(r);
    const cell = (k: DaemonKind): string => fmt(r.values[k], r.digits, r.unit) + (r.notes?.[k] ? ` (${r.notes[k]})` : '');
    lines.push(`| ${r.workload} | ${cell('conntrackd')} | ${cell('ctsync')} | ${ratio === null ? '—' : `${ratio.toFixed(2)}×`} | ${r.better ? `${r.better} is better` : ''} | ${verdict(r)} |`);
  }
  if (errors.length) {
    lines.push('', 'Errors:', ...errors.map((e) => `- ${e}`));
  }
  lines.push('');
  return lines.join('\n');
}

main().then(() => { cleanupAllSync(); process.exit(0); }, (e: unknown) => {
  console.error(e);
  cleanupAllSync();
  process.exit(1);
});
