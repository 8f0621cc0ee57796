// Recursive-descent parser for conntrackd.conf (1.4.7 grammar) plus ctsync's
// `Ctsync { ... }` section. Fills a CtsyncConfig that starts from the
// defaults; schema.finalizeConfig then runs the whole-file checks.
//
// Recursion depth is bounded by the grammar (at most Helper > Type > Policy),
// never by the input: unknown blocks are skipped with an iterative counter, so
// deeply nested junk cannot overflow the stack.

import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { describeToken, tokenize, type Token } from './lexer.js';
import {
  CONNTRACKD_KEYWORDS, CTSYNC_KEYWORDS, MODE_NAMES, PROTOCOL_NUMBERS, REMOVED_KEYWORDS, SYSLOG_FACILITIES,
  TCP_STATES, ignoredReason, type TcpStateName,
} from './keywords.js';
import {
  DEFAULTS, canonicalIp, defaultCtsync, defaultGeneral, defaultSync, finalizeConfig,
  type ConfigWarning, type CtsyncConfig, type FilterConfig, type FilterPolicy, type HelperTypeConfig,
  type LinkConfig, type LinkKind, type SectionLines, type SyncConfig, type SyslogFacility,
} from './schema.js';

type Handler = (kw: Token) => void;

const INT_MAX = 2147483647;
const IFNAMSIZ = 16;
const BOOL = /^(on|off|yes|no)$/i;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

class Parser {
  private pos = 0;
  private readonly config: CtsyncConfig;
  readonly lines: SectionLines = { settings: {} };
  private modeLine: number | undefined;

  constructor(private readonly tokens: Token[], private readonly file: string,
    readonly warnings: ConfigWarning[]) {
    this.config = {
      file, role: 'sync', sync: null, general: defaultGeneral(), stats: null, helper: null, ctsync: defaultCtsync(),
    };
  }

