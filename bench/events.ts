// Event-path micro-benchmark: what a replicated kernel event costs each
// daemon in process, without sockets, the kernel or the scheduler of a shared
// machine in the figure. The sync bench (bench/sync.ts) measures the whole
// path, but its CPU rows also hold syscalls, V8's helper threads and cold
// caches between bursts, and a sampling profile of a real-time daemon on two
// cores undersamples badly (the sampler thread starves); this one profiles.
//
// 1. Capture: N real ctnetlink NEW events, created in a scratch netns by
//    ctsync's netlink client and read by its event listener, kept as the
//    raw batches the addon delivered.
// 2. Replay, per round: two real daemons (fake kernel table, in-memory sync
//    link) and the batches fed to the sender's real event decoder, one batch
//    per event-loop turn as the addon does; done when the receiver's external
//    cache holds N. Then the receiver's share alone: the sender's datagrams
//    of that round replayed into a fresh receiver.
// 3. Lone events after the burst, --gap ms apart: the daemon's own share of
//    a single flow's latency, and what waking from idle adds to it. With
//    --evict M, M MiB are written before each one (one byte per cache line):
//    the caches hold none of the daemon's memory, as after an idle spell on a
//    shared host, but reproducibly. `--gap 0 --evict 64` came out as slow as
//    `--gap 5` alone here (23-26 µs p50; 2.6-3.9 without), `--evict 8` (the L2 and
//    part of the L3) at 5: what a lone event pays after idling is its memory
//    traffic from DRAM, so what its path touches is what to make smaller.
// 4. With --resync R: R bulk resyncs of the burst (the receiver flushes and
//    asks), both daemons' CPU per entry and the receiver's share alone.
//
//   npm run build && node --expose-gc dist/bench/events.js [--n 100000] [--rounds 5] [--singles 300] [--gap 5] [--evict 64] [--resync 5]
//   (CTSYNC_PROF=1 node --cpu-prof --expose-gc dist/bench/events.js --rounds 2   for a profile)
//
// Figures are CPU time (process.cpuUsage) per event, min and median over the
// rounds; needs root (a netns).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon/daemon.js';
import { DEFAULT_WARMUP_FLOWS, NullTable, warmUp } from '../src/daemon/warmup.js';
import { NetlinkEvents } from '../src/daemon/kernel.js';
import { MemLink } from '../src/channel/mem.js';
import { silentLogger } from '../src/log/logger.js';
import { CtClient } from '../src/netlink/client.js';
import { CtEventListener } from '../src/netlink/events.js';
import { tcpEntries } from '../test/helpers/bulk.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const N = arg('n', 100_000);
const ROUNDS = arg('rounds', 5);
const SINGLES = arg('singles', 300);
/** Idle time between lone events, ms (0: back to back, one event-loop turn apart). */
const GAP_MS = arg('gap', 5);
/** MiB written before each lone event, evicting the caches (0: none). */
const EVICT_MIB = arg('evict', 0);
/** Bulk resync rounds (fw2 -f external, -n) after a warm-up burst; 0: none. */
const RESYNCS = arg('resync', 0);
const ns = `ctsevb${process.pid}`;
const nsPath = `/var/run/netns/${ns}`;
const cpuUs = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** The kernel's event batches as the addon handed them over (copied: the addon reuses its buffer). */
async function capture(): Promise<Buffer[]> {
  const batches: Buffer[] = [];
  let events = 0;
  const listener = new CtEventListener({ netns: nsPath, bufferSize: 256 << 20 });
  // Record instead of decoding; count messages by their netlink headers.
  (listener as unknown as { decode(buf: Buffer): void }).decode = (buf: Buffer): void => {
    batches.push(Buffer.from(buf));
    for (let off = 0; off + 16 <= buf.length;) {
      const len = buf.readUInt32LE(off);
      if (len < 16) break;
      events++;
      off += (len + 3) & ~3;
    }
  };
  const client = new CtClient({ netns: nsPath });
  try {
    listener.start();
    const r = await client.create(tcpEntries(N + SINGLES));
    if (r.ok !== N + SINGLES) throw new Error(`capture: ${r.failed.length} creates failed`);
    for (let i = 0; i < 3000 && events < N + SINGLES; i++) await new Promise((res) => setTimeout(res, 10));
    if (events < N + SINGLES) throw new Error(`capture: ${events}/${N + SINGLES} events (overrun?)`);
    await client.flush();
  } finally {
    listener.close();
    client.close();
  }
  return batches;
}

function config(dir: string, name: string, self: string, peer: string): string {
  return `Sync {
  Mode FTFW { }
  UDP { IPv4_address ${self} IPv4_Destination_Address ${peer} Port 3780 Interface fake0 }
}
General {
  HashSize 65536
  HashLimit 524288
  LockFile ${dir}/${name}.lock
  UNIX { Path ${dir}/${name}.ctl }
  Filter From Userspace { Address Ignore { IPv4_address 127.0.0.1 } }
}
`;
}

