// Kernel-side throughput in one run, against the figures recorded in
// shared/spec/netlink.md (same machine class): event decode draining a
// backlog, 100k-entry batch commit, 100k dump, and a `conntrack -I` loop.
// Needs root (namespaces, CAP_NET_ADMIN). Run: npm run build && node dist/bench/netlink.js
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AF_INET, IPPROTO, IPS, type Conntrack } from '../src/model/conntrack.js';
import { CtClient } from '../src/netlink/client.js';
import { CtEventListener } from '../src/netlink/events.js';

const N = Number(process.env.BENCH_N ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ns = `ctsbench${process.pid}`;
const nsPath = `/var/run/netns/${ns}`;

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000, maxBuffer: 512 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function entry(i: number): Conntrack {
  return {
    orig: { l3: AF_INET, src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '192.0.2.1', proto: IPPROTO.TCP, sport: 1024 + (i % 50000), dport: 443 },
    status: IPS.SEEN_REPLY | IPS.ASSURED, timeout: 300, mark: i, tcp: { state: 3 },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function benchCommit(client: CtClient, cts: Conntrack[]): Promise<{ createMs: number; dumpMs: number }> {
  const creates: number[] = [];
  const dumps: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    await client.flush();
    const t0 = performance.now();
    const res = await client.create(cts);
    creates.push(performance.now() - t0);
    if (res.ok !== cts.length) throw new Error(`create: ${res.failed.length} failed, first errno ${res.failed[0]?.errno}`);
    const t1 = performance.now();
    const d = await client.dumpEach(() => undefined);
    dumps.push(performance.now() - t1);
    if (d.count !== cts.length) throw new Error(`dump returned ${d.count}`);
  }
  await client.flush();
  return { createMs: median(creates), dumpMs: median(dumps) };
}

/** Events queue in a 1 GiB buffer while the reader is not started, then the backlog is decoded. */
async function benchDrain(client: CtClient, cts: Conntrack[]): Promise<{ events: number; ms: number; lost: number }> {
  const listener = new CtEventListener({ netns: nsPath, bufferSize: 1 << 30 });
  try {
    await client.create(cts);
    await client.update(cts.map((c) => ({ orig: c.orig, timeout: 200, mark: 7 })));
    await client.remove(cts);
    const expected = cts.length * 3;
    let t0 = 0;
    let t1 = 0;
    await new Promise<void>((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`drain stalled at ${listener.stats.events}/${expected}`)), 120_000);
      let lastAt = 0;
      listener.on('event', () => {
        if (listener.stats.events >= expected) {
          t1 = performance.now();
          clearTimeout(guard);
          resolve();
        }
      });
      listener.on('overrun', () => {
        // lost events: finish on quiet instead of count
        lastAt = performance.now();
      });
      const quiet = setInterval(() => {
        if (lastAt && performance.now() - lastAt > 1000) {
          clearInterval(quiet);
          t1 = lastAt;
          clearTimeout(guard);
          resolve();
        }
      }, 200);
      quiet.unref();
      t0 = performance.now();
      listener.start();
    });
    return { events: listener.stats.events, ms: t1 - t0, lost: expected - listener.stats.events };
  } finally {
    listener.close();
  }
}

/**
 * The kernel producing events at its maximum rate (a generator process) while
 * the listener reads live with a large buffer: nothing may be lost.
 */
async function benchLive(n: number): Promise<{ events: number; expected: number; ms: number; overruns: number }> {
  const listener = new CtEventListener({ netns: nsPath, bufferSize: 1 << 30 });
  const expected = n * 3;
  try {
    listener.start();
    const { spawn } = await import('node:child_process');
    const gen = join(dirname(fileURLToPath(import.meta.url)), 'netlink-gen.js');
    const t0 = performance.now();
    const child = spawn(process.execPath, [gen, nsPath, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const genDone = new Promise<void>((res, rej) => child.once('exit', (code) => (code === 0 ? res() : rej(new Error(`generator exited ${code}`)))));
    let t1 = 0;
    await new Promise<void>((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`live storm stalled at ${listener.stats.events}/${expected}`)), 300_000);
      listener.on('event', () => {
        if (listener.stats.events >= expected && t1 === 0) {
          t1 = performance.now();
          clearTimeout(guard);
          resolve();
        }
      });
      // With losses the count never arrives: finish 2 s after the generator if short.
      genDone.then(() => setTimeout(() => {
        if (t1 === 0) {
          t1 = performance.now() - 2000;
          clearTimeout(guard);
          resolve();
        }
      }, 2000), reject);
    });
    await genDone;
    return { events: listener.stats.events, expected, ms: t1 - t0, overruns: listener.stats.overruns };
  } finally {
    listener.close();
  }
}

/**
 * The daemon's commit situation: a live event listener on the same thread while
 * the batch create runs, with its NEW group joined (the kernel builds and this
 * thread decodes one event per entry) or muted for the commit (muteNew).
 */
