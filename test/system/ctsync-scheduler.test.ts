// The daemon's main thread follows General { Scheduler } (Type RR/FIFO and
// Priority, as conntrackd; Type OTHER is ctsync's). Without the block both
// ctsync and conntrackd 1.4.7 take SCHED_RR 99. Read back from /proc/<pid>/stat. Starts conntrackd and ctsync ×3 in network namespaces.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { isRoot } from '../helpers/netns.js';
import { makePair, type Pair } from '../helpers/syncpair.js';

const POLICY = ['OTHER', 'FIFO', 'RR'];

/** [policy name, rt_priority] of a process's main thread (proc(5): fields 41 and 40). */
function sched(pid: number): [string, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3
  return [POLICY[Number(f[41 - 3])] ?? `policy ${f[41 - 3]}`, Number(f[40 - 3])];
}

const block = (type: string, prio?: number): string[] =>
  ['Scheduler {', `\tType ${type}`, ...(prio === undefined ? [] : [`\tPriority ${prio}`]), '}'];

describe.skipIf(!isRoot)('daemon CPU scheduling (conntrackd, ctsync ×3)', () => {
  let pair: Pair | null = null;
  afterEach(async () => {
    await pair?.cleanup();
    pair = null;
  });

  it('without a Scheduler block ctsync takes SCHED_RR 99, as conntrackd does', async () => {
    pair = makePair('ctsync', 'conntrackd', 'sd');
    await pair.a.start();
    await pair.b.start();
    expect(sched(pair.b.pid)).toEqual(['RR', 99]); // conntrackd's default, the reference
    expect(sched(pair.a.pid)).toEqual(['RR', 99]);
  });

  it('follows Scheduler { Type FIFO Priority 30 } and Type OTHER', async () => {
    pair = makePair('ctsync', 'ctsync', 'sf', { a: { generalExtra: block('FIFO', 30) }, b: { generalExtra: block('OTHER') } });
    await pair.a.start();
    await pair.b.start();
    expect(sched(pair.a.pid)).toEqual(['FIFO', 30]);
    expect(sched(pair.b.pid)).toEqual(['OTHER', 0]);
  });
});
