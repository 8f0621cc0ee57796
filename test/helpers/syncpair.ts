// Two namespaced firewalls joined by a sync link, each running a sync daemon
// (Debian's conntrackd 1.4.7 or ctsync) with its own config, lock file and
// control socket in a private directory. Used by the interop and failover
// tests and by bench/.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, type Netns, waitFor } from './netns.js';
import { sendRequest } from '../../src/control/client.js';
import { CTL } from '../../src/control/codes.js';

/** Config directories not yet removed: gone on exit even if a caller crashed before cleanup(). */
const dirs = new Set<string>();
process.on('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export type DaemonKind = 'conntrackd' | 'ctsync';

/** The repository root, from test/helpers or from its compiled copy in dist/test/helpers (bench/ uses it). */
export const REPO_ROOT = ((): string => {
  let d = dirname(new URL(import.meta.url).pathname);
  while (!existsSync(join(d, 'package.json')) && d !== '/') d = dirname(d);
  return d;
})();
export const CTSYNC_BIN = join(REPO_ROOT, 'bin', 'ctsync.js');

/** The node flags on bin/ctsync.js's shebang line: test and bench daemons run as installed ones do. */
export function daemonNodeFlags(): string[] {
  const first = readFileSync(CTSYNC_BIN, 'utf8').split('\n', 1)[0] ?? '';
  return /^#!\S*env -S node\b(.*)$/.exec(first)?.[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
}

export interface NodeConfig {
  mode?: 'FTFW' | 'NOTRACK';
  local: string;
  peer: string;
  iface: string;
  port?: number;
  /** Extra lines inside Sync { Mode X { … } }. */
  modeExtra?: string[];
  /** Extra lines inside the UDP block. */
  udpExtra?: string[];
  /** Extra lines inside Sync, after the link block (e.g. an Options block). */
  syncExtra?: string[];
  /** Extra lines inside General. */
  generalExtra?: string[];
  /** Extra top-level text (e.g. a Ctsync { } section). */
  tail?: string;
  ignoreCidrs?: string[];
}

export function renderConfig(c: NodeConfig, dir: string): string {
  const ignore = ['127.0.0.1', ...(c.ignoreCidrs ?? [])];
  return `Sync {
\tMode ${c.mode ?? 'FTFW'} {
${c.mode === 'NOTRACK' ? '' : '\t\tResendQueueSize 131072\n\t\tACKWindowSize 300\n'}\t\tPurgeTimeout 5
\t\tDisableExternalCache Off
${(c.modeExtra ?? []).map((l) => `\t\t${l}\n`).join('')}\t}
\tUDP {
\t\tIPv4_address ${c.local}
\t\tIPv4_Destination_Address ${c.peer}
\t\tPort ${c.port ?? 3780}
\t\tInterface ${c.iface}
\t\tSndSocketBuffer 1249280
\t\tRcvSocketBuffer 1249280
\t\tChecksum on
${(c.udpExtra ?? []).map((l) => `\t\t${l}\n`).join('')}\t}
${(c.syncExtra ?? []).map((l) => `\t${l}\n`).join('')}}
General {
\tSystemd off
\tHashSize 8192
\tHashLimit 300000
\tLogFile ${dir}/daemon.log
\tSyslog off
\tLockFile ${dir}/daemon.lock
\tUNIX { Path ${dir}/daemon.ctl }
\tNetlinkBufferSize 2097152
\tNetlinkBufferSizeMaxGrowth 134217728
${(c.generalExtra ?? []).map((l) => `\t${l}\n`).join('')}\tFilter From Userspace {
\t\tAddress Ignore {
${ignore.map((a) => `\t\t\tIPv4_address ${a}\n`).join('')}\t\t}
\t}
}
${c.tail ?? ''}`;
}

export class SyncNode {
  readonly dir: string;
  readonly confPath: string;
  proc: ChildProcess | null = null;
  output = '';

  constructor(readonly lab: Lab, readonly ns: Netns, readonly kind: DaemonKind, readonly cfg: NodeConfig) {
    this.dir = mkdtempSync(join(tmpdir(), `ctsync-${kind}-`));
    dirs.add(this.dir);
    this.confPath = join(this.dir, 'node.conf');
    writeFileSync(this.confPath, renderConfig(cfg, this.dir));
  }

  get socketPath(): string {
    return join(this.dir, 'daemon.ctl');
  }

  /** Starts the daemon in the foreground inside the namespace and waits until its control socket answers. */
  async start(env: Record<string, string> = {}): Promise<void> {
    const [cmd, args] = this.kind === 'conntrackd'
      ? ['conntrackd', ['-C', this.confPath]]
      // CTSYNC_NODE_ARGS: extra node flags for profiling (--cpu-prof is refused in NODE_OPTIONS).
      : [process.execPath, [...daemonNodeFlags(), ...((env.CTSYNC_NODE_ARGS ?? process.env.CTSYNC_NODE_ARGS)?.split(' ').filter(Boolean) ?? []),
        CTSYNC_BIN, '-C', this.confPath]];
    this.output = '';
    this.proc = this.lab.spawn(this.ns, cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout?.on('data', (d: Buffer) => { this.output += d.toString(); });
    this.proc.stderr?.on('data', (d: Buffer) => { this.output += d.toString(); });
    await waitFor(() => {
      if (this.proc?.exitCode !== null) throw new Error(`${this.kind} exited ${this.proc?.exitCode}: ${this.output}${this.log()}`);
      return existsSync(this.socketPath) && this.cli(['-s'], true).status === 0;
    }, `${this.kind} control socket in ${this.ns.name}`, 15_000, 100);
  }

  /** Runs the same binary in client mode against this node's config. */
  cli(args: string[], allowFail = false): { status: number; stdout: string; stderr: string } {
    return this.kind === 'conntrackd'
      ? this.ns.run('conntrackd', ['-C', this.confPath, ...args], { allowFail, timeoutMs: 60_000 })
      : this.ns.run(process.execPath, [CTSYNC_BIN, '-C', this.confPath, ...args], { allowFail, timeoutMs: 60_000 });
  }

  get pid(): number {
    return this.proc?.pid ?? -1;
  }

  /** One raw control request, without a client process (the same cost for both daemons). */
  request(code: number, timeoutMs = 120_000): Promise<string> {
    return sendRequest(this.socketPath, code, { timeoutMs });
  }

  /** "current active connections" of a cache, from the conntrackd-layout STATS reply. */
  async cacheCount(which: 'external' | 'internal' = 'external'): Promise<number> {
    const text = await this.request(CTL.STATS, 10_000);
    const m = new RegExp(`cache ${which}:\\s*\\ncurrent active connections:\\s*(\\d+)`).exec(text);
    if (!m) throw new Error(`${this.kind}: no ${which} cache count in -s output: ${text.slice(0, 200)}`);
    return Number(m[1]);
  }

  log(): string {
    const p = join(this.dir, 'daemon.log');
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const keep = process.env.CTSYNC_DAEMON_OUTPUT;
    // With CTSYNC_DAEMON_OUTPUT, wait for 'close' (stdout and stderr read to the end), bounded.
    const closed = keep ? new Promise<void>((res) => { p.once('close', () => res()); setTimeout(res, 2000).unref(); }) : null;
    await new Promise<void>((res) => {
      const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch { /* gone */ } res(); }, 5000);
      p.once('exit', () => { clearTimeout(t); res(); });
      p.kill('SIGTERM');
    });
    if (keep && closed) {
      // Profiling aid: V8's --trace-opt / --trace-deopt (in CTSYNC_NODE_ARGS) print to the daemon's stdout.
      await closed;
      mkdirSync(keep, { recursive: true });
      writeFileSync(join(keep, `${this.kind}-${p.pid}.txt`), this.output);
    }
  }

  removeDir(): void {
    rmSync(this.dir, { recursive: true, force: true });
    dirs.delete(this.dir);
  }
}

