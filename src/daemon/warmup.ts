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
// table. Each scratch node gets NEW events, answers resync requests with bulk
// sends, commits what its peer sent into a table that encodes and keeps
// nothing, gets UPDATE and DESTROY events, hears its peer fall silent for a
// few alive intervals, gets the flows back, and last new flows one at a time,
// which it sends as the addon's fast path would (fast-path.ts). Everything is
// then dropped and collected.
//
// What the pair meets is what a first real burst meets, as a real kernel
// shapes it (model/synthetic.ts): events with and without a mark and
// synproxy, from packets and from other processes' requests, the host's own
// flows that the filter drops, tables that grow, a send window that fills,
// entries unlinked out of order, a lost datagram and its NACK, ALIVE. Each
// of these, met first in the real daemon, threw away compiled code in the
// middle of its first burst or resync (`--trace-deopt-verbose` on the sync
// bench's daemons; bench/README.md).
//
// No socket carries a byte: the scratch nodes' control sockets live in a
// private temporary directory and their event sources listen to no netlink
// group. It costs ~0.5 s at start (`ctsync -d` returns once the daemon is up
// all the same: cli/detach.ts) and a few MiB of peak RSS at 100k entries; it
// cost ~8 MiB, and was off by default, until the compiler's freed zones were
// returned to the kernel (ops/malloc.ts; bench/README.md).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemLink } from '../channel/mem.js';
import { destroyEventOf, syntheticDestroy, syntheticFlow, syntheticPortId } from '../model/synthetic.js';
import type { CtsyncConfig } from '../config/schema.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { AF_INET, IPPROTO, IPS, type Conntrack, type Expectation } from '../model/conntrack.js';
import { writeConntrackAttrs } from '../netlink/ct-codec.js';
import { CTA } from '../netlink/ct-attrs.js';
import { beginMessage, endMessage } from '../netlink/message.js';
import { CT_DELETE, CT_NEW, NLM_F_CREATE, NLM_F_EXCL } from '../netlink/nl-constants.js';
import { NlWriter } from '../netlink/nlattr.js';
import { wrU32LE } from '../util/bytes.js';
import { loadNative } from '../netlink/native.js';
import { CtsyncError } from '../errors.js';
import { Daemon } from './daemon.js';
import { NetlinkEvents } from './kernel.js';
import type { ConntrackTable, WriteResult } from './ports.js';
import { FAST_STATE } from '../sync/types.js';
import { fastPathConf } from './fast-path.js';

export interface WarmupOptions {
  /** Flows each scratch node sees (each gets a NEW, an UPDATE and a DESTROY). */
  flows?: number;
  log?: Logger;
  /** Called as each phase begins (test/system/kernel-daemon-field-shapes.test.ts marks V8's trace with it). */
  onPhase?: (phase: WarmupPhase) => void;
}

/** The warm-up's phases, in order. */
export type WarmupPhase = 'new' | 'resync' | 'commit' | 'update' | 'destroy' | 'alive' | 'renew' | 'lone';

export interface WarmupReport {
  flows: number;
  /** Entries that reached the scratch peers' external caches, the fewer of the two (the link worked end to end). */
  received: number;
  /** Entries both scratch nodes committed into their null tables. */
  committed: number;
  /** Lone events the warm-up sent as the addon's fast path would, and the scratch engines filed (0 without the addon). */
  fastAdopted: number;
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
 * ~0.5 s sooner, a first burst compiled on its own time); a larger integer
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
/** The whole warm-up gives up waiting after this long (it takes ~0.5 s; a stuck phase must not hold the start). */
const DEADLINE_MS = 5_000;
/**
 * A phase also ends when nothing has moved for this long: a configuration can
 * make its condition unreachable (a State filter that drops the UPDATE and
 * DESTROY events, DisableExternalCache leaving the external caches empty).
 */
