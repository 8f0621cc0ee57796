// conntrackd's multichannel: up to 4 redundant links of one transport, one of
// them active for sending. Every link receives. A link that delivers a valid
// datagram becomes the active one (the peer evidently sends there); when the
// active link's interface stops RUNNING, sending fails over to the next link
// that is. conntrackd learns link changes from netlink; ctsync polls the
// interface status on a timer (injected clock), which is cheap (one sysfs read).
import type { Channel, ChannelStats, DirectTarget, LinkStatus } from './types.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { ChannelError } from '../errors.js';
import { rdU16BE } from '../util/bytes.js';

export const MAX_LINKS = 4;

export interface LinkReport {
  kind: Channel['kind'];
  ifname: string;
  status: LinkStatus;
  role: 'ACTIVE' | 'BACKUP';
  stats: ChannelStats;
}

export interface MultiChannelOptions {
  clock?: Clock;
  log?: Logger;
  pollMs?: number;
  /** Told whenever the active link changes (for logs and metrics). */
  onSwitch?: (from: string, to: string, why: 'received' | 'failover') => void;
}

type MessageCb = (datagram: Buffer, from: { address: string; port: number }) => boolean | void;

/** The cheapest "valid datagram" test that needs no sync layer: one full header, version 1. */
function looksValid(d: Buffer): boolean {
  return d.length >= 8 && d[0]! >> 4 === 1 && rdU16BE(d, 2) >= 8;
}

export class MultiChannel implements Channel {
  readonly kind: Channel['kind'];
  private readonly links: Channel[];
  private active: number;
  private cb: MessageCb | null = null;
  private timer: TimerHandle | null = null;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly pollMs: number;

  constructor(links: { channel: Channel; isDefault?: boolean }[], private readonly opts: MultiChannelOptions = {}) {
    if (links.length === 0 || links.length > MAX_LINKS) {
      throw new ChannelError(`a sync section takes 1 to ${MAX_LINKS} links (got ${links.length})`);
    }
    this.links = links.map((l) => l.channel);
    // The Default link starts active; without one, the first (as conntrackd).
    this.active = Math.max(0, links.findIndex((l) => l.isDefault));
    this.kind = this.links[0]!.kind;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? silentLogger;
    this.pollMs = opts.pollMs ?? 1000;
  }

  /** Smallest of all links (known after open): the sync layer sizes its buffer once, and any link may carry it. */
  get maxDatagram(): number {
    let m = Infinity;
    for (const l of this.links) m = Math.min(m, l.maxDatagram);
    return m;
  }

  get ifname(): string {
    return this.links[this.active]!.ifname;
  }

  /** Index of the link currently used for sending. */
  get activeIndex(): number {
    return this.active;
  }

  async open(): Promise<void> {
    // Listen before opening, so nothing that arrives during open() is lost.
    this.links.forEach((l, i) => l.onMessage((d, from) => this.receive(i, d, from)));
    const opened: Channel[] = [];
    try {
      for (const l of this.links) {
        await l.open();
        opened.push(l);
      }
    } catch (e) {
      await Promise.allSettled(opened.map((l) => l.close()));
      throw e;
    }
    this.timer = this.clock.setInterval(() => this.poll(), this.pollMs);
  }

  send(datagram: Buffer): void {
    this.links[this.active]!.send(datagram);
  }

  /**
   * The callback may return false to say "this datagram was not valid", so it
   * does not claim the link; anything else (including void) counts as valid
   * once the datagram has a well-formed first header.
   */
  onMessage(cb: MessageCb): void {
    this.cb = cb;
  }

  async close(): Promise<void> {
    this.timer?.cancel();
    this.timer = null;
    await Promise.allSettled(this.links.map((l) => l.close()));
  }

  /** Every link reloads its files; the first failure is thrown after all were tried. */
  reloadFiles(): void {
    let first: unknown = null;
    for (const l of this.links) {
      try {
        l.reloadFiles?.();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== null) throw first;
  }

  /** The active link's counters (what plain `-s` prints). */
  /** One link only: with several, the active one changes under a failover. */
  directTarget(): DirectTarget | null {
    return this.links.length === 1 ? this.links[0]!.directTarget?.() ?? null : null;
  }

  countDirect(bytes: number): void {
    this.links[this.active]!.countDirect?.(bytes);
  }

  stats(): ChannelStats {
    return this.links[this.active]!.stats();
  }

  status(): LinkStatus {
    return this.links[this.active]!.status();
  }

  /** One entry per configured link, in config order (for `-s link`). */
  linkStats(): LinkReport[] {
    return this.links.map((l, i) => ({
      kind: l.kind, ifname: l.ifname, status: l.status(), role: i === this.active ? 'ACTIVE' : 'BACKUP', stats: l.stats(),
    }));
  }

  /** Checks the active link now (the timer calls this every pollMs). */
  poll(): void {
    if (this.links[this.active]!.status() === 'RUNNING') return;
    for (let k = 1; k < this.links.length; k++) {
      const i = (this.active + k) % this.links.length;
      if (this.links[i]!.status() === 'RUNNING') {
        this.switchTo(i, 'failover');
        return;
      }
    }
    // Nothing better: stay, so sending resumes as soon as the link returns.
  }

  private receive(i: number, d: Buffer, from: { address: string; port: number }): void {
    const valid = looksValid(d);
    const verdict = this.cb?.(d, from);
    if (valid && verdict !== false && i !== this.active) this.switchTo(i, 'received');
  }

  private switchTo(i: number, why: 'received' | 'failover'): void {
    const from = this.links[this.active]!.ifname;
    this.active = i;
    const to = this.links[i]!.ifname;
    this.log.warn({ from, to, why }, 'sync link switched');
    this.opts.onSwitch?.(from, to, why);
  }
}
