// Starts two ctsync daemons in namespaces (real kernel conntrack, real UDP sync
// link): entries made on fw1 reach fw2's external cache, a commit on fw2 puts
// them in fw2's kernel table, and the client commands answer.
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { CTSYNC_BIN, makePair, type Pair } from '../helpers/syncpair.js';
import { waitFor } from '../helpers/netns.js';

describe('ctsync pair (starts two ctsync daemons in namespaces, kernel conntrack)', () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = makePair('ctsync', 'ctsync', 'cc');
    // fw1's daemon starts with the JIT warm-up: the pair below runs on a warmed-up sender.
    await pair.a.start({ CTSYNC_LOG_LEVEL: 'info', CTSYNC_WARMUP: 'on' });
    await pair.b.start({ CTSYNC_LOG_LEVEL: 'info' });
  });

  afterAll(async () => {
    await pair?.cleanup();
  });

  it('replicates injected entries and commits them into the peer kernel', async () => {
    for (let i = 0; i < 20; i++) {
      pair.fw1.run('conntrack', ['-I', '-p', 'tcp', '-s', '10.99.0.2', '-d', '10.99.0.1', '--sport', String(40000 + i), '--dport', '80',
        '--state', 'ESTABLISHED', '-t', '300', '-u', 'SEEN_REPLY,ASSURED', '-m', '7']);
    }
    await waitFor(() => pair.b.cli(['-e']).stdout.split('\n').filter((l) => l.includes('dport=80')).length === 20,
      '20 entries in fw2 external cache', 10_000);
    const ext = pair.b.cli(['-e']).stdout.split('\n').find((l) => l.includes('sport=40000'))!;
    expect(ext).toMatch(/^tcp\s+6 ESTABLISHED src=10\.99\.0\.2 dst=10\.99\.0\.1 sport=40000 dport=80 .*mark=7/);
    const internal = pair.a.cli(['-i']).stdout;
    expect(internal.split('\n').filter((l) => l.includes('dport=80')).length).toBe(20);

    const commit = pair.b.cli(['-c']);
    expect(commit.status).toBe(0);
    expect(commit.stdout).toMatch(/committed 20 entries/);
    const kernel = pair.fw2.run('conntrack', ['-L', '-p', 'tcp', '--dport', '80']).stdout;
    expect(kernel.split('\n').filter((l) => l.includes('src=10.99.0.2')).length).toBe(20);
    expect(kernel).toMatch(/ESTABLISHED src=10\.99\.0\.2 dst=10\.99\.0\.1 sport=40000 dport=80 src=10\.99\.0\.1 dst=10\.99\.0\.2 sport=80 dport=40000 \[ASSURED\] mark=7/);
  });

  it('the warm-up ran in fw1\'s daemon before it started, and a bad CTSYNC_WARMUP stops a start', () => {
    const log = readFileSync(join(pair.a.dir, 'daemon.log'), 'utf8');
    const line = log.split('\n').find((l) => l.includes('JIT warm-up done'));
    expect(line).toBeDefined();
    const r = JSON.parse(line!) as { flows: number; received: number; committed: number; fastAdopted: number };
    expect(r.received).toBe(r.flows);
    expect(r.committed).toBe(2 * r.flows);
    // It played the addon's fast path for lone events, so the real one's first meets compiled code.
    expect(r.fastAdopted).toBeGreaterThan(0);
    expect(log.indexOf('JIT warm-up done')).toBeLessThan(log.indexOf('ctsync started'));
    const bad = spawnSync(process.execPath, [CTSYNC_BIN, '-C', pair.a.confPath], {
      env: { ...process.env, CTSYNC_WARMUP: 'yes' }, encoding: 'utf8', timeout: 20_000,
    });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/CTSYNC_WARMUP=yes: expected 0, 1, on, off or a number of flows/);
  });

  it('propagates deletions', async () => {
    pair.fw1.run('conntrack', ['-D', '-p', 'tcp', '--sport', '40005', '--dport', '80']);
    await waitFor(() => !pair.b.cli(['-e']).stdout.includes('sport=40005 '), 'deleted entry gone from fw2 external cache', 10_000);
  });

  it('SIGHUP re-opens the log file (logrotate) and keeps the caches', async () => {
    const log = join(pair.a.dir, 'daemon.log');
    const before = pair.a.cli(['-i']).stdout.split('\n').filter((l) => l.includes('dport=80')).length;
    renameSync(log, `${log}.1`);
    pair.a.proc!.kill('SIGHUP');
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('configuration reloaded'), 'a new log file after SIGHUP', 10_000);
    expect(pair.a.cli(['-i']).stdout.split('\n').filter((l) => l.includes('dport=80')).length).toBe(before);
  });

  it('answers -s with conntrackd layouts and exits 1 when no daemon runs', async () => {
    const s = pair.a.cli(['-s']);
    expect(s.status).toBe(0);
    expect(s.stdout).toMatch(/^cache internal:\ncurrent active connections:\s+\d+/);
    expect(s.stdout).toMatch(/UDP traffic \(active device=sync0\):/);
    const net = pair.b.cli(['-s', 'network']).stdout;
    expect(net).toMatch(/network statistics:/);
    const k = pair.b.cli(['-k']);
    expect(k.status).toBe(0);
    await waitFor(() => pair.b.proc?.exitCode !== null, 'fw2 ctsync exit after -k', 10_000);
    const after = pair.b.cli(['-s'], true);
    expect(after.status).toBe(1);
    expect(after.stderr).toMatch(/can't connect/);
  });
});
