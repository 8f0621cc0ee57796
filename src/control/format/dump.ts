// `-i` / `-e` lines: a cached conntrack rendered the way conntrackd renders
// it, i.e. libnetfilter_conntrack's plain (NFCT_O_PLAIN) and XML (NFCT_O_XML)
// layouts with the attributes conntrackd's cache objects do not carry left
// out (timeout, use, and the id in plain text), then " [active since Ns]" in
// plain mode. Byte-identical output matters: failover scripts grep it.
//
// An attribute is printed iff the Conntrack field is defined, mirroring
// libnetfilter_conntrack's "attribute set" bits: the kernel and wire decoders
// only set fields that were present.
import { AF_INET, AF_INET6, IPPROTO, IPS, TCP_STATE_NAMES, type Conntrack, type Expectation, type Tuple } from '../../model/conntrack.js';
import { replyFromNat } from '../../model/nat.js';

const PROTO_NAMES: Record<number, string> = {
  [IPPROTO.TCP]: 'tcp',
  [IPPROTO.UDP]: 'udp',
  [IPPROTO.UDPLITE]: 'udplite',
  [IPPROTO.ICMP]: 'icmp',
  [IPPROTO.ICMPV6]: 'icmpv6',
  [IPPROTO.SCTP]: 'sctp',
  [IPPROTO.GRE]: 'gre',
  [IPPROTO.DCCP]: 'dccp',
};

const SCTP_STATE_NAMES = [
  'NONE', 'CLOSED', 'COOKIE_WAIT', 'COOKIE_ECHOED', 'ESTABLISHED', 'SHUTDOWN_SENT',
  'SHUTDOWN_RECD', 'SHUTDOWN_ACK_SENT', 'HEARTBEAT_SENT', 'HEARTBEAT_ACKED',
] as const;
/** DCCP_CONNTRACK_MAX: the bound libnetfilter_conntrack checks DCCP states against. */
const DCCP_STATE_MAX = 10;

export function protoName(proto: number): string {
  return PROTO_NAMES[proto] ?? 'unknown';
}

export function l3Name(l3: number): string {
  return l3 === AF_INET ? 'ipv4' : l3 === AF_INET6 ? 'ipv6' : 'unknown';
}

function hasPorts(proto: number): boolean {
  return proto === IPPROTO.TCP || proto === IPPROTO.UDP || proto === IPPROTO.UDPLITE ||
    proto === IPPROTO.SCTP || proto === IPPROTO.DCCP;
}

function isIcmp(proto: number): boolean {
  return proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6;
}

const hex = (n: number | undefined): string => `0x${((n ?? 0) & 0xffff).toString(16)}`;

function plainTuple(t: Tuple, srcTag = 'src', dstTag = 'dst'): string {
  let s = '';
  if (t.l3 === AF_INET || t.l3 === AF_INET6) s += `${srcTag}=${t.src} ${dstTag}=${t.dst} `;
  if (hasPorts(t.proto)) s += `sport=${t.sport ?? 0} dport=${t.dport ?? 0} `;
  else if (t.proto === IPPROTO.GRE) s += `srckey=${hex(t.greKeySrc ?? t.sport)} dstkey=${hex(t.greKeyDst ?? t.dport)} `;
  else if (isIcmp(t.proto)) s += `type=${t.icmpType ?? 0} code=${t.icmpCode ?? 0} id=${t.icmpId ?? 0} `;
  return s;
}

/** The state word of plain output (TCP, SCTP, DCCP), or ''. */
function plainStates(ct: Conntrack): string {
  let s = '';
  if (ct.tcp) s += `${TCP_STATE_NAMES[ct.tcp.state] ?? 'NONE'} `;
  if (ct.sctp) s += `${SCTP_STATE_NAMES[ct.sctp.state] ?? 'NONE'} `;
  // libnetfilter_conntrack prints DCCP states from its SCTP name table; kept for identical output.
  if (ct.dccp) s += `${ct.dccp.state < DCCP_STATE_MAX ? (SCTP_STATE_NAMES[ct.dccp.state] ?? 'NONE') : 'NONE'} `;
  return s;
}

export interface PlainOptions {
  /** Print the reply tuple (internal cache). External entries have none. Default: whether ct.reply is set. */
  hasReply?: boolean;
}

/**
 * The reply tuple a line shows: none for the external cache; for the internal
 * cache the entry's, or, where the cache kept none because it was the plain
 * inverse of orig (model/nat.ts keptReply), that inverse rebuilt.
 */