export interface Pair {
  lab: Lab;
  fw1: Netns;
  fw2: Netns;
  a: SyncNode;
  b: SyncNode;
  cleanup(): Promise<void>;
}

/**
 * fw1 (172.30.1.1) and fw2 (172.30.1.2) joined by veth "sync0"; both track
 * connections. Kinds choose which daemon runs on each side.
 */
/**
 * Builds namespaces with `build` (which must return fw1 and fw2), then one
 * SyncNode on each; if anything fails on the way, everything made so far is
 * removed. Cleanup stops the daemons before the namespaces go.
 */
function withNodes<T extends { fw1: Netns; fw2: Netns }>(lab: Lab, build: () => T,
  nodes: (t: T) => { a: SyncNode; b: SyncNode }, extraDirs: string[] = []): T & Pair {
  let t: T;
  let ab: { a: SyncNode; b: SyncNode };
  try {
    t = build();
    ab = nodes(t);
  } catch (e) {
    lab.cleanupSync();
    for (const d of extraDirs) rmSync(d, { recursive: true, force: true });
    throw e;
  }
  const { a, b } = ab;
  return {
    ...t, lab, a, b,
    async cleanup() {
      await Promise.all([a.stop(), b.stop()]);
      await lab.cleanup();
      a.removeDir();
      b.removeDir();
      for (const d of extraDirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

export function makePair(kindA: DaemonKind, kindB: DaemonKind, tag = 'p',
  extra: { a?: Partial<NodeConfig>; b?: Partial<NodeConfig> } = {}): Pair {
  const lab = new Lab(tag);
  return withNodes(lab, () => {
    const fw1 = lab.netns('fw1');
    const fw2 = lab.netns('fw2');
    lab.veth(fw1, 'sync0', fw2, 'sync0', ['172.30.1.1/24'], ['172.30.1.2/24']);
    lab.enableConntrack(fw1);
    lab.enableConntrack(fw2);
    return { fw1, fw2 };
  }, ({ fw1, fw2 }) => ({
    a: new SyncNode(lab, fw1, kindA, { local: '172.30.1.1', peer: '172.30.1.2', iface: 'sync0', ignoreCidrs: ['172.30.1.0/24'], ...extra.a }),
    b: new SyncNode(lab, fw2, kindB, { local: '172.30.1.2', peer: '172.30.1.1', iface: 'sync0', ignoreCidrs: ['172.30.1.0/24'], ...extra.b }),
  }));
}

export interface SegmentPair extends Pair {
  /** A third host on the sync segment (172.30.1.66 on eth0): the attacker of the security tests. */
  att: Netns;
  /** A private directory for the test's files (keys, certificates), removed with the pair. */
  dir: string;
}

/**
 * fw1 (172.30.1.1), fw2 (172.30.1.2) and att (172.30.1.66) on one bridge
 * (br0 in namespace sw), both firewalls running ctsync.
 */
export function makeSegmentPair(tag: string,
  extraOf: (dir: string) => { a?: Partial<NodeConfig>; b?: Partial<NodeConfig> } = () => ({})): SegmentPair {
  const lab = new Lab(tag);
  const dir = mkdtempSync(join(tmpdir(), 'ctsync-segment-'));
  const extra = extraOf(dir);
  return withNodes(lab, () => {
    const fw1 = lab.netns('fw1');
    const fw2 = lab.netns('fw2');
    const att = lab.netns('att');
    const sw = lab.netns('sw');
    sw.run('ip', ['link', 'add', 'br0', 'type', 'bridge']);
    sw.run('ip', ['link', 'set', 'br0', 'up']);
    lab.veth(fw1, 'sync0', sw, 'p1', ['172.30.1.1/24']);
    lab.veth(fw2, 'sync0', sw, 'p2', ['172.30.1.2/24']);
    lab.veth(att, 'eth0', sw, 'p3', ['172.30.1.66/24']);
    for (const p of ['p1', 'p2', 'p3']) sw.run('ip', ['link', 'set', p, 'master', 'br0']);
    lab.enableConntrack(fw1);
    lab.enableConntrack(fw2);
    return { fw1, fw2, att, dir };
  }, ({ fw1, fw2 }) => {
    const cfg = { iface: 'sync0', ignoreCidrs: ['172.30.1.0/24'] };
    return {
      a: new SyncNode(lab, fw1, 'ctsync', { ...cfg, local: '172.30.1.1', peer: '172.30.1.2', ...extra.a }),
      b: new SyncNode(lab, fw2, 'ctsync', { ...cfg, local: '172.30.1.2', peer: '172.30.1.1', ...extra.b }),
    };
  }, [dir]);
}

export interface RelayedPair extends Pair {
  mid: Netns;
  /** Starts the damaging relay in the middle namespace (see udp-relay.mjs). */
  startRelay(opts: { seed: number; drop: number; dup: number; reorder: number; delayMs?: number }): void;
}

/**
 * fw1 (10.0.1.1) — mid — fw2 (10.0.2.2): each daemon's peer address is the
 * relay in `mid`, which forwards between the two links and damages traffic.
 */
export function makeRelayedPair(kindA: DaemonKind, kindB: DaemonKind, tag = 'r',
  extra: { a?: Partial<NodeConfig>; b?: Partial<NodeConfig> } = {}): RelayedPair {
  const lab = new Lab(tag);
  const pair = withNodes(lab, () => {
    const fw1 = lab.netns('fw1');
    const fw2 = lab.netns('fw2');
    const mid = lab.netns('mid');
    lab.veth(fw1, 'sync0', mid, 'a0', ['10.0.1.1/24'], ['10.0.1.254/24']);
    lab.veth(fw2, 'sync0', mid, 'b0', ['10.0.2.2/24'], ['10.0.2.254/24']);
    lab.enableConntrack(fw1);
    lab.enableConntrack(fw2);
    return { fw1, fw2, mid };
  }, ({ fw1, fw2 }) => ({
    a: new SyncNode(lab, fw1, kindA, { local: '10.0.1.1', peer: '10.0.1.254', iface: 'sync0', ignoreCidrs: ['10.0.0.0/16'], ...extra.a }),
    b: new SyncNode(lab, fw2, kindB, { local: '10.0.2.2', peer: '10.0.2.254', iface: 'sync0', ignoreCidrs: ['10.0.0.0/16'], ...extra.b }),
  }));
  return {
    ...pair,
    startRelay(opts) {
      const cfg = { a: { bind: '10.0.1.254', peer: '10.0.1.1' }, b: { bind: '10.0.2.254', peer: '10.0.2.2' }, port: 3780, ...opts };
      lab.spawn(pair.mid, process.execPath, [join(REPO_ROOT, 'test', 'helpers', 'udp-relay.mjs'), JSON.stringify(cfg)]);
    },
  };
}
