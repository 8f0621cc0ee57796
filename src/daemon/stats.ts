// Assembles the -s snapshot from the live components, per request. Monitoring
// may poll it many times a second on a busy node, so what costs in proportion
// to the traffic (the resend queue's lines) is built only for the request
// that prints it.
import type { StatsSnapshot } from '../control/format/stats.js';
import { newRecvCounters } from '../wire/datagram.js';
import type { Daemon } from './daemon.js';

/** conntrackd's tx queue bound (INT_MAX): shown as "maximum elements". */
const TXQUEUE_MAX = 2147483647;
const ERRORQ_MAX = 128;

/** `rsqueue`: list the resend queue's entries (-s rsqueue); otherwise the list is left empty. */
export function buildStatsSnapshot(d: Daemon, opts: { rsqueue?: boolean } = {}): StatsSnapshot {
  const sync = d.sync.stats();
  const recv = sync.recv ?? newRecvCounters();
  const links = d.linkReports();
  const active = links.find((l) => l.active) ?? links[0]!;
  const ev = d.events.stats();
  const sc = d.config.sync!;
  return {
    internal: { ...d.internal.stats },
    external: { ...d.external.ctStats },
    traffic: { bytes: 0, packets: 0 },
    channel: active,
    network: {
      recv: {
        malformed: recv.malformed,
        wrongVersion: recv.badVersion,
        malformedHeader: recv.malformedHeader,
        malformedPayload: recv.malformedPayload,
        badType: recv.badType,
        truncated: recv.truncated,
        badSize: recv.badSize,
      },
      sendMalformed: sync.sendMalformed ?? 0,
      fastPath: {
        sent: sync.fastAdopted ?? 0, orphan: sync.fastOrphans ?? 0, declined: sync.fastDeclined ?? 0,
        sendError: sync.fastSendErrors ?? 0,
      },
    },
    seq: { lost: sync.seqLost, before: sync.seqBefore },
    uptimeSec: Math.floor((d.clock.now() - d.startedAt) / 1000),
    netlink: {
      eventsReceived: d.kernel.eventsReceived,
      eventsFiltered: d.kernel.eventsFiltered,
      eventsUnknownType: 0,
      catchEventFailed: ev.decodeErrors,
      dumpUnknownType: 0,
      overrun: d.kernel.overruns,
      flushKernelTable: d.kernel.flushKernelTable,
      resyncWithKernel: d.kernel.resyncWithKernel,
      bufferSize: ev.bufferSize,
    },
    runtime: {
      childProcessFailed: 0,
      childProcessSegfault: 0,
      childProcessTermsig: 0,
      selectFailed: 0,
      waitFailed: 0,
      localReadFailed: 0,
      localUnknownRequest: 0,
    },
    links,
    queues: {
      allocatedNodes: sync.txQueueLen + sync.rsQueueLen,
      queues: [
        { name: 'txqueue', current: sync.txQueueLen, max: TXQUEUE_MAX, noSpaceErrors: 0 },
        { name: 'errorq', current: 0, max: ERRORQ_MAX, noSpaceErrors: 0 },
        { name: 'rsqueue', current: sync.rsQueueLen, max: sc.resendQueueSize, noSpaceErrors: sync.rsQueueOverflow },
      ],
    },
    rsqueue: opts.rsqueue === true ? d.sync.rsQueueLines() : [],
    processes: [],
  };
}
