// The userspace event filter (General { Filter { ... } }), with conntrackd
// 1.4.7's semantics (filter.c), applied to kernel events, dumps, selective
// flushes and bulk resyncs (spec ftfw.md §6).
//
// Evaluation, as conntrackd does it — each configured section can only reject:
// 1. Protocol: the L4 protocol number is looked up; Accept rejects a miss,
//    Ignore rejects a hit.
// 2. Address: two addresses of the flow are tested, the original source and
//    the reply source (the "real" endpoints: after DNAT the reply source is
//    the real server; entries without a reply tuple fall back to the
//    original destination). Prefixes shorter than the full length go to a
//    netmask list, full-length ones (or none) to a host set; the two are
//    tested one after the other and EACH verdict is applied on its own
//    (`hit XOR accept` rejects). Consequence, faithfully kept by default:
//    with `Address Accept`, a flow passes only if it matches a netmask AND a
//    host entry of its family; if either list of that family is empty,
//    every flow of the family is rejected. (A known conntrackd bug; pass
//    `conntrackdAcceptQuirk: false` to get "matches any entry" instead.)
//    IPv4 flows are tested against IPv4 entries only and IPv6 flows against
//    IPv6 ones: a v4-mapped address (::ffff:a.b.c.d) is an IPv6 address.
// 3. State: only for TCP flows that carry a state; Accept rejects a state
//    not listed, Ignore rejects one listed. Other protocols pass.
//
// Extra, not in conntrackd: `ownAddresses` (the firewall's own addresses)
// are an ignore set tested before everything else, so sync and management
// traffic of the firewall itself is never replicated whatever the Address
// policy is.
import { AF_INET, AF_INET6, IPPROTO, type Conntrack, type Expectation } from '../model/conntrack.js';
import { networkInterfaces } from 'node:os';
import { parseCidr, parseIPv4, parseIPv6Into, type Cidr6 } from './cidr.js';

export type FilterPolicy = 'accept' | 'ignore';

/** The filter section of the configuration, as the config layer hands it over. */
export interface FilterConfig {
  /** Protocol Accept|Ignore { ... }: L4 protocol numbers (names resolved with protoNumber()). */
  protocol?: { policy: FilterPolicy; protos: number[] };
  /** Address Accept|Ignore { IPv4_address a.b.c.d[/n] IPv6_address x::y[/n] ... }: the family follows from the text. */
  address?: { policy: FilterPolicy; cidrs: string[] };
  /** State Accept|Ignore { ... for TCP }: TCP_STATE numbers (LISTEN = 9, CLOSED = CLOSE = 8). */
  state?: { policy: FilterPolicy; tcpStates: number[] };
}

export interface FilterOptions {
  /** Addresses of this firewall (see localAddresses()), ignored on top of the configured rules. */
  ownAddresses?: string[];
  /** Keep conntrackd's two-list Address Accept behaviour (default true). */
  conntrackdAcceptQuirk?: boolean;
}

/** IANA numbers of the names /etc/protocols usually has; conntrackd resolves names with getprotobyname(). */
const PROTO_NAMES: Record<string, number> = {
  ip: 0, hopopt: 0, icmp: 1, igmp: 2, ggp: 3, ipencap: 4, st: 5, tcp: 6, egp: 8, igp: 9, pup: 12, udp: 17,
  hmp: 20, 'xns-idp': 22, rdp: 27, 'iso-tp4': 29, dccp: 33, xtp: 36, ddp: 37, 'idpr-cmtp': 38, ipv6: 41,
  'ipv6-route': 43, 'ipv6-frag': 44, idrp: 45, rsvp: 46, gre: 47, esp: 50, ah: 51, skip: 57, 'ipv6-icmp': 58,
  icmpv6: 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, rspf: 73, vmtp: 81, eigrp: 88, ospf: 89, 'ax.25': 93,
  ipip: 94, etherip: 97, encap: 98, pim: 103, ipcomp: 108, vrrp: 112, l2tp: 115, isis: 124, sctp: 132,
  fc: 133, 'mobility-header': 135, udplite: 136, 'mpls-in-ip': 137, manet: 138, hip: 139, shim6: 140,
  wesp: 141, rohc: 142, ethernet: 143,
};

/** A protocol name (any case) or decimal number → number, or undefined. */
export function protoNumber(nameOrNumber: string): number | undefined {
  if (/^\d{1,3}$/.test(nameOrNumber)) {
    const n = Number(nameOrNumber);
    return n <= 255 ? n : undefined;
  }
  return PROTO_NAMES[nameOrNumber.toLowerCase()];
}

/** Unicast addresses of this host's interfaces (loopback included), for FilterOptions.ownAddresses. */
export function localAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.push(a.address);
  }
  return out;
}

const NO = -1; // section not configured (conntrackd's logic -1)

