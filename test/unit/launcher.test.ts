import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { daemonNodeFlags, REPO_ROOT } from '../helpers/syncpair.js';
import { daemonNodeFlags as topologyFlags, CTSYNC_BIN } from '../helpers/topology.js';

describe('bin/ctsync.js launcher', () => {
  it('carries the daemon node flags on its shebang line, and test launchers read the same', () => {
    expect(daemonNodeFlags()).toEqual(['--max-semi-space-size=1', '--concurrent-recompilation-queue-length=64', '--initial-old-space-size=64']);
    expect(topologyFlags()).toEqual(daemonNodeFlags());
  });

  it('runs directly through its shebang (env -S)', () => {
    const r = spawnSync(CTSYNC_BIN, ['-v'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ctsync v/);
  });

  it('loads no node:tls, node:crypto or node:http on the daemon path until a config needs them', () => {
    // Each costs every daemon RSS; TLS links, key files and the metrics endpoint import them when configured.
    const entry = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'cli', 'daemon-main.js')).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e',
      `await import(${JSON.stringify(entry)}); process.stdout.write(JSON.stringify(process.moduleLoadList))`],
    { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const loaded = JSON.parse(r.stdout) as string[];
    expect(loaded).toContain('NativeModule dgram');
    for (const m of ['tls', 'crypto', 'http']) expect(loaded).not.toContain(`NativeModule ${m}`);
  });
});
