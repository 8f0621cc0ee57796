import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { daemonNodeFlags } from '../helpers/syncpair.js';
import { daemonNodeFlags as topologyFlags, CTSYNC_BIN } from '../helpers/topology.js';

describe('bin/ctsync.js launcher', () => {
  it('carries the daemon node flags on its shebang line, and test launchers read the same', () => {
    expect(daemonNodeFlags()).toEqual(['--max-semi-space-size=4']);
    expect(topologyFlags()).toEqual(daemonNodeFlags());
  });

  it('runs directly through its shebang (env -S)', () => {
    const r = spawnSync(CTSYNC_BIN, ['-v'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ctsync v/);
  });
});
