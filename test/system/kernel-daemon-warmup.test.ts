// The start-up warm-up with the real addon: two scratch daemons in process
// (event sources on netlink sockets that join no group, an in-memory link, no
// kernel table) replicate, resync, commit and delete the synthetic flows, then
// leave nothing behind: no files, no lock or control socket of the real config.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { ownFlows, warmUp } from '../../src/daemon/warmup.js';
import { warmupConfigText } from '../helpers/warmup-config.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function config(dir: string, mode: 'FTFW' | 'NOTRACK', extra = '', modeExtra = ''): ReturnType<typeof parseConfig>['config'] {
  return parseConfig(warmupConfigText(dir, mode, extra, modeExtra), 'warmup.conf').config;
}

const scratchDirs = (): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith('ctsync-warmup-'));

describe('JIT warm-up (real addon, scratch daemons in process)', () => {
  for (const mode of ['FTFW', 'NOTRACK'] as const) {
    it(`${mode}: every flow reaches the scratch peer, is resent, committed and deleted; nothing is left`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ctsync-wu-test-'));
      dirs.push(dir);
      const before = new Set(scratchDirs());
      const cfg = config(dir, mode);
      const r = await warmUp(cfg, { flows: 1000 });
      expect(r.flows).toBe(1000);
      // The host's own flows too: this configuration has no filter to drop them.
      const own = ownFlows(cfg).length;
      expect(own).toBe(2);
      expect(r.received).toBe(1000 + own);
      expect(r.committed).toBe(2 * (1000 + own));
      expect(r.cpuMs).toBeGreaterThan(0);
      expect(existsSync(join(dir, 'real.lock')) || existsSync(join(dir, 'real.ctl'))).toBe(false);
      expect(scratchDirs().filter((d) => !before.has(d))).toEqual([]);
    }, 60_000);
  }

  // Configurations under which a phase can never reach its end: the warm-up must notice that
  // nothing moves and go on (it once spun a core for its whole 10 s deadline here).
  for (const [what, extra, modeExtra] of [
    ['a State filter that drops the UPDATE and DESTROY events', 'Filter From Userspace { State Accept { ESTABLISHED CLOSED TIME_WAIT CLOSE_WAIT for TCP } }', ''],
    ['DisableExternalCache (peer entries go to the kernel, the external caches stay empty)', '', 'DisableExternalCache on'],
  ] as const) {
    it(`${what}: stops waiting when nothing moves, well before its 5 s deadline; nothing left`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ctsync-wu-test-'));
      dirs.push(dir);
      const before = new Set(scratchDirs());
      const c0 = process.cpuUsage();
      const r = await warmUp(config(dir, 'FTFW', extra, modeExtra), { flows: 1000 });
      const cpu = process.cpuUsage(c0);
      expect(r.wallMs).toBeLessThan(3000);
      expect((cpu.user + cpu.system) / 1000).toBeLessThan(3000);
      expect(scratchDirs().filter((d) => !before.has(d))).toEqual([]);
    }, 60_000);
  }

  it('a filter that drops every synthetic flow makes it warm less, not fail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctsync-wu-test-'));
    dirs.push(dir);
    const r = await warmUp(config(dir, 'FTFW', 'Filter From Userspace { Protocol Accept { SCTP } }'), { flows: 200 });
    expect(r.received).toBe(0);
  }, 60_000);
});