  // ---- token stream -------------------------------------------------------

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private next(): Token {
    const t = this.tokens[this.pos]!;
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  private syntax(line: number, message: string): ConfigError {
    return new ConfigError('CTSYNC_ERR_CONFIG_SYNTAX', message, this.file, line);
  }

  private invalid(line: number, message: string): ConfigError {
    return new ConfigError('CTSYNC_ERR_CONFIG_INVALID', message, this.file, line);
  }

  private warn(t: Token, message: string): void {
    this.warnings.push({ file: this.file, line: t.line, keyword: t.text, message });
  }

  private warnIgnored(t: Token, key: string): void {
    const reason = ignoredReason(key);
    this.warn(t, `'${t.text}' is accepted but not acted on by ctsync: ${reason ?? 'not implemented'}`);
  }

  /** Consumes '{' after `after` or says what was found instead. */
  private open(after: Token): void {
    const t = this.next();
    if (t.kind !== '{') {
      throw this.syntax(t.kind === 'eof' ? after.line : t.line,
        `expected '{' after '${after.text}', found ${describeToken(t)}`);
    }
  }

  /** The value word after keyword `kw`; `what` names the expected kind of value. */
  private value(kw: Token, what: string): Token {
    const t = this.next();
    if (t.kind !== 'word') {
      throw this.syntax(t.kind === 'eof' ? kw.line : t.line, `expected ${what} after '${kw.text}', found ${describeToken(t)}`);
    }
    return t;
  }

  private number(kw: Token, min = 0, max = INT_MAX): number {
    const t = this.value(kw, 'a number');
    if (!/^[0-9]+$/.test(t.text)) {
      throw this.syntax(t.line, `expected a number after '${kw.text}', found ${describeToken(t)}`);
    }
    const n = Number(t.text);
    if (n < min || n > max) {
      throw this.invalid(t.line, `${kw.text} ${t.text} is out of range, expected ${min}..${max}`);
    }
    return n;
  }

  private signed(kw: Token): number {
    const t = this.value(kw, 'a signed number');
    if (!/^[+-]?[0-9]+$/.test(t.text) || Math.abs(Number(t.text)) > INT_MAX) {
      throw this.syntax(t.line, `expected a signed number after '${kw.text}', found ${describeToken(t)}`);
    }
    return Number(t.text);
  }

  private static isBool(t: Token): boolean {
    return t.kind === 'word' && BOOL.test(t.text);
  }

  private bool(kw: Token): boolean {
    const t = this.value(kw, 'on or off');
    if (!BOOL.test(t.text)) {
      throw this.syntax(t.line, `expected on/off (or yes/no) after '${kw.text}', found ${describeToken(t)}`);
    }
    const v = t.text.toLowerCase();
    return v === 'on' || v === 'yes';
  }

  private path(kw: Token): string {
    const t = this.value(kw, "an absolute path (starting with '/')");
    if (!t.text.startsWith('/')) {
      throw this.syntax(t.line, `expected an absolute path (starting with '/') after '${kw.text}', found ${describeToken(t)}`);
    }
    // conntrackd's FILENAME_MAXLEN; it refuses longer LogFile/LockFile paths too.
    if (t.text.length > 256) throw this.invalid(t.line, `${kw.text} path is longer than 256 characters`);
    return t.text;
  }

  private name(kw: Token, what = 'a name'): string {
    const t = this.value(kw, what);
    if (!NAME.test(t.text)) throw this.syntax(t.line, `expected ${what} after '${kw.text}', found ${describeToken(t)}`);
    return t.text;
  }

  /** An IP address of `family` (4 or 6), with an optional /prefix when `cidr`. */
  private ip(kw: Token, family: 4 | 6, cidr: boolean): { address: string; prefix: number } {
    const what = family === 4 ? 'an IPv4 address' : 'an IPv6 address';
    const t = this.value(kw, what);
    const slash = t.text.indexOf('/');
    const address = slash >= 0 ? t.text.slice(0, slash) : t.text;
    if (isIP(address) !== family) {
      // A word that is no address at all is a syntax error; an address of the other family is a semantic one.
      if (isIP(address) === 0) throw this.syntax(t.line, `expected ${what} after '${kw.text}', found ${describeToken(t)}`);
      throw this.invalid(t.line, `${kw.text}: ${t.text} is not ${what}`);
    }
    const max = family === 4 ? 32 : 128;
    let prefix = max;
    if (slash >= 0) {
      if (!cidr) throw this.invalid(t.line, `${kw.text}: expected a plain address, found the network ${t.text}`);
      const p = t.text.slice(slash + 1);
      if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) {
        throw this.invalid(t.line, `${kw.text}: ${t.text} has an invalid prefix length, expected /0../${max}`);
      }
      prefix = Number(p);
    }
    return { address: canonicalIp(address), prefix };
  }

  // ---- blocks -------------------------------------------------------------

  /**
   * Parses `{ ... }` after `opener` (the '{' not yet consumed), dispatching each
   * keyword to `handlers`. `section` names the block in messages and keys the
   * ignored-keyword table.
   */
  private block(opener: Token, section: string, handlers: Record<string, Handler>): void {
    this.open(opener);
    this.body(opener, section, handlers, true);
  }

  private body(opener: Token | null, section: string, handlers: Record<string, Handler>, braced: boolean): void {
    for (;;) {
      const t = this.next();
      if (t.kind === '}') {
        if (braced) return;
        throw this.syntax(t.line, "unexpected '}' with no open block");
      }
      if (t.kind === 'eof') {
        if (!braced) return;
        throw this.syntax(t.line,
          `expected '}' to close '${opener!.text}' opened at line ${opener!.line}, found end of file`);
      }
      if (t.kind === '{') {
        throw this.syntax(t.line, `expected a keyword in ${section}, found '{'`);
      }
      const h = Object.prototype.hasOwnProperty.call(handlers, t.text) ? handlers[t.text] : undefined;
      if (h) {
        h(t);
        continue;
      }
      this.unexpectedKeyword(t, section, Object.keys(handlers));
    }
  }

