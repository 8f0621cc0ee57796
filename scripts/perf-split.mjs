#!/usr/bin/env node
// Where a daemon's CPU goes, whole process: kernel, our JIT-compiled code,
// V8's compiler, the garbage collector, inline-cache and call builtins,
// baseline/interpreted JS, libc. Reads a `perf record` of the process (all
// threads; the cpu-clock software event works in VMs without hardware
// counters) and sorts each symbol into one of those buckets.
//
// Why not --cpu-prof: V8's sampler sees only the main thread's JS, not its
// helper threads (concurrent GC, background TurboFan), and next to a
// SCHED_RR main thread on two cores it starves and misses most ticks (seen:
// a third of the main thread's CPU sampled). perf counts every thread.
//
//   node scripts/perf-split.mjs --pid PID --seconds 8 [--out /tmp/x.data] [--top 8]
//   node scripts/perf-split.mjs /tmp/x.data [--top 8] [--json [--report FILE]]
// Start the daemon with --perf-basic-prof (CTSYNC_NODE_ARGS for the bench
// launchers; `node dist/bench/sync.js --perf` does all of it) so JIT frames
// have names: perf reads them from /tmp/perf-<pid>.map at report time, so
// report before that file is removed. Without it our optimized JS lands in
// "other". The flag also writes an isolate-*.log to the working directory.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const opt = (name) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const top = Number(opt('top') ?? 8);
let data = argv.find((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
const pid = opt('pid');
if (pid) {
  data = opt('out') ?? `/tmp/perf-split-${pid}.data`;
  const r = spawnSync('timeout', [String(Number(opt('seconds') ?? 8)), 'perf', 'record', '-e', 'cpu-clock', '-F', '4000',
    '-p', pid, '-o', data], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.error) throw r.error;
}
if (!data) {
  console.error('usage: perf-split.mjs PERF_DATA | --pid PID [--seconds S] [--out FILE]  [--top N]');
  process.exit(2);
}

const rep = spawnSync('perf', ['report', '-i', data, '--no-children', '--sort', 'sym', '--stdio', '-g', 'none'],
  { encoding: 'utf8', maxBuffer: 256 << 20 });
if (rep.status !== 0) {
  console.error(rep.stderr);
  process.exit(1);
}

// First match wins: order matters (RecordWrite is a GC write barrier, not a builtin to blame on JS).
const BUCKETS = [
  ['kernel (syscalls, softirq, scheduler)', /\[k\]/],
  ['V8 compiler (TurboFan, background)', /compiler::|Turbofan|Maglev|OptimizedCompilationJob|PipelineImpl/],
  ['garbage collector', /Scaveng|Marking|MarkCompact|Sweep|Heap::|heap::|Evacuat|RememberedSet|SlotSet|GCTracer|MemoryChunk|RecordWrite|MarkingVisitor/],
  ['JS, optimized (our hot paths)', /JS:\*/],
  ['JS, baseline / interpreter (not yet optimized)', /JS:[~^]|Builtins_Interpreter|Builtins_Baseline|BytecodeHandler|_Baseline/],
  ['inline-cache misses (generic property access)', /Builtins_(Load|Store|KeyedLoad|KeyedStore|LoadGlobal|StoreGlobal)IC/],
  ['other builtins (calls, conversions)', /Builtins_/],
  ['libc (malloc, memcpy)', /malloc|free|memmove|memcpy|memset|_int_|unlink_chunk/],
];
const sums = new Map();
const tops = new Map();
let total = 0;
for (const line of rep.stdout.split('\n')) {
  const m = /^\s+([\d.]+)%\s+(.*)$/.exec(line);
  if (!m) continue;
  const pct = Number(m[1]);
  const sym = m[2].trim();
  total += pct;
  const b = (BUCKETS.find(([, rx]) => rx.test(sym)) ?? ['other (V8 runtime, Node, libuv)'])[0];
  sums.set(b, (sums.get(b) ?? 0) + pct);
  const t = tops.get(b) ?? [];
  if (t.length < top) t.push(`${pct.toFixed(2)}% ${sym.replace(/file:\/\/\/\S*\/dist\//, '').slice(0, 100)}`);
  tops.set(b, t);
}
const lines = [`${data}: ${total.toFixed(1)}% of samples attributed`];
for (const [b, pct] of [...sums].sort((x, y) => y[1] - x[1])) {
  lines.push(`${pct.toFixed(1).padStart(6)}%  ${b}`);
  for (const s of tops.get(b) ?? []) lines.push(`           ${s}`);
}
const report = `${lines.join('\n')}\n`;
// --report FILE: the per-symbol text as well, from the same (slow) perf report run.
if (opt('report')) writeFileSync(opt('report'), report);
if (argv.includes('--json')) console.log(JSON.stringify({ total, buckets: Object.fromEntries(sums) }));
else process.stdout.write(report);
