// Control-socket requests (conntrackd's request codes) mapped onto daemon
// actions. Output follows conntrackd where scripts parse it; commands that
// print nothing in conntrackd print nothing here either, except commit,
// which reports how many entries and how long (an addition operators asked for).
import type { ControlContext, ControlReply } from '../control/server.js';
import { CTL } from '../control/codes.js';
import { renderStatsRequest, statsSectionOf } from '../control/format/stats.js';
import { formatConntrackPlain, formatConntrackXml, formatExpectPlain } from '../control/format/dump.js';
import { formatConntrackJson } from '../control/format/json.js';
import type { CacheObject } from '../cache/types.js';
import type { Conntrack, Expectation } from '../model/conntrack.js';
import type { Daemon } from './daemon.js';
import { buildStatsSnapshot } from './stats.js';

type DumpStyle = 'plain' | 'xml' | 'json';

export class CommandHandler {
  constructor(private readonly d: Daemon) {}

  async handle(code: number, reply: ControlReply, ctx: ControlContext): Promise<void> {
    const d = this.d;
    const section = statsSectionOf(code);
    if (section !== undefined) {
      const snap = buildStatsSnapshot(d, { rsqueue: section === 'rsqueue' });
      if (ctx.json && code === CTL.STATS) {
        // ctsync's JSON adds what conntrackd's -s cannot show: the protocol at work (NACKs, resends, restarts).
        const base = JSON.parse(renderStatsRequest(code, snap, true)!) as Record<string, unknown>;
        reply.write(`${JSON.stringify({ ...base, sync: d.sync.stats(), kernel: d.kernel, events: d.events.stats() })}\n`);
        return;
      }
      reply.write(renderStatsRequest(code, snap, ctx.json)!);
      return;
    }
    const style: DumpStyle = ctx.json ? 'json' : 'plain';
    switch (code) {
      case CTL.CT_DUMP_INTERNAL:
        return this.dumpCt(reply, d.internal.visible(), true, style);
      case CTL.CT_DUMP_EXTERNAL:
        return this.dumpCt(reply, d.external.cts(), false, style);
      case CTL.CT_DUMP_INT_XML:
        return this.dumpCt(reply, d.internal.visible(), true, 'xml');
      case CTL.CT_DUMP_EXT_XML:
        return this.dumpCt(reply, d.external.cts(), false, 'xml');
      case CTL.EXP_DUMP_INTERNAL:
      case CTL.EXP_DUMP_INT_XML:
        if (d.internalExp) this.dumpExp(reply, d.internalExp.visible());
        return;
      case CTL.EXP_DUMP_EXTERNAL:
      case CTL.EXP_DUMP_EXT_XML:
        if (d.internalExp) this.dumpExp(reply, d.external.exps());
        return;
      case CTL.CT_COMMIT:
      case CTL.ALL_COMMIT:
      case CTL.EXP_COMMIT: {
        const r = await d.serialize(() => d.commit());
        // A commit is what a node does when it becomes master (primary-backup.sh, ctsync notify).
        d.emit('role', 'master');
        reply.write(ctx.json
          ? `${JSON.stringify({ committed: r.committed, failed: r.failed, seconds: r.seconds, errors: r.errors })}\n`
          : `committed ${r.committed} entries in ${r.seconds.toFixed(3)} s${r.failed ? ` (${r.failed} failed)` : ''}\n`);
        return;
      }
      case CTL.CT_FLUSH_CACHE:
      case CTL.ALL_FLUSH_CACHE:
        await d.serialize(async () => {
          d.cancelKernelPurge();
          d.flushInternal();
          d.flushExternal();
        });
        return;
      case CTL.CT_FLUSH_INT_CACHE:
        await d.serialize(async () => {
          d.cancelKernelPurge();
          d.flushInternal();
        });
        return;
      case CTL.CT_FLUSH_EXT_CACHE:
        await d.serialize(async () => {
          d.flushExternal();
        });
        return;
      case CTL.CT_FLUSH_MASTER:
      case CTL.ALL_FLUSH_MASTER:
      case CTL.EXP_FLUSH_MASTER:
        await d.serialize(() => d.flushKernel());
        return;
      case CTL.CT_RESYNC_MASTER:
      case CTL.ALL_RESYNC_MASTER:
      case CTL.EXP_RESYNC_MASTER:
        await d.serialize(() => d.populateFromKernel());
        return;
      case CTL.SEND_BULK:
        d.bulkSend();
        return;
      case CTL.REQUEST_DUMP:
        d.sync.requestResync();
        d.emit('resync-requested');
        return;
      case CTL.RESET_TIMERS:
        // -t is what a node does when it becomes backup or faults (primary-backup.sh, ctsync notify).
        d.scheduleKernelPurge();
        d.emit('role', 'backup');
        return;
      case CTL.KILL:
        // Reply first (nothing), then exit once the connection is closed.
        setImmediate(() => d.requestExit(0));
        return;
      case CTL.EXP_STATS:
        return;
      default:
        return;
    }
  }

  private dumpCt(reply: ControlReply, objs: Iterable<CacheObject<Conntrack>>, hasReply: boolean, style: DumpStyle): void {
    const now = this.d.clock.now();
    // One write per 256 lines: a 250k-entry dump neither builds one huge string nor makes 250k writes.
    let chunk = '';
    let n = 0;
    for (const obj of objs) {
      const since = Math.max(0, Math.floor((now - obj.firstSeen) / 1000));
      if (style === 'xml') chunk += formatConntrackXml(obj.value, { hasReply });
      else if (style === 'json') chunk += `${formatConntrackJson(obj.value, since, { hasReply })}\n`;
      else chunk += formatConntrackPlain(obj.value, since, { hasReply });
      if (++n % 256 === 0) {
        reply.write(chunk);
        chunk = '';
      }
    }
    if (chunk) reply.write(chunk);
  }

  private dumpExp(reply: ControlReply, objs: Iterable<CacheObject<Expectation>>): void {
    const now = this.d.clock.now();
    for (const obj of objs) reply.write(formatExpectPlain(obj.value, Math.max(0, Math.floor((now - obj.firstSeen) / 1000))));
  }
}