  private unexpectedKeyword(t: Token, section: string, allowed: string[]): void {
    if (CONNTRACKD_KEYWORDS.has(t.text) || CTSYNC_KEYWORDS.has(t.text)) {
      throw this.syntax(t.line, `'${t.text}' is not valid in ${section}; expected ${allowedList(allowed)}`);
    }
    if (REMOVED_KEYWORDS.has(t.text)) {
      this.warn(t, `'${t.text}' was removed from conntrackd before 1.4.7; ignored`);
    } else {
      this.warn(t, `unknown keyword '${t.text}' in ${section}; ignored`);
    }
    this.skipRest(t);
  }

  /**
   * Skips what follows an unknown keyword: the rest of its line, and a braced
   * block if one opens there or as the next token (brace on its own line).
   * Stops before a '}' that closes the enclosing block.
   */
  private skipRest(kw: Token): void {
    let depth = 0;
    let sawBlock = false;
    for (;;) {
      const t = this.peek();
      if (t.kind === 'eof') {
        if (depth > 0) throw this.syntax(t.line, `expected '}' to close the block of unknown keyword '${kw.text}' (line ${kw.line}), found end of file`);
        return;
      }
      const blockStart = t.kind === '{' && !sawBlock;
      if (depth === 0 && !blockStart && (t.line !== kw.line || t.kind === '}')) return;
      this.next();
      if (t.kind === '{') { depth++; sawBlock = true; }
      else if (t.kind === '}') {
        depth--;
        if (depth === 0) return;
      }
    }
  }

  // ---- top level ----------------------------------------------------------

  parse(): { config: CtsyncConfig; lines: SectionLines } {
    this.body(null, 'the top level', {
      General: (kw) => this.general(kw),
      Sync: (kw) => this.sync(kw),
      Stats: (kw) => this.stats(kw),
      Helper: (kw) => this.helper(kw),
      Ctsync: (kw) => this.ctsyncSection(kw),
    }, false);
    if (this.lines.stats !== undefined && this.lines.sync === undefined) this.config.role = 'stats';
    if (this.config.sync && this.modeLine !== undefined) this.config.sync.modeLine = this.modeLine;
    return { config: this.config, lines: this.lines };
  }

  private setting(kw: Token): void {
    this.lines.settings[kw.text] = kw.line;
  }

  // ---- Sync ---------------------------------------------------------------

  private syncCfg(): SyncConfig {
    this.config.sync ??= defaultSync();
    return this.config.sync;
  }

  private sync(kw: Token): void {
    this.lines.sync ??= kw.line;
    const s = this.syncCfg();
    const timers = this.timerHandlers(s, ['RefreshTime', 'CacheTimeout', 'CommitTimeout', 'PurgeTimeout']);
    this.block(kw, 'Sync', {
      ...timers,
      Mode: (k) => this.mode(k, s),
      UDP: (k) => this.link(k, 'udp', s),
      Multicast: (k) => this.link(k, 'multicast', s),
      TCP: (k) => this.link(k, 'tcp', s),
      Options: (k) => this.block(k, 'Options', {
        TCPWindowTracking: (o) => { s.tcpWindowTracking = this.bool(o); },
        ExpectationSync: (o) => this.expectationSync(o, s),
      }),
    });
  }

  /** Handlers for the numeric/boolean settings that appear in Sync and in the Mode blocks. */
  private timerHandlers(s: SyncConfig, names: string[]): Record<string, Handler> {
    const all: Record<string, Handler> = {
      RefreshTime: (k) => { this.setting(k); s.refreshTime = this.number(k); },
      CacheTimeout: (k) => { this.setting(k); s.cacheTimeout = this.number(k); },
      CommitTimeout: (k) => {
        this.setting(k);
        // conntrackd reads 0 as "not set": estimate from each entry's own timeout.
        const n = this.number(k);
        s.commitTimeout = n === 0 ? undefined : n;
      },
      PurgeTimeout: (k) => { this.setting(k); s.purgeTimeout = this.number(k); },
      ResendQueueSize: (k) => { this.setting(k); s.resendQueueSize = this.number(k); },
      ACKWindowSize: (k) => { this.setting(k); s.ackWindowSize = this.number(k); },
      DisableExternalCache: (k) => { s.disableExternalCache = this.bool(k); },
      DisableInternalCache: (k) => { s.disableInternalCache = this.bool(k); },
      StartupResync: (k) => { s.startupResync = this.bool(k); },
    };
    const out: Record<string, Handler> = {};
    for (const n of names) out[n] = all[n]!;
    return out;
  }