/**
 * Everything accepts() reads for an IPv4 flow, for the addon's fast path
 * (native/src/fastpath.c), which decides as accepts() does. Logics are -1 for
 * a section not configured, 1 for Accept, 0 for Ignore; addresses are
 * signed words (`v | 0`), nets (net, mask) pairs.
 */
export interface Ipv4FilterSpec {
  protoLogic: number;
  protoMap: Uint8Array;
  addrLogic: number;
  quirk: boolean;
  nets4: Int32Array;
  hosts4: number[];
  own4: number[];
  stateLogic: number;
  stateBits: number;
}

/** A 4-word address set with a tiny open hash, so a host lookup is not a scan. */
class Ip6Set {
  private words = new Uint32Array(0);
  private readonly index = new Map<number, number[]>();

  get size(): number {
    return this.words.length / 4;
  }

  add(w: Uint32Array): void {
    if (this.has(w, 0)) return;
    const at = this.words.length;
    const grown = new Uint32Array(at + 4);
    grown.set(this.words);
    grown.set(w.subarray(0, 4), at);
    this.words = grown;
    const h = hash6(w, 0);
    const l = this.index.get(h);
    if (l) l.push(at);
    else this.index.set(h, [at]);
  }

  has(ip: Uint32Array, off: number): boolean {
    const l = this.index.get(hash6(ip, off));
    if (l === undefined) return false;
    const w = this.words;
    for (const at of l) {
      if (w[at] === ip[off] && w[at + 1] === ip[off + 1] && w[at + 2] === ip[off + 2] && w[at + 3] === ip[off + 3]) {
        return true;
      }
    }
    return false;
  }
}

function hash6(w: Uint32Array, off: number): number {
  return (Math.imul(w[off]! ^ Math.imul(w[off + 1]!, 0x9e3779b1) ^ Math.imul(w[off + 2]!, 0x85ebca6b), 0xc2b2ae35) ^
    w[off + 3]!) | 0;
}

/** A filter compiled for per-event checks. `accepts(ct)` is allocation-free. */
export class CompiledFilter {
  /** Entries skipped as invalid (conntrackd warns and ignores them too): the daemon logs them. */
  readonly warnings: string[] = [];
  private readonly protoLogic: number;
  private readonly protoMap = new Uint8Array(256);
  private readonly addrLogic: number;
  private readonly quirk: boolean;
  /** IPv4 netmasks as (net, mask) pairs of signed words. */
  private readonly nets4: Int32Array;
  /**
   * Host addresses as signed words (`v | 0`): a Set looks a small integer up
   * inline, but an address from 128.0.0.0 up as an unsigned number is a heap
   * number, hashed by a runtime call on every event (perf: OrderedHashMap::GetHash).
   */
  private readonly hosts4 = new Set<number>();
  private readonly nets6: Cidr6[] = [];
  private readonly hosts6 = new Ip6Set();
  /** Signed words, as hosts4. */
  private readonly own4 = new Set<number>();
  private readonly own6 = new Ip6Set();
  private readonly stateLogic: number;
  private stateBits = 0;
  // Per-check scratch for the two IPv6 addresses of a flow.
  private readonly scratch6 = new Uint32Array(8);

  constructor(cfg: FilterConfig = {}, opts: FilterOptions = {}) {
    this.quirk = opts.conntrackdAcceptQuirk ?? true;

    this.protoLogic = cfg.protocol ? (cfg.protocol.policy === 'accept' ? 1 : 0) : NO;
    for (const p of cfg.protocol?.protos ?? []) {
      if (Number.isInteger(p) && p >= 0 && p <= 255) this.protoMap[p] = 1;
      else this.warnings.push(`protocol ${p} is not a protocol number, ignoring`);
    }

    this.addrLogic = cfg.address ? (cfg.address.policy === 'accept' ? 1 : 0) : NO;
    const nets4: number[] = [];
    for (const text of cfg.address?.cidrs ?? []) {
      let c;
      try {
        c = parseCidr(text);
      } catch (err) {
        this.warnings.push(`${(err as Error).message}, ignoring`);
        continue;
      }
      if (c.family === 4) {
        if (c.host) this.hosts4.add(c.net | 0);
        else nets4.push(c.net, c.mask);
      } else if (c.host) {
        this.hosts6.add(c.net);
      } else {
        this.nets6.push(c);
      }
    }
    this.nets4 = Int32Array.from(nets4);

    for (const a of opts.ownAddresses ?? []) {
      const v4 = parseIPv4(a);
      if (v4 >= 0) {
        this.own4.add(v4 | 0);
        continue;
      }
      const w = new Uint32Array(4);
      if (parseIPv6Into(a, w)) this.own6.add(w);
      else this.warnings.push(`own address ${a} is not an address, ignoring`);
    }

    this.stateLogic = cfg.state ? (cfg.state.policy === 'accept' ? 1 : 0) : NO;
    for (const s of cfg.state?.tcpStates ?? []) {
      if (Number.isInteger(s) && s >= 0 && s < 16) this.stateBits |= 1 << s;
      else this.warnings.push(`TCP state ${s} is unknown, ignoring`);
    }
  }