export function shownReply(ct: Conntrack, opts: PlainOptions): Tuple | undefined {
  if (opts.hasReply === false) return undefined;
  if (ct.reply !== undefined) return ct.reply;
  return opts.hasReply === true ? replyFromNat(ct) : undefined;
}

/**
 * One `-i`/`-e` line, newline included:
 * `tcp      6 ESTABLISHED src=… dst=… sport=… dport=… src=… … [ASSURED] mark=0 [active since 26s]`.
 */
export function formatConntrackPlain(ct: Conntrack, activeSinceSec: number, opts: PlainOptions = {}): string {
  const proto = ct.orig.proto;
  const reply = shownReply(ct, opts);
  const status = ct.status;
  let s = `${protoName(proto).padEnd(8, ' ')} ${proto} `;
  s += plainStates(ct);
  s += plainTuple(ct.orig);
  if (ct.orig.zone !== undefined) s += `zone-orig=${ct.orig.zone} `;
  if (ct.countersOrig) s += `packets=${ct.countersOrig.packets} bytes=${ct.countersOrig.bytes} `;
  if (status !== undefined && (status & IPS.SEEN_REPLY) === 0) s += '[UNREPLIED] ';
  if (reply) {
    s += plainTuple(reply);
    if (reply.zone !== undefined) s += `zone-reply=${reply.zone} `;
  }
  if (ct.countersReply) s += `packets=${ct.countersReply.packets} bytes=${ct.countersReply.bytes} `;
  if (status !== undefined) {
    if (status & IPS.HW_OFFLOAD) s += '[HW_OFFLOAD] ';
    else if (status & IPS.OFFLOAD) s += '[OFFLOAD] ';
    else if (status & IPS.ASSURED) s += '[ASSURED] ';
  }
  if (ct.mark !== undefined) s += `mark=${ct.mark >>> 0} `;
  if (ct.zone !== undefined) s += `zone=${ct.zone} `;
  if (ct.helper !== undefined) s += `helper=${ct.helper} `;
  // libnetfilter_conntrack drops the last blank; conntrackd then appends the age.
  return `${s.slice(0, -1)} [active since ${Math.max(0, Math.floor(activeSinceSec))}s]\n`;
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&"]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : '&quot;'));
}

function xmlL4(t: Tuple): string {
  if (hasPorts(t.proto)) return `<sport>${t.sport ?? 0}</sport><dport>${t.dport ?? 0}</dport>`;
  if (t.proto === IPPROTO.GRE) return `<srckey>${hex(t.greKeySrc ?? t.sport)}</srckey><dstkey>${hex(t.greKeyDst ?? t.dport)}</dstkey>`;
  return ''; // ICMP has no layer-4 elements in this layout
}

function xmlTuple(dir: 'original' | 'reply', t: Tuple | undefined, counters: Conntrack['countersOrig'] | null): string {
  let s = `<meta direction="${dir}">`;
  if (t) {
    s += `<layer3 protonum="${t.l3}" protoname="${l3Name(t.l3)}"><src>${t.src}</src><dst>${t.dst}</dst></layer3>`;
    s += `<layer4 protonum="${t.proto}" protoname="${protoName(t.proto)}">${xmlL4(t)}</layer4>`;
    if (t.zone !== undefined) s += `<zone>${t.zone}</zone>`;
  } else {
    // An object without a reply tuple (external cache) renders an all-zero one.
    s += '<layer3 protonum="0" protoname="unknown"><src></src><dst></dst></layer3><layer4 protonum="0" protoname="unknown"></layer4>';
  }
  if (counters) s += `<counters><packets>${counters.packets}</packets><bytes>${counters.bytes}</bytes></counters>`;
  return `${s}</meta>`;
}

/** The state element of XML output; libnetfilter_conntrack uses its TCP name table for every protocol. */
function xmlState(n: number, max: number): string {
  return `<state>${n < max ? (TCP_STATE_NAMES[n] ?? 'NONE') : 'NONE'}</state>`;
}