  private mode(kw: Token, s: SyncConfig): void {
    const t = this.value(kw, 'FTFW, ALARM or NOTRACK');
    const m = MODE_NAMES[t.text.toLowerCase()];
    if (!m) throw this.syntax(t.line, `expected FTFW, ALARM or NOTRACK after 'Mode', found ${describeToken(t)}`);
    if (m.deprecated) this.warn(kw, `${m.deprecated}; please update the configuration`);
    if (this.modeLine !== undefined && s.mode !== m.mode) {
      throw this.invalid(kw.line, `second synchronization Mode ${t.text} (Mode ${s.mode.toUpperCase()} at line ${this.modeLine})`);
    }
    this.modeLine = kw.line;
    s.mode = m.mode;
    const perMode: Record<SyncConfig['mode'], string[]> = {
      ftfw: ['ResendQueueSize', 'CommitTimeout', 'PurgeTimeout', 'ACKWindowSize', 'DisableExternalCache', 'StartupResync'],
      alarm: ['RefreshTime', 'CacheTimeout', 'CommitTimeout', 'PurgeTimeout'],
      notrack: ['CommitTimeout', 'PurgeTimeout', 'DisableInternalCache', 'DisableExternalCache', 'StartupResync'],
    };
    this.block(t, `Mode ${m.mode.toUpperCase()}`, this.timerHandlers(s, perMode[m.mode]));
  }

  private expectationSync(kw: Token, s: SyncConfig): void {
    const t = this.peek();
    if (t.kind === '{') {
      this.next();
      const helpers: string[] = [];
      for (;;) {
        const h = this.next();
        if (h.kind === '}') break;
        if (h.kind !== 'word' || !NAME.test(h.text)) {
          throw this.syntax(h.line, h.kind === 'eof'
            ? `expected '}' to close 'ExpectationSync' opened at line ${kw.line}, found end of file`
            : `expected a helper name or '}' in ExpectationSync, found ${describeToken(h)}`);
        }
        if (!helpers.includes(h.text)) helpers.push(h.text);
      }
      s.expectationSync = { enabled: true, helpers };
      return;
    }
    if (!Parser.isBool(t)) {
      throw this.syntax(t.kind === 'eof' ? kw.line : t.line,
        `expected on/off or '{' after 'ExpectationSync', found ${describeToken(t)}`);
    }
    s.expectationSync = { enabled: this.bool(kw), helpers: null };
  }

  private link(kw: Token, kind: LinkKind, s: SyncConfig): void {
    const link: LinkConfig = { kind, isDefault: false, line: kw.line, port: 0, interface: '', checksum: true };
    if (kind === 'tcp') link.errorQueueLength = DEFAULTS.errorQueueLength;
    const d = this.peek();
    if (d.kind === 'word' && d.text === 'Default') {
      this.next();
      link.isDefault = true;
    }
    const section = `${kw.text} block`;
    const h: Record<string, Handler> = {
      IPv4_address: (k) => { link.ipv4Address = this.ip(k, 4, false).address; },
      IPv6_address: (k) => { link.ipv6Address = this.ip(k, 6, false).address; },
      Interface: (k) => {
        const name = this.name(k, 'an interface name');
        if (name.length >= IFNAMSIZ) throw this.invalid(k.line, `interface name '${name}' is longer than ${IFNAMSIZ - 1} characters`);
        link.interface = name;
      },
      SndSocketBuffer: (k) => { link.sndBuf = this.number(k); },
      RcvSocketBuffer: (k) => { link.rcvBuf = this.number(k); },
      Checksum: (k) => { link.checksum = this.bool(k); },
    };
    if (kind === 'multicast') {
      h['Group'] = (k) => { link.port = this.number(k); };
      h['IPv4_interface'] = (k) => { link.ipv4Interface = this.ip(k, 4, false).address; };
      h['IPv6_interface'] = (k) => { this.value(k, 'an IPv6 address'); this.warnIgnored(k, 'Link.IPv6_interface'); };
    } else {
      h['Port'] = (k) => { link.port = this.number(k); };
      h['IPv4_Destination_Address'] = (k) => { link.destination = this.ip(k, 4, false).address; };
      h['IPv6_Destination_Address'] = (k) => { link.destination = this.ip(k, 6, false).address; };
    }
    if (kind === 'tcp') h['ErrorQueueLength'] = (k) => { link.errorQueueLength = this.number(k); };
    this.block(link.isDefault ? { ...kw, text: `${kw.text} Default` } : kw, section, h);
    s.links.push(link);
  }

