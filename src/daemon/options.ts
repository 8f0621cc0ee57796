// Maps the parsed conntrackd.conf (config/) onto the options of each
// component. The config layer describes what the operator wrote; components
// take what they need; this file is the only place that knows both.
import type { CtsyncConfig, FilterConfig as ConfFilter, LinkConfig as ConfLink } from '../config/index.js';
import type { LinkConfig as ChannelLink } from '../channel/index.js';
import type { FilterConfig } from '../filter/filter.js';
import { TCP_STATE } from '../model/conntrack.js';
import { CtsyncError } from '../errors.js';

const TCP_STATE_BY_NAME: Record<string, number> = {
  ...TCP_STATE,
  CLOSED: TCP_STATE.CLOSE,
  LISTEN: TCP_STATE.SYN_SENT2,
};

export function filterFromConfig(f: ConfFilter | null): FilterConfig {
  if (!f) return {};
  const out: FilterConfig = {};
  if (f.protocol) out.protocol = { policy: f.protocol.policy, protos: [...f.protocol.protocols] };
  if (f.address) {
    out.address = {
      policy: f.address.policy,
      cidrs: [...f.address.ipv4, ...f.address.ipv6].map((c) => `${c.address}/${c.prefix}`),
    };
  }
  if (f.state) {
    out.state = {
      policy: f.state.policy,
      tcpStates: f.state.tcpStates.map((n) => TCP_STATE_BY_NAME[n]).filter((n): n is number => n !== undefined),
    };
  }
  return out;
}

export function linksFromConfig(cfg: CtsyncConfig): ChannelLink[] {
  const sync = cfg.sync;
  if (!sync) throw new CtsyncError('CTSYNC_ERR_DAEMON', `${cfg.file}: no Sync section: ctsync runs only in sync mode`);
  return sync.links.map((l: ConfLink, i: number): ChannelLink => ({
    kind: l.kind,
    isDefault: i === sync.defaultLink,
    ...(l.ipv4Address !== undefined ? { ipv4Address: l.ipv4Address } : {}),
    ...(l.ipv6Address !== undefined ? { ipv6Address: l.ipv6Address } : {}),
    ...(l.destination !== undefined ? { destination: l.destination } : {}),
    port: l.port,
    interface: l.interface,
    ...(l.sndBuf !== undefined ? { sndBuf: l.sndBuf } : {}),
    ...(l.rcvBuf !== undefined ? { rcvBuf: l.rcvBuf } : {}),
    checksum: l.checksum,
    ...(l.errorQueueLength !== undefined ? { errorQueueLength: l.errorQueueLength } : {}),
    ...(l.ipv4Interface !== undefined ? { ipv4Interface: l.ipv4Interface } : {}),
    // AcceptOnlyPeer off restores conntrackd's accept-from-anyone receiver.
    ...(cfg.ctsync.acceptOnlyPeer ? {} : { acceptFrom: 'any' as const }),
    // Ctsync { TLS } secures TCP links (a warning at config load for other kinds).
    ...(l.kind === 'tcp' && cfg.ctsync.tls ? { tls: { ...cfg.ctsync.tls } } : {}),
  }));
}
