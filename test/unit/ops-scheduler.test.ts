import { describe, expect, it } from 'vitest';
import { applyScheduler, schedulerChoice, SCHED_POLICY } from '../../src/ops/scheduler.js';
import { silentLogger } from '../../src/log/logger.js';
import { parseConfig } from '../../src/config/index.js';

const SYNC = 'Sync {\n Mode FTFW { }\n UDP {\n IPv4_Destination_Address 10.0.0.2\n Port 3780\n Interface eth0\n }\n}\n';

function recorder(fail?: Error): { calls: [number, number][]; setScheduler(p: number, prio: number): void } {
  const calls: [number, number][] = [];
  return { calls, setScheduler(p, prio) { calls.push([p, prio]); if (fail) throw fail; } };
}

describe('scheduler (General { Scheduler })', () => {
  it('without a Type takes conntrackd\'s default, SCHED_RR 99', () => {
    expect(schedulerChoice(undefined)).toEqual({ type: 'RR', priority: 99 });
    // A block with only a Priority leaves the default.
    expect(schedulerChoice({ priority: 10 })).toEqual({ type: 'RR', priority: 99 });
  });

  it('takes Type and Priority from the config file; OTHER keeps normal scheduling', () => {
    const cfg = (s: string) => parseConfig(`${SYNC}General {\n Scheduler {\n ${s}\n }\n}\n`, 'c.conf');
    const fifo = cfg('Type FIFO\n Priority 50');
    expect(fifo.warnings).toEqual([]);
    expect(schedulerChoice(fifo.config.general.scheduler)).toEqual({ type: 'FIFO', priority: 50 });
    expect(schedulerChoice(cfg('Type rr').config.general.scheduler)).toEqual({ type: 'RR', priority: 99 });
    expect(schedulerChoice(cfg('Type other').config.general.scheduler)).toEqual({ type: 'OTHER', priority: 0 });
  });

  it('calls the syscall for RR/FIFO only, and runs on when the kernel refuses', () => {
    const ok = recorder();
    expect(applyScheduler({ type: 'FIFO', priority: 7 }, ok, silentLogger)).toEqual({ type: 'FIFO', priority: 7 });
    expect(ok.calls).toEqual([[SCHED_POLICY.FIFO, 7]]);
    const other = recorder();
    expect(applyScheduler({ type: 'OTHER' }, other, silentLogger)).toEqual({ type: 'OTHER', priority: 0 });
    expect(other.calls).toEqual([]);
    const dflt = recorder();
    expect(applyScheduler(undefined, dflt, silentLogger)).toEqual({ type: 'RR', priority: 99 });
    expect(dflt.calls).toEqual([[SCHED_POLICY.RR, 99]]);
    const denied = recorder(Object.assign(new Error('sched_setscheduler: Operation not permitted'), { code: 'EPERM' }));
    expect(applyScheduler({ type: 'RR' }, denied, silentLogger)).toBeNull();
    expect(denied.calls).toEqual([[SCHED_POLICY.RR, 99]]);
  });
});
