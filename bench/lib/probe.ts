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
