// checkHost against a fake host: missing interfaces, addresses and files are
// warnings naming the link's line.

import { describe, expect, it } from 'vitest';
import { checkHost, parseConfig, type HostProbe } from '../../src/config/index.js';

const text = `Sync {
 Mode FTFW { }
 UDP {
  IPv4_address 172.30.1.1
  IPv4_Destination_Address 172.30.1.2
  Port 3780
  Interface veth-ab
 }
 UDP Default {
  IPv6_address FD00:0::1
  IPv6_Destination_Address fd00::2
  Port 3780
  Interface eth9
 }
}
Ctsync { KeyFile /etc/ctsync/psk }
`;

function probe(ifaces: Record<string, string[]>, files: string[] = []): HostProbe {
  return { interfaces: () => Object.keys(ifaces), addresses: () => ifaces, fileExists: (p) => files.includes(p) };
}

describe('checkHost', () => {
  const { config } = parseConfig(text, 'c.conf');

  it('everything present → no warnings', () => {
    const w = checkHost(config, probe({ 'veth-ab': ['172.30.1.1'], eth9: ['FD00::1', 'fe80::1'] }, ['/etc/ctsync/psk']));
    expect(w).toEqual([]);
  });

  it('a missing interface is a warning naming the link line', () => {
    const w = checkHost(config, probe({ 'veth-ab': ['172.30.1.1'], lo: ['127.0.0.1', 'fd00::1'] }, ['/etc/ctsync/psk']));
    expect(w).toEqual([{ file: 'c.conf', line: 9, keyword: 'Interface',
      message: "UDP link: interface 'eth9' does not exist on this host" }]);
  });

  it('a missing local address, an address on the wrong interface and a missing key file', () => {
    const w = checkHost(config, probe({ 'veth-ab': [], eth9: ['fd00::5'], lo: ['172.30.1.1'] }));
    expect(w.map((x) => [x.keyword, x.line, x.message])).toEqual([
      ['Interface', 3, "UDP link: address 172.30.1.1 is not on interface 'veth-ab'"],
      ['IPv6_address', 9, 'UDP link: local address fd00::1 is not configured on this host'],
      ['KeyFile', 1, 'Ctsync KeyFile /etc/ctsync/psk does not exist'],
    ]);
  });

  it('a failing probe gives a warning, not a crash', () => {
    const bad: HostProbe = { interfaces: () => { throw new Error('EPERM'); }, addresses: () => ({}), fileExists: () => true };
    expect(checkHost(config, bad)).toHaveLength(1);
  });

  it('the real host probe runs', () => {
    expect(Array.isArray(checkHost(config))).toBe(true);
  });
});