async function benchCommitListening(client: CtClient, cts: Conntrack[], mute: boolean): Promise<{ createMs: number; cpuMs: number; events: number }> {
  const times: number[] = [];
  const cpus: number[] = [];
  let events = 0;
  for (let r = 0; r < RUNS; r++) {
    await client.flush();
    const listener = new CtEventListener({ netns: nsPath, bufferSize: 1 << 30, handler: { onEvent: () => { events++; } } });
    try {
      listener.start();
      if (mute) listener.muteNew();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const res = await client.create(cts);
      times.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpus.push((c.user + c.system) / 1000);
      if (mute) listener.unmuteNew();
      if (res.ok !== cts.length) throw new Error(`create: ${res.failed.length} failed`);
    } finally {
      listener.close();
    }
  }
  await client.flush();
  return { createMs: median(times), cpuMs: median(cpus), events: events / RUNS };
}

function benchConntrackI(calls: number): number {
  const script = `i=0; while [ $i -lt ${calls} ]; do conntrack -I -s 10.9.$((i/250)).$((i%250+1)) -d 192.0.2.2 -p tcp --sport 1000 --dport 80 --state ESTABLISHED -t 300 -u SEEN_REPLY,ASSURED >/dev/null 2>&1; i=$((i+1)); done`;
  const t0 = performance.now();
  sh('ip', ['netns', 'exec', ns, 'sh', '-c', script]);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root');
  sh('ip', ['netns', 'add', ns]);
  const client = new CtClient({ netns: nsPath });
  try {
    const cts = Array.from({ length: N }, (_, i) => entry(i));
    if (process.env.BENCH_ONLY === 'commit') {
      // Quick loop for the commit path only: bare, listening, listening with NEW muted.
      // CPU time (user+sys of this process, the kernel's insert work included) is what a busy machine distorts least.
      const on = await benchCommitListening(client, cts, false);
      const muted = await benchCommitListening(client, cts, true);
      console.log(`create ${N}, listener on: ${on.createMs.toFixed(0)} ms wall, ${on.cpuMs.toFixed(0)} ms cpu (${on.events} events read)` +
        ` | NEW muted: ${muted.createMs.toFixed(0)} ms wall, ${muted.cpuMs.toFixed(0)} ms cpu (${muted.events} events read)`);
      return;
    }
    const { createMs, dumpMs } = await benchCommit(client, cts);
    const drain = await benchDrain(client, cts);
    await client.flush();
    const live = await benchLive(N);
    await client.flush();
    const iCalls = 1000;
    const iMs = benchConntrackI(iCalls);
    await client.flush();

    const eps = drain.events / (drain.ms / 1000);
    const rows: [string, string, string, string][] = [
      ['measure', 'ctsync (this run)', 'reference (netlink.md)', 'target'],
      [`decode, draining a ${drain.events} event backlog`, `${(eps / 1000).toFixed(0)}k events/s${drain.lost ? ` (${drain.lost} lost)` : ''}`,
        'C hand decode 470k/s; C+libnfct 394k/s; addon+TS 393k/s', '>= 390k/s'],
      [`live storm: ${live.expected} events from a generator process, 1 GiB buffer`,
        `${(live.events / (live.ms / 1000) / 1000).toFixed(0)}k events/s, ${live.expected - live.events} lost, ${live.overruns} overruns`,
        'addon+TS 127k/s, 0 lost (kernel-bound)', '0 lost'],
      [`${N} entries batch create`, `${(createMs / 1000).toFixed(2)} s (${(N / createMs).toFixed(0)}k/s)`,
        'prototype 0.53 s; conntrackd -c 1.36 s', '<= 0.55 s'],
      [`${N} entries dump + decode`, `${(dumpMs / 1000).toFixed(2)} s`, 'prototype 0.41-0.54 s', ''],
      [`conntrack -I loop (${iCalls} calls, extrapolated to ${N})`, `${((iMs / iCalls) * N / 1000).toFixed(0)} s (${(iCalls / iMs * 1000).toFixed(0)}/s)`,
        '~180 s (555/s)', ''],
      ['ctsync create vs conntrack -I loop', `${((iMs / iCalls) * N / createMs).toFixed(0)}x faster`, '~340x', ''],
      ['ctsync create vs conntrackd -c (recorded 1.36 s)', `${(1360 / createMs).toFixed(2)}x`, '2.6x', ''],
    ];
    const w = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const [i, r] of rows.entries()) {
      console.log(r.map((cell, c) => cell.padEnd(w[c]!)).join(' | '));
      if (i === 0) console.log(w.map((n) => '-'.repeat(n)).join('-|-'));
    }
    console.log(`\nmedian of ${RUNS} runs for create/dump; load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')} on ${(await import('node:os')).cpus().length} CPUs`);
  } finally {
    client.close();
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

main().catch((e) => {
  console.error(e);
  spawnSync('ip', ['netns', 'del', ns]);
  process.exit(1);
});