  // ---- General ------------------------------------------------------------

  private general(kw: Token): void {
    const g = this.config.general;
    const bufSize: Handler = (k) => { this.setting({ ...k, text: 'NetlinkBufferSize' }); g.netlinkBufferSize = this.number(k); };
    const bufMax: Handler = (k) => {
      this.setting({ ...k, text: 'NetlinkBufferSizeMaxGrowth' });
      g.netlinkBufferSizeMaxGrowth = this.number(k);
    };
    this.block(kw, 'General', {
      Systemd: (k) => { g.systemd = this.bool(k); },
      Nice: (k) => { g.nice = this.signed(k); this.warnIgnored(k, 'General.Nice'); },
      HashSize: (k) => { g.hashSize = this.number(k); this.warnIgnored(k, 'General.HashSize'); },
      HashLimit: (k) => { this.setting(k); g.hashLimit = this.number(k); },
      LogFile: (k) => { g.logFile = this.boolOrPath(k, DEFAULTS.logFile); },
      Syslog: (k) => { g.syslog = this.syslog(k, g.syslog); },
      LockFile: (k) => { g.lockFile = this.path(k); },
      UNIX: (k) => this.block(k, 'UNIX', {
        Path: (p) => {
          const path = this.path(p);
          // sockaddr_un.sun_path is 108 bytes including the terminating NUL.
          if (Buffer.byteLength(path) > 107) throw this.invalid(p.line, `UNIX Path is longer than 107 bytes`);
          g.unix.path = path;
        },
        Backlog: (b) => { g.unix.backlog = this.number(b); this.warnIgnored(b, 'General.UNIX.Backlog'); },
      }),
      NetlinkBufferSize: bufSize,
      SocketBufferSize: bufSize,
      NetlinkBufferSizeMaxGrowth: bufMax,
      SocketBufferSizeMaxGrown: bufMax,
      SocketBufferSizeMaxGrowth: bufMax,
      NetlinkOverrunResync: (k) => {
        const t = this.peek();
        if (Parser.isBool(t)) g.netlinkOverrunResync = this.bool(k) ? DEFAULTS.netlinkOverrunResync : null;
        else {
          // conntrackd treats 0 as "not set", i.e. the 30 s default.
          const n = this.numberOr(k, 'on, off or a number of seconds');
          g.netlinkOverrunResync = n === 0 ? DEFAULTS.netlinkOverrunResync : n;
        }
      },
      NetlinkEventsReliable: (k) => { g.netlinkEventsReliable = this.bool(k); },
      PollSecs: (k) => {
        const n = this.number(k);
        if (n === 0) throw this.invalid(k.line, "'PollSecs' must be > 0");
        g.pollSecs = n;
        this.warnIgnored(k, 'General.PollSecs');
      },
      EventIterationLimit: (k) => { this.setting(k); g.eventIterationLimit = this.number(k); },
      Scheduler: (k) => {
        const sched: NonNullable<typeof g.scheduler> = g.scheduler ?? {};
        g.scheduler = sched;
        this.block(k, 'Scheduler', {
          Type: (t) => {
            const v = this.value(t, 'RR, FIFO or OTHER');
            const u = v.text.toUpperCase();
            // OTHER (normal time-sharing) is ctsync's: conntrackd 1.4.7 knows only RR and FIFO.
            if (u !== 'RR' && u !== 'FIFO' && u !== 'OTHER') throw this.invalid(v.line, `unknown scheduler '${v.text}', expected RR, FIFO or OTHER`);
            sched.type = u;
          },
          Priority: (p) => { sched.priority = this.number(p, 0, 99); },
        });
      },
      Filter: (k) => this.filter(k),
    });
  }

