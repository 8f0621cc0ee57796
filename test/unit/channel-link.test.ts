// Interface facts from sysfs: status mapping (conntrackd's rule), MTU/ifindex, bad names.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SysfsLinkReader, linkStatusOf } from '../../src/channel/link.js';
import { ChannelError } from '../../src/errors.js';

const root = mkdtempSync(join(tmpdir(), 'ctsync-link-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function fakeIf(name: string, files: Record<string, string>): void {
  mkdirSync(join(root, name), { recursive: true });
  for (const [k, v] of Object.entries(files)) writeFileSync(join(root, name, k), `${v}\n`);
}

describe('link facts', () => {
  it('maps flags to RUNNING / NO-CARRIER / DOWN', () => {
    expect(linkStatusOf(0x1003, 'down')).toBe('NO-CARRIER');
    expect(linkStatusOf(0x1003, 'lowerlayerdown')).toBe('NO-CARRIER');
    expect(linkStatusOf(0x1003, 'up')).toBe('RUNNING');
    expect(linkStatusOf(0x9, 'unknown')).toBe('RUNNING');
    expect(linkStatusOf(0x1002, 'up')).toBe('DOWN');
  });

  it('reads mtu, ifindex and flags from a sysfs tree', () => {
    fakeIf('sync0', { mtu: '9000', ifindex: '7', flags: '0x1003', operstate: 'up' });
    fakeIf('sync1', { mtu: '1500', ifindex: '8', flags: '0x1003', operstate: 'down' });
    const r = new SysfsLinkReader(root);
    expect(r.info('sync0')).toEqual({ ifname: 'sync0', ifindex: 7, mtu: 9000 });
    expect(r.status('sync0')).toBe('RUNNING');
    expect(r.status('sync1')).toBe('NO-CARRIER');
    expect(r.status('gone0')).toBe('DOWN');
    expect(() => r.info('gone0')).toThrow(ChannelError);
    expect(() => r.info('../etc')).toThrow(/invalid interface name/);
  });

  it('reads the real loopback', () => {
    const r = new SysfsLinkReader();
    expect(r.info('lo').ifindex).toBe(1);
    expect(r.status('lo')).toBe('RUNNING');
  });
});
