// Checks a parsed configuration against the host it is about to run on.
//
// These are warnings, not errors: conntrackd itself only warns when an
// interface is missing ("%s is an invalid interface"), and on an HA firewall
// interfaces and addresses may legitimately appear after the daemon starts
// (VRRP, late hotplug). The probe is injectable so tests need no real NICs.

import { existsSync, readdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { canonicalIp, type ConfigWarning, type CtsyncConfig } from './schema.js';

export interface HostProbe {
  /** Names of the network interfaces present on this host. */
  interfaces(): string[];
  /** Addresses configured on this host, per interface name. */
  addresses(): Record<string, string[]>;
  /** Whether a file exists (for KeyFile / TLS files); the real file system when omitted. */
  fileExists?(path: string): boolean;
}

/** The real host: /sys/class/net (also lists interfaces that are down) and os.networkInterfaces(). */
export const systemProbe: HostProbe = {
  interfaces(): string[] {
    const names = new Set<string>(Object.keys(networkInterfaces()));
    try {
      for (const n of readdirSync('/sys/class/net')) names.add(n);
    } catch {
      // No sysfs (container without /sys): networkInterfaces() alone lists the interfaces that are up.
    }
    return [...names];
  },
  addresses(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [name, infos] of Object.entries(networkInterfaces())) {
      out[name] = (infos ?? []).map((i) => i.address);
    }
    return out;
  },
  fileExists: (path) => existsSync(path),
};

/** Canonical form so "fe80::1" and "FE80:0::1" compare equal; scope ids (%eth0) dropped. */
function expandV6(addr: string): string {
  const a = addr.replace(/%.*$/, '');
  return isIP(a) === 6 ? canonicalIp(a) : a;
}

/**
 * Returns one warning per link interface, local address or security file that
 * this host does not have. Never throws.
 */
export function checkHost(config: CtsyncConfig, probe: HostProbe = systemProbe): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const file = config.file;
  let ifaces: Set<string>;
  let byIface: Record<string, string[]>;
  try {
    ifaces = new Set(probe.interfaces());
    byIface = probe.addresses();
  } catch (err) {
    return [{ file, line: 1, keyword: 'Interface', message: `cannot list this host's interfaces: ${String(err)}` }];
  }
  const local = new Set<string>();
  for (const list of Object.values(byIface)) for (const a of list) local.add(expandV6(a));

  for (const link of config.sync?.links ?? []) {
    const block = link.kind === 'multicast' ? 'Multicast' : link.kind.toUpperCase();
    if (link.interface && !ifaces.has(link.interface)) {
      warnings.push({ file, line: link.line, keyword: 'Interface',
        message: `${block} link: interface '${link.interface}' does not exist on this host` });
    }
    // For Multicast the IPvN_address is the group, not a local address; IPv4_interface is the local one.
    const own = link.kind === 'multicast' ? link.ipv4Interface : (link.ipv4Address ?? link.ipv6Address);
    if (own !== undefined && !local.has(expandV6(own))) {
      const keyword = link.kind === 'multicast' ? 'IPv4_interface' : link.ipv4Address !== undefined ? 'IPv4_address' : 'IPv6_address';
      warnings.push({ file, line: link.line, keyword,
        message: `${block} link: local address ${own} is not configured on this host` });
    } else if (own !== undefined && link.interface && ifaces.has(link.interface) && byIface[link.interface] &&
        !byIface[link.interface]!.some((a) => expandV6(a) === expandV6(own))) {
      warnings.push({ file, line: link.line, keyword: 'Interface',
        message: `${block} link: address ${own} is not on interface '${link.interface}'` });
    }
  }
  const x = config.ctsync;
  const files: Array<[string, string | null | undefined]> = [
    ['KeyFile', x.keyFile], ['CAFile', x.tls?.caFile], ['CertFile', x.tls?.certFile], ['KeyFile', x.tls?.keyFile],
  ];
  for (const [kw, path] of files) {
    if (path && !safeExists(probe, path)) {
      warnings.push({ file, line: 1, keyword: kw, message: `Ctsync ${kw} ${path} does not exist` });
    }
  }
  return warnings;
}

function safeExists(probe: HostProbe, path: string): boolean {
  try {
    return probe.fileExists ? probe.fileExists(path) : existsSync(path);
  } catch {
    return false;
  }
}