/** A daemon on an in-memory link; the sender's kernel side is the daemon's own event source, fed recorded reads. */
interface Node { d: Daemon; ch: MemLink; events?: NetlinkEvents }

async function node(dir: string, name: string, self: string, peer: string, withEvents: boolean): Promise<Node> {
  const { config: cfg } = parseConfig(config(dir, name, self, peer), `${name}.conf`);
  const ch = new MemLink(self, { ifname: 'fake0' });
  const events = withEvents ? new NetlinkEvents({ subscribe: false }) : undefined;
  const d = new Daemon(cfg, { log: silentLogger, table: new NullTable(), ...(events ? { events } : {}), channel: ch });
  await d.start();
  return { d, ch, ...(events ? { events } : {}) };
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600_000 && !cond(); i++) await turn();
  if (!cond()) throw new Error(`timed out: ${what}`);
}

/** The batches cut into one netlink message each, as the addon delivers a lone event. */
function messagesOf(batches: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const buf of batches) {
    for (let off = 0; off + 16 <= buf.length;) {
      const len = buf.readUInt32LE(off);
      if (len < 16) break;
      out.push(Buffer.from(buf.subarray(off, off + len)));
      off += (len + 3) & ~3;
    }
  }
  return out;
}

const quantileOf = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/**
 * Lone events GAP_MS apart after the burst (the sync bench's latency row uses 5 ms, in process
 * here): time from the decoder's entry to the datagram handed to the link, which includes the
 * setImmediate hop to the transmit round. Shows what the daemon's own code adds to a single
 * flow's latency, and (varying --gap) how much of it is the cost of waking from idle.
 */
interface LoneTimes { total: number[]; decode: number[]; cache: number[]; send: number[] }

