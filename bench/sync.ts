// Replication benchmark: the same workloads against a conntrackd 1.4.7 FTFW
// pair, then a ctsync pair (fresh namespaces for every workload and daemon),
// in one invocation, printed as one table with the ratio ctsync/conntrackd.
// The machine is shared and noisy: read the ratios, not the absolute figures.
//
//   npm run build && node dist/bench/sync.js [--quick] [--only=repl,commit,latency,resync,loss]
//
// Needs root (namespaces, CAP_NET_ADMIN), conntrackd and iptables in PATH.
// All state queries go straight to each daemon's UNIX control socket (the
// conntrackd request protocol, one int32), so neither daemon pays a client
// process start per poll; kernel counts come from /proc/<pid>/net/stat.
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { CTL } from '../src/control/codes.js';
import { CtClient } from '../src/netlink/client.js';
import { cleanupAllSync, makePair, REPO_ROOT, sleep, type DaemonKind, type Pair, type SyncNode } from './lib/lab.js';
import { cpuSeconds, kernelCount, peakRssMiB, quantile, tcpEntries } from './lib/probe.js';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const ONLY = argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const KINDS: DaemonKind[] = ['conntrackd', 'ctsync'];
const SIZES = QUICK ? [10_000] : [10_000, 100_000, 250_000];
const BIG = QUICK ? 10_000 : 100_000;
const LAT_SAMPLES = QUICK ? 40 : 300;
const LOSS_N = 10_000;
const LOSS_BOUND_MS = QUICK ? 20_000 : 60_000;
/** Give up on replication when the count has not moved for this long. */
const STALL_MS = 15_000;
const now = (): number => performance.now();

const wants = (w: string): boolean => !ONLY || ONLY.includes(w);

process.on('SIGINT', () => { cleanupAllSync(); process.exit(130); });
process.on('SIGTERM', () => { cleanupAllSync(); process.exit(143); });
// Hard bound on the whole run: namespaces never outlive the bench.
setTimeout(() => { console.error('bench: global time bound (25 min) reached'); cleanupAllSync(); process.exit(2); }, 25 * 60_000).unref();

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function withPair<T>(kind: DaemonKind, tag: string, fn: (p: Pair) => Promise<T>): Promise<T> {
  const p = makePair(kind, tag);
  try {
    await p.a.start();
    await p.b.start();
    await sleep(500); // FTFW hello/alive exchange
    return await fn(p);
  } finally {
    await p.cleanup();
  }
}

interface WaitResult { count: number; atMs: number | null; polls: number }

/**
 * Polls the node's external cache count until it reaches `target`. Gives up
 * after `boundMs` from `startMs`, or when the count has not changed for
 * STALL_MS once `quietFrom()` (e.g. the creates are done) is set.
 */
