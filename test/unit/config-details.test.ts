// Smaller semantics: address canonical form, link variants, conntrackd's
// "0 means not set" readings, byte-order marks, CRLF files.

import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';

const udp = (body: string) => `Sync {\n Mode FTFW { }\n UDP {\n${body}\n }\n}\n`;

describe('config details', () => {
  it('IPv6 link addresses are stored in canonical form', () => {
    const { config } = parseConfig(udp(' IPv6_address FD00:0:0::0001\n IPv6_Destination_Address fd00::2\n Port 9\n Interface eth0'), 'c');
    expect(config.sync!.links[0]).toMatchObject({ ipv6Address: 'fd00::1', destination: 'fd00::2' });
  });

  it('an IPv6 multicast link', () => {
    const { config } = parseConfig('Sync {\n Multicast Default {\n IPv6_address FF02::1:3\n Group 3780\n Interface eth1\n'
      + ' Checksum no\n }\n}\n', 'c');
    expect(config.sync!.links[0]).toEqual({ kind: 'multicast', isDefault: true, line: 2, ipv6Address: 'ff02::1:3',
      port: 3780, interface: 'eth1', checksum: false });
  });

  it('mixed families between local and peer address are refused', () => {
    expect(() => parseConfig(udp(' IPv4_address 10.0.0.1\n IPv6_Destination_Address fd00::2\n Port 9\n Interface eth0'), 'c'))
      .toThrow('c:3: UDP block: local address 10.0.0.1 and destination fd00::2 are of different IP families');
  });

  it('the Default link index is reported', () => {
    const link = (d: string, a: string) => ` UDP ${d}{\n IPv4_Destination_Address ${a}\n Port 9\n Interface eth0\n }\n`;
    const { config } = parseConfig(`Sync {\n${link('', '10.0.0.2')}${link('Default ', '10.0.1.2')}}\n`, 'c');
    expect(config.sync!.defaultLink).toBe(1);
    expect(config.sync!.links.map((l) => l.isDefault)).toEqual([false, true]);
  });

  it('CommitTimeout 0 means "estimate", as in conntrackd', () => {
    const { config } = parseConfig(udp(' IPv4_Destination_Address 10.0.0.2\n Port 9\n Interface eth0').replace('Mode FTFW { }', 'Mode FTFW { CommitTimeout 0 }'), 'c');
    expect(config.sync!.commitTimeout).toBeUndefined();
  });

  it('NetlinkOverrunResync 0 means the default 30 s, as in conntrackd', () => {
    const { config } = parseConfig(`${udp(' IPv4_Destination_Address 10.0.0.2\n Port 9\n Interface eth0')}General { NetlinkOverrunResync 0 }`, 'c');
    expect(config.general.netlinkOverrunResync).toBe(30);
  });

  it('timers directly in Sync, last one wins', () => {
    const text = 'Sync {\n PurgeTimeout 7\n CommitTimeout 9\n Mode ALARM { RefreshTime 3 }\n CacheTimeout 33\n'
      + ' UDP { IPv4_Destination_Address 10.0.0.2 Port 9 Interface eth0 }\n}\n';
    const { config, warnings } = parseConfig(text, 'c');
    expect(config.sync).toMatchObject({ mode: 'alarm', purgeTimeout: 7, commitTimeout: 9, refreshTime: 3, cacheTimeout: 33 });
    expect(warnings).toEqual([]);
  });

  it('a UTF-8 byte-order mark and CRLF line ends are accepted', () => {
    const text = `\uFEFF${udp(' IPv4_Destination_Address 10.0.0.2\n Port 9\n Interface eth0').replaceAll('\n', '\r\n')}`;
    const { config } = parseConfig(text, 'c');
    expect(config.sync!.links[0]!.interface).toBe('eth0');
    expect(() => parseConfig('\u00EF\u00BB\u00BFGeneral { Nice x }', 'c')).toThrow("c:1: expected a signed number after 'Nice', found 'x'");
  });

  it('paths may hold characters other words may not', () => {
    const { config } = parseConfig(`${udp(' IPv4_Destination_Address 10.0.0.2\n Port 9\n Interface eth0')}`
      + 'General { LockFile /var/lock/ct#1,x=y }', 'c');
    expect(config.general.lockFile).toBe('/var/lock/ct#1,x=y');
  });

  it('Ctsync Metrics defaults when the block is empty', () => {
    const { config } = parseConfig(`${udp(' IPv4_Destination_Address 10.0.0.2\n Port 9\n Interface eth0')}Ctsync { Metrics { } KeyFile /etc/k }`, 'c');
    expect(config.ctsync).toMatchObject({ metrics: { address: '127.0.0.1', port: 9469 }, keyFile: '/etc/k', acceptOnlyPeer: true });
  });
});