async function singleEvents(dir: string, batches: Buffer[], lone: Buffer[]): Promise<LoneTimes> {
  const a = await node(dir, 'sa', '192.0.2.1', '192.0.2.2', true);
  const b = await node(dir, 'sb', '192.0.2.2', '192.0.2.1', false);
  a.ch.peer = b.ch;
  b.ch.peer = a.ch;
  // Where a lone event's time goes: the internal cache's entry point marks the end of decoding
  // and filtering, its return the end of caching and queueing. In place before the burst, so the
  // code compiled then already calls it (set later, it would change the cache's hidden class).
  const cache = a.d.internal;
  const event = cache.event.bind(cache);
  let tIn = 0;
  let tOut = 0;
  cache.event = (...args: Parameters<typeof event>) => {
    tIn = performance.now();
    const r = event(...args);
    tOut = performance.now();
    return r;
  };
  try {
    // Warm: the burst first, as the sync bench's latency row does.
    for (const buf of batches) {
      a.events!.feed(buf);
      await turn();
    }
    await waitFor(() => b.d.external.ctSize >= N, 'warm-up replicated');
    await new Promise((r) => setTimeout(r, 1000));
    const times: LoneTimes = { total: [], decode: [], cache: [], send: [] };
    const evict = EVICT_MIB > 0 ? new Uint8Array(EVICT_MIB * 1024 * 1024) : null;
    for (let i = 0; i < SINGLES; i++) {
      const m = lone[i]!;
      const t0 = performance.now();
      a.events!.feed(m);
      for (let k = 0; k < 100 && a.ch.lastSendAt < t0; k++) await turn();
      times.total.push((a.ch.lastSendAt - t0) * 1000);
      times.decode.push((tIn - t0) * 1000);
      times.cache.push((tOut - tIn) * 1000);
      times.send.push((a.ch.lastSendAt - tOut) * 1000);
      if (GAP_MS > 0) await new Promise((r) => setTimeout(r, GAP_MS));
      if (evict !== null) {
        for (let k = 0; k < evict.length; k += 64) evict[k]++;
        await turn();
      } else if (GAP_MS === 0) await turn();
    }
    return times;
  } finally {
    await a.d.stop();
    await b.d.stop();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The receiver alone: a fresh one fed the sender's recorded datagrams (its answers go nowhere); CPU µs per entry. */
async function receiverAlone(dir: string, name: string, sent: Buffer[]): Promise<number> {
  const b = await node(dir, name, '192.0.2.2', '192.0.2.1', false);
  try {
    gc();
    const c0 = cpuUs();
    for (let i = 0; i < sent.length; i++) {
      b.ch.deliver(sent[i]!);
      if ((i & 7) === 7) await turn();
    }
    await waitFor(() => b.d.external.ctSize >= N, 'lone receiver has every entry');
    return (cpuUs() - c0) / N;
  } finally {
    await b.d.stop();
  }
}

const row = (label: string, xs: number[]): string => `  ${label.padEnd(34)} min ${Math.min(...xs).toFixed(2)}  median ${median(xs).toFixed(2)}`;

/**
 * Bulk resync in process: the burst replicated once (both daemons warm), then
 * per round the receiver flushes its external cache and asks for a resync,
 * done when it holds N again; then the receiver's share alone, as for events.
 */
async function resyncs(dir: string, batches: Buffer[]): Promise<{ both: number[]; recv: number[] }> {
  const a = await node(dir, 'ra', '192.0.2.1', '192.0.2.2', true);
  const b = await node(dir, 'rb', '192.0.2.2', '192.0.2.1', false);
  a.ch.peer = b.ch;
  b.ch.peer = a.ch;
  const both: number[] = [];
  const recv: number[] = [];
  try {
    for (const buf of batches) {
      a.events!.feed(buf);
      await turn();
    }
    await waitFor(() => b.d.external.ctSize >= N, 'burst replicated');
    for (let r = 0; r < RESYNCS; r++) {
      b.d.flushExternal();
      a.ch.record = [];
      gc();
      const c0 = cpuUs();
      b.d.sync.requestResync();
      await waitFor(() => b.d.external.ctSize >= N, 'resync complete');
      both.push((cpuUs() - c0) / N);
      const sent = a.ch.record;
      a.ch.record = null;
      recv.push(await receiverAlone(dir, `rc${r}`, sent));
    }
  } finally {
    await a.d.stop();
    await b.d.stop();
  }
  return { both, recv };
}

async function main(): Promise<void> {
  sh('ip', ['netns', 'add', ns]);
  const dir = mkdtempSync(join(tmpdir(), 'ctsync-evb-'));
  try {
    // The first N messages, re-packed as the addon delivers a backlog; the rest, lone new flows.
    const all = messagesOf(await capture());
    const batches: Buffer[] = [];
    for (let i = 0; i < N; i += 64) batches.push(Buffer.concat(all.slice(i, Math.min(N, i + 64))));
    const lone = all.slice(N, N + SINGLES);
    if (process.argv.includes('--warmup')) {
      // The daemon's start-up warm-up (src/daemon/warmup.ts), on the sender's config.
      const r = await warmUp(parseConfig(config(dir, 'w', '192.0.2.1', '192.0.2.2'), 'w.conf').config, { flows: arg('warmup-flows', DEFAULT_WARMUP_FLOWS) });
      console.log(`warm-up: ${r.flows} flows, ${r.cpuMs.toFixed(0)} ms CPU, ${r.wallMs.toFixed(0)} ms`);
    }
    console.log(`${N} kernel NEW events in ${batches.length} batches of 64; replay ${ROUNDS} rounds (CPU µs per event)`);
    const both: number[] = [];
    const recvOnly: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const a = await node(dir, `a${r}`, '192.0.2.1', '192.0.2.2', true);
      const b = await node(dir, `b${r}`, '192.0.2.2', '192.0.2.1', false);
      a.ch.peer = b.ch;
      b.ch.peer = a.ch;
      a.ch.record = [];
      gc();
      const c0 = cpuUs();
      for (const buf of batches) {
        a.events!.feed(buf);
        await turn();
      }
      await waitFor(() => b.d.external.ctSize >= N, 'receiver has every entry');
      both.push((cpuUs() - c0) / N);
      const sent = a.ch.record;
      a.ch.record = null;
      await a.d.stop();
      await b.d.stop();
      recvOnly.push(await receiverAlone(dir, `c${r}`, sent));
    }
    if (ROUNDS > 0) {
      const send = both.map((x, i) => x - recvOnly[i]!);
      console.log(row('sender + receiver', both));
      console.log(row('of which the receiver (alone)', recvOnly));
      console.log(row('the sender (difference)', send));
    }
    if (RESYNCS > 0) {
      const { both: rb, recv: rr } = await resyncs(dir, batches);
      console.log(`bulk resync of ${N} entries, ${RESYNCS} rounds (CPU µs per entry)`);
      console.log(row('sender + receiver', rb));
      console.log(row('of which the receiver (alone)', rr));
      console.log(row('the sender (difference)', rb.map((x, i) => x - rr[i]!)));
    }
    if (SINGLES > 0) {
      const t = await singleEvents(dir, batches, lone);
      const us = t.total;
      console.log(`  lone events ${GAP_MS} ms apart${EVICT_MIB > 0 ? `, ${EVICT_MIB} MiB written before each` : ''}, decoder entry → datagram to the link (µs): p50 ${quantileOf(us, 0.5).toFixed(1)}  p99 ${quantileOf(us, 0.99).toFixed(1)}  (${us.length})`);
      console.log(`    p50 of its parts: decode and filter ${quantileOf(t.decode, 0.5).toFixed(1)}, cache and queue ${quantileOf(t.cache, 0.5).toFixed(1)}, ` +
        `encode and hand to the link ${quantileOf(t.send, 0.5).toFixed(1)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error(e);
  process.exit(1);
});
