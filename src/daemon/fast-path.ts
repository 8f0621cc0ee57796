// The lone-event fast path, the daemon's side. After an idle spell the JS path
// of one kernel event (decode, filter, internal cache, queue, encode) runs
// from cold caches, 25-30 µs p50 and 65-80 µs p99 before its datagram leaves
// (bench/README.md, "What a lone event pays after idling"), where conntrackd's
// C touches a few cache lines. So when a wakeup reads exactly one ctnetlink
// NEW event, the addon (native/src/fastpath.c) decodes, filters and encodes it
// and sends its CT_NEW message first; the JS path then runs as always, and the
// sync engine files the message it would have sent as already sent, under the
// number the addon used (SyncEngine.adoptFast): ACKs release it, NACKs resend it.
//
// The addon and JS share one block of int32 words (FAST_STATE): the engine's
// sequence counter lives there, the engine keeps its gate word (HELLO done,
// nothing queued ahead), this module the daemon's (the internal cache has
// room). A burst is never taken: it arrives as several messages per read,
// batched by the JS path.
//
// The JS side (the block, the gates, adoption) is there whenever the sync
// mode can take part, the addon or not (`native` says whether it sends): the
// start-up warm-up's scratch daemons, which have no addon link, then run and
// compile the same code as the real daemon (warmup.ts plays the addon there),
// and the real daemon's first lone event does not throw its compiled event
// path away (--trace-deopt: a dozen functions, +0.5 µs of sender CPU per
// event over the 100k burst in which it came).
import type { Channel, DirectTarget } from '../channel/index.js';
import type { CompiledFilter } from '../filter/filter.js';
import { FAST_STATE, type SyncMode } from '../sync/types.js';
import type { KernelEventSource } from './ports.js';

/** fp_conf_parse's layout: 12 words of fields, 8 of sockaddr, 64 of protocol map, then the address lists. */
const CONF_MAGIC = 0x46500001;
const HDR_WORDS = 84;
const SOCKADDR_WORD = 12;
const SOCKADDR_MAX = 32;
const PROTO_MAP_WORD = 20;
const F_WSCALE = 1;
const F_NO_TIMEOUT = 2;
const F_QUIRK = 4;

export interface FastPathSettings {
  /** The daemon's request socket: events it caused are not sent back (Daemon.originOf). */
  ownPortId: number;
  filter: CompiledFilter;
  tcpWindowTracking: boolean;
  /** CommitTimeout set: no TIMEOUT attribute (as the wire codec's omitTimeout). */
  omitTimeout: boolean;
  target: DirectTarget;
}

/** The addon's configuration: int32 words in host order, as native/src/fastpath.c reads them. */
export function fastPathConf(s: FastPathSettings): Buffer {
  const f = s.filter.ipv4Spec();
  const dest = s.target.dest;
  if (dest.length > SOCKADDR_MAX) throw new RangeError(`sockaddr of ${dest.length} bytes`);
  const nets = f.nets4.length;
  const w = new Int32Array(HDR_WORDS + nets + f.hosts4.length + f.own4.length);
  w[0] = CONF_MAGIC;
  w[1] = (s.tcpWindowTracking ? F_WSCALE : 0) | (s.omitTimeout ? F_NO_TIMEOUT : 0) | (f.quirk ? F_QUIRK : 0);
  w[2] = s.ownPortId | 0;
  w[3] = f.protoLogic;
  w[4] = f.addrLogic;
  w[5] = f.stateLogic;
  w[6] = f.stateBits;
  w[7] = nets / 2;
  w[8] = f.hosts4.length;
  w[9] = f.own4.length;
  w[10] = s.target.fd;
  w[11] = dest.length;
  const b = Buffer.from(w.buffer);
  dest.copy(b, SOCKADDR_WORD * 4);
  b.set(f.protoMap, PROTO_MAP_WORD * 4);
  w.set(f.nets4, HDR_WORDS);
  w.set(f.hosts4, HDR_WORDS + nets);
  w.set(f.own4, HDR_WORDS + nets + f.hosts4.length);
  return b;
}

/** The fast path of one running daemon: the shared state block, the gate, the addon's configuration. */
export class FastPath {
  /** The addon sends (false: the JS side alone, see above). */
  native = false;
  /**
   * Its own ArrayBuffer, made as one: a small typed array made alone may keep
   * its bytes in V8's heap, which moves them, and the addon keeps the address.
   */
  private readonly block = Buffer.from(new ArrayBuffer(FAST_STATE.WORDS * 4));
  readonly state = new Int32Array(this.block.buffer, this.block.byteOffset, FAST_STATE.WORDS);

  private constructor(private readonly events: KernelEventSource, private readonly sync: SyncMode,
    private readonly channel: Channel) {}

  /**
   * Attaches the sync engine to a state block, and the addon to it when every
   * part can take part (native); null when the sync mode has no fast path.
   * The addon stays out when the link has no direct socket (sealed, TCP,
   * several links, IPv6, no capable addon) or the event source cannot.
   */
  static open(events: KernelEventSource, sync: SyncMode, channel: Channel,
    settings: Omit<FastPathSettings, 'target'>): FastPath | null {
    if (sync.attachFastPath === undefined || sync.fastSent === undefined) return null;
    const fp = new FastPath(events, sync, channel);
    sync.attachFastPath(fp.state);
    try {
      fp.configure(settings);
    } catch (e) {
      sync.attachFastPath(null);
      throw e;
    }
    return fp;
  }

  /** (Re)configures the addon with `settings` (a SIGHUP's filter) on the same socket and state. */
  configure(settings: Omit<FastPathSettings, 'target'>): void {
    const target = this.channel.directTarget?.() ?? null;
    const was = this.native;
    this.native = target !== null && this.events.fastPath !== undefined &&
      this.events.fastPath(this.block, fastPathConf({ ...settings, target }));
    // Left configured, the addon would go on deciding with the previous filter.
    if (was && !this.native) this.events.fastPath?.(null);
  }

  /** The daemon's gate word: open while the internal cache has room for the event's entry. */
  gate(open: boolean): void {
    this.state[FAST_STATE.DAEMON] = open ? 1 : 0;
  }

  /** The addon sent the current read's event as `seq`: the engine files it, the link counts it. */
  sent(seq: number): void {
    this.sync.fastSent!(seq);
    this.channel.countDirect?.(this.state[FAST_STATE.LEN]!);
  }

  close(): void {
    this.gate(false);
    if (this.native) {
      try {
        this.events.fastPath?.(null);
      } catch {
        // The event socket may already be closed: nothing is left to turn off.
      }
      this.native = false;
    }
    this.sync.attachFastPath?.(null);
  }
}
