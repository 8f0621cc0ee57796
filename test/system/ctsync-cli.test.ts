// Every client option of the ctsync binary against running ctsync daemons
// (a pair in two namespaces over a real sync link), with the exit codes
// scripts test: 0 on success, 1 with "can't connect" on stderr when no daemon
// runs. Then Debian's primary-backup.sh, unchanged except for its
// CONNTRACKD_BIN/CONFIG/LOCK lines, drives ctsync through primary, backup
// (including restarting a dead daemon with -d) and fault.
//
// Starts: 2 network namespaces, 2 ctsync daemons (a third, daemonized by the
// script, replaces one of them at the end).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePair, CTSYNC_BIN, type Pair, type SyncNode } from '../helpers/syncpair.js';
import { isRoot, waitFor } from '../helpers/netns.js';

const PRIMARY_BACKUP = '/usr/share/doc/conntrackd/examples/sync/primary-backup.sh';
const PORTS = [41000, 41001, 41002];

function inject(p: Pair): void {
  for (const port of PORTS) {
    p.fw1.run('conntrack', ['-I', '-p', 'tcp', '-s', '10.99.0.2', '-d', '10.99.0.1', '--sport', String(port), '--dport', '80',
      '--state', 'ESTABLISHED', '-t', '300', '-u', 'SEEN_REPLY,ASSURED']);
  }
}

/** How many of the injected flows a dump (text, XML or JSON Lines) or kernel listing mentions. */
function countOurs(text: string): number {
  return text.split('\n').filter((l) => PORTS.some((p) => l.includes(`sport=${p} `) || l.includes(`<sport>${p}</sport>`) || l.includes(`"sport":${p},`))).length;
}

function kernelOurs(n: SyncNode): number {
  return countOurs(n.ns.run('conntrack', ['-L', '-p', 'tcp', '--dport', '80'], { allowFail: true }).stdout);
}

const extOurs = (n: SyncNode): number => countOurs(n.cli(['-e']).stdout);
const intOurs = (n: SyncNode): number => countOurs(n.cli(['-i']).stdout);