async function waitExternal(node: SyncNode, target: number, opts: { startMs: number; boundMs: number; stepMs: number; quietFrom?: () => boolean }): Promise<WaitResult> {
  let last = -1;
  let lastChange = now();
  let polls = 0;
  for (;;) {
    const c = await node.cacheCount('external');
    polls++;
    const t = now();
    if (c >= target) return { count: c, atMs: t, polls };
    if (c !== last) { last = c; lastChange = t; }
    if (t - opts.startMs > opts.boundMs) return { count: c, atMs: null, polls };
    if ((opts.quietFrom?.() ?? true) && t - lastChange > STALL_MS) return { count: c, atMs: null, polls };
    await sleep(opts.stepMs);
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

interface ReplResult {
  convergeS: number | null; eventsPerS: number | null; lost: number; tailMs: number | null; createS: number;
  cpuSendUs: number; cpuRecvUs: number; rssSendMiB: number; rssRecvMiB: number;
}

async function replicate(kind: DaemonKind, n: number): Promise<ReplResult> {
  return withPair(kind, 'r', async (p) => {
    const entries = tcpEntries(n);
    const client = new CtClient({ netns: p.fw1.path });
    try {
      const cpuA0 = cpuSeconds(p.a.pid);
      const cpuB0 = cpuSeconds(p.b.pid);
      let tCreated = 0;
      const t0 = now();
      const created = client.create(entries).then((r) => {
        tCreated = now();
        if (r.failed.length) throw new Error(`${r.failed.length} creates failed, first errno ${r.failed[0]!.errno}`);
      });
      const w = await waitExternal(p.b, n, { startMs: t0, boundMs: 60_000 + n / 2, stepMs: 20, quietFrom: () => tCreated > 0 });
      await created;
      const cpuA = cpuSeconds(p.a.pid) - cpuA0;
      const cpuB = cpuSeconds(p.b.pid) - cpuB0;
      const convergeS = w.atMs === null ? null : (w.atMs - t0) / 1000;
      return {
        convergeS,
        eventsPerS: convergeS === null ? null : n / convergeS,
        lost: n - Math.min(n, w.count),
        tailMs: w.atMs === null ? null : w.atMs - tCreated,
        createS: (tCreated - t0) / 1000,
        cpuSendUs: (cpuA / n) * 1e6,
        cpuRecvUs: (cpuB / n) * 1e6,
        rssSendMiB: peakRssMiB(p.a.pid),
        rssRecvMiB: peakRssMiB(p.b.pid),
      };
    } finally {
      client.close();
    }
  });
}

interface CommitResult { kernelS: number | null; replyS: number | null; inKernel: number }

async function commit(kind: DaemonKind, n: number): Promise<CommitResult> {
  return withPair(kind, 'c', async (p) => {
    await inject(p, n);
    const w = await waitExternal(p.b, n, { startMs: now(), boundMs: 180_000, stepMs: 50 });
    if (w.atMs === null) throw new Error(`only ${w.count}/${n} reached fw2's external cache before the commit`);
    await sleep(300);
    const base = kernelCount(p.b.pid);
    let replyAt: number | null = null;
    const t0 = now();
    // What `-c` sends (ALL_COMMIT); the reply is the end of the client's wait.
    const reply = p.b.request(CTL.ALL_COMMIT, 300_000).then(() => { replyAt = now(); }, (e: Error) => { log(`${kind} commit request: ${e.message}`); });
    let kernelAt: number | null = null;
    let count = 0;
    while (now() - t0 < 120_000) {
      count = kernelCount(p.b.pid) - base;
      if (count >= n) { kernelAt = now(); break; }
      await sleep(5);
    }
    await Promise.race([reply, sleep(Math.max(0, 120_000 - (now() - t0)))]);
    return { kernelS: kernelAt === null ? null : (kernelAt - t0) / 1000, replyS: replyAt === null ? null : (replyAt - t0) / 1000, inKernel: count };
  });
}

interface LatencyResult { p50Ms: number; p99Ms: number; maxMs: number; missed: number; samples: number; pollMs: number; rttMs: number }

async function latency(kind: DaemonKind, samples: number): Promise<LatencyResult> {
  return withPair(kind, 'l', async (p) => {
    const client = new CtClient({ netns: p.fw1.path });
    try {
      const lat: number[] = [];
      const pollRtt: number[] = [];
      const gaps: number[] = [];
      let missed = 0;
      const warm = 10;
      let expected = 0;
      for (let i = 0; i < warm + samples; i++) {
        const e = tcpEntries(1, i);
        const t0 = now();
        const r = await client.create(e);
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
          if (c >= expected) { seenAt = (Math.max(lastMiss, t0) + answered) / 2; gaps.push(answered - lastMiss); break; }
          lastMiss = answered;
          await sleep(1);
        }
        if (i >= warm) {
          if (seenAt === null) missed++; else lat.push(seenAt - t0);
        }
        if (seenAt === null) expected = await p.b.cacheCount('external');
        await sleep(5);
      }
      return {
        p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99), maxMs: Math.max(...lat), missed, samples,
        pollMs: quantile(gaps, 0.5), rttMs: quantile(pollRtt, 0.5),
      };
    } finally {
      client.close();
    }
  });
}

interface ResyncResult { seconds: number | null; perS: number | null; got: number }

