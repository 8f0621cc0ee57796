// JIT warm-up at start: a fresh Node process interprets its first events and
// then compiles the hot path (decoder, caches, sync engine, encoders) with
// TurboFan, on the event rate's time. Measured on the sync bench's cold 100k
// burst: compilation was ~20% of the sender's CPU and the reason a cold
// daemon cost 1.4x what the same daemon costs after a burst. A firewall's
// first burst is often the worst moment for it: the node has just become
// master and every flow is new.
//
// So, unless CTSYNC_WARMUP=0 says otherwise, the daemon runs a scratch pair
// of itself in process before it takes its lock: the same config, a synthetic
// kernel feeding the real decoder, an in-memory sync link and no kernel
// table. Each scratch node gets NEW events, answers a resync request with a
// bulk send, commits what its peer sent into a table that encodes and keeps
// nothing, then gets UPDATE and DESTROY events. Everything is then dropped
// and collected. No socket carries a byte: the scratch nodes' control sockets
// live in a private temporary directory and their event sources listen to no
// netlink group. It costs ~0.3 s at start (`ctsync -d` returns once the
// daemon is up all the same: cli/detach.ts) and ~2 MiB of peak RSS at 100k
// entries; it cost ~8 MiB, and was off by default, until the compiler's freed
// zones were returned to the kernel (ops/malloc.ts; bench/README.md).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemLink } from '../channel/mem.js';
import { syntheticFlow } from '../model/synthetic.js';
import type { CtsyncConfig } from '../config/schema.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { AF_INET, type Conntrack, type Expectation } from '../model/conntrack.js';
import { writeConntrackAttrs } from '../netlink/ct-codec.js';
import { CTA } from '../netlink/ct-attrs.js';
import { beginMessage, endMessage } from '../netlink/message.js';
import { CT_DELETE, CT_NEW, NLM_F_CREATE, NLM_F_EXCL } from '../netlink/nl-constants.js';
import { NlWriter } from '../netlink/nlattr.js';
import { loadNative } from '../netlink/native.js';
import { CtsyncError } from '../errors.js';
import { Daemon } from './daemon.js';
import { NetlinkEvents } from './kernel.js';
import type { ConntrackTable, WriteResult } from './ports.js';

export interface WarmupOptions {
  /** Flows each scratch node sees (each gets a NEW, an UPDATE and a DESTROY). */
  flows?: number;
  log?: Logger;
  /** Called as each phase begins (test/system/kernel-daemon-field-shapes.test.ts marks V8's trace with it). */
  onPhase?: (phase: WarmupPhase) => void;
}

/** The warm-up's phases, in order. */
export type WarmupPhase = 'new' | 'resync' | 'commit' | 'update' | 'destroy';

export interface WarmupReport {
  flows: number;
  /** Entries that reached the scratch peers' external caches, the fewer of the two (the link worked end to end). */
  received: number;
  /** Entries both scratch nodes committed into their null tables. */
  committed: number;
  cpuMs: number;
  wallMs: number;
}

/**
 * Flows per node unless CTSYNC_WARMUP gives a number. 2048
 * and 4096 did alike in process (`node --expose-gc dist/bench/events.js
 * --warmup --warmup-flows N`); 1024 left a third more to compile later.
 */
export const DEFAULT_WARMUP_FLOWS = 2048;

/**
 * The warm-up asked for by the environment: CTSYNC_WARMUP unset, empty, `on`
 * or 1 is DEFAULT_WARMUP_FLOWS (the default); 0 or `off` is none (a start
 * ~0.3 s sooner, a first burst compiled on its own time); a larger integer
 * is that many flows. Anything else is an error, so a typo does not silently
 * start otherwise than asked.
 */
export function warmupFlowsFromEnv(value: string | undefined): number {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '0' || v === 'off') return 0;
  if (v === '' || v === 'on' || v === '1') return DEFAULT_WARMUP_FLOWS;
  if (/^[0-9]+$/.test(v) && Number(v) <= 1_000_000) return Number(v);
  throw new CtsyncError('CTSYNC_ERR_CONFIG_INVALID', `CTSYNC_WARMUP=${value}: expected 0, 1, on, off or a number of flows (at most 1000000)`);
}