describe.skipIf(!isRoot)('ctsync client options against a running ctsync pair (2 namespaces, 2 daemons)', () => {
  let pair: Pair;
  let a: SyncNode;
  let b: SyncNode;
  let scriptDir: string;

  beforeAll(async () => {
    pair = makePair('ctsync', 'ctsync', 'cli');
    a = pair.a;
    b = pair.b;
    await a.start({ CTSYNC_LOG_LEVEL: 'info' });
    await b.start({ CTSYNC_LOG_LEVEL: 'info' });
    await new Promise((r) => setTimeout(r, 1000));
    inject(pair);
    await waitFor(() => extOurs(b) === PORTS.length, 'injected flows in fw2 external cache', 10_000);
    scriptDir = mkdtempSync(join(tmpdir(), 'ctsync-pb-'));
  });

  afterAll(async () => {
    await pair?.cleanup();
    if (scriptDir) rmSync(scriptDir, { recursive: true, force: true });
  });

  it('-s and every sub-option answer with conntrackd layouts (exit 0)', () => {
    const want: Array<[string[], RegExp[]]> = [
      [['-s'], [/^cache internal:\ncurrent active connections:\s+\d+\n/, /^cache external:$/m, /^traffic processed:$/m,
        /^UDP traffic \(active device=sync0\):$/m, /^message tracking:$/m]],
      [['-s', 'network'], [/^network statistics:\n\trecv:\n\t\tMalformed messages:/, /^sequence tracking statistics:$/m, /^UDP traffic \(active device=sync0\):$/m]],
      [['-s', 'cache'], [/^cache:internal\tactive objects:\s+\d+$/m, /^cache:external\tactive objects:\s+\d+$/m]],
      [['-s', 'runtime'], [/^daemon uptime: \d+ min\n\nnetlink stats:\n\tevents received:/, /^runtime stats:$/m]],
      [['-s', 'link'], [/^UDP traffic device=sync0 status=\S+ role=ACTIVE:\n\s+\d+ Bytes sent/]],
      [['-s', 'rsqueue'], [/^resent queue \(len=\d+\)\n/]],
      [['-s', 'queue'], [/^allocated queue nodes:\s+\d+\n\n/, /^queue \S+:\ncurrent elements:/m]],
      [['-s', 'process'], [/^(PID=\d+ type=\S+\n)*$/]],
      // conntrackd's prefix matching of the sub-argument: "net", "c" (cache), "r" (runtime), "ct" (plain -s).
      [['-s', 'net'], [/^network statistics:/]],
      [['-s', 'c'], [/^cache:internal/]],
      [['-s', 'r'], [/^daemon uptime:/]],
      [['-s', 'ct'], [/^cache internal:/]],
    ];
    for (const [args, res] of want) {
      const r = a.cli(args);
      expect(r.status, args.join(' ')).toBe(0);
      for (const re of res) expect(r.stdout, `${args.join(' ')}: ${re}`).toMatch(re);
    }
    // The internal cache of fw1 counts the injected flows.
    expect(Number(/^current active connections:\s+(\d+)$/m.exec(a.cli(['-s']).stdout)![1])).toBeGreaterThanOrEqual(PORTS.length);
    // "multicast" is the old name of "link": same output plus a warning.
    const mc = a.cli(['-s', 'multicast']);
    expect(mc.status).toBe(0);
    expect(mc.stdout).toMatch(/^UDP traffic device=sync0/);
    expect(mc.stderr).toMatch(/use `link' instead of `multicast'/);
    // An unknown sub-argument is an error.
    const bad = a.cli(['-s', 'bogus'], true);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/unknown parameter `bogus' for option `-s'/);
  });

  it('-s --json gives one JSON object per section', () => {
    const all = JSON.parse(a.cli(['-s', '--json']).stdout) as Record<string, unknown>;
    expect(all).toHaveProperty('caches.internal.active');
    expect(all).toHaveProperty('channel.ifname', 'sync0');
    const sections: Array<[string, string]> = [['network', 'network.recv'], ['cache', 'caches.external'], ['runtime', 'uptimeSec'],
      ['link', 'links'], ['rsqueue', 'rsqueue.len'], ['queue', 'queues.allocatedNodes'], ['process', 'processes']];
    for (const [sub, key] of sections) {
      const r = a.cli(['-s', sub, '--json']);
      expect(r.status, sub).toBe(0);
      expect(JSON.parse(r.stdout), sub).toHaveProperty(key);
    }
  });

  it('-i and -e dump the caches as text, XML (-x) and JSON Lines (--json)', () => {
    const int = a.cli(['-i']);
    expect(int.status).toBe(0);
    expect(int.stdout).toMatch(/^tcp\s+6 ESTABLISHED src=10\.99\.0\.2 dst=10\.99\.0\.1 sport=41000 dport=80 src=10\.99\.0\.1 dst=10\.99\.0\.2 sport=80 dport=41000 \[ASSURED\]/m);
    expect(countOurs(int.stdout)).toBe(PORTS.length);
    expect(countOurs(a.cli(['-i', 'ct']).stdout)).toBe(PORTS.length);
    const ext = b.cli(['-e']);
    expect(ext.status).toBe(0);
    // The external cache has no reply tuple.
    expect(ext.stdout).toMatch(/^tcp\s+6 ESTABLISHED src=10\.99\.0\.2 dst=10\.99\.0\.1 sport=41000 dport=80 \[ASSURED\]/m);
    expect(countOurs(b.cli(['-e', 'ct']).stdout)).toBe(PORTS.length);

    for (const [node, args] of [[a, ['-i', '-x']], [b, ['-e', '-x']]] as const) {
      const x = node.cli([...args]);
      expect(x.status, args.join(' ')).toBe(0);
      expect(x.stdout).toMatch(/<flow.*<meta direction="original">.*<sport>41000<\/sport>/);
      expect(countOurs(x.stdout)).toBe(PORTS.length);
    }
    for (const [node, args, hasReply] of [[a, ['-i', '--json'], true], [b, ['-e', '--json'], false]] as const) {
      const j = node.cli([...args]);
      expect(j.status, args.join(' ')).toBe(0);
      const rows = j.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { proto: string; state?: string; orig: { sport?: number }; reply?: unknown });
      const ours = rows.filter((r) => PORTS.includes(r.orig.sport ?? -1));
      expect(ours.length).toBe(PORTS.length);
      expect(ours[0]).toMatchObject({ proto: 'tcp', state: 'ESTABLISHED' });
      expect(ours[0]!.reply !== undefined).toBe(hasReply);
    }
    // -x must follow -i or -e.
    const x = a.cli(['-x'], true);
    expect(x.status).toBe(1);
    expect(x.stderr).toMatch(/Invalid parameters/);
  });

  it('-c commits the external cache into the kernel', () => {
    expect(kernelOurs(b)).toBe(0);
    const c = b.cli(['-c']);
    expect(c.status).toBe(0);
    expect(kernelOurs(b)).toBe(PORTS.length);
    expect(b.log()).toMatch(/committ/i);
    expect(c.stderr).toBe('');
    // The external cache is not cleared by a commit.
    expect(extOurs(b)).toBe(PORTS.length);
  });

  it('-f external, -n (resync request), -f internal, -R, -B and plain -f', async () => {
    expect(b.cli(['-f', 'external']).status).toBe(0);
    expect(extOurs(b)).toBe(0);
    // fw2 asks fw1 for a full resync: fw1's internal cache arrives again.
    expect(b.cli(['-n']).status).toBe(0);
    await waitFor(() => extOurs(b) === PORTS.length, 'fw2 external cache refilled after -n', 10_000);

    expect(a.cli(['-f', 'internal']).status).toBe(0);
    expect(intOurs(a)).toBe(0);
    // -R reloads the internal cache from the kernel table, without sending anything.
    expect(a.cli(['-R']).status).toBe(0);
    await waitFor(() => intOurs(a) === PORTS.length, 'fw1 internal cache reloaded by -R', 10_000);

    expect(b.cli(['-f']).status).toBe(0);
    expect(extOurs(b)).toBe(0);
    expect(intOurs(b)).toBe(0);
    // -B sends fw1's internal cache to fw2.
    expect(a.cli(['-B']).status).toBe(0);
    await waitFor(() => extOurs(b) === PORTS.length, 'fw2 external cache refilled by -B', 10_000);
  });

  it('-t flushes the kernel table after PurgeTimeout (5 s)', async () => {
    expect(kernelOurs(b)).toBe(PORTS.length);
    const t0 = Date.now();
    expect(b.cli(['-t']).status).toBe(0);
    // Not immediately…
    expect(kernelOurs(b)).toBe(PORTS.length);
    // …but after PurgeTimeout.
    await waitFor(() => kernelOurs(b) === 0, 'fw2 kernel entries purged after -t', 12_000, 200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4000);
  });

  it('-F flushes the kernel table now, without telling the peer', async () => {
    expect(kernelOurs(a)).toBe(PORTS.length);
    expect(a.cli(['-F']).status).toBe(0);
    await waitFor(() => kernelOurs(a) === 0, 'fw1 kernel entries flushed by -F', 5_000);
    // Flows the Filter ignores survive: the sync link's own UDP flow is still in the kernel.
    expect(a.ns.run('conntrack', ['-L', '-p', 'udp'], { allowFail: true }).stdout).toMatch(/src=172\.30\.1\.\d dst=172\.30\.1\.\d .*dport=3780/);
    // conntrackd sends no CT_DEL for a flush: the peer keeps its copies.
    await new Promise((r) => setTimeout(r, 500));
    expect(extOurs(b)).toBe(PORTS.length);
  });

  it('-v and -h print and exit 0; an unknown option exits 1', () => {
    const v = a.cli(['-v']);
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/^ctsync v\d+\.\d+\.\d+ .*conntrackd 1\.4\.7/);
    const h = a.cli(['-h']);
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/^Usage: ctsync \[commands\] \[options\]$/m);
    for (const opt of ['-c', '-f', '-F', '-R', '-B', '-n', '-t', '-s', '-i', '-e', '-k', '-x']) expect(h.stdout).toContain(`  ${opt}`);
    const u = a.cli(['-Z'], true);
    expect(u.status).toBe(1);
    expect(u.stderr).toMatch(/Unknown option: -Z/);
  });

  it('primary-backup.sh (Debian, binary/config/lock pointed at ctsync) runs primary, backup and fault', async () => {
    const wrapper = join(scriptDir, 'ctsync');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${CTSYNC_BIN} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const script = (n: SyncNode): string => {
      const path = join(scriptDir, `primary-backup-${n.ns.name}.sh`);
      const text = readFileSync(PRIMARY_BACKUP, 'utf8')
        .replace(/^CONNTRACKD_BIN=.*$/m, `CONNTRACKD_BIN=${wrapper}`)
        .replace(/^CONNTRACKD_LOCK=.*$/m, `CONNTRACKD_LOCK=${join(n.dir, 'daemon.lock')}`)
        .replace(/^CONNTRACKD_CONFIG=.*$/m, `CONNTRACKD_CONFIG=${n.confPath}`);
      writeFileSync(path, text);
      chmodSync(path, 0o755);
      return path;
    };
    const pbA = script(a);
    const pbB = script(b);

    // fw2 becomes primary: commit its external cache (fw1's flows) into its kernel, flush, resync, bulk to fw1.
    expect(kernelOurs(b)).toBe(0);
    const prim = b.ns.run(pbB, ['primary'], { allowFail: true, timeoutMs: 60_000 });
    expect(prim.status, prim.stderr).toBe(0);
    expect(kernelOurs(b)).toBe(PORTS.length);
    expect(intOurs(b)).toBe(PORTS.length);
    await waitFor(() => extOurs(a) === PORTS.length, 'fw1 external cache filled by fw2 bulk', 10_000);

    // fw1 becomes backup: -s ok, -t (kernel flush in 5 s), -n (resync from fw2).
    expect(a.cli(['-f', 'external']).status).toBe(0);
    const back = a.ns.run(pbA, ['backup'], { allowFail: true, timeoutMs: 60_000 });
    expect(back.status, back.stderr).toBe(0);
    await waitFor(() => extOurs(a) === PORTS.length, 'fw1 external cache refilled by -n', 10_000);

    // fault: -t only.
    const fault = a.ns.run(pbA, ['fault'], { allowFail: true, timeoutMs: 60_000 });
    expect(fault.status, fault.stderr).toBe(0);

    const bad = a.ns.run(pbA, ['sideways'], { allowFail: true });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/Usage: primary-backup\.sh/);

    // backup with no daemon running: the script removes the stale lock file and starts `ctsync -d`.
    expect(a.cli(['-k']).status).toBe(0);
    await waitFor(() => a.proc?.exitCode !== null, 'fw1 ctsync to exit after -k', 10_000);
    writeFileSync(join(a.dir, 'daemon.lock'), '');
    const restart = a.ns.run(pbA, ['backup'], { allowFail: true, timeoutMs: 60_000 });
    expect(restart.status, restart.stderr).toBe(0);
    // The script's first -s finds no daemon (that is how it decides to start one). As `conntrackd -d`,
    // `ctsync -d` returned once the daemon was up: its -t and -n after it reached the daemon.
    expect((restart.stdout + restart.stderr).match(/can't connect/g), restart.stderr).toHaveLength(1);
    expect(a.cli(['-s'], true).status, 'the daemon started by primary-backup.sh answers at once').toBe(0);
    // A second -d finds the first one's lock: it fails, and says so with exit 1.
    const second = a.ns.run(wrapper, ['-C', a.confPath, '-d'], { allowFail: true, timeoutMs: 60_000 });
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(/the daemon stopped while starting \(exit 1\)/);
    try {
      // fw2 may drop the restarted daemon's first messages (its new sequence can look like a
      // stale HELLO, src/sync/ftfw.ts isStaleHello) until its stall guard re-adopts the peer
      // (~3 s), so repeat -n every 2 s as an operator would.
      let lastAsk = 0;
      await waitFor(() => {
        if (extOurs(a) === PORTS.length) return true;
        if (Date.now() - lastAsk >= 2000) {
          lastAsk = Date.now();
          expect(a.cli(['-n']).status).toBe(0);
        }
        return false;
      }, 'fw1 external cache after -n to the restarted daemon', 15_000, 250);
    } catch (e) {
      process.stdout.write(`--- fw1 log ---\n${a.log().slice(-4000)}\n--- fw2 log ---\n${b.log().slice(-4000)}\n` +
        `--- fw2 -s network ---\n${b.cli(['-s', 'network'], true).stdout}\n--- fw1 -s network ---\n${a.cli(['-s', 'network'], true).stdout}\n`);
      throw e;
    } finally {
      a.cli(['-k'], true);
      await waitFor(() => !existsSync(a.socketPath), 'restarted daemon to exit after -k', 10_000);
    }
  });

  it('every client option exits 1 with "can\'t connect" when no daemon runs', async () => {
    // fw1's daemon was stopped above.
    expect(existsSync(a.socketPath)).toBe(false);
    const opts: string[][] = [['-c'], ['-f'], ['-f', 'internal'], ['-f', 'external'], ['-F'], ['-R'], ['-B'], ['-n'], ['-t'],
      ['-s'], ['-s', 'network'], ['-i'], ['-e'], ['-i', '-x'], ['-e', '--json'], ['-k']];
    for (const args of opts) {
      const r = a.cli(args, true);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(/can't connect: is conntrackd running\? appropriate permissions\?/);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    // The notify subcommand too.
    const n = a.ns.run(process.execPath, [CTSYNC_BIN, 'notify', 'master', '-C', a.confPath], { allowFail: true });
    expect(n.status).toBe(1);
    expect(n.stderr).toMatch(/can't connect/);
  });
});
