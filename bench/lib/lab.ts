// Namespaces, processes and a two-firewall sync pair for bench/sync.ts.
// A trimmed copy of test/helpers/netns.ts and test/helpers/syncpair.ts (the
// build compiles only src/ and bench/). Every namespace and process is
// registered and removed by name or pid in cleanup(), also on exit/SIGINT.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sendRequest } from '../../src/control/client.js';
import { CTL } from '../../src/control/codes.js';

export type DaemonKind = 'conntrackd' | 'ctsync';

/** Repository root: dist/bench/lib → ../../.. ; bench/lib (ts-node) → ../.. */
const here = new URL('.', import.meta.url).pathname;
export const REPO_ROOT = resolve(here, here.includes('/dist/') ? '../../..' : '../..');
export const CTSYNC_BIN = join(REPO_ROOT, 'bin', 'ctsync.js');

let counter = 0;
const live = new Set<Lab>();
/** Config/log directories of SyncNodes not yet removed. */
const dirs = new Set<string>();

export function cleanupAllSync(): void {
  for (const lab of live) lab.cleanupSync();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}
process.on('exit', cleanupAllSync);

export interface RunResult { status: number; stdout: string; stderr: string }

export function run(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number; input?: string } = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, input: opts.input, maxBuffer: 64 << 20 });
  const res = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (!opts.allowFail && res.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${res.status}: ${res.stderr.trim() || r.error?.message || ''}`);
  }
  return res;
}

export class Netns {
  constructor(readonly name: string) {}
  get path(): string { return `/var/run/netns/${this.name}`; }
  run(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number; input?: string } = {}): RunResult {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }
}

export class Lab {
  readonly id: string;
  private readonly namespaces: Netns[] = [];
  private readonly procs = new Set<ChildProcess>();

  constructor(tag: string) {
    this.id = `ctb${process.pid}${tag}${++counter}`;
    live.add(this);
  }

  netns(suffix: string): Netns {
    const ns = new Netns(`${this.id}-${suffix}`);
    run('ip', ['netns', 'add', ns.name]);
    this.namespaces.push(ns);
    ns.run('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  veth(a: Netns, aIf: string, b: Netns, bIf: string, aAddr: string, bAddr: string): void {
    const tmp = `${this.id.slice(0, 8)}x${counter++}`;
    run('ip', ['link', 'add', 'name', tmp, 'netns', a.name, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name]);
    a.run('ip', ['link', 'set', tmp, 'name', aIf]);
    a.run('ip', ['addr', 'add', aAddr, 'dev', aIf]);
    b.run('ip', ['addr', 'add', bAddr, 'dev', bIf]);
    a.run('ip', ['link', 'set', aIf, 'up']);
    b.run('ip', ['link', 'set', bIf, 'up']);
  }

  /** Conntrack hooks register only when a rule needs them: add a stateful rule on every hook. */
  enableConntrack(ns: Netns): void {
    ns.run('nft', ['-f', '-'], {
      input: `table inet ctsync_bench {
  chain pre { type filter hook prerouting priority 0; ct state new,established,related accept; }
  chain out { type filter hook output priority 0; ct state new,established,related accept; }
  chain forward_ { type filter hook forward priority 0; ct state new,established,related accept; }
}
`,
    });
  }

  /** `ip netns exec` execs the command, so the child's pid is the daemon's pid. */
  spawn(ns: Netns, cmd: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.procs.add(p);
    p.once('exit', () => this.procs.delete(p));
    return p;
  }

  async cleanup(): Promise<void> {
    await Promise.all([...this.procs].map((p) => stopProc(p)));
    this.cleanupSync();
  }

  cleanupSync(): void {
    for (const p of this.procs) {
      try { p.kill('SIGKILL'); } catch { /* gone */ }
    }
    this.procs.clear();
    for (const ns of this.namespaces.splice(0)) {
      spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean)
        .forEach((pid) => { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } });
      spawnSync('ip', ['netns', 'del', ns.name]);
    }
    live.delete(this);
  }
}

function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise<void>((res) => {
    const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch { /* gone */ } res(); }, 5000);
    p.once('exit', () => { clearTimeout(t); res(); });
    try { p.kill('SIGTERM'); } catch { clearTimeout(t); res(); }
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface NodeConfig { local: string; peer: string; iface: string; port?: number }

export function renderConfig(c: NodeConfig, dir: string): string {
  // Same settings as test/helpers/syncpair.ts so both daemons get one config.
  return `Sync {
\tMode FTFW {
\t\tResendQueueSize 131072
\t\tPurgeTimeout 5
\t\tACKWindowSize 300
\t\tDisableExternalCache Off
\t}
\tUDP {
\t\tIPv4_address ${c.local}
\t\tIPv4_Destination_Address ${c.peer}
\t\tPort ${c.port ?? 3780}
\t\tInterface ${c.iface}
\t\tSndSocketBuffer 1249280
\t\tRcvSocketBuffer 1249280
\t\tChecksum on
\t}
}
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
\tFilter From Userspace {
\t\tAddress Ignore {
\t\t\tIPv4_address 127.0.0.1
\t\t\tIPv4_address 172.30.1.0/24
\t\t}
\t}
}
`;
}

export class SyncNode {
  readonly dir: string;
  readonly confPath: string;
  proc: ChildProcess | null = null;
  output = '';

  constructor(readonly lab: Lab, readonly ns: Netns, readonly kind: DaemonKind, cfg: NodeConfig) {
    this.dir = mkdtempSync(join(tmpdir(), `ctbench-${kind}-`));
    dirs.add(this.dir);
    this.confPath = join(this.dir, 'node.conf');
    writeFileSync(this.confPath, renderConfig(cfg, this.dir));
  }

  get socketPath(): string { return join(this.dir, 'daemon.ctl'); }
  get pid(): number { return this.proc?.pid ?? -1; }

  async start(env: Record<string, string> = {}): Promise<void> {
    const [cmd, args] = this.kind === 'conntrackd'
      ? ['conntrackd', ['-C', this.confPath]]
      : [process.execPath, [...(process.env.BENCH_CTSYNC_NODE_ARGS?.split(' ').filter(Boolean) ?? []), CTSYNC_BIN, '-C', this.confPath]];
    this.proc = this.lab.spawn(this.ns, cmd, args, { ...process.env, ...env });
    this.proc.stdout?.on('data', (d: Buffer) => { this.output += d.toString(); });
    this.proc.stderr?.on('data', (d: Buffer) => { this.output += d.toString(); });
    const end = Date.now() + 20_000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`${this.kind} exited ${this.proc.exitCode}: ${this.output}${this.log()}`);
      if (existsSync(this.socketPath)) {
        try {
          await this.request(CTL.STATS, 2000);
          return;
        } catch { /* not yet */ }
      }
      if (Date.now() > end) throw new Error(`${this.kind} in ${this.ns.name}: control socket not answering after 20 s`);
      await sleep(50);
    }
  }

  /** One raw control request (no client process: same cost for both daemons). */
  request(code: number, timeoutMs = 120_000): Promise<string> {
    return sendRequest(this.socketPath, code, { timeoutMs });
  }

  /** "current active connections" of the external (or internal) cache, from STATS. */
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
    if (this.proc) await stopProc(this.proc);
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

/** fw1 (172.30.1.1) and fw2 (172.30.1.2) joined by veth sync0, both running `kind`. */
export function makePair(kind: DaemonKind, tag: string): Pair {
  const lab = new Lab(tag);
  let fw1: Netns;
  let fw2: Netns;
  try {
    fw1 = lab.netns('fw1');
    fw2 = lab.netns('fw2');
    lab.veth(fw1, 'sync0', fw2, 'sync0', '172.30.1.1/24', '172.30.1.2/24');
    lab.enableConntrack(fw1);
    lab.enableConntrack(fw2);
  } catch (e) {
    lab.cleanupSync();
    throw e;
  }
  const a = new SyncNode(lab, fw1, kind, { local: '172.30.1.1', peer: '172.30.1.2', iface: 'sync0' });
  const b = new SyncNode(lab, fw2, kind, { local: '172.30.1.2', peer: '172.30.1.1', iface: 'sync0' });
  return {
    lab, fw1, fw2, a, b,
    async cleanup() {
      await Promise.all([a.stop(), b.stop()]);
      await lab.cleanup();
      a.removeDir();
      b.removeDir();
    },
  };
}