/** Events per synthetic kernel read: the addon hands over a batch per wakeup. */
const READ_BATCH = 64;
/** The whole warm-up gives up waiting after this long (it takes ~0.3 s; a stuck phase must not hold the start). */
const DEADLINE_MS = 5_000;
/**
 * A phase also ends when nothing has moved for this long: a configuration can
 * make its condition unreachable (a State filter that drops the UPDATE and
 * DESTROY events, DisableExternalCache leaving the external caches empty).
 */
const STALL_MS = 100;

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The kernel table of a scratch node (and of bench/events.ts): writes are encoded (that code is warmed too) and dropped. */
export class NullTable implements ConntrackTable {
  readonly portId = 0x7fff_fff0;
  private readonly w = new NlWriter(64 * 1024);
  private done(n: number): Promise<WriteResult> {
    return Promise.resolve({ ok: n, failed: [] });
  }
  dump(): Promise<Conntrack[]> { return Promise.resolve([]); }
  createOrReplace(e: Conntrack[]): Promise<WriteResult> { return this.done(e.length); }
  createOrReplaceEncoded<T>(items: readonly T[], _family: (item: T) => number, encode: (w: NlWriter, item: T) => void): Promise<WriteResult> {
    for (const it of items) {
      this.w.reset();
      encode(this.w, it);
    }
    return this.done(items.length);
  }
  updateOrCreate(e: Conntrack[]): Promise<WriteResult> { return this.done(e.length); }
  remove(e: Conntrack[]): Promise<WriteResult> { return this.done(e.length); }
  dumpExpectations(): Promise<Expectation[]> { return Promise.resolve([]); }
  createExpectations(e: Expectation[]): Promise<WriteResult> { return this.done(e.length); }
  removeExpectations(e: Expectation[]): Promise<WriteResult> { return this.done(e.length); }
  close(): void {}
}

/** Kernel event reads for flows [0, n): nlmsghdr + nfgenmsg + attributes as ctnetlink sends them. */
export function warmupReads(n: number, type: number, flags: number, tcpState: number): Buffer[] {
  const reads: Buffer[] = [];
  const w = new NlWriter(READ_BATCH * 256);
  for (let k = 0; k < n;) {
    w.reset();
    for (let i = 0; i < READ_BATCH && k < n; i++, k++) {
      const ct = syntheticFlow(k, tcpState);
      const at = beginMessage(w, type, flags, 0, AF_INET);
      writeConntrackAttrs(w, ct, 'create'); // DESTROY events carry the whole entry too
      w.u32be(CTA.ID, ct.id!);
      endMessage(w, at);
    }
    reads.push(Buffer.from(w.view()));
  }
  return reads;
}

/**
 * A full collection now, while nothing else runs: the scratch pair's heap is
 * garbage, and left to the next major GC it would sit under the first burst's
 * heap growth and raise the daemon's peak RSS by the warm-up's size.
 */
function collectGarbage(): void {
  try {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
  } catch {
    // Without it the collector gets there on its own.
  }
  try {
    loadNative().mallocTrim?.();
  } catch {
    // Only memory.
  }
}

function scratchConfig(config: CtsyncConfig, dir: string, name: string): CtsyncConfig {
  return {
    ...config,
    // Tables sized for the scratch flows, not the real ones (their arrays are the warm-up's memory).
    general: { ...config.general, hashSize: Math.min(config.general.hashSize, 4096), lockFile: join(dir, `${name}.lock`), unix: { ...config.general.unix, path: join(dir, `${name}.ctl`) } },
    ctsync: { ...config.ctsync, metrics: null, readyFile: null, notifyFifo: null, reconcileInterval: 0 },
    ...(config.sync ? { sync: { ...config.sync, startupResync: false } } : {}),
  };
}

const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 1));

/**
 * Waits for `cond`, turn by turn while `progress()` keeps changing; once it
 * stops changing, 1 ms at a time (no spinning), and not longer than STALL_MS
 * without a change or past `deadline`.
 */
