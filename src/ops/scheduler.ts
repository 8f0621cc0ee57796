// CPU scheduling of the daemon's main thread (General { Scheduler }): with
// Type RR or FIFO it runs at that real-time priority, so a busy firewall
// (softirq load, other daemons) cannot starve the thread that reads kernel
// events and answers the peer; a starved reader is how events get lost. Only
// the calling thread changes: the JS main thread, which runs the whole
// event/sync loop. V8's and libuv's helper threads keep the normal policy,
// and RT throttling (kernel.sched_rt_runtime_us) still bounds a runaway loop.
//
// Without the block (or without its Type) ctsync does what conntrackd 1.4.7
// does: SCHED_RR at priority 99. `Type OTHER` (ctsync's) keeps normal
// scheduling. Failure (no CAP_SYS_NICE, a container without RT budget) is a
// warning, as in conntrackd: the daemon runs on.
import type { GeneralConfig } from '../config/index.js';
import type { Logger } from '../log/logger.js';

/** Linux policy numbers (sched.h). */
export const SCHED_POLICY = { OTHER: 0, FIFO: 1, RR: 2 } as const;
/** sched_get_priority_max(SCHED_RR/FIFO) on Linux. */
export const RT_PRIORITY_MAX = 99;

export interface SchedulerSys {
  setScheduler(policy: number, priority: number): void;
}

export interface SchedulerChoice {
  type: keyof typeof SCHED_POLICY;
  priority: number;
}

/** What General { Scheduler } asks for: conntrackd's SCHED_RR 99 when it names no Type. */
export function schedulerChoice(cfg: GeneralConfig['scheduler']): SchedulerChoice {
  // A block without Type takes the default, as in conntrackd; Priority alone is then not used.
  if (cfg?.type === undefined) return { type: 'RR', priority: RT_PRIORITY_MAX };
  if (cfg.type === 'OTHER') return { type: 'OTHER', priority: 0 };
  // conntrackd passes priority 0 when Priority is missing, which the kernel refuses for RR/FIFO
  // (it then runs at the normal policy); ctsync takes the highest priority instead.
  const priority = cfg.priority ?? 0;
  return { type: cfg.type, priority: priority > 0 ? priority : RT_PRIORITY_MAX };
}

/** Applies the choice to the calling thread; returns it, or null when the kernel refused (logged). */
export function applyScheduler(cfg: GeneralConfig['scheduler'], sys: SchedulerSys, log: Logger): SchedulerChoice | null {
  const choice = schedulerChoice(cfg);
  if (choice.type === 'OTHER') return choice;
  try {
    sys.setScheduler(SCHED_POLICY[choice.type], choice.priority);
  } catch (e) {
    log.warn({ err: e, code: (e as { code?: string }).code, policy: choice.type, priority: choice.priority },
      'scheduler configuration failed; continuing with the default policy');
    return null;
  }
  log.info({ policy: choice.type, priority: choice.priority }, `scheduler ${choice.type}, priority ${choice.priority}`);
  return choice;
}