const STALL_MS = 100;
/**
 * The scratch tables' initial buckets: below the flow count, so both caches
 * grow (twice) during the warm-up. The first growth of a table otherwise came
 * in the first real burst and threw away the insert path compiled for it.
 */
const SCRATCH_HASH_SIZE = 256;
/** The scratch engines' alive timer: fires between the phases and in the last one, so ALIVE and timer-driven ACKs are compiled too. */
const SCRATCH_ALIVE_MS = 10;
/** Resyncs in the resync phase, and the pause before each after the first (the first's compiles finish in it). */
const RESYNCS = 3;
const RESYNC_PAUSE_MS = 20;
/** The pause before each phase after the first (see warmUp). */
const PHASE_PAUSE_MS = 20;
/** Lone NEW events of the last phase, which the warm-up sends as the addon's fast path would. */
const LONE_EVENTS = 256;

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The kernel table of a scratch node (and of bench/events.ts): writes are encoded (that code is warmed too) and dropped. */
export class NullTable implements ConntrackTable {
  readonly portId = 0x7fff_fff0;
  private readonly w = new NlWriter(64 * 1024);
  /** Entries written so far (the warm-up's measure of progress, with the caches' sizes). */
  written = 0;
  private done(n: number): Promise<WriteResult> {
    this.written += n;
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

/**
 * Kernel event reads for flows [first, first + n), then `own` (flows of the
 * host itself, which its filter may drop), `perRead` events per read:
 * nlmsghdr + nfgenmsg + attributes as ctnetlink sends them, with the port id
 * of the socket that caused the event. DESTROY events carry what the
 * kernel's do (syntheticDestroy).
 */
export function warmupReads(n: number, type: number, flags: number, tcpState: number, own: readonly Conntrack[] = [],
  perRead = READ_BATCH, first = 0): Buffer[] {
  const reads: Buffer[] = [];
  const w = new NlWriter(READ_BATCH * 256);
  const total = n + own.length;
  const half = (n + 1) >>> 1;
  for (let j = 0; j < total;) {
    w.reset();
    for (let i = 0; i < perRead && j < total; i++, j++) {
      // Flows end in another order than they began (even ones first): the caches then unlink
      // entries from the middle of their lists, not only the oldest.
      const k = type !== CT_DELETE || j >= n ? j : j < half ? 2 * j : 2 * (j - half) + 1;
      const ct = k < n
        ? (type === CT_DELETE ? syntheticDestroy(first + k, tcpState) : syntheticFlow(first + k, tcpState))
        : (type === CT_DELETE ? destroyEventOf(own[k - n]!, tcpState) : own[k - n]!);
      const at = beginMessage(w, type, flags, 0, AF_INET);
      if (k < n) wrU32LE(w.buf, at + 12, syntheticPortId(first + k));
      writeConntrackAttrs(w, ct, 'create');
      w.u32be(CTA.ID, ct.id!);
      endMessage(w, at);
    }
    reads.push(Buffer.from(w.view()));
  }
  return reads;
}

/**
 * Flows the host itself makes, which a real kernel reports as it reports any
 * other and a usual Filter drops (Address Ignore lists the firewall's own
 * addresses): each sync link's datagrams, and loopback traffic. Through the
 * scratch pair's filter, so the branch that drops an event is compiled too.
 */
export function ownFlows(config: CtsyncConfig): Conntrack[] {
  const status = IPS.SEEN_REPLY | IPS.CONFIRMED;
  const out: Conntrack[] = [{
    orig: { l3: AF_INET, src: '127.0.0.1', dst: '127.0.0.1', proto: IPPROTO.TCP, sport: 40000, dport: 25 },
    status: status | IPS.ASSURED, timeout: 120, id: 0x8000_0001, tcp: { state: 3, wscaleOrig: 7, wscaleReply: 7, flagsOrig: 0x23, flagsReply: 0x23 },
  }];
  for (const l of config.sync?.links ?? []) {
    if (l.ipv4Address === undefined || l.destination === undefined || l.destination.includes(':')) continue;
    out.push({
      orig: { l3: AF_INET, src: l.ipv4Address, dst: l.destination, proto: IPPROTO.UDP, sport: l.port, dport: l.port },
      status, timeout: 120, id: 0x8000_0002 + out.length,
    });
  }
  return out;
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
    // Small buckets: the tables grow during the warm-up, as they do in a first burst.
    general: { ...config.general, hashSize: Math.min(config.general.hashSize, SCRATCH_HASH_SIZE), lockFile: join(dir, `${name}.lock`), unix: { ...config.general.unix, path: join(dir, `${name}.ctl`) } },
    // The smallest send window (twice the ACK window): a bulk send of the scratch flows fills it, as a
    // real one does.
    ctsync: { ...config.ctsync, metrics: null, readyFile: null, notifyFifo: null, reconcileInterval: 0, sendWindow: 1 },
    ...(config.sync ? { sync: { ...config.sync, startupResync: false } } : {}),
  };
}

const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 1));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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

