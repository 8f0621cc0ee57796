// The four-namespace HA topology (client — outside LAN — fw1/fw2 — inside LAN
// — server, plus the fw1↔fw2 sync link) with keepalived and ctsync on both
// firewalls. The implementation is plain JS in scripts/lib/topology.mjs so
// the demo (scripts/demo.mjs) runs it without a TypeScript loader; this
// module is the typed entry point for tests and benchmarks.
export {
  ADDR, HaTopology, Stream, ctsyncConfig, daemonNodeFlags, keepalivedConfig, CTSYNC_BIN, NOTIFY_SCRIPT, STREAM_SCRIPT,
  type TopologyOptions, type StreamStatus, type StreamEvent, type Gap, type NotifyEntry, type Fw,
} from '../../scripts/lib/topology.mjs';
import { HaTopology, type StreamStatus } from '../../scripts/lib/topology.mjs';

/** The receiver's current stall: the largest finished gap or the one still open now. */
export function currentStall(s: StreamStatus, now = Date.now()): number {
  return Math.max(s.maxGapMs, now - s.lastReadAt);
}

/** Builds and starts a topology; on failure removes what was built before rethrowing. */
export async function startTopology(opts: ConstructorParameters<typeof HaTopology>[0] = {}): Promise<HaTopology> {
  const t = new HaTopology(opts);
  try {
    await t.start();
  } catch (e) {
    const detail = `\n--- keepalived fw1 ---\n${t.output.keepalived[0].slice(-2000)}\n--- keepalived fw2 ---\n${t.output.keepalived[1].slice(-2000)}`;
    await t.cleanup();
    t.removeDir();
    throw new Error(`${(e as Error).message}${detail}`);
  }
  return t;
}