async function resync(kind: DaemonKind, n: number): Promise<ResyncResult> {
  return withPair(kind, 's', async (p) => {
    await inject(p, n);
    const w = await waitExternal(p.b, n, { startMs: now(), boundMs: 180_000, stepMs: 50 });
    if (w.atMs === null) throw new Error(`only ${w.count}/${n} reached fw2's external cache before the resync`);
    await p.b.request(CTL.CT_FLUSH_EXT_CACHE, 60_000); // -f external
    const tf = now();
    while ((await p.b.cacheCount('external')) !== 0) {
      if (now() - tf > 30_000) throw new Error('external cache not empty 30 s after -f external');
      await sleep(20);
    }
    await sleep(200);
    const t0 = now();
    await p.b.request(CTL.REQUEST_DUMP, 60_000); // -n
    const r = await waitExternal(p.b, n, { startMs: t0, boundMs: 120_000, stepMs: 10 });
    const seconds = r.atMs === null ? null : (r.atMs - t0) / 1000;
    return { seconds, perS: seconds === null ? null : n / seconds, got: r.count };
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
      out[k] = await fn(k);
      log(`${what}: ${k} done in ${((now() - t) / 1000).toFixed(1)} s: ${JSON.stringify(out[k])}`);
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

const LE = (factor: number) => (c: number, r: number): boolean => c <= r * factor;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root');
  const started = new Date();
  const load0 = os.loadavg();
  const raw: Record<string, unknown> = {};

  if (wants('repl')) {
    for (const n of SIZES) {
      const r = await each(`replicate ${n}`, (k) => replicate(k, n));
      raw[`replicate_${n}`] = r;
      const tag = `${n / 1000}k`;
      rows.push({ workload: `Replicate ${tag}: first create → all in fw2 external cache`, values: pick(r, (x) => x.convergeS), unit: 's', digits: 2, better: 'lower' });
      rows.push({ workload: `Replicate ${tag}: end-to-end rate`, values: pick(r, (x) => x.eventsPerS), unit: 'ev/s', digits: 0, better: 'higher' });
      rows.push({ workload: `Replicate ${tag}: entries lost`, values: pick(r, (x) => x.lost), unit: '', digits: 0, better: 'lower', target: { text: '0', ok: (c) => c === 0 } });
      rows.push({ workload: `Replicate ${tag}: last create → converged`, values: pick(r, (x) => x.tailMs), unit: 'ms', digits: 0, better: 'lower' });
      rows.push({ workload: `Replicate ${tag}: kernel create time (bench, for reference)`, values: pick(r, (x) => x.createS), unit: 's', digits: 2, better: null });
      rows.push({ workload: `CPU ${tag}: sender daemon per event`, values: pick(r, (x) => x.cpuSendUs), unit: 'µs', digits: 1, better: 'lower', target: { text: '≤ 1×', ok: LE(1) } });
      rows.push({ workload: `CPU ${tag}: receiver daemon per event`, values: pick(r, (x) => x.cpuRecvUs), unit: 'µs', digits: 1, better: 'lower', target: { text: '≤ 1×', ok: LE(1) } });
      rows.push({ workload: `CPU ${tag}: sender+receiver per event`, values: pick(r, (x) => x.cpuSendUs + x.cpuRecvUs), unit: 'µs', digits: 1, better: 'lower', target: { text: '≤ 1×', ok: LE(1) } });
      const rssTarget = n === 100_000 ? { text: '≤ 2×', ok: LE(2) } : undefined;
      rows.push({ workload: `Peak RSS ${tag}: sender (VmHWM)`, values: pick(r, (x) => x.rssSendMiB), unit: 'MiB', digits: 1, better: 'lower', ...(rssTarget ? { target: rssTarget } : {}) });
      rows.push({ workload: `Peak RSS ${tag}: receiver (VmHWM)`, values: pick(r, (x) => x.rssRecvMiB), unit: 'MiB', digits: 1, better: 'lower', ...(rssTarget ? { target: rssTarget } : {}) });
    }
  }
  if (wants('commit')) {
    const r = await each(`commit ${BIG}`, (k) => commit(k, BIG));
    raw.commit = r;
    const tag = `${BIG / 1000}k`;
    rows.push({ workload: `Commit ${tag} on fw2: until all in kernel`, values: pick(r, (x) => x.kernelS), unit: 's', digits: 2, better: 'lower', target: { text: '≤ 0.4×', ok: LE(0.4) } });
    rows.push({ workload: `Commit ${tag} on fw2: until the -c request returns`, values: pick(r, (x) => x.replyS), unit: 's', digits: 2, better: 'lower' });
  }
  if (wants('latency')) {
    const r = await each(`latency ×${LAT_SAMPLES}`, (k) => latency(k, LAT_SAMPLES));
    raw.latency = r;
    rows.push({ workload: `Single-flow latency p50 (${LAT_SAMPLES} creates)`, values: pick(r, (x) => x.p50Ms), unit: 'ms', digits: 2, better: 'lower' });
    rows.push({ workload: `Single-flow latency p99 (${LAT_SAMPLES} creates)`, values: pick(r, (x) => x.p99Ms), unit: 'ms', digits: 2, better: 'lower', target: { text: '≤ 1×', ok: LE(1) } });
    rows.push({ workload: 'Single-flow latency: samples not seen within 5 s', values: pick(r, (x) => x.missed), unit: '', digits: 0, better: 'lower', target: { text: '0', ok: (c) => c === 0 } });
    rows.push({ workload: 'Single-flow latency: resolution (median interval between the last miss and the hit)', values: pick(r, (x) => x.pollMs), unit: 'ms', digits: 2, better: null });
  }
  if (wants('resync')) {
    const r = await each(`resync ${BIG}`, (k) => resync(k, BIG));
    raw.resync = r;
    const tag = `${BIG / 1000}k`;
    rows.push({ workload: `Bulk resync ${tag} (fw2 -f external, -n): time`, values: pick(r, (x) => x.seconds), unit: 's', digits: 2, better: 'lower' });
    rows.push({ workload: `Bulk resync ${tag}: rate`, values: pick(r, (x) => x.perS), unit: 'entries/s', digits: 0, better: 'higher', target: { text: '≥ 1×', ok: (c, ref) => c >= ref } });
  }
  if (wants('loss')) {
    const r = await each(`loss 20% ${LOSS_N}`, (k) => lossy(k, LOSS_N, LOSS_BOUND_MS));
    raw.loss = r;
    rows.push({ workload: `20% sync-link loss, ${LOSS_N / 1000}k burst: time to converge`, values: pick(r, (x) => x.convergeS), unit: 's', digits: 2, better: 'lower' });
    rows.push({ workload: `20% sync-link loss, ${LOSS_N / 1000}k burst: missing after ${LOSS_BOUND_MS / 1000} s`, values: pick(r, (x) => x.missing), unit: '', digits: 0, better: 'lower', target: { text: '0', ok: (c) => c === 0 } });
  }
  rows.push({ workload: 'Failover TCP stall', values: {}, unit: '', digits: 0, better: null, text: 'covered by the keepalived failover test (another engineer), not measured here' });

  const load1 = os.loadavg();
  const md = render(started, load0, load1);
  process.stdout.write(md);
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${started.toISOString().slice(0, 10)}-sync${QUICK ? '-quick' : ''}`);
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
  lines.push('- method: for every workload a fresh fw1/fw2 namespace pair per daemon (conntrackd first, then ctsync), same generated FTFW/UDP config; entries created on fw1 in netlink batches by the bench; fw2 state read with the raw STATS request on the control socket ("cache external: current active connections"), kernel counts from /proc/<pid>/net/stat/nf_conntrack; CPU = utime+stime(+children) from /proc/<pid>/stat over the run; RSS = VmHWM at the end of the run.');
  lines.push('');
  lines.push('| workload | conntrackd | ctsync | ratio ctsync/conntrackd | better | target |');
  lines.push('|---|---|---|---|---|---|');
  for (const r of rows) {
    if (r.text) { lines.push(`| ${r.workload} | — | — | — | — | ${r.text} |`); continue; }
    const ratio = ratioOf(r);
    lines.push(`| ${r.workload} | ${fmt(r.values.conntrackd, r.digits, r.unit)} | ${fmt(r.values.ctsync, r.digits, r.unit)} | ${ratio === null ? '—' : `${ratio.toFixed(2)}×`} | ${r.better ? `${r.better} is better` : ''} | ${verdict(r)} |`);
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