const fastOut = Buffer.alloc(256);

/**
 * What the addon does with a lone NEW event when the engine's gate is open:
 * its own encoder (`fastEncode`, the one the event socket's reads use) makes
 * the CT_NEW message under the shared counter's number, which goes out on
 * the link before the JS path runs. Otherwise, the JS path alone. Not the JS
 * encoder: fed a warm-up's own objects, it met shapes no cached entry has.
 */
function playFastPath(d: Daemon, events: NetlinkEvents, link: MemLink, read: Buffer, encode: LoneEncoder): void {
  const st = d.fastPathState;
  const seq = st === null ? 0 : st[FAST_STATE.SEQ]! >>> 0;
  const len = st !== null && st[FAST_STATE.ENGINE] === 1 ? encode(read, seq, fastOut) : -1;
  if (st === null || len <= 0) {
    events.feed(read);
    return;
  }
  link.send(fastOut.subarray(0, len));
  st[FAST_STATE.SEQ] = (seq + 1) | 0;
  st[FAST_STATE.LEN] = len;
  events.feed(read, seq);
}

type LoneEncoder = (msg: Buffer, seq: number, out: Buffer) => number;

/** The addon's lone-event encoder with a scratch node's filter, or null with an addon that has none. */
function loneEncoder(d: Daemon, table: NullTable, config: CtsyncConfig): LoneEncoder | null {
  const b = loadNative();
  if (typeof b.fastEncode !== 'function') return null;
  const dest = Buffer.alloc(16);
  const conf = fastPathConf({
    ownPortId: table.portId, filter: d.filter, tcpWindowTracking: config.sync?.tcpWindowTracking ?? false,
    omitTimeout: config.sync?.commitTimeout !== undefined, target: { fd: -1, dest },
  });
  const fastEncode = b.fastEncode.bind(b);
  return (msg, seq, out) => fastEncode(conf, msg, seq, out);
}

/**
 * Runs the scratch pair once and drops it. What it cannot do (a filter that
 * drops every synthetic flow, a phase that stalls) makes it warm less, not
 * fail; if it throws, the caller logs it and the daemon starts cold.
 */
