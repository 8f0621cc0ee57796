// Cheap measurements without spawning anything: CPU and peak RSS from /proc,
// the kernel conntrack count of a daemon's netns, quantiles.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime+stime (+ waited-for children: conntrackd forks for some jobs) of a pid, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": state is field 3; utime 14, stime 15, cutime 16, cstime 17.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [ut, st, cut, cst] = [f[11], f[12], f[13], f[14]].map(Number);
  return (ut! + st! + cut! + cst!) / CLK_TCK;
}

/** System (kernel) CPU seconds of a process, waited children included: syscalls, and the softirq work they run inline. */
export function systemCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[12]) + Number(f[14])) / CLK_TCK;
}

/**
 * CPU seconds of the process's own main thread (/proc/<pid>/task/<pid>/stat).
 * For Node the rest of a process's CPU is V8's helper threads (concurrent and
 * parallel GC, background JIT compilation) and libuv's pool: the split says
 * whether a cost is in the event path or in the runtime beside it.
 */
export function mainThreadCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** VmHWM (peak resident set) in MiB. */
export function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The CPU the main thread last ran on (one read of its stat: the bench samples it every 10 ms during a burst). */
export function mainThreadCpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[36]);
}

/** The main thread's context switches so far (voluntary: it waited; involuntary: it was preempted) and the CPU it last ran on. */
export function mainThreadSched(pid: number): { voluntary: number; involuntary: number; cpu: number } {
  const st = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  const v = /voluntary_ctxt_switches:\s+(\d+)/.exec(st);
  const n = /nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st);
  return { voluntary: Number(v?.[1] ?? NaN), involuntary: Number(n?.[1] ?? NaN), cpu: mainThreadCpu(pid) };
}

/** UDP counters of the netns `pid` lives in (/proc/<pid>/net/snmp): datagrams in, and those dropped for a full receive buffer. */
export function udpCounters(pid: number): { inDatagrams: number; rcvbufErrors: number } {
  const lines = readFileSync(`/proc/${pid}/net/snmp`, 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]!.split(/\s+/);
  const vals = lines[1]!.split(/\s+/).map(Number);
  return { inDatagrams: vals[names.indexOf('InDatagrams')]!, rcvbufErrors: vals[names.indexOf('RcvbufErrors')]! };
}

/**
 * Entries in the conntrack table of the netns `pid` lives in: the "entries"
 * column of /proc/<pid>/net/stat/nf_conntrack (per netns, same on every CPU
 * row). Same number as `conntrack -C` without spawning a process.
 */
export function kernelCount(pid: number): number {
  const lines = readFileSync(`/proc/${pid}/net/stat/nf_conntrack`, 'utf8').split('\n');
  return parseInt(lines[1]!.trim().split(/\s+/)[0]!, 16);
}

export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** Idle and total jiffies of all CPUs (/proc/stat's "cpu" line; iowait counts as idle). */
function cpuJiffies(): { idle: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { idle: f[3]! + f[4]!, total };
}

/**
 * Waits until the machine's CPUs were at least `idleShare` idle over a
 * `windowMs` window, for at most `boundMs`; returns the ms waited. The kernel
 * tears a deleted network namespace down after `ip netns del` has returned,
 * its conntrack entries with it: a pair started during the previous run's
 * teardown (100k+ entries) ran at half its rate, kernel time included (the
 * sealed row's plain run, twice in full runs).
 */
export async function quietCpu(idleShare = 0.85, windowMs = 200, boundMs = 15_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const a = cpuJiffies();
    await new Promise((r) => setTimeout(r, windowMs));
    const b = cpuJiffies();
    const dt = b.total - a.total;
    if (dt > 0 && (b.idle - a.idle) / dt >= idleShare) return performance.now() - t0;
    if (performance.now() - t0 > boundMs) return performance.now() - t0;
  }
}

let calibSink = 0;
/** 64 MiB of dependent-load chains (well beyond this machine's caches), built on first use. */
let chase: Int32Array | null = null;

/**
 * This process's time for a fixed piece of work, ms (median of three): an
 * integer loop and 100k dependent loads spread over 64 MiB. On a shared VM the
 * host sometimes runs everything slower for seconds at a time (seen: a round's
 * kernel create time and both daemons' CPU per event doubled, the next round
 * normal); the daemons' work is memory-bound, so the probe is mostly memory
 * loads. It measures the machine around a run, whatever the daemons do.
 */
export function machineCalibMs(): number {
  if (chase === null) {
    const n = 1 << 24;
    chase = new Int32Array(n);
    // One cycle through every slot in a random order (Sattolo), from a fixed seed: each load
    // depends on the previous one and almost none hits a cache.
    for (let i = 0; i < n; i++) chase[i] = i;
    let x = 0x2545f491;
    for (let i = n - 1; i > 0; i--) {
      x = (Math.imul(x, 1664525) + 1013904223) | 0;
      const r = (x >>> 0) % i;
      const v = chase[i]!;
      chase[i] = chase[r]!;
      chase[r] = v;
    }
  }
  const a = chase;
  const t: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    let h = 0x811c9dc5 ^ k;
    for (let i = 0; i < 500_000; i++) h = Math.imul(h ^ i, 0x01000193);
    let j = k + 1;
    for (let i = 0; i < 100_000; i++) j = a[j]!;
    calibSink ^= h ^ j;
    t.push(performance.now() - t0);
  }
  // The sink is read so the loops' results count (it is an integer: the term is always 0).
  return t.sort((x, y) => x - y)[1]! + (calibSink === 0.5 ? 1 : 0);
}
