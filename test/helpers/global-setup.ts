// Last line of defence for system tests: whatever a crashed or killed test
// worker left behind (namespaces named cts<pid>…, the processes inside them)
// is removed when the run ends. Only names this suite creates are touched.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

function sweep(): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0];
    const m = /^cts(\d+)/.exec(name ?? '');
    // Names carry the creating worker's pid: leave namespaces of live workers (another run) alone.
    if (!name || !m || existsSync(`/proc/${m[1]}`)) continue;
    const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split('\n').filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
    spawnSync('ip', ['netns', 'del', name]);
  }
}

/**
 * System tests skip when not root or a tool is missing, which is right on a
 * laptop and wrong in CI: there a skip would hide a broken set-up, so fail.
 */
function requireEverythingInCI(): void {
  if (process.env.CI !== 'true') return;
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const tool of ['conntrack', 'conntrackd', 'keepalived', 'nft', 'iptables', 'ip', 'tcpdump', 'socat', 'openssl']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) missing.push(tool);
  }
  if (missing.length) throw new Error(`CI must run every system test; missing: ${missing.join(', ')}`);
}

export default function setup(): () => void {
  requireEverythingInCI();
  return sweep;
}