async function until(cond: () => boolean, progress: () => number, deadline: number): Promise<boolean> {
  let last = progress();
  let lastChange = performance.now();
  while (!cond()) {
    const now = performance.now();
    if (now >= deadline || now - lastChange >= STALL_MS) return false;
    const p = progress();
    if (p !== last) {
      last = p;
      lastChange = now;
      await turn();
    } else {
      await pause();
    }
  }
  return true;
}

/**
 * Runs the scratch pair once and drops it. What it cannot do (a filter that
 * drops every synthetic flow, a phase that stalls) makes it warm less, not
 * fail; if it throws, the caller logs it and the daemon starts cold.
 */
export async function warmUp(config: CtsyncConfig, opts: WarmupOptions = {}): Promise<WarmupReport> {
  const flows = opts.flows ?? DEFAULT_WARMUP_FLOWS;
  const log = opts.log ?? silentLogger;
  const phase = opts.onPhase ?? ((): void => {});
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const dir = mkdtempSync(join(tmpdir(), 'ctsync-warmup-'));
  const maxDatagram = 1471;
  const linkA = new MemLink('198.18.255.1', { maxDatagram, ifname: 'warmup' });
  const linkB = new MemLink('198.18.255.2', { maxDatagram, ifname: 'warmup' });
  linkA.peer = linkB;
  linkB.peer = linkA;
  // Each node is sender and receiver at once. Code that met one instance only
  // (one daemon, one engine, one callback) is compiled for that very object and
  // thrown away when it dies or the real daemon's object turns up; code that met
  // two is compiled for any, the real daemon's included (measured: 67 functions
  // recompiled during the first burst after a one-way warm-up).
  const nodes: { d: Daemon; events: NetlinkEvents }[] = [];
  let received = 0;
  let committed = 0;
  try {
    for (const [name, link] of [['a', linkA], ['b', linkB]] as const) {
      // Neither listens to the kernel: it decodes what feed() hands it.
      const events = new NetlinkEvents({ subscribe: false });
      const d = new Daemon(scratchConfig(config, dir, name), { log, table: new NullTable(), channel: link, events });
      nodes.push({ d, events });
      await d.start();
    }
    const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
    const deadline = t0 + DEADLINE_MS;
    // Anything the pair does shows in its links' datagram counts or its caches.
    const moved = (): number => linkA.stats().packetsRecv + linkB.stats().packetsRecv +
      a.d.external.ctSize + b.d.external.ctSize + a.d.internal.size + b.d.internal.size;
    const both = (cond: (d: Daemon, peer: Daemon) => boolean): Promise<boolean> =>
      until(() => cond(a.d, b.d) && cond(b.d, a.d), moved, deadline);
    // A node waits for what its peer's filter let into the peer's internal cache.
    const hasPeers = (d: Daemon, peer: Daemon): boolean => d.external.ctSize >= peer.internal.activeCount;
    const feed = async (reads: Buffer[]): Promise<void> => {
      for (const r of reads) {
        a.events.feed(r);
        b.events.feed(r);
        await turn();
      }
    };
    phase('new');
    await feed(warmupReads(flows, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 3));
    await both(hasPeers);
    received = Math.min(a.d.external.ctSize, b.d.external.ctSize);
    // A peer's resync request: the bulk path sends the whole cache again.
    phase('resync');
    for (const n of nodes) {
      n.d.flushExternal();
      n.d.sync.requestResync();
    }
    await both(hasPeers);
    phase('commit');
    for (const n of nodes) committed += (await n.d.commit()).committed;
    phase('update');
    await feed(warmupReads(flows, CT_NEW, 0, 4));
    phase('destroy');
    await feed(warmupReads(flows, CT_DELETE, 0, 4));
    // Done when the peers have applied every CT_DEL. The acknowledgements of all but the last
    // window's have released their DEAD entries by then; the last waits for the ALIVE timer (1 s).
    await both((d) => d.external.ctSize === 0);
  } finally {
    for (const n of nodes) {
      try { await n.d.stop(); } catch { /* scratch */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  collectGarbage();
  const c = process.cpuUsage(c0);
  return { flows, received, committed, cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0 };
}