  private numberOr(kw: Token, what: string): number {
    const t = this.peek();
    if (t.kind !== 'word' || !/^[0-9]+$/.test(t.text)) {
      throw this.syntax(t.kind === 'eof' ? kw.line : t.line, `expected ${what} after '${kw.text}', found ${describeToken(t)}`);
    }
    return this.number(kw);
  }

  /** `LogFile on|off|/path`: on = the default file, off = null. */
  private boolOrPath(kw: Token, onValue: string): string | null {
    const t = this.peek();
    if (Parser.isBool(t)) return this.bool(kw) ? onValue : null;
    if (t.kind === 'word' && t.text.startsWith('/')) return this.path(kw);
    throw this.syntax(t.kind === 'eof' ? kw.line : t.line,
      `expected on, off or an absolute path after '${kw.text}', found ${describeToken(t)}`);
  }

  /** `Syslog on|off|<facility>`; an unknown facility leaves the value as it was (conntrackd does the same). */
  private syslog(kw: Token, current: SyslogFacility | null): SyslogFacility | null {
    const t = this.peek();
    if (Parser.isBool(t)) return this.bool(kw) ? DEFAULTS.syslogFacility : null;
    const v = this.value(kw, 'on, off or a syslog facility');
    if (SYSLOG_FACILITIES.has(v.text)) return v.text as SyslogFacility;
    if (!NAME.test(v.text)) {
      throw this.syntax(v.line, `expected on, off or a syslog facility after '${kw.text}', found ${describeToken(v)}`);
    }
    this.warn(kw, `'${v.text}' is not a known syslog facility (daemon, local0..local7); ignored`);
    return current;
  }

  private filter(kw: Token): void {
    const g = this.config.general;
    const f: FilterConfig = g.filter ?? { from: 'userspace' };
    g.filter = f;
    let opener: Token = kw;
    const t = this.peek();
    if (t.kind === 'word' && t.text === 'From') {
      this.next();
      const where = this.value(t, 'Userspace or Kernelspace');
      if (where.text === 'Userspace') f.from = 'userspace';
      else if (where.text === 'Kernelspace') f.from = 'kernelspace';
      else throw this.syntax(where.line, `expected Userspace or Kernelspace after 'From', found ${describeToken(where)}`);
      opener = { ...kw, text: `Filter From ${where.text}` };
    } else {
      f.from = 'userspace';
    }
    this.block(opener, 'Filter', {
      Protocol: (k) => {
        const policy = this.policy(k, f.protocol?.policy, f.protocol?.line);
        const p = f.protocol ?? { policy, protocols: [], line: k.line };
        f.protocol = p;
        this.list(k, 'a protocol name', (w) => {
          const num = /^[0-9]+$/.test(w.text) ? Number(w.text) : PROTOCOL_NUMBERS[w.text.toLowerCase()];
          if (num === undefined || num > 255) {
            this.warn(w, `unknown protocol '${w.text}' (not in the protocol table); ignored`);
            return;
          }
          if (!p.protocols.includes(num)) p.protocols.push(num);
        });
      },
      Address: (k) => {
        const policy = this.policy(k, f.address?.policy, f.address?.line);
        const a = f.address ?? { policy, ipv4: [], ipv6: [], line: k.line };
        f.address = a;
        this.open(k);
        this.body(k, 'Address filter', {
          IPv4_address: (i) => { a.ipv4.push({ ...this.ip(i, 4, true), line: i.line }); },
          IPv6_address: (i) => { a.ipv6.push({ ...this.ip(i, 6, true), line: i.line }); },
        }, true);
      },
      State: (k) => {
        const policy = this.policy(k, f.state?.policy, f.state?.line);
        const s = f.state ?? { policy, tcpStates: [], line: k.line };
        f.state = s;
        this.stateList(k, s.tcpStates);
      },
    });
  }