/** One `-i -x`/`-e -x` line: `<flow>…</flow>\n`. */
export function formatConntrackXml(ct: Conntrack, opts: PlainOptions = {}): string {
  const reply = shownReply(ct, opts);
  // Both directions show counters when the original ones are set (as libnetfilter_conntrack does).
  const zero = { packets: 0n, bytes: 0n };
  let s = '<flow>';
  s += xmlTuple('original', ct.orig, ct.countersOrig ? ct.countersOrig : null);
  s += xmlTuple('reply', reply, ct.countersOrig ? (ct.countersReply ?? zero) : null);
  const status = ct.status;
  const independent = ct.tcp !== undefined || ct.sctp !== undefined || ct.dccp !== undefined || ct.mark !== undefined ||
    ct.zone !== undefined || status !== undefined || ct.id !== undefined;
  if (independent) {
    s += '<meta direction="independent">';
    if (ct.tcp) s += xmlState(ct.tcp.state, TCP_STATE_NAMES.length);
    if (ct.sctp) s += xmlState(ct.sctp.state, SCTP_STATE_NAMES.length);
    if (ct.dccp) s += xmlState(ct.dccp.state, DCCP_STATE_MAX);
    if (ct.mark !== undefined) s += `<mark>${ct.mark >>> 0}</mark>`;
    if (ct.zone !== undefined) s += `<zone>${ct.zone}</zone>`;
    if (ct.id !== undefined) s += `<id>${ct.id >>> 0}</id>`;
    if (status !== undefined && (status & IPS.ASSURED) !== 0) s += '<assured/>';
    if (status !== undefined && (status & IPS.SEEN_REPLY) === 0) s += '<unreplied/>';
    s += '</meta>';
  }
  if (ct.helper !== undefined) s += `<helper>${xmlEscape(ct.helper)}</helper>`;
  return `${s}</flow>\n`;
}

/** NF_CT_EXPECT_* flag bits, in the order plain output lists them. */
const EXPECT_FLAGS: ReadonlyArray<readonly [number, string]> = [[0x1, 'PERMANENT'], [0x2, 'INACTIVE'], [0x4, 'USERSPACE']];

/**
 * One `-i expect`/`-e expect` line, newline included (libnetfilter_conntrack's
 * plain expectation layout without the timeout, then the age):
 * `proto=6 src=… dst=… sport=0 dport=41895 mask-src=… … master-src=… … class=0 helper=ftp [active since 3s]`.
 */
export function formatExpectPlain(exp: Expectation, activeSinceSec: number): string {
  let s = `proto=${exp.tuple.proto} `;
  s += plainTuple(exp.tuple);
  s += plainTuple(exp.mask, 'mask-src', 'mask-dst');
  s += plainTuple(exp.master, 'master-src', 'master-dst');
  if (exp.zone !== undefined) s += `zone=${exp.zone} `;
  const flags = exp.flags ?? 0;
  s += EXPECT_FLAGS.filter(([bit]) => (flags & bit) !== 0).map(([, name]) => name).join(',');
  // A blank follows the flag list whenever any flag bit is set, even an unnamed one (as the library does).
  if (flags !== 0) s += ' ';
  if (exp.class !== undefined) s += `class=${exp.class} `;
  if (exp.helper !== undefined) s += `helper=${exp.helper}`;
  if (s.endsWith(' ')) s = s.slice(0, -1);
  return `${s} [active since ${Math.max(0, Math.floor(activeSinceSec))}s]\n`;
}

function xmlAddrs(t: Tuple): string {
  return (t.l3 === AF_INET || t.l3 === AF_INET6) ? `<src>${t.src}</src><dst>${t.dst}</dst>` : '<src></src><dst></dst>';
}

/** One `-i expect -x`/`-e expect -x` line: `<flow>…</flow>\n` (no timeout, as conntrackd drops it). */
export function formatExpectXml(exp: Expectation): string {
  const t = exp.tuple;
  const flags = exp.flags ?? 0;
  let s = '<flow>';
  s += `<layer3 protonum="${t.l3}" protoname="${l3Name(t.l3)}">`;
  s += `<expected>${xmlAddrs(t)}</expected><mask>${xmlAddrs(exp.mask)}</mask><master>${xmlAddrs(exp.master)}</master></layer3>`;
  s += `<layer4 protonum="${t.proto}" protoname="${protoName(t.proto)}">`;
  s += `<expected>${xmlL4(t)}</expected><mask>${xmlL4(exp.mask)}</mask><master>${xmlL4(exp.master)}</master></layer4>`;
  s += '<meta>';
  if (exp.helper !== undefined) s += `<helper-name>${xmlEscape(exp.helper)}</helper-name>`;
  if (exp.zone !== undefined) s += `<zone>${exp.zone}</zone>`;
  if (flags & 0x1) s += '<permanent/>';
  if (flags & 0x2) s += '<inactive/>';
  if (flags & 0x4) s += '<userspace/>';
  return `${s}</meta></flow>\n`;
}
