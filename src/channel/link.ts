// Facts about the interface a sync link is bound to, read from sysfs: the MTU
// sizes the send buffer (§1.6), the ifindex gives the IPv6 scope, and the
// flags give the -s link status and drive multi-link failover. sysfs reflects
// the caller's network namespace (ip netns exec remounts it).
import { readFileSync } from 'node:fs';
import type { LinkStatus } from './types.js';
import { ChannelError } from '../errors.js';

const IFF_UP = 0x1;

export interface LinkInfo {
  ifname: string;
  ifindex: number;
  mtu: number;
}

/** Reads link facts; injectable so unit tests need no real interface. */
export interface LinkReader {
  info(ifname: string): LinkInfo;
  status(ifname: string): LinkStatus;
}

function checkName(ifname: string): void {
  // The name becomes a path component: refuse anything that could escape /sys/class/net.
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(ifname) || ifname === '.' || ifname === '..') {
    throw new ChannelError(`invalid interface name "${ifname}"`, { ifname });
  }
}

export class SysfsLinkReader implements LinkReader {
  constructor(private readonly root = '/sys/class/net') {}

  info(ifname: string): LinkInfo {
    checkName(ifname);
    try {
      const mtu = Number(readFileSync(`${this.root}/${ifname}/mtu`, 'latin1').trim());
      const ifindex = Number(readFileSync(`${this.root}/${ifname}/ifindex`, 'latin1').trim());
      if (!Number.isInteger(mtu) || mtu <= 0 || !Number.isInteger(ifindex)) throw new Error('unreadable mtu/ifindex');
      return { ifname, ifindex, mtu };
    } catch (e) {
      throw new ChannelError(`interface ${ifname}: ${(e as Error).message}`, { ifname }, { cause: e });
    }
  }

  /** conntrackd's rule: not UP → DOWN; UP without RUNNING → NO-CARRIER; else RUNNING. */
  status(ifname: string): LinkStatus {
    try {
      checkName(ifname);
      const flags = parseInt(readFileSync(`${this.root}/${ifname}/flags`, 'latin1').trim(), 16);
      const oper = readFileSync(`${this.root}/${ifname}/operstate`, 'latin1').trim();
      return linkStatusOf(flags, oper);
    } catch {
      // A vanished interface is, for failover purposes, down.
      return 'DOWN';
    }
  }
}

/**
 * sysfs `flags` holds the administrative flags only; the kernel derives
 * IFF_RUNNING (what conntrackd sees over netlink) from the operational state,
 * "up" or "unknown" (loopback and some virtual devices report unknown).
 */
export function linkStatusOf(flags: number, operstate: string): LinkStatus {
  if (!(flags & IFF_UP)) return 'DOWN';
  if (operstate !== 'up' && operstate !== 'unknown') return 'NO-CARRIER';
  return 'RUNNING';
}

export const sysfsLinks: LinkReader = new SysfsLinkReader();