  /** `Accept` or `Ignore` after a filter class; the two may not be mixed for one class. */
  private policy(kw: Token, previous: FilterPolicy | undefined, previousLine: number | undefined): FilterPolicy {
    const t = this.value(kw, 'Accept or Ignore');
    let p: FilterPolicy;
    if (t.text === 'Accept') p = 'accept';
    else if (t.text === 'Ignore') p = 'ignore';
    else throw this.syntax(t.line, `expected Accept or Ignore after '${kw.text}', found ${describeToken(t)}`);
    if (previous !== undefined && previous !== p) {
      throw this.invalid(t.line, `${kw.text} ${t.text} conflicts with ${kw.text} ${previous === 'accept' ? 'Accept' : 'Ignore'} at line ${previousLine}`);
    }
    return p;
  }

  /** `{ word word ... }` after `kw`. */
  private list(kw: Token, what: string, each: (w: Token) => void): void {
    this.open(kw);
    for (;;) {
      const t = this.next();
      if (t.kind === '}') return;
      if (t.kind !== 'word') {
        throw this.syntax(t.line, t.kind === 'eof'
          ? `expected '}' to close '${kw.text}' opened at line ${kw.line}, found end of file`
          : `expected ${what} or '}', found ${describeToken(t)}`);
      }
      each(t);
    }
  }

  /** `{ ESTABLISHED TIME_WAIT for TCP ... }`; "for TCP" is required by conntrackd, tolerated missing here. */
  private stateList(kw: Token, out: TcpStateName[]): void {
    let pending = false;
    this.list(kw, 'a TCP state', (w) => {
      if (w.text === 'for') {
        const p = this.value(w, "'TCP'");
        if (p.text !== 'TCP') throw this.syntax(p.line, `expected 'TCP' after 'for', found ${describeToken(p)}`);
        if (!pending) throw this.syntax(w.line, "expected a TCP state before 'for TCP'");
        pending = false;
        return;
      }
      const st = Object.prototype.hasOwnProperty.call(TCP_STATES, w.text) ? TCP_STATES[w.text] : undefined;
      if (!st) {
        throw this.syntax(w.line,
          `expected a TCP state (${Object.keys(TCP_STATES).join(', ')}) or 'for TCP', found ${describeToken(w)}`);
      }
      if (!out.includes(st)) out.push(st);
      pending = true;
    });
    if (pending) this.warn(kw, "TCP states should end with 'for TCP' (conntrackd 1.4.7 requires it)");
  }

  // ---- Stats, Helper, Ctsync ----------------------------------------------

  private stats(kw: Token): void {
    this.lines.stats ??= kw.line;
    const st = this.config.stats ?? { logFile: null, syslog: null, line: kw.line };
    this.config.stats = st;
    this.block(kw, 'Stats', {
      LogFile: (k) => { st.logFile = this.boolOrPath(k, DEFAULTS.statsLogFile); },
      Syslog: (k) => { st.syslog = this.syslog(k, st.syslog); },
      NetlinkEventsReliable: (k) => { this.config.general.netlinkEventsReliable = this.bool(k); },
    });
    this.warnIgnored(kw, 'Stats');
  }

