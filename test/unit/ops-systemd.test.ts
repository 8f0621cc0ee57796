// sd_notify: protocol and policy with an injected sender, then the real
// native sendto() against a fake NOTIFY_SOCKET received by socat (Node cannot
// bind AF_UNIX datagram sockets), both a path socket and an abstract one.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNative } from '../../src/netlink/native.js';
import { SdNotifier, watchdogInterval } from '../../src/ops/systemd.js';

function recorder() {
  const sent: { path: string; text: string }[] = [];
  return { sent, send: (path: string, buf: Buffer) => void sent.push({ path, text: buf.toString('utf8') }) };
}

describe('SdNotifier with an injected sender', () => {
  it('is a no-op without NOTIFY_SOCKET (or with an invalid one)', () => {
    for (const env of [{}, { NOTIFY_SOCKET: '' }, { NOTIFY_SOCKET: 'relative/path' }, { NOTIFY_SOCKET: '@' }]) {
      const r = recorder();
      const n = new SdNotifier({ env, send: r.send });
      expect(n.enabled).toBe(false);
      expect(n.ready()).toBe(false);
      n.startWatchdog();
      n.stopping();
      expect(r.sent).toEqual([]);
    }
  });

  it('sends READY, STATUS, RELOADING, STOPPING as newline-separated KEY=VALUE datagrams', () => {
    const r = recorder();
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: '@/org/test/notify' }, send: r.send });
    expect(n.ready('synced with 172.30.1.2')).toBe(true);
    n.status('peer silent for 7s\nsecond line');
    n.reloading();
    n.stopping();
    expect(r.sent.map((s) => s.path)).toEqual(Array(4).fill('@/org/test/notify'));
    expect(r.sent[0]!.text).toBe('READY=1\nSTATUS=synced with 172.30.1.2\n');
    expect(r.sent[1]!.text).toBe('STATUS=peer silent for 7s second line\n');
    expect(r.sent[2]!.text).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+\n$/);
    expect(r.sent[3]!.text).toBe('STOPPING=1\n');
  });

  it('swallows sender errors and reports them as false', () => {
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: '/nonexistent' }, send: () => { throw new Error('ECONNREFUSED'); } });
    expect(n.ready()).toBe(false);
    expect(n.watchdog()).toBe(false);
  });

  it('derives the watchdog interval from WATCHDOG_USEC/2 and WATCHDOG_PID', () => {
    expect(watchdogInterval({})).toBeNull();
    expect(watchdogInterval({ WATCHDOG_USEC: '30000000' })).toBe(15_000);
    expect(watchdogInterval({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }, 2)).toBeNull();
    expect(watchdogInterval({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '2' }, 2)).toBe(15_000);
    expect(watchdogInterval({ WATCHDOG_USEC: 'junk' })).toBeNull();
  });

  it('pings WATCHDOG=1 periodically, only while healthy, and stops on STOPPING', async () => {
    const r = recorder();
    let healthy = true;
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '40000' }, send: r.send, healthy: () => healthy });
    expect(n.watchdogIntervalMs).toBe(20);
    n.startWatchdog();
    const end = Date.now() + 3000;
    while (r.sent.filter((s) => s.text === 'WATCHDOG=1\n').length < 2 && Date.now() < end) await new Promise((res) => setTimeout(res, 10));
    expect(r.sent.filter((s) => s.text === 'WATCHDOG=1\n').length).toBeGreaterThanOrEqual(2);
    healthy = false;
    await new Promise((res) => setTimeout(res, 30));
    const frozen = r.sent.length;
    await new Promise((res) => setTimeout(res, 80));
    expect(r.sent.length).toBe(frozen);
    healthy = true;
    n.stopping();
    const after = r.sent.length;
    await new Promise((res) => setTimeout(res, 80));
    expect(r.sent.length).toBe(after);
  });
});

// --- the real thing --------------------------------------------------------

const hasSocat = spawnSync('socat', ['-V']).status === 0;
let nativeOk = false;
try {
  nativeOk = typeof loadNative().sendUnixDatagram === 'function';
} catch {
  nativeOk = false;
}

describe.skipIf(!hasSocat || !nativeOk)('SdNotifier through the native addon to a socat NOTIFY_SOCKET', () => {
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGTERM');
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** socat prints each datagram it receives on stdout. */
  function receiver(address: string): { out: () => string; child: ChildProcess } {
    const child = spawn('socat', ['-u', address, '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d.toString()));
    return { out: () => out, child };
  }

  async function until(cond: () => boolean, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('delivers to a path socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctsync-sd-'));
    dirs.push(dir);
    const sock = join(dir, 'notify');
    const rx = receiver(`UNIX-RECV:${sock}`);
    await until(() => existsSync(sock));
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: sock } }); // default sender: native sendUnixDatagram
    expect(n.ready('loaded 42 entries')).toBe(true);
    await until(() => rx.out().includes('STATUS=loaded 42 entries\n'));
    expect(rx.out()).toBe('READY=1\nSTATUS=loaded 42 entries\n');
  });

  it('delivers to an abstract socket (@name)', async () => {
    const name = `ctsync-test-${process.pid}-${Date.now()}`;
    const rx = receiver(`ABSTRACT-RECV:${name}`);
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: `@${name}` } });
    // socat binds asynchronously; until then sendto() fails (ECONNREFUSED) and notify() returns false.
    await until(() => n.watchdog());
    await until(() => rx.out().includes('WATCHDOG=1\n'));
    expect(n.stopping()).toBe(true);
    await until(() => rx.out().includes('STOPPING=1\n'));
  });

  it('returns false when nobody listens', () => {
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: `@ctsync-nobody-${process.pid}-${Date.now()}` } });
    expect(n.ready()).toBe(false);
  });
});
