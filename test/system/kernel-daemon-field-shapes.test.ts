// Starts a node process running the warm-up's scratch pair (two daemons in
// process with the real addon's event sources, an in-memory link) under V8's
// --trace-generalization, and checks that once the pair has replicated its
// first flows, the later work (a resync, a commit, UPDATE and DESTROY events)
// changes no field of the per-message paths' objects from constant to mutable
// nor from one representation to another. Each such change throws away the
// optimized code that relied on the field; before settleFields, the first
// resync deoptimized the whole transmit path and cost a cold daemon's resync
// a third of its rate (bench/README.md, "Hidden-class fields that changed after
// the first burst"). Needs the build (npm test makes it first).
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/syncpair.js';
import { warmupConfigText } from '../helpers/warmup-config.js';

const PROBE = join(REPO_ROOT, 'test', 'helpers', 'shape-probe.mjs');
/** The objects whose fields the per-message paths read and write. */
const HOT = /dist\/src\/(sync|cache|channel|wire|netlink)\//;
const LINE = /^\[generalizing\]([^:]+):(\S+)->(\S+) \(([^)]*)\) \[(.*)\]$/;

interface Change { field: string; from: string; to: string; where: string }

/** Runs the probe; V8's generalization lines of our hot files, grouped by the phase they happened in. */
function probe(flows: number): { phases: Map<string, Change[]>; all: number; done: string | undefined } {
  // V8 prints its trace with C stdio: into a file (a pipe is non-blocking under
  // Node, and stdio drops what a full pipe refuses). --no-sparkplug: V8 11.3's
  // trace aborts when it meets a baseline frame (the fields are the same).
  const dir = mkdtempSync(join(tmpdir(), 'ctsync-shapes-'));
  let out: string;
  try {
    const conf = join(dir, 'probe.conf');
    writeFileSync(conf, warmupConfigText(dir));
    const fd = openSync(join(dir, 'trace.txt'), 'w');
    let r;
    try {
      r = spawnSync(process.execPath, ['--no-sparkplug', '--max-semi-space-size=1', '--trace-generalization', PROBE, conf, String(flows)],
        { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', fd, 'pipe'] });
    } finally {
      closeSync(fd);
    }
    if (r.status !== 0) throw new Error(`shape probe exited ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(-2000)}`);
    out = readFileSync(join(dir, 'trace.txt'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const phases = new Map<string, Change[]>();
  let cur = 'start';
  let all = 0;
  let done: string | undefined;
  phases.set(cur, []);
  for (const l of out.split('\n')) {
    // console.log's line may land after a partial line of V8's buffered trace.
    const d = l.indexOf('--- done ');
    if (d >= 0) done = l.slice(d + 9);
    const m = LINE.exec(l);
    if (!m) continue;
    // The probe's phase marker: a generalization of a field of its own (see shape-probe.mjs).
    const p = /^phase_(\w+)$/.exec(m[1]!);
    if (p) {
      cur = p[1]!;
      phases.set(cur, []);
      continue;
    }
    all++;
    if (HOT.test(m[5]!)) phases.get(cur)!.push({ field: m[1]!, from: m[2]!, to: m[3]!, where: m[5]!.replace(/file:\/\/\S*?dist\//, '') });
  }
  return { phases, all, done };
}

/** A change that invalidates code: constant → mutable, or a new representation of a field that had one. */
function invalidates(c: Change): boolean {
  const rep = (s: string): string => s[0]!;
  const becameMutable = c.from.includes(';const}') && c.to.includes(';mutable}');
  const newRep = rep(c.from) !== 'v' && rep(c.from) !== rep(c.to);
  return becameMutable || newRep;
}

describe('V8 field shapes of the per-message paths (node under --trace-generalization, real addon)', () => {
  it('after the first flows, a resync, a commit, UPDATEs, DESTROYs, ALIVEs and flows that come back change no field of sync, cache, channel, wire or netlink objects', () => {
    const { phases, all, done } = probe(1024);
    expect(done, 'the probe finished').toBeDefined();
    // The synthetic flows and the host's own two (loopback, the sync link's datagrams), which this
    // configuration does not filter.
    expect(JSON.parse(done!)).toMatchObject({ flows: 1024, received: 1026, committed: 2052 });
    // The trace is read: the first flows do make our fields mutable (their first stores).
    expect(all).toBeGreaterThan(100);
    expect(phases.get('new')!.filter(invalidates).length).toBeGreaterThan(0);
    for (const phase of ['resync', 'commit', 'update', 'destroy', 'alive', 'renew']) {
      expect(phases.get(phase), `phase ${phase} ran`).toBeDefined();
      expect(phases.get(phase)!.filter(invalidates), `fields changed during the ${phase}`).toEqual([]);
    }
  }, 90_000);
});