  private helper(kw: Token): void {
    const h = this.config.helper ?? { setup: false, types: [], line: kw.line };
    this.config.helper = h;
    this.block(kw, 'Helper', {
      Setup: (k) => { h.setup = this.bool(k); },
      Type: (k) => {
        const name = this.name(k, 'a helper name');
        const l3w = this.value(k, 'inet or inet6');
        if (l3w.text !== 'inet' && l3w.text !== 'inet6') {
          throw this.syntax(l3w.line, `expected inet or inet6 after 'Type ${name}', found ${describeToken(l3w)}`);
        }
        const l4w = this.value(k, 'tcp or udp');
        if (l4w.text !== 'tcp' && l4w.text !== 'udp') {
          throw this.syntax(l4w.line, `expected tcp or udp after 'Type ${name} ${l3w.text}', found ${describeToken(l4w)}`);
        }
        const type: HelperTypeConfig = { name, l3: l3w.text, l4: l4w.text, policies: [], line: k.line };
        this.block(k, `Helper Type ${name}`, {
          QueueNum: (q) => { type.queueNum = this.number(q); },
          QueueLen: (q) => { type.queueLen = this.number(q); },
          Policy: (p) => {
            const pname = this.name(p, 'a policy name');
            const pol: { name: string; expectMax?: number; expectTimeout?: number } = { name: pname };
            this.block(p, `Policy ${pname}`, {
              ExpectMax: (e) => { pol.expectMax = this.number(e); },
              ExpectTimeout: (e) => { pol.expectTimeout = this.number(e); },
            });
            if (pol.expectMax === undefined && pol.expectTimeout === undefined) {
              throw this.invalid(p.line, `Policy ${pname} is empty; expected ExpectMax and/or ExpectTimeout`);
            }
            type.policies.push(pol);
          },
        });
        h.types.push(type);
      },
    });
    this.warnIgnored(kw, 'Helper');
  }

  private ctsyncSection(kw: Token): void {
    const x = this.config.ctsync;
    this.block(kw, 'Ctsync', {
      Metrics: (k) => {
        const m = x.metrics ?? { address: DEFAULTS.metricsAddress, port: DEFAULTS.metricsPort };
        x.metrics = m;
        this.block(k, 'Metrics', {
          Address: (a) => {
            const t = this.peek();
            const fam = t.kind === 'word' && isIP(t.text) === 6 ? 6 : 4;
            m.address = this.ip(a, fam, false).address;
          },
          Port: (p) => { m.port = this.number(p, 1, 65535); },
        });
      },
      IgnoreOwnAddresses: (k) => { x.ignoreOwnAddresses = this.bool(k); },
      KeyFile: (k) => { this.setting(k); x.keyFile = this.path(k); },
      TLS: (k) => {
        this.setting(k);
        const tls: { caFile?: string; certFile?: string; keyFile?: string } = {};
        this.block(k, 'TLS', {
          CAFile: (f) => { tls.caFile = this.path(f); },
          CertFile: (f) => { tls.certFile = this.path(f); },
          KeyFile: (f) => { tls.keyFile = this.path(f); },
        });
        const missing = ([['CAFile', tls.caFile], ['CertFile', tls.certFile], ['KeyFile', tls.keyFile]] as const)
          .filter(([, v]) => v === undefined).map(([n]) => n);
        if (missing.length > 0) throw this.invalid(k.line, `TLS block is missing ${missing.join(', ')}`);
        x.tls = { caFile: tls.caFile!, certFile: tls.certFile!, keyFile: tls.keyFile! };
      },
      AcceptOnlyPeer: (k) => { x.acceptOnlyPeer = this.bool(k); },
      ReadyFile: (k) => { x.readyFile = this.path(k); },
      NotifyFifo: (k) => { x.notifyFifo = this.path(k); },
      PeerTimeout: (k) => { x.peerTimeout = this.number(k, 1, 3600); },
      ReconcileInterval: (k) => { x.reconcileInterval = this.number(k, 0, 86400); },
      SendWindow: (k) => { x.sendWindow = this.number(k, 0, 1_000_000); },
      FastPath: (k) => { x.fastPath = this.bool(k); },
    });
  }
}

function allowedList(allowed: string[]): string {
  if (allowed.length === 1) return `'${allowed[0]}'`;
  return `one of ${allowed.join(', ')}`;
}

/** Parses conntrackd.conf text. Throws ConfigError (SYNTAX or INVALID) naming file and line. */
export function parseConfig(text: string, file: string): { config: CtsyncConfig; warnings: ConfigWarning[] } {
  const warnings: ConfigWarning[] = [];
  const parser = new Parser(tokenize(text, file), file, warnings);
  const { config, lines } = parser.parse();
  finalizeConfig(config, lines, warnings);
  return { config, warnings };
}