export async function warmUp(config: CtsyncConfig, opts: WarmupOptions = {}): Promise<WarmupReport> {
  const flows = opts.flows ?? DEFAULT_WARMUP_FLOWS;
  const log = opts.log ?? silentLogger;
  const onPhase = opts.onPhase ?? ((): void => {});
  // Each phase after the first begins after a pause: TurboFan compiles in the background, and
  // what it had queued by then (its queue is short, and a phase marks more than it holds)
  // finishes there instead of in the daemon's first real burst.
  let phases = 0;
  const phase = async (p: WarmupPhase): Promise<void> => {
    if (phases++ > 0) await sleep(PHASE_PAUSE_MS);
    onPhase(p);
  };
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
  const nodes: { d: Daemon; events: NetlinkEvents; table: NullTable }[] = [];
  let received = 0;
  let committed = 0;
  let fastAdopted = 0;
  try {
    for (const [name, link] of [['a', linkA], ['b', linkB]] as const) {
      // Neither listens to the kernel: it decodes what feed() hands it.
      const events = new NetlinkEvents({ subscribe: false });
      const table = new NullTable();
      const d = new Daemon(scratchConfig(config, dir, name), { log, table, channel: link, events, aliveIntervalMs: SCRATCH_ALIVE_MS });
      nodes.push({ d, events, table });
      await d.start();
    }
    const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
    const deadline = t0 + DEADLINE_MS;
    // Entries moving show in the caches or the (null) kernel tables. Not the links' datagram
    // counts: two peers exchange ACKs on every alive interval, moving or not.
    const moved = (): number => a.table.written + b.table.written +
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
    const own = ownFlows(config);
    await phase('new');
    await feed(warmupReads(flows, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 3, own));
    await both(hasPeers);
    received = Math.min(a.d.external.ctSize, b.d.external.ctSize);
    // A peer's resync request: the bulk path sends the whole cache again. More than once: the
    // code compiled during the first is then run, and what it had not met yet (a full send
    // window) is met and compiled here rather than in the first real resync.
    await phase('resync');
    for (let i = 0; i < RESYNCS; i++) {
      if (i > 0) await sleep(RESYNC_PAUSE_MS);
      for (const n of nodes) {
        n.d.flushExternal();
        n.d.sync.requestResync();
      }
      await both(hasPeers);
    }
    await phase('commit');
    for (const n of nodes) committed += (await n.d.commit()).committed;
    await phase('update');
    await feed(warmupReads(flows, CT_NEW, 0, 4, own));
    await phase('destroy');
    await feed(warmupReads(flows, CT_DELETE, 0, 7, own));
    // Done when the peers have applied every CT_DEL. The acknowledgements of all but the last
    // window's have released their DEAD entries by then; the last waits for the alive timer.
    await both((d) => d.external.ctSize === 0);
    // One peer falls silent for a few alive intervals: the other's timer sends an ACK, then ALIVE
    // (two peers that hear each other exchange ACKs instead, as conntrackd's do), which the silent
    // one receives. A real daemon sends its first ALIVE a second after it starts; not idle at its
    // start here, so that the scratch nodes' first data goes out under HELLO, as a real burst's can.
    await phase('alive');
    linkB.muted = true;
    await sleep(3 * SCRATCH_ALIVE_MS);
    linkB.muted = false;
    // Flows come back: the tables reuse the slots their deletes freed. Last and as many as the
    // first phase's: what the one-off steps above threw away is compiled again here, and the
    // pause after it lets those compiles finish before the daemon starts.
    await phase('renew');
    await feed(warmupReads(flows, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 3, own));
    await both(hasPeers);
    // New flows one per read, as a quiet firewall's kernel reports them: the warm-up plays the
    // addon's fast path (fast-path.ts), whose messages the engines file as sent. Met first in the
    // real daemon, that path threw away its compiled event path in the middle of a burst.
    await phase('lone');
    const encoders = [loneEncoder(a.d, a.table, config), loneEncoder(b.d, b.table, config)] as const;
    const lone = warmupReads(LONE_EVENTS, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 3, [], 1, flows);
    for (const read of lone) {
      if (encoders[0] !== null) playFastPath(a.d, a.events, linkA, read, encoders[0]);
      if (encoders[1] !== null) playFastPath(b.d, b.events, linkB, read, encoders[1]);
      await turn();
    }
    await both(hasPeers);
    for (const n of nodes) fastAdopted += n.d.sync.stats().fastAdopted ?? 0;
    await sleep(PHASE_PAUSE_MS);
  } finally {
    for (const n of nodes) {
      try { await n.d.stop(); } catch { /* scratch */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  collectGarbage();
  const c = process.cpuUsage(c0);
  return { flows, received, committed, fastAdopted, cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0 };
}