  /** True when the flow is to be cached and synced, false when the filter drops it. */
  accepts(ct: Conntrack): boolean {
    const o = ct.orig;
    if (this.protoLogic !== NO && (this.protoMap[o.proto & 0xff]! ^ this.protoLogic) !== 0) return false;
    // Address text is parsed only when an address rule needs it: this runs for every event.
    if (this.addrLogic !== NO || this.own4.size > 0 || this.own6.size > 0) {
      const src = o.src;
      const dst = ct.reply !== undefined ? ct.reply.src : o.dst;
      if (o.l3 === AF_INET) {
        // Kernel and peer addresses always parse; were one not to (-1), it would match nothing.
        const a = parseIPv4(src);
        const b = parseIPv4(dst);
        if (this.own4.size > 0 && ((a >= 0 && this.own4.has(a | 0)) || (b >= 0 && this.own4.has(b | 0)))) return false;
        if (this.addrLogic !== NO && !this.address4(a, b)) return false;
      } else if (o.l3 === AF_INET6) {
        const w = this.scratch6;
        // An unparsable address cannot match anything; treat it as all-zero like an unset attribute.
        if (!parseIPv6Into(src, w, 0)) w.fill(0, 0, 4);
        if (!parseIPv6Into(dst, w, 4)) w.fill(0, 4, 8);
        if (this.own6.size > 0 && (this.own6.has(w, 0) || this.own6.has(w, 4))) return false;
        if (this.addrLogic !== NO && !this.address6(w)) return false;
      }
    }

    if (this.stateLogic !== NO && o.proto === IPPROTO.TCP && ct.tcp !== undefined) {
      const hit = (this.stateBits >>> ct.tcp.state) & 1;
      if ((hit ^ this.stateLogic) !== 0) return false;
    }
    return true;
  }

  ipv4Spec(): Ipv4FilterSpec {
    return {
      protoLogic: this.protoLogic, protoMap: this.protoMap, addrLogic: this.addrLogic, quirk: this.quirk,
      nets4: this.nets4, hosts4: [...this.hosts4], own4: [...this.own4], stateLogic: this.stateLogic, stateBits: this.stateBits,
    };
  }

  private address4(a: number, b: number): boolean {
    const n = this.nets4;
    let netHit = 0;
    for (let i = 0; i < n.length; i += 2) {
      const mask = n[i + 1]!;
      if ((a & mask) === n[i] || (b & mask) === n[i]) {
        netHit = 1;
        break;
      }
    }
    const hostHit = (a >= 0 && this.hosts4.has(a | 0)) || (b >= 0 && this.hosts4.has(b | 0)) ? 1 : 0;
    return this.verdict(netHit, hostHit);
  }

  private address6(w: Uint32Array): boolean {
    let netHit = 0;
    for (const c of this.nets6) {
      if (match6(c, w, 0) || match6(c, w, 4)) {
        netHit = 1;
        break;
      }
    }
    const hostHit = this.hosts6.has(w, 0) || this.hosts6.has(w, 4) ? 1 : 0;
    return this.verdict(netHit, hostHit);
  }

  private verdict(netHit: number, hostHit: number): boolean {
    if (this.quirk || this.addrLogic === 0) {
      // Two independent tests, each may reject (filter.c). For Ignore this is simply "no hit".
      return (netHit ^ this.addrLogic) === 0 && (hostHit ^ this.addrLogic) === 0;
    }
    return (netHit | hostHit) === 1;
  }
}

function match6(c: Cidr6, w: Uint32Array, off: number): boolean {
  const m = c.mask;
  const n = c.net;
  return ((w[off]! & m[0]!) >>> 0) === n[0] && ((w[off + 1]! & m[1]!) >>> 0) === n[1] &&
    ((w[off + 2]! & m[2]!) >>> 0) === n[2] && ((w[off + 3]! & m[3]!) >>> 0) === n[3];
}

export function compileFilter(cfg: FilterConfig = {}, opts: FilterOptions = {}): CompiledFilter {
  return new CompiledFilter(cfg, opts);
}

/**
 * `ExpectationSync { <helper> ... }`: an expectation is synced when one of the
 * configured names is a case-insensitive prefix of its helper name (so "sip"
 * covers "sip-5060"), as conntrackd matches; one without a helper name is not.
 * `helpers` undefined means `ExpectationSync on` (all). The other conntrackd
 * condition, that the master is in the internal cache, is the daemon's check.
 */
export function expectationHelperAccepted(exp: Expectation, helpers: readonly string[] | undefined): boolean {
  if (helpers === undefined) return true;
  const name = exp.helper;
  if (name === undefined) return false;
  const lower = name.toLowerCase();
  for (const h of helpers) if (lower.startsWith(h.toLowerCase())) return true;
  return false;
}
