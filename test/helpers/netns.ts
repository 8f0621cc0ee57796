// Test hosts as network namespaces. Every namespace and process a test starts
// is registered here and removed by name or pid in cleanup(), which also runs
// on process exit, so a failing test leaves nothing behind.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';

let counter = 0;
const live = new Set<Lab>();

/** Removes every namespace and process of every live Lab (exit, signals). */
export function cleanupAllSync(): void {
  for (const lab of live) lab.cleanupSync();
}

process.on('exit', cleanupAllSync);

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded by timeoutMs) and throws on a non-zero exit unless allowFail. */
export function run(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number; input?: string } = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, input: opts.input, maxBuffer: 256 * 1024 * 1024 });
  const res = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (!opts.allowFail && res.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${res.status}: ${res.stderr.trim() || r.error?.message || ''}`);
  }
  return res;
}

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export class Netns {
  constructor(readonly name: string) {}

  get path(): string {
    return `/var/run/netns/${this.name}`;
  }

  /** Runs a command inside the namespace, synchronously. */
  run(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number; input?: string } = {}): RunResult {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  sh(script: string, opts: { allowFail?: boolean; timeoutMs?: number } = {}): RunResult {
    return this.run('sh', ['-c', script], opts);
  }
}

export class Lab {
  readonly id: string;
  private readonly namespaces: Netns[] = [];
  private readonly procs = new Set<ChildProcess>();

  constructor(tag = 't') {
    // Short and unique per process: names appear in `ip netns list` and must not collide between test files.
    this.id = `cts${process.pid}${tag}${++counter}`;
    live.add(this);
  }

  /** Creates a namespace with loopback up. */
  netns(suffix: string): Netns {
    const ns = new Netns(`${this.id}-${suffix}`);
    run('ip', ['netns', 'add', ns.name]);
    this.namespaces.push(ns);
    ns.run('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A veth pair between two namespaces, with optional addresses ("10.1.0.1/24"), brought up. */
  veth(a: Netns, aIf: string, b: Netns, bIf: string, aAddrs: string[] = [], bAddrs: string[] = []): void {
    run('ip', ['link', 'add', 'name', `${this.id.slice(0, 8)}x${counter}`, 'netns', a.name, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name]);
    // Rename inside the namespace: the temporary name only has to be unique in the root namespace for an instant.
    const tmp = `${this.id.slice(0, 8)}x${counter}`;
    a.run('ip', ['link', 'set', tmp, 'name', aIf]);
    for (const addr of aAddrs) a.run('ip', ['addr', 'add', addr, 'dev', aIf, ...(addr.includes(':') ? ['nodad'] : [])]);
    for (const addr of bAddrs) b.run('ip', ['addr', 'add', addr, 'dev', bIf, ...(addr.includes(':') ? ['nodad'] : [])]);
    a.run('ip', ['link', 'set', aIf, 'up']);
    b.run('ip', ['link', 'set', bIf, 'up']);
    counter++;
  }

  /**
   * A client and a server namespace, each on its own link to a router
   * namespace that forwards both families: interfaces c0 and s0 on the router,
   * eth0 on the others; the router is .1 / ::1 on each link, the hosts .2 /
   * ::2, with default routes through it. Prefixes as "10.1.0." and "fd01::".
   */
  routed(cli4: string, srv4: string, cli6: string, srv6: string): { cli: Netns; rtr: Netns; srv: Netns } {
    const cli = this.netns('cli');
    const rtr = this.netns('rtr');
    const srv = this.netns('srv');
    this.veth(cli, 'eth0', rtr, 'c0', [`${cli4}2/24`, `${cli6}2/64`], [`${cli4}1/24`, `${cli6}1/64`]);
    this.veth(rtr, 's0', srv, 'eth0', [`${srv4}1/24`, `${srv6}1/64`], [`${srv4}2/24`, `${srv6}2/64`]);
    for (const [ns, v4, v6] of [[cli, cli4, cli6], [srv, srv4, srv6]] as const) {
      ns.run('ip', ['route', 'add', 'default', 'via', `${v4}1`]);
      ns.run('ip', ['-6', 'route', 'add', 'default', 'via', `${v6}1`]);
    }
    rtr.run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    return { cli, rtr, srv };
  }

  /**
   * Makes the kernel track connections in `ns`: conntrack hooks register only
   * when a rule needs them, so add a stateful nft rule on every hook.
   */
  enableConntrack(ns: Netns): void {
    ns.run('nft', ['-f', '-'], {
      input: `table inet ctsync_test {
  chain pre { type filter hook prerouting priority 0; ct state new,established,related accept; }
  chain out { type filter hook output priority 0; ct state new,established,related accept; }
  chain forward_ { type filter hook forward priority 0; ct state new,established,related accept; }
}
`,
    });
  }

  /** Starts a long-running process inside `ns`; it is killed by pid in cleanup(). */
  spawn(ns: Netns | null, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const full = ns ? ['netns', 'exec', ns.name, cmd, ...args] : [cmd, ...args];
    const p = spawn(ns ? 'ip' : full.shift()!, ns ? full : full, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.procs.add(p);
    p.once('exit', () => this.procs.delete(p));
    return p;
  }

  async cleanup(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const p of this.procs) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      waits.push(new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          try { p.kill('SIGKILL'); } catch { /* gone */ }
          resolve();
        }, 3000);
        p.once('exit', () => { clearTimeout(t); resolve(); });
        try { p.kill('SIGTERM'); } catch { clearTimeout(t); resolve(); }
      }));
    }
    await Promise.all(waits);
    this.cleanupSync();
  }

  cleanupSync(): void {
    for (const p of this.procs) {
      try { p.kill('SIGKILL'); } catch { /* gone */ }
    }
    this.procs.clear();
    for (const ns of this.namespaces.splice(0)) {
      // Kill anything still running inside before deleting, or the namespace lingers.
      spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean)
        .forEach((pid) => { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } });
      spawnSync('ip', ['netns', 'del', ns.name]);
    }
    live.delete(this);
  }
}

/** Polls `fn` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 10_000, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const isRoot = process.getuid?.() === 0;
